//! f32 GEMM throughput: edgecl's tiers beside faer, gemm, matrixmultiply
//! and a C loop nest built with `-O3 -march=native`.
//!
//! Throughput is reported as criterion "elements" per second where one
//! element is one floating-point operation: a GEMM of m x n x k counts
//! `2 * m * n * k` (a multiply and an add per term), so `Gelem/s` reads as
//! GFLOP/s. Group names carry dtype, layout of op(A) and op(B) (N = as
//! stored row-major, T = stored transposed), shape `m x n x k` and the
//! thread count, e.g. `sgemm_flops/NT/2048x256x256/t2`.
//!
//! The default grid is small enough for a quick run: m = 2048 with
//! k = n in {128, 256, 384, 1024}, layout NN at 1 and 2 threads, plus NT and
//! TN at k = n = 256 on 1 thread. `EDGECL_BENCH_FULL=1` runs every pair of
//! k and n in {128, 256, 384, 1024} in NN, NT and TN at 1 and 2 threads.
//! The naive reference runs only at 128^3 (group `sgemm_reference`).
//!
//! Threads come from rayon pools of 1 and 2 threads; edgecl, faer and gemm
//! run inside them. matrixmultiply (built without its own threading) and
//! the C loop run single-threaded only. Before timing, every contender's
//! answer is compared with edgecl's best tier and the largest relative
//! difference is printed, so a fast wrong answer cannot pass unnoticed.
//!
//! Times: warm-up 1 s, measurement 2 s, 10 samples; criterion's
//! `--warm-up-time`, `--measurement-time` and `--sample-size` override them.
//! `EDGECL_BENCH_CPU_TIME=1` times by the CPU time of the measuring thread
//! instead of wall time and keeps only the single-threaded groups: on a
//! machine shared with other jobs that removes their time slices from the
//! figures (though not the cache misses they cause).

use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{BenchmarkId, Criterion, Throughput};
use edgecl_kernels::gemm::{scalar, sgemm_with};
use edgecl_kernels::{MatMut, MatRef, Tier};

// Built by `build.rs` from `c/*.c`.
#[link(name = "edgecl_bench_c", kind = "static")]
extern "C" {
    /// `c/sgemm_naive.c`: C = op(A) op(B), row-major, overwriting C.
    fn edgecl_bench_sgemm_naive(
        m: usize,
        n: usize,
        k: usize,
        a: *const f32,
        trans_a: i32,
        b: *const f32,
        trans_b: i32,
        c: *mut f32,
    );
    /// `c/thread_cpu_time.c`: CPU time of the calling thread in ns, or -1.
    fn edgecl_bench_thread_cpu_ns() -> i64;
}

/// Criterion measurement by the CPU time of the measuring thread.
///
/// On a machine shared with other jobs wall time counts their time slices
/// too; thread CPU time does not (caches they evict still cost). It only
/// sees the calling thread, so it is used for single-threaded groups alone.
struct ThreadCpuTime {
    wall: WallTime,
}

impl ThreadCpuTime {
    fn now() -> i64 {
        // SAFETY: the C function takes no arguments and only reads a clock.
        let ns = unsafe { edgecl_bench_thread_cpu_ns() };
        assert!(ns >= 0, "CLOCK_THREAD_CPUTIME_ID is unavailable");
        ns
    }
}

impl Measurement for ThreadCpuTime {
    type Intermediate = i64;
    type Value = Duration;

    fn start(&self) -> i64 {
        ThreadCpuTime::now()
    }
    fn end(&self, start: i64) -> Duration {
        Duration::from_nanos((ThreadCpuTime::now() - start).max(0) as u64)
    }
    fn add(&self, v1: &Duration, v2: &Duration) -> Duration {
        *v1 + *v2
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        self.wall.formatter()
    }
}

/// Largest relative difference accepted between two contenders' answers.
const AGREEMENT_TOL: f32 = 1e-4;

#[derive(Clone, Copy, Debug)]
enum Layout {
    NN,
    NT,
    TN,
}

impl Layout {
    fn trans_a(self) -> bool {
        matches!(self, Layout::TN)
    }
    fn trans_b(self) -> bool {
        matches!(self, Layout::NT)
    }
}

/// Operands of one shape and layout; A and B as stored (row-major).
struct Problem {
    m: usize,
    n: usize,
    k: usize,
    layout: Layout,
    a: Vec<f32>,
    b: Vec<f32>,
}

impl Problem {
    fn new(m: usize, n: usize, k: usize, layout: Layout) -> Problem {
        // Deterministic values in [-1, 1) from a multiplicative hash.
        let fill = |len: usize, salt: u64| -> Vec<f32> {
            (0..len as u64)
                .map(|i| {
                    let h = (i ^ salt).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
                    h as f32 / (1u64 << 23) as f32 - 1.0
                })
                .collect()
        };
        Problem { m, n, k, layout, a: fill(m * k, 1), b: fill(k * n, 2) }
    }

    fn a(&self) -> MatRef<'_> {
        if self.layout.trans_a() {
            MatRef::row_major(&self.a, self.k, self.m).unwrap().t()
        } else {
            MatRef::row_major(&self.a, self.m, self.k).unwrap()
        }
    }

    fn b(&self) -> MatRef<'_> {
        if self.layout.trans_b() {
            MatRef::row_major(&self.b, self.n, self.k).unwrap().t()
        } else {
            MatRef::row_major(&self.b, self.k, self.n).unwrap()
        }
    }

    fn flops(&self) -> u64 {
        2 * (self.m * self.n * self.k) as u64
    }

    fn edgecl(&self, tier: Tier, c: &mut [f32]) {
        let c = MatMut::row_major(c, self.m, self.n).unwrap();
        sgemm_with(tier, 1.0, self.a(), self.b(), 0.0, c).unwrap();
    }

    fn faer(&self, threads: usize, c: &mut [f32]) {
        use faer::{Accum, MatRef as FRef, Par};
        let a = if self.layout.trans_a() {
            FRef::from_row_major_slice(&self.a, self.k, self.m).transpose()
        } else {
            FRef::from_row_major_slice(&self.a, self.m, self.k)
        };
        let b = if self.layout.trans_b() {
            FRef::from_row_major_slice(&self.b, self.n, self.k).transpose()
        } else {
            FRef::from_row_major_slice(&self.b, self.k, self.n)
        };
        let dst = faer::MatMut::from_row_major_slice_mut(c, self.m, self.n);
        let par = if threads == 1 { Par::Seq } else { Par::rayon(threads) };
        faer::linalg::matmul::matmul(dst, Accum::Replace, a, b, 1.0f32, par);
    }

    fn gemm_crate(&self, threads: usize, c: &mut [f32]) {
        let (a, b) = (self.a(), self.b());
        let par = if threads == 1 {
            ::gemm::Parallelism::None
        } else {
            ::gemm::Parallelism::Rayon(threads)
        };
        assert_eq!(c.len(), self.m * self.n);
        // SAFETY: the strides describe the views `a` and `b`, which lie
        // inside their slices, and C is a dense m x n row-major slice; with
        // read_dst false C is only written.
        unsafe {
            ::gemm::gemm(
                self.m,
                self.n,
                self.k,
                c.as_mut_ptr(),
                1,
                self.n as isize,
                false,
                a.data().as_ptr(),
                a.col_stride() as isize,
                a.row_stride() as isize,
                b.data().as_ptr(),
                b.col_stride() as isize,
                b.row_stride() as isize,
                0.0f32,
                1.0f32,
                false,
                false,
                false,
                par,
            )
        }
    }

    fn matrixmultiply(&self, c: &mut [f32]) {
        let (a, b) = (self.a(), self.b());
        assert_eq!(c.len(), self.m * self.n);
        // SAFETY: as for `gemm_crate`; with beta 0 C is only written.
        unsafe {
            matrixmultiply::sgemm(
                self.m,
                self.k,
                self.n,
                1.0,
                a.data().as_ptr(),
                a.row_stride() as isize,
                a.col_stride() as isize,
                b.data().as_ptr(),
                b.row_stride() as isize,
                b.col_stride() as isize,
                0.0,
                c.as_mut_ptr(),
                self.n as isize,
                1,
            )
        }
    }

    fn c_naive(&self, c: &mut [f32]) {
        assert_eq!(c.len(), self.m * self.n);
        // SAFETY: A holds m * k floats and B k * n floats in the layout the
        // flags name, and C holds m * n floats, as the C function requires.
        unsafe {
            edgecl_bench_sgemm_naive(
                self.m,
                self.n,
                self.k,
                self.a.as_ptr(),
                self.layout.trans_a() as i32,
                self.b.as_ptr(),
                self.layout.trans_b() as i32,
                c.as_mut_ptr(),
            )
        }
    }
}

/// Largest |got - want| relative to the largest |want|; infinite when an
/// element of `got` is NaN (as an unwritten, NaN-filled output would be).
fn rel_diff(got: &[f32], want: &[f32]) -> f32 {
    let scale = want.iter().fold(1e-30f32, |s, w| s.max(w.abs()));
    let worst = got.iter().zip(want).fold(0.0f32, |d, (g, w)| {
        let e = (g - w).abs();
        if e.is_nan() {
            f32::INFINITY
        } else {
            d.max(e)
        }
    });
    worst / scale
}

/// A contender: name, whether it runs at this thread count, and the call.
type Run<'p> = Box<dyn Fn(&mut [f32]) + Sync + 'p>;

fn contenders<'p>(p: &'p Problem, threads: usize) -> Vec<(String, Run<'p>)> {
    let mut out: Vec<(String, Run<'p>)> = Vec::new();
    for tier in Tier::all_available() {
        out.push((format!("edgecl-{tier}"), Box::new(move |c| p.edgecl(tier, c))));
    }
    out.push(("faer".into(), Box::new(move |c| p.faer(threads, c))));
    out.push(("gemm".into(), Box::new(move |c| p.gemm_crate(threads, c))));
    if threads == 1 {
        out.push(("matrixmultiply".into(), Box::new(move |c| p.matrixmultiply(c))));
        // The C loop at its slowest (NT, no vectorisation) would need
        // minutes per sample at k = n = 1024; keep it to smaller shapes.
        if p.n * p.k <= 384 * 384 {
            out.push(("c-naive-O3".into(), Box::new(move |c| p.c_naive(c))));
        }
    }
    out
}

fn bench_shape<M>(crit: &mut Criterion<M>, pool: &rayon::ThreadPool, p: &Problem)
where
    M: Measurement + Sync,
    M::Value: Send,
{
    let threads = pool.current_num_threads();
    let group_name = format!("sgemm_flops/{:?}/{}x{}x{}/t{}", p.layout, p.m, p.n, p.k, threads);
    let mut want = vec![0.0f32; p.m * p.n];
    pool.install(|| p.edgecl(Tier::best(), &mut want));

    let mut group = crit.benchmark_group(&group_name);
    group.throughput(Throughput::Elements(p.flops()));
    for (name, run) in contenders(p, threads) {
        // Check the answer once before timing.
        let mut c = vec![f32::NAN; p.m * p.n];
        pool.install(|| run(&mut c));
        let diff = rel_diff(&c, &want);
        eprintln!("{group_name}/{name}: max relative difference to edgecl {diff:.2e}");
        assert!(diff <= AGREEMENT_TOL, "{group_name}/{name} disagrees with edgecl: {diff:e}");

        group.bench_function(BenchmarkId::from_parameter(&name), |bch| {
            pool.install(|| bch.iter(|| run(std::hint::black_box(&mut c))))
        });
    }
    group.finish();
}

fn bench_reference<M: Measurement>(crit: &mut Criterion<M>) {
    let p = Problem::new(128, 128, 128, Layout::NN);
    let mut group = crit.benchmark_group("sgemm_reference/NN/128x128x128/t1");
    group.throughput(Throughput::Elements(p.flops()));
    let mut c = vec![0.0f32; p.m * p.n];
    group.bench_function("scalar-reference", |bch| {
        bch.iter(|| {
            let cm = MatMut::row_major(&mut c, p.m, p.n).unwrap();
            scalar::sgemm(1.0, p.a(), p.b(), 0.0, cm).unwrap()
        })
    });
    let best = Tier::best();
    group.bench_function(format!("edgecl-{best}"), |bch| bch.iter(|| p.edgecl(best, &mut c)));
    group.finish();
}

fn main() {
    let full = std::env::var("EDGECL_BENCH_FULL").is_ok_and(|v| v == "1");
    let cpu_time = std::env::var("EDGECL_BENCH_CPU_TIME").is_ok_and(|v| v == "1");
    let pools: Vec<rayon::ThreadPool> = [1, 2]
        .into_iter()
        .map(|t| rayon::ThreadPoolBuilder::new().num_threads(t).build().unwrap())
        .collect();
    let sizes = [128usize, 256, 384, 1024];

    // (n, k, layout, threads) of every group to run.
    let mut grid: Vec<(usize, usize, Layout, usize)> = Vec::new();
    if full {
        for layout in [Layout::NN, Layout::NT, Layout::TN] {
            for threads in [1, 2] {
                for &k in &sizes {
                    for &n in &sizes {
                        grid.push((n, k, layout, threads));
                    }
                }
            }
        }
    } else {
        for threads in [1, 2] {
            for &s in &sizes {
                grid.push((s, s, Layout::NN, threads));
            }
        }
        grid.push((256, 256, Layout::NT, 1));
        grid.push((256, 256, Layout::TN, 1));
    }

    if cpu_time {
        // Thread CPU time sees one thread: single-threaded groups only.
        grid.retain(|g| g.3 == 1);
        run(
            configure(Criterion::default().with_measurement(ThreadCpuTime { wall: WallTime })),
            &pools,
            &grid,
        );
    } else {
        run(configure(Criterion::default()), &pools, &grid);
    }
}

/// The short default times; criterion's command line overrides them.
fn configure<M: Measurement>(crit: Criterion<M>) -> Criterion<M> {
    crit.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(10)
        .configure_from_args()
}

fn run<M>(
    mut crit: Criterion<M>,
    pools: &[rayon::ThreadPool],
    grid: &[(usize, usize, Layout, usize)],
) where
    M: Measurement + Sync,
    M::Value: Send,
{
    let m = 2048;
    for &(n, k, layout, threads) in grid {
        let p = Problem::new(m, n, k, layout);
        bench_shape(&mut crit, &pools[threads - 1], &p);
    }
    bench_reference(&mut crit);
    crit.final_summary();
}
