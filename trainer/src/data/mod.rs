//! Reading training and evaluation data from disk.
//!
//! Two families of files come in:
//! - training examples ([`examples`]): JSONL objects `{"query", "positive", "negatives",
//!   "scores"}` or TSV lines `query<TAB>positive[<TAB>negative...]`;
//! - BEIR test collections ([`beir`]): `corpus.jsonl`, `queries.jsonl` and
//!   `qrels/<split>.tsv`.
//!
//! Every format has a streaming reader, a [`Records`] iterator over a `BufRead` that holds
//! one line at a time (plus the set of ids seen, to catch duplicates), so a corpus larger
//! than memory can be indexed or encoded in one pass. Loaders (`load_*`) collect a stream
//! into memory for the common small case.
//!
//! A malformed line is an error naming the file, the 1-based line and the field. With
//! [`ReadOptions::skip_malformed`] such lines are skipped instead, and each skip is counted
//! in the [`ReadSummary`] that comes back with the data; blank lines are counted there too.
//! Nothing is dropped without a count. I/O failures and bad header lines end the stream
//! whatever the option says, because the rest of the file cannot be trusted after them.

pub mod beir;
pub mod examples;

use std::io::BufRead;
use std::path::{Path, PathBuf};

use crate::error::{Result, TrainerError};

/// How a reader treats malformed lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// Skip malformed lines (counting them in [`ReadSummary`]) instead of failing.
    pub skip_malformed: bool,
}

impl ReadOptions {
    /// Fail on the first malformed line (the default).
    pub const STRICT: ReadOptions = ReadOptions { skip_malformed: false };
    /// Skip malformed lines and count them.
    pub const LENIENT: ReadOptions = ReadOptions { skip_malformed: true };
}

/// How many skipped-line errors a summary keeps verbatim; the count covers all of them.
pub const KEPT_SKIP_ERRORS: usize = 64;

/// What a reader saw besides the records it returned.
#[derive(Debug, Default)]
pub struct ReadSummary {
    /// Lines read, including blank, header and skipped ones.
    pub lines: usize,
    /// Records returned.
    pub records: usize,
    /// Blank (whitespace-only) lines passed over.
    pub blank_lines: usize,
    /// Malformed lines skipped under `skip_malformed`.
    pub skipped: usize,
    /// The errors of the first [`KEPT_SKIP_ERRORS`] skipped lines, in file order.
    pub skipped_errors: Vec<TrainerError>,
}

impl ReadSummary {
    /// Counts a skipped line and keeps its error if there is room.
    pub(crate) fn record_skip(&mut self, err: TrainerError) {
        self.skipped += 1;
        if self.skipped_errors.len() < KEPT_SKIP_ERRORS {
            self.skipped_errors.push(err);
        }
    }
}

/// Data loaded into memory together with the summary of reading it.
#[derive(Debug)]
pub struct Loaded<T> {
    /// The records.
    pub data: T,
    /// Counts of lines read, skipped and blank.
    pub summary: ReadSummary,
}

/// Parses one non-blank line of a format into a record.
///
/// Parsers are stateful so that they can check headers and remember ids for duplicate
/// detection. `Ok(None)` means the line was consumed without producing a record (a header).
pub trait LineParser {
    /// The record type.
    type Item;
    /// Parses line `line` (1-based) of `path`, whose text has its line ending removed.
    fn parse(&mut self, path: &Path, line: usize, text: &str) -> Result<Option<Self::Item>>;
}

/// A streaming reader: yields the records of a line-oriented file one by one.
///
/// After the first error that is returned (not skipped) the iterator is fused and yields
/// `None`.
pub struct Records<R, P> {
    reader: R,
    path: PathBuf,
    parser: P,
    options: ReadOptions,
    summary: ReadSummary,
    buf: Vec<u8>,
    done: bool,
}

impl<R: BufRead, P: LineParser> Records<R, P> {
    /// Reads `reader`, naming it `path` in errors.
    pub fn new(reader: R, path: impl Into<PathBuf>, parser: P, options: ReadOptions) -> Self {
        Records {
            reader,
            path: path.into(),
            parser,
            options,
            summary: ReadSummary::default(),
            buf: Vec::new(),
            done: false,
        }
    }

    /// The counts so far (complete once the iterator has returned `None`).
    pub fn summary(&self) -> &ReadSummary {
        &self.summary
    }

    /// Ends the stream and hands back its summary.
    pub fn into_summary(self) -> ReadSummary {
        self.summary
    }

    /// The path used in error messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads every remaining record into a vector.
    pub fn collect_loaded(mut self) -> Result<Loaded<Vec<P::Item>>> {
        let mut data = Vec::new();
        for item in &mut self {
            data.push(item?);
        }
        Ok(Loaded { data, summary: self.summary })
    }

    // One raw line without its `\n` / `\r\n` ending; `None` at end of input.
    fn next_raw(&mut self) -> Option<Result<(usize, std::result::Result<String, ()>)>> {
        self.buf.clear();
        match self.reader.read_until(b'\n', &mut self.buf) {
            Ok(0) => None,
            Ok(_) => {
                self.summary.lines += 1;
                let mut bytes: &[u8] = &self.buf;
                if let Some(rest) = bytes.strip_suffix(b"\n") {
                    bytes = rest;
                }
                if let Some(rest) = bytes.strip_suffix(b"\r") {
                    bytes = rest;
                }
                let text = std::str::from_utf8(bytes).map(str::to_owned).map_err(|_| ());
                Some(Ok((self.summary.lines, text)))
            }
            Err(e) => Some(Err(TrainerError::io(&self.path, e))),
        }
    }
}

// Errors that concern one line only and may be skipped; the others end the stream.
fn is_line_error(err: &TrainerError) -> bool {
    !matches!(err, TrainerError::Io { .. } | TrainerError::BadHeader { .. })
}

impl<R: BufRead, P: LineParser> Iterator for Records<R, P> {
    type Item = Result<P::Item>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let (line, text) = match self.next_raw()? {
                Ok(raw) => raw,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            };
            let parsed = match text {
                Ok(t) if t.trim().is_empty() => {
                    self.summary.blank_lines += 1;
                    continue;
                }
                Ok(t) => self.parser.parse(&self.path, line, &t),
                Err(()) => Err(TrainerError::NotUtf8 { path: self.path.clone(), line }),
            };
            match parsed {
                Ok(Some(item)) => {
                    self.summary.records += 1;
                    return Some(Ok(item));
                }
                Ok(None) => continue,
                Err(e) if self.options.skip_malformed && is_line_error(&e) => {
                    self.summary.record_skip(e)
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        None
    }
}

/// Opens `path` for buffered reading, naming it in any error.
pub(crate) fn open_buffered(path: &Path) -> Result<std::io::BufReader<std::fs::File>> {
    let file = std::fs::File::open(path).map_err(|e| TrainerError::io(path, e))?;
    Ok(std::io::BufReader::with_capacity(1 << 16, file))
}

/// Helpers that pull typed fields out of one parsed JSON line.
pub(crate) mod json {
    use super::*;
    use serde_json::{Map, Value};

    // Stand-in for the bare `NaN` / `Infinity` tokens that Python's json module writes. Such
    // lines are not JSON; they are re-parsed with this string in place of each token so that
    // the error can name the field that held a non-finite number.
    const NON_FINITE: &str = "\u{0}non-finite\u{0}";
    // The marker as a JSON string literal (control characters must be escaped there).
    const NON_FINITE_JSON: &str = r#""\u0000non-finite\u0000""#;

    /// One JSON line as an object, with its location for error messages.
    pub struct Line<'a> {
        pub path: &'a Path,
        pub line: usize,
        pub obj: Map<String, Value>,
        // Whether bare non-finite tokens were replaced by the marker.
        patched: bool,
    }

    /// Parses `text` as one JSON object.
    pub fn parse<'a>(path: &'a Path, line: usize, text: &str) -> Result<Line<'a>> {
        let (value, patched) = match serde_json::from_str::<Value>(text) {
            Ok(v) => (v, false),
            Err(source) => match replace_non_finite(text) {
                Some(patched) => match serde_json::from_str::<Value>(&patched) {
                    Ok(v) => (v, true),
                    Err(_) => return Err(TrainerError::Json { path: path.into(), line, source }),
                },
                None => return Err(TrainerError::Json { path: path.into(), line, source }),
            },
        };
        match value {
            Value::Object(obj) => Ok(Line { path, line, obj, patched }),
            _ => Err(TrainerError::WrongType {
                path: path.into(),
                line,
                field: "(line)".into(),
                expected: "a json object",
            }),
        }
    }

    // Replaces bare NaN / Infinity / -Infinity tokens outside strings by the marker string;
    // `None` when there are none.
    fn replace_non_finite(text: &str) -> Option<String> {
        let mut out = String::with_capacity(text.len() + 32);
        let (mut in_string, mut escaped, mut found) = (false, false, false);
        let mut rest = text;
        while let Some(c) = rest.chars().next() {
            if in_string {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '"' {
                    in_string = false;
                }
            } else if c == '"' {
                in_string = true;
            } else {
                let token =
                    ["-Infinity", "Infinity", "NaN"].into_iter().find(|t| rest.starts_with(t));
                if let Some(t) = token {
                    out.push_str(NON_FINITE_JSON);
                    rest = &rest[t.len()..];
                    found = true;
                    continue;
                }
            }
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
        found.then_some(out)
    }

    impl Line<'_> {
        fn wrong_type(&self, field: &str, expected: &'static str) -> TrainerError {
            TrainerError::WrongType {
                path: self.path.into(),
                line: self.line,
                field: field.into(),
                expected,
            }
        }

        fn missing(&self, field: &str) -> TrainerError {
            TrainerError::MissingField {
                path: self.path.into(),
                line: self.line,
                field: field.into(),
            }
        }

        fn empty(&self, field: &str) -> TrainerError {
            TrainerError::EmptyText { path: self.path.into(), line: self.line, field: field.into() }
        }

        // A present, non-null field.
        fn get(&self, field: &str) -> Option<&Value> {
            self.obj.get(field).filter(|v| !v.is_null())
        }

        fn as_text(&self, v: &Value, field: &str, allow_empty: bool) -> Result<String> {
            match v {
                Value::String(s) if self.patched && s == NON_FINITE => {
                    Err(self.wrong_type(field, "a string"))
                }
                Value::String(s) if !allow_empty && s.trim().is_empty() => Err(self.empty(field)),
                Value::String(s) => Ok(s.clone()),
                _ => Err(self.wrong_type(field, "a string")),
            }
        }

        /// A required, non-empty string.
        pub fn text(&self, field: &str) -> Result<String> {
            let v = self.get(field).ok_or_else(|| self.missing(field))?;
            self.as_text(v, field, false)
        }

        /// A required string that may be empty.
        pub fn text_allow_empty(&self, field: &str) -> Result<String> {
            let v = self.get(field).ok_or_else(|| self.missing(field))?;
            self.as_text(v, field, true)
        }

        /// An optional string that may be empty (absent or null reads as empty).
        pub fn optional_text(&self, field: &str) -> Result<String> {
            self.get(field).map_or(Ok(String::new()), |v| self.as_text(v, field, true))
        }

        /// An optional list of non-empty strings (absent or null reads as empty).
        pub fn text_list(&self, field: &str) -> Result<Vec<String>> {
            let Some(v) = self.get(field) else { return Ok(Vec::new()) };
            let items =
                v.as_array().ok_or_else(|| self.wrong_type(field, "an array of strings"))?;
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                out.push(self.as_text(item, &format!("{field}[{i}]"), false)?);
            }
            Ok(out)
        }

        /// An optional list of finite numbers stored as f32 (`None` when absent or null).
        pub fn score_list(&self, field: &str) -> Result<Option<Vec<f32>>> {
            let Some(v) = self.get(field) else { return Ok(None) };
            let items =
                v.as_array().ok_or_else(|| self.wrong_type(field, "an array of numbers"))?;
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let name = format!("{field}[{i}]");
                let x = match item {
                    Value::Number(n) => n.as_f64().map(|x| x as f32),
                    Value::String(s) if self.patched && s == NON_FINITE => Some(f32::NAN),
                    _ => None,
                };
                let x = x.ok_or_else(|| self.wrong_type(&name, "a number"))?;
                if !x.is_finite() {
                    return Err(TrainerError::NonFiniteScore {
                        path: self.path.into(),
                        line: self.line,
                        field: name,
                    });
                }
                out.push(x);
            }
            Ok(Some(out))
        }
    }
}
