//! The f32 GEMM of every tier against the reference `gemm::scalar::sgemm`.
//!
//! Operands are laid out in padded storage: a random offset before element
//! (0, 0) (so the start is unaligned), a padded leading dimension, an
//! optional element step of 2, and either orientation (`.t()`), which covers
//! the four transpose combinations of A and B and both layouts of C. Every
//! slot of C's storage outside the view must come back untouched, and with
//! `beta == 0` the whole storage starts as NaN, so a stray read shows.
//!
//! Tolerance: each result is a sum of k products; the reference and the
//! blocked kernels each lie within `k * eps` of the exact sum relative to
//! `sum |a| |b|` (plus FMA and block-order effects), so they may differ by
//! [`TOL_PER_TERM`] times `(k + 2) * (|alpha| sum |a_ip b_pj| + |beta c_ij|)`.
//! Integer-valued inputs make every partial sum exact, and there the tiers
//! must agree with the reference exactly.

use edgecl_kernels::gemm::{self, scalar};
use edgecl_kernels::{MatMut, MatRef, ShapeError, Tier};
use proptest::prelude::*;
use std::sync::OnceLock;

/// Allowed difference per term of the k sum, relative to its magnitude.
const TOL_PER_TERM: f64 = 2.0 * f32::EPSILON as f64;

/// How one operand sits in memory.
#[derive(Clone, Copy, Debug)]
struct Layout {
    /// Stored transposed: the view is `stored.t()`.
    trans: bool,
    /// Extra slots at the end of each stored row (leading-dimension padding).
    pad: usize,
    /// Slots before element (0, 0).
    offset: usize,
    /// Distance between neighbouring elements of a stored row (1 or 2).
    step: usize,
}

impl Layout {
    const DENSE: Layout = Layout { trans: false, pad: 0, offset: 0, step: 1 };

    /// Storage length, row stride and column stride of a rows x cols view.
    fn storage(&self, rows: usize, cols: usize) -> (usize, usize, usize) {
        let (srows, scols) = if self.trans { (cols, rows) } else { (rows, cols) };
        // At least 1: `MatMut::new` rejects (by overflow) an empty view
        // whose strides are both 0, which a 0-column unpadded C would have.
        let ld = (scols * self.step + self.pad).max(1);
        (self.offset + srows * ld + self.pad, ld, self.step)
    }

    fn view<'a>(&self, data: &'a [f32], rows: usize, cols: usize) -> MatRef<'a> {
        let (_, ld, step) = self.storage(rows, cols);
        let d = &data[self.offset..];
        if self.trans {
            MatRef::new(d, cols, rows, ld, step).unwrap().t()
        } else {
            MatRef::new(d, rows, cols, ld, step).unwrap()
        }
    }

    fn view_mut<'a>(&self, data: &'a mut [f32], rows: usize, cols: usize) -> MatMut<'a> {
        let (_, ld, step) = self.storage(rows, cols);
        let d = &mut data[self.offset..];
        if self.trans {
            MatMut::new(d, cols, rows, ld, step).unwrap().t()
        } else {
            MatMut::new(d, rows, cols, ld, step).unwrap()
        }
    }

    /// Storage index of element (i, j).
    fn index(&self, rows: usize, cols: usize, i: usize, j: usize) -> usize {
        let (_, ld, step) = self.storage(rows, cols);
        let (si, sj) = if self.trans { (j, i) } else { (i, j) };
        self.offset + si * ld + sj * step
    }
}

/// A small deterministic generator (splitmix64) for operand values.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [-1, 1).
    fn float(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
    /// An integer in -4..=4, as f32.
    fn small_int(&mut self) -> f32 {
        (self.next() % 9) as f32 - 4.0
    }
}

/// One GEMM problem with its storage.
struct Problem {
    m: usize,
    n: usize,
    k: usize,
    la: Layout,
    lb: Layout,
    lc: Layout,
    a: Vec<f32>,
    b: Vec<f32>,
    c: Vec<f32>,
    alpha: f32,
    beta: f32,
    /// Per-element magnitudes for the tolerance, computed on first use.
    magnitudes: OnceLock<Vec<f64>>,
}

impl Problem {
    #[allow(clippy::too_many_arguments)]
    fn new(
        (m, n, k): (usize, usize, usize),
        (la, lb, lc): (Layout, Layout, Layout),
        alpha: f32,
        beta: f32,
        seed: u64,
        integers: bool,
    ) -> Problem {
        let mut rng = Rng(seed);
        let mut fill = |len: usize| -> Vec<f32> {
            (0..len).map(|_| if integers { rng.small_int() } else { rng.float() }).collect()
        };
        let a = fill(la.storage(m, k).0);
        let b = fill(lb.storage(k, n).0);
        // beta == 0: C must not be read, so make any read poison the result.
        let c =
            if beta == 0.0 { vec![f32::NAN; lc.storage(m, n).0] } else { fill(lc.storage(m, n).0) };
        Problem { m, n, k, la, lb, lc, a, b, c, alpha, beta, magnitudes: OnceLock::new() }
    }

    /// Runs `f` on a copy of C and returns the copy.
    fn run(
        &self,
        f: impl FnOnce(f32, MatRef<'_>, MatRef<'_>, f32, MatMut<'_>) -> Result<(), ShapeError>,
    ) -> Vec<f32> {
        let mut c = self.c.clone();
        let a = self.la.view(&self.a, self.m, self.k);
        let b = self.lb.view(&self.b, self.k, self.n);
        f(self.alpha, a, b, self.beta, self.lc.view_mut(&mut c, self.m, self.n)).unwrap();
        c
    }

    fn reference(&self) -> Vec<f32> {
        self.run(scalar::sgemm)
    }

    /// Magnitude of the terms that make up C[i, j], row-major m x n:
    /// `|alpha| sum_p |a_ip b_pj| + |beta c_ij|`.
    fn magnitudes(&self) -> &[f64] {
        self.magnitudes.get_or_init(|| {
            let a = self.la.view(&self.a, self.m, self.k);
            let b = self.lb.view(&self.b, self.k, self.n);
            let mut out = Vec::with_capacity(self.m * self.n);
            for i in 0..self.m {
                for j in 0..self.n {
                    let prod: f64 =
                        (0..self.k).map(|p| (a.at(i, p) as f64 * b.at(p, j) as f64).abs()).sum();
                    let c0 = if self.beta == 0.0 {
                        0.0
                    } else {
                        self.c[self.lc.index(self.m, self.n, i, j)] as f64
                    };
                    out.push(self.alpha.abs() as f64 * prod + (self.beta as f64 * c0).abs());
                }
            }
            out
        })
    }

    /// Checks `got` against `want` (both C storages): padding untouched,
    /// view elements within tolerance (or equal when `exact`).
    fn check(
        &self,
        what: &str,
        got: &[f32],
        want: &[f32],
        exact: bool,
    ) -> Result<(), TestCaseError> {
        let mut inside = vec![false; got.len()];
        for i in 0..self.m {
            for j in 0..self.n {
                let idx = self.lc.index(self.m, self.n, i, j);
                inside[idx] = true;
                let (g, w) = (got[idx], want[idx]);
                let ok = if exact {
                    g == w
                } else {
                    let mag = self.magnitudes()[i * self.n + j];
                    let tol = TOL_PER_TERM * (self.k as f64 + 2.0) * mag + 1e-30;
                    ((g as f64) - (w as f64)).abs() <= tol
                };
                prop_assert!(
                    ok,
                    "{what}: C[{i},{j}] = {g}, reference {w} (m={} n={} k={} alpha={} beta={})",
                    self.m,
                    self.n,
                    self.k,
                    self.alpha,
                    self.beta
                );
            }
        }
        for (idx, (&g, &orig)) in got.iter().zip(&self.c).enumerate() {
            prop_assert!(
                inside[idx] || g.to_bits() == orig.to_bits(),
                "{what}: storage slot {idx} outside the C view changed"
            );
        }
        Ok(())
    }
}

/// Matrix dimensions: edge cases, primes, and whatever else.
fn dim() -> impl Strategy<Value = usize> {
    prop_oneof![
        prop::sample::select(vec![0usize, 1, 2, 3, 5, 7, 11, 12, 13, 16, 17, 31, 32, 33, 37, 47]),
        0usize..70,
    ]
}

fn layout() -> impl Strategy<Value = Layout> {
    (
        any::<bool>(),
        prop::sample::select(vec![0usize, 0, 1, 3, 16]),
        0usize..5,
        prop::sample::select(vec![1usize, 1, 1, 2]),
    )
        .prop_map(|(trans, pad, offset, step)| Layout { trans, pad, offset, step })
}

fn scalar_factor() -> impl Strategy<Value = f32> {
    prop_oneof![Just(0.0f32), Just(1.0f32), -2.0f32..2.0]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Random floats, any layout: every tier within tolerance of the reference.
    #[test]
    fn matches_reference(
        m in dim(), n in dim(), k in dim(),
        la in layout(), lb in layout(), lc in layout(),
        alpha in scalar_factor(), beta in scalar_factor(),
        seed in any::<u64>(),
    ) {
        let p = Problem::new((m, n, k), (la, lb, lc), alpha, beta, seed, false);
        let want = p.reference();
        for tier in Tier::all_variants() {
            let got = p.run(|al, a, b, be, c| gemm::sgemm_with(tier, al, a, b, be, c));
            p.check(&format!("tier {tier}"), &got, &want, false)?;
        }
    }

    /// Integer-valued inputs: every tier equals the reference exactly.
    #[test]
    fn integers_are_exact(
        m in dim(), n in dim(), k in dim(),
        la in layout(), lb in layout(), lc in layout(),
        alpha in prop::sample::select(vec![0.0f32, 1.0, 2.0, -1.0]),
        beta in prop::sample::select(vec![0.0f32, 1.0, -1.0, 3.0]),
        seed in any::<u64>(),
    ) {
        let p = Problem::new((m, n, k), (la, lb, lc), alpha, beta, seed, true);
        let want = p.reference();
        for tier in Tier::all_variants() {
            let got = p.run(|al, a, b, be, c| gemm::sgemm_with(tier, al, a, b, be, c));
            p.check(&format!("tier {tier}"), &got, &want, true)?;
        }
    }
}

/// Runs `f` inside a rayon pool of `threads` threads.
fn in_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(f)
}

/// Problems larger than every block size, with and without threads: the
/// result must match the reference and be bit-identical for any thread
/// count, since each element is summed in the same order regardless.
#[test]
fn large_blocked_and_parallel() {
    let t = Layout { trans: true, ..Layout::DENSE };
    let padded = Layout { trans: false, pad: 5, offset: 3, step: 1 };
    let cases = [
        // k over two KC blocks, m over MC, every layout of A and B.
        ((397, 141, 530), (Layout::DENSE, Layout::DENSE, Layout::DENSE), 1.0, 0.0),
        ((211, 101, 530), (t, Layout::DENSE, padded), 0.5, 1.0),
        ((203, 67, 517), (Layout::DENSE, t, t), -1.5, 0.25),
        ((199, 211, 290), (t, t, Layout::DENSE), 1.0, -1.0),
        // n over NC for every tier, few rows: the threads split columns.
        ((29, 4133, 23), (Layout::DENSE, Layout::DENSE, Layout::DENSE), 1.0, 0.5),
    ];
    for (seed, ((m, n, k), (la, lb, lc), alpha, beta)) in cases.into_iter().enumerate() {
        assert!(m * n * k >= gemm::PAR_MIN_MACS, "case {seed} too small for threads");
        let p = Problem::new((m, n, k), (la, lb, lc), alpha, beta, seed as u64, false);
        let want = p.reference();
        for tier in Tier::all_variants() {
            let mut first: Option<Vec<f32>> = None;
            for threads in [1, 2, 3] {
                let got = in_pool(threads, || {
                    p.run(|al, a, b, be, c| gemm::sgemm_with(tier, al, a, b, be, c))
                });
                let what = format!("case {seed}, tier {tier}, {threads} threads");
                p.check(&what, &got, &want, false).unwrap_or_else(|e| panic!("{e}"));
                match &first {
                    None => first = Some(got),
                    Some(f) => assert!(
                        f.iter().zip(&got).all(|(x, y)| x.to_bits() == y.to_bits()),
                        "{what}: differs from the single-threaded result"
                    ),
                }
            }
        }
    }
}

/// The dispatching entry point runs and agrees with the reference.
#[test]
fn dispatching_entry_point() {
    let l = (Layout::DENSE, Layout::DENSE, Layout::DENSE);
    let p = Problem::new((40, 50, 60), l, 1.0, 0.0, 7, true);
    let got = p.run(gemm::sgemm);
    p.check("sgemm", &got, &p.reference(), true).unwrap_or_else(|e| panic!("{e}"));
}

/// With `alpha == 0` A and B are not read: NaN there leaves `beta * C`.
#[test]
fn alpha_zero_ignores_a_and_b() {
    let nan = vec![f32::NAN; 12 * 7];
    let a = MatRef::row_major(&nan, 12, 7).unwrap();
    let b = MatRef::row_major(&nan, 7, 12).unwrap();
    for tier in Tier::all_variants() {
        let mut c = vec![2.0f32; 144];
        gemm::sgemm_with(tier, 0.0, a, b, 0.5, MatMut::row_major(&mut c, 12, 12).unwrap()).unwrap();
        assert!(c.iter().all(|&x| x == 1.0), "tier {tier}");
    }
}

/// Mismatched shapes are a typed error on every tier, and C is untouched.
#[test]
fn shape_mismatch_is_an_error() {
    let a = vec![1.0f32; 6];
    let b = vec![1.0f32; 12];
    for tier in Tier::all_variants() {
        let mut c = vec![5.0f32; 8];
        let err = gemm::sgemm_with(
            tier,
            1.0,
            MatRef::row_major(&a, 2, 3).unwrap(),
            MatRef::row_major(&b, 4, 3).unwrap(),
            0.0,
            MatMut::row_major(&mut c, 2, 4).unwrap(),
        );
        assert!(
            matches!(err, Err(ShapeError::Mismatch { expected: 3, found: 4, .. })),
            "tier {tier}"
        );
        assert!(c.iter().all(|&x| x == 5.0));
    }
}
