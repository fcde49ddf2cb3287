//! Losses, each a scalar mean: cross-entropy over integer targets (fused
//! with its log-softmax), KL divergence between two log-probability
//! tensors, and mean squared error. Each forward sits above its backward.
//! Per-row losses are summed in row order so the result is deterministic.

use std::sync::Arc;

use rayon::prelude::*;

use crate::autodiff::{Graph, IdRange, Op, Var};
use crate::error::{Error, KernelContext, Result};
use crate::kernels::vector;
use crate::ops::norm::log_softmax_row;

// ---------------------------------------------------------------------------
// cross-entropy

impl Graph {
    /// `mean_i -log softmax(logits_i)[targets_i]` for logits `[N, K]`.
    /// Saves the softmax probabilities for backward.
    pub fn cross_entropy(&mut self, logits: Var, targets: &[u32]) -> Result<Var> {
        let ld = self.dims(logits)?;
        if ld.len() != 2 || ld[0] == 0 || ld[1] == 0 {
            return Err(Error::BadShape {
                op: "cross_entropy",
                shape: ld.to_vec(),
                reason: "logits must be a non-empty [N, K]",
            });
        }
        let (n, k) = (ld[0], ld[1]);
        if targets.len() != n {
            return Err(Error::ElementCount {
                op: "cross_entropy targets",
                shape: vec![n],
                expected: n,
                found: targets.len(),
            });
        }
        if let Some(&bad) = targets.iter().find(|&&t| t as usize >= k) {
            return Err(Error::IndexOutOfRange {
                op: "cross_entropy",
                index: bad as usize,
                bound: k,
            });
        }
        let range = IdRange { start: self.ids.len(), len: n };
        self.ids.extend_from_slice(targets);
        let mut probs = self.pool.take(n * k);
        let mut rowloss = self.pool.take(n);
        let p = Arc::get_mut(&mut probs).expect("fresh from the pool");
        let rl = Arc::get_mut(&mut rowloss).expect("fresh from the pool");
        let lv = self.f32_of(logits.0);
        // Row i: logp = log_softmax(x_i) (into p, then exponentiated in
        // place into probabilities), loss_i = -logp[t_i].
        self.rt.install(|| {
            p.par_chunks_mut(k)
                .zip(lv.par_chunks(k))
                .zip(rl.par_iter_mut().zip(targets.par_iter()))
                .try_for_each(|((p, x), (l, &t))| {
                    crate::ops::with_scratch(2 * k, |s| -> Result<()> {
                        let (logp, tmp) = s.split_at_mut(k);
                        log_softmax_row(x, logp, tmp)?;
                        *l = -logp[t as usize];
                        vector::exp(logp, p).op("cross_entropy")
                    })
                })
        })?;
        let loss = rl.iter().sum::<f32>() / n as f32;
        self.pool.give(rowloss);
        let rg = self.rg(logits.0);
        let mut buf = self.pool.take(1);
        Arc::get_mut(&mut buf).expect("fresh from the pool")[0] = loss;
        Ok(self.push_out(
            crate::tensor::Shape::scalar(),
            buf,
            Op::CrossEntropy { logits: logits.0, targets: range, probs },
            rg,
        ))
    }
}

/// `dlogits_i += g / N * (p_i - onehot(t_i))`.
pub(crate) fn cross_entropy_backward(
    g: &mut Graph,
    logits: usize,
    targets: IdRange,
    probs: &[f32],
    dy: &[f32],
) -> Result<()> {
    let d = g.nodes[logits].value.shape();
    let (n, k) = (d.dims()[0], d.dims()[1]);
    let s = dy[0] / n as f32;
    let mut dl = g.hold(logits);
    let tg = &g.ids[targets.start..targets.start + targets.len];
    let r = dl.as_mut().par_chunks_mut(k).zip(probs.par_chunks(k)).zip(tg.par_iter()).try_for_each(
        |((dx, p), &t)| {
            vector::axpy(s, p, dx)?;
            dx[t as usize] -= s;
            Ok(())
        },
    );
    g.release(logits, dl);
    r.op("cross_entropy backward")
}

// ---------------------------------------------------------------------------
// KL divergence

fn same_rows(g: &Graph, a: Var, b: Var, op: &'static str) -> Result<(usize, usize)> {
    let (ad, bd) = (g.dims(a)?, g.dims(b)?);
    if ad != bd {
        return Err(Error::ShapeMismatch { op, lhs: ad.to_vec(), rhs: bd.to_vec() });
    }
    let s = g.node(a)?.value.shape();
    if s.numel() == 0 {
        return Err(Error::BadShape { op, shape: ad.to_vec(), reason: "empty" });
    }
    Ok((s.rows(), s.last()))
}

impl Graph {
    /// `KL(P || Q)` from log-probabilities over the last dim, averaged over
    /// rows: `(1/N) sum_i sum_j p_ij (logp_ij - logq_ij)`.
    pub fn kl_div(&mut self, logp: Var, logq: Var) -> Result<Var> {
        let (n, _) = same_rows(self, logp, logq, "kl_div")?;
        let (a, b) = (self.f32_of(logp.0), self.f32_of(logq.0));
        let mut total = 0.0f64;
        for (&lp, &lq) in a.iter().zip(b) {
            let p = lp.exp();
            if p > 0.0 {
                total += (p * (lp - lq)) as f64;
            }
        }
        let kl = (total / n as f64) as f32;
        let rg = self.rg(logp.0) || self.rg(logq.0);
        let mut buf = self.pool.take(1);
        Arc::get_mut(&mut buf).expect("fresh from the pool")[0] = kl;
        Ok(self.push_out(
            crate::tensor::Shape::scalar(),
            buf,
            Op::KlDiv { logp: logp.0, logq: logq.0 },
            rg,
        ))
    }
}

/// `dlogp += g/N * p (logp - logq + 1)`, `dlogq += -g/N * p`.
pub(crate) fn kl_div_backward(g: &mut Graph, logp: usize, logq: usize, dy: &[f32]) -> Result<()> {
    let n = g.nodes[logp].value.shape().rows();
    let s = dy[0] / n as f32;
    if logp == logq {
        // KL(P || P) is identically zero.
        return Ok(());
    }
    if g.rg(logp) {
        let (b, a, da) = g.values2_and_grad(logq, logp, logp);
        for ((d, &lp), &lq) in da.iter_mut().zip(a).zip(b) {
            *d += s * lp.exp() * (lp - lq + 1.0);
        }
    }
    if g.rg(logq) {
        let (a, db) = g.value_and_grad(logp, logq);
        for (d, &lp) in db.iter_mut().zip(a) {
            *d -= s * lp.exp();
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// MSE

impl Graph {
    /// `mean((a - b)^2)` over all elements.
    pub fn mse(&mut self, a: Var, b: Var) -> Result<Var> {
        same_rows(self, a, b, "mse")?;
        let (x, y) = (self.f32_of(a.0), self.f32_of(b.0));
        let total: f64 = x.iter().zip(y).map(|(&p, &q)| ((p - q) as f64).powi(2)).sum();
        let m = (total / x.len() as f64) as f32;
        let rg = self.rg(a.0) || self.rg(b.0);
        let mut buf = self.pool.take(1);
        Arc::get_mut(&mut buf).expect("fresh from the pool")[0] = m;
        Ok(self.push_out(crate::tensor::Shape::scalar(), buf, Op::Mse { a: a.0, b: b.0 }, rg))
    }
}

/// `da += 2g/n (a - b)`, `db -= 2g/n (a - b)`.
pub(crate) fn mse_backward(g: &mut Graph, a: usize, b: usize, dy: &[f32]) -> Result<()> {
    let n = g.nodes[a].value.numel();
    let s = 2.0 * dy[0] / n as f32;
    for (x, sign) in [(a, 1.0f32), (b, -1.0)] {
        if g.rg(x) {
            let (va, vb, dx) = g.values2_and_grad(a, b, x);
            for ((d, &p), &q) in dx.iter_mut().zip(va).zip(vb) {
                *d += sign * s * (p - q);
            }
        }
    }
    Ok(())
}
