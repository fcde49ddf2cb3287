//! Deterministic parameter initialisation.
//!
//! Values are a pure function of `(seed, stream, element index)` through a
//! counter-based hash, so initialisation does not depend on the order in
//! which parameters are created or on the thread count: give each
//! parameter its own stream (its registration index, say) and the same
//! seed always yields the same model. Normals come from Box-Muller on two
//! hashed uniforms.

use crate::error::{Error, Result};
use crate::ops::elementwise::uniform as unit;
use crate::tensor::{Shape, Tensor};

/// Uniform values in `[lo, hi)`.
pub fn uniform(dims: &[usize], lo: f32, hi: f32, seed: u64, stream: u64) -> Result<Tensor> {
    if lo.partial_cmp(&hi) != Some(std::cmp::Ordering::Less) || !lo.is_finite() || !hi.is_finite() {
        return Err(Error::InvalidArgument {
            op: "init uniform",
            what: format!("range [{lo}, {hi})"),
        });
    }
    let n = Shape::new(dims)?.numel();
    let v = (0..n).map(|i| lo + (hi - lo) * unit(seed, stream, i as u64)).collect();
    Tensor::from_vec(dims, v)
}

/// Normal values with mean 0 and standard deviation `std`.
pub fn normal(dims: &[usize], std: f32, seed: u64, stream: u64) -> Result<Tensor> {
    if std.is_sign_negative() || !std.is_finite() {
        return Err(Error::InvalidArgument { op: "init normal", what: format!("std = {std}") });
    }
    let n = Shape::new(dims)?.numel();
    let v = (0..n)
        .map(|i| {
            let i = i as u64;
            // Box-Muller; u1 in (0, 1] keeps the log finite.
            let u1 = 1.0 - unit(seed, stream, 2 * i);
            let u2 = unit(seed, stream, 2 * i + 1);
            std * (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
        })
        .collect();
    Tensor::from_vec(dims, v)
}

/// A tensor filled with one value.
pub fn constant(dims: &[usize], value: f32) -> Result<Tensor> {
    let n = Shape::new(dims)?.numel();
    Tensor::from_vec(dims, vec![value; n])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_plausible() {
        let a = normal(&[1000], 0.5, 1, 2).unwrap();
        let b = normal(&[1000], 0.5, 1, 2).unwrap();
        let c = normal(&[1000], 0.5, 1, 3).unwrap();
        assert_eq!(a.as_f32().unwrap(), b.as_f32().unwrap());
        assert_ne!(a.as_f32().unwrap(), c.as_f32().unwrap());
        let v = a.as_f32().unwrap();
        let mean = v.iter().sum::<f32>() / 1000.0;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / 1000.0;
        assert!(mean.abs() < 0.06, "mean {mean}");
        assert!((var.sqrt() - 0.5).abs() < 0.05, "std {}", var.sqrt());
        let u = uniform(&[100], -1.0, 1.0, 3, 0).unwrap();
        assert!(u.as_f32().unwrap().iter().all(|&x| (-1.0..1.0).contains(&x)));
        assert!(normal(&[2], f32::NAN, 0, 0).is_err());
    }
}
