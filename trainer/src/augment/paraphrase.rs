//! Paraphrases read from a file, standing in for back-translation.
//!
//! Back-translation (translate to another language and back) needs two
//! translation models; none runs in edgecl. Instead, paraphrases made
//! elsewhere (by back-translation, by people, or from a paraphrase corpus
//! such as MRPC's positive pairs) are listed in a file:
//!
//! - TSV: `text<TAB>paraphrase[<TAB>paraphrase...]`, no header;
//! - JSONL: `{"text": "...", "paraphrases": ["...", ...]}`.
//!
//! Texts are matched exactly after collapsing whitespace. A text listed on
//! several lines collects the paraphrases of all of them.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;

use super::Rng;
use crate::data::json;
use crate::error::{IoResultExt, Result, TrainerError};

/// Text -> its listed paraphrases.
#[derive(Clone, Debug, Default)]
pub struct Paraphrases {
    map: HashMap<String, Vec<String>>,
    pairs: Vec<(String, String)>,
}

// Collapses whitespace runs, the form texts are matched in.
fn normalize(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl Paraphrases {
    /// Reads a `.tsv` or `.jsonl` paraphrase file.
    pub fn load(path: &Path) -> Result<Self> {
        let jsonl = match path.extension().and_then(|e| e.to_str()) {
            Some("jsonl" | "json") => true,
            Some("tsv" | "txt") => false,
            _ => {
                return Err(TrainerError::InvalidArgument {
                    name: "path",
                    reason: format!("{}: want a .tsv or .jsonl paraphrase file", path.display()),
                })
            }
        };
        let file = std::fs::File::open(path).with_path(path)?;
        let mut out = Paraphrases::default();
        for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line = line.map_err(|e| match e.kind() {
                std::io::ErrorKind::InvalidData => {
                    TrainerError::NotUtf8 { path: path.into(), line: i + 1 }
                }
                _ => TrainerError::io(path, e),
            })?;
            if line.trim().is_empty() {
                continue;
            }
            let (text, paras) = if jsonl {
                let obj = json::parse(path, i + 1, &line)?;
                let paras = obj.text_list("paraphrases")?;
                if paras.is_empty() {
                    return Err(TrainerError::MissingField {
                        path: path.into(),
                        line: i + 1,
                        field: "paraphrases".into(),
                    });
                }
                (obj.text("text")?, paras)
            } else {
                let cols: Vec<&str> = line.split('\t').collect();
                if cols.len() < 2 {
                    return Err(TrainerError::ColumnCount {
                        path: path.into(),
                        line: i + 1,
                        expected: "at least 2",
                        found: cols.len(),
                    });
                }
                if let Some(c) = cols.iter().position(|c| c.trim().is_empty()) {
                    let field =
                        if c == 0 { "text".into() } else { format!("paraphrases[{}]", c - 1) };
                    return Err(TrainerError::EmptyText { path: path.into(), line: i + 1, field });
                }
                (cols[0].to_string(), cols[1..].iter().map(|s| s.to_string()).collect())
            };
            for p in paras {
                out.insert(&text, &p);
            }
        }
        Ok(out)
    }

    /// Adds one (text, paraphrase) pair.
    pub fn insert(&mut self, text: &str, paraphrase: &str) {
        let (t, p) = (normalize(text), normalize(paraphrase));
        if t.is_empty() || p.is_empty() {
            return;
        }
        self.pairs.push((t.clone(), p.clone()));
        self.map.entry(t).or_default().push(p);
    }

    /// Number of (text, paraphrase) pairs.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Every pair in file order: positive pairs for training as they are.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// The paraphrases of `text`, empty when it has none.
    pub fn of(&self, text: &str) -> &[String] {
        self.map.get(&normalize(text)).map_or(&[], Vec::as_slice)
    }

    /// A random paraphrase of `text`, `None` when it has none.
    pub fn sample(&self, text: &str, rng: &mut Rng) -> Option<&str> {
        let list = self.of(text);
        (!list.is_empty()).then(|| list[rng.below(list.len())].as_str())
    }
}
