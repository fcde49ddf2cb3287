//! The run's data: training pairs and the dev retrieval set, from the
//! config's `[data]` table.
//!
//! Training pairs come from an examples file (JSONL/TSV, with optional hard
//! negatives) or from a BEIR folder, where every judged (query, document)
//! pair of the split with a positive grade becomes one example; a BEIR
//! document reads as `title + " " + text`, as BEIR's own dense baselines
//! embed it.
//!
//! The dev set is a BEIR folder and split, or, without one, a held-out
//! fraction of the training queries: all examples of a held-out query
//! leave training, and its positives become its judged documents in a
//! corpus of every distinct passage of the file (positives and negatives,
//! training ones included), so the held-out queries must find their
//! passages among everything the model has seen. Queries are held out by
//! text, so a query repeated across lines cannot leak into training.
//! Which queries go is a seeded shuffle, the same for the same seed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use super::config::DataConfig;
use super::eval::DevSet;
use crate::data::beir::{load_beir, Document};
use crate::data::examples::{load_examples, TrainingExample};
use crate::data::{ReadOptions, ReadSummary};
use crate::error::{Result, TrainerError};
use crate::rng::Rng;

/// Training examples, the dev set, and what reading them skipped.
pub struct RunData {
    pub train: Vec<TrainingExample>,
    pub dev: Option<DevSet>,
    /// The training BEIR folder's documents (as [`document_text`]), which
    /// re-mining searches; `None` for an examples file, whose own passages
    /// serve instead.
    pub corpus: Option<Vec<String>>,
    /// One line per file read: records, skipped and blank lines.
    pub notes: Vec<String>,
}

/// A BEIR document's text for embedding.
pub fn document_text(d: &Document) -> String {
    match (d.title.trim().is_empty(), d.text.trim().is_empty()) {
        (true, _) => d.text.clone(),
        (false, true) => d.title.clone(),
        (false, false) => format!("{} {}", d.title, d.text),
    }
}

fn note(what: &str, s: &ReadSummary) -> String {
    format!(
        "{what}: {} records, {} malformed lines skipped, {} blank lines",
        s.records, s.skipped, s.blank_lines
    )
}

/// Loads everything `cfg` names; `seed` picks held-out queries.
pub fn load(cfg: &DataConfig, seed: u64) -> Result<RunData> {
    let options = ReadOptions { skip_malformed: cfg.skip_malformed };
    let train_path = Path::new(&cfg.train);
    let mut notes = Vec::new();

    // Training examples: a file, or a BEIR folder's judged pairs.
    let mut corpus = None;
    let mut train = if train_path.is_dir() {
        let ds = load_beir(train_path, &cfg.train_split, options)?;
        notes.push(note(&format!("{} corpus", train_path.display()), &ds.corpus_summary));
        let qrels_name = format!("{} qrels/{}", train_path.display(), cfg.train_split);
        notes.push(note(&qrels_name, &ds.qrels_summary));
        let docs: HashMap<&str, &Document> = ds.corpus.iter().map(|d| (d.id.as_str(), d)).collect();
        let mut out = Vec::new();
        for q in &ds.queries {
            // Judged documents in id order, so the example order is fixed.
            let judged: BTreeMap<&String, &i32> = ds.qrels[&q.id].iter().collect();
            for (doc_id, &grade) in judged {
                let text = docs.get(doc_id.as_str()).map(|d| document_text(d));
                if let (true, Some(text)) = (grade > 0, text) {
                    if !text.trim().is_empty() {
                        out.push(TrainingExample {
                            query: q.text.clone(),
                            positive: text,
                            negatives: Vec::new(),
                            scores: None,
                        });
                    }
                }
            }
        }
        corpus = Some(ds.corpus.iter().map(document_text).collect());
        out
    } else {
        let loaded = load_examples(train_path, options)?;
        notes.push(note(&train_path.display().to_string(), &loaded.summary));
        loaded.data
    };
    if train.is_empty() {
        return Err(TrainerError::InvalidArgument {
            name: "data.train",
            reason: format!("{}: no training pairs", train_path.display()),
        });
    }

    // Dev set: a BEIR folder, or held-out training queries.
    let dev = if !cfg.dev.is_empty() {
        let dir = Path::new(&cfg.dev);
        let ds = load_beir(dir, &cfg.dev_split, options)?;
        notes.push(note(&format!("{} corpus", dir.display()), &ds.corpus_summary));
        let mut dev = DevSet {
            doc_ids: ds.corpus.iter().map(|d| d.id.clone()).collect(),
            doc_texts: ds.corpus.iter().map(document_text).collect(),
            query_ids: ds.queries.iter().map(|q| q.id.clone()).collect(),
            query_texts: ds.queries.iter().map(|q| q.text.clone()).collect(),
            qrels: ds.qrels,
        };
        dev.limit_queries(cfg.dev_max_queries);
        Some(dev)
    } else if cfg.dev_fraction > 0.0 {
        let (kept, mut dev) = hold_out(train, cfg.dev_fraction, seed)?;
        train = kept;
        dev.limit_queries(cfg.dev_max_queries);
        Some(dev)
    } else {
        None
    };
    if let Some(d) = &dev {
        if d.doc_ids.is_empty() || d.query_ids.is_empty() {
            return Err(TrainerError::InvalidArgument {
                name: "data.dev",
                reason: "the dev set has no documents or no judged queries".into(),
            });
        }
        notes.push(format!("dev: {} queries, {} documents", d.query_ids.len(), d.doc_ids.len()));
    }
    notes.push(format!("train: {} pairs", train.len()));
    Ok(RunData { train, dev, corpus, notes })
}

/// Splits off `fraction` of the distinct queries (at least one, and at
/// least one left) as a dev set over every passage of `examples`.
pub fn hold_out(
    examples: Vec<TrainingExample>,
    fraction: f32,
    seed: u64,
) -> Result<(Vec<TrainingExample>, DevSet)> {
    // Distinct queries in first-seen order, then a seeded shuffle.
    let mut seen = HashSet::new();
    let mut queries: Vec<&str> =
        examples.iter().map(|e| e.query.as_str()).filter(|q| seen.insert(*q)).collect();
    if queries.len() < 2 {
        return Err(TrainerError::InvalidArgument {
            name: "data.dev_fraction",
            reason: format!("{} distinct queries cannot be split", queries.len()),
        });
    }
    Rng::new(seed, 0xDE5).shuffle(&mut queries);
    let n_dev =
        ((queries.len() as f64 * fraction as f64).round() as usize).clamp(1, queries.len() - 1);
    let held: HashSet<String> = queries[..n_dev].iter().map(|q| q.to_string()).collect();

    // Corpus: every distinct passage, ids in first-seen order.
    let mut doc_index: HashMap<&str, usize> = HashMap::new();
    let mut doc_texts = Vec::new();
    for e in &examples {
        for t in std::iter::once(&e.positive).chain(&e.negatives) {
            doc_index.entry(t.as_str()).or_insert_with(|| {
                doc_texts.push(t.clone());
                doc_texts.len() - 1
            });
        }
    }
    let doc_ids: Vec<String> = (0..doc_texts.len()).map(|i| format!("d{i}")).collect();

    // Judgments of held-out queries: their positives, grade 1.
    let mut dev = DevSet { doc_ids, doc_texts, ..DevSet::default() };
    let mut query_id: HashMap<&str, String> = HashMap::new();
    for e in &examples {
        if !held.contains(&e.query) {
            continue;
        }
        let qid = query_id
            .entry(e.query.as_str())
            .or_insert_with(|| {
                let id = format!("q{}", dev.query_ids.len());
                dev.query_ids.push(id.clone());
                dev.query_texts.push(e.query.clone());
                id
            })
            .clone();
        let doc = &dev.doc_ids[doc_index[e.positive.as_str()]];
        dev.qrels.entry(qid).or_default().insert(doc.clone(), 1);
    }
    let train = examples.into_iter().filter(|e| !held.contains(&e.query)).collect();
    Ok((train, dev))
}
