//! The reference GEMM: a plain triple loop, accumulating in f32 in order of k.

use crate::mat::{MatMut, MatRef, ShapeError};

/// `C = alpha * A * B + beta * C`, portable and slow; the reference.
pub fn sgemm(
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    beta: f32,
    c: MatMut<'_>,
) -> Result<(), ShapeError> {
    super::check_dims(&a, &b, &c)?;
    sgemm_unchecked(alpha, a, b, beta, c);
    Ok(())
}

pub(crate) fn sgemm_unchecked(
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    beta: f32,
    mut c: MatMut<'_>,
) {
    let (m, n, k) = (a.rows(), b.cols(), a.cols());
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0.0f32;
            for p in 0..k {
                acc += a.at(i, p) * b.at(p, j);
            }
            let cij = c.at_mut(i, j);
            // beta == 0 must not read C: it may hold NaN.
            *cij = if beta == 0.0 { alpha * acc } else { alpha * acc + beta * *cij };
        }
    }
}
