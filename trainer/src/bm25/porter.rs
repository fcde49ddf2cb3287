//! The Porter stemmer (M. F. Porter, "An algorithm for suffix stripping", 1980).
//!
//! This follows the reference implementation Porter later published rather than the
//! paper to the letter, because that is what Lucene's `PorterStemFilter` (and so
//! Anserini's BM25 baselines) runs: step 2 maps `-bli` to `-ble` (the paper: `-abli` to
//! `-able`) and adds `-logi` to `-log`; words of one or two letters are returned as they
//! are. Input is expected lowercased; letters other than `a e i o u` (and `y` after a
//! consonant-or-start rule) count as consonants, so non-English tokens pass through the
//! suffix rules harmlessly, as in Lucene.
//!
//! Notation, as in the paper: a word is `[C](VC)^m[V]`; `m` is the measure of the stem
//! before a suffix; `*v*` means the stem holds a vowel, `*d` that it ends in a double
//! consonant, `*o` that it ends consonant-vowel-consonant with the last not `w`, `x`, `y`.

/// Stems one lowercase word.
pub fn stem(word: &str) -> String {
    let mut s = Stemmer { b: word.chars().collect(), k: 0, j: 0 };
    if s.b.len() <= 2 {
        return word.to_string();
    }
    s.k = s.b.len() as isize - 1;
    s.step1ab();
    if s.k > 0 {
        s.step1c();
        s.step2();
        s.step3();
        s.step4();
        s.step5();
    }
    s.b[..=s.k as usize].iter().collect()
}

// The word being stemmed is `b[0..=k]` (letters past `k` are dead but stay readable, as
// step 5 measures the stem up to the old end after dropping an `e`); `j` marks the end of the stem before the suffix
// that the last `ends` call matched. Indices are signed because a suffix may cover the
// whole word, leaving `j = -1`.
struct Stemmer {
    b: Vec<char>,
    k: isize,
    j: isize,
}

impl Stemmer {
    fn at(&self, i: isize) -> char {
        self.b[i as usize]
    }

    // Whether b[i] is a consonant: not a vowel, and `y` only when it follows a vowel
    // (or starts the word).
    fn cons(&self, i: isize) -> bool {
        match self.at(i) {
            'a' | 'e' | 'i' | 'o' | 'u' => false,
            'y' => i == 0 || !self.cons(i - 1),
            _ => true,
        }
    }

    // The measure m of b[0..=j]: the number of vowel-consonant runs.
    fn m(&self) -> usize {
        let (mut n, mut i) = (0, 0);
        // Skip the leading consonants.
        loop {
            if i > self.j {
                return n;
            }
            if !self.cons(i) {
                break;
            }
            i += 1;
        }
        i += 1;
        loop {
            // A run of vowels ...
            loop {
                if i > self.j {
                    return n;
                }
                if self.cons(i) {
                    break;
                }
                i += 1;
            }
            i += 1;
            n += 1;
            // ... then a run of consonants.
            loop {
                if i > self.j {
                    return n;
                }
                if !self.cons(i) {
                    break;
                }
                i += 1;
            }
            i += 1;
        }
    }

    // *v*: b[0..=j] holds a vowel.
    fn vowel_in_stem(&self) -> bool {
        (0..=self.j).any(|i| !self.cons(i))
    }

    // *d: b[j-1..=j] is a double consonant.
    fn double_c(&self, j: isize) -> bool {
        j >= 1 && self.at(j) == self.at(j - 1) && self.cons(j)
    }

    // *o: b[i-2..=i] is consonant-vowel-consonant and b[i] is not w, x or y.
    fn cvc(&self, i: isize) -> bool {
        if i < 2 || !self.cons(i) || self.cons(i - 1) || !self.cons(i - 2) {
            return false;
        }
        !matches!(self.at(i), 'w' | 'x' | 'y')
    }

    // Whether b[0..=k] ends with `s`; if so j is set to the end of the rest.
    fn ends(&mut self, s: &str) -> bool {
        let n = s.chars().count() as isize;
        if n > self.k + 1 {
            return false;
        }
        let start = (self.k + 1 - n) as usize;
        if !s.chars().eq(self.b[start..=self.k as usize].iter().copied()) {
            return false;
        }
        self.j = self.k - n;
        true
    }

    // Replaces b[j+1..=k] by `s`.
    fn set_to(&mut self, s: &str) {
        let start = (self.j + 1) as usize;
        self.b.truncate(start);
        self.b.extend(s.chars());
        self.k = self.b.len() as isize - 1;
    }

    // Replaces the matched suffix by `s` when m > 0.
    fn replace_if_m(&mut self, s: &str) {
        if self.m() > 0 {
            self.set_to(s);
        }
    }

    // Plurals and -ed / -ing: caresses -> caress, ponies -> poni, cats -> cat;
    // agreed -> agree, plastered -> plaster, hopping -> hop, filing -> file.
    fn step1ab(&mut self) {
        if self.at(self.k) == 's' {
            if self.ends("sses") {
                self.k -= 2;
            } else if self.ends("ies") {
                self.set_to("i");
            } else if self.at(self.k - 1) != 's' {
                self.k -= 1;
            }
        }
        if self.ends("eed") {
            if self.m() > 0 {
                self.k -= 1;
            }
        } else if (self.ends("ed") || self.ends("ing")) && self.vowel_in_stem() {
            self.k = self.j;
            if self.ends("at") {
                self.set_to("ate");
            } else if self.ends("bl") {
                self.set_to("ble");
            } else if self.ends("iz") {
                self.set_to("ize");
            } else if self.double_c(self.k) {
                if !matches!(self.at(self.k), 'l' | 's' | 'z') {
                    self.k -= 1;
                }
            } else {
                self.j = self.k;
                if self.m() == 1 && self.cvc(self.k) {
                    self.set_to("e");
                }
            }
        }
    }

    // Terminal y to i when the stem has a vowel: happy -> happi, sky -> sky.
    fn step1c(&mut self) {
        if self.ends("y") && self.vowel_in_stem() {
            let k = self.k as usize;
            self.b[k] = 'i';
        }
    }

    // Double suffixes to single ones, when m > 0: relational -> relate, ...
    fn step2(&mut self) {
        const RULES: &[(&str, &str)] = &[
            ("ational", "ate"),
            ("tional", "tion"),
            ("enci", "ence"),
            ("anci", "ance"),
            ("izer", "ize"),
            ("bli", "ble"),
            ("alli", "al"),
            ("entli", "ent"),
            ("eli", "e"),
            ("ousli", "ous"),
            ("ization", "ize"),
            ("ation", "ate"),
            ("ator", "ate"),
            ("alism", "al"),
            ("iveness", "ive"),
            ("fulness", "ful"),
            ("ousness", "ous"),
            ("aliti", "al"),
            ("iviti", "ive"),
            ("biliti", "ble"),
            ("logi", "log"),
        ];
        self.apply_first(RULES);
    }

    // -ic-, -full, -ness and the like, when m > 0: triplicate -> triplic, hopeful -> hope.
    fn step3(&mut self) {
        const RULES: &[(&str, &str)] = &[
            ("icate", "ic"),
            ("ative", ""),
            ("alize", "al"),
            ("iciti", "ic"),
            ("ical", "ic"),
            ("ful", ""),
            ("ness", ""),
        ];
        self.apply_first(RULES);
    }

    // Applies the first rule whose suffix matches, even when m = 0 leaves the word as it
    // is. The reference implementation first switches on one letter of the word; a suffix
    // can only match inside its own case, so trying all rules in order picks the same one.
    fn apply_first(&mut self, rules: &[(&str, &str)]) {
        for (suffix, repl) in rules {
            if self.ends(suffix) {
                self.replace_if_m(repl);
                return;
            }
        }
    }

    // Single suffixes dropped when m > 1: revival -> reviv, adoption -> adopt.
    fn step4(&mut self) {
        const SUFFIXES: &[&str] = &[
            "al", "ance", "ence", "er", "ic", "able", "ible", "ant", "ement", "ment", "ent", "ion",
            "ou", "ism", "ate", "iti", "ous", "ive", "ize",
        ];
        let mut matched = false;
        for suffix in SUFFIXES {
            if self.ends(suffix) {
                // -ion only after s or t.
                if *suffix == "ion" && !(self.j >= 0 && matches!(self.at(self.j), 's' | 't')) {
                    continue;
                }
                matched = true;
                break;
            }
        }
        if matched && self.m() > 1 {
            self.k = self.j;
        }
    }

    // A final -e when m > 1 (or m = 1 and not *o), and -ll to -l when m > 1:
    // probate -> probat, rate -> rate, controll -> control.
    fn step5(&mut self) {
        self.j = self.k;
        if self.at(self.k) == 'e' {
            let m = self.m();
            if m > 1 || (m == 1 && !self.cvc(self.k - 1)) {
                self.k -= 1;
            }
        }
        if self.at(self.k) == 'l' && self.double_c(self.k) && self.m() > 1 {
            self.k -= 1;
        }
    }
}
