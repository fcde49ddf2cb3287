//! Which training examples form each batch: seeded epoch shuffles, with a
//! state small enough to checkpoint.
//!
//! Each epoch is a fresh permutation of the example indices from the
//! sampler's own generator; batches are consecutive runs of it, and the
//! last partial batch of an epoch is dropped (a short batch has fewer
//! in-batch negatives, so its loss is not comparable). An example whose
//! positive text is already in the batch is deferred to the next batch
//! instead of joining this one, since a repeated positive would be scored
//! as its own negative; deferred examples keep their place at the front.
//!
//! The state (epoch, the current order, the position in it, the
//! generator) serialises as JSON into checkpoints, so a resumed run draws
//! exactly the batches an uninterrupted one would.

use std::collections::{HashSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::data::examples::TrainingExample;
use crate::error::{Result, TrainerError};
use crate::rng::Rng;

/// Epoch-shuffling batch sampler over `n` examples.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochSampler {
    batch: usize,
    n: usize,
    epoch: u64,
    order: Vec<u32>,
    pos: usize,
    /// Examples put off from an earlier batch for a repeated positive.
    deferred: VecDeque<u32>,
    rng: Rng,
}

impl EpochSampler {
    /// A sampler of batches of `batch` examples out of `n`.
    pub fn new(n: usize, batch: usize, seed: u64) -> Result<EpochSampler> {
        if batch == 0 || n < batch {
            return Err(TrainerError::InvalidArgument {
                name: "train.batch_size",
                reason: format!("{batch} with {n} training examples (need 1..=examples)"),
            });
        }
        let mut s = EpochSampler {
            batch,
            n,
            epoch: 0,
            order: Vec::new(),
            pos: 0,
            deferred: VecDeque::new(),
            rng: Rng::new(seed, 0x5A3),
        };
        s.reshuffle();
        Ok(s)
    }

    /// Full batches per epoch.
    pub fn batches_per_epoch(&self) -> usize {
        self.n / self.batch
    }

    /// The epoch the next batch comes from (0-based).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    fn reshuffle(&mut self) {
        self.order = (0..self.n as u32).collect();
        self.rng.shuffle(&mut self.order);
        self.pos = 0;
    }

    /// The next batch of example indices, with distinct positive texts
    /// where the data allows.
    pub fn next_batch(&mut self, examples: &[TrainingExample]) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.batch);
        let mut seen: HashSet<&str> = HashSet::with_capacity(self.batch);
        let mut put_off = VecDeque::new();
        // Deferred examples first, then the epoch order; an epoch ends when
        // fewer than a batch of its order remains.
        while out.len() < self.batch {
            let next = match self.deferred.pop_front() {
                Some(i) => i,
                None => {
                    if self.pos + (self.batch - out.len()) > self.order.len() {
                        self.epoch += 1;
                        self.reshuffle();
                    }
                    let i = self.order[self.pos];
                    self.pos += 1;
                    i
                }
            };
            let text = examples[next as usize].positive.as_str();
            // Give up on deferring after a batch's worth, so data made of
            // one repeated passage still yields batches.
            if seen.insert(text) || put_off.len() >= self.batch {
                out.push(next as usize);
            } else {
                put_off.push_back(next);
            }
        }
        put_off.extend(self.deferred.drain(..));
        self.deferred = put_off;
        out
    }

    /// The state as JSON, for a checkpoint.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("plain fields always serialise")
    }

    /// A sampler from checkpointed JSON, checked against the data.
    pub fn from_json(v: &serde_json::Value, n: usize, batch: usize) -> Result<EpochSampler> {
        let s: EpochSampler = serde_json::from_value(v.clone()).map_err(|e| {
            TrainerError::InvalidArgument { name: "checkpoint sampler", reason: e.to_string() }
        })?;
        if s.n != n || s.batch != batch || s.order.len() != n || s.pos > n {
            return Err(TrainerError::InvalidArgument {
                name: "checkpoint sampler",
                reason: format!(
                    "saved for {} examples in batches of {}, the run has {n} and {batch}",
                    s.n, s.batch
                ),
            });
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(p: &str) -> TrainingExample {
        TrainingExample {
            query: format!("q {p}"),
            positive: p.into(),
            negatives: vec![],
            scores: None,
        }
    }

    #[test]
    fn epochs_cover_every_example_and_batches_avoid_repeated_positives() {
        let data: Vec<_> = (0..10).map(|i| ex(&format!("p{}", i % 7))).collect();
        let mut s = EpochSampler::new(data.len(), 4, 3).unwrap();
        let mut seen = vec![0; 10];
        for _ in 0..20 {
            let b = s.next_batch(&data);
            assert_eq!(b.len(), 4);
            let texts: HashSet<_> = b.iter().map(|&i| &data[i].positive).collect();
            assert_eq!(texts.len(), 4, "repeated positive in {b:?}");
            b.iter().for_each(|&i| seen[i] += 1);
        }
        assert!(seen.iter().all(|&c| c > 0), "{seen:?}");
    }

    #[test]
    fn state_round_trips_through_json() {
        let data: Vec<_> = (0..9).map(|i| ex(&format!("p{i}"))).collect();
        let mut a = EpochSampler::new(9, 3, 1).unwrap();
        a.next_batch(&data);
        let mut b = EpochSampler::from_json(&a.to_json(), 9, 3).unwrap();
        for _ in 0..7 {
            assert_eq!(a.next_batch(&data), b.next_batch(&data));
        }
        assert!(EpochSampler::from_json(&a.to_json(), 8, 3).is_err());
    }
}
