//! Writes the built-in WordNet retrieval task as a BEIR folder plus
//! training pairs, and prints its size.
//!
//! ```text
//! cargo run --release -p edgecl-trainer --example wordnet_task -- <out dir> [test queries] [seed]
//! ```
//!
//! The folder evaluates like any BEIR collection, e.g. with BM25:
//! `cargo run --release -p edgecl-trainer --example bm25_run -- <out dir> test /tmp/bm25.trec 100`.

use std::path::PathBuf;
use std::process::ExitCode;

use edgecl_trainer::wordnet;
use edgecl_trainer::wordnet_task::{build, TaskOptions};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() || args.len() > 3 {
        eprintln!("usage: wordnet_task <out dir> [test queries] [seed]");
        return ExitCode::from(2);
    }
    let mut opts = TaskOptions::default();
    let parse = |s: &String, what: &str| -> Result<u64, String> {
        s.parse().map_err(|_| format!("{what} must be a non-negative integer, got {s:?}"))
    };
    let parsed = (|| -> Result<(), String> {
        if let Some(n) = args.get(1) {
            opts.test_queries = parse(n, "test queries")? as usize;
        }
        if let Some(s) = args.get(2) {
            opts.seed = parse(s, "seed")?;
        }
        Ok(())
    })();
    if let Err(e) = parsed {
        eprintln!("{e}");
        return ExitCode::from(2);
    }
    let run = || -> Result<(), String> {
        let dir = wordnet::find_dir(None).map_err(|e| e.to_string())?;
        let synsets = wordnet::load(&dir).map_err(|e| e.to_string())?;
        let task = build(&synsets, &opts).map_err(|e| e.to_string())?;
        task.write(&PathBuf::from(&args[0])).map_err(|e| e.to_string())?;
        println!(
            "{} synsets from {}: {} documents, {} training pairs, {} test queries",
            synsets.len(),
            dir.display(),
            task.corpus.len(),
            task.train.len(),
            task.test_queries.len()
        );
        Ok(())
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
