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

use std::process::ExitCode;

use edgecl_trainer::train::{train, ConsoleHooks, TrainConfig};

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
    let mode = args.next().ok_or("usage: train_scifact tiny|minilm [options]")?;
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
