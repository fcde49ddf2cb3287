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
