//! Vector kernels on every tier this CPU runs, against exact or f64 answers.
//!
//! Property tests draw lengths (0, 1, primes, anything up to 300, and some
//! past 1000, so every vector width's main loop, single-block loop and
//! masked tail runs), an offset of 0..16 elements into a larger buffer (so
//! loads start unaligned), and values of mixed scale up to 1e4. Each named
//! tolerance below says what it bounds and why. The exp and erf sweeps
//! print the maximum errors they measured (`--nocapture` shows them).

use edgecl_kernels::dispatch::Tier;
use edgecl_kernels::vector::{self, scalar};
use edgecl_kernels::ShapeError;
use proptest::prelude::*;

/// Unit roundoff of f32, 2^-24.
const U: f64 = f32::EPSILON as f64 / 2.0;

/// Reductions (sum, sum_sq, dot): |got - exact| <= (n + 2) u sum|terms|,
/// the worst case of a sequential f32 sum (the scalar tier); SIMD tiers sum
/// in 32 or 64 partial sums and land far inside it.
fn reduction_tol(n: usize, abs_sum: f64) -> f64 {
    (n as f64 + 2.0) * U * abs_sum + f32::MIN_POSITIVE as f64
}

/// Fused or unfused `a * b + c`: at most two roundings, relative to the
/// magnitudes involved.
fn mul_add_tol(ab: f64, c: f64) -> f64 {
    2.0 * U * (ab.abs() + c.abs()) + f32::MIN_POSITIVE as f64
}

/// Maximum relative error of the SIMD exp over [-87.33, 88.72]; the doc of
/// `vector::exp` quotes the measured value, which must stay below this.
const EXP_MAX_REL: f64 = 1.0e-7;
/// Maximum absolute error of erf over the sweep, every tier.
const ERF_MAX_ABS: f64 = 2.0e-7;
/// Maximum relative error of erf for |x| < 0.5, where erf is small.
const ERF_SMALL_REL: f64 = 1.0e-6;
/// GELU and its derivative: |got - ref| <= GELU_RTOL |ref| + GELU_ATOL (|x| + 1).
const GELU_RTOL: f64 = 1.0e-6;
const GELU_ATOL: f64 = 1.0e-7;
/// Softmax outputs: |got - ref| <= SOFTMAX_RTOL ref + SOFTMAX_ATOL.
const SOFTMAX_RTOL: f64 = 6.0e-7;
const SOFTMAX_ATOL: f64 = 3.0e-8;

fn tiers() -> Vec<Tier> {
    Tier::all_variants()
}

// Strategies

fn len() -> impl Strategy<Value = usize> {
    prop_oneof![
        3 => prop::sample::select(vec![0usize, 1, 2, 3, 5, 7, 13, 17, 31, 61, 67, 127, 251, 257]),
        3 => 0usize..300,
        1 => 1000usize..1400,
    ]
}

fn value() -> impl Strategy<Value = f32> {
    prop_oneof![
        8 => -4.0f32..4.0,
        1 => -1.0e4f32..1.0e4,
        1 => -1.0e-3f32..1.0e-3,
    ]
}

/// A buffer and an offset into it; the operand is `buf[off..]`.
#[derive(Clone, Debug)]
struct Offset {
    buf: Vec<f32>,
    off: usize,
}

impl Offset {
    fn get(&self) -> &[f32] {
        &self.buf[self.off..]
    }
}

fn offset_vec(n: usize) -> impl Strategy<Value = Offset> {
    (0usize..17).prop_flat_map(move |off| {
        prop::collection::vec(value(), n + off).prop_map(move |buf| Offset { buf, off })
    })
}

/// `k` operands of one drawn length.
fn operands(k: usize) -> impl Strategy<Value = Vec<Offset>> {
    len().prop_flat_map(move |n| prop::collection::vec(offset_vec(n), k))
}

/// A mutable copy of `x` placed at a fresh offset, so writes also start
/// unaligned.
fn shifted(x: &[f32], off: usize) -> Vec<f32> {
    let mut v = vec![f32::NAN; off];
    v.extend_from_slice(x);
    v
}

// Reductions

fn config() -> ProptestConfig {
    // Integration tests have no lib.rs beside them for the failure file.
    ProptestConfig { failure_persistence: None, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn reductions_within_bound(ops in operands(2)) {
        let (a, b) = (ops[0].get(), ops[1].get());
        let n = a.len();
        let exact_dot: f64 = a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum();
        let abs_dot: f64 = a.iter().zip(b).map(|(&x, &y)| (x as f64 * y as f64).abs()).sum();
        let exact_sum: f64 = a.iter().map(|&x| x as f64).sum();
        let abs_sum: f64 = a.iter().map(|&x| (x as f64).abs()).sum();
        let exact_sq: f64 = a.iter().map(|&x| x as f64 * x as f64).sum();
        for t in tiers() {
            let d = vector::dot_with(t, a, b).unwrap() as f64;
            prop_assert!((d - exact_dot).abs() <= reduction_tol(n, abs_dot), "{t} dot n={n}: {d} vs {exact_dot}");
            let s = vector::sum_with(t, a) as f64;
            prop_assert!((s - exact_sum).abs() <= reduction_tol(n, abs_sum), "{t} sum n={n}: {s} vs {exact_sum}");
            let q = vector::sum_sq_with(t, a) as f64;
            prop_assert!((q - exact_sq).abs() <= reduction_tol(n, exact_sq), "{t} sum_sq n={n}: {q} vs {exact_sq}");
            prop_assert_eq!(vector::max_with(t, a).to_bits(), scalar::max(a).to_bits(), "{} max n={}", t, n);
        }
    }

    #[test]
    fn max_propagates_nan(x in operands(1), pos in any::<prop::sample::Index>()) {
        let mut v = x[0].get().to_vec();
        if v.is_empty() {
            for t in tiers() {
                prop_assert_eq!(vector::max_with(t, &v), f32::NEG_INFINITY);
            }
        } else {
            let i = pos.index(v.len());
            v[i] = f32::NAN;
            for t in tiers() {
                prop_assert!(vector::max_with(t, &v).is_nan(), "{} n={} nan at {}", t, v.len(), i);
            }
        }
    }

    // Elementwise

    #[test]
    fn exact_elementwise_match_scalar(ops in operands(2), alpha in value(), off in 0usize..17) {
        let (a, b) = (ops[0].get(), ops[1].get());
        let n = a.len();
        let mut want = vec![0.0f32; n];
        for t in tiers() {
            for (name, f, r) in [
                ("add", vector::add_with as fn(Tier, &[f32], &[f32], &mut [f32]) -> Result<(), ShapeError>, scalar::add as fn(&[f32], &[f32], &mut [f32])),
                ("sub", vector::sub_with, scalar::sub),
                ("mul", vector::mul_with, scalar::mul),
            ] {
                let mut got = shifted(&vec![f32::NAN; n], off);
                f(t, a, b, &mut got[off..]).unwrap();
                r(a, b, &mut want);
                prop_assert_eq!(&got[off..], &want[..], "{} {} n={}", t, name, n);
                prop_assert!(got[..off].iter().all(|v| v.is_nan()), "{t} {name} wrote before its start");
            }
            let mut got = shifted(a, off);
            vector::scale_with(t, alpha, &mut got[off..]);
            want.copy_from_slice(a);
            scalar::scale(alpha, &mut want);
            prop_assert_eq!(&got[off..], &want[..], "{} scale n={}", t, n);
        }
    }

    #[test]
    fn fused_elementwise_within_two_roundings(ops in operands(3), alpha in value(), off in 0usize..17) {
        let (a, b, c) = (ops[0].get(), ops[1].get(), ops[2].get());
        let n = a.len();
        for t in tiers() {
            let mut y = shifted(b, off);
            vector::axpy_with(t, alpha, a, &mut y[off..]).unwrap();
            let mut out = vec![0.0f32; n];
            vector::mul_add_with(t, a, b, c, &mut out).unwrap();
            for i in 0..n {
                let ax = alpha as f64 * a[i] as f64;
                let want = ax + b[i] as f64;
                prop_assert!((y[off + i] as f64 - want).abs() <= mul_add_tol(ax, b[i] as f64), "{t} axpy [{i}]");
                let ab = a[i] as f64 * b[i] as f64;
                let want = ab + c[i] as f64;
                prop_assert!((out[i] as f64 - want).abs() <= mul_add_tol(ab, c[i] as f64), "{t} mul_add [{i}]");
            }
        }
    }

    #[test]
    fn gelu_and_erf_within_tolerance(x in operands(1), dy in operands(1)) {
        let x = x[0].get();
        let n = x.len();
        let dy: Vec<f32> = dy[0].get().iter().copied().cycle().take(n).collect();
        let dy = if dy.len() == n { dy } else { vec![1.0; n] };
        for t in tiers() {
            let mut g = vec![0.0f32; n];
            vector::gelu_with(t, x, &mut g).unwrap();
            let mut e = vec![0.0f32; n];
            vector::erf_with(t, x, &mut e).unwrap();
            let mut dx = vec![0.25f32; n];
            vector::gelu_backward_with(t, x, &dy, &mut dx).unwrap();
            for i in 0..n {
                let v = x[i] as f64;
                let want = gelu_f64(v);
                prop_assert!((g[i] as f64 - want).abs() <= gelu_tol(v, want), "{t} gelu({v}) = {} want {want}", g[i]);
                let want = scalar::erf(v);
                prop_assert!((e[i] as f64 - want).abs() <= ERF_MAX_ABS, "{t} erf({v}) = {} want {want}", e[i]);
                let grad = gelu_grad_f64(v) * dy[i] as f64;
                let want = 0.25 + grad;
                let tol = gelu_tol(v, grad) * (dy[i] as f64).abs().max(1.0) + 2.0 * U * (0.25 + grad.abs());
                prop_assert!((dx[i] as f64 - want).abs() <= tol, "{t} gelu' at {v}: {} want {want}", dx[i]);
            }
        }
    }
}

fn gelu_f64(v: f64) -> f64 {
    0.5 * v * scalar::erfc(-v * std::f64::consts::FRAC_1_SQRT_2)
}

fn gelu_grad_f64(v: f64) -> f64 {
    let cdf = 0.5 * scalar::erfc(-v * std::f64::consts::FRAC_1_SQRT_2);
    cdf + v * (-0.5 * v * v).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

fn gelu_tol(x: f64, want: f64) -> f64 {
    GELU_RTOL * want.abs() + GELU_ATOL * (x.abs() + 1.0)
}

// exp and erf sweeps

/// Every `step`-th f32 bit pattern between `lo` and `hi` (same sign), plus
/// the end points.
fn sweep(lo: f32, hi: f32, count: u32) -> Vec<f32> {
    let mut out = Vec::new();
    let (a, b) = (lo.to_bits().min(hi.to_bits()), lo.to_bits().max(hi.to_bits()));
    let step = ((b - a) / count).max(1);
    let mut bits = a;
    while bits < b {
        out.push(f32::from_bits(bits));
        bits += step;
    }
    out.push(f32::from_bits(b));
    out
}

/// A sweep of `count` points per sign over [-hi_neg, hi_pos].
fn signed_sweep(hi_neg: f32, hi_pos: f32, count: u32) -> Vec<f32> {
    let mut v = sweep(1.0e-30, hi_pos, count);
    v.extend(sweep(-1.0e-30, -hi_neg, count));
    v.push(0.0);
    v.push(-0.0);
    v
}

fn max_rel_exp(t: Tier, xs: &[f32]) -> (f64, f32) {
    let mut got = vec![0.0f32; xs.len()];
    vector::exp_with(t, xs, &mut got).unwrap();
    let mut worst = (0.0f64, 0.0f32);
    for (&x, &y) in xs.iter().zip(&got) {
        let want = (x as f64).exp();
        let rel = ((y as f64 - want) / want).abs();
        if rel > worst.0 {
            worst = (rel, x);
        }
    }
    worst
}

#[test]
fn exp_relative_error_over_normal_range() {
    let count =
        std::env::var("EDGECL_EXP_SWEEP").ok().and_then(|v| v.parse().ok()).unwrap_or(200_000);
    let xs = signed_sweep(87.33, 88.72, count);
    for t in tiers() {
        let (rel, at) = max_rel_exp(t, &xs);
        println!("exp {t}: max relative error {rel:.3e} at x = {at} over {} points", xs.len());
        assert!(rel <= EXP_MAX_REL, "{t}: exp relative error {rel:e} at {at}");
    }
}

#[test]
fn exp_edges() {
    let xs = [
        f32::NAN,
        f32::INFINITY,
        88.73,
        89.0,
        1.0e4,
        1.0e30,
        88.72,
        -104.0,
        f32::NEG_INFINITY,
        -1.0e4,
        -87.34,
        -95.0,
        -103.0,
        0.0,
    ];
    for t in tiers() {
        let mut got = [0.0f32; 14];
        vector::exp_with(t, &xs, &mut got).unwrap();
        assert!(got[0].is_nan(), "{t}: exp(NaN)");
        assert_eq!(&got[1..6], &[f32::INFINITY; 5], "{t}: overflow to +inf");
        assert!(got[6].is_finite() && got[6] > 3.3e38, "{t}: exp(88.72) = {}", got[6]);
        assert_eq!(&got[7..10], &[0.0; 3], "{t}: underflow to 0");
        // Subnormal results: within one subnormal step plus a relative part.
        for (&x, &y) in xs[10..13].iter().zip(&got[10..13]) {
            let want = (x as f64).exp();
            assert!(
                (y as f64 - want).abs() <= 1.5e-45 + 1e-6 * want,
                "{t}: exp({x}) = {y:e} want {want:e}"
            );
        }
        assert_eq!(got[13], 1.0, "{t}: exp(0)");
    }
}

#[test]
fn erf_absolute_error_sweep() {
    let count =
        std::env::var("EDGECL_ERF_SWEEP").ok().and_then(|v| v.parse().ok()).unwrap_or(200_000);
    let xs = signed_sweep(10.0, 10.0, count);
    for t in tiers() {
        let mut got = vec![0.0f32; xs.len()];
        vector::erf_with(t, &xs, &mut got).unwrap();
        let (mut abs, mut abs_at, mut rel_small) = (0.0f64, 0.0f32, 0.0f64);
        for (&x, &y) in xs.iter().zip(&got) {
            let want = scalar::erf(x as f64);
            let e = (y as f64 - want).abs();
            if e > abs {
                (abs, abs_at) = (e, x);
            }
            if x.abs() < 0.5 && want != 0.0 {
                rel_small = rel_small.max(e / want.abs());
            }
        }
        println!("erf {t}: max abs error {abs:.3e} at x = {abs_at}; max rel error for |x| < 0.5: {rel_small:.3e}");
        assert!(abs <= ERF_MAX_ABS, "{t}: erf abs error {abs:e} at {abs_at}");
        assert!(rel_small <= ERF_SMALL_REL, "{t}: erf small-x rel error {rel_small:e}");
        // erf is odd, and so is the kernel, bit for bit: the exhaustive
        // check below covers x >= 0 only.
        let neg: Vec<f32> = xs.iter().map(|x| -x).collect();
        let mut got_neg = vec![0.0f32; xs.len()];
        vector::erf_with(t, &neg, &mut got_neg).unwrap();
        for i in 0..xs.len() {
            assert_eq!(got_neg[i].to_bits(), (-got[i]).to_bits(), "{t}: erf(-{})", xs[i]);
        }
        let mut edge = [0.0f32; 3];
        vector::erf_with(t, &[f32::INFINITY, f32::NEG_INFINITY, f32::NAN], &mut edge).unwrap();
        assert_eq!(&edge[..2], &[1.0, -1.0], "{t}: erf(+-inf)");
        assert!(edge[2].is_nan(), "{t}: erf(NaN)");
    }
}

#[test]
fn gelu_sweep() {
    let xs = signed_sweep(12.0, 12.0, 100_000);
    for t in tiers() {
        let mut g = vec![0.0f32; xs.len()];
        vector::gelu_with(t, &xs, &mut g).unwrap();
        let mut dx = vec![0.0f32; xs.len()];
        vector::gelu_backward_with(t, &xs, &vec![1.0; xs.len()], &mut dx).unwrap();
        let (mut fwd, mut bwd) = (0.0f64, 0.0f64);
        for i in 0..xs.len() {
            let v = xs[i] as f64;
            let (w, wg) = (gelu_f64(v), gelu_grad_f64(v));
            let (ef, eb) = ((g[i] as f64 - w).abs(), (dx[i] as f64 - wg).abs());
            assert!(ef <= gelu_tol(v, w), "{t}: gelu({v}) = {} want {w}", g[i]);
            assert!(eb <= gelu_tol(v, wg), "{t}: gelu'({v}) = {} want {wg}", dx[i]);
            fwd = fwd.max(ef / gelu_tol(v, w));
            bwd = bwd.max(eb / gelu_tol(v, wg));
        }
        println!("gelu {t}: worst error / tolerance: forward {fwd:.3}, backward {bwd:.3}");
    }
}

// Softmax and layer norm

/// Softmax in f64 (all NaN where the f32 formula gives NaN).
fn softmax_f64(x: &[f32]) -> Vec<f64> {
    let m = x.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
    let e: Vec<f64> = x.iter().map(|&v| (v as f64 - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

/// Layer norm outputs: the f32 tiers round x - mean (error up to u |mean|)
/// before scaling by rstd, so the bound grows with |mean| rstd, the offset
/// of the row in units of its spread; the rest is a few roundings of the
/// output's terms.
fn layernorm_tol(n: usize, mean: f64, rstd: f64, xhat: f64, gamma: f64, beta: f64) -> f64 {
    let k = 8.0 + (n as f64).sqrt();
    k * U * ((1.0 + xhat.abs() + mean.abs() * rstd) * gamma.abs() + beta.abs()) + 1e-30
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn softmax_matches_f64(x in operands(1), shift in prop_oneof![Just(0.0f32), -50.0f32..50.0]) {
        let x: Vec<f32> = x[0].get().iter().map(|v| v + shift).collect();
        let want = softmax_f64(&x);
        for t in tiers() {
            let mut got = shifted(&x, 3);
            vector::softmax_with(t, &mut got[3..]);
            for (i, (&g, &w)) in got[3..].iter().zip(&want).enumerate() {
                let tol = SOFTMAX_RTOL * w + SOFTMAX_ATOL;
                prop_assert!((g as f64 - w).abs() <= tol, "{} softmax n={} [{}]: {} want {}", t, x.len(), i, g, w);
            }
        }
    }

    #[test]
    fn softmax_backward_matches_reference(ops in operands(3)) {
        let mut y = ops[0].get().to_vec();
        vector::softmax_with(Tier::scalar(), &mut y);
        let (dy, dx0) = (ops[1].get(), ops[2].get());
        let n = y.len();
        let d: f64 = y.iter().zip(dy).map(|(&a, &b)| a as f64 * b as f64).sum();
        let abs_d: f64 = y.iter().zip(dy).map(|(&a, &b)| (a as f64 * b as f64).abs()).sum();
        for t in tiers() {
            let mut dx = dx0.to_vec();
            vector::softmax_backward_with(t, &y, dy, &mut dx).unwrap();
            for i in 0..n {
                let (yi, gi) = (y[i] as f64, dy[i] as f64 - d);
                let want = dx0[i] as f64 + yi * gi;
                // The dot product's bound, scaled by y, plus the last FMA.
                let tol = yi * reduction_tol(n, abs_d) + mul_add_tol(yi * gi, dx0[i] as f64) + 2.0 * U * yi * (dy[i] as f64).abs();
                prop_assert!((dx[i] as f64 - want).abs() <= tol, "{} softmax' [{}]: {} want {}", t, i, dx[i], want);
            }
        }
    }

    #[test]
    fn layernorm_matches_f64(ops in operands(3), offset in prop_oneof![Just(0.0f32), -1.0e3f32..1.0e3], eps in prop_oneof![Just(1e-5f32), Just(1e-12f32)]) {
        let x: Vec<f32> = ops[0].get().iter().map(|v| v + offset).collect();
        let (gamma, beta) = (ops[1].get(), ops[2].get());
        let n = x.len();
        let mut want = vec![0.0f32; n];
        // The reference is exact to f32 rounding: it works in f64.
        let (m_ref, r_ref) = scalar::layernorm(&x, gamma, beta, eps, &mut want);
        let (m_ref, r_ref) = (m_ref as f64, r_ref as f64);
        for t in tiers() {
            let mut got = shifted(&vec![0.0; n], 5);
            let (m, r) = vector::layernorm_with(t, &x, gamma, beta, eps, &mut got[5..]).unwrap();
            let spread = 1.0 / r_ref;
            let tol_m = (8.0 + (n as f64).sqrt()) * U * (m_ref.abs() + spread);
            prop_assert!((m as f64 - m_ref).abs() <= tol_m, "{} mean {} want {}", t, m, m_ref);
            // rstd: relative error of a variance computed around an f32 mean.
            let tol_r = (16.0 + (n as f64).sqrt()) * U * (1.0 + m_ref.abs() * r_ref) * r_ref;
            prop_assert!((r as f64 - r_ref).abs() <= tol_r, "{} rstd {} want {}", t, r, r_ref);
            for i in 0..n {
                let xhat = (x[i] as f64 - m_ref) * r_ref;
                let tol = layernorm_tol(n, m_ref, r_ref, xhat, gamma[i] as f64, beta[i] as f64);
                prop_assert!((got[5 + i] as f64 - want[i] as f64).abs() <= tol + U * (want[i] as f64).abs(),
                    "{} layernorm n={} [{}]: {} want {}", t, n, i, got[5 + i], want[i]);
            }
        }
    }

    #[test]
    fn layernorm_backward_matches_reference(ops in operands(5)) {
        let (x, gamma, dy) = (ops[0].get(), ops[1].get(), ops[2].get());
        let n = x.len();
        let mut out = vec![0.0f32; n];
        let (mean, rstd) = scalar::layernorm(x, gamma, gamma, 1e-5, &mut out);
        let (dx0, acc0) = (ops[3].get(), ops[4].get());
        let (mut dx_ref, mut dg_ref, mut db_ref) = (dx0.to_vec(), acc0.to_vec(), acc0.to_vec());
        scalar::layernorm_backward(x, gamma, mean, rstd, dy, &mut dx_ref, &mut dg_ref, &mut db_ref);
        // Bound on each dx: the terms' magnitudes times a sum-sized factor.
        let xhat: Vec<f64> = x.iter().map(|&v| ((v - mean) * rstd) as f64).collect();
        let g: Vec<f64> = dy.iter().zip(gamma).map(|(&d, &w)| d as f64 * w as f64).collect();
        let abs_g = g.iter().map(|v| v.abs()).sum::<f64>() / n.max(1) as f64;
        let abs_gx = g.iter().zip(&xhat).map(|(a, b)| (a * b).abs()).sum::<f64>() / n.max(1) as f64;
        for t in tiers() {
            let (mut dx, mut dg, mut db) = (dx0.to_vec(), acc0.to_vec(), acc0.to_vec());
            vector::layernorm_backward_with(t, x, gamma, mean, rstd, dy, &mut dx, &mut dg, &mut db).unwrap();
            for i in 0..n {
                let k = 8.0 + n as f64;
                let terms = g[i].abs() + abs_g + xhat[i].abs() * abs_gx;
                let tol = k * U * rstd as f64 * terms + 4.0 * U * (dx_ref[i] as f64).abs();
                prop_assert!((dx[i] as f64 - dx_ref[i] as f64).abs() <= tol, "{} dx [{}]: {} want {}", t, i, dx[i], dx_ref[i]);
                let tol = mul_add_tol(dy[i] as f64 * xhat[i], acc0[i] as f64) * 2.0;
                prop_assert!((dg[i] as f64 - dg_ref[i] as f64).abs() <= tol, "{} dgamma [{}]: {} want {}", t, i, dg[i], dg_ref[i]);
                prop_assert_eq!(db[i], db_ref[i], "{} dbeta [{}]", t, i);
            }
        }
    }

    #[test]
    fn row_variants_match_one_row_calls(rows in 0usize..5, cols in 0usize..70, seed in any::<u64>()) {
        let n = rows * cols;
        let x: Vec<f32> = (0..n).map(|i| (((i as u64 + 1).wrapping_mul(seed | 1) >> 40) as f32 / 1e5) - 80.0).collect();
        let gamma: Vec<f32> = (0..cols).map(|i| 1.0 + i as f32 / 64.0).collect();
        let beta: Vec<f32> = (0..cols).map(|i| i as f32 / 32.0 - 1.0).collect();
        for t in tiers() {
            let mut a = x.clone();
            vector::softmax_rows_with(t, &mut a, cols).unwrap();
            let (mut out, mut mean, mut rstd) = (vec![0.0; n], vec![0.0; rows], vec![0.0; rows]);
            vector::layernorm_rows_with(t, &x, &gamma, &beta, 1e-5, &mut out, &mut mean, &mut rstd).unwrap();
            for r in 0..rows {
                let span = r * cols..(r + 1) * cols;
                let mut b = x[span.clone()].to_vec();
                vector::softmax_with(t, &mut b);
                prop_assert_eq!(&a[span.clone()], &b[..]);
                let mut o = vec![0.0; cols];
                let (m, s) = vector::layernorm_with(t, &x[span.clone()], &gamma, &beta, 1e-5, &mut o).unwrap();
                prop_assert_eq!(&out[span], &o[..]);
                prop_assert_eq!((mean[r].to_bits(), rstd[r].to_bits()), (m.to_bits(), s.to_bits()));
            }
        }
    }
}

// Errors

#[test]
fn length_mismatches_are_errors() {
    let (a, b) = (vec![1.0f32; 9], vec![1.0f32; 8]);
    let mut o8 = vec![0.0f32; 8];
    let mut o9 = vec![0.0f32; 9];
    for t in tiers() {
        assert!(matches!(vector::dot_with(t, &a, &b), Err(ShapeError::Mismatch { .. })), "{t} dot");
        assert!(vector::axpy_with(t, 1.0, &a, &mut o8).is_err(), "{t} axpy");
        assert!(vector::add_with(t, &a, &b, &mut o9).is_err(), "{t} add b");
        assert!(vector::add_with(t, &a, &a, &mut o8).is_err(), "{t} add out");
        assert!(vector::sub_with(t, &a, &b, &mut o9).is_err(), "{t} sub");
        assert!(vector::mul_with(t, &a, &a, &mut o8).is_err(), "{t} mul");
        assert!(vector::mul_add_with(t, &a, &a, &b, &mut o9).is_err(), "{t} mul_add");
        assert!(vector::exp_with(t, &a, &mut o8).is_err(), "{t} exp");
        assert!(vector::erf_with(t, &a, &mut o8).is_err(), "{t} erf");
        assert!(vector::gelu_with(t, &a, &mut o8).is_err(), "{t} gelu");
        assert!(vector::gelu_backward_with(t, &a, &b, &mut o9).is_err(), "{t} gelu_backward dy");
        assert!(vector::gelu_backward_with(t, &a, &a, &mut o8).is_err(), "{t} gelu_backward dx");
        assert!(vector::softmax_backward_with(t, &a, &b, &mut o9).is_err(), "{t} softmax_backward");
        assert!(
            vector::layernorm_with(t, &a, &b, &a, 1e-5, &mut o9).is_err(),
            "{t} layernorm gamma"
        );
        assert!(
            vector::layernorm_with(t, &a, &a, &b, 1e-5, &mut o9).is_err(),
            "{t} layernorm beta"
        );
        assert!(vector::layernorm_with(t, &a, &a, &a, 1e-5, &mut o8).is_err(), "{t} layernorm out");
        let (mut g, mut bb) = (vec![0.0f32; 9], vec![0.0f32; 8]);
        assert!(
            vector::layernorm_backward_with(t, &a, &a, 0.0, 1.0, &a, &mut o9, &mut g, &mut bb)
                .is_err(),
            "{t} layernorm_backward dbeta"
        );
        let mut x = vec![0.0f32; 10];
        assert!(vector::softmax_rows_with(t, &mut x, 3).is_err(), "{t} softmax_rows ragged");
        assert!(vector::softmax_rows_with(t, &mut x, 0).is_err(), "{t} softmax_rows zero cols");
        let (mut m, mut r) = (vec![0.0f32; 2], vec![0.0f32; 3]);
        let mut out = vec![0.0f32; 9];
        assert!(
            vector::layernorm_rows_with(t, &o9, &a[..3], &a[..3], 1e-5, &mut out, &mut m, &mut r)
                .is_err(),
            "{t} layernorm_rows stats"
        );
    }
}

// Exhaustive checks, run by hand (`cargo test --release --test vector --
// --ignored --nocapture`); minutes natively, far too slow under qemu.

/// Runs `check(tier, xs, got)` on every SIMD tier for all f32 whose bit
/// patterns lie in `[lo, hi]` (same sign) with the given stride, in chunks.
fn scan(lo: f32, hi: f32, stride: u32, mut check: impl FnMut(Tier, &[f32], &[f32])) {
    let (a, b) = (lo.to_bits().min(hi.to_bits()), lo.to_bits().max(hi.to_bits()));
    let simd: Vec<Tier> =
        Tier::all_available().into_iter().filter(|t| *t != Tier::scalar()).collect();
    let mut xs = Vec::with_capacity(1 << 16);
    let mut got = vec![0.0f32; 1 << 16];
    let mut bits = a as u64;
    while bits <= b as u64 {
        xs.clear();
        while xs.len() < 1 << 16 && bits <= b as u64 {
            xs.push(f32::from_bits(bits as u32));
            bits += stride as u64;
        }
        for &t in &simd {
            check(t, &xs, &mut got[..xs.len()]);
        }
    }
}

#[test]
#[ignore = "every f32 in the range: minutes; run with --ignored to re-measure the bound"]
fn exp_exhaustive() {
    for (lo, hi) in [(0.0f32, 88.72), (-0.0, -87.33)] {
        let mut worst = std::collections::BTreeMap::new();
        scan(lo, hi, 1, |t, xs, got| {
            let got = &mut got.to_vec();
            vector::exp_with(t, xs, got).unwrap();
            let w = worst.entry(t.to_string()).or_insert((0.0f64, 0.0f32));
            for (&x, &y) in xs.iter().zip(got.iter()) {
                let want = (x as f64).exp();
                let rel = ((y as f64 - want) / want).abs();
                if rel > w.0 {
                    *w = (rel, x);
                }
            }
        });
        for (t, (rel, at)) in worst {
            println!("exp {t}, every f32 in [{lo}, {hi}]: max relative error {rel:.4e} at {at}");
            assert!(rel <= EXP_MAX_REL, "{t}: {rel:e} at {at}");
        }
    }
}

#[test]
#[ignore = "every f32 in [0, 10]: minutes; run with --ignored to re-measure the bound"]
fn erf_exhaustive() {
    let mut worst = std::collections::BTreeMap::new();
    scan(0.0, 10.0, 1, |t, xs, got| {
        let mut e = got.to_vec();
        vector::erf_with(t, xs, &mut e).unwrap();
        let w = worst.entry(t.to_string()).or_insert((0.0f64, 0.0f32));
        for (&x, &y) in xs.iter().zip(&e) {
            let err = (y as f64 - scalar::erf(x as f64)).abs();
            if err > w.0 {
                *w = (err, x);
            }
        }
    });
    for (t, (err, at)) in worst {
        println!("erf {t}, every f32 in [0, 10] (odd, so also [-10, 0]): max abs error {err:.4e} at {at}");
        assert!(err <= ERF_MAX_ABS, "{t}: {err:e} at {at}");
    }
}

#[test]
#[ignore = "every 7th f32 in [-10, 10]: minutes; run with --ignored to re-measure"]
fn gelu_dense() {
    for (lo, hi) in [(0.0f32, 10.0), (-0.0, -10.0)] {
        let mut worst = std::collections::BTreeMap::new();
        scan(lo, hi, 7, |t, xs, got| {
            let mut g = got.to_vec();
            vector::gelu_with(t, xs, &mut g).unwrap();
            let mut d = got.to_vec();
            d.fill(0.0);
            vector::gelu_backward_with(t, xs, &vec![1.0; xs.len()], &mut d).unwrap();
            let w = worst.entry(t.to_string()).or_insert([0.0f64; 4]);
            for i in 0..xs.len() {
                let v = xs[i] as f64;
                let (want, wg) = (gelu_f64(v), gelu_grad_f64(v));
                w[0] = w[0].max((g[i] as f64 - want).abs() / gelu_tol(v, want));
                w[1] = w[1].max((d[i] as f64 - wg).abs() / gelu_tol(v, wg));
                // Relative error where the output is a normal f32 (subnormal
                // outputs are quantised) and, for the derivative, away from
                // its zero near x = -0.75.
                if want.abs() >= f32::MIN_POSITIVE as f64 {
                    w[2] = w[2].max(((g[i] as f64 - want) / want).abs());
                }
                if wg.abs() >= 1e-3 {
                    w[3] = w[3].max(((d[i] as f64 - wg) / wg).abs());
                }
            }
        });
        for (t, w) in worst {
            println!(
                "gelu {t}, every 7th f32 in [{lo}, {hi}]: error / tolerance {:.3} (backward {:.3}); max relative {:.4e} (backward {:.4e})",
                w[0], w[1], w[2], w[3]
            );
            assert!(w[0] <= 1.0 && w[1] <= 1.0, "{t}");
        }
    }
}
