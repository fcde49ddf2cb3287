//! The text paths (`embed`, `index build --corpus`, `search QUERY`, `eval
//! --model`) on a small random encoder written by the test as a model
//! file: outputs equal the library's on the same inputs, a document is
//! found by its own text, another model's queries are refused, and errors
//! are one line naming the file, line or flag.

mod common;

use std::path::Path;

use common::{p, read_npy, run, tempdir};
use edgecl_runtime::container::{self, Checksums};
use edgecl_runtime::encoder::EncoderConfig;
use edgecl_runtime::index::{Index, Rescore, SearchMode, SearchParams};
use edgecl_runtime::infer::{InferenceModel, Precision};
use edgecl_runtime::tokenizer::{Tokenizer, Vocab};
use edgecl_runtime::{init, ParamSet, Tensor};
use edgecl_trainer::data::beir::load_beir;
use edgecl_trainer::data::ReadOptions;
use edgecl_trainer::eval::{evaluate, Metric, Run};

const WORDS: [&str; 16] = [
    "graph", "vector", "index", "quantize", "search", "model", "token", "train", "batch", "kernel",
    "memory", "cache", "query", "score", "layer", "point",
];

fn tokenizer() -> Tokenizer {
    let mut tokens: Vec<String> =
        ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"].map(String::from).to_vec();
    tokens.extend(WORDS.iter().map(|w| w.to_string()));
    Tokenizer::new(Vocab::from_tokens(tokens, "test vocab").unwrap())
}

/// A micro encoder with seeded random weights, written to `path`.
fn write_model(path: &Path, seed: u64) -> InferenceModel {
    let config =
        EncoderConfig { max_seq_len: 32, ..EncoderConfig::micro(tokenizer().vocab().len()) };
    let mut ps = ParamSet::new();
    for (i, (name, dims)) in config.param_names().into_iter().enumerate() {
        let t = init::normal(&dims, 0.1, seed, i as u64).unwrap();
        let t = if name.contains("LayerNorm.weight") || name.contains("final_norm.weight") {
            let v = t.as_f32().unwrap().iter().map(|x| 1.0 + x).collect();
            Tensor::from_vec(&dims, v).unwrap()
        } else {
            t
        };
        ps.add(&name, t, true).unwrap();
    }
    let m = InferenceModel::from_params(&config, &ps, tokenizer(), Precision::F32).unwrap();
    m.write(path).unwrap();
    InferenceModel::open(path).unwrap()
}

/// Document `i`'s text: five words picked by a walk that differs per `i`.
fn doc_text(i: usize) -> String {
    (0..5).map(|j| WORDS[(i * 5 + j * (i % 7 + 1)) % WORDS.len()]).collect::<Vec<_>>().join(" ")
}

/// A BEIR folder of 30 documents; query q's text is document 3q's, and
/// judged relevant: 3q (grade 2) and 3q + 1 (grade 1).
fn make_beir(dir: &Path) {
    let mut corpus = String::new();
    for i in 0..30 {
        let line = serde_json::json!({ "_id": format!("d{i}"), "title": "", "text": doc_text(i) });
        corpus.push_str(&format!("{line}\n"));
    }
    std::fs::write(dir.join("corpus.jsonl"), corpus).unwrap();
    let mut queries = String::new();
    let mut qrels = String::from("query-id\tcorpus-id\tscore\n");
    for q in 0..8 {
        let line = serde_json::json!({ "_id": format!("q{q}"), "text": doc_text(3 * q) });
        queries.push_str(&format!("{line}\n"));
        qrels.push_str(&format!("q{q}\td{}\t2\nq{q}\td{}\t1\n", 3 * q, 3 * q + 1));
    }
    std::fs::write(dir.join("queries.jsonl"), queries).unwrap();
    std::fs::create_dir_all(dir.join("qrels")).unwrap();
    std::fs::write(dir.join("qrels/test.tsv"), qrels).unwrap();
}

#[test]
fn embed_writes_what_the_model_computes() {
    let dir = tempdir();
    let d = dir.path();
    let model = write_model(&d.join("m.ecl"), 1);
    let texts: Vec<String> = (0..10).map(doc_text).collect();
    std::fs::write(d.join("t.txt"), texts.join("\n")).unwrap();

    // A texts file to .npy, in batches of 3.
    run(&[
        "embed",
        "--model",
        &p(d, "m.ecl"),
        "--texts",
        &p(d, "t.txt"),
        "--out",
        &p(d, "e.npy"),
        "--batch",
        "3",
    ])
    .ok();
    let (rows, cols, got) = read_npy(&d.join("e.npy"));
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let want = model.embed(&refs).unwrap();
    assert_eq!((rows, cols), (10, model.dim()));
    let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(worst <= 1e-6, "largest difference {worst}");

    // Texts on the command line to JSONL, with the texts kept.
    run(&["embed", "--model", &p(d, "m.ecl"), "--out", &p(d, "e.jsonl"), &texts[0], &texts[1]])
        .ok();
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(d.join("e.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["text"], texts[1].as_str());
    let v: Vec<f32> =
        lines[1]["vector"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
    let w = &want[model.dim()..2 * model.dim()];
    assert!(v.iter().zip(w).all(|(a, b)| (a - b).abs() <= 1e-6));

    // A BEIR corpus: ids from _id.
    make_beir(d);
    run(&[
        "embed",
        "--model",
        &p(d, "m.ecl"),
        "--corpus",
        &p(d, "corpus.jsonl"),
        "--out",
        &p(d, "c.jsonl"),
    ])
    .ok();
    let first: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(d.join("c.jsonl")).unwrap().lines().next().unwrap(),
    )
    .unwrap();
    assert_eq!(first["id"], "d0");
}

#[test]
fn a_document_is_found_by_its_own_text() {
    let dir = tempdir();
    let d = dir.path();
    make_beir(d);
    write_model(&d.join("m.ecl"), 2);
    let index = p(d, "i.ecl");
    run(&[
        "index",
        "build",
        "--corpus",
        &p(d, "corpus.jsonl"),
        "--model",
        &p(d, "m.ecl"),
        "--out",
        &index,
        "--modes",
        "exact,int8,binary",
    ])
    .ok();

    // One query text: the document with that text first, with its snippet.
    for i in [0, 7, 29] {
        let r = run(&[
            "search",
            "--index",
            &index,
            "--model",
            &p(d, "m.ecl"),
            "--mode",
            "exact",
            "-k",
            "3",
            "--json",
            &doc_text(i),
        ])
        .json();
        let hit = &r["queries"][0]["hits"][0];
        assert_eq!(hit["id"], format!("d{i}"), "{r}");
        assert_eq!(hit["text"], doc_text(i).as_str());
        assert!(r["queries"][0]["embed_ms"].as_f64().is_some());
    }

    // A file of query texts, one per line, answered in the default mode.
    std::fs::write(d.join("q.txt"), format!("{}\n{}\n", doc_text(4), doc_text(5))).unwrap();
    let r = run(&[
        "search",
        "--index",
        &index,
        "--model",
        &p(d, "m.ecl"),
        "--queries",
        &p(d, "q.txt"),
        "--json",
    ])
    .json();
    assert_eq!(r["mode"], "binary");
    assert_eq!(r["queries"][0]["hits"][0]["id"], "d4");
    assert_eq!(r["queries"][1]["hits"][0]["id"], "d5");

    // Another model (other weights, same shape) is refused; so is a model
    // given to an index built from bare vectors of another dimension.
    write_model(&d.join("other.ecl"), 3);
    run(&["search", "--index", &index, "--model", &p(d, "other.ecl"), "graph"])
        .fails(1, &["other.ecl", "not the model"]);
    run(&["eval", "--beir", d.to_str().unwrap(), "--index", &index, "--model", &p(d, "other.ecl")])
        .fails(1, &["other.ecl", "not the model"]);
}

#[test]
fn eval_with_a_model_scores_as_the_library_does() {
    let dir = tempdir();
    let d = dir.path();
    make_beir(d);
    let model = write_model(&d.join("m.ecl"), 4);
    let index = p(d, "i.ecl");
    run(&[
        "index",
        "build",
        "--corpus",
        &p(d, "corpus.jsonl"),
        "--model",
        &p(d, "m.ecl"),
        "--out",
        &index,
    ])
    .ok();
    let r = run(&[
        "eval",
        "--beir",
        d.to_str().unwrap(),
        "--index",
        &index,
        "--model",
        &p(d, "m.ecl"),
        "--mode",
        "int8",
        "--rescore",
        "none",
        "--json",
    ])
    .json();

    // The same: embed the judged queries, search int8, evaluate.
    let ds = load_beir(d, "test", ReadOptions::STRICT).unwrap();
    let mapped = container::open(&index, Checksums::HeaderOnly).unwrap();
    let c = mapped.container();
    let idx = Index::open(&c).unwrap();
    let texts: Vec<&str> = ds.queries.iter().map(|q| q.text.as_str()).collect();
    let vecs = model.embed(&texts).unwrap();
    let params = SearchParams {
        k: 100,
        mode: SearchMode::Int8,
        rescore: Rescore::None,
        shortlist: 100,
        ef: 64,
        allow: None,
    };
    let mut want_run = Run::new();
    for (q, v) in ds.queries.iter().zip(vecs.chunks_exact(model.dim())) {
        let hits = idx.search(v, &params).unwrap();
        let docs = hits.iter().map(|h| (idx.id(h.doc).unwrap().to_string(), f64::from(h.score)));
        want_run.insert(q.id.clone(), docs.collect());
    }
    let metrics = [
        Metric::Ndcg(10),
        Metric::Mrr(10),
        Metric::Map(100),
        Metric::Recall(1),
        Metric::Recall(10),
        Metric::Recall(100),
    ];
    let want = evaluate(&ds.qrels, &want_run, &metrics).unwrap();
    let got: Vec<f64> =
        metrics.iter().map(|m| r["metrics"][m.to_string()].as_f64().unwrap()).collect();
    assert_eq!(got, want.mean);
    // Each query is a document's own text: found first nearly always.
    assert!(want.mean[1] > 0.8, "MRR@10 {:?}", want.mean);
}

#[test]
fn text_path_errors_name_the_file_line_or_flag() {
    let dir = tempdir();
    let d = dir.path();
    make_beir(d);
    write_model(&d.join("m.ecl"), 5);
    let m = p(d, "m.ecl");
    let out = p(d, "o.npy");

    // A missing model, a file that is not a model.
    run(&["embed", "--model", &p(d, "none.ecl"), "--out", &out, "x"]).fails(1, &["none.ecl"]);
    run(&["embed", "--model", &p(d, "corpus.jsonl"), "--out", &out, "graph"])
        .fails(1, &["corpus.jsonl"]);

    // An empty line in a texts file; an empty texts file.
    std::fs::write(d.join("t.txt"), "graph\n\nvector\n").unwrap();
    run(&["embed", "--model", &m, "--texts", &p(d, "t.txt"), "--out", &out])
        .fails(1, &["t.txt:2", "empty"]);
    std::fs::write(d.join("t.txt"), "").unwrap();
    run(&["embed", "--model", &m, "--texts", &p(d, "t.txt"), "--out", &out])
        .fails(1, &["t.txt", "no texts"]);

    // A malformed corpus line, for embed and for index build.
    std::fs::write(d.join("bad.jsonl"), "{\"_id\": \"a\", \"text\": \"graph\"}\n{\"_id\": 3}\n")
        .unwrap();
    run(&["embed", "--model", &m, "--corpus", &p(d, "bad.jsonl"), "--out", &out])
        .fails(1, &["bad.jsonl:2"]);
    run(&[
        "index",
        "build",
        "--corpus",
        &p(d, "bad.jsonl"),
        "--model",
        &m,
        "--out",
        &p(d, "i.ecl"),
    ])
    .fails(1, &["bad.jsonl:2"]);

    // Usage: --int8 on an f32 model file, a bad output extension, a query
    // text without a model, --corpus without --model, no input at all.
    run(&["embed", "--model", &m, "--int8", "--out", &out, "graph"]).fails(2, &["--int8"]);
    run(&["embed", "--model", &m, "--out", &p(d, "o.csv"), "graph"]).fails(2, &["--out"]);
    run(&["embed", "--model", &m, "--out", &out]).fails(2, &["--texts"]);
    run(&["index", "build", "--corpus", &p(d, "corpus.jsonl"), "--out", &p(d, "i.ecl")])
        .fails(2, &["--model"]);

    // Vectors of another dimension than the model's.
    common::write_npy(&d.join("v.npy"), &common::unit_vectors(20, 5, 1), 20, 5);
    run(&["index", "build", "--vectors", &p(d, "v.npy"), "--model", &m, "--out", &p(d, "i.ecl")])
        .fails(1, &["v.npy", "dimension 5"]);
    run(&["index", "build", "--vectors", &p(d, "v.npy"), "--out", &p(d, "i.ecl")]).ok();
    run(&["search", "--index", &p(d, "i.ecl"), "graph"]).fails(2, &["--model"]);
    run(&["search", "--index", &p(d, "i.ecl"), "--model", &m, "graph"])
        .fails(1, &["--model", "dimension"]);
}

#[test]
fn the_prompt_embeds_each_typed_query() {
    let dir = tempdir();
    let d = dir.path();
    make_beir(d);
    write_model(&d.join("m.ecl"), 6);
    let index = p(d, "i.ecl");
    run(&[
        "index",
        "build",
        "--corpus",
        &p(d, "corpus.jsonl"),
        "--model",
        &p(d, "m.ecl"),
        "--out",
        &index,
    ])
    .ok();
    let input = format!("{}\n{}\n\n", doc_text(11), doc_text(20));
    let args =
        ["search", "--index", &index, "--model", &p(d, "m.ecl"), "--mode", "exact", "-k", "1"];
    let Some(r) = common::run_on_terminal(&args, &input) else { return };
    let text = r.ok();
    let firsts: Vec<&str> = text.lines().filter(|l| l.trim_start().starts_with("1 ")).collect();
    assert_eq!(firsts.len(), 2, "{text}");
    assert!(firsts[0].contains("d11") && firsts[1].contains("d20"), "{text}");
}
