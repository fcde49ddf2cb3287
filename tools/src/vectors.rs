//! Vector files: `.npy` matrices or JSONL lines `{"id", "vector"}`.
//!
//! The format follows the extension (`.npy`; `.jsonl`, `.ndjson` or
//! `.json` for lines). A JSONL line is an object with a `vector` array of
//! numbers, an optional `id` (string or integer) and an optional `text`
//! (kept so an index can show snippets); blank lines are skipped. An
//! `.npy` file has no ids: rows are named by their number, or by an ids
//! file of one id per line.
//!
//! Checks, each naming the file and line (or row): every row has the
//! dimension of the first, every value is a finite f32, ids are unique and
//! non-empty, and the file holds at least one vector. Left out: streaming
//! (files are read whole), and f16/f64 inputs.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use crate::error::{CliError, CmdResult, Context};
use crate::files::{read_to_string, write_atomic};
use crate::npy;

/// Vectors with their ids, and texts when the file carried them.
#[derive(Debug, Clone)]
pub struct Vectors {
    pub ids: Vec<String>,
    /// One per vector, or empty when the file had no `text` fields.
    pub texts: Vec<String>,
    pub dim: usize,
    /// `ids.len() x dim`, row-major.
    pub data: Vec<f32>,
}

impl Vectors {
    pub fn len(&self) -> usize {
        self.ids.len()
    }
}

/// The two file formats, chosen by extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Npy,
    Jsonl,
}

/// The format of `path`, or a usage error naming `flag`.
pub fn format_of(path: &Path, flag: &str) -> CmdResult<Format> {
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("npy") => Ok(Format::Npy),
        Some("jsonl" | "ndjson" | "json") => Ok(Format::Jsonl),
        _ => Err(CliError::usage(
            flag,
            format!("{}: expected a .npy or .jsonl file", path.display()),
        )),
    }
}

/// Reads a vector file; `flag` names the option it came from.
pub fn read(path: &Path, flag: &str) -> CmdResult<Vectors> {
    let v = match format_of(path, flag)? {
        Format::Npy => read_npy(path)?,
        Format::Jsonl => read_jsonl(path)?,
    };
    if v.len() == 0 {
        return Err(CliError::runtime(path.display(), "holds no vectors"));
    }
    Ok(v)
}

fn read_npy(path: &Path) -> CmdResult<Vectors> {
    let m = npy::read(path)?;
    if m.cols == 0 && m.rows > 0 {
        return Err(CliError::runtime(path.display(), "vectors have dimension 0"));
    }
    if let Some(i) = m.data.iter().position(|x| !x.is_finite()) {
        return Err(CliError::runtime(
            path.display(),
            format!("row {} column {}: {} is not finite", i / m.cols, i % m.cols, m.data[i]),
        ));
    }
    Ok(Vectors {
        ids: (0..m.rows).map(|i| i.to_string()).collect(),
        texts: Vec::new(),
        dim: m.cols,
        data: m.data,
    })
}

fn read_jsonl(path: &Path) -> CmdResult<Vectors> {
    let text = read_to_string(path)?;
    let mut out = Vectors { ids: Vec::new(), texts: Vec::new(), dim: 0, data: Vec::new() };
    let mut first_line_of: HashMap<String, usize> = HashMap::new();
    let mut texts_seen = 0usize;
    for (i, line) in text.lines().enumerate() {
        let lineno = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let at = || format!("{}:{lineno}", path.display());
        let obj: Value = serde_json::from_str(line).at(format!("{}: invalid json", at()))?;
        let Value::Object(obj) = obj else {
            return Err(CliError::runtime(at(), "expected a JSON object"));
        };

        // The id: a string or an integer; the row number when absent.
        let id = match obj.get("id").or_else(|| obj.get("_id")) {
            None => out.ids.len().to_string(),
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::Number(n)) if n.is_u64() || n.is_i64() => n.to_string(),
            Some(_) => {
                return Err(CliError::runtime(at(), "field \"id\": expected a non-empty string"))
            }
        };
        if let Some(first) = first_line_of.insert(id.clone(), lineno) {
            return Err(CliError::runtime(
                at(),
                format!("field \"id\": duplicate id {id:?} (first on line {first})"),
            ));
        }

        // The vector: numbers, all finite as f32, one dimension for all.
        let row = parse_vector(obj.get("vector")).map_err(|what| CliError::runtime(at(), what))?;
        if out.ids.is_empty() {
            if row.is_empty() {
                return Err(CliError::runtime(at(), "field \"vector\": empty"));
            }
            out.dim = row.len();
        } else if row.len() != out.dim {
            return Err(CliError::runtime(
                at(),
                format!(
                    "field \"vector\": dimension {}, expected {} (the first vector's)",
                    row.len(),
                    out.dim
                ),
            ));
        }
        out.data.extend_from_slice(&row);

        // The optional text, kept only when every line has one.
        match obj.get("text") {
            Some(Value::String(s)) => {
                texts_seen += 1;
                out.texts.push(s.clone());
            }
            Some(Value::Null) | None => out.texts.push(String::new()),
            Some(_) => return Err(CliError::runtime(at(), "field \"text\": expected a string")),
        }
        out.ids.push(id);
    }
    if texts_seen == 0 {
        out.texts.clear();
    }
    Ok(out)
}

/// The numbers of a `vector` field, or what is wrong with it.
pub fn parse_vector(field: Option<&Value>) -> Result<Vec<f32>, String> {
    let Some(field) = field else {
        return Err("field \"vector\": missing".into());
    };
    let Value::Array(items) = field else {
        return Err("field \"vector\": expected an array of numbers".into());
    };
    items
        .iter()
        .enumerate()
        .map(|(j, v)| match v.as_f64() {
            Some(x) if (x as f32).is_finite() => Ok(x as f32),
            Some(x) => Err(format!("field \"vector[{j}]\": {x} is not a finite f32")),
            None => Err(format!("field \"vector[{j}]\": not a number")),
        })
        .collect()
}

/// Parses a vector typed on one line: numbers separated by commas or
/// spaces, optionally in brackets.
pub fn parse_vector_line(line: &str) -> Result<Vec<f32>, String> {
    let inner = line.trim().trim_start_matches('[').trim_end_matches(']');
    let v: Vec<f32> = inner
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(|s| match s.parse::<f32>() {
            Ok(x) if x.is_finite() => Ok(x),
            _ => Err(format!("{s:?} is not a finite number")),
        })
        .collect::<Result<_, _>>()?;
    if v.is_empty() {
        return Err("no numbers".into());
    }
    Ok(v)
}

/// Reads an ids file: one non-empty, unique id per line, `count` lines.
pub fn read_ids(path: &Path, count: usize) -> CmdResult<Vec<String>> {
    let text = read_to_string(path)?;
    let mut ids = Vec::with_capacity(count);
    let mut first_line_of: HashMap<&str, usize> = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let id = line.trim();
        if id.is_empty() {
            return Err(CliError::runtime(format!("{}:{}", path.display(), i + 1), "empty id"));
        }
        if let Some(first) = first_line_of.insert(id, i + 1) {
            return Err(CliError::runtime(
                format!("{}:{}", path.display(), i + 1),
                format!("duplicate id {id:?} (first on line {first})"),
            ));
        }
        ids.push(id.to_string());
    }
    if ids.len() != count {
        return Err(CliError::runtime(
            path.display(),
            format!("{} ids for {count} vectors", ids.len()),
        ));
    }
    Ok(ids)
}

/// Writes vectors to `path` in the format its extension names: a matrix
/// for `.npy` (ids and texts dropped), `{"id", "vector", "text"?}` lines
/// for `.jsonl` (`texts` empty, or one per vector).
pub fn write(
    path: &Path,
    flag: &str,
    ids: &[String],
    texts: &[String],
    data: &[f32],
    dim: usize,
) -> CmdResult {
    match format_of(path, flag)? {
        Format::Npy => npy::write(path, data, ids.len(), dim),
        Format::Jsonl => write_atomic(path, |w| {
            for (i, (id, row)) in ids.iter().zip(data.chunks_exact(dim)).enumerate() {
                let mut line = serde_json::json!({ "id": id, "vector": row });
                if let Some(t) = texts.get(i) {
                    line["text"] = Value::String(t.clone());
                }
                writeln!(w, "{line}")?;
            }
            Ok(())
        }),
    }
}
