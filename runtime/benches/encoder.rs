//! The trainable encoder's graph forward pass and a training step, on
//! randomly initialised weights so no model download is needed (the
//! arithmetic does not depend on the values): sentences per second.
//!
//! - `forward/f32/minilm-shape/b32-t64`: all-MiniLM-L6-v2's shape (6 post-norm
//!   layers, width 384), 32 rows of 64 tokens, gradients off, eval mode;
//! - `train_step/f32/micro/b32-t32`: forward, backward and AdamW on the
//!   micro preset (2 pre-norm layers of width 128) with dropout.
//!
//! Threads: `EDGECL_BENCH_THREADS` (default: all cores); measurement time:
//! `EDGECL_BENCH_SECS` (default 2).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use edgecl_runtime::encoder::{Encoder, EncoderConfig, TokenBatch};
use edgecl_runtime::optim::{AdamW, AdamWConfig, Optimizer};
use edgecl_runtime::{Graph, Runtime};

/// `b` rows of `t` tokens: ids spread over the vocabulary, rows of varying
/// real length so the mask matters.
fn batch(b: usize, t: usize, vocab: u32) -> TokenBatch {
    let mut out = TokenBatch {
        ids: vec![0; b * t],
        type_ids: vec![0; b * t],
        mask: vec![0.0; b * t],
        batch: b,
        seq: t,
    };
    for r in 0..b {
        let len = t - (r * 7) % (t / 2);
        for j in 0..len {
            out.ids[r * t + j] = ((r * 131 + j * 977) as u32) % vocab;
            out.mask[r * t + j] = 1.0;
        }
    }
    out
}

fn runtime() -> Runtime {
    match std::env::var("EDGECL_BENCH_THREADS").ok().and_then(|s| s.parse().ok()) {
        Some(n) => Runtime::new(n).expect("runtime"),
        None => Runtime::with_available_parallelism().expect("runtime"),
    }
}

fn bench(c: &mut Criterion) {
    let secs = std::env::var("EDGECL_BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(2.0);
    let mut grp = c.benchmark_group("encoder");
    grp.measurement_time(Duration::from_secs_f64(secs))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(10);

    // Inference-shaped forward on the MiniLM shape.
    let enc = Encoder::new(EncoderConfig::minilm()).expect("config");
    let mut g = Graph::new(runtime(), 0);
    g.set_params(enc.init_params(1).expect("init"));
    g.set_training(false);
    g.set_grad_enabled(false);
    let b = batch(32, 64, 30522);
    grp.throughput(Throughput::Elements(32));
    grp.bench_function("forward/f32/minilm-shape/b32-t64", |bench| {
        bench.iter(|| {
            g.reset();
            let y = enc.forward(&mut g, &b).expect("forward");
            g.value(y).expect("value").numel()
        })
    });

    // A full training step on the micro preset: two forwards (queries,
    // documents), in-batch InfoNCE, backward, AdamW.
    let enc = Encoder::new(EncoderConfig::micro(8192)).expect("config");
    let mut g = Graph::new(runtime(), 0);
    g.set_params(enc.init_params(1).expect("init"));
    let mut opt = AdamW::new(g.params(), AdamWConfig::default());
    let (q, d) = (batch(32, 32, 8192), batch(32, 32, 4000));
    let targets: Vec<u32> = (0..32).collect();
    grp.bench_function("train_step/f32/micro/b32-t32", |bench| {
        bench.iter(|| {
            g.reset();
            let qv = enc.forward(&mut g, &q).expect("forward");
            let dv = enc.forward(&mut g, &d).expect("forward");
            let s = g.similarity(qv, dv).expect("similarity");
            let s = g.scale(s, 20.0).expect("scale");
            let loss = g.cross_entropy(s, &targets).expect("loss");
            g.backward(loss).expect("backward");
            opt.step_graph(&mut g, 1e-4).expect("step");
            g.params_mut().zero_grad();
        })
    });
    grp.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
