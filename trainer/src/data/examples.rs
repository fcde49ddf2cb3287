//! Training examples: a query, one positive passage, optional hard negatives and optional
//! teacher scores.
//!
//! JSONL, one object per line:
//! `{"query": "...", "positive": "...", "negatives": ["...", ...], "scores": [s+, s1, ...]}`.
//! `negatives` and `scores` may be absent or null. `scores`, when given, holds one teacher
//! score for the positive and then one per negative, in order, all finite; they are stored
//! as f32. Other keys are ignored.
//!
//! TSV: `query<TAB>positive[<TAB>negative...]`, no header, no quoting; every column must be
//! non-empty. TSV has no place for teacher scores.
//!
//! Texts are kept verbatim (no trimming); only all-whitespace texts are rejected.

use std::io::BufRead;
use std::path::Path;

use super::{json, open_buffered, LineParser, Loaded, ReadOptions, Records};
use crate::error::{Result, TrainerError};

/// One training example.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingExample {
    /// The query text.
    pub query: String,
    /// A passage relevant to the query.
    pub positive: String,
    /// Passages not relevant to the query (hard negatives), possibly none.
    pub negatives: Vec<String>,
    /// Teacher scores for `[positive, negatives...]`, when the file gives them.
    pub scores: Option<Vec<f32>>,
}

/// The on-disk layout of a training-example file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExampleFormat {
    /// One JSON object per line.
    Jsonl,
    /// Tab-separated `query, positive, negatives...`.
    Tsv,
}

impl ExampleFormat {
    /// Guesses the format from the extension: `.jsonl`/`.json` or `.tsv`/`.txt`.
    pub fn from_path(path: &Path) -> Result<ExampleFormat> {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("jsonl" | "json") => Ok(ExampleFormat::Jsonl),
            Some("tsv" | "txt") => Ok(ExampleFormat::Tsv),
            _ => Err(TrainerError::InvalidArgument {
                name: "path",
                reason: format!(
                    "{}: cannot tell the format from the extension (want .jsonl or .tsv)",
                    path.display()
                ),
            }),
        }
    }
}

/// Parses lines of either example format.
#[derive(Debug, Clone, Copy)]
pub struct ExampleParser {
    format: ExampleFormat,
}

impl ExampleParser {
    /// A parser for `format`.
    pub fn new(format: ExampleFormat) -> Self {
        ExampleParser { format }
    }
}

impl LineParser for ExampleParser {
    type Item = TrainingExample;

    fn parse(&mut self, path: &Path, line: usize, text: &str) -> Result<Option<TrainingExample>> {
        match self.format {
            ExampleFormat::Jsonl => parse_jsonl(path, line, text).map(Some),
            ExampleFormat::Tsv => parse_tsv(path, line, text).map(Some),
        }
    }
}

fn parse_jsonl(path: &Path, line: usize, text: &str) -> Result<TrainingExample> {
    // Fields are checked in a fixed order, so the first bad field is the one reported.
    let obj = json::parse(path, line, text)?;
    let query = obj.text("query")?;
    let positive = obj.text("positive")?;
    let negatives = obj.text_list("negatives")?;
    let scores = obj.score_list("scores")?;
    if let Some(s) = &scores {
        if s.len() != 1 + negatives.len() {
            return Err(TrainerError::ScoreCount {
                path: path.into(),
                line,
                expected: 1 + negatives.len(),
                found: s.len(),
            });
        }
    }
    Ok(TrainingExample { query, positive, negatives, scores })
}

fn parse_tsv(path: &Path, line: usize, text: &str) -> Result<TrainingExample> {
    let cols: Vec<&str> = text.split('\t').collect();
    if cols.len() < 2 {
        return Err(TrainerError::ColumnCount {
            path: path.into(),
            line,
            expected: "at least 2",
            found: cols.len(),
        });
    }
    // Column i (0-based) is named like the JSONL field it stands for.
    let name = |i: usize| match i {
        0 => "query".to_string(),
        1 => "positive".to_string(),
        _ => format!("negatives[{}]", i - 2),
    };
    if let Some(i) = cols.iter().position(|c| c.trim().is_empty()) {
        return Err(TrainerError::EmptyText { path: path.into(), line, field: name(i) });
    }
    Ok(TrainingExample {
        query: cols[0].to_string(),
        positive: cols[1].to_string(),
        negatives: cols[2..].iter().map(|c| c.to_string()).collect(),
        scores: None,
    })
}

/// A streaming reader of training examples.
pub type ExampleReader<R> = Records<R, ExampleParser>;

/// Streams the examples of `path`, in `format`.
pub fn open_examples(
    path: &Path,
    format: ExampleFormat,
    options: ReadOptions,
) -> Result<ExampleReader<std::io::BufReader<std::fs::File>>> {
    Ok(Records::new(open_buffered(path)?, path, ExampleParser::new(format), options))
}

/// Streams examples from any reader; `name` stands for the source in error messages.
pub fn read_examples<R: BufRead>(
    reader: R,
    name: &Path,
    format: ExampleFormat,
    options: ReadOptions,
) -> ExampleReader<R> {
    Records::new(reader, name, ExampleParser::new(format), options)
}

/// Loads every example of `path` into memory, the format chosen by its extension.
pub fn load_examples(path: &Path, options: ReadOptions) -> Result<Loaded<Vec<TrainingExample>>> {
    let format = ExampleFormat::from_path(path)?;
    open_examples(path, format, options)?.collect_loaded()
}
