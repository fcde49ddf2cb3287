//! A BM25 baseline: analyzer, in-memory inverted index, top-k search.
//!
//! It exists to give every learned model a lexical baseline measured by the same data
//! readers and metrics, and to mine hard negatives. It follows Lucene's `BM25Similarity`
//! as Anserini's BEIR regressions configure it ("flat" index, title and text together):
//!
//! ```text
//! score(q, d) = sum over query terms t:  qtf(t) * idf(t) * tf / (tf + k1 * (1 - b + b * dl / avgdl))
//! idf(t)      = ln(1 + (N - df + 0.5) / (df + 0.5))
//! ```
//!
//! with `k1 = 0.9`, `b = 0.4`, `tf` the term's count in the document, `dl` the document's
//! token count after analysis, `avgdl` the mean of `dl`, `N` the number of documents and
//! `df` the number of documents holding the term. Like Lucene since 8.0 there is no
//! `(k1 + 1)` factor in the numerator (it scales every score alike and changes no
//! ranking). A term repeated in the query counts once per occurrence (`qtf`), as in
//! Anserini's bag-of-words queries.
//!
//! Known differences from Lucene, kept on purpose: Lucene stores each document length in
//! one byte (a lossy float encoding), so its `dl` is rounded; here `dl` is exact. Scores
//! are accumulated in f32 in query-term order, as Lucene does, but Lucene's summation
//! order across clauses can differ, so near-ties may break differently.
//!
//! Analyzer ([`analyze`]): lowercase; split on every character that is not alphanumeric
//! (Unicode); drop Lucene's 33 English stop words; Porter-stem what remains ([`stem`]).
//! Lucene's `StandardTokenizer` applies the Unicode word-break rules instead (it keeps
//! `3.5` or `e.g` in one token) and Anserini also strips a possessive `'s`; both are left
//! out for a plain, predictable rule.
//!
//! The index lives in memory (postings `Vec<(doc, tf)>` per term); it can be built from a
//! stream of documents, but is not itself written to disk.

mod porter;

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};

use rayon::prelude::*;

use crate::data::beir::{Document, Query};
use crate::error::{Result, TrainerError};
use crate::eval::Run;

pub use porter::stem;

/// Lucene's default English stop words (`EnglishAnalyzer.ENGLISH_STOP_WORDS_SET`).
pub const LUCENE_ENGLISH_STOP_WORDS: [&str; 33] = [
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it",
    "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there", "these",
    "they", "this", "to", "was", "will", "with",
];

/// Whether `token` (lowercase) is one of [`LUCENE_ENGLISH_STOP_WORDS`].
pub fn is_stop_word(token: &str) -> bool {
    LUCENE_ENGLISH_STOP_WORDS.binary_search(&token).is_ok()
}

/// Splits `text` into index terms: lowercase, alphanumeric runs, stop words removed,
/// Porter-stemmed.
pub fn analyze(text: &str) -> Vec<String> {
    let mut terms = Vec::new();
    let mut token = String::new();
    let mut flush = |token: &mut String| {
        if !token.is_empty() {
            if !is_stop_word(token) {
                terms.push(stem(token));
            }
            token.clear();
        }
    };
    for c in text.chars() {
        if c.is_alphanumeric() {
            token.extend(c.to_lowercase());
        } else {
            flush(&mut token);
        }
    }
    flush(&mut token);
    terms
}

/// BM25's two free parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bm25Params {
    /// Term-frequency saturation.
    pub k1: f32,
    /// Length normalisation strength, in [0, 1].
    pub b: f32,
}

impl Default for Bm25Params {
    /// Anserini's BEIR setting: k1 = 0.9, b = 0.4.
    fn default() -> Self {
        Bm25Params { k1: 0.9, b: 0.4 }
    }
}

/// One search result: index of the document (in insertion order) and its score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// Position of the document in the order it was added.
    pub doc: u32,
    /// BM25 score.
    pub score: f32,
}

// Heap order: a better hit is greater; equal scores prefer the earlier document.
impl Eq for Hit {}
impl Ord for Hit {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score.total_cmp(&other.score).then_with(|| other.doc.cmp(&self.doc))
    }
}
impl PartialOrd for Hit {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// An in-memory BM25 index.
#[derive(Debug, Clone)]
pub struct Bm25Index {
    params: Bm25Params,
    doc_ids: Vec<String>,
    // Per document: k1 * (1 - b + b * dl / avgdl), the tf denominator's constant part.
    norms: Vec<f32>,
    terms: HashMap<String, u32>,
    // Per term: (doc, tf) in increasing doc order.
    postings: Vec<Vec<(u32, u32)>>,
}

impl Bm25Index {
    /// Indexes `(id, text)` pairs; documents are numbered in iteration order.
    pub fn build<I, S>(docs: I, params: Bm25Params) -> Result<Self>
    where
        I: IntoIterator<Item = (String, S)>,
        S: AsRef<str>,
    {
        if !(params.k1.is_finite() && params.k1 >= 0.0 && (0.0..=1.0).contains(&params.b)) {
            return Err(TrainerError::InvalidArgument {
                name: "params",
                reason: format!("need k1 >= 0 and 0 <= b <= 1, got {params:?}"),
            });
        }
        let mut doc_ids = Vec::new();
        let mut lengths = Vec::new();
        let mut terms: HashMap<String, u32> = HashMap::new();
        let mut postings: Vec<Vec<(u32, u32)>> = Vec::new();

        // Count each document's terms, then append one posting per distinct term.
        let mut counts: HashMap<u32, u32> = HashMap::new();
        for (id, text) in docs {
            let doc = u32::try_from(doc_ids.len()).map_err(|_| TrainerError::InvalidArgument {
                name: "docs",
                reason: "more than 2^32 - 1 documents".into(),
            })?;
            let tokens = analyze(text.as_ref());
            counts.clear();
            for t in tokens.iter() {
                let next = terms.len() as u32;
                let term = *terms.entry(t.clone()).or_insert(next);
                if term as usize == postings.len() {
                    postings.push(Vec::new());
                }
                *counts.entry(term).or_insert(0) += 1;
            }
            let mut doc_terms: Vec<(u32, u32)> = counts.iter().map(|(&t, &c)| (t, c)).collect();
            doc_terms.sort_unstable();
            for (term, tf) in doc_terms {
                postings[term as usize].push((doc, tf));
            }
            doc_ids.push(id);
            lengths.push(tokens.len());
        }

        // Length normalisation with the mean length over all documents.
        let n = lengths.len().max(1) as f64;
        let avgdl = lengths.iter().sum::<usize>() as f64 / n;
        let (k1, b) = (params.k1 as f64, params.b as f64);
        let norms = lengths
            .iter()
            .map(|&dl| {
                let rel = if avgdl > 0.0 { dl as f64 / avgdl } else { 0.0 };
                (k1 * (1.0 - b + b * rel)) as f32
            })
            .collect();
        Ok(Bm25Index { params, doc_ids, norms, terms, postings })
    }

    /// Indexes BEIR documents, title and text joined by a space.
    pub fn from_documents(docs: &[Document], params: Bm25Params) -> Result<Self> {
        Self::build(docs.iter().map(|d| (d.id.clone(), format!("{} {}", d.title, d.text))), params)
    }

    /// Number of documents.
    pub fn len(&self) -> usize {
        self.doc_ids.len()
    }

    /// Whether the index holds no document.
    pub fn is_empty(&self) -> bool {
        self.doc_ids.is_empty()
    }

    /// Number of distinct terms.
    pub fn num_terms(&self) -> usize {
        self.terms.len()
    }

    /// The parameters.
    pub fn params(&self) -> Bm25Params {
        self.params
    }

    /// The id of document `doc`.
    pub fn doc_id(&self, doc: u32) -> &str {
        &self.doc_ids[doc as usize]
    }

    /// Document frequency of an analyzed term (0 when unknown).
    pub fn df(&self, term: &str) -> usize {
        self.terms.get(term).map_or(0, |&t| self.postings[t as usize].len())
    }

    /// `ln(1 + (N - df + 0.5) / (df + 0.5))`.
    pub fn idf(&self, df: usize) -> f32 {
        let (n, df) = (self.len() as f64, df as f64);
        (1.0 + (n - df + 0.5) / (df + 0.5)).ln() as f32
    }

    /// The `k` best documents for `query`, best first (equal scores: earlier document
    /// first). Documents sharing no term with the query are never returned.
    pub fn search(&self, query: &str, k: usize) -> Vec<Hit> {
        if k == 0 || self.is_empty() {
            return Vec::new();
        }

        // Query terms with their counts, in first-occurrence order.
        let mut query_terms: Vec<(u32, f32)> = Vec::new();
        for t in analyze(query) {
            if let Some(&term) = self.terms.get(&t) {
                match query_terms.iter_mut().find(|(q, _)| *q == term) {
                    Some((_, count)) => *count += 1.0,
                    None => query_terms.push((term, 1.0)),
                }
            }
        }

        // Term-at-a-time accumulation into a dense score array.
        let mut scores = vec![0.0f32; self.len()];
        let mut touched = vec![false; self.len()];
        for &(term, qtf) in &query_terms {
            let list = &self.postings[term as usize];
            let weight = qtf * self.idf(list.len());
            for &(doc, tf) in list {
                let tf = tf as f32;
                scores[doc as usize] += weight * tf / (tf + self.norms[doc as usize]);
                touched[doc as usize] = true;
            }
        }

        // Top k with a min-heap of the k best so far.
        let mut heap: BinaryHeap<Reverse<Hit>> = BinaryHeap::with_capacity(k + 1);
        for (doc, (&score, _)) in
            scores.iter().zip(&touched).enumerate().filter(|(_, (_, &hit))| hit)
        {
            let hit = Hit { doc: doc as u32, score };
            if heap.len() < k {
                heap.push(Reverse(hit));
            } else if heap.peek().is_some_and(|worst| hit > worst.0) {
                heap.pop();
                heap.push(Reverse(hit));
            }
        }
        let mut hits: Vec<Hit> = heap.into_iter().map(|r| r.0).collect();
        hits.sort_by(|a, b| b.cmp(a));
        hits
    }

    /// Searches every query in parallel (rayon) and returns a run of the top `k` each.
    pub fn search_batch(&self, queries: &[Query], k: usize) -> Run {
        queries
            .par_iter()
            .map(|q| {
                let hits = self.search(&q.text, k);
                let results = hits
                    .into_iter()
                    .map(|h| (self.doc_id(h.doc).to_string(), f64::from(h.score)))
                    .collect();
                (q.id.clone(), results)
            })
            .collect()
    }
}
