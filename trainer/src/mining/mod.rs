//! Hard-negative mining: for each training query, passages a teacher ranks
//! high that are not known to be relevant.
//!
//! Static mining ([`mine`], [`mine_file`]) runs once before training:
//!
//! 1. the teacher ([`Teacher`]: BM25 or any [`Embedder`]) indexes the
//!    corpus and returns its top `window.end` passages per distinct query;
//! 2. for each example, the candidates at ranks `window` (0-based, over the
//!    teacher's raw ranking, positives included) are filtered: every known
//!    positive of the query (any passage whose text equals a positive of
//!    any example with the same query) is skipped, and so is any candidate
//!    scoring at or above `threshold = s+ - (1 - m) |s+|`, where `s+` is the
//!    teacher's score of the example's positive and `m` the
//!    `relative_margin` (for `s+ >= 0` this is `m * s+`: with `m = 0.95`,
//!    only candidates below 95% of the positive's score stay). Candidates
//!    that close to the positive are likely unlabelled positives;
//! 3. `k` survivors are kept, the first `k` ([`Sampling::Top`]) or `k` at
//!    random from the window ([`Sampling::RandomInWindow`], seeded per
//!    example, so results do not depend on threads).
//!
//! BM25 cannot score an arbitrary passage, only rank the corpus, so its
//! positive score is read from its own ranked list. A positive missing
//! from the top `window.end` scores at most the last listed candidate,
//! which puts every candidate at or above the threshold: such an example
//! gets no negatives when a margin is set, and is counted in
//! [`MiningReport::positive_unscored`]. A dense teacher embeds the
//! positive, so its score is always known.
//!
//! Dynamic re-mining with the model being trained is [`DynamicMiner`].
//!
//! Left out: cross-encoder re-ranking of the candidates (the teacher
//! scores of [`crate::teacher`] can be attached afterwards), and
//! de-duplication of near-identical passages that differ in a character.

mod cache;
mod dynamic;
mod teachers;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::ops::Range;
use std::time::{Duration, Instant};

pub use cache::{cache_key, mine_file, mined_paths, write_examples_atomic, MinedFile};
pub(crate) use cache::{write_atomic, Fnv128};
pub use dynamic::{DynamicMiner, MiningHandle};
pub use teachers::{Bm25Teacher, DenseSearch, DenseTeacher};

use crate::augment::Rng;
use crate::data::beir::Document;
use crate::data::examples::TrainingExample;
use crate::embedder::Embedder;
use crate::error::TrainerError;

/// Why mining (or teacher scoring) failed.
#[derive(Debug)]
pub enum MiningError {
    /// The corpus to mine from has no passage.
    EmptyCorpus,
    /// An embedder returned the wrong number of values (`what` names the batch).
    DimMismatch { what: String, expected: usize, found: usize },
    /// A score or embedding value is NaN or infinite (`field` names it).
    NonFinite { field: String },
    /// A mining parameter is out of range.
    InvalidParams { field: &'static str, reason: String },
    /// The vector search refused its input.
    Search(String),
    /// Reading data, writing results, or the embedder failed.
    Trainer(TrainerError),
    /// A background mining thread panicked.
    WorkerPanicked,
}

impl fmt::Display for MiningError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MiningError::EmptyCorpus => write!(f, "mining: the corpus has no passage"),
            MiningError::DimMismatch { what, expected, found } => {
                write!(f, "mining: {what}: expected {expected} values, found {found}")
            }
            MiningError::NonFinite { field } => write!(f, "mining: {field}: not a finite number"),
            MiningError::InvalidParams { field, reason } => {
                write!(f, "mining: parameter {field}: {reason}")
            }
            MiningError::Search(e) => write!(f, "mining: vector search: {e}"),
            MiningError::Trainer(e) => write!(f, "{e}"),
            MiningError::WorkerPanicked => write!(f, "mining: the background thread panicked"),
        }
    }
}

impl std::error::Error for MiningError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MiningError::Trainer(e) => Some(e),
            _ => None,
        }
    }
}

impl From<TrainerError> for MiningError {
    fn from(e: TrainerError) -> Self {
        MiningError::Trainer(e)
    }
}

/// Mining result type.
pub type Result<T, E = MiningError> = std::result::Result<T, E>;

/// The passages negatives are drawn from: ids and texts, plus an exact-text
/// lookup to recognise positives.
#[derive(Clone, Debug)]
pub struct Corpus {
    ids: Vec<String>,
    texts: Vec<String>,
    by_text: HashMap<String, Vec<u32>>,
}

// Texts are matched with whitespace runs collapsed.
pub(crate) fn normalize(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The text a BEIR document is indexed and embedded as: title, a space,
/// body (the BM25 baseline's join), trimmed.
pub fn document_text(d: &Document) -> String {
    format!("{} {}", d.title, d.text).trim().to_string()
}

impl Corpus {
    /// Passages from `(id, text)` pairs, numbered in order.
    pub fn new(passages: impl IntoIterator<Item = (String, String)>) -> Result<Self> {
        let (mut ids, mut texts, mut by_text) = (Vec::new(), Vec::new(), HashMap::new());
        for (id, text) in passages {
            let n = u32::try_from(ids.len()).map_err(|_| MiningError::InvalidParams {
                field: "corpus",
                reason: "more than 2^32 - 1 passages".into(),
            })?;
            by_text.entry(normalize(&text)).or_insert_with(Vec::new).push(n);
            ids.push(id);
            texts.push(text);
        }
        if ids.is_empty() {
            return Err(MiningError::EmptyCorpus);
        }
        Ok(Corpus { ids, texts, by_text })
    }

    /// BEIR documents, each as [`document_text`].
    pub fn from_documents(docs: &[Document]) -> Result<Self> {
        Corpus::new(docs.iter().map(|d| (d.id.clone(), document_text(d))))
    }

    /// The distinct positive and negative texts of training examples, for
    /// data sets that come without a separate corpus; ids are `p0, p1, ...`.
    pub fn from_examples(examples: &[TrainingExample]) -> Result<Self> {
        let mut seen = HashSet::new();
        let mut texts = Vec::new();
        for e in examples {
            for t in std::iter::once(&e.positive).chain(&e.negatives) {
                if seen.insert(normalize(t)) {
                    texts.push(t.clone());
                }
            }
        }
        Corpus::new(texts.into_iter().enumerate().map(|(i, t)| (format!("p{i}"), t)))
    }

    /// Number of passages.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Always false: an empty corpus is refused at construction.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The id of passage `i`.
    pub fn id(&self, i: u32) -> &str {
        &self.ids[i as usize]
    }

    /// The text of passage `i`.
    pub fn text(&self, i: u32) -> &str {
        &self.texts[i as usize]
    }

    /// All texts, in passage order.
    pub fn texts(&self) -> &[String] {
        &self.texts
    }

    /// All ids, in passage order.
    pub fn ids(&self) -> &[String] {
        &self.ids
    }

    /// The passages whose text equals `text` (whitespace collapsed).
    pub fn find_text(&self, text: &str) -> &[u32] {
        self.by_text.get(&normalize(text)).map_or(&[], Vec::as_slice)
    }
}

/// Training examples built from BEIR qrels: one per judged (query,
/// document) pair with a positive grade, the document as
/// [`document_text`], no negatives.
pub fn examples_from_beir(
    queries: &[crate::data::beir::Query],
    corpus: &[Document],
    qrels: &crate::eval::Qrels,
) -> Vec<TrainingExample> {
    let docs: HashMap<&str, &Document> = corpus.iter().map(|d| (d.id.as_str(), d)).collect();
    let mut out = Vec::new();
    for q in queries {
        let Some(judged) = qrels.get(&q.id) else { continue };
        let mut pos: Vec<&str> =
            judged.iter().filter(|(_, &g)| g > 0).map(|(d, _)| d.as_str()).collect();
        pos.sort_unstable();
        for d in pos.into_iter().filter_map(|d| docs.get(d)) {
            out.push(TrainingExample {
                query: q.text.clone(),
                positive: document_text(d),
                negatives: Vec::new(),
                scores: None,
            });
        }
    }
    out
}

/// How `k` negatives are picked from the filtered window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sampling {
    /// The `k` best-ranked survivors.
    Top,
    /// `k` survivors uniformly at random, returned in rank order.
    RandomInWindow {
        /// Seed of the per-example random streams.
        seed: u64,
    },
}

/// Static and dynamic mining parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct MiningParams {
    /// Teacher ranks (0-based, positives included) candidates come from.
    pub window: Range<usize>,
    /// Negatives per example.
    pub k: usize,
    /// Keep only candidates below `s+ - (1 - m)|s+|`; `None` keeps all.
    pub relative_margin: Option<f32>,
    /// Top or random within the window.
    pub sampling: Sampling,
    /// Whether to write the teacher's scores (`[positive, negatives...]`).
    pub keep_scores: bool,
}

impl Default for MiningParams {
    /// Ranks 10..100, 8 negatives at random, margin 0.95, with scores.
    fn default() -> Self {
        MiningParams {
            window: 10..100,
            k: 8,
            relative_margin: Some(0.95),
            sampling: Sampling::RandomInWindow { seed: 0x6d69_6e65 },
            keep_scores: true,
        }
    }
}

impl MiningParams {
    /// Checks the window, `k` and the margin.
    pub fn validate(&self) -> Result<()> {
        let bad = |field, reason: String| Err(MiningError::InvalidParams { field, reason });
        if self.window.start >= self.window.end {
            return bad("window", format!("empty rank window {:?}", self.window));
        }
        if self.k == 0 {
            return bad("k", "need at least one negative per example".into());
        }
        if let Some(m) = self.relative_margin {
            if !(m.is_finite() && m > 0.0 && m <= 1.0) {
                return bad("relative_margin", format!("{m} is not in (0, 1]"));
            }
        }
        Ok(())
    }

    // A stable text of every parameter, for cache keys.
    pub(crate) fn fingerprint(&self) -> String {
        format!(
            "window={}..{} k={} margin={:?} sampling={:?} scores={}",
            self.window.start,
            self.window.end,
            self.k,
            self.relative_margin.map(f32::to_bits),
            self.sampling,
            self.keep_scores
        )
    }
}

/// One retrieved passage.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    /// Passage number in the [`Corpus`].
    pub doc: u32,
    /// Teacher score, larger is better.
    pub score: f32,
}

/// Where mining spent its time.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MiningTimes {
    /// Embedding the corpus, queries and positives (zero for BM25).
    pub embed: Duration,
    /// Building the search structure (BM25 index, HNSW graph).
    pub index: Duration,
    /// Retrieving candidates, filtering and sampling.
    pub search: Duration,
}

impl MiningTimes {
    /// The three parts added up.
    pub fn total(&self) -> Duration {
        self.embed + self.index + self.search
    }
}

impl fmt::Display for MiningTimes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "embed {:.2}s, index {:.2}s, search {:.2}s",
            self.embed.as_secs_f64(),
            self.index.as_secs_f64(),
            self.search.as_secs_f64()
        )
    }
}

/// Counts from one mining run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MiningReport {
    /// Distinct query texts.
    pub queries: usize,
    /// Examples written.
    pub examples: usize,
    /// Negatives written in total.
    pub negatives: usize,
    /// Examples that got fewer than `k` negatives.
    pub short: usize,
    /// Window candidates skipped as known positives.
    pub skipped_positives: usize,
    /// Window candidates skipped by the margin.
    pub skipped_margin: usize,
    /// Examples whose positive the teacher could not score (BM25: not in
    /// its top `window.end`).
    pub positive_unscored: usize,
    /// Time split.
    pub times: MiningTimes,
}

impl fmt::Display for MiningReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} examples over {} queries: {} negatives ({} examples short), skipped {} \
             positives and {} by margin, {} positives unscored; {}",
            self.examples,
            self.queries,
            self.negatives,
            self.short,
            self.skipped_positives,
            self.skipped_margin,
            self.positive_unscored,
            self.times
        )
    }
}

/// Mined examples with the run's counts.
#[derive(Clone, Debug)]
pub struct Mined {
    /// The input examples with `negatives` (and `scores`) replaced.
    pub examples: Vec<TrainingExample>,
    /// Counts and times.
    pub report: MiningReport,
}

/// A model that ranks a corpus: what static mining retrieves with.
pub trait Teacher: Sync {
    /// A stable description (model, parameters) that enters cache keys.
    fn identity(&self) -> String;

    /// Prepares the corpus for search (embedding, index building), adding
    /// the time spent to `times`.
    fn index<'a>(
        &'a self,
        corpus: &'a Corpus,
        times: &mut MiningTimes,
    ) -> Result<Box<dyn TeacherIndex + 'a>>;
}

/// What a teacher returns for a batch of queries.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Retrieved {
    /// Per query, the top passages, best first.
    pub lists: Vec<Vec<Candidate>>,
    /// Per `(query, positive)` pair, the positive's score, `None` when the
    /// teacher cannot score text outside its ranking.
    pub positive_scores: Vec<Option<f32>>,
}

/// A teacher with its corpus prepared.
pub trait TeacherIndex: Sync {
    /// The top `k` passages for each query, best first, and the teacher's
    /// score of each `(query index, positive text)` pair.
    fn search(
        &self,
        queries: &[&str],
        k: usize,
        positives: &[(usize, &str)],
        times: &mut MiningTimes,
    ) -> Result<Retrieved>;
}

/// Mines negatives for `examples` from `corpus` with `teacher`.
pub fn mine(
    examples: &[TrainingExample],
    corpus: &Corpus,
    teacher: &dyn Teacher,
    params: &MiningParams,
) -> Result<Mined> {
    params.validate()?;
    if corpus.is_empty() {
        return Err(MiningError::EmptyCorpus);
    }
    let mut times = MiningTimes::default();
    let index = teacher.index(corpus, &mut times)?;
    mine_with_index(examples, corpus, index.as_ref(), params, times)
}

// Mining once the teacher's index exists (shared with dynamic mining).
pub(crate) fn mine_with_index(
    examples: &[TrainingExample],
    corpus: &Corpus,
    index: &dyn TeacherIndex,
    params: &MiningParams,
    mut times: MiningTimes,
) -> Result<Mined> {
    // Distinct queries in first-seen order, and every positive passage of each.
    let mut query_of: HashMap<&str, usize> = HashMap::new();
    let mut queries: Vec<&str> = Vec::new();
    let mut known: Vec<HashSet<u32>> = Vec::new();
    let mut example_query = Vec::with_capacity(examples.len());
    for e in examples {
        let q = *query_of.entry(e.query.as_str()).or_insert_with(|| {
            queries.push(&e.query);
            known.push(HashSet::new());
            queries.len() - 1
        });
        known[q].extend(corpus.find_text(&e.positive));
        example_query.push(q);
    }
    let positives: Vec<(usize, &str)> =
        examples.iter().zip(&example_query).map(|(e, &q)| (q, e.positive.as_str())).collect();

    // Retrieval (the index adds its own embed / search times).
    let Retrieved { lists, positive_scores: pos_scores } =
        index.search(&queries, params.window.end, &positives, &mut times)?;
    if lists.len() != queries.len() || pos_scores.len() != examples.len() {
        return Err(MiningError::DimMismatch {
            what: "teacher results per query / positive".into(),
            expected: queries.len() + examples.len(),
            found: lists.len() + pos_scores.len(),
        });
    }
    let started = Instant::now();
    for (q, list) in lists.iter().enumerate() {
        if let Some(r) = list.iter().position(|c| !c.score.is_finite()) {
            return Err(MiningError::NonFinite {
                field: format!("teacher score of rank {r} for query {q} ({:?})", queries[q]),
            });
        }
    }

    // Filter and sample per example.
    let mut report = MiningReport { queries: queries.len(), ..MiningReport::default() };
    let mut out = Vec::with_capacity(examples.len());
    for (i, e) in examples.iter().enumerate() {
        let q = example_query[i];
        let list = &lists[q];
        let own = corpus.find_text(&e.positive);
        let pos = match pos_scores[i] {
            Some(s) if !s.is_finite() => {
                return Err(MiningError::NonFinite {
                    field: format!("teacher score of the positive of example {i}"),
                })
            }
            Some(s) => Some(s),
            None => list.iter().find(|c| own.contains(&c.doc)).map(|c| c.score),
        };
        if pos.is_none() {
            report.positive_unscored += 1;
        }
        let threshold = match (params.relative_margin, pos) {
            (None, _) => f32::INFINITY,
            (Some(m), Some(s)) => s - (1.0 - m) * s.abs(),
            // The positive ranks below every listed candidate.
            (Some(_), None) => f32::NEG_INFINITY,
        };
        let window = &list[params.window.start.min(list.len())..];
        let mut kept: Vec<Candidate> = Vec::new();
        for c in window {
            if known[q].contains(&c.doc) {
                report.skipped_positives += 1;
            } else if c.score >= threshold {
                report.skipped_margin += 1;
            } else {
                kept.push(*c);
            }
        }
        let chosen: Vec<Candidate> = match params.sampling {
            Sampling::Top => kept.into_iter().take(params.k).collect(),
            Sampling::RandomInWindow { seed } => {
                let mut pick = Rng::new(seed).fork(i as u64).sample_indices(kept.len(), params.k);
                pick.sort_unstable();
                pick.into_iter().map(|j| kept[j]).collect()
            }
        };
        if chosen.len() < params.k {
            report.short += 1;
        }
        report.negatives += chosen.len();
        let scores = match (params.keep_scores, pos) {
            (true, Some(s)) => {
                Some(std::iter::once(s).chain(chosen.iter().map(|c| c.score)).collect())
            }
            _ => None,
        };
        out.push(TrainingExample {
            query: e.query.clone(),
            positive: e.positive.clone(),
            negatives: chosen.iter().map(|c| corpus.text(c.doc).to_string()).collect(),
            scores,
        });
    }
    report.examples = out.len();
    times.search += started.elapsed();
    report.times = times;
    Ok(Mined { examples: out, report })
}

/// Embeds `texts` in batches of `batch`, checking the count and finiteness
/// of what comes back; `what` names the texts in errors.
pub(crate) fn embed_checked<E: Embedder + ?Sized>(
    embedder: &E,
    texts: &[&str],
    batch: usize,
    what: &str,
) -> Result<Vec<f32>> {
    let dim = embedder.dim();
    if dim == 0 {
        return Err(MiningError::InvalidParams { field: "embedder", reason: "dimension 0".into() });
    }
    let mut out = Vec::with_capacity(texts.len() * dim);
    for (b, chunk) in texts.chunks(batch.max(1)).enumerate() {
        let rows = embedder.embed(chunk)?;
        if rows.len() != chunk.len() * dim {
            return Err(MiningError::DimMismatch {
                what: format!("{what} embeddings (batch {b}, {} texts of dim {dim})", chunk.len()),
                expected: chunk.len() * dim,
                found: rows.len(),
            });
        }
        if let Some(j) = rows.iter().position(|x| !x.is_finite()) {
            let row = b * batch.max(1) + j / dim;
            return Err(MiningError::NonFinite {
                field: format!("{what} embedding [{row}][{}]", j % dim),
            });
        }
        out.extend_from_slice(&rows);
    }
    Ok(out)
}
