//! Trains a cross-encoder reranker on SciFact from all-MiniLM-L6-v2 and
//! measures what it adds to BM25.
//!
//! ```text
//! cargo run --release -p edgecl-trainer --example train_cross_encoder -- \
//!     --model /path/to/all-MiniLM-L6-v2 [--data DIR] [--steps N] [options]
//! ```
//!
//! 1. Training data: one example per judged (query, abstract) pair of the
//!    `train` qrels, with `--negatives` hard negatives mined by BM25 (k1
//!    0.9, b 0.4) at random from its ranks `--window` (default 0..30; known
//!    positives and candidates within 95% of the positive's score skipped).
//! 2. The cross-encoder starts from the MiniLM encoder and pooler with a
//!    classifier drawn from `--seed`, and trains `--steps` AdamW steps of
//!    at most `--batch-tokens` padded tokens (listwise softmax over the
//!    positive and its negatives, or `--loss pointwise`), pairs cut to
//!    `--max-len` tokens, the passage first. It is saved to `--out` and read
//!    back from there for scoring.
//! 3. Test split: BM25 retrieves the top `--top-k` abstracts of each test
//!    query (or the first `--queries` queries), the cross-encoder rescores
//!    them, and nDCG@10 is printed for BM25 alone and for BM25 + the
//!    reranker; with `--floor`, also for the untrained cross-encoder (random
//!    classifier), the floor training starts from.
//!
//! Defaults: `--steps 60 --negatives 3 --max-len 192 --batch-tokens 3072
//! --top-k 20`. The printed lines say what was chosen, how long each part
//! took and the peak RSS.
//!
//! Measured on two cores shared with other builds (load 4 to 10), after
//! `cargo build --release -p edgecl-trainer --example train_cross_encoder`:
//! `nice target/release/examples/train_cross_encoder --model
//! models/all-MiniLM-L6-v2 --data scifact --out /tmp/scifact-cross
//! --threads 2` (defaults otherwise). Training took 903 s and moved the
//! listwise loss only from 1.387 to 1.375 over the first and last 5 steps
//! (ln 4 = 1.386 is chance over 1 + 3 pairs): 60 steps see 240 of the 772
//! groups, far too few for the fresh classifier. BM25 alone scored nDCG@10
//! 0.6759, BM25 + this reranker 0.3219 (reranking 6,000 pairs took 767 s;
//! peak RSS 1.30 GB). A useful teacher needs several epochs (an epoch is
//! about 193 steps at these settings) and likely a larger `--lr`; no such
//! run has been measured here.
//!
//! Other options: `--data DIR` (default `../shared/data/scifact`),
//! `--model DIR` (default `$EDGECL_MINILM_DIR`), `--out DIR` (default
//! `runs/scifact-cross`), `--lr X`, `--warmup N`, `--seed N`, `--loss
//! pointwise`, `--window A..B`, `--queries N`, `--threads N`, `--quiet`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use edgecl_trainer::bm25::{Bm25Index, Bm25Params};
use edgecl_trainer::cross_train::{train_cross_encoder, CrossLoss, CrossModel, CrossTrainConfig};
use edgecl_trainer::data::beir::{load_beir, BeirDataset, Query};
use edgecl_trainer::data::ReadOptions;
use edgecl_trainer::eval::{evaluate, Metric, Qrels, Run};
use edgecl_trainer::mining::{
    document_text, examples_from_beir, mine, Bm25Teacher, Corpus, MiningParams, Sampling,
};
use edgecl_trainer::runtime::Runtime;
use edgecl_trainer::teacher::{CrossEncoderScorer, Scorer};
use edgecl_trainer::train::{peak_rss_bytes, ConsoleHooks};

type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;

/// Command-line settings.
struct Args {
    data: PathBuf,
    model: PathBuf,
    out: PathBuf,
    window: std::ops::Range<usize>,
    top_k: usize,
    queries: usize,
    floor: bool,
    quiet: bool,
    cfg: CrossTrainConfig,
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse_args() -> BoxResult<Args> {
    let mut a = Args {
        data: PathBuf::from("../shared/data/scifact"),
        model: std::env::var_os("EDGECL_MINILM_DIR").map(PathBuf::from).unwrap_or_default(),
        out: PathBuf::from("runs/scifact-cross"),
        window: 0..30,
        top_k: 20,
        queries: usize::MAX,
        floor: false,
        quiet: false,
        cfg: CrossTrainConfig {
            negatives: 3,
            max_len: 192,
            max_query_tokens: 64,
            max_batch_tokens: 3072,
            max_steps: 60,
            lr: 3e-5,
            warmup_steps: 6,
            ..CrossTrainConfig::default()
        },
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--data" => a.data = value()?.into(),
            "--model" => a.model = value()?.into(),
            "--out" => a.out = value()?.into(),
            "--steps" => a.cfg.max_steps = value()?.parse()?,
            "--negatives" => a.cfg.negatives = value()?.parse()?,
            "--max-len" => a.cfg.max_len = value()?.parse()?,
            "--batch-tokens" => a.cfg.max_batch_tokens = value()?.parse()?,
            "--lr" => a.cfg.lr = value()?.parse()?,
            "--warmup" => a.cfg.warmup_steps = value()?.parse()?,
            "--seed" => a.cfg.seed = value()?.parse()?,
            "--threads" => a.cfg.threads = value()?.parse()?,
            "--loss" => {
                a.cfg.loss = match value()?.as_str() {
                    "listwise" => CrossLoss::Listwise,
                    "pointwise" => CrossLoss::Pointwise,
                    o => return Err(format!("--loss {o:?}: listwise or pointwise").into()),
                }
            }
            "--window" => {
                let v = value()?;
                let (s, e) = v.split_once("..").ok_or(format!("--window {v:?}: want A..B"))?;
                a.window = s.parse()?..e.parse()?;
            }
            "--top-k" => a.top_k = value()?.parse()?,
            "--queries" => a.queries = value()?.parse()?,
            "--floor" => a.floor = true,
            "--quiet" => a.quiet = true,
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    if a.model.as_os_str().is_empty() {
        return Err("--model <all-MiniLM-L6-v2 folder> (or EDGECL_MINILM_DIR) is required".into());
    }
    if a.top_k < 10 {
        return Err("--top-k must be at least 10 (nDCG@10 is reported)".into());
    }
    a.cfg.validate()?;
    Ok(a)
}

fn run(a: &Args) -> BoxResult<()> {
    let cfg = &a.cfg;
    println!("load: {}", load_average());
    println!(
        "settings: {} steps of <= {} padded tokens, {:?}, 1 + {} pairs per query, max {} \
         tokens per pair, lr {:.0e}, BM25 negatives from ranks {:?}; rerank BM25 top {}",
        cfg.max_steps,
        cfg.max_batch_tokens,
        cfg.loss,
        cfg.negatives,
        cfg.max_len,
        cfg.lr,
        a.window,
        a.top_k
    );

    // ---- training examples with BM25 hard negatives --------------------------------------
    let t = Instant::now();
    let train = load_beir(&a.data, "train", ReadOptions::STRICT)?;
    let examples = examples_from_beir(&train.queries, &train.corpus, &train.qrels);
    let corpus = Corpus::from_documents(&train.corpus)?;
    let params = MiningParams {
        window: a.window.clone(),
        k: cfg.negatives,
        sampling: Sampling::RandomInWindow { seed: cfg.seed },
        keep_scores: false,
        ..MiningParams::default()
    };
    let mined = mine(&examples, &corpus, &Bm25Teacher { params: Bm25Params::default() }, &params)?;
    println!("mining: {} in {:.1} s", mined.report, t.elapsed().as_secs_f64());

    // ---- train from MiniLM ---------------------------------------------------------------
    let model = CrossModel::from_pretrained(&a.model, cfg.seed)?;
    let mut hooks = ConsoleHooks::new(a.quiet);
    let (model, report) = train_cross_encoder(model, &mined.examples, cfg, &mut hooks)?;
    let rss = peak_rss_bytes().map_or("unknown".to_string(), |b| format!("{:.2} GB", gib(b)));
    println!(
        "training: {} steps, {} pairs ({} groups, {} examples short of negatives) in {:.0} s; \
         loss {:.4} over the first 5 steps, {:.4} over the last 5; peak RSS so far {rss}",
        report.steps,
        report.pairs,
        report.groups,
        report.skipped_examples,
        report.seconds,
        mean(&report.losses[..report.losses.len().min(5)]),
        mean(&report.losses[report.losses.len().saturating_sub(5)..]),
    );
    model.save(&a.out)?;
    println!("saved {}", a.out.display());

    // ---- test: BM25, then BM25 reranked ----------------------------------------------------
    let test = load_beir(&a.data, "test", ReadOptions::STRICT)?;
    let index = Bm25Index::from_documents(&test.corpus, Bm25Params::default())?;
    let queries: Vec<_> = test.queries.iter().take(a.queries).cloned().collect();
    let bm25 = index.search_batch(&queries, a.top_k);
    let qrels = qrels_of(&test, &queries);
    let metrics = [Metric::Ndcg(10), Metric::Recall(a.top_k)];
    let base = evaluate(&qrels, &bm25, &metrics)?;
    println!(
        "BM25: nDCG@10 {:.4}, Recall@{} {:.4} ({} test queries)",
        base.mean[0],
        a.top_k,
        base.mean[1],
        base.per_query.len()
    );

    let threads = if cfg.threads == 0 { 2 } else { cfg.threads };
    let scorer = CrossEncoderScorer::from_dir(&a.out, Runtime::new(threads)?)?;
    let (trained, secs) = rerank(&scorer, &test, &queries, &bm25)?;
    let reranked = evaluate(&qrels, &trained, &metrics)?;
    println!(
        "BM25 + trained cross-encoder: nDCG@10 {:.4} (reranking {} pairs took {:.0} s)",
        reranked.mean[0],
        pair_count(&bm25),
        secs
    );
    if a.floor {
        let untrained = CrossModel::from_pretrained(&a.model, cfg.seed)?;
        let mut scorer = untrained.into_scorer(Runtime::new(threads)?)?;
        scorer.max_len = cfg.max_len;
        scorer.truncation = cfg.truncation();
        let (floor, secs) = rerank(&scorer, &test, &queries, &bm25)?;
        let floor = evaluate(&qrels, &floor, &metrics)?;
        println!(
            "BM25 + untrained cross-encoder (random classifier): nDCG@10 {:.4} ({:.0} s)",
            floor.mean[0], secs
        );
    }
    let rss = peak_rss_bytes().map_or("unknown".to_string(), |b| format!("{:.2} GB", gib(b)));
    println!("peak RSS {rss}; load at the end: {}", load_average());
    Ok(())
}

/// Judgments of the chosen queries only.
fn qrels_of(data: &BeirDataset, queries: &[Query]) -> Qrels {
    let judged = |q: &Query| data.qrels.get(&q.id).map(|j| (q.id.clone(), j.clone()));
    queries.iter().filter_map(judged).collect()
}

/// Rescores each query's BM25 list with `scorer`; returns the new run and
/// the seconds it took.
fn rerank(
    scorer: &CrossEncoderScorer,
    data: &BeirDataset,
    queries: &[Query],
    bm25: &Run,
) -> BoxResult<(Run, f64)> {
    let t = Instant::now();
    let texts: HashMap<&str, String> =
        data.corpus.iter().map(|d| (d.id.as_str(), document_text(d))).collect();
    let mut out = Run::new();
    for q in queries {
        let Some(list) = bm25.get(&q.id) else { continue };
        let docs: Vec<&str> = list.iter().map(|(id, _)| texts[id.as_str()].as_str()).collect();
        let scores = scorer.score(&q.text, &docs)?;
        let ranked = list.iter().zip(scores).map(|((id, _), s)| (id.clone(), f64::from(s)));
        out.insert(q.id.clone(), ranked.collect());
    }
    Ok((out, t.elapsed().as_secs_f64()))
}

fn pair_count(run: &Run) -> usize {
    run.values().map(Vec::len).sum()
}

fn mean(v: &[f32]) -> f32 {
    v.iter().sum::<f32>() / v.len().max(1) as f32
}

fn gib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 30) as f64
}

/// The 1-, 5- and 15-minute load averages, as `uptime` prints them.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}
