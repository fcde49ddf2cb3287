//! What the trainer asks of anything that turns text into vectors.
//!
//! Mining, teacher scoring, evaluation and index building all need "embed
//! these texts" and nothing more, whether the model is the one being
//! trained, a frozen teacher, or a test double. One small trait keeps those
//! parts independent of how a model runs.

use crate::error::Result;

/// Text in, one row-major `[texts.len(), dim()]` matrix of f32 out.
///
/// Implementations decide batching and threading internally; rows come back
/// in input order. Whether rows are L2-normalised is the model's property
/// ([`Embedder::normalized`]); callers that need cosine scores check it.
pub trait Embedder: Send + Sync {
    /// Length of each vector.
    fn dim(&self) -> usize;

    /// Whether every returned row has unit L2 norm.
    fn normalized(&self) -> bool;

    /// Embed `texts`, returning `texts.len() * dim()` values.
    fn embed(&self, texts: &[&str]) -> Result<Vec<f32>>;
}
