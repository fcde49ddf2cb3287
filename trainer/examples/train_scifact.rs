//! Trains on SciFact's train split and evaluates on its test split.
//!
//! ```text
//! cargo run --release -p edgecl-trainer --example train_scifact -- tiny
//! cargo run --release -p edgecl-trainer --example train_scifact -- minilm \
//!     --init-from /path/to/all-MiniLM-L6-v2
//! ```
//!
//! `tiny` trains the 4-layer, 256-wide preset from scratch with a WordPiece
//! vocabulary fitted to the training pairs; `minilm` fine-tunes a
//! pretrained folder. The data folder defaults to `../shared/data/scifact`
//! (BEIR layout); its `train` qrels give about 900 query/abstract pairs,
//! and `test` (300 queries over 5,183 abstracts) is the dev set, evaluated
//! before training, at the end, and every `--eval-every` steps if given. Options:
//! `--data DIR`, `--out DIR`, `--epochs N`, `--steps N` (overrides epochs),
//! `--batch N`, `--lr X`, `--max-seq-len N`, `--threads N`,
//! `--eval-every N`, `--resume`, `--quiet`. The final line prints the
//! report as JSON (also in `<out>/metrics.json`).
//!
//! `eval DIR [--data DIR] [--max-seq-len N]` only scores a saved or
//! pretrained model folder on the test split (no training), e.g. the
//! starting point of a fine-tuning run.

use std::process::ExitCode;

use std::path::Path;

use edgecl_trainer::data::beir::load_beir;
use edgecl_trainer::data::ReadOptions;
use edgecl_trainer::embedder::Embedder;
use edgecl_trainer::runtime::encoder::load_pretrained;
use edgecl_trainer::runtime::infer::{InferenceModel, Precision};
use edgecl_trainer::train::data::document_text;
use edgecl_trainer::train::eval::{evaluate_dev, DevSet};
use edgecl_trainer::train::{peak_rss_bytes, train, ConsoleHooks, TrainConfig};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().ok_or("usage: train_scifact tiny|minilm|eval [options]")?;
    if mode == "eval" {
        return eval_only(args.collect());
    }
    let mut cfg = match mode.as_str() {
        "tiny" => {
            let mut c = TrainConfig::preset("tiny")?;
            c.model.train_vocab = 8192;
            c.optimizer.lr = 5e-4;
            c.optimizer.warmup_steps = 20;
            c.train.epochs = 10;
            c
        }
        "minilm" => {
            let mut c = TrainConfig::preset("minilm-finetune")?;
            c.model.init_from = String::new();
            c.optimizer.lr = 2e-5;
            c.optimizer.warmup_steps = 5;
            c.train.epochs = 1;
            c
        }
        other => return Err(format!("unknown mode {other:?} (tiny or minilm)").into()),
    };
    cfg.data.train = "../shared/data/scifact".into();
    cfg.data.train_split = "train".into();
    cfg.data.dev_split = "test".into();
    cfg.data.dev_fraction = 0.0;
    cfg.model.max_seq_len = 128;
    cfg.train.batch_size = 32;
    // Evaluate before training and at the end only (the untrained or
    // pretrained score, then the trained one).
    cfg.train.eval_every = 1_000_000;
    cfg.train.checkpoint_every = 0;
    cfg.train.log_every = 5;
    cfg.train.output_dir = format!("runs/scifact-{mode}");
    let mut quiet = false;

    // Options.
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--data" => cfg.data.train = value()?,
            "--out" => cfg.train.output_dir = value()?,
            "--init-from" => cfg.model.init_from = value()?,
            "--epochs" => cfg.train.epochs = value()?.parse()?,
            "--steps" => cfg.train.max_steps = value()?.parse()?,
            "--batch" => cfg.train.batch_size = value()?.parse()?,
            "--lr" => cfg.optimizer.lr = value()?.parse()?,
            "--max-seq-len" => cfg.model.max_seq_len = value()?.parse()?,
            "--threads" => cfg.train.threads = value()?.parse()?,
            "--eval-every" => cfg.train.eval_every = value()?.parse()?,
            "--resume" => cfg.train.resume = true,
            "--quiet" => quiet = true,
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    if mode == "minilm" && cfg.model.init_from.is_empty() {
        return Err("minilm needs --init-from <pretrained folder>".into());
    }
    cfg.data.dev = cfg.data.train.clone();
    cfg.validate()?;

    // Train; the hooks print the log lines and evaluations.
    let report = train(&cfg, &mut ConsoleHooks::new(quiet))?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// The model as an [`Embedder`].
struct Model(InferenceModel);

impl Embedder for Model {
    fn dim(&self) -> usize {
        self.0.dim()
    }
    fn normalized(&self) -> bool {
        self.0.config().normalize
    }
    fn embed(&self, texts: &[&str]) -> edgecl_trainer::error::Result<Vec<f32>> {
        self.0.embed(texts).map_err(|e| edgecl_trainer::error::TrainerError::InvalidArgument {
            name: "embed",
            reason: e.to_string(),
        })
    }
}

/// `eval DIR [--data DIR] [--max-seq-len N]`: the test-split score of a
/// model folder.
fn eval_only(args: Vec<String>) -> Result<(), Box<dyn std::error::Error>> {
    let mut it = args.into_iter();
    let dir = it.next().ok_or("usage: train_scifact eval MODEL_DIR [--data DIR]")?;
    let (mut data, mut max_len) = ("../shared/data/scifact".to_string(), 128usize);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--data" => data = value,
            "--max-seq-len" => max_len = value.parse()?,
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    let ds = load_beir(Path::new(&data), "test", ReadOptions::STRICT)?;
    let dev = DevSet {
        doc_ids: ds.corpus.iter().map(|d| d.id.clone()).collect(),
        doc_texts: ds.corpus.iter().map(document_text).collect(),
        query_ids: ds.queries.iter().map(|q| q.id.clone()).collect(),
        query_texts: ds.queries.iter().map(|q| q.text.clone()).collect(),
        qrels: ds.qrels,
    };
    let mut p = load_pretrained(Path::new(&dir))?;
    p.config.max_seq_len = max_len.min(p.config.max_position_embeddings);
    let model = InferenceModel::from_params(&p.config, &p.params, p.tokenizer, Precision::F32)?;
    let m = evaluate_dev(&Model(model), &dev, 64)?;
    println!(
        "{}",
        serde_json::json!({"model": dir, "max_seq_len": max_len, "metrics": m,
        "peak_rss_bytes": peak_rss_bytes()})
    );
    Ok(())
}
