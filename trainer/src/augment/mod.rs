//! Text augmentation for contrastive training: seeded, deterministic
//! rewrites of a text, and ways to make a positive pair out of one text.
//!
//! Rewrites of one text ([`Augmenter::augment`]):
//! - paraphrase lookup ([`Paraphrases`]): swap the whole text for a listed
//!   paraphrase. The paraphrases come from a file (for instance produced
//!   offline by back-translation); no translation model runs here;
//! - synonym replacement ([`Synonyms`], from WordNet): each word that has a
//!   WordNet synonym is replaced with probability `rate`;
//! - token masking ([`TokenMask`]): each word becomes `[MASK]` (or is
//!   dropped) with probability `rate`;
//! - random deletion ([`delete_words`]): each word is dropped with
//!   probability `rate`.
//!
//! Pairs from one text: [`Augmenter::crop_pair`] takes two random spans of
//! a document (independent cropping, for corpora without labels);
//! [`dropout_pair`] returns the text twice, the SimCSE recipe, where the
//! two views differ only because the encoder applies dropout twice.
//!
//! Words are whitespace-separated tokens; every rewrite joins them back with
//! single spaces, so runs of whitespace and newlines are not preserved.
//! Rewrites never turn a text with a word into an empty one: when every
//! word would go, one word chosen at random stays. Given the same `Rng`
//! state, every function returns the same output.
//!
//! Left out: model-based rewrites (back-translation, masked-LM infilling)
//! and word embeddings for nearest-neighbour synonyms; synonyms ignore the
//! word's part of speech and sense, so some swaps read oddly.

mod paraphrase;
mod rng;
mod synonyms;

use std::sync::Arc;

pub use paraphrase::Paraphrases;
pub use rng::Rng;
pub use synonyms::Synonyms;

use crate::error::{Result, TrainerError};

/// What a masked word becomes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MaskMode {
    /// Replace the word by the mask token.
    Replace(String),
    /// Drop the word (the same as [`delete_words`]).
    Drop,
}

/// Token masking: each word is masked with probability `rate`.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenMask {
    /// Probability that a word is masked, in [0, 1].
    pub rate: f32,
    /// Replace or drop.
    pub mode: MaskMode,
}

impl Default for TokenMask {
    /// BERT's 15% with the `[MASK]` token of BERT vocabularies.
    fn default() -> Self {
        TokenMask { rate: 0.15, mode: MaskMode::Replace("[MASK]".into()) }
    }
}

impl TokenMask {
    /// Masks the words of `text`.
    pub fn apply(&self, text: &str, rng: &mut Rng) -> String {
        match &self.mode {
            MaskMode::Drop => delete_words(text, self.rate, rng),
            MaskMode::Replace(token) => {
                let words: Vec<&str> = text.split_whitespace().collect();
                let rate = f64::from(self.rate);
                let out: Vec<&str> = words
                    .iter()
                    .map(|w| if rng.chance(rate) { token.as_str() } else { w })
                    .collect();
                out.join(" ")
            }
        }
    }
}

/// Drops each word of `text` with probability `rate`, keeping one random
/// word if all would go (an input without words comes back unchanged).
pub fn delete_words(text: &str, rate: f32, rng: &mut Rng) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.is_empty() {
        return text.to_string();
    }
    let rate = f64::from(rate);
    let kept: Vec<&str> = words.iter().copied().filter(|_| !rng.chance(rate)).collect();
    if kept.is_empty() {
        return words[rng.below(words.len())].to_string();
    }
    kept.join(" ")
}

/// Random span cropping: a span of `frac * words` consecutive words, with
/// `frac` uniform in `[min_frac, max_frac]`, at a uniform start.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SpanCrop {
    /// Smallest span as a fraction of the document's words, in (0, 1].
    pub min_frac: f32,
    /// Largest span as a fraction of the document's words, in [min_frac, 1].
    pub max_frac: f32,
}

impl Default for SpanCrop {
    /// Spans of 10% to 50% of the document, as in independent-cropping
    /// pretraining of retrievers.
    fn default() -> Self {
        SpanCrop { min_frac: 0.1, max_frac: 0.5 }
    }
}

impl SpanCrop {
    /// One random span of at least one word (`doc` unchanged if it has none).
    pub fn crop(&self, doc: &str, rng: &mut Rng) -> String {
        let words: Vec<&str> = doc.split_whitespace().collect();
        if words.is_empty() {
            return doc.to_string();
        }
        let n = words.len();
        let lo = f64::from(self.min_frac.clamp(0.0, 1.0));
        let hi = f64::from(self.max_frac.clamp(0.0, 1.0)).max(lo);
        let frac = lo + (hi - lo) * rng.next_f64();
        let len = ((frac * n as f64).round() as usize).clamp(1, n);
        let start = rng.below(n - len + 1);
        words[start..start + len].join(" ")
    }
}

/// The SimCSE positive pair: the text twice.
///
/// Both copies go through the encoder in training mode, so its dropout
/// masks differ between the two forward passes and the two embeddings
/// differ slightly; the contrastive loss then pulls them together. This
/// only works when the training loop keeps dropout on (p around 0.1) for
/// both passes; with dropout off the pair is trivial.
pub fn dropout_pair(text: &str) -> (String, String) {
    (text.to_string(), text.to_string())
}

/// A combination of the rewrites, each applied with its own probability,
/// for the training loop to call once per example.
///
/// Order: paraphrase (whole text), then synonyms, masking and deletion.
/// All probabilities default to 0, which makes [`Augmenter::augment`] the
/// identity (apart from whitespace). Call [`Augmenter::validate`] once
/// after filling the fields.
#[derive(Clone, Debug)]
pub struct Augmenter {
    /// Probability of replacing the text by one of its paraphrases.
    pub paraphrase_prob: f32,
    /// Probability of running synonym replacement on an example.
    pub synonym_prob: f32,
    /// Per-word replacement rate when synonym replacement runs.
    pub synonym_rate: f32,
    /// Probability of running token masking on an example.
    pub mask_prob: f32,
    /// The masking rate and mode.
    pub mask: TokenMask,
    /// Probability of running random deletion on an example.
    pub delete_prob: f32,
    /// Per-word deletion rate when deletion runs.
    pub delete_rate: f32,
    /// Span lengths for [`Augmenter::crop_pair`].
    pub crop: SpanCrop,
    /// WordNet synonyms, required when `synonym_prob > 0`.
    pub synonyms: Option<Arc<Synonyms>>,
    /// Paraphrase table, required when `paraphrase_prob > 0`.
    pub paraphrases: Option<Arc<Paraphrases>>,
}

impl Default for Augmenter {
    fn default() -> Self {
        Augmenter {
            paraphrase_prob: 0.0,
            synonym_prob: 0.0,
            synonym_rate: 0.1,
            mask_prob: 0.0,
            mask: TokenMask::default(),
            delete_prob: 0.0,
            delete_rate: 0.1,
            crop: SpanCrop::default(),
            synonyms: None,
            paraphrases: None,
        }
    }
}

// A probability or rate must be a finite number in [0, 1].
fn check_unit(name: &'static str, x: f32) -> Result<()> {
    if x.is_finite() && (0.0..=1.0).contains(&x) {
        Ok(())
    } else {
        Err(TrainerError::InvalidArgument { name, reason: format!("{x} is not in [0, 1]") })
    }
}

impl Augmenter {
    /// Checks every probability and rate, the crop fractions, and that the
    /// tables a nonzero probability needs are present.
    pub fn validate(&self) -> Result<()> {
        check_unit("paraphrase_prob", self.paraphrase_prob)?;
        check_unit("synonym_prob", self.synonym_prob)?;
        check_unit("synonym_rate", self.synonym_rate)?;
        check_unit("mask_prob", self.mask_prob)?;
        check_unit("mask.rate", self.mask.rate)?;
        check_unit("delete_prob", self.delete_prob)?;
        check_unit("delete_rate", self.delete_rate)?;
        let SpanCrop { min_frac, max_frac } = self.crop;
        if !(min_frac > 0.0 && min_frac <= max_frac && max_frac <= 1.0) {
            return Err(TrainerError::InvalidArgument {
                name: "crop",
                reason: format!("need 0 < min_frac <= max_frac <= 1, got {min_frac}..{max_frac}"),
            });
        }
        if let MaskMode::Replace(t) = &self.mask.mode {
            if t.split_whitespace().count() != 1 {
                return Err(TrainerError::InvalidArgument {
                    name: "mask.mode",
                    reason: format!("mask token {t:?} must be one word"),
                });
            }
        }
        if self.synonym_prob > 0.0 && self.synonyms.is_none() {
            return Err(TrainerError::InvalidArgument {
                name: "synonyms",
                reason: "synonym_prob > 0 needs a synonym table".into(),
            });
        }
        if self.paraphrase_prob > 0.0 && self.paraphrases.is_none() {
            return Err(TrainerError::InvalidArgument {
                name: "paraphrases",
                reason: "paraphrase_prob > 0 needs a paraphrase table".into(),
            });
        }
        Ok(())
    }

    /// One augmented view of `text`.
    ///
    /// Each stage draws its coin whether or not it runs, so the random
    /// stream consumed per stage does not depend on the table contents.
    pub fn augment(&self, text: &str, rng: &mut Rng) -> String {
        let mut out: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if out.is_empty() {
            return text.to_string();
        }

        // Whole-text paraphrase.
        if rng.chance(f64::from(self.paraphrase_prob)) {
            if let Some(p) = self.paraphrases.as_ref().and_then(|t| t.sample(&out, rng)) {
                out = p.to_string();
            }
        }

        // Word-level rewrites.
        if rng.chance(f64::from(self.synonym_prob)) {
            if let Some(s) = &self.synonyms {
                out = s.replace(&out, self.synonym_rate, rng);
            }
        }
        if rng.chance(f64::from(self.mask_prob)) {
            out = self.mask.apply(&out, rng);
        }
        if rng.chance(f64::from(self.delete_prob)) {
            out = delete_words(&out, self.delete_rate, rng);
        }
        out
    }

    /// Two independent random crops of `doc`, a positive pair.
    pub fn crop_pair(&self, doc: &str, rng: &mut Rng) -> (String, String) {
        let a = self.crop.crop(doc, rng);
        let b = self.crop.crop(doc, rng);
        (a, b)
    }
}
