//! Hard negatives inside the loop: re-mining with the model being trained,
//! guided false-negative masks, and the momentum encoder that fills the
//! memory bank.
//!
//! [`Remining`] (`[mining]`): before every `refresh_every`-th step, embed
//! the corpus (or a seeded sample of `corpus_sample` passages) with the
//! current parameters, search it exactly for every training query with the
//! kernels' fused scan + top-k, and replace each example's negatives with
//! the first `loss.hard_negatives` candidates of ranks `skip_top..top_k`
//! that are not a known positive (the rules of static mining,
//! `crate::mining`). It runs on the training thread between steps rather
//! than on [`crate::mining::DynamicMiner::start`]'s background thread: a
//! background result lands after a number of steps that depends on the
//! machine, which would make a run depend on more than its seed. The
//! negatives are kept as passage numbers in the checkpoint, so a resumed
//! run trains on the very texts the uninterrupted one did.
//!
//! The batch sampler keeps the keys of the data's own negatives: it
//! separates examples whose texts clash, and re-planning it at every
//! refresh would break the bit-identical resume. A re-mined negative that
//! equals another query's positive in the same batch is still masked out
//! by the loop's duplicate mask.
//!
//! [`Guide`] (`loss.guide`, GIST): with guide scores `g(q, d)`, candidate
//! `j` of query `i` leaves query `i`'s softmax when
//!
//! ```text
//! g(q_i, d_j) > g(q_i, d_i+) - margin          (j not i's positive)
//! ```
//!
//! A guide model scores every query against every document of the step
//! (dot products of its embeddings); teacher `scores` from the data
//! score each example's own hard negatives only. Masked logits get
//! `-1e9` in InfoNCE (`crate::loss::contrastive`), so a suspected false
//! negative neither counts as wrong nor takes probability mass.
//!
//! [`Momentum`] (`[bank] momentum`, MoCo): an exponential moving average
//! of the parameters, updated after every optimizer step, embeds each
//! step's documents (inference mode, no dropout) for the memory bank, so
//! bank rows of different ages come from nearly the same encoder.
//!
//! Left out: memory-bank rows are never guide-masked (the bank keeps
//! embeddings, not texts, so the guide has nothing to score); re-mining
//! holds every corpus vector in memory as f32 and scans it once per query,
//! which suits corpora up to a few hundred thousand passages.

use std::sync::Arc;
use std::time::Instant;

use super::checkpoint::MiningRecord;
use super::config::{MiningConfig, GUIDE_SCORES};
use super::run::InferEmbedder;
use crate::bank::Ema;
use crate::data::examples::TrainingExample;
use crate::embedder::Embedder;
use crate::error::{Result, TrainerError};
use crate::loss::false_negative_mask;
use crate::mining::{Corpus, DynamicMiner, MiningError, MiningParams, Sampling};
use crate::rng::Rng;
use crate::runtime::infer::{InferenceModel, Precision};
use crate::runtime::tokenizer::Tokenizer;
use crate::runtime::{EncoderConfig, Param, ParamSet, Tensor};

/// Mixed into `train.seed` for the corpus samples and random picks of
/// re-mining.
const MINING_SEED: u64 = 0x7265_6d69_6e65_2121;

fn mining_error(e: MiningError) -> TrainerError {
    match e {
        MiningError::Trainer(e) => e,
        e => TrainerError::InvalidArgument { name: "mining", reason: e.to_string() },
    }
}

/// Re-mining with the model being trained (see the module doc).
pub struct Remining {
    every: u64,
    sample: usize,
    random: bool,
    params: MiningParams,
    seed: u64,
    batch: usize,
    /// Every passage negatives may come from.
    corpus: Corpus,
    /// The training examples' queries and positives, in training order.
    examples: Arc<Vec<TrainingExample>>,
}

impl Remining {
    /// Re-mining as `cfg` says, `k` negatives per example, over `corpus`
    /// (the examples' own distinct passages when `None`); `batch` texts
    /// per forward pass. `None` when `refresh_every` is 0.
    pub fn new(
        cfg: &MiningConfig,
        k: usize,
        examples: &[TrainingExample],
        corpus: Option<&[String]>,
        seed: u64,
        batch: usize,
    ) -> Result<Option<Remining>> {
        if cfg.refresh_every == 0 {
            return Ok(None);
        }
        let corpus = match corpus {
            Some(texts) => {
                Corpus::new(texts.iter().enumerate().map(|(i, t)| (i.to_string(), t.clone())))
            }
            None => Corpus::from_examples(examples),
        }
        .map_err(mining_error)?;
        let params = MiningParams {
            window: cfg.skip_top..cfg.top_k,
            k,
            relative_margin: (cfg.relative_margin > 0.0).then_some(cfg.relative_margin),
            sampling: Sampling::Top,
            keep_scores: false,
        };
        params.validate().map_err(mining_error)?;
        // Mining reads queries and positives only.
        let queries_and_positives = examples
            .iter()
            .map(|e| TrainingExample {
                query: e.query.clone(),
                positive: e.positive.clone(),
                negatives: Vec::new(),
                scores: None,
            })
            .collect();
        Ok(Some(Remining {
            every: cfg.refresh_every,
            sample: cfg.corpus_sample,
            random: cfg.sample == "random",
            params,
            seed: seed ^ MINING_SEED,
            batch,
            corpus,
            examples: Arc::new(queries_and_positives),
        }))
    }

    /// Whether to re-mine before taking step `steps_taken + 1`.
    pub fn due(&self, steps_taken: u64) -> bool {
        steps_taken > 0 && steps_taken.is_multiple_of(self.every)
    }

    /// Passages in the mining corpus.
    pub fn corpus_len(&self) -> usize {
        self.corpus.len()
    }

    /// Mines with `model` after `steps_taken` steps: per example, its new
    /// negatives as passage numbers of the corpus, and what it cost.
    pub fn mine(
        &self,
        model: &dyn Embedder,
        steps_taken: u64,
    ) -> Result<(Vec<Vec<u32>>, MiningRecord)> {
        let started = Instant::now();
        let refresh = steps_taken / self.every;

        // The passages searched this time: all, or a seeded sample kept in
        // corpus order.
        let n = self.corpus.len();
        let picked: Vec<u32> = if self.sample == 0 || self.sample >= n {
            (0..n as u32).collect()
        } else {
            let mut rng = Rng::new(self.seed, refresh);
            let mut all: Vec<u32> = (0..n as u32).collect();
            for i in 0..self.sample {
                let j = i + rng.below(n - i);
                all.swap(i, j);
            }
            let mut some = all[..self.sample].to_vec();
            some.sort_unstable();
            some
        };
        let texts = picked.iter().map(|&p| (p.to_string(), self.corpus.text(p).to_string()));
        let sub = Arc::new(Corpus::new(texts).map_err(mining_error)?);

        // Mine with the static rules; random picks are seeded per refresh.
        let mut params = self.params.clone();
        if self.random {
            let seed = Rng::new(self.seed ^ 0x5eed, refresh).next_u64();
            params.sampling = Sampling::RandomInWindow { seed };
        }
        let mut miner =
            DynamicMiner::new(self.examples.clone(), sub.clone(), params).map_err(mining_error)?;
        miner.batch = self.batch;
        let mined = miner.mine(model).map_err(mining_error)?;

        // Back to numbers of the whole corpus: the sample's ids are those.
        let mut ids = Vec::with_capacity(mined.examples.len());
        for e in &mined.examples {
            let mut row = Vec::with_capacity(e.negatives.len());
            for text in &e.negatives {
                let local =
                    *sub.find_text(text).first().ok_or_else(|| TrainerError::InvalidArgument {
                        name: "mining",
                        reason: format!("mined text {text:?} is not in the corpus"),
                    })?;
                row.push(picked[local as usize]);
            }
            ids.push(row);
        }
        let r = &mined.report;
        let record = MiningRecord {
            step: steps_taken,
            seconds: started.elapsed().as_secs_f64(),
            embed_seconds: r.times.embed.as_secs_f64(),
            docs: sub.len(),
            texts: sub.len() + r.queries + mined.examples.len(),
            negatives: r.negatives,
            short: r.short,
        };
        Ok((ids, record))
    }

    /// Writes negatives (as [`Remining::mine`] returned them, or as a
    /// checkpoint kept them) into `examples`.
    pub fn apply(&self, examples: &mut [TrainingExample], ids: &[Vec<u32>]) -> Result<()> {
        if ids.len() != examples.len() {
            return Err(TrainerError::InvalidArgument {
                name: "mining",
                reason: format!(
                    "negatives for {} examples, training has {}",
                    ids.len(),
                    examples.len()
                ),
            });
        }
        for (e, row) in examples.iter_mut().zip(ids) {
            if let Some(&bad) = row.iter().find(|&&p| p as usize >= self.corpus.len()) {
                return Err(TrainerError::InvalidArgument {
                    name: "mining",
                    reason: format!("passage {bad} is past the corpus's {}", self.corpus.len()),
                });
            }
            e.negatives = row.iter().map(|&p| self.corpus.text(p).to_string()).collect();
            e.scores = None;
        }
        Ok(())
    }
}

/// Where a guide's scores come from (see the module doc).
pub enum Guide {
    /// The data's teacher `scores`: `[positive, negatives...]` per example.
    Scores { margin: f32 },
    /// A model that embeds queries and documents.
    Model { model: Box<dyn Embedder>, margin: f32 },
}

impl Guide {
    /// The guide `loss.guide` names (`None` when empty): the data's scores,
    /// or a model folder loaded for inference.
    pub fn from_config(guide: &str, margin: f32) -> Result<Option<Guide>> {
        if guide.is_empty() {
            return Ok(None);
        }
        if guide == GUIDE_SCORES {
            return Ok(Some(Guide::Scores { margin }));
        }
        let model = InferenceModel::from_hf_dir(guide, Precision::F32).map_err(|e| {
            TrainerError::InvalidArgument { name: "loss.guide", reason: format!("{guide}: {e}") }
        })?;
        Ok(Some(Guide::Model { model: Box::new(InferEmbedder(model)), margin }))
    }

    /// The mask of one step, row-major `[B, docs + bank_rows]` like the
    /// loop's duplicate mask: query `i` is `batch[i]`, documents are the
    /// batch's positives then each example's first `k` negatives, in
    /// order; bank columns stay unmasked. `None` when nothing is masked.
    pub fn mask(
        &self,
        examples: &[TrainingExample],
        batch: &[usize],
        queries: &[&str],
        docs: &[&str],
        k: usize,
        bank_rows: usize,
    ) -> Result<Option<Vec<bool>>> {
        let (b, n) = (batch.len(), docs.len());
        let stride = n + bank_rows;
        let mut mask = vec![false; b * stride];
        match self {
            Guide::Scores { margin } => {
                // Example i's negatives sit at B + (its offset), k each
                // (every example has k negatives and 1 + k scores, checked
                // at load).
                for (i, &e) in batch.iter().enumerate() {
                    let s = examples[e].scores.as_deref().unwrap_or(&[]);
                    if s.len() < 1 + k {
                        return Err(TrainerError::InvalidArgument {
                            name: "loss.guide",
                            reason: format!("example {e} has {} teacher scores", s.len()),
                        });
                    }
                    for j in 0..k {
                        mask[i * stride + b + i * k + j] = s[1 + j] > s[0] - margin;
                    }
                }
            }
            Guide::Model { model, margin } => {
                let gq = model.embed(queries)?;
                let gd = model.embed(docs)?;
                let inner = false_negative_mask(&gq, &gd, b, n, model.dim(), *margin)?;
                for i in 0..b {
                    mask[i * stride..i * stride + n].copy_from_slice(&inner[i * n..(i + 1) * n]);
                }
            }
        }
        Ok(mask.iter().any(|&m| m).then_some(mask))
    }
}

/// `a | b` entry by entry, either side possibly absent.
pub fn union_masks(a: Option<Vec<bool>>, b: Option<Vec<bool>>) -> Option<Vec<bool>> {
    match (a, b) {
        (Some(mut a), Some(b)) => {
            a.iter_mut().zip(b).for_each(|(x, y)| *x |= y);
            Some(a)
        }
        (a, None) => a,
        (None, b) => b,
    }
}

/// Prefix of the momentum encoder's tensors in a checkpoint's extras.
pub const MOMENTUM_PREFIX: &str = "momentum/";

/// A momentum encoder: the moving average of the online parameters and a
/// parameter set the average is written into for inference.
pub struct Momentum {
    ema: Ema,
    params: ParamSet,
}

impl Momentum {
    /// Starts at the online parameters' values.
    pub fn new(decay: f32, online: &ParamSet) -> Result<Momentum> {
        let ema = Ema::new(decay, online)?;
        let params = copy_params(online, |p| Ok(p.value().to_vec_f32()?))?;
        Ok(Momentum { ema, params })
    }

    /// Continues from a checkpoint's extra tensors (`momentum/<name>` for
    /// every online parameter).
    pub fn restore(decay: f32, online: &ParamSet, extra: &[(String, Tensor)]) -> Result<Momentum> {
        let params = copy_params(online, |p| {
            let name = format!("{MOMENTUM_PREFIX}{}", p.name());
            let (_, t) = extra.iter().find(|(n, _)| *n == name).ok_or_else(|| {
                TrainerError::InvalidArgument {
                    name: "checkpoint",
                    reason: format!("no momentum encoder tensor {name}"),
                }
            })?;
            Ok(t.to_vec_f32()?)
        })?;
        let ema = Ema::new(decay, &params)?;
        Ok(Momentum { ema, params })
    }

    /// One step of the average: `shadow = m * shadow + (1 - m) * online`.
    pub fn update(&mut self, online: &ParamSet) -> Result<()> {
        self.ema.update(online)
    }

    /// Embeds `texts` with the averaged parameters (inference, no dropout).
    pub fn embed(
        &mut self,
        cfg: &EncoderConfig,
        tok: &Tokenizer,
        texts: &[&str],
    ) -> Result<Vec<f32>> {
        self.ema.write_into(&mut self.params)?;
        let model = InferenceModel::from_params(cfg, &self.params, tok.clone(), Precision::F32)
            .map_err(|e| TrainerError::InvalidArgument {
                name: "momentum encoder",
                reason: e.to_string(),
            })?;
        InferEmbedder(model).embed(texts)
    }

    /// The averaged values as named tensors for a checkpoint.
    pub fn tensors(&self) -> Result<Vec<(String, Tensor)>> {
        let mut out = Vec::with_capacity(self.params.len());
        for p in self.params.iter() {
            let values = self.ema.get(p.name()).expect("the average covers every parameter");
            let t = Tensor::from_vec(p.value().dims(), values.to_vec())?;
            out.push((format!("{MOMENTUM_PREFIX}{}", p.name()), t));
        }
        Ok(out)
    }
}

/// A parameter set shaped like `online` with values from `values`.
fn copy_params(
    online: &ParamSet,
    mut values: impl FnMut(&Param) -> Result<Vec<f32>>,
) -> Result<ParamSet> {
    let mut out = ParamSet::new();
    for p in online.iter() {
        let v = Tensor::from_vec(p.value().dims(), values(p)?)?;
        out.add(p.name(), v, p.decay())?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::{info_nce, InfoNceOptions, Temperature};
    use crate::runtime::{Graph, Runtime};
    use std::collections::HashSet;

    /// One-hot on a text's first word from a fixed list (all-zero for an
    /// unknown word): a guide whose answers are known in advance.
    struct FirstWord(Vec<&'static str>);

    impl Embedder for FirstWord {
        fn dim(&self) -> usize {
            self.0.len()
        }
        fn normalized(&self) -> bool {
            true
        }
        fn embed(&self, texts: &[&str]) -> Result<Vec<f32>> {
            let mut out = vec![0.0; texts.len() * self.dim()];
            for (i, t) in texts.iter().enumerate() {
                let w = t.split(' ').next().unwrap_or("");
                if let Some(j) = self.0.iter().position(|x| *x == w) {
                    out[i * self.dim() + j] = 1.0;
                }
            }
            Ok(out)
        }
    }

    fn example(q: &str, p: &str, negs: &[&str]) -> TrainingExample {
        TrainingExample {
            query: q.into(),
            positive: p.into(),
            negatives: negs.iter().map(|s| s.to_string()).collect(),
            scores: None,
        }
    }

    /// Counts of each word of a fixed list: scores by dot product are the
    /// shared word counts, so rankings are known and free of ties.
    struct Bag(Vec<&'static str>);

    impl Embedder for Bag {
        fn dim(&self) -> usize {
            self.0.len()
        }
        fn normalized(&self) -> bool {
            false
        }
        fn embed(&self, texts: &[&str]) -> Result<Vec<f32>> {
            let mut out = vec![0.0; texts.len() * self.dim()];
            for (i, t) in texts.iter().enumerate() {
                for w in t.split(' ') {
                    if let Some(j) = self.0.iter().position(|x| *x == w) {
                        out[i * self.dim() + j] += 1.0;
                    }
                }
            }
            Ok(out)
        }
    }

    #[test]
    fn remining_drops_positives_skips_the_top_and_is_seeded() {
        // For "red", the model ranks the positive first (3 shared words),
        // then the near miss (2), then the other red passage (1).
        let examples =
            vec![example("red", "red red red", &[]), example("blue", "blue blue blue", &[])];
        let corpus: Vec<String> = [
            "red red red",
            "red red near",
            "red other",
            "blue blue blue",
            "blue blue other",
            "green thing",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let model = Bag(vec!["red", "blue", "green"]);
        let mut cfg = MiningConfig { refresh_every: 2, top_k: 6, ..MiningConfig::default() };
        let r = Remining::new(&cfg, 1, &examples, Some(&corpus), 7, 4).unwrap().unwrap();
        assert!(!r.due(0) && !r.due(1) && r.due(2) && r.due(4));
        let (ids, rec) = r.mine(&model, 2).unwrap();
        // The positive (rank 0) is dropped; the near miss is the hardest
        // negative.
        assert_eq!(ids, [vec![1], vec![4]]);
        assert_eq!((rec.step, rec.docs, rec.texts, rec.negatives), (2, 6, 6 + 2 + 2, 2));

        // Ranks 0..2 passed over: the near miss counts as a likely
        // unlabelled positive, and the next red passage comes.
        cfg.skip_top = 2;
        let r = Remining::new(&cfg, 1, &examples, Some(&corpus), 7, 4).unwrap().unwrap();
        let (ids, _) = r.mine(&model, 2).unwrap();
        assert_eq!(ids[0], [2]);
        let mut ex = examples.clone();
        r.apply(&mut ex, &ids).unwrap();
        assert_eq!(ex[0].negatives, ["red other"]);
        assert!(r.apply(&mut ex, &ids[..1]).is_err());
        assert!(r.apply(&mut ex, &[vec![99], vec![]]).is_err());

        // A relative margin of 0.5 drops what scores at or above half the
        // positive's 3: the near miss (2) goes, "red other" (1) stays.
        cfg.skip_top = 0;
        cfg.relative_margin = 0.5;
        let r = Remining::new(&cfg, 1, &examples, Some(&corpus), 7, 4).unwrap().unwrap();
        assert_eq!(r.mine(&model, 2).unwrap().0[0], [2]);
        cfg.relative_margin = 0.0;

        // top_k = 2 leaves one candidate after the positive: two wanted,
        // every example short.
        cfg.top_k = 2;
        let r = Remining::new(&cfg, 2, &examples, Some(&corpus), 7, 4).unwrap().unwrap();
        let (ids, rec) = r.mine(&model, 2).unwrap();
        assert_eq!((ids, rec.short), (vec![vec![1], vec![4]], 2));
        cfg.top_k = 6;

        // Random picks in the window: never the positive, and not always
        // the same passage from one refresh to the next.
        cfg.sample = "random".into();
        let r = Remining::new(&cfg, 1, &examples, Some(&corpus), 7, 4).unwrap().unwrap();
        let picks: HashSet<u32> = (1..20).map(|i| r.mine(&model, 2 * i).unwrap().0[0][0]).collect();
        assert!(!picks.contains(&0) && picks.len() > 1, "{picks:?}");
        cfg.sample = "top".into();

        // A sample of the corpus: as many passages as asked, the same for
        // the same seed and refresh, others at other refreshes.
        cfg.corpus_sample = 3;
        let r = Remining::new(&cfg, 1, &examples, Some(&corpus), 7, 4).unwrap().unwrap();
        let (a, ra) = r.mine(&model, 2).unwrap();
        let (b, _) = r.mine(&model, 2).unwrap();
        assert_eq!(ra.docs, 3);
        assert_eq!(a, b);
        let mut seen = HashSet::new();
        for step in (2..40).step_by(2) {
            seen.insert(r.mine(&model, step).unwrap().0);
        }
        assert!(seen.len() > 1, "every refresh drew the same sample");
    }

    #[test]
    fn guide_masks_a_planted_false_negative_and_changes_the_loss() {
        // Query 0's hard negative "cat feline" is really about cats: the
        // guide scores it like the positive. Query 1's is not.
        let examples = vec![
            example("cat query", "cat positive", &["cat feline"]),
            example("dog query", "dog positive", &["fish food"]),
        ];
        let batch = [0, 1];
        let queries = ["cat query", "dog query"];
        let docs = ["cat positive", "dog positive", "cat feline", "fish food"];
        let guide =
            Guide::Model { model: Box::new(FirstWord(vec!["cat", "dog", "fish"])), margin: 0.1 };
        let mask = guide.mask(&examples, &batch, &queries, &docs, 1, 3).unwrap().unwrap();
        let stride = docs.len() + 3;
        let masked: Vec<(usize, usize)> = (0..2)
            .flat_map(|i| (0..stride).map(move |j| (i, j)))
            .filter(|&(i, j)| mask[i * stride + j])
            .collect();
        assert_eq!(masked, [(0, 2)], "only query 0's planted negative");

        // The same from teacher scores: the negative above the positive.
        let mut scored = examples.clone();
        scored[0].scores = Some(vec![0.5, 0.9]);
        scored[1].scores = Some(vec![0.5, 0.1]);
        let by_scores = Guide::Scores { margin: 0.1 };
        let m2 = by_scores.mask(&scored, &batch, &queries, &docs, 1, 3).unwrap().unwrap();
        assert_eq!(m2, mask);
        assert!(by_scores.mask(&examples, &batch, &queries, &docs, 1, 0).is_err());

        // InfoNCE with the mask differs from without: the masked candidate,
        // aligned with query 0, no longer weighs on its softmax.
        let loss = |mask: Option<Vec<bool>>| {
            let mut g = Graph::new(Runtime::new(1).unwrap(), 0);
            let qv = [1.0, 0.0, 0.0, 1.0];
            let dv = [1.0, 0.0, 0.0, 1.0, 0.8, 0.6, 0.6, 0.8];
            let q = g.input_slice(&[2, 2], &qv).unwrap();
            let d = g.input_slice(&[4, 2], &dv).unwrap();
            let opts =
                InfoNceOptions { temperature: Temperature::Fixed(0.1), mask, ..Default::default() };
            let l = info_nce(&mut g, q, d, &opts).unwrap();
            g.scalar(l).unwrap()
        };
        let narrow: Vec<bool> =
            (0..2).flat_map(|i| mask[i * stride..i * stride + 4].to_vec()).collect();
        let (plain, guided) = (loss(None), loss(Some(narrow)));
        // Logits are cosines / 0.1. Either query, unmasked: positive 10,
        // others 0, 8 and 6, so -log softmax = ln(1 + e^-10 + e^-2 + e^-4).
        // Query 0 without its planted negative (8): ln(1 + e^-10 + e^-4).
        let full = (1.0 + (-10f64).exp() + (-2f64).exp() + (-4f64).exp()).ln();
        let without = (1.0 + (-10f64).exp() + (-4f64).exp()).ln();
        assert!((plain as f64 - full).abs() < 1e-5, "plain {plain} vs {full}");
        let want = (without + full) / 2.0;
        assert!((guided as f64 - want).abs() < 1e-5, "guided {guided} vs {want}");
    }

    #[test]
    fn masks_unite() {
        let a = Some(vec![true, false, false]);
        let b = Some(vec![false, false, true]);
        assert_eq!(union_masks(a.clone(), b), Some(vec![true, false, true]));
        assert_eq!(union_masks(None, a.clone()), a);
        assert_eq!(union_masks(None, None), None);
    }
}
