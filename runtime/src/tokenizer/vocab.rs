//! WordPiece vocabulary: BERT's `vocab.txt`, one token a line, the line
//! number (from 0) being the id.
//!
//! Lookups are the tokenizer's hot path, so tokens sit in two hash maps
//! keyed by `&str`: every token by its full text (word-initial pieces) and
//! every `##` token by the text after the prefix (continuation pieces).
//! WordPiece then looks up a slice of the word itself, never building a
//! `##`-prefixed string. The hasher is a multiply-rotate hash in the style of
//! rustc's FxHash: much faster than SipHash on keys of a few bytes. It gives
//! no protection against chosen collisions, which only the vocabulary file
//! (the stored keys) could produce, not the text being tokenized.
//!
//! A vocabulary must name the four special tokens `[PAD]`, `[UNK]`, `[CLS]`
//! and `[SEP]`; other special tokens (`[MASK]`, `[unused*]`) are ordinary
//! entries here.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::Path;

use super::TokenizerError;

/// Prefix marking a piece that continues a word.
pub const CONTINUATION: &str = "##";
/// Padding token.
pub const PAD: &str = "[PAD]";
/// Unknown-word token.
pub const UNK: &str = "[UNK]";
/// Classification token opening every sequence.
pub const CLS: &str = "[CLS]";
/// Separator closing each segment.
pub const SEP: &str = "[SEP]";

/// Ids of the special tokens a vocabulary must hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpecialIds {
    pub pad: u32,
    pub unk: u32,
    pub cls: u32,
    pub sep: u32,
}

type FxMap = HashMap<Box<str>, u32, BuildHasherDefault<FxHasher>>;

/// A loaded vocabulary.
#[derive(Clone, Debug)]
pub struct Vocab {
    tokens: Vec<Box<str>>,
    initial: FxMap,
    continuation: FxMap,
    // Longest key of each map in bytes: WordPiece starts its search there.
    max_initial: usize,
    max_continuation: usize,
    special: SpecialIds,
}

impl Vocab {
    /// Read a `vocab.txt` file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, TokenizerError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path)
            .map_err(|source| TokenizerError::Io { path: path.display().to_string(), source })?;
        Self::from_bytes(&bytes, &path.display().to_string())
    }

    /// Parse the contents of a `vocab.txt`; `name` labels errors.
    ///
    /// Lines end in `\n` or `\r\n`; a final newline is optional. Empty
    /// lines, invalid UTF-8, duplicate tokens and missing special tokens
    /// are errors naming the line.
    pub fn from_bytes(bytes: &[u8], name: &str) -> Result<Self, TokenizerError> {
        let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        if body.is_empty() {
            return Err(TokenizerError::EmptyVocab { path: name.to_owned() });
        }
        let mut tokens = Vec::new();
        for (i, raw) in body.split(|&b| b == b'\n').enumerate() {
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            let line = i + 1;
            let token = std::str::from_utf8(raw)
                .map_err(|_| TokenizerError::NotUtf8 { path: name.to_owned(), line })?;
            if token.is_empty() {
                return Err(TokenizerError::EmptyToken { path: name.to_owned(), line });
            }
            tokens.push(token);
        }
        Self::from_tokens(tokens, name)
    }

    /// Build from tokens in id order; `name` labels errors, whose line
    /// numbers are ids plus one.
    pub fn from_tokens<S: AsRef<str>>(
        tokens: impl IntoIterator<Item = S>,
        name: &str,
    ) -> Result<Self, TokenizerError> {
        let mut v = Vocab {
            tokens: Vec::new(),
            initial: FxMap::default(),
            continuation: FxMap::default(),
            max_initial: 0,
            max_continuation: 0,
            special: SpecialIds { pad: 0, unk: 0, cls: 0, sep: 0 },
        };

        // Fill both maps, refusing empty and duplicate tokens.
        for token in tokens {
            let token = token.as_ref();
            let line = v.tokens.len() + 1;
            if token.is_empty() {
                return Err(TokenizerError::EmptyToken { path: name.to_owned(), line });
            }
            let id = u32::try_from(v.tokens.len()).map_err(|_| TokenizerError::TooManyTokens {
                path: name.to_owned(),
                count: v.tokens.len(),
            })?;
            if let Some(&first) = v.initial.get(token) {
                return Err(TokenizerError::DuplicateToken {
                    path: name.to_owned(),
                    token: token.to_owned(),
                    line,
                    first_line: first as usize + 1,
                });
            }
            v.initial.insert(token.into(), id);
            v.max_initial = v.max_initial.max(token.len());
            if let Some(rest) = token.strip_prefix(CONTINUATION).filter(|r| !r.is_empty()) {
                v.continuation.insert(rest.into(), id);
                v.max_continuation = v.max_continuation.max(rest.len());
            }
            v.tokens.push(token.into());
        }
        if v.tokens.is_empty() {
            return Err(TokenizerError::EmptyVocab { path: name.to_owned() });
        }

        // The four tokens every encoding needs.
        let need = |token: &'static str| {
            v.initial
                .get(token)
                .copied()
                .ok_or(TokenizerError::MissingSpecialToken { path: name.to_owned(), token })
        };
        v.special =
            SpecialIds { pad: need(PAD)?, unk: need(UNK)?, cls: need(CLS)?, sep: need(SEP)? };
        Ok(v)
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Always false: a vocabulary holds at least the special tokens.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Id of a token, written in full (`##ing` for a continuation).
    pub fn id(&self, token: &str) -> Option<u32> {
        self.initial.get(token).copied()
    }

    /// Token of an id.
    pub fn token(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(|t| &**t)
    }

    /// Ids of the special tokens.
    pub fn special(&self) -> SpecialIds {
        self.special
    }

    /// Tokens in id order.
    pub fn tokens(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.tokens.iter().map(|t| &**t)
    }

    // Id of a piece: word-initial, or continuation (`piece` given without
    // the `##` prefix).
    #[inline]
    pub(crate) fn piece(&self, piece: &str, continuation: bool) -> Option<u32> {
        let map = if continuation { &self.continuation } else { &self.initial };
        map.get(piece).copied()
    }

    // Longest piece, in bytes, of the given kind.
    #[inline]
    pub(crate) fn max_piece_len(&self, continuation: bool) -> usize {
        if continuation {
            self.max_continuation
        } else {
            self.max_initial
        }
    }
}

/// Multiply-rotate hasher over 8-byte words (the scheme of rustc's FxHash).
#[derive(Clone, Copy, Default)]
pub(crate) struct FxHasher {
    hash: u64,
}

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(FX_SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            // Fold the length in so "a" and "a\0" differ.
            self.add(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}
