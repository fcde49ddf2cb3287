//! InfoNCE and its variants for dual-encoder training.
//!
//! With L2-normalised query rows `q_i` (`[B, D]`) and document rows `d_j`
//! (`[N, D]`, `N >= B`), row `i < B` of the documents is query `i`'s
//! positive and rows `B..N` are extra negatives every query sees (hard
//! negatives laid out by the caller, memory-bank rows). The logits are
//!
//! ```text
//! l_ij = s * (cos(q_i, d_j) - m [j = i]) + h * sg(cos(q_i, d_j)) [j != i]
//! loss = mean_i -log softmax(l_i)[i]
//! ```
//!
//! with `s = 1 / temperature`, `m` the large-margin cosine penalty on the
//! positive (0 gives plain InfoNCE), `h` the hardness weight and `sg` a
//! stop-gradient: adding `h * cos` to a negative's logit multiplies its
//! softmax weight by `e^(h cos)`, so harder negatives push harder, while
//! the gradient keeps the InfoNCE form. A masked negative (a suspected
//! false negative) gets logit `-1e9`, so its softmax weight is exactly 0;
//! the positive is never masked. The symmetric option adds the same loss
//! from documents to queries over the first `B` rows and averages the two.
//!
//! A learned temperature is a scalar parameter `t = ln s` (log-scale so
//! gradient steps are relative), clamped to `[ln(1/max), ln(1/min)]`
//! inside the graph: outside the range it gets no gradient, so the
//! optimizer cannot drive the scale to infinity.
//!
//! Constant terms (margin, hardness, mask) are summed on the host into one
//! `[B, N]` matrix and added with a single add, so the options together
//! cost one extra pass over the logits (two when a margin meets a learned
//! temperature: that margin must sit before the scale).

use edgecl_runtime::kernels::{self, gemm::sgemm, MatMut, MatRef};
use edgecl_runtime::{init, Graph, ParamId, ParamSet, Var};

use super::{check_slice, dims2, invalid};
use crate::error::Result;

/// Name of the learned log inverse temperature parameter.
pub const TEMPERATURE_PARAM: &str = "loss.log_inv_temperature";

/// The logit of an excluded candidate: far enough below any real logit
/// that `exp` underflows to exactly zero, small enough to stay finite.
const MASKED_LOGIT: f32 = -1e9;

/// How similarities become logits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Temperature {
    /// `logits = cos / t`.
    Fixed(f32),
    /// `logits = cos * exp(clamp(p, ln(1/max), ln(1/min)))` with `p` the
    /// parameter [`TEMPERATURE_PARAM`], added by [`add_temperature_param`]
    /// with `ln(1/init)`.
    Learned { init: f32, min: f32, max: f32 },
}

impl Default for Temperature {
    fn default() -> Self {
        Temperature::Fixed(0.05)
    }
}

/// Options of [`info_nce`] and [`info_nce_grouped`].
#[derive(Clone, Debug, PartialEq)]
pub struct InfoNceOptions {
    pub temperature: Temperature,
    /// Adds the document-to-query direction over the first `B` rows.
    pub symmetric: bool,
    /// Subtracted from the positive's cosine before scaling; 0 = plain.
    pub margin: f32,
    /// Adds `hardness * sg(cos)` to negative logits; 0 = off.
    pub hardness: f32,
    /// Row-major `[B, N]` (`[B, B + k]` for the grouped loss); `true`
    /// excludes that candidate. Entries on the positive are ignored.
    pub mask: Option<Vec<bool>>,
}

impl Default for InfoNceOptions {
    fn default() -> Self {
        InfoNceOptions {
            temperature: Temperature::default(),
            symmetric: false,
            margin: 0.0,
            hardness: 0.0,
            mask: None,
        }
    }
}

/// Registers the learned temperature parameter, shape `[1]`, value
/// `ln(1/init)`, out of weight decay.
pub fn add_temperature_param(params: &mut ParamSet, init: f32) -> Result<ParamId> {
    if !(init.is_finite() && init > 0.0) {
        return Err(invalid("init", format!("temperature {init} must be positive and finite")));
    }
    let value = init::constant(&[1], (1.0 / init).ln())?;
    Ok(params.add(TEMPERATURE_PARAM, value, false)?)
}

/// The factor that turns cosines into logits.
enum Scale {
    Const(f32),
    /// A one-element variable and its current value.
    Var(Var, f32),
}

impl Scale {
    fn value(&self) -> f32 {
        match *self {
            Scale::Const(s) | Scale::Var(_, s) => s,
        }
    }
    fn apply(&self, g: &mut Graph, x: Var) -> Result<Var> {
        Ok(match *self {
            Scale::Const(s) => g.scale(x, s)?,
            Scale::Var(v, _) => g.scale_by(x, v)?,
        })
    }
}

fn logit_scale(g: &mut Graph, t: &Temperature) -> Result<Scale> {
    match *t {
        Temperature::Fixed(t) if t.is_finite() && t > 0.0 => Ok(Scale::Const(1.0 / t)),
        Temperature::Fixed(t) => Err(invalid("temperature", format!("{t} must be positive"))),
        Temperature::Learned { min, max, .. } => {
            if !(min.is_finite() && max.is_finite() && min > 0.0 && min <= max) {
                return Err(invalid(
                    "temperature",
                    format!("learned range [{min}, {max}] must be positive and ordered"),
                ));
            }
            let p = g.param_named(TEMPERATURE_PARAM)?;
            if g.dims(p)?.iter().product::<usize>() != 1 {
                return Err(invalid(
                    "temperature",
                    format!("{TEMPERATURE_PARAM} must hold one value"),
                ));
            }
            let c = g.clamp(p, (1.0 / max).ln(), (1.0 / min).ln())?;
            let s = g.exp(c)?;
            let value = g.scalar(s)?;
            Ok(Scale::Var(s, value))
        }
    }
}

/// What a logit cell is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cell {
    Positive,
    Negative,
    Masked,
}

/// Logits from a similarity block `sim` (`[R, M]`): margin on positives,
/// the scale, hardness on negatives and the mask, as in the module doc.
fn logits_from_sim(
    g: &mut Graph,
    sim: Var,
    scale: &Scale,
    opts: &InfoNceOptions,
    cell: impl Fn(usize, usize) -> Cell,
) -> Result<Var> {
    let (r, m) = dims2(g, sim, "similarity")?;
    // The cosines are read on the host only for hardness weighting.
    let cos = if opts.hardness != 0.0 { g.value(sim)?.as_f32()?.to_vec() } else { Vec::new() };
    let mut sim = sim;

    // Margin: folded into the post-scale constant when the scale is fixed,
    // else a pre-scale constant (so its gradient reaches the scale).
    let margin_pre = opts.margin != 0.0 && matches!(scale, Scale::Var(..));
    if margin_pre {
        let mut c = vec![0.0f32; r * m];
        for i in 0..r {
            for j in 0..m {
                if cell(i, j) == Cell::Positive {
                    c[i * m + j] = -opts.margin;
                }
            }
        }
        let c = g.input_slice(&[r, m], &c)?;
        sim = g.add(sim, c)?;
    }
    let mut logits = scale.apply(g, sim)?;

    // Post-scale constant: fixed-scale margin, hardness, mask; skipped
    // when every entry would be zero (plain InfoNCE).
    let has_mask = opts.mask.as_ref().is_some_and(|mk| mk.iter().any(|&x| x));
    let fixed_margin = opts.margin != 0.0 && !margin_pre;
    if fixed_margin || opts.hardness != 0.0 || has_mask {
        let mut c = vec![0.0f32; r * m];
        for i in 0..r {
            for j in 0..m {
                c[i * m + j] = match cell(i, j) {
                    Cell::Positive if fixed_margin => -scale.value() * opts.margin,
                    Cell::Positive => 0.0,
                    Cell::Negative if opts.hardness != 0.0 => opts.hardness * cos[i * m + j],
                    Cell::Negative => 0.0,
                    Cell::Masked => MASKED_LOGIT,
                };
            }
        }
        let c = g.input_slice(&[r, m], &c)?;
        logits = g.add(logits, c)?;
    }
    Ok(logits)
}

fn check_options(opts: &InfoNceOptions, mask_len: usize) -> Result<()> {
    if !opts.margin.is_finite() {
        return Err(invalid("margin", format!("{} is not finite", opts.margin)));
    }
    if !opts.hardness.is_finite() {
        return Err(invalid("hardness", format!("{} is not finite", opts.hardness)));
    }
    if let Some(mask) = &opts.mask {
        if mask.len() != mask_len {
            return Err(invalid(
                "mask",
                format!("expected {mask_len} entries, got {}", mask.len()),
            ));
        }
    }
    Ok(())
}

/// Row-major mask lookup; `false` without a mask.
fn masked(mask: Option<&[bool]>, stride: usize, i: usize, j: usize) -> bool {
    mask.is_some_and(|m| m[i * stride + j])
}

fn targets(b: usize) -> Vec<u32> {
    (0..b as u32).collect()
}

/// InfoNCE of queries `q` (`[B, D]`) against documents `d` (`[N, D]`,
/// `N >= B`; row `i < B` is query `i`'s positive, rows `B..` negatives
/// shared by every query). Returns the mean loss over queries (and over
/// both directions when symmetric). Formula in the module doc.
pub fn info_nce(g: &mut Graph, q: Var, d: Var, opts: &InfoNceOptions) -> Result<Var> {
    let (b, dim) = dims2(g, q, "q")?;
    let (n, ddim) = dims2(g, d, "d")?;
    if ddim != dim || n < b {
        return Err(invalid(
            "d",
            format!("documents [{n}, {ddim}] must have >= {b} rows of width {dim}"),
        ));
    }
    check_options(opts, b * n)?;
    let mask = opts.mask.as_deref();
    let scale = logit_scale(g, &opts.temperature)?;

    // Queries to documents: [B, N].
    let sim = g.similarity(q, d)?;
    let cell = |i: usize, j: usize| match () {
        _ if i == j => Cell::Positive,
        _ if masked(mask, n, i, j) => Cell::Masked,
        _ => Cell::Negative,
    };
    let logits = logits_from_sim(g, sim, &scale, opts, cell)?;
    let forward = g.cross_entropy(logits, &targets(b))?;
    if !opts.symmetric {
        return Ok(forward);
    }

    // Documents to queries over the positives: [B, B], row j is document
    // j, column i query i; query i excluding document j excludes the pair
    // both ways.
    let pos = if n == b { d } else { g.narrow_rows(d, 0, b)? };
    let sim_t = g.similarity(pos, q)?;
    let cell_t = |j: usize, i: usize| match () {
        _ if i == j => Cell::Positive,
        _ if masked(mask, n, i, j) => Cell::Masked,
        _ => Cell::Negative,
    };
    let logits_t = logits_from_sim(g, sim_t, &scale, opts, cell_t)?;
    let backward = g.cross_entropy(logits_t, &targets(b))?;
    let both = g.add(forward, backward)?;
    Ok(g.scale(both, 0.5)?)
}

/// InfoNCE where query `i` sees every in-batch positive `pos` (`[B, D]`)
/// plus only its own `k` hard negatives, rows `i*k..(i+1)*k` of
/// `negs_per_query` (`[B*k, D]`). The logits are `[B, B + k]`: the
/// in-batch block, then the query's own negatives; a mask in the options
/// has that layout. The symmetric direction covers the in-batch block.
pub fn info_nce_grouped(
    g: &mut Graph,
    q: Var,
    pos: Var,
    negs_per_query: Var,
    k: usize,
    opts: &InfoNceOptions,
) -> Result<Var> {
    let (b, dim) = dims2(g, q, "q")?;
    let (pb, pdim) = dims2(g, pos, "pos")?;
    if (pb, pdim) != (b, dim) {
        return Err(invalid("pos", format!("expected [{b}, {dim}], got [{pb}, {pdim}]")));
    }
    if k == 0 {
        // Without per-query negatives this is plain in-batch InfoNCE.
        return info_nce(g, q, pos, opts);
    }
    let (nr, ndim) = dims2(g, negs_per_query, "negs_per_query")?;
    if (nr, ndim) != (b * k, dim) {
        return Err(invalid(
            "negs_per_query",
            format!("expected [{}, {dim}] ({b} queries x {k}), got [{nr}, {ndim}]", b * k),
        ));
    }
    let m = b + k;
    check_options(opts, b * m)?;
    let mask = opts.mask.as_deref();
    let scale = logit_scale(g, &opts.temperature)?;

    // In-batch block [B, B] and own negatives [B, k] (a batched matmul of
    // [B, 1, D] by [B, k, D]^T), side by side.
    let sim_in = g.similarity(q, pos)?;
    let q3 = g.reshape(q, &[b, 1, dim])?;
    let n3 = g.reshape(negs_per_query, &[b, k, dim])?;
    let own = g.matmul_t(q3, n3, false, true)?;
    let own = g.reshape(own, &[b, k])?;
    let sim = g.concat_cols(&[sim_in, own])?;
    let cell = |i: usize, j: usize| match () {
        _ if i == j => Cell::Positive,
        _ if masked(mask, m, i, j) => Cell::Masked,
        _ => Cell::Negative,
    };
    let logits = logits_from_sim(g, sim, &scale, opts, cell)?;
    let forward = g.cross_entropy(logits, &targets(b))?;
    if !opts.symmetric {
        return Ok(forward);
    }
    let sim_t = g.similarity(pos, q)?;
    let cell_t = |j: usize, i: usize| match () {
        _ if i == j => Cell::Positive,
        _ if masked(mask, m, i, j) => Cell::Masked,
        _ => Cell::Negative,
    };
    let logits_t = logits_from_sim(g, sim_t, &scale, opts, cell_t)?;
    let backward = g.cross_entropy(logits_t, &targets(b))?;
    let both = g.add(forward, backward)?;
    Ok(g.scale(both, 0.5)?)
}

/// A false-negative mask from a guide model (GIST-style): candidate `j`
/// of query `i` (`j != i`) is excluded when the guide scores it above the
/// guide's score of the positive minus `margin`:
/// `mask[i, j] = dot(gq_i, gd_j) > dot(gq_i, gd_i) - margin`.
///
/// `guide_q` is `[b, dim]`, `guide_d` `[n, dim]` (`n >= b`, row `i < b`
/// the positive), both row-major; the result is `[b, n]` for
/// [`InfoNceOptions::mask`]. Scores are dot products, i.e. cosines for
/// normalised guide embeddings.
pub fn false_negative_mask(
    guide_q: &[f32],
    guide_d: &[f32],
    b: usize,
    n: usize,
    dim: usize,
    margin: f32,
) -> Result<Vec<bool>> {
    if n < b {
        return Err(invalid("n", format!("{n} documents cannot hold {b} positives")));
    }
    if !margin.is_finite() {
        return Err(invalid("margin", format!("{margin} is not finite")));
    }
    check_slice("guide_q", guide_q, b * dim)?;
    check_slice("guide_d", guide_d, n * dim)?;

    // All guide scores at once, [b, n] = Q D^T, on the GEMM kernel (a
    // 4096 x 8192 batch at width 384 is 13 GFLOP).
    let mut scores = vec![0.0f32; b * n];
    let kernel = |e: kernels::ShapeError| invalid("guide_q/guide_d", e.to_string());
    let qm = MatRef::row_major(guide_q, b, dim).map_err(kernel)?;
    let dm = MatRef::row_major(guide_d, n, dim).map_err(kernel)?;
    let sm = MatMut::row_major(&mut scores, b, n).map_err(kernel)?;
    sgemm(1.0, qm, dm.t(), 0.0, sm).map_err(kernel)?;

    // Compare each row with its positive's score.
    let mut mask = vec![false; b * n];
    for i in 0..b {
        let row = &scores[i * n..(i + 1) * n];
        let threshold = row[i] - margin;
        for j in (0..n).filter(|&j| j != i) {
            mask[i * n + j] = row[j] > threshold;
        }
    }
    Ok(mask)
}
