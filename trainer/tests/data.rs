//! Data readers: hand-made fixtures for the good paths, one small temp file per error kind,
//! and the skip-and-count behaviour of `skip_malformed`.

use std::error::Error;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use edgecl_trainer::data::beir::{
    load_beir, load_qrels, open_corpus, open_queries, read_corpus, Document,
};
use edgecl_trainer::data::examples::{
    load_examples, open_examples, read_examples, ExampleFormat, TrainingExample,
};
use edgecl_trainer::data::{ReadOptions, KEPT_SKIP_ERRORS};
use edgecl_trainer::error::{IoResultExt, TrainerError};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

// Writes `contents` to `name` in a fresh temp dir (kept alive by the returned guard).
fn temp_file(name: &str, contents: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, contents).unwrap();
    (dir, path)
}

// The first error of loading a JSONL examples file made of `contents`.
fn jsonl_error(contents: &str) -> (TrainerError, PathBuf) {
    let (_dir, path) = temp_file("x.jsonl", contents.as_bytes());
    match load_examples(&path, ReadOptions::STRICT) {
        Ok(l) => panic!("expected an error, loaded {:?}", l.data),
        Err(e) => (e, path),
    }
}

fn tsv_error(contents: &str) -> TrainerError {
    let (_dir, path) = temp_file("x.tsv", contents.as_bytes());
    load_examples(&path, ReadOptions::STRICT).expect_err("expected an error")
}

// ---- good paths -------------------------------------------------------------------------

#[test]
fn jsonl_fixture_loads_pairs_and_triples() {
    let loaded = load_examples(&fixture("examples.jsonl"), ReadOptions::STRICT).unwrap();
    assert_eq!(loaded.data.len(), 3);
    assert_eq!(
        loaded.data[1],
        TrainingExample {
            query: "boiling point of water".into(),
            positive: "Water boils at 100 C at sea level.".into(),
            negatives: vec!["Ice melts at 0 C.".into(), "Steam is hot.".into()],
            scores: Some(vec![9.5, 1.25, -3.0]),
        }
    );
    assert!(loaded.data[0].negatives.is_empty() && loaded.data[0].scores.is_none());
    assert_eq!(loaded.data[2].scores, None, "null scores read as absent");
    let s = &loaded.summary;
    assert_eq!((s.lines, s.records, s.blank_lines, s.skipped), (4, 3, 1, 0));
}

#[test]
fn tsv_fixture_loads_and_strips_crlf() {
    let loaded = load_examples(&fixture("examples.tsv"), ReadOptions::STRICT).unwrap();
    assert_eq!(loaded.data.len(), 2);
    assert_eq!(loaded.data[0].positive, "The moon pulls the oceans.");
    assert_eq!(loaded.data[1].negatives, vec!["Ice melts at 0 C.", "Steam is hot."]);
}

#[test]
fn streaming_reader_yields_one_record_at_a_time() {
    let text = "{\"query\": \"a\", \"positive\": \"b\"}\n{\"query\": \"c\", \"positive\": \"d\"}";
    let mut reader = read_examples(
        Cursor::new(text),
        Path::new("<memory>"),
        ExampleFormat::Jsonl,
        ReadOptions::STRICT,
    );
    assert_eq!(reader.next().unwrap().unwrap().query, "a");
    assert_eq!(reader.summary().records, 1);
    assert_eq!(reader.next().unwrap().unwrap().positive, "d");
    assert!(reader.next().is_none());
}

#[test]
fn beir_fixture_loads_and_filters_queries() {
    let data = load_beir(&fixture("beir_tiny"), "test", ReadOptions::STRICT).unwrap();
    assert_eq!(data.corpus.len(), 5);
    assert_eq!(
        data.corpus[2],
        Document {
            id: "d3".into(),
            title: String::new(),
            text: "Paris is the capital and largest city of France.".into(),
        }
    );
    // q4 has no judgment in the split, so it is left out.
    let ids: Vec<&str> = data.queries.iter().map(|q| q.id.as_str()).collect();
    assert_eq!(ids, ["q1", "q2", "q3"]);
    assert_eq!(data.qrels["q1"]["d1"], 2);
    assert_eq!(data.qrels["q1"]["d2"], 0);
    assert_eq!(data.empty_documents, ["d5"]);
    assert_eq!(data.qrels_summary.records, 5);
}

// ---- one test per error kind ------------------------------------------------------------

#[test]
fn io_error_names_the_path_and_chains() {
    let missing = Path::new("/nonexistent/dir/train.jsonl");
    let err = load_examples(missing, ReadOptions::LENIENT).unwrap_err();
    assert!(matches!(&err, TrainerError::Io { path: Some(p), .. } if p == missing));
    assert!(err.to_string().starts_with("/nonexistent/dir/train.jsonl: i/o error"));
    assert!(err.source().is_some());

    // The helper trait attaches a path; the bare From has none.
    let raw: std::io::Result<()> = Err(std::io::Error::other("boom"));
    let with = raw.with_path(Path::new("f.txt")).unwrap_err();
    assert_eq!(with.to_string(), "f.txt: i/o error: boom");
    let bare: TrainerError = std::io::Error::other("boom").into();
    assert_eq!(bare.to_string(), "<unknown path>: i/o error: boom");
}

#[test]
fn invalid_utf8_is_named_by_line() {
    let (_dir, path) = temp_file("x.tsv", b"a\tb\n\xff\xfe\tc\n");
    let err = load_examples(&path, ReadOptions::STRICT).unwrap_err();
    assert!(matches!(err, TrainerError::NotUtf8 { line: 2, .. }), "{err}");
    let lenient = load_examples(&path, ReadOptions::LENIENT).unwrap();
    assert_eq!((lenient.data.len(), lenient.summary.skipped), (1, 1));
}

#[test]
fn bad_json_is_named_by_line_and_chains() {
    let (err, path) = jsonl_error("{\"query\": \"a\", \"positive\": \"b\"}\n{\"query\": \n");
    assert!(matches!(err, TrainerError::Json { line: 2, .. }), "{err}");
    assert!(err.to_string().starts_with(&format!("{}:2: invalid json", path.display())));
    assert!(err.source().is_some());
    assert_eq!(err.location().map(|(_, l)| l), Some(2));
}

#[test]
fn top_level_array_is_wrong_type() {
    let (err, _) = jsonl_error("[\"query\", \"positive\"]\n");
    assert!(matches!(err, TrainerError::WrongType { line: 1, expected: "a json object", .. }));
}

#[test]
fn missing_field_names_the_field() {
    let (err, path) = jsonl_error("{\"query\": \"a\"}\n");
    assert!(
        matches!(&err, TrainerError::MissingField { line: 1, field, .. } if field == "positive")
    );
    assert_eq!(err.to_string(), format!("{}:1: field \"positive\": missing", path.display()));
}

#[test]
fn wrong_types_name_the_field() {
    let (err, _) = jsonl_error("{\"query\": 3, \"positive\": \"b\"}\n");
    assert!(matches!(&err, TrainerError::WrongType { field, .. } if field == "query"));
    let (err, _) = jsonl_error("{\"query\": \"a\", \"positive\": \"b\", \"negatives\": \"c\"}\n");
    assert!(matches!(&err, TrainerError::WrongType { field, .. } if field == "negatives"));
    let (err, _) =
        jsonl_error("{\"query\": \"a\", \"positive\": \"b\", \"negatives\": [\"c\", 1]}");
    assert!(matches!(&err, TrainerError::WrongType { field, .. } if field == "negatives[1]"));
    let (err, _) = jsonl_error("{\"query\": \"a\", \"positive\": \"b\", \"scores\": [\"1\"]}\n");
    assert!(matches!(&err, TrainerError::WrongType { field, .. } if field == "scores[0]"));
    // A bare NaN where a string belongs is a type error, not a score error.
    let (err, _) = jsonl_error("{\"query\": NaN, \"positive\": \"b\"}\n");
    assert!(matches!(&err, TrainerError::WrongType { field, .. } if field == "query"), "{err}");
}

#[test]
fn empty_texts_name_the_field() {
    let (err, _) = jsonl_error("{\"query\": \" \\t\", \"positive\": \"b\"}\n");
    assert!(matches!(&err, TrainerError::EmptyText { field, .. } if field == "query"));
    let (err, _) = jsonl_error("{\"query\": \"a\", \"positive\": \"b\", \"negatives\": [\"\"]}\n");
    assert!(matches!(&err, TrainerError::EmptyText { field, .. } if field == "negatives[0]"));
    let err = tsv_error("q\tp\t\n");
    assert!(
        matches!(&err, TrainerError::EmptyText { line: 1, field, .. } if field == "negatives[0]")
    );
    let (_dir, path) = temp_file("queries.jsonl", b"{\"_id\": \"q1\", \"text\": \"\"}\n");
    let err = open_queries(&path, ReadOptions::STRICT).unwrap().next().unwrap().unwrap_err();
    assert!(matches!(&err, TrainerError::EmptyText { field, .. } if field == "text"));
}

#[test]
fn non_finite_scores_name_the_element() {
    // Python's json module writes NaN / Infinity bare.
    for bad in ["NaN", "Infinity", "-Infinity", "1e39"] {
        let line = format!(
            "{{\"query\": \"a, NaN\", \"positive\": \"b\", \"negatives\": [\"c\"], \"scores\": [1, {bad}]}}\n"
        );
        let (err, path) = jsonl_error(&line);
        assert!(
            matches!(&err, TrainerError::NonFiniteScore { line: 1, field, .. } if field == "scores[1]"),
            "{bad}: {err}"
        );
        let shown = format!("{}:1: field \"scores[1]\": not a finite number", path.display());
        assert_eq!(err.to_string(), shown);
    }
}

#[test]
fn score_count_must_match_positive_plus_negatives() {
    let (err, _) = jsonl_error(
        "{\"query\": \"a\", \"positive\": \"b\", \"negatives\": [\"c\", \"d\"], \"scores\": [1, 2]}",
    );
    assert!(matches!(err, TrainerError::ScoreCount { expected: 3, found: 2, .. }), "{err}");
}

#[test]
fn tsv_column_count() {
    let err = tsv_error("q\tp\nonly one column\n");
    assert!(matches!(err, TrainerError::ColumnCount { line: 2, found: 1, .. }), "{err}");
}

#[test]
fn qrels_errors() {
    let header = "query-id\tcorpus-id\tscore\n";
    let qrels_err = |body: &str| {
        let (_dir, path) = temp_file("test.tsv", body.as_bytes());
        load_qrels(&path, ReadOptions::STRICT).unwrap_err()
    };
    let err = qrels_err("q1\td1\t1\n");
    assert!(matches!(err, TrainerError::BadHeader { line: 1, .. }), "{err}");
    let err = qrels_err(&format!("{header}q1\td1\n"));
    assert!(matches!(err, TrainerError::ColumnCount { line: 2, found: 2, .. }), "{err}");
    let err = qrels_err(&format!("{header}q1\td1\t1.5\n"));
    assert!(
        matches!(&err, TrainerError::BadNumber { line: 2, field, value, .. } if field == "score" && value == "1.5"),
        "{err}"
    );
    let err = qrels_err(&format!("{header}q1\td1\t1\nq2\td1\t0\nq1\td1\t2\n"));
    assert!(matches!(err, TrainerError::DuplicateId { line: 4, first_line: 2, .. }), "{err}");

    // A bad header ends the stream even when skipping malformed lines.
    let (_dir, path) = temp_file("test.tsv", b"qid\tdid\trel\nq1\td1\t1\n");
    let err = load_qrels(&path, ReadOptions::LENIENT).unwrap_err();
    assert!(matches!(err, TrainerError::BadHeader { .. }));
}

#[test]
fn duplicate_ids_name_both_lines() {
    let text = "{\"_id\": \"a\", \"text\": \"x\"}\n{\"_id\": \"b\", \"text\": \"y\"}\n{\"_id\": \"a\", \"text\": \"z\"}\n";
    let (_dir, path) = temp_file("corpus.jsonl", text.as_bytes());
    let err = open_corpus(&path, ReadOptions::STRICT).unwrap().collect_loaded().unwrap_err();
    assert!(
        matches!(&err, TrainerError::DuplicateId { line: 3, first_line: 1, id, field, .. } if id == "a" && field == "_id"),
        "{err}"
    );
    assert!(err.to_string().contains("(first seen on line 1)"));
    // Skipped under skip_malformed: the first occurrence wins.
    let loaded = open_corpus(&path, ReadOptions::LENIENT).unwrap().collect_loaded().unwrap();
    assert_eq!(loaded.data.iter().map(|d| d.text.as_str()).collect::<Vec<_>>(), ["x", "y"]);
    assert_eq!(loaded.summary.skipped, 1);
}

#[test]
fn unknown_ids_in_qrels() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("qrels")).unwrap();
    std::fs::write(dir.path().join("corpus.jsonl"), "{\"_id\": \"d1\", \"text\": \"x\"}\n")
        .unwrap();
    std::fs::write(dir.path().join("queries.jsonl"), "{\"_id\": \"q1\", \"text\": \"y\"}\n")
        .unwrap();
    std::fs::write(
        dir.path().join("qrels/dev.tsv"),
        "query-id\tcorpus-id\tscore\nq1\td1\t1\nq9\td1\t1\nq1\td9\t1\n",
    )
    .unwrap();
    let err = load_beir(dir.path(), "dev", ReadOptions::STRICT).unwrap_err();
    assert!(
        matches!(&err, TrainerError::UnknownId { line: 3, field, id, .. } if field == "query-id" && id == "q9"),
        "{err}"
    );
    let data = load_beir(dir.path(), "dev", ReadOptions::LENIENT).unwrap();
    assert_eq!(data.qrels.len(), 1);
    assert_eq!(data.qrels["q1"].len(), 1);
    let s = &data.qrels_summary;
    assert_eq!((s.records, s.skipped), (1, 2));
    assert!(
        matches!(&s.skipped_errors[1], TrainerError::UnknownId { line: 4, field, .. } if field == "corpus-id")
    );
}

#[test]
fn corpus_accepts_documents_without_text_but_not_without_id() {
    let text = "{\"_id\": \"a\", \"text\": \"\"}\n{\"text\": \"no id\"}\n";
    let mut reader = read_corpus(Cursor::new(text), Path::new("c.jsonl"), ReadOptions::STRICT);
    assert_eq!(reader.next().unwrap().unwrap().text, "");
    let err = reader.next().unwrap().unwrap_err();
    assert!(matches!(&err, TrainerError::MissingField { line: 2, field, .. } if field == "_id"));
    assert!(reader.next().is_none(), "the stream ends after an error");
}

#[test]
fn format_must_be_known_from_extension() {
    let err = load_examples(Path::new("train.parquet"), ReadOptions::STRICT).unwrap_err();
    assert!(matches!(err, TrainerError::InvalidArgument { name: "path", .. }));
}

// ---- skip_malformed ---------------------------------------------------------------------

#[test]
fn skip_malformed_counts_every_bad_line() {
    let path = fixture("examples_mixed.jsonl");
    let err = load_examples(&path, ReadOptions::STRICT).unwrap_err();
    assert!(matches!(err, TrainerError::MissingField { line: 2, .. }));

    let loaded = load_examples(&path, ReadOptions::LENIENT).unwrap();
    let queries: Vec<&str> = loaded.data.iter().map(|e| e.query.as_str()).collect();
    assert_eq!(queries, ["good one", "good two"]);
    let s = &loaded.summary;
    assert_eq!((s.lines, s.records, s.skipped, s.blank_lines), (8, 2, 6, 0));
    let lines: Vec<usize> = s.skipped_errors.iter().map(|e| e.location().unwrap().1).collect();
    assert_eq!(lines, [2, 3, 4, 5, 6, 7]);
    assert!(matches!(s.skipped_errors[0], TrainerError::MissingField { .. }));
    assert!(matches!(s.skipped_errors[1], TrainerError::Json { .. }));
    assert!(matches!(s.skipped_errors[2], TrainerError::NonFiniteScore { .. }));
    assert!(matches!(s.skipped_errors[3], TrainerError::WrongType { .. }));
    assert!(matches!(s.skipped_errors[4], TrainerError::EmptyText { .. }));
    assert!(matches!(s.skipped_errors[5], TrainerError::ScoreCount { .. }));
}

#[test]
fn skip_summary_keeps_a_bounded_sample_but_counts_all() {
    let bad = "not json\n".repeat(KEPT_SKIP_ERRORS + 10);
    let (_dir, path) = temp_file("x.jsonl", bad.as_bytes());
    let reader = open_examples(&path, ExampleFormat::Jsonl, ReadOptions::LENIENT).unwrap();
    let loaded = reader.collect_loaded().unwrap();
    assert!(loaded.data.is_empty());
    assert_eq!(loaded.summary.skipped, KEPT_SKIP_ERRORS + 10);
    assert_eq!(loaded.summary.skipped_errors.len(), KEPT_SKIP_ERRORS);
}
