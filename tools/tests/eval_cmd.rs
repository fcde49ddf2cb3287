//! `edgecl eval` on a BEIR folder made here: its numbers must equal the
//! trainer's `evaluate` on the same qrels and run, for a given run file,
//! for BM25 and for index searches; its errors name the file and line.

mod common;

use std::collections::HashMap;
use std::path::Path;

use common::{p, run, tempdir, unit_vectors, write_jsonl};
use edgecl_runtime::container::{self, Checksums};
use edgecl_runtime::index::{Index, Rescore, SearchMode, SearchParams};
use edgecl_trainer::bm25::{Bm25Index, Bm25Params};
use edgecl_trainer::data::beir::load_beir;
use edgecl_trainer::data::ReadOptions;
use edgecl_trainer::eval::{evaluate, trec, Metric, Run};
use serde_json::Value;

const WORDS: [&str; 12] = [
    "graph", "vector", "index", "quantize", "search", "model", "token", "train", "batch", "kernel",
    "memory", "cache",
];

/// A small collection: 40 documents of word mixes, 6 queries, graded
/// judgments (one query has only a zero grade, so it is left out).
fn make_beir(dir: &Path) {
    let mut corpus = String::new();
    for i in 0..40 {
        let text: Vec<&str> =
            (0..6).map(|j| WORDS[(i * 7 + j * (i % 5 + 1)) % WORDS.len()]).collect();
        let title = if i % 3 == 0 { WORDS[i % WORDS.len()] } else { "" };
        let line =
            serde_json::json!({ "_id": format!("d{i}"), "title": title, "text": text.join(" ") });
        corpus.push_str(&format!("{line}\n"));
    }
    std::fs::write(dir.join("corpus.jsonl"), corpus).unwrap();
    let mut queries = String::new();
    for q in 0..6 {
        let text = format!("{} {}", WORDS[q], WORDS[(q * 5 + 1) % WORDS.len()]);
        queries.push_str(&format!(
            "{}\n",
            serde_json::json!({ "_id": format!("q{q}"), "text": text })
        ));
    }
    std::fs::write(dir.join("queries.jsonl"), queries).unwrap();
    std::fs::create_dir_all(dir.join("qrels")).unwrap();
    let mut qrels = String::from("query-id\tcorpus-id\tscore\n");
    for q in 0..5 {
        for (k, grade) in [(0, 2), (3, 1), (11, 1), (17, 0)] {
            qrels.push_str(&format!("q{q}\td{}\t{grade}\n", (q * 4 + k) % 40));
        }
    }
    qrels.push_str("q5\td1\t0\n");
    std::fs::write(dir.join("qrels/test.tsv"), qrels).unwrap();
}

fn default_metrics() -> Vec<Metric> {
    vec![
        Metric::Ndcg(10),
        Metric::Mrr(10),
        Metric::Map(100),
        Metric::Recall(1),
        Metric::Recall(10),
        Metric::Recall(100),
    ]
}

/// The CLI's `metrics` object, in the order of `metrics`.
fn cli_values(r: &Value, metrics: &[Metric]) -> Vec<f64> {
    metrics.iter().map(|m| r["metrics"][m.to_string()].as_f64().unwrap()).collect()
}

#[test]
fn a_run_file_scores_as_the_trainer_scores_it() {
    let dir = tempdir();
    let d = dir.path();
    make_beir(d);
    // A run with ties, unjudged documents and one judged query missing.
    let mut run_text = String::new();
    for q in 0..4 {
        for r in 0..15 {
            let score = 1.0 - (r / 2) as f64 * 0.1;
            run_text.push_str(&format!("q{q} Q0 d{} {} {score} t\n", (q * 3 + r * 3) % 40, r + 1));
        }
    }
    let run_path = d.join("r.trec");
    std::fs::write(&run_path, run_text).unwrap();
    let beir = d.to_str().unwrap();
    let r = run(&["eval", "--beir", beir, "--run", run_path.to_str().unwrap(), "--json"]).json();

    let ds = load_beir(d, "test", ReadOptions::STRICT).unwrap();
    let trec_run = trec::read_run(&run_path, ReadOptions::STRICT).unwrap().data;
    let metrics = default_metrics();
    let want = evaluate(&ds.qrels, &trec_run, &metrics).unwrap();
    assert_eq!(cli_values(&r, &metrics), want.mean);
    assert_eq!(r["queries"], 5);
    assert_eq!(r["skipped_no_relevant"], 1);
    assert_eq!(r["missing_from_run"], 1);
    assert!(want.mean[0] > 0.0, "the run must find something: {:?}", want.mean);

    // Other measures, in any case.
    let r = run(&[
        "eval",
        "--beir",
        beir,
        "--run",
        run_path.to_str().unwrap(),
        "--metrics",
        "P@5,NDCG@3,map@10",
        "--json",
    ])
    .json();
    let metrics = [Metric::Precision(5), Metric::Ndcg(3), Metric::Map(10)];
    assert_eq!(cli_values(&r, &metrics), evaluate(&ds.qrels, &trec_run, &metrics).unwrap().mean);

    // The table: one aligned row per measure.
    let text = run(&["eval", "--beir", beir, "--run", run_path.to_str().unwrap()]).ok();
    let rows: Vec<&str> = text.lines().filter(|l| l.contains('@')).collect();
    assert_eq!(rows.len(), 6, "{text}");
    let col = rows[0].rfind(' ').unwrap();
    assert!(rows.iter().all(|r| r.rfind(' ') == Some(col)), "{text}");
    assert!(text.contains(&format!("{:.4}", want.mean[0])), "{text}");
}

#[test]
fn bm25_scores_as_the_trainer_scores_it_and_writes_its_run() {
    let dir = tempdir();
    let d = dir.path();
    make_beir(d);
    let out_run = d.join("bm25.trec");
    let r = run(&[
        "eval",
        "--beir",
        d.to_str().unwrap(),
        "--bm25",
        "--out-run",
        out_run.to_str().unwrap(),
        "--json",
    ])
    .json();
    assert_eq!(r["source"]["kind"], "bm25");

    // The trainer's BM25 (k1 0.9, b 0.4) over the same collection.
    let ds = load_beir(d, "test", ReadOptions::STRICT).unwrap();
    let index = Bm25Index::from_documents(&ds.corpus, Bm25Params::default()).unwrap();
    let want_run: Run = ds
        .queries
        .iter()
        .map(|q| {
            let hits = index.search(&q.text, 100);
            let docs = hits.iter().map(|h| (index.doc_id(h.doc).to_string(), f64::from(h.score)));
            (q.id.clone(), docs.collect())
        })
        .collect();
    let metrics = default_metrics();
    let want = evaluate(&ds.qrels, &want_run, &metrics).unwrap();
    assert_eq!(cli_values(&r, &metrics), want.mean);

    // The written run reads back to the same lists.
    let written = trec::read_run(&out_run, ReadOptions::STRICT).unwrap().data;
    let sorted = |run: &Run| {
        let mut v: Vec<(String, Vec<(String, f64)>)> = run
            .iter()
            .map(|(q, docs)| {
                let mut docs = docs.clone();
                docs.sort_by(|a, b| a.0.cmp(&b.0));
                (q.clone(), docs)
            })
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    assert_eq!(sorted(&written), sorted(&want_run));
}

#[test]
fn index_searches_score_as_the_trainer_scores_them() {
    let dir = tempdir();
    let d = dir.path();
    make_beir(d);
    let dim = 24;
    let docs = unit_vectors(40, dim, 11);
    let doc_ids: Vec<String> = (0..40).map(|i| format!("d{i}")).collect();
    write_jsonl(&d.join("docs.jsonl"), &doc_ids, &docs, dim, false);
    let index = p(d, "docs.ecl");
    run(&["index", "build", "--vectors", &p(d, "docs.jsonl"), "--out", &index]).ok();

    // Queries near their first judged document, so the metrics are not 0.
    let mut queries = Vec::new();
    let qids: Vec<String> = (0..6).map(|q| format!("q{q}")).collect();
    let noise = unit_vectors(6, dim, 12);
    for q in 0..6 {
        let target = (q * 4) % 40;
        let row: Vec<f32> =
            (0..dim).map(|j| docs[target * dim + j] + 0.8 * noise[q * dim + j]).collect();
        queries.extend(row);
    }
    write_jsonl(&d.join("q.jsonl"), &qids, &queries, dim, false);

    for (mode, rescore, m, r) in [
        ("exact", "none", SearchMode::Exact, Rescore::None),
        ("binary", "int8", SearchMode::Binary, Rescore::Int8),
    ] {
        let out = run(&[
            "eval",
            "--beir",
            d.to_str().unwrap(),
            "--index",
            &index,
            "--query-vectors",
            &p(d, "q.jsonl"),
            "--mode",
            mode,
            "--rescore",
            rescore,
            "--shortlist",
            "20",
            "--json",
        ])
        .json();
        assert_eq!(out["source"]["mode"], mode);

        // The same searches through the library.
        let mapped = container::open(&index, Checksums::HeaderOnly).unwrap();
        let c = mapped.container();
        let idx = Index::open(&c).unwrap();
        let params =
            SearchParams { k: 100, mode: m, rescore: r, shortlist: 20, ef: 64, allow: None };
        let ds = load_beir(d, "test", ReadOptions::STRICT).unwrap();
        let mut want_run: Run = HashMap::new();
        for (q, v) in qids.iter().zip(queries.chunks_exact(dim)) {
            if !ds.qrels.contains_key(q) {
                continue;
            }
            let hits = idx.search(v, &params).unwrap();
            let docs =
                hits.iter().map(|h| (idx.id(h.doc).unwrap().to_string(), f64::from(h.score)));
            want_run.insert(q.clone(), docs.collect());
        }
        let metrics = default_metrics();
        let want = evaluate(&ds.qrels, &want_run, &metrics).unwrap();
        assert_eq!(cli_values(&out, &metrics), want.mean, "{mode}");
        assert!(want.mean[0] > 0.2, "{mode}: {:?}", want.mean);
    }
}

#[test]
fn eval_errors_name_the_file_line_or_flag() {
    let dir = tempdir();
    let d = dir.path();
    make_beir(d);
    let beir = d.to_str().unwrap();

    // No such folder.
    run(&["eval", "--beir", &p(d, "nope"), "--bm25"]).fails(1, &["nope", "not a directory"]);

    // A malformed run line.
    let r = d.join("r.trec");
    std::fs::write(&r, "q0 Q0 d1 1 0.5 t\nq0 Q0 d2 2 x t\n").unwrap();
    run(&["eval", "--beir", beir, "--run", r.to_str().unwrap()]).fails(1, &["r.trec:2", "score"]);

    // A malformed qrels line.
    std::fs::write(d.join("qrels/test.tsv"), "query-id\tcorpus-id\tscore\nq0\td1\n").unwrap();
    run(&["eval", "--beir", beir, "--bm25"]).fails(1, &["test.tsv:2"]);

    // A malformed corpus line.
    make_beir(d);
    let corpus = d.join("corpus.jsonl");
    let mut text = std::fs::read_to_string(&corpus).unwrap();
    text.push_str("{\"_id\": \"dx\", \"text\": 5}\n");
    std::fs::write(&corpus, text).unwrap();
    run(&["eval", "--beir", beir, "--bm25"]).fails(1, &["corpus.jsonl:41", "text"]);

    // A missing split.
    make_beir(d);
    run(&["eval", "--beir", beir, "--bm25", "--split", "dev"]).fails(1, &["dev.tsv"]);

    // Usage: an unknown measure, a zero cutoff, two sources, no source,
    // an index without query vectors.
    run(&["eval", "--beir", beir, "--bm25", "--metrics", "ndcg@10,foo@3"])
        .fails(2, &["--metrics", "foo"]);
    run(&["eval", "--beir", beir, "--bm25", "--metrics", "recall@0"]).fails(2, &["--metrics"]);
    run(&["eval", "--beir", beir, "--bm25", "--run", r.to_str().unwrap()]).fails(2, &["--bm25"]);
    run(&["eval", "--beir", beir]).fails(2, &["--run|--bm25|--index"]);
    run(&["eval", "--beir", beir, "--index", "x.ecl"]).fails(2, &["--query-vectors"]);
}
