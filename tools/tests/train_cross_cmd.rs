//! `edgecl train-cross` on a made-up reranking task over a tiny BERT folder
//! written by the test: a short run leaves a cross-encoder folder that the
//! trainer's scorer loads and that puts positives first, and errors are
//! one line naming the flag or the file and line.

mod common;

use std::path::Path;

use common::{p, run, tempdir};
use edgecl_runtime::encoder::{save_pretrained, Encoder, EncoderConfig, NormPlacement, Pooling};
use edgecl_runtime::tokenizer::Vocab;
use edgecl_runtime::Runtime;
use edgecl_trainer::teacher::{CrossEncoderScorer, Scorer};

const WORDS: [&str; 14] = [
    "alpha", "beta", "gamma", "delta", "stone", "river", "tree", "cloud", "gold", "lead", "red",
    "blue", "green", "small",
];

/// A one-layer, 16-wide BERT with a 19-token vocabulary.
fn write_encoder(dir: &Path) {
    let mut tokens = vec!["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
    tokens.extend(WORDS);
    let vocab = Vocab::from_tokens(&tokens, "test vocabulary").unwrap();
    let config = EncoderConfig {
        vocab_size: tokens.len(),
        hidden_size: 16,
        num_layers: 1,
        num_heads: 2,
        intermediate_size: 32,
        max_position_embeddings: 32,
        type_vocab_size: 2,
        layer_norm_eps: 1e-12,
        norm: NormPlacement::Post,
        pooling: Pooling::Mean,
        projection_dim: None,
        normalize: true,
        max_seq_len: 32,
    };
    let params = Encoder::new(config.clone()).unwrap().init_params(3).unwrap();
    save_pretrained(dir, &config, &params, &vocab).unwrap();
}

/// Twelve queries; the positive says "gold", the three negatives "lead".
fn examples() -> Vec<(String, String, Vec<String>)> {
    let fill = ["stone river", "tree cloud", "red blue", "green small", "river tree"];
    let mut out = Vec::new();
    for (i, q) in ["alpha", "beta", "gamma", "delta"].iter().enumerate() {
        for j in 0..3 {
            let f = |o: usize| fill[(i + j + o) % fill.len()];
            let negatives = (0..3).map(|n| format!("{} lead {}", f(n + 2), f(n))).collect();
            out.push((format!("{q} {}", f(0)), format!("{} gold {}", f(1), f(2)), negatives));
        }
    }
    out
}

fn write_examples(path: &Path) {
    let lines: Vec<String> = examples()
        .iter()
        .map(|(q, pos, neg)| {
            serde_json::json!({ "query": q, "positive": pos, "negatives": neg }).to_string()
        })
        .collect();
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

/// Flags of a short run on the tiny task, with `over` replacing values or
/// adding flags.
fn short(over: &[(&str, &str)]) -> Vec<String> {
    let base = [
        ("--negatives", "3"),
        ("--max-len", "16"),
        ("--max-query-tokens", "6"),
        ("--batch-tokens", "192"),
        ("--max-steps", "40"),
        ("--lr", "3e-3"),
        ("--warmup", "4"),
        ("--dropout", "0"),
        ("--threads", "1"),
        ("--seed", "7"),
    ];
    let mut flags = Vec::new();
    for (f, v) in base {
        let v = over.iter().find(|o| o.0 == f).map_or(v, |o| o.1);
        flags.extend([f.to_string(), v.to_string()]);
    }
    for &(f, v) in over.iter().filter(|o| base.iter().all(|b| b.0 != o.0)) {
        flags.extend([f.to_string(), v.to_string()]);
    }
    flags
}

/// `train-cross` with the tiny task's files under `d` and `flags`.
fn train_cross(d: &Path, flags: &[String]) -> common::Run {
    let (data, init, out) = (p(d, "train.jsonl"), p(d, "bert"), p(d, "ce"));
    let mut args = vec!["train-cross", "--data", &data, "--init-from", &init, "--out", &out];
    args.extend(flags.iter().map(String::as_str));
    run(&args)
}

#[test]
fn a_short_run_leaves_a_teacher_that_ranks_positives_first() {
    let dir = tempdir();
    let d = dir.path();
    write_encoder(&d.join("bert"));
    write_examples(&d.join("train.jsonl"));
    let mut flags = short(&[]);
    flags.push("--quiet".into());
    let text = train_cross(d, &flags).ok();
    assert!(text.contains("trained 40 steps on 12 queries (0 left out"), "{text}");

    // The folder is a teacher: the scorer loads it and orders every group.
    let scorer = CrossEncoderScorer::from_dir(&d.join("ce"), Runtime::new(1).unwrap()).unwrap();
    for (q, pos, neg) in examples() {
        let docs: Vec<&str> =
            std::iter::once(pos.as_str()).chain(neg.iter().map(String::as_str)).collect();
        let s = scorer.score(&q, &docs).unwrap();
        assert!(s[1..].iter().all(|&n| n < s[0]), "{q}: {s:?}");
    }
}

#[test]
fn train_cross_errors_name_the_flag_or_the_file() {
    let dir = tempdir();
    let d = dir.path();
    write_encoder(&d.join("bert"));
    write_examples(&d.join("train.jsonl"));
    let (init, out) = (p(d, "bert"), p(d, "ce"));

    // A setting no run can use names its flag (usage, exit 2).
    for (flag, value) in
        [("--negatives", "0"), ("--max-query-tokens", "20"), ("--batch-tokens", "10")]
    {
        train_cross(d, &short(&[(flag, value)])).fails(2, &[flag]);
    }
    train_cross(d, &short(&[("--loss", "hinge")])).fails(2, &["--loss"]);
    // More negatives than any example has: nothing to train on (exit 1).
    let more = short(&[("--negatives", "4"), ("--batch-tokens", "80")]);
    train_cross(d, &more).fails(1, &["examples", "4 hard negatives"]);

    // A broken line names the file and line.
    std::fs::write(d.join("bad.jsonl"), "{\"query\": \"alpha\", \"positive\": \"gold\"}\n{oops\n")
        .unwrap();
    let bad = p(d, "bad.jsonl");
    let args = ["train-cross", "--data", &bad, "--init-from", &init, "--out", &out];
    run(&args).fails(1, &["bad.jsonl:2"]);
    // A missing model folder names it.
    let (data, nowhere) = (p(d, "train.jsonl"), p(d, "nowhere"));
    let args = ["train-cross", "--data", &data, "--init-from", &nowhere, "--out", &out];
    run(&args).fails(1, &["nowhere"]);
    assert!(!d.join("ce").exists(), "no output folder after a failure");

    // --help lists the command's flags.
    let help = run(&["train-cross", "--help"]).ok();
    for flag in ["--data", "--init-from", "--out", "--loss", "--negatives", "--max-steps"] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
    assert!(run(&["--help"]).ok().contains("train-cross"));
}
