//! The `edgecl` program: one binary for training, indexing, searching and
//! measuring. Each subcommand lives in its own module under `cmd/`; this
//! file only parses arguments, checks `EDGECL_ISA` once, and turns errors
//! into one line on stderr with a non-zero exit code.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;

#[derive(Parser)]
#[command(name = "edgecl", version, about = "Compact retrieval models and indexes for CPUs")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show the detected CPU features and the tier each kernel family uses.
    Cpu,
    /// Measure kernel throughput per ISA tier beside the machine's peaks.
    Bench(cmd::bench::Args),
    /// Show a container file's sections, checksums and parameters.
    Inspect(cmd::inspect::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A bad EDGECL_ISA is a user error, reported before any kernel runs.
    if let Err(e) = edgecl_kernels::dispatch::try_active() {
        eprintln!("edgecl: {e}");
        return ExitCode::from(2);
    }
    let result = match cli.command {
        Command::Cpu => cmd::cpu::run(),
        Command::Bench(args) => cmd::bench::run(&args),
        Command::Inspect(args) => cmd::inspect::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("edgecl: {e}");
            ExitCode::FAILURE
        }
    }
}
