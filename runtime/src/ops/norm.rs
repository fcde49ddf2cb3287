//! Row-wise normalisations over the last dim: layer norm, L2
//! normalisation, softmax and log-softmax. Rows run in parallel; each
//! forward sits above its backward.

use std::sync::Arc;

use rayon::prelude::*;

use crate::autodiff::{Graph, Op, Var};
use crate::error::{Error, KernelContext, Result};
use crate::kernels::vector;
use crate::ops::with_scratch;

fn rows_cols(g: &Graph, x: Var, op: &'static str) -> Result<(usize, usize)> {
    let s = g.node(x)?.value.shape();
    if s.rank() == 0 || s.last() == 0 {
        return Err(Error::BadShape {
            op,
            shape: s.dims().to_vec(),
            reason: "needs a non-empty last dim",
        });
    }
    Ok((s.rows(), s.last()))
}

// ---------------------------------------------------------------------------
// layer norm

impl Graph {
    /// Layer norm over the last dim `C`: `(x - mean) * rstd * gamma + beta`
    /// with `gamma`, `beta` of shape `[C]`. Saves `(mean, rstd)` per row.
    pub fn layer_norm(&mut self, x: Var, gamma: Var, beta: Var, eps: f32) -> Result<Var> {
        let (rows, c) = rows_cols(self, x, "layer_norm")?;
        for p in [gamma, beta] {
            if self.dims(p)? != [c] {
                return Err(Error::ShapeMismatch {
                    op: "layer_norm",
                    lhs: self.dims(x)?.to_vec(),
                    rhs: self.dims(p)?.to_vec(),
                });
            }
        }
        if eps.is_nan() || eps <= 0.0 {
            return Err(Error::InvalidArgument { op: "layer_norm", what: format!("eps = {eps}") });
        }
        let shape = self.node(x)?.value.shape();
        let mut buf = self.pool.take(rows * c);
        let mut stats = self.pool.take(rows * 2);
        let o = Arc::get_mut(&mut buf).expect("fresh from the pool");
        let st = Arc::get_mut(&mut stats).expect("fresh from the pool");
        let (xv, gv, bv) = (self.f32_of(x.0), self.f32_of(gamma.0), self.f32_of(beta.0));
        self.rt
            .install(|| {
                o.par_chunks_mut(c).zip(xv.par_chunks(c)).zip(st.par_chunks_mut(2)).try_for_each(
                    |((o, x), st)| {
                        let (mean, rstd) = vector::layernorm(x, gv, bv, eps, o)?;
                        st[0] = mean;
                        st[1] = rstd;
                        Ok(())
                    },
                )
            })
            .op("layer_norm")?;
        let rg = self.rg(x.0) || self.rg(gamma.0) || self.rg(beta.0);
        Ok(self.push_out(
            shape,
            buf,
            Op::LayerNorm { x: x.0, gamma: gamma.0, beta: beta.0, stats },
            rg,
        ))
    }
}

/// Rows in order: the gamma and beta gradients are sums over rows, so a
/// fixed order keeps them deterministic.
pub(crate) fn layer_norm_backward(
    g: &mut Graph,
    x: usize,
    gamma: usize,
    beta: usize,
    stats: &[f32],
    dy: &[f32],
) -> Result<()> {
    if x == gamma || x == beta || gamma == beta {
        return Err(Error::BackwardNotSupported { op: "layer_norm (an input used twice)" });
    }
    let c = g.nodes[gamma].value.numel();
    let (mut dx, mut dg, mut db) = (g.hold(x), g.hold(gamma), g.hold(beta));
    let r = (|| {
        let (xv, gv) = (g.f32_of(x), g.f32_of(gamma));
        let (dxs, dgs, dbs) = (dx.as_mut(), dg.as_mut(), db.as_mut());
        for (r, st) in stats.chunks(2).enumerate() {
            let s = r * c..(r + 1) * c;
            vector::layernorm_backward(
                &xv[s.clone()],
                gv,
                st[0],
                st[1],
                &dy[s.clone()],
                &mut dxs[s],
                dgs,
                dbs,
            )
            .op("layer_norm backward")?;
        }
        Ok(())
    })();
    g.release(x, dx);
    g.release(gamma, dg);
    g.release(beta, db);
    r
}

// ---------------------------------------------------------------------------
// L2 normalisation

impl Graph {
    /// `x / max(||x||, eps)` over the last dim. Saves the inverse norm per
    /// row, negated when the norm was clamped to `eps`.
    pub fn l2_normalize(&mut self, x: Var, eps: f32) -> Result<Var> {
        let (rows, c) = rows_cols(self, x, "l2_normalize")?;
        if eps.is_nan() || eps <= 0.0 {
            return Err(Error::InvalidArgument {
                op: "l2_normalize",
                what: format!("eps = {eps}"),
            });
        }
        let shape = self.node(x)?.value.shape();
        let mut buf = self.pool.take(rows * c);
        let mut inv = self.pool.take(rows);
        let o = Arc::get_mut(&mut buf).expect("fresh from the pool");
        let iv = Arc::get_mut(&mut inv).expect("fresh from the pool");
        let xv = self.f32_of(x.0);
        self.rt
            .install(|| {
                o.par_chunks_mut(c).zip(xv.par_chunks(c)).zip(iv.par_iter_mut()).try_for_each(
                    |((o, x), iv)| {
                        let norm = vector::dot(x, x)?.sqrt();
                        let s = 1.0 / norm.max(eps);
                        o.copy_from_slice(x);
                        vector::scale(s, o);
                        *iv = if norm > eps { s } else { -s };
                        Ok(())
                    },
                )
            })
            .op("l2_normalize")?;
        let rg = self.rg(x.0);
        Ok(self.push_out(shape, buf, Op::L2Normalize { x: x.0, inv }, rg))
    }
}

/// With `y = x / n`: `dx = (dy - y (dy . y)) / n`; when clamped the
/// denominator is the constant eps and `dx = dy / eps`.
pub(crate) fn l2_normalize_backward(
    g: &mut Graph,
    i: usize,
    x: usize,
    inv: &[f32],
    dy: &[f32],
) -> Result<()> {
    let c = g.nodes[x].value.shape().last();
    let (yv, dx) = g.value_and_grad(i, x);
    dx.par_chunks_mut(c)
        .zip(yv.par_chunks(c).zip(dy.par_chunks(c)))
        .zip(inv.par_iter())
        .try_for_each(|((dx, (y, dy)), &iv)| {
            if iv > 0.0 {
                let s = vector::dot(dy, y)?;
                vector::axpy(iv, dy, dx)?;
                vector::axpy(-iv * s, y, dx)
            } else {
                vector::axpy(-iv, dy, dx)
            }
        })
        .op("l2_normalize backward")
}

// ---------------------------------------------------------------------------
// softmax

impl Graph {
    /// Softmax over the last dim.
    pub fn softmax(&mut self, x: Var) -> Result<Var> {
        let (rows, c) = rows_cols(self, x, "softmax")?;
        let shape = self.node(x)?.value.shape();
        let mut buf = self.pool.take(rows * c);
        let o = Arc::get_mut(&mut buf).expect("fresh from the pool");
        o.copy_from_slice(self.f32_of(x.0));
        self.rt.install(|| o.par_chunks_mut(c).for_each(vector::softmax));
        let rg = self.rg(x.0);
        Ok(self.push_out(shape, buf, Op::Softmax { x: x.0 }, rg))
    }
}

/// `dx = y * (dy - sum(dy * y))` per row.
pub(crate) fn softmax_backward(g: &mut Graph, i: usize, x: usize, dy: &[f32]) -> Result<()> {
    let c = g.nodes[x].value.shape().last();
    let (yv, dx) = g.value_and_grad(i, x);
    dx.par_chunks_mut(c)
        .zip(yv.par_chunks(c).zip(dy.par_chunks(c)))
        .try_for_each(|(dx, (y, dy))| {
            let s = vector::dot(dy, y)?;
            for ((d, &y), &g) in dx.iter_mut().zip(y).zip(dy) {
                *d += y * (g - s);
            }
            Ok(())
        })
        .op("softmax backward")
}

// ---------------------------------------------------------------------------
// log-softmax

/// `out = x - logsumexp(x)` for one row; returns the logsumexp.
/// `tmp` is scratch of the row's length.
pub(crate) fn log_softmax_row(x: &[f32], out: &mut [f32], tmp: &mut [f32]) -> Result<f32> {
    let m = vector::max(x);
    if !m.is_finite() {
        return Err(Error::NonFinite { op: "log_softmax" });
    }
    for (o, &v) in out.iter_mut().zip(x) {
        *o = v - m;
    }
    vector::exp(out, tmp).op("log_softmax")?;
    let lse = m + vector::sum(tmp).ln();
    for (o, &v) in out.iter_mut().zip(x) {
        *o = v - lse;
    }
    Ok(lse)
}

impl Graph {
    /// Log-softmax over the last dim.
    pub fn log_softmax(&mut self, x: Var) -> Result<Var> {
        let (rows, c) = rows_cols(self, x, "log_softmax")?;
        let shape = self.node(x)?.value.shape();
        let mut buf = self.pool.take(rows * c);
        let o = Arc::get_mut(&mut buf).expect("fresh from the pool");
        let xv = self.f32_of(x.0);
        self.rt.install(|| {
            o.par_chunks_mut(c).zip(xv.par_chunks(c)).try_for_each(|(o, x)| {
                with_scratch(c, |tmp| log_softmax_row(x, o, tmp)).map(|_| ())
            })
        })?;
        let rg = self.rg(x.0);
        Ok(self.push_out(shape, buf, Op::LogSoftmax { x: x.0 }, rg))
    }
}

/// `dx = dy - exp(y) * sum(dy)` per row.
pub(crate) fn log_softmax_backward(g: &mut Graph, i: usize, x: usize, dy: &[f32]) -> Result<()> {
    let c = g.nodes[x].value.shape().last();
    let (yv, dx) = g.value_and_grad(i, x);
    dx.par_chunks_mut(c)
        .zip(yv.par_chunks(c).zip(dy.par_chunks(c)))
        .try_for_each(|(dx, (y, dy))| {
            with_scratch(c, |p| {
                vector::exp(y, p)?;
                let s = vector::sum(dy);
                vector::axpy(1.0, dy, dx)?;
                vector::axpy(-s, p, dx)
            })
        })
        .op("log_softmax backward")
}

// ---------------------------------------------------------------------------
// argmax (no backward)

impl Graph {
    /// Index of the largest element of each row over the last dim, as f32
    /// (first one on ties). Has no gradient: a backward pass that reaches
    /// it fails with `BackwardNotSupported`.
    pub fn argmax(&mut self, x: Var) -> Result<Var> {
        let (rows, c) = rows_cols(self, x, "argmax")?;
        let mut buf = self.pool.take(rows);
        let o = Arc::get_mut(&mut buf).expect("fresh from the pool");
        for (o, row) in o.iter_mut().zip(self.f32_of(x.0).chunks(c)) {
            let m = vector::max(row);
            *o = row.iter().position(|&v| v == m).unwrap_or(0) as f32;
        }
        let shape = self.node(x)?.value.shape();
        let out = crate::tensor::Shape::new(&shape.dims()[..shape.rank() - 1])?;
        let rg = self.rg(x.0);
        Ok(self.push_out(out, buf, Op::NoGrad { name: "argmax" }, rg))
    }
}
