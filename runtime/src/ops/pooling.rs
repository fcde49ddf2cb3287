//! Gathers and poolings: embedding lookup, masked mean pooling and CLS
//! pooling. Each forward sits above its backward.

use std::sync::Arc;

use rayon::prelude::*;

use crate::autodiff::{Graph, IdRange, Op, Var};
use crate::error::{Error, KernelContext, Result};
use crate::kernels::vector;
use crate::tensor::{Shape, MAX_DIMS};

// ---------------------------------------------------------------------------
// embedding

impl Graph {
    /// Rows of `table` (`[V, C]`) picked by `ids`, shaped `dims + [C]`.
    /// Ids are copied into the graph's arena (no allocation once warm).
    pub fn embedding(&mut self, table: Var, ids: &[u32], dims: &[usize]) -> Result<Var> {
        let td = self.dims(table)?;
        if td.len() != 2 {
            return Err(Error::BadShape {
                op: "embedding",
                shape: td.to_vec(),
                reason: "table must be [V, C]",
            });
        }
        let (vocab, c) = (td[0], td[1]);
        let n: usize = dims.iter().product();
        if n != ids.len() || dims.len() + 1 > MAX_DIMS {
            return Err(Error::ElementCount {
                op: "embedding",
                shape: dims.to_vec(),
                expected: n,
                found: ids.len(),
            });
        }
        if let Some(&bad) = ids.iter().find(|&&i| i as usize >= vocab) {
            return Err(Error::IndexOutOfRange {
                op: "embedding",
                index: bad as usize,
                bound: vocab,
            });
        }
        let mut od = [0usize; MAX_DIMS];
        od[..dims.len()].copy_from_slice(dims);
        od[dims.len()] = c;
        let shape = Shape::new(&od[..dims.len() + 1])?;
        let range = IdRange { start: self.ids.len(), len: n };
        self.ids.extend_from_slice(ids);
        let mut buf = self.pool.take(n * c);
        let o = Arc::get_mut(&mut buf).expect("fresh from the pool");
        let tv = self.f32_of(table.0);
        if c > 0 {
            self.rt.install(|| {
                o.par_chunks_mut(c).zip(ids.par_iter()).for_each(|(row, &id)| {
                    let s = id as usize * c;
                    row.copy_from_slice(&tv[s..s + c]);
                })
            });
        }
        let rg = self.rg(table.0);
        Ok(self.push_out(shape, buf, Op::Embedding { table: table.0, ids: range }, rg))
    }
}

/// `dtable[id] += dy[row]` for each row, in order; untouched rows are not
/// read or written.
pub(crate) fn embedding_backward(
    g: &mut Graph,
    table: usize,
    ids: IdRange,
    dy: &[f32],
) -> Result<()> {
    let c = g.nodes[table].value.shape().last();
    let mut dt = g.hold(table);
    let r = (|| {
        let d = dt.as_mut();
        for (j, &id) in g.ids[ids.start..ids.start + ids.len].iter().enumerate() {
            let s = id as usize * c;
            vector::axpy(1.0, &dy[j * c..(j + 1) * c], &mut d[s..s + c])
                .op("embedding backward")?;
        }
        Ok(())
    })();
    g.release(table, dt);
    r
}

// ---------------------------------------------------------------------------
// masked mean pooling

fn btc(g: &Graph, x: Var, op: &'static str) -> Result<(usize, usize, usize)> {
    let d = g.dims(x)?;
    if d.len() != 3 || d[1] == 0 || d[2] == 0 {
        return Err(Error::BadShape {
            op,
            shape: d.to_vec(),
            reason: "needs a non-empty [B, T, C]",
        });
    }
    Ok((d[0], d[1], d[2]))
}

impl Graph {
    /// `out[b] = sum_t m[b,t] x[b,t] / sum_t m[b,t]` over `x: [B, T, C]`
    /// and mask `[B, T]`; a row with an all-zero mask pools to zeros.
    pub fn mean_pool(&mut self, x: Var, mask: Var) -> Result<Var> {
        let (b, t, c) = btc(self, x, "mean_pool")?;
        if self.dims(mask)? != [b, t] {
            return Err(Error::ShapeMismatch {
                op: "mean_pool",
                lhs: vec![b, t],
                rhs: self.dims(mask)?.to_vec(),
            });
        }
        let mut buf = self.pool.take_zeroed(b * c);
        let o = Arc::get_mut(&mut buf).expect("fresh from the pool");
        let (xv, mv) = (self.f32_of(x.0), self.f32_of(mask.0));
        self.rt
            .install(|| {
                o.par_chunks_mut(c).enumerate().try_for_each(|(bi, row)| {
                    let m = &mv[bi * t..(bi + 1) * t];
                    let cnt = vector::sum(m);
                    if cnt == 0.0 {
                        return Ok(());
                    }
                    for (ti, &w) in m.iter().enumerate() {
                        let s = (bi * t + ti) * c;
                        vector::axpy(w / cnt, &xv[s..s + c], row)?;
                    }
                    Ok(())
                })
            })
            .op("mean_pool")?;
        let rg = self.rg(x.0);
        Ok(self.push_out(Shape::new(&[b, c])?, buf, Op::MeanPool { x: x.0, mask: mask.0 }, rg))
    }

    /// The first position of each sequence: `x[:, 0, :]`.
    pub fn cls_pool(&mut self, x: Var) -> Result<Var> {
        let (b, t, c) = btc(self, x, "cls_pool")?;
        let mut buf = self.pool.take(b * c);
        let o = Arc::get_mut(&mut buf).expect("fresh from the pool");
        let xv = self.f32_of(x.0);
        for (bi, row) in o.chunks_mut(c).enumerate() {
            row.copy_from_slice(&xv[bi * t * c..bi * t * c + c]);
        }
        let rg = self.rg(x.0);
        Ok(self.push_out(Shape::new(&[b, c])?, buf, Op::ClsPool { x: x.0 }, rg))
    }
}

/// `dx[b, t] += m[b, t] / cnt[b] * dy[b]`.
pub(crate) fn mean_pool_backward(g: &mut Graph, x: usize, mask: usize, dy: &[f32]) -> Result<()> {
    if g.rg(mask) {
        return Err(Error::BackwardNotSupported { op: "mean_pool (gradient into the mask)" });
    }
    let d = g.nodes[x].value.shape();
    let (t, c) = (d.dims()[1], d.dims()[2]);
    let (mv, dx) = g.value_and_grad(mask, x);
    dx.par_chunks_mut(t * c)
        .enumerate()
        .try_for_each(|(bi, dxb)| {
            let m = &mv[bi * t..(bi + 1) * t];
            let cnt = vector::sum(m);
            if cnt == 0.0 {
                return Ok(());
            }
            for (ti, &w) in m.iter().enumerate() {
                vector::axpy(w / cnt, &dy[bi * c..(bi + 1) * c], &mut dxb[ti * c..(ti + 1) * c])?;
            }
            Ok(())
        })
        .op("mean_pool backward")
}

/// `dx[b, 0] += dy[b]`.
pub(crate) fn cls_pool_backward(g: &mut Graph, x: usize, dy: &[f32]) -> Result<()> {
    let d = g.nodes[x].value.shape();
    let (t, c) = (d.dims()[1], d.dims()[2]);
    let dx = g.grad_buf(x);
    for (bi, dyr) in dy.chunks(c).enumerate() {
        vector::axpy(1.0, dyr, &mut dx[bi * t * c..bi * t * c + c]).op("cls_pool backward")?;
    }
    Ok(())
}
