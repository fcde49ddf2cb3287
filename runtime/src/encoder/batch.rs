//! A padded batch of token ids: what the encoder's forward pass reads.
//!
//! Rows are padded on the right to the longest row of the batch (dynamic
//! padding), not to a fixed length, so a batch of short sentences costs
//! what short sentences cost. The attention mask is kept as f32 because the
//! graph takes it as an input tensor as it is (1 keeps a token, 0 is
//! padding); type ids and ids stay u32 for the embedding gathers.
//!
//! Tokenizer errors are reported as `Error::InvalidArgument` with op
//! `"tokenize"` and the tokenizer's message: the runtime's error enum has no
//! tokenizer variant, and the message already names the offending input.

use crate::error::{Error, Result};
use crate::tokenizer::{EncodeOptions, Encoding, Padding, Tokenizer, TokenizerError};

/// `batch` rows of `seq` tokens each, row-major.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TokenBatch {
    /// Token ids, `[batch, seq]`.
    pub ids: Vec<u32>,
    /// Segment ids (0 for `[CLS] a [SEP]`, 1 for `b [SEP]`), `[batch, seq]`.
    pub type_ids: Vec<u32>,
    /// 1.0 for a real token, 0.0 for padding, `[batch, seq]`.
    pub mask: Vec<f32>,
    pub batch: usize,
    pub seq: usize,
}

fn tok_err(e: TokenizerError) -> Error {
    Error::InvalidArgument { op: "tokenize", what: e.to_string() }
}

impl TokenBatch {
    /// Tokenize each text as `[CLS] text [SEP]`, truncated to `max_len`
    /// tokens, padded to the longest row.
    pub fn from_texts<S: AsRef<str> + Sync>(
        tok: &Tokenizer,
        texts: &[S],
        max_len: usize,
    ) -> Result<TokenBatch> {
        let opts = EncodeOptions { max_len: Some(max_len), padding: Padding::Longest };
        let enc = tok.encode_batch(texts, &opts).map_err(tok_err)?;
        TokenBatch::from_encodings(&enc)
    }

    /// Tokenize pairs as `[CLS] a [SEP] b [SEP]` (type ids 0 then 1),
    /// dropping tokens from the longer segment first to fit `max_len`.
    pub fn from_pairs<A: AsRef<str> + Sync, B: AsRef<str> + Sync>(
        tok: &Tokenizer,
        a: &[A],
        b: &[B],
        max_len: usize,
    ) -> Result<TokenBatch> {
        if a.len() != b.len() {
            return Err(Error::InvalidArgument {
                op: "TokenBatch::from_pairs",
                what: format!("{} first segments but {} second segments", a.len(), b.len()),
            });
        }
        let pairs: Vec<(&str, &str)> =
            a.iter().zip(b).map(|(x, y)| (x.as_ref(), y.as_ref())).collect();
        let opts = EncodeOptions { max_len: Some(max_len), padding: Padding::Longest };
        let enc = tok.encode_pair_batch(&pairs, &opts).map_err(tok_err)?;
        TokenBatch::from_encodings(&enc)
    }

    /// Stack encodings, padding shorter ones on the right with id 0, type
    /// 0 and mask 0 (`[PAD]` is id 0 in BERT vocabularies; padded ids are
    /// masked out anyway).
    pub fn from_encodings(enc: &[Encoding]) -> Result<TokenBatch> {
        let seq = enc.iter().map(Encoding::len).max().unwrap_or(0);
        let batch = enc.len();
        let mut out = TokenBatch {
            ids: vec![0; batch * seq],
            type_ids: vec![0; batch * seq],
            mask: vec![0.0; batch * seq],
            batch,
            seq,
        };
        for (r, e) in enc.iter().enumerate() {
            let n = e.len();
            if e.type_ids.len() != n || e.attention_mask.len() != n {
                return Err(Error::InvalidArgument {
                    op: "TokenBatch::from_encodings",
                    what: format!("encoding {r} has ragged ids / type ids / mask"),
                });
            }
            let row = r * seq;
            out.ids[row..row + n].copy_from_slice(&e.ids);
            for (j, (&t, &m)) in e.type_ids.iter().zip(&e.attention_mask).enumerate() {
                out.type_ids[row + j] = u32::from(t);
                out.mask[row + j] = f32::from(m);
            }
        }
        Ok(out)
    }

    /// Number of real (unmasked) tokens in row `r`.
    pub fn row_len(&self, r: usize) -> usize {
        self.mask[r * self.seq..(r + 1) * self.seq].iter().filter(|&&m| m != 0.0).count()
    }

    /// Refuse a batch whose vectors disagree with `batch * seq`, or an empty
    /// one, or a mask with values other than 0 and 1.
    pub fn validate(&self) -> Result<()> {
        let n = self.batch * self.seq;
        if self.batch == 0 || self.seq == 0 {
            return Err(Error::BadShape {
                op: "token batch",
                shape: vec![self.batch, self.seq],
                reason: "needs at least one row and one position",
            });
        }
        for (what, len) in
            [("ids", self.ids.len()), ("type_ids", self.type_ids.len()), ("mask", self.mask.len())]
        {
            if len != n {
                return Err(Error::InvalidArgument {
                    op: "token batch",
                    what: format!(
                        "{what} holds {len} values, batch {} x seq {} needs {n}",
                        self.batch, self.seq
                    ),
                });
            }
        }
        if let Some(m) = self.mask.iter().find(|&&m| m != 0.0 && m != 1.0) {
            return Err(Error::InvalidArgument {
                op: "token batch",
                what: format!("mask value {m} is neither 0 nor 1"),
            });
        }
        Ok(())
    }
}
