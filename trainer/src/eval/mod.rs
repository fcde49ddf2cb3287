//! Retrieval metrics with trec_eval's (and so pytrec_eval's and BEIR's) definitions.
//!
//! A [`Run`] maps each query id to its retrieved `(doc id, score)` list in any order; a
//! [`Qrels`] maps each query id to its judged documents and their graded relevance.
//! Rankings are formed as trec_eval forms them: score descending, and among equal scores
//! doc id descending (byte-wise). Checked against pytrec_eval by
//! `tools/scripts/pytrec_eval_check.py`.
//!
//! Per query, with `rel(d)` the judged grade (0 when unjudged), `R` the number of judged
//! documents with `rel >= RELEVANCE_LEVEL` (1), and `d_1, d_2, ...` the ranking:
//! - `nDCG@k = DCG@k / IDCG@k`, `DCG@k = sum_{i<=k} g(d_i) / log2(i + 1)` with linear gain
//!   `g = rel` for `rel > 0` (trec_eval's `ndcg_cut`); `IDCG@k` is the same sum over all
//!   judged documents of the query sorted by gain, whether retrieved or not.
//! - `MRR@k = 1 / i` for the first relevant `d_i` with `i <= k`, else 0.
//! - `MAP@k = (sum over relevant d_i, i <= k, of P@i) / R` (trec_eval's `map_cut`).
//! - `Recall@k = |relevant in top k| / R`; `P@k = |relevant in top k| / k`, dividing by k
//!   even when fewer than k documents were retrieved (trec_eval's `P`).
//!
//! Queries are those of the qrels. A query with no relevant judgment (`R = 0`) is left out
//! of every mean and listed in [`Evaluation::skipped_no_relevant`]: each measure above is
//! undefined or trivially 0 for it, and pytrec_eval would report zeros that drag the mean
//! down. A judged query absent from the run counts as an empty ranking (all measures 0)
//! and is listed in [`Evaluation::missing_from_run`]; run queries without judgments are
//! ignored. Means are plain averages over the evaluated queries.

pub mod trec;

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use crate::error::{Result, TrainerError};

/// Judgments: query id -> doc id -> graded relevance.
pub type Qrels = HashMap<String, HashMap<String, i32>>;

/// Retrieval results: query id -> `(doc id, score)` in any order.
pub type Run = HashMap<String, Vec<(String, f64)>>;

/// The grade from which a judged document counts as relevant for binary measures.
pub const RELEVANCE_LEVEL: i32 = 1;

/// One measure at a cutoff `k`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Normalised discounted cumulative gain at k.
    Ndcg(usize),
    /// Reciprocal rank of the first relevant document within k.
    Mrr(usize),
    /// Average precision truncated at k.
    Map(usize),
    /// Fraction of the relevant documents retrieved within k.
    Recall(usize),
    /// Fraction of the top k that is relevant.
    Precision(usize),
}

impl Metric {
    /// The cutoff.
    pub fn k(self) -> usize {
        match self {
            Metric::Ndcg(k)
            | Metric::Mrr(k)
            | Metric::Map(k)
            | Metric::Recall(k)
            | Metric::Precision(k) => k,
        }
    }

    /// The name pytrec_eval gives the measure (`ndcg_cut_10`, `map_cut_10`, `recall_10`,
    /// `P_10`); MRR@k, which trec_eval lacks, is `recip_rank_cut_10`.
    pub fn trec_name(self) -> String {
        match self {
            Metric::Ndcg(k) => format!("ndcg_cut_{k}"),
            Metric::Mrr(k) => format!("recip_rank_cut_{k}"),
            Metric::Map(k) => format!("map_cut_{k}"),
            Metric::Recall(k) => format!("recall_{k}"),
            Metric::Precision(k) => format!("P_{k}"),
        }
    }

    /// The BEIR-style set: nDCG, MAP, recall and precision at 1, 3, 5, 10, 100, 1000, plus
    /// MRR@10 and MRR@100.
    pub fn beir_default() -> Vec<Metric> {
        let mut out = Vec::new();
        for k in [1, 3, 5, 10, 100, 1000] {
            out.extend([Metric::Ndcg(k), Metric::Map(k), Metric::Recall(k), Metric::Precision(k)]);
        }
        out.extend([Metric::Mrr(10), Metric::Mrr(100)]);
        out
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Metric::Ndcg(k) => write!(f, "nDCG@{k}"),
            Metric::Mrr(k) => write!(f, "MRR@{k}"),
            Metric::Map(k) => write!(f, "MAP@{k}"),
            Metric::Recall(k) => write!(f, "Recall@{k}"),
            Metric::Precision(k) => write!(f, "P@{k}"),
        }
    }
}

/// trec_eval's order: score descending, then doc id descending.
pub fn trec_order(a: &(String, f64), b: &(String, f64)) -> Ordering {
    b.1.total_cmp(&a.1).then_with(|| b.0.as_bytes().cmp(a.0.as_bytes()))
}

/// Ranks one query's results in trec_eval order, checking scores and duplicates.
pub fn rank<'a>(query: &str, results: &'a [(String, f64)]) -> Result<Vec<&'a str>> {
    let mut seen = HashSet::with_capacity(results.len());
    for (doc, score) in results {
        if !score.is_finite() {
            return Err(TrainerError::InvalidArgument {
                name: "run",
                reason: format!("query {query:?}, document {doc:?}: score {score} is not finite"),
            });
        }
        if !seen.insert(doc.as_str()) {
            return Err(TrainerError::DuplicateRunDoc { query: query.into(), doc: doc.clone() });
        }
    }
    let mut sorted: Vec<&(String, f64)> = results.iter().collect();
    sorted.sort_by(|a, b| trec_order(a, b));
    Ok(sorted.into_iter().map(|(d, _)| d.as_str()).collect())
}

/// One query's judgments, prepared once for all measures.
#[derive(Debug)]
pub struct Judged<'a> {
    grades: &'a HashMap<String, i32>,
    /// Number of judged documents with grade >= [`RELEVANCE_LEVEL`].
    pub num_relevant: usize,
    // Positive grades, descending: the ideal ranking's gains.
    ideal_gains: Vec<f64>,
}

impl<'a> Judged<'a> {
    /// Prepares the judgments of one query.
    pub fn new(grades: &'a HashMap<String, i32>) -> Self {
        let num_relevant = grades.values().filter(|&&g| g >= RELEVANCE_LEVEL).count();
        let mut ideal_gains: Vec<f64> =
            grades.values().filter(|&&g| g > 0).map(|&g| f64::from(g)).collect();
        ideal_gains.sort_by(|a, b| b.total_cmp(a));
        Judged { grades, num_relevant, ideal_gains }
    }

    fn grade(&self, doc: &str) -> i32 {
        self.grades.get(doc).copied().unwrap_or(0)
    }

    fn relevant(&self, doc: &str) -> bool {
        self.grade(doc) >= RELEVANCE_LEVEL
    }

    /// The value of `metric` for `ranking` (best first). `R = 0` gives 0 for every measure.
    pub fn score(&self, metric: Metric, ranking: &[&str]) -> f64 {
        let k = metric.k();
        let top = &ranking[..ranking.len().min(k)];
        let r = self.num_relevant as f64;
        if self.num_relevant == 0 {
            return 0.0;
        }
        match metric {
            Metric::Ndcg(_) => {
                // Rank i (1-based) is discounted by log2(i + 1); idx = i - 1.
                let discount = |idx: usize| ((idx + 2) as f64).log2();
                let dcg: f64 = top
                    .iter()
                    .enumerate()
                    .map(|(idx, d)| self.grade(d).max(0) as f64 / discount(idx))
                    .sum();
                let idcg: f64 = self
                    .ideal_gains
                    .iter()
                    .take(k)
                    .enumerate()
                    .map(|(idx, g)| g / discount(idx))
                    .sum();
                if idcg > 0.0 {
                    dcg / idcg
                } else {
                    0.0
                }
            }
            Metric::Mrr(_) => {
                top.iter().position(|d| self.relevant(d)).map_or(0.0, |idx| 1.0 / (idx + 1) as f64)
            }
            Metric::Map(_) => {
                let (mut hits, mut sum) = (0usize, 0.0);
                for (idx, d) in top.iter().enumerate() {
                    if self.relevant(d) {
                        hits += 1;
                        sum += hits as f64 / (idx + 1) as f64;
                    }
                }
                sum / r
            }
            Metric::Recall(_) => top.iter().filter(|d| self.relevant(d)).count() as f64 / r,
            Metric::Precision(_) => {
                top.iter().filter(|d| self.relevant(d)).count() as f64 / k as f64
            }
        }
    }
}

/// The result of [`evaluate`].
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// The measures, in the order asked for.
    pub metrics: Vec<Metric>,
    /// Per evaluated query, one value per metric.
    pub per_query: BTreeMap<String, Vec<f64>>,
    /// Mean over the evaluated queries, one value per metric (0 when none were evaluated).
    pub mean: Vec<f64>,
    /// Judged queries left out for having no relevant judgment.
    pub skipped_no_relevant: Vec<String>,
    /// Evaluated queries that the run did not contain (scored as empty rankings).
    pub missing_from_run: Vec<String>,
}

impl Evaluation {
    /// The mean of `metric`, if it was computed.
    pub fn mean_of(&self, metric: Metric) -> Option<f64> {
        self.metrics.iter().position(|&m| m == metric).map(|i| self.mean[i])
    }
}

/// Evaluates `run` against `qrels` on `metrics` (each cutoff must be at least 1).
pub fn evaluate(qrels: &Qrels, run: &Run, metrics: &[Metric]) -> Result<Evaluation> {
    if let Some(m) = metrics.iter().find(|m| m.k() == 0) {
        return Err(TrainerError::InvalidArgument {
            name: "metrics",
            reason: format!("{m}: the cutoff must be at least 1"),
        });
    }
    let mut per_query = BTreeMap::new();
    let (mut skipped_no_relevant, mut missing_from_run) = (Vec::new(), Vec::new());
    for (query, grades) in qrels {
        let judged = Judged::new(grades);
        if judged.num_relevant == 0 {
            skipped_no_relevant.push(query.clone());
            continue;
        }
        let ranking = match run.get(query) {
            Some(results) => rank(query, results)?,
            None => {
                missing_from_run.push(query.clone());
                Vec::new()
            }
        };
        let values = metrics.iter().map(|&m| judged.score(m, &ranking)).collect();
        per_query.insert(query.clone(), values);
    }
    skipped_no_relevant.sort();
    missing_from_run.sort();

    // Plain averages over evaluated queries.
    let n = per_query.len();
    let mut mean = vec![0.0; metrics.len()];
    for values in per_query.values() {
        for (acc, v) in mean.iter_mut().zip(values) {
            *acc += v;
        }
    }
    if n > 0 {
        mean.iter_mut().for_each(|m| *m /= n as f64);
    }
    Ok(Evaluation {
        metrics: metrics.to_vec(),
        per_query,
        mean,
        skipped_no_relevant,
        missing_from_run,
    })
}
