//! Times the int8 GEMM on given shapes and prints one line of GOP/s per
//! (shape, tier, threads), for scripts that set it beside other runtimes.
//!
//! ```text
//! cargo run --release -p edgecl-benches --example int8_gops -- \
//!     --m 2048 --shapes 128x128,1024x1024 --threads 1,2 --secs 1
//! ```
//!
//! A shape is `KxN`. A is u8 (m x k), B is i8 weights stored n x k and
//! packed once, output raw i32. Every tier variant with a distinct
//! microkernel runs unless `--tiers` names kernels (as `int8::kernel_name`
//! prints them). Each line reports the median of repeated calls within
//! `--secs` after one warm-up call; output lines are
//! `int8 m=.. k=.. n=.. threads=.. kernel=.. gops=.. best_gops=.. median_ms=.. runs=..`.
//!
//! `--peak 1` first prints the issue peak of `vpdpbusd` on one core: 24
//! independent 512-bit accumulators in registers, no memory traffic, as
//! `int8 peak kernel=vpdpbusd-zmm gops=..` (x86-64 with AVX-512 VNNI only).

use std::time::{Duration, Instant};

use edgecl_kernels::dispatch::Tier;
use edgecl_kernels::int8::{self, AView, BLayout, PackedB};

struct Args {
    m: usize,
    shapes: Vec<(usize, usize)>,
    threads: Vec<usize>,
    tiers: Option<Vec<String>>,
    secs: f64,
    peak: bool,
}

fn parse_list<T: std::str::FromStr>(flag: &str, s: &str) -> Result<Vec<T>, String> {
    s.split(',')
        .map(|v| v.trim().parse().map_err(|_| format!("{flag}: cannot parse {v:?}")))
        .collect()
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        m: 2048,
        shapes: vec![(128, 128)],
        threads: vec![1, 2],
        tiers: None,
        secs: 1.0,
        peak: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let val = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--m" => args.m = val.parse().map_err(|_| format!("--m: cannot parse {val:?}"))?,
            "--shapes" => {
                args.shapes = val
                    .split(',')
                    .map(|s| {
                        let (k, n) =
                            s.split_once('x').ok_or(format!("--shapes: {s:?} is not KxN"))?;
                        let k = k.parse().map_err(|_| format!("--shapes: bad k in {s:?}"))?;
                        let n = n.parse().map_err(|_| format!("--shapes: bad n in {s:?}"))?;
                        Ok((k, n))
                    })
                    .collect::<Result<_, String>>()?
            }
            "--threads" => args.threads = parse_list("--threads", &val)?,
            "--tiers" => args.tiers = Some(val.split(',').map(str::to_string).collect()),
            "--peak" => args.peak = val == "1",
            "--secs" => {
                args.secs = val.parse().map_err(|_| format!("--secs: cannot parse {val:?}"))?
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(args)
}

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

/// Register-only `vpdpbusd` throughput of one core, in GOP/s (2 x 64 per
/// instruction), or `None` without AVX-512 VNNI.
#[cfg(target_arch = "x86_64")]
fn vnni_peak() -> Option<f64> {
    use std::arch::x86_64::*;

    /// # Safety
    ///
    /// The CPU has AVX-512 F and VNNI.
    #[target_feature(enable = "avx512f,avx512vnni")]
    unsafe fn spin(iters: u64) -> i32 {
        let a = _mm512_set1_epi32(0x0101_0101);
        let b = _mm512_set1_epi32(0x0102_0304);
        let mut acc = [_mm512_setzero_si512(); 24];
        for _ in 0..iters {
            for x in acc.iter_mut() {
                *x = _mm512_dpbusd_epi32(*x, a, b);
            }
        }
        // Fold so that no chain is dead code.
        let mut s = _mm512_setzero_si512();
        for x in acc {
            s = _mm512_add_epi32(s, x);
        }
        _mm512_reduce_add_epi32(s)
    }

    if !(std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512vnni"))
    {
        return None;
    }
    let iters = 100_000u64;
    let mut best = f64::MAX;
    for _ in 0..300 {
        let t = Instant::now();
        // SAFETY: both features were detected above.
        std::hint::black_box(unsafe { spin(std::hint::black_box(iters)) });
        best = best.min(t.elapsed().as_secs_f64());
    }
    Some(iters as f64 * 24.0 * 128.0 / best / 1e9)
}

#[cfg(not(target_arch = "x86_64"))]
fn vnni_peak() -> Option<f64> {
    None
}

fn main() {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("int8_gops: {e}");
            std::process::exit(2);
        }
    };
    let mut tiers: Vec<Tier> = Vec::new();
    for t in Tier::all_variants() {
        let name = int8::kernel_name(t);
        let wanted = args.tiers.as_ref().is_none_or(|w| w.iter().any(|x| x == name));
        if wanted && !tiers.iter().any(|o| int8::kernel_name(*o) == name) {
            tiers.push(t);
        }
    }
    if args.peak {
        match vnni_peak() {
            Some(g) => println!("int8 peak kernel=vpdpbusd-zmm gops={g:.1}"),
            None => println!("int8 peak unavailable: no AVX-512 VNNI"),
        }
    }
    let m = args.m;
    for &(k, n) in &args.shapes {
        let a = bytes(m * k, 1);
        let w: Vec<i8> = bytes(n * k, 2).into_iter().map(|v| v as i8).collect();
        let packed = PackedB::new(k, n, &w, BLayout::NByK { ldw: k }).expect("packing B");
        let view = AView::u8(&a, m, k, k).expect("view of A");
        let mut out = vec![0i32; m * n];
        for &tier in &tiers {
            for &threads in &args.threads {
                let pool =
                    rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("pool");
                let mut call = || {
                    let t = Instant::now();
                    pool.install(|| int8::gemm_i32_with(tier, view, &packed, &mut out, n))
                        .expect("gemm");
                    t.elapsed()
                };
                call();
                let mut times = Vec::new();
                let start = Instant::now();
                while times.len() < 3
                    || (start.elapsed() < Duration::from_secs_f64(args.secs)
                        && times.len() < 10_000)
                {
                    times.push(call());
                }
                times.sort();
                let median = times[times.len() / 2].as_secs_f64();
                let best = times[0].as_secs_f64();
                // The answer, spot-checked against a plain dot product.
                let (i, j) = (m - 1, n / 2);
                let want: i32 =
                    (0..k).map(|p| i32::from(a[i * k + p]) * i32::from(w[j * k + p])).sum();
                assert_eq!(out[i * n + j], want, "{tier} at ({i}, {j})");
                let ops = 2.0 * (m * n * k) as f64;
                let (gops, best_gops) = (ops / median / 1e9, ops / best / 1e9);
                println!(
                    "int8 m={m} k={k} n={n} threads={threads} kernel={} gops={gops:.1} \
                     best_gops={best_gops:.1} median_ms={:.3} runs={}",
                    int8::kernel_name(tier),
                    median * 1e3,
                    times.len()
                );
            }
        }
    }
}
