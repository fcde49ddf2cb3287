//! Dev evaluation during training: embed a small retrieval set, search it
//! exactly, score the ranking.
//!
//! The corpus and the queries go through any [`Embedder`] (the training
//! loop passes the no-tape inference model built from the current
//! parameters), in batches. Each query is scanned against every document
//! row with the fused dot-product top-k kernel (`kernels::search`), so the
//! numbers measure the model alone, never an approximate index. The top 100
//! become a [`Run`] scored by [`crate::eval`] with trec_eval's definitions:
//! nDCG@10, Recall@10, Recall@100 and MRR@10.
//!
//! Exact search of N documents costs N dot products per query; dev sets
//! here are thousands of documents, where that is milliseconds. Larger
//! corpora belong to the offline evaluation with a real index.

use serde::{Deserialize, Serialize};

use crate::embedder::Embedder;
use crate::error::{Result, TrainerError};
use crate::eval::{evaluate, Metric, Qrels, Run};
use crate::runtime::kernels::search;

/// Documents retrieved per query (the deepest cutoff scored).
pub const DEPTH: usize = 100;

/// A retrieval set small enough to embed in full at every evaluation.
#[derive(Clone, Debug, Default)]
pub struct DevSet {
    pub doc_ids: Vec<String>,
    pub doc_texts: Vec<String>,
    pub query_ids: Vec<String>,
    pub query_texts: Vec<String>,
    pub qrels: Qrels,
}

impl DevSet {
    /// Keeps the first `n` queries (by the stored order) and their
    /// judgments; `n = 0` keeps all.
    pub fn limit_queries(&mut self, n: usize) {
        if n == 0 || n >= self.query_ids.len() {
            return;
        }
        for id in self.query_ids.drain(n..) {
            self.qrels.remove(&id);
        }
        self.query_texts.truncate(n);
    }
}

/// Mean dev metrics of one evaluation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DevMetrics {
    pub ndcg_at_10: f64,
    pub recall_at_10: f64,
    pub recall_at_100: f64,
    pub mrr_at_10: f64,
    /// Queries evaluated (those with a relevant judgment).
    pub queries: usize,
    pub documents: usize,
    /// Seconds spent embedding and searching.
    pub seconds: f64,
}

/// Embeds `texts` in batches of `batch`, returning `texts.len() * dim`
/// values.
pub fn embed_all(model: &dyn Embedder, texts: &[String], batch: usize) -> Result<Vec<f32>> {
    let mut out = Vec::with_capacity(texts.len() * model.dim());
    for chunk in texts.chunks(batch.max(1)) {
        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
        let rows = model.embed(&refs)?;
        if rows.len() != refs.len() * model.dim() {
            return Err(TrainerError::InvalidArgument {
                name: "embedder",
                reason: format!(
                    "returned {} values for {} texts of dim {}",
                    rows.len(),
                    refs.len(),
                    model.dim()
                ),
            });
        }
        out.extend_from_slice(&rows);
    }
    Ok(out)
}

/// Embeds the dev set with `model`, searches exactly, and scores.
pub fn evaluate_dev(model: &dyn Embedder, dev: &DevSet, batch: usize) -> Result<DevMetrics> {
    let start = std::time::Instant::now();
    let dim = model.dim();
    let docs = embed_all(model, &dev.doc_texts, batch)?;
    let queries = embed_all(model, &dev.query_texts, batch)?;

    // Exact top-k by dot product, one query at a time.
    let mut run = Run::new();
    for (qi, qid) in dev.query_ids.iter().enumerate() {
        let q = &queries[qi * dim..(qi + 1) * dim];
        let hits = search::dot_f32_topk(q, &docs, DEPTH).map_err(|e| {
            TrainerError::InvalidArgument { name: "dev search", reason: e.to_string() }
        })?;
        let ranked =
            hits.iter().map(|h| (dev.doc_ids[h.id as usize].clone(), h.score as f64)).collect();
        run.insert(qid.clone(), ranked);
    }

    let metrics = [Metric::Ndcg(10), Metric::Recall(10), Metric::Recall(DEPTH), Metric::Mrr(10)];
    let e = evaluate(&dev.qrels, &run, &metrics)?;
    Ok(DevMetrics {
        ndcg_at_10: e.mean[0],
        recall_at_10: e.mean[1],
        recall_at_100: e.mean[2],
        mrr_at_10: e.mean[3],
        queries: e.per_query.len(),
        documents: dev.doc_ids.len(),
        seconds: start.elapsed().as_secs_f64(),
    })
}
