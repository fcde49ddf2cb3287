//! Bounded top-k selection for the fused scan + top-k kernels.
//!
//! A scan never materialises all N scores: it computes one block of
//! [`BLOCK`] scores into a stack buffer, then offers each to a max-heap of
//! the k best seen so far, which admits a score only when it beats the
//! heap's worst (one compare for almost every row once the heap is warm).
//! Rows are split into fixed chunks of [`CHUNK`] rows that rayon scans in
//! parallel, each into its own heap; the partial lists are merged by
//! sorting. The order is total, score key first and then the smaller id,
//! so the k best are unique and the result does not depend on the chunking
//! or the number of threads.

use rayon::prelude::*;
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::ops::Range;

/// Rows scored per block, into a stack buffer.
pub const BLOCK: usize = 256;
/// Rows per parallel task.
pub const CHUNK: usize = 1 << 15;

/// One result of a top-k search.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hit<S> {
    /// Row index in the scanned set.
    pub id: u32,
    /// The row's score (distance or similarity, per kernel).
    pub score: S,
}

/// Sort key of an f32 that orders like `f32::total_cmp`, with every NaN
/// mapped past all numbers.
#[inline]
pub fn f32_key(x: f32) -> u32 {
    if x.is_nan() {
        return u32::MAX;
    }
    let b = x.to_bits();
    if b >> 31 == 1 {
        !b
    } else {
        b | 0x8000_0000
    }
}

/// Key under which smaller f32 is better (distances); NaN ranks last.
#[inline]
pub fn f32_min_key(x: f32) -> u32 {
    f32_key(x)
}

/// Key under which larger f32 is better (similarities); NaN ranks last.
#[inline]
pub fn f32_max_key(x: f32) -> u32 {
    if x.is_nan() {
        u32::MAX
    } else {
        !f32_key(x)
    }
}

/// A heap entry ordered by (key, id): the heap's top is the worst kept.
#[derive(Clone, Copy)]
struct Entry<K, S> {
    key: K,
    id: u32,
    score: S,
}

impl<K: Ord, S> PartialEq for Entry<K, S> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl<K: Ord, S> Eq for Entry<K, S> {}
impl<K: Ord, S> PartialOrd for Entry<K, S> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<K: Ord, S> Ord for Entry<K, S> {
    fn cmp(&self, other: &Self) -> Ordering {
        (&self.key, self.id).cmp(&(&other.key, other.id))
    }
}

/// The k best (smallest key, then smallest id) of the rows offered.
pub(crate) struct TopK<K, S> {
    k: usize,
    heap: BinaryHeap<Entry<K, S>>,
}

impl<K: Ord + Copy, S: Copy> TopK<K, S> {
    pub(crate) fn new(k: usize) -> Self {
        TopK { k, heap: BinaryHeap::with_capacity(k.min(1 << 16) + 1) }
    }

    /// Offers rows `first..first + scores.len()` in increasing id order.
    #[inline]
    pub(crate) fn offer(&mut self, first: usize, scores: &[S], key: impl Fn(S) -> K) {
        if self.k == 0 {
            return;
        }
        for (t, &s) in scores.iter().enumerate() {
            let kk = key(s);
            if self.heap.len() < self.k {
                self.heap.push(Entry { key: kk, id: (first + t) as u32, score: s });
            } else if let Some(mut top) = self.heap.peek_mut() {
                // Ids only grow, so an equal key loses to the kept row.
                if kk < top.key {
                    *top = Entry { key: kk, id: (first + t) as u32, score: s };
                }
            }
        }
    }

    fn into_entries(self) -> Vec<Entry<K, S>> {
        self.heap.into_vec()
    }
}

/// Merges partial results: sorted best first, at most k.
fn merge<K: Ord + Copy, S: Copy>(parts: Vec<Vec<Entry<K, S>>>, k: usize) -> Vec<Hit<S>> {
    let mut all: Vec<Entry<K, S>> = parts.into_iter().flatten().collect();
    all.sort_unstable();
    all.truncate(k);
    all.into_iter().map(|e| Hit { id: e.id, score: e.score }).collect()
}

/// Top k of `n` rows whose scores `score(range, out)` writes block-wise.
pub(crate) fn scan_topk<S, K>(
    n: usize,
    k: usize,
    score: impl Fn(Range<usize>, &mut [S]) + Sync,
    key: impl Fn(S) -> K + Sync + Copy,
) -> Vec<Hit<S>>
where
    S: Copy + Default + Send,
    K: Ord + Copy + Send,
{
    if k == 0 || n == 0 {
        return Vec::new();
    }
    let chunks = n.div_ceil(CHUNK);
    let parts: Vec<Vec<Entry<K, S>>> = (0..chunks)
        .into_par_iter()
        .map(|c| {
            let (lo, hi) = (c * CHUNK, ((c + 1) * CHUNK).min(n));
            let mut top = TopK::new(k);
            let mut buf = [S::default(); BLOCK];
            let mut b = lo;
            while b < hi {
                let e = (b + BLOCK).min(hi);
                let out = &mut buf[..e - b];
                score(b..e, out);
                top.offer(b, out, key);
                b = e;
            }
            top.into_entries()
        })
        .collect();
    merge(parts, k)
}

/// Top k of `n` rows for each of `nq` queries; `score(range, out)` writes
/// the block's scores query-major (`out[q * range.len() + t]`).
pub(crate) fn scan_topk_batch<S, K>(
    nq: usize,
    n: usize,
    k: usize,
    score: impl Fn(Range<usize>, &mut [S]) + Sync,
    key: impl Fn(S) -> K + Sync + Copy,
) -> Vec<Vec<Hit<S>>>
where
    S: Copy + Default + Send,
    K: Ord + Copy + Send,
{
    if k == 0 || n == 0 {
        return vec![Vec::new(); nq];
    }
    let chunks = n.div_ceil(CHUNK);
    let parts: Vec<Vec<Vec<Entry<K, S>>>> = (0..chunks)
        .into_par_iter()
        .map(|c| {
            let (lo, hi) = (c * CHUNK, ((c + 1) * CHUNK).min(n));
            let mut tops: Vec<TopK<K, S>> = (0..nq).map(|_| TopK::new(k)).collect();
            let mut buf = vec![S::default(); nq * BLOCK];
            let mut b = lo;
            while b < hi {
                let e = (b + BLOCK).min(hi);
                let len = e - b;
                let out = &mut buf[..nq * len];
                score(b..e, out);
                for (q, top) in tops.iter_mut().enumerate() {
                    top.offer(b, &out[q * len..(q + 1) * len], key);
                }
                b = e;
            }
            tops.into_iter().map(TopK::into_entries).collect()
        })
        .collect();
    // Regroup per query, chunk order kept (the sort makes it irrelevant).
    let mut per_query: Vec<Vec<Vec<Entry<K, S>>>> = (0..nq).map(|_| Vec::new()).collect();
    for chunk in parts {
        for (q, e) in chunk.into_iter().enumerate() {
            per_query[q].push(e);
        }
    }
    per_query.into_iter().map(|p| merge(p, k)).collect()
}
