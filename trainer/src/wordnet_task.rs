//! The built-in retrieval task: find a WordNet synset's words from its
//! definition.
//!
//! Documents are the distinct word lists of WordNet's synsets ("sea,
//! ocean"); synsets whose word lists are equal after lower-casing share one
//! document, so a query is never judged against an identical twin. Queries
//! are definitions ("a large body of salt water") and, for training only,
//! the example sentences. A seeded fraction of synsets holds its definition
//! out as a test query: the model never sees that (definition, words) pair,
//! though it may see the same document paired with another sense's
//! definition or with an example sentence.
//!
//! BM25 is weak here by construction (a definition seldom repeats the word
//! it defines), which is the point: the task measures what a learned
//! encoder adds over term matching. The task is written out as an ordinary
//! BEIR folder plus a training-pairs file, so everything downstream (train,
//! index, eval) is the same code a user's own data goes through.

use std::collections::HashMap;
use std::fs;
use std::io::{BufWriter, Write};
use std::path::Path;

use crate::data::beir::{Document, Query};
use crate::error::{IoResultExt, Result, TrainerError};
use crate::eval::Qrels;
use crate::wordnet::{Pos, Synset};

/// How to cut WordNet into a task.
#[derive(Clone, Debug)]
pub struct TaskOptions {
    /// Seed of the held-out draw.
    pub seed: u64,
    /// Number of definitions held out as test queries.
    pub test_queries: usize,
    /// Use example sentences as extra training queries.
    pub use_examples: bool,
    /// Keep only these parts of speech (empty keeps all).
    pub parts_of_speech: Vec<Pos>,
}

impl Default for TaskOptions {
    fn default() -> Self {
        TaskOptions { seed: 42, test_queries: 2000, use_examples: true, parts_of_speech: vec![] }
    }
}

/// A training pair: a query and the id of its document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pair {
    pub query: String,
    pub doc: usize,
}

/// The task: corpus, training pairs, and judged test queries.
#[derive(Debug)]
pub struct WordNetTask {
    /// Documents with ids `w0`, `w1`, ... in first-seen order.
    pub corpus: Vec<Document>,
    pub train: Vec<Pair>,
    /// Test queries with ids `q0`, `q1`, ...
    pub test_queries: Vec<Query>,
    /// Each test query's one relevant document.
    pub test_qrels: Qrels,
}

// SplitMix64: a tiny seeded generator for the held-out draw.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn doc_text(words: &[String]) -> String {
    words.iter().map(|w| w.to_lowercase()).collect::<Vec<_>>().join(", ")
}

/// Builds the task from parsed synsets.
pub fn build(synsets: &[Synset], opts: &TaskOptions) -> Result<WordNetTask> {
    // Distinct documents, and each kept synset's document.
    let mut by_text: HashMap<String, usize> = HashMap::new();
    let mut corpus = Vec::new();
    let mut kept: Vec<(&Synset, usize)> = Vec::new();
    for s in synsets {
        if s.words.is_empty() || s.definition.trim().is_empty() {
            continue;
        }
        if !opts.parts_of_speech.is_empty() && !opts.parts_of_speech.contains(&s.pos) {
            continue;
        }
        let text = doc_text(&s.words);
        let next = corpus.len();
        let id = *by_text.entry(text.clone()).or_insert(next);
        if id == next {
            corpus.push(Document { id: format!("w{id}"), title: String::new(), text });
        }
        kept.push((s, id));
    }
    if kept.is_empty() {
        return Err(TrainerError::InvalidArgument {
            name: "synsets",
            reason: "no synset with words and a definition (empty or filtered-out WordNet)".into(),
        });
    }
    if opts.test_queries >= kept.len() {
        return Err(TrainerError::InvalidArgument {
            name: "test_queries",
            reason: format!(
                "{} test queries requested but only {} synsets are usable",
                opts.test_queries,
                kept.len()
            ),
        });
    }

    // A seeded partial Fisher-Yates picks the held-out synsets.
    let mut order: Vec<usize> = (0..kept.len()).collect();
    let mut rng = opts.seed;
    for i in 0..opts.test_queries {
        let j = i + (splitmix(&mut rng) % (order.len() - i) as u64) as usize;
        order.swap(i, j);
    }
    let mut held_out = vec![false; kept.len()];
    let mut test_queries = Vec::with_capacity(opts.test_queries);
    let mut test_qrels = Qrels::new();
    let mut held: Vec<usize> = order[..opts.test_queries].to_vec();
    held.sort_unstable();
    for (n, &k) in held.iter().enumerate() {
        held_out[k] = true;
        let (s, doc) = kept[k];
        let id = format!("q{n}");
        test_queries.push(Query { id: id.clone(), text: s.definition.clone() });
        test_qrels.entry(id).or_default().insert(corpus[doc].id.clone(), 1);
    }

    // Training pairs: the other definitions, and every example sentence.
    let mut train = Vec::new();
    for (k, &(s, doc)) in kept.iter().enumerate() {
        if !held_out[k] {
            train.push(Pair { query: s.definition.clone(), doc });
        }
        if opts.use_examples {
            for e in &s.examples {
                if !e.trim().is_empty() {
                    train.push(Pair { query: e.clone(), doc });
                }
            }
        }
    }
    Ok(WordNetTask { corpus, train, test_queries, test_qrels })
}

impl WordNetTask {
    /// Writes `dir/corpus.jsonl`, `dir/queries.jsonl`, `dir/qrels/test.tsv`
    /// (a BEIR folder for the test split) and `dir/train.jsonl`
    /// (`{"query", "positive"}` pairs), each through a temp file and rename.
    pub fn write(&self, dir: &Path) -> Result<()> {
        fs::create_dir_all(dir.join("qrels")).with_path(dir)?;
        write_atomic(&dir.join("corpus.jsonl"), |w| {
            for d in &self.corpus {
                let v = serde_json::json!({"_id": d.id, "title": "", "text": d.text});
                writeln!(w, "{v}")?;
            }
            Ok(())
        })?;
        write_atomic(&dir.join("queries.jsonl"), |w| {
            for q in &self.test_queries {
                writeln!(w, "{}", serde_json::json!({"_id": q.id, "text": q.text}))?;
            }
            Ok(())
        })?;
        write_atomic(&dir.join("qrels").join("test.tsv"), |w| {
            writeln!(w, "query-id\tcorpus-id\tscore")?;
            for q in &self.test_queries {
                for (d, s) in &self.test_qrels[&q.id] {
                    writeln!(w, "{}\t{d}\t{s}", q.id)?;
                }
            }
            Ok(())
        })?;
        write_atomic(&dir.join("train.jsonl"), |w| {
            for p in &self.train {
                let v = serde_json::json!({"query": p.query, "positive": self.corpus[p.doc].text});
                writeln!(w, "{v}")?;
            }
            Ok(())
        })
    }
}

// Temp file in the same folder, fsync, rename.
fn write_atomic(
    path: &Path,
    body: impl FnOnce(&mut BufWriter<fs::File>) -> std::io::Result<()>,
) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let file = fs::File::create(&tmp).with_path(&tmp)?;
    let mut w = BufWriter::new(file);
    body(&mut w).with_path(&tmp)?;
    let file = w.into_inner().map_err(|e| TrainerError::io(&tmp, e.into_error()))?;
    file.sync_all().with_path(&tmp)?;
    fs::rename(&tmp, path).with_path(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn synset(offset: u32, words: &[&str], def: &str, examples: &[&str]) -> Synset {
        Synset {
            offset,
            pos: Pos::Noun,
            lex_file: 0,
            words: words.iter().map(|s| s.to_string()).collect(),
            definition: def.into(),
            examples: examples.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn sample() -> Vec<Synset> {
        vec![
            synset(1, &["sea", "ocean"], "a large body of salt water", &["the sea was calm"]),
            synset(2, &["bank"], "sloping land beside water", &[]),
            synset(3, &["Bank"], "a financial institution", &["he cashed a check at the bank"]),
            synset(4, &["dog"], "a domestic canine", &[]),
            synset(5, &["cat"], "a small domestic feline", &[]),
        ]
    }

    #[test]
    fn identical_word_lists_share_a_document_and_held_out_pairs_stay_out() {
        let opts = TaskOptions { test_queries: 2, ..TaskOptions::default() };
        let t = build(&sample(), &opts).unwrap();
        assert_eq!(t.corpus.len(), 4, "bank and Bank are one document");
        assert_eq!(t.test_queries.len(), 2);
        for q in &t.test_queries {
            let doc = t.test_qrels[&q.id].keys().next().unwrap();
            let doc_idx = t.corpus.iter().position(|d| &d.id == doc).unwrap();
            assert!(!t.train.iter().any(|p| p.query == q.text && p.doc == doc_idx), "{q:?} leaked");
        }
        // 5 definitions - 2 held out + 2 examples.
        assert_eq!(t.train.len(), 5);
        // Same seed, same split; another seed, (here) another split.
        let again = build(&sample(), &opts).unwrap();
        assert_eq!(again.test_queries, t.test_queries);
        let other = build(&sample(), &TaskOptions { seed: 7, ..opts.clone() }).unwrap();
        assert_ne!(other.test_queries, t.test_queries);
    }

    #[test]
    fn too_many_test_queries_or_nothing_usable_is_an_error() {
        let opts = TaskOptions { test_queries: 5, ..TaskOptions::default() };
        assert!(build(&sample(), &opts).unwrap_err().to_string().contains("test_queries"));
        assert!(build(&[], &TaskOptions::default()).is_err());
    }

    #[test]
    fn written_folder_reads_back_as_beir() {
        let dir = tempfile::tempdir().unwrap();
        let opts = TaskOptions { test_queries: 2, ..TaskOptions::default() };
        let t = build(&sample(), &opts).unwrap();
        t.write(dir.path()).unwrap();
        let ds = crate::data::beir::load_beir(dir.path(), "test", crate::data::ReadOptions::STRICT)
            .unwrap();
        assert_eq!(ds.corpus, t.corpus);
        assert_eq!(ds.queries, t.test_queries);
        assert_eq!(ds.qrels, t.test_qrels);
        let path = dir.path().join("train.jsonl");
        let ex =
            crate::data::examples::load_examples(&path, crate::data::ReadOptions::STRICT).unwrap();
        assert_eq!(ex.data.len(), t.train.len());
        assert_eq!(ex.data[0].positive, t.corpus[t.train[0].doc].text);
    }
}
