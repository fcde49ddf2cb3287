//! Kernels behind on-device search: Hamming distance over packed binary
//! codes, one-to-many int8 and f32 scans (dot product and squared L2), a
//! gather variant that rescores a shortlist, and fused scan + top-k.
//!
//! Layouts: a binary code is `words` u64 (any `words >= 1`; 2, 4, 8, 16 for
//! 128..1024 bits are typical), N codes back to back. Dense rows are
//! row-major, `rows[i * d..(i + 1) * d]`. Scores: Hamming as u32, int8 dot
//! as i32, int8 squared L2 as u32, f32 both as f32. int8 dimensions are
//! capped at [`MAX_I8_DIM`] so that no i32 sum can overflow.
//!
//! Each kernel `foo` runs the process tier ([`active`]); `foo_with(tier,
//! ..)` a given one; [`scalar`] holds the references. Batched Hamming walks
//! the codes in blocks that stay in L1 and runs every query of the batch
//! over each block, so each code is fetched from memory once per batch.
//!
//! Top-k ([`topk`]): smaller is better for Hamming and L2, larger for dot;
//! ties go to the smaller id; NaN scores rank last; results come best
//! first. The f32 tiers sum in different orders, so their scores differ
//! from the scalar reference by rounding, and a top-k near a tie may pick
//! differently across tiers (never across thread counts).
//!
//! Left out: float16/bfloat16 rows, and cosine (normalise rows and use dot).

pub mod scalar;
pub mod topk;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "aarch64")]
mod neon;

use crate::dispatch::{active, Feature, Isa, Tier};
use crate::mat::ShapeError;
use std::cmp::Reverse;
use std::fmt;
pub use topk::Hit;

/// Largest int8 dimension: `d * 255^2` must fit an i32 (L2), which also
/// bounds the dot's `d * 128^2`.
pub const MAX_I8_DIM: usize = 1 << 15;

/// Codes per block of the batched Hamming scan are chosen so one block of
/// codes is about this many u64 words (16 KiB, well inside L1).
const BATCH_BLOCK_WORDS: usize = 2048;

/// Why a search kernel rejected its arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SearchError {
    /// Lengths that do not agree (a shape error).
    Shape(ShapeError),
    /// A query or code of zero length.
    Empty { what: &'static str },
    /// An int8 dimension above [`MAX_I8_DIM`].
    DimTooLarge { what: &'static str, dim: usize, max: usize },
    /// A shortlist id past the last row.
    IdOutOfRange { what: &'static str, id: u32, rows: usize },
    /// More rows than a u32 id can name.
    TooManyRows { what: &'static str, rows: usize },
}

impl fmt::Display for SearchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SearchError::Shape(e) => e.fmt(f),
            SearchError::Empty { what } => write!(f, "{what}: zero length"),
            SearchError::DimTooLarge { what, dim, max } => {
                write!(f, "{what}: dimension {dim} exceeds the int8 limit {max}")
            }
            SearchError::IdOutOfRange { what, id, rows } => {
                write!(f, "{what}: id {id} is out of range for {rows} rows")
            }
            SearchError::TooManyRows { what, rows } => {
                write!(f, "{what}: {rows} rows exceed the u32 id range")
            }
        }
    }
}

impl std::error::Error for SearchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SearchError::Shape(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ShapeError> for SearchError {
    fn from(e: ShapeError) -> Self {
        SearchError::Shape(e)
    }
}

/// Checks `flat.len() == rows * width` with `width > 0`.
fn check_rows(
    what: &'static str,
    width: usize,
    flat: usize,
    rows: usize,
) -> Result<(), SearchError> {
    if width == 0 {
        return Err(SearchError::Empty { what });
    }
    let expected = rows.checked_mul(width).ok_or(ShapeError::Overflow { what })?;
    if flat != expected {
        return Err(ShapeError::Mismatch { what, expected, found: flat }.into());
    }
    Ok(())
}

/// The number of `width`-wide rows in `flat`, which must divide evenly.
fn count_rows(what: &'static str, width: usize, flat: usize) -> Result<usize, SearchError> {
    if width == 0 {
        return Err(SearchError::Empty { what });
    }
    if !flat.is_multiple_of(width) {
        let expected = flat / width * width;
        return Err(ShapeError::Mismatch { what, expected, found: flat }.into());
    }
    let n = flat / width;
    if n > u32::MAX as usize {
        return Err(SearchError::TooManyRows { what, rows: n });
    }
    Ok(n)
}

fn check_i8_dim(what: &'static str, d: usize) -> Result<(), SearchError> {
    if d > MAX_I8_DIM {
        return Err(SearchError::DimTooLarge { what, dim: d, max: MAX_I8_DIM });
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Per-tier dispatch of the unchecked kernels (shapes already validated).

fn hamming_raw(tier: Tier, query: &[u64], codes: &[u64], out: &mut [u32]) {
    match tier.isa() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the tier proves AVX-512 with VPOPCNTDQ; shapes checked.
        Isa::Avx512 if tier.has(Feature::Avx512Vpopcntdq) => unsafe {
            avx512::hamming(query, codes, out)
        },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: both x86 tiers include AVX2 and POPCNT; shapes checked.
        Isa::Avx2 | Isa::Avx512 => unsafe { avx2::hamming(query, codes, out) },
        #[cfg(target_arch = "aarch64")]
        // SAFETY: the tier proves NEON; shapes checked.
        Isa::Neon => unsafe { neon::hamming(query, codes, out) },
        _ => scalar::hamming(query, codes, out),
    }
}

fn dot_i8_raw(tier: Tier, query: &[i8], rows: &[i8], out: &mut [i32]) {
    match tier.isa() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the tier proves AVX-512 with VNNI; shapes checked.
        Isa::Avx512 if tier.has(Feature::Avx512Vnni) => unsafe {
            avx512::dot_i8_vnni(query, rows, out)
        },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the tier proves AVX-512 F/BW/VL; shapes checked.
        Isa::Avx512 => unsafe { avx512::dot_i8_widen(query, rows, out) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the tier proves AVX2; shapes checked.
        Isa::Avx2 => unsafe { avx2::dot_i8(query, rows, out) },
        #[cfg(target_arch = "aarch64")]
        // SAFETY: the tier proves NEON with dotprod; shapes checked.
        Isa::Neon if tier.has(Feature::DotProd) => unsafe { neon::dot_i8_sdot(query, rows, out) },
        #[cfg(target_arch = "aarch64")]
        // SAFETY: the tier proves NEON; shapes checked.
        Isa::Neon => unsafe { neon::dot_i8(query, rows, out) },
        _ => scalar::dot_i8(query, rows, out),
    }
}

fn l2sq_i8_raw(tier: Tier, query: &[i8], rows: &[i8], out: &mut [u32]) {
    match tier.isa() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the tier proves AVX-512 F/BW/VL; shapes checked.
        Isa::Avx512 => unsafe { avx512::l2sq_i8(query, rows, out) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the tier proves AVX2; shapes checked.
        Isa::Avx2 => unsafe { avx2::l2sq_i8(query, rows, out) },
        #[cfg(target_arch = "aarch64")]
        // SAFETY: the tier proves NEON; shapes checked.
        Isa::Neon => unsafe { neon::l2sq_i8(query, rows, out) },
        _ => scalar::l2sq_i8(query, rows, out),
    }
}

pub(crate) fn dot_f32_raw(tier: Tier, query: &[f32], rows: &[f32], out: &mut [f32]) {
    match tier.isa() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the tier proves AVX-512 F; shapes checked.
        Isa::Avx512 => unsafe { avx512::dot_f32(query, rows, out) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the tier proves AVX2 and FMA; shapes checked.
        Isa::Avx2 => unsafe { avx2::dot_f32(query, rows, out) },
        #[cfg(target_arch = "aarch64")]
        // SAFETY: the tier proves NEON; shapes checked.
        Isa::Neon => unsafe { neon::dot_f32(query, rows, out) },
        _ => scalar::dot_f32(query, rows, out),
    }
}

pub(crate) fn l2sq_f32_raw(tier: Tier, query: &[f32], rows: &[f32], out: &mut [f32]) {
    match tier.isa() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the tier proves AVX-512 F; shapes checked.
        Isa::Avx512 => unsafe { avx512::l2sq_f32(query, rows, out) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the tier proves AVX2 and FMA; shapes checked.
        Isa::Avx2 => unsafe { avx2::l2sq_f32(query, rows, out) },
        #[cfg(target_arch = "aarch64")]
        // SAFETY: the tier proves NEON; shapes checked.
        Isa::Neon => unsafe { neon::l2sq_f32(query, rows, out) },
        _ => scalar::l2sq_f32(query, rows, out),
    }
}

// ---------------------------------------------------------------------------
// Hamming.

/// `out[i] = popcount(query ^ code_i)` for the codes of `codes`, each
/// `query.len()` words.
pub fn hamming(query: &[u64], codes: &[u64], out: &mut [u32]) -> Result<(), SearchError> {
    hamming_with(active(), query, codes, out)
}
pub fn hamming_with(
    tier: Tier,
    query: &[u64],
    codes: &[u64],
    out: &mut [u32],
) -> Result<(), SearchError> {
    check_rows("hamming: codes", query.len(), codes.len(), out.len())?;
    hamming_raw(tier, query, codes, out);
    Ok(())
}

/// Hamming distances of `nq = queries.len() / words` queries against every
/// code: `out[q * n + i]` for code i of n. Codes are read once per batch.
pub fn hamming_batch(
    words: usize,
    queries: &[u64],
    codes: &[u64],
    out: &mut [u32],
) -> Result<(), SearchError> {
    hamming_batch_with(active(), words, queries, codes, out)
}
pub fn hamming_batch_with(
    tier: Tier,
    words: usize,
    queries: &[u64],
    codes: &[u64],
    out: &mut [u32],
) -> Result<(), SearchError> {
    let nq = count_rows("hamming_batch: queries", words, queries.len())?;
    let n = count_rows("hamming_batch: codes", words, codes.len())?;
    let expected = nq.checked_mul(n).ok_or(ShapeError::Overflow { what: "hamming_batch" })?;
    if out.len() != expected {
        let what = "hamming_batch: out";
        return Err(ShapeError::Mismatch { what, expected, found: out.len() }.into());
    }
    hamming_batch_raw(tier, words, queries, codes, 0..n, n, out);
    Ok(())
}

/// Batched Hamming over codes `range` of `codes`; query q's distance to
/// code `range.start + t` lands in `out[q * stride + t]`.
fn hamming_batch_raw(
    tier: Tier,
    words: usize,
    queries: &[u64],
    codes: &[u64],
    range: std::ops::Range<usize>,
    stride: usize,
    out: &mut [u32],
) {
    let per_block = (BATCH_BLOCK_WORDS / words).max(1);
    let mut b = range.start;
    while b < range.end {
        let e = (b + per_block).min(range.end);
        let block = &codes[b * words..e * words];
        for (q, query) in queries.chunks_exact(words).enumerate() {
            let o = q * stride + (b - range.start);
            hamming_raw(tier, query, block, &mut out[o..o + (e - b)]);
        }
        b = e;
    }
}

/// The k codes nearest to `query` in Hamming distance, nearest first.
pub fn hamming_topk(query: &[u64], codes: &[u64], k: usize) -> Result<Vec<Hit<u32>>, SearchError> {
    hamming_topk_with(active(), query, codes, k)
}
pub fn hamming_topk_with(
    tier: Tier,
    query: &[u64],
    codes: &[u64],
    k: usize,
) -> Result<Vec<Hit<u32>>, SearchError> {
    let w = query.len();
    let n = count_rows("hamming_topk: codes", w, codes.len())?;
    let score = |r: std::ops::Range<usize>, out: &mut [u32]| {
        hamming_raw(tier, query, &codes[r.start * w..r.end * w], out)
    };
    Ok(topk::scan_topk(n, k, score, |s| s))
}

/// The k nearest codes for each of `queries.len() / words` queries, with
/// codes read once per batch and block.
pub fn hamming_topk_batch(
    words: usize,
    queries: &[u64],
    codes: &[u64],
    k: usize,
) -> Result<Vec<Vec<Hit<u32>>>, SearchError> {
    hamming_topk_batch_with(active(), words, queries, codes, k)
}
pub fn hamming_topk_batch_with(
    tier: Tier,
    words: usize,
    queries: &[u64],
    codes: &[u64],
    k: usize,
) -> Result<Vec<Vec<Hit<u32>>>, SearchError> {
    let nq = count_rows("hamming_topk_batch: queries", words, queries.len())?;
    let n = count_rows("hamming_topk_batch: codes", words, codes.len())?;
    let score = |r: std::ops::Range<usize>, out: &mut [u32]| {
        let len = r.len();
        hamming_batch_raw(tier, words, queries, codes, r, len, out)
    };
    Ok(topk::scan_topk_batch(nq, n, k, score, |s| s))
}

// ---------------------------------------------------------------------------
// Dense scans, their gather variants and their top-k, stamped per kernel.

macro_rules! dense_kernel {
    (
        $(#[$doc:meta])*
        $name:ident, $with:ident, $gather:ident, $gather_with:ident,
        $topk:ident, $topk_with:ident, $raw:ident, $t:ty, $s:ty, $key:expr, $i8:expr
    ) => {
        $(#[$doc])*
        pub fn $name(query: &[$t], rows: &[$t], out: &mut [$s]) -> Result<(), SearchError> {
            $with(active(), query, rows, out)
        }
        pub fn $with(
            tier: Tier,
            query: &[$t],
            rows: &[$t],
            out: &mut [$s],
        ) -> Result<(), SearchError> {
            let what = concat!(stringify!($name), ": rows");
            check_rows(what, query.len(), rows.len(), out.len())?;
            if $i8 {
                check_i8_dim(what, query.len())?;
            }
            $raw(tier, query, rows, out);
            Ok(())
        }

        /// Shortlist rescoring: `out[t]` is the score of row `ids[t]`.
        pub fn $gather(
            query: &[$t],
            rows: &[$t],
            ids: &[u32],
            out: &mut [$s],
        ) -> Result<(), SearchError> {
            $gather_with(active(), query, rows, ids, out)
        }
        pub fn $gather_with(
            tier: Tier,
            query: &[$t],
            rows: &[$t],
            ids: &[u32],
            out: &mut [$s],
        ) -> Result<(), SearchError> {
            let what = concat!(stringify!($gather), ": rows");
            let d = query.len();
            let n = count_rows(what, d, rows.len())?;
            if $i8 {
                check_i8_dim(what, d)?;
            }
            if out.len() != ids.len() {
                let what = concat!(stringify!($gather), ": out");
                let e = ShapeError::Mismatch { what, expected: ids.len(), found: out.len() };
                return Err(e.into());
            }
            if let Some(&id) = ids.iter().find(|&&id| id as usize >= n) {
                return Err(SearchError::IdOutOfRange { what, id, rows: n });
            }
            for (&id, o) in ids.iter().zip(out.iter_mut()) {
                let i = id as usize;
                $raw(tier, query, &rows[i * d..(i + 1) * d], std::slice::from_mut(o));
            }
            Ok(())
        }

        /// Fused scan + top-k: the k best rows, best first, ties to the
        /// smaller id, without materialising all scores.
        pub fn $topk(query: &[$t], rows: &[$t], k: usize) -> Result<Vec<Hit<$s>>, SearchError> {
            $topk_with(active(), query, rows, k)
        }
        pub fn $topk_with(
            tier: Tier,
            query: &[$t],
            rows: &[$t],
            k: usize,
        ) -> Result<Vec<Hit<$s>>, SearchError> {
            let what = concat!(stringify!($topk), ": rows");
            let d = query.len();
            let n = count_rows(what, d, rows.len())?;
            if $i8 {
                check_i8_dim(what, d)?;
            }
            let score = |r: std::ops::Range<usize>, out: &mut [$s]| {
                $raw(tier, query, &rows[r.start * d..r.end * d], out)
            };
            Ok(topk::scan_topk(n, k, score, $key))
        }
    };
}

dense_kernel!(
    /// `out[i] = query . rows[i]` for int8 rows of `query.len()` bytes, in
    /// i32 (top-k keeps the largest).
    dot_i8, dot_i8_with, dot_i8_gather, dot_i8_gather_with, dot_i8_topk, dot_i8_topk_with,
    dot_i8_raw, i8, i32, |s: i32| Reverse(s), true
);
dense_kernel!(
    /// `out[i] = |query - rows[i]|^2` for int8 rows, in u32 (top-k keeps
    /// the smallest).
    l2sq_i8, l2sq_i8_with, l2sq_i8_gather, l2sq_i8_gather_with, l2sq_i8_topk, l2sq_i8_topk_with,
    l2sq_i8_raw, i8, u32, |s: u32| s, true
);
dense_kernel!(
    /// `out[i] = query . rows[i]` for f32 rows (top-k keeps the largest).
    dot_f32, dot_f32_with, dot_f32_gather, dot_f32_gather_with, dot_f32_topk, dot_f32_topk_with,
    dot_f32_raw, f32, f32, topk::f32_max_key, false
);
dense_kernel!(
    /// `out[i] = |query - rows[i]|^2` for f32 rows (top-k keeps the
    /// smallest).
    l2sq_f32, l2sq_f32_with, l2sq_f32_gather, l2sq_f32_gather_with, l2sq_f32_topk,
    l2sq_f32_topk_with, l2sq_f32_raw, f32, f32, topk::f32_min_key, false
);
