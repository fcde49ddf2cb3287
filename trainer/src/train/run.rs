//! The training loop, top to bottom in one function.
//!
//! [`train`] reads like a recipe: make the output folder, load the data,
//! build or load the model and its tokenizer, make the optimizer and the
//! sampler, restore a checkpoint when resuming, then for each step:
//!
//! ```text
//! batch      = sampler.next_batch()              B examples, no text twice
//! q          = encoder(tokenize(queries))        [B, D]
//! d          = encoder(tokenize(positives ++ hard negatives))   [B + B*k, D]
//! loss       = InfoNCE(q, d; temperature, margin, hardness, symmetric)
//! backward; clip global grad norm; AdamW step with lr = schedule(step)
//! ```
//!
//! with a log line every `log_every` steps, a dev evaluation every
//! `eval_every` (and at the end) that keeps the best model, and a
//! checkpoint every `checkpoint_every`. Both sides share one encoder and one
//! tape, so gradients from queries and documents meet in the same
//! parameters.
//!
//! Determinism: everything random is keyed by the seed (initialisation by
//! parameter index, dropout by the graph's pass counter, batches by the
//! sampler's generator) and every parallel loop in the runtime sums in a
//! fixed order, so a run is a pure function of its config and seed, at any
//! thread count; a resumed run restores those counters and reproduces an
//! uninterrupted one bit for bit (tests/train.rs checks both).
//!
//! Options on top of that step: hard negatives from the data join the
//! document side (shared by every query), and can be re-mined with the
//! model itself every `[mining] refresh_every` steps; a memory bank
//! appends the document embeddings of recent steps as constant negatives,
//! from the online model or a momentum encoder (`[bank] momentum`);
//! gradient caching embeds the batch in mini-batches (same loss, less
//! memory, one more forward pass); teacher scores are distilled beside
//! InfoNCE. A negative whose text equals another query's positive is
//! masked out of that query's softmax rather than counted as wrong, and so
//! is one a guide scores above the positive (`[loss] guide`); the three
//! hard-negative pieces live in [`super::negatives`].
//!
//! Left out: margin-MSE and embedding distillation (in `crate::loss`, not
//! wired here), mixed precision.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use super::checkpoint::{
    self, EvalRecord, LogRecord, MiningRecord, MiningState, TrainState, STATE_FORMAT,
};
use super::config::{AugmentConfig, TrainConfig};
use super::curves::{self, Series};
use super::data::{self, RunData};
use super::eval::{evaluate_dev, DevMetrics};
use super::negatives::{union_masks, Guide, Momentum, Remining};
use super::peak_rss_bytes;
use super::progress::{StepInfo, TrainHooks};
use crate::augment::{Augmenter, MaskMode, Paraphrases, Synonyms, TokenMask};
use crate::bank::MemoryBank;
use crate::batch::{BatchSampler, SamplerState};
use crate::data::examples::TrainingExample;
use crate::embedder::Embedder;
use crate::error::{IoResultExt, Result, TrainerError};
use crate::gradcache::{grad_cache_step, Side};
use crate::loss::{self, InfoNceOptions, Temperature};
use crate::rng::Rng;
use crate::runtime::encoder::{load_pretrained, save_pretrained, Encoder, TokenBatch};
use crate::runtime::infer::{InferenceModel, Precision};
use crate::runtime::optim::{clip_grad_norm, AdamW, AdamWConfig, LrSchedule, Optimizer};
use crate::runtime::tokenizer::{Tokenizer, Vocab};
use crate::runtime::{EncoderConfig, Graph, ParamSet, Runtime, Tensor, Var};
use crate::vocab::{self as wordpiece, VocabConfig};

/// What a finished (or stopped) run reports.
#[derive(Clone, Debug, Serialize)]
pub struct TrainReport {
    /// Optimizer steps taken in total (resumed pieces included).
    pub steps: u64,
    /// Training wall time in seconds over all pieces of the run.
    pub seconds: f64,
    /// Peak resident set size of this process (`VmHWM`), when known.
    pub peak_rss_bytes: Option<u64>,
    /// The best dev evaluation and its step.
    pub best_dev: Option<EvalRecord>,
    /// The dev evaluation of the final parameters.
    pub final_dev: Option<DevMetrics>,
    /// Every dev evaluation in step order (step 0: the untrained model).
    pub evals: Vec<EvalRecord>,
    pub output_dir: PathBuf,
    /// Scalar parameters of the encoder.
    pub params: usize,
    /// Whether a hook stopped the run before its last step (no final
    /// model, metrics or curves were written then).
    pub stopped: bool,
    /// Every re-mining of hard negatives (`[mining]`), with its cost.
    pub mining: Vec<MiningRecord>,
}

/// Trains a model as `cfg` says, reporting to `hooks`.
pub fn train(cfg: &TrainConfig, hooks: &mut dyn TrainHooks) -> Result<TrainReport> {
    cfg.check_runnable()?;
    let (m, l, o, t) = (&cfg.model, &cfg.loss, &cfg.optimizer, &cfg.train);
    let out = cfg.output_dir();
    fs::create_dir_all(&out).with_path(&out)?;
    let ckpt_root = out.join("checkpoints");
    let threads = if t.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        t.threads
    };
    let rt = Runtime::new(threads)?;

    // ---- resume point -------------------------------------------------------------------
    let resume_dir = if t.resume { checkpoint::latest(&ckpt_root)? } else { None };
    let resumed = match &resume_dir {
        Some(dir) => {
            let s = checkpoint::read_state(dir)?;
            if s.fingerprint != cfg.result_fingerprint() {
                return Err(TrainerError::InvalidArgument {
                    name: "train.resume",
                    reason: format!(
                        "{} was written under a different [model]/[data]/[loss]/[optimizer] \
                         or batch/steps/seed; resume with the same config or start afresh",
                        dir.display()
                    ),
                });
            }
            hooks.on_message(&format!("resuming from {} (step {})", dir.display(), s.step));
            Some(s)
        }
        None => None,
    };

    // ---- data ---------------------------------------------------------------------------
    let RunData { train: mut examples, dev, corpus, notes } = data::load(&cfg.data, t.seed)?;
    notes.iter().for_each(|n| hooks.on_message(n));

    // ---- model and tokenizer ------------------------------------------------------------
    // A pretrained folder brings config, weights and vocabulary; from scratch,
    // the vocabulary is a file, a checkpoint's, or trained on the pairs.
    let (mut enc_cfg, params, vocab_tokens, pretrained_tok) = if !m.init_from.is_empty() {
        let p = load_pretrained(Path::new(&m.init_from))?;
        let tokens: Vec<String> = p.tokenizer.vocab().tokens().map(str::to_string).collect();
        (p.config, p.params, tokens, Some(p.tokenizer))
    } else {
        let tokens = match &resume_dir {
            Some(dir) => checkpoint::read_vocab(dir)?,
            None if !m.vocab.is_empty() => read_vocab_file(Path::new(&m.vocab))?,
            None => train_vocab(&examples, m.train_vocab)?,
        };
        let mut c = EncoderConfig::preset(&m.preset, tokens.len())?;
        c.projection_dim = (m.projection_dim > 0).then_some(m.projection_dim);
        let params = Encoder::new(c.clone())?.init_params(t.seed)?;
        (c, params, tokens, None)
    };
    enc_cfg.max_seq_len = m.max_seq_len.min(enc_cfg.max_position_embeddings);
    let vocab = Vocab::from_tokens(&vocab_tokens, "training vocabulary")?;
    let tokenizer = pretrained_tok.unwrap_or_else(|| Tokenizer::new(vocab.clone()));
    let encoder = Encoder::new(enc_cfg.clone())?.with_dropout(m.dropout);
    let encoder_params = params.numel();
    hooks.on_message(&format!(
        "model: {} layers x {} wide, {} heads, vocabulary {}, {} parameters",
        enc_cfg.num_layers,
        enc_cfg.hidden_size,
        enc_cfg.num_heads,
        vocab.len(),
        encoder_params
    ));

    // ---- loss, optimizer, schedule, sampler ---------------------------------------------
    let mut params = params;
    let temperature = if l.learn_temperature {
        loss::add_temperature_param(&mut params, l.temperature)?;
        Temperature::Learned { init: l.temperature, min: 0.01, max: 1.0 }
    } else {
        Temperature::Fixed(l.temperature)
    };
    let loss_opts = InfoNceOptions {
        temperature,
        symmetric: l.symmetric,
        margin: l.margin,
        hardness: l.hardness,
        mask: None,
    };
    let augmenter = augmenter(&cfg.augment)?;
    let mut bank = match l.memory_bank {
        0 => None,
        rows => Some(MemoryBank::new(rows, enc_cfg.embedding_dim())?),
    };
    let adam =
        AdamWConfig { beta1: o.beta1, beta2: o.beta2, eps: o.eps, weight_decay: o.weight_decay };
    let mut opt = AdamW::new(&params, adam);
    if l.distill_weight > 0.0 {
        check_teacher_scores(&examples, l.hard_negatives, "loss.distill_weight")?;
    }
    let guide = Guide::from_config(&l.guide, l.guide_margin)?;
    if let Some(Guide::Scores { .. }) = guide {
        check_teacher_scores(&examples, l.hard_negatives, "loss.guide")?;
    }
    let remining = Remining::new(
        &cfg.mining,
        l.hard_negatives,
        &examples,
        corpus.as_deref(),
        t.seed,
        t.eval_batch_size,
    )?;
    let mut sampler = BatchSampler::from_examples(&examples, t.batch_size, t.seed)?;
    let total_steps =
        if t.max_steps > 0 { t.max_steps } else { steps_in_epochs(&sampler, t.epochs) };
    let schedule = match o.schedule.as_str() {
        "constant" => LrSchedule::Constant { lr: o.lr },
        "linear" => LrSchedule::WarmupLinear {
            peak: o.lr,
            min: o.min_lr,
            warmup: o.warmup_steps,
            total: total_steps,
        },
        _ => LrSchedule::WarmupCosine {
            peak: o.lr,
            min: o.min_lr,
            warmup: o.warmup_steps,
            total: total_steps,
        },
    };

    // ---- restore ------------------------------------------------------------------------
    let mut g = Graph::new(rt.clone(), t.seed);
    let mut state = TrainState {
        format: STATE_FORMAT,
        step: 0,
        sampler: serde_json::Value::Null,
        graph_pass: 0,
        fingerprint: cfg.result_fingerprint(),
        config: cfg.to_toml(),
        log: Vec::new(),
        evals: Vec::new(),
        best: None,
        elapsed_seconds: 0.0,
        bank_rows_pushed: 0,
        mining: MiningState::default(),
    };
    let mut momentum = None;
    if let (Some(dir), Some(s)) = (&resume_dir, resumed) {
        checkpoint::load_tensors(dir, &mut params, &mut opt)?;
        let saved = s.sampler.as_str().ok_or_else(|| TrainerError::InvalidArgument {
            name: "checkpoint",
            reason: format!("{}: sampler state is not a string", dir.display()),
        })?;
        sampler.resume(&SamplerState::from_json(saved)?)?;
        if let Some(b) = &mut bank {
            restore_bank(b, dir, s.bank_rows_pushed)?;
        }
        if cfg.bank.momentum > 0.0 {
            let extra = checkpoint::read_extra(dir)?;
            momentum = Some(Momentum::restore(cfg.bank.momentum, &params, &extra)?);
        }
        if let (Some(r), Some(ids)) = (&remining, &s.mining.negatives) {
            r.apply(&mut examples, ids)?;
        }
        state = s;
        state.config = cfg.to_toml();
    } else if cfg.bank.momentum > 0.0 {
        momentum = Some(Momentum::new(cfg.bank.momentum, &params)?);
    }
    g.set_params(params);
    g.set_pass(state.graph_pass);
    let log_path = out.join("log.jsonl");
    let mut log_file = rewrite_log(&log_path, &state.log)?;

    // ---- the loop -----------------------------------------------------------------------
    hooks.on_start(total_steps, state.step);
    if let (Some(dev), true, 0) = (&dev, t.eval_every > 0, state.step) {
        // The untrained model's score, the curve's starting point.
        let model = embedder(&enc_cfg, g.params(), &tokenizer)?;
        let metrics = evaluate_dev(&model, dev, t.eval_batch_size)?;
        state.evals.push(EvalRecord { step: 0, metrics: metrics.clone() });
        hooks.on_eval(0, &metrics, false);
    }
    let session = Instant::now();
    let base_seconds = state.elapsed_seconds;
    let (mut window_start, mut window_pairs) = (Instant::now(), 0usize);
    let (mut window_mining_seconds, mut window_mining_docs) = (0.0f64, 0u64);
    let k = l.hard_negatives;
    while state.step < total_steps {
        let step = state.step;
        let epoch = sampler.epoch();
        let lr = schedule.lr(step);

        // Re-mine the hard negatives with the current parameters when due.
        if let Some(r) = remining.as_ref().filter(|r| r.due(step)) {
            let model = embedder(&enc_cfg, g.params(), &tokenizer)?;
            let (ids, rec) = r.mine(&model, step)?;
            r.apply(&mut examples, &ids)?;
            hooks.on_message(&format!(
                "step {step}: re-mined {} negatives ({} examples short) from {} of {} \
                 passages; {} texts embedded in {:.2} s",
                rec.negatives,
                rec.short,
                rec.docs,
                r.corpus_len(),
                rec.texts,
                rec.seconds
            ));
            window_mining_seconds += rec.seconds;
            window_mining_docs += rec.docs as u64;
            state.mining.negatives = Some(ids);
            state.mining.refreshes.push(rec);
        }

        // Batch: queries, then positives followed by each query's first k
        // negatives (fewer when the example has fewer).
        let batch = sampler.next_batch();
        let queries: Vec<&str> = batch.iter().map(|&i| examples[i].query.as_str()).collect();
        let mut docs: Vec<&str> = batch.iter().map(|&i| examples[i].positive.as_str()).collect();
        for &i in &batch {
            docs.extend(examples[i].negatives.iter().take(k).map(String::as_str));
        }
        // Teacher scores of each query's candidates: positive, then its k
        // negatives (checked present at load when distilling).
        let teacher: Vec<f32> = if l.distill_weight > 0.0 {
            batch
                .iter()
                .flat_map(|&i| examples[i].scores.as_deref().unwrap_or(&[])[..1 + k].to_vec())
                .collect()
        } else {
            Vec::new()
        };
        let distill = |g: &mut Graph, q: Var, d: Var, contrastive: Var| -> Result<Var> {
            if l.distill_weight == 0.0 {
                return Ok(contrastive);
            }
            let s = candidate_scores(g, q, d, k, 1.0 / l.temperature)?;
            let kl = loss::kl_distill(g, s, &teacher, 1.0, l.distill_temperature)?;
            loss::weighted_sum(g, &[(1.0, contrastive), (l.distill_weight, kl)])
        };
        let bank_rows = bank.as_ref().map_or(0, |b| b.len());
        let guided = match &guide {
            Some(gd) => gd.mask(&examples, &batch, &queries, &docs, k, bank_rows)?,
            None => None,
        };
        let opts = InfoNceOptions {
            mask: union_masks(duplicate_mask(&examples, &batch, &docs, bank_rows), guided),
            ..loss_opts.clone()
        };

        // Rewrites, after the mask (which compares the original texts): a
        // generator per step, so a resumed run draws the same ones.
        let (aug_queries, aug_docs);
        let (queries, docs) = match &augmenter {
            None => (queries, docs),
            Some(a) => {
                let mut rng = Rng::new(t.seed ^ AUGMENT_SEED, step);
                aug_queries = queries.iter().map(|q| a.augment(q, &mut rng)).collect::<Vec<_>>();
                aug_docs = if cfg.augment.documents {
                    docs.iter().map(|d| a.augment(d, &mut rng)).collect::<Vec<_>>()
                } else {
                    docs.iter().map(|d| d.to_string()).collect()
                };
                (
                    aug_queries.iter().map(String::as_str).collect::<Vec<_>>(),
                    aug_docs.iter().map(String::as_str).collect::<Vec<_>>(),
                )
            }
        };
        let bank_values: Vec<f32> = bank.as_ref().map_or(Vec::new(), |b| b.as_slice().to_vec());
        let with_bank = |g: &mut Graph, d: Var| -> Result<Var> {
            if bank_values.is_empty() {
                return Ok(d);
            }
            let dim = g.dims(d)?[1];
            let rows = g.input_slice(&[bank_values.len() / dim, dim], &bank_values)?;
            Ok(g.concat_rows(&[d, rows])?)
        };

        // Forward both sides through the shared encoder, then the loss
        // (and its backward). Gradient caching does both in mini-batches.
        g.set_training(true);
        let mut doc_values = Vec::new();
        let loss_value = if l.gradcache_minibatch > 0 {
            let embed = |g: &mut Graph, side: Side, rows: std::ops::Range<usize>| {
                let texts = match side {
                    Side::Query => &queries[rows],
                    Side::Doc => &docs[rows],
                };
                let tb = TokenBatch::from_texts(&tokenizer, texts, enc_cfg.max_seq_len)?;
                Ok(encoder.forward(g, &tb)?)
            };
            let loss_fn = |g: &mut Graph, q: Var, d: Var| {
                if bank.is_some() {
                    doc_values = g.value(d)?.to_vec_f32()?;
                }
                let with = with_bank(g, d)?;
                let contrastive = loss::info_nce(g, q, with, &opts)?;
                distill(g, q, d, contrastive)
            };
            let mb = l.gradcache_minibatch;
            grad_cache_step(&mut g, queries.len(), docs.len(), mb, embed, loss_fn)?.loss
        } else {
            let qb = TokenBatch::from_texts(&tokenizer, &queries, enc_cfg.max_seq_len)?;
            let db = TokenBatch::from_texts(&tokenizer, &docs, enc_cfg.max_seq_len)?;
            let q = encoder.forward(&mut g, &qb)?;
            let d = encoder.forward(&mut g, &db)?;
            if bank.is_some() {
                doc_values = g.value(d)?.to_vec_f32()?;
            }
            let with = with_bank(&mut g, d)?;
            let contrastive = loss::info_nce(&mut g, q, with, &opts)?;
            let loss = distill(&mut g, q, d, contrastive)?;
            let value = g.scalar(loss)?;
            if value.is_finite() {
                g.backward(loss)?;
            }
            value
        };
        if !loss_value.is_finite() {
            return Err(TrainerError::InvalidArgument {
                name: "training",
                reason: format!("step {}: loss is {loss_value}; lower optimizer.lr", step + 1),
            });
        }
        if let Some(b) = &mut bank {
            // The momentum encoder's view of the step's documents, else
            // the online model's.
            if let Some(mo) = &mut momentum {
                doc_values = mo.embed(&enc_cfg, &tokenizer, &docs)?;
            }
            b.push(&doc_values)?;
            state.bank_rows_pushed += (doc_values.len() / b.dim()) as u64;
        }

        // Clip, AdamW step, clear the gradients.
        g.reset();
        let grad_norm = if o.clip_norm > 0.0 {
            Some(clip_grad_norm(g.params_mut(), o.clip_norm)?)
        } else {
            None
        };
        opt.step_graph(&mut g, lr)?;
        g.params_mut().zero_grad();
        if let Some(mo) = &mut momentum {
            mo.update(g.params())?;
        }
        state.step += 1;
        window_pairs += batch.len();

        // Report the step; log every `log_every`.
        let elapsed = session.elapsed();
        let window = window_start.elapsed().as_secs_f64().max(1e-9);
        let info = StepInfo {
            step: state.step,
            total_steps,
            epoch,
            loss: loss_value,
            lr,
            grad_norm,
            pairs_per_sec: window_pairs as f64 / window,
            elapsed,
        };
        hooks.on_step(&info);
        if state.step.is_multiple_of(t.log_every) || state.step == total_steps {
            let rec = LogRecord {
                step: state.step,
                epoch,
                loss: loss_value,
                lr,
                grad_norm,
                pairs_per_sec: info.pairs_per_sec,
                elapsed_seconds: base_seconds + elapsed.as_secs_f64(),
                mining_seconds: (window_mining_docs > 0).then_some(window_mining_seconds),
                mining_docs: (window_mining_docs > 0).then_some(window_mining_docs),
            };
            append_log(&mut log_file, &log_path, &rec)?;
            state.log.push(rec);
            hooks.on_log(&info);
            (window_start, window_pairs) = (Instant::now(), 0);
            (window_mining_seconds, window_mining_docs) = (0.0, 0);
        }

        // Dev evaluation; keep the best model.
        let last = state.step == total_steps;
        let eval_now = t.eval_every > 0 && state.step.is_multiple_of(t.eval_every);
        if let (Some(dev), true) = (&dev, eval_now || last) {
            let model = embedder(&enc_cfg, g.params(), &tokenizer)?;
            let metrics = evaluate_dev(&model, dev, t.eval_batch_size)?;
            let best =
                state.best.as_ref().is_none_or(|b| metrics.ndcg_at_10 > b.metrics.ndcg_at_10);
            let rec = EvalRecord { step: state.step, metrics: metrics.clone() };
            if best {
                save_pretrained(&out.join("best"), &enc_cfg, g.params(), &vocab)?;
                state.best = Some(rec.clone());
            }
            state.evals.push(rec);
            hooks.on_eval(state.step, &metrics, best);
        }

        // Checkpoint every `checkpoint_every` (and at the end).
        let ckpt_now =
            t.checkpoint_every > 0 && (state.step.is_multiple_of(t.checkpoint_every) || last);
        if ckpt_now {
            state.sampler = serde_json::Value::String(sampler.state().to_json());
            state.graph_pass = g.pass();
            state.elapsed_seconds = base_seconds + session.elapsed().as_secs_f64();
            let bank_tensor = match &bank {
                Some(b) if !b.is_empty() => {
                    Some(Tensor::from_vec(&[b.len(), b.dim()], b.as_slice().to_vec())?)
                }
                _ => None,
            };
            let momentum_tensors = match &momentum {
                Some(mo) => mo.tensors()?,
                None => Vec::new(),
            };
            let extra: Vec<(&str, &Tensor)> = bank_tensor
                .iter()
                .map(|t| (BANK_TENSOR, t))
                .chain(momentum_tensors.iter().map(|(n, t)| (n.as_str(), t)))
                .collect();
            let dir = checkpoint::write(
                &ckpt_root,
                g.params(),
                &opt,
                &vocab_tokens,
                &extra,
                &state,
                t.keep_checkpoints,
            )?;
            hooks.on_message(&format!("checkpoint {}", dir.display()));
        }

        if !last && hooks.should_stop(state.step) {
            return Ok(TrainReport {
                steps: state.step,
                seconds: base_seconds + session.elapsed().as_secs_f64(),
                peak_rss_bytes: peak_rss_bytes(),
                best_dev: state.best.clone(),
                final_dev: None,
                evals: state.evals.clone(),
                output_dir: out,
                params: encoder_params,
                stopped: true,
                mining: state.mining.refreshes.clone(),
            });
        }
    }
    let seconds = base_seconds + session.elapsed().as_secs_f64();

    // ---- outputs ------------------------------------------------------------------------
    // The final model, metrics.json and curves.svg.
    save_pretrained(&out.join("model"), &enc_cfg, g.params(), &vocab)?;
    let final_dev = state.evals.last().filter(|e| e.step == state.step).map(|e| e.metrics.clone());
    let report = TrainReport {
        steps: state.step,
        seconds,
        peak_rss_bytes: peak_rss_bytes(),
        best_dev: state.best.clone(),
        final_dev,
        evals: state.evals.clone(),
        output_dir: out.clone(),
        params: encoder_params,
        stopped: false,
        mining: state.mining.refreshes.clone(),
    };
    let json = serde_json::to_vec_pretty(&report).expect("the report always serialises");
    checkpoint::write_atomic(&out.join("metrics.json"), &json)?;
    let loss_pts: Vec<(u64, f64)> = state.log.iter().map(|r| (r.step, r.loss as f64)).collect();
    let ndcg_pts: Vec<(u64, f64)> =
        state.evals.iter().map(|e| (e.step, e.metrics.ndcg_at_10)).collect();
    let mining_pts: Vec<(u64, f64)> =
        state.mining.refreshes.iter().map(|r| (r.step, r.seconds)).collect();
    let mut panels = vec![
        Series { title: "training loss", points: &loss_pts, color: "#c0392b" },
        Series { title: "dev nDCG@10", points: &ndcg_pts, color: "#2e6fb7" },
    ];
    if !mining_pts.is_empty() {
        panels.push(Series { title: "re-mining seconds", points: &mining_pts, color: "#7d6608" });
    }
    let svg = curves::render(&panels);
    checkpoint::write_atomic(&out.join("curves.svg"), svg.as_bytes())?;
    hooks.on_finish();
    Ok(report)
}

/// The no-tape inference model over the current parameters, as an
/// [`Embedder`] for dev evaluation, re-mining and guides.
pub(super) struct InferEmbedder(pub(super) InferenceModel);

impl Embedder for InferEmbedder {
    fn dim(&self) -> usize {
        self.0.dim()
    }
    fn normalized(&self) -> bool {
        self.0.config().normalize
    }
    fn embed(&self, texts: &[&str]) -> Result<Vec<f32>> {
        self.0.embed(texts).map_err(|e| TrainerError::InvalidArgument {
            name: "dev embedding",
            reason: e.to_string(),
        })
    }
}

fn embedder(cfg: &EncoderConfig, params: &ParamSet, tok: &Tokenizer) -> Result<InferEmbedder> {
    let model = InferenceModel::from_params(cfg, params, tok.clone(), Precision::F32)
        .map_err(|e| TrainerError::InvalidArgument { name: "dev model", reason: e.to_string() })?;
    Ok(InferEmbedder(model))
}

/// Batches in the first `epochs` epochs (epochs may differ by a batch or
/// two, as examples with clashing texts are deferred), by replaying the
/// sampler's plan.
fn steps_in_epochs(sampler: &BatchSampler, epochs: usize) -> u64 {
    let mut s = sampler.clone();
    let mut steps = 0;
    while s.epoch() < epochs as u64 {
        steps += s.batches_in_epoch() as u64;
        for _ in 0..s.batches_in_epoch() {
            s.next_batch();
        }
    }
    steps
}

/// Name of the memory bank's rows in a checkpoint's extra tensors.
const BANK_TENSOR: &str = "memory_bank";

/// Refills `bank` from a checkpoint: the rows in storage order, then the
/// write position, recovered from the rows ever pushed (every push is at
/// most one bank's worth, so the ring turned exactly that far) by pushing
/// the first rows again over themselves.
fn restore_bank(bank: &mut MemoryBank, dir: &Path, pushed: u64) -> Result<()> {
    bank.clear();
    if pushed == 0 {
        return Ok(());
    }
    let extra = checkpoint::read_extra(dir)?;
    let rows = extra.iter().find(|(n, _)| n == BANK_TENSOR).map(|(_, t)| t).ok_or_else(|| {
        TrainerError::InvalidArgument {
            name: "checkpoint",
            reason: format!("{}: no memory bank rows", dir.display()),
        }
    })?;
    let values = rows.as_f32()?;
    bank.push(values)?;
    let cap = bank.capacity() as u64;
    let next = if pushed <= cap { 0 } else { ((pushed - cap) % cap) as usize };
    bank.push(&values[..next * bank.dim()])?;
    Ok(())
}

/// Marks, for each query of the batch, the documents whose text is that
/// query's positive but which are not its own positive row (another
/// query's identical positive, or a hard negative that is really
/// relevant); `None` when nothing is marked. Layout `[B, docs + bank]`.
fn duplicate_mask(
    examples: &[TrainingExample],
    batch: &[usize],
    docs: &[&str],
    bank_rows: usize,
) -> Option<Vec<bool>> {
    let n = docs.len() + bank_rows;
    let mut mask = vec![false; batch.len() * n];
    let mut any = false;
    for (i, &e) in batch.iter().enumerate() {
        let positive = examples[e].positive.as_str();
        for (j, d) in docs.iter().enumerate() {
            if j != i && *d == positive {
                mask[i * n + j] = true;
                any = true;
            }
        }
    }
    any.then_some(mask)
}

/// Tokens of a `vocab.txt`, one per line.
fn read_vocab_file(path: &Path) -> Result<Vec<String>> {
    let text = fs::read_to_string(path).with_path(path)?;
    Ok(text.lines().map(|l| l.trim_end_matches('\r').to_string()).collect())
}

/// A WordPiece vocabulary of `size` tokens fitted to every text of the
/// training pairs.
fn train_vocab(examples: &[TrainingExample], size: usize) -> Result<Vec<String>> {
    let texts = examples.iter().flat_map(|e| {
        std::iter::once(e.query.as_str())
            .chain(std::iter::once(e.positive.as_str()))
            .chain(e.negatives.iter().map(String::as_str))
    });
    let cfg = VocabConfig { vocab_size: size, ..VocabConfig::default() };
    let trained = wordpiece::train(texts, &cfg).map_err(|e| TrainerError::InvalidArgument {
        name: "model.train_vocab",
        reason: e.to_string(),
    })?;
    Ok(trained.tokens().to_vec())
}

/// Starts `log.jsonl` over with the records of a resumed state (none when
/// fresh), so steps past the checkpoint from an interrupted run vanish.
fn rewrite_log(path: &Path, records: &[LogRecord]) -> Result<File> {
    let mut text = String::new();
    for r in records {
        text.push_str(&serde_json::to_string(r).expect("log records always serialise"));
        text.push('\n');
    }
    checkpoint::write_atomic(path, text.as_bytes())?;
    OpenOptions::new().append(true).open(path).with_path(path)
}

fn append_log(file: &mut File, path: &Path, rec: &LogRecord) -> Result<()> {
    let mut line = serde_json::to_string(rec).expect("log records always serialise");
    line.push('\n');
    file.write_all(line.as_bytes()).with_path(path)?;
    file.flush().with_path(path)
}

/// Mixed into `train.seed` for the augmentation generator's seed.
const AUGMENT_SEED: u64 = 0x6175_676d_656e_7473;

/// The configured rewrites, or `None` when all are off.
fn augmenter(a: &AugmentConfig) -> Result<Option<Augmenter>> {
    if !a.enabled() {
        return Ok(None);
    }
    let synonyms = if a.synonym_prob > 0.0 {
        let explicit = (!a.wordnet.is_empty()).then(|| Path::new(&a.wordnet));
        let invalid = |e: crate::wordnet::WordNetError| TrainerError::InvalidArgument {
            name: "augment.wordnet",
            reason: e.to_string(),
        };
        let dir = crate::wordnet::find_dir(explicit).map_err(invalid)?;
        Some(std::sync::Arc::new(Synonyms::from_dir(&dir).map_err(invalid)?))
    } else {
        None
    };
    let paraphrases = if a.paraphrase_prob > 0.0 {
        Some(std::sync::Arc::new(Paraphrases::load(Path::new(&a.paraphrases))?))
    } else {
        None
    };
    let mode = if a.mask_drop { MaskMode::Drop } else { TokenMask::default().mode };
    let aug = Augmenter {
        paraphrase_prob: a.paraphrase_prob,
        synonym_prob: a.synonym_prob,
        synonym_rate: a.synonym_rate,
        mask_prob: a.mask_prob,
        mask: TokenMask { rate: a.mask_rate, mode },
        delete_prob: a.delete_prob,
        delete_rate: a.delete_rate,
        synonyms,
        paraphrases,
        ..Augmenter::default()
    };
    aug.validate()?;
    Ok(Some(aug))
}

/// Every example carries teacher scores for its positive and first `k`
/// negatives, and has those negatives; `key` is the option that needs them.
fn check_teacher_scores(examples: &[TrainingExample], k: usize, key: &'static str) -> Result<()> {
    for (n, e) in examples.iter().enumerate() {
        let scores = e.scores.as_ref().map_or(0, Vec::len);
        if e.negatives.len() < k || scores < 1 + k {
            return Err(TrainerError::InvalidArgument {
                name: key,
                reason: format!(
                    "training example {} has {} negatives and {scores} teacher scores; \
                     {key} needs {k} negatives and {} scores (positive first) on every \
                     example",
                    n + 1,
                    e.negatives.len(),
                    1 + k
                ),
            });
        }
    }
    Ok(())
}

/// The student's logits over each query's candidates, `[B, 1 + k]`:
/// `scale * q_i . d_j` for the query's positive (row `i` of `d`) and its
/// `k` negatives (rows `B + i k .. B + (i + 1) k`). Rows are gathered with
/// the embedding op (whose backward scatters into `q` and `d`), multiplied,
/// and summed over the width by a product with a column of ones.
fn candidate_scores(
    g: &mut Graph,
    q: Var,
    d: Var,
    k: usize,
    scale: f32,
) -> crate::runtime::Result<Var> {
    let (b, dim) = (g.dims(q)?[0], g.dims(q)?[1]);
    let c = 1 + k;
    let q_rows: Vec<u32> = (0..b).flat_map(|i| std::iter::repeat_n(i as u32, c)).collect();
    let d_rows: Vec<u32> = (0..b)
        .flat_map(|i| std::iter::once(i).chain((0..k).map(move |j| b + i * k + j)))
        .map(|r| r as u32)
        .collect();
    let qr = g.embedding(q, &q_rows, &[b * c])?;
    let dr = g.embedding(d, &d_rows, &[b * c])?;
    let prod = g.mul(qr, dr)?;
    let ones = g.input_slice(&[dim, 1], &vec![1.0; dim])?;
    let s = g.matmul(prod, ones)?;
    let s = g.reshape(s, &[b, c])?;
    g.scale(s, scale)
}

#[cfg(test)]
mod tests {
    use super::candidate_scores;
    use crate::runtime::gradcheck::{check, GradCheck};
    use crate::runtime::{init, Graph, Runtime};

    #[test]
    fn candidate_scores_pick_each_querys_own_candidates() {
        let (b, k, dim) = (3, 2, 4);
        let q = init::normal(&[b, dim], 1.0, 5, 1).unwrap();
        let d = init::normal(&[b + b * k, dim], 1.0, 5, 2).unwrap();
        let mut g = Graph::new(Runtime::new(1).unwrap(), 0);
        let (qv, dv) = (g.input(&q).unwrap(), g.input(&d).unwrap());
        let s = candidate_scores(&mut g, qv, dv, k, 2.0).unwrap();
        assert_eq!(g.dims(s).unwrap(), [b, 1 + k]);
        let got = g.value(s).unwrap().to_vec_f32().unwrap();
        let (q, d) = (q.to_vec_f32().unwrap(), d.to_vec_f32().unwrap());
        let dot = |i: usize, r: usize| -> f32 {
            (0..dim).map(|x| q[i * dim + x] * d[r * dim + x]).sum::<f32>() * 2.0
        };
        for i in 0..b {
            let want = [dot(i, i), dot(i, b + i * k), dot(i, b + i * k + 1)];
            for (c, w) in want.iter().enumerate() {
                assert!((got[i * (1 + k) + c] - w).abs() < 1e-5, "row {i} col {c}");
            }
        }
        // The gather, product and sum are differentiable end to end.
        let inputs = [
            init::normal(&[b, dim], 1.0, 6, 1).unwrap(),
            init::normal(&[b + b * k, dim], 1.0, 6, 2).unwrap(),
        ];
        let report =
            check(&inputs, &GradCheck::default(), |g, v| candidate_scores(g, v[0], v[1], k, 2.0))
                .unwrap();
        assert!(report.ok(), "{report:?}");
    }
}
