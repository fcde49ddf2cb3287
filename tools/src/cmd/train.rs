//! `edgecl train`: contrastive training of a dual encoder from a TOML
//! config or a compiled-in preset, with a few settings overridable from
//! the command line.
//!
//! The work is the trainer's ([`edgecl_trainer::train::train`]); progress
//! is its console hooks (a bar with loss, learning rate, pairs/s and ETA on
//! a terminal, a plain line per log step otherwise; nothing under
//! `--quiet`). A run leaves its output folder with `model/` (a Hugging Face
//! style folder that `embed`, `index build --corpus` and `search --model`
//! read), `metrics.json`, `curves.svg`, `log.jsonl` and checkpoints, which
//! `--resume` continues from when the config is unchanged.

use std::path::PathBuf;

use edgecl_trainer::train::{self, ConsoleHooks, TrainConfig};

use super::CmdResult;
use crate::error::CliError;
use crate::output::out;

const EXAMPLES: &str = "Examples:
  edgecl train --preset micro --data pairs.jsonl --out runs/micro
  edgecl train --config run.toml --resume
  edgecl train --preset minilm-finetune --data scifact/ --out runs/ft --max-steps 300";

#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
#[command(group = clap::ArgGroup::new("base").required(true).args(["config", "preset"]))]
pub struct Args {
    /// Training config (TOML: [model], [data], [loss], [optimizer], [train], [augment],
    /// [mining], [bank]).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Start from a compiled-in config instead of a file.
    #[arg(long, value_enum)]
    preset: Option<Preset>,
    /// Training data (sets data.train): examples .jsonl/.tsv or a BEIR folder.
    #[arg(long, value_name = "PATH")]
    data: Option<String>,
    /// BEIR folder to evaluate on (sets data.dev).
    #[arg(long, value_name = "DIR")]
    dev: Option<String>,
    /// Output folder (sets train.output_dir).
    #[arg(long, value_name = "DIR")]
    out: Option<String>,
    /// Continue from the latest checkpoint in the output folder.
    #[arg(long)]
    resume: bool,
    /// Stop after this many optimizer steps (sets train.max_steps).
    #[arg(long, value_name = "N")]
    max_steps: Option<u64>,
    /// Threads (sets train.threads; 0: every core).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Preset {
    Micro,
    Tiny,
    MinilmFinetune,
}

impl Preset {
    fn name(self) -> &'static str {
        match self {
            Preset::Micro => "micro",
            Preset::Tiny => "tiny",
            Preset::MinilmFinetune => "minilm-finetune",
        }
    }
}

pub fn run(args: &Args, quiet: bool) -> CmdResult {
    // The base config, then the command line's settings over it.
    let mut cfg = match (&args.config, args.preset) {
        (Some(path), _) => TrainConfig::from_toml_file(path)
            .map_err(|e| CliError { usage: false, msg: e.to_string() })?,
        (None, Some(p)) => TrainConfig::preset(p.name())
            .map_err(|e| CliError { usage: false, msg: e.to_string() })?,
        (None, None) => return Err(CliError::usage("--config", "give --config or --preset")),
    };
    if let Some(d) = &args.data {
        cfg.data.train = d.clone();
    }
    if let Some(d) = &args.dev {
        cfg.data.dev = d.clone();
    }
    if let Some(o) = &args.out {
        cfg.train.output_dir = o.clone();
    }
    if let Some(n) = args.max_steps {
        cfg.train.max_steps = n;
    }
    if let Some(n) = args.threads {
        cfg.train.threads = n;
    }
    cfg.train.resume |= args.resume;
    // A setting from the command line is checked like the file's keys.
    cfg.validate().map_err(|e| CliError::usage("command line", e.to_string()))?;
    if cfg.data.train.is_empty() {
        return Err(CliError::usage("--data", "no training data (set data.train or give --data)"));
    }

    let mut hooks = ConsoleHooks::new(quiet);
    let report = train::train(&cfg, &mut hooks)?;
    let out_dir = report.output_dir.display();
    if report.stopped {
        out!("stopped at step {} (no final model written): {out_dir}", report.steps);
        return Ok(());
    }
    out!(
        "trained {} steps in {:.1} s ({} parameters): {out_dir}/model",
        report.steps,
        report.seconds,
        report.params
    );
    if let Some(best) = &report.best_dev {
        out!(
            "best dev nDCG@10 {:.4} at step {} (Recall@100 {:.4})",
            best.metrics.ndcg_at_10,
            best.step,
            best.metrics.recall_at_100
        );
    }
    Ok(())
}
