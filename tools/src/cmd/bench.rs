//! `edgecl bench`: kernel throughput per ISA tier beside the machine's
//! measured peaks, one thread unless `--threads` says otherwise.
//!
//! This is a quick health check of a machine (how close each tier gets to
//! what the core can issue); the criterion benches in `benches/` are the
//! careful measurements.

use std::hint::black_box;
use std::time::Instant;

use edgecl_kernels::dispatch::Tier;
use edgecl_kernels::{gemm, peak, vector, MatMut, MatRef};

use super::CmdResult;
use crate::error::Context;
use crate::output::out;

#[derive(clap::Args)]
pub struct Args {
    /// Seconds to spend on each measurement.
    #[arg(long, default_value_t = 0.3)]
    seconds: f64,
    /// Threads for the GEMM measurements.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// GEMM shape as M,N,K.
    #[arg(long, default_value = "2048,384,384", value_parser = parse_shape)]
    shape: (usize, usize, usize),
}

fn parse_shape(s: &str) -> Result<(usize, usize, usize), String> {
    let v: Vec<usize> = s
        .split(',')
        .map(|p| p.trim().parse::<usize>().map_err(|e| format!("{p:?}: {e}")))
        .collect::<Result<_, _>>()?;
    match v[..] {
        [m, n, k] if m > 0 && n > 0 && k > 0 => Ok((m, n, k)),
        _ => Err("expected three positive sizes M,N,K".into()),
    }
}

/// Calls `f` until `secs` have passed (at least twice) and returns the best
/// time of one call, in seconds.
fn best_time(secs: f64, mut f: impl FnMut()) -> f64 {
    f();
    let start = Instant::now();
    let mut best = f64::INFINITY;
    let mut runs = 0;
    while runs < 2 || start.elapsed().as_secs_f64() < secs {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_secs_f64());
        runs += 1;
    }
    best
}

pub fn run(args: &Args) -> CmdResult {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(args.threads).build().at("--threads")?;
    let (m, n, k) = args.shape;
    let a: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 13) as f32 - 6.0) / 8.0).collect();
    let b: Vec<f32> = (0..k * n).map(|i| ((i * 5 % 11) as f32 - 5.0) / 8.0).collect();
    let mut c = vec![0.0f32; m * n];
    let x: Vec<f32> = (0..4096).map(|i| (i % 17) as f32 / 17.0).collect();

    out!(
        "one thread's peaks, then kernels ({} thread(s) for GEMM, shape {m}x{n}x{k})",
        args.threads
    );
    out!(
        "{:<22} {:>12} {:>12} {:>14} {:>10} {:>12}",
        "tier",
        "f32 peak",
        "int8 peak",
        "sgemm NN",
        "of peak",
        "dot 4096"
    );
    out!(
        "{:<22} {:>12} {:>12} {:>14} {:>10} {:>12}",
        "",
        "GFLOP/s",
        "GOP/s",
        "GFLOP/s",
        "",
        "GB/s"
    );
    for t in Tier::all_variants() {
        let fpeak = peak::f32_flops(t, args.seconds).map(|f| f / 1e9);
        let ipeak = peak::int8_ops(t, args.seconds).map(|f| f / 1e9);
        // The scalar reference is a naive triple loop: time it on a slice
        // of the rows so the command stays quick.
        let rows = if t == Tier::scalar() { m.min(64) } else { m };
        let secs = pool.install(|| {
            best_time(args.seconds, || {
                let av = MatRef::row_major(&a[..rows * k], rows, k).expect("sized above");
                let bv = MatRef::row_major(&b, k, n).expect("sized above");
                let cv = MatMut::row_major(&mut c[..rows * n], rows, n).expect("sized above");
                gemm::sgemm_with(t, 1.0, av, bv, 0.0, cv).expect("shapes agree");
            })
        });
        let gflops = 2.0 * (rows * n * k) as f64 / secs / 1e9;
        let cell = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
        let share = fpeak.map_or("-".to_string(), |p| {
            format!("{:.0}%", 100.0 * gflops / (p * args.threads as f64))
        });
        let dsecs = best_time(args.seconds / 4.0, || {
            black_box(vector::dot_with(t, black_box(&x), black_box(&x)).expect("same length"));
        });
        let gbs = 2.0 * 4.0 * x.len() as f64 / dsecs / 1e9;
        out!(
            "{:<22} {:>12} {:>12} {gflops:>14.1} {share:>10} {gbs:>12.1}",
            t.to_string(),
            cell(fpeak),
            cell(ipeak)
        );
    }
    Ok(())
}
