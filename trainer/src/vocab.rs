//! WordPiece vocabulary training: a small `vocab.txt` fitted to a corpus.
//!
//! In a model of a few million parameters the token table dominates (30,522
//! x 384 floats is 11.7M for BERT's vocabulary), so a 4k-16k vocabulary
//! fitted to the target domain is the cheapest way to shrink it.
//!
//! Method (frequency-driven merges, the scheme BERT-style trainers use):
//! 1. split the corpus with the runtime's [`BasicTokenizer`], so training
//!    sees exactly the words the tokenizer will, and count each word;
//! 2. start from the alphabet: each word is its first character followed by
//!    `##`-prefixed continuation characters;
//! 3. repeatedly merge the adjacent pair of symbols with the highest count,
//!    summed over words weighted by their frequency (`un` + `##able` gives
//!    `unable`; `##a` + `##b` gives `##ab`), until the vocabulary is full or
//!    no pair occurs `min_frequency` times.
//!
//! Pair counts are kept incrementally with a max-heap whose stale entries
//! are refreshed when popped (counts of existing pairs only fall as merges
//! proceed), so a merge costs time in the words it touches, not the corpus.
//! Ties break on symbol ids, which follow a sorted alphabet and the merge
//! order, so the result does not depend on hash order or corpus order.
//!
//! Every corpus word stays tokenizable without `[UNK]`: the alphabet holds
//! each character in every position it was seen in, and greedy matching can
//! always fall back to single characters. Words over the tokenizer's
//! per-word limit are skipped (they become `[UNK]` whatever the vocabulary).
//!
//! Left out: likelihood-based scoring of merges (the original WordPiece
//! criterion), alphabet limits and character coverage for rare scripts:
//! every character seen is kept.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::fmt;
use std::io::Write;
use std::path::Path;

use crate::runtime::tokenizer::{
    BasicTokenizer, Tokenizer, TokenizerError, Vocab, Words, CLS, CONTINUATION,
    DEFAULT_MAX_INPUT_CHARS_PER_WORD, MASK, PAD, SEP, UNK,
};

/// Special tokens written first, in this order (ids 0 to 4).
pub const SPECIAL_TOKENS: [&str; 5] = [PAD, UNK, CLS, SEP, MASK];

/// Settings of a training run.
#[derive(Clone, Copy, Debug)]
pub struct VocabConfig {
    /// Tokens in the output, specials included.
    pub vocab_size: usize,
    /// A pair is merged only if it occurs at least this often.
    pub min_frequency: u64,
    /// Pre-tokenization; must match the tokenizer that will use the result.
    pub basic: BasicTokenizer,
    /// Words with more characters are skipped.
    pub max_word_chars: usize,
}

impl Default for VocabConfig {
    fn default() -> Self {
        VocabConfig {
            vocab_size: 8192,
            min_frequency: 2,
            basic: BasicTokenizer::default(),
            max_word_chars: DEFAULT_MAX_INPUT_CHARS_PER_WORD,
        }
    }
}

/// Errors of vocabulary training.
#[derive(Debug)]
pub enum VocabTrainError {
    /// The corpus held no word.
    EmptyCorpus,
    /// `vocab_size` cannot hold the specials plus the corpus alphabet.
    VocabSizeTooSmall { requested: usize, needed: usize },
    /// Writing the vocabulary failed.
    Io { path: String, source: std::io::Error },
    /// The trained tokens did not form a valid vocabulary (an internal
    /// error: training never emits duplicates).
    Invalid(TokenizerError),
}

impl fmt::Display for VocabTrainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VocabTrainError::EmptyCorpus => write!(f, "the corpus holds no word"),
            VocabTrainError::VocabSizeTooSmall { requested, needed } => write!(
                f,
                "vocab_size {requested} is below the {needed} tokens of the specials and the corpus alphabet"
            ),
            VocabTrainError::Io { path, source } => write!(f, "cannot write {path}: {source}"),
            VocabTrainError::Invalid(e) => write!(f, "trained vocabulary is invalid: {e}"),
        }
    }
}

impl std::error::Error for VocabTrainError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            VocabTrainError::Io { source, .. } => Some(source),
            VocabTrainError::Invalid(e) => Some(e),
            _ => None,
        }
    }
}

/// A trained vocabulary: tokens in id order, specials first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrainedVocab {
    tokens: Vec<String>,
}

impl TrainedVocab {
    /// Tokens in id order.
    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Never true: the specials are always there.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The runtime vocabulary of these tokens.
    pub fn to_vocab(&self) -> Result<Vocab, VocabTrainError> {
        Vocab::from_tokens(&self.tokens, "trained vocabulary").map_err(VocabTrainError::Invalid)
    }

    /// A BERT-style tokenizer over these tokens.
    pub fn to_tokenizer(&self, basic: BasicTokenizer) -> Result<Tokenizer, VocabTrainError> {
        Ok(Tokenizer::new(self.to_vocab()?).with_basic(basic))
    }

    /// Write `vocab.txt` (one token a line) through a temporary file, fsync
    /// and rename, so a crash never leaves a half-written vocabulary.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<(), VocabTrainError> {
        let path = path.as_ref();
        let io = |source| VocabTrainError::Io { path: path.display().to_string(), source };
        let mut tmp_name = path.as_os_str().to_owned();
        tmp_name.push(".tmp");
        let tmp = Path::new(&tmp_name);
        let mut text = String::with_capacity(self.tokens.iter().map(|t| t.len() + 1).sum());
        for t in &self.tokens {
            text.push_str(t);
            text.push('\n');
        }
        let mut f = std::fs::File::create(tmp).map_err(io)?;
        f.write_all(text.as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
        drop(f);
        std::fs::rename(tmp, path).map_err(io)
    }
}

/// Count the words of a corpus as the tokenizer will split them.
pub fn count_words<I, S>(corpus: I, cfg: &VocabConfig) -> HashMap<String, u64>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut counts: HashMap<String, u64> = HashMap::new();
    let mut words = Words::default();
    for text in corpus {
        cfg.basic.split_into(text.as_ref(), &mut words);
        for w in words.iter() {
            if w.chars().count() > cfg.max_word_chars {
                continue;
            }
            match counts.get_mut(w) {
                Some(c) => *c += 1,
                None => {
                    counts.insert(w.to_owned(), 1);
                }
            }
        }
    }
    counts
}

/// Train a WordPiece vocabulary of at most `cfg.vocab_size` tokens on a
/// corpus of texts.
pub fn train<I, S>(corpus: I, cfg: &VocabConfig) -> Result<TrainedVocab, VocabTrainError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    train_from_counts(&count_words(corpus, cfg), cfg)
}

/// Train from word counts (as [`count_words`] makes them).
pub fn train_from_counts(
    counts: &HashMap<String, u64>,
    cfg: &VocabConfig,
) -> Result<TrainedVocab, VocabTrainError> {
    if counts.is_empty() {
        return Err(VocabTrainError::EmptyCorpus);
    }
    let mut words: Vec<(&str, u64)> = counts.iter().map(|(w, &c)| (w.as_str(), c)).collect();
    words.sort_unstable();

    // Alphabet: word-initial characters, then continuation characters, each
    // sorted; symbol ids follow this order.
    let mut initial = std::collections::BTreeSet::new();
    let mut inner = std::collections::BTreeSet::new();
    for (w, _) in &words {
        let mut chars = w.chars();
        initial.extend(chars.next());
        inner.extend(chars);
    }
    let mut symbols = Symbols::default();
    for c in &initial {
        symbols.intern(c.to_string());
    }
    for c in &inner {
        symbols.intern(format!("{CONTINUATION}{c}"));
    }
    let reserved = SPECIAL_TOKENS.len();
    let needed = reserved + symbols.names.len();
    if cfg.vocab_size < needed {
        return Err(VocabTrainError::VocabSizeTooSmall { requested: cfg.vocab_size, needed });
    }

    // Each word as symbol ids, and the pair statistics over all words.
    let mut seqs: Vec<Vec<u32>> = words
        .iter()
        .map(|(w, _)| {
            w.chars()
                .enumerate()
                .map(|(i, c)| {
                    let name = if i == 0 { c.to_string() } else { format!("{CONTINUATION}{c}") };
                    symbols.ids[&name]
                })
                .collect()
        })
        .collect();
    let mut pairs = PairStats::default();
    for (i, seq) in seqs.iter().enumerate() {
        pairs.add_word(seq, words[i].1 as i64, i);
    }
    let mut heap: BinaryHeap<(u64, Reverse<(u32, u32)>)> = pairs
        .count
        .iter()
        .filter(|&(_, &c)| c > 0)
        .map(|(&p, &c)| (c as u64, Reverse(p)))
        .collect();

    // Merge the most frequent pair until the vocabulary is full.
    while reserved + symbols.names.len() < cfg.vocab_size {
        let Some((stored, Reverse(pair))) = heap.pop() else { break };
        let now = pairs.count.get(&pair).copied().unwrap_or(0).max(0) as u64;
        if now != stored {
            if now > 0 {
                heap.push((now, Reverse(pair)));
            }
            continue;
        }
        if now < cfg.min_frequency.max(1) {
            break;
        }
        let merged = symbols.merged_name(pair);
        let m = symbols.intern(merged);
        let touched: Vec<usize> = {
            let mut v: Vec<usize> =
                pairs.words.remove(&pair).unwrap_or_default().into_iter().collect();
            v.sort_unstable();
            v
        };
        let mut fresh = Vec::new();
        for wi in touched {
            let weight = words[wi].1 as i64;
            if !contains_pair(&seqs[wi], pair) {
                continue;
            }
            pairs.add_word(&seqs[wi], -weight, wi);
            merge_in_place(&mut seqs[wi], pair, m);
            pairs.add_word(&seqs[wi], weight, wi);
            fresh
                .extend(seqs[wi].windows(2).map(|w| (w[0], w[1])).filter(|p| p.0 == m || p.1 == m));
        }
        pairs.count.remove(&pair);

        // Pairs with the new symbol enter the heap once, at their final count.
        fresh.sort_unstable();
        fresh.dedup();
        for p in fresh {
            heap.push((pairs.count[&p].max(0) as u64, Reverse(p)));
        }
    }

    let tokens = SPECIAL_TOKENS.iter().map(|s| s.to_string()).chain(symbols.names).collect();
    Ok(TrainedVocab { tokens })
}

// Symbol names and their ids; a merge that yields an existing name (the
// same string reached by another split) reuses its id.
#[derive(Default)]
struct Symbols {
    names: Vec<String>,
    ids: HashMap<String, u32>,
}

impl Symbols {
    fn intern(&mut self, name: String) -> u32 {
        if let Some(&id) = self.ids.get(&name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.ids.insert(name.clone(), id);
        self.names.push(name);
        id
    }

    // `un` + `##able` = `unable`; the right symbol is always a continuation.
    fn merged_name(&self, (a, b): (u32, u32)) -> String {
        let right = &self.names[b as usize];
        let right = right.strip_prefix(CONTINUATION).unwrap_or(right);
        format!("{}{right}", self.names[a as usize])
    }
}

// Weighted counts of adjacent symbol pairs, and which words hold each pair
// (a superset: words are not removed when a merge takes the pair away).
#[derive(Default)]
struct PairStats {
    count: HashMap<(u32, u32), i64>,
    words: HashMap<(u32, u32), HashSet<usize>>,
}

impl PairStats {
    fn add_word(&mut self, seq: &[u32], weight: i64, word: usize) {
        for w in seq.windows(2) {
            let p = (w[0], w[1]);
            *self.count.entry(p).or_insert(0) += weight;
            if weight > 0 {
                self.words.entry(p).or_default().insert(word);
            }
        }
    }
}

fn contains_pair(seq: &[u32], (a, b): (u32, u32)) -> bool {
    seq.windows(2).any(|w| w[0] == a && w[1] == b)
}

// Replace each occurrence of `a b`, left to right without overlap, by `m`.
fn merge_in_place(seq: &mut Vec<u32>, (a, b): (u32, u32), m: u32) {
    let mut out = 0;
    let mut i = 0;
    while i < seq.len() {
        if i + 1 < seq.len() && seq[i] == a && seq[i + 1] == b {
            seq[out] = m;
            i += 2;
        } else {
            seq[out] = seq[i];
            i += 1;
        }
        out += 1;
    }
    seq.truncate(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    // A made-up corpus: sentences drawn from a fixed word list by a small
    // linear congruential generator, so the test needs no data files.
    fn corpus(n: usize, seed: u64) -> Vec<String> {
        const WORDS: &[&str] = &[
            "retrieval",
            "retrieve",
            "retrieved",
            "encoder",
            "encoders",
            "encoding",
            "dense",
            "sparse",
            "index",
            "indexes",
            "indexing",
            "query",
            "queries",
            "document",
            "documents",
            "token",
            "tokens",
            "tokenizer",
            "vector",
            "vectors",
            "quantized",
            "quantization",
            "the",
            "a",
            "of",
            "and",
            "is",
            "Café",
            "naïve",
            "北京",
            "über",
            "embedding",
            "embeddings",
            "search",
            "searching",
            "model",
            "models",
            "small",
        ];
        let mut x = seed;
        (0..n)
            .map(|_| {
                let mut s = String::new();
                for _ in 0..8 {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    s.push_str(WORDS[(x >> 33) as usize % WORDS.len()]);
                    s.push_str(if x & 3 == 0 { ", " } else { " " });
                }
                s.push('.');
                s
            })
            .collect()
    }

    #[test]
    fn no_unknown_words_size_honoured_specials_first() {
        let texts = corpus(400, 7);
        let cfg = VocabConfig { vocab_size: 120, ..Default::default() };
        let v = train(&texts, &cfg).unwrap();
        assert_eq!(v.len(), 120, "enough merges exist to fill 120 tokens");
        assert_eq!(&v.tokens()[..5], SPECIAL_TOKENS);
        let tok = v.to_tokenizer(cfg.basic).unwrap();
        let unk = tok.vocab().special().unk;
        let (mut ids, mut pieces, mut chars) = (Vec::new(), 0, 0);
        let mut scratch = Default::default();
        for t in &texts {
            ids.clear();
            tok.tokenize_into(t, &mut scratch, &mut ids).unwrap();
            assert!(!ids.contains(&unk), "[UNK] in {t:?}");
            pieces += ids.len();
            chars += t.chars().filter(|c| !c.is_whitespace()).count();
        }
        // Merges must pay off: well under one piece per character.
        assert!(pieces * 3 < chars, "{pieces} pieces for {chars} characters");
    }

    #[test]
    fn deterministic_and_order_independent() {
        let mut texts = corpus(300, 11);
        let cfg = VocabConfig { vocab_size: 90, ..Default::default() };
        let a = train(&texts, &cfg).unwrap();
        assert_eq!(a, train(&texts, &cfg).unwrap());
        texts.reverse();
        assert_eq!(a, train(&texts, &cfg).unwrap());
    }

    #[test]
    fn stops_at_min_frequency_and_rejects_tiny_sizes() {
        // Each pair occurs once: nothing reaches min_frequency 2.
        let cfg = VocabConfig { vocab_size: 1000, ..Default::default() };
        let v = train(["abc xyz"], &cfg).unwrap();
        assert_eq!(v.len(), 5 + 6, "specials plus a, x, ##b, ##c, ##y, ##z");
        let cfg = VocabConfig { vocab_size: 8, ..Default::default() };
        assert_eq!(train(["abc"], &cfg).unwrap().len(), 8, "specials plus a, ##b, ##c fit");
        let cfg = VocabConfig { vocab_size: 7, ..Default::default() };
        assert!(matches!(
            train(["abc"], &cfg),
            Err(VocabTrainError::VocabSizeTooSmall { requested: 7, needed: 8 })
        ));
        assert!(matches!(train([" \t\u{200b} "], &cfg), Err(VocabTrainError::EmptyCorpus)));
    }

    #[test]
    fn merge_replaces_without_overlap() {
        let mut s = vec![1, 1, 1, 2, 1, 1];
        merge_in_place(&mut s, (1, 1), 9);
        assert_eq!(s, [9, 1, 2, 9]);
    }

    #[test]
    fn written_file_loads() {
        let texts = corpus(100, 3);
        let v = train(&texts, &VocabConfig { vocab_size: 80, ..Default::default() }).unwrap();
        let dir = std::env::temp_dir().join(format!("edgecl-vocab-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("vocab.txt");
        v.write(&path).unwrap();
        let tok = Tokenizer::from_vocab_file(&path).unwrap();
        assert_eq!(tok.vocab().tokens().collect::<Vec<_>>(), v.tokens());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
