//! The runtime context: a thread count and the rayon pool that honours it.
//!
//! Every op runs inside [`Runtime::install`], so `par_iter` calls inside
//! ops use this pool and never rayon's global one; nested installs from a
//! worker of the same pool run inline. With one thread the pool has a single
//! worker and every parallel loop runs in order. Parallel loops split work
//! into chunks whose size does not depend on the thread count and never
//! reduce across chunks in a thread-dependent order, so results are
//! bit-identical for a fixed seed whatever the thread count (the tests pin
//! the weaker promise of identical results for the same count).

use std::sync::Arc;

use crate::error::{Error, Result};

/// A shared handle to a thread pool of a chosen size.
#[derive(Clone)]
pub struct Runtime {
    pool: Arc<rayon::ThreadPool>,
    threads: usize,
}

impl Runtime {
    /// A runtime with `threads` workers (at least 1).
    pub fn new(threads: usize) -> Result<Runtime> {
        if threads == 0 {
            return Err(Error::InvalidArgument {
                op: "runtime",
                what: "thread count must be at least 1".into(),
            });
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("edgecl-{i}"))
            .build()
            .map_err(|e| Error::InvalidArgument { op: "runtime", what: e.to_string() })?;
        Ok(Runtime { pool: Arc::new(pool), threads })
    }

    /// A runtime with one worker per available core.
    pub fn with_available_parallelism() -> Result<Runtime> {
        Runtime::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `f` on this runtime's pool.
    pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        self.pool.install(f)
    }
}
