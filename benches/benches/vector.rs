//! Vector kernels per tier beside the scalar reference: dot and axpy in
//! bytes moved per second, softmax and layer norm rows, GELU and exp in
//! elements per second.
//!
//! Names read `vector/<op>_f32/<tier>/<shape>`, every tier this CPU runs,
//! scalar first, so the speedup is the ratio of two lines in one group.
//! Inputs are deterministic, fit in L1 or L2, and are reused across
//! iterations, so these are in-cache throughputs, not memory bandwidth.
//! `EDGECL_BENCH_MS` sets the measurement time per benchmark (default 300
//! ms); `cargo bench -- --test` runs each once.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use edgecl_kernels::dispatch::Tier;
use edgecl_kernels::vector;

/// Values in [-4, 4) from a fixed linear congruential sequence.
fn data(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (s >> 8) as f32 / (1u32 << 24) as f32 * 8.0 - 4.0
        })
        .collect()
}

fn bench_dot_axpy(c: &mut Criterion) {
    for n in [4096usize, 65536] {
        let (a, b) = (data(n, 1), data(n, 2));
        let mut g = c.benchmark_group("vector/dot_f32");
        g.throughput(Throughput::Bytes((2 * 4 * n) as u64));
        for t in Tier::all_available() {
            g.bench_with_input(
                BenchmarkId::new(t.to_string(), format!("n={n}")),
                &n,
                |bench, _| {
                    bench.iter(|| vector::dot_with(t, black_box(&a), black_box(&b)).unwrap())
                },
            );
        }
        g.finish();

        // axpy reads x and y and writes y: 12 bytes per element.
        let mut g = c.benchmark_group("vector/axpy_f32");
        g.throughput(Throughput::Bytes((3 * 4 * n) as u64));
        let mut y = data(n, 3);
        for t in Tier::all_available() {
            g.bench_with_input(
                BenchmarkId::new(t.to_string(), format!("n={n}")),
                &n,
                |bench, _| {
                    // alpha is small so y stays bounded over many iterations.
                    bench.iter(|| {
                        vector::axpy_with(t, 1e-6, black_box(&a), black_box(&mut y)).unwrap()
                    })
                },
            );
        }
        g.finish();
    }
}

fn bench_rows(c: &mut Criterion) {
    for n in [64usize, 256, 1024] {
        let x = data(n, 4);
        let mut row = x.clone();
        let mut g = c.benchmark_group("vector/softmax_row_f32");
        g.throughput(Throughput::Elements(n as u64));
        for t in Tier::all_available() {
            g.bench_with_input(
                BenchmarkId::new(t.to_string(), format!("cols={n}")),
                &n,
                |bench, _| {
                    bench.iter(|| {
                        // Restore the row each time: softmax is in place.
                        row.copy_from_slice(&x);
                        vector::softmax_with(t, black_box(&mut row))
                    })
                },
            );
        }
        g.finish();
    }
    for n in [256usize, 384] {
        let (x, gamma, beta) = (data(n, 5), data(n, 6), data(n, 7));
        let mut out = vec![0.0f32; n];
        let mut g = c.benchmark_group("vector/layernorm_row_f32");
        g.throughput(Throughput::Elements(n as u64));
        for t in Tier::all_available() {
            g.bench_with_input(
                BenchmarkId::new(t.to_string(), format!("cols={n}")),
                &n,
                |bench, _| {
                    bench.iter(|| {
                        vector::layernorm_with(t, black_box(&x), &gamma, &beta, 1e-5, &mut out)
                            .unwrap()
                    })
                },
            );
        }
        g.finish();
    }
}

fn bench_transcendental(c: &mut Criterion) {
    let n = 4096usize;
    let x = data(n, 8);
    let mut out = vec![0.0f32; n];
    type Map = fn(Tier, &[f32], &mut [f32]) -> Result<(), edgecl_kernels::ShapeError>;
    let ops: [(&str, Map); 3] = [
        ("vector/gelu_f32", vector::gelu_with),
        ("vector/exp_f32", vector::exp_with),
        ("vector/erf_f32", vector::erf_with),
    ];
    for (name, f) in ops {
        let mut g = c.benchmark_group(name);
        g.throughput(Throughput::Elements(n as u64));
        for t in Tier::all_available() {
            g.bench_with_input(
                BenchmarkId::new(t.to_string(), format!("n={n}")),
                &n,
                |bench, _| bench.iter(|| f(t, black_box(&x), black_box(&mut out)).unwrap()),
            );
        }
        g.finish();
    }
    let dy = data(n, 9);
    let mut g = c.benchmark_group("vector/gelu_backward_f32");
    g.throughput(Throughput::Elements(n as u64));
    for t in Tier::all_available() {
        g.bench_with_input(BenchmarkId::new(t.to_string(), format!("n={n}")), &n, |bench, _| {
            bench.iter(|| vector::gelu_backward_with(t, black_box(&x), &dy, &mut out).unwrap())
        });
    }
    g.finish();
}

fn config() -> Criterion {
    let ms = std::env::var("EDGECL_BENCH_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    Criterion::default()
        .measurement_time(Duration::from_millis(ms))
        .warm_up_time(Duration::from_millis(ms / 3 + 1))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_dot_axpy, bench_rows, bench_transcendental
}
criterion_main!(benches);
