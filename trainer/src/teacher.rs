//! Teacher scores for distillation: a model scores each query against its
//! positive and negatives once, and the scores are kept on disk.
//!
//! A [`Scorer`] maps a query and passages to one score each. Every
//! [`Embedder`] is one (bi-encoder: dot product of the query vector with
//! each passage vector). A cross-encoder, which reads query and passage
//! together and is the usual distillation teacher, is not implemented
//! here yet: the runtime has no cross-encoder model at this point, and
//! the trait is all it will need to implement.
//!
//! [`ScoreCache`] keeps scores in a JSONL file, one line per scored list:
//! `{"teacher": str, "query": qid, "docs": [did, ...], "scores": [f, ...]}`.
//! Lookups are per (teacher, query id, doc id), so a passage scored once
//! for a query is not scored again in another list. Ids are whatever the
//! caller names things by; [`text_id`] derives one from a text for data
//! that has none (training examples). The file is rewritten atomically on
//! [`ScoreCache::save`].
//!
//! [`score_examples`] fills the `scores` field of training examples,
//! keeping scores the input file already has when asked to.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::data::examples::TrainingExample;
use crate::data::json;
use crate::embedder::Embedder;
use crate::error::{Result as TrainerResult, TrainerError};
use crate::mining::{write_atomic, Fnv128, MiningError, Result};

/// Scores passages against a query; larger is more relevant.
pub trait Scorer: Sync {
    /// One score per passage of `docs`, in order.
    fn score(&self, query: &str, docs: &[&str]) -> TrainerResult<Vec<f32>>;
}

/// A bi-encoder scores by the dot product of query and passage vectors.
impl<E: Embedder + ?Sized> Scorer for E {
    fn score(&self, query: &str, docs: &[&str]) -> TrainerResult<Vec<f32>> {
        let dim = self.dim();
        let mut texts = Vec::with_capacity(docs.len() + 1);
        texts.push(query);
        texts.extend_from_slice(docs);
        let v = self.embed(&texts)?;
        if dim == 0 || v.len() != texts.len() * dim {
            return Err(TrainerError::InvalidArgument {
                name: "embedder",
                reason: format!(
                    "returned {} values for {} texts of dimension {dim}",
                    v.len(),
                    texts.len()
                ),
            });
        }
        let q = &v[..dim];
        Ok(v[dim..].chunks(dim).map(|d| q.iter().zip(d).map(|(a, b)| a * b).sum()).collect())
    }
}

/// A 32-hex-digit id of a text (whitespace runs collapsed first).
pub fn text_id(text: &str) -> String {
    let mut h = Fnv128::new();
    h.write(crate::mining::normalize(text).as_bytes());
    h.hex()
}

/// Teacher scores on disk, keyed by teacher, query id and doc id.
#[derive(Debug)]
pub struct ScoreCache {
    path: PathBuf,
    teacher: String,
    // (query id, doc id) -> score, for this teacher only.
    scores: HashMap<(String, String), f32>,
    // Lines as read or added, for rewriting the file.
    lines: Vec<serde_json::Value>,
    dirty: bool,
}

impl ScoreCache {
    /// Opens (or starts) the cache file at `path` for the teacher named
    /// `teacher`; entries of other teachers are kept but never returned.
    pub fn open(path: &Path, teacher: &str) -> Result<Self> {
        let mut cache = ScoreCache {
            path: path.to_path_buf(),
            teacher: teacher.to_string(),
            scores: HashMap::new(),
            lines: Vec::new(),
            dirty: false,
        };
        let text = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(cache),
            Err(e) => return Err(TrainerError::io(path, e).into()),
        };
        for (i, line) in text.split(|&b| b == b'\n').enumerate() {
            let line_no = i + 1;
            let line = std::str::from_utf8(line)
                .map_err(|_| TrainerError::NotUtf8 { path: path.into(), line: line_no })?;
            if line.trim().is_empty() {
                continue;
            }
            let obj = json::parse(path, line_no, line)?;
            let teacher = obj.text("teacher")?;
            let query = obj.text("query")?;
            let docs = obj.text_list("docs")?;
            let scores = obj.score_list("scores")?.unwrap_or_default();
            if scores.len() != docs.len() {
                return Err(TrainerError::ScoreCount {
                    path: path.into(),
                    line: line_no,
                    expected: docs.len(),
                    found: scores.len(),
                }
                .into());
            }
            if teacher == cache.teacher {
                for (d, s) in docs.iter().zip(&scores) {
                    cache.scores.insert((query.clone(), d.clone()), *s);
                }
            }
            cache.lines.push(serde_json::Value::Object(obj.obj));
        }
        Ok(cache)
    }

    /// The teacher this cache answers for.
    pub fn teacher(&self) -> &str {
        &self.teacher
    }

    /// Number of (query, doc) scores held for this teacher.
    pub fn len(&self) -> usize {
        self.scores.len()
    }

    /// Whether no score is held for this teacher.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cached score of `doc` for `query`.
    pub fn get(&self, query: &str, doc: &str) -> Option<f32> {
        self.scores.get(&(query.to_string(), doc.to_string())).copied()
    }

    /// Records the scores of `docs` for `query` (one line in the file).
    pub fn insert(&mut self, query: &str, docs: &[&str], scores: &[f32]) {
        for (d, s) in docs.iter().zip(scores) {
            self.scores.insert((query.to_string(), d.to_string()), *s);
        }
        let scores: Vec<f64> = scores.iter().map(|&s| f64::from(s)).collect();
        self.lines.push(json!({
            "teacher": self.teacher, "query": query, "docs": docs, "scores": scores
        }));
        self.dirty = true;
    }

    /// Rewrites the file (temporary file, fsync, rename) if anything was
    /// added since it was read.
    pub fn save(&mut self) -> Result<()> {
        if !self.dirty {
            return Ok(());
        }
        let lines = &self.lines;
        write_atomic(&self.path, |w| {
            for l in lines {
                serde_json::to_writer(&mut *w, l)?;
                w.write_all(b"\n")?;
            }
            Ok(())
        })?;
        self.dirty = false;
        Ok(())
    }
}

/// Scores `docs` (id, text) for the query `(query_id, query)`, asking the
/// scorer only for pairs the cache lacks, and records the new ones.
pub fn score_candidates(
    scorer: &dyn Scorer,
    cache: &mut ScoreCache,
    query_id: &str,
    query: &str,
    docs: &[(&str, &str)],
) -> Result<Vec<f32>> {
    let missing: Vec<usize> =
        (0..docs.len()).filter(|&i| cache.get(query_id, docs[i].0).is_none()).collect();
    if !missing.is_empty() {
        let texts: Vec<&str> = missing.iter().map(|&i| docs[i].1).collect();
        let scores = scorer.score(query, &texts)?;
        if scores.len() != texts.len() {
            return Err(MiningError::DimMismatch {
                what: format!("teacher scores for query {query_id:?}"),
                expected: texts.len(),
                found: scores.len(),
            });
        }
        if let Some(j) = scores.iter().position(|s| !s.is_finite()) {
            return Err(MiningError::NonFinite {
                field: format!("teacher score of doc {:?} for query {query_id:?}", texts[j]),
            });
        }
        let ids: Vec<&str> = missing.iter().map(|&i| docs[i].0).collect();
        cache.insert(query_id, &ids, &scores);
    }
    Ok(docs.iter().map(|d| cache.get(query_id, d.0).expect("every pair was just cached")).collect())
}

/// Counts from [`score_examples`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ScoreReport {
    /// Examples whose scores came from the input file.
    pub from_file: usize,
    /// Examples scored (from the cache, the teacher or both).
    pub scored: usize,
    /// Pairs the teacher was asked to score.
    pub teacher_pairs: usize,
    /// Pairs answered by the cache.
    pub cached_pairs: usize,
    /// Time spent, including the teacher's.
    pub time: Duration,
}

/// Fills `scores` (`[positive, negatives...]`) of every example, keeping
/// those the file already gave when `keep_file_scores`; texts are named by
/// [`text_id`]. Saves the cache at the end.
pub fn score_examples(
    examples: &mut [TrainingExample],
    scorer: &dyn Scorer,
    cache: &mut ScoreCache,
    keep_file_scores: bool,
) -> Result<ScoreReport> {
    let started = Instant::now();
    let mut report = ScoreReport::default();
    for e in examples.iter_mut() {
        if keep_file_scores && e.scores.is_some() {
            report.from_file += 1;
            continue;
        }
        let qid = text_id(&e.query);
        let texts: Vec<&str> = std::iter::once(e.positive.as_str())
            .chain(e.negatives.iter().map(String::as_str))
            .collect();
        let ids: Vec<String> = texts.iter().map(|t| text_id(t)).collect();
        let docs: Vec<(&str, &str)> = ids.iter().map(String::as_str).zip(texts).collect();
        let cached = docs.iter().filter(|d| cache.get(&qid, d.0).is_some()).count();
        report.cached_pairs += cached;
        report.teacher_pairs += docs.len() - cached;
        e.scores = Some(score_candidates(scorer, cache, &qid, &e.query, &docs)?);
        report.scored += 1;
    }
    cache.save()?;
    report.time = started.elapsed();
    Ok(report)
}
