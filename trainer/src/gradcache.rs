//! Gradient caching: a contrastive loss over a large batch (thousands of
//! pairs, every one a negative for every other) in the memory of a small
//! one, with the same loss and gradients.
//!
//! The loss depends on the encoder only through the embeddings, so the
//! chain rule splits at them (`dL/dtheta = sum_r dL/de_r * de_r/dtheta`):
//!
//! 1. Embed every mini-batch of queries and documents with gradients off
//!    (no tape is kept) and cache the `[B, D]` and `[N, D]` embeddings.
//! 2. Build the loss on the cached embeddings as gradient-recording leaves
//!    ([`Graph::leaf`]), run backward, and read `dL/de` for every row.
//!    Parameters the loss itself owns (a learned temperature) get their
//!    gradient here.
//! 3. Embed each mini-batch again with the tape on and run backward from
//!    its embeddings seeded with its slice of `dL/de`
//!    ([`Graph::backward_with`]); parameter gradients accumulate across
//!    mini-batches.
//!
//! Peak memory is one mini-batch's activations plus the loss graph; the
//! price is a second forward pass. Dropout masks are keyed by the graph's
//! pass counter and node index, so step 3 replays each mini-batch at the
//! pass number step 1 used: the embeddings differentiated are exactly
//! the ones the loss saw. (They differ from the masks a single full-batch
//! graph would draw, so full-batch equality holds with dropout off.)
//!
//! The encoder enters as a closure `embed(graph, side, rows)` returning
//! the `[rows.len(), D]` embeddings of those examples, so this file knows
//! nothing of tokenizers or model types.

use std::ops::Range;

use edgecl_runtime::{Graph, Var};

use crate::error::{Result, TrainerError};

/// Which tower a mini-batch goes through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    Query,
    Doc,
}

/// What one cached step did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GradCacheStep {
    /// The loss value (as the full batch would give it).
    pub loss: f32,
    /// Mini-batches embedded per pass (queries plus documents).
    pub chunks: usize,
    /// Embedding width seen.
    pub dim: usize,
}

fn invalid(name: &'static str, reason: String) -> TrainerError {
    TrainerError::InvalidArgument { name, reason }
}

/// One mini-batch: its side, rows and the pass number of its first
/// embedding.
struct Chunk {
    side: Side,
    rows: Range<usize>,
    pass: u64,
}

/// Runs one gradient-cached step over `n_queries` queries and `n_docs`
/// documents in mini-batches of at most `chunk` rows, accumulating
/// parameter gradients into `g`'s parameters (zero them before, step the
/// optimizer after, as with a plain backward).
///
/// `loss(graph, q, d)` gets the cached `[n_queries, D]` and `[n_docs, D]`
/// embeddings and returns a scalar (e.g. [`crate::loss::info_nce`], with
/// memory-bank rows concatenated to `d` inside the closure).
pub fn grad_cache_step<E, L>(
    g: &mut Graph,
    n_queries: usize,
    n_docs: usize,
    chunk: usize,
    mut embed: E,
    mut loss: L,
) -> Result<GradCacheStep>
where
    E: FnMut(&mut Graph, Side, Range<usize>) -> Result<Var>,
    L: FnMut(&mut Graph, Var, Var) -> Result<Var>,
{
    if chunk == 0 {
        return Err(invalid("chunk", "mini-batch size must be at least 1".into()));
    }
    if n_queries == 0 || n_docs == 0 {
        return Err(invalid("n_queries/n_docs", format!("empty batch ({n_queries}, {n_docs})")));
    }
    if !g.is_grad_enabled() {
        return Err(invalid("graph", "gradient caching needs gradients enabled".into()));
    }

    // 1. Embed everything without a tape; remember each chunk's pass.
    let mut chunks = Vec::new();
    for (side, n) in [(Side::Query, n_queries), (Side::Doc, n_docs)] {
        for start in (0..n).step_by(chunk) {
            chunks.push(Chunk { side, rows: start..(start + chunk).min(n), pass: 0 });
        }
    }
    let mut cache_q = Vec::new();
    let mut cache_d = Vec::new();
    let mut dim = 0;
    g.set_grad_enabled(false);
    let first = embed_all(g, &mut chunks, &mut embed, &mut cache_q, &mut cache_d, &mut dim);
    g.set_grad_enabled(true);
    first?;

    // 2. The loss on cached embeddings; dL/de for every row.
    g.reset();
    let q = g.leaf(&[n_queries, dim], &cache_q)?;
    let d = g.leaf(&[n_docs, dim], &cache_d)?;
    let out = loss(g, q, d)?;
    let value = g.scalar(out)?;
    g.backward(out)?;
    // A leaf the loss never reached has gradient zero.
    let grad_q = g.grad(q).map_or_else(|| vec![0.0; cache_q.len()], <[f32]>::to_vec);
    let grad_d = g.grad(d).map_or_else(|| vec![0.0; cache_d.len()], <[f32]>::to_vec);
    let resume_pass = g.pass() + 1;

    // 3. Re-embed each chunk at its pass and push its gradient slice in.
    for c in &chunks {
        let grads = match c.side {
            Side::Query => &grad_q,
            Side::Doc => &grad_d,
        };
        let slice = &grads[c.rows.start * dim..c.rows.end * dim];
        if slice.iter().all(|&v| v == 0.0) {
            continue;
        }
        g.reset();
        g.set_pass(c.pass);
        let e = embed(g, c.side, c.rows.clone())?;
        g.backward_with(e, slice)?;
    }
    g.reset();
    g.set_pass(resume_pass.max(g.pass()));
    Ok(GradCacheStep { loss: value, chunks: chunks.len(), dim })
}

/// Step 1: every chunk embedded once, values appended to the caches.
fn embed_all<E>(
    g: &mut Graph,
    chunks: &mut [Chunk],
    embed: &mut E,
    cache_q: &mut Vec<f32>,
    cache_d: &mut Vec<f32>,
    dim: &mut usize,
) -> Result<()>
where
    E: FnMut(&mut Graph, Side, Range<usize>) -> Result<Var>,
{
    for c in chunks.iter_mut() {
        g.reset();
        c.pass = g.pass();
        let e = embed(g, c.side, c.rows.clone())?;
        let rows = c.rows.len();
        match *g.dims(e)? {
            [r, w] if r == rows && w > 0 && (*dim == 0 || w == *dim) => *dim = w,
            ref got => {
                return Err(invalid(
                    "embed",
                    format!(
                        "{:?} rows {:?} gave {got:?}, expected [{rows}, {}]",
                        c.side,
                        c.rows,
                        if *dim == 0 { "D".to_string() } else { dim.to_string() }
                    ),
                ))
            }
        }
        let values = g.value(e)?.as_f32()?;
        match c.side {
            Side::Query => cache_q.extend_from_slice(values),
            Side::Doc => cache_d.extend_from_slice(values),
        }
    }
    Ok(())
}
