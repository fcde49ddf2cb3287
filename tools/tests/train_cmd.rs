//! `edgecl train` on a few synthetic pairs: a short run from a config file
//! leaves a model that `embed` reads, `--resume` continues a run cut
//! short, and config
//! and flag errors are one line naming the file, line, key or flag.

mod common;

use common::{p, read_npy, run, tempdir};

/// 60 query/passage pairs over made-up words.
fn write_pairs(path: &std::path::Path) {
    let syll = ["ba", "ko", "ri", "mu", "te", "lo", "si", "na"];
    let mut lines = Vec::new();
    for i in 0..60 {
        let a = format!("{}{}", syll[i % 8], syll[(i / 8) % 8]);
        let b = format!("{}{}", syll[(i + 3) % 8], syll[(i / 3) % 8]);
        let q = format!("{a} {b}");
        let d = format!("the {a} with {b} near");
        lines.push(serde_json::json!({ "query": q, "positive": d }).to_string());
    }
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

/// A small from-scratch config: a trained 200-token vocabulary, short
/// sequences, batches of 8, no evaluation or checkpoints unless asked.
fn write_config(path: &std::path::Path, data: &str, out: &str, extra: &str) {
    let text = format!(
        "[model]\npreset = \"micro\"\ntrain_vocab = 200\nmax_seq_len = 16\n\n\
         [data]\ntrain = \"{data}\"\ndev_fraction = 0.1\n\n\
         [optimizer]\nlr = 1e-3\nwarmup_steps = 2\n\n\
         [train]\nbatch_size = 8\nmax_steps = 4\neval_every = 0\nlog_every = 2\n\
         threads = 1\noutput_dir = \"{out}\"\n{extra}"
    );
    std::fs::write(path, text).unwrap();
}

#[test]
fn a_short_run_leaves_a_model_that_embed_reads() {
    let dir = tempdir();
    let d = dir.path();
    write_pairs(&d.join("pairs.jsonl"));
    let out = p(d, "run");
    write_config(&d.join("run.toml"), &p(d, "pairs.jsonl"), &out, "checkpoint_every = 2\n");
    let text = run(&["train", "--config", &p(d, "run.toml"), "--quiet"]).ok();
    assert!(text.contains("trained 4 steps"), "{text}");
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("run/metrics.json")).unwrap())
            .unwrap();
    assert_eq!(metrics["steps"], 4);

    // The model folder embeds text.
    let model = p(d, "run/model");
    run(&["embed", "--model", &model, "--out", &p(d, "e.npy"), "the bako with teri near"]).ok();
    let (rows, cols, v) = read_npy(&d.join("e.npy"));
    assert_eq!(rows, 1);
    let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!(cols > 0 && (norm - 1.0).abs() < 1e-3, "dim {cols}, norm {norm}");

    // As if the run had died after step 2: drop the step-4 checkpoint and
    // the final model; --resume continues from step 2 and finishes.
    std::fs::remove_dir_all(d.join("run/checkpoints/step-00000004")).unwrap();
    std::fs::write(d.join("run/checkpoints/latest"), "step-00000002\n").unwrap();
    std::fs::remove_dir_all(d.join("run/model")).unwrap();
    let r = run(&["train", "--config", &p(d, "run.toml"), "--resume"]);
    assert!(r.stderr.contains("resuming from") && r.stderr.contains("(step 2)"), "{}", r.stderr);
    let text = r.ok();
    assert!(text.contains("trained 4 steps"), "{text}");
    assert!(d.join("run/model").is_dir());
}

#[test]
fn train_errors_name_the_file_key_or_flag() {
    let dir = tempdir();
    let d = dir.path();
    write_pairs(&d.join("pairs.jsonl"));
    let out = p(d, "run");

    // A key the trainer does not know, with its line.
    write_config(&d.join("bad.toml"), &p(d, "pairs.jsonl"), &out, "learning_rate = 3\n");
    run(&["train", "--config", &p(d, "bad.toml")]).fails(1, &["bad.toml:", "learning_rate"]);

    // A missing config file; missing training data.
    run(&["train", "--config", &p(d, "none.toml")]).fails(1, &["none.toml"]);
    write_config(&d.join("run.toml"), &p(d, "absent.jsonl"), &out, "");
    run(&["train", "--config", &p(d, "run.toml"), "--quiet"]).fails(1, &["absent.jsonl"]);

    // Usage: both or neither of --config and --preset; a preset without data;
    // an unknown preset; a bad thread count.
    run(&["train", "--config", &p(d, "run.toml"), "--preset", "micro"]).fails(2, &["--preset"]);
    run(&["train"]).fails(2, &["--config|--preset"]);
    run(&["train", "--preset", "micro"]).fails(2, &["--data"]);
    run(&["train", "--preset", "huge"]).fails(2, &["--preset"]);
    run(&["train", "--preset", "micro", "--threads", "many"]).fails(2, &["--threads"]);
}
