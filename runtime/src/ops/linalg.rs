//! Batched matrix multiplication through `sgemm`, and the similarity matrix.
//!
//! `C = op(A) op(B)` where `A` is `[..., m, k]` (stored `[..., k, m]` when
//! transposed), and `B` is either one `[k, n]` matrix shared by the whole
//! batch (a weight) or a batch `[..., k, n]` with the same leading dims.
//! Transposes are strided views handed to `sgemm`, never copies. Backward:
//!
//! ```text
//! d op(A) += dC op(B)^T      (m x n)(n x k)
//! d op(B) += op(A)^T dC      (k x m)(m x n), summed over the batch if shared
//! ```
//!
//! both written by `sgemm` with beta = 1 straight into the gradient
//! buffers, viewed transposed when the operand was.
//!
//! [`Graph::matmul_bias`] is the linear layer in one node: C starts as
//! the bias row repeated and `sgemm` adds the product with beta = 1, so
//! the product before the bias is never stored (it would be a second
//! activation of the output's size that no backward rule reads) and the
//! bias gradient is the column sum of dC:
//!
//! ```text
//! d bias += sum over rows of dC   (row blocks summed in block order)
//! ```

use std::sync::Arc;

use rayon::prelude::*;

use crate::autodiff::{Graph, Op, Var};
use crate::error::{Error, KernelContext, Result};
use crate::kernels::gemm::sgemm;
use crate::kernels::{vector, MatMut, MatRef};
use crate::tensor::{Shape, MAX_DIMS};

/// Sizes of one matmul.
#[derive(Clone, Copy)]
struct Geo {
    batch: usize,
    m: usize,
    k: usize,
    n: usize,
    /// Stored rows and columns of one A and one B matrix.
    a_rc: (usize, usize),
    b_rc: (usize, usize),
    b_batched: bool,
}

fn geometry(ad: &[usize], bd: &[usize], ta: bool, tb: bool) -> Result<(Geo, Shape)> {
    let bad = || Error::ShapeMismatch { op: "matmul", lhs: ad.to_vec(), rhs: bd.to_vec() };
    if ad.len() < 2 || bd.len() < 2 {
        return Err(bad());
    }
    let (ar, ac) = (ad[ad.len() - 2], ad[ad.len() - 1]);
    let (br, bc) = (bd[bd.len() - 2], bd[bd.len() - 1]);
    let (m, k) = if ta { (ac, ar) } else { (ar, ac) };
    let (kb, n) = if tb { (bc, br) } else { (br, bc) };
    let lead = &ad[..ad.len() - 2];
    let b_batched = bd.len() > 2;
    if kb != k || (b_batched && bd[..bd.len() - 2] != *lead) {
        return Err(bad());
    }
    let mut od = [0usize; MAX_DIMS];
    od[..lead.len()].copy_from_slice(lead);
    od[lead.len()] = m;
    od[lead.len() + 1] = n;
    let out = Shape::new(&od[..lead.len() + 2])?;
    let batch = lead.iter().product();
    Ok((Geo { batch, m, k, n, a_rc: (ar, ac), b_rc: (br, bc), b_batched }, out))
}

/// A stored row-major `rows x cols` block, transposed if asked.
fn view(data: &[f32], (r, c): (usize, usize), t: bool) -> Result<MatRef<'_>> {
    let m = MatRef::row_major(data, r, c).op("matmul")?;
    Ok(if t { m.t() } else { m })
}

fn view_mut(data: &mut [f32], (r, c): (usize, usize), t: bool) -> Result<MatMut<'_>> {
    let m = MatMut::row_major(data, r, c).op("matmul")?;
    Ok(if t { m.t() } else { m })
}

impl Graph {
    /// `a @ b`; see [`Graph::matmul_t`].
    pub fn matmul(&mut self, a: Var, b: Var) -> Result<Var> {
        self.matmul_t(a, b, false, false)
    }

    /// `op(a) @ op(b)`, with `op` a transpose of the last two dims when the
    /// flag is set. `a`: `[..., m, k]`; `b`: `[k, n]` or `[..., k, n]`.
    pub fn matmul_t(&mut self, a: Var, b: Var, ta: bool, tb: bool) -> Result<Var> {
        let (g, out) = geometry(self.dims(a)?, self.dims(b)?, ta, tb)?;
        let mut buf = self.pool.take(out.numel());
        let o = Arc::get_mut(&mut buf).expect("fresh from the pool");
        let (av, bv) = (self.f32_of(a.0), self.f32_of(b.0));
        self.rt.install(|| matmul_forward(&g, av, bv, ta, tb, 0.0, o))?;
        let rg = self.rg(a.0) || self.rg(b.0);
        Ok(self.push_out(out, buf, Op::MatMul { a: a.0, b: b.0, ta, tb }, rg))
    }

    /// `op(a) @ op(b) + bias`, with `bias` `[n]` added to every output
    /// row; one node, so the product without the bias is not kept.
    pub fn matmul_bias(&mut self, a: Var, b: Var, bias: Var, ta: bool, tb: bool) -> Result<Var> {
        let (g, out) = geometry(self.dims(a)?, self.dims(b)?, ta, tb)?;
        if self.dims(bias)? != [g.n] {
            return Err(Error::ShapeMismatch {
                op: "matmul_bias",
                lhs: out.dims().to_vec(),
                rhs: self.dims(bias)?.to_vec(),
            });
        }
        let mut buf = self.pool.take(out.numel());
        let o = Arc::get_mut(&mut buf).expect("fresh from the pool");
        let (av, bv, biasv) = (self.f32_of(a.0), self.f32_of(b.0), self.f32_of(bias.0));
        self.rt.install(|| {
            if g.n > 0 {
                o.par_chunks_mut(ROWS * g.n)
                    .for_each(|rows| rows.chunks_mut(g.n).for_each(|r| r.copy_from_slice(biasv)));
            }
            matmul_forward(&g, av, bv, ta, tb, 1.0, o)
        })?;
        let rg = self.rg(a.0) || self.rg(b.0) || self.rg(bias.0);
        let op = Op::MatMulBias { a: a.0, b: b.0, bias: bias.0, ta, tb };
        Ok(self.push_out(out, buf, op, rg))
    }

    /// A linear layer `x @ w (+ b)`: `x` `[..., in]`, `w` `[in, out]`,
    /// `b` `[out]`.
    pub fn linear(&mut self, x: Var, w: Var, b: Option<Var>) -> Result<Var> {
        match b {
            Some(b) => self.matmul_bias(x, w, b, false, false),
            None => self.matmul(x, w),
        }
    }

    /// Similarity matrix `a @ b^T` of two embedding sets `[n, d]`, `[m, d]`.
    pub fn similarity(&mut self, a: Var, b: Var) -> Result<Var> {
        if self.dims(a)?.len() != 2 || self.dims(b)?.len() != 2 {
            return Err(Error::ShapeMismatch {
                op: "similarity",
                lhs: self.dims(a)?.to_vec(),
                rhs: self.dims(b)?.to_vec(),
            });
        }
        self.matmul_t(a, b, false, true)
    }
}

/// Rows per block of the bias fill and of the bias-gradient partial sums.
const ROWS: usize = 64;

/// C[p] = op(A[p]) op(B[p]) + beta C[p] for every batch entry p.
fn matmul_forward(
    g: &Geo,
    a: &[f32],
    b: &[f32],
    ta: bool,
    tb: bool,
    beta: f32,
    c: &mut [f32],
) -> Result<()> {
    let (asz, bsz, csz) = (g.a_rc.0 * g.a_rc.1, g.b_rc.0 * g.b_rc.1, g.m * g.n);
    if c.is_empty() {
        return Ok(());
    }
    // A shared weight under an untransposed A: one tall GEMM.
    if !g.b_batched && !ta {
        let am = MatRef::row_major(a, g.batch * g.m, g.k).op("matmul")?;
        let cm = MatMut::row_major(c, g.batch * g.m, g.n).op("matmul")?;
        return sgemm(1.0, am, view(b, g.b_rc, tb)?, beta, cm).op("matmul");
    }
    c.par_chunks_mut(csz).enumerate().try_for_each(|(p, cp)| {
        let bp = if g.b_batched { &b[p * bsz..(p + 1) * bsz] } else { b };
        let ap = view(&a[p * asz..(p + 1) * asz], g.a_rc, ta)?;
        let cm = MatMut::row_major(cp, g.m, g.n).op("matmul")?;
        sgemm(1.0, ap, view(bp, g.b_rc, tb)?, beta, cm).op("matmul")
    })
}

pub(crate) fn matmul_backward(
    gr: &mut Graph,
    i: usize,
    a: usize,
    b: usize,
    ta: bool,
    tb: bool,
    dy: &[f32],
) -> Result<()> {
    let (g, _) = geometry(gr.nodes[a].value.dims(), gr.nodes[b].value.dims(), ta, tb)?;
    debug_assert_eq!(gr.nodes[i].value.numel(), dy.len());
    let (asz, bsz, csz) = (g.a_rc.0 * g.a_rc.1, g.b_rc.0 * g.b_rc.1, g.m * g.n);
    if dy.is_empty() {
        return Ok(());
    }

    // d op(A)[p] += dC[p] op(B[p])^T, batch entries in parallel.
    if gr.rg(a) && asz > 0 {
        let (bv, _, da) = gr.values2_and_grad(b, b, a);
        da.par_chunks_mut(asz).enumerate().try_for_each(|(p, dap)| {
            let bp = if g.b_batched { &bv[p * bsz..(p + 1) * bsz] } else { bv };
            let dc = MatRef::row_major(&dy[p * csz..(p + 1) * csz], g.m, g.n).op("matmul")?;
            let dam = view_mut(dap, g.a_rc, ta)?;
            sgemm(1.0, dc, view(bp, g.b_rc, tb)?.t(), 1.0, dam).op("matmul backward")
        })?;
    }

    // d op(B) += op(A)^T dC: one tall GEMM for a shared weight under an
    // untransposed A, else per batch entry (summed in order when shared).
    if gr.rg(b) && bsz > 0 {
        let (av, _, db) = gr.values2_and_grad(a, a, b);
        if !g.b_batched && !ta {
            let am = MatRef::row_major(av, g.batch * g.m, g.k).op("matmul")?;
            let dc = MatRef::row_major(dy, g.batch * g.m, g.n).op("matmul")?;
            sgemm(1.0, am.t(), dc, 1.0, view_mut(db, g.b_rc, tb)?).op("matmul backward")?;
        } else if g.b_batched {
            db.par_chunks_mut(bsz).enumerate().try_for_each(|(p, dbp)| {
                let ap = view(&av[p * asz..(p + 1) * asz], g.a_rc, ta)?;
                let dc = MatRef::row_major(&dy[p * csz..(p + 1) * csz], g.m, g.n).op("matmul")?;
                sgemm(1.0, ap.t(), dc, 1.0, view_mut(dbp, g.b_rc, tb)?).op("matmul backward")
            })?;
        } else {
            for p in 0..g.batch {
                let ap = view(&av[p * asz..(p + 1) * asz], g.a_rc, ta)?;
                let dc = MatRef::row_major(&dy[p * csz..(p + 1) * csz], g.m, g.n).op("matmul")?;
                sgemm(1.0, ap.t(), dc, 1.0, view_mut(db, g.b_rc, tb)?).op("matmul backward")?;
            }
        }
    }
    Ok(())
}

/// `d bias += column sums of dy` (`dy` rows of `n`): partial sums per block
/// of [`ROWS`] rows in parallel, then the blocks added in block order, so
/// the bits do not depend on the thread count.
pub(crate) fn bias_backward(gr: &mut Graph, bias: usize, dy: &[f32]) -> Result<()> {
    let n = gr.nodes[bias].value.numel();
    if n == 0 || dy.is_empty() || !gr.rg(bias) {
        return Ok(());
    }
    let blocks = (dy.len() / n).div_ceil(ROWS);
    let mut partial = gr.pool.take_zeroed(blocks * n);
    let part = Arc::get_mut(&mut partial).expect("fresh from the pool");
    let r = gr.rt.install(|| {
        part.par_chunks_mut(n).zip(dy.par_chunks(ROWS * n)).try_for_each(|(acc, rows)| {
            rows.chunks(n).try_for_each(|row| vector::axpy(1.0, row, acc))
        })
    });
    let r = r.and_then(|()| {
        let db = gr.grad_buf(bias);
        part.chunks(n).try_for_each(|acc| vector::axpy(1.0, acc, db))
    });
    gr.pool.give(partial);
    r.op("matmul_bias backward")
}
