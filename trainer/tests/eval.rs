//! Metrics on hand-worked cases (derivations in comments), error cases, run-file round
//! trips, and a few properties on random rankings.

use std::collections::HashMap;

use edgecl_trainer::data::ReadOptions;
use edgecl_trainer::error::TrainerError;
use edgecl_trainer::eval::trec::{read_run, write_run};
use edgecl_trainer::eval::{evaluate, rank, Judged, Metric, Qrels, Run};
use proptest::prelude::*;

const EPS: f64 = 1e-12;

fn grades(pairs: &[(&str, i32)]) -> HashMap<String, i32> {
    pairs.iter().map(|&(d, g)| (d.to_string(), g)).collect()
}

fn results(pairs: &[(&str, f64)]) -> Vec<(String, f64)> {
    pairs.iter().map(|&(d, s)| (d.to_string(), s)).collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < EPS
}

// q1 judgments: a = 1, b = 2, c = 0 (judged non-relevant). R = 2.
// Run: c 2.0, a 1.0, b 1.0, d 0.5. a and b tie; trec_eval puts the larger doc id first,
// so the ranking is c, b, a, d with gains 0, 2, 1, 0.
fn case_q1() -> (HashMap<String, i32>, Vec<(String, f64)>) {
    (
        grades(&[("a", 1), ("b", 2), ("c", 0)]),
        results(&[("c", 2.0), ("a", 1.0), ("b", 1.0), ("d", 0.5)]),
    )
}

#[test]
fn ties_break_by_doc_id_descending() {
    let (_, run) = case_q1();
    assert_eq!(rank("q1", &run).unwrap(), ["c", "b", "a", "d"]);
    let run = results(&[("doc10", 1.0), ("doc9", 1.0), ("doc2", 3.0)]);
    // Byte-wise: "doc9" > "doc10".
    assert_eq!(rank("q", &run).unwrap(), ["doc2", "doc9", "doc10"]);
}

#[test]
fn ndcg_hand_worked() {
    let (g, run) = case_q1();
    let judged = Judged::new(&g);
    let ranking = rank("q1", &run).unwrap();
    // @1: c has gain 0 -> 0.
    assert_eq!(judged.score(Metric::Ndcg(1), &ranking), 0.0);
    // @2: DCG = 0/1 + 2/log2(3) = 1.2618595; IDCG = 2/1 + 1/log2(3) = 2.6309298;
    // 1.2618595 / 2.6309298 = 0.4796249 (pytrec_eval prints 0.4796249331362629).
    assert!(close(judged.score(Metric::Ndcg(2), &ranking), 0.4796249331362629));
    // @3: DCG = 1.2618595 + 1/log2(4) = 1.7618595; IDCG unchanged (only two gains);
    // 0.6696718 (pytrec_eval: 0.66967181649423).
    assert!(close(judged.score(Metric::Ndcg(3), &ranking), 0.66967181649423));
    assert!(close(judged.score(Metric::Ndcg(10), &ranking), 0.66967181649423));
}

#[test]
fn ndcg_ideal_uses_unretrieved_judgments_and_linear_gain() {
    // Judged x = 3, z = 2, y = 1; only y (gain 1) and an unjudged w are retrieved.
    // DCG = 1/1 = 1; IDCG = 3/1 + 2/log2(3) + 1/log2(4) = 3 + 1.2618595 + 0.5 = 4.7618595;
    // nDCG@10 = 0.2100020. An exponential gain (2^rel - 1) would give 1 / (7 + 1.89 + 0.5).
    let g = grades(&[("x", 3), ("y", 1), ("z", 2)]);
    let ranking = ["y", "w"];
    assert!(close(Judged::new(&g).score(Metric::Ndcg(10), &ranking), 0.21000199575396408));
}

#[test]
fn binary_measures_hand_worked() {
    let (g, run) = case_q1();
    let judged = Judged::new(&g);
    let ranking = rank("q1", &run).unwrap();
    assert_eq!(judged.num_relevant, 2);
    // First relevant document (b) at rank 2.
    assert_eq!(judged.score(Metric::Mrr(1), &ranking), 0.0);
    assert_eq!(judged.score(Metric::Mrr(2), &ranking), 0.5);
    // MAP@2: P@2 = 1/2 at the one relevant rank within 2, over R = 2 -> 0.25.
    assert_eq!(judged.score(Metric::Map(2), &ranking), 0.25);
    // MAP@3: (1/2 + 2/3) / 2 = 7/12.
    assert!(close(judged.score(Metric::Map(3), &ranking), 7.0 / 12.0));
    // Recall: 0 of 2 in the top 1, 1 of 2 in the top 2, 2 of 2 in the top 3.
    assert_eq!(judged.score(Metric::Recall(1), &ranking), 0.0);
    assert_eq!(judged.score(Metric::Recall(2), &ranking), 0.5);
    assert_eq!(judged.score(Metric::Recall(3), &ranking), 1.0);
    // P@3 = 2/3; P@10 divides by 10 although only 4 were retrieved: 2/10.
    assert!(close(judged.score(Metric::Precision(3), &ranking), 2.0 / 3.0));
    assert_eq!(judged.score(Metric::Precision(10), &ranking), 0.2);
}

#[test]
fn grade_zero_is_not_relevant_for_binary_measures() {
    let g = grades(&[("a", 0), ("b", 1)]);
    let judged = Judged::new(&g);
    assert_eq!(judged.num_relevant, 1);
    assert_eq!(judged.score(Metric::Mrr(10), &["a", "b"]), 0.5);
    assert_eq!(judged.score(Metric::Precision(1), &["a", "b"]), 0.0);
}

#[test]
fn evaluate_skips_unjudged_and_counts_missing_queries() {
    let (g1, r1) = case_q1();
    let mut qrels = Qrels::new();
    qrels.insert("q1".into(), g1);
    qrels.insert("q2".into(), grades(&[("x", 3), ("y", 1), ("z", 2)]));
    qrels.insert("q3".into(), grades(&[("e", 0)])); // no relevant document: skipped
    qrels.insert("q4".into(), grades(&[("f", 1)])); // not in the run: all zeros
    let mut run = Run::new();
    run.insert("q1".into(), r1);
    run.insert("q2".into(), results(&[("y", 5.0), ("w", 4.0)]));
    run.insert("q3".into(), results(&[("e", 1.0)]));
    run.insert("q5".into(), results(&[("a", 1.0)])); // not judged: ignored

    let eval = evaluate(&qrels, &run, &[Metric::Ndcg(3), Metric::Recall(10)]).unwrap();
    assert_eq!(eval.per_query.keys().collect::<Vec<_>>(), ["q1", "q2", "q4"]);
    assert_eq!(eval.skipped_no_relevant, ["q3"]);
    assert_eq!(eval.missing_from_run, ["q4"]);
    // nDCG@3: q1 0.6696718, q2 1/4.7618595 = 0.2100020, q4 0 -> mean 0.2932246.
    assert!(close(eval.mean[0], 0.2932246040827314));
    // Recall@10: q1 1, q2 1/3, q4 0 -> 4/9.
    assert!(close(eval.mean_of(Metric::Recall(10)).unwrap(), 4.0 / 9.0));
    assert_eq!(eval.mean_of(Metric::Map(10)), None);
}

#[test]
fn evaluate_rejects_bad_input() {
    let mut qrels = Qrels::new();
    qrels.insert("q".into(), grades(&[("a", 1)]));
    let mut run = Run::new();
    run.insert("q".into(), results(&[("a", 1.0)]));
    let err = evaluate(&qrels, &run, &[Metric::Ndcg(0)]).unwrap_err();
    assert!(matches!(err, TrainerError::InvalidArgument { name: "metrics", .. }));

    run.insert("q".into(), results(&[("a", 1.0), ("a", 2.0)]));
    let err = evaluate(&qrels, &run, &[Metric::Ndcg(10)]).unwrap_err();
    assert!(matches!(&err, TrainerError::DuplicateRunDoc { doc, .. } if doc == "a"));

    run.insert("q".into(), results(&[("a", f64::NAN)]));
    let err = evaluate(&qrels, &run, &[Metric::Ndcg(10)]).unwrap_err();
    assert!(matches!(err, TrainerError::InvalidArgument { name: "run", .. }));
}

#[test]
fn metric_names_follow_pytrec_eval() {
    assert_eq!(Metric::Ndcg(10).trec_name(), "ndcg_cut_10");
    assert_eq!(Metric::Map(100).trec_name(), "map_cut_100");
    assert_eq!(Metric::Recall(1).trec_name(), "recall_1");
    assert_eq!(Metric::Precision(5).trec_name(), "P_5");
    assert_eq!(Metric::Mrr(10).to_string(), "MRR@10");
    assert_eq!(Metric::beir_default().len(), 26);
}

// ---- TREC run files ---------------------------------------------------------------------

#[test]
fn run_file_round_trips_scores_and_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.trec");
    let mut run = Run::new();
    run.insert("q2".into(), results(&[("b", 0.1 + 0.2), ("a", 0.1 + 0.2), ("c", 7.0)]));
    run.insert("q1".into(), results(&[("x", f64::from(1.234_567_9_f32))]));
    write_run(&path, &run, "test").unwrap();

    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "q1 Q0 x 1 1.2345678806304932 test");
    assert_eq!(lines[1], "q2 Q0 c 1 7 test");
    assert_eq!(lines[2], "q2 Q0 b 2 0.30000000000000004 test");
    assert_eq!(lines[3], "q2 Q0 a 3 0.30000000000000004 test");

    let back = read_run(&path, ReadOptions::STRICT).unwrap().data;
    for (q, list) in &run {
        let mut want = list.clone();
        let mut got = back[q].clone();
        want.sort_by(|a, b| a.0.cmp(&b.0));
        got.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(want, got, "scores must survive bit for bit");
    }
    assert!(std::fs::read_dir(dir.path()).unwrap().count() == 1, "no temp file left");
}

#[test]
fn run_writer_rejects_unwritable_ids() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.trec");
    let mut run = Run::new();
    run.insert("q 1".into(), results(&[("a", 1.0)]));
    let err = write_run(&path, &run, "t").unwrap_err();
    assert!(matches!(err, TrainerError::InvalidArgument { name: "query id", .. }));
    assert!(!path.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "temp file removed");
    let err = write_run(&path, &Run::new(), "has space").unwrap_err();
    assert!(matches!(err, TrainerError::InvalidArgument { name: "tag", .. }));
}

#[test]
fn run_reader_errors() {
    let read = |text: &str| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.trec");
        std::fs::write(&path, text).unwrap();
        read_run(&path, ReadOptions::STRICT).map(|l| l.data)
    };
    let err = read("q1 Q0 d1 1 2.5\n").unwrap_err();
    assert!(matches!(err, TrainerError::ColumnCount { line: 1, found: 5, .. }), "{err}");
    let err = read("q1 Q0 d1 1 2.5 t\nq1 Q0 d2 x 2.5 t\n").unwrap_err();
    assert!(matches!(&err, TrainerError::BadNumber { line: 2, field, .. } if field == "rank"));
    let err = read("q1 Q0 d1 1 high t\n").unwrap_err();
    assert!(matches!(&err, TrainerError::BadNumber { field, .. } if field == "score"));
    for bad in ["nan", "inf", "-inf"] {
        let err = read(&format!("q1 Q0 d1 1 {bad} t\n")).unwrap_err();
        assert!(matches!(err, TrainerError::NonFiniteScore { line: 1, .. }), "{bad}");
    }
    let err = read("q1 Q0 d1 1 2 t\nq2 Q0 d1 1 2 t\nq1 Q0 d1 2 1 t\n").unwrap_err();
    assert!(matches!(err, TrainerError::DuplicateId { line: 3, first_line: 1, .. }), "{err}");
    // Tabs and repeated spaces separate columns too.
    let run = read("q1\tQ0\td1  1 2.5 t\n").unwrap();
    assert_eq!(run["q1"], results(&[("d1", 2.5)]));
}

// ---- properties -------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn measures_lie_in_unit_interval_and_ideal_ranking_scores_one(
        gs in prop::collection::vec(0i32..4, 1..30),
        scores in prop::collection::vec(-5.0f64..5.0, 30),
        k in 1usize..40,
    ) {
        let g: HashMap<String, i32> =
            gs.iter().enumerate().map(|(i, &g)| (format!("d{i}"), g)).collect();
        let judged = Judged::new(&g);
        prop_assume!(judged.num_relevant > 0);
        let run: Vec<(String, f64)> =
            (0..gs.len()).map(|i| (format!("d{i}"), scores[i])).collect();
        let ranking = rank("q", &run).unwrap();
        for m in [Metric::Ndcg(k), Metric::Mrr(k), Metric::Map(k), Metric::Recall(k),
                  Metric::Precision(k)] {
            let v = judged.score(m, &ranking);
            prop_assert!((0.0..=1.0 + 1e-12).contains(&v), "{m} = {v}");
        }
        // Scoring by grade ranks the judged documents ideally.
        let ideal: Vec<(String, f64)> =
            g.iter().map(|(d, &grade)| (d.clone(), f64::from(grade))).collect();
        let ideal_ranking = rank("q", &ideal).unwrap();
        prop_assert!((judged.score(Metric::Ndcg(k), &ideal_ranking) - 1.0).abs() < 1e-12);
        prop_assert_eq!(judged.score(Metric::Mrr(k), &ideal_ranking), 1.0);
        // Recall at the full depth sees every relevant document.
        prop_assert_eq!(judged.score(Metric::Recall(gs.len()), &ranking), 1.0);
    }
}
