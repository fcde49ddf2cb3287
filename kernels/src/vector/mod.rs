//! Vector kernels for the runtime's hot loops: dot, axpy, scale,
//! elementwise add, sub, multiply and multiply-add, sum, sum of squares and
//! max, row softmax (forward and backward), row layer norm (forward and
//! backward), erf, GELU in its erf form (forward and backward), and exp.
//!
//! Each function dispatches on the process tier; the `*_with` variants run a
//! chosen tier and [`scalar`] holds the references. Length mismatches are a
//! [`ShapeError`], never a silent truncation.
//!
//! The SIMD tiers share one implementation of each algorithm (`simd.rs`,
//! over a small lane trait) and differ only in the lane type (`avx2.rs`,
//! `avx512.rs`, `neon.rs`). Their results differ from the scalar tier in the
//! last bits: reductions add in a different order, `axpy`, `mul_add` and the
//! reductions use fused multiply-adds, and exp/erf are polynomial
//! approximations with the error bounds stated on [`exp`], [`erf`] and
//! [`gelu`]. Elementwise `add`, `sub`, `mul`, `scale` and `max` are exact
//! and agree bit for bit across tiers.
//!
//! Not here: strided operands, f16/bf16, and multi-threading; the runtime
//! splits rows across threads itself.

pub mod scalar;
mod simd;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "aarch64")]
mod neon;

use crate::dispatch::{active, Isa, Tier};
use crate::mat::ShapeError;

fn same_len(what: &'static str, expected: usize, found: usize) -> Result<(), ShapeError> {
    if expected == found {
        Ok(())
    } else {
        Err(ShapeError::Mismatch { what, expected, found })
    }
}

/// Runs `$f($args)` of the tier's ISA module, or `$scalar` on the scalar
/// tier. Callers check slice lengths first: the SIMD entry points require
/// every slice to be as long as the first.
macro_rules! run {
    ($tier:expr, $f:ident($($arg:expr),*), $scalar:expr) => {
        match $tier.isa() {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                // SAFETY: a Tier of this ISA is only made when the CPU runs
                // it, and the caller checked the slice lengths.
                unsafe { avx512::$f($($arg),*) }
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                // SAFETY: as above, for AVX2 + FMA.
                unsafe { avx2::$f($($arg),*) }
            }
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => {
                // SAFETY: as above, for NEON.
                unsafe { neon::$f($($arg),*) }
            }
            _ => $scalar,
        }
    };
}

/// `sum_i a[i] * b[i]`.
pub fn dot(a: &[f32], b: &[f32]) -> Result<f32, ShapeError> {
    dot_with(active(), a, b)
}
pub fn dot_with(tier: Tier, a: &[f32], b: &[f32]) -> Result<f32, ShapeError> {
    same_len("dot: length of b", a.len(), b.len())?;
    Ok(run!(tier, dot(a, b), scalar::dot(a, b)))
}

/// `y += alpha * x`.
pub fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) -> Result<(), ShapeError> {
    axpy_with(active(), alpha, x, y)
}
pub fn axpy_with(tier: Tier, alpha: f32, x: &[f32], y: &mut [f32]) -> Result<(), ShapeError> {
    same_len("axpy: length of y", x.len(), y.len())?;
    run!(tier, axpy(alpha, x, y), scalar::axpy(alpha, x, y));
    Ok(())
}

/// `x *= alpha`.
pub fn scale(alpha: f32, x: &mut [f32]) {
    scale_with(active(), alpha, x)
}
pub fn scale_with(tier: Tier, alpha: f32, x: &mut [f32]) {
    run!(tier, scale(alpha, x), scalar::scale(alpha, x))
}

/// `out[i] = a[i] + b[i]`.
pub fn add(a: &[f32], b: &[f32], out: &mut [f32]) -> Result<(), ShapeError> {
    add_with(active(), a, b, out)
}
pub fn add_with(tier: Tier, a: &[f32], b: &[f32], out: &mut [f32]) -> Result<(), ShapeError> {
    same_len("add: length of b", a.len(), b.len())?;
    same_len("add: length of out", a.len(), out.len())?;
    run!(tier, add(a, b, out), scalar::add(a, b, out));
    Ok(())
}

/// `out[i] = a[i] - b[i]`.
pub fn sub(a: &[f32], b: &[f32], out: &mut [f32]) -> Result<(), ShapeError> {
    sub_with(active(), a, b, out)
}
pub fn sub_with(tier: Tier, a: &[f32], b: &[f32], out: &mut [f32]) -> Result<(), ShapeError> {
    same_len("sub: length of b", a.len(), b.len())?;
    same_len("sub: length of out", a.len(), out.len())?;
    run!(tier, sub(a, b, out), scalar::sub(a, b, out));
    Ok(())
}

/// `out[i] = a[i] * b[i]`.
pub fn mul(a: &[f32], b: &[f32], out: &mut [f32]) -> Result<(), ShapeError> {
    mul_with(active(), a, b, out)
}
pub fn mul_with(tier: Tier, a: &[f32], b: &[f32], out: &mut [f32]) -> Result<(), ShapeError> {
    same_len("mul: length of b", a.len(), b.len())?;
    same_len("mul: length of out", a.len(), out.len())?;
    run!(tier, mul(a, b, out), scalar::mul(a, b, out));
    Ok(())
}

/// `out[i] = a[i] * b[i] + c[i]`; one rounding on the SIMD tiers (fused),
/// two on the scalar tier.
pub fn mul_add(a: &[f32], b: &[f32], c: &[f32], out: &mut [f32]) -> Result<(), ShapeError> {
    mul_add_with(active(), a, b, c, out)
}
pub fn mul_add_with(
    tier: Tier,
    a: &[f32],
    b: &[f32],
    c: &[f32],
    out: &mut [f32],
) -> Result<(), ShapeError> {
    same_len("mul_add: length of b", a.len(), b.len())?;
    same_len("mul_add: length of c", a.len(), c.len())?;
    same_len("mul_add: length of out", a.len(), out.len())?;
    run!(tier, mul_add(a, b, c, out), scalar::mul_add(a, b, c, out));
    Ok(())
}

/// `sum_i x[i]` (0 for an empty slice).
pub fn sum(x: &[f32]) -> f32 {
    sum_with(active(), x)
}
pub fn sum_with(tier: Tier, x: &[f32]) -> f32 {
    run!(tier, sum(x), scalar::sum(x))
}

/// `sum_i x[i]^2` (0 for an empty slice).
pub fn sum_sq(x: &[f32]) -> f32 {
    sum_sq_with(active(), x)
}
pub fn sum_sq_with(tier: Tier, x: &[f32]) -> f32 {
    run!(tier, sum_sq(x), scalar::sum_sq(x))
}

/// `max_i x[i]` (-inf for an empty slice; NaN if any element is NaN).
pub fn max(x: &[f32]) -> f32 {
    max_with(active(), x)
}
pub fn max_with(tier: Tier, x: &[f32]) -> f32 {
    run!(tier, max(x), scalar::max(x))
}

/// In-place softmax of one row: `x[i] = exp(x[i] - max) / sum_j exp(x[j] - max)`.
///
/// Subtracting the row max keeps every exp in (0, 1], so nothing overflows
/// and the largest term is exactly 1. A row holding NaN or +inf, or only
/// -inf, becomes all NaN (as the formula says; a fully masked attention row
/// must be handled by the caller). The SIMD tiers use the exp of [`exp`];
/// each output is within a few 1e-7 of the exact value, relative to the
/// output plus about 1e-8 absolute (`SOFTMAX_*` in the tests).
pub fn softmax(x: &mut [f32]) {
    softmax_with(active(), x)
}
pub fn softmax_with(tier: Tier, x: &mut [f32]) {
    run!(tier, softmax(x), scalar::softmax(x))
}

/// Softmax of each `cols`-long row of `x`, in place. `cols == 0` is
/// accepted only for an empty `x`.
pub fn softmax_rows(x: &mut [f32], cols: usize) -> Result<(), ShapeError> {
    softmax_rows_with(active(), x, cols)
}
pub fn softmax_rows_with(tier: Tier, x: &mut [f32], cols: usize) -> Result<(), ShapeError> {
    if cols == 0 {
        return same_len("softmax_rows: length of x with zero columns", 0, x.len());
    }
    same_len(
        "softmax_rows: length of x rounded down to whole rows",
        x.len(),
        x.len() / cols * cols,
    )?;
    for row in x.chunks_exact_mut(cols) {
        softmax_with(tier, row);
    }
    Ok(())
}

/// Backward of [`softmax`] for one row, given its output `y`:
/// `dx += y * (dy - sum_j y[j] dy[j])`. Accumulates.
pub fn softmax_backward(y: &[f32], dy: &[f32], dx: &mut [f32]) -> Result<(), ShapeError> {
    softmax_backward_with(active(), y, dy, dx)
}
pub fn softmax_backward_with(
    tier: Tier,
    y: &[f32],
    dy: &[f32],
    dx: &mut [f32],
) -> Result<(), ShapeError> {
    same_len("softmax_backward: length of dy", y.len(), dy.len())?;
    same_len("softmax_backward: length of dx", y.len(), dx.len())?;
    run!(tier, softmax_backward(y, dy, dx), scalar::softmax_backward(y, dy, dx));
    Ok(())
}

/// Layer norm of one row: `out = (x - mean) * rstd * gamma + beta`, with
/// `rstd = 1 / sqrt(var + eps)` and the biased variance. Returns
/// `(mean, rstd)`, which the backward pass needs.
///
/// The SIMD tiers work in f32 with three passes (mean; first and second
/// moments around it, whose first moment corrects mean and variance; the
/// output), so a row with a large common offset keeps its precision. The
/// scalar tier accumulates in f64.
pub fn layernorm(
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    out: &mut [f32],
) -> Result<(f32, f32), ShapeError> {
    layernorm_with(active(), x, gamma, beta, eps, out)
}
pub fn layernorm_with(
    tier: Tier,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    out: &mut [f32],
) -> Result<(f32, f32), ShapeError> {
    same_len("layernorm: length of gamma", x.len(), gamma.len())?;
    same_len("layernorm: length of beta", x.len(), beta.len())?;
    same_len("layernorm: length of out", x.len(), out.len())?;
    Ok(run!(tier, layernorm(x, gamma, beta, eps, out), scalar::layernorm(x, gamma, beta, eps, out)))
}

/// [`layernorm`] of each row of `x`, whose width is `gamma.len()`; row `r`'s
/// statistics go to `mean[r]` and `rstd[r]`.
pub fn layernorm_rows(
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    out: &mut [f32],
    mean: &mut [f32],
    rstd: &mut [f32],
) -> Result<(), ShapeError> {
    layernorm_rows_with(active(), x, gamma, beta, eps, out, mean, rstd)
}
#[allow(clippy::too_many_arguments)]
pub fn layernorm_rows_with(
    tier: Tier,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    out: &mut [f32],
    mean: &mut [f32],
    rstd: &mut [f32],
) -> Result<(), ShapeError> {
    let cols = gamma.len();
    same_len("layernorm_rows: length of beta", cols, beta.len())?;
    same_len("layernorm_rows: length of out", x.len(), out.len())?;
    let rows = match x.len().checked_div(cols) {
        Some(rows) => {
            let whole = rows * cols;
            same_len("layernorm_rows: length of x rounded down to whole rows", x.len(), whole)?;
            rows
        }
        // Zero columns: any number of empty rows, as many as `mean` holds.
        None => {
            same_len("layernorm_rows: length of x with zero columns", 0, x.len())?;
            mean.len()
        }
    };
    same_len("layernorm_rows: length of mean (one per row)", rows, mean.len())?;
    same_len("layernorm_rows: length of rstd (one per row)", rows, rstd.len())?;
    for r in 0..rows {
        let span = r * cols..(r + 1) * cols;
        let (m, s) = layernorm_with(tier, &x[span.clone()], gamma, beta, eps, &mut out[span])?;
        mean[r] = m;
        rstd[r] = s;
    }
    Ok(())
}

/// Backward of [`layernorm`] for one row.
///
/// With `xhat = (x - mean) * rstd` and `g = dy * gamma`:
/// `dx += rstd * (g - mean(g) - xhat * mean(g * xhat))`,
/// `dgamma += dy * xhat`, `dbeta += dy`. All three accumulate.
#[allow(clippy::too_many_arguments)]
pub fn layernorm_backward(
    x: &[f32],
    gamma: &[f32],
    mean: f32,
    rstd: f32,
    dy: &[f32],
    dx: &mut [f32],
    dgamma: &mut [f32],
    dbeta: &mut [f32],
) -> Result<(), ShapeError> {
    layernorm_backward_with(active(), x, gamma, mean, rstd, dy, dx, dgamma, dbeta)
}
#[allow(clippy::too_many_arguments)]
pub fn layernorm_backward_with(
    tier: Tier,
    x: &[f32],
    gamma: &[f32],
    mean: f32,
    rstd: f32,
    dy: &[f32],
    dx: &mut [f32],
    dgamma: &mut [f32],
    dbeta: &mut [f32],
) -> Result<(), ShapeError> {
    let n = x.len();
    same_len("layernorm_backward: length of gamma", n, gamma.len())?;
    same_len("layernorm_backward: length of dy", n, dy.len())?;
    same_len("layernorm_backward: length of dx", n, dx.len())?;
    same_len("layernorm_backward: length of dgamma", n, dgamma.len())?;
    same_len("layernorm_backward: length of dbeta", n, dbeta.len())?;
    run!(
        tier,
        layernorm_backward(x, gamma, mean, rstd, dy, dx, dgamma, dbeta),
        scalar::layernorm_backward(x, gamma, mean, rstd, dy, dx, dgamma, dbeta)
    );
    Ok(())
}

/// `out[i] = erf(x[i])`.
///
/// SIMD tiers: a series for |x| < 0.5 and `1 - erfc` from a Chebyshev fit
/// beyond, with the vector [`exp`]. Measured maximum absolute error against
/// the f64 reference, over a sweep of [-10, 10] in the tests
/// (`ERF_MAX_ABS`): below 2e-7 on every tier; relative error stays below
/// 1e-6 for |x| < 0.5. erf(+-inf) = +-1, NaN stays NaN. Scalar tier: the
/// f64 [`scalar::erf`], rounded.
pub fn erf(x: &[f32], out: &mut [f32]) -> Result<(), ShapeError> {
    erf_with(active(), x, out)
}
pub fn erf_with(tier: Tier, x: &[f32], out: &mut [f32]) -> Result<(), ShapeError> {
    same_len("erf: length of out", x.len(), out.len())?;
    run!(tier, erf(x, out), scalar::erf_slice(x, out));
    Ok(())
}

/// GELU, erf form: `out = 0.5 * x * (1 + erf(x / sqrt(2)))`.
///
/// The SIMD tiers form the normal CDF from erfc for negative x, so the
/// small outputs of the negative tail keep their relative accuracy instead
/// of cancelling in `1 + erf`. Error against the f64 reference is bounded
/// in the tests by `GELU_RTOL * |gelu(x)| + GELU_ATOL`.
pub fn gelu(x: &[f32], out: &mut [f32]) -> Result<(), ShapeError> {
    gelu_with(active(), x, out)
}
pub fn gelu_with(tier: Tier, x: &[f32], out: &mut [f32]) -> Result<(), ShapeError> {
    same_len("gelu: length of out", x.len(), out.len())?;
    run!(tier, gelu(x, out), scalar::gelu(x, out));
    Ok(())
}

/// Backward of [`gelu`]: `dx += dy * (Phi(x) + x * phi(x))`.
pub fn gelu_backward(x: &[f32], dy: &[f32], dx: &mut [f32]) -> Result<(), ShapeError> {
    gelu_backward_with(active(), x, dy, dx)
}
pub fn gelu_backward_with(
    tier: Tier,
    x: &[f32],
    dy: &[f32],
    dx: &mut [f32],
) -> Result<(), ShapeError> {
    same_len("gelu_backward: length of dy", x.len(), dy.len())?;
    same_len("gelu_backward: length of dx", x.len(), dx.len())?;
    run!(tier, gelu_backward(x, dy, dx), scalar::gelu_backward(x, dy, dx));
    Ok(())
}

/// `out[i] = exp(x[i])`.
///
/// SIMD tiers: Cody-Waite reduction by ln 2, a degree-7 polynomial (Cephes'
/// coefficients) and `2^n` from exponent bits. Measured maximum relative
/// error against f64 exp for x in [-87.33, 88.72] (the range with normal
/// results), sweeping in the tests (`EXP_MAX_REL`): below 2e-7 (under 2
/// ulp). Results below the normal range are subnormal (gradual underflow,
/// absolute error under 1e-45) and 0 from x = -104 down; x >= 88.73 gives
/// +inf; NaN stays NaN. Scalar tier: `f32::exp` from the standard library.
pub fn exp(x: &[f32], out: &mut [f32]) -> Result<(), ShapeError> {
    exp_with(active(), x, out)
}
pub fn exp_with(tier: Tier, x: &[f32], out: &mut [f32]) -> Result<(), ShapeError> {
    same_len("exp: length of out", x.len(), out.len())?;
    run!(tier, exp(x, out), scalar::exp(x, out));
    Ok(())
}
