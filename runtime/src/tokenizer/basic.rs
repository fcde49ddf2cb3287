//! BERT's basic tokenizer: cleaning, lower-casing, accent stripping and the
//! split into words that WordPiece then cuts into pieces.
//!
//! The steps and their order follow the reference normaliser of BERT
//! checkpoints (the one the Hugging Face `tokenizers` library ships), since
//! a different order gives different ids:
//!
//! 1. clean: drop U+0000, U+FFFD and control characters (general categories
//!    Cc, Cf, Co, except tab, newline and carriage return); map whitespace to
//!    a space. Control is tested first, so U+000B, U+000C and U+0085, which
//!    are both, vanish instead of separating words.
//! 2. surround each CJK ideograph with spaces, so it becomes a word alone;
//! 3. strip accents: canonical decomposition (NFD), then drop every
//!    non-spacing mark (Mn);
//! 4. lower-case with the full Unicode mapping (`char::to_lowercase`);
//! 5. split on whitespace (dropped) and punctuation (ASCII punctuation or any
//!    P* category; each mark becomes a one-character word).
//!
//! Words are written back to back into one reusable `String`, with byte
//! spans beside, so a call allocates nothing once the buffers have grown.
//! Pure-ASCII input, most real text, takes a byte loop that skips the
//! Unicode tables altogether.
//!
//! Left out: the `never_split` list of the original implementation (special
//! tokens written in the text are split like any other text, as the
//! reference does for text that is not registered as an added token).
//! Unicode tables come from `unicode-general-category` and
//! `unicode-normalization`, which track the current Unicode version; the
//! reference's tables are older, so a character assigned in recent versions
//! may be classified differently there.

use unicode_general_category::{get_general_category, GeneralCategory};
use unicode_normalization::UnicodeNormalization;

/// Settings of the basic tokenizer. `Default` is BERT uncased: lower-case
/// and strip accents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BasicTokenizer {
    /// Lower-case every character.
    pub lowercase: bool,
    /// Decompose (NFD) and drop non-spacing marks.
    pub strip_accents: bool,
}

impl Default for BasicTokenizer {
    fn default() -> Self {
        BasicTokenizer { lowercase: true, strip_accents: true }
    }
}

/// The words of one text: normalised characters back to back in `text`,
/// each word a byte span of it. Reuse one value across calls.
#[derive(Clone, Debug, Default)]
pub struct Words {
    text: String,
    spans: Vec<(u32, u32)>,
    open: Option<usize>,
}

impl Words {
    /// Number of words.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// True when the text held no word.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The words in text order.
    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        self.spans.iter().map(|&(s, e)| &self.text[s as usize..e as usize])
    }

    fn clear(&mut self) {
        self.text.clear();
        self.spans.clear();
        self.open = None;
    }

    // Append a character to the open word, opening one if needed.
    #[inline]
    fn push(&mut self, c: char) {
        if self.open.is_none() {
            self.open = Some(self.text.len());
        }
        self.text.push(c);
    }

    // Close the open word, if any.
    #[inline]
    fn close(&mut self) {
        if let Some(start) = self.open.take() {
            self.spans.push((span_offset(start), span_offset(self.text.len())));
        }
    }

    // A punctuation mark: a word of its own.
    #[inline]
    fn push_alone(&mut self, c: char) {
        self.close();
        self.push(c);
        self.close();
    }
}

// Offsets are kept as u32 to halve the span list; the tokenizer entry points
// reject texts of 1 GiB or more, so the normalised form (which lower-casing
// and decomposition can lengthen) stays well inside u32.
#[inline]
fn span_offset(at: usize) -> u32 {
    u32::try_from(at).unwrap_or(u32::MAX)
}

impl BasicTokenizer {
    /// Normalise `text` and split it into `out`, replacing its contents.
    pub fn split_into(&self, text: &str, out: &mut Words) {
        out.clear();
        if text.is_ascii() {
            self.split_ascii(text.as_bytes(), out);
            return;
        }

        // Steps 1 and 2 on the raw characters; each CJK ideograph comes out
        // between two spaces.
        let cleaned = text.chars().filter(|&c| !is_removed(c)).flat_map(|c| {
            let c = if is_whitespace(c) { ' ' } else { c };
            let pad = is_cjk_ideograph(c).then_some(' ');
            pad.into_iter().chain(Some(c)).chain(pad)
        });

        // Steps 3 to 5; the decomposition reorders combining marks across
        // character boundaries, so it runs on the whole stream.
        if self.strip_accents {
            let stripped = cleaned.nfd().filter(|&c| !is_nonspacing_mark(c));
            self.split_chars(stripped, out);
        } else {
            self.split_chars(cleaned, out);
        }
        out.close();
    }

    // Steps 4 and 5 over an already cleaned character stream.
    fn split_chars(&self, chars: impl Iterator<Item = char>, out: &mut Words) {
        for c in chars {
            if self.lowercase {
                for l in c.to_lowercase() {
                    split_one(l, out);
                }
            } else {
                split_one(c, out);
            }
        }
    }

    // All five steps for ASCII: no accents, no CJK, one-byte lower-casing.
    fn split_ascii(&self, bytes: &[u8], out: &mut Words) {
        for &b in bytes {
            match b {
                b' ' | b'\t' | b'\n' | b'\r' => out.close(),
                0..=0x1f | 0x7f => {}
                _ if b.is_ascii_punctuation() => out.push_alone(char::from(b)),
                _ if self.lowercase => out.push(char::from(b.to_ascii_lowercase())),
                _ => out.push(char::from(b)),
            }
        }
        out.close();
    }
}

// Step 5 for one normalised character.
#[inline]
fn split_one(c: char, out: &mut Words) {
    if is_whitespace(c) {
        out.close();
    } else if is_punctuation(c) {
        out.push_alone(c);
    } else {
        out.push(c);
    }
}

/// Characters the cleaning step deletes: NUL, the replacement character and
/// controls (Cc, Cf, Co) other than tab, newline and carriage return.
pub fn is_removed(c: char) -> bool {
    match c {
        '\t' | '\n' | '\r' => false,
        '\0' | '\u{fffd}' => true,
        _ if c.is_ascii() => c.is_ascii_control(),
        _ => matches!(
            get_general_category(c),
            GeneralCategory::Control | GeneralCategory::Format | GeneralCategory::PrivateUse
        ),
    }
}

/// Whitespace as BERT sees it: tab, newline, carriage return and the
/// Unicode `White_Space` property.
#[inline]
pub fn is_whitespace(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || c.is_whitespace()
}

/// Punctuation as BERT sees it: every ASCII punctuation character (which
/// includes symbols such as `$`, `+`, `^`) and the Unicode P* categories.
pub fn is_punctuation(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_punctuation();
    }
    matches!(
        get_general_category(c),
        GeneralCategory::ConnectorPunctuation
            | GeneralCategory::DashPunctuation
            | GeneralCategory::OpenPunctuation
            | GeneralCategory::ClosePunctuation
            | GeneralCategory::InitialPunctuation
            | GeneralCategory::FinalPunctuation
            | GeneralCategory::OtherPunctuation
    )
}

/// Non-spacing combining marks (Mn), the characters accent stripping drops.
#[inline]
pub fn is_nonspacing_mark(c: char) -> bool {
    !c.is_ascii() && get_general_category(c) == GeneralCategory::NonspacingMark
}

/// The CJK Unified Ideographs blocks (with extensions A to E) and the two
/// compatibility ideograph blocks: the ranges BERT splits into single
/// characters. Hiragana, katakana and hangul are not among them.
#[inline]
pub fn is_cjk_ideograph(c: char) -> bool {
    matches!(
        u32::from(c),
        0x4E00..=0x9FFF
            | 0x3400..=0x4DBF
            | 0x20000..=0x2A6DF
            | 0x2A700..=0x2B73F
            | 0x2B740..=0x2B81F
            | 0x2B820..=0x2CEAF
            | 0xF900..=0xFAFF
            | 0x2F800..=0x2FA1F
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        let mut w = Words::default();
        BasicTokenizer::default().split_into(text, &mut w);
        w.iter().map(str::to_owned).collect()
    }

    #[test]
    fn ascii_punctuation_and_case() {
        assert_eq!(words(" Hello,World!! a-b "), ["hello", ",", "world", "!", "!", "a", "-", "b"]);
        assert_eq!(words("x\u{1}y\tz"), ["xy", "z"]);
        assert!(words(" \t\r\n").is_empty());
    }

    #[test]
    fn accents_cjk_and_controls() {
        assert_eq!(words("Héllo ÇA\u{200b}va"), ["hello", "cava"]);
        assert_eq!(words("e\u{301}\u{301}"), ["e"]);
        assert_eq!(words("ab中文cd"), ["ab", "中", "文", "cd"]);
        assert_eq!(words("«x»\u{a0}y"), ["«", "x", "»", "y"]);
        assert_eq!(words("İ"), ["i"]);
    }

    #[test]
    fn cased_keeps_case_and_accents() {
        let mut w = Words::default();
        BasicTokenizer { lowercase: false, strip_accents: false }.split_into("Héllo ABC", &mut w);
        assert_eq!(w.iter().collect::<Vec<_>>(), ["Héllo", "ABC"]);
    }

    #[test]
    fn ascii_and_unicode_paths_agree() {
        // The same ASCII text with one non-ASCII space appended takes the
        // general path; the words must not change.
        let text = "Some (odd) TEXT: with\x0bcontrol\x7f, tabs\tand $punct^ ~runs~";
        let slow = format!("{text}\u{3000}");
        assert_eq!(words(text), words(&slow));
    }
}
