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
//! definition or with an example sentence. A second, disjoint draw makes a
//! small dev split for choosing checkpoints during training: its queries
//! search a sample of the corpus (their own documents plus seeded others),
//! so evaluating it costs seconds rather than a pass over every document.
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
    /// Number of further definitions held out as dev queries.
    pub dev_queries: usize,
    /// Documents in the dev split's corpus sample (at least the dev
    /// queries' own documents).
    pub dev_corpus: usize,
    /// Use example sentences as extra training queries.
    pub use_examples: bool,
    /// Keep only these parts of speech (empty keeps all).
    pub parts_of_speech: Vec<Pos>,
}

impl Default for TaskOptions {
    fn default() -> Self {
        TaskOptions {
            seed: 42,
            test_queries: 2000,
            dev_queries: 500,
            dev_corpus: 10_000,
            use_examples: true,
            parts_of_speech: vec![],
        }
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
    /// The dev split's corpus sample, in corpus order.
    pub dev_corpus: Vec<Document>,
    /// Dev queries with ids `d0`, `d1`, ...
    pub dev_queries: Vec<Query>,
    pub dev_qrels: Qrels,
}

// SplitMix64: a tiny seeded generator for the held-out draw.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

// Lower-cased words, each once, in WordNet's order ("A", "a" is "a").
fn doc_text(words: &[String]) -> String {
    let mut seen: Vec<String> = Vec::with_capacity(words.len());
    for w in words {
        let w = w.to_lowercase();
        if !seen.contains(&w) {
            seen.push(w);
        }
    }
    seen.join(", ")
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
    let held_total = opts.test_queries + opts.dev_queries;
    if held_total >= kept.len() {
        return Err(TrainerError::InvalidArgument {
            name: "test_queries",
            reason: format!(
                "{} test + {} dev queries requested but only {} synsets are usable",
                opts.test_queries,
                opts.dev_queries,
                kept.len()
            ),
        });
    }

    // A seeded partial Fisher-Yates picks the held-out synsets: the first
    // `test_queries` draws for test, the next `dev_queries` for dev.
    let mut order: Vec<usize> = (0..kept.len()).collect();
    let mut rng = opts.seed;
    for i in 0..held_total {
        let j = i + (splitmix(&mut rng) % (order.len() - i) as u64) as usize;
        order.swap(i, j);
    }
    let mut held_out = vec![false; kept.len()];
    let mut split = |draws: &[usize], prefix: &str| {
        let mut draws = draws.to_vec();
        draws.sort_unstable();
        let mut queries = Vec::with_capacity(draws.len());
        let mut qrels = Qrels::new();
        for (n, &k) in draws.iter().enumerate() {
            held_out[k] = true;
            let (s, doc) = kept[k];
            let id = format!("{prefix}{n}");
            queries.push(Query { id: id.clone(), text: s.definition.clone() });
            qrels.entry(id).or_default().insert(corpus[doc].id.clone(), 1);
        }
        (queries, qrels)
    };
    let (test_queries, test_qrels) = split(&order[..opts.test_queries], "q");
    let (dev_queries, dev_qrels) = split(&order[opts.test_queries..held_total], "d");

    // The dev corpus: the dev queries' documents plus a seeded sample.
    let mut in_dev = vec![false; corpus.len()];
    let mut n_dev = 0;
    for &k in &order[opts.test_queries..held_total] {
        if !in_dev[kept[k].1] {
            in_dev[kept[k].1] = true;
            n_dev += 1;
        }
    }
    let target = opts.dev_corpus.min(corpus.len());
    let mut tries = 0;
    while n_dev < target && tries < 20 * corpus.len() {
        let d = (splitmix(&mut rng) % corpus.len() as u64) as usize;
        if !in_dev[d] {
            in_dev[d] = true;
            n_dev += 1;
        }
        tries += 1;
    }
    let dev_corpus =
        corpus.iter().zip(&in_dev).filter(|(_, &keep)| keep).map(|(d, _)| d.clone()).collect();

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
    Ok(WordNetTask { corpus, train, test_queries, test_qrels, dev_corpus, dev_queries, dev_qrels })
}

impl WordNetTask {
    /// Writes `dir/corpus.jsonl`, `dir/queries.jsonl`, `dir/qrels/test.tsv`
    /// (a BEIR folder for the test split), the same for the dev split in
    /// `dir/dev/` (split `dev`), and `dir/train.jsonl` (`{"query",
    /// "positive"}` pairs), each through a temp file and rename.
    pub fn write(&self, dir: &Path) -> Result<()> {
        write_beir(dir, &self.corpus, &self.test_queries, &self.test_qrels, "test")?;
        write_beir(&dir.join("dev"), &self.dev_corpus, &self.dev_queries, &self.dev_qrels, "dev")?;
        write_atomic(&dir.join("train.jsonl"), |w| {
            for p in &self.train {
                let v = serde_json::json!({"query": p.query, "positive": self.corpus[p.doc].text});
                writeln!(w, "{v}")?;
            }
            Ok(())
        })
    }
}

// One BEIR folder: corpus, queries, one qrels split.
fn write_beir(
    dir: &Path,
    corpus: &[Document],
    queries: &[Query],
    qrels: &Qrels,
    split: &str,
) -> Result<()> {
    fs::create_dir_all(dir.join("qrels")).with_path(dir)?;
    write_atomic(&dir.join("corpus.jsonl"), |w| {
        for d in corpus {
            writeln!(w, "{}", serde_json::json!({"_id": d.id, "title": "", "text": d.text}))?;
        }
        Ok(())
    })?;
    write_atomic(&dir.join("queries.jsonl"), |w| {
        for q in queries {
            writeln!(w, "{}", serde_json::json!({"_id": q.id, "text": q.text}))?;
        }
        Ok(())
    })?;
    write_atomic(&dir.join("qrels").join(format!("{split}.tsv")), |w| {
        writeln!(w, "query-id\tcorpus-id\tscore")?;
        for q in queries {
            let mut docs: Vec<_> = qrels[&q.id].iter().collect();
            docs.sort();
            for (d, s) in docs {
                writeln!(w, "{}\t{d}\t{s}", q.id)?;
            }
        }
        Ok(())
    })
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
            synset(5, &["cat", "Cat", "true cat"], "a small domestic feline", &[]),
        ]
    }

    #[test]
    fn identical_word_lists_share_a_document_and_held_out_pairs_stay_out() {
        let opts =
            TaskOptions { test_queries: 2, dev_queries: 1, dev_corpus: 2, ..Default::default() };
        let t = build(&sample(), &opts).unwrap();
        assert_eq!(t.corpus.len(), 4, "bank and Bank are one document");
        assert!(t.corpus.iter().any(|d| d.text == "cat, true cat"), "{:?}", t.corpus);
        assert_eq!(t.dev_queries.len(), 1);
        assert_eq!(t.dev_corpus.len(), 2);
        let dev_doc = t.dev_qrels["d0"].keys().next().unwrap();
        assert!(t.dev_corpus.iter().any(|d| &d.id == dev_doc), "dev corpus holds its answer");
        assert!(!t.test_queries.iter().any(|q| q.text == t.dev_queries[0].text));
        assert_eq!(t.test_queries.len(), 2);
        for q in &t.test_queries {
            let doc = t.test_qrels[&q.id].keys().next().unwrap();
            let doc_idx = t.corpus.iter().position(|d| &d.id == doc).unwrap();
            assert!(!t.train.iter().any(|p| p.query == q.text && p.doc == doc_idx), "{q:?} leaked");
        }
        // 5 definitions - 3 held out + 2 examples.
        assert_eq!(t.train.len(), 4);
        // Same seed, same split; another seed, (here) another split.
        let again = build(&sample(), &opts).unwrap();
        assert_eq!(again.test_queries, t.test_queries);
        let other = build(&sample(), &TaskOptions { seed: 7, ..opts.clone() }).unwrap();
        assert_ne!(other.test_queries, t.test_queries);
    }

    #[test]
    fn too_many_test_queries_or_nothing_usable_is_an_error() {
        let opts = TaskOptions { test_queries: 4, dev_queries: 1, ..TaskOptions::default() };
        assert!(build(&sample(), &opts).unwrap_err().to_string().contains("test_queries"));
        assert!(build(&[], &TaskOptions::default()).is_err());
    }

    #[test]
    fn written_folder_reads_back_as_beir() {
        let dir = tempfile::tempdir().unwrap();
        let opts = TaskOptions { test_queries: 2, dev_queries: 1, ..TaskOptions::default() };
        let t = build(&sample(), &opts).unwrap();
        t.write(dir.path()).unwrap();
        let dev = crate::data::beir::load_beir(
            &dir.path().join("dev"),
            "dev",
            crate::data::ReadOptions::STRICT,
        )
        .unwrap();
        assert_eq!(dev.queries, t.dev_queries);
        assert_eq!(dev.corpus, t.dev_corpus);
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
