//! Elementwise ops: broadcasting add and mul, scale, reshape, sum and mean
//! to a scalar, GELU and dropout. Each forward sits above its backward.
//!
//! Broadcasting follows the usual right-aligned rule (a dim of 1 or a
//! missing leading dim stretches). Equal shapes and a trailing-suffix
//! operand (a bias row, a residual) take fast paths over the vector
//! kernels, split into fixed-size chunks run in parallel; other patterns
//! walk an odometer, scalar and single-threaded, which is fine for the
//! small shapes they appear with (masks, scales).

use std::sync::Arc;

use rayon::prelude::*;

use crate::autodiff::{Graph, Op, Var};
use crate::error::{Error, KernelContext, Result};
use crate::kernels::vector;
use crate::ops::{with_scratch, CHUNK};
use crate::tensor::{Shape, MAX_DIMS};

// ---------------------------------------------------------------------------
// broadcasting

/// Output shape of broadcasting `a` against `b`.
fn broadcast_shape(op: &'static str, a: &[usize], b: &[usize]) -> Result<Shape> {
    let r = a.len().max(b.len());
    let mut out = [0usize; MAX_DIMS];
    for i in 0..r {
        let da = if i < r - a.len() { 1 } else { a[i - (r - a.len())] };
        let db = if i < r - b.len() { 1 } else { b[i - (r - b.len())] };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return Err(Error::ShapeMismatch { op, lhs: a.to_vec(), rhs: b.to_vec() }),
        };
    }
    Shape::new(&out[..r])
}

/// Strides of `dims` seen through the broadcast to `out` (0 on stretched
/// dims).
fn bcast_strides(dims: &[usize], out: &Shape) -> [usize; MAX_DIMS] {
    let r = out.rank();
    let own = Shape::new(dims).expect("rank checked by broadcast_shape").contiguous_strides();
    let mut s = [0usize; MAX_DIMS];
    for i in 0..dims.len() {
        let o = i + (r - dims.len());
        s[o] = if dims[i] == 1 { 0 } else { own[i] };
    }
    s
}

/// Visits `(out_index, a_index, b_index)` for every output element.
fn for_each_bcast(
    out: &Shape,
    sa: &[usize; MAX_DIMS],
    sb: &[usize; MAX_DIMS],
    mut f: impl FnMut(usize, usize, usize),
) {
    let r = out.rank();
    let dims = out.dims();
    let mut idx = [0usize; MAX_DIMS];
    let (mut ia, mut ib) = (0usize, 0usize);
    for e in 0..out.numel() {
        f(e, ia, ib);
        for d in (0..r).rev() {
            idx[d] += 1;
            ia += sa[d];
            ib += sb[d];
            if idx[d] < dims[d] {
                break;
            }
            ia -= sa[d] * idx[d];
            ib -= sb[d] * idx[d];
            idx[d] = 0;
        }
    }
}

/// How one operand maps onto the output.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pattern {
    /// Same shape as the output.
    Same,
    /// Its elements repeat as the trailing block of the output.
    Suffix,
    General,
}

fn pattern(dims: &[usize], out: &Shape) -> Pattern {
    let n: usize = dims.iter().product();
    if n == out.numel() {
        return Pattern::Same;
    }
    // Strip leading ones, then compare with the output's trailing dims.
    let core: &[usize] = &dims[dims.iter().take_while(|&&d| d == 1).count()..];
    let od = out.dims();
    if core.len() <= od.len() && od[od.len() - core.len()..] == *core {
        Pattern::Suffix
    } else {
        Pattern::General
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Binary {
    Add,
    Mul,
}

impl Graph {
    /// `a + b` with broadcasting.
    pub fn add(&mut self, a: Var, b: Var) -> Result<Var> {
        self.binary(Binary::Add, a, b)
    }
    /// `a * b` elementwise with broadcasting.
    pub fn mul(&mut self, a: Var, b: Var) -> Result<Var> {
        self.binary(Binary::Mul, a, b)
    }

    fn binary(&mut self, kind: Binary, a: Var, b: Var) -> Result<Var> {
        let op = if kind == Binary::Add { "add" } else { "mul" };
        let (sa, sb) = (self.node(a)?.value.shape(), self.node(b)?.value.shape());
        let out = broadcast_shape(op, sa.dims(), sb.dims())?;
        let mut buf = self.pool.take(out.numel());
        let o = Arc::get_mut(&mut buf).expect("fresh from the pool");
        let (x, y) = (self.f32_of(a.0), self.f32_of(b.0));
        self.rt.install(|| binary_forward(kind, x, sa.dims(), y, sb.dims(), &out, o))?;
        let rg = self.rg(a.0) || self.rg(b.0);
        let node = match kind {
            Binary::Add => Op::Add { a: a.0, b: b.0 },
            Binary::Mul => Op::Mul { a: a.0, b: b.0 },
        };
        Ok(self.push_out(out, buf, node, rg))
    }
}

/// out = a (+|*) b, broadcast to `out`.
fn binary_forward(
    kind: Binary,
    a: &[f32],
    ad: &[usize],
    b: &[f32],
    bd: &[usize],
    out: &Shape,
    o: &mut [f32],
) -> Result<()> {
    let op = if kind == Binary::Add { "add" } else { "mul" };
    let kernel = |x: &[f32], y: &[f32], z: &mut [f32]| match kind {
        Binary::Add => vector::add(x, y, z),
        Binary::Mul => vector::mul(x, y, z),
    };
    match (pattern(ad, out), pattern(bd, out)) {
        (Pattern::Same, Pattern::Same) => o
            .par_chunks_mut(CHUNK)
            .zip(a.par_chunks(CHUNK).zip(b.par_chunks(CHUNK)))
            .try_for_each(|(z, (x, y))| kernel(x, y, z))
            .op(op),
        // Row broadcast: every row of the full operand meets the suffix.
        (Pattern::Same, Pattern::Suffix) if !b.is_empty() => {
            let rows = row_block(b.len());
            o.par_chunks_mut(rows)
                .zip(a.par_chunks(rows))
                .try_for_each(|(z, x)| {
                    z.chunks_mut(b.len())
                        .zip(x.chunks(b.len()))
                        .try_for_each(|(z, x)| kernel(x, b, z))
                })
                .op(op)
        }
        (Pattern::Suffix, Pattern::Same) if !a.is_empty() => {
            let rows = row_block(a.len());
            o.par_chunks_mut(rows)
                .zip(b.par_chunks(rows))
                .try_for_each(|(z, y)| {
                    z.chunks_mut(a.len())
                        .zip(y.chunks(a.len()))
                        .try_for_each(|(z, y)| kernel(a, y, z))
                })
                .op(op)
        }
        _ => {
            let (sa, sb) = (bcast_strides(ad, out), bcast_strides(bd, out));
            for_each_bcast(out, &sa, &sb, |e, i, j| {
                o[e] = match kind {
                    Binary::Add => a[i] + b[j],
                    Binary::Mul => a[i] * b[j],
                }
            });
            Ok(())
        }
    }
}

/// Elements per parallel chunk of a row-broadcast loop: whole rows of
/// `row` elements, about [`CHUNK`] of them.
fn row_block(row: usize) -> usize {
    row * (CHUNK / row).max(1)
}

/// Gradient of one operand of a broadcast add/mul: `dx += reduce(dy * other)`
/// (`other` is None for add). `xd` is the operand's dims, `od` the other's.
fn binary_backward_operand(
    dy: &[f32],
    out: &Shape,
    xd: &[usize],
    other: Option<(&[f32], &[usize])>,
    dx: &mut [f32],
) -> Result<()> {
    let op = "add/mul backward";
    match (pattern(xd, out), other) {
        (Pattern::Same, None) => dx
            .par_chunks_mut(CHUNK)
            .zip(dy.par_chunks(CHUNK))
            .try_for_each(|(dx, dy)| vector::axpy(1.0, dy, dx))
            .op(op),
        (Pattern::Suffix, None) if !dx.is_empty() => {
            // Bias gradient: sum of the rows of dy, in row order.
            dy.chunks(dx.len()).try_for_each(|row| vector::axpy(1.0, row, dx)).op(op)
        }
        (Pattern::Same, Some((y, yd))) if pattern(yd, out) == Pattern::Same => {
            dx.par_chunks_mut(CHUNK).zip(dy.par_chunks(CHUNK).zip(y.par_chunks(CHUNK))).for_each(
                |(dx, (dy, y))| {
                    dx.iter_mut().zip(dy.iter().zip(y)).for_each(|(d, (g, v))| *d += g * v)
                },
            );
            Ok(())
        }
        // Full operand against a repeated row: dx[r] += dy[r] * y.
        (Pattern::Same, Some((y, yd))) if pattern(yd, out) == Pattern::Suffix && !y.is_empty() => {
            for (dxr, dyr) in dx.chunks_mut(y.len()).zip(dy.chunks(y.len())) {
                dxr.iter_mut().zip(dyr.iter().zip(y)).for_each(|(d, (g, v))| *d += g * v);
            }
            Ok(())
        }
        // Repeated row against a full operand: dx += sum_r dy[r] * y[r].
        (Pattern::Suffix, Some((y, yd))) if pattern(yd, out) == Pattern::Same && !dx.is_empty() => {
            let n = dx.len();
            for (dyr, yr) in dy.chunks(n).zip(y.chunks(n)) {
                dx.iter_mut().zip(dyr.iter().zip(yr)).for_each(|(d, (g, v))| *d += g * v);
            }
            Ok(())
        }
        _ => {
            let sx = bcast_strides(xd, out);
            match other {
                None => for_each_bcast(out, &sx, &sx, |e, i, _| dx[i] += dy[e]),
                Some((y, yd)) => {
                    let sy = bcast_strides(yd, out);
                    for_each_bcast(out, &sx, &sy, |e, i, j| dx[i] += dy[e] * y[j]);
                }
            }
            Ok(())
        }
    }
}

pub(crate) fn add_backward(g: &mut Graph, i: usize, a: usize, b: usize, dy: &[f32]) -> Result<()> {
    let out = g.nodes[i].value.shape();
    for x in [a, b] {
        if g.rg(x) {
            let xd = g.nodes[x].value.shape();
            binary_backward_operand(dy, &out, xd.dims(), None, g.grad_buf(x))?;
        }
    }
    Ok(())
}

pub(crate) fn mul_backward(g: &mut Graph, i: usize, a: usize, b: usize, dy: &[f32]) -> Result<()> {
    let out = g.nodes[i].value.shape();
    for (x, y) in [(a, b), (b, a)] {
        if g.rg(x) {
            let (xd, yd) = (g.nodes[x].value.shape(), g.nodes[y].value.shape());
            let (yv, dx) = g.value_and_grad(y, x);
            binary_backward_operand(dy, &out, xd.dims(), Some((yv, yd.dims())), dx)?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// scale, reshape, reductions

impl Graph {
    /// `s * a`.
    pub fn scale(&mut self, a: Var, s: f32) -> Result<Var> {
        let shape = self.node(a)?.value.shape();
        let mut buf = self.pool.take(shape.numel());
        let o = Arc::get_mut(&mut buf).expect("fresh from the pool");
        o.copy_from_slice(self.f32_of(a.0));
        vector::scale(s, o);
        let rg = self.rg(a.0);
        Ok(self.push_out(shape, buf, Op::Scale { a: a.0, s }, rg))
    }

    /// The same elements under new dims; shares the buffer, no copy.
    pub fn reshape(&mut self, a: Var, dims: &[usize]) -> Result<Var> {
        let t = self.node(a)?.value.reshape(dims)?;
        let rg = self.rg(a.0);
        Ok(self.push(t, Op::Reshape { a: a.0 }, rg))
    }

    /// Sum of all elements, a scalar.
    pub fn sum(&mut self, a: Var) -> Result<Var> {
        let s = vector::sum(self.node(a)?.value.as_f32()?);
        self.scalar_node(s, Op::Sum { a: a.0 }, a)
    }

    /// Mean of all elements, a scalar.
    pub fn mean(&mut self, a: Var) -> Result<Var> {
        let t = &self.node(a)?.value;
        if t.numel() == 0 {
            return Err(Error::BadShape { op: "mean", shape: t.dims().to_vec(), reason: "empty" });
        }
        let s = vector::sum(t.as_f32()?) / t.numel() as f32;
        self.scalar_node(s, Op::Mean { a: a.0 }, a)
    }

    pub(crate) fn scalar_node(&mut self, s: f32, op: Op, from: Var) -> Result<Var> {
        let mut buf = self.pool.take(1);
        Arc::get_mut(&mut buf).expect("fresh from the pool")[0] = s;
        let rg = self.rg(from.0);
        Ok(self.push_out(Shape::scalar(), buf, op, rg))
    }
}

pub(crate) fn scale_backward(g: &mut Graph, a: usize, s: f32, dy: &[f32]) -> Result<()> {
    vector::axpy(s, dy, g.grad_buf(a)).op("scale backward")
}

/// Reshape, sum and mean all pass a (possibly broadcast) gradient through.
pub(crate) fn passthrough_backward(g: &mut Graph, a: usize, dy: &[f32], mean: bool) -> Result<()> {
    let n = g.nodes[a].value.numel();
    let da = g.grad_buf(a);
    if dy.len() == da.len() {
        return vector::axpy(1.0, dy, da).op("reshape backward");
    }
    // Scalar output: d/dx_i of sum = 1, of mean = 1/n.
    let s = if mean { dy[0] / n as f32 } else { dy[0] };
    da.iter_mut().for_each(|d| *d += s);
    Ok(())
}

// ---------------------------------------------------------------------------
// GELU

impl Graph {
    /// GELU (erf form), elementwise.
    pub fn gelu(&mut self, x: Var) -> Result<Var> {
        let shape = self.node(x)?.value.shape();
        let mut buf = self.pool.take(shape.numel());
        let o = Arc::get_mut(&mut buf).expect("fresh from the pool");
        let xv = self.f32_of(x.0);
        self.rt
            .install(|| {
                o.par_chunks_mut(CHUNK)
                    .zip(xv.par_chunks(CHUNK))
                    .try_for_each(|(o, x)| vector::gelu(x, o))
            })
            .op("gelu")?;
        let rg = self.rg(x.0);
        Ok(self.push_out(shape, buf, Op::Gelu { x: x.0 }, rg))
    }
}

pub(crate) fn gelu_backward(g: &mut Graph, x: usize, dy: &[f32]) -> Result<()> {
    let (xv, dx) = g.value_and_grad(x, x);
    dx.par_chunks_mut(CHUNK)
        .zip(xv.par_chunks(CHUNK).zip(dy.par_chunks(CHUNK)))
        .try_for_each(|(dx, (x, dy))| vector::gelu_backward(x, dy, dx))
        .op("gelu backward")
}

// ---------------------------------------------------------------------------
// dropout

/// A 64-bit mix of a key (splitmix64 finaliser): the dropout and init
/// streams are a pure function of (seed, stream, index), so they do not
/// depend on thread count or scheduling.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Uniform in [0, 1) from a key.
pub(crate) fn uniform(seed: u64, stream: u64, i: u64) -> f32 {
    let h = mix64(seed ^ mix64(stream ^ mix64(i)));
    (h >> 40) as f32 * (1.0 / (1u64 << 24) as f32)
}

/// The dropout mask of elements `start..start + m.len()` of one dropout
/// node: `keep` (= 1 / (1 - p)) where the element survives, 0 where it is
/// dropped. One splitmix64 mix per element of a key drawn from the seed and
/// the node's stream, so forward and backward regenerate the same mask in
/// any chunking and nothing of the input's size needs saving.
fn dropout_mask(key: u64, start: usize, p: f32, keep: f32, m: &mut [f32]) {
    for (j, v) in m.iter_mut().enumerate() {
        let h = mix64(key ^ (start + j) as u64);
        let u = (h >> 40) as f32 * (1.0 / (1u64 << 24) as f32);
        *v = if u < p { 0.0 } else { keep };
    }
}

impl Graph {
    /// Inverted dropout with drop probability `p`: kept elements are scaled
    /// by `1 / (1 - p)`. Identity (no node) outside training or for p = 0.
    /// The mask is keyed by the seed, the pass counter and the node index;
    /// it is not stored but regenerated by backward.
    pub fn dropout(&mut self, x: Var, p: f32) -> Result<Var> {
        if !(0.0..1.0).contains(&p) {
            return Err(Error::InvalidArgument {
                op: "dropout",
                what: format!("p = {p} not in [0, 1)"),
            });
        }
        self.node(x)?;
        if !self.training || p == 0.0 {
            return Ok(x);
        }
        let shape = self.nodes[x.0].value.shape();
        let n = shape.numel();
        let stream = self.pass.wrapping_mul(1 << 32) ^ self.nodes.len() as u64;
        let key = mix64(self.seed ^ mix64(stream));
        let keep = 1.0 / (1.0 - p);
        let mut buf = self.pool.take(n);
        let o = Arc::get_mut(&mut buf).expect("fresh from the pool");
        let xv = self.f32_of(x.0);
        self.rt
            .install(|| {
                o.par_chunks_mut(CHUNK).zip(xv.par_chunks(CHUNK)).enumerate().try_for_each(
                    |(c, (o, x))| {
                        with_scratch(x.len(), |m| {
                            dropout_mask(key, c * CHUNK, p, keep, m);
                            vector::mul(x, m, o)
                        })
                    },
                )
            })
            .op("dropout")?;
        let rg = self.rg(x.0);
        Ok(self.push_out(shape, buf, Op::Dropout { x: x.0, key, p }, rg))
    }
}

/// `dx += dy * mask`, the mask regenerated chunk by chunk.
pub(crate) fn dropout_backward(
    g: &mut Graph,
    x: usize,
    key: u64,
    p: f32,
    dy: &[f32],
) -> Result<()> {
    let keep = 1.0 / (1.0 - p);
    let dx = g.grad_buf(x);
    dx.par_chunks_mut(CHUNK).zip(dy.par_chunks(CHUNK)).enumerate().for_each(|(c, (dx, dy))| {
        with_scratch(dx.len(), |m| {
            dropout_mask(key, c * CHUNK, p, keep, m);
            dx.iter_mut().zip(dy.iter().zip(m.iter())).for_each(|(d, (g, m))| *d += g * m);
        })
    });
    Ok(())
}
