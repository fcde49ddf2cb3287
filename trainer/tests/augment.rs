//! Augmentation: determinism, rates, non-empty outputs, WordNet synonyms
//! (from a hand-made WordNet directory, and from the installed one when
//! present), paraphrase files and configuration checks.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use edgecl_trainer::augment::{
    delete_words, dropout_pair, Augmenter, MaskMode, Paraphrases, Rng, SpanCrop, Synonyms,
    TokenMask,
};
use edgecl_trainer::error::TrainerError;
use edgecl_trainer::wordnet;

// `n` distinct words `w0 w1 ...`.
fn words(n: usize) -> String {
    (0..n).map(|i| format!("w{i}")).collect::<Vec<_>>().join(" ")
}

// A WordNet-format folder with a handful of synsets across the four files.
fn tiny_wordnet(dir: &Path) {
    let licence = "  1 This is a made-up test database in WordNet's format.  \n";
    let noun = "00000001 17 n 02 sea 0 ocean 0 000 | a large body of salt water  \n\
                00000002 06 n 03 car 0 auto 0 motor_vehicle 0 000 | a vehicle  \n\
                00000003 06 n 01 wheel 0 000 | a round thing  \n\
                00000004 27 n 02 a 0 vitamin_a 0 000 | a vitamin  \n";
    let verb = "00000010 38 v 02 run 0 sprint 0 000 01 + 02 00 | move fast; \"run home\"  \n";
    let adj = "00000020 00 a 02 big 0 large 0 000 | above average in size  \n";
    let adv = "00000030 02 r 02 quickly 0 fast 0 000 | with speed  \n";
    for (name, body) in
        [("data.noun", noun), ("data.verb", verb), ("data.adj", adj), ("data.adv", adv)]
    {
        std::fs::write(dir.join(name), format!("{licence}{body}")).unwrap();
    }
}

fn tiny_synonyms() -> (tempfile::TempDir, Synonyms) {
    let dir = tempfile::tempdir().unwrap();
    tiny_wordnet(dir.path());
    let found = wordnet::find_dir(Some(dir.path())).unwrap();
    let syn = Synonyms::from_dir(&found).unwrap();
    (dir, syn)
}

fn full_augmenter(syn: Synonyms, para: Paraphrases) -> Augmenter {
    Augmenter {
        paraphrase_prob: 0.3,
        synonym_prob: 0.8,
        synonym_rate: 0.5,
        mask_prob: 0.5,
        delete_prob: 0.5,
        synonyms: Some(Arc::new(syn)),
        paraphrases: Some(Arc::new(para)),
        ..Augmenter::default()
    }
}

#[test]
fn same_seed_same_output_different_seed_differs() {
    let (_dir, syn) = tiny_synonyms();
    let mut para = Paraphrases::default();
    para.insert("the big car runs quickly", "a large auto moves fast");
    let aug = full_augmenter(syn, para);
    aug.validate().unwrap();
    let texts = ["the big car runs quickly", "Sea, car and wheel: run!", "one", &words(40) as &str];
    let run = |seed: u64| {
        let mut rng = Rng::new(seed);
        let mut out = Vec::new();
        for _ in 0..20 {
            for t in texts {
                out.push(aug.augment(t, &mut rng));
                let (a, b) = aug.crop_pair(t, &mut rng);
                out.push(a);
                out.push(b);
            }
        }
        out
    };
    assert_eq!(run(11), run(11));
    assert_ne!(run(11), run(12));
}

#[test]
fn mask_rate_is_respected() {
    let text = words(20_000);
    for rate in [0.0f32, 0.15, 0.5, 1.0] {
        let mask = TokenMask { rate, mode: MaskMode::Replace("[MASK]".into()) };
        let out = mask.apply(&text, &mut Rng::new(5));
        let toks: Vec<&str> = out.split(' ').collect();
        assert_eq!(toks.len(), 20_000, "replacement keeps the word count");
        let masked = toks.iter().filter(|t| **t == "[MASK]").count() as f64 / 20_000.0;
        // Binomial standard deviation at n = 20,000 is at most 0.0036.
        assert!((masked - f64::from(rate)).abs() < 0.02, "rate {rate}: masked {masked}");
        // Unmasked words keep their position.
        for (i, t) in toks.iter().enumerate() {
            assert!(*t == "[MASK]" || *t == format!("w{i}"));
        }
    }
}

#[test]
fn deletion_rate_is_respected_and_order_kept() {
    let text = words(20_000);
    for rate in [0.1f32, 0.3, 0.9] {
        let out = delete_words(&text, rate, &mut Rng::new(9));
        let kept: Vec<usize> =
            out.split(' ').map(|w| w.trim_start_matches('w').parse().unwrap()).collect();
        let frac = kept.len() as f64 / 20_000.0;
        assert!((frac - (1.0 - f64::from(rate))).abs() < 0.02, "rate {rate}: kept {frac}");
        assert!(kept.windows(2).all(|w| w[0] < w[1]), "deletion keeps word order");
    }
    let dropped = TokenMask { rate: 0.5, mode: MaskMode::Drop }.apply(&text, &mut Rng::new(1));
    let frac = dropped.split(' ').count() as f64 / 20_000.0;
    assert!((frac - 0.5).abs() < 0.02, "drop-mode masking deletes at its rate: {frac}");
}

#[test]
fn outputs_are_never_empty() {
    let mut rng = Rng::new(3);
    let all_out = Augmenter {
        mask_prob: 1.0,
        mask: TokenMask { rate: 1.0, mode: MaskMode::Drop },
        delete_prob: 1.0,
        delete_rate: 1.0,
        crop: SpanCrop { min_frac: 0.01, max_frac: 0.02 },
        ..Augmenter::default()
    };
    all_out.validate().unwrap();
    for n in 1..30 {
        let text = words(n);
        let originals: HashSet<String> = text.split(' ').map(str::to_string).collect();
        for _ in 0..20 {
            let out = all_out.augment(&text, &mut rng);
            assert_eq!(out.split(' ').count(), 1, "rate 1 keeps exactly one word: {out:?}");
            assert!(originals.contains(&out));
            let (a, b) = all_out.crop_pair(&text, &mut rng);
            assert!(!a.is_empty() && !b.is_empty());
        }
    }
    // An input without words has nothing to keep and comes back as it was.
    assert_eq!(all_out.augment("  ", &mut rng), "  ");
    assert_eq!(delete_words("", 1.0, &mut rng), "");
}

#[test]
fn crops_are_contiguous_spans_within_bounds() {
    let doc = words(200);
    let crop = SpanCrop { min_frac: 0.1, max_frac: 0.3 };
    let mut rng = Rng::new(17);
    let mut starts = HashSet::new();
    for _ in 0..500 {
        let span = crop.crop(&doc, &mut rng);
        let ids: Vec<usize> =
            span.split(' ').map(|w| w.trim_start_matches('w').parse().unwrap()).collect();
        assert!((20..=60).contains(&ids.len()), "length {} outside 10%..30% of 200", ids.len());
        assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "span is contiguous");
        starts.insert(ids[0]);
    }
    assert!(starts.len() > 50, "starts vary: {} distinct", starts.len());
}

#[test]
fn dropout_pair_is_the_text_twice() {
    let (a, b) = dropout_pair("  the same text ");
    assert_eq!(a, "  the same text ");
    assert_eq!(a, b);
}

#[test]
fn synonyms_come_from_the_tiny_wordnet() {
    let (_dir, syn) = tiny_synonyms();
    assert_eq!(syn.of("Sea"), ["ocean"]);
    assert_eq!(syn.of("car"), ["auto", "motor vehicle"]);
    assert_eq!(syn.of("motor"), [] as [&str; 0], "multi-word lemmas are not keys");
    assert!(syn.of("wheel").is_empty(), "a synset of one word gives no synonym");
    assert!(!syn.is_eligible("a"), "stop words are never replaced");
    assert!(syn.is_eligible("(Sea),"));

    // Rate 1 replaces every eligible word, keeping punctuation and case.
    let out = syn.replace("The SEA, a Big car; wheel run.", 1.0, &mut Rng::new(2));
    let toks: Vec<&str> = out.split(' ').collect();
    assert_eq!(toks[0], "The");
    assert_eq!(toks[1], "OCEAN,");
    assert_eq!(toks[2], "a");
    assert_eq!(toks[3], "Large");
    assert!(toks[4] == "auto" || toks[4..6] == ["motor", "vehicle;"], "{out}");
    assert!(out.contains(" wheel "), "{out}");
    assert!(out.ends_with(" sprint."), "{out}");

    // Rate 0 is the identity; in between, the eligible fraction replaced is the rate.
    assert_eq!(syn.replace("the sea is big", 0.0, &mut Rng::new(2)), "the sea is big");
    let text = vec!["sea"; 10_000].join(" ");
    let out = syn.replace(&text, 0.25, &mut Rng::new(4));
    let frac = out.split(' ').filter(|w| *w == "ocean").count() as f64 / 10_000.0;
    assert!((frac - 0.25).abs() < 0.02, "replaced {frac}");
}

#[test]
fn synonyms_come_from_installed_wordnet() {
    let dir = Path::new("/usr/share/wordnet");
    if !dir.join("data.noun").is_file() {
        eprintln!("skipped: /usr/share/wordnet is absent (Debian: apt-get install wordnet-base)");
        return;
    }
    let synsets = wordnet::load(dir).unwrap();
    let syn = Synonyms::from_synsets(&synsets);
    assert!(syn.len() > 50_000, "{} words with synonyms", syn.len());
    for w in ["auto", "automobile", "machine", "motorcar"] {
        assert!(syn.of("car").iter().any(|s| s == w), "car -> {w}");
    }

    // Every word that changed shares a synset with its replacement.
    let shares_synset = |a: &str, b: &str| {
        let (a, b) = (a.to_lowercase(), b.to_lowercase());
        synsets.iter().any(|s| {
            s.words.iter().any(|w| w.to_lowercase() == a)
                && s.words.iter().any(|w| w.to_lowercase() == b)
        })
    };
    let text = "the car drove along the road near the sea under a bright sky";
    let mut rng = Rng::new(8);
    let mut changed = 0;
    for _ in 0..20 {
        let out = syn.replace(text, 1.0, &mut rng);
        // Multi-word synonyms break the word alignment; compare only when it holds.
        let (a, b): (Vec<&str>, Vec<&str>) = (text.split(' ').collect(), out.split(' ').collect());
        if a.len() != b.len() {
            continue;
        }
        for (x, y) in a.iter().zip(&b) {
            if x != y {
                assert!(shares_synset(x, y), "{x} -> {y} is not a WordNet synonym");
                changed += 1;
            }
        }
    }
    assert!(changed > 0, "rate 1 changed no word");
}

#[test]
fn paraphrase_files_tsv_and_jsonl() {
    let dir = tempfile::tempdir().unwrap();
    let tsv = dir.path().join("p.tsv");
    std::fs::write(&tsv, "a cat sat\tthe cat was sitting\tthere sat a cat\n\nhello\thi there\n")
        .unwrap();
    let p = Paraphrases::load(&tsv).unwrap();
    assert_eq!(p.len(), 3);
    assert_eq!(p.of("a  cat sat"), ["the cat was sitting", "there sat a cat"]);
    assert_eq!(p.pairs()[2], ("hello".to_string(), "hi there".to_string()));

    let jsonl = dir.path().join("p.jsonl");
    std::fs::write(&jsonl, "{\"text\": \"hello\", \"paraphrases\": [\"hi\", \"hey\"]}\n").unwrap();
    let j = Paraphrases::load(&jsonl).unwrap();
    assert_eq!(j.of("hello"), ["hi", "hey"]);

    // With probability 1 the augmenter returns one of the listed paraphrases.
    let aug =
        Augmenter { paraphrase_prob: 1.0, paraphrases: Some(Arc::new(j)), ..Augmenter::default() };
    aug.validate().unwrap();
    let mut rng = Rng::new(1);
    let seen: HashSet<String> = (0..50).map(|_| aug.augment("hello", &mut rng)).collect();
    assert_eq!(seen, HashSet::from(["hi".to_string(), "hey".to_string()]));
    assert_eq!(aug.augment("no paraphrase here", &mut rng), "no paraphrase here");

    // Malformed lines name the file, the line and the field.
    let bad = dir.path().join("bad.tsv");
    std::fs::write(&bad, "ok\tfine\nlonely\n").unwrap();
    let e = Paraphrases::load(&bad).unwrap_err();
    assert!(matches!(e, TrainerError::ColumnCount { line: 2, .. }), "{e}");
    std::fs::write(&bad, "ok\t \n").unwrap();
    let e = Paraphrases::load(&bad).unwrap_err();
    assert!(e.to_string().contains("bad.tsv:1: field \"paraphrases[0]\""), "{e}");
    let badj = dir.path().join("bad.jsonl");
    std::fs::write(&badj, "{\"text\": \"x\", \"paraphrases\": [\"y\", 3]}\n").unwrap();
    let e = Paraphrases::load(&badj).unwrap_err();
    assert!(e.to_string().contains("paraphrases[1]"), "{e}");
    assert!(Paraphrases::load(&dir.path().join("p.csv")).is_err());
}

#[test]
fn validate_names_the_bad_field() {
    let bad = |aug: Augmenter, name: &str| {
        let e = aug.validate().unwrap_err();
        assert!(
            matches!(&e, TrainerError::InvalidArgument { name: n, .. } if *n == name),
            "{e} should name {name}"
        );
    };
    bad(Augmenter { mask_prob: 1.5, ..Augmenter::default() }, "mask_prob");
    bad(Augmenter { delete_rate: f32::NAN, ..Augmenter::default() }, "delete_rate");
    bad(
        Augmenter { crop: SpanCrop { min_frac: 0.6, max_frac: 0.5 }, ..Augmenter::default() },
        "crop",
    );
    bad(
        Augmenter { crop: SpanCrop { min_frac: 0.0, max_frac: 0.5 }, ..Augmenter::default() },
        "crop",
    );
    bad(Augmenter { synonym_prob: 0.1, ..Augmenter::default() }, "synonyms");
    bad(Augmenter { paraphrase_prob: 0.1, ..Augmenter::default() }, "paraphrases");
    let two_words = TokenMask { rate: 0.1, mode: MaskMode::Replace("[ MASK ]".into()) };
    bad(Augmenter { mask: two_words, ..Augmenter::default() }, "mask.mode");
    Augmenter::default().validate().unwrap();
    // The default augmenter only normalises whitespace.
    assert_eq!(Augmenter::default().augment(" a  b\tc ", &mut Rng::new(0)), "a b c");
}
