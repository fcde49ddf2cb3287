//! The encoder's forward pass over a ragged batch, tape-free.
//!
//! N tokens of S sequences are stacked into `[N, H]` rows (sequence s owns
//! rows `offsets[s]..offsets[s+1]`). Per block, with post-norm (BERT):
//!
//! ```text
//! q, k, v = x Wq^T + bq, x Wk^T + bk, x Wv^T + bv           [N, H] each
//! per (s, head): P = softmax(q_s k_s^T / sqrt(D))          [L, L], D = H / heads
//!                ctx_s = P v_s                              [L, D]
//! x = LN(ctx Wo^T + bo + x)
//! x = LN(gelu(x W1^T + b1) W2^T + b2 + x)                  W1: [F, H], W2: [H, F]
//! ```
//!
//! and with pre-norm `x = x + f(LN(x))` for both sub-layers, then a final
//! layer norm. Embeddings are `LN(word[id] + position[p] + type[t])` in both
//! placements. Pooling (mean over a sequence's rows, or its first row), the
//! optional projection and `v / max(|v|, 1e-12)` follow.
//!
//! Row-wise steps (embedding lookup, residual + layer norm, GELU, pooling)
//! run in parallel over rows in fixed-size chunks; attention runs the
//! (sequence, head) pairs in parallel, each writing its `[L, D]` block of a
//! head-major buffer, gathered back into `[N, H]` rows afterwards.

use rayon::prelude::*;

use crate::encoder::{EncoderConfig, NormPlacement, Pooling};
use crate::error::KernelContext;
use crate::kernels::gemm::sgemm;
use crate::kernels::vector;
use crate::kernels::{MatMut, MatRef, ShapeError};

use super::linear::QuantBuf;
use super::{InferError, InferenceModel, Layer, Norm, Result, SeqRef};

/// Rows per rayon task in the row-wise steps.
const ROWS_PER_TASK: usize = 32;
/// The floor of the norm in the final L2 normalisation, as in
/// sentence-transformers' `Normalize`.
const NORM_EPS: f32 = 1e-12;

/// The kept tokens of a batch, stacked without padding.
pub(crate) struct Ragged {
    ids: Vec<u32>,
    types: Vec<u32>,
    positions: Vec<u32>,
    /// `offsets[s]..offsets[s + 1]` are the rows of sequence s.
    offsets: Vec<usize>,
}

impl Ragged {
    /// Stacks the positions whose mask is non-zero; `seqs` pairs each
    /// sequence with its index in the caller's input (for errors). Positions
    /// keep their index in the padded row.
    pub(crate) fn new<'a>(
        config: &EncoderConfig,
        seqs: impl Iterator<Item = (usize, &'a SeqRef<'a>)>,
    ) -> Result<Ragged> {
        let mut r = Ragged { ids: vec![], types: vec![], positions: vec![], offsets: vec![0] };
        let bad = |what: String| Err(InferError::Invalid { what });
        for (i, seq) in seqs {
            if seq.ids.len() != seq.mask.len()
                || seq.types.is_some_and(|t| t.len() != seq.ids.len())
            {
                return bad(format!("sequence {i}: ids, types and mask differ in length"));
            }
            for (p, (&id, &m)) in seq.ids.iter().zip(seq.mask).enumerate() {
                if m == 0 {
                    continue;
                }
                let ty = seq.types.map_or(0, |t| u32::from(t[p]));
                if id as usize >= config.vocab_size {
                    return bad(format!(
                        "sequence {i}: token id {id} at position {p} is past the vocabulary of {}",
                        config.vocab_size
                    ));
                }
                if ty as usize >= config.type_vocab_size {
                    return bad(format!(
                        "sequence {i}: token type {ty} at position {p} is past the {} types",
                        config.type_vocab_size
                    ));
                }
                if p >= config.max_position_embeddings {
                    return bad(format!(
                        "sequence {i}: position {p} is past the {} position embeddings",
                        config.max_position_embeddings
                    ));
                }
                r.ids.push(id);
                r.types.push(ty);
                r.positions.push(p as u32);
            }
            if r.ids.len() == *r.offsets.last().unwrap_or(&0) {
                return bad(format!("sequence {i} keeps no token (its mask is all zero)"));
            }
            r.offsets.push(r.ids.len());
        }
        Ok(r)
    }

    fn tokens(&self) -> usize {
        self.ids.len()
    }

    fn seqs(&self) -> usize {
        self.offsets.len() - 1
    }
}

/// Activation buffers, grown to the largest batch and reused.
#[derive(Default)]
pub(crate) struct Scratch {
    x: Vec<f32>,
    t: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    ctx: Vec<f32>,
    heads: Vec<f32>,
    inter: Vec<f32>,
    act: Vec<f32>,
    pooled: Vec<f32>,
    projected: Vec<f32>,
    quant: QuantBuf,
}

/// The first `n` elements of `v`, growing it when shorter.
fn grow(v: &mut Vec<f32>, n: usize) -> &mut [f32] {
    if v.len() < n {
        v.resize(n, 0.0);
    }
    &mut v[..n]
}

/// `dst = LN(src)` row by row.
fn layer_norm(src: &[f32], norm: &Norm, eps: f32, dst: &mut [f32]) -> Result<()> {
    let (g, b) = (norm.gamma.as_f32()?, norm.beta.as_f32()?);
    dst.par_chunks_exact_mut(g.len())
        .zip(src.par_chunks_exact(g.len()))
        .with_min_len(ROWS_PER_TASK)
        .try_for_each(|(d, s)| vector::layernorm(s, g, b, eps, d).map(|_| ()))
        .op("layer norm")?;
    Ok(())
}

/// `x = LN(t + x)` row by row (the post-norm residual); `t` is clobbered.
fn add_norm(t: &mut [f32], x: &mut [f32], norm: &Norm, eps: f32) -> Result<()> {
    let (g, b) = (norm.gamma.as_f32()?, norm.beta.as_f32()?);
    t.par_chunks_exact_mut(g.len())
        .zip(x.par_chunks_exact_mut(g.len()))
        .with_min_len(ROWS_PER_TASK)
        .try_for_each(|(t, x)| {
            vector::axpy(1.0, x, t)?;
            vector::layernorm(t, g, b, eps, x).map(|_| ())
        })
        .op("residual layer norm")?;
    Ok(())
}

/// `x += t` row by row (the pre-norm residual).
fn add(t: &[f32], x: &mut [f32], h: usize) -> Result<()> {
    x.par_chunks_exact_mut(h)
        .zip(t.par_chunks_exact(h))
        .with_min_len(ROWS_PER_TASK)
        .try_for_each(|(x, t)| vector::axpy(1.0, t, x))
        .op("residual")?;
    Ok(())
}

impl InferenceModel {
    /// Runs one ragged batch; returns its `[S, dim]` embeddings, which live
    /// in `s`.
    pub(crate) fn forward<'s>(&self, b: &Ragged, s: &'s mut Scratch) -> Result<&'s [f32]> {
        let c = &self.config;
        let w = &self.weights;
        let (n, h, f, eps) = (b.tokens(), c.hidden_size, c.intermediate_size, c.layer_norm_eps);
        let Scratch { x, t, q, k, v, ctx, heads, inter, act, pooled, projected, quant } = s;
        let (x, t, ctx) = (grow(x, n * h), grow(t, n * h), grow(ctx, n * h));
        let (inter, act) = (grow(inter, n * f), grow(act, n * f));
        let mut qkv = [grow(q, n * h), grow(k, n * h), grow(v, n * h)];
        let heads = grow(heads, n * h);

        // Embeddings: t = word[id] + position[p] + type[ty]; x = LN(t).
        let (word, pos, typ) = (w.word.as_f32()?, w.position.as_f32()?, w.token_type.as_f32()?);
        t.par_chunks_exact_mut(h)
            .enumerate()
            .with_min_len(ROWS_PER_TASK)
            .try_for_each(|(i, row)| {
                let at = |r: u32| r as usize * h..(r as usize + 1) * h;
                row.copy_from_slice(&word[at(b.ids[i])]);
                vector::axpy(1.0, &pos[at(b.positions[i])], row)?;
                vector::axpy(1.0, &typ[at(b.types[i])], row)
            })
            .op("embeddings")?;
        layer_norm(t, &w.emb_norm, eps, x)?;

        for layer in &w.layers {
            match c.norm {
                NormPlacement::Post => {
                    self.attention(layer, x, b, &mut qkv, heads, ctx, quant)?;
                    layer.attn_out.forward(ctx, n, t, quant)?;
                    add_norm(t, x, &layer.attn_norm, eps)?;
                    self.feed_forward(layer, x, inter, act, t, quant)?;
                    add_norm(t, x, &layer.ffn_norm, eps)?;
                }
                NormPlacement::Pre => {
                    layer_norm(x, &layer.attn_norm, eps, t)?;
                    self.attention(layer, t, b, &mut qkv, heads, ctx, quant)?;
                    layer.attn_out.forward(ctx, n, t, quant)?;
                    add(t, x, h)?;
                    layer_norm(x, &layer.ffn_norm, eps, ctx)?;
                    self.feed_forward(layer, ctx, inter, act, t, quant)?;
                    add(t, x, h)?;
                }
            }
        }
        let hidden: &[f32] = match &w.final_norm {
            Some(norm) => {
                layer_norm(x, norm, eps, t)?;
                t
            }
            None => x,
        };

        // Pooling: mean of each sequence's rows, or its first row.
        let seqs = b.seqs();
        let pooled = grow(pooled, seqs * h);
        pooled
            .par_chunks_exact_mut(h)
            .enumerate()
            .try_for_each(|(si, out)| {
                let rows = &hidden[b.offsets[si] * h..b.offsets[si + 1] * h];
                match c.pooling {
                    Pooling::Cls => out.copy_from_slice(&rows[..h]),
                    Pooling::Mean => {
                        out.fill(0.0);
                        let inv = 1.0 / (rows.len() / h) as f32;
                        for r in rows.chunks_exact(h) {
                            vector::axpy(inv, r, out)?;
                        }
                    }
                }
                Ok(())
            })
            .op("pooling")?;

        // Projection, then L2 normalisation.
        let out: &mut [f32] = match &w.projection {
            Some(p) => {
                let y = grow(projected, seqs * p.out_dim());
                p.forward(pooled, seqs, y, quant)?;
                y
            }
            None => pooled,
        };
        if c.normalize {
            out.par_chunks_exact_mut(self.dim()).for_each(|row| {
                let norm = vector::sum_sq(row).sqrt();
                vector::scale(1.0 / norm.max(NORM_EPS), row);
            });
        }
        Ok(out)
    }

    /// Multi-head self-attention of `input` into `ctx` (before the output
    /// projection), each query seeing only its own sequence's keys.
    #[allow(clippy::too_many_arguments)]
    fn attention(
        &self,
        layer: &Layer,
        input: &[f32],
        b: &Ragged,
        qkv: &mut [&mut [f32]; 3],
        heads: &mut [f32],
        ctx: &mut [f32],
        quant: &mut QuantBuf,
    ) -> Result<()> {
        let c = &self.config;
        let (n, h, nh, d) = (b.tokens(), c.hidden_size, c.num_heads, c.head_dim());
        let [q, k, v] = qkv;
        // One quantization of the input serves all three (same width and
        // precision by construction).
        layer.query.prepare(input, n, quant);
        layer.query.apply(input, n, q, quant)?;
        layer.key.apply(input, n, k, quant)?;
        layer.value.apply(input, n, v, quant)?;
        let (q, k, v): (&[f32], &[f32], &[f32]) = (q, k, v);

        // One task per (sequence, head), writing rows offsets[s].. of the
        // head's [N, D] block of `heads`.
        let mut tasks: Vec<(usize, usize, &mut [f32])> = Vec::with_capacity(nh * b.seqs());
        for (hi, block) in heads.chunks_exact_mut(n * d).enumerate() {
            let mut rest = block;
            for si in 0..b.seqs() {
                let len = b.offsets[si + 1] - b.offsets[si];
                let (mine, others) = rest.split_at_mut(len * d);
                tasks.push((si, hi, mine));
                rest = others;
            }
        }
        let scale = 1.0 / (d as f32).sqrt();
        tasks
            .into_par_iter()
            .try_for_each_init(Vec::new, |scores: &mut Vec<f32>, (si, hi, dst)| {
                let (o, len) = (b.offsets[si], b.offsets[si + 1] - b.offsets[si]);
                // Rows o..o+len, columns hi*d..(hi+1)*d of an [N, H] matrix.
                fn view(
                    m: &[f32],
                    start: usize,
                    len: usize,
                    d: usize,
                    h: usize,
                ) -> Result<MatRef<'_>, ShapeError> {
                    MatRef::new(&m[start..], len, d, h, 1)
                }
                let start = o * h + hi * d;
                let (qh, kh, vh) = (
                    view(q, start, len, d, h)?,
                    view(k, start, len, d, h)?,
                    view(v, start, len, d, h)?,
                );
                let p = grow(scores, len * len);
                sgemm(scale, qh, kh.t(), 0.0, MatMut::row_major(p, len, len)?)?;
                vector::softmax_rows(p, len)?;
                sgemm(
                    1.0,
                    MatRef::row_major(p, len, len)?,
                    vh,
                    0.0,
                    MatMut::row_major(dst, len, d)?,
                )
            })
            .op("attention")?;

        // Gather the heads back into [N, H] rows.
        let heads: &[f32] = heads;
        ctx.par_chunks_exact_mut(h).enumerate().with_min_len(ROWS_PER_TASK).for_each(|(i, row)| {
            for (hi, part) in row.chunks_exact_mut(d).enumerate() {
                part.copy_from_slice(&heads[hi * n * d + i * d..][..d]);
            }
        });
        Ok(())
    }

    /// `t = gelu(x W1^T + b1) W2^T + b2`.
    fn feed_forward(
        &self,
        layer: &Layer,
        x: &[f32],
        inter: &mut [f32],
        act: &mut [f32],
        t: &mut [f32],
        quant: &mut QuantBuf,
    ) -> Result<()> {
        let (n, f) = (x.len() / self.config.hidden_size, self.config.intermediate_size);
        layer.up.forward(x, n, inter, quant)?;
        act.par_chunks_mut(f * ROWS_PER_TASK)
            .zip(inter.par_chunks(f * ROWS_PER_TASK))
            .try_for_each(|(a, i)| vector::gelu(i, a))
            .op("gelu")?;
        layer.down.forward(act, n, t, quant)
    }
}
