//! Product quantization: k-means training, encoding, asymmetric distance
//! tables, the 8-bit code scan and the 4-bit fast-scan.
//!
//! A vector of dimension `d` is cut into `m` sub-vectors of `dsub = d / m`
//! values; sub-quantizer `j` owns `ksub` centroids (256 for 8-bit codes, 16
//! for 4-bit) learnt by [`kmeans`] on sub-vector `j` of the training set. A
//! code is the index of the nearest centroid per sub-quantizer, one byte per
//! sub-quantizer (`codes[i * m + j]`), whatever `nbits` is.
//!
//! Search is asymmetric (ADC): the query stays in f32 and, per query, a
//! table `T[j * ksub + c]` holds `|q_j - C_jc|^2` (L2) or `q_j . C_jc`
//! (inner product); the approximate score of a code is `sum_j T[j][code_j]`
//! ([`adc_scan`]). The 4-bit path packs codes for SIMD table lookups, see
//! [`fastscan`] for its layout.
//!
//! Optimized PQ ([`opq`]) learns an orthogonal rotation applied before
//! the vector is cut, jointly with the codebooks.

pub mod fastscan;
pub mod kmeans;
pub mod opq;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "aarch64")]
mod neon;

use crate::dispatch::{active, Tier};
use crate::search::l2sq_f32_raw;
use crate::search::topk::{self, Hit};
use kmeans::argmin;
pub use kmeans::{kmeans, kmeans_with, KMeans, KMeansConfig};
use rayon::prelude::*;
use std::fmt;

/// Why a quantization routine rejected its arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PqError {
    /// A flat buffer whose length is not a multiple of the row width.
    Shape { what: &'static str, len: usize, multiple_of: usize },
    /// A buffer of the wrong length.
    Mismatch { what: &'static str, expected: usize, found: usize },
    /// A NaN or infinite input value at this flat index.
    NotFinite { what: &'static str, index: usize },
    /// Fewer training points than centroids.
    TooFewPoints { what: &'static str, points: usize, clusters: usize },
    /// A parameter outside what the routine supports.
    Invalid { what: &'static str, reason: &'static str },
    /// A code byte not below the number of centroids.
    CodeOutOfRange { what: &'static str, index: usize, code: u8, ksub: usize },
}

impl fmt::Display for PqError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PqError::Shape { what, len, multiple_of } => {
                write!(f, "{what}: length {len} is not a multiple of {multiple_of}")
            }
            PqError::Mismatch { what, expected, found } => {
                write!(f, "{what}: expected length {expected}, found {found}")
            }
            PqError::NotFinite { what, index } => {
                write!(f, "{what}: value at index {index} is not finite")
            }
            PqError::TooFewPoints { what, points, clusters } => {
                write!(f, "{what}: {points} points cannot make {clusters} clusters")
            }
            PqError::Invalid { what, reason } => write!(f, "{what}: {reason}"),
            PqError::CodeOutOfRange { what, index, code, ksub } => {
                write!(f, "{what}: code {code} at index {index} is not below {ksub}")
            }
        }
    }
}

impl std::error::Error for PqError {}

/// How ADC scores compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// Squared L2 distance: smaller is better.
    L2,
    /// Inner product: larger is better.
    InnerProduct,
}

/// Training settings.
#[derive(Clone, Copy, Debug)]
pub struct TrainConfig {
    /// Lloyd iterations per sub-quantizer.
    pub iters: usize,
    /// Seed; sub-quantizer `j` uses a seed derived from it and `j`.
    pub seed: u64,
}

/// A trained product quantizer.
#[derive(Clone, Debug)]
pub struct ProductQuantizer {
    d: usize,
    m: usize,
    nbits: u32,
    /// `m x ksub x dsub` centroids.
    centroids: Vec<f32>,
}

impl ProductQuantizer {
    /// Trains `m` sub-quantizers of `2^nbits` centroids (`nbits` 4 or 8) on
    /// the `n x d` rows of `data`; needs `d % m == 0` and `n >= 2^nbits`.
    pub fn train(
        data: &[f32],
        d: usize,
        m: usize,
        nbits: u32,
        cfg: TrainConfig,
    ) -> Result<Self, PqError> {
        Self::train_with(active(), data, d, m, nbits, cfg)
    }

    pub fn train_with(
        tier: Tier,
        data: &[f32],
        d: usize,
        m: usize,
        nbits: u32,
        cfg: TrainConfig,
    ) -> Result<Self, PqError> {
        if nbits != 4 && nbits != 8 {
            return Err(PqError::Invalid { what: "pq train: nbits", reason: "must be 4 or 8" });
        }
        if m == 0 || d == 0 || !d.is_multiple_of(m) {
            let reason = "d and m must be positive with d a multiple of m";
            return Err(PqError::Invalid { what: "pq train: m", reason });
        }
        if !data.len().is_multiple_of(d) {
            return Err(PqError::Shape { what: "pq train: data", len: data.len(), multiple_of: d });
        }
        let n = data.len() / d;
        let (ksub, dsub) = (1usize << nbits, d / m);
        let mut centroids = Vec::with_capacity(m * ksub * dsub);
        let mut sub = vec![0f32; n * dsub];
        for j in 0..m {
            // Gather sub-vector j of every row.
            for (dst, row) in sub.chunks_exact_mut(dsub).zip(data.chunks_exact(d)) {
                dst.copy_from_slice(&row[j * dsub..(j + 1) * dsub]);
            }
            let seed = cfg.seed ^ (j as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let kc = KMeansConfig { k: ksub, iters: cfg.iters, seed };
            let km = kmeans_with(tier, &sub, dsub, kc)?;
            centroids.extend_from_slice(&km.centroids);
        }
        Ok(ProductQuantizer { d, m, nbits, centroids })
    }

    /// Builds a quantizer from given `m x 2^nbits x (d / m)` centroids.
    pub fn from_centroids(
        d: usize,
        m: usize,
        nbits: u32,
        centroids: Vec<f32>,
    ) -> Result<Self, PqError> {
        if (nbits != 4 && nbits != 8) || m == 0 || d == 0 || !d.is_multiple_of(m) {
            let reason = "needs nbits 4 or 8 and d a positive multiple of m";
            return Err(PqError::Invalid { what: "pq from_centroids", reason });
        }
        let expected = d << nbits;
        if centroids.len() != expected {
            let what = "pq from_centroids: centroids";
            return Err(PqError::Mismatch { what, expected, found: centroids.len() });
        }
        Ok(ProductQuantizer { d, m, nbits, centroids })
    }

    pub fn dim(&self) -> usize {
        self.d
    }
    pub fn m(&self) -> usize {
        self.m
    }
    pub fn nbits(&self) -> u32 {
        self.nbits
    }
    /// Centroids per sub-quantizer.
    pub fn ksub(&self) -> usize {
        1 << self.nbits
    }
    pub fn dsub(&self) -> usize {
        self.d / self.m
    }
    /// `m x ksub x dsub` centroids, row-major.
    pub fn centroids(&self) -> &[f32] {
        &self.centroids
    }

    /// Encodes the `n x d` rows of `data` into `codes` (`n x m` bytes).
    pub fn encode(&self, data: &[f32], codes: &mut [u8]) -> Result<(), PqError> {
        self.encode_with(active(), data, codes)
    }

    pub fn encode_with(&self, tier: Tier, data: &[f32], codes: &mut [u8]) -> Result<(), PqError> {
        let (d, m, ksub, dsub) = (self.d, self.m, self.ksub(), self.dsub());
        if !data.len().is_multiple_of(d) {
            return Err(PqError::Shape {
                what: "pq encode: data",
                len: data.len(),
                multiple_of: d,
            });
        }
        let n = data.len() / d;
        if codes.len() != n * m {
            let what = "pq encode: codes";
            return Err(PqError::Mismatch { what, expected: n * m, found: codes.len() });
        }
        if let Some(i) = data.iter().position(|x| !x.is_finite()) {
            return Err(PqError::NotFinite { what: "pq encode: data", index: i });
        }
        data.par_chunks(d).zip(codes.par_chunks_mut(m)).for_each_init(
            || vec![0f32; ksub],
            |dist, (x, code)| {
                for (j, c) in code.iter_mut().enumerate() {
                    let cents = &self.centroids[j * ksub * dsub..(j + 1) * ksub * dsub];
                    l2sq_f32_raw(tier, &x[j * dsub..(j + 1) * dsub], cents, dist);
                    *c = argmin(dist).0 as u8;
                }
            },
        );
        Ok(())
    }

    /// Reconstructs the `n x m` codes into `out` (`n x d`): sub-vector `j`
    /// of row `i` becomes centroid `codes[i * m + j]` of sub-quantizer `j`.
    pub fn decode(&self, codes: &[u8], out: &mut [f32]) -> Result<(), PqError> {
        let (d, m, ksub, dsub) = (self.d, self.m, self.ksub(), self.dsub());
        if !codes.len().is_multiple_of(m) {
            let what = "pq decode: codes";
            return Err(PqError::Shape { what, len: codes.len(), multiple_of: m });
        }
        let n = codes.len() / m;
        if out.len() != n * d {
            let what = "pq decode: out";
            return Err(PqError::Mismatch { what, expected: n * d, found: out.len() });
        }
        if let Some(i) = codes.iter().position(|&c| c as usize >= ksub) {
            let what = "pq decode: codes";
            return Err(PqError::CodeOutOfRange { what, index: i, code: codes[i], ksub });
        }
        for (code, row) in codes.chunks_exact(m).zip(out.chunks_exact_mut(d)) {
            for (j, (&c, dst)) in code.iter().zip(row.chunks_exact_mut(dsub)).enumerate() {
                let at = (j * ksub + c as usize) * dsub;
                dst.copy_from_slice(&self.centroids[at..at + dsub]);
            }
        }
        Ok(())
    }

    /// Writes the ADC table of `query` for `metric` into `table`
    /// (`m x ksub`): `|q_j - C_jc|^2` or `q_j . C_jc`.
    pub fn distance_table(
        &self,
        query: &[f32],
        metric: Metric,
        table: &mut [f32],
    ) -> Result<(), PqError> {
        self.distance_table_with(active(), query, metric, table)
    }

    pub fn distance_table_with(
        &self,
        tier: Tier,
        query: &[f32],
        metric: Metric,
        table: &mut [f32],
    ) -> Result<(), PqError> {
        let (m, ksub, dsub) = (self.m, self.ksub(), self.dsub());
        if query.len() != self.d {
            let what = "pq distance_table: query";
            return Err(PqError::Mismatch { what, expected: self.d, found: query.len() });
        }
        if table.len() != m * ksub {
            let what = "pq distance_table: table";
            return Err(PqError::Mismatch { what, expected: m * ksub, found: table.len() });
        }
        for (j, t) in table.chunks_exact_mut(ksub).enumerate() {
            let cents = &self.centroids[j * ksub * dsub..(j + 1) * ksub * dsub];
            let q = &query[j * dsub..(j + 1) * dsub];
            match metric {
                Metric::L2 => l2sq_f32_raw(tier, q, cents, t),
                Metric::InnerProduct => crate::search::dot_f32_raw(tier, q, cents, t),
            }
        }
        Ok(())
    }
}

/// Checks an ADC table and codes; returns the number of codes.
fn check_adc(
    what: &'static str,
    table: &[f32],
    m: usize,
    ksub: usize,
    codes: &[u8],
) -> Result<usize, PqError> {
    if m == 0 || ksub == 0 || ksub > 256 {
        return Err(PqError::Invalid { what, reason: "m must be positive and ksub in 1..=256" });
    }
    if table.len() != m * ksub {
        return Err(PqError::Mismatch { what, expected: m * ksub, found: table.len() });
    }
    if !codes.len().is_multiple_of(m) {
        return Err(PqError::Shape { what, len: codes.len(), multiple_of: m });
    }
    if ksub < 256 {
        if let Some(i) = codes.iter().position(|&c| c as usize >= ksub) {
            return Err(PqError::CodeOutOfRange { what, index: i, code: codes[i], ksub });
        }
    }
    if codes.len() / m > u32::MAX as usize {
        return Err(PqError::Invalid { what, reason: "more codes than u32 ids" });
    }
    Ok(codes.len() / m)
}

/// One code's ADC score, summed in sub-quantizer order.
#[inline(always)]
fn adc_one(table: &[f32], ksub: usize, code: &[u8]) -> f32 {
    let mut s = 0f32;
    for (j, &c) in code.iter().enumerate() {
        s += table[j * ksub + c as usize];
    }
    s
}

/// ADC scan: `out[i] = sum_j table[j * ksub + codes[i * m + j]]`.
///
/// One path for every tier: each step is a dependent table lookup, and a
/// gather-based version has not been written or measured, so none is
/// claimed to be faster.
pub fn adc_scan(
    table: &[f32],
    m: usize,
    ksub: usize,
    codes: &[u8],
    out: &mut [f32],
) -> Result<(), PqError> {
    let n = check_adc("adc_scan", table, m, ksub, codes)?;
    if out.len() != n {
        return Err(PqError::Mismatch { what: "adc_scan: out", expected: n, found: out.len() });
    }
    for (code, o) in codes.chunks_exact(m).zip(out.iter_mut()) {
        *o = adc_one(table, ksub, code);
    }
    Ok(())
}

/// Fused ADC scan + top-k over `m`-byte codes: the k best codes, best
/// first (smallest for L2, largest for inner product), ties to the
/// smaller id.
pub fn adc_topk(
    table: &[f32],
    m: usize,
    ksub: usize,
    codes: &[u8],
    metric: Metric,
    k: usize,
) -> Result<Vec<Hit<f32>>, PqError> {
    let n = check_adc("adc_topk", table, m, ksub, codes)?;
    let score = |r: std::ops::Range<usize>, out: &mut [f32]| {
        for (code, o) in codes[r.start * m..r.end * m].chunks_exact(m).zip(out.iter_mut()) {
            *o = adc_one(table, ksub, code);
        }
    };
    Ok(match metric {
        Metric::L2 => topk::scan_topk(n, k, score, topk::f32_min_key),
        Metric::InnerProduct => topk::scan_topk(n, k, score, topk::f32_max_key),
    })
}
