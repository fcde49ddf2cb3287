//! int8 GEMM throughput: `C (m x n) i32 = A (m x k) u8 * B (k x n) i8`, B
//! prepacked as a linear layer's weights, per tier (VNNI on and off) and
//! with 1 and 2 rayon threads.
//!
//! Throughput is `2 m n k` elements per iteration, so criterion's "elem/s"
//! reads as integer operations per second (GOP/s at the G prefix).
//!
//! By default m = 2048 and k = n over {128, 256, 384, 1024}; set
//! `EDGECL_BENCH_INT8_FULL=1` for every (k, n) pair of that set and
//! `EDGECL_BENCH_SECS` for the measurement time (default 1 s). The scalar
//! tier runs only on the smallest shape. Each benchmark first checks a few
//! outputs against a plain dot product.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use edgecl_kernels::dispatch::{Isa, Tier};
use edgecl_kernels::int8::{self, AView, BLayout, PackedB};

const M: usize = 2048;
const SIZES: [usize; 4] = [128, 256, 384, 1024];

/// Deterministic bytes (xorshift64).
fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut s = seed | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 24) as u8
        })
        .collect()
}

/// One tier per distinct microkernel (VPOPCNTDQ does not change int8).
fn tiers() -> Vec<Tier> {
    let mut out: Vec<Tier> = Vec::new();
    for t in Tier::all_variants() {
        if !out.iter().any(|o| int8::kernel_name(*o) == int8::kernel_name(t)) {
            out.push(t);
        }
    }
    out
}

fn shapes() -> Vec<(usize, usize)> {
    if std::env::var_os("EDGECL_BENCH_INT8_FULL").is_some() {
        SIZES.iter().flat_map(|&k| SIZES.iter().map(move |&n| (k, n))).collect()
    } else {
        SIZES.iter().map(|&s| (s, s)).collect()
    }
}

fn bench_int8(c: &mut Criterion) {
    let secs: f64 =
        std::env::var("EDGECL_BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(1.0);
    let mut group = c.benchmark_group("int8_gemm_u8i8_i32");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs_f64(secs));

    for (k, n) in shapes() {
        let a = bytes(M * k, 1);
        let w: Vec<i8> = bytes(n * k, 2).into_iter().map(|v| v as i8).collect();
        // Weights stored n x k, the way linear layers keep them.
        let packed = PackedB::new(k, n, &w, BLayout::NByK { ldw: k }).expect("packing B");
        let view = AView::u8(&a, M, k, k).expect("view of A");
        let mut out = vec![0i32; M * n];
        group.throughput(Throughput::Elements((2 * M * n * k) as u64));

        for tier in tiers() {
            if tier.isa() == Isa::Scalar && (k, n) != (SIZES[0], SIZES[0]) {
                continue;
            }
            for threads in [1, 2] {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .expect("thread pool");
                // The answer first: a few outputs against plain dot products.
                pool.install(|| int8::gemm_i32_with(tier, view, &packed, &mut out, n))
                    .expect("gemm");
                for (i, j) in [(0, 0), (M / 2, n / 3), (M - 1, n - 1)] {
                    let want: i32 =
                        (0..k).map(|p| i32::from(a[i * k + p]) * i32::from(w[j * k + p])).sum();
                    assert_eq!(out[i * n + j], want, "{tier} at ({i}, {j})");
                }
                // The kernel name tells VNNI (vpdpbusd) from its fallback.
                let id = format!("{}/m{M}_k{k}_n{n}_wNxK/t{threads}", int8::kernel_name(tier));
                group.bench_function(BenchmarkId::from_parameter(id), |bch| {
                    bch.iter(|| {
                        pool.install(|| int8::gemm_i32_with(tier, view, &packed, &mut out, n))
                    })
                });
            }
        }
    }
    group.finish();
}

criterion_group!(benches, bench_int8);
criterion_main!(benches);
