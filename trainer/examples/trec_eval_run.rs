//! Evaluates a TREC run against BEIR qrels and prints per-query values as JSON.
//!
//! ```text
//! cargo run --release -p edgecl-trainer --example trec_eval_run -- <qrels.tsv> <run.trec> <k,k,...>
//! ```
//!
//! Output: `{"<query>": {"ndcg_cut_10": ..., "map_cut_10": ..., ...}, ...}` on stdout, with
//! pytrec_eval's measure names (`recip_rank_cut_k` for MRR@k), every value printed with
//! 17 significant digits. `tools/scripts/pytrec_eval_check.py` compares it with pytrec_eval.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use edgecl_trainer::data::beir::load_qrels;
use edgecl_trainer::data::ReadOptions;
use edgecl_trainer::error::{Result, TrainerError};
use edgecl_trainer::eval::trec::read_run;
use edgecl_trainer::eval::{evaluate, Metric};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != 3 {
        eprintln!("usage: trec_eval_run <qrels.tsv> <run.trec> <k,k,...>");
        return ExitCode::from(2);
    }
    match run(&args[0], &args[1], &args[2]) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(qrels: &str, run: &str, cutoffs: &str) -> Result<String> {
    let qrels = load_qrels(&PathBuf::from(qrels), ReadOptions::STRICT)?.data;
    let run = read_run(&PathBuf::from(run), ReadOptions::STRICT)?.data;
    let mut metrics = Vec::new();
    for k in cutoffs.split(',') {
        let k = k.trim().parse::<usize>().map_err(|_| TrainerError::InvalidArgument {
            name: "cutoffs",
            reason: format!("{k:?} is not a positive integer"),
        })?;
        metrics.extend([
            Metric::Ndcg(k),
            Metric::Mrr(k),
            Metric::Map(k),
            Metric::Recall(k),
            Metric::Precision(k),
        ]);
    }
    let eval = evaluate(&qrels, &run, &metrics)?;

    // Hand-written JSON: ids go through serde_json for escaping, numbers as {:.17e}.
    let mut out = String::from("{");
    for (qi, (query, values)) in eval.per_query.iter().enumerate() {
        let sep = if qi == 0 { "" } else { "," };
        let key = serde_json::Value::String(query.clone());
        let _ = write!(out, "{sep}\n  {key}: {{");
        for (mi, (m, v)) in metrics.iter().zip(values).enumerate() {
            let sep = if mi == 0 { "" } else { ", " };
            let _ = write!(out, "{sep}\"{}\": {v:.17e}", m.trec_name());
        }
        out.push('}');
    }
    out.push_str("\n}");
    Ok(out)
}
