//! Binary quantization: one sign bit per dimension, packed into u64 words.
//!
//! Bit j of word w is dimension 64 w + j, set when `x - mean > 0`; the
//! unused high bits of the last word stay zero so Hamming distances over
//! whole words are exact. Reconstruction uses `mean +- amp`, with `amp` the
//! sample's mean absolute deviation from `mean` per dimension: the value
//! that minimises the squared error of a two-level code with a fixed sign.

use crate::container::{Container, ContainerBuilder, KeyValues};

use super::{check_finite, rows, QuantError};

/// Number of u64 words in the code of a `dim`-dimensional vector.
pub fn words_for(dim: usize) -> usize {
    dim.div_ceil(64)
}

/// Number of differing bits between two codes, through the kernels'
/// Hamming scan (one code against one). Codes of different lengths, or
/// empty ones, are an error rather than a comparison of their common
/// prefix.
pub fn hamming(a: &[u64], b: &[u64]) -> Result<u32, QuantError> {
    if a.len() != b.len() {
        return Err(QuantError::Shape {
            what: "hamming: second code",
            expected: a.len(),
            found: b.len(),
        });
    }
    if a.is_empty() {
        return Err(QuantError::Empty { what: "hamming: code" });
    }
    let mut out = [0u32];
    crate::kernels::search::hamming(a, b, &mut out)
        .map_err(|e| QuantError::BadParameter { what: "hamming", reason: e.to_string() })?;
    Ok(out[0])
}

/// Parameters of a binary quantizer.
#[derive(Clone, Debug, PartialEq)]
pub struct BinaryQuantizer {
    dim: usize,
    centred: bool,
    mean: Vec<f32>,
    amp: Vec<f32>,
}

impl BinaryQuantizer {
    /// Calibrates from `sample` (rows of `dim`): the mean when `centre`,
    /// zeros otherwise, and the per-dimension amplitude.
    pub fn calibrate(sample: &[f32], dim: usize, centre: bool) -> Result<Self, QuantError> {
        let n = rows("sample", sample.len(), dim)?;
        if n == 0 {
            return Err(QuantError::Empty { what: "sample" });
        }
        check_finite("sample", sample)?;
        let mut mean = vec![0f64; dim];
        if centre {
            for row in sample.chunks_exact(dim) {
                for (m, &x) in mean.iter_mut().zip(row) {
                    *m += f64::from(x);
                }
            }
            mean.iter_mut().for_each(|m| *m /= n as f64);
        }
        let mut amp = vec![0f64; dim];
        for row in sample.chunks_exact(dim) {
            for ((a, &x), &m) in amp.iter_mut().zip(row).zip(&mean) {
                *a += (f64::from(x) - m).abs();
            }
        }
        Ok(BinaryQuantizer {
            dim,
            centred: centre,
            mean: mean.iter().map(|&m| m as f32).collect(),
            amp: amp.iter().map(|&a| (a / n as f64) as f32).collect(),
        })
    }

    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Words per code.
    pub fn words(&self) -> usize {
        words_for(self.dim)
    }

    /// The subtracted mean (zeros when not centred).
    pub fn mean(&self) -> &[f32] {
        &self.mean
    }

    /// Encodes rows of `dim` values into `out`, `words()` words per row.
    pub fn encode(&self, x: &[f32], out: &mut [u64]) -> Result<(), QuantError> {
        let n = rows("input", x.len(), self.dim)?;
        let w = self.words();
        if out.len() != n * w {
            return Err(QuantError::Shape { what: "codes", expected: n * w, found: out.len() });
        }
        check_finite("input", x)?;
        for (xr, code) in x.chunks_exact(self.dim).zip(out.chunks_exact_mut(w)) {
            code.fill(0);
            for (j, (&v, &m)) in xr.iter().zip(&self.mean).enumerate() {
                if v - m > 0.0 {
                    code[j / 64] |= 1 << (j % 64);
                }
            }
        }
        Ok(())
    }

    /// [`BinaryQuantizer::encode`] into a new vector.
    pub fn encode_vec(&self, x: &[f32]) -> Result<Vec<u64>, QuantError> {
        let n = rows("input", x.len(), self.dim)?;
        let mut out = vec![0u64; n * self.words()];
        self.encode(x, &mut out)?;
        Ok(out)
    }

    /// Reconstructs `mean +- amp` per dimension from codes.
    pub fn decode(&self, codes: &[u64], out: &mut [f32]) -> Result<(), QuantError> {
        let w = self.words();
        let n = rows("codes", codes.len(), w)?;
        if out.len() != n * self.dim {
            return Err(QuantError::Shape {
                what: "output",
                expected: n * self.dim,
                found: out.len(),
            });
        }
        for (code, xr) in codes.chunks_exact(w).zip(out.chunks_exact_mut(self.dim)) {
            for (j, x) in xr.iter_mut().enumerate() {
                let bit = code[j / 64] >> (j % 64) & 1 == 1;
                *x = if bit { self.mean[j] + self.amp[j] } else { self.mean[j] - self.amp[j] };
            }
        }
        Ok(())
    }

    /// Adds `{prefix}.mean`, `{prefix}.amp` and `{prefix}.params`.
    pub fn write(&self, b: &mut ContainerBuilder<'_>, prefix: &str) -> Result<(), QuantError> {
        let d = self.dim as u64;
        b.add_owned(&format!("{prefix}.mean"), &[d], self.mean.clone())?;
        b.add_owned(&format!("{prefix}.amp"), &[d], self.amp.clone())?;
        let dim = self.dim.to_string();
        let centred = self.centred.to_string();
        b.add_key_values(&format!("{prefix}.params"), [("dim", &dim), ("centred", &centred)])?;
        Ok(())
    }

    /// Loads and validates the sections written by [`BinaryQuantizer::write`].
    pub fn load(c: &Container<'_>, prefix: &str) -> Result<Self, QuantError> {
        let kv = KeyValues::load(c, &format!("{prefix}.params"))?;
        let dim: usize = kv.parse("dim")?;
        let centred: bool = kv.parse("centred")?;
        if dim == 0 {
            return Err(QuantError::Empty { what: "dimension" });
        }
        let mean = c.section::<f32>(&format!("{prefix}.mean"))?.to_vec();
        let amp = c.section::<f32>(&format!("{prefix}.amp"))?.to_vec();
        for (what, v) in [("mean", &mean), ("amp", &amp)] {
            if v.len() != dim {
                return Err(QuantError::Shape { what, expected: dim, found: v.len() });
            }
            check_finite(what, v)?;
        }
        if !centred && mean.iter().any(|&m| m != 0.0) {
            return Err(QuantError::BadParameter {
                what: "mean",
                reason: "non-zero mean stored for an uncentred quantizer".into(),
            });
        }
        if let Some(i) = amp.iter().position(|&a| a < 0.0) {
            return Err(QuantError::BadParameter {
                what: "amp",
                reason: format!("amp[{i}] is negative"),
            });
        }
        Ok(BinaryQuantizer { dim, centred, mean, amp })
    }
}
