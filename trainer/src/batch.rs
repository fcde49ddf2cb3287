//! Batches without duplicate texts, reshuffled every epoch, resumable.
//!
//! In-batch negatives assume that every other document in the batch is
//! irrelevant to a query. That breaks when the same text appears twice in
//! a batch: two examples sharing a query, or one example's positive being
//! another's hard negative, turn a positive into a negative. The sampler
//! therefore gives each example a set of keys (its query, positive and
//! negatives, trimmed and lowercased, or caller-given ids) and builds each
//! batch so no key appears twice.
//!
//! Per epoch: shuffle the example order (Fisher-Yates on a splitmix64
//! stream), then fill batches in that order. An example whose keys collide
//! with the batch being filled is deferred: it waits in a FIFO queue that
//! is tried first when the next batch starts. Nothing is dropped; at the
//! end of the epoch the queue drains into further (possibly smaller)
//! batches, and each epoch reports how many examples were deferred. Every
//! example therefore appears exactly once per epoch.
//!
//! The plan of an epoch is a pure function of the keys, the batch size and
//! the RNG state at the epoch's start, so the resumable state is small:
//! [`SamplerState`] holds the epoch, the next batch's index and that RNG
//! state (plus a fingerprint of the data, to refuse resuming over a
//! different data set). Resuming replans the epoch and continues with the
//! identical batch sequence.
//!
//! Keys are 64-bit FNV-1a hashes of the normalised texts: two different
//! texts that collide in 64 bits would only defer an example needlessly.

use std::collections::{HashSet, VecDeque};

use crate::data::examples::TrainingExample;
use crate::error::{Result, TrainerError};

fn invalid(name: &'static str, reason: String) -> TrainerError {
    TrainerError::InvalidArgument { name, reason }
}

/// FNV-1a over bytes: stable across builds and platforms, unlike the
/// standard library's hasher.
fn fnv1a(bytes: &[u8], mut h: u64) -> u64 {
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// The comparison form of a text: trimmed and lowercased.
pub fn normalize_text(text: &str) -> String {
    text.trim().to_lowercase()
}

/// splitmix64: one step of the shuffle stream.
fn next_u64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A uniform index below `n` (`n > 0`), by rejection so it has no bias.
fn below(state: &mut u64, n: usize) -> usize {
    let n = n as u64;
    let zone = u64::MAX - u64::MAX % n;
    loop {
        let r = next_u64(state);
        if r < zone {
            return (r % n) as usize;
        }
    }
}

/// Where a sampler stands, small enough for a checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SamplerState {
    /// The epoch of the next batch (epochs completed so far).
    pub epoch: u64,
    /// Index of the next batch within the epoch.
    pub batch: u64,
    /// The shuffle stream's state at the start of the epoch.
    pub rng: u64,
    /// Examples, batch size and a hash of all keys, checked on resume.
    pub examples: u64,
    pub batch_size: u64,
    pub fingerprint: u64,
}

impl SamplerState {
    /// A one-line JSON object; 64-bit values are hex strings so no JSON
    /// reader rounds them through a double.
    pub fn to_json(&self) -> String {
        format!(
            "{{\"epoch\":{},\"batch\":{},\"rng\":\"{:016x}\",\"examples\":{},\"batch_size\":{},\
             \"fingerprint\":\"{:016x}\"}}",
            self.epoch, self.batch, self.rng, self.examples, self.batch_size, self.fingerprint
        )
    }

    /// Parses [`SamplerState::to_json`]'s output; a missing or mistyped
    /// field is an error naming it.
    pub fn from_json(text: &str) -> Result<SamplerState> {
        let v: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| invalid("sampler state", format!("not JSON: {e}")))?;
        let int = |k: &str| {
            v.get(k).and_then(serde_json::Value::as_u64).ok_or_else(|| {
                invalid("sampler state", format!("field {k:?}: expected an integer"))
            })
        };
        let hex = |k: &str| {
            v.get(k)
                .and_then(serde_json::Value::as_str)
                .and_then(|s| u64::from_str_radix(s, 16).ok())
                .ok_or_else(|| {
                    invalid("sampler state", format!("field {k:?}: expected hex digits"))
                })
        };
        Ok(SamplerState {
            epoch: int("epoch")?,
            batch: int("batch")?,
            rng: hex("rng")?,
            examples: int("examples")?,
            batch_size: int("batch_size")?,
            fingerprint: hex("fingerprint")?,
        })
    }
}

/// Shuffled, duplicate-free batches of example indices, epoch after epoch.
#[derive(Clone, Debug)]
pub struct BatchSampler {
    /// Distinct key hashes of each example.
    keys: Vec<Vec<u64>>,
    batch_size: usize,
    fingerprint: u64,
    epoch: u64,
    /// RNG state at the start of the current epoch, and after its shuffle.
    epoch_rng: u64,
    next_rng: u64,
    plan: Vec<Vec<usize>>,
    deferred: usize,
    next: usize,
}

impl BatchSampler {
    /// A sampler over training examples, keyed by their normalised query,
    /// positive and negatives.
    pub fn from_examples(
        examples: &[TrainingExample],
        batch_size: usize,
        seed: u64,
    ) -> Result<BatchSampler> {
        let keys = examples
            .iter()
            .map(|e| {
                std::iter::once(&e.query)
                    .chain(std::iter::once(&e.positive))
                    .chain(&e.negatives)
                    .map(|t| fnv1a(normalize_text(t).as_bytes(), FNV_OFFSET))
                    .collect()
            })
            .collect();
        BatchSampler::from_hashes(keys, batch_size, seed)
    }

    /// A sampler over examples given by their keys (ids or texts, compared
    /// exactly as given): two examples sharing any key never meet in a
    /// batch.
    pub fn from_keys<S: AsRef<str>>(
        keys: &[Vec<S>],
        batch_size: usize,
        seed: u64,
    ) -> Result<BatchSampler> {
        let keys = keys
            .iter()
            .map(|ks| ks.iter().map(|k| fnv1a(k.as_ref().as_bytes(), FNV_OFFSET)).collect())
            .collect();
        BatchSampler::from_hashes(keys, batch_size, seed)
    }

    fn from_hashes(mut keys: Vec<Vec<u64>>, batch_size: usize, seed: u64) -> Result<BatchSampler> {
        if batch_size == 0 {
            return Err(invalid("batch_size", "must be at least 1".into()));
        }
        if keys.is_empty() {
            return Err(invalid("examples", "no examples to sample".into()));
        }
        // Duplicates inside one example (query equal to its positive) do
        // not block it; the fingerprint covers every key in order.
        let mut fingerprint = fnv1a(&(batch_size as u64).to_le_bytes(), FNV_OFFSET);
        for ks in &mut keys {
            ks.sort_unstable();
            ks.dedup();
            fingerprint = fnv1a(&(ks.len() as u64).to_le_bytes(), fingerprint);
            for k in ks.iter() {
                fingerprint = fnv1a(&k.to_le_bytes(), fingerprint);
            }
        }
        let mut s = BatchSampler {
            keys,
            batch_size,
            fingerprint,
            epoch: 0,
            epoch_rng: seed,
            next_rng: seed,
            plan: Vec::new(),
            deferred: 0,
            next: 0,
        };
        s.plan_epoch();
        Ok(s)
    }

    /// The next batch of example indices. Handing out an epoch's last
    /// batch plans the next epoch with a fresh shuffle, so [`Self::epoch`]
    /// and [`Self::state`] always describe the batch to come.
    pub fn next_batch(&mut self) -> Vec<usize> {
        let batch = self.plan[self.next].clone();
        self.next += 1;
        if self.next == self.plan.len() {
            self.epoch += 1;
            self.epoch_rng = self.next_rng;
            self.plan_epoch();
        }
        batch
    }

    /// The epoch the next batch belongs to (epochs completed so far).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }
    /// Batches in the epoch of the next batch.
    pub fn batches_in_epoch(&self) -> usize {
        self.plan.len()
    }
    /// Examples of the next batch's epoch moved to a later batch than
    /// their shuffled position because of a duplicate key.
    pub fn deferred_in_epoch(&self) -> usize {
        self.deferred
    }
    /// Examples sampled from.
    pub fn len(&self) -> usize {
        self.keys.len()
    }
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Where the sampler stands (see [`SamplerState`]).
    pub fn state(&self) -> SamplerState {
        SamplerState {
            epoch: self.epoch,
            batch: self.next as u64,
            rng: self.epoch_rng,
            examples: self.keys.len() as u64,
            batch_size: self.batch_size as u64,
            fingerprint: self.fingerprint,
        }
    }

    /// Continues from a saved state. The data and batch size must be the
    /// ones the state was taken with.
    pub fn resume(&mut self, state: &SamplerState) -> Result<()> {
        if state.examples != self.keys.len() as u64
            || state.batch_size != self.batch_size as u64
            || state.fingerprint != self.fingerprint
        {
            return Err(invalid(
                "sampler state",
                format!(
                    "taken over {} examples in batches of {} (data hash {:016x}), \
                     resumed over {} in batches of {} ({:016x})",
                    state.examples,
                    state.batch_size,
                    state.fingerprint,
                    self.keys.len(),
                    self.batch_size,
                    self.fingerprint
                ),
            ));
        }
        self.epoch = state.epoch;
        self.epoch_rng = state.rng;
        self.plan_epoch();
        if state.batch >= self.plan.len() as u64 {
            return Err(invalid(
                "sampler state",
                format!("batch {} past the epoch's {} batches", state.batch, self.plan.len()),
            ));
        }
        self.next = state.batch as usize;
        Ok(())
    }

    /// Shuffles from `epoch_rng` and packs the epoch's batches.
    fn plan_epoch(&mut self) {
        let n = self.keys.len();
        let mut rng = self.epoch_rng;
        let mut order: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            order.swap(i, below(&mut rng, i + 1));
        }
        self.next_rng = rng;

        let mut plan = Vec::new();
        let mut waiting: VecDeque<usize> = VecDeque::new();
        let mut was_deferred = vec![false; n];
        let mut fresh = order.into_iter();
        let mut used: HashSet<u64> = HashSet::new();
        while plan.len() < n {
            used.clear();
            let mut batch = Vec::with_capacity(self.batch_size);
            // Deferred examples first, oldest first; those that still
            // collide keep their place in the queue.
            for _ in 0..waiting.len() {
                let e = waiting.pop_front().expect("counted");
                if batch.len() < self.batch_size && self.fits(e, &used) {
                    self.take(e, &mut used, &mut batch);
                } else {
                    waiting.push_back(e);
                }
            }
            // Then fresh examples in shuffled order.
            while batch.len() < self.batch_size {
                let Some(e) = fresh.next() else { break };
                if self.fits(e, &used) {
                    self.take(e, &mut used, &mut batch);
                } else {
                    was_deferred[e] = true;
                    waiting.push_back(e);
                }
            }
            if batch.is_empty() {
                break;
            }
            plan.push(batch);
        }
        debug_assert!(waiting.is_empty(), "the first waiting example always fits an empty batch");
        self.plan = plan;
        self.deferred = was_deferred.iter().filter(|&&d| d).count();
        self.next = 0;
    }

    fn fits(&self, e: usize, used: &HashSet<u64>) -> bool {
        self.keys[e].iter().all(|k| !used.contains(k))
    }

    fn take(&self, e: usize, used: &mut HashSet<u64>, batch: &mut Vec<usize>) {
        used.extend(self.keys[e].iter().copied());
        batch.push(e);
    }
}
