//! Cross-encoder losses over a score matrix `[B, C]`: `B` queries, each
//! with `C` scored candidates.
//!
//! - [`bce_pointwise`]: every (query, candidate) score is a logit of
//!   relevance, `mean_ij BCE(sigmoid(s_ij), y_ij)` with labels in [0, 1].
//! - [`listwise_softmax`]: each row's softmax against the labels
//!   normalised to a distribution, `-mean_i sum_j p_ij log softmax(s_i)_j`
//!   with `p_ij = y_ij / sum_j y_ij`; with one label of 1 per row it is the
//!   usual cross-entropy over candidates.
//!
//! The pointwise form calibrates scores (usable as probabilities); the
//! listwise form only orders them, which is what reranking needs and is
//! usually the stronger objective.

use edgecl_runtime::{Graph, Var};

use super::{check_slice, dims2, invalid};
use crate::error::Result;

/// Mean binary cross-entropy of scores `[B, C]` (logits) against labels
/// `B * C` in [0, 1].
pub fn bce_pointwise(g: &mut Graph, scores: Var, labels: &[f32]) -> Result<Var> {
    let (b, c) = dims2(g, scores, "scores")?;
    check_slice("labels", labels, b * c)?;
    if let Some(i) = labels.iter().position(|y| !(0.0..=1.0).contains(y)) {
        return Err(invalid("labels", format!("label {i} is {}, outside [0, 1]", labels[i])));
    }
    let y = g.input_slice(&[b, c], labels)?;
    Ok(g.bce_with_logits(scores, y)?)
}

/// Listwise softmax cross-entropy of scores `[B, C]` against graded
/// labels `B * C` (non-negative, at least one positive per row).
pub fn listwise_softmax(g: &mut Graph, scores: Var, labels: &[f32]) -> Result<Var> {
    let (b, c) = dims2(g, scores, "scores")?;
    check_slice("labels", labels, b * c)?;
    let mut p = labels.to_vec();
    for (i, row) in p.chunks_mut(c).enumerate() {
        if row.iter().any(|&y| y < 0.0) {
            return Err(invalid("labels", format!("row {i} holds a negative label")));
        }
        let total: f32 = row.iter().sum();
        if total <= 0.0 {
            return Err(invalid("labels", format!("row {i} has no positive label")));
        }
        row.iter_mut().for_each(|y| *y /= total);
    }
    let target = g.input_slice(&[b, c], &p)?;
    let logp = g.log_softmax(scores)?;
    let weighted = g.mul(logp, target)?;
    let total = g.sum(weighted)?;
    Ok(g.scale(total, -1.0 / b as f32)?)
}
