//! `edgecl eval`: retrieval quality on a BEIR folder, from one of three
//! sources of results:
//! - `--run FILE`: a TREC run made elsewhere (only the qrels are read);
//! - `--bm25`: the trainer's BM25 over title + text (k1 0.9, b 0.4,
//!   Porter stemming, Lucene's stop words), the baseline every dense model
//!   is compared with;
//! - `--index INDEX --model MODEL`: searching an index with the judged
//!   queries embedded by the model (refused when the index stores another
//!   model's digest), or `--index INDEX --query-vectors FILE` with query
//!   vectors keyed by query id; the search flags are those of `search`.
//!
//! Metrics are the trainer's ([`edgecl_trainer::eval`], trec_eval's
//! definitions): by default nDCG@10, MRR@10, MAP@100 and Recall@1/10/100.
//! Each query retrieves `--depth` documents (default: the largest cutoff
//! asked for). The run can be written as a TREC file for other tools.

use std::collections::HashSet;
use std::path::PathBuf;

use edgecl_runtime::container::Checksums;
use edgecl_runtime::index::Index;
use edgecl_trainer::bm25::{Bm25Index, Bm25Params};
use edgecl_trainer::data::beir::{self, beir_paths};
use edgecl_trainer::data::ReadOptions;
use edgecl_trainer::eval::{self, trec, Metric, Qrels, Run};
use rayon::prelude::*;
use serde_json::{json, Map, Value};

use super::{open_container, rescore_name, CmdResult, SearchOpts};
use crate::error::{CliError, Context};
use crate::model;
use crate::output::out;
use crate::progress::Progress;
use crate::vectors;

const EXAMPLES: &str = "Examples:
  edgecl eval --beir data/scifact --bm25
  edgecl eval --beir data/scifact --run dense.trec --metrics ndcg@10,recall@100 --json
  edgecl eval --beir data/scifact --index scifact.ecl --model models/minilm
  edgecl eval --beir data/scifact --index scifact.ecl --query-vectors queries.jsonl \\
      --mode binary --rescore int8 --out-run binary.trec

Metrics: ndcg@K, mrr@K, map@K, recall@K, p@K (trec_eval's definitions).";

#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
#[command(group = clap::ArgGroup::new("source").required(true).args(["run", "bm25", "index"]))]
#[command(group = clap::ArgGroup::new("query_source").args(["query_vectors", "model"]))]
pub struct Args {
    /// BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv.
    #[arg(long, value_name = "DIR")]
    beir: PathBuf,
    /// Judgments to evaluate against (qrels/<split>.tsv).
    #[arg(long, default_value = "test")]
    split: String,
    /// Evaluate an existing TREC run file.
    #[arg(long, value_name = "FILE")]
    run: Option<PathBuf>,
    /// Evaluate BM25 over the corpus (k1 0.9, b 0.4).
    #[arg(long)]
    bm25: bool,
    /// Evaluate searches of this index.
    #[arg(long, value_name = "INDEX", requires = "query_source")]
    index: Option<PathBuf>,
    /// Model that embeds the queries for --index.
    #[arg(long, value_name = "MODEL", requires = "index")]
    model: Option<PathBuf>,
    /// Run a folder model's linear layers in int8.
    #[arg(long, requires = "model")]
    int8: bool,
    /// Query vectors for --index, keyed by query id (.jsonl {"id", "vector"}).
    #[arg(long, value_name = "FILE", requires = "index")]
    query_vectors: Option<PathBuf>,
    /// Measures, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        value_parser = parse_metric,
        default_value = "ndcg@10,mrr@10,map@100,recall@1,recall@10,recall@100"
    )]
    metrics: Vec<Metric>,
    /// Documents retrieved per query [default: the largest metric cutoff].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    depth: Option<u32>,
    /// Write the retrieved run here in TREC format.
    #[arg(long, value_name = "FILE")]
    out_run: Option<PathBuf>,
    /// Tag written in the run file's last column.
    #[arg(long, default_value = "edgecl")]
    tag: String,
    #[command(flatten)]
    search: SearchOpts,
    /// Print the results as one JSON object.
    #[arg(long)]
    json: bool,
}

/// `ndcg@10`, `MRR@10`, `map@100`, `recall@1`, `p@5` (case-insensitive).
pub fn parse_metric(s: &str) -> Result<Metric, String> {
    let lower = s.trim().to_ascii_lowercase();
    let (name, k) = lower.split_once('@').ok_or_else(|| format!("{s:?}: expected NAME@K"))?;
    let k: usize = k.parse().map_err(|_| format!("{s:?}: cutoff {k:?} is not a number"))?;
    if k == 0 {
        return Err(format!("{s:?}: the cutoff must be at least 1"));
    }
    match name {
        "ndcg" => Ok(Metric::Ndcg(k)),
        "mrr" => Ok(Metric::Mrr(k)),
        "map" => Ok(Metric::Map(k)),
        "recall" => Ok(Metric::Recall(k)),
        "p" | "precision" => Ok(Metric::Precision(k)),
        _ => Err(format!("{s:?}: unknown measure {name:?} (ndcg, mrr, map, recall, p)")),
    }
}

pub fn run(args: &Args, quiet: bool) -> CmdResult {
    if !args.beir.is_dir() {
        return Err(CliError::runtime(args.beir.display(), "not a directory"));
    }
    let depth = args
        .depth
        .map(|d| d as usize)
        .unwrap_or_else(|| args.metrics.iter().map(|m| m.k()).max().unwrap_or(100));

    // Results and the judgments they are held against.
    let (qrels, run, source) = if let Some(path) = &args.run {
        let (_, _, qrels_path) = beir_paths(&args.beir, &args.split);
        let qrels = beir::load_qrels(&qrels_path, ReadOptions::STRICT)?.data;
        let run = trec::read_run(path, ReadOptions::STRICT)?.data;
        (qrels, run, json!({ "kind": "run", "file": path.display().to_string() }))
    } else if args.bm25 {
        bm25_run(args, depth, quiet)?
    } else {
        index_run(args, depth, quiet)?
    };

    let evaluation = eval::evaluate(&qrels, &run, &args.metrics)?;
    if let Some(path) = &args.out_run {
        trec::write_run(path, &run, &args.tag)?;
    }
    report(args, &evaluation, &source);
    Ok(())
}

/// BM25 over the corpus, one search per judged query.
fn bm25_run(args: &Args, depth: usize, quiet: bool) -> CmdResult<(Qrels, Run, Value)> {
    let data = beir::load_beir(&args.beir, &args.split, ReadOptions::STRICT)?;
    let params = Bm25Params::default();
    let index = Bm25Index::from_documents(&data.corpus, params)?;
    let bar = Progress::new(data.queries.len() as u64, "queries", quiet);
    let run: Run = data
        .queries
        .par_iter()
        .map(|q| {
            let hits = index.search(&q.text, depth);
            bar.inc(1);
            let docs = hits.iter().map(|h| (index.doc_id(h.doc).to_string(), f64::from(h.score)));
            (q.id.clone(), docs.collect())
        })
        .collect();
    bar.finish();
    let source = json!({ "kind": "bm25", "k1": params.k1, "b": params.b });
    Ok((data.qrels, run, source))
}

/// Searches of an index, one per judged query that has a vector.
fn index_run(args: &Args, depth: usize, quiet: bool) -> CmdResult<(Qrels, Run, Value)> {
    let (_, queries_path, qrels_path) = beir_paths(&args.beir, &args.split);
    let qrels = beir::load_qrels(&qrels_path, ReadOptions::STRICT)?.data;
    let Some(index_path) = args.index.as_deref() else {
        return Err(CliError::usage("--index", "required here"));
    };
    let mapped = open_container(index_path, Checksums::HeaderOnly)?;
    let c = mapped.container();
    let index = Index::open(&c).at(index_path.display())?;
    let params = args.search.params(&index, depth)?;

    // Query vectors: embedded judged queries, or a file keyed by query id.
    let (ids, data, from) = match (&args.model, &args.query_vectors) {
        (Some(path), _) => {
            let m = model::load(path, args.int8, "--model")?;
            model::check_digest(&m, index.model_hash().map(|h| &h[..]), index_path)?;
            if m.dim() != index.dim() {
                return Err(CliError::runtime(
                    format!("--model {}", path.display()),
                    format!("makes dimension {}, the index holds {}", m.dim(), index.dim()),
                ));
            }
            let queries =
                beir::open_queries(&queries_path, ReadOptions::STRICT)?.collect_loaded()?.data;
            let (ids, texts): (Vec<String>, Vec<String>) = queries
                .into_iter()
                .filter(|q| qrels.contains_key(&q.id))
                .map(|q| (q.id, q.text))
                .unzip();
            let data = m.embed_all(&texts, 64, "embedding", quiet)?;
            (ids, data, format!("--model {}", path.display()))
        }
        (None, Some(path)) => {
            let q = vectors::read(path, "--query-vectors")?;
            if q.dim != index.dim() {
                return Err(CliError::runtime(
                    path.display(),
                    format!("queries have dimension {}, the index {}", q.dim, index.dim()),
                ));
            }
            (q.ids, q.data, path.display().to_string())
        }
        (None, None) => {
            return Err(CliError::usage("--index", "needs --model or --query-vectors"));
        }
    };
    let dim = index.dim();

    // Only judged queries are searched; the others cannot change a metric.
    let judged: Vec<(&String, &[f32])> = ids
        .iter()
        .zip(data.chunks_exact(dim))
        .filter(|(id, _)| qrels.contains_key(id.as_str()))
        .collect();
    let bar = Progress::new(judged.len() as u64, "queries", quiet);
    let run: Run = judged
        .par_iter()
        .map(|(id, vector)| {
            let hits = index.search(vector, &params).at(format!("{from}: query {id}"))?;
            bar.inc(1);
            let docs = hits
                .iter()
                .map(|h| (index.id(h.doc).unwrap_or("").to_string(), f64::from(h.score)));
            Ok(((*id).clone(), docs.collect()))
        })
        .collect::<CmdResult<Run>>()?;
    bar.finish();
    let with_vectors: HashSet<&str> = ids.iter().map(String::as_str).collect();
    let without = qrels.keys().filter(|k| !with_vectors.contains(k.as_str())).count();
    if without > 0 && !args.json {
        eprintln!(
            "edgecl: note: {from}: {without} judged queries have no vector (scored as empty)"
        );
    }
    let source = json!({
        "kind": "index",
        "file": index_path.display().to_string(),
        "queries_from": from,
        "mode": params.mode.name(),
        "rescore": rescore_name(params.rescore),
        "shortlist": params.shortlist,
        "ef": params.ef,
    });
    Ok((qrels, run, source))
}

fn report(args: &Args, e: &eval::Evaluation, source: &Value) {
    if args.json {
        let mut metrics = Map::new();
        for (m, v) in e.metrics.iter().zip(&e.mean) {
            metrics.insert(m.to_string(), json!(v));
        }
        let out = json!({
            "beir": args.beir.display().to_string(),
            "split": args.split,
            "source": source,
            "queries": e.per_query.len(),
            "skipped_no_relevant": e.skipped_no_relevant.len(),
            "missing_from_run": e.missing_from_run.len(),
            "metrics": metrics,
        });
        out!("{out}");
        return;
    }
    let what = match source["kind"].as_str() {
        Some("bm25") => "bm25 (k1 0.9, b 0.4)".to_string(),
        Some("run") => format!("run {}", source["file"].as_str().unwrap_or("")),
        _ => format!(
            "index {} ({} + {} rescoring)",
            source["file"].as_str().unwrap_or(""),
            source["mode"].as_str().unwrap_or(""),
            source["rescore"].as_str().unwrap_or("")
        ),
    };
    out!("{} {}: {what}", args.beir.display(), args.split);
    let names: Vec<String> = e.metrics.iter().map(Metric::to_string).collect();
    let width = names.iter().map(String::len).max().unwrap_or(6).max(6);
    out!("{:<width$}  {:>8}", "metric", "value");
    for (name, v) in names.iter().zip(&e.mean) {
        out!("{name:<width$}  {v:>8.4}");
    }
    out!(
        "{} queries evaluated; {} left out (no relevant judgment); {} missing from the run",
        e.per_query.len(),
        e.skipped_no_relevant.len(),
        e.missing_from_run.len()
    );
}
