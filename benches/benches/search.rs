//! Search kernels: Hamming top-10 over 256-bit codes (one query and a batch
//! of 8), int8 and f32 one-to-many scans, and the 4-bit PQ fast-scan with
//! M = 16, each on every tier this CPU runs.
//!
//! Short by default: N = 65 536 rows. `EDGECL_BENCH_N=1000000` asks for the
//! 1M-row sizes; `EDGECL_BENCH_SECS` sets the measurement time (default
//! 1 s). Throughput is reported in bytes of codes or rows read per query.
//! Every benchmark checks its answer against the scalar tier once before
//! timing, so a wrong fast path cannot post a time.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use edgecl_kernels::dispatch::Tier;
use edgecl_kernels::pq::fastscan::{self, PackedCodes, QuantizedTable};
use edgecl_kernels::search;
use std::hint::black_box;
use std::time::Duration;

fn rows() -> usize {
    std::env::var("EDGECL_BENCH_N").ok().and_then(|s| s.parse().ok()).unwrap_or(1 << 16)
}

fn config() -> Criterion {
    let secs: f64 =
        std::env::var("EDGECL_BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(1.0);
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs_f64(secs))
}

/// A deterministic xorshift stream.
fn stream(seed: u64) -> impl FnMut() -> u64 {
    let mut s = seed | 1;
    move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    }
}

fn hamming(c: &mut Criterion) {
    let n = rows();
    for words in [4usize, 8, 16] {
        let mut r = stream(1);
        let codes: Vec<u64> = (0..n * words).map(|_| r()).collect();
        let queries: Vec<u64> = (0..8 * words).map(|_| r()).collect();
        let q = &queries[..words];
        let want = search::hamming_topk_with(Tier::scalar(), q, &codes, 10).unwrap();
        let mut g = c.benchmark_group(format!("hamming/u64x{words}/n={n}"));
        g.throughput(Throughput::Bytes((n * words * 8) as u64));
        for tier in Tier::all_variants() {
            assert_eq!(search::hamming_topk_with(tier, q, &codes, 10).unwrap(), want);
            let mut out = vec![0u32; n];
            g.bench_function(BenchmarkId::new("scan", tier), |b| {
                b.iter(|| search::hamming_with(tier, black_box(q), &codes, &mut out).unwrap())
            });
            if words == 4 {
                g.bench_function(BenchmarkId::new("top10", tier), |b| {
                    b.iter(|| search::hamming_topk_with(tier, black_box(q), &codes, 10).unwrap())
                });
                g.bench_function(BenchmarkId::new("top10_batch8_per_query", tier), |b| {
                    b.iter_custom(|iters| {
                        let t = std::time::Instant::now();
                        for _ in 0..iters {
                            let r =
                                search::hamming_topk_batch_with(tier, words, &queries, &codes, 10);
                            black_box(r.unwrap());
                        }
                        t.elapsed() / 8
                    })
                });
            }
        }
        g.finish();
    }
}

fn dense(c: &mut Criterion) {
    let n = rows();
    let mut r = stream(2);
    let d8 = 256;
    let rows_i8: Vec<i8> = (0..n * d8).map(|_| r() as i8).collect();
    let q8: Vec<i8> = (0..d8).map(|_| r() as i8).collect();
    let mut g = c.benchmark_group(format!("scan/i8/d={d8}/n={n}"));
    g.throughput(Throughput::Bytes((n * d8) as u64));
    let mut out = vec![0i32; n];
    for tier in Tier::all_variants() {
        g.bench_function(BenchmarkId::new("dot", tier), |b| {
            b.iter(|| search::dot_i8_with(tier, black_box(&q8), &rows_i8, &mut out).unwrap())
        });
    }
    g.finish();
    drop(rows_i8);

    let df = 128;
    let rows_f: Vec<f32> = (0..n * df).map(|_| (r() >> 40) as f32 / (1u64 << 24) as f32).collect();
    let qf: Vec<f32> = (0..df).map(|_| (r() >> 40) as f32 / (1u64 << 24) as f32).collect();
    let mut g = c.benchmark_group(format!("scan/f32/d={df}/n={n}"));
    g.throughput(Throughput::Bytes((n * df * 4) as u64));
    let mut out = vec![0f32; n];
    for tier in Tier::all_variants() {
        g.bench_function(BenchmarkId::new("dot", tier), |b| {
            b.iter(|| search::dot_f32_with(tier, black_box(&qf), &rows_f, &mut out).unwrap())
        });
        g.bench_function(BenchmarkId::new("l2sq", tier), |b| {
            b.iter(|| search::l2sq_f32_with(tier, black_box(&qf), &rows_f, &mut out).unwrap())
        });
        g.bench_function(BenchmarkId::new("dot_top10", tier), |b| {
            b.iter(|| search::dot_f32_topk_with(tier, black_box(&qf), &rows_f, 10).unwrap())
        });
    }
    g.finish();
}

fn pq_fastscan(c: &mut Criterion) {
    let n = rows();
    let m = 16;
    let mut r = stream(3);
    let codes: Vec<u8> = (0..n * m).map(|_| (r() & 15) as u8).collect();
    let packed = PackedCodes::pack(&codes, m).unwrap();
    let table: Vec<f32> = (0..m * 16).map(|_| (r() >> 40) as f32 / (1u64 << 20) as f32).collect();
    let qt = QuantizedTable::new(&table, m, edgecl_kernels::pq::Metric::L2).unwrap();
    let mut want = vec![0u16; n];
    fastscan::scan_with(Tier::scalar(), &qt, &packed, &mut want).unwrap();
    let mut g = c.benchmark_group(format!("pq4_fastscan/m={m}/n={n}"));
    g.throughput(Throughput::Bytes(packed.bytes().len() as u64));
    let mut out = vec![0u16; n];
    for tier in Tier::all_variants() {
        fastscan::scan_with(tier, &qt, &packed, &mut out).unwrap();
        assert_eq!(out, want, "tier {tier}");
        g.bench_function(BenchmarkId::new("scan", tier), |b| {
            b.iter(|| fastscan::scan_with(tier, black_box(&qt), &packed, &mut out).unwrap())
        });
        g.bench_function(BenchmarkId::new("search_top10_rerank100", tier), |b| {
            b.iter(|| {
                let m = edgecl_kernels::pq::Metric::L2;
                fastscan::search_with(tier, black_box(&table), m, &packed, 10, 100).unwrap()
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = hamming, dense, pq_fastscan
}
criterion_main!(benches);
