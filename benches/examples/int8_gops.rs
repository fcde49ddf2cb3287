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
//! `int8 m=.. k=.. n=.. threads=.. kernel=.. gops=.. median_ms=.. runs=..`.

use std::time::{Duration, Instant};

use edgecl_kernels::dispatch::Tier;
use edgecl_kernels::int8::{self, AView, BLayout, PackedB};

struct Args {
    m: usize,
    shapes: Vec<(usize, usize)>,
    threads: Vec<usize>,
    tiers: Option<Vec<String>>,
    secs: f64,
}

fn parse_list<T: std::str::FromStr>(flag: &str, s: &str) -> Result<Vec<T>, String> {
    s.split(',')
        .map(|v| v.trim().parse().map_err(|_| format!("{flag}: cannot parse {v:?}")))
        .collect()
}

fn parse() -> Result<Args, String> {
    let mut args =
        Args { m: 2048, shapes: vec![(128, 128)], threads: vec![1, 2], tiers: None, secs: 1.0 };
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
                // The answer, spot-checked against a plain dot product.
                let (i, j) = (m - 1, n / 2);
                let want: i32 =
                    (0..k).map(|p| i32::from(a[i * k + p]) * i32::from(w[j * k + p])).sum();
                assert_eq!(out[i * n + j], want, "{tier} at ({i}, {j})");
                let gops = 2.0 * (m * n * k) as f64 / median / 1e9;
                println!(
                    "int8 m={m} k={k} n={n} threads={threads} kernel={} gops={gops:.1} median_ms={:.3} runs={}",
                    int8::kernel_name(tier),
                    median * 1e3,
                    times.len()
                );
            }
        }
    }
}
