//! Re-mining with the model being trained.
//!
//! Negatives mined once by a teacher go stale as the student improves: the
//! passages it now confuses with the positive are different ones. A
//! [`DynamicMiner`] re-embeds the corpus with the current model, rebuilds
//! the search structure and mines again with the same rules as static
//! mining (window, known positives, margin, sampling), reporting the time
//! of each part so the training loop can log it.
//!
//! To overlap with training, [`DynamicMiner::start`] runs on its own
//! thread over a snapshot of the model: an owned [`Embedder`] built from a
//! copy of the parameters, so training can keep updating its own copy. The
//! negatives come back mined with the snapshot, a few steps old by the time
//! they are used, as in asynchronous index refreshes.
//!
//! The thread competes with training for cores (rayon's global pool is
//! shared); nothing here pins or limits it.

use std::sync::Arc;
use std::thread::JoinHandle;

use super::{
    mine_with_index, Corpus, DenseSearch, DenseTeacher, Mined, MiningError, MiningParams,
    MiningTimes, Result,
};
use crate::data::examples::TrainingExample;
use crate::embedder::Embedder;

/// Training queries, corpus and mining rules, ready to re-mine with any
/// embedder.
#[derive(Clone, Debug)]
pub struct DynamicMiner {
    examples: Arc<Vec<TrainingExample>>,
    corpus: Arc<Corpus>,
    params: MiningParams,
    /// Exact or HNSW search over the re-embedded corpus.
    pub search: DenseSearch,
    /// Texts per `embed` call.
    pub batch: usize,
}

impl DynamicMiner {
    /// Checks the parameters; exact search, batches of 64.
    pub fn new(
        examples: Arc<Vec<TrainingExample>>,
        corpus: Arc<Corpus>,
        params: MiningParams,
    ) -> Result<Self> {
        params.validate()?;
        if corpus.is_empty() {
            return Err(MiningError::EmptyCorpus);
        }
        Ok(DynamicMiner { examples, corpus, params, search: DenseSearch::Exact, batch: 64 })
    }

    /// The mining rules.
    pub fn params(&self) -> &MiningParams {
        &self.params
    }

    /// Re-mines now, on this thread, with `embedder`.
    pub fn mine<E: Embedder + ?Sized>(&self, embedder: &E) -> Result<Mined> {
        let teacher = DenseTeacher {
            embedder,
            name: "dynamic".into(),
            search: self.search.clone(),
            batch: self.batch,
        };
        let mut times = MiningTimes::default();
        let index = teacher.prepare(&self.corpus, &mut times)?;
        mine_with_index(&self.examples, &self.corpus, &index, &self.params, times)
    }

    /// Re-mines on a new thread with `snapshot`, which the thread owns.
    pub fn start<E: Embedder + 'static>(&self, snapshot: E) -> MiningHandle {
        let miner = self.clone();
        let handle = std::thread::spawn(move || miner.mine(&snapshot));
        MiningHandle { handle: Some(handle) }
    }
}

/// A re-mining run on a background thread.
#[derive(Debug)]
pub struct MiningHandle {
    handle: Option<JoinHandle<Result<Mined>>>,
}

impl MiningHandle {
    /// Whether the run has finished (its result is then ready for `poll`).
    pub fn is_finished(&self) -> bool {
        self.handle.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// The result if the run has finished, without waiting; `None` while
    /// it runs and after the result has been taken.
    pub fn poll(&mut self) -> Option<Result<Mined>> {
        if !self.handle.as_ref()?.is_finished() {
            return None;
        }
        self.handle.take().map(join)
    }

    /// Waits for the run and returns its result (an error if it was
    /// already taken by `poll`).
    pub fn join(mut self) -> Result<Mined> {
        match self.handle.take() {
            Some(h) => join(h),
            None => Err(MiningError::InvalidParams {
                field: "handle",
                reason: "the result was already taken by poll".into(),
            }),
        }
    }
}

fn join(h: JoinHandle<Result<Mined>>) -> Result<Mined> {
    h.join().map_err(|_| MiningError::WorkerPanicked)?
}
