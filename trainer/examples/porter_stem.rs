//! Stems words read from stdin, one per line, printing one stem per line.
//!
//! ```text
//! cargo run --release -p edgecl-trainer --example porter_stem < words.txt
//! ```
//!
//! `tools/scripts/pytrec_eval_check.py` feeds it a collection's vocabulary and compares
//! the output with NLTK's Porter stemmer in its reference-implementation mode.

use std::io::{BufRead, BufWriter, Write};

use edgecl_trainer::bm25::stem;

fn main() -> std::io::Result<()> {
    let stdin = std::io::stdin().lock();
    let mut out = BufWriter::new(std::io::stdout().lock());
    for line in stdin.lines() {
        writeln!(out, "{}", stem(&line?))?;
    }
    out.flush()
}
