//! Compatibility of the WordPiece tokenizer with the Hugging Face
//! `tokenizers` library on BERT's uncased vocabulary.
//!
//! `fixtures/tokenizer/wordpiece.jsonl` holds texts and pairs with the ids
//! the reference produced (made by tools/scripts/make_tokenizer_fixtures.py;
//! sources in the README beside it). Every record must match exactly; on a
//! mismatch the first few are printed with both token sequences.
//!
//! A larger local-only fixture of texts that may not be redistributed is
//! checked too when `EDGECL_TOKENIZER_EXTRA_FIXTURE` names one.

use std::path::{Path, PathBuf};

use edgecl_runtime::tokenizer::{EncodeOptions, Encoding, Tokenizer};
use serde_json::Value;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tokenizer")
}

fn tokenizer() -> Tokenizer {
    Tokenizer::from_vocab_file(fixture_dir().join("vocab.txt")).expect("fixture vocab loads")
}

fn ids(v: &Value, key: &str) -> Vec<u32> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("record lacks {key}: {v}"))
        .iter()
        .map(|x| x.as_u64().and_then(|x| u32::try_from(x).ok()).expect("id fits u32"))
        .collect()
}

fn show(tok: &Tokenizer, ids: &[u32]) -> String {
    let t: Vec<&str> = ids.iter().map(|&i| tok.vocab().token(i).unwrap_or("<bad id>")).collect();
    t.join(" ")
}

struct Tally {
    singles: usize,
    pairs: usize,
    mismatches: Vec<String>,
}

// Encode every record of a JSONL fixture and compare with its reference ids.
fn check_file(tok: &Tokenizer, path: &Path) -> Tally {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut tally = Tally { singles: 0, pairs: 0, mismatches: Vec::new() };
    for (n, line) in text.lines().enumerate() {
        let rec: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{}:{}: {e}", path.display(), n + 1));
        let (got, want, what): (Encoding, Vec<u32>, String) = if let Some(t) = rec["text"].as_str()
        {
            tally.singles += 1;
            let got = tok.encode(t, &EncodeOptions::default()).expect("encode");
            (got, ids(&rec, "ids"), format!("{t:?}"))
        } else {
            tally.pairs += 1;
            let (a, b) = (rec["a"].as_str().expect("a"), rec["b"].as_str().expect("b"));
            let max_len = rec["max_len"].as_u64().expect("max_len") as usize;
            let opts = EncodeOptions { max_len: Some(max_len), ..Default::default() };
            let got = tok.encode_pair(a, b, &opts).expect("encode pair");
            let want_types: Vec<u8> = ids(&rec, "type_ids").iter().map(|&x| x as u8).collect();
            if got.type_ids != want_types {
                tally.mismatches.push(format!(
                    "line {}: pair {a:?} / {b:?} (max_len {max_len}): type ids {:?}, want {:?}",
                    n + 1,
                    got.type_ids,
                    want_types
                ));
            }
            (got, ids(&rec, "ids"), format!("pair {a:?} / {b:?} (max_len {max_len})"))
        };
        assert_eq!(got.attention_mask, vec![1; got.ids.len()], "unpadded mask is all ones");
        if got.ids != want {
            tally.mismatches.push(format!(
                "line {}: {what}\n   got  {}\n   want {}",
                n + 1,
                show(tok, &got.ids),
                show(tok, &want)
            ));
        }
    }
    tally
}

fn report(name: &str, tally: &Tally) {
    println!(
        "{name}: {} texts + {} pairs checked, {} mismatches",
        tally.singles,
        tally.pairs,
        tally.mismatches.len()
    );
    for m in tally.mismatches.iter().take(10) {
        println!("  {m}");
    }
    assert!(tally.mismatches.is_empty(), "{name}: {} mismatches", tally.mismatches.len());
}

#[test]
fn ids_match_reference_on_shipped_fixture() {
    let tok = tokenizer();
    let tally = check_file(&tok, &fixture_dir().join("wordpiece.jsonl"));
    // The fixture must actually exercise both paths.
    assert!(tally.singles >= 1500 && tally.pairs >= 100, "fixture unexpectedly small");
    report("shipped fixture", &tally);
}

#[test]
fn ids_match_reference_on_local_fixture() {
    let Some(path) = std::env::var_os("EDGECL_TOKENIZER_EXTRA_FIXTURE") else {
        println!("EDGECL_TOKENIZER_EXTRA_FIXTURE unset: local-only fixture not checked");
        return;
    };
    let tally = check_file(&tokenizer(), Path::new(&path));
    report("local fixture", &tally);
}

#[test]
fn vocab_facts() {
    // The published facts of BERT uncased: ids of the special tokens and size.
    let tok = tokenizer();
    let s = tok.vocab().special();
    assert_eq!((s.pad, s.unk, s.cls, s.sep), (0, 100, 101, 102));
    assert_eq!(tok.vocab().len(), 30522);
}
