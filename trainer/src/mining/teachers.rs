//! The two kinds of teacher static mining retrieves with: BM25 over the
//! corpus text, and any [`Embedder`] (dot product of its vectors), searched
//! exactly with the kernels' fused scan + top-k or approximately with an
//! HNSW graph for corpora too large to scan once per query.

use std::time::Instant;

use rayon::prelude::*;

use super::{
    embed_checked, Candidate, Corpus, MiningError, MiningTimes, Result, Retrieved, Teacher,
    TeacherIndex,
};
use crate::bm25::{Bm25Index, Bm25Params};
use crate::embedder::Embedder;
use crate::runtime::hnsw::{self, F32Dot, Hnsw, HnswConfig, SearchScratch};
use crate::runtime::kernels::search::dot_f32_topk;

/// BM25 (see [`crate::bm25`]) as a teacher.
#[derive(Clone, Copy, Debug, Default)]
pub struct Bm25Teacher {
    /// k1, b and the length rule.
    pub params: Bm25Params,
}

impl Teacher for Bm25Teacher {
    fn identity(&self) -> String {
        let p = self.params;
        format!("bm25 k1={} b={} length={:?}", p.k1, p.b, p.length)
    }

    fn index<'a>(
        &'a self,
        corpus: &'a Corpus,
        times: &mut MiningTimes,
    ) -> Result<Box<dyn TeacherIndex + 'a>> {
        let started = Instant::now();
        // Documents are named by their number, so hits map straight back.
        let docs = corpus.texts().iter().enumerate().map(|(i, t)| (i.to_string(), t.as_str()));
        let index = Bm25Index::build(docs, self.params)?;
        times.index += started.elapsed();
        Ok(Box::new(Bm25Searcher { index }))
    }
}

struct Bm25Searcher {
    index: Bm25Index,
}

impl TeacherIndex for Bm25Searcher {
    fn search(
        &self,
        queries: &[&str],
        k: usize,
        positives: &[(usize, &str)],
        times: &mut MiningTimes,
    ) -> Result<Retrieved> {
        let started = Instant::now();
        let lists = queries
            .par_iter()
            .map(|q| {
                let hits = self.index.search(q, k);
                hits.into_iter().map(|h| Candidate { doc: h.doc, score: h.score }).collect()
            })
            .collect();
        times.search += started.elapsed();
        // BM25 ranks the corpus but does not score an outside text.
        Ok(Retrieved { lists, positive_scores: vec![None; positives.len()] })
    }
}

/// How a dense teacher searches its corpus vectors.
#[derive(Clone, Debug)]
pub enum DenseSearch {
    /// Every query against every passage (exact; cost queries x corpus).
    Exact,
    /// An HNSW graph over the passages (approximate; for large corpora).
    Hnsw {
        /// Graph construction parameters.
        config: HnswConfig,
        /// Candidates kept while searching (raised to `k` when smaller).
        ef: usize,
    },
}

/// An [`Embedder`] as a teacher: score = dot product of the two vectors
/// (cosine when the embedder normalises).
pub struct DenseTeacher<'e, E: Embedder + ?Sized> {
    /// The model.
    pub embedder: &'e E,
    /// Its name, for cache keys (a path and checksum, a version tag, ...).
    pub name: String,
    /// Exact or HNSW search.
    pub search: DenseSearch,
    /// Texts per `embed` call.
    pub batch: usize,
}

impl<'e, E: Embedder + ?Sized> DenseTeacher<'e, E> {
    /// Exact search, batches of 64 texts.
    pub fn new(embedder: &'e E, name: impl Into<String>) -> Self {
        DenseTeacher { embedder, name: name.into(), search: DenseSearch::Exact, batch: 64 }
    }

    // Embeds the corpus and builds the search structure.
    pub(crate) fn prepare(
        &self,
        corpus: &Corpus,
        times: &mut MiningTimes,
    ) -> Result<DenseIndex<'e, E>> {
        let started = Instant::now();
        let texts: Vec<&str> = corpus.texts().iter().map(String::as_str).collect();
        let rows = embed_checked(self.embedder, &texts, self.batch, "corpus")?;
        times.embed += started.elapsed();

        let started = Instant::now();
        let graph = match &self.search {
            DenseSearch::Exact => None,
            DenseSearch::Hnsw { config, ef } => {
                let space = F32Dot::new(&rows, self.embedder.dim()).map_err(search_err)?;
                Some((hnsw::build(&space, config).map_err(search_err)?, *ef))
            }
        };
        times.index += started.elapsed();
        Ok(DenseIndex { embedder: self.embedder, rows, graph, batch: self.batch })
    }
}

impl<E: Embedder + ?Sized> Teacher for DenseTeacher<'_, E> {
    fn identity(&self) -> String {
        format!(
            "dense {} dim={} normalized={} search={:?}",
            self.name,
            self.embedder.dim(),
            self.embedder.normalized(),
            self.search
        )
    }

    fn index<'a>(
        &'a self,
        corpus: &'a Corpus,
        times: &mut MiningTimes,
    ) -> Result<Box<dyn TeacherIndex + 'a>> {
        Ok(Box::new(self.prepare(corpus, times)?))
    }
}

fn search_err(e: impl std::fmt::Display) -> MiningError {
    MiningError::Search(e.to_string())
}

/// Corpus vectors plus an optional graph.
pub(crate) struct DenseIndex<'e, E: Embedder + ?Sized> {
    embedder: &'e E,
    rows: Vec<f32>,
    graph: Option<(Hnsw, usize)>,
    batch: usize,
}

impl<E: Embedder + ?Sized> TeacherIndex for DenseIndex<'_, E> {
    fn search(
        &self,
        queries: &[&str],
        k: usize,
        positives: &[(usize, &str)],
        times: &mut MiningTimes,
    ) -> Result<Retrieved> {
        // Queries and positives are embedded together.
        let started = Instant::now();
        let dim = self.embedder.dim();
        let qv = embed_checked(self.embedder, queries, self.batch, "query")?;
        let ptexts: Vec<&str> = positives.iter().map(|p| p.1).collect();
        let pv = embed_checked(self.embedder, &ptexts, self.batch, "positive")?;
        times.embed += started.elapsed();

        let started = Instant::now();
        let lists: Result<Vec<Vec<Candidate>>> = match &self.graph {
            None => qv
                .par_chunks(dim)
                .map(|q| {
                    let hits = dot_f32_topk(q, &self.rows, k).map_err(search_err)?;
                    Ok(hits.into_iter().map(|h| Candidate { doc: h.id, score: h.score }).collect())
                })
                .collect(),
            Some((graph, ef)) => {
                let space = F32Dot::new(&self.rows, dim).map_err(search_err)?;
                let view = graph.view();
                qv.par_chunks(dim)
                    .map_init(SearchScratch::new, |scratch, q| {
                        let hits = view.search(&space, q, k, *ef, scratch).map_err(search_err)?;
                        // The space's distance is the negated dot product.
                        Ok(hits
                            .iter()
                            .map(|h| Candidate { doc: h.id, score: -h.distance })
                            .collect())
                    })
                    .collect()
            }
        };
        let scores = positives
            .iter()
            .enumerate()
            .map(|(i, &(q, _))| {
                let (a, b) = (&qv[q * dim..(q + 1) * dim], &pv[i * dim..(i + 1) * dim]);
                Some(a.iter().zip(b).map(|(x, y)| x * y).sum())
            })
            .collect();
        times.search += started.elapsed();
        Ok(Retrieved { lists: lists?, positive_scores: scores })
    }
}
