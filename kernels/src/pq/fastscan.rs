//! 4-bit PQ fast-scan: codes packed so that one in-register table lookup
//! (`vpshufb` / `vqtbl1q_u8`) scores 16 to 64 vectors per instruction.
//!
//! Layout of [`PackedCodes`]: vectors are grouped in blocks of 32 (the last
//! block padded with code 0). A block is `m` groups of 16 bytes, one group
//! per sub-quantizer in order; in group `j`, byte `t` (0..16) holds the
//! code of vector `t` of the block in its low nibble and the code of vector
//! `t + 16` in its high nibble:
//!
//! ```text
//! block b: [ sub 0: 16 B ][ sub 1: 16 B ] ... [ sub m-1: 16 B ]   (16 m bytes)
//! sub j byte t = code(32b + t, j) | code(32b + 16 + t, j) << 4
//! ```
//!
//! Tables: the float ADC table (`m x 16`, costs where smaller is better;
//! inner products are negated) is quantized per query to u8 by
//! [`QuantizedTable::new`]: `lut[j][c] = round((T[j][c] - min_j) * s)` with
//! one scale `s = 255 / max_j (max_j - min_j)`, so `sum_j lut` estimates
//! `(cost - sum_j min_j) * s`. The 16 entries of a sub-quantizer's table are
//! exactly one 128-bit register, so the AVX2 kernel looks up two
//! sub-quantizers per instruction, AVX-512 four, NEON one; the sums are
//! accumulated in u16 lanes (no overflow: `m <= 256`, `256 * 255 < 2^16`).
//! Integer sums make every tier bit-exact with the scalar reference.
//!
//! Top-k collection: [`scan_below_with`] compares a block's 32 sums with
//! the current threshold in registers and only then hands the block to
//! the caller, and [`Best`] collects the k smallest `(sum, id)` pairs with
//! that threshold at hand (the k-th sum once known: a later id with an
//! equal sum cannot enter). Once the collector is warm almost no block
//! leaves the registers, so a scan reads the codes and stores nothing.
//! [`topk_into`] is that loop on the calling thread with a filter on ids;
//! [`topk`] gives each rayon thread one contiguous range.
//!
//! [`search`] scans with the quantized tables keeping the best `rerank`
//! candidates, then re-scores those with the float table and returns the k
//! best; callers holding the original vectors can re-rank those instead.

use super::{Metric, PqError};
use crate::dispatch::{active, Isa, Tier};
use crate::search::topk::{self, Hit};
use rayon::prelude::*;

/// Vectors per block.
pub const BLOCK: usize = 32;
/// Largest number of sub-quantizers (u16 accumulation limit).
pub const MAX_M: usize = 256;
/// Fewest code bytes [`topk`] gives a thread. Scanning 1 MiB takes tens
/// of microseconds, about what waking another thread costs on a busy
/// machine: with 5,183 codes of 24 bytes split over two threads, a query
/// took twice as long as on one.
const MIN_PART_BYTES: usize = 1 << 20;

/// 4-bit codes in the blocked, nibble-packed layout described above.
#[derive(Clone, Debug)]
pub struct PackedCodes {
    m: usize,
    n: usize,
    data: Vec<u8>,
}

impl PackedCodes {
    /// Packs `n x m` codes (one byte per sub-quantizer, each below 16).
    pub fn pack(codes: &[u8], m: usize) -> Result<Self, PqError> {
        if m == 0 || m > MAX_M {
            return Err(PqError::Invalid {
                what: "fastscan pack: m",
                reason: "must be in 1..=256",
            });
        }
        if !codes.len().is_multiple_of(m) {
            return Err(PqError::Shape {
                what: "fastscan pack: codes",
                len: codes.len(),
                multiple_of: m,
            });
        }
        if let Some(i) = codes.iter().position(|&c| c >= 16) {
            let what = "fastscan pack: codes";
            return Err(PqError::CodeOutOfRange { what, index: i, code: codes[i], ksub: 16 });
        }
        let n = codes.len() / m;
        if n > u32::MAX as usize {
            return Err(PqError::Invalid {
                what: "fastscan pack",
                reason: "more codes than u32 ids",
            });
        }
        let blocks = n.div_ceil(BLOCK);
        let mut data = vec![0u8; blocks * m * 16];
        for (v, code) in codes.chunks_exact(m).enumerate() {
            let (b, t) = (v / BLOCK, v % BLOCK);
            let shift = if t < 16 { 0 } else { 4 };
            for (j, &c) in code.iter().enumerate() {
                data[b * m * 16 + j * 16 + t % 16] |= c << shift;
            }
        }
        Ok(PackedCodes { m, n, data })
    }

    /// Number of vectors.
    pub fn len(&self) -> usize {
        self.n
    }
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }
    /// Sub-quantizers per code.
    pub fn m(&self) -> usize {
        self.m
    }
    /// The packed bytes (`ceil(n / 32) * 16 m`).
    pub fn bytes(&self) -> &[u8] {
        &self.data
    }

    /// The code of vector `v` for sub-quantizer `j` (`v < len`, `j < m`).
    #[inline]
    pub fn code(&self, v: usize, j: usize) -> u8 {
        let (b, t) = (v / BLOCK, v % BLOCK);
        let byte = self.data[b * self.m * 16 + j * 16 + t % 16];
        if t < 16 {
            byte & 15
        } else {
            byte >> 4
        }
    }
}

/// A per-query ADC table quantized to u8.
#[derive(Clone, Debug)]
pub struct QuantizedTable {
    m: usize,
    /// `m x 16` entries.
    lut: Vec<u8>,
    /// Cost units per table unit: `cost ~ sum / scale + bias`.
    scale: f32,
    /// `sum_j min_j`.
    bias: f32,
}

impl QuantizedTable {
    /// Quantizes an `m x 16` float table; for [`Metric::InnerProduct`] the
    /// entries are negated first so that smaller is better throughout.
    pub fn new(table: &[f32], m: usize, metric: Metric) -> Result<Self, PqError> {
        if m == 0 || m > MAX_M {
            return Err(PqError::Invalid {
                what: "fastscan table: m",
                reason: "must be in 1..=256",
            });
        }
        if table.len() != m * 16 {
            let what = "fastscan table";
            return Err(PqError::Mismatch { what, expected: m * 16, found: table.len() });
        }
        if let Some(i) = table.iter().position(|x| !x.is_finite()) {
            return Err(PqError::NotFinite { what: "fastscan table", index: i });
        }
        let sign = if metric == Metric::InnerProduct { -1.0 } else { 1.0 };
        let cost: Vec<f32> = table.iter().map(|&x| sign * x).collect();
        let mins: Vec<f32> = cost
            .chunks_exact(16)
            .map(|t| t.iter().copied().fold(f32::INFINITY, f32::min))
            .collect();
        let range = cost
            .chunks_exact(16)
            .zip(&mins)
            .map(|(t, &lo)| t.iter().copied().fold(f32::NEG_INFINITY, f32::max) - lo)
            .fold(0f32, f32::max);
        let scale = if range > 0.0 { 255.0 / range } else { 1.0 };
        let lut = cost
            .chunks_exact(16)
            .zip(&mins)
            .flat_map(|(t, &lo)| {
                t.iter().map(move |&x| ((x - lo) * scale).round().clamp(0.0, 255.0) as u8)
            })
            .collect();
        let bias = mins.iter().sum();
        Ok(QuantizedTable { m, lut, scale, bias })
    }

    /// Re-quantizes `table` into this table's buffers, as [`QuantizedTable::new`]
    /// would, without allocating: a search loop keeps one table per thread.
    /// `table` must have this table's `m x 16` entries.
    pub fn refill(&mut self, table: &[f32], metric: Metric) -> Result<(), PqError> {
        let m = self.m;
        if table.len() != m * 16 {
            let what = "fastscan table";
            return Err(PqError::Mismatch { what, expected: m * 16, found: table.len() });
        }
        if let Some(i) = table.iter().position(|x| !x.is_finite()) {
            return Err(PqError::NotFinite { what: "fastscan table", index: i });
        }
        // Two passes over the 16-entry rows: the widest row range sets the
        // scale, then each row is shifted by its own minimum.
        let sign = if metric == Metric::InnerProduct { -1.0 } else { 1.0 };
        let lo_hi = |t: &[f32]| {
            t.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &x| {
                (lo.min(sign * x), hi.max(sign * x))
            })
        };
        let range = table.chunks_exact(16).map(lo_hi).map(|(lo, hi)| hi - lo).fold(0f32, f32::max);
        let scale = if range > 0.0 { 255.0 / range } else { 1.0 };
        let mut bias = 0f32;
        for (t, l) in table.chunks_exact(16).zip(self.lut.chunks_exact_mut(16)) {
            let lo = lo_hi(t).0;
            bias += lo;
            for (&x, o) in t.iter().zip(l) {
                *o = ((sign * x - lo) * scale).round().clamp(0.0, 255.0) as u8;
            }
        }
        self.scale = scale;
        self.bias = bias;
        Ok(())
    }

    /// Builds a table from raw u8 entries (scale 1, bias 0), for tests and
    /// callers with their own quantization.
    pub fn from_lut(lut: Vec<u8>, m: usize) -> Result<Self, PqError> {
        if m == 0 || m > MAX_M || lut.len() != m * 16 {
            let what = "fastscan from_lut";
            return Err(PqError::Mismatch { what, expected: m.min(MAX_M) * 16, found: lut.len() });
        }
        Ok(QuantizedTable { m, lut, scale: 1.0, bias: 0.0 })
    }

    /// The `m x 16` u8 entries.
    pub fn lut(&self) -> &[u8] {
        &self.lut
    }
    pub fn m(&self) -> usize {
        self.m
    }
    /// The approximate cost of a quantized sum.
    pub fn to_cost(&self, sum: u16) -> f32 {
        sum as f32 / self.scale + self.bias
    }
}

/// Reference: quantized sums for `out.len() / 32` whole blocks.
pub fn scan_scalar(lut: &[u8], m: usize, packed: &[u8], out: &mut [u16]) {
    for (block, o) in packed.chunks_exact(m * 16).zip(out.chunks_exact_mut(BLOCK)) {
        for (t, ot) in o.iter_mut().enumerate() {
            let mut s = 0u16;
            for j in 0..m {
                let byte = block[j * 16 + t % 16];
                let c = if t < 16 { byte & 15 } else { byte >> 4 };
                s += lut[j * 16 + c as usize] as u16;
            }
            *ot = s;
        }
    }
}

/// Whole blocks through the tier's kernel; `out.len()` is a multiple of 32
/// and `packed` holds at least `out.len() / 32` blocks.
fn scan_blocks(tier: Tier, lut: &[u8], m: usize, packed: &[u8], out: &mut [u16]) {
    debug_assert!(packed.len() >= out.len() / BLOCK * m * 16);
    match tier.isa() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the tier proves AVX-512 F/BW; lut holds m x 16 bytes,
        // packed the blocks that out covers.
        Isa::Avx512 => unsafe { super::avx512::fastscan(lut, m, packed, out) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the tier proves AVX2; sizes as above.
        Isa::Avx2 => unsafe { super::avx2::fastscan(lut, m, packed, out) },
        #[cfg(target_arch = "aarch64")]
        // SAFETY: the tier proves NEON; sizes as above.
        Isa::Neon => unsafe { super::neon::fastscan(lut, m, packed, out) },
        _ => scan_scalar(lut, m, packed, out),
    }
}

/// Quantized sums of vectors `range` (its start a multiple of 32).
fn scan_range(
    tier: Tier,
    table: &QuantizedTable,
    codes: &PackedCodes,
    range: std::ops::Range<usize>,
    out: &mut [u16],
) {
    let m = codes.m;
    let first_block = range.start / BLOCK;
    let whole = range.len() / BLOCK * BLOCK;
    let packed = &codes.data[first_block * m * 16..];
    scan_blocks(tier, &table.lut, m, packed, &mut out[..whole]);
    if whole < range.len() {
        let mut tail = [0u16; BLOCK];
        scan_blocks(tier, &table.lut, m, &packed[whole / BLOCK * m * 16..], &mut tail);
        out[whole..].copy_from_slice(&tail[..range.len() - whole]);
    }
}

fn check_pair(table: &QuantizedTable, codes: &PackedCodes) -> Result<(), PqError> {
    if table.m != codes.m {
        return Err(PqError::Mismatch {
            what: "fastscan: table m",
            expected: codes.m,
            found: table.m,
        });
    }
    Ok(())
}

/// Quantized cost sums of every vector: `out[i] = sum_j lut[j][code(i, j)]`.
pub fn scan(table: &QuantizedTable, codes: &PackedCodes, out: &mut [u16]) -> Result<(), PqError> {
    scan_with(active(), table, codes, out)
}
pub fn scan_with(
    tier: Tier,
    table: &QuantizedTable,
    codes: &PackedCodes,
    out: &mut [u16],
) -> Result<(), PqError> {
    check_pair(table, codes)?;
    if out.len() != codes.n {
        return Err(PqError::Mismatch {
            what: "fastscan scan: out",
            expected: codes.n,
            found: out.len(),
        });
    }
    scan_range(tier, table, codes, 0..codes.n, out);
    Ok(())
}

/// The k smallest `(sum, id)` pairs offered: ties go to the smaller id.
/// Reusable: [`Best::reset`] keeps the buffer's memory.
///
/// A reservoir rather than a heap: offers that beat the threshold are
/// appended, and when `2k` are held a selection keeps the k smallest and
/// lowers the threshold to the k-th sum. Each offer costs O(1) amortised
/// instead of a heap's O(log k), which matters for long shortlists
/// (k = 100 takes several hundred offers per 30,000 vectors).
#[derive(Clone, Debug, Default)]
pub struct Best {
    k: usize,
    /// `sum << 32 | id`, at most `2k` (unordered).
    keys: Vec<u64>,
    threshold: u16,
}

impl Best {
    /// An empty collector of the k best.
    pub fn new(k: usize) -> Self {
        let mut b = Best::default();
        b.reset(k);
        b
    }

    /// Empties the collector for a new scan keeping `k`.
    pub fn reset(&mut self, k: usize) {
        self.keys.clear();
        self.keys.reserve(2 * k);
        self.k = k;
        // No sum reaches u16::MAX (m * 255 < 2^16), so every sum enters
        // until the first selection; nothing enters when k = 0.
        self.threshold = if k == 0 { 0 } else { u16::MAX };
    }

    /// Sums below this may enter: `u16::MAX` until the first selection,
    /// then the k-th smallest sum held, because ids are offered in
    /// increasing order and an equal sum loses to the kept row.
    #[inline]
    pub fn threshold(&self) -> u16 {
        self.threshold
    }

    /// Offers vector `id` with quantized sum `sum`; ids must be offered in
    /// increasing order (the threshold's tie rule relies on it).
    #[inline]
    pub fn offer(&mut self, sum: u16, id: u32) {
        if sum >= self.threshold {
            return;
        }
        self.keys.push((sum as u64) << 32 | id as u64);
        if self.keys.len() >= 2 * self.k {
            self.select();
        }
    }

    /// Keeps the k smallest keys and sets the threshold to the k-th sum.
    fn select(&mut self) {
        let k = self.k;
        if self.keys.len() > k {
            self.keys.select_nth_unstable(k - 1);
            self.keys.truncate(k);
        }
        if self.keys.len() == k {
            let kth = self.keys.iter().copied().max().unwrap_or(0);
            self.threshold = (kth >> 32) as u16;
        }
    }

    /// Removes the k best pairs in no particular order.
    pub fn drain(&mut self) -> impl Iterator<Item = Hit<u16>> + '_ {
        if self.k > 0 {
            self.select();
        }
        self.keys.drain(..).map(|key| Hit { id: key as u32, score: (key >> 32) as u16 })
    }

    /// The k best pairs, smallest first.
    pub fn into_sorted(mut self) -> Vec<Hit<u16>> {
        self.keys.sort_unstable();
        self.keys.truncate(self.k);
        self.keys.into_iter().map(|key| Hit { id: key as u32, score: (key >> 32) as u16 }).collect()
    }
}

/// Offers the sums of one block that beat the collector's threshold: a
/// branch-free mask over the 32 sums first, then only its set bits.
#[inline]
fn offer_block(
    best: &mut Best,
    first: usize,
    sums: &[u16; 32],
    valid: usize,
    mut keep: impl FnMut(u32) -> bool,
) {
    let t = best.threshold();
    let mut mask = 0u32;
    for (i, &s) in sums.iter().enumerate() {
        mask |= ((s < t) as u32) << i;
    }
    if valid < BLOCK {
        mask &= (1u32 << valid) - 1;
    }
    while mask != 0 {
        let i = mask.trailing_zeros() as usize;
        mask &= mask - 1;
        let id = (first + i) as u32;
        if sums[i] < best.threshold() && keep(id) {
            best.offer(sums[i], id);
        }
    }
}

/// Scans vectors `32 * blocks.start .. min(32 * blocks.end, len)` and
/// calls `hit(first, sums)` for every block holding a sum below the
/// current threshold (`first` its first vector, `sums` its 32 sums in
/// vector order, entries past the last vector to be ignored); `hit`
/// returns the new threshold. Blocks whose sums are all at or above it
/// are skipped in registers. Returns the last threshold.
pub fn scan_below_with(
    tier: Tier,
    table: &QuantizedTable,
    codes: &PackedCodes,
    blocks: std::ops::Range<usize>,
    threshold: u16,
    hit: &mut dyn FnMut(usize, &[u16; 32]) -> u16,
) -> Result<u16, PqError> {
    check_pair(table, codes)?;
    let total = codes.n.div_ceil(BLOCK);
    if blocks.start > blocks.end || blocks.end > total {
        return Err(PqError::Mismatch {
            what: "fastscan scan_below: block range end",
            expected: total,
            found: blocks.end,
        });
    }
    let m = codes.m;
    let packed = &codes.data[blocks.start * m * 16..blocks.end * m * 16];
    let first = blocks.start;
    let mut on_block = |b: usize, sums: &[u16; 32]| hit((first + b) * BLOCK, sums);
    let count = blocks.len();
    let lut = &table.lut[..];
    Ok(match tier.isa() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the tier proves AVX-512 F/BW; lut holds m x 16 bytes,
        // packed exactly `count` blocks.
        Isa::Avx512 => unsafe {
            super::avx512::fastscan_below(lut, m, packed, count, threshold, &mut on_block)
        },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the tier proves AVX2; sizes as above.
        Isa::Avx2 => unsafe {
            super::avx2::fastscan_below(lut, m, packed, count, threshold, &mut on_block)
        },
        #[cfg(target_arch = "aarch64")]
        // SAFETY: the tier proves NEON; sizes as above.
        Isa::Neon => unsafe {
            super::neon::fastscan_below(lut, m, packed, count, threshold, &mut on_block)
        },
        _ => scan_below_scalar(lut, m, packed, threshold, &mut on_block),
    })
}

/// Reference for [`scan_below_with`] over whole blocks of `packed`.
fn scan_below_scalar(
    lut: &[u8],
    m: usize,
    packed: &[u8],
    mut threshold: u16,
    hit: &mut dyn FnMut(usize, &[u16; 32]) -> u16,
) -> u16 {
    let mut sums = [0u16; BLOCK];
    for (b, block) in packed.chunks_exact(m * 16).enumerate() {
        scan_scalar(lut, m, block, &mut sums);
        if sums.iter().any(|&s| s < threshold) {
            threshold = hit(b, &sums);
        }
    }
    threshold
}

/// Offers every vector of `codes` whose id passes `keep` to `best`, on the
/// calling thread, skipping blocks that cannot enter (module doc).
pub fn topk_into(
    table: &QuantizedTable,
    codes: &PackedCodes,
    best: &mut Best,
    keep: impl FnMut(u32) -> bool,
) -> Result<(), PqError> {
    topk_into_with(active(), table, codes, best, keep)
}
pub fn topk_into_with(
    tier: Tier,
    table: &QuantizedTable,
    codes: &PackedCodes,
    best: &mut Best,
    mut keep: impl FnMut(u32) -> bool,
) -> Result<(), PqError> {
    let n = codes.n;
    let t = best.threshold();
    let mut hit = |first: usize, sums: &[u16; 32]| {
        offer_block(best, first, sums, n - first, &mut keep);
        best.threshold()
    };
    scan_below_with(tier, table, codes, 0..n.div_ceil(BLOCK), t, &mut hit)?;
    Ok(())
}

/// The k smallest quantized sums, ties to the smaller id, smallest first.
pub fn topk(
    table: &QuantizedTable,
    codes: &PackedCodes,
    k: usize,
) -> Result<Vec<Hit<u16>>, PqError> {
    topk_with(active(), table, codes, k)
}
pub fn topk_with(
    tier: Tier,
    table: &QuantizedTable,
    codes: &PackedCodes,
    k: usize,
) -> Result<Vec<Hit<u16>>, PqError> {
    check_pair(table, codes)?;
    let n = codes.n;
    if k == 0 || n == 0 {
        return Ok(Vec::new());
    }
    // One contiguous range of blocks per thread, each into its own
    // collector. Every part returns its exact k smallest `(sum, id)`
    // keys, and the k smallest of a total order do not depend on how the
    // rows were split, so the result is the same for any thread count.
    let blocks = n.div_ceil(BLOCK);
    let per_part = MIN_PART_BYTES.div_ceil(codes.m * 16);
    let parts = rayon::current_num_threads().min(blocks / per_part).max(1);
    topk_split_with(tier, table, codes, k, parts)
}

/// [`topk_with`] over exactly `parts` contiguous ranges of blocks (clamped
/// to 1..=blocks), scanned in parallel when more than one.
pub fn topk_split_with(
    tier: Tier,
    table: &QuantizedTable,
    codes: &PackedCodes,
    k: usize,
    parts: usize,
) -> Result<Vec<Hit<u16>>, PqError> {
    check_pair(table, codes)?;
    let n = codes.n;
    if k == 0 || n == 0 {
        return Ok(Vec::new());
    }
    let blocks = n.div_ceil(BLOCK);
    let parts = parts.clamp(1, blocks);
    let part = |p: usize| -> Result<Vec<Hit<u16>>, PqError> {
        let range = p * blocks / parts..(p + 1) * blocks / parts;
        let mut best = Best::new(k);
        let mut hit = |first: usize, sums: &[u16; 32]| {
            offer_block(&mut best, first, sums, n - first, |_| true);
            best.threshold()
        };
        scan_below_with(tier, table, codes, range, u16::MAX, &mut hit)?;
        Ok(best.into_sorted())
    };
    if parts == 1 {
        return part(0);
    }
    let found: Vec<Vec<Hit<u16>>> =
        (0..parts).into_par_iter().map(part).collect::<Result<_, PqError>>()?;
    let mut all: Vec<Hit<u16>> = found.into_iter().flatten().collect();
    all.sort_unstable_by_key(|h| (h.score, h.id));
    all.truncate(k);
    Ok(all)
}

/// Fast-scan search: quantized scan keeping `rerank.max(k)` candidates,
/// re-scored with the float `m x 16` table, k best returned (smallest L2 or
/// largest inner product first; ties to the smaller id).
pub fn search(
    table: &[f32],
    metric: Metric,
    codes: &PackedCodes,
    k: usize,
    rerank: usize,
) -> Result<Vec<Hit<f32>>, PqError> {
    search_with(active(), table, metric, codes, k, rerank)
}
pub fn search_with(
    tier: Tier,
    table: &[f32],
    metric: Metric,
    codes: &PackedCodes,
    k: usize,
    rerank: usize,
) -> Result<Vec<Hit<f32>>, PqError> {
    let q = QuantizedTable::new(table, codes.m, metric)?;
    let shortlist = topk_with(tier, &q, codes, rerank.max(k))?;
    let mut hits: Vec<(u32, Hit<f32>)> = shortlist
        .iter()
        .map(|h| {
            let v = h.id as usize;
            let s: f32 = (0..codes.m).map(|j| table[j * 16 + codes.code(v, j) as usize]).sum();
            let key = match metric {
                Metric::L2 => topk::f32_min_key(s),
                Metric::InnerProduct => topk::f32_max_key(s),
            };
            (key, Hit { id: h.id, score: s })
        })
        .collect();
    hits.sort_unstable_by_key(|(key, h)| (*key, h.id));
    hits.truncate(k);
    Ok(hits.into_iter().map(|(_, h)| h).collect())
}
