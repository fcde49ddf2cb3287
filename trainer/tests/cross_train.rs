//! Cross-encoder training on a made-up task: a tiny BERT from a config and
//! a tiny vocabulary, no files but temp folders. Positives carry the word
//! "gold", negatives "lead", so the task is separable and a few steps must
//! lower the loss; plus both objectives, the saved folder read back by the
//! scorer with equal scores, typed refusals of bad settings, bit-identical
//! reruns, document-first truncation, the hooks' stop, and a fresh head
//! over a saved plain encoder.

use edgecl_trainer::cross_train::{
    train_cross_encoder, CrossLoss, CrossModel, CrossTrainConfig, CrossTrainReport,
};
use edgecl_trainer::data::examples::TrainingExample;
use edgecl_trainer::error::TrainerError;
use edgecl_trainer::runtime::encoder::{
    save_pretrained, Encoder, EncoderConfig, NormPlacement, Pooling, TokenBatch,
};
use edgecl_trainer::runtime::tokenizer::Vocab;
use edgecl_trainer::runtime::Runtime;
use edgecl_trainer::teacher::{pair_batch, CrossEncoderScorer, PairTruncation, Scorer};
use edgecl_trainer::train::{NoHooks, TrainHooks};

const WORDS: [&str; 16] = [
    "alpha", "beta", "gamma", "delta", "stone", "river", "tree", "cloud", "gold", "lead", "red",
    "blue", "green", "small", "large", "old",
];

fn vocab() -> Vocab {
    let mut tokens = vec!["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
    tokens.extend(WORDS);
    Vocab::from_tokens(&tokens, "test vocabulary").unwrap()
}

fn config() -> EncoderConfig {
    EncoderConfig {
        vocab_size: 21,
        hidden_size: 16,
        num_layers: 1,
        num_heads: 2,
        intermediate_size: 32,
        max_position_embeddings: 32,
        type_vocab_size: 2,
        layer_norm_eps: 1e-12,
        norm: NormPlacement::Post,
        pooling: Pooling::Cls,
        projection_dim: None,
        normalize: false,
        max_seq_len: 32,
    }
}

/// Queries are a name; the positive says "gold", each negative "lead",
/// around filler word pairs that vary per example.
fn examples() -> Vec<TrainingExample> {
    let fill = ["stone river", "tree cloud", "red blue", "green small", "large old"];
    make_examples(&fill, 3, |f, w| format!("{} {w} {}", f[0], f[1]))
}

/// The same task over filler pairs training never saw.
fn held_out() -> Vec<TrainingExample> {
    let fill = ["river tree", "cloud red", "blue green", "small large", "old stone"];
    make_examples(&fill, 2, |f, w| format!("{} {w} {}", f[0], f[1]))
}

/// `per_name` examples for each of four query names; `passage(fillers,
/// word)` lays out a passage around its marker word.
fn make_examples(
    fill: &[&str; 5],
    per_name: usize,
    passage: impl Fn([&str; 2], &str) -> String,
) -> Vec<TrainingExample> {
    let names = ["alpha", "beta", "gamma", "delta"];
    let mut out = Vec::new();
    for (i, q) in names.iter().enumerate() {
        for j in 0..per_name {
            let f = |o: usize| fill[(i + j + o) % fill.len()];
            out.push(TrainingExample {
                query: format!("{q} {}", f(0)),
                positive: passage([f(1), f(2)], "gold"),
                negatives: (0..3).map(|n| passage([f(n + 2), f(n)], "lead")).collect(),
                scores: None,
            });
        }
    }
    out
}

fn train_config(loss: CrossLoss) -> CrossTrainConfig {
    CrossTrainConfig {
        loss,
        negatives: 3,
        max_len: 16,
        max_query_tokens: 6,
        max_batch_tokens: 4 * 16 * 3,
        max_steps: 40,
        lr: 3e-3,
        warmup_steps: 4,
        dropout: 0.0,
        seed: 7,
        threads: 1,
        log_every: 10,
        ..CrossTrainConfig::default()
    }
}

fn train(cfg: &CrossTrainConfig, seed: u64) -> (CrossModel, CrossTrainReport) {
    let model = CrossModel::from_config(config(), vocab(), seed).unwrap();
    train_cross_encoder(model, &examples(), cfg, &mut NoHooks).unwrap()
}

fn mean(v: &[f32]) -> f32 {
    v.iter().sum::<f32>() / v.len() as f32
}

/// Every example's group scores, positive first.
fn group_scores(scorer: &CrossEncoderScorer) -> Vec<Vec<f32>> {
    scores_of(scorer, &examples())
}

fn scores_of(scorer: &CrossEncoderScorer, examples: &[TrainingExample]) -> Vec<Vec<f32>> {
    examples
        .iter()
        .map(|e| {
            let docs: Vec<&str> = std::iter::once(e.positive.as_str())
                .chain(e.negatives.iter().map(String::as_str))
                .collect();
            scorer.score(&e.query, &docs).unwrap()
        })
        .collect()
}

/// Share of (positive, negative) pairs of `examples` scored in the right
/// order.
fn pairwise_accuracy(scorer: &CrossEncoderScorer, examples: &[TrainingExample]) -> f32 {
    let groups = scores_of(scorer, examples);
    let right: usize = groups.iter().map(|s| s[1..].iter().filter(|&&n| n < s[0]).count()).sum();
    let total: usize = groups.iter().map(|s| s.len() - 1).sum();
    right as f32 / total as f32
}

fn assert_trains(loss: CrossLoss, steps: u64) {
    let cfg = CrossTrainConfig { max_steps: steps, ..train_config(loss) };
    let n = steps as usize;
    let (model, report) = train(&cfg, 7);
    assert_eq!(report.steps, steps);
    assert_eq!(report.losses.len(), n);
    assert_eq!((report.groups, report.skipped_examples), (12, 0));
    let (first, last) = (mean(&report.losses[..5]), mean(&report.losses[n - 5..]));
    println!("{loss:?}: loss {first} over the first 5 steps, {last} over the last 5");
    // Half the start is also below 0.56, the BCE of the best constant
    // score (a quarter of the pairs are positive): the model must tell
    // pairs apart, not just learn the label prior.
    assert!(last < 0.5 * first, "{loss:?}: loss {first} over the first steps, {last} at the end");

    // On pairs training never saw, the trained scorer orders (positive,
    // negative) pairs right where the same model at init does not.
    let init = CrossModel::from_config(config(), vocab(), 7).unwrap();
    let init = init.into_scorer(Runtime::new(1).unwrap()).unwrap();
    let trained = model.into_scorer(Runtime::new(1).unwrap()).unwrap();
    let (before, after) =
        (pairwise_accuracy(&init, &held_out()), pairwise_accuracy(&trained, &held_out()));
    println!("{loss:?}: held-out pairwise accuracy {before} at init, {after} trained");
    assert!(after > before, "{loss:?}: held-out accuracy {before} at init, {after} trained");
    assert!(after >= 0.95, "{loss:?}: held-out accuracy {after}");
    // And on the training pairs, every positive comes first.
    for (i, s) in group_scores(&trained).iter().enumerate() {
        assert!(s[1..].iter().all(|&n| n < s[0]), "{loss:?}: group {i} scores {s:?}");
    }
}

#[test]
fn listwise_training_lowers_the_loss_and_ranks_positives_first() {
    assert_trains(CrossLoss::Listwise, 40);
}

#[test]
fn pointwise_training_lowers_the_loss_and_ranks_positives_first() {
    assert_trains(CrossLoss::Pointwise, 120);
}

#[test]
fn saved_folder_scores_like_the_trained_model() {
    let mut cfg = train_config(CrossLoss::Listwise);
    cfg.max_steps = 6;
    let (model, _) = train(&cfg, 3);
    let dir = tempfile::tempdir().unwrap();
    model.save(dir.path()).unwrap();
    for f in ["config.json", "model.safetensors", "vocab.txt"] {
        assert!(dir.path().join(f).is_file(), "{f} written");
    }

    let back = CrossEncoderScorer::from_dir(dir.path(), Runtime::new(1).unwrap()).unwrap();
    assert_eq!(back.max_len, 16);
    assert_eq!(back.truncation, PairTruncation::DocumentFirst { max_query_tokens: 6 });
    let trained = model.into_scorer(Runtime::new(1).unwrap()).unwrap();
    let (a, b) = (group_scores(&trained), group_scores(&back));
    let bits =
        |v: &Vec<Vec<f32>>| -> Vec<u32> { v.iter().flatten().map(|x| x.to_bits()).collect() };
    assert_eq!(bits(&a), bits(&b));

    // And through a pair long enough to be cut.
    let long_doc = WORDS.repeat(3).join(" ");
    let q = "alpha beta gamma delta stone river tree cloud";
    assert_eq!(
        trained.score(q, &[long_doc.as_str()]).unwrap()[0].to_bits(),
        back.score(q, &[long_doc.as_str()]).unwrap()[0].to_bits()
    );

    // Loaded again as a model, it continues from its trained head.
    let again = CrossModel::from_pretrained(dir.path(), 99).unwrap();
    let scorer = again.into_scorer(Runtime::new(1).unwrap()).unwrap();
    assert_eq!(bits(&group_scores(&scorer)), bits(&a));
}

#[test]
fn same_seed_same_bits_other_seed_other_run() {
    let cfg = CrossTrainConfig { max_steps: 8, dropout: 0.1, ..train_config(CrossLoss::Listwise) };
    let (m1, r1) = train(&cfg, 5);
    let (m2, r2) = train(&cfg, 5);
    let bits =
        |r: &CrossTrainReport| -> Vec<u32> { r.losses.iter().map(|x| x.to_bits()).collect() };
    assert_eq!(bits(&r1), bits(&r2));
    let s1 = group_scores(&m1.into_scorer(Runtime::new(1).unwrap()).unwrap());
    let s2 = group_scores(&m2.into_scorer(Runtime::new(2).unwrap()).unwrap());
    let flat =
        |v: &Vec<Vec<f32>>| -> Vec<u32> { v.iter().flatten().map(|x| x.to_bits()).collect() };
    assert_eq!(flat(&s1), flat(&s2), "same run, scored on 1 and 2 threads");

    let other = CrossTrainConfig { seed: 6, ..cfg.clone() };
    let (_, r3) = train(&other, 5);
    assert_ne!(bits(&r1), bits(&r3), "another seed shuffles and drops out differently");
}

fn refused(cfg: CrossTrainConfig) -> &'static str {
    let model = CrossModel::from_config(config(), vocab(), 1).unwrap();
    match train_cross_encoder(model, &examples(), &cfg, &mut NoHooks) {
        Err(TrainerError::InvalidArgument { name, .. }) => name,
        Err(e) => panic!("expected an invalid argument, got {e}"),
        Ok(_) => panic!("{cfg:?} was accepted"),
    }
}

#[test]
fn bad_settings_are_typed_errors_naming_the_field() {
    let ok = train_config(CrossLoss::Listwise);
    let cases: Vec<(CrossTrainConfig, &str)> = vec![
        (CrossTrainConfig { negatives: 0, ..ok.clone() }, "negatives"),
        (CrossTrainConfig { max_len: 3, ..ok.clone() }, "max_len"),
        (CrossTrainConfig { max_query_tokens: 0, ..ok.clone() }, "max_query_tokens"),
        (CrossTrainConfig { max_query_tokens: 13, ..ok.clone() }, "max_query_tokens"),
        (CrossTrainConfig { max_batch_tokens: 63, ..ok.clone() }, "max_batch_tokens"),
        (CrossTrainConfig { max_steps: 0, epochs: 0, ..ok.clone() }, "epochs"),
        (CrossTrainConfig { lr: 0.0, ..ok.clone() }, "lr"),
        (CrossTrainConfig { lr: f32::NAN, ..ok.clone() }, "lr"),
        (CrossTrainConfig { min_lr: 1.0, ..ok.clone() }, "min_lr"),
        (CrossTrainConfig { weight_decay: -0.1, ..ok.clone() }, "weight_decay"),
        (CrossTrainConfig { beta1: 1.0, ..ok.clone() }, "beta1"),
        (CrossTrainConfig { beta2: -0.5, ..ok.clone() }, "beta2"),
        (CrossTrainConfig { eps: 0.0, ..ok.clone() }, "eps"),
        (CrossTrainConfig { clip_norm: f32::INFINITY, ..ok.clone() }, "clip_norm"),
        (CrossTrainConfig { dropout: 1.0, ..ok.clone() }, "dropout"),
        (CrossTrainConfig { log_every: 0, ..ok.clone() }, "log_every"),
        // Longer than the model's position table (32).
        (CrossTrainConfig { max_len: 40, max_batch_tokens: 4 * 40, ..ok.clone() }, "max_len"),
        // The examples carry 3 negatives.
        (CrossTrainConfig { negatives: 4, max_batch_tokens: 5 * 16, ..ok.clone() }, "examples"),
    ];
    for (cfg, field) in cases {
        assert_eq!(refused(cfg), field);
    }
    assert!(CrossTrainConfig::default().validate().is_ok());

    // A vocabulary larger than the config's table.
    let small = EncoderConfig { vocab_size: 8, ..config() };
    match CrossModel::from_config(small, vocab(), 1) {
        Err(TrainerError::InvalidArgument { name: "vocab", .. }) => {}
        other => panic!("expected a vocab error, got {:?}", other.err()),
    }
}

#[test]
fn document_first_cuts_the_passage_and_caps_the_query() {
    let tok = edgecl_trainer::runtime::tokenizer::Tokenizer::new(vocab());
    let doc_first = PairTruncation::DocumentFirst { max_query_tokens: 5 };

    // Short pairs are encoded exactly as the longest-first path does.
    let pairs = [("alpha beta", "gold stone"), ("gamma", "lead river tree cloud")];
    let ours = pair_batch(&tok, &pairs, 16, doc_first).unwrap();
    let reference =
        TokenBatch::from_pairs(&tok, &["alpha beta", "gamma"], &[pairs[0].1, pairs[1].1], 16)
            .unwrap();
    assert_eq!(ours, reference);

    // A query of 6 words keeps its first 5; the passage fills the rest.
    let q = "alpha beta gamma delta stone river";
    let d = "red blue green small large old tree cloud gold lead";
    let b = pair_batch(&tok, &[(q, d)], 12, doc_first).unwrap();
    let ids: Vec<&str> = b.ids.iter().map(|&i| tok.vocab().token(i).unwrap()).collect();
    assert_eq!(
        ids,
        [
            "[CLS]", "alpha", "beta", "gamma", "delta", "stone", "[SEP]", "red", "blue", "green",
            "small", "[SEP]"
        ]
    );
    assert_eq!(b.type_ids, [0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1]);

    // Longest-first gives the longer passage the odd token (4 + 5).
    let lf = pair_batch(&tok, &[(q, d)], 12, PairTruncation::LongestFirst).unwrap();
    assert_ne!(lf.ids, b.ids);
    assert!(pair_batch(&tok, &[(q, d)], 2, doc_first).is_err(), "no room for the specials");
}

/// Stops after `at` steps and counts the calls it sees.
struct StopAt {
    at: u64,
    steps: u64,
    logs: u64,
    started: bool,
    finished: bool,
}

impl TrainHooks for StopAt {
    fn on_start(&mut self, total: u64, start: u64) {
        assert_eq!((total, start), (40, 0));
        self.started = true;
    }
    fn on_step(&mut self, info: &edgecl_trainer::train::StepInfo) {
        self.steps += 1;
        assert_eq!(info.step, self.steps);
        assert!(info.loss.is_finite() && info.lr > 0.0 && info.grad_norm.is_some());
    }
    fn on_log(&mut self, _: &edgecl_trainer::train::StepInfo) {
        self.logs += 1;
    }
    fn should_stop(&mut self, step: u64) -> bool {
        step >= self.at
    }
    fn on_finish(&mut self) {
        self.finished = true;
    }
}

#[test]
fn hooks_see_every_step_and_can_stop_the_run() {
    let model = CrossModel::from_config(config(), vocab(), 1).unwrap();
    let mut hooks = StopAt { at: 12, steps: 0, logs: 0, started: false, finished: false };
    let cfg = train_config(CrossLoss::Listwise);
    let (_, report) = train_cross_encoder(model, &examples(), &cfg, &mut hooks).unwrap();
    assert!(report.stopped);
    assert_eq!((report.steps, hooks.steps, hooks.logs), (12, 12, 1));
    // A stopped run has no last step: no on_finish, as in the bi-encoder loop.
    assert!(hooks.started && !hooks.finished);
}

#[test]
fn a_plain_encoder_folder_gets_a_seeded_head() {
    // A bi-encoder folder: encoder weights, no pooler, no classifier.
    let enc_cfg = EncoderConfig { pooling: Pooling::Mean, normalize: true, ..config() };
    let params = Encoder::new(enc_cfg.clone()).unwrap().init_params(11).unwrap();
    let dir = tempfile::tempdir().unwrap();
    save_pretrained(dir.path(), &enc_cfg, &params, &vocab()).unwrap();
    // As in Hugging Face BERT files, an integer buffer beside the weights.
    add_position_ids(&dir.path().join("model.safetensors"), enc_cfg.max_position_embeddings);

    let head = |seed: u64| -> Vec<u32> {
        let m = CrossModel::from_pretrained(dir.path(), seed).unwrap();
        ["classifier.weight", "bert.pooler.dense.weight"]
            .iter()
            .flat_map(|n| {
                let p = m.params.get(m.params.id(n).unwrap());
                p.value().as_f32().unwrap().iter().map(|x| x.to_bits()).collect::<Vec<_>>()
            })
            .collect()
    };
    assert_eq!(head(1), head(1));
    assert_ne!(head(1), head(2));

    // The encoder's weights are the folder's, and the model trains.
    let m = CrossModel::from_pretrained(dir.path(), 1).unwrap();
    let w = m.params.get(m.params.id("bert.embeddings.word_embeddings.weight").unwrap());
    let saved = params.get(params.id("embeddings.word_embeddings.weight").unwrap());
    assert_eq!(w.value().as_f32().unwrap(), saved.value().as_f32().unwrap());
    let cfg = CrossTrainConfig { max_steps: 3, ..train_config(CrossLoss::Listwise) };
    let (_, report) = train_cross_encoder(m, &examples(), &cfg, &mut NoHooks).unwrap();
    assert_eq!(report.steps, 3);

    // Without a trained classifier the folder is no teacher yet.
    assert!(CrossEncoderScorer::from_dir(dir.path(), Runtime::new(1).unwrap()).is_err());
}

/// Appends BERT's `embeddings.position_ids` buffer (I64, `[1, n]`) to a
/// safetensors file, as checkpoints saved by older `transformers` carry it.
fn add_position_ids(path: &std::path::Path, n: usize) {
    let bytes = std::fs::read(path).unwrap();
    let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + len]).unwrap();
    let mut data = bytes[8 + len..].to_vec();
    let start = data.len();
    data.extend((0..n as i64).flat_map(i64::to_le_bytes));
    header["embeddings.position_ids"] = serde_json::json!({
        "dtype": "I64", "shape": [1, n], "data_offsets": [start, data.len()]
    });
    let mut text = serde_json::to_vec(&header).unwrap();
    text.resize(text.len().next_multiple_of(8), b' ');
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend(text);
    out.extend(data);
    std::fs::write(path, out).unwrap();
}
