//! The training loop and its parts on generated data: configuration errors
//! name their key, checkpoints survive a failed write, held-out dev sets do
//! not leak, dev scoring is exact, a micro model learns a synthetic
//! retrieval task, and a stopped and resumed run ends bit-identical to an
//! uninterrupted one.

use std::collections::HashSet;
use std::path::Path;

use edgecl_trainer::data::examples::TrainingExample;
use edgecl_trainer::embedder::Embedder;
use edgecl_trainer::error::Result;
use edgecl_trainer::rng::Rng;
use edgecl_trainer::runtime::encoder::load_pretrained;
use edgecl_trainer::runtime::infer::{InferenceModel, Precision};
use edgecl_trainer::runtime::optim::{AdamW, AdamWConfig, Optimizer};
use edgecl_trainer::runtime::{init, weights, ParamSet};
use edgecl_trainer::train::checkpoint::{self, TrainState, STATE_FORMAT};
use edgecl_trainer::train::data::hold_out;
use edgecl_trainer::train::eval::{evaluate_dev, DevSet};
use edgecl_trainer::train::{train, NoHooks, TrainConfig, TrainHooks};

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
        bank_rows_pushed: 0,
        mining: Default::default(),
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
    let written = checkpoint::write(&root, &ps, &opt, &vocab, &[], &state(4), 2).unwrap();
    assert_eq!(checkpoint::latest(&root).unwrap().as_deref(), Some(written.as_path()));

    // A write that cannot create its temp folder fails and leaves step 4.
    std::fs::write(root.join("step-00000008.tmp"), b"in the way").unwrap();
    let e = checkpoint::write(&root, &small_params(9), &opt, &vocab, &[], &state(8), 2);
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
        checkpoint::write(&root, &ps, &opt, &vocab, &[], &state(s), 2).unwrap();
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
// ---- the loop on a synthetic task -------------------------------------------------------

/// Made-up words from a seeded syllable generator.
fn words(rng: &mut Rng, n: usize, onsets: &[&str], vowels: &[&str]) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    while out.len() < n {
        let syl = |rng: &mut Rng| {
            format!("{}{}", onsets[rng.below(onsets.len())], vowels[rng.below(vowels.len())])
        };
        let w = format!("{}{}{}", syl(rng), syl(rng), syl(rng));
        if seen.insert(w.clone()) {
            out.push(w);
        }
    }
    out
}

/// A retrieval task that needs learning: `concepts` ideas, each with a
/// query word and an unrelated document word; a query names two ideas, its
/// passage uses the document words of the same two with filler. The
/// untrained model has no way to link the two vocabularies.
fn synthetic_task(path: &Path, concepts: usize, seed: u64) -> usize {
    synthetic_task_with_negatives(path, concepts, seed, false)
}

/// [`synthetic_task`], optionally giving each pair one hard negative: the
/// passage of a pair sharing its first idea.
fn synthetic_task_with_negatives(path: &Path, concepts: usize, seed: u64, negs: bool) -> usize {
    let mut rng = Rng::new(seed, 1);
    let qwords = words(&mut rng, concepts, &["b", "d", "g", "k", "z"], &["a", "o", "u"]);
    let dwords = words(&mut rng, concepts, &["l", "m", "n", "r", "s"], &["e", "i", "y"]);
    let filler = ["the", "of", "and", "with", "a", "near"];
    let mut lines = Vec::new();
    for a in 0..concepts {
        for b in a + 1..concepts {
            let f = |rng: &mut Rng| filler[rng.below(filler.len())];
            let q = format!("{} {}", qwords[a], qwords[b]);
            let d = format!(
                "{} {} {} {} {}",
                f(&mut rng),
                dwords[a],
                f(&mut rng),
                dwords[b],
                f(&mut rng)
            );
            let mut line = serde_json::json!({"query": q, "positive": d});
            if negs {
                let c = (b + 1 + rng.below(concepts - 2)) % concepts;
                let c = if c == a { (c + 1) % concepts } else { c };
                let n = format!("{} {} {}", dwords[a], f(&mut rng), dwords[c]);
                line["negatives"] = serde_json::json!([n]);
            }
            lines.push(line.to_string());
        }
    }
    rng.shuffle(&mut lines);
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
    lines.len()
}

/// A micro config over `data` writing to `out`: small and fast.
fn micro_config(data: &Path, out: &Path, max_steps: u64) -> TrainConfig {
    let mut cfg = TrainConfig::preset("micro").unwrap();
    cfg.model.train_vocab = 400;
    cfg.model.max_seq_len = 16;
    cfg.model.dropout = 0.1;
    cfg.data.train = data.display().to_string();
    cfg.data.dev_fraction = 0.1;
    cfg.optimizer.lr = 1e-3;
    cfg.optimizer.warmup_steps = 10;
    cfg.train.batch_size = 32;
    cfg.train.max_steps = max_steps;
    cfg.train.eval_every = 0;
    cfg.train.log_every = 2;
    cfg.train.checkpoint_every = 0;
    cfg.train.threads = 2;
    cfg.train.output_dir = out.display().to_string();
    cfg
}

/// Stops the run after a given step, as a kill would.
struct StopAt(u64);

impl TrainHooks for StopAt {
    fn should_stop(&mut self, step: u64) -> bool {
        step >= self.0
    }
}

fn model_bits(out: &Path) -> Vec<(String, Vec<u32>)> {
    weights::load(&out.join("model/model.safetensors"))
        .unwrap()
        .into_iter()
        .map(|(n, t)| (n, t.as_f32().unwrap().iter().map(|x| x.to_bits()).collect()))
        .collect()
}

#[test]
fn micro_model_learns_the_synthetic_task() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("pairs.jsonl");
    let n = synthetic_task(&data, 30, 11);
    assert_eq!(n, 435);
    let mut cfg = micro_config(&data, &dir.path().join("run"), 120);
    cfg.train.eval_every = 60;
    let report = train(&cfg, &mut NoHooks).unwrap();
    assert_eq!(report.steps, 120);
    assert!(!report.stopped);

    // Step 0 is the untrained model; the last evaluation is the final one.
    let evals: Vec<(u64, f64)> =
        report.evals.iter().map(|e| (e.step, e.metrics.ndcg_at_10)).collect();
    println!("dev nDCG@10 by step: {evals:?}");
    assert_eq!(evals.iter().map(|e| e.0).collect::<Vec<_>>(), [0, 60, 120]);
    let (untrained, trained) = (evals[0].1, evals[2].1);
    assert!(untrained < 0.2, "untrained model already scores {untrained}");
    assert!(trained > untrained + 0.3, "trained {trained} vs untrained {untrained}");
    assert_eq!(report.final_dev.as_ref().unwrap().ndcg_at_10, trained);
    assert!(report.best_dev.as_ref().unwrap().metrics.ndcg_at_10 >= trained);

    // The outputs: a loadable model, metrics, one log line per 2 steps, curves.
    let out = &report.output_dir;
    let p = load_pretrained(&out.join("model")).unwrap();
    assert_eq!(p.params.numel(), report.params);
    let m = InferenceModel::from_hf_dir(out.join("model"), Precision::F32).unwrap();
    assert_eq!(m.embed(&["bazoku"]).unwrap().len(), m.dim());
    let metrics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(metrics["steps"], 120);
    assert!(metrics["peak_rss_bytes"].as_u64().unwrap() > 0);
    let log = std::fs::read_to_string(out.join("log.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 60);
    let first: serde_json::Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    assert_eq!(first["step"], 2);
    let svg = std::fs::read_to_string(out.join("curves.svg")).unwrap();
    assert_eq!(svg.matches("<polyline").count(), 2);
    assert!(out.join("best/model.safetensors").exists());
}

#[test]
fn stopped_and_resumed_runs_end_bit_identical() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("pairs.jsonl");
    synthetic_task(&data, 16, 5);
    let steps = 8;

    // One uninterrupted run.
    let mut whole = micro_config(&data, &dir.path().join("whole"), steps);
    whole.train.checkpoint_every = 4;
    whole.train.eval_every = 4;
    let a = train(&whole, &mut NoHooks).unwrap();

    // Stopped right after the step-4 checkpoint, then resumed.
    let mut half = whole.clone();
    half.train.output_dir = dir.path().join("half").display().to_string();
    let r = train(&half, &mut StopAt(4)).unwrap();
    assert!(r.stopped && r.steps == 4);
    assert!(!Path::new(&half.train.output_dir).join("model").exists());
    half.train.resume = true;
    let b = train(&half, &mut NoHooks).unwrap();

    // Killed at step 6, between checkpoints: resumes from step 4 and redoes
    // 5 and 6.
    let mut killed = whole.clone();
    killed.train.output_dir = dir.path().join("killed").display().to_string();
    let r = train(&killed, &mut StopAt(6)).unwrap();
    assert_eq!(r.steps, 6);
    killed.train.resume = true;
    let c = train(&killed, &mut NoHooks).unwrap();

    assert_eq!(b.steps, steps);
    assert_eq!(c.steps, steps);
    let bits = model_bits(&a.output_dir);
    assert!(!bits.is_empty());
    assert!(bits == model_bits(&b.output_dir), "stop at 4 + resume differs");
    assert!(bits == model_bits(&c.output_dir), "kill at 6 + resume differs");
    // The logs agree too (the killed run's steps 5-6 were rewritten).
    let log = |o: &Path| {
        std::fs::read_to_string(o.join("log.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["loss"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(log(&a.output_dir), log(&c.output_dir));
    assert_eq!(log(&a.output_dir).len(), 4);
    assert_eq!(
        a.evals.iter().map(|e| e.metrics.ndcg_at_10).collect::<Vec<_>>(),
        c.evals.iter().map(|e| e.metrics.ndcg_at_10).collect::<Vec<_>>()
    );

    // Resuming under a different optimizer is refused, naming the key.
    let mut other = killed.clone();
    other.optimizer.lr = 2e-3;
    let e = train(&other, &mut NoHooks).unwrap_err().to_string();
    assert!(e.contains("train.resume"), "{e}");
}

#[test]
fn same_seed_same_bits_at_other_thread_counts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("pairs.jsonl");
    synthetic_task(&data, 12, 3);
    let mut one = micro_config(&data, &dir.path().join("t1"), 3);
    one.train.threads = 1;
    one.data.dev_fraction = 0.0;
    let mut three = one.clone();
    three.train.threads = 3;
    three.train.output_dir = dir.path().join("t3").display().to_string();
    let a = train(&one, &mut NoHooks).unwrap();
    let b = train(&three, &mut NoHooks).unwrap();
    assert!(model_bits(&a.output_dir) == model_bits(&b.output_dir));
}

#[test]
fn every_loss_option_resumes_bit_identical() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("pairs.jsonl");
    synthetic_task_with_negatives(&data, 14, 9, true);
    let mut whole = micro_config(&data, &dir.path().join("whole"), 7);
    whole.train.batch_size = 16;
    whole.train.checkpoint_every = 3;
    whole.loss.hard_negatives = 1;
    whole.loss.memory_bank = 40;
    whole.loss.gradcache_minibatch = 8;
    whole.loss.learn_temperature = true;
    whole.loss.symmetric = true;
    whole.loss.margin = 0.1;
    whole.loss.hardness = 0.5;
    let a = train(&whole, &mut NoHooks).unwrap();

    // Killed at step 5 (bank full and wrapped by then), resumed from 3.
    let mut killed = whole.clone();
    killed.train.output_dir = dir.path().join("killed").display().to_string();
    assert!(train(&killed, &mut StopAt(5)).unwrap().stopped);
    killed.train.resume = true;
    let c = train(&killed, &mut NoHooks).unwrap();
    assert!(model_bits(&a.output_dir) == model_bits(&c.output_dir));

    // A bank smaller than one step's documents is refused, naming the key.
    let mut small = whole.clone();
    small.loss.memory_bank = 8;
    let e = train(&small, &mut NoHooks).unwrap_err().to_string();
    assert!(e.contains("loss.memory_bank"), "{e}");
}

#[test]
fn augmented_runs_differ_from_plain_ones_and_resume_bit_identical() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("pairs.jsonl");
    synthetic_task(&data, 14, 11);
    let mut plain = micro_config(&data, &dir.path().join("plain"), 6);
    plain.train.batch_size = 16;
    plain.train.checkpoint_every = 3;
    let mut aug = plain.clone();
    aug.train.output_dir = dir.path().join("aug").display().to_string();
    aug.augment.documents = true;
    aug.augment.mask_prob = 0.5;
    aug.augment.delete_prob = 0.5;
    let p = train(&plain, &mut NoHooks).unwrap();
    let a = train(&aug, &mut NoHooks).unwrap();
    assert!(model_bits(&p.output_dir) != model_bits(&a.output_dir), "rewrites changed nothing");

    // Killed at step 5, resumed from the step-3 checkpoint: same rewrites.
    let mut killed = aug.clone();
    killed.train.output_dir = dir.path().join("killed").display().to_string();
    assert!(train(&killed, &mut StopAt(5)).unwrap().stopped);
    killed.train.resume = true;
    let c = train(&killed, &mut NoHooks).unwrap();
    assert!(model_bits(&a.output_dir) == model_bits(&c.output_dir));

    // Rates outside [0, 1] and a paraphrase rate without a file name the key.
    let mut bad = aug.clone();
    bad.augment.mask_rate = 1.5;
    let e = train(&bad, &mut NoHooks).unwrap_err().to_string();
    assert!(e.contains("augment.mask_rate"), "{e}");
    let mut bad = aug.clone();
    bad.augment.paraphrase_prob = 0.2;
    let e = train(&bad, &mut NoHooks).unwrap_err().to_string();
    assert!(e.contains("augment.paraphrases"), "{e}");
}

#[test]
fn distillation_needs_scores_changes_the_model_and_resumes_bit_identical() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("pairs.jsonl");
    synthetic_task_with_negatives(&data, 14, 13, true);
    let mut plain = micro_config(&data, &dir.path().join("plain"), 6);
    plain.train.batch_size = 16;
    plain.train.checkpoint_every = 3;
    plain.loss.hard_negatives = 1;

    // Without teacher scores the data cannot be distilled from.
    let mut distil = plain.clone();
    distil.loss.distill_weight = 1.0;
    distil.train.output_dir = dir.path().join("distil").display().to_string();
    let e = train(&distil, &mut NoHooks).unwrap_err().to_string();
    assert!(e.contains("loss.distill_weight") && e.contains("teacher scores"), "{e}");

    // A teacher that prefers each example's negative over its positive.
    let scored = dir.path().join("scored.jsonl");
    let text = std::fs::read_to_string(&data).unwrap();
    let lines: Vec<String> = text
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["scores"] = serde_json::json!([0.1, 0.9]);
            v.to_string()
        })
        .collect();
    std::fs::write(&scored, lines.join("\n") + "\n").unwrap();
    plain.data.train = scored.display().to_string();
    distil.data.train = scored.display().to_string();
    let p = train(&plain, &mut NoHooks).unwrap();
    let a = train(&distil, &mut NoHooks).unwrap();
    assert!(model_bits(&p.output_dir) != model_bits(&a.output_dir), "distillation did nothing");

    // Killed at step 5, resumed from step 3: the same bits.
    let mut killed = distil.clone();
    killed.train.output_dir = dir.path().join("killed").display().to_string();
    assert!(train(&killed, &mut StopAt(5)).unwrap().stopped);
    killed.train.resume = true;
    let c = train(&killed, &mut NoHooks).unwrap();
    assert!(model_bits(&a.output_dir) == model_bits(&c.output_dir));

    // Distillation without hard negatives is refused, naming the key.
    let mut no_negs = distil.clone();
    no_negs.loss.hard_negatives = 0;
    let e = train(&no_negs, &mut NoHooks).unwrap_err().to_string();
    assert!(e.contains("loss.distill_weight"), "{e}");
}

// ---- hard negatives in the loop ---------------------------------------------------------

#[test]
fn hard_negative_options_name_their_keys() {
    let base = "[model]\ntrain_vocab = 512\n";
    for (extra, key) in [
        ("[mining]\nrefresh_every = 5\n", "mining.refresh_every"),
        ("[loss]\nhard_negatives = 1\n[mining]\ntop_k = 3\nskip_top = 3\n", "mining.top_k"),
        (
            "[loss]\nhard_negatives = 1\ndistill_weight = 1.0\n[mining]\nrefresh_every = 5\n",
            "mining.refresh_every",
        ),
        ("[mining]\nsample = \"best\"\n", "mining.sample"),
        ("[mining]\nrelative_margin = 1.5\n", "mining.relative_margin"),
        ("[loss]\nguide = \"scores\"\n", "loss.guide"),
        ("[loss]\nguide_margin = nan\n", "loss.guide_margin"),
        ("[bank]\nmomentum = 1.0\n", "bank.momentum"),
        ("[bank]\nmomentum = 0.99\n", "bank.momentum"),
    ] {
        let e = config_error(&format!("{base}{extra}"));
        assert_eq!(e.key, key, "{extra}: {e}");
    }
    // Unknown keys in the new tables are refused like any other.
    assert_eq!(config_error("[bank]\nmomentun = 0.9\n").key, "bank.momentun");
}

#[test]
fn remining_swaps_negatives_logs_its_cost_and_resumes_bit_identical() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("pairs.jsonl");
    synthetic_task(&data, 14, 9);
    let mut plain = micro_config(&data, &dir.path().join("plain"), 7);
    plain.train.batch_size = 16;
    plain.train.checkpoint_every = 3;
    plain.loss.hard_negatives = 2;
    let mut mined = plain.clone();
    mined.train.output_dir = dir.path().join("mined").display().to_string();
    mined.mining.refresh_every = 2;
    mined.mining.corpus_sample = 40;
    mined.mining.skip_top = 1;
    mined.mining.sample = "random".into();
    let p = train(&plain, &mut NoHooks).unwrap();
    let a = train(&mined, &mut NoHooks).unwrap();
    assert!(model_bits(&p.output_dir) != model_bits(&a.output_dir), "re-mining changed nothing");

    // Refreshed after steps 2, 4 and 6, each over a 40-passage sample.
    assert_eq!(a.mining.iter().map(|r| r.step).collect::<Vec<_>>(), [2, 4, 6]);
    for r in &a.mining {
        assert_eq!(r.docs, 40);
        assert!(r.texts > r.docs && r.seconds > 0.0 && r.negatives > 0, "{r:?}");
    }
    // The cost is in the log line after each refresh, and in the curves.
    let log = std::fs::read_to_string(a.output_dir.join("log.jsonl")).unwrap();
    let logged: Vec<(u64, u64)> = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter_map(|v| Some((v["step"].as_u64()?, v["mining_docs"].as_u64()?)))
        .collect();
    assert_eq!(logged, [(4, 40), (6, 40), (7, 40)]);
    let svg = std::fs::read_to_string(a.output_dir.join("curves.svg")).unwrap();
    assert!(svg.contains("re-mining seconds"));

    // The negatives in the last checkpoint: two per example, never the
    // example's own positive.
    let ckpt = checkpoint::latest(&a.output_dir.join("checkpoints")).unwrap().unwrap();
    let ids = checkpoint::read_state(&ckpt).unwrap().mining.negatives.unwrap();
    let run_data = edgecl_trainer::train::data::load(&mined.data, mined.train.seed).unwrap();
    let corpus = edgecl_trainer::mining::Corpus::from_examples(&run_data.train).unwrap();
    assert_eq!(ids.len(), run_data.train.len());
    let mut full = 0;
    for (e, row) in run_data.train.iter().zip(&ids) {
        assert!(row.len() <= 2);
        full += usize::from(row.len() == 2);
        for &id in row {
            assert_ne!(corpus.text(id), e.positive, "a positive was mined as negative");
        }
    }
    assert!(full * 2 > ids.len(), "most examples should get both negatives");

    // Killed at step 5, resumed from the step-3 checkpoint (whose negatives
    // came from the refresh after step 2): the same bits.
    let mut killed = mined.clone();
    killed.train.output_dir = dir.path().join("killed").display().to_string();
    assert!(train(&killed, &mut StopAt(5)).unwrap().stopped);
    killed.train.resume = true;
    let c = train(&killed, &mut NoHooks).unwrap();
    assert!(model_bits(&a.output_dir) == model_bits(&c.output_dir), "resume differs");
    assert_eq!(c.mining.iter().map(|r| r.step).collect::<Vec<_>>(), [2, 4, 6]);
}

#[test]
fn guides_mask_what_they_score_above_the_positive() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("pairs.jsonl");
    synthetic_task_with_negatives(&data, 14, 13, true);
    // The same pairs with teacher scores: each negative above its
    // positive, or each below.
    let scored = |name: &str, scores: [f32; 2]| {
        let path = dir.path().join(name);
        let lines: Vec<String> = std::fs::read_to_string(&data)
            .unwrap()
            .lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["scores"] = serde_json::json!(scores);
                v.to_string()
            })
            .collect();
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        path.display().to_string()
    };
    let mut plain = micro_config(&data, &dir.path().join("plain"), 4);
    plain.train.batch_size = 16;
    plain.train.log_every = 1;
    plain.loss.hard_negatives = 1;
    plain.data.train = scored("below.jsonl", [0.9, 0.1]);
    let p = train(&plain, &mut NoHooks).unwrap();
    let losses = |o: &Path| -> Vec<f64> {
        std::fs::read_to_string(o.join("log.jsonl"))
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["loss"].as_f64().unwrap()
            })
            .collect()
    };

    // Scores below the positive mask nothing: the very same run.
    let mut below = plain.clone();
    below.loss.guide = "scores".into();
    below.train.output_dir = dir.path().join("below").display().to_string();
    let b = train(&below, &mut NoHooks).unwrap();
    assert!(model_bits(&p.output_dir) == model_bits(&b.output_dir));

    // Scores above it mask every hard negative: a lower loss from the
    // first step on, and another model.
    let mut above = below.clone();
    above.data.train = scored("above.jsonl", [0.1, 0.9]);
    above.train.output_dir = dir.path().join("above").display().to_string();
    let a = train(&above, &mut NoHooks).unwrap();
    let (lp, la) = (losses(&p.output_dir), losses(&a.output_dir));
    assert!(la[0] < lp[0] - 1e-3, "masked {la:?} vs plain {lp:?}");
    assert!(model_bits(&p.output_dir) != model_bits(&a.output_dir));

    // A model guide (the plain run's model): with a margin of 2 every
    // cosine clears the bar, so each query keeps only its positive and the
    // loss is 0.
    let mut by_model = plain.clone();
    by_model.loss.guide = p.output_dir.join("model").display().to_string();
    by_model.loss.guide_margin = 2.0;
    by_model.train.output_dir = dir.path().join("model-guided").display().to_string();
    let m = train(&by_model, &mut NoHooks).unwrap();
    assert!(losses(&m.output_dir).iter().all(|&l| l.abs() < 1e-6), "{:?}", losses(&m.output_dir));

    // A guide folder that does not load names the key.
    by_model.loss.guide = dir.path().join("missing").display().to_string();
    let e = train(&by_model, &mut NoHooks).unwrap_err().to_string();
    assert!(e.contains("loss.guide"), "{e}");
}

#[test]
fn momentum_encoder_fills_the_bank_and_resumes_bit_identical() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("pairs.jsonl");
    synthetic_task(&data, 14, 9);
    let mut online = micro_config(&data, &dir.path().join("online"), 7);
    online.train.batch_size = 16;
    online.train.checkpoint_every = 3;
    online.loss.memory_bank = 48;
    let mut moco = online.clone();
    moco.bank.momentum = 0.9;
    moco.train.output_dir = dir.path().join("moco").display().to_string();
    let o = train(&online, &mut NoHooks).unwrap();
    let a = train(&moco, &mut NoHooks).unwrap();
    assert!(model_bits(&o.output_dir) != model_bits(&a.output_dir), "momentum changed nothing");

    // The checkpoint holds the average of every parameter, apart from the
    // online values.
    let ckpt = checkpoint::latest(&a.output_dir.join("checkpoints")).unwrap().unwrap();
    let extra = checkpoint::read_extra(&ckpt).unwrap();
    let params = weights::load(&ckpt.join("params.safetensors")).unwrap();
    let averaged: Vec<&(String, _)> =
        extra.iter().filter(|(n, _)| n.starts_with("momentum/")).collect();
    assert_eq!(averaged.len(), params.len());
    let (name, avg) = averaged.iter().find(|(n, _)| n.contains("word_embeddings")).unwrap();
    let (_, live) = params.iter().find(|(n, _)| *n == name["momentum/".len()..]).unwrap();
    assert!(avg.as_f32().unwrap() != live.as_f32().unwrap());

    // Killed at step 5, resumed from step 3: the same bits.
    let mut killed = moco.clone();
    killed.train.output_dir = dir.path().join("killed").display().to_string();
    assert!(train(&killed, &mut StopAt(5)).unwrap().stopped);
    killed.train.resume = true;
    let c = train(&killed, &mut NoHooks).unwrap();
    assert!(model_bits(&a.output_dir) == model_bits(&c.output_dir), "resume differs");
}
