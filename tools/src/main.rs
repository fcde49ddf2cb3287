//! The `edgecl` program: one binary for training, embedding, quantizing,
//! indexing, searching, evaluating and measuring. Each subcommand lives in its own
//! module under `cmd/`; this file parses arguments, checks `EDGECL_ISA`
//! once, and turns every failure into one line on stderr:
//! `edgecl: error: <file:line or flag>: <what>`, exit code 2 for usage
//! errors (including clap's) and 1 for errors while running.
//!
//! Shared pieces: [`error`] (the error type and exit codes), [`npy`] and
//! [`vectors`] (vector files), [`files`] (atomic writes), [`model`]
//! (loading an encoder, batched embedding, the model digest), [`output`]
//! (stdout that survives a closed pipe), [`progress`] (bars on stderr,
//! hidden under `--quiet` or when stderr is not a terminal).

use std::process::ExitCode;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Parser, Subcommand};

mod cmd;
mod error;
mod files;
mod model;
mod npy;
mod output;
mod progress;
mod vectors;

use error::{CliError, EXIT_USAGE};

#[derive(Parser)]
#[command(name = "edgecl", version, about = "Compact retrieval models and indexes for CPUs")]
#[command(after_help = "Exit codes: 0 success, 1 error while running, 2 usage error.")]
struct Cli {
    /// Hide progress bars (they are also hidden when stderr is not a terminal).
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a retriever on WordNet, index, evaluate and answer (a few minutes).
    Quickstart(cmd::quickstart::Args),
    /// Train a dual encoder from a TOML config or a preset.
    Train(cmd::train::Args),
    /// Fine-tune a cross-encoder reranker (a distillation teacher) on examples with negatives.
    TrainCross(cmd::train_cross::Args),
    /// Evaluate retrieval on a BEIR folder: a TREC run, BM25, or an index.
    Eval(cmd::eval::Args),
    /// Quantize vectors (int8, binary, 4/8-bit PQ) and report the error.
    Quantize(cmd::quantize::Args),
    /// Embed texts with an encoder into .npy or JSONL vectors.
    Embed(cmd::embed::Args),
    /// Build an index from vectors or from a corpus and a model.
    #[command(subcommand)]
    Index(cmd::index::Command),
    /// Search an index with query texts or vectors.
    Search(cmd::search::Args),
    /// Show the detected CPU features and the tier each kernel family uses.
    Cpu,
    /// Measure kernel throughput per ISA tier beside the machine's peaks.
    Bench(cmd::bench::Args),
    /// Show a container file's sections, checksums and parameters.
    Inspect(cmd::inspect::Args),
}

/// One line for a clap parse error, led by the argument at fault.
fn usage_line(e: &clap::Error) -> String {
    let rendered = e.render().to_string();
    let first = rendered.lines().next().unwrap_or("").trim_start_matches("error: ").trim();
    // `--mode <MODE>` is named `--mode`; the value's placeholder is noise.
    let arg = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        Some(ContextValue::Strings(v)) => v.first().cloned(),
        _ => None,
    };
    if e.kind() == ErrorKind::MissingRequiredArgument {
        let missing = arg.as_deref().map(strip_placeholders).unwrap_or_default();
        return format!("{missing}: required but not given; see --help");
    }
    let arg = arg.map(|a| a.split_whitespace().next().unwrap_or("").to_string());
    let valid = match e.get(ContextKind::ValidValue) {
        Some(ContextValue::Strings(v)) if !v.is_empty() => format!(" (one of: {})", v.join(", ")),
        _ => String::new(),
    };
    match arg {
        Some(a) if !a.is_empty() => format!("{a}: {first}{valid}; see --help"),
        _ => format!("{first}{valid}; see --help"),
    }
}

/// `<--run <FILE>|--bm25>` as `--run|--bm25`: flags without their value
/// placeholders or the group's brackets.
fn strip_placeholders(arg: &str) -> String {
    let inner = arg.strip_prefix('<').and_then(|a| a.strip_suffix('>')).unwrap_or(arg);
    let mut out = String::new();
    let mut depth = 0;
    for c in inner.chars() {
        match c {
            '<' => depth += 1,
            '>' => depth -= 1,
            ' ' => {}
            c if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    let _ = e.print();
                    ExitCode::SUCCESS
                }
                _ => {
                    eprintln!("edgecl: error: {}", usage_line(&e));
                    ExitCode::from(EXIT_USAGE)
                }
            };
        }
    };
    // A bad EDGECL_ISA is a user error, reported before any kernel runs.
    if let Err(e) = edgecl_kernels::dispatch::try_active() {
        eprintln!("edgecl: error: {e}");
        return ExitCode::from(EXIT_USAGE);
    }
    let quiet = cli.quiet;
    let result: Result<(), CliError> = match cli.command {
        Command::Quickstart(args) => cmd::quickstart::run(&args, quiet),
        Command::Train(args) => cmd::train::run(&args, quiet),
        Command::TrainCross(args) => cmd::train_cross::run(&args, quiet),
        Command::Eval(args) => cmd::eval::run(&args, quiet),
        Command::Quantize(args) => cmd::quantize::run(&args),
        Command::Embed(args) => cmd::embed::run(&args, quiet),
        Command::Index(c) => cmd::index::run(&c, quiet),
        Command::Search(args) => cmd::search::run(&args, quiet),
        Command::Cpu => cmd::cpu::run(),
        Command::Bench(args) => cmd::bench::run(&args),
        Command::Inspect(args) => cmd::inspect::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("edgecl: error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
