//! Scaled dot-product multi-head attention with a key padding mask, fused
//! per (batch, head).
//!
//! Inputs `q`, `k`, `v` are `[B, T, C]` with `C = H * D`; head `h` is
//! columns `h*D..(h+1)*D`, read in place through strided views. Each
//! (b, h) task, in parallel across `B * H`, computes
//!
//! ```text
//! S = Q K^T / sqrt(D)        (T x T), key j masked to -inf where mask[b, j] = 0
//! P = softmax_rows(S)
//! O = P V                    (T x D)
//! ```
//!
//! in a per-thread scratch, so at most one head's scores exist per worker
//! at a time. Nothing of size `T x T` is saved: backward recomputes `P`
//! (the same code path, so the same bits) and then
//!
//! ```text
//! dV = P^T dO,  dP = dO V^T,  dS = P * (dP - rowsum(dP * P)),
//! dQ = dS K / sqrt(D),  dK = dS^T Q / sqrt(D).
//! ```
//!
//! Per-head results land in a head-major pooled buffer and are then
//! scattered into `[B, T, C]`, which keeps every parallel write disjoint
//! without unsafe code. A batch row whose keys are all masked gets zero
//! output. Causal masks and attention dropout are not provided: the
//! encoders this serves are bidirectional and use dropout elsewhere.

use std::sync::Arc;

use rayon::prelude::*;

use crate::autodiff::{Graph, Op, Var};
use crate::error::{Error, KernelContext, Result};
use crate::kernels::gemm::sgemm;
use crate::kernels::{vector, MatMut, MatRef};
use crate::ops::with_scratch;

/// Sizes of one attention call.
#[derive(Clone, Copy)]
struct Dims {
    b: usize,
    t: usize,
    c: usize,
    h: usize,
    d: usize,
}

impl Dims {
    /// Head `h` of batch entry `b` of a `[B, T, C]` buffer as a `T x D` view.
    fn head<'a>(&self, x: &'a [f32], b: usize, h: usize) -> Result<MatRef<'a>> {
        MatRef::new(&x[b * self.t * self.c + h * self.d..], self.t, self.d, self.c, 1)
            .op("attention")
    }
}

fn dims(g: &Graph, q: Var, k: Var, v: Var, mask: Option<Var>, heads: usize) -> Result<Dims> {
    let qd = g.dims(q)?;
    if qd.len() != 3 || qd.contains(&0) {
        return Err(Error::BadShape {
            op: "attention",
            shape: qd.to_vec(),
            reason: "q must be a non-empty [B, T, C]",
        });
    }
    for other in [k, v] {
        if g.dims(other)? != qd {
            return Err(Error::ShapeMismatch {
                op: "attention",
                lhs: qd.to_vec(),
                rhs: g.dims(other)?.to_vec(),
            });
        }
    }
    let (b, t, c) = (qd[0], qd[1], qd[2]);
    if heads == 0 || c % heads != 0 {
        return Err(Error::InvalidArgument {
            op: "attention",
            what: format!("{heads} heads do not divide the model width {c}"),
        });
    }
    if let Some(m) = mask {
        if g.dims(m)? != [b, t] {
            return Err(Error::ShapeMismatch {
                op: "attention mask",
                lhs: vec![b, t],
                rhs: g.dims(m)?.to_vec(),
            });
        }
    }
    Ok(Dims { b, t, c, h: heads, d: c / heads })
}

/// P for head (b, h) into `p` (T x T): scaled scores, key mask, row softmax.
fn head_probs(
    dm: &Dims,
    q: &[f32],
    k: &[f32],
    mask: Option<&[f32]>,
    b: usize,
    h: usize,
    p: &mut [f32],
) -> Result<()> {
    let t = dm.t;
    let scale = 1.0 / (dm.d as f32).sqrt();
    let (qm, km) = (dm.head(q, b, h)?, dm.head(k, b, h)?);
    sgemm(scale, qm, km.t(), 0.0, MatMut::row_major(p, t, t).op("attention")?).op("attention")?;
    if let Some(m) = mask {
        let mb = &m[b * t..(b + 1) * t];
        if mb.iter().all(|&x| x == 0.0) {
            p.fill(0.0);
            return Ok(());
        }
        for row in p.chunks_mut(t) {
            for (s, &keep) in row.iter_mut().zip(mb) {
                if keep == 0.0 {
                    *s = f32::NEG_INFINITY;
                }
            }
        }
    }
    p.chunks_mut(t).for_each(vector::softmax);
    Ok(())
}

/// Adds head-major `[B, H, T, D]` into `[B, T, C]`.
fn scatter_heads(dm: &Dims, src: &[f32], dst: &mut [f32]) -> Result<()> {
    let (t, d, hn) = (dm.t, dm.d, dm.h);
    dst.par_chunks_mut(dm.c)
        .enumerate()
        .try_for_each(|(r, row)| {
            let (b, ti) = (r / t, r % t);
            for h in 0..hn {
                let s = ((b * hn + h) * t + ti) * d;
                vector::axpy(1.0, &src[s..s + d], &mut row[h * d..(h + 1) * d])?;
            }
            Ok(())
        })
        .op("attention")
}

impl Graph {
    /// Multi-head attention over `[B, T, C]` inputs with `heads` heads and
    /// an optional key padding mask `[B, T]` (1 keeps a key, 0 masks it).
    pub fn attention(
        &mut self,
        q: Var,
        k: Var,
        v: Var,
        mask: Option<Var>,
        heads: usize,
    ) -> Result<Var> {
        let dm = dims(self, q, k, v, mask, heads)?;
        let shape = self.node(q)?.value.shape();
        let (t, d) = (dm.t, dm.d);
        let mut heads_out = self.pool.take(dm.b * dm.h * t * d);
        let mut buf = self.pool.take_zeroed(shape.numel());
        let ho = Arc::get_mut(&mut heads_out).expect("fresh from the pool");
        let o = Arc::get_mut(&mut buf).expect("fresh from the pool");
        let (qv, kv, vv) = (self.f32_of(q.0), self.f32_of(k.0), self.f32_of(v.0));
        let mv = mask.map(|m| self.f32_of(m.0));
        self.rt.install(|| {
            // O[b, h] = P V, one (b, h) per task.
            ho.par_chunks_mut(t * d).enumerate().try_for_each(|(bh, oh)| {
                let (b, h) = (bh / dm.h, bh % dm.h);
                with_scratch(t * t, |p| {
                    head_probs(&dm, qv, kv, mv, b, h, p)?;
                    let pm = MatRef::row_major(p, t, t).op("attention")?;
                    let om = MatMut::row_major(oh, t, d).op("attention")?;
                    sgemm(1.0, pm, dm.head(vv, b, h)?, 0.0, om).op("attention")
                })
            })?;
            scatter_heads(&dm, ho, o)
        })?;
        self.pool.give(heads_out);
        let rg = self.rg(q.0) || self.rg(k.0) || self.rg(v.0);
        let op = Op::Attention { q: q.0, k: k.0, v: v.0, mask: mask.map(|m| m.0), heads };
        Ok(self.push_out(shape, buf, op, rg))
    }
}

pub(crate) fn attention_backward(
    g: &mut Graph,
    q: usize,
    k: usize,
    v: usize,
    mask: Option<usize>,
    heads: usize,
    dy: &[f32],
) -> Result<()> {
    if mask.is_some_and(|m| g.rg(m)) {
        return Err(Error::BackwardNotSupported { op: "attention (gradient into the mask)" });
    }
    let (qv_, kv_, vv_) =
        (crate::autodiff::Var(q), crate::autodiff::Var(k), crate::autodiff::Var(v));
    let dm = dims(g, qv_, kv_, vv_, mask.map(crate::autodiff::Var), heads)?;
    let (t, d) = (dm.t, dm.d);
    let scale = 1.0 / (d as f32).sqrt();
    let hsz = t * d;

    // Per (b, h): [dQ | dK | dV] head-major, each T x D.
    let mut work = g.pool.take(dm.b * dm.h * 3 * hsz);
    {
        let w = Arc::get_mut(&mut work).expect("fresh from the pool");
        let (qv, kv, vv) = (g.f32_of(q), g.f32_of(k), g.f32_of(v));
        let mv = mask.map(|m| g.f32_of(m));
        w.par_chunks_mut(3 * hsz).enumerate().try_for_each(|(bh, wh)| {
            let (b, h) = (bh / dm.h, bh % dm.h);
            let (dq, rest) = wh.split_at_mut(hsz);
            let (dk, dv) = rest.split_at_mut(hsz);
            let (qm, km, vm) = (dm.head(qv, b, h)?, dm.head(kv, b, h)?, dm.head(vv, b, h)?);
            let dom = dm.head(dy, b, h)?;
            with_scratch(2 * t * t, |s| -> Result<()> {
                let (p, dp) = s.split_at_mut(t * t);
                head_probs(&dm, qv, kv, mv, b, h, p)?;
                let pm = MatRef::row_major(p, t, t).op("attention")?;
                // dV = P^T dO ; dP = dO V^T
                sgemm(1.0, pm.t(), dom, 0.0, MatMut::row_major(dv, t, d).op("attention")?)
                    .op("attention backward")?;
                sgemm(1.0, dom, vm.t(), 0.0, MatMut::row_major(dp, t, t).op("attention")?)
                    .op("attention backward")?;
                // dS = P * (dP - rowsum(dP * P)), in place in dp.
                for (dpr, pr) in dp.chunks_mut(t).zip(p.chunks(t)) {
                    let s = vector::dot(dpr, pr).op("attention backward")?;
                    for (x, &pv) in dpr.iter_mut().zip(pr) {
                        *x = pv * (*x - s);
                    }
                }
                let ds = MatRef::row_major(dp, t, t).op("attention")?;
                // dQ = scale dS K ; dK = scale dS^T Q
                sgemm(scale, ds, km, 0.0, MatMut::row_major(dq, t, d).op("attention")?)
                    .op("attention backward")?;
                sgemm(scale, ds.t(), qm, 0.0, MatMut::row_major(dk, t, d).op("attention")?)
                    .op("attention backward")
            })
        })?;
    }

    // Scatter each of dQ, dK, dV into its input's gradient. Inputs may
    // repeat (q = k = v), so each goes through the gradient slot in turn.
    let r = (|| {
        for (which, node) in [(0usize, q), (1, k), (2, v)] {
            if !g.rg(node) {
                continue;
            }
            let wv = work.as_slice();
            let nb = dm.b * dm.h;
            let dst = g.grad_buf(node);
            // Gather this component head-major from the interleaved work.
            dst.par_chunks_mut(dm.c)
                .enumerate()
                .try_for_each(|(r, row)| {
                    let (b, ti) = (r / t, r % t);
                    for h in 0..dm.h {
                        let bh = b * dm.h + h;
                        debug_assert!(bh < nb);
                        let s = bh * 3 * hsz + which * hsz + ti * d;
                        vector::axpy(1.0, &wv[s..s + d], &mut row[h * d..(h + 1) * d])?;
                    }
                    Ok(())
                })
                .op("attention backward")?;
        }
        Ok(())
    })();
    g.pool.give(work);
    r
}
