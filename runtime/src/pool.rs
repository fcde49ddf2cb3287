//! A pool of f32 buffers so a training step allocates nothing once warm.
//!
//! Every activation, saved statistic and gradient on the tape comes from
//! here and goes back when the tape is cleared. A request takes the free
//! buffer with the smallest capacity that fits (best fit), so steps with the
//! same shapes reuse the same buffers; a buffer is only created when none
//! fits. Buffers are handed out as `Arc<Vec<f32>>` so a tape value can be
//! shared with views without another allocation; one that is still shared
//! when returned (a caller kept a view) is simply dropped, not reused.

use std::sync::Arc;

/// Free f32 buffers, reused by best fit.
#[derive(Default)]
pub struct BufferPool {
    free: Vec<Arc<Vec<f32>>>,
    created: usize,
}

impl BufferPool {
    pub fn new() -> BufferPool {
        BufferPool::default()
    }

    /// A buffer of `len` elements whose contents are unspecified (old data
    /// of a reused buffer, zeros for a new one); callers overwrite it.
    pub fn take(&mut self, len: usize) -> Arc<Vec<f32>> {
        // Best fit: the smallest free capacity that holds `len`.
        let mut best: Option<(usize, usize)> = None;
        for (i, b) in self.free.iter().enumerate() {
            let cap = b.capacity();
            if cap >= len && best.is_none_or(|(_, c)| cap < c) {
                best = Some((i, cap));
            }
        }
        match best {
            Some((i, _)) => {
                let mut buf = self.free.swap_remove(i);
                let v = Arc::get_mut(&mut buf).expect("pooled buffers are uniquely owned");
                // Within capacity: neither call allocates.
                v.truncate(len);
                v.resize(len, 0.0);
                buf
            }
            None => {
                self.created += 1;
                Arc::new(vec![0.0; len])
            }
        }
    }

    /// A buffer of `len` zeros.
    pub fn take_zeroed(&mut self, len: usize) -> Arc<Vec<f32>> {
        let mut buf = self.take(len);
        Arc::get_mut(&mut buf).expect("fresh from the pool").fill(0.0);
        buf
    }

    /// Returns a buffer; a still-shared one is dropped instead.
    pub fn give(&mut self, mut buf: Arc<Vec<f32>>) {
        if Arc::get_mut(&mut buf).is_some() {
            self.free.push(buf);
        }
    }

    /// Buffers created since the pool was made (a warm pool stops growing).
    pub fn created(&self) -> usize {
        self.created
    }
    /// Buffers waiting for reuse.
    pub fn free_count(&self) -> usize {
        self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_best_fit() {
        let mut p = BufferPool::new();
        let a = p.take(10);
        let b = p.take(100);
        assert_eq!(p.created(), 2);
        p.give(a);
        p.give(b);
        let c = p.take(50);
        assert_eq!(c.len(), 50);
        assert!(c.capacity() >= 100);
        let d = p.take_zeroed(5);
        assert!(d.iter().all(|&x| x == 0.0));
        assert_eq!(p.created(), 2);
        // A shared buffer is not taken back.
        let keep = c.clone();
        p.give(c);
        assert_eq!(p.free_count(), 0);
        drop(keep);
    }
}
