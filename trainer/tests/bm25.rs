//! BM25 baseline: Porter stemmer samples, analyzer, hand-computed scores, top-k against a
//! brute-force sort, batch search, and a small end-to-end BEIR fixture.

use std::path::Path;

use edgecl_trainer::bm25::{analyze, is_stop_word, stem, Bm25Index, Bm25Params, Hit};
use edgecl_trainer::data::beir::{load_beir, Query};
use edgecl_trainer::data::ReadOptions;
use edgecl_trainer::error::TrainerError;
use edgecl_trainer::eval::{evaluate, Metric};
use proptest::prelude::*;

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn index(docs: &[&str]) -> Bm25Index {
    let docs = docs.iter().enumerate().map(|(i, t)| (format!("d{i}"), *t));
    Bm25Index::build(docs, Bm25Params::default()).unwrap()
}

#[test]
fn porter_stemmer_matches_the_samples() {
    let text = std::fs::read_to_string(fixture("porter_samples.tsv")).unwrap();
    let mut checked = 0;
    let mut wrong = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let (word, want) = line.split_once('\t').unwrap();
        let got = stem(word);
        if got != want {
            wrong.push(format!("{word}: got {got}, want {want}"));
        }
        checked += 1;
    }
    assert!(checked >= 80, "only {checked} samples read");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn porter_stemmer_edge_cases() {
    // Two letters or fewer are left alone; so are words the rules do not touch.
    for w in ["", "a", "is", "by", "xx"] {
        assert_eq!(stem(w), w);
    }
    // A suffix covering the whole word: "ies" -> "i".
    assert_eq!(stem("ies"), "i");
    // Step 1a drops a plural -s without looking at the rest: "yes" -> "ye".
    assert_eq!(stem("yes"), "ye");
    // Non-ASCII letters count as consonants and pass through.
    assert_eq!(stem("naïve"), "naïv");
    assert_eq!(stem("12345"), "12345");
}

#[test]
fn analyzer_lowercases_splits_drops_stop_words_and_stems() {
    assert_eq!(
        analyze("The Patients' cells, e.g. T-cells in 3.5% of MICE!"),
        ["patient", "cell", "e", "g", "t", "cell", "3", "5", "mice"]
    );
    assert!(analyze("to be or not to be, that is the question").iter().eq(["question"]));
    // ü and ï count as consonants: "ünïcode" ends consonant-vowel-consonant + e, m = 1,
    // so step 5 keeps the e.
    assert_eq!(analyze("Ünïcode—Wörter"), ["ünïcode", "wörter"]);
    assert!(analyze(" \t\n--").is_empty());
    assert!(is_stop_word("with") && !is_stop_word("without"));
}

#[test]
fn scores_match_hand_computation() {
    // After analysis: d0 = [appl, banana] (dl 2), d1 = [appl, appl, cherri] (dl 3),
    // d2 = [cherri, date, elderberri, fig] (dl 4). N = 3, avgdl = 3.
    let idx = index(&["apple banana", "apple apple cherry", "cherry date elderberry fig"]);
    assert_eq!(idx.df("appl"), 2);
    // idf(appl) = ln(1 + (3 - 2 + 0.5) / (2 + 0.5)) = ln(1.6) = 0.4700036.
    assert!((idx.idf(2) - 0.470_003_63).abs() < 1e-6);
    // d1: tf 2, norm = 0.9 * (0.6 + 0.4 * 3/3) = 0.9; 0.4700036 * 2 / 2.9 = 0.3241404.
    // d0: tf 1, norm = 0.9 * (0.6 + 0.4 * 2/3) = 0.78; 0.4700036 / 1.78 = 0.2640470.
    let hits = idx.search("apples", 10);
    assert_eq!(hits.len(), 2, "d2 shares no term and is not returned");
    assert_eq!(hits[0].doc, 1);
    assert!((hits[0].score - 0.324_140_43).abs() < 1e-6);
    assert_eq!(hits[1].doc, 0);
    assert!((hits[1].score - 0.264_046_98).abs() < 1e-6);

    // A repeated query term counts twice.
    let twice = idx.search("apple APPLE", 10);
    assert!((twice[0].score - 2.0 * hits[0].score).abs() < 1e-6);
    // Stop words and unknown words contribute nothing.
    assert!(idx.search("the of zebra", 10).is_empty());
    assert!(idx.search("apple", 0).is_empty());
}

#[test]
fn equal_scores_rank_the_earlier_document_first() {
    let idx = index(&["zeta one", "alpha", "zeta two", "zeta three"]);
    // d0, d2 and d3 have the same length and tf: identical scores.
    let hits = idx.search("zeta", 2);
    assert_eq!(hits.iter().map(|h| h.doc).collect::<Vec<_>>(), [0, 2]);
    assert_eq!(hits[0].score, hits[1].score);
}

#[test]
fn bad_parameters_are_rejected() {
    let docs = vec![("d".to_string(), "text")];
    for params in [Bm25Params { k1: 0.9, b: 1.5 }, Bm25Params { k1: f32::NAN, b: 0.4 }] {
        let err = Bm25Index::build(docs.clone(), params).unwrap_err();
        assert!(matches!(err, TrainerError::InvalidArgument { name: "params", .. }));
    }
}

#[test]
fn batch_search_equals_one_by_one() {
    let idx = index(&["red apple pie", "green apple", "red car", "blue sky over the sea"]);
    let queries: Vec<Query> = ["apple", "red", "sky car", "nothing"]
        .iter()
        .enumerate()
        .map(|(i, t)| Query { id: format!("q{i}"), text: t.to_string() })
        .collect();
    let run = idx.search_batch(&queries, 3);
    assert_eq!(run.len(), 4);
    for q in &queries {
        let want: Vec<(String, f64)> = idx
            .search(&q.text, 3)
            .into_iter()
            .map(|h| (idx.doc_id(h.doc).to_string(), f64::from(h.score)))
            .collect();
        assert_eq!(run[&q.id], want);
    }
    assert!(run["q3"].is_empty());
}

#[test]
fn tiny_beir_collection_end_to_end() {
    let data = load_beir(&fixture("beir_tiny"), "test", ReadOptions::STRICT).unwrap();
    let idx = Bm25Index::from_documents(&data.corpus, Bm25Params::default()).unwrap();
    assert_eq!(idx.len(), 5);
    let run = idx.search_batch(&data.queries, 10);
    // Each query's relevant document shares the most terms with it and comes first.
    assert_eq!(run["q1"][0].0, "d1");
    assert_eq!(run["q2"][0].0, "d2");
    assert_eq!(run["q3"][0].0, "d3");
    // q3 also judges d5, which has no text and cannot be found: R = 2, one retrieved.
    let eval = evaluate(&data.qrels, &run, &[Metric::Recall(10), Metric::Mrr(10)]).unwrap();
    assert_eq!(eval.per_query["q3"][0], 0.5);
    assert_eq!(eval.per_query["q1"], [1.0, 1.0]);
}

// Every document, scored by brute force from the postings' definition.
fn brute_force(idx: &Bm25Index, docs: &[String], query: &str) -> Vec<Hit> {
    let analyzed: Vec<Vec<String>> = docs.iter().map(|d| analyze(d)).collect();
    let avgdl = analyzed.iter().map(Vec::len).sum::<usize>() as f64 / docs.len() as f64;
    let p = idx.params();
    let mut hits = Vec::new();
    for (i, terms) in analyzed.iter().enumerate() {
        let mut score = 0.0f32;
        let mut any = false;
        let mut seen: Vec<String> = Vec::new();
        let q_terms = analyze(query);
        for t in &q_terms {
            if seen.contains(t) || idx.df(t) == 0 {
                continue;
            }
            seen.push(t.clone());
            let qtf = q_terms.iter().filter(|x| *x == t).count() as f32;
            let tf = terms.iter().filter(|x| *x == t).count() as f32;
            if tf > 0.0 {
                any = true;
                let norm = (p.k1 as f64
                    * (1.0 - p.b as f64 + p.b as f64 * terms.len() as f64 / avgdl))
                    as f32;
                score += qtf * idx.idf(idx.df(t)) * tf / (tf + norm);
            }
        }
        if any {
            hits.push(Hit { doc: i as u32, score });
        }
    }
    hits.sort_by(|a, b| b.cmp(a));
    hits
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn top_k_equals_brute_force_prefix(
        docs in prop::collection::vec(
            prop::collection::vec(prop::sample::select(vec!["cat", "dog", "bird", "fish", "the", "cats", "running"]), 0..8)
                .prop_map(|w| w.join(" ")),
            1..25),
        query in prop::collection::vec(prop::sample::select(vec!["cat", "dog", "bird", "fish", "of", "runs"]), 1..4)
            .prop_map(|w| w.join(" ")),
        k in 1usize..30,
    ) {
        let idx = Bm25Index::build(
            docs.iter().enumerate().map(|(i, d)| (format!("d{i}"), d.as_str())),
            Bm25Params::default(),
        ).unwrap();
        let want = brute_force(&idx, &docs, &query);
        let got = idx.search(&query, k);
        prop_assert_eq!(got.len(), want.len().min(k));
        for (g, w) in got.iter().zip(&want) {
            prop_assert_eq!(g.doc, w.doc);
            prop_assert!((g.score - w.score).abs() <= 1e-6 * w.score.abs().max(1.0));
        }
    }
}
