//! TREC run files: `query-id Q0 doc-id rank score tag`, one retrieved document per line.
//!
//! The writer orders each query's documents as trec_eval would (score descending, doc id
//! descending on ties), numbers ranks from 1, and prints scores with Rust's shortest
//! round-trip formatting, so reading the file back gives the same `f64`s and the same
//! order. Queries are written in id order. The file is written to a temporary sibling,
//! synced, then renamed into place.
//!
//! The reader accepts any run whitespace-separated into exactly six columns (trec_eval's
//! rule); the rank column must be an integer but, as in trec_eval, is not used: the
//! scores decide the order. The second and sixth columns are not checked.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::{rank, Run};
use crate::data::{open_buffered, LineParser, Loaded, ReadOptions, Records};
use crate::error::{IoResultExt, Result, TrainerError};

/// One line of a run file.
#[derive(Debug, Clone, PartialEq)]
pub struct RunLine {
    /// The query id.
    pub query_id: String,
    /// The document id.
    pub doc_id: String,
    /// The rank column as written (ignored for ordering).
    pub rank: i64,
    /// The score.
    pub score: f64,
}

/// Parses run-file lines, rejecting a (query, doc) pair listed twice.
#[derive(Debug, Default)]
pub struct RunParser {
    seen: std::collections::HashMap<(String, String), usize>,
}

impl LineParser for RunParser {
    type Item = RunLine;

    fn parse(&mut self, path: &Path, line: usize, text: &str) -> Result<Option<RunLine>> {
        let cols: Vec<&str> = text.split_whitespace().collect();
        if cols.len() != 6 {
            return Err(TrainerError::ColumnCount {
                path: path.into(),
                line,
                expected: "6",
                found: cols.len(),
            });
        }
        let bad = |field: &str, value: &str, expected| TrainerError::BadNumber {
            path: path.into(),
            line,
            field: field.into(),
            value: value.into(),
            expected,
        };
        let rank = cols[3].parse::<i64>().map_err(|_| bad("rank", cols[3], "an integer"))?;
        let score = cols[4].parse::<f64>().map_err(|_| bad("score", cols[4], "a number"))?;
        if !score.is_finite() {
            return Err(TrainerError::NonFiniteScore {
                path: path.into(),
                line,
                field: "score".into(),
            });
        }
        let key = (cols[0].to_string(), cols[2].to_string());
        if let Some(&first_line) = self.seen.get(&key) {
            return Err(TrainerError::DuplicateId {
                path: path.into(),
                line,
                field: "query-id+doc-id".into(),
                id: format!("{} {}", key.0, key.1),
                first_line,
            });
        }
        self.seen.insert(key.clone(), line);
        Ok(Some(RunLine { query_id: key.0, doc_id: key.1, rank, score }))
    }
}

/// Reads a run file into memory.
pub fn read_run(path: &Path, options: ReadOptions) -> Result<Loaded<Run>> {
    let mut records = Records::new(open_buffered(path)?, path, RunParser::default(), options);
    let mut run = Run::new();
    for line in &mut records {
        let line = line?;
        run.entry(line.query_id).or_default().push((line.doc_id, line.score));
    }
    Ok(Loaded { data: run, summary: records.into_summary() })
}

/// Writes `run` to `path` in TREC format, tagging every line with `tag`.
///
/// Ids and the tag must be non-empty and free of whitespace, or the file could not be
/// read back; scores must be finite and doc ids unique per query.
pub fn write_run(path: &Path, run: &Run, tag: &str) -> Result<()> {
    let check = |what: &'static str, s: &str| {
        if s.is_empty() || s.chars().any(char::is_whitespace) {
            Err(TrainerError::InvalidArgument {
                name: what,
                reason: format!("{s:?} is empty or contains whitespace"),
            })
        } else {
            Ok(())
        }
    };
    check("tag", tag)?;
    let mut queries: Vec<&String> = run.keys().collect();
    queries.sort();

    // Write beside the target, then rename, so a crash never leaves half a run file.
    let tmp = temp_sibling(path);
    let file = File::create(&tmp).with_path(&tmp)?;
    let mut out = BufWriter::new(file);
    let written = (|| -> Result<()> {
        for q in queries {
            check("query id", q)?;
            let results = &run[q];
            let ranked = rank(q, results)?;
            let score_of: std::collections::HashMap<&str, f64> =
                results.iter().map(|(d, s)| (d.as_str(), *s)).collect();
            for (i, doc) in ranked.iter().enumerate() {
                check("doc id", doc)?;
                writeln!(out, "{q} Q0 {doc} {} {} {tag}", i + 1, score_of[doc]).with_path(&tmp)?;
            }
        }
        let file = out.into_inner().map_err(|e| TrainerError::io(&tmp, e.into_error()))?;
        file.sync_all().with_path(&tmp)?;
        std::fs::rename(&tmp, path).with_path(path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

fn temp_sibling(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".tmp{}", std::process::id()));
    path.with_file_name(name)
}
