//! Synonym replacement from WordNet.
//!
//! Two words are synonyms here when they share a synset (any part of
//! speech, any sense): `sea` gets `ocean`, but also `sea` for other senses
//! when the word has several. The table maps each lowercase single-word
//! lemma to the sorted, de-duplicated other lemmas of its synsets; those
//! may have several words (`car` -> `motorcar`, `machine`, `auto`, ...).
//! Multi-word lemmas are not keys, since text is matched word by word.
//!
//! A word is eligible when its lowercase core (the word stripped of
//! leading and trailing punctuation) is a key and is not one of the
//! stop words the BM25 analyzer drops: WordNet lists `a` (vitamin A), `in`
//! (inch) and `be` (beryllium), which would make nonsense swaps.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::Path;

use super::Rng;
use crate::bm25::is_stop_word;
use crate::wordnet::{self, Synset, WordNetError};

/// Lowercase word -> its WordNet synonyms.
#[derive(Clone, Default)]
pub struct Synonyms {
    map: HashMap<String, Vec<String>>,
}

impl fmt::Debug for Synonyms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Synonyms").field("words", &self.map.len()).finish()
    }
}

impl Synonyms {
    /// Reads WordNet's data files in `dir` (see [`wordnet::find_dir`]).
    pub fn from_dir(dir: &Path) -> Result<Self, WordNetError> {
        Ok(Self::from_synsets(&wordnet::load(dir)?))
    }

    /// Builds the table from parsed synsets.
    pub fn from_synsets(synsets: &[Synset]) -> Self {
        let mut sets: HashMap<String, BTreeSet<String>> = HashMap::new();
        for s in synsets {
            for w in &s.words {
                let key = w.to_lowercase();
                if key.contains(' ') {
                    continue;
                }
                for other in &s.words {
                    if other.to_lowercase() != key {
                        sets.entry(key.clone()).or_default().insert(other.clone());
                    }
                }
            }
        }
        let map = sets.into_iter().map(|(k, v)| (k, v.into_iter().collect())).collect();
        Synonyms { map }
    }

    /// Number of words that have at least one synonym.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no word has a synonym.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The synonyms of `word` (any case), sorted; empty when it has none.
    pub fn of(&self, word: &str) -> &[String] {
        self.map.get(&word.to_lowercase()).map_or(&[], Vec::as_slice)
    }

    /// Whether the whitespace token `token` can be replaced.
    pub fn is_eligible(&self, token: &str) -> bool {
        let (_, core, _) = split_punct(token);
        let lower = core.to_lowercase();
        !core.is_empty() && !is_stop_word(&lower) && self.map.contains_key(&lower)
    }

    /// Replaces each eligible word of `text` by a random synonym with
    /// probability `rate`, keeping surrounding punctuation and roughly the
    /// case (all-caps stays all-caps, a capital first letter stays).
    pub fn replace(&self, text: &str, rate: f32, rng: &mut Rng) -> String {
        let rate = f64::from(rate);
        let mut out: Vec<String> = Vec::new();
        for token in text.split_whitespace() {
            let (pre, core, post) = split_punct(token);
            let lower = core.to_lowercase();
            let choices = match self.map.get(&lower) {
                Some(c) if !core.is_empty() && !is_stop_word(&lower) => c,
                _ => {
                    out.push(token.to_string());
                    continue;
                }
            };
            if !rng.chance(rate) {
                out.push(token.to_string());
                continue;
            }
            let pick = &choices[rng.below(choices.len())];
            out.push(format!("{pre}{}{post}", match_case(core, pick)));
        }
        out.join(" ")
    }
}

// `"(Sea),"` -> `("(", "Sea", "),")`: leading and trailing non-alphanumeric
// characters around the word's core.
fn split_punct(token: &str) -> (&str, &str, &str) {
    let start = token.find(|c: char| c.is_alphanumeric()).unwrap_or(token.len());
    let end = token
        .rfind(|c: char| c.is_alphanumeric())
        .map_or(start, |i| i + token[i..].chars().next().map_or(0, char::len_utf8));
    (&token[..start], &token[start..end], &token[end..])
}

// Gives `word` the case pattern of `like`: all caps (two or more letters),
// capitalised, or as WordNet writes it.
fn match_case(like: &str, word: &str) -> String {
    let letters: Vec<char> = like.chars().filter(|c| c.is_alphabetic()).collect();
    if letters.len() > 1 && letters.iter().all(|c| c.is_uppercase()) {
        return word.to_uppercase();
    }
    if like.chars().next().is_some_and(char::is_uppercase) {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            return first.to_uppercase().chain(chars).collect();
        }
    }
    word.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn punctuation_and_case() {
        assert_eq!(split_punct("(Sea),"), ("(", "Sea", "),"));
        assert_eq!(split_punct("..."), ("...", "", ""));
        assert_eq!(split_punct("don't"), ("", "don't", ""));
        assert_eq!(split_punct("café!"), ("", "café", "!"));
        assert_eq!(match_case("SEA", "ocean"), "OCEAN");
        assert_eq!(match_case("Sea", "ocean"), "Ocean");
        assert_eq!(match_case("sea", "Atlantic"), "Atlantic");
    }
}
