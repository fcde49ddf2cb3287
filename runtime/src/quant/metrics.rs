//! Reconstruction error measures, accumulated in f64 so that long inputs
//! do not lose the small differences being measured.

use super::{rows, QuantError};

fn same_len(a: &[f32], b: &[f32]) -> Result<(), QuantError> {
    if a.len() != b.len() {
        return Err(QuantError::Shape {
            what: "reconstruction",
            expected: a.len(),
            found: b.len(),
        });
    }
    if a.is_empty() {
        return Err(QuantError::Empty { what: "original" });
    }
    Ok(())
}

/// Mean squared error `sum (a - b)^2 / len`.
pub fn mse(original: &[f32], reconstructed: &[f32]) -> Result<f64, QuantError> {
    same_len(original, reconstructed)?;
    let s: f64 = original
        .iter()
        .zip(reconstructed)
        .map(|(&a, &b)| {
            let d = f64::from(a) - f64::from(b);
            d * d
        })
        .sum();
    Ok(s / original.len() as f64)
}

/// Largest `|a - b|` over all elements.
pub fn max_abs_error(original: &[f32], reconstructed: &[f32]) -> Result<f64, QuantError> {
    same_len(original, reconstructed)?;
    Ok(original
        .iter()
        .zip(reconstructed)
        .map(|(&a, &b)| (f64::from(a) - f64::from(b)).abs())
        .fold(0.0, f64::max))
}

/// Cosine similarity of two vectors; 1 when both are zero, 0 when exactly
/// one is.
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    match (aa == 0.0, bb == 0.0) {
        (true, true) => 1.0,
        (true, false) | (false, true) => 0.0,
        _ => ab / (aa.sqrt() * bb.sqrt()),
    }
}

/// Mean over rows of the cosine between each original row of `dim` values
/// and its reconstruction.
pub fn mean_cosine(original: &[f32], reconstructed: &[f32], dim: usize) -> Result<f64, QuantError> {
    same_len(original, reconstructed)?;
    let n = rows("original", original.len(), dim)?;
    let total: f64 = original
        .chunks_exact(dim)
        .zip(reconstructed.chunks_exact(dim))
        .map(|(a, b)| cosine(a, b))
        .sum();
    Ok(total / n as f64)
}

/// How far inner products with reconstructed vectors stray from the
/// originals, over every (query, row) pair.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DotError {
    /// Mean of `|q . x - q . x'|`.
    pub mean_abs: f64,
    /// Largest `|q . x - q . x'|`.
    pub max_abs: f64,
    /// Mean of `q . x - q . x'`: a systematic shift, which ranking ignores
    /// but which matters when scores are compared against a threshold.
    pub bias: f64,
}

/// Inner-product error of `reconstructed` against `original` (both rows
/// of `dim`) as seen by `queries` (rows of `dim`): what a search ranks by,
/// where [`mse`] measures the vectors themselves.
pub fn dot_error(
    original: &[f32],
    reconstructed: &[f32],
    queries: &[f32],
    dim: usize,
) -> Result<DotError, QuantError> {
    same_len(original, reconstructed)?;
    let n = rows("original", original.len(), dim)?;
    let nq = rows("queries", queries.len(), dim)?;
    if nq == 0 {
        return Err(QuantError::Empty { what: "queries" });
    }
    let (mut sum_abs, mut max_abs, mut sum) = (0f64, 0f64, 0f64);
    for q in queries.chunks_exact(dim) {
        for (a, b) in original.chunks_exact(dim).zip(reconstructed.chunks_exact(dim)) {
            // q . (a - b) in f64: the difference is what is measured.
            let e: f64 = q
                .iter()
                .zip(a.iter().zip(b))
                .map(|(&q, (&a, &b))| f64::from(q) * (f64::from(a) - f64::from(b)))
                .sum();
            sum_abs += e.abs();
            max_abs = max_abs.max(e.abs());
            sum += e;
        }
    }
    let pairs = (n * nq) as f64;
    Ok(DotError { mean_abs: sum_abs / pairs, max_abs, bias: sum / pairs })
}
