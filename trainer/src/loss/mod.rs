//! Training losses, built as ordinary ops on a runtime [`Graph`] so the
//! tape differentiates them like any layer.
//!
//! - [`contrastive`]: InfoNCE over in-batch, hard and memory-bank
//!   negatives, with fixed or learned temperature, large-margin cosine,
//!   hardness weighting, false-negative masking and the symmetric
//!   direction; a grouped variant in which each query sees only its own
//!   hard negatives; and the guide-model mask that feeds it.
//! - [`distill`]: distillation from a teacher's scores (temperature-scaled
//!   KL, margin-MSE) or embeddings (MSE or cosine, with an optional learned
//!   projection when the widths differ).
//! - [`rerank`]: pointwise binary cross-entropy and listwise softmax
//!   cross-entropy over `[B, C]` cross-encoder scores.
//!
//! Every loss returns a scalar [`Var`] holding a mean over the batch;
//! [`weighted_sum`] mixes several. Teacher values come in as plain slices
//! and enter the graph as constants. Shapes and option values are checked
//! up front and refused with [`TrainerError::InvalidArgument`] naming the
//! argument, so a wrong batch never reaches an op's own shape error.
//!
//! Left out: losses that need a second forward pass inside the loss
//! (self-distillation with augmented views) are the training loop's job.

pub mod contrastive;
pub mod distill;
pub mod rerank;

pub use contrastive::{
    add_temperature_param, false_negative_mask, info_nce, info_nce_grouped, InfoNceOptions,
    Temperature, TEMPERATURE_PARAM,
};
pub use distill::{
    add_projection_param, embedding_distill, kl_distill, margin_mse, EmbeddingDistill,
    PROJECTION_PARAM,
};
pub use rerank::{bce_pointwise, listwise_softmax};

use edgecl_runtime::{Graph, Var};

use crate::error::{Result, TrainerError};

/// `sum_k w_k * loss_k`, for mixing a contrastive loss with distillation
/// terms. Every weight must be finite; at least one term is required.
pub fn weighted_sum(g: &mut Graph, terms: &[(f32, Var)]) -> Result<Var> {
    if terms.is_empty() {
        return Err(invalid("terms", "weighted_sum needs at least one term".into()));
    }
    let mut acc: Option<Var> = None;
    for (k, &(w, v)) in terms.iter().enumerate() {
        if !w.is_finite() {
            return Err(invalid("terms", format!("weight {k} is {w}")));
        }
        let t = g.scale(v, w)?;
        acc = Some(match acc {
            None => t,
            Some(a) => g.add(a, t)?,
        });
    }
    Ok(acc.expect("terms is not empty"))
}

/// The error for an argument out of its domain.
pub(crate) fn invalid(name: &'static str, reason: String) -> TrainerError {
    TrainerError::InvalidArgument { name, reason }
}

/// Dims of a 2-D variable, or an error naming the argument.
pub(crate) fn dims2(g: &Graph, v: Var, name: &'static str) -> Result<(usize, usize)> {
    match *g.dims(v)? {
        [r, c] if r > 0 && c > 0 => Ok((r, c)),
        ref d => Err(invalid(name, format!("expected a non-empty [rows, cols] tensor, got {d:?}"))),
    }
}

/// Checks that a host slice has `expected` finite values.
pub(crate) fn check_slice(name: &'static str, v: &[f32], expected: usize) -> Result<()> {
    if v.len() != expected {
        return Err(invalid(name, format!("expected {expected} values, got {}", v.len())));
    }
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(invalid(name, format!("value {i} is {}", v[i])));
    }
    Ok(())
}
