//! Row and column plumbing plus the few pointwise functions that
//! contrastive and distillation losses need: concatenating rows (a batch
//! with a block of memory-bank rows) or columns (in-batch logits beside
//! per-query hard-negative logits), narrowing rows, a 2-D transpose, `exp`,
//! `log`, `sigmoid`, `clamp`, multiplying by a scalar variable (a learned
//! temperature) and binary cross-entropy on logits. Each forward sits
//! above its backward.
//!
//! All of them copy into a fresh pooled buffer rather than returning
//! strided views: tape values are contiguous by contract, and the copies
//! are small next to the matmuls around them. The loops are scalar and
//! single-threaded for the same reason; a loss over a 4096 x 4096 logit
//! matrix spends its time in the similarity GEMM, not here.
//!
//! The ops share one tape variant, `Op::Shape(ShapeOp)`, so adding one
//! does not touch the router. Concatenation keeps its list of parts in the
//! graph's integer arena (the one token ids use), so the tape node stays
//! `Copy` and a warm step allocates nothing.
//!
//! [`Graph::leaf`] is also here: a constant input that records its
//! gradient, which gradient caching needs for its cached embeddings.

use std::sync::Arc;

use crate::autodiff::{Graph, IdRange, Op, Var};
use crate::error::{Error, Result};
use crate::tensor::{Shape, MAX_DIMS};

/// A tape node of this family, with its input node indices.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ShapeOp {
    /// Parts (node indices in the id arena) stacked along dim 0.
    ConcatRows {
        parts: IdRange,
    },
    /// 2-D parts placed side by side along dim 1.
    ConcatCols {
        parts: IdRange,
    },
    /// Rows `start..start + n` of `x` along dim 0.
    NarrowRows {
        x: usize,
        start: usize,
    },
    Transpose {
        x: usize,
    },
    Exp {
        x: usize,
    },
    Log {
        x: usize,
    },
    Sigmoid {
        x: usize,
    },
    Clamp {
        x: usize,
        lo: f32,
        hi: f32,
    },
    /// `s * x` with `s` a one-element variable.
    ScaleBy {
        x: usize,
        s: usize,
    },
    /// Mean binary cross-entropy of logits `x` against targets `y`.
    BceWithLogits {
        x: usize,
        y: usize,
    },
}

impl ShapeOp {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            ShapeOp::ConcatRows { .. } => "concat_rows",
            ShapeOp::ConcatCols { .. } => "concat_cols",
            ShapeOp::NarrowRows { .. } => "narrow_rows",
            ShapeOp::Transpose { .. } => "transpose2d",
            ShapeOp::Exp { .. } => "exp",
            ShapeOp::Log { .. } => "log",
            ShapeOp::Sigmoid { .. } => "sigmoid",
            ShapeOp::Clamp { .. } => "clamp",
            ShapeOp::ScaleBy { .. } => "scale_by",
            ShapeOp::BceWithLogits { .. } => "bce_with_logits",
        }
    }
}

/// Runs the backward rule of node `i`.
pub(crate) fn backward(g: &mut Graph, i: usize, op: ShapeOp, dy: &[f32]) -> Result<()> {
    match op {
        ShapeOp::ConcatRows { parts } => concat_rows_backward(g, parts, dy),
        ShapeOp::ConcatCols { parts } => concat_cols_backward(g, parts, dy),
        ShapeOp::NarrowRows { x, start } => narrow_rows_backward(g, x, start, dy),
        ShapeOp::Transpose { x } => transpose_backward(g, x, dy),
        ShapeOp::Exp { x } => unary_backward(g, i, x, dy, |_, y| y),
        ShapeOp::Log { x } => unary_backward(g, i, x, dy, |x, _| 1.0 / x),
        ShapeOp::Sigmoid { x } => unary_backward(g, i, x, dy, |_, y| y * (1.0 - y)),
        ShapeOp::Clamp { x, lo, hi } => {
            unary_backward(g, i, x, dy, |x, _| if x >= lo && x <= hi { 1.0 } else { 0.0 })
        }
        ShapeOp::ScaleBy { x, s } => scale_by_backward(g, x, s, dy),
        ShapeOp::BceWithLogits { x, y } => bce_with_logits_backward(g, x, y, dy),
    }
}

impl Graph {
    /// Pushes a node of this family whose output is `buf` shaped `dims`.
    fn push_shape(&mut self, dims: &[usize], buf: Arc<Vec<f32>>, op: ShapeOp, rg: bool) -> Var {
        let shape = Shape::new(dims).expect("dims validated by the op");
        self.push_out(shape, buf, Op::Shape(op), rg)
    }

    /// A constant input whose gradient is recorded: after a backward pass
    /// [`Graph::grad`] returns it (without [`Graph::set_keep_grads`], which
    /// would keep every intermediate gradient too). Used for embeddings
    /// computed elsewhere (gradient caching) that a loss must be
    /// differentiated against.
    pub fn leaf(&mut self, dims: &[usize], data: &[f32]) -> Result<Var> {
        let v = self.input_slice(dims, data)?;
        self.nodes[v.0].requires_grad = self.grad_enabled;
        Ok(v)
    }
}

// ---------------------------------------------------------------------------
// concatenation

/// Records `parts` in the id arena and returns their range.
fn record_parts(g: &mut Graph, parts: &[Var]) -> Result<IdRange> {
    for &p in parts {
        g.node(p)?;
    }
    let range = IdRange { start: g.ids.len(), len: parts.len() };
    g.ids.extend(parts.iter().map(|p| p.0 as u32));
    Ok(range)
}

fn part_index(g: &Graph, parts: IdRange, k: usize) -> usize {
    g.ids[parts.start + k] as usize
}

impl Graph {
    /// Stacks tensors along dim 0: parts `[n_k, ...rest]` with equal
    /// trailing dims give `[sum n_k, ...rest]`.
    pub fn concat_rows(&mut self, parts: &[Var]) -> Result<Var> {
        let Some(&first) = parts.first() else {
            return Err(Error::InvalidArgument {
                op: "concat_rows",
                what: "no parts to concatenate".into(),
            });
        };
        let fd = self.dims(first)?.to_vec();
        if fd.is_empty() {
            return Err(Error::BadShape {
                op: "concat_rows",
                shape: fd,
                reason: "parts need at least one dim",
            });
        }
        let mut rows = 0;
        for &p in parts {
            let d = self.dims(p)?;
            if d.len() != fd.len() || d[1..] != fd[1..] {
                return Err(Error::ShapeMismatch { op: "concat_rows", lhs: fd, rhs: d.to_vec() });
            }
            rows += d[0];
        }
        let mut od = [0usize; MAX_DIMS];
        od[..fd.len()].copy_from_slice(&fd);
        od[0] = rows;
        let dims = &od[..fd.len()];
        let mut buf = self.pool.take(Shape::new(dims)?.numel());
        let o = Arc::get_mut(&mut buf).expect("fresh from the pool");
        // Row-major: the parts are consecutive blocks of the output.
        let mut at = 0;
        for &p in parts {
            let v = self.f32_of(p.0);
            o[at..at + v.len()].copy_from_slice(v);
            at += v.len();
        }
        let rg = parts.iter().any(|p| self.rg(p.0));
        let range = record_parts(self, parts)?;
        Ok(self.push_shape(dims, buf, ShapeOp::ConcatRows { parts: range }, rg))
    }

    /// Places 2-D tensors side by side: parts `[R, c_k]` give
    /// `[R, sum c_k]`.
    pub fn concat_cols(&mut self, parts: &[Var]) -> Result<Var> {
        let Some(&first) = parts.first() else {
            return Err(Error::InvalidArgument {
                op: "concat_cols",
                what: "no parts to concatenate".into(),
            });
        };
        let fd = self.dims(first)?.to_vec();
        let mut cols = 0;
        for &p in parts {
            let d = self.dims(p)?;
            if d.len() != 2 || fd.len() != 2 || d[0] != fd[0] {
                return Err(Error::ShapeMismatch { op: "concat_cols", lhs: fd, rhs: d.to_vec() });
            }
            cols += d[1];
        }
        let rows = fd[0];
        let mut buf = self.pool.take(rows * cols);
        let o = Arc::get_mut(&mut buf).expect("fresh from the pool");
        // Output row r is the concatenation of row r of every part.
        let mut c0 = 0;
        for &p in parts {
            let c = self.nodes[p.0].value.dims()[1];
            let v = self.f32_of(p.0);
            for r in 0..rows {
                o[r * cols + c0..r * cols + c0 + c].copy_from_slice(&v[r * c..(r + 1) * c]);
            }
            c0 += c;
        }
        let rg = parts.iter().any(|p| self.rg(p.0));
        let range = record_parts(self, parts)?;
        Ok(self.push_shape(&[rows, cols], buf, ShapeOp::ConcatCols { parts: range }, rg))
    }
}

/// Each part's gradient is its block of `dy`.
fn concat_rows_backward(g: &mut Graph, parts: IdRange, dy: &[f32]) -> Result<()> {
    let mut at = 0;
    for k in 0..parts.len {
        let p = part_index(g, parts, k);
        let n = g.nodes[p].value.numel();
        if g.rg(p) {
            let dp = g.grad_buf(p);
            dp.iter_mut().zip(&dy[at..at + n]).for_each(|(d, &v)| *d += v);
        }
        at += n;
    }
    Ok(())
}

/// Each part's gradient is its column band of `dy`.
fn concat_cols_backward(g: &mut Graph, parts: IdRange, dy: &[f32]) -> Result<()> {
    let total: usize =
        (0..parts.len).map(|k| g.nodes[part_index(g, parts, k)].value.dims()[1]).sum();
    let mut c0 = 0;
    for k in 0..parts.len {
        let p = part_index(g, parts, k);
        let (rows, c) = (g.nodes[p].value.dims()[0], g.nodes[p].value.dims()[1]);
        if g.rg(p) {
            let dp = g.grad_buf(p);
            for r in 0..rows {
                let src = &dy[r * total + c0..r * total + c0 + c];
                dp[r * c..(r + 1) * c].iter_mut().zip(src).for_each(|(d, &v)| *d += v);
            }
        }
        c0 += c;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// narrow and transpose

impl Graph {
    /// Rows `start..start + len` of `x` along dim 0 (a copy).
    pub fn narrow_rows(&mut self, x: Var, start: usize, len: usize) -> Result<Var> {
        let xd = self.dims(x)?.to_vec();
        if xd.is_empty() {
            return Err(Error::BadShape {
                op: "narrow_rows",
                shape: xd,
                reason: "needs at least one dim",
            });
        }
        let end = start.checked_add(len).filter(|&e| e <= xd[0]);
        if end.is_none() {
            return Err(Error::IndexOutOfRange {
                op: "narrow_rows",
                index: start.saturating_add(len),
                bound: xd[0],
            });
        }
        let row: usize = xd[1..].iter().product();
        let mut od = [0usize; MAX_DIMS];
        od[..xd.len()].copy_from_slice(&xd);
        od[0] = len;
        let mut buf = self.pool.take(len * row);
        let o = Arc::get_mut(&mut buf).expect("fresh from the pool");
        o.copy_from_slice(&self.f32_of(x.0)[start * row..(start + len) * row]);
        let rg = self.rg(x.0);
        Ok(self.push_shape(&od[..xd.len()], buf, ShapeOp::NarrowRows { x: x.0, start }, rg))
    }

    /// The transpose of a 2-D tensor `[R, C]` -> `[C, R]` (a copy).
    pub fn transpose2d(&mut self, x: Var) -> Result<Var> {
        let xd = self.dims(x)?.to_vec();
        if xd.len() != 2 {
            return Err(Error::BadShape { op: "transpose2d", shape: xd, reason: "needs [R, C]" });
        }
        let (r, c) = (xd[0], xd[1]);
        let mut buf = self.pool.take(r * c);
        let o = Arc::get_mut(&mut buf).expect("fresh from the pool");
        transpose_into(self.f32_of(x.0), r, c, o, false);
        let rg = self.rg(x.0);
        Ok(self.push_shape(&[c, r], buf, ShapeOp::Transpose { x: x.0 }, rg))
    }
}

/// `out[j, i] (+)= a[i, j]` for `a` of shape `[r, c]`.
fn transpose_into(a: &[f32], r: usize, c: usize, out: &mut [f32], accumulate: bool) {
    for i in 0..r {
        for j in 0..c {
            let v = a[i * c + j];
            let o = &mut out[j * r + i];
            *o = if accumulate { *o + v } else { v };
        }
    }
}

/// `dx[start + r] += dy[r]`.
fn narrow_rows_backward(g: &mut Graph, x: usize, start: usize, dy: &[f32]) -> Result<()> {
    let xd = g.nodes[x].value.dims();
    let row: usize = xd[1..].iter().product();
    let dx = g.grad_buf(x);
    dx[start * row..start * row + dy.len()].iter_mut().zip(dy).for_each(|(d, &v)| *d += v);
    Ok(())
}

/// `dx += dy^T` (dy is `[C, R]`).
fn transpose_backward(g: &mut Graph, x: usize, dy: &[f32]) -> Result<()> {
    let (r, c) = (g.nodes[x].value.dims()[0], g.nodes[x].value.dims()[1]);
    transpose_into(dy, c, r, g.grad_buf(x), true);
    Ok(())
}

// ---------------------------------------------------------------------------
// pointwise: exp, log, sigmoid, clamp

impl Graph {
    /// `e^x`, elementwise.
    pub fn exp(&mut self, x: Var) -> Result<Var> {
        self.unary(x, ShapeOp::Exp { x: x.0 }, f32::exp)
    }

    /// Natural log, elementwise; every element must be positive.
    pub fn log(&mut self, x: Var) -> Result<Var> {
        if let Some(&bad) = self.node(x)?.value.as_f32()?.iter().find(|&&v| v.is_nan() || v <= 0.0)
        {
            return Err(Error::InvalidArgument {
                op: "log",
                what: format!("input holds {bad}, needs positive values"),
            });
        }
        self.unary(x, ShapeOp::Log { x: x.0 }, f32::ln)
    }

    /// `1 / (1 + e^-x)`, elementwise, computed without overflow.
    pub fn sigmoid(&mut self, x: Var) -> Result<Var> {
        self.unary(x, ShapeOp::Sigmoid { x: x.0 }, sigmoid)
    }

    /// `min(max(x, lo), hi)` elementwise. The gradient passes where
    /// `lo <= x <= hi` and is zero outside, so a clamped value can still
    /// move back inside from the boundary.
    pub fn clamp(&mut self, x: Var, lo: f32, hi: f32) -> Result<Var> {
        if lo.is_nan() || hi.is_nan() || lo > hi {
            return Err(Error::InvalidArgument {
                op: "clamp",
                what: format!("bounds [{lo}, {hi}]"),
            });
        }
        self.unary(x, ShapeOp::Clamp { x: x.0, lo, hi }, |v| v.clamp(lo, hi))
    }

    fn unary(&mut self, x: Var, op: ShapeOp, f: impl Fn(f32) -> f32) -> Result<Var> {
        let dims = self.dims(x)?.to_vec();
        let mut buf = self.pool.take(self.nodes[x.0].value.numel());
        let o = Arc::get_mut(&mut buf).expect("fresh from the pool");
        o.iter_mut().zip(self.f32_of(x.0)).for_each(|(o, &v)| *o = f(v));
        let rg = self.rg(x.0);
        Ok(self.push_shape(&dims, buf, op, rg))
    }
}

/// The logistic function, on the branch that cannot overflow `exp`.
fn sigmoid(v: f32) -> f32 {
    if v >= 0.0 {
        1.0 / (1.0 + (-v).exp())
    } else {
        let e = v.exp();
        e / (1.0 + e)
    }
}

/// `dx += dy * f'(x, y)` with the local derivative given from the input
/// `x` and the output `y`.
fn unary_backward(
    g: &mut Graph,
    i: usize,
    x: usize,
    dy: &[f32],
    deriv: impl Fn(f32, f32) -> f32,
) -> Result<()> {
    let (xv, yv, dx) = g.values2_and_grad(x, i, x);
    for ((d, &g), (&xv, &yv)) in dx.iter_mut().zip(dy).zip(xv.iter().zip(yv)) {
        *d += g * deriv(xv, yv);
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// scale by a scalar variable

impl Graph {
    /// `s * x` where `s` holds one element (a learned temperature): unlike
    /// a broadcast [`Graph::mul`], the scalar's gradient is one dot
    /// product, `ds = sum(dy * x)`.
    pub fn scale_by(&mut self, x: Var, s: Var) -> Result<Var> {
        let st = &self.node(s)?.value;
        if st.numel() != 1 {
            return Err(Error::BadShape {
                op: "scale_by",
                shape: st.dims().to_vec(),
                reason: "the scale must hold one element",
            });
        }
        let sv = self.f32_of(s.0)[0];
        let dims = self.dims(x)?.to_vec();
        let mut buf = self.pool.take(self.nodes[x.0].value.numel());
        let o = Arc::get_mut(&mut buf).expect("fresh from the pool");
        o.iter_mut().zip(self.f32_of(x.0)).for_each(|(o, &v)| *o = sv * v);
        let rg = self.rg(x.0) || self.rg(s.0);
        Ok(self.push_shape(&dims, buf, ShapeOp::ScaleBy { x: x.0, s: s.0 }, rg))
    }
}

/// `dx += s dy`, `ds += sum(dy * x)` (summed in f64, in element order).
fn scale_by_backward(g: &mut Graph, x: usize, s: usize, dy: &[f32]) -> Result<()> {
    if g.rg(s) {
        let ds: f64 = g.f32_of(x).iter().zip(dy).map(|(&a, &b)| a as f64 * b as f64).sum();
        g.grad_buf(s)[0] += ds as f32;
    }
    if g.rg(x) {
        let sv = g.f32_of(s)[0];
        g.grad_buf(x).iter_mut().zip(dy).for_each(|(d, &v)| *d += sv * v);
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// binary cross-entropy on logits

impl Graph {
    /// Mean binary cross-entropy of logits `x` against targets `y` (same
    /// shape, usually labels in [0, 1]):
    /// `mean(max(x, 0) - x y + ln(1 + e^-|x|))`, which equals
    /// `-(y ln sigmoid(x) + (1 - y) ln(1 - sigmoid(x)))` without its
    /// overflow for large `|x|`.
    pub fn bce_with_logits(&mut self, x: Var, y: Var) -> Result<Var> {
        let (xd, yd) = (self.dims(x)?, self.dims(y)?);
        if xd != yd {
            return Err(Error::ShapeMismatch {
                op: "bce_with_logits",
                lhs: xd.to_vec(),
                rhs: yd.to_vec(),
            });
        }
        let n = self.nodes[x.0].value.numel();
        if n == 0 {
            return Err(Error::BadShape {
                op: "bce_with_logits",
                shape: xd.to_vec(),
                reason: "empty",
            });
        }
        let (xv, yv) = (self.f32_of(x.0), self.f32_of(y.0));
        let total: f64 = xv
            .iter()
            .zip(yv)
            .map(|(&x, &y)| (x.max(0.0) - x * y + (-x.abs()).exp().ln_1p()) as f64)
            .sum();
        let mut buf = self.pool.take(1);
        Arc::get_mut(&mut buf).expect("fresh from the pool")[0] = (total / n as f64) as f32;
        let rg = self.rg(x.0) || self.rg(y.0);
        Ok(self.push_shape(&[], buf, ShapeOp::BceWithLogits { x: x.0, y: y.0 }, rg))
    }
}

/// `dx += g/n (sigmoid(x) - y)`, `dy_target += -g/n x`.
fn bce_with_logits_backward(g: &mut Graph, x: usize, y: usize, dy: &[f32]) -> Result<()> {
    let n = g.nodes[x].value.numel();
    let s = dy[0] / n as f32;
    if g.rg(x) {
        let (xv, yv, dx) = g.values2_and_grad(x, y, x);
        for ((d, &a), &b) in dx.iter_mut().zip(xv).zip(yv) {
            *d += s * (sigmoid(a) - b);
        }
    }
    if g.rg(y) {
        let (xv, dt) = g.value_and_grad(x, y);
        dt.iter_mut().zip(xv).for_each(|(d, &a)| *d -= s * a);
    }
    Ok(())
}
