//! The vector algorithms, written once over a small lane-width trait.
//!
//! [`Simd`] names the handful of operations the kernels need (load, store,
//! masked tail load/store, arithmetic, fused multiply-add, a NaN-keeping
//! max, rounding, `2^n`); `avx2.rs`, `avx512.rs` and `neon.rs` implement it
//! and stamp out `#[target_feature]` entry points with [`entry_points!`].
//! Everything here is `#[inline(always)]`, so each entry point compiles into
//! one straight body with its own instruction set, as if written by hand.
//!
//! Tails are never handed to scalar code: the last partial block goes
//! through [`Simd::load_tail`] / [`Simd::store_tail`] (real masked loads on
//! AVX-512 and AVX2, a small stack buffer on NEON) with a fill value chosen
//! so the padding lanes cannot change the result (0 for sums, -inf for max
//! and softmax, the mean for layer norm). A tier therefore gives one answer
//! for an element whatever its position, and exp or erf never mix two
//! approximations in one call.
//!
//! Reductions keep four accumulators (four independent FMA chains hide the
//! FMA latency) and sum them pairwise at the end; with 8 or 16 lanes this is
//! 32 or 64 partial sums, which also keeps the rounding error well below a
//! left-to-right sum.
//!
//! Not here: f16/bf16 inputs and strided (non-contiguous) operands; the
//! runtime hands these kernels contiguous f32 rows.

/// The per-ISA operations. Every method is `unsafe` because it executes
/// instructions the CPU must support; pointer methods also read or write
/// memory as their docs say.
pub(crate) trait Simd {
    /// One register of `LANES` f32.
    type V: Copy;
    /// Lanes per register (4, 8 or 16).
    const LANES: usize;

    unsafe fn splat(x: f32) -> Self::V;
    /// Reads `LANES` floats from `p` (no alignment needed).
    unsafe fn load(p: *const f32) -> Self::V;
    /// Writes `LANES` floats to `p` (no alignment needed).
    unsafe fn store(p: *mut f32, v: Self::V);
    /// Reads `n < LANES` floats from `p` into the low lanes; the other lanes
    /// take `fill`'s values. Never touches memory past `p + n`.
    unsafe fn load_tail(p: *const f32, n: usize, fill: Self::V) -> Self::V;
    /// Writes the low `n < LANES` lanes to `p`; memory past `p + n` is left
    /// alone.
    unsafe fn store_tail(p: *mut f32, n: usize, v: Self::V);

    unsafe fn add(a: Self::V, b: Self::V) -> Self::V;
    unsafe fn sub(a: Self::V, b: Self::V) -> Self::V;
    unsafe fn mul(a: Self::V, b: Self::V) -> Self::V;
    unsafe fn div(a: Self::V, b: Self::V) -> Self::V;
    /// `a * b + c` with one rounding.
    unsafe fn mul_add(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// Lane-wise max of `acc` and `x` that returns NaN in a lane where
    /// either input is NaN (x86 `maxps` alone would drop one of them).
    unsafe fn max_nan(acc: Self::V, x: Self::V) -> Self::V;
    /// `min(max(v, lo), hi)` lane-wise, keeping NaN lanes NaN.
    unsafe fn clamp(v: Self::V, lo: Self::V, hi: Self::V) -> Self::V;
    unsafe fn abs(v: Self::V) -> Self::V;
    /// `a < b ? t : f` lane-wise (false for NaN).
    unsafe fn select_lt(a: Self::V, b: Self::V, t: Self::V, f: Self::V) -> Self::V;
    /// Round to the nearest integer, ties to even.
    unsafe fn round(v: Self::V) -> Self::V;
    /// `2^n` for integral `n` in [-126, 127], built from exponent bits.
    unsafe fn pow2i(n: Self::V) -> Self::V;

    /// Sum of the lanes.
    #[inline(always)]
    unsafe fn reduce_add(v: Self::V) -> f32 {
        let mut buf = [0.0f32; 16];
        debug_assert!(Self::LANES <= buf.len());
        Self::store(buf.as_mut_ptr(), v);
        // Pairwise over the lanes: halves, then quarters, ...
        let mut w = Self::LANES;
        while w > 1 {
            w /= 2;
            for i in 0..w {
                buf[i] += buf[i + w];
            }
        }
        buf[0]
    }

    /// Max of the lanes, NaN if any lane is NaN.
    #[inline(always)]
    unsafe fn reduce_max(v: Self::V) -> f32 {
        let mut buf = [0.0f32; 16];
        debug_assert!(Self::LANES <= buf.len());
        Self::store(buf.as_mut_ptr(), v);
        let mut m = f32::NEG_INFINITY;
        for &x in &buf[..Self::LANES] {
            if x.is_nan() {
                return f32::NAN;
            }
            m = m.max(x);
        }
        m
    }
}

// Block loops
//
// `count` is `LANES` for a full block and smaller only for the last one;
// after inlining it is a constant in the main loops, so the branch in
// `ld`/`st` folds away there.

/// Loads `count` floats at `p`, padding with `fill`.
#[inline(always)]
unsafe fn ld<S: Simd>(p: *const f32, count: usize, fill: S::V) -> S::V {
    if count == S::LANES {
        S::load(p)
    } else {
        S::load_tail(p, count, fill)
    }
}

/// Stores the low `count` lanes of `v` at `p`.
#[inline(always)]
unsafe fn st<S: Simd>(p: *mut f32, count: usize, v: S::V) {
    if count == S::LANES {
        S::store(p, v)
    } else {
        S::store_tail(p, count, v)
    }
}

/// Folds `step(acc, offset, count)` over `[0, n)` block by block, round-robin
/// over four accumulators (the tail lands in the second), then merges them
/// pairwise.
#[inline(always)]
unsafe fn fold<S: Simd, A: Copy>(
    n: usize,
    init: A,
    mut step: impl FnMut(A, usize, usize) -> A,
    merge: impl Fn(A, A) -> A,
) -> A {
    let w = S::LANES;
    let mut acc = [init; 4];
    let mut i = 0;
    while i + 4 * w <= n {
        acc[0] = step(acc[0], i, w);
        acc[1] = step(acc[1], i + w, w);
        acc[2] = step(acc[2], i + 2 * w, w);
        acc[3] = step(acc[3], i + 3 * w, w);
        i += 4 * w;
    }
    while i + w <= n {
        acc[0] = step(acc[0], i, w);
        i += w;
    }
    if i < n {
        acc[1] = step(acc[1], i, n - i);
    }
    merge(merge(acc[0], acc[1]), merge(acc[2], acc[3]))
}

/// Calls `step(offset, count)` for each block of `[0, n)`, two blocks per
/// trip in the main loop.
#[inline(always)]
unsafe fn each<S: Simd>(n: usize, mut step: impl FnMut(usize, usize)) {
    let w = S::LANES;
    let mut i = 0;
    while i + 2 * w <= n {
        step(i, w);
        step(i + w, w);
        i += 2 * w;
    }
    while i + w <= n {
        step(i, w);
        i += w;
    }
    if i < n {
        step(i, n - i);
    }
}

// exp
//
// x = n ln2 + r with n = round(x / ln2) and |r| <= ln2 / 2; ln2 is split in
// a 9-bit head (n * LN2_HI is exact for |n| < 2^15) and a tail, so r carries
// no reduction error beyond one rounding. exp(r) = 1 + r + r^2 P(r) with
// Cephes' degree-5 P (a minimax fit on that interval). 2^n is applied as
// two factors 2^(n1) 2^(n - n1), n1 = round(n / 2): both stay normal for n
// in [-150, 129], so the largest finite results (n = 128) and subnormal
// results (n < -126) come out right without a special case, the latter
// rounded once by the last multiply.

/// Inputs are clamped to [EXP_LO, EXP_HI] first: exp(89) overflows to +inf
/// and exp(-104) rounds to 0, so the clamp changes no result.
const EXP_HI: f32 = 89.0;
const EXP_LO: f32 = -104.0;
const LOG2_E: f32 = std::f32::consts::LOG2_E;
const LN2_HI: f32 = 0.693_359_4; // 355 / 512, exact in 9 bits
const LN2_LO: f32 = -2.121_944_4e-4; // ln 2 - LN2_HI
const EXP_P: [f32; 6] =
    [1.987_569_1e-4, 1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 5e-1];

/// Lane-wise `exp(x)`; see the module notes above for the method and
/// [`crate::vector::exp`] for the error bound.
#[inline(always)]
pub(crate) unsafe fn exp_v<S: Simd>(x: S::V) -> S::V {
    let x = S::clamp(x, S::splat(EXP_LO), S::splat(EXP_HI));
    // Range reduction: x = n ln2 + r.
    let n = S::round(S::mul(x, S::splat(LOG2_E)));
    let r = S::mul_add(n, S::splat(-LN2_HI), x);
    let r = S::mul_add(n, S::splat(-LN2_LO), r);
    // exp(r) = 1 + r + r^2 P(r).
    let mut p = S::splat(EXP_P[0]);
    for &c in &EXP_P[1..] {
        p = S::mul_add(p, r, S::splat(c));
    }
    let e = S::add(S::mul_add(p, S::mul(r, r), r), S::splat(1.0));
    // Scale by 2^n in two normal factors.
    let n1 = S::round(S::mul(n, S::splat(0.5)));
    let n2 = S::sub(n, n1);
    S::mul(S::mul(e, S::pow2i(n1)), S::pow2i(n2))
}

// erf and the normal CDF
//
// Two pieces, picked per lane at |z| = 0.5:
// - |z| < 0.5: the Maclaurin series erf(z) = z * sum_k ERF_T[k] z^(2k),
//   k <= 6; the first omitted term is below 4e-10 there, so only f32
//   rounding is left, and the result keeps full relative accuracy near 0.
// - |z| >= 0.5: erfc(z) = t exp(-z^2 + Q(t)), t = 1 / (1 + z/2), Q of degree
//   9 (the Chebyshev fit from Numerical Recipes' `erfcc`, fractional error
//   below 1.2e-7 for every z >= 0), and erf = 1 - erfc. Working from erfc
//   lets the normal CDF of a negative input be formed without the
//   cancellation in 1 + erf.

/// erf(z) / z = 2/sqrt(pi) * sum_k (-1)^k z^(2k) / (k! (2k+1)).
const ERF_T: [f32; 7] = [
    std::f32::consts::FRAC_2_SQRT_PI,
    -0.376_126_4,
    0.112_837_92,
    -0.026_866_17,
    0.005_223_977_6,
    -8.548_327e-4,
    1.205_533_3e-4,
];
/// Q(t), highest power first; the constant term is -1.26551223.
const ERFC_Q: [f32; 10] = [
    0.170_872_77,
    -0.822_152_23,
    1.488_515_9,
    -1.135_204,
    0.278_868_07,
    -0.186_288_06,
    0.096_784_18,
    0.374_091_96,
    1.000_023_7,
    -1.265_512_2,
];
const ERF_SPLIT: f32 = 0.5;
const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;

/// erf for |z| < 0.5 by its series.
#[inline(always)]
unsafe fn erf_series<S: Simd>(z: S::V) -> S::V {
    let z2 = S::mul(z, z);
    let mut p = S::splat(ERF_T[6]);
    for &c in ERF_T[..6].iter().rev() {
        p = S::mul_add(p, z2, S::splat(c));
    }
    S::mul(p, z)
}

/// erfc(a) for a >= 0 (or NaN).
#[inline(always)]
unsafe fn erfc_nonneg<S: Simd>(a: S::V) -> S::V {
    let one = S::splat(1.0);
    let t = S::div(one, S::mul_add(a, S::splat(0.5), one));
    let mut q = S::splat(ERFC_Q[0]);
    for &c in &ERFC_Q[1..] {
        q = S::mul_add(q, t, S::splat(c));
    }
    // -a^2 + Q(t); for large a this goes below EXP_LO and exp gives 0.
    let arg = S::mul_add(S::sub(S::splat(0.0), a), a, q);
    S::mul(t, exp_v::<S>(arg))
}

/// Lane-wise erf(x).
#[inline(always)]
pub(crate) unsafe fn erf_v<S: Simd>(x: S::V) -> S::V {
    let a = S::abs(x);
    let small = erf_series::<S>(x);
    // 1 - erfc(|x|) carrying the sign of x: negate by x < 0.
    let big = S::sub(S::splat(1.0), erfc_nonneg::<S>(a));
    let big = S::select_lt(x, S::splat(0.0), S::sub(S::splat(0.0), big), big);
    S::select_lt(a, S::splat(ERF_SPLIT), small, big)
}

/// Lane-wise standard normal CDF, Phi(x) = (1 + erf(x / sqrt 2)) / 2.
#[inline(always)]
unsafe fn phi_v<S: Simd>(x: S::V) -> S::V {
    let half = S::splat(0.5);
    let z = S::mul(x, S::splat(std::f32::consts::FRAC_1_SQRT_2));
    let a = S::abs(z);
    let small = S::mul_add(erf_series::<S>(z), half, half);
    // Phi(x) = erfc(|z|)/2 for x < 0, 1 - erfc(|z|)/2 otherwise.
    let e = S::mul(erfc_nonneg::<S>(a), half);
    let big = S::select_lt(x, S::splat(0.0), e, S::sub(S::splat(1.0), e));
    S::select_lt(a, S::splat(ERF_SPLIT), small, big)
}

/// Lane-wise GELU, x Phi(x).
#[inline(always)]
unsafe fn gelu_v<S: Simd>(x: S::V) -> S::V {
    S::mul(x, phi_v::<S>(x))
}

/// Lane-wise GELU derivative, Phi(x) + x phi(x), phi the normal density.
#[inline(always)]
unsafe fn gelu_grad_v<S: Simd>(x: S::V) -> S::V {
    let density =
        S::mul(S::splat(FRAC_1_SQRT_2PI), exp_v::<S>(S::mul(S::mul(x, x), S::splat(-0.5))));
    S::mul_add(x, density, phi_v::<S>(x))
}

// The kernels. Each one's contract is on its public wrapper in `mod.rs`,
// which has already checked that the slices agree in length; here `n` is
// the first slice's length and the others are read or written at `[0, n)`.

#[inline(always)]
pub(crate) unsafe fn dot<S: Simd>(a: &[f32], b: &[f32]) -> f32 {
    let (pa, pb, z) = (a.as_ptr(), b.as_ptr(), S::splat(0.0));
    let acc = fold::<S, S::V>(
        a.len(),
        z,
        |acc, i, c| S::mul_add(ld::<S>(pa.add(i), c, z), ld::<S>(pb.add(i), c, z), acc),
        |u, v| S::add(u, v),
    );
    S::reduce_add(acc)
}

#[inline(always)]
pub(crate) unsafe fn sum<S: Simd>(x: &[f32]) -> f32 {
    let (p, z) = (x.as_ptr(), S::splat(0.0));
    let acc = fold::<S, S::V>(
        x.len(),
        z,
        |acc, i, c| S::add(acc, ld::<S>(p.add(i), c, z)),
        |u, v| S::add(u, v),
    );
    S::reduce_add(acc)
}

#[inline(always)]
pub(crate) unsafe fn sum_sq<S: Simd>(x: &[f32]) -> f32 {
    let (p, z) = (x.as_ptr(), S::splat(0.0));
    let acc = fold::<S, S::V>(
        x.len(),
        z,
        |acc, i, c| {
            let v = ld::<S>(p.add(i), c, z);
            S::mul_add(v, v, acc)
        },
        |u, v| S::add(u, v),
    );
    S::reduce_add(acc)
}

#[inline(always)]
pub(crate) unsafe fn max<S: Simd>(x: &[f32]) -> f32 {
    let (p, ninf) = (x.as_ptr(), S::splat(f32::NEG_INFINITY));
    let acc = fold::<S, S::V>(
        x.len(),
        ninf,
        |acc, i, c| S::max_nan(acc, ld::<S>(p.add(i), c, ninf)),
        |u, v| S::max_nan(u, v),
    );
    S::reduce_max(acc)
}

#[inline(always)]
pub(crate) unsafe fn axpy<S: Simd>(alpha: f32, x: &[f32], y: &mut [f32]) {
    let (px, py, z, a) = (x.as_ptr(), y.as_mut_ptr(), S::splat(0.0), S::splat(alpha));
    each::<S>(x.len(), |i, c| {
        let v = S::mul_add(a, ld::<S>(px.add(i), c, z), ld::<S>(py.add(i), c, z));
        st::<S>(py.add(i), c, v)
    });
}

#[inline(always)]
pub(crate) unsafe fn scale<S: Simd>(alpha: f32, x: &mut [f32]) {
    let (p, z, a) = (x.as_mut_ptr(), S::splat(0.0), S::splat(alpha));
    each::<S>(x.len(), |i, c| st::<S>(p.add(i), c, S::mul(a, ld::<S>(p.add(i), c, z))));
}

/// `out = f(a, b)` lane-wise.
#[inline(always)]
unsafe fn zip2<S: Simd>(a: &[f32], b: &[f32], out: &mut [f32], f: impl Fn(S::V, S::V) -> S::V) {
    let (pa, pb, po, z) = (a.as_ptr(), b.as_ptr(), out.as_mut_ptr(), S::splat(0.0));
    each::<S>(a.len(), |i, c| {
        st::<S>(po.add(i), c, f(ld::<S>(pa.add(i), c, z), ld::<S>(pb.add(i), c, z)))
    });
}

/// `out = f(x)` lane-wise.
#[inline(always)]
unsafe fn map<S: Simd>(x: &[f32], out: &mut [f32], f: impl Fn(S::V) -> S::V) {
    let (px, po, z) = (x.as_ptr(), out.as_mut_ptr(), S::splat(0.0));
    each::<S>(x.len(), |i, c| st::<S>(po.add(i), c, f(ld::<S>(px.add(i), c, z))));
}

#[inline(always)]
pub(crate) unsafe fn add<S: Simd>(a: &[f32], b: &[f32], out: &mut [f32]) {
    zip2::<S>(a, b, out, |u, v| S::add(u, v))
}

#[inline(always)]
pub(crate) unsafe fn sub<S: Simd>(a: &[f32], b: &[f32], out: &mut [f32]) {
    zip2::<S>(a, b, out, |u, v| S::sub(u, v))
}

#[inline(always)]
pub(crate) unsafe fn mul<S: Simd>(a: &[f32], b: &[f32], out: &mut [f32]) {
    zip2::<S>(a, b, out, |u, v| S::mul(u, v))
}

#[inline(always)]
pub(crate) unsafe fn mul_add<S: Simd>(a: &[f32], b: &[f32], c: &[f32], out: &mut [f32]) {
    let (pa, pb, pc, po, z) = (a.as_ptr(), b.as_ptr(), c.as_ptr(), out.as_mut_ptr(), S::splat(0.0));
    each::<S>(a.len(), |i, k| {
        let v = S::mul_add(
            ld::<S>(pa.add(i), k, z),
            ld::<S>(pb.add(i), k, z),
            ld::<S>(pc.add(i), k, z),
        );
        st::<S>(po.add(i), k, v)
    });
}

#[inline(always)]
pub(crate) unsafe fn exp<S: Simd>(x: &[f32], out: &mut [f32]) {
    map::<S>(x, out, |v| exp_v::<S>(v))
}

#[inline(always)]
pub(crate) unsafe fn erf<S: Simd>(x: &[f32], out: &mut [f32]) {
    map::<S>(x, out, |v| erf_v::<S>(v))
}

#[inline(always)]
pub(crate) unsafe fn gelu<S: Simd>(x: &[f32], out: &mut [f32]) {
    map::<S>(x, out, |v| gelu_v::<S>(v))
}

#[inline(always)]
pub(crate) unsafe fn gelu_backward<S: Simd>(x: &[f32], dy: &[f32], dx: &mut [f32]) {
    let (px, pdy, pdx, z) = (x.as_ptr(), dy.as_ptr(), dx.as_mut_ptr(), S::splat(0.0));
    each::<S>(x.len(), |i, c| {
        let g = gelu_grad_v::<S>(ld::<S>(px.add(i), c, z));
        let v = S::mul_add(ld::<S>(pdy.add(i), c, z), g, ld::<S>(pdx.add(i), c, z));
        st::<S>(pdx.add(i), c, v)
    });
}

/// Three passes: max, exp(x - max) stored in place while summing, scale by
/// 1 / sum. Tail lanes load as -inf, so they add exp(-inf) = 0.
#[inline(always)]
pub(crate) unsafe fn softmax<S: Simd>(x: &mut [f32]) {
    let n = x.len();
    if n == 0 {
        return;
    }
    let m = S::splat(max::<S>(x));
    let (p, z, ninf) = (x.as_mut_ptr(), S::splat(0.0), S::splat(f32::NEG_INFINITY));
    let s = fold::<S, S::V>(
        n,
        z,
        |acc, i, c| {
            let e = exp_v::<S>(S::sub(ld::<S>(p.add(i), c, ninf), m));
            st::<S>(p.add(i), c, e);
            S::add(acc, e)
        },
        |u, v| S::add(u, v),
    );
    let inv = S::splat(1.0 / S::reduce_add(s));
    each::<S>(n, |i, c| st::<S>(p.add(i), c, S::mul(ld::<S>(p.add(i), c, z), inv)));
}

/// `dx += y * (dy - dot(y, dy))`.
#[inline(always)]
pub(crate) unsafe fn softmax_backward<S: Simd>(y: &[f32], dy: &[f32], dx: &mut [f32]) {
    let d = S::splat(dot::<S>(y, dy));
    let (py, pdy, pdx, z) = (y.as_ptr(), dy.as_ptr(), dx.as_mut_ptr(), S::splat(0.0));
    each::<S>(y.len(), |i, c| {
        let g = S::sub(ld::<S>(pdy.add(i), c, z), d);
        st::<S>(pdx.add(i), c, S::mul_add(ld::<S>(py.add(i), c, z), g, ld::<S>(pdx.add(i), c, z)))
    });
}

/// Layer norm of one row in f32, three passes:
/// 1. mean m0 = sum(x) / n;
/// 2. around m0, D1 = sum(d) and D2 = sum(d^2) with d = x - m0. In exact
///    arithmetic D1 = 0; its rounded value corrects both the mean
///    (m = m0 + D1/n) and the variance (var = (D2 - D1^2/n) / n, the
///    corrected two-pass formula), so an offset row such as 1e4 + N(0, 1)
///    loses no more than its f32 inputs already lost;
/// 3. out = (x - m) rstd gamma + beta.
///
/// Tail lanes of x load as the mean, so they add d = 0.
#[inline(always)]
pub(crate) unsafe fn layernorm<S: Simd>(
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    out: &mut [f32],
) -> (f32, f32) {
    let n = x.len();
    let nf = n.max(1) as f32;
    let (px, pg, pb, po, z) =
        (x.as_ptr(), gamma.as_ptr(), beta.as_ptr(), out.as_mut_ptr(), S::splat(0.0));

    // Pass 1: provisional mean.
    let m0 = sum::<S>(x) / nf;
    let m0v = S::splat(m0);

    // Pass 2: first and second moments around it.
    let (d1, d2) = fold::<S, (S::V, S::V)>(
        n,
        (z, z),
        |(s1, s2), i, c| {
            let d = S::sub(ld::<S>(px.add(i), c, m0v), m0v);
            (S::add(s1, d), S::mul_add(d, d, s2))
        },
        |(a1, a2), (b1, b2)| (S::add(a1, b1), S::add(a2, b2)),
    );
    let (d1, d2) = (S::reduce_add(d1), S::reduce_add(d2));
    let mean = m0 + d1 / nf;
    let var = ((d2 - d1 * d1 / nf) / nf).max(0.0);
    let rstd = 1.0 / (var + eps).sqrt();

    // Pass 3: normalise, scale, shift.
    let (mv, rv) = (S::splat(mean), S::splat(rstd));
    each::<S>(n, |i, c| {
        let xhat = S::mul(S::sub(ld::<S>(px.add(i), c, mv), mv), rv);
        let v = S::mul_add(xhat, ld::<S>(pg.add(i), c, z), ld::<S>(pb.add(i), c, z));
        st::<S>(po.add(i), c, v)
    });
    (mean, rstd)
}

/// Two passes: the row means of g = dy * gamma and g * xhat, then the
/// three accumulating updates.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) unsafe fn layernorm_backward<S: Simd>(
    x: &[f32],
    gamma: &[f32],
    mean: f32,
    rstd: f32,
    dy: &[f32],
    dx: &mut [f32],
    dgamma: &mut [f32],
    dbeta: &mut [f32],
) {
    let n = x.len();
    if n == 0 {
        return;
    }
    let (px, pg, pdy) = (x.as_ptr(), gamma.as_ptr(), dy.as_ptr());
    let (pdx, pdg, pdb) = (dx.as_mut_ptr(), dgamma.as_mut_ptr(), dbeta.as_mut_ptr());
    let (z, mv, rv) = (S::splat(0.0), S::splat(mean), S::splat(rstd));

    // Pass 1: sum(g) and sum(g * xhat); tail lanes have dy = 0, so g = 0.
    let (sg, sgx) = fold::<S, (S::V, S::V)>(
        n,
        (z, z),
        |(a, b), i, c| {
            let xhat = S::mul(S::sub(ld::<S>(px.add(i), c, mv), mv), rv);
            let g = S::mul(ld::<S>(pdy.add(i), c, z), ld::<S>(pg.add(i), c, z));
            (S::add(a, g), S::mul_add(g, xhat, b))
        },
        |(a1, a2), (b1, b2)| (S::add(a1, b1), S::add(a2, b2)),
    );
    let nf = n as f32;
    let mg = S::splat(S::reduce_add(sg) / nf);
    let neg_mgx = S::splat(-S::reduce_add(sgx) / nf);

    // Pass 2: dx += rstd (g - mean(g) - xhat mean(g xhat)), dgamma += dy
    // xhat, dbeta += dy.
    each::<S>(n, |i, c| {
        let xhat = S::mul(S::sub(ld::<S>(px.add(i), c, mv), mv), rv);
        let d = ld::<S>(pdy.add(i), c, z);
        let g = S::mul(d, ld::<S>(pg.add(i), c, z));
        let t = S::mul_add(xhat, neg_mgx, S::sub(g, mg));
        st::<S>(pdx.add(i), c, S::mul_add(t, rv, ld::<S>(pdx.add(i), c, z)));
        st::<S>(pdg.add(i), c, S::mul_add(d, xhat, ld::<S>(pdg.add(i), c, z)));
        st::<S>(pdb.add(i), c, S::add(d, ld::<S>(pdb.add(i), c, z)));
    });
}

/// Stamps the `#[target_feature]` entry points of one ISA module: each is a
/// thin `unsafe fn` that instantiates the generic kernel for `$S` under
/// `$features`.
///
/// Every generated function has the same contract: the CPU supports
/// `$features` (a [`crate::Tier`] of the module's ISA proves it), and every
/// slice argument is at least as long as the first one.
macro_rules! entry_points {
    ($features:literal, $S:ty) => {
        use $crate::vector::simd as g;

        /// # Safety
        /// The CPU supports this module's features; `b` is as long as `a`.
        #[target_feature(enable = $features)]
        pub(crate) unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
            g::dot::<$S>(a, b)
        }
        /// # Safety
        /// The CPU supports this module's features.
        #[target_feature(enable = $features)]
        pub(crate) unsafe fn sum(x: &[f32]) -> f32 {
            g::sum::<$S>(x)
        }
        /// # Safety
        /// The CPU supports this module's features.
        #[target_feature(enable = $features)]
        pub(crate) unsafe fn sum_sq(x: &[f32]) -> f32 {
            g::sum_sq::<$S>(x)
        }
        /// # Safety
        /// The CPU supports this module's features.
        #[target_feature(enable = $features)]
        pub(crate) unsafe fn max(x: &[f32]) -> f32 {
            g::max::<$S>(x)
        }
        /// # Safety
        /// The CPU supports this module's features; `y` is as long as `x`.
        #[target_feature(enable = $features)]
        pub(crate) unsafe fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
            g::axpy::<$S>(alpha, x, y)
        }
        /// # Safety
        /// The CPU supports this module's features.
        #[target_feature(enable = $features)]
        pub(crate) unsafe fn scale(alpha: f32, x: &mut [f32]) {
            g::scale::<$S>(alpha, x)
        }
        /// # Safety
        /// The CPU supports this module's features; `b` and `out` are as
        /// long as `a`.
        #[target_feature(enable = $features)]
        pub(crate) unsafe fn add(a: &[f32], b: &[f32], out: &mut [f32]) {
            g::add::<$S>(a, b, out)
        }
        /// # Safety
        /// The CPU supports this module's features; `b` and `out` are as
        /// long as `a`.
        #[target_feature(enable = $features)]
        pub(crate) unsafe fn sub(a: &[f32], b: &[f32], out: &mut [f32]) {
            g::sub::<$S>(a, b, out)
        }
        /// # Safety
        /// The CPU supports this module's features; `b` and `out` are as
        /// long as `a`.
        #[target_feature(enable = $features)]
        pub(crate) unsafe fn mul(a: &[f32], b: &[f32], out: &mut [f32]) {
            g::mul::<$S>(a, b, out)
        }
        /// # Safety
        /// The CPU supports this module's features; `b`, `c` and `out` are
        /// as long as `a`.
        #[target_feature(enable = $features)]
        pub(crate) unsafe fn mul_add(a: &[f32], b: &[f32], c: &[f32], out: &mut [f32]) {
            g::mul_add::<$S>(a, b, c, out)
        }
        /// # Safety
        /// The CPU supports this module's features; `out` is as long as `x`.
        #[target_feature(enable = $features)]
        pub(crate) unsafe fn exp(x: &[f32], out: &mut [f32]) {
            g::exp::<$S>(x, out)
        }
        /// # Safety
        /// The CPU supports this module's features; `out` is as long as `x`.
        #[target_feature(enable = $features)]
        pub(crate) unsafe fn erf(x: &[f32], out: &mut [f32]) {
            g::erf::<$S>(x, out)
        }
        /// # Safety
        /// The CPU supports this module's features; `out` is as long as `x`.
        #[target_feature(enable = $features)]
        pub(crate) unsafe fn gelu(x: &[f32], out: &mut [f32]) {
            g::gelu::<$S>(x, out)
        }
        /// # Safety
        /// The CPU supports this module's features; `dy` and `dx` are as
        /// long as `x`.
        #[target_feature(enable = $features)]
        pub(crate) unsafe fn gelu_backward(x: &[f32], dy: &[f32], dx: &mut [f32]) {
            g::gelu_backward::<$S>(x, dy, dx)
        }
        /// # Safety
        /// The CPU supports this module's features.
        #[target_feature(enable = $features)]
        pub(crate) unsafe fn softmax(x: &mut [f32]) {
            g::softmax::<$S>(x)
        }
        /// # Safety
        /// The CPU supports this module's features; `dy` and `dx` are as
        /// long as `y`.
        #[target_feature(enable = $features)]
        pub(crate) unsafe fn softmax_backward(y: &[f32], dy: &[f32], dx: &mut [f32]) {
            g::softmax_backward::<$S>(y, dy, dx)
        }
        /// # Safety
        /// The CPU supports this module's features; `gamma`, `beta` and
        /// `out` are as long as `x`.
        #[target_feature(enable = $features)]
        pub(crate) unsafe fn layernorm(
            x: &[f32],
            gamma: &[f32],
            beta: &[f32],
            eps: f32,
            out: &mut [f32],
        ) -> (f32, f32) {
            g::layernorm::<$S>(x, gamma, beta, eps, out)
        }
        /// # Safety
        /// The CPU supports this module's features; every slice is as long
        /// as `x`.
        #[allow(clippy::too_many_arguments)]
        #[target_feature(enable = $features)]
        pub(crate) unsafe fn layernorm_backward(
            x: &[f32],
            gamma: &[f32],
            mean: f32,
            rstd: f32,
            dy: &[f32],
            dx: &mut [f32],
            dgamma: &mut [f32],
            dbeta: &mut [f32],
        ) {
            g::layernorm_backward::<$S>(x, gamma, mean, rstd, dy, dx, dgamma, dbeta)
        }
    };
}
pub(crate) use entry_points;
