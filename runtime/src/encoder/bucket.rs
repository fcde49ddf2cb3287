//! Length buckets: one batch of texts run as a few sub-batches of similar
//! length, so padding costs little.
//!
//! A [`TokenBatch`] pads every row to its longest, and the encoder's
//! matmuls, attention and norms run over the padding too. When lengths
//! vary (a batch of definitions from 4 to 60 tokens) most of that work is
//! wasted. [`plan_buckets`] sorts the rows by length and cuts the sorted
//! order into at most `max_groups` contiguous groups, choosing the cuts by
//! dynamic programming to minimise
//!
//! ```text
//! sum over groups g of  rows(g) * longest(g)   +   group_cost * groups
//! ```
//!
//! (padded positions processed, plus a fixed charge per group standing for
//! the per-call overhead and the smaller, less efficient matmuls of a small
//! group). [`Encoder::forward_bucketed`] runs each group through
//! [`Encoder::forward_with`], stacks the group embeddings and gathers them
//! back into the caller's row order with the embedding op, whose backward
//! scatters each row's gradient to the group it came from.
//!
//! Without dropout the result equals [`Encoder::forward`] on the padded
//! batch up to float rounding (padding is masked out of attention and
//! pooling, and every output row depends only on its own tokens). With
//! dropout both are valid draws, but not the same draw: the masks are keyed
//! by position in the tensors, which differ.

use crate::autodiff::{Graph, Var};
use crate::encoder::batch::TokenBatch;
use crate::encoder::model::Encoder;
use crate::error::{Error, Result};

/// The default per-group charge of [`plan_buckets`], in padded token
/// positions: one group more must save at least this many positions. A
/// group adds a few dozen op calls and runs smaller matmuls; the charge is
/// small beside the hundreds of positions a length-varied batch of 64 rows
/// wastes to padding, and its break-even point has not been tuned.
pub const DEFAULT_GROUP_COST: usize = 32;

/// One group of a bucketed batch: the rows it holds (indices into the
/// original batch, shortest first) and those rows as their own batch,
/// padded only to the group's longest row.
#[derive(Clone, Debug, PartialEq)]
pub struct Bucket {
    pub rows: Vec<usize>,
    pub batch: TokenBatch,
}

/// Positions a batch processes when padded whole, and when bucketed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BucketStats {
    pub padded: usize,
    pub bucketed: usize,
    pub groups: usize,
}

/// Cut `batch` into at most `max_groups` groups of rows of similar length
/// (see the module doc for the objective). Rows keep their tokens; each
/// group's sequence length is its longest row's. Ties in length keep the
/// original row order, so the plan is a pure function of the batch.
pub fn plan_buckets(
    batch: &TokenBatch,
    max_groups: usize,
    group_cost: usize,
) -> Result<Vec<Bucket>> {
    batch.validate()?;
    if max_groups == 0 {
        return Err(Error::InvalidArgument {
            op: "plan_buckets",
            what: "max_groups must be at least 1".into(),
        });
    }
    let n = batch.batch;
    let lens: Vec<usize> = (0..n).map(|r| batch.row_len(r).max(1)).collect();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&r| (lens[r], r));
    let sorted: Vec<usize> = order.iter().map(|&r| lens[r]).collect();

    // best[g][j]: least cost of the first j sorted rows in g groups, and
    // the start of the last group. Groups are contiguous in sorted order,
    // so a group (i, j] pads to sorted[j - 1].
    let groups = max_groups.min(n);
    let mut best = vec![vec![(usize::MAX, 0usize); n + 1]; groups + 1];
    best[0][0] = (0, 0);
    for g in 1..=groups {
        for j in 1..=n {
            let mut cell = (usize::MAX, 0);
            for (i, &(prev, _)) in best[g - 1].iter().enumerate().take(j).skip(g - 1) {
                if prev == usize::MAX {
                    continue;
                }
                let cost = prev + (j - i) * sorted[j - 1] + group_cost;
                if cost < cell.0 {
                    cell = (cost, i);
                }
            }
            best[g][j] = cell;
        }
    }
    let g_best = (1..=groups).min_by_key(|&g| (best[g][n].0, g)).unwrap_or(1);

    let mut cuts = Vec::with_capacity(g_best + 1);
    let (mut g, mut j) = (g_best, n);
    cuts.push(n);
    while g > 0 {
        j = best[g][j].1;
        cuts.push(j);
        g -= 1;
    }
    cuts.reverse();

    let mut out = Vec::with_capacity(g_best);
    for w in cuts.windows(2) {
        let rows: Vec<usize> = order[w[0]..w[1]].to_vec();
        out.push(Bucket { batch: gather_rows(batch, &rows), rows });
    }
    Ok(out)
}

/// Positions processed by `batch` padded whole and by `buckets`.
pub fn bucket_stats(batch: &TokenBatch, buckets: &[Bucket]) -> BucketStats {
    BucketStats {
        padded: batch.batch * batch.seq,
        bucketed: buckets.iter().map(|b| b.batch.batch * b.batch.seq).sum(),
        groups: buckets.len(),
    }
}

/// The rows `rows` of `batch`, padded to the longest of them.
fn gather_rows(batch: &TokenBatch, rows: &[usize]) -> TokenBatch {
    let seq = rows.iter().map(|&r| batch.row_len(r)).max().unwrap_or(0).max(1);
    let mut out = TokenBatch {
        ids: vec![0; rows.len() * seq],
        type_ids: vec![0; rows.len() * seq],
        mask: vec![0.0; rows.len() * seq],
        batch: rows.len(),
        seq,
    };
    for (k, &r) in rows.iter().enumerate() {
        let src = r * batch.seq..r * batch.seq + seq;
        let dst = k * seq..(k + 1) * seq;
        out.ids[dst.clone()].copy_from_slice(&batch.ids[src.clone()]);
        out.type_ids[dst.clone()].copy_from_slice(&batch.type_ids[src.clone()]);
        out.mask[dst].copy_from_slice(&batch.mask[src]);
    }
    out
}

impl Encoder {
    /// [`Encoder::forward`] over length buckets of `batch` (at most
    /// `max_groups` of them, cut as [`plan_buckets`] says with
    /// [`DEFAULT_GROUP_COST`]): embeddings `[B, embedding_dim]` in
    /// `batch`'s row order. Rows must be right-padded, as [`TokenBatch`]
    /// builds them.
    pub fn forward_bucketed(
        &self,
        g: &mut Graph,
        batch: &TokenBatch,
        max_groups: usize,
    ) -> Result<Var> {
        let plan = plan_buckets(batch, max_groups, DEFAULT_GROUP_COST)?;
        self.forward_planned(g, &plan)
    }

    /// The forward pass of each group of a plan from [`plan_buckets`],
    /// stacked and put back in the original row order: `[B,
    /// embedding_dim]`, `B` the rows over all groups.
    pub fn forward_planned(&self, g: &mut Graph, plan: &[Bucket]) -> Result<Var> {
        let total: usize = plan.iter().map(|b| b.rows.len()).sum();
        let mut seen = vec![false; total];
        for &r in plan.iter().flat_map(|b| &b.rows) {
            if r >= total || std::mem::replace(&mut seen[r], true) {
                return Err(Error::InvalidArgument {
                    op: "forward_planned",
                    what: format!("the plan's rows are not a permutation of 0..{total}"),
                });
            }
        }
        let p = self.bind(g, "")?;
        let mut parts = Vec::with_capacity(plan.len());
        let mut rows = Vec::with_capacity(total);
        for b in plan {
            parts.push(self.forward_with(g, &p, &b.batch)?);
            rows.extend_from_slice(&b.rows);
        }
        let stacked = if parts.len() == 1 { parts[0] } else { g.concat_rows(&parts)? };
        reorder(g, stacked, &rows)
    }
}

/// Rows of `y` are the original rows `rows[0], rows[1], ...`; return them
/// in original order (identity orders are returned as they are).
fn reorder(g: &mut Graph, y: Var, rows: &[usize]) -> Result<Var> {
    if rows.iter().enumerate().all(|(k, &r)| k == r) {
        return Ok(y);
    }
    let mut at = vec![0u32; rows.len()];
    for (k, &r) in rows.iter().enumerate() {
        at[r] = k as u32;
    }
    g.embedding(y, &at, &[rows.len()])
}
