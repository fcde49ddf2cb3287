//! Encoder inference throughput: the micro and tiny presets with random
//! weights, f32 against int8, batch 1 and 16 of 32-token sequences, timed
//! from token ids to normalised embeddings (tokenization excluded).
//!
//! Names are `encoder/<preset>/<precision>/b<batch>x<seq>`; throughput is
//! in sentences. `EDGECL_BENCH_SECS` sets the measurement time per case
//! (default 2 s). Before timing, each int8 model's embeddings are compared
//! with the f32 model's and the mean cosine printed beside the numbers.
//! Post-norm blocks are used so the models are plain BERT, the shape the
//! peer script (`benches/scripts/encoder_peers.py`) builds in PyTorch.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use edgecl_runtime::encoder::{EncoderConfig, NormPlacement};
use edgecl_runtime::infer::{InferenceModel, Precision};
use edgecl_runtime::tokenizer::{Tokenizer, Vocab};
use edgecl_runtime::{init, ParamSet};

const VOCAB: usize = 8192;
const SEQ: usize = 32;

/// A random model of a preset at a precision.
fn model(preset: &str, precision: Precision) -> InferenceModel {
    let config = EncoderConfig {
        norm: NormPlacement::Post,
        ..EncoderConfig::preset(preset, VOCAB).unwrap()
    };
    let mut ps = ParamSet::new();
    for (i, (name, dims)) in config.param_names().into_iter().enumerate() {
        ps.add(&name, init::normal(&dims, 0.05, 1, i as u64).unwrap(), true).unwrap();
    }
    let mut tokens: Vec<String> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"].map(String::from).to_vec();
    tokens.extend((tokens.len()..VOCAB).map(|i| format!("w{i}")));
    let tokenizer = Tokenizer::new(Vocab::from_tokens(tokens, "bench vocab").unwrap());
    InferenceModel::from_params(&config, &ps, tokenizer, precision).unwrap()
}

/// `[batch, SEQ]` ids: [CLS], deterministic word ids, [SEP]; mask all ones.
fn batch(n: usize) -> (Vec<u32>, Vec<u8>) {
    let mut ids = Vec::with_capacity(n * SEQ);
    for b in 0..n {
        ids.push(2);
        ids.extend((1..SEQ - 1).map(|j| 4 + ((b * 7919 + j * 104_729) % (VOCAB - 4)) as u32));
        ids.push(3);
    }
    (ids, vec![1; n * SEQ])
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let n = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (n(a) * n(b))
}

fn bench(c: &mut Criterion) {
    let secs: f64 =
        std::env::var("EDGECL_BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(2.0);
    let mut g = c.benchmark_group("encoder");
    g.measurement_time(Duration::from_secs_f64(secs))
        .warm_up_time(Duration::from_millis(300))
        .sample_size(10);
    for preset in ["micro", "tiny"] {
        let f32_model = model(preset, Precision::F32);
        let int8_model = model(preset, Precision::Int8);
        let (ids, mask) = batch(16);
        let (a, b) = (
            f32_model.embed_tokens(&ids, &mask, SEQ).unwrap(),
            int8_model.embed_tokens(&ids, &mask, SEQ).unwrap(),
        );
        let dim = f32_model.dim();
        let mean = a.chunks(dim).zip(b.chunks(dim)).map(|(x, y)| cosine(x, y)).sum::<f32>() / 16.0;
        println!("encoder/{preset}: int8 vs f32 mean cosine {mean:.5} over 16 sequences");
        for (model, precision) in [(&f32_model, "f32"), (&int8_model, "int8")] {
            for n in [1, 16] {
                let (ids, mask) = batch(n);
                g.throughput(Throughput::Elements(n as u64));
                g.bench_function(
                    BenchmarkId::from_parameter(format!("{preset}/{precision}/b{n}x{SEQ}")),
                    |bch| bch.iter(|| model.embed_tokens(&ids, &mask, SEQ).unwrap()),
                );
            }
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
