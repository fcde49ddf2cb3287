//! Teacher scores for distillation: a model scores each query against its
//! positive and negatives once, and the scores are kept on disk.
//!
//! A [`Scorer`] maps a query and passages to one score each. Every
//! [`Embedder`] is one (bi-encoder: dot product of the query vector with
//! each passage vector), and so is [`CrossEncoderScorer`], the usual
//! distillation teacher, which reads query and passage together through
//! the runtime's [`CrossEncoder`] (raw logits, one per pair).
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
//!
//! A pair longer than the scorer's `max_len` is cut by its
//! [`PairTruncation`]: Hugging Face's longest-first rule by default (what
//! checkpoints trained elsewhere saw), or query-capped, passage-first, the
//! rule [`crate::cross_train`] trains with and records in the saved
//! `config.json` (`edgecl_max_query_tokens`) so [`CrossEncoderScorer::from_dir`]
//! reads pairs back exactly as training did.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::data::examples::TrainingExample;
use crate::data::json;
use crate::embedder::Embedder;
use crate::error::{Result as TrainerResult, TrainerError};
use crate::mining::{write_atomic, Fnv128, MiningError, Result};
use crate::runtime::encoder::{load_pretrained_cross, CrossEncoder, PretrainedCross, TokenBatch};
use crate::runtime::tokenizer::{Encoding, Scratch, Tokenizer};
use crate::runtime::{EncoderConfig, Graph, ParamSet, Runtime};

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

/// A cross-encoder as a teacher: one forward pass per batch of (query,
/// passage) pairs, in inference mode (no dropout, no gradients).
///
/// The graph that runs the passes is reused between calls and guarded by
/// a mutex, so concurrent `score` calls run one at a time; each pass is
/// itself parallel on the runtime's threads.
pub struct CrossEncoderScorer {
    model: CrossEncoder,
    tokenizer: Tokenizer,
    graph: Mutex<Graph>,
    /// Tokens per pair (`[CLS] query [SEP] passage [SEP]`), cut by
    /// `truncation`.
    pub max_len: usize,
    /// Which segment gives up tokens when a pair exceeds `max_len`.
    pub truncation: PairTruncation,
    /// Pairs per forward pass.
    pub batch: usize,
}

/// How a (query, passage) pair is cut to fit `max_len` tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PairTruncation {
    /// The longer segment gives up tokens first (Hugging Face's
    /// `longest_first`).
    LongestFirst,
    /// The query is cut to `max_query_tokens`, then the passage gives up
    /// tokens until the pair fits: the passage is truncated first, and a
    /// very long query cannot crowd it out.
    DocumentFirst { max_query_tokens: usize },
}

/// Key of [`PairTruncation::DocumentFirst`]'s query cap in a saved
/// `config.json` (absent: [`PairTruncation::LongestFirst`]).
pub const MAX_QUERY_TOKENS_KEY: &str = "edgecl_max_query_tokens";

/// Tokenizes (query, passage) pairs as `[CLS] q [SEP] p [SEP]` (type ids 0
/// then 1) cut to `max_len` tokens by `truncation`, padded to the longest
/// row.
pub fn pair_batch(
    tokenizer: &Tokenizer,
    pairs: &[(&str, &str)],
    max_len: usize,
    truncation: PairTruncation,
) -> TrainerResult<TokenBatch> {
    match truncation {
        PairTruncation::LongestFirst => {
            let (a, b): (Vec<&str>, Vec<&str>) = pairs.iter().copied().unzip();
            Ok(TokenBatch::from_pairs(tokenizer, &a, &b, max_len)?)
        }
        PairTruncation::DocumentFirst { max_query_tokens } => {
            let mut scratch = Scratch::default();
            let encoded = pairs
                .iter()
                .map(|&(q, d)| {
                    encode_document_first(tokenizer, q, d, max_len, max_query_tokens, &mut scratch)
                })
                .collect::<TrainerResult<Vec<_>>>()?;
            Ok(TokenBatch::from_encodings(&encoded)?)
        }
    }
}

/// One pair under [`PairTruncation::DocumentFirst`], unpadded.
pub fn encode_document_first(
    tokenizer: &Tokenizer,
    query: &str,
    doc: &str,
    max_len: usize,
    max_query_tokens: usize,
    scratch: &mut Scratch,
) -> TrainerResult<Encoding> {
    if max_len < 3 {
        return Err(TrainerError::InvalidArgument {
            name: "max_len",
            reason: format!("{max_len} tokens cannot hold [CLS] query [SEP] passage [SEP]"),
        });
    }
    let (mut q, mut d) = (Vec::new(), Vec::new());
    tokenizer.tokenize_into(query, scratch, &mut q)?;
    tokenizer.tokenize_into(doc, scratch, &mut d)?;
    let room = max_len - 3;
    q.truncate(max_query_tokens.min(room));
    d.truncate(room - q.len());

    let s = tokenizer.vocab().special();
    let mut ids = Vec::with_capacity(q.len() + d.len() + 3);
    ids.push(s.cls);
    ids.extend_from_slice(&q);
    ids.push(s.sep);
    let first = ids.len();
    ids.extend_from_slice(&d);
    ids.push(s.sep);
    let mut type_ids = vec![0u8; first];
    type_ids.resize(ids.len(), 1);
    let attention_mask = vec![1u8; ids.len()];
    Ok(Encoding { ids, type_ids, attention_mask })
}

impl CrossEncoderScorer {
    /// Wraps a loaded cross-encoder; pairs are cut to the config's
    /// `max_seq_len` longest-first, 32 per pass.
    pub fn new(pre: PretrainedCross, runtime: Runtime) -> TrainerResult<Self> {
        Self::from_parts(pre.config, pre.params, pre.tokenizer, runtime)
    }

    /// A scorer over a config, its parameters (`CrossEncoder::param_names`)
    /// and a tokenizer; settings as [`CrossEncoderScorer::new`].
    pub fn from_parts(
        config: EncoderConfig,
        params: ParamSet,
        tokenizer: Tokenizer,
        runtime: Runtime,
    ) -> TrainerResult<Self> {
        let model = CrossEncoder::new(config.clone())?;
        let mut graph = Graph::new(runtime, 0);
        graph.set_params(params);
        graph.set_training(false);
        graph.set_grad_enabled(false);
        Ok(CrossEncoderScorer {
            max_len: config.max_seq_len,
            truncation: PairTruncation::LongestFirst,
            model,
            tokenizer,
            graph: Mutex::new(graph),
            batch: 32,
        })
    }

    /// Loads a `BertForSequenceClassification` folder (see
    /// [`load_pretrained_cross`]) onto `runtime`. A folder without a
    /// classifier gets a freshly initialised one, which is no teacher: that
    /// case is refused. A `config.json` carrying
    /// [`MAX_QUERY_TOKENS_KEY`] (written by [`crate::cross_train`]) selects
    /// [`PairTruncation::DocumentFirst`].
    pub fn from_dir(dir: &Path, runtime: Runtime) -> TrainerResult<Self> {
        let pre = load_pretrained_cross(dir)?;
        if !pre.head_loaded {
            return Err(TrainerError::InvalidArgument {
                name: "dir",
                reason: format!(
                    "{}: no trained classifier (classifier.weight) in the checkpoint",
                    dir.display()
                ),
            });
        }
        let truncation = saved_truncation(dir)?;
        let mut scorer = Self::new(pre, runtime)?;
        scorer.truncation = truncation;
        Ok(scorer)
    }

    /// The model's config.
    pub fn config(&self) -> &EncoderConfig {
        self.model.config()
    }
}

/// The truncation recorded in `dir/config.json`: document-first when it
/// holds [`MAX_QUERY_TOKENS_KEY`], else longest-first.
pub fn saved_truncation(dir: &Path) -> TrainerResult<PairTruncation> {
    let path = dir.join("config.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(PairTruncation::LongestFirst)
        }
        Err(e) => return Err(TrainerError::io(&path, e)),
    };
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|source| TrainerError::Json { path: path.clone(), line: 1, source })?;
    match v.get(MAX_QUERY_TOKENS_KEY) {
        None | Some(serde_json::Value::Null) => Ok(PairTruncation::LongestFirst),
        Some(x) => match x.as_u64() {
            Some(n) => Ok(PairTruncation::DocumentFirst { max_query_tokens: n as usize }),
            None => Err(TrainerError::WrongType {
                path,
                line: 1,
                field: MAX_QUERY_TOKENS_KEY.into(),
                expected: "a non-negative integer",
            }),
        },
    }
}

impl Scorer for CrossEncoderScorer {
    fn score(&self, query: &str, docs: &[&str]) -> TrainerResult<Vec<f32>> {
        // A panic in another scoring call leaves the graph reset below.
        let mut g = self.graph.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut out = Vec::with_capacity(docs.len());
        for chunk in docs.chunks(self.batch.max(1)) {
            let pairs: Vec<(&str, &str)> = chunk.iter().map(|&d| (query, d)).collect();
            let batch = pair_batch(&self.tokenizer, &pairs, self.max_len, self.truncation)?;
            g.reset();
            let y = self.model.forward(&mut g, &batch)?;
            out.extend_from_slice(g.value(y)?.as_f32()?);
        }
        g.reset();
        Ok(out)
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
