//! Vector kernels for the runtime's hot loops: dot, axpy, scale,
//! elementwise add and multiply, sum and max, row softmax, row layer norm
//! (forward and the pieces of its backward), GELU in its erf form, and exp.
//!
//! Each function dispatches on the process tier; the `*_with` variants run a
//! chosen tier and [`scalar`] holds the references. Length mismatches are a
//! [`ShapeError`], never a silent truncation.

pub mod scalar;

use crate::dispatch::{active, Tier};
use crate::mat::ShapeError;

fn same_len(what: &'static str, expected: usize, found: usize) -> Result<(), ShapeError> {
    if expected == found {
        Ok(())
    } else {
        Err(ShapeError::Mismatch { what, expected, found })
    }
}

/// `sum_i a[i] * b[i]`.
pub fn dot(a: &[f32], b: &[f32]) -> Result<f32, ShapeError> {
    dot_with(active(), a, b)
}
pub fn dot_with(tier: Tier, a: &[f32], b: &[f32]) -> Result<f32, ShapeError> {
    same_len("dot: length of b", a.len(), b.len())?;
    let _ = tier;
    Ok(scalar::dot(a, b))
}

/// `y += alpha * x`.
pub fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) -> Result<(), ShapeError> {
    axpy_with(active(), alpha, x, y)
}
pub fn axpy_with(tier: Tier, alpha: f32, x: &[f32], y: &mut [f32]) -> Result<(), ShapeError> {
    same_len("axpy: length of y", x.len(), y.len())?;
    let _ = tier;
    scalar::axpy(alpha, x, y);
    Ok(())
}

/// `x *= alpha`.
pub fn scale(alpha: f32, x: &mut [f32]) {
    scale_with(active(), alpha, x)
}
pub fn scale_with(tier: Tier, alpha: f32, x: &mut [f32]) {
    let _ = tier;
    scalar::scale(alpha, x)
}

/// `out[i] = a[i] + b[i]`.
pub fn add(a: &[f32], b: &[f32], out: &mut [f32]) -> Result<(), ShapeError> {
    add_with(active(), a, b, out)
}
pub fn add_with(tier: Tier, a: &[f32], b: &[f32], out: &mut [f32]) -> Result<(), ShapeError> {
    same_len("add: length of b", a.len(), b.len())?;
    same_len("add: length of out", a.len(), out.len())?;
    let _ = tier;
    scalar::add(a, b, out);
    Ok(())
}

/// `out[i] = a[i] * b[i]`.
pub fn mul(a: &[f32], b: &[f32], out: &mut [f32]) -> Result<(), ShapeError> {
    mul_with(active(), a, b, out)
}
pub fn mul_with(tier: Tier, a: &[f32], b: &[f32], out: &mut [f32]) -> Result<(), ShapeError> {
    same_len("mul: length of b", a.len(), b.len())?;
    same_len("mul: length of out", a.len(), out.len())?;
    let _ = tier;
    scalar::mul(a, b, out);
    Ok(())
}

/// `sum_i x[i]` (0 for an empty slice).
pub fn sum(x: &[f32]) -> f32 {
    sum_with(active(), x)
}
pub fn sum_with(tier: Tier, x: &[f32]) -> f32 {
    let _ = tier;
    scalar::sum(x)
}

/// `max_i x[i]` (-inf for an empty slice; NaN if any element is NaN).
pub fn max(x: &[f32]) -> f32 {
    max_with(active(), x)
}
pub fn max_with(tier: Tier, x: &[f32]) -> f32 {
    let _ = tier;
    scalar::max(x)
}

/// In-place softmax of one row: `x[i] = exp(x[i] - max) / sum_j exp(x[j] - max)`.
pub fn softmax(x: &mut [f32]) {
    softmax_with(active(), x)
}
pub fn softmax_with(tier: Tier, x: &mut [f32]) {
    let _ = tier;
    scalar::softmax(x)
}

/// Layer norm of one row: `out = (x - mean) * rstd * gamma + beta`, with
/// `rstd = 1 / sqrt(var + eps)` and the biased variance. Returns
/// `(mean, rstd)`, which the backward pass needs.
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
    let _ = tier;
    Ok(scalar::layernorm(x, gamma, beta, eps, out))
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
    let _ = tier;
    scalar::layernorm_backward(x, gamma, mean, rstd, dy, dx, dgamma, dbeta);
    Ok(())
}

/// GELU, erf form: `out = 0.5 * x * (1 + erf(x / sqrt(2)))`.
pub fn gelu(x: &[f32], out: &mut [f32]) -> Result<(), ShapeError> {
    gelu_with(active(), x, out)
}
pub fn gelu_with(tier: Tier, x: &[f32], out: &mut [f32]) -> Result<(), ShapeError> {
    same_len("gelu: length of out", x.len(), out.len())?;
    let _ = tier;
    scalar::gelu(x, out);
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
    let _ = tier;
    scalar::gelu_backward(x, dy, dx);
    Ok(())
}

/// `out[i] = exp(x[i])`.
pub fn exp(x: &[f32], out: &mut [f32]) -> Result<(), ShapeError> {
    exp_with(active(), x, out)
}
pub fn exp_with(tier: Tier, x: &[f32], out: &mut [f32]) -> Result<(), ShapeError> {
    same_len("exp: length of out", x.len(), out.len())?;
    let _ = tier;
    scalar::exp(x, out);
    Ok(())
}
