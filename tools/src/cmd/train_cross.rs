//! `edgecl train-cross`: fine-tunes a cross-encoder reranker on training
//! examples with hard negatives, the teacher that distillation and
//! `mine_negatives` then score with.
//!
//! The work is the trainer's ([`edgecl_trainer::cross_train`]); progress
//! is its console hooks. The model starts from a folder given with
//! `--init-from`: a trained cross-encoder continues with its head, a plain
//! BERT or sentence-transformers encoder gets a classifier drawn from
//! `--seed`. The output is a `BertForSequenceClassification` folder
//! (`config.json`, `model.safetensors`, `vocab.txt`, each written to a temp
//! file, synced and renamed).
//!
//! Left out: a TOML config and checkpoints (a cross-encoder run is short;
//! `edgecl train` has both for dual encoders), and training from scratch
//! (a reranker without a pretrained encoder learns little from the few
//! thousand labelled pairs it usually gets).

use std::path::PathBuf;

use edgecl_trainer::cross_train::{train_cross_encoder, CrossLoss, CrossModel, CrossTrainConfig};
use edgecl_trainer::data::examples::load_examples;
use edgecl_trainer::data::ReadOptions;
use edgecl_trainer::error::TrainerError;
use edgecl_trainer::train::ConsoleHooks;

use super::CmdResult;
use crate::error::CliError;
use crate::output::out;

const EXAMPLES: &str = "Examples:
  edgecl train-cross --data mined.jsonl --init-from all-MiniLM-L6-v2/ --out runs/ce
  edgecl train-cross --data mined.jsonl --init-from runs/ce --out runs/ce2 --loss pointwise

Each line of --data holds a query, a positive and at least --negatives hard
negatives ({\"query\", \"positive\", \"negatives\": [...]} JSONL, or TSV columns
query, positive, negatives...); examples with fewer negatives are left out.";

#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Training examples with hard negatives (.jsonl or .tsv).
    #[arg(long, value_name = "FILE")]
    data: PathBuf,
    /// Pretrained folder: a BERT / sentence-transformers encoder or a cross-encoder.
    #[arg(long, value_name = "DIR")]
    init_from: PathBuf,
    /// Output folder for the trained cross-encoder.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Objective over each query's positive and negatives.
    #[arg(long, value_enum, default_value = "listwise")]
    loss: LossArg,
    /// Hard negatives per query.
    #[arg(long, value_name = "N", default_value_t = 7)]
    negatives: usize,
    /// Optimizer steps (0: run --epochs passes).
    #[arg(long, value_name = "N", default_value_t = 0)]
    max_steps: u64,
    /// Passes over the examples when --max-steps is 0.
    #[arg(long, value_name = "N", default_value_t = 1)]
    epochs: usize,
    /// Peak learning rate.
    #[arg(long, value_name = "X", default_value_t = 2e-5)]
    lr: f32,
    /// Linear warmup steps before the linear decay.
    #[arg(long, value_name = "N", default_value_t = 50)]
    warmup: u64,
    /// Tokens per (query, passage) pair, special tokens included.
    #[arg(long, value_name = "N", default_value_t = 256)]
    max_len: usize,
    /// Query tokens kept before the passage is cut.
    #[arg(long, value_name = "N", default_value_t = 64)]
    max_query_tokens: usize,
    /// Padded tokens per optimizer step (pairs times the longest pair).
    #[arg(long, value_name = "N", default_value_t = 4096)]
    batch_tokens: usize,
    /// Hidden-state dropout while training.
    #[arg(long, value_name = "P", default_value_t = 0.1)]
    dropout: f32,
    /// Seeds the shuffle, dropout and a fresh classifier.
    #[arg(long, value_name = "N", default_value_t = 42)]
    seed: u64,
    /// Threads (0: every core).
    #[arg(long, value_name = "N", default_value_t = 0)]
    threads: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LossArg {
    /// Softmax cross-entropy with the positive as target.
    Listwise,
    /// Binary cross-entropy per pair (positive 1, negatives 0).
    Pointwise,
}

pub fn run(args: &Args, quiet: bool) -> CmdResult {
    let cfg = CrossTrainConfig {
        loss: match args.loss {
            LossArg::Listwise => CrossLoss::Listwise,
            LossArg::Pointwise => CrossLoss::Pointwise,
        },
        negatives: args.negatives,
        max_len: args.max_len,
        max_query_tokens: args.max_query_tokens,
        max_batch_tokens: args.batch_tokens,
        max_steps: args.max_steps,
        epochs: args.epochs,
        lr: args.lr,
        warmup_steps: args.warmup,
        dropout: args.dropout,
        seed: args.seed,
        threads: args.threads,
        ..CrossTrainConfig::default()
    };
    cfg.validate().map_err(|e| match e {
        TrainerError::InvalidArgument { name, reason } => CliError::usage(flag_of(name), reason),
        e => CliError::usage("command line", e),
    })?;

    let examples = load_examples(&args.data, ReadOptions::STRICT)?.data;
    let model = CrossModel::from_pretrained(&args.init_from, args.seed)?;
    let mut hooks = ConsoleHooks::new(quiet);
    let (model, report) = train_cross_encoder(model, &examples, &cfg, &mut hooks)?;
    if report.stopped {
        out!("stopped at step {} (no model written)", report.steps);
        return Ok(());
    }
    model.save(&args.out)?;
    let last = &report.losses[report.losses.len().saturating_sub(10)..];
    out!(
        "trained {} steps on {} queries ({} left out, short of negatives) in {:.1} s; \
         mean loss of the last {} steps {:.4}: {}",
        report.steps,
        report.groups,
        report.skipped_examples,
        report.seconds,
        last.len(),
        last.iter().sum::<f32>() / last.len().max(1) as f32,
        args.out.display()
    );
    Ok(())
}

/// The flag that sets a [`CrossTrainConfig`] field.
fn flag_of(field: &str) -> String {
    match field {
        "max_batch_tokens" => "--batch-tokens".into(),
        "warmup_steps" => "--warmup".into(),
        f => format!("--{}", f.replace('_', "-")),
    }
}
