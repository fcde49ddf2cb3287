//! Vector quantization for the index: int8 scalar quantization and binary
//! (sign) codes, their calibration from a sample, reconstruction, error
//! measures, and storage of their parameters as container sections.
//!
//! Int8 ([`Int8Quantizer`]) maps each value as `x ~ scale * q + bias` with
//! one scale and bias per dimension or one for all, chosen from a sample by
//! its min/max or by percentiles (which clip rare outliers so the bulk of
//! the values get finer steps). Symmetric quantization keeps `bias = 0`, so
//! the integer dot product of two code vectors, times the squared global
//! scale, approximates the float dot product: that is what an int8 search
//! kernel can use directly. Asymmetric quantization spends all 256 levels on
//! the observed range and reconstructs one-sided data better, but its dot
//! products need the bias terms.
//!
//! Binary ([`BinaryQuantizer`]) keeps one sign bit per dimension, packed
//! into u64 words, optionally after subtracting a stored mean (centring
//! matters when embeddings share a common offset, which would otherwise set
//! the same bits everywhere). Hamming distance between codes ranks
//! candidates; a per-dimension amplitude gives a reconstruction so its
//! error can be measured like int8's.
//!
//! [`metrics`] measures reconstruction error (MSE, largest error, mean
//! cosine) and what a search sees of it: the error of inner products
//! between queries and reconstructed vectors. Left out here: product
//! quantization (trained and scanned by the kernels crate, stored by the
//! index), 4-bit scalar codes, and learned rotations before binarizing.

mod binary;
mod int8;
pub mod metrics;

pub use binary::{hamming, words_for, BinaryQuantizer};
pub use int8::{Calibration, Granularity, Int8Quantizer, Mode};

use crate::container::ContainerError;

/// What went wrong calibrating, quantizing or loading a quantizer.
#[derive(Debug)]
#[non_exhaustive]
pub enum QuantError {
    /// A buffer's length does not fit the dimension (`what` names it).
    Shape { what: &'static str, expected: usize, found: usize },
    /// A value that must be finite is NaN or infinite (`what[index]`).
    NonFinite { what: &'static str, index: usize },
    /// A sample or dimension is empty where one value is needed.
    Empty { what: &'static str },
    /// A parameter is outside its domain (`what` names it).
    BadParameter { what: &'static str, reason: String },
    /// Reading or writing the parameter sections failed.
    Container(ContainerError),
}

impl std::fmt::Display for QuantError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QuantError::Shape { what, expected, found } => {
                write!(f, "{what}: expected length {expected}, found {found}")
            }
            QuantError::NonFinite { what, index } => write!(f, "{what}[{index}] is not finite"),
            QuantError::Empty { what } => write!(f, "{what} is empty"),
            QuantError::BadParameter { what, reason } => write!(f, "{what}: {reason}"),
            QuantError::Container(e) => write!(f, "quantizer sections: {e}"),
        }
    }
}

impl std::error::Error for QuantError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            QuantError::Container(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ContainerError> for QuantError {
    fn from(e: ContainerError) -> Self {
        QuantError::Container(e)
    }
}

/// Checks that `data` holds whole rows of `dim` values and returns the row
/// count.
pub(crate) fn rows(what: &'static str, data_len: usize, dim: usize) -> Result<usize, QuantError> {
    if dim == 0 {
        return Err(QuantError::Empty { what: "dimension" });
    }
    if !data_len.is_multiple_of(dim) {
        return Err(QuantError::Shape {
            what,
            expected: data_len / dim * dim + dim,
            found: data_len,
        });
    }
    Ok(data_len / dim)
}

/// First non-finite value of `data`, as an error.
pub(crate) fn check_finite(what: &'static str, data: &[f32]) -> Result<(), QuantError> {
    match data.iter().position(|x| !x.is_finite()) {
        Some(index) => Err(QuantError::NonFinite { what, index }),
        None => Ok(()),
    }
}
