//! BERT WordPiece tokenizer: text to the ids, token type ids and attention
//! mask an encoder takes, compatible with BERT's uncased `vocab.txt`.
//!
//! Pipeline: [`BasicTokenizer`] cleans, lower-cases, strips accents and
//! splits the text into words; WordPiece cuts each word greedily into the
//! longest vocabulary pieces, left to right, continuation pieces carrying
//! `##`; a word longer than `max_input_chars_per_word` characters, or one
//! with a stretch no piece covers, becomes a single `[UNK]`. Then
//! `[CLS] a [SEP]` or `[CLS] a [SEP] b [SEP]` (type ids 0 for the first
//! segment with its specials, 1 for the second), truncation and padding.
//!
//! Design: the [`Tokenizer`] is immutable and `Sync`; per-call state lives in
//! a caller-owned [`Scratch`], so a loop over texts reuses its buffers and
//! allocates only the output. Batches run on rayon with one scratch per
//! worker. The compatibility test (`runtime/tests/tokenizer_compat.rs`)
//! checks ids against the Hugging Face `tokenizers` library on a shipped
//! fixture.
//!
//! Special tokens written in the text (`[CLS]`, `[SEP]`, `[PAD]`, `[UNK]`,
//! `[MASK]`, case-sensitive, before any normalisation) are kept whole and
//! encoded as themselves, as the reference does; `with_special_tokens_in_text
//! (false)` turns that off so such text is tokenized like any other.
//!
//! Left out: offsets back into the input text, user-added tokens beyond the
//! specials, left padding and truncation strides.

mod basic;
mod vocab;

use std::fmt;

use rayon::prelude::*;

pub use basic::{
    is_cjk_ideograph, is_nonspacing_mark, is_punctuation, is_removed, is_whitespace,
    BasicTokenizer, Words,
};
pub use vocab::{SpecialIds, Vocab, CLS, CONTINUATION, PAD, SEP, UNK};

/// BERT's limit on the characters of one word; longer words become `[UNK]`.
pub const DEFAULT_MAX_INPUT_CHARS_PER_WORD: usize = 100;

/// Errors of vocabulary loading and encoding.
#[derive(Debug)]
pub enum TokenizerError {
    /// The vocabulary file could not be read.
    Io { path: String, source: std::io::Error },
    /// The vocabulary holds no token.
    EmptyVocab { path: String },
    /// A line (1-based) is not valid UTF-8.
    NotUtf8 { path: String, line: usize },
    /// A line is empty.
    EmptyToken { path: String, line: usize },
    /// A token appears twice.
    DuplicateToken { path: String, token: String, line: usize, first_line: usize },
    /// One of `[PAD]`, `[UNK]`, `[CLS]`, `[SEP]` is absent.
    MissingSpecialToken { path: String, token: &'static str },
    /// More tokens than a `u32` id can number.
    TooManyTokens { path: String, count: usize },
    /// `max_len` cannot hold the special tokens of the sequence.
    MaxLenTooSmall { max_len: usize, specials: usize },
    /// The input text is 1 GiB or longer.
    TextTooLong { bytes: usize },
}

impl fmt::Display for TokenizerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use TokenizerError::*;
        match self {
            Io { path, source } => write!(f, "cannot read vocabulary {path}: {source}"),
            EmptyVocab { path } => write!(f, "vocabulary {path} holds no token"),
            NotUtf8 { path, line } => write!(f, "{path}:{line}: token is not valid UTF-8"),
            EmptyToken { path, line } => write!(f, "{path}:{line}: empty token"),
            DuplicateToken { path, token, line, first_line } => {
                write!(f, "{path}:{line}: duplicate token {token:?} (first on line {first_line})")
            }
            MissingSpecialToken { path, token } => {
                write!(f, "vocabulary {path} lacks the special token {token}")
            }
            TooManyTokens { path, count } => {
                write!(f, "vocabulary {path} has {count} tokens, more than u32 ids can number")
            }
            MaxLenTooSmall { max_len, specials } => {
                write!(f, "max_len {max_len} cannot hold the {specials} special tokens")
            }
            TextTooLong { bytes } => write!(f, "text of {bytes} bytes is too long (limit 1 GiB)"),
        }
    }
}

impl std::error::Error for TokenizerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TokenizerError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// How to pad encodings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Padding {
    /// Leave each encoding its own length.
    #[default]
    None,
    /// Pad up to this length (longer encodings are left as they are; set
    /// `max_len` to bound them).
    Fixed(usize),
    /// Pad every encoding of a batch to the longest one.
    Longest,
}

/// Truncation and padding of an encode call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EncodeOptions {
    /// Longest encoding, special tokens included; pairs give up tokens from
    /// the longer segment first.
    pub max_len: Option<usize>,
    /// Padding with `[PAD]`, type id 0 and mask 0, on the right.
    pub padding: Padding,
}

/// One encoded text or pair. The three vectors have equal length.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Encoding {
    /// Token ids.
    pub ids: Vec<u32>,
    /// Segment of each token: 0 for `[CLS] a [SEP]`, 1 for `b [SEP]`.
    pub type_ids: Vec<u8>,
    /// 1 for a real token, 0 for padding.
    pub attention_mask: Vec<u8>,
}

impl Encoding {
    /// Number of positions, padding included.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True for an encoding with no position (never produced by encoding).
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Pad on the right up to `len` positions; no-op when already as long.
    pub fn pad_to(&mut self, len: usize, pad_id: u32) {
        if self.ids.len() < len {
            self.ids.resize(len, pad_id);
            self.type_ids.resize(len, 0);
            self.attention_mask.resize(len, 0);
        }
    }
}

/// Reusable per-call buffers. One per thread.
#[derive(Clone, Debug, Default)]
pub struct Scratch {
    words: Words,
    a: Vec<u32>,
    b: Vec<u32>,
}

/// A WordPiece tokenizer over a [`Vocab`].
#[derive(Clone, Debug)]
pub struct Tokenizer {
    vocab: Vocab,
    basic: BasicTokenizer,
    max_input_chars_per_word: usize,
    // Special tokens recognised in raw text, with their ids; empty when off.
    specials_in_text: Vec<(Box<str>, u32)>,
}

/// Special tokens that are matched in raw text when present in the vocabulary.
pub const SPECIAL_TOKENS_IN_TEXT: [&str; 5] = [PAD, UNK, CLS, SEP, MASK];

/// Masking token, matched in text like the other specials when the
/// vocabulary has it.
pub const MASK: &str = "[MASK]";

impl Tokenizer {
    /// BERT uncased settings over a vocabulary.
    pub fn new(vocab: Vocab) -> Self {
        Tokenizer {
            vocab,
            basic: BasicTokenizer::default(),
            max_input_chars_per_word: DEFAULT_MAX_INPUT_CHARS_PER_WORD,
            specials_in_text: Vec::new(),
        }
        .with_special_tokens_in_text(true)
    }

    /// Whether special tokens written in the text are kept whole (the
    /// default, as the reference does) or tokenized as ordinary text.
    pub fn with_special_tokens_in_text(mut self, on: bool) -> Self {
        self.specials_in_text.clear();
        if on {
            for name in SPECIAL_TOKENS_IN_TEXT {
                if let Some(id) = self.vocab.id(name) {
                    self.specials_in_text.push((name.into(), id));
                }
            }
        }
        self
    }

    /// BERT uncased settings over a `vocab.txt` file.
    pub fn from_vocab_file(path: impl AsRef<std::path::Path>) -> Result<Self, TokenizerError> {
        Ok(Self::new(Vocab::from_file(path)?))
    }

    /// Replace the basic tokenizer settings (e.g. cased: no lower-casing, no
    /// accent stripping).
    pub fn with_basic(mut self, basic: BasicTokenizer) -> Self {
        self.basic = basic;
        self
    }

    /// Replace the per-word character limit.
    pub fn with_max_input_chars_per_word(mut self, chars: usize) -> Self {
        self.max_input_chars_per_word = chars;
        self
    }

    /// The vocabulary.
    pub fn vocab(&self) -> &Vocab {
        &self.vocab
    }

    /// The basic tokenizer settings.
    pub fn basic(&self) -> BasicTokenizer {
        self.basic
    }

    /// Append the WordPiece ids of `text`, without special tokens, to `out`.
    pub fn tokenize_into(
        &self,
        text: &str,
        scratch: &mut Scratch,
        out: &mut Vec<u32>,
    ) -> Result<(), TokenizerError> {
        check_text(text)?;
        let mut rest = text;
        while let Some((at, len, id)) = self.find_special(rest) {
            self.tokenize_plain(&rest[..at], scratch, out);
            out.push(id);
            rest = &rest[at + len..];
        }
        self.tokenize_plain(rest, scratch, out);
        Ok(())
    }

    // Basic tokenizer then WordPiece, on text free of special tokens.
    fn tokenize_plain(&self, text: &str, scratch: &mut Scratch, out: &mut Vec<u32>) {
        self.basic.split_into(text, &mut scratch.words);
        for word in scratch.words.iter() {
            self.wordpiece(word, out);
        }
    }

    // First special token in `text`: (byte offset, byte length, id). All
    // specials open with '[', so only those positions are tried.
    fn find_special(&self, text: &str) -> Option<(usize, usize, u32)> {
        if self.specials_in_text.is_empty() {
            return None;
        }
        text.match_indices('[').find_map(|(at, _)| {
            let tail = &text[at..];
            self.specials_in_text
                .iter()
                .find(|(name, _)| tail.starts_with(&**name))
                .map(|(name, id)| (at, name.len(), *id))
        })
    }

    /// The WordPiece tokens of `text` as strings, without special tokens.
    /// For inspection; the encode calls are the fast path.
    pub fn tokenize(&self, text: &str) -> Result<Vec<&str>, TokenizerError> {
        let mut ids = Vec::new();
        self.tokenize_into(text, &mut Scratch::default(), &mut ids)?;
        Ok(ids.into_iter().filter_map(|id| self.vocab.token(id)).collect())
    }

    /// Encode one text as `[CLS] text [SEP]`.
    pub fn encode(&self, text: &str, opts: &EncodeOptions) -> Result<Encoding, TokenizerError> {
        let mut out = Encoding::default();
        self.encode_with(text, None, opts, &mut Scratch::default(), &mut out)?;
        Ok(out)
    }

    /// Encode a pair as `[CLS] a [SEP] b [SEP]`.
    pub fn encode_pair(
        &self,
        a: &str,
        b: &str,
        opts: &EncodeOptions,
    ) -> Result<Encoding, TokenizerError> {
        let mut out = Encoding::default();
        self.encode_with(a, Some(b), opts, &mut Scratch::default(), &mut out)?;
        Ok(out)
    }

    /// Encode a text, or a pair when `b` is given, into `out` (replacing its
    /// contents) using `scratch`: allocation-free once the buffers have grown.
    /// `Padding::Longest` pads nothing here: it concerns batches.
    pub fn encode_with(
        &self,
        a: &str,
        b: Option<&str>,
        opts: &EncodeOptions,
        scratch: &mut Scratch,
        out: &mut Encoding,
    ) -> Result<(), TokenizerError> {
        let specials = if b.is_some() { 3 } else { 2 };
        if let Some(max_len) = opts.max_len {
            if max_len < specials {
                return Err(TokenizerError::MaxLenTooSmall { max_len, specials });
            }
        }

        // Segment ids, then their lengths after truncation.
        let mut ids_a = std::mem::take(&mut scratch.a);
        let mut ids_b = std::mem::take(&mut scratch.b);
        ids_a.clear();
        ids_b.clear();
        let tokenized = self.tokenize_into(a, scratch, &mut ids_a).and_then(|()| match b {
            Some(b) => self.tokenize_into(b, scratch, &mut ids_b),
            None => Ok(()),
        });
        if let Err(e) = tokenized {
            (scratch.a, scratch.b) = (ids_a, ids_b);
            return Err(e);
        }
        let (len_a, len_b) = match opts.max_len {
            None => (ids_a.len(), ids_b.len()),
            Some(max_len) if b.is_none() => (ids_a.len().min(max_len - specials), 0),
            Some(max_len) => longest_first(ids_a.len(), ids_b.len(), max_len - specials),
        };

        // [CLS] a [SEP] (b [SEP]).
        let s = self.vocab.special();
        out.ids.clear();
        out.type_ids.clear();
        out.ids.push(s.cls);
        out.ids.extend_from_slice(&ids_a[..len_a]);
        out.ids.push(s.sep);
        out.type_ids.resize(out.ids.len(), 0);
        if b.is_some() {
            out.ids.extend_from_slice(&ids_b[..len_b]);
            out.ids.push(s.sep);
            out.type_ids.resize(out.ids.len(), 1);
        }
        out.attention_mask.clear();
        out.attention_mask.resize(out.ids.len(), 1);
        if let Padding::Fixed(len) = opts.padding {
            out.pad_to(len, s.pad);
        }
        (scratch.a, scratch.b) = (ids_a, ids_b);
        Ok(())
    }

    /// Encode many texts in parallel (rayon). `Padding::Longest` pads all to
    /// the longest encoding of the batch.
    pub fn encode_batch<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
        opts: &EncodeOptions,
    ) -> Result<Vec<Encoding>, TokenizerError> {
        let encoded = texts
            .par_iter()
            .map_init(Scratch::default, |scratch, t| {
                let mut out = Encoding::default();
                self.encode_with(t.as_ref(), None, opts, scratch, &mut out).map(|()| out)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(self.pad_batch(encoded, opts))
    }

    /// Encode many pairs in parallel (rayon); padding as in
    /// [`Tokenizer::encode_batch`].
    pub fn encode_pair_batch<A: AsRef<str> + Sync, B: AsRef<str> + Sync>(
        &self,
        pairs: &[(A, B)],
        opts: &EncodeOptions,
    ) -> Result<Vec<Encoding>, TokenizerError> {
        let encoded = pairs
            .par_iter()
            .map_init(Scratch::default, |scratch, (a, b)| {
                let mut out = Encoding::default();
                self.encode_with(a.as_ref(), Some(b.as_ref()), opts, scratch, &mut out)
                    .map(|()| out)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(self.pad_batch(encoded, opts))
    }

    fn pad_batch(&self, mut batch: Vec<Encoding>, opts: &EncodeOptions) -> Vec<Encoding> {
        if opts.padding == Padding::Longest {
            let longest = batch.iter().map(Encoding::len).max().unwrap_or(0);
            let pad = self.vocab.special().pad;
            batch.iter_mut().for_each(|e| e.pad_to(longest, pad));
        }
        batch
    }

    // Greedy longest-match-first WordPiece of one word, appended to `out`.
    //
    // From each start, try the longest candidate the vocabulary could hold
    // (its longest key, cut back to a character boundary) and shorten one
    // character at a time. A start with no match turns the whole word into
    // [UNK], undoing the pieces already pushed.
    fn wordpiece(&self, word: &str, out: &mut Vec<u32>) {
        let unk = self.vocab.special().unk;
        // Bytes bound characters from above, so most words skip the count.
        if word.len() > self.max_input_chars_per_word
            && word.chars().count() > self.max_input_chars_per_word
        {
            out.push(unk);
            return;
        }
        let mark = out.len();
        let mut start = 0;
        while start < word.len() {
            let cont = start > 0;
            let mut end = word.len().min(start + self.vocab.max_piece_len(cont));
            while !word.is_char_boundary(end) {
                end -= 1;
            }
            let mut found = None;
            while end > start {
                if let Some(id) = self.vocab.piece(&word[start..end], cont) {
                    found = Some(id);
                    break;
                }
                end -= 1;
                while !word.is_char_boundary(end) {
                    end -= 1;
                }
            }
            match found {
                Some(id) => {
                    out.push(id);
                    start = end;
                }
                None => {
                    out.truncate(mark);
                    out.push(unk);
                    return;
                }
            }
        }
    }
}

// Longest-first truncation of a pair to `target` tokens (specials excluded),
// the rule of the reference implementation: with n1 the shorter length,
// the longer keeps max(n1, target - n1); if both still do not fit, the
// shorter keeps target / 2 and the longer the rest (so the longer segment
// wins the odd token; on a tie, the second segment).
fn longest_first(len_a: usize, len_b: usize, target: usize) -> (usize, usize) {
    if len_a + len_b <= target {
        return (len_a, len_b);
    }
    let swap = len_a > len_b;
    let (mut n1, n2) = if swap { (len_b, len_a) } else { (len_a, len_b) };
    let mut n2 = if n1 > target { n1 } else { n1.max(target - n1) }.min(n2);
    if n1 + n2 > target {
        n1 = target / 2;
        n2 = target - n1;
    }
    if swap {
        (n2, n1)
    } else {
        (n1, n2)
    }
}

fn check_text(text: &str) -> Result<(), TokenizerError> {
    if u32::try_from(text.len()).is_ok_and(|n| n < u32::MAX / 4) {
        Ok(())
    } else {
        Err(TokenizerError::TextTooLong { bytes: text.len() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_first_rule() {
        assert_eq!(longest_first(2, 3, 5), (2, 3));
        assert_eq!(longest_first(2, 10, 5), (2, 3));
        assert_eq!(longest_first(10, 2, 5), (3, 2));
        assert_eq!(longest_first(4, 4, 5), (2, 3));
        assert_eq!(longest_first(10, 3, 5), (3, 2));
        assert_eq!(longest_first(9, 9, 0), (0, 0));
        assert_eq!(longest_first(1, 9, 1), (0, 1));
    }
}
