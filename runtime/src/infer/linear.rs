//! Linear layers of the inference path, `y = x W^T + b` with `W: [out, in]`,
//! in f32 or in int8.
//!
//! f32: `sgemm` reads `W` in place through a transposed view (the GEMM packs
//! its operands anyway), after `y` is filled with the bias, so the product
//! accumulates onto it (beta = 1).
//!
//! int8 (dynamic quantization):
//!
//! ```text
//! weights, once, per output channel j:  sw[j] = max_p |W[j][p]| / 127
//!                                       qw[j][p] = round(W[j][p] / sw[j])      in -127..=127
//! activations, per call, per row i:     lo = min(0, min_p x[i][p]), hi = max(0, max_p x[i][p])
//!                                       sx[i] = (hi - lo) / 255, zx[i] = round(-lo / sx[i])
//!                                       qx[i][p] = clamp(round(x[i][p] / sx[i] + zx[i]), 0, 255)
//! product:  y[i][j] = sx[i] sw[j] sum_p (qx[i][p] - zx[i]) qw[j][p] + b[j]
//! ```
//!
//! The range always holds 0, so 0 (padding of GELU outputs, ReLU-like
//! zeros) is exact. Activations are u8 with a zero point rather than
//! symmetric i8 because post-GELU rows are lopsided (nothing below -0.17)
//! and a symmetric code would waste half its levels; u8 is also what the
//! VNNI microkernel reads without a shift. Weights are symmetric, so the
//! epilogue has no per-column zero point to correct.
//!
//! A quantized layer keeps its unpacked codes beside the packed copy so the
//! model can be written out again; for a model opened from a file the codes
//! are the mapped section and cost no memory of their own.

use rayon::prelude::*;

use crate::error::KernelContext;
use crate::kernels::gemm::sgemm;
use crate::kernels::int8::{gemm_f32, AView, BLayout, Epilogue, PackedB, Per};
use crate::kernels::{MatMut, MatRef};
use crate::tensor::Tensor;

use super::{InferError, Result};

/// Rows per rayon task when quantizing activations.
const QUANT_ROWS_PER_TASK: usize = 16;

/// One linear layer.
pub(crate) enum Linear {
    /// `w: [out, in]` f32, `b: [out]`.
    F32 { w: Tensor, b: Tensor, out: usize, inp: usize },
    /// `codes: [out, in]` i8, `scale: [out]` and `b: [out]` f32, and the
    /// codes packed for the int8 GEMM.
    Int8 { codes: Tensor, scale: Tensor, b: Tensor, packed: PackedB },
}

/// Per-call buffers of the int8 path: the quantized activations with their
/// per-row scales and zero points.
#[derive(Default)]
pub(crate) struct QuantBuf {
    codes: Vec<u8>,
    scale: Vec<f32>,
    zero: Vec<i32>,
}

impl Linear {
    /// An f32 layer over `w: [out, in]` and `b: [out]` (shapes already
    /// checked by the caller).
    pub(crate) fn f32(w: Tensor, b: Tensor) -> Result<Linear> {
        let (out, inp) = (w.dims()[0], w.dims()[1]);
        Ok(Linear::F32 { w, b, out, inp })
    }

    /// Quantizes an f32 weight per output channel (see the module doc).
    /// `name` labels a non-finite weight in the error.
    pub(crate) fn quantize(name: &str, w: &Tensor, b: Tensor) -> Result<Linear> {
        let (out, inp) = (w.dims()[0], w.dims()[1]);
        let (codes, scale) = quantize_channels(name, w.as_f32()?, out, inp)?;
        Linear::int8(
            name,
            Tensor::from_i8(&[out, inp], codes)?,
            Tensor::from_vec(&[out], scale)?,
            b,
        )
    }

    /// An int8 layer from codes `[out, in]`, scales `[out]` and bias `[out]`
    /// (shapes already checked); packs the codes for the GEMM. Scales must
    /// be finite and positive.
    pub(crate) fn int8(name: &str, codes: Tensor, scale: Tensor, b: Tensor) -> Result<Linear> {
        let (out, inp) = (codes.dims()[0], codes.dims()[1]);
        if let Some(j) = scale.as_f32()?.iter().position(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(InferError::BadWeight {
                origin: "int8 layer".into(),
                name: name.to_owned(),
                reason: format!("scale of output channel {j} is not finite and positive"),
            });
        }
        let packed = PackedB::new(inp, out, codes.as_i8()?, BLayout::NByK { ldw: inp })
            .map_err(|source| InferError::Int8 { op: "pack int8 weights", source })?;
        Ok(Linear::Int8 { codes, scale, b, packed })
    }

    /// Output width.
    pub(crate) fn out_dim(&self) -> usize {
        match self {
            Linear::F32 { out, .. } => *out,
            Linear::Int8 { packed, .. } => packed.n(),
        }
    }

    /// Input width.
    pub(crate) fn in_dim(&self) -> usize {
        match self {
            Linear::F32 { inp, .. } => *inp,
            Linear::Int8 { packed, .. } => packed.k(),
        }
    }

    /// The tensors that make up the layer, by role: `("weight", w)` and
    /// `("bias", b)` for f32; `("weight.i8", codes)`, `("weight.scale",
    /// scale)` and `("bias", b)` for int8.
    pub(crate) fn parts(&self) -> Vec<(&'static str, &Tensor)> {
        match self {
            Linear::F32 { w, b, .. } => vec![("weight", w), ("bias", b)],
            Linear::Int8 { codes, scale, b, .. } => {
                vec![("weight.i8", codes), ("weight.scale", scale), ("bias", b)]
            }
        }
    }

    /// `y[..rows * out] = x[..rows * in] W^T + b`, row-major.
    pub(crate) fn forward(
        &self,
        x: &[f32],
        rows: usize,
        y: &mut [f32],
        q: &mut QuantBuf,
    ) -> Result<()> {
        self.prepare(x, rows, q);
        self.apply(x, rows, y, q)
    }

    /// Quantizes the input rows into `q` when the layer is int8 (nothing
    /// for f32). Layers reading the same input (query, key, value) share
    /// one `prepare` and each run [`Linear::apply`].
    pub(crate) fn prepare(&self, x: &[f32], rows: usize, q: &mut QuantBuf) {
        if let Linear::Int8 { packed, .. } = self {
            quantize_rows(&x[..rows * packed.k()], rows, packed.k(), q);
        }
    }

    /// The product of [`Linear::forward`], reading `x` (f32) or the rows
    /// [`Linear::prepare`] quantized from it (int8).
    pub(crate) fn apply(&self, x: &[f32], rows: usize, y: &mut [f32], q: &QuantBuf) -> Result<()> {
        let (inp, out) = (self.in_dim(), self.out_dim());
        let y = &mut y[..rows * out];
        match self {
            Linear::F32 { w, b, .. } => {
                let b = b.as_f32()?;
                y.chunks_exact_mut(out).for_each(|row| row.copy_from_slice(b));
                let a = MatRef::row_major(&x[..rows * inp], rows, inp).op("linear")?;
                let wt = MatRef::row_major(w.as_f32()?, out, inp).op("linear")?.t();
                sgemm(1.0, a, wt, 1.0, MatMut::row_major(y, rows, out).op("linear")?)
                    .op("linear")?;
            }
            Linear::Int8 { scale, b, packed, .. } => {
                let a = AView::u8(&q.codes, rows, inp, inp)
                    .map_err(|source| InferError::Int8 { op: "int8 linear", source })?;
                let ep = Epilogue {
                    a_scale: Per::Each(&q.scale),
                    a_zero: Per::Each(&q.zero),
                    b_scale: Per::Each(scale.as_f32()?),
                    b_zero: Per::All(0),
                    bias: Some(b.as_f32()?),
                };
                gemm_f32(a, packed, &ep, y, out)
                    .map_err(|source| InferError::Int8 { op: "int8 linear", source })?;
            }
        }
        Ok(())
    }
}

/// Symmetric per-output-channel codes and scales of `w: [out, in]`.
pub(crate) fn quantize_channels(
    name: &str,
    w: &[f32],
    out: usize,
    inp: usize,
) -> Result<(Vec<i8>, Vec<f32>)> {
    if let Some(i) = w.iter().position(|v| !v.is_finite()) {
        return Err(InferError::BadWeight {
            origin: "int8 quantization".into(),
            name: name.to_owned(),
            reason: format!("element {i} is NaN or infinite"),
        });
    }
    let mut codes = vec![0i8; out * inp];
    let mut scale = vec![1.0f32; out];
    for ((row, q), s) in w.chunks_exact(inp).zip(codes.chunks_exact_mut(inp)).zip(&mut scale) {
        let amax = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        if amax == 0.0 {
            // All-zero channel: codes stay 0; any positive scale reproduces it.
            continue;
        }
        *s = amax / 127.0;
        let inv = 127.0 / amax;
        for (c, &v) in q.iter_mut().zip(row) {
            *c = (v * inv).round().clamp(-127.0, 127.0) as i8;
        }
    }
    Ok((codes, scale))
}

/// Quantizes `x: [rows, cols]` to u8 per row into `q` (see the module doc).
///
/// Known shortcoming: this loop is plain Rust, so on x86-64 it is compiled
/// for the baseline target (four SSE lanes); the runtime holds no per-ISA
/// code. Profiled on MiniLM at batch 1, one thread, it takes about an
/// eighth of the int8 forward time. A dispatched kernel beside the int8
/// GEMM (sixteen AVX-512 lanes, or fused into its A packing) would remove
/// most of that.
pub(crate) fn quantize_rows(x: &[f32], rows: usize, cols: usize, q: &mut QuantBuf) {
    q.codes.resize(rows * cols, 0);
    q.scale.resize(rows, 0.0);
    q.zero.resize(rows, 0);
    q.codes
        .par_chunks_exact_mut(cols)
        .zip(x.par_chunks_exact(cols))
        .zip(q.scale.par_iter_mut())
        .zip(q.zero.par_iter_mut())
        .with_min_len(QUANT_ROWS_PER_TASK)
        .for_each(|(((codes, row), scale), zero)| {
            let (lo, hi) = range_with_zero(row);
            if hi - lo <= 0.0 || !(hi - lo).is_finite() {
                // A row of zeros (or of infinities, which only non-finite
                // weights produce): all codes at the zero point.
                codes.fill(0);
                (*scale, *zero) = (1.0, 0);
                return;
            }
            let s = (hi - lo) / 255.0;
            let inv = 1.0 / s;
            let z = to_u8(-lo * inv);
            let zf = f32::from(z);
            // Sixteen at a time so the compiler packs whole vectors of bytes.
            let mut cs = codes.chunks_exact_mut(16);
            let mut xs = row.chunks_exact(16);
            for (c, v) in (&mut cs).zip(&mut xs) {
                for i in 0..16 {
                    c[i] = to_u8(v[i] * inv + zf);
                }
            }
            for (c, &v) in cs.into_remainder().iter_mut().zip(xs.remainder()) {
                *c = to_u8(v * inv + zf);
            }
            (*scale, *zero) = (s, i32::from(z));
        });
}

/// `(min(0, min x), max(0, max x))`, NaN ignored. Sixteen running minima
/// and maxima as compare-and-select, a shape the compiler turns into vector
/// `min`/`max` (a fold over `f32::min` stays scalar).
fn range_with_zero(x: &[f32]) -> (f32, f32) {
    let (mut lo, mut hi) = ([0.0f32; 16], [0.0f32; 16]);
    let chunks = x.chunks_exact(16);
    let tail = chunks.remainder();
    for c in chunks {
        for i in 0..16 {
            lo[i] = if c[i] < lo[i] { c[i] } else { lo[i] };
            hi[i] = if c[i] > hi[i] { c[i] } else { hi[i] };
        }
    }
    for (i, &v) in tail.iter().enumerate() {
        lo[i] = if v < lo[i] { v } else { lo[i] };
        hi[i] = if v > hi[i] { v } else { hi[i] };
    }
    (lo.iter().fold(0.0f32, |a, &b| a.min(b)), hi.iter().fold(0.0f32, |a, &b| a.max(b)))
}

/// `v` rounded to the nearest integer (ties to even) and clamped to
/// 0..=255; NaN gives 0. Adding 2^23 to a value in [0, 255] leaves the
/// rounded integer in the low mantissa bits, which vectorizes; `f32::round`
/// is a libm call per element and a saturating cast a scalar conversion.
#[inline(always)]
fn to_u8(v: f32) -> u8 {
    const MAGIC: f32 = 8_388_608.0; // 2^23
                                    // Not `clamp`: it passes NaN through, and NaN must map to 0 here.
    #[allow(clippy::manual_clamp)]
    let v = v.max(0.0).min(255.0);
    (v + MAGIC).to_bits() as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_u8_rounds_half_to_even_and_clamps() {
        for (v, want) in [
            (0.0, 0),
            (0.49, 0),
            (0.5, 0),
            (1.5, 2),
            (2.5, 2),
            (254.7, 255),
            (255.0, 255),
            (300.0, 255),
            (-3.0, 0),
            (f32::NAN, 0),
            (f32::INFINITY, 255),
        ] {
            assert_eq!(to_u8(v), want, "{v}");
        }
        for i in 0..=2550 {
            let v = i as f32 * 0.1;
            assert_eq!(to_u8(v), v.round_ties_even() as u8, "{v}");
        }
    }

    #[test]
    fn range_with_zero_matches_a_fold() {
        for n in 0..50 {
            let x: Vec<f32> = (0..n).map(|i| ((i * 37 % 23) as f32 - 9.5) * 0.3).collect();
            let lo = x.iter().fold(0.0f32, |a, &b| a.min(b));
            let hi = x.iter().fold(0.0f32, |a, &b| a.max(b));
            assert_eq!(range_with_zero(&x), (lo, hi), "n = {n}");
        }
        assert_eq!(range_with_zero(&[f32::NAN, 2.0, -1.0]), (-1.0, 2.0));
    }

    #[test]
    fn quantized_rows_reconstruct_within_half_a_step() {
        let (rows, cols) = (5, 37);
        let x: Vec<f32> = (0..rows * cols).map(|i| ((i * 53 % 97) as f32 - 30.0) * 0.07).collect();
        let mut q = QuantBuf::default();
        quantize_rows(&x, rows, cols, &mut q);
        for r in 0..rows {
            let (s, z) = (q.scale[r], q.zero[r]);
            for p in 0..cols {
                let back = s * (i32::from(q.codes[r * cols + p]) - z) as f32;
                assert!((back - x[r * cols + p]).abs() <= 0.5 * s + 1e-6, "row {r} col {p}");
            }
        }
    }
}
