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
//!                                       qx[i][p] = clamp(round(x[i][p] / sx[i]) + zx[i], 0, 255)
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
        let (inp, out) = (self.in_dim(), self.out_dim());
        let x = &x[..rows * inp];
        let y = &mut y[..rows * out];
        match self {
            Linear::F32 { w, b, .. } => {
                let b = b.as_f32()?;
                y.chunks_exact_mut(out).for_each(|row| row.copy_from_slice(b));
                let a = MatRef::row_major(x, rows, inp).op("linear")?;
                let wt = MatRef::row_major(w.as_f32()?, out, inp).op("linear")?.t();
                sgemm(1.0, a, wt, 1.0, MatMut::row_major(y, rows, out).op("linear")?)
                    .op("linear")?;
            }
            Linear::Int8 { scale, b, packed, .. } => {
                quantize_rows(x, rows, inp, q);
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
            let (lo, hi) = row.iter().fold((0.0f32, 0.0f32), |(lo, hi), &v| (lo.min(v), hi.max(v)));
            if hi - lo <= 0.0 || !(hi - lo).is_finite() {
                // A row of zeros (or of non-finite values, which only
                // non-finite weights produce): all codes at the zero point.
                codes.fill(0);
                (*scale, *zero) = (1.0, 0);
                return;
            }
            let s = (hi - lo) / 255.0;
            let inv = 1.0 / s;
            let z = (-lo * inv).round().clamp(0.0, 255.0);
            for (c, &v) in codes.iter_mut().zip(row) {
                *c = (v * inv + z).round().clamp(0.0, 255.0) as u8;
            }
            (*scale, *zero) = (s, z as i32);
        });
}
