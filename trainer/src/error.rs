//! The trainer's one error type.
//!
//! Every fallible function of the trainer returns [`TrainerError`]. Errors that come from a
//! line of an input file carry the file's path, the 1-based line number and the field (JSON
//! key or TSV column) at fault, so `Display` reads like a compiler diagnostic:
//! `data/train.jsonl:17: field "scores[2]": not a finite number`. I/O errors carry the path
//! through [`IoResultExt::with_path`]; a bare `From<io::Error>` exists for `?` in code that
//! has no path at hand, and then prints `<unknown path>`.
//!
//! The enum is flat (no nested kinds) and hand-written (no derive macro crate), following
//! the way small parsing crates keep their errors inspectable with a plain `match`.

use std::error::Error;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Result alias used across the trainer.
pub type Result<T> = std::result::Result<T, TrainerError>;

/// Everything that can go wrong in the trainer's data, evaluation and baseline code.
#[derive(Debug)]
pub enum TrainerError {
    /// An operating-system I/O call failed on `path` (`None` when the caller had no path).
    Io { path: Option<PathBuf>, source: io::Error },
    /// A line is not UTF-8.
    NotUtf8 { path: PathBuf, line: usize },
    /// A line is not valid JSON.
    Json { path: PathBuf, line: usize, source: serde_json::Error },
    /// A required field (JSON key or TSV column) is absent.
    MissingField { path: PathBuf, line: usize, field: String },
    /// A field holds a value of the wrong JSON type.
    WrongType { path: PathBuf, line: usize, field: String, expected: &'static str },
    /// A text field is empty or only whitespace.
    EmptyText { path: PathBuf, line: usize, field: String },
    /// A score is NaN or infinite.
    NonFiniteScore { path: PathBuf, line: usize, field: String },
    /// A number could not be parsed from its text.
    BadNumber { path: PathBuf, line: usize, field: String, value: String, expected: &'static str },
    /// The `scores` list does not have one entry per positive and negative.
    ScoreCount { path: PathBuf, line: usize, expected: usize, found: usize },
    /// A TSV or run-file line has the wrong number of columns.
    ColumnCount { path: PathBuf, line: usize, expected: &'static str, found: usize },
    /// A header line is missing or different from the one the format requires.
    BadHeader { path: PathBuf, line: usize, expected: &'static str, found: String },
    /// An id (document, query, or query/document pair) appears twice in one file.
    DuplicateId { path: PathBuf, line: usize, field: String, id: String, first_line: usize },
    /// An id refers to something that the data set does not define.
    UnknownId { path: PathBuf, line: usize, field: String, id: String },
    /// An in-memory run lists the same document twice for one query.
    DuplicateRunDoc { query: String, doc: String },
    /// An argument is outside the range a function accepts.
    InvalidArgument { name: &'static str, reason: String },
    /// The runtime (tensors, model, container, index) refused something.
    Runtime(edgecl_runtime::Error),
    /// The tokenizer refused a vocabulary or a text.
    Tokenizer(edgecl_runtime::tokenizer::TokenizerError),
}

impl TrainerError {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        TrainerError::Io { path: Some(path.into()), source }
    }

    /// The file and 1-based line an error points at, when it points at one.
    pub fn location(&self) -> Option<(&Path, usize)> {
        use TrainerError::*;
        match self {
            NotUtf8 { path, line }
            | Json { path, line, .. }
            | MissingField { path, line, .. }
            | WrongType { path, line, .. }
            | EmptyText { path, line, .. }
            | NonFiniteScore { path, line, .. }
            | BadNumber { path, line, .. }
            | ScoreCount { path, line, .. }
            | ColumnCount { path, line, .. }
            | BadHeader { path, line, .. }
            | DuplicateId { path, line, .. }
            | UnknownId { path, line, .. } => Some((path.as_path(), *line)),
            Io { .. }
            | DuplicateRunDoc { .. }
            | InvalidArgument { .. }
            | Runtime(_)
            | Tokenizer(_) => None,
        }
    }
}

/// Attaches a path to `io::Result`s: `File::open(&p).with_path(&p)?`.
pub trait IoResultExt<T> {
    /// Turns an `io::Error` into [`TrainerError::Io`] naming `path`.
    fn with_path(self, path: &Path) -> Result<T>;
}

impl<T> IoResultExt<T> for io::Result<T> {
    fn with_path(self, path: &Path) -> Result<T> {
        self.map_err(|e| TrainerError::io(path, e))
    }
}

impl From<io::Error> for TrainerError {
    fn from(source: io::Error) -> Self {
        TrainerError::Io { path: None, source }
    }
}

impl From<edgecl_runtime::Error> for TrainerError {
    fn from(e: edgecl_runtime::Error) -> Self {
        TrainerError::Runtime(e)
    }
}

impl From<edgecl_runtime::tokenizer::TokenizerError> for TrainerError {
    fn from(e: edgecl_runtime::tokenizer::TokenizerError) -> Self {
        TrainerError::Tokenizer(e)
    }
}

impl fmt::Display for TrainerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use TrainerError::*;
        match self {
            Io { path: Some(p), source } => write!(f, "{}: i/o error: {source}", p.display()),
            Io { path: None, source } => write!(f, "<unknown path>: i/o error: {source}"),
            NotUtf8 { path, line } => {
                write!(f, "{}:{line}: line is not valid utf-8", path.display())
            }
            Json { path, line, source } => {
                write!(f, "{}:{line}: invalid json: {source}", path.display())
            }
            MissingField { path, line, field } => {
                write!(f, "{}:{line}: field {field:?}: missing", path.display())
            }
            WrongType { path, line, field, expected } => {
                write!(f, "{}:{line}: field {field:?}: expected {expected}", path.display())
            }
            EmptyText { path, line, field } => {
                write!(f, "{}:{line}: field {field:?}: empty text", path.display())
            }
            NonFiniteScore { path, line, field } => {
                write!(f, "{}:{line}: field {field:?}: not a finite number", path.display())
            }
            BadNumber { path, line, field, value, expected } => {
                write!(f, "{}:{line}: field {field:?}: {value:?} is not {expected}", path.display())
            }
            ScoreCount { path, line, expected, found } => write!(
                f,
                "{}:{line}: field \"scores\": expected {expected} scores (positive + negatives), \
                 found {found}",
                path.display()
            ),
            ColumnCount { path, line, expected, found } => write!(
                f,
                "{}:{line}: expected {expected} tab-separated columns, found {found}",
                path.display()
            ),
            BadHeader { path, line, expected, found } => write!(
                f,
                "{}:{line}: header: expected {expected:?}, found {found:?}",
                path.display()
            ),
            DuplicateId { path, line, field, id, first_line } => write!(
                f,
                "{}:{line}: field {field:?}: duplicate id {id:?} (first seen on line {first_line})",
                path.display()
            ),
            UnknownId { path, line, field, id } => {
                write!(f, "{}:{line}: field {field:?}: unknown id {id:?}", path.display())
            }
            DuplicateRunDoc { query, doc } => {
                write!(f, "run: query {query:?} lists document {doc:?} twice")
            }
            InvalidArgument { name, reason } => write!(f, "invalid argument {name}: {reason}"),
            Runtime(e) => write!(f, "{e}"),
            Tokenizer(e) => write!(f, "{e}"),
        }
    }
}

impl Error for TrainerError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            TrainerError::Io { source, .. } => Some(source),
            TrainerError::Json { source, .. } => Some(source),
            TrainerError::Runtime(e) => Some(e),
            TrainerError::Tokenizer(e) => Some(e),
            _ => None,
        }
    }
}
