//! The training configuration: one TOML file, every knob with a default.
//!
//! A file has up to eight tables, `[model]`, `[data]`, `[loss]`,
//! `[optimizer]`, `[train]`, `[augment]`, `[mining]` and `[bank]`; any key
//! left out takes the default documented on its field, and a key the
//! trainer does not know is an error (a typo must not silently fall back
//! to a default). Errors carry the dotted key at fault
//! (`optimizer.lr`) and, for syntax and type errors, the line, so a message
//! reads `run.toml:12: key optimizer.lr: invalid type: string "x", expected
//! f32`.
//!
//! Parsing is serde's derive over `toml`; the key of a parse error is
//! recovered from the error's byte span (the `key = value` line it points
//! into and the `[table]` header above it) rather than through a
//! path-tracking deserializer, which keeps the dependency list to serde and
//! toml. Range checks (`validate`) run after parsing and name their key
//! directly.
//!
//! Three presets ship as files in `trainer/presets/` and are compiled in:
//! `micro` and `tiny` train from scratch with a trained WordPiece vocabulary,
//! `minilm-finetune` starts from a pretrained all-MiniLM-L6-v2 folder. None
//! of them names training data; the caller sets `data.train`.
//!
//! Relative paths are taken as given (relative to the working directory),
//! not to the config file's folder.
//!
//! Left out: layering a file over a preset (`extends = ...`); a preset is a
//! complete file to copy and edit.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::TrainerError;

/// The preset files, by name.
pub const PRESETS: [(&str, &str); 3] = [
    ("micro", include_str!("../../presets/micro.toml")),
    ("tiny", include_str!("../../presets/tiny.toml")),
    ("minilm-finetune", include_str!("../../presets/minilm-finetune.toml")),
];

/// The value of `loss.guide` that takes guide scores from the data's
/// teacher `scores` rather than a model.
pub const GUIDE_SCORES: &str = "scores";

/// Everything a training run reads.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    pub model: ModelConfig,
    pub data: DataConfig,
    pub loss: LossConfig,
    pub optimizer: OptimizerConfig,
    pub train: LoopConfig,
    pub augment: AugmentConfig,
    pub mining: MiningConfig,
    pub bank: BankConfig,
}

/// `[mining]`: re-mining hard negatives with the model being trained.
/// Every `refresh_every` steps the loop embeds the corpus (or a seeded
/// sample of it) with the current parameters, searches it exactly for
/// every training query and replaces each example's negatives with the
/// first `loss.hard_negatives` that survive the filters. Off by default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MiningConfig {
    /// Re-mine before every step that is a multiple of this, step 0
    /// excepted (0: never; the data's negatives are used throughout).
    pub refresh_every: u64,
    /// Embed a random sample of this many corpus passages, drawn afresh
    /// at every refresh from `(train.seed, refresh)` (0: the whole
    /// corpus). The corpus is the BEIR folder's documents, or every
    /// distinct passage of the training examples.
    pub corpus_sample: usize,
    /// Passages retrieved per query; candidates come from ranks
    /// `skip_top..top_k` of the model's ranking.
    pub top_k: usize,
    /// Ranks passed over at the top of the ranking (positives included):
    /// the passages the model ranks highest are the likeliest unlabelled
    /// positives.
    pub skip_top: usize,
    /// `top`: the best-ranked survivors; `random`: a seeded random choice
    /// among the survivors of the window.
    pub sample: String,
    /// Drop candidates scoring at or above `s+ - (1 - m)|s+|`, `s+` the
    /// model's score of the example's positive (0: keep all).
    pub relative_margin: f32,
}

impl Default for MiningConfig {
    fn default() -> Self {
        MiningConfig {
            refresh_every: 0,
            corpus_sample: 0,
            top_k: 30,
            skip_top: 0,
            sample: "top".into(),
            relative_margin: 0.0,
        }
    }
}

/// `[bank]`: how the memory bank (`loss.memory_bank` rows) is filled.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BankConfig {
    /// Fill the bank from a momentum encoder (MoCo): a copy of the model
    /// whose parameters follow `m * shadow + (1 - m) * online` after
    /// every optimizer step, embedding each step's documents without
    /// dropout. 0: bank rows are the online model's own document
    /// embeddings. MoCo uses 0.999.
    pub momentum: f32,
}

/// `[augment]`: rewrites of the training texts, drawn afresh at every
/// step from a generator seeded by `(train.seed, step)`, so a resumed run
/// sees the same rewrites. All probabilities default to 0 (off). See
/// `crate::augment` for what each does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AugmentConfig {
    /// Rewrite the documents (positives and negatives) too, not only the
    /// queries.
    pub documents: bool,
    /// Probability of masking words of a text.
    pub mask_prob: f32,
    /// Share of words masked when masking runs.
    pub mask_rate: f32,
    /// Drop masked words instead of writing `[MASK]`.
    pub mask_drop: bool,
    /// Probability of deleting random words of a text.
    pub delete_prob: f32,
    /// Share of words deleted when deletion runs.
    pub delete_rate: f32,
    /// Probability of replacing words by WordNet synonyms.
    pub synonym_prob: f32,
    /// Share of words replaced when synonym replacement runs.
    pub synonym_rate: f32,
    /// WordNet folder for synonyms (empty: the usual places).
    pub wordnet: String,
    /// Probability of swapping a text for one of its paraphrases.
    pub paraphrase_prob: f32,
    /// Paraphrase file (`.tsv` or `.jsonl`), needed when `paraphrase_prob > 0`.
    pub paraphrases: String,
}

impl Default for AugmentConfig {
    fn default() -> Self {
        AugmentConfig {
            documents: false,
            mask_prob: 0.0,
            mask_rate: 0.15,
            mask_drop: false,
            delete_prob: 0.0,
            delete_rate: 0.1,
            synonym_prob: 0.0,
            synonym_rate: 0.1,
            wordnet: String::new(),
            paraphrase_prob: 0.0,
            paraphrases: String::new(),
        }
    }
}

impl AugmentConfig {
    /// Whether any rewrite can happen.
    pub fn enabled(&self) -> bool {
        self.mask_prob > 0.0
            || self.delete_prob > 0.0
            || self.synonym_prob > 0.0
            || self.paraphrase_prob > 0.0
    }
}

/// `[model]`: which encoder, which vocabulary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// Encoder shape when training from scratch: `micro` (2 x 128),
    /// `tiny` (4 x 256) or `minilm` (6 x 384). Ignored with `init_from`.
    pub preset: String,
    /// A pretrained model folder (`config.json`, `model.safetensors`,
    /// `vocab.txt`) to start from; empty trains from scratch.
    pub init_from: String,
    /// A `vocab.txt` for training from scratch; empty with `train_vocab`.
    pub vocab: String,
    /// Train a WordPiece vocabulary of this many tokens on the training
    /// texts (0: use `vocab`). Ignored with `init_from`.
    pub train_vocab: usize,
    /// Longest token sequence, `[CLS]` and `[SEP]` included, in training,
    /// evaluation and the saved model (capped by the position table; with
    /// `init_from` it replaces the pretrained model's own limit).
    pub max_seq_len: usize,
    /// Size of a linear projection after pooling (0: none). Only from
    /// scratch; a pretrained model keeps its own.
    pub projection_dim: usize,
    /// Dropout probability inside the encoder while training.
    pub dropout: f32,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            preset: "micro".into(),
            init_from: String::new(),
            vocab: String::new(),
            train_vocab: 0,
            max_seq_len: 64,
            projection_dim: 0,
            dropout: 0.1,
        }
    }
}

/// `[data]`: training pairs and the dev set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// Training data: a `.jsonl` / `.tsv` examples file, or a BEIR folder
    /// (`corpus.jsonl`, `queries.jsonl`, `qrels/`) whose judged pairs of
    /// `train_split` become examples.
    pub train: String,
    /// Qrels split used when `train` is a BEIR folder.
    pub train_split: String,
    /// A BEIR folder to evaluate on; empty uses `dev_fraction`.
    pub dev: String,
    /// Qrels split of `dev`.
    pub dev_split: String,
    /// Without `dev`: hold out this fraction of the training queries as a
    /// dev set, searched against every passage of the file (0: no dev).
    pub dev_fraction: f32,
    /// Evaluate on at most this many dev queries (0: all).
    pub dev_max_queries: usize,
    /// Skip (and count) malformed input lines instead of failing.
    pub skip_malformed: bool,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            train: String::new(),
            train_split: "train".into(),
            dev: String::new(),
            dev_split: "test".into(),
            dev_fraction: 0.0,
            dev_max_queries: 0,
            skip_malformed: false,
        }
    }
}

/// `[loss]`: the contrastive objective.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LossConfig {
    /// Softmax temperature of InfoNCE (its start value when learned).
    pub temperature: f32,
    /// Learn the temperature as a parameter.
    pub learn_temperature: bool,
    /// Add the document-to-query direction to the loss.
    pub symmetric: bool,
    /// Subtract this margin from the positive's similarity.
    pub margin: f32,
    /// Up-weight hard in-batch negatives by `exp(hardness * sim)` (0: off).
    pub hardness: f32,
    /// Hard negatives per query taken from the data's `negatives`.
    pub hard_negatives: usize,
    /// Extra negatives from a memory bank of past document embeddings
    /// (0: off).
    pub memory_bank: usize,
    /// Gradient-cache mini-batch size: encode in chunks of this many texts
    /// so a large batch fits in memory (0: off).
    pub gradcache_minibatch: usize,
    /// Weight of the distillation term: KL divergence between the
    /// teacher's softmax over each example's `scores` (positive, then its
    /// first `hard_negatives` negatives) and the student's over the same
    /// candidates (0: off; needs `hard_negatives` >= 1 and scores on
    /// every example).
    pub distill_weight: f32,
    /// Temperature applied to the teacher's scores before their softmax
    /// (the student's logits are its cosines over `temperature`).
    pub distill_temperature: f32,
    /// Guided false-negative filtering (GIST): a candidate the guide
    /// scores above the guide's score of the query's positive minus
    /// `guide_margin` leaves that query's softmax. A model folder (as
    /// `model/` of a run, or a Hugging Face folder) embeds queries and
    /// documents every step; `scores` uses the data's teacher `scores`
    /// instead, which cover each example's own hard negatives only.
    /// Empty: off.
    pub guide: String,
    /// How far below the positive's guide score a candidate may score and
    /// still count as a negative.
    pub guide_margin: f32,
}

impl Default for LossConfig {
    fn default() -> Self {
        LossConfig {
            temperature: 0.05,
            learn_temperature: false,
            symmetric: false,
            margin: 0.0,
            hardness: 0.0,
            hard_negatives: 0,
            memory_bank: 0,
            gradcache_minibatch: 0,
            distill_weight: 0.0,
            distill_temperature: 1.0,
            guide: String::new(),
            guide_margin: 0.0,
        }
    }
}

/// `[optimizer]`: AdamW and its learning-rate schedule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OptimizerConfig {
    /// Peak learning rate.
    pub lr: f32,
    /// Learning rate at the end of the decay.
    pub min_lr: f32,
    /// Decoupled weight decay (matrices only; norms and biases are exempt).
    pub weight_decay: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    /// Linear warmup steps.
    pub warmup_steps: u64,
    /// `cosine`, `linear` or `constant` (constant ignores warmup).
    pub schedule: String,
    /// Clip the global gradient norm to this (0: no clipping).
    pub clip_norm: f32,
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig {
            lr: 5e-4,
            min_lr: 0.0,
            weight_decay: 0.01,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            warmup_steps: 100,
            schedule: "cosine".into(),
            clip_norm: 1.0,
        }
    }
}

/// `[train]`: the loop.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoopConfig {
    /// Query/positive pairs per step.
    pub batch_size: usize,
    /// Passes over the training pairs (used when `max_steps` is 0).
    pub epochs: usize,
    /// Stop after this many steps (0: `epochs` decides).
    pub max_steps: u64,
    /// Evaluate on the dev set every N steps, and at the end (0: only at
    /// the end).
    pub eval_every: u64,
    /// Write a log line every N steps.
    pub log_every: u64,
    /// Write a resumable checkpoint every N steps (0: never).
    pub checkpoint_every: u64,
    /// Checkpoints kept on disk (older ones are deleted).
    pub keep_checkpoints: usize,
    /// Seed of initialisation, shuffling and dropout.
    pub seed: u64,
    /// Worker threads (0: one per core). Results depend on the seed only,
    /// not on this.
    pub threads: usize,
    /// Where the model, checkpoints, logs and curves go.
    pub output_dir: String,
    /// Continue from the latest checkpoint in `output_dir` if there is one.
    pub resume: bool,
    /// Texts per forward pass when embedding the dev set.
    pub eval_batch_size: usize,
}

impl Default for LoopConfig {
    fn default() -> Self {
        LoopConfig {
            batch_size: 32,
            epochs: 1,
            max_steps: 0,
            eval_every: 0,
            log_every: 10,
            checkpoint_every: 0,
            keep_checkpoints: 2,
            seed: 42,
            threads: 0,
            output_dir: "runs/edgecl".into(),
            resume: false,
            eval_batch_size: 64,
        }
    }
}

/// A configuration error: the key at fault and what is wrong with it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    /// The file (or `<preset NAME>` / `<string>`).
    pub source: String,
    /// 1-based line, when the error points into the text.
    pub line: Option<usize>,
    /// Dotted key (`optimizer.lr`); empty when the text does not parse far
    /// enough to tell.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.source)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        if self.key.is_empty() {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": key {}: {}", self.key, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

impl From<ConfigError> for TrainerError {
    fn from(e: ConfigError) -> Self {
        TrainerError::InvalidArgument { name: "config", reason: e.to_string() }
    }
}

impl TrainConfig {
    /// Reads and checks a TOML file.
    pub fn from_toml_file(path: &Path) -> Result<TrainConfig, ConfigError> {
        let source = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            source: source.clone(),
            line: None,
            key: String::new(),
            message: format!("cannot read: {e}"),
        })?;
        TrainConfig::from_toml_str(&text, &source)
    }

    /// Parses and checks TOML text; `source` names it in errors.
    pub fn from_toml_str(text: &str, source: &str) -> Result<TrainConfig, ConfigError> {
        let cfg: TrainConfig = toml::from_str(text).map_err(|e| {
            let (line, key) = match e.span() {
                Some(span) => locate_key(text, span.start),
                None => (None, String::new()),
            };
            ConfigError { source: source.into(), line, key, message: e.message().trim().into() }
        })?;
        cfg.validate().map_err(|mut e| {
            e.source = source.into();
            e
        })?;
        Ok(cfg)
    }

    /// A compiled-in preset: `micro`, `tiny` or `minilm-finetune`.
    pub fn preset(name: &str) -> Result<TrainConfig, ConfigError> {
        let (_, text) = PRESETS.iter().find(|(n, _)| *n == name).ok_or_else(|| ConfigError {
            source: "<preset>".into(),
            line: None,
            key: String::new(),
            message: format!("unknown preset {name:?} (expected micro, tiny or minilm-finetune)"),
        })?;
        TrainConfig::from_toml_str(text, &format!("<preset {name}>"))
    }

    /// The configuration as TOML (every key spelled out).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("plain structs of strings and numbers always serialise")
    }

    /// Range and consistency checks; the error names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, message: String| {
            Err(ConfigError { source: "<config>".into(), line: None, key: key.into(), message })
        };
        let (m, d, l, o, t) = (&self.model, &self.data, &self.loss, &self.optimizer, &self.train);

        // [augment]
        let a = &self.augment;
        for (key, v) in [
            ("augment.mask_prob", a.mask_prob),
            ("augment.mask_rate", a.mask_rate),
            ("augment.delete_prob", a.delete_prob),
            ("augment.delete_rate", a.delete_rate),
            ("augment.synonym_prob", a.synonym_prob),
            ("augment.synonym_rate", a.synonym_rate),
            ("augment.paraphrase_prob", a.paraphrase_prob),
        ] {
            if !(v.is_finite() && (0.0..=1.0).contains(&v)) {
                return bad(key, format!("{v} must lie in [0, 1]"));
            }
        }
        if a.paraphrase_prob > 0.0 && a.paraphrases.is_empty() {
            return bad(
                "augment.paraphrases",
                "paraphrase_prob > 0 needs a paraphrase file".into(),
            );
        }

        // [model]
        if m.init_from.is_empty() && !["micro", "tiny", "minilm"].contains(&m.preset.as_str()) {
            return bad("model.preset", format!("{:?}: expected micro, tiny or minilm", m.preset));
        }
        if m.init_from.is_empty() && m.vocab.is_empty() && m.train_vocab == 0 {
            return bad("model.vocab", "give a vocab.txt, or train_vocab > 0".into());
        }
        if !m.vocab.is_empty() && m.train_vocab > 0 {
            return bad("model.train_vocab", "set either vocab or train_vocab, not both".into());
        }
        if m.train_vocab > 0 && m.train_vocab < 64 {
            return bad(
                "model.train_vocab",
                format!("{} is too small (at least 64)", m.train_vocab),
            );
        }
        if m.max_seq_len < 3 {
            return bad("model.max_seq_len", format!("{} leaves no room for text", m.max_seq_len));
        }
        if !(0.0..1.0).contains(&m.dropout) {
            return bad("model.dropout", format!("{} is outside [0, 1)", m.dropout));
        }

        // [data]
        if !(0.0..1.0).contains(&d.dev_fraction) {
            return bad("data.dev_fraction", format!("{} is outside [0, 1)", d.dev_fraction));
        }
        if d.train_split.is_empty() {
            return bad("data.train_split", "must not be empty".into());
        }
        if !d.dev.is_empty() && d.dev_split.is_empty() {
            return bad("data.dev_split", "must not be empty".into());
        }

        // [loss]
        if !(l.temperature.is_finite() && l.temperature > 0.0) {
            return bad("loss.temperature", format!("{} must be positive", l.temperature));
        }
        if !(l.distill_temperature.is_finite() && l.distill_temperature > 0.0) {
            let v = l.distill_temperature;
            return bad("loss.distill_temperature", format!("{v} must be positive"));
        }
        if l.distill_weight > 0.0 && l.hard_negatives == 0 {
            return bad(
                "loss.distill_weight",
                "distillation needs loss.hard_negatives >= 1".into(),
            );
        }
        for (key, v) in [
            ("loss.margin", l.margin),
            ("loss.hardness", l.hardness),
            ("loss.distill_weight", l.distill_weight),
        ] {
            if !v.is_finite() || v < 0.0 {
                return bad(key, format!("{v} must be finite and not negative"));
            }
        }
        let docs_per_step = t.batch_size * (1 + l.hard_negatives);
        if l.memory_bank > 0 && l.memory_bank < docs_per_step {
            // The bank's ring position is restored on resume assuming no
            // push overfills it.
            return bad(
                "loss.memory_bank",
                format!("{} rows cannot hold one step's {docs_per_step} documents", l.memory_bank),
            );
        }
        if !l.guide_margin.is_finite() {
            return bad("loss.guide_margin", format!("{} is not finite", l.guide_margin));
        }
        if l.guide == GUIDE_SCORES && l.hard_negatives == 0 {
            return bad(
                "loss.guide",
                "teacher scores cover hard negatives only; set loss.hard_negatives >= 1".into(),
            );
        }
        if l.gradcache_minibatch > 0 && l.gradcache_minibatch >= t.batch_size {
            return bad(
                "loss.gradcache_minibatch",
                format!(
                    "{} must be below train.batch_size {}",
                    l.gradcache_minibatch, t.batch_size
                ),
            );
        }

        // [mining]
        let mn = &self.mining;
        if mn.refresh_every > 0 {
            if l.hard_negatives == 0 {
                return bad(
                    "mining.refresh_every",
                    "re-mining fills loss.hard_negatives per query; set it to 1 or more".into(),
                );
            }
            if l.distill_weight > 0.0 {
                return bad(
                    "mining.refresh_every",
                    "re-mined negatives carry no teacher scores to distill from".into(),
                );
            }
            if l.guide == GUIDE_SCORES {
                return bad(
                    "mining.refresh_every",
                    "re-mined negatives carry no teacher scores for loss.guide = \"scores\"".into(),
                );
            }
        }
        if mn.top_k <= mn.skip_top {
            return bad(
                "mining.top_k",
                format!("{} leaves no candidate after skip_top {}", mn.top_k, mn.skip_top),
            );
        }
        if !["top", "random"].contains(&mn.sample.as_str()) {
            return bad("mining.sample", format!("{:?}: expected top or random", mn.sample));
        }
        if !(mn.relative_margin.is_finite() && (0.0..=1.0).contains(&mn.relative_margin)) {
            let v = mn.relative_margin;
            return bad("mining.relative_margin", format!("{v} must lie in [0, 1]"));
        }

        // [bank]
        let momentum = self.bank.momentum;
        if !(0.0..1.0).contains(&momentum) {
            return bad("bank.momentum", format!("{momentum} is outside [0, 1)"));
        }
        if momentum > 0.0 && l.memory_bank == 0 {
            return bad("bank.momentum", "a momentum encoder needs loss.memory_bank > 0".into());
        }

        // [optimizer]
        if !(o.lr.is_finite() && o.lr > 0.0) {
            return bad("optimizer.lr", format!("{} must be positive", o.lr));
        }
        if !(o.min_lr.is_finite() && o.min_lr >= 0.0 && o.min_lr <= o.lr) {
            return bad("optimizer.min_lr", format!("{} must lie in [0, lr]", o.min_lr));
        }
        if !(o.weight_decay.is_finite() && o.weight_decay >= 0.0) {
            return bad("optimizer.weight_decay", format!("{} must be >= 0", o.weight_decay));
        }
        for (key, v) in [("optimizer.beta1", o.beta1), ("optimizer.beta2", o.beta2)] {
            if !(0.0..1.0).contains(&v) {
                return bad(key, format!("{v} is outside [0, 1)"));
            }
        }
        if !(o.eps.is_finite() && o.eps > 0.0) {
            return bad("optimizer.eps", format!("{} must be positive", o.eps));
        }
        if !["cosine", "linear", "constant"].contains(&o.schedule.as_str()) {
            return bad(
                "optimizer.schedule",
                format!("{:?}: expected cosine, linear or constant", o.schedule),
            );
        }
        if !(o.clip_norm.is_finite() && o.clip_norm >= 0.0) {
            return bad("optimizer.clip_norm", format!("{} must be >= 0", o.clip_norm));
        }

        // [train]
        if t.batch_size < 2 {
            return bad(
                "train.batch_size",
                format!("{}: in-batch negatives need 2+", t.batch_size),
            );
        }
        if t.max_steps == 0 && t.epochs == 0 {
            return bad("train.epochs", "0 with max_steps 0 trains nothing".into());
        }
        if t.log_every == 0 {
            return bad("train.log_every", "must be at least 1".into());
        }
        if t.keep_checkpoints == 0 {
            return bad("train.keep_checkpoints", "must be at least 1".into());
        }
        if t.output_dir.is_empty() {
            return bad("train.output_dir", "must not be empty".into());
        }
        if t.eval_batch_size == 0 {
            return bad("train.eval_batch_size", "must be at least 1".into());
        }
        Ok(())
    }

    /// Checks that a run can start: training data is named.
    pub fn check_runnable(&self) -> Result<(), ConfigError> {
        if self.data.train.is_empty() {
            return Err(ConfigError {
                source: "<config>".into(),
                line: None,
                key: "data.train".into(),
                message: "no training data given".into(),
            });
        }
        self.validate()
    }

    /// The output folder.
    pub fn output_dir(&self) -> PathBuf {
        PathBuf::from(&self.train.output_dir)
    }

    /// The sections that fix a run's results (everything but `[train]`'s
    /// bookkeeping knobs), as TOML; a checkpoint resumes only under equal
    /// sections.
    pub fn result_fingerprint(&self) -> String {
        #[derive(Serialize)]
        struct Fixed<'a> {
            model: &'a ModelConfig,
            data: &'a DataConfig,
            loss: &'a LossConfig,
            optimizer: &'a OptimizerConfig,
            augment: &'a AugmentConfig,
            mining: &'a MiningConfig,
            bank: &'a BankConfig,
            batch_size: usize,
            epochs: usize,
            max_steps: u64,
            seed: u64,
        }
        let t = &self.train;
        let f = Fixed {
            model: &self.model,
            data: &self.data,
            loss: &self.loss,
            optimizer: &self.optimizer,
            augment: &self.augment,
            mining: &self.mining,
            bank: &self.bank,
            batch_size: t.batch_size,
            epochs: t.epochs,
            max_steps: t.max_steps,
            seed: t.seed,
        };
        toml::to_string(&f).expect("plain structs always serialise")
    }
}

/// The 1-based line of byte `pos` and the dotted key written on it
/// (the nearest `[table]` header above, joined with the line's own key).
fn locate_key(text: &str, pos: usize) -> (Option<usize>, String) {
    let pos = pos.min(text.len());
    let line_no = text[..pos].matches('\n').count() + 1;
    let mut table = String::new();
    let mut key = String::new();
    for (i, raw) in text.lines().enumerate() {
        if i + 1 > line_no {
            break;
        }
        let line = raw.trim();
        if let Some(h) = line.strip_prefix('[') {
            let h = h.trim_start_matches('[');
            let end = h.find(']').unwrap_or(h.len());
            table = h[..end].trim().to_string();
            key.clear();
        } else if i + 1 == line_no {
            if let Some(eq) = line.find('=') {
                key = line[..eq].trim().trim_matches('"').to_string();
            }
        }
    }
    let dotted = match (table.is_empty(), key.is_empty()) {
        (_, true) => table,
        (true, false) => key,
        (false, false) => format!("{table}.{key}"),
    };
    (Some(line_no), dotted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_key_finds_table_and_key() {
        let text = "[model]\npreset = \"micro\"\n\n[optimizer]\nlr = \"x\"\n";
        let pos = text.find("\"x\"").unwrap();
        assert_eq!(locate_key(text, pos), (Some(5), "optimizer.lr".into()));
    }
}
