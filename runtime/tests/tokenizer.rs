//! Behaviour of the WordPiece tokenizer on a small hand-written vocabulary:
//! greedy matching, [UNK] rules, specials, truncation, padding, batches and
//! the typed errors of bad vocabulary files.

use edgecl_runtime::tokenizer::{
    EncodeOptions, Padding, Scratch, Tokenizer, TokenizerError, Vocab,
};

// ids:          0       1       2       3       4        5     6      7       8       9
const TOKENS: &[&str] = &[
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff", "##able", "aff", "##a",
    // 10    11   12      13    14     15   16     17
    "able", "a", "##b", "b", "hello", ",", "##s", "é",
];

fn tok() -> Tokenizer {
    Tokenizer::new(Vocab::from_tokens(TOKENS, "test vocab").expect("valid vocab"))
}

fn plain() -> EncodeOptions {
    EncodeOptions::default()
}

#[test]
fn greedy_longest_match_first() {
    let t = tok();
    assert_eq!(t.tokenize("unaffable").unwrap(), ["un", "##aff", "##able"]);
    // "affa": longest initial piece "aff", then "##a".
    assert_eq!(t.tokenize("Affa, hellos").unwrap(), ["aff", "##a", ",", "hello", "##s"]);
    // Accents are stripped before lookup, so "é" in the vocab is unreachable.
    assert_eq!(t.tokenize("ÁB").unwrap(), ["a", "##b"]);
}

#[test]
fn unknown_words() {
    let t = tok();
    // One unmatchable character spoils the whole word, not just the piece.
    assert_eq!(t.tokenize("unaffz able").unwrap(), ["[UNK]", "able"]);
    // Over the character limit: [UNK] even though pieces exist.
    let t = t.with_max_input_chars_per_word(4);
    assert_eq!(t.tokenize("abab aba").unwrap(), ["a", "##b", "##a", "##b", "a", "##b", "##a"]);
    assert_eq!(t.tokenize("ababa").unwrap(), ["[UNK]"]);
}

#[test]
fn specials_in_text() {
    let t = tok();
    let e = t.encode("a[SEP]b [MASK]", &plain()).unwrap();
    assert_eq!(e.ids, [2, 11, 3, 13, 4, 3]);
    let t = t.with_special_tokens_in_text(false);
    assert_eq!(t.tokenize("[MASK]").unwrap(), ["[UNK]", "[UNK]", "[UNK]"]);
}

#[test]
fn single_and_pair_layout() {
    let t = tok();
    let e = t.encode("a b", &plain()).unwrap();
    assert_eq!(e.ids, [2, 11, 13, 3]);
    assert_eq!(e.type_ids, [0, 0, 0, 0]);
    assert_eq!(e.attention_mask, [1, 1, 1, 1]);
    let e = t.encode_pair("a", "b able", &plain()).unwrap();
    assert_eq!(e.ids, [2, 11, 3, 13, 10, 3]);
    assert_eq!(e.type_ids, [0, 0, 0, 1, 1, 1]);
    // Empty text still has its specials.
    assert_eq!(t.encode("", &plain()).unwrap().ids, [2, 3]);
}

#[test]
fn truncation() {
    let t = tok();
    let opts = |n| EncodeOptions { max_len: Some(n), padding: Padding::None };
    assert_eq!(t.encode("a b a b", &opts(4)).unwrap().ids, [2, 11, 13, 3]);
    assert_eq!(t.encode("a b", &opts(2)).unwrap().ids, [2, 3]);
    // Longest first: 1 + 5 tokens into 4 leaves a alone and b with 3.
    let e = t.encode_pair("a", "b b b b b", &opts(7)).unwrap();
    assert_eq!(e.ids, [2, 11, 3, 13, 13, 13, 3]);
    // Tie: the second segment keeps the odd token.
    let e = t.encode_pair("a a a", "b b b", &opts(8)).unwrap();
    assert_eq!(e.ids, [2, 11, 11, 3, 13, 13, 13, 3]);
    // Too small for the specials.
    match t.encode_pair("a", "b", &opts(2)) {
        Err(TokenizerError::MaxLenTooSmall { max_len: 2, specials: 3 }) => {}
        other => panic!("expected MaxLenTooSmall, got {other:?}"),
    }
    assert!(matches!(t.encode("a", &opts(1)), Err(TokenizerError::MaxLenTooSmall { .. })));
}

#[test]
fn padding_fixed_and_longest() {
    let t = tok();
    let opts = EncodeOptions { max_len: None, padding: Padding::Fixed(6) };
    let e = t.encode("a b", &opts).unwrap();
    assert_eq!(e.ids, [2, 11, 13, 3, 0, 0]);
    assert_eq!(e.type_ids, [0; 6]);
    assert_eq!(e.attention_mask, [1, 1, 1, 1, 0, 0]);
    // Longer than the fixed length: left alone.
    assert_eq!(t.encode("a a a a a", &opts).unwrap().len(), 7);

    let opts = EncodeOptions { max_len: Some(5), padding: Padding::Longest };
    let batch = t.encode_batch(&["a", "a b a b a b", ""], &opts).unwrap();
    assert!(batch.iter().all(|e| e.len() == 5));
    assert_eq!(batch[0].attention_mask, [1, 1, 1, 0, 0]);
    assert_eq!(batch[2].ids, [2, 3, 0, 0, 0]);
}

#[test]
fn batch_matches_one_by_one_and_scratch_reuse() {
    let t = tok();
    let texts: Vec<String> =
        (0..200).map(|i| format!("a b{} Unaffable, hello{}", " ab".repeat(i % 7), i % 3)).collect();
    let batch = t.encode_batch(&texts, &plain()).unwrap();
    let mut scratch = Scratch::default();
    let mut out = Default::default();
    for (text, want) in texts.iter().zip(&batch) {
        t.encode_with(text, None, &plain(), &mut scratch, &mut out).unwrap();
        assert_eq!(&out, want);
    }
    let pairs: Vec<(&str, &str)> = texts.iter().map(|s| (s.as_str(), "b able")).collect();
    let batch = t.encode_pair_batch(&pairs, &plain()).unwrap();
    for ((a, b), want) in pairs.iter().zip(&batch) {
        assert_eq!(&t.encode_pair(a, b, &plain()).unwrap(), want);
    }
}

#[test]
fn vocab_errors_name_file_and_line() {
    let good = "[PAD]\n[UNK]\n[CLS]\n[SEP]\nx\n";
    let v = Vocab::from_bytes(good.as_bytes(), "v.txt").unwrap();
    assert_eq!((v.len(), v.id("x"), v.token(4)), (5, Some(4), Some("x")));
    // CRLF and a missing final newline are accepted.
    assert_eq!(Vocab::from_bytes(b"[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]", "v").unwrap().len(), 4);

    let err = |bytes: &[u8]| Vocab::from_bytes(bytes, "v.txt").unwrap_err();
    assert!(matches!(err(b""), TokenizerError::EmptyVocab { .. }));
    assert!(matches!(err(b"\n"), TokenizerError::EmptyVocab { .. }));
    match err(b"[PAD]\n[UNK]\n\n[CLS]\n[SEP]\n") {
        TokenizerError::EmptyToken { path, line: 3 } => assert_eq!(path, "v.txt"),
        e => panic!("expected EmptyToken on line 3, got {e:?}"),
    }
    match err(b"[PAD]\n[UNK]\n[CLS]\n[SEP]\nx\n[UNK]\n") {
        TokenizerError::DuplicateToken { token, line: 6, first_line: 2, .. } => {
            assert_eq!(token, "[UNK]")
        }
        e => panic!("expected DuplicateToken, got {e:?}"),
    }
    assert!(matches!(
        err(b"[PAD]\n[UNK]\n[SEP]\n"),
        TokenizerError::MissingSpecialToken { token: "[CLS]", .. }
    ));
    assert!(matches!(err(b"[PAD]\n\xff\xfe\n"), TokenizerError::NotUtf8 { line: 2, .. }));
    let e = err(b"[PAD]\n[UNK]\n[CLS]\n[SEP]\n[SEP]\n");
    assert_eq!(e.to_string(), "v.txt:5: duplicate token \"[SEP]\" (first on line 4)");

    // Missing file: an Io error naming the path.
    let e = Vocab::from_file("/nonexistent/vocab.txt").unwrap_err();
    assert!(matches!(e, TokenizerError::Io { .. }));
    assert!(e.to_string().contains("/nonexistent/vocab.txt"));
}

mod properties {
    use super::*;
    use edgecl_runtime::tokenizer::{BasicTokenizer, Words};
    use proptest::prelude::*;
    use std::sync::OnceLock;

    fn bert() -> &'static Tokenizer {
        static T: OnceLock<Tokenizer> = OnceLock::new();
        T.get_or_init(|| {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
            Tokenizer::from_vocab_file(dir.join("tests/fixtures/tokenizer/vocab.txt")).unwrap()
        })
    }

    fn words(text: &str) -> Vec<String> {
        let mut w = Words::default();
        BasicTokenizer::default().split_into(text, &mut w);
        w.iter().map(str::to_owned).collect()
    }

    // Text mixing ASCII, accented Latin, CJK, controls, marks and spaces.
    fn mixed_text() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            "[ -~]{0,12}",
            "[\\x00-\\x1f\\x7f]{1,2}",
            "[à-ÿ]{1,4}",
            "[\u{300}-\u{36f}]{1,2}",
            "[一-龥]{1,3}",
            "[\u{2000}-\u{206f}]{1,2}",
            any::<char>().prop_map(String::from),
        ];
        prop::collection::vec(piece, 0..12).prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        // The ASCII fast path and the general path split identically: an
        // appended ideographic space forces the general path without
        // changing the words.
        #[test]
        fn ascii_fast_path_matches_general_path(text in "[\\x00-\\x7f]{0,80}") {
            prop_assert_eq!(words(&text), words(&format!("{text}\u{3000}")));
        }

        // Any text encodes; ids are in range; the layout invariants hold.
        #[test]
        fn encode_invariants(a in mixed_text(), b in mixed_text(), max_len in 3usize..40) {
            let t = bert();
            let n = t.vocab().len() as u32;
            let s = t.vocab().special();
            let opts = EncodeOptions { max_len: Some(max_len), padding: Padding::Fixed(max_len) };
            let e = t.encode_pair(&a, &b, &opts).unwrap();
            prop_assert_eq!(e.len(), max_len);
            prop_assert_eq!(e.type_ids.len(), max_len);
            prop_assert_eq!(e.attention_mask.len(), max_len);
            prop_assert!(e.ids.iter().all(|&id| id < n));
            prop_assert_eq!(e.ids[0], s.cls);
            // Type ids rise once from 0 to 1 and the mask falls once from 1 to 0.
            prop_assert!(e.type_ids.windows(2).all(|w| w[0] <= w[1] || w[1] == 0));
            prop_assert!(e.attention_mask.windows(2).all(|w| w[0] >= w[1]));
            let real = e.attention_mask.iter().filter(|&&m| m == 1).count();
            prop_assert_eq!(e.ids[real - 1], s.sep);
            prop_assert!(e.ids[real..].iter().all(|&id| id == s.pad));

            // Without a limit, the pair holds both texts' pieces whole.
            let mut pa = Vec::new();
            let mut pb = Vec::new();
            let mut scratch = Scratch::default();
            t.tokenize_into(&a, &mut scratch, &mut pa).unwrap();
            t.tokenize_into(&b, &mut scratch, &mut pb).unwrap();
            let full = t.encode_pair(&a, &b, &EncodeOptions::default()).unwrap();
            let want: Vec<u32> = [s.cls].iter().chain(&pa).chain(&[s.sep]).chain(&pb).chain(&[s.sep]).copied().collect();
            prop_assert_eq!(full.ids, want);
        }
    }
}
