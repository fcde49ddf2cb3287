//! Int8 scalar quantization: `x ~ scale * q + bias`, per dimension or
//! global, calibrated from a sample.
//!
//! Ranges. Calibration finds `[lo, hi]` per dimension (or over all values):
//! the sample min/max, or the `p`-th and `(100 - p)`-th percentiles
//! (nearest rank), which leaves the rare values beyond them to saturate.
//!
//! Codes. Symmetric: `scale = max(|lo|, |hi|) / 127`, `bias = 0`,
//! `q = clamp(round(x / scale), -127, 127)` (-128 is never produced, so
//! negation stays in range). Asymmetric: `scale = (hi - lo) / 255`,
//! `bias = lo + 128 * scale`, `q = clamp(round((x - bias) / scale), -128,
//! 127)`, so `lo` maps to -128 and `hi` to 127. A range of zero width gets
//! `scale = 1` with the bias placing the constant exactly.

use crate::container::{Container, ContainerBuilder, KeyValues};

use super::{check_finite, rows, QuantError};

/// Whether the zero point is fixed at 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `bias = 0`, codes in -127..=127.
    Symmetric,
    /// Full -128..=127 over `[lo, hi]`.
    Asymmetric,
}

/// One scale/bias for every dimension, or one per dimension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Granularity {
    Global,
    PerDim,
}

/// How the range `[lo, hi]` is taken from the sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Calibration {
    /// Sample minimum and maximum.
    MinMax,
    /// The `p`-th percentile and its mirror `100 - p`; `p` in (50, 100].
    Percentile(f32),
}

/// Parameters of an int8 quantizer; see the module doc for the maths.
#[derive(Clone, Debug, PartialEq)]
pub struct Int8Quantizer {
    dim: usize,
    mode: Mode,
    /// Length 1 (global) or `dim`.
    scale: Vec<f32>,
    /// Same length as `scale`.
    bias: Vec<f32>,
    calibration: String,
}

// Nearest-rank quantile of `v` (non-empty, finite), reordering it.
fn quantile(v: &mut [f32], q: f64) -> f32 {
    let k = ((q * (v.len() - 1) as f64).round() as usize).min(v.len() - 1);
    *v.select_nth_unstable_by(k, f32::total_cmp).1
}

fn range(v: &mut [f32], cal: Calibration) -> (f32, f32) {
    match cal {
        Calibration::MinMax => {
            v.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &x| (lo.min(x), hi.max(x)))
        }
        Calibration::Percentile(p) => {
            let q = f64::from(p) / 100.0;
            (quantile(v, 1.0 - q), quantile(v, q))
        }
    }
}

fn params(mode: Mode, lo: f32, hi: f32) -> (f32, f32) {
    match mode {
        Mode::Symmetric => {
            let a = lo.abs().max(hi.abs());
            (if a > 0.0 { a / 127.0 } else { 1.0 }, 0.0)
        }
        Mode::Asymmetric => {
            let w = hi - lo;
            let s = if w > 0.0 && (w / 255.0) > 0.0 { w / 255.0 } else { 1.0 };
            (s, lo + 128.0 * s)
        }
    }
}

impl Int8Quantizer {
    /// Calibrates from `sample`, rows of `dim` values.
    pub fn calibrate(
        sample: &[f32],
        dim: usize,
        mode: Mode,
        granularity: Granularity,
        calibration: Calibration,
    ) -> Result<Self, QuantError> {
        let n = rows("sample", sample.len(), dim)?;
        if n == 0 {
            return Err(QuantError::Empty { what: "sample" });
        }
        check_finite("sample", sample)?;
        if let Calibration::Percentile(p) = calibration {
            if !(p > 50.0 && p <= 100.0) {
                return Err(QuantError::BadParameter {
                    what: "percentile",
                    reason: format!("{p} is outside (50, 100]"),
                });
            }
        }

        // Ranges: over everything, or column by column.
        let ranges: Vec<(f32, f32)> = match granularity {
            Granularity::Global => vec![range(&mut sample.to_vec(), calibration)],
            Granularity::PerDim => {
                let mut col = vec![0f32; n];
                (0..dim)
                    .map(|j| {
                        for (c, row) in col.iter_mut().zip(sample.chunks_exact(dim)) {
                            *c = row[j];
                        }
                        range(&mut col, calibration)
                    })
                    .collect()
            }
        };
        let (scale, bias) = ranges.iter().map(|&(lo, hi)| params(mode, lo, hi)).unzip();
        let calibration = match calibration {
            Calibration::MinMax => "minmax".to_owned(),
            Calibration::Percentile(p) => format!("percentile:{p}"),
        };
        Ok(Int8Quantizer { dim, mode, scale, bias, calibration })
    }

    /// Builds a quantizer from explicit parameters (validated like a load).
    pub fn from_params(
        dim: usize,
        mode: Mode,
        scale: Vec<f32>,
        bias: Vec<f32>,
    ) -> Result<Self, QuantError> {
        let q = Int8Quantizer { dim, mode, scale, bias, calibration: "explicit".into() };
        q.validate()?;
        Ok(q)
    }

    fn validate(&self) -> Result<(), QuantError> {
        if self.dim == 0 {
            return Err(QuantError::Empty { what: "dimension" });
        }
        let n = self.scale.len();
        if n != 1 && n != self.dim {
            return Err(QuantError::Shape { what: "scale", expected: self.dim, found: n });
        }
        if self.bias.len() != n {
            return Err(QuantError::Shape { what: "bias", expected: n, found: self.bias.len() });
        }
        check_finite("scale", &self.scale)?;
        check_finite("bias", &self.bias)?;
        if let Some(i) = self.scale.iter().position(|&s| s <= 0.0) {
            return Err(QuantError::BadParameter {
                what: "scale",
                reason: format!("scale[{i}] = {} is not positive", self.scale[i]),
            });
        }
        if self.mode == Mode::Symmetric && self.bias.iter().any(|&b| b != 0.0) {
            return Err(QuantError::BadParameter {
                what: "bias",
                reason: "symmetric quantization needs a zero bias".into(),
            });
        }
        Ok(())
    }

    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Symmetric or asymmetric.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Scales: one (global) or one per dimension.
    pub fn scale(&self) -> &[f32] {
        &self.scale
    }

    /// Biases, the same length as the scales.
    pub fn bias(&self) -> &[f32] {
        &self.bias
    }

    // (scale, bias) of dimension j.
    fn at(&self, j: usize) -> (f32, f32) {
        if self.scale.len() == 1 {
            (self.scale[0], self.bias[0])
        } else {
            (self.scale[j], self.bias[j])
        }
    }

    /// Quantizes rows of `dim` values into `out` (same length). Values past
    /// the calibrated range saturate; NaN or infinity is an error.
    pub fn quantize(&self, x: &[f32], out: &mut [i8]) -> Result<(), QuantError> {
        rows("input", x.len(), self.dim)?;
        if out.len() != x.len() {
            return Err(QuantError::Shape { what: "codes", expected: x.len(), found: out.len() });
        }
        check_finite("input", x)?;
        let qmin = if self.mode == Mode::Symmetric { -127.0 } else { -128.0 };
        for (xr, qr) in x.chunks_exact(self.dim).zip(out.chunks_exact_mut(self.dim)) {
            for (j, (&v, q)) in xr.iter().zip(qr.iter_mut()).enumerate() {
                let (s, b) = self.at(j);
                *q = ((v - b) / s).round().clamp(qmin, 127.0) as i8;
            }
        }
        Ok(())
    }

    /// [`Int8Quantizer::quantize`] into a new vector.
    pub fn quantize_vec(&self, x: &[f32]) -> Result<Vec<i8>, QuantError> {
        let mut out = vec![0i8; x.len()];
        self.quantize(x, &mut out)?;
        Ok(out)
    }

    /// Reconstructs `scale * q + bias` for rows of `dim` codes.
    pub fn dequantize(&self, q: &[i8], out: &mut [f32]) -> Result<(), QuantError> {
        rows("codes", q.len(), self.dim)?;
        if out.len() != q.len() {
            return Err(QuantError::Shape { what: "output", expected: q.len(), found: out.len() });
        }
        for (qr, xr) in q.chunks_exact(self.dim).zip(out.chunks_exact_mut(self.dim)) {
            for (j, (&c, x)) in qr.iter().zip(xr.iter_mut()).enumerate() {
                let (s, b) = self.at(j);
                *x = s * f32::from(c) + b;
            }
        }
        Ok(())
    }

    /// [`Int8Quantizer::dequantize`] into a new vector.
    pub fn dequantize_vec(&self, q: &[i8]) -> Result<Vec<f32>, QuantError> {
        let mut out = vec![0f32; q.len()];
        self.dequantize(q, &mut out)?;
        Ok(out)
    }

    /// Adds `{prefix}.scale`, `{prefix}.bias` and `{prefix}.params`.
    pub fn write(&self, b: &mut ContainerBuilder<'_>, prefix: &str) -> Result<(), QuantError> {
        let n = self.scale.len() as u64;
        b.add_owned(&format!("{prefix}.scale"), &[n], self.scale.clone())?;
        b.add_owned(&format!("{prefix}.bias"), &[n], self.bias.clone())?;
        let mode = match self.mode {
            Mode::Symmetric => "symmetric",
            Mode::Asymmetric => "asymmetric",
        };
        let dim = self.dim.to_string();
        b.add_key_values(
            &format!("{prefix}.params"),
            [("mode", mode), ("dim", &dim), ("calibration", &self.calibration)],
        )?;
        Ok(())
    }

    /// Loads and validates the sections written by [`Int8Quantizer::write`].
    pub fn load(c: &Container<'_>, prefix: &str) -> Result<Self, QuantError> {
        let kv = KeyValues::load(c, &format!("{prefix}.params"))?;
        let mode = match kv.get("mode") {
            Some("symmetric") => Mode::Symmetric,
            Some("asymmetric") => Mode::Asymmetric,
            other => {
                return Err(QuantError::BadParameter {
                    what: "mode",
                    reason: format!("{other:?} is not symmetric or asymmetric"),
                })
            }
        };
        let dim: usize = kv.parse("dim")?;
        let calibration = kv.get("calibration").unwrap_or("").to_owned();
        let scale = c.section::<f32>(&format!("{prefix}.scale"))?.to_vec();
        let bias = c.section::<f32>(&format!("{prefix}.bias"))?.to_vec();
        let q = Int8Quantizer { dim, mode, scale, bias, calibration };
        q.validate()?;
        Ok(q)
    }
}
