//! The batch sampler: no duplicate text in a batch, every example exactly
//! once per epoch, seeded and resumable.

use std::collections::HashSet;

use edgecl_trainer::batch::{normalize_text, BatchSampler, SamplerState};
use edgecl_trainer::data::examples::TrainingExample;
use proptest::prelude::*;

fn ex(q: &str, p: &str, negs: &[&str]) -> TrainingExample {
    TrainingExample {
        query: q.into(),
        positive: p.into(),
        negatives: negs.iter().map(|s| s.to_string()).collect(),
        scores: None,
    }
}

/// Examples with deliberate collisions: repeated queries (case and
/// whitespace differ), a positive that is another's negative, a query
/// that is another's positive.
fn colliding() -> Vec<TrainingExample> {
    let mut v = Vec::new();
    for i in 0..30 {
        v.push(ex(&format!("query {i}"), &format!("doc {i}"), &[&format!("neg {i}")]));
    }
    v.push(ex("  QUERY 3 ", "doc x", &[]));
    v.push(ex("Query 3", "doc y", &[]));
    v.push(ex("query z", "neg 7", &[]));
    v.push(ex("doc 12", "doc w", &["doc 13"]));
    v.push(ex("same", "same", &[])); // duplicate within one example: fine
    v
}

fn texts(e: &TrainingExample) -> Vec<String> {
    let mut t: Vec<String> = std::iter::once(&e.query)
        .chain(std::iter::once(&e.positive))
        .chain(&e.negatives)
        .map(|s| normalize_text(s))
        .collect();
    t.sort();
    t.dedup();
    t
}

/// Checks one epoch's batches; returns them.
fn check_epoch(s: &mut BatchSampler, examples: &[TrainingExample], bs: usize) -> Vec<Vec<usize>> {
    let epoch = s.epoch();
    let n = s.batches_in_epoch();
    let mut seen = vec![0usize; examples.len()];
    let mut batches = Vec::new();
    for _ in 0..n {
        assert_eq!(s.epoch(), epoch);
        let b = s.next_batch();
        assert!(!b.is_empty() && b.len() <= bs);
        let mut used = HashSet::new();
        for &e in &b {
            seen[e] += 1;
            for t in texts(&examples[e]) {
                assert!(used.insert(t.clone()), "text {t:?} twice in batch {b:?}");
            }
        }
        batches.push(b);
    }
    assert!(seen.iter().all(|&c| c == 1), "every example once per epoch: {seen:?}");
    batches
}

#[test]
fn batches_have_no_duplicate_text_and_nothing_is_dropped() {
    let examples = colliding();
    let mut s = BatchSampler::from_examples(&examples, 8, 42).unwrap();
    let mut orders = Vec::new();
    for _ in 0..3 {
        let batches = check_epoch(&mut s, &examples, 8);
        orders.push(batches);
    }
    // One batch could hold all 35 examples, but "query 3" occurs three
    // times, so three batches are needed and at least the 4 colliding
    // examples (two repeats of query 3, "neg 7" as a positive, "doc 12" as
    // a query) wait for a later one.
    let mut whole = BatchSampler::from_examples(&examples, 64, 42).unwrap();
    assert_eq!(whole.batches_in_epoch(), 3);
    assert!(whole.deferred_in_epoch() >= 4, "{}", whole.deferred_in_epoch());
    check_epoch(&mut whole, &examples, 64);
    // Each epoch reshuffles.
    assert_ne!(orders[0], orders[1]);
    assert_ne!(orders[1], orders[2]);
    assert_eq!(s.epoch(), 3);
}

#[test]
fn same_seed_same_sequence_other_seed_other_sequence() {
    let examples = colliding();
    let run = |seed| {
        let mut s = BatchSampler::from_examples(&examples, 5, seed).unwrap();
        (0..20).map(|_| s.next_batch()).collect::<Vec<_>>()
    };
    assert_eq!(run(1), run(1));
    assert_ne!(run(1), run(2));
}

#[test]
fn resume_yields_the_identical_remaining_sequence() {
    let examples = colliding();
    let per_epoch = BatchSampler::from_examples(&examples, 6, 7).unwrap().batches_in_epoch();
    // Stop mid-way through the second epoch, and also exactly at an
    // epoch's end.
    for stop in [per_epoch + 2, per_epoch, 0] {
        let mut a = BatchSampler::from_examples(&examples, 6, 7).unwrap();
        for _ in 0..stop {
            a.next_batch();
        }
        let saved = SamplerState::from_json(&a.state().to_json()).unwrap();
        assert_eq!(saved, a.state());
        let expected: Vec<Vec<usize>> = (0..3 * per_epoch).map(|_| a.next_batch()).collect();

        let mut b = BatchSampler::from_examples(&examples, 6, 999).unwrap();
        b.resume(&saved).unwrap();
        let got: Vec<Vec<usize>> = (0..3 * per_epoch).map(|_| b.next_batch()).collect();
        assert_eq!(got, expected, "stop after {stop} batches");
    }
}

#[test]
fn resume_refuses_other_data() {
    let examples = colliding();
    let s = BatchSampler::from_examples(&examples, 6, 7).unwrap();
    let state = s.state();
    let mut other = BatchSampler::from_examples(&examples[1..], 6, 7).unwrap();
    assert!(other.resume(&state).is_err());
    let mut changed = examples.clone();
    changed[0].positive = "something else".into();
    let mut other = BatchSampler::from_examples(&changed, 6, 7).unwrap();
    assert!(other.resume(&state).is_err());
    let mut other_bs = BatchSampler::from_examples(&examples, 5, 7).unwrap();
    assert!(other_bs.resume(&state).is_err());
    let bad = SamplerState { batch: 10_000, ..state };
    let mut same = BatchSampler::from_examples(&examples, 6, 7).unwrap();
    assert!(same.resume(&bad).is_err());
    assert!(SamplerState::from_json("{\"epoch\":1}").is_err());
    assert!(SamplerState::from_json("not json").is_err());
}

#[test]
fn ids_are_compared_exactly() {
    // Keys given by id: "d1" shared by examples 0 and 2; case matters.
    let keys = vec![vec!["q1", "d1"], vec!["q2", "D1"], vec!["q3", "d1"], vec!["q4", "d4"]];
    let mut s = BatchSampler::from_keys(&keys, 4, 3).unwrap();
    for _ in 0..10 {
        let b = s.next_batch();
        assert!(!(b.contains(&0) && b.contains(&2)), "{b:?}");
    }
    assert!(BatchSampler::from_keys::<&str>(&[], 4, 3).is_err());
    assert!(BatchSampler::from_keys(&keys, 0, 3).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn invariants_hold_on_random_collision_heavy_data(
        pairs in proptest::collection::vec((0u8..12, 0u8..12), 1..60),
        bs in 1usize..9,
        seed in any::<u64>(),
    ) {
        // Tiny vocabularies force many collisions.
        let examples: Vec<TrainingExample> = pairs
            .iter()
            .map(|&(q, p)| ex(&format!("q{q}"), &format!("d{p}"), &[]))
            .collect();
        let mut s = BatchSampler::from_examples(&examples, bs, seed).unwrap();
        for _ in 0..2 {
            check_epoch(&mut s, &examples, bs);
        }
    }
}
