//! Hard-negative mining, dynamic re-mining and teacher scores: window,
//! margin and sampling rules against a teacher with known scores; BM25 and
//! dense teachers end to end; the on-disk cache; determinism; typed errors.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use edgecl_trainer::bm25::Bm25Params;
use edgecl_trainer::data::examples::{load_examples, TrainingExample};
use edgecl_trainer::data::ReadOptions;
use edgecl_trainer::embedder::Embedder;
use edgecl_trainer::error::{Result as TrainerResult, TrainerError};
use edgecl_trainer::mining::{
    mine, mine_file, mined_paths, Bm25Teacher, Candidate, Corpus, DenseSearch, DenseTeacher,
    DynamicMiner, MiningError, MiningParams, MiningTimes, Retrieved, Sampling, Teacher,
    TeacherIndex,
};
use edgecl_trainer::runtime::hnsw::HnswConfig;
use edgecl_trainer::teacher::{score_examples, text_id, ScoreCache, Scorer};

// --- test doubles -------------------------------------------------------

/// Bag of words hashed into `dim` buckets, L2-normalised; counts calls.
struct HashEmbedder {
    dim: usize,
    calls: Arc<AtomicUsize>,
    /// Values returned per text are this many short (a broken model).
    short_by: usize,
    /// A text containing this word embeds as NaN.
    nan_word: Option<&'static str>,
}

impl HashEmbedder {
    fn new(dim: usize) -> Self {
        HashEmbedder { dim, calls: Arc::new(AtomicUsize::new(0)), short_by: 0, nan_word: None }
    }
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

impl Embedder for HashEmbedder {
    fn dim(&self) -> usize {
        self.dim
    }
    fn normalized(&self) -> bool {
        true
    }
    fn embed(&self, texts: &[&str]) -> TrainerResult<Vec<f32>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let mut out = Vec::new();
        for t in texts {
            let mut v = vec![0f32; self.dim];
            for w in t.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
                let w = w.to_lowercase();
                v[(fnv(&w) % self.dim as u64) as usize] += 1.0;
                // A second, weaker bucket spreads scores and breaks most ties.
                v[(fnv(&format!("{w}#")) % self.dim as u64) as usize] += 0.37;
            }
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
            v.iter_mut().for_each(|x| *x /= norm);
            if self.nan_word.is_some_and(|w| t.contains(w)) {
                v[0] = f32::NAN;
            }
            v.truncate(self.dim - self.short_by);
            out.extend(v);
        }
        Ok(out)
    }
}

/// A teacher whose score of passage `i` for any query is `scores[i]`, and
/// which scores outside texts by looking them up in the corpus.
struct TableTeacher {
    scores: Vec<f32>,
}

struct TableIndex<'a> {
    scores: &'a [f32],
    corpus: &'a Corpus,
}

impl Teacher for TableTeacher {
    fn identity(&self) -> String {
        "table".into()
    }
    fn index<'a>(
        &'a self,
        corpus: &'a Corpus,
        _: &mut MiningTimes,
    ) -> Result<Box<dyn TeacherIndex + 'a>, MiningError> {
        Ok(Box::new(TableIndex { scores: &self.scores, corpus }))
    }
}

impl TeacherIndex for TableIndex<'_> {
    fn search(
        &self,
        queries: &[&str],
        k: usize,
        positives: &[(usize, &str)],
        _: &mut MiningTimes,
    ) -> Result<Retrieved, MiningError> {
        let mut ranked: Vec<Candidate> = self
            .scores
            .iter()
            .enumerate()
            .map(|(i, &s)| Candidate { doc: i as u32, score: s })
            .collect();
        ranked.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.doc.cmp(&b.doc)));
        ranked.truncate(k);
        let pos = positives
            .iter()
            .map(|(_, t)| self.corpus.find_text(t).first().map(|&d| self.scores[d as usize]))
            .collect();
        Ok(Retrieved { lists: vec![ranked; queries.len()], positive_scores: pos })
    }
}

fn ex(query: &str, positive: &str) -> TrainingExample {
    TrainingExample {
        query: query.into(),
        positive: positive.into(),
        negatives: vec!["stale".into()],
        scores: None,
    }
}

// Passages d0..d{n-1}.
fn numbered_corpus(n: usize) -> Corpus {
    Corpus::new((0..n).map(|i| (format!("id{i}"), format!("d{i}")))).unwrap()
}

fn top(window: std::ops::Range<usize>, k: usize, margin: Option<f32>) -> MiningParams {
    MiningParams { window, k, relative_margin: margin, sampling: Sampling::Top, keep_scores: true }
}

// --- rules against known scores -----------------------------------------

// Scores 1.00, 0.98, 0.96, ... for d0, d1, d2, ...: rank i is passage i.
fn table(n: usize) -> TableTeacher {
    TableTeacher { scores: (0..n).map(|i| 1.0 - 0.02 * i as f32).collect() }
}

#[test]
fn window_positive_and_margin_rules() {
    let corpus = numbered_corpus(30);
    let teacher = table(30);
    // Positive d3 scores 0.94; the 0.95 margin keeps scores below 0.893.
    let m = mine(&[ex("q", "d3")], &corpus, &teacher, &top(2..12, 4, Some(0.95))).unwrap();
    let e = &m.examples[0];
    assert_eq!(e.negatives, ["d6", "d7", "d8", "d9"]);
    let s = e.scores.as_ref().unwrap();
    let want = [0.94, 0.88, 0.86, 0.84, 0.82];
    assert!(s.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-6), "{s:?}");
    let r = &m.report;
    assert_eq!((r.skipped_positives, r.skipped_margin, r.short, r.negatives), (1, 3, 0, 4));

    // Without a margin only the positive is skipped.
    let m = mine(&[ex("q", "d3")], &corpus, &teacher, &top(2..12, 4, None)).unwrap();
    assert_eq!(m.examples[0].negatives, ["d2", "d4", "d5", "d6"]);

    // Asking for more than the window holds leaves the example short.
    let m = mine(&[ex("q", "d3")], &corpus, &teacher, &top(2..12, 9, Some(0.95))).unwrap();
    assert_eq!(m.examples[0].negatives.len(), 6);
    assert_eq!(m.report.short, 1);
}

#[test]
fn every_known_positive_is_skipped() {
    // d5 appears twice in the corpus; the query has positives d1 and d5.
    let passages = (0..20).map(|i| (format!("id{i}"), format!("d{}", if i == 7 { 5 } else { i })));
    let corpus = Corpus::new(passages).unwrap();
    let examples = [ex("q", "d1"), ex("q", "d5"), ex("other", "d2")];
    let m = mine(&examples, &corpus, &table(20), &top(0..20, 20, None)).unwrap();
    for e in &m.examples[..2] {
        assert!(!e.negatives.iter().any(|n| n == "d1" || n == "d5"), "{:?}", e.negatives);
        assert_eq!(e.negatives.len(), 17, "20 passages minus d1 and both copies of d5");
    }
    // Another query's positives are not this query's.
    assert!(m.examples[2].negatives.contains(&"d1".to_string()));
    assert!(!m.examples[2].negatives.contains(&"d2".to_string()));
    assert_eq!(m.report.queries, 2);
}

#[test]
fn random_sampling_stays_in_window_is_seeded_and_varies() {
    let corpus = numbered_corpus(40);
    let teacher = table(40);
    let examples: Vec<TrainingExample> = (0..30).map(|i| ex(&format!("q{i}"), "d0")).collect();
    let params = |seed| MiningParams {
        window: 5..25,
        k: 5,
        relative_margin: Some(0.95),
        sampling: Sampling::RandomInWindow { seed },
        keep_scores: false,
    };
    let a = mine(&examples, &corpus, &teacher, &params(1)).unwrap();
    let b = mine(&examples, &corpus, &teacher, &params(1)).unwrap();
    let c = mine(&examples, &corpus, &teacher, &params(2)).unwrap();
    assert_eq!(a.examples, b.examples, "same seed, same negatives");
    assert_ne!(a.examples, c.examples, "another seed, other negatives");
    let mut distinct = HashSet::new();
    for e in &a.examples {
        let ranks: Vec<usize> = e.negatives.iter().map(|n| n[1..].parse().unwrap()).collect();
        assert_eq!(ranks.len(), 5);
        assert!(ranks.iter().all(|r| (5..25).contains(r)), "{ranks:?}");
        assert!(ranks.windows(2).all(|w| w[0] < w[1]), "rank order: {ranks:?}");
        assert!(e.scores.is_none());
        distinct.insert(ranks);
    }
    assert!(distinct.len() > 20, "per-example streams differ: {} distinct", distinct.len());
}

#[test]
fn margin_handles_negative_positive_scores() {
    // All scores negative: positive d2 scores -0.04, threshold -0.042.
    let corpus = numbered_corpus(10);
    let teacher = TableTeacher { scores: (0..10).map(|i| -0.02 * i as f32).collect() };
    let m = mine(&[ex("q", "d2")], &corpus, &teacher, &top(0..10, 3, Some(0.95))).unwrap();
    assert_eq!(m.examples[0].negatives, ["d3", "d4", "d5"]);
}

// --- BM25 and dense teachers ---------------------------------------------

fn topic_corpus() -> Corpus {
    let topics =
        ["ocean tide coral reef", "engine piston fuel car", "violin cello orchestra music"];
    let mut docs = Vec::new();
    for i in 0..90 {
        let t = topics[i % 3];
        docs.push((format!("doc{i}"), format!("{t} note {i} about item{} and item{}", i * 7, i)));
    }
    Corpus::new(docs).unwrap()
}

fn topic_examples(corpus: &Corpus) -> Vec<TrainingExample> {
    let queries = ["coral reef ocean", "car engine fuel", "orchestra violin music"];
    (0..12)
        .map(|i| TrainingExample {
            query: format!("{} item{}", queries[i % 3], i),
            positive: corpus.text(i as u32).to_string(),
            negatives: Vec::new(),
            scores: None,
        })
        .collect()
}

#[test]
fn bm25_teacher_respects_margin_and_positives() {
    let corpus = topic_corpus();
    let examples = topic_examples(&corpus);
    let teacher = Bm25Teacher { params: Bm25Params::default() };
    let m = mine(&examples, &corpus, &teacher, &top(0..60, 8, Some(0.95))).unwrap();
    assert_eq!(m.report.examples, 12);
    assert!(m.report.negatives > 0);
    for (e, src) in m.examples.iter().zip(&examples) {
        assert!(!e.negatives.contains(&src.positive));
        let Some(s) = &e.scores else {
            assert!(e.negatives.is_empty(), "an unscored positive leaves no negatives");
            continue;
        };
        for &n in &s[1..] {
            assert!(n < 0.95 * s[0], "negative {n} not below 95% of positive {}", s[0]);
        }
    }
    assert!(m.report.times.index > std::time::Duration::ZERO);
}

#[test]
fn bm25_positive_outside_the_list_gets_no_negatives_under_a_margin() {
    let corpus = topic_corpus();
    // The positive shares no word with the query: BM25 never lists it.
    let e = TrainingExample {
        query: "coral reef".into(),
        positive: corpus.text(1).to_string(),
        negatives: vec![],
        scores: None,
    };
    let teacher = Bm25Teacher::default();
    let m = mine(std::slice::from_ref(&e), &corpus, &teacher, &top(0..50, 5, Some(0.9))).unwrap();
    assert!(m.examples[0].negatives.is_empty());
    assert_eq!(m.report.positive_unscored, 1);
    let m = mine(&[e], &corpus, &teacher, &top(0..50, 5, None)).unwrap();
    assert_eq!(m.examples[0].negatives.len(), 5);
    assert!(m.examples[0].scores.is_none(), "no positive score, no scores list");
}

#[test]
fn dense_teacher_scores_match_the_scorer_and_runs_are_deterministic() {
    let corpus = topic_corpus();
    let examples = topic_examples(&corpus);
    let emb = HashEmbedder::new(64);
    let teacher = DenseTeacher::new(&emb, "hash64");
    let params = MiningParams { window: 3..40, k: 6, ..MiningParams::default() };
    let a = mine(&examples, &corpus, &teacher, &params).unwrap();
    let b = mine(&examples, &corpus, &teacher, &params).unwrap();
    assert_eq!(a.examples, b.examples);
    assert!(a.report.times.embed > std::time::Duration::ZERO);
    for (e, src) in a.examples.iter().zip(&examples) {
        assert!(!e.negatives.contains(&src.positive));
        let s = e.scores.as_ref().unwrap();
        let docs: Vec<&str> = std::iter::once(e.positive.as_str())
            .chain(e.negatives.iter().map(String::as_str))
            .collect();
        let direct = emb.score(&e.query, &docs).unwrap();
        for (x, y) in s.iter().zip(&direct) {
            assert!((x - y).abs() < 1e-5, "mined {x} vs scorer {y}");
        }
        assert!(s[1..].iter().all(|&n| n < 0.95 * s[0]));
    }
}

#[test]
fn hnsw_search_agrees_with_exact_search() {
    let corpus = topic_corpus();
    let examples = topic_examples(&corpus);
    let emb = HashEmbedder::new(64);
    let params = top(0..10, 10, None);
    let exact = mine(&examples, &corpus, &DenseTeacher::new(&emb, "h"), &params).unwrap();
    let graph = DenseTeacher {
        search: DenseSearch::Hnsw { config: HnswConfig::default(), ef: 90 },
        ..DenseTeacher::new(&emb, "h")
    };
    let approx = mine(&examples, &corpus, &graph, &params).unwrap();
    let (mut same, mut total) = (0, 0);
    for (a, b) in exact.examples.iter().zip(&approx.examples) {
        let set: HashSet<&String> = a.negatives.iter().collect();
        same += b.negatives.iter().filter(|n| set.contains(n)).count();
        total += a.negatives.len();
    }
    assert!(same * 10 >= total * 9, "HNSW recall {same}/{total}");
}

// --- cache ------------------------------------------------------------------

#[test]
fn mined_file_is_reused_without_calling_the_embedder() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = topic_corpus();
    let train = dir.path().join("train.jsonl");
    let write_train = |examples: &[TrainingExample]| {
        let lines: Vec<String> = examples
            .iter()
            .map(|e| serde_json::json!({"query": e.query, "positive": e.positive}).to_string())
            .collect();
        std::fs::write(&train, lines.join("\n") + "\n").unwrap();
    };
    let examples = topic_examples(&corpus);
    write_train(&examples);

    let emb = HashEmbedder::new(32);
    let calls = emb.calls.clone();
    let teacher = DenseTeacher::new(&emb, "hash32");
    let params = MiningParams { window: 2..30, k: 4, ..MiningParams::default() };

    let first = mine_file(&train, &corpus, &teacher, &params).unwrap();
    let after_first = calls.load(Ordering::SeqCst);
    assert!(after_first > 0 && first.report.is_some());
    let (out, key) = mined_paths(&train);
    assert_eq!(first.path, out);
    assert_eq!(std::fs::read_to_string(&key).unwrap().trim(), first.key);
    assert_eq!(load_examples(&out, ReadOptions::STRICT).unwrap().data, first.examples);
    assert!(!std::fs::read_dir(dir.path()).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .contains(".tmp.")));

    // Same inputs: read back, the embedder is not called.
    let second = mine_file(&train, &corpus, &teacher, &params).unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), after_first);
    assert!(second.report.is_none());
    assert_eq!(second.examples, first.examples);

    // Other parameters, another teacher, or changed data: mined again.
    let other = MiningParams { k: 3, ..params.clone() };
    let third = mine_file(&train, &corpus, &teacher, &other).unwrap();
    assert!(third.report.is_some() && third.key != first.key);
    let before = calls.load(Ordering::SeqCst);
    let renamed = DenseTeacher::new(&emb, "hash32-v2");
    assert!(mine_file(&train, &corpus, &renamed, &other).unwrap().report.is_some());
    assert!(calls.load(Ordering::SeqCst) > before);
    write_train(&examples[..5]);
    let fourth = mine_file(&train, &corpus, &renamed, &other).unwrap();
    assert!(fourth.report.is_some());
    assert_eq!(fourth.examples.len(), 5);
}

// --- errors -------------------------------------------------------------------

#[test]
fn errors_are_typed_and_name_the_field() {
    assert!(matches!(Corpus::new(Vec::new()), Err(MiningError::EmptyCorpus)));
    assert!(matches!(Corpus::from_examples(&[]), Err(MiningError::EmptyCorpus)));
    let corpus = topic_corpus();
    let examples = topic_examples(&corpus);

    // An embedder that returns too few values per text.
    let short = HashEmbedder { short_by: 1, ..HashEmbedder::new(16) };
    let e = mine(&examples, &corpus, &DenseTeacher::new(&short, "s"), &MiningParams::default())
        .unwrap_err();
    match &e {
        MiningError::DimMismatch { what, expected, found } => {
            assert!(what.contains("corpus"), "{e}");
            assert_eq!(found + 64, *expected, "64 texts one value short each");
        }
        other => panic!("expected DimMismatch, got {other}"),
    }

    // NaN in a passage embedding names the row.
    let nan = HashEmbedder { nan_word: Some("item35"), ..HashEmbedder::new(16) };
    let e = mine(&examples, &corpus, &DenseTeacher::new(&nan, "n"), &MiningParams::default())
        .unwrap_err();
    assert!(
        matches!(&e, MiningError::NonFinite { field } if field == "corpus embedding [5][0]"),
        "{e}"
    );

    // NaN teacher scores name the rank and query.
    let teacher = TableTeacher { scores: vec![1.0, f32::NAN, 0.5] };
    let e = mine(&[ex("q", "d0")], &numbered_corpus(3), &teacher, &top(0..3, 1, None)).unwrap_err();
    assert!(e.to_string().contains("teacher score of rank"), "{e}");

    // Bad parameters name themselves.
    for (p, field) in [
        (top(5..5, 1, None), "window"),
        (top(0..5, 0, None), "k"),
        (top(0..5, 1, Some(1.5)), "relative_margin"),
        (top(0..5, 1, Some(f32::NAN)), "relative_margin"),
    ] {
        let e = mine(&examples, &corpus, &Bm25Teacher::default(), &p).unwrap_err();
        assert!(matches!(&e, MiningError::InvalidParams { field: f, .. } if *f == field), "{e}");
    }
}

// --- dynamic re-mining -------------------------------------------------------

#[test]
fn dynamic_miner_matches_static_mining_in_foreground_and_background() {
    let corpus = Arc::new(topic_corpus());
    let examples = Arc::new(topic_examples(&corpus));
    let params = MiningParams { window: 1..50, k: 5, ..MiningParams::default() };
    let miner = DynamicMiner::new(examples.clone(), corpus.clone(), params.clone()).unwrap();

    let emb = HashEmbedder::new(48);
    let fg = miner.mine(&emb).unwrap();
    let reference = mine(&examples, &corpus, &DenseTeacher::new(&emb, "x"), &params).unwrap();
    assert_eq!(fg.examples, reference.examples);
    let t = fg.report.times;
    assert!(t.embed > std::time::Duration::ZERO && t.search > std::time::Duration::ZERO);
    assert_eq!(t.total(), t.embed + t.index + t.search);

    // A snapshot moved to a thread gives the same negatives.
    let snapshot = HashEmbedder::new(48);
    let calls = snapshot.calls.clone();
    let mut handle = miner.start(snapshot);
    let bg = loop {
        if let Some(r) = handle.poll() {
            break r.unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    };
    assert_eq!(bg.examples, fg.examples);
    assert!(calls.load(Ordering::SeqCst) > 0);
    assert!(handle.poll().is_none(), "the result is handed out once");
    assert!(handle.join().is_err());

    // join() waits; errors come back typed.
    let bad = HashEmbedder { short_by: 2, ..HashEmbedder::new(8) };
    let e = miner.start(bad).join().unwrap_err();
    assert!(matches!(e, MiningError::DimMismatch { .. }), "{e}");
}

// --- teacher scores ------------------------------------------------------------

/// Counts calls and pairs; scores a passage by its length over 100.
struct LengthScorer {
    pairs: AtomicUsize,
    nan: bool,
}

impl Scorer for LengthScorer {
    fn score(&self, _query: &str, docs: &[&str]) -> TrainerResult<Vec<f32>> {
        self.pairs.fetch_add(docs.len(), Ordering::SeqCst);
        Ok(docs.iter().map(|d| if self.nan { f32::NAN } else { d.len() as f32 / 100.0 }).collect())
    }
}

#[test]
fn teacher_scores_are_cached_on_disk_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scores.jsonl");
    let mut examples = vec![
        TrainingExample {
            query: "q1".into(),
            positive: "alpha".into(),
            negatives: vec!["be".into(), "gamma ray".into()],
            scores: None,
        },
        TrainingExample {
            query: "q1".into(),
            positive: "be".into(),
            negatives: vec!["alpha".into()],
            scores: None,
        },
        TrainingExample {
            query: "q2".into(),
            positive: "x".into(),
            negatives: vec![],
            scores: Some(vec![7.0]),
        },
    ];
    let scorer = LengthScorer { pairs: AtomicUsize::new(0), nan: false };
    let mut cache = ScoreCache::open(&path, "length-v1").unwrap();
    let r = score_examples(&mut examples, &scorer, &mut cache, true).unwrap();
    assert_eq!(examples[0].scores, Some(vec![0.05, 0.02, 0.09]));
    assert_eq!(examples[1].scores, Some(vec![0.02, 0.05]));
    assert_eq!(examples[2].scores, Some(vec![7.0]), "file scores kept");
    // The second example's pairs were already scored for the first.
    assert_eq!((r.teacher_pairs, r.cached_pairs, r.from_file, r.scored), (3, 2, 1, 2));
    assert_eq!(scorer.pairs.load(Ordering::SeqCst), 3);

    // Reopened from disk, nothing is scored again.
    let mut cache = ScoreCache::open(&path, "length-v1").unwrap();
    assert_eq!(cache.len(), 3);
    assert_eq!(cache.get(&text_id("q1"), &text_id("gamma  ray")), Some(0.09));
    for e in &mut examples {
        e.scores = None;
    }
    let r = score_examples(&mut examples, &scorer, &mut cache, true).unwrap();
    assert_eq!((r.teacher_pairs, r.cached_pairs), (1, 5), "only q2's pair is new");
    assert_eq!(scorer.pairs.load(Ordering::SeqCst), 4);

    // Another teacher identity does not see these scores.
    let mut other = ScoreCache::open(&path, "length-v2").unwrap();
    assert!(other.is_empty());
    score_examples(&mut examples, &scorer, &mut other, false).unwrap();
    assert_eq!(scorer.pairs.load(Ordering::SeqCst), 8);
    assert_eq!(ScoreCache::open(&path, "length-v1").unwrap().len(), 4, "v1 entries kept");

    // The embedder scorer is the dot product of the vectors.
    let emb = HashEmbedder::new(16);
    let s = emb.score("coral reef", &["coral reef", "engine"]).unwrap();
    assert!((s[0] - 1.0).abs() < 1e-5, "a normalised text against itself: {}", s[0]);
    assert!(s[1] < s[0]);
}

#[test]
fn teacher_errors_name_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scores.jsonl");
    let nan = LengthScorer { pairs: AtomicUsize::new(0), nan: true };
    let mut cache = ScoreCache::open(&path, "t").unwrap();
    let mut examples = vec![ex("q", "p")];
    let e = score_examples(&mut examples, &nan, &mut cache, false).unwrap_err();
    assert!(
        matches!(&e, MiningError::NonFinite { field } if field.contains("teacher score")),
        "{e}"
    );

    // A cache line with a bad score names file, line and field.
    std::fs::write(
        &path,
        "{\"teacher\": \"t\", \"query\": \"a\", \"docs\": [\"b\"], \"scores\": [0.5]}\n\
         {\"teacher\": \"t\", \"query\": \"a\", \"docs\": [\"c\"], \"scores\": [NaN]}\n",
    )
    .unwrap();
    let e = ScoreCache::open(&path, "t").unwrap_err();
    assert!(
        matches!(&e, MiningError::Trainer(TrainerError::NonFiniteScore { line: 2, field, .. })
            if field == "scores[0]"),
        "{e}"
    );
    std::fs::write(
        &path,
        "{\"teacher\": \"t\", \"query\": \"a\", \"docs\": [\"b\", \"c\"], \"scores\": [0.5]}\n",
    )
    .unwrap();
    let e = ScoreCache::open(&path, "t").unwrap_err();
    assert!(e.to_string().contains("scores.jsonl:1"), "{e}");
}
