//! f32 matrix multiplication: `C = alpha * op(A) * op(B) + beta * C`.
//!
//! `op` is expressed through the views: pass `a.t()` for a transposed
//! operand. Any row and column strides are accepted. With `beta == 0`, C is
//! never read, so it may hold NaN or garbage on entry.
//!
//! [`sgemm`] dispatches on the process tier; [`sgemm_with`] runs a given tier
//! (tests and benches); [`scalar::sgemm`] is the reference.

pub mod scalar;

use crate::dispatch::{active, Tier};
use crate::mat::{MatMut, MatRef, ShapeError};

/// Checks that `op(A)` is m x k, `op(B)` is k x n and C is m x n.
pub(crate) fn check_dims(a: &MatRef<'_>, b: &MatRef<'_>, c: &MatMut<'_>) -> Result<(), ShapeError> {
    if a.cols() != b.rows() {
        return Err(ShapeError::Mismatch {
            what: "gemm: columns of op(A) against rows of op(B)",
            expected: a.cols(),
            found: b.rows(),
        });
    }
    if c.rows() != a.rows() {
        return Err(ShapeError::Mismatch {
            what: "gemm: rows of C against rows of op(A)",
            expected: a.rows(),
            found: c.rows(),
        });
    }
    if c.cols() != b.cols() {
        return Err(ShapeError::Mismatch {
            what: "gemm: columns of C against columns of op(B)",
            expected: b.cols(),
            found: c.cols(),
        });
    }
    Ok(())
}

/// `C = alpha * A * B + beta * C` on the process tier.
pub fn sgemm(
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    beta: f32,
    c: MatMut<'_>,
) -> Result<(), ShapeError> {
    sgemm_with(active(), alpha, a, b, beta, c)
}

/// `C = alpha * A * B + beta * C` on a chosen tier.
pub fn sgemm_with(
    tier: Tier,
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    beta: f32,
    c: MatMut<'_>,
) -> Result<(), ShapeError> {
    check_dims(&a, &b, &c)?;
    let _ = tier;
    scalar::sgemm_unchecked(alpha, a, b, beta, c);
    Ok(())
}
