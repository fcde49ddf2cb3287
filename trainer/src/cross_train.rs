//! Training a cross-encoder reranker: the teacher that
//! [`crate::teacher::CrossEncoderScorer`] runs, made here from labelled
//! pairs with hard negatives.
//!
//! Each training example (query, positive, negatives) becomes a group of
//! `1 + k` pairs, the positive first and then its first `k` negatives, all
//! scored by one BERT pass over `[CLS] query [SEP] passage [SEP]`:
//!
//! ```text
//! s      = CrossEncoder(pairs of G groups)            [G (1 + k)]  -> [G, 1 + k]
//! loss   = listwise: -mean_g log softmax(s_g)[0]      (positive in column 0)
//!        | pointwise: mean BCE(sigmoid(s), y),  y = [1, 0, ..., 0] per row
//! backward; clip the global grad norm; AdamW, lr = linear warmup then decay
//! ```
//!
//! Steps are filled by tokens, not by a fixed number of groups: groups are
//! added (in a seeded shuffle, reshuffled every epoch) while the padded
//! batch, rows times its longest row, stays within `max_batch_tokens`, so a
//! step costs about the same whether passages are short or long. Pairs are
//! cut to `max_len` tokens query-capped and passage first (see
//! [`PairTruncation::DocumentFirst`]); every pair is tokenized once, before
//! the first step.
//!
//! The model starts from a pretrained BERT or sentence-transformers folder
//! (encoder and pooler from the file, a classifier drawn from the seed) or
//! from a config with fresh weights ([`CrossModel`]). The result saves as a
//! `BertForSequenceClassification` folder that
//! [`CrossEncoderScorer::from_dir`] loads and scores identically.
//!
//! Determinism: the shuffle, the head's initialisation and dropout are keyed
//! by the seed, and the runtime sums in a fixed order at any thread count,
//! so a run is a pure function of its inputs.
//!
//! Left out: checkpoints and resuming (a run is minutes to an hour; the
//! bi-encoder loop in [`crate::train`] has them), dev evaluation during
//! training (reranking a dev set costs as much as many steps; callers
//! evaluate the result), gradient accumulation, and length bucketing (on
//! passages that mostly reach `max_len` it would not save padding).

use std::path::Path;
use std::time::Instant;

use crate::data::examples::TrainingExample;
use crate::error::{Result, TrainerError};
use crate::loss::{bce_pointwise, listwise_softmax};
use crate::rng::Rng;
use crate::runtime::encoder::{
    load_pretrained_cross, save_pretrained_cross, CrossEncoder, TokenBatch,
};
use crate::runtime::optim::{clip_grad_norm, AdamW, AdamWConfig, LrSchedule, Optimizer};
use crate::runtime::tokenizer::{Encoding, Scratch, Tokenizer, Vocab};
use crate::runtime::{init, EncoderConfig, Graph, ParamSet, Runtime};
use crate::teacher::{
    encode_document_first, CrossEncoderScorer, PairTruncation, MAX_QUERY_TOKENS_KEY,
};
use crate::train::peak_rss_bytes;
use crate::train::progress::{StepInfo, TrainHooks};

/// The objective over each group's `1 + k` scores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrossLoss {
    /// Softmax cross-entropy with the positive as the target class
    /// ([`listwise_softmax`]): orders the group, which is what reranking
    /// needs.
    Listwise,
    /// Binary cross-entropy per pair, positive 1 and negatives 0
    /// ([`bce_pointwise`]): scores become calibrated logits of relevance.
    Pointwise,
}

/// Everything a cross-encoder run needs besides the model and the data.
#[derive(Clone, Debug, PartialEq)]
pub struct CrossTrainConfig {
    pub loss: CrossLoss,
    /// Hard negatives per group; examples with fewer are left out.
    pub negatives: usize,
    /// Tokens per pair, `[CLS]` and both `[SEP]` included.
    pub max_len: usize,
    /// Query tokens kept before the passage is cut (see
    /// [`PairTruncation::DocumentFirst`]).
    pub max_query_tokens: usize,
    /// Padded tokens (rows times longest row) per optimizer step; one whole
    /// group must fit.
    pub max_batch_tokens: usize,
    /// Optimizer steps; 0 runs `epochs` passes over the groups instead.
    pub max_steps: u64,
    pub epochs: usize,
    /// Peak learning rate, reached after `warmup_steps`, then decayed
    /// linearly to `min_lr` at the last step.
    pub lr: f32,
    pub min_lr: f32,
    pub warmup_steps: u64,
    pub weight_decay: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    /// Global gradient-norm bound; 0 turns clipping off.
    pub clip_norm: f32,
    /// Hidden-state dropout while training (BERT's 0.1).
    pub dropout: f32,
    /// Keys the shuffle and dropout (and a fresh head, through
    /// [`CrossModel`]).
    pub seed: u64,
    /// Runtime threads; 0 uses the available parallelism.
    pub threads: usize,
    /// Steps between [`TrainHooks::on_log`] calls (the last step always
    /// logs).
    pub log_every: u64,
}

impl Default for CrossTrainConfig {
    /// Fine-tuning settings for a MiniLM-sized BERT: listwise over a positive
    /// and 7 negatives, 256-token pairs (queries up to 64 tokens), 4,096
    /// padded tokens a step, one epoch, peak lr 2e-5 after 50 warmup steps,
    /// AdamW with weight decay 0.01, gradients clipped at norm 1.
    fn default() -> Self {
        CrossTrainConfig {
            loss: CrossLoss::Listwise,
            negatives: 7,
            max_len: 256,
            max_query_tokens: 64,
            max_batch_tokens: 4096,
            max_steps: 0,
            epochs: 1,
            lr: 2e-5,
            min_lr: 0.0,
            warmup_steps: 50,
            weight_decay: 0.01,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            clip_norm: 1.0,
            dropout: 0.1,
            seed: 42,
            threads: 0,
            log_every: 10,
        }
    }
}

impl CrossTrainConfig {
    /// Refuses values no run can use, naming the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |name: &'static str, reason: String| {
            Err(TrainerError::InvalidArgument { name, reason })
        };
        if self.negatives == 0 {
            return bad("negatives", "need at least one hard negative per group".into());
        }
        if self.max_len < 4 {
            return bad(
                "max_len",
                format!("{} tokens leave no room for query and passage", self.max_len),
            );
        }
        if self.max_query_tokens == 0 || self.max_query_tokens + 4 > self.max_len {
            return bad(
                "max_query_tokens",
                format!(
                    "{} must be at least 1 and leave a passage token within max_len {}",
                    self.max_query_tokens, self.max_len
                ),
            );
        }
        let group = (1 + self.negatives) * self.max_len;
        if self.max_batch_tokens < group {
            return bad(
                "max_batch_tokens",
                format!(
                    "{} cannot hold one group of {} pairs of up to {} tokens ({group})",
                    self.max_batch_tokens,
                    1 + self.negatives,
                    self.max_len
                ),
            );
        }
        if self.max_steps == 0 && self.epochs == 0 {
            return bad("epochs", "0 epochs and max_steps 0: nothing to train".into());
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad("lr", format!("{} is not a positive number", self.lr));
        }
        if !(self.min_lr.is_finite() && (0.0..=self.lr).contains(&self.min_lr)) {
            return bad("min_lr", format!("{} is not in [0, lr]", self.min_lr));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad("weight_decay", format!("{} is negative or not finite", self.weight_decay));
        }
        for (name, b) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(0.0..1.0).contains(&b) {
                return bad(name, format!("{b} is not in [0, 1)"));
            }
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return bad("eps", format!("{} is not a positive number", self.eps));
        }
        if !(self.clip_norm.is_finite() && self.clip_norm >= 0.0) {
            return bad("clip_norm", format!("{} is negative or not finite", self.clip_norm));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad("dropout", format!("{} is not in [0, 1)", self.dropout));
        }
        if self.log_every == 0 {
            return bad("log_every", "must be at least 1".into());
        }
        Ok(())
    }

    /// The truncation this config trains with.
    pub fn truncation(&self) -> PairTruncation {
        PairTruncation::DocumentFirst { max_query_tokens: self.max_query_tokens }
    }
}

/// A cross-encoder's config, parameters (in `CrossEncoder::param_names`
/// order) and tokenizer, with the truncation its pairs are cut by.
pub struct CrossModel {
    pub config: EncoderConfig,
    pub params: ParamSet,
    pub tokenizer: Tokenizer,
    pub truncation: PairTruncation,
}

/// Stream of the classifier weight drawn by [`CrossModel::from_pretrained`]
/// (the pooler's is the next one), apart from any encoder stream.
const HEAD_STREAM: u64 = 0xc1a5_5000;

impl CrossModel {
    /// Fresh BERT-initialised weights for `config` (no projection), with a
    /// tokenizer over `vocab`.
    pub fn from_config(config: EncoderConfig, vocab: Vocab, seed: u64) -> Result<CrossModel> {
        if vocab.len() > config.vocab_size {
            return Err(TrainerError::InvalidArgument {
                name: "vocab",
                reason: format!(
                    "{} tokens exceed the config's vocab_size {}",
                    vocab.len(),
                    config.vocab_size
                ),
            });
        }
        let params = CrossEncoder::new(config.clone())?.init_params(seed)?;
        Ok(CrossModel {
            config,
            params,
            tokenizer: Tokenizer::new(vocab),
            truncation: PairTruncation::LongestFirst,
        })
    }

    /// A pretrained folder (see [`load_pretrained_cross`]). A
    /// `BertForSequenceClassification` keeps its trained head; from a plain
    /// BERT or sentence-transformers encoder the classifier is drawn from
    /// `seed` (N(0, 0.02), bias 0), and so is the pooler when the file has
    /// none. The truncation is the one the folder's config records.
    pub fn from_pretrained(dir: &Path, seed: u64) -> Result<CrossModel> {
        let mut pre = load_pretrained_cross(dir)?;
        let truncation = crate::teacher::saved_truncation(dir)?;
        if !pre.head_loaded {
            let h = pre.config.hidden_size;
            let mut fresh = vec![
                ("classifier.weight", init::normal(&[1, h], 0.02, seed, HEAD_STREAM)?),
                ("classifier.bias", init::constant(&[1], 0.0)?),
            ];
            if !pre.pooler_loaded {
                let w = init::normal(&[h, h], 0.02, seed, HEAD_STREAM + 1)?;
                fresh.push(("bert.pooler.dense.weight", w));
                fresh.push(("bert.pooler.dense.bias", init::constant(&[h], 0.0)?));
            }
            for (name, value) in fresh {
                let id = pre.params.id(name)?;
                pre.params.set_value(id, value)?;
            }
        }
        Ok(CrossModel {
            config: pre.config,
            params: pre.params,
            tokenizer: pre.tokenizer,
            truncation,
        })
    }

    /// Writes a `BertForSequenceClassification` folder (`config.json`,
    /// `model.safetensors`, `vocab.txt`); a document-first truncation is
    /// recorded in `config.json` under [`MAX_QUERY_TOKENS_KEY`].
    ///
    /// Each file is replaced atomically, but the folder is not: the key is
    /// added by a second write of `config.json`, so a crash between the two
    /// leaves a folder that loads with longest-first truncation. Closing
    /// that gap needs the runtime's writer to take extra config keys.
    pub fn save(&self, dir: &Path) -> Result<()> {
        save_pretrained_cross(dir, &self.config, &self.params, self.tokenizer.vocab())?;
        if let PairTruncation::DocumentFirst { max_query_tokens } = self.truncation {
            let path = dir.join("config.json");
            let text = std::fs::read_to_string(&path).map_err(|e| TrainerError::io(&path, e))?;
            let mut v: serde_json::Value = serde_json::from_str(&text)
                .map_err(|source| TrainerError::Json { path: path.clone(), line: 1, source })?;
            v[MAX_QUERY_TOKENS_KEY] = max_query_tokens.into();
            let text = serde_json::to_string_pretty(&v).expect("a JSON value always serialises");
            crate::train::checkpoint::write_atomic(&path, text.as_bytes())?;
        }
        Ok(())
    }

    /// A scorer over this model (inference mode), cutting pairs to the
    /// config's `max_seq_len` by the model's truncation.
    pub fn into_scorer(self, runtime: Runtime) -> Result<CrossEncoderScorer> {
        let mut scorer =
            CrossEncoderScorer::from_parts(self.config, self.params, self.tokenizer, runtime)?;
        scorer.truncation = self.truncation;
        Ok(scorer)
    }
}

/// What a run reports.
#[derive(Clone, Debug, Default)]
pub struct CrossTrainReport {
    /// Optimizer steps taken.
    pub steps: u64,
    /// Groups trained on per epoch, and examples left out for having fewer
    /// than `negatives` negatives.
    pub groups: usize,
    pub skipped_examples: usize,
    /// Pairs scored in training, all steps.
    pub pairs: u64,
    /// The loss of every step, in order.
    pub losses: Vec<f32>,
    /// Training wall time (tokenization included).
    pub seconds: f64,
    /// Peak resident set size of the process (`VmHWM`), when known.
    pub peak_rss_bytes: Option<u64>,
    /// Whether a hook stopped the run early.
    pub stopped: bool,
}

/// One group's encoded pairs: the positive's first, then the negatives'.
struct Group {
    rows: Vec<Encoding>,
    /// Longest row, in tokens.
    len: usize,
}

/// Trains `model` on `examples` as `cfg` says, reporting to `hooks`; returns
/// the trained model (truncation and `max_seq_len` set to the training
/// ones) and the report.
pub fn train_cross_encoder(
    mut model: CrossModel,
    examples: &[TrainingExample],
    cfg: &CrossTrainConfig,
    hooks: &mut dyn TrainHooks,
) -> Result<(CrossModel, CrossTrainReport)> {
    cfg.validate()?;
    if cfg.max_len > model.config.max_position_embeddings {
        return Err(TrainerError::InvalidArgument {
            name: "max_len",
            reason: format!(
                "{} exceeds the model's max_position_embeddings {}",
                cfg.max_len, model.config.max_position_embeddings
            ),
        });
    }
    let started = Instant::now();
    let threads = match cfg.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let rt = Runtime::new(threads)?;

    // ---- groups: tokenize every pair once --------------------------------------------
    let k = cfg.negatives;
    let truncation = cfg.truncation();
    let usable: Vec<&TrainingExample> =
        examples.iter().filter(|e| e.negatives.len() >= k).collect();
    let skipped = examples.len() - usable.len();
    if usable.is_empty() {
        return Err(TrainerError::InvalidArgument {
            name: "examples",
            reason: format!(
                "none of {} examples has the {k} hard negatives a group needs",
                examples.len()
            ),
        });
    }
    let encode = |e: &TrainingExample| -> Result<Group> {
        let mut scratch = Scratch::default();
        let rows = std::iter::once(&e.positive)
            .chain(&e.negatives[..k])
            .map(|d| {
                let (q, m) = (cfg.max_query_tokens, cfg.max_len);
                encode_document_first(&model.tokenizer, &e.query, d, m, q, &mut scratch)
            })
            .collect::<Result<Vec<_>>>()?;
        let len = rows.iter().map(Encoding::len).max().unwrap_or(0);
        Ok(Group { rows, len })
    };
    let groups: Vec<Group> = rt.install(|| {
        use rayon::prelude::*;
        usable.par_iter().map(|e| encode(e)).collect::<Result<Vec<_>>>()
    })?;
    hooks.on_message(&format!(
        "cross-encoder: {} groups of 1 + {k} pairs ({skipped} examples with fewer negatives \
         left out), {} layers x {} wide, {} parameters",
        groups.len(),
        model.config.num_layers,
        model.config.hidden_size,
        model.params.numel()
    ));

    // ---- the plan: shuffled epochs packed by tokens -------------------------------------
    let mut plan = EpochPlan::new(&groups, cfg.max_batch_tokens, cfg.seed);
    let total_steps = if cfg.max_steps > 0 {
        cfg.max_steps
    } else {
        let mut p = EpochPlan::new(&groups, cfg.max_batch_tokens, cfg.seed);
        (0..cfg.epochs).map(|_| p.next_epoch().len() as u64).sum()
    };
    let schedule = LrSchedule::WarmupLinear {
        peak: cfg.lr,
        min: cfg.min_lr,
        warmup: cfg.warmup_steps.min(total_steps),
        total: total_steps,
    };

    // ---- model, optimizer, graph ----------------------------------------------------------
    model.config.max_seq_len = cfg.max_len;
    model.truncation = truncation;
    let net = CrossEncoder::new(model.config.clone())?.with_dropout(cfg.dropout);
    let adam = AdamWConfig {
        beta1: cfg.beta1,
        beta2: cfg.beta2,
        eps: cfg.eps,
        weight_decay: cfg.weight_decay,
    };
    let params = std::mem::take(&mut model.params);
    let mut opt = AdamW::new(&params, adam);
    let mut g = Graph::new(rt, cfg.seed);
    g.set_params(params);
    g.set_training(true);

    // Labels: the positive in column 0 of every group.
    let label_row: Vec<f32> = (0..=k).map(|c| if c == 0 { 1.0 } else { 0.0 }).collect();

    // ---- the loop -------------------------------------------------------------------------
    let mut report = CrossTrainReport {
        groups: groups.len(),
        skipped_examples: skipped,
        ..CrossTrainReport::default()
    };
    hooks.on_start(total_steps, 0);
    let (mut window_start, mut window_pairs) = (Instant::now(), 0usize);
    let mut batches: Vec<Vec<usize>> = Vec::new();
    let mut next = 0;
    while report.steps < total_steps {
        if next == batches.len() {
            batches = plan.next_epoch();
            next = 0;
        }
        let batch = &batches[next];
        next += 1;
        let step = report.steps;
        let lr = schedule.lr(step);

        // Forward the batch's pairs, scores [G, 1 + k], loss, backward.
        let rows: Vec<Encoding> =
            batch.iter().flat_map(|&i| groups[i].rows.iter().cloned()).collect();
        let tb = TokenBatch::from_encodings(&rows)?;
        let s = net.forward(&mut g, &tb)?;
        let s = g.reshape(s, &[batch.len(), 1 + k])?;
        let labels: Vec<f32> = label_row.repeat(batch.len());
        let loss = match cfg.loss {
            CrossLoss::Listwise => listwise_softmax(&mut g, s, &labels)?,
            CrossLoss::Pointwise => bce_pointwise(&mut g, s, &labels)?,
        };
        let value = g.scalar(loss)?;
        if !value.is_finite() {
            return Err(TrainerError::InvalidArgument {
                name: "lr",
                reason: format!("step {}: loss is {value}; lower the learning rate", step + 1),
            });
        }
        g.backward(loss)?;

        // Clip, AdamW step, clear the gradients.
        g.reset();
        let grad_norm = match cfg.clip_norm {
            c if c > 0.0 => Some(clip_grad_norm(g.params_mut(), c)?),
            _ => None,
        };
        opt.step_graph(&mut g, lr)?;
        g.params_mut().zero_grad();
        report.steps += 1;
        report.pairs += rows.len() as u64;
        report.losses.push(value);
        window_pairs += rows.len();

        // Report; log every `log_every` steps and at the end.
        let window = window_start.elapsed().as_secs_f64().max(1e-9);
        let info = StepInfo {
            step: report.steps,
            total_steps,
            epoch: plan.epoch.saturating_sub(1),
            loss: value,
            lr,
            grad_norm,
            pairs_per_sec: window_pairs as f64 / window,
            elapsed: started.elapsed(),
        };
        hooks.on_step(&info);
        if report.steps.is_multiple_of(cfg.log_every) || report.steps == total_steps {
            hooks.on_log(&info);
            (window_start, window_pairs) = (Instant::now(), 0);
        }
        if report.steps < total_steps && hooks.should_stop(report.steps) {
            report.stopped = true;
            break;
        }
    }
    g.reset();
    model.params = std::mem::take(g.params_mut());
    report.seconds = started.elapsed().as_secs_f64();
    report.peak_rss_bytes = peak_rss_bytes();
    if !report.stopped {
        hooks.on_finish();
    }
    Ok((model, report))
}

/// Batches of group indices, one epoch at a time: a seeded shuffle per
/// epoch, cut greedily so each batch's padded size (pairs times the longest
/// pair) stays within the token budget.
struct EpochPlan<'a> {
    groups: &'a [Group],
    max_tokens: usize,
    seed: u64,
    /// Epochs planned so far.
    epoch: u64,
}

/// Stream of the epoch shuffles (the epoch is added).
const SHUFFLE_STREAM: u64 = 0x5348_0000;

impl<'a> EpochPlan<'a> {
    fn new(groups: &'a [Group], max_tokens: usize, seed: u64) -> EpochPlan<'a> {
        EpochPlan { groups, max_tokens, seed, epoch: 0 }
    }

    fn next_epoch(&mut self) -> Vec<Vec<usize>> {
        let mut order: Vec<usize> = (0..self.groups.len()).collect();
        Rng::new(self.seed, SHUFFLE_STREAM + self.epoch).shuffle(&mut order);
        self.epoch += 1;
        let mut batches = Vec::new();
        let (mut cur, mut rows, mut longest) = (Vec::new(), 0usize, 0usize);
        for i in order {
            let g = &self.groups[i];
            let (r, l) = (rows + g.rows.len(), longest.max(g.len));
            if !cur.is_empty() && r * l > self.max_tokens {
                batches.push(std::mem::take(&mut cur));
                (rows, longest) = (g.rows.len(), g.len);
            } else {
                (rows, longest) = (r, l);
            }
            cur.push(i);
        }
        if !cur.is_empty() {
            batches.push(cur);
        }
        batches
    }
}

#[cfg(test)]
mod tests {
    use super::{EpochPlan, Group};
    use crate::runtime::tokenizer::Encoding;

    fn group(pairs: usize, len: usize) -> Group {
        let row =
            Encoding { ids: vec![0; len], type_ids: vec![0; len], attention_mask: vec![1; len] };
        Group { rows: vec![row; pairs], len }
    }

    #[test]
    fn epochs_cover_every_group_once_within_the_budget() {
        let groups: Vec<Group> = (0..23).map(|i| group(4, 5 + (i * 7) % 20)).collect();
        let mut plan = EpochPlan::new(&groups, 4 * 24 * 3, 9);
        let first = plan.next_epoch();
        let second = plan.next_epoch();
        for batches in [&first, &second] {
            let mut seen: Vec<usize> = batches.iter().flatten().copied().collect();
            seen.sort_unstable();
            assert_eq!(seen, (0..23).collect::<Vec<_>>());
            for b in batches.iter() {
                let longest = b.iter().map(|&i| groups[i].len).max().unwrap();
                assert!(b.len() * 4 * longest <= 4 * 24 * 3, "batch {b:?} over budget");
            }
        }
        assert_ne!(first, second, "each epoch draws its own order");
    }
}
