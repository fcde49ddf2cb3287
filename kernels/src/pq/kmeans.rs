//! Seeded k-means (Lloyd iterations) for training product quantizers.
//!
//! Seeding is k-means++ (each new centre drawn with probability
//! proportional to the squared distance to the nearest centre chosen so
//! far). Each iteration assigns every point to its nearest centre (ties to
//! the smaller index), records the objective `sum_i |x_i - c_a(i)|^2`, and
//! moves each centre to the mean of its points. A centre left without
//! points is repaired by splitting the largest cluster: the point of that
//! cluster farthest from its centre becomes the new centre, which never
//! raises the objective (that point's cost drops at the next assignment).
//! A final assignment pairs the returned centres with their points.
//!
//! Determinism: the random stream is a SplitMix64 seeded by the caller; the
//! parallel steps work on fixed chunks of [`CHUNK`] points whose partial
//! sums are reduced in chunk order, so the result for a seed does not depend
//! on the number of rayon threads. It may differ between tiers, whose f32
//! distances round differently.
//!
//! Left out: sub-sampling of large training sets (the caller passes the
//! sample it wants) and early stopping on a tolerance (iterations stop only
//! when no assignment changes).

use super::PqError;
use crate::dispatch::{active, Tier};
use crate::search::l2sq_f32_raw;
use rayon::prelude::*;

/// Points per parallel task.
const CHUNK: usize = 2048;

/// A small deterministic random stream (SplitMix64).
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1) with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
    /// Uniform in 0..n (n > 0), by rejection so that it is unbiased.
    pub fn below(&mut self, n: usize) -> usize {
        let n = n as u64;
        let zone = u64::MAX - u64::MAX % n;
        loop {
            let x = self.next_u64();
            if x < zone {
                return (x % n) as usize;
            }
        }
    }
}

/// Settings of one k-means run.
#[derive(Clone, Copy, Debug)]
pub struct KMeansConfig {
    /// Number of centres.
    pub k: usize,
    /// Maximum Lloyd iterations (assign + update).
    pub iters: usize,
    /// Seed of the random stream.
    pub seed: u64,
}

/// The outcome of [`kmeans`].
#[derive(Clone, Debug)]
pub struct KMeans {
    /// `k x d` centres, row-major.
    pub centroids: Vec<f32>,
    /// The nearest centre of each point (for the returned centres).
    pub assign: Vec<u32>,
    /// The objective after each assignment step, the last one for the
    /// returned centres.
    pub objective: Vec<f64>,
}

/// Clusters the `n x d` points of `data` (row-major) into `cfg.k` groups.
pub fn kmeans(data: &[f32], d: usize, cfg: KMeansConfig) -> Result<KMeans, PqError> {
    kmeans_with(active(), data, d, cfg)
}

pub fn kmeans_with(
    tier: Tier,
    data: &[f32],
    d: usize,
    cfg: KMeansConfig,
) -> Result<KMeans, PqError> {
    if d == 0 {
        return Err(PqError::Invalid { what: "kmeans: dimension", reason: "must be positive" });
    }
    if !data.len().is_multiple_of(d) {
        return Err(PqError::Shape { what: "kmeans: data", len: data.len(), multiple_of: d });
    }
    if let Some(i) = data.iter().position(|x| !x.is_finite()) {
        return Err(PqError::NotFinite { what: "kmeans: data", index: i });
    }
    let n = data.len() / d;
    let k = cfg.k;
    if k == 0 || n < k {
        return Err(PqError::TooFewPoints { what: "kmeans", points: n, clusters: k });
    }
    let mut rng = SplitMix64::new(cfg.seed);
    let centroids = seed_plus_plus(tier, data, d, k, &mut rng);
    Ok(lloyd(tier, data, d, centroids, cfg.iters))
}

/// Runs up to `iters` Lloyd iterations from the given `k x d` centres
/// (`init.len() / d` of them) instead of a k-means++ seeding: used to
/// refine codebooks after the data moved a little (optimized PQ).
pub fn lloyd_from(
    tier: Tier,
    data: &[f32],
    d: usize,
    init: Vec<f32>,
    iters: usize,
) -> Result<KMeans, PqError> {
    if d == 0 {
        return Err(PqError::Invalid { what: "lloyd_from: dimension", reason: "must be positive" });
    }
    if !data.len().is_multiple_of(d) {
        return Err(PqError::Shape { what: "lloyd_from: data", len: data.len(), multiple_of: d });
    }
    if !init.len().is_multiple_of(d) {
        return Err(PqError::Shape { what: "lloyd_from: init", len: init.len(), multiple_of: d });
    }
    if let Some(i) = data.iter().position(|x| !x.is_finite()) {
        return Err(PqError::NotFinite { what: "lloyd_from: data", index: i });
    }
    if let Some(i) = init.iter().position(|x| !x.is_finite()) {
        return Err(PqError::NotFinite { what: "lloyd_from: init", index: i });
    }
    let (n, k) = (data.len() / d, init.len() / d);
    if k == 0 || n < k {
        return Err(PqError::TooFewPoints { what: "lloyd_from", points: n, clusters: k });
    }
    Ok(lloyd(tier, data, d, init, iters))
}

/// Lloyd iterations from `centroids` (module doc); inputs already checked.
fn lloyd(tier: Tier, data: &[f32], d: usize, mut centroids: Vec<f32>, iters: usize) -> KMeans {
    let (n, k) = (data.len() / d, centroids.len() / d);
    let mut assign = vec![0u32; n];
    let mut objective = Vec::with_capacity(iters + 1);

    for it in 0..iters {
        let (changed, obj) = assign_points(tier, data, d, &centroids, &mut assign);
        objective.push(obj);
        if it > 0 && changed == 0 {
            return KMeans { centroids, assign, objective };
        }
        update_means(data, d, k, &assign, &mut centroids);
        repair_empty(tier, data, d, k, &assign, &mut centroids);
    }
    let (_, obj) = assign_points(tier, data, d, &centroids, &mut assign);
    objective.push(obj);
    KMeans { centroids, assign, objective }
}

/// k-means++ seeding.
fn seed_plus_plus(tier: Tier, data: &[f32], d: usize, k: usize, rng: &mut SplitMix64) -> Vec<f32> {
    let n = data.len() / d;
    let mut centroids = Vec::with_capacity(k * d);
    let first = rng.below(n);
    centroids.extend_from_slice(&data[first * d..(first + 1) * d]);
    // best[i] = squared distance of point i to its nearest chosen centre.
    let mut best = vec![0f32; n];
    let mut dist = vec![0f32; n];
    nearest_update(tier, data, d, &centroids[..d], &mut best, &mut dist, true);
    for c in 1..k {
        // Draw proportional to best[i]; sums in f64, in index order.
        let total: f64 = best.iter().map(|&x| x as f64).sum();
        let pick = if total > 0.0 {
            let mut r = rng.next_f64() * total;
            let mut chosen = n - 1;
            for (i, &b) in best.iter().enumerate() {
                r -= b as f64;
                if r < 0.0 && b > 0.0 {
                    chosen = i;
                    break;
                }
            }
            chosen
        } else {
            // Every point already sits on a centre: any point will do.
            rng.below(n)
        };
        centroids.extend_from_slice(&data[pick * d..(pick + 1) * d]);
        let centre = &centroids[c * d..(c + 1) * d];
        nearest_update(tier, data, d, centre, &mut best, &mut dist, false);
    }
    centroids
}

/// `best[i] = min(best[i], |x_i - centre|^2)` (or `=` when `init`).
fn nearest_update(
    tier: Tier,
    data: &[f32],
    d: usize,
    centre: &[f32],
    best: &mut [f32],
    dist: &mut [f32],
    init: bool,
) {
    data.par_chunks(CHUNK * d)
        .zip(best.par_chunks_mut(CHUNK))
        .zip(dist.par_chunks_mut(CHUNK))
        .for_each(|((pts, b), dd)| {
            l2sq_f32_raw(tier, centre, pts, dd);
            for (bi, &di) in b.iter_mut().zip(dd.iter()) {
                if init || di < *bi {
                    *bi = di;
                }
            }
        });
}

/// Assigns every point to its nearest centre; returns how many points
/// changed centre and the objective (f64 sum of the f32 distances).
fn assign_points(
    tier: Tier,
    data: &[f32],
    d: usize,
    centroids: &[f32],
    assign: &mut [u32],
) -> (usize, f64) {
    let k = centroids.len() / d;
    let parts: Vec<(usize, f64)> = data
        .par_chunks(CHUNK * d)
        .zip(assign.par_chunks_mut(CHUNK))
        .map(|(pts, a)| {
            let mut dist = vec![0f32; k];
            let (mut changed, mut obj) = (0usize, 0f64);
            for (x, ai) in pts.chunks_exact(d).zip(a.iter_mut()) {
                l2sq_f32_raw(tier, x, centroids, &mut dist);
                let (c, dc) = argmin(&dist);
                if *ai != c as u32 {
                    changed += 1;
                    *ai = c as u32;
                }
                obj += dc as f64;
            }
            (changed, obj)
        })
        .collect();
    parts.iter().fold((0, 0.0), |(c, o), &(pc, po)| (c + pc, o + po))
}

/// Index and value of the smallest entry, the first one on ties.
pub(crate) fn argmin(x: &[f32]) -> (usize, f32) {
    let mut best = (0, x[0]);
    for (i, &v) in x.iter().enumerate().skip(1) {
        if v < best.1 {
            best = (i, v);
        }
    }
    best
}

/// Moves each non-empty centre to the mean of its points (sums in f64).
fn update_means(data: &[f32], d: usize, k: usize, assign: &[u32], centroids: &mut [f32]) {
    let parts: Vec<(Vec<f64>, Vec<usize>)> = data
        .par_chunks(CHUNK * d)
        .zip(assign.par_chunks(CHUNK))
        .map(|(pts, a)| {
            let mut sum = vec![0f64; k * d];
            let mut count = vec![0usize; k];
            for (x, &c) in pts.chunks_exact(d).zip(a) {
                let c = c as usize;
                count[c] += 1;
                for (s, &v) in sum[c * d..(c + 1) * d].iter_mut().zip(x) {
                    *s += v as f64;
                }
            }
            (sum, count)
        })
        .collect();
    let mut sum = vec![0f64; k * d];
    let mut count = vec![0usize; k];
    for (ps, pc) in parts {
        sum.iter_mut().zip(&ps).for_each(|(s, p)| *s += p);
        count.iter_mut().zip(&pc).for_each(|(c, p)| *c += p);
    }
    for c in 0..k {
        if count[c] > 0 {
            let inv = 1.0 / count[c] as f64;
            for (dst, s) in centroids[c * d..(c + 1) * d].iter_mut().zip(&sum[c * d..(c + 1) * d]) {
                *dst = (s * inv) as f32;
            }
        }
    }
}

/// Gives every empty centre the farthest point of the currently largest
/// cluster (ties: the smaller cluster index, then the smaller point index).
fn repair_empty(
    tier: Tier,
    data: &[f32],
    d: usize,
    k: usize,
    assign: &[u32],
    centroids: &mut [f32],
) {
    let mut count = vec![0usize; k];
    for &a in assign {
        count[a as usize] += 1;
    }
    if !count.contains(&0) {
        return;
    }
    let mut owner: Vec<u32> = assign.to_vec();
    let mut one = [0f32];
    for empty in 0..k {
        if count[empty] != 0 {
            continue;
        }
        let (big, _) =
            count.iter().enumerate().fold((0, 0), |b, (c, &n)| if n > b.1 { (c, n) } else { b });
        if count[big] < 2 {
            // Fewer distinct points than centres: nothing left to split.
            return;
        }
        let centre = centroids[big * d..(big + 1) * d].to_vec();
        let mut far = (usize::MAX, -1f32);
        for (i, x) in data.chunks_exact(d).enumerate() {
            if owner[i] as usize == big {
                l2sq_f32_raw(tier, &centre, x, &mut one);
                if one[0] > far.1 {
                    far = (i, one[0]);
                }
            }
        }
        let p = far.0;
        centroids[empty * d..(empty + 1) * d].copy_from_slice(&data[p * d..(p + 1) * d]);
        owner[p] = empty as u32;
        count[big] -= 1;
        count[empty] = 1;
    }
}
