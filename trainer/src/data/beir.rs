//! BEIR test collections: `corpus.jsonl`, `queries.jsonl`, `qrels/<split>.tsv`.
//!
//! - corpus lines: `{"_id": str, "title": str, "text": str, ...}`; `title` may be absent,
//!   null or empty, `text` must be present and a string but may be empty. A document with
//!   neither title nor text is kept: real collections have such documents and judge them
//!   (Cranfield's `995` is relevant to query `125`), so dropping one would change the
//!   metrics. [`BeirDataset::empty_documents`] lists them.
//! - query lines: `{"_id": str, "text": str, ...}`, `text` non-empty.
//! - qrels: a header `query-id<TAB>corpus-id<TAB>score`, then one judgment per line with an
//!   integer score (graded relevance; 0 = judged not relevant).
//!
//! Ids are strings, compared byte for byte; a repeated `_id`, or a repeated (query, doc)
//! pair in qrels, is an error naming both lines. Unknown keys (`metadata`) are ignored.
//! [`load_beir`] also checks that every judged query and document exists, and keeps only
//! the queries judged in the split, in `queries.jsonl` order, as BEIR's loader does.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use super::{json, open_buffered, LineParser, Loaded, ReadOptions, ReadSummary, Records};
use crate::error::{Result, TrainerError};
use crate::eval::Qrels;

/// One corpus document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// The `_id`.
    pub id: String,
    /// The title, empty when the corpus gives none.
    pub title: String,
    /// The body text.
    pub text: String,
}

/// One query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The `_id`.
    pub id: String,
    /// The query text.
    pub text: String,
}

/// One relevance judgment, as read from a qrels line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgment {
    /// The query judged.
    pub query_id: String,
    /// The document judged.
    pub doc_id: String,
    /// Graded relevance (0 = not relevant).
    pub score: i32,
    /// The 1-based line it came from.
    pub line: usize,
}

// Remembers the first line of each id, to report duplicates.
#[derive(Debug, Default)]
struct SeenIds(HashMap<String, usize>);

impl SeenIds {
    fn check(&mut self, path: &Path, line: usize, field: &str, id: &str) -> Result<()> {
        if let Some(&first_line) = self.0.get(id) {
            return Err(TrainerError::DuplicateId {
                path: path.into(),
                line,
                field: field.into(),
                id: id.into(),
                first_line,
            });
        }
        self.0.insert(id.to_string(), line);
        Ok(())
    }
}

/// Parses `corpus.jsonl` lines.
#[derive(Debug, Default)]
pub struct CorpusParser {
    seen: SeenIds,
}

impl LineParser for CorpusParser {
    type Item = Document;

    fn parse(&mut self, path: &Path, line: usize, text: &str) -> Result<Option<Document>> {
        let obj = json::parse(path, line, text)?;
        let id = obj.text("_id")?;
        let title = obj.optional_text("title")?;
        let body = obj.text_allow_empty("text")?;
        self.seen.check(path, line, "_id", &id)?;
        Ok(Some(Document { id, title, text: body }))
    }
}

/// Parses `queries.jsonl` lines.
#[derive(Debug, Default)]
pub struct QueryParser {
    seen: SeenIds,
}

impl LineParser for QueryParser {
    type Item = Query;

    fn parse(&mut self, path: &Path, line: usize, text: &str) -> Result<Option<Query>> {
        let obj = json::parse(path, line, text)?;
        let id = obj.text("_id")?;
        let text = obj.text("text")?;
        self.seen.check(path, line, "_id", &id)?;
        Ok(Some(Query { id, text }))
    }
}

/// The header a qrels file must start with.
pub const QRELS_HEADER: &str = "query-id\tcorpus-id\tscore";

/// Parses qrels lines (header first).
#[derive(Debug, Default)]
pub struct QrelsParser {
    header_seen: bool,
    seen: SeenIds,
}

impl LineParser for QrelsParser {
    type Item = Judgment;

    fn parse(&mut self, path: &Path, line: usize, text: &str) -> Result<Option<Judgment>> {
        // The first non-blank line is the header.
        if !self.header_seen {
            if text.trim_end() != QRELS_HEADER {
                return Err(TrainerError::BadHeader {
                    path: path.into(),
                    line,
                    expected: QRELS_HEADER,
                    found: text.into(),
                });
            }
            self.header_seen = true;
            return Ok(None);
        }
        let cols: Vec<&str> = text.split('\t').collect();
        if cols.len() != 3 {
            return Err(TrainerError::ColumnCount {
                path: path.into(),
                line,
                expected: "3",
                found: cols.len(),
            });
        }
        for (col, name) in cols.iter().zip(["query-id", "corpus-id", "score"]) {
            if col.trim().is_empty() {
                return Err(TrainerError::EmptyText {
                    path: path.into(),
                    line,
                    field: name.into(),
                });
            }
        }
        let score = cols[2].trim().parse::<i32>().map_err(|_| TrainerError::BadNumber {
            path: path.into(),
            line,
            field: "score".into(),
            value: cols[2].into(),
            expected: "an integer",
        })?;
        let (query_id, doc_id) = (cols[0].to_string(), cols[1].to_string());
        self.seen.check(path, line, "query-id+corpus-id", &format!("{query_id}\t{doc_id}"))?;
        Ok(Some(Judgment { query_id, doc_id, score, line }))
    }
}

type FileRecords<P> = Records<BufReader<File>, P>;

/// Streams the documents of a `corpus.jsonl`.
pub fn open_corpus(path: &Path, options: ReadOptions) -> Result<FileRecords<CorpusParser>> {
    Ok(Records::new(open_buffered(path)?, path, CorpusParser::default(), options))
}

/// Streams the queries of a `queries.jsonl`.
pub fn open_queries(path: &Path, options: ReadOptions) -> Result<FileRecords<QueryParser>> {
    Ok(Records::new(open_buffered(path)?, path, QueryParser::default(), options))
}

/// Streams the judgments of a qrels TSV.
pub fn open_qrels(path: &Path, options: ReadOptions) -> Result<FileRecords<QrelsParser>> {
    Ok(Records::new(open_buffered(path)?, path, QrelsParser::default(), options))
}

/// Streams documents from any reader; `name` stands for the source in errors.
pub fn read_corpus<R: BufRead>(
    reader: R,
    name: &Path,
    options: ReadOptions,
) -> Records<R, CorpusParser> {
    Records::new(reader, name, CorpusParser::default(), options)
}

/// Loads a qrels file into `query -> doc -> score`.
pub fn load_qrels(path: &Path, options: ReadOptions) -> Result<Loaded<Qrels>> {
    let mut records = open_qrels(path, options)?;
    let mut qrels = Qrels::new();
    for j in &mut records {
        let j = j?;
        qrels.entry(j.query_id).or_default().insert(j.doc_id, j.score);
    }
    Ok(Loaded { data: qrels, summary: records.into_summary() })
}

/// A BEIR collection loaded for one split.
#[derive(Debug)]
pub struct BeirDataset {
    /// Every document, in file order.
    pub corpus: Vec<Document>,
    /// The queries judged in the split, in file order.
    pub queries: Vec<Query>,
    /// The split's judgments.
    pub qrels: Qrels,
    /// Ids of documents with neither title nor text (kept, never retrieved by text).
    pub empty_documents: Vec<String>,
    /// Reading `corpus.jsonl`.
    pub corpus_summary: ReadSummary,
    /// Reading `queries.jsonl` (queries left out for having no judgment are not counted
    /// as skipped: they are well-formed, just outside the split).
    pub queries_summary: ReadSummary,
    /// Reading the qrels file, including judgments skipped for naming unknown ids.
    pub qrels_summary: ReadSummary,
}

/// The three paths of a BEIR folder for `split`.
pub fn beir_paths(dir: &Path, split: &str) -> (PathBuf, PathBuf, PathBuf) {
    (
        dir.join("corpus.jsonl"),
        dir.join("queries.jsonl"),
        dir.join("qrels").join(format!("{split}.tsv")),
    )
}

/// Loads the BEIR collection in `dir` for `split` (e.g. `"test"`).
///
/// A judgment naming a query or document absent from the collection is an
/// [`TrainerError::UnknownId`] (skipped and counted under `skip_malformed`).
pub fn load_beir(dir: &Path, split: &str, options: ReadOptions) -> Result<BeirDataset> {
    let (corpus_path, queries_path, qrels_path) = beir_paths(dir, split);
    let corpus = open_corpus(&corpus_path, options)?.collect_loaded()?;
    let queries = open_queries(&queries_path, options)?.collect_loaded()?;

    // Judgments, checked against the ids just read.
    let doc_ids: HashMap<&str, ()> = corpus.data.iter().map(|d| (d.id.as_str(), ())).collect();
    let query_ids: HashMap<&str, ()> = queries.data.iter().map(|q| (q.id.as_str(), ())).collect();
    let mut records = open_qrels(&qrels_path, options)?;
    let mut qrels = Qrels::new();
    let mut unknown = Vec::new();
    for j in &mut records {
        let j = j?;
        let bad = if !query_ids.contains_key(j.query_id.as_str()) {
            Some(("query-id", &j.query_id))
        } else if !doc_ids.contains_key(j.doc_id.as_str()) {
            Some(("corpus-id", &j.doc_id))
        } else {
            None
        };
        if let Some((field, id)) = bad {
            let err = TrainerError::UnknownId {
                path: qrels_path.clone(),
                line: j.line,
                field: field.into(),
                id: id.clone(),
            };
            if !options.skip_malformed {
                return Err(err);
            }
            unknown.push(err);
            continue;
        }
        qrels.entry(j.query_id).or_default().insert(j.doc_id, j.score);
    }
    let mut qrels_summary = records.into_summary();
    for err in unknown {
        qrels_summary.records -= 1;
        qrels_summary.record_skip(err);
    }

    let judged: Vec<Query> =
        queries.data.into_iter().filter(|q| qrels.contains_key(&q.id)).collect();
    let empty_documents = corpus
        .data
        .iter()
        .filter(|d| d.title.trim().is_empty() && d.text.trim().is_empty())
        .map(|d| d.id.clone())
        .collect();
    Ok(BeirDataset {
        empty_documents,
        corpus: corpus.data,
        queries: judged,
        qrels,
        corpus_summary: corpus.summary,
        queries_summary: queries.summary,
        qrels_summary,
    })
}
