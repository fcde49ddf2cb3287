//! BM25 over a BEIR collection: writes a TREC run and prints the BEIR metrics.
//!
//! ```text
//! cargo run --release -p edgecl-trainer --example bm25_run -- <beir dir> <split> <out.trec> [k]
//! ```
//!
//! Retrieves the top `k` (default 1000) documents per judged query of `split` with
//! k1 = 0.9, b = 0.4 over title + text, writes them to `out.trec`, reads the file back and
//! evaluates that, so the printed figures are those of the file other tools will read.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use edgecl_trainer::bm25::{Bm25Index, Bm25Params};
use edgecl_trainer::data::beir::load_beir;
use edgecl_trainer::data::ReadOptions;
use edgecl_trainer::error::Result;
use edgecl_trainer::eval::trec::{read_run, write_run};
use edgecl_trainer::eval::{evaluate, Metric};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !(3..=4).contains(&args.len()) {
        eprintln!("usage: bm25_run <beir dir> <split> <out.trec> [k]");
        return ExitCode::from(2);
    }
    let k = match args.get(3).map(|s| s.parse::<usize>()) {
        None => 1000,
        Some(Ok(k)) if k > 0 => k,
        Some(_) => {
            eprintln!("k must be a positive integer");
            return ExitCode::from(2);
        }
    };
    match run(&PathBuf::from(&args[0]), &args[1], &PathBuf::from(&args[2]), k) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(dir: &std::path::Path, split: &str, out: &std::path::Path, k: usize) -> Result<()> {
    // Load and index.
    let t = Instant::now();
    let data = load_beir(dir, split, ReadOptions::STRICT)?;
    let index = Bm25Index::from_documents(&data.corpus, Bm25Params::default())?;
    println!(
        "indexed {} documents ({} without text, {} terms), {} queries, in {:.2} s",
        index.len(),
        data.empty_documents.len(),
        index.num_terms(),
        data.queries.len(),
        t.elapsed().as_secs_f64()
    );

    // Search, write, read back.
    let t = Instant::now();
    let run = index.search_batch(&data.queries, k);
    println!("searched in {:.3} s", t.elapsed().as_secs_f64());
    write_run(out, &run, "edgecl-bm25")?;
    let run = read_run(out, ReadOptions::STRICT)?.data;

    // Evaluate.
    let metrics = [
        Metric::Ndcg(10),
        Metric::Recall(100),
        Metric::Map(10),
        Metric::Mrr(10),
        Metric::Precision(10),
        Metric::Recall(1000),
    ];
    let eval = evaluate(&data.qrels, &run, &metrics)?;
    println!(
        "{} queries evaluated ({} without relevant judgments skipped, {} missing from run)",
        eval.per_query.len(),
        eval.skipped_no_relevant.len(),
        eval.missing_from_run.len()
    );
    for (m, v) in eval.metrics.iter().zip(&eval.mean) {
        println!("{:>12}  {v:.4}", m.to_string());
    }
    Ok(())
}
