//! The loop nest around the microkernels, the output stage, and threading.
//!
//! A microkernel ([`Micro`]) computes one `MR x NR` tile of sums over all of
//! k from a packed A tile and a packed B column tile, into a small buffer.
//! The driver then hands the valid part of that buffer to a [`Sink`], which
//! adds the per-column shift correction and either stores i32 or applies
//! the f32 epilogue. Going through a buffer costs `MR * NR` stores and loads
//! per `MR * NR * k` multiply-adds, and lets every tier share one edge
//! handling and one epilogue.
//!
//! Loops, outermost first: rows are split into chunks across rayon's
//! threads (each chunk packs its own rows of A); columns are cut into
//! blocks whose packed B fits in L2; inside a block each `MR`-row tile of A
//! (in L1) meets every `NR`-column tile of B.
//!
//! [`run_chunk`] is `inline(always)` so that each tier instantiates it inside
//! a `target_feature` function: the microkernel inlines and the epilogue
//! loops vectorize with that tier's registers.

use rayon::prelude::*;

use super::pack::{pack_a, AElem, AIn, PackedB, GROUP, PANEL_PAIR};
use super::{AData, AView, Terms};
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
use crate::dispatch::Feature;
use crate::dispatch::{Isa, Tier};

/// Capacity of the tile buffer: the largest `MR * NR` of any tier (12 x 32).
pub(crate) const TILE: usize = 384;

/// Rows per parallel chunk are a multiple of this (every tier's MR divides it).
const ROW_ALIGN: usize = 24;

/// Multiply-adds below which the product runs on the calling thread.
const PAR_WORK: usize = 1 << 21;

/// Bytes of packed B a column block may take.
const L2_BUDGET: usize = 256 * 1024;

/// A register-blocked microkernel and how it wants A stored.
pub(crate) trait Micro {
    /// Rows per tile.
    const MR: usize;
    /// Columns per tile: 8, 16 or 32.
    const NR: usize;
    /// Added to each u8 value of A before it is stored.
    const SHIFT_U8: i32;
    /// Added to each i8 value of A before it is stored.
    const SHIFT_I8: i32;
    /// Whether the kernel also reads unpacked u8 rows (`A = u8`,
    /// `SHIFT_U8 = 0`, any `a_rs`), so u8 A with k a multiple of 4 needs
    /// no packing.
    const DIRECT_U8: bool = false;
    /// The stored element of packed A.
    type A: AElem;

    /// Writes the `MR x NR` sums over `groups` groups into `out`, row-major
    /// with row stride `NR`. Row `r`'s values of group `g` start at
    /// `a + g * a_gs + r * a_rs`: `a_rs = 4`, `a_gs = 4 MR` in a packed
    /// tile, `a_rs = lda`, `a_gs = 4` in unpacked rows. Only kernels with
    /// `DIRECT_U8` are handed other strides than the packed ones.
    ///
    /// # Safety
    ///
    /// - The CPU runs the instructions of the implementing tier.
    /// - Four elements at each such start are readable.
    /// - `b` points to a packed B column at a multiple of 8 columns, so that
    ///   `NR` columns of each of `groups` groups are readable, a panel being
    ///   `panel_stride` bytes from the next.
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile(
        groups: usize,
        a: *const Self::A,
        a_rs: usize,
        a_gs: usize,
        b: *const i8,
        panel_stride: usize,
        out: &mut [i32; TILE],
    );
}

/// Where the results go.
pub(crate) enum Out<'c> {
    /// Raw sums.
    I32 { c: &'c mut [i32], ldc: usize },
    /// The f32 epilogue.
    F32 { c: &'c mut [f32], ldc: usize, terms: &'c Terms },
}

/// The output stage of one chunk of rows.
pub(crate) trait Sink {
    /// Whether `put` reads the row sums of A (only the zero point of B
    /// needs them).
    const ROW_SUMS: bool;

    /// Stores rows `i..i + rows` (chunk-relative) and columns `j..j + cols`
    /// of a tile whose rows are `ts` apart; `rowsum` holds the chunk's plain
    /// row sums of A and `adj` the per-column shift correction.
    #[allow(clippy::too_many_arguments)]
    fn put(
        &mut self,
        i: usize,
        j: usize,
        rows: usize,
        cols: usize,
        tile: &[i32],
        ts: usize,
        rowsum: &[i32],
        adj: &[i32],
    );
}

/// Raw i32 output: `c[i][j] = acc[i][j] + adj[j]`.
pub(crate) struct I32Sink<'c> {
    c: &'c mut [i32],
    ldc: usize,
}

impl Sink for I32Sink<'_> {
    const ROW_SUMS: bool = false;

    #[inline(always)]
    fn put(
        &mut self,
        i: usize,
        j: usize,
        rows: usize,
        cols: usize,
        tile: &[i32],
        ts: usize,
        _rowsum: &[i32],
        adj: &[i32],
    ) {
        let adj = &adj[j..j + cols];
        for r in 0..rows {
            let dst = &mut self.c[(i + r) * self.ldc + j..][..cols];
            let src = &tile[r * ts..][..cols];
            for ((d, &s), &a) in dst.iter_mut().zip(src).zip(adj) {
                *d = s.wrapping_add(a);
            }
        }
    }
}

/// f32 output through the epilogue, for rows starting at `row0` of A.
pub(crate) struct F32Sink<'c> {
    c: &'c mut [f32],
    ldc: usize,
    terms: &'c Terms,
    colsum: &'c [i32],
    row0: usize,
    k: i32,
}

impl Sink for F32Sink<'_> {
    const ROW_SUMS: bool = true;

    #[inline(always)]
    fn put(
        &mut self,
        i: usize,
        j: usize,
        rows: usize,
        cols: usize,
        tile: &[i32],
        ts: usize,
        rowsum: &[i32],
        adj: &[i32],
    ) {
        let t = self.terms;
        let (adj, cs) = (&adj[j..j + cols], &self.colsum[j..j + cols]);
        let (zb, sb, bias) = (&t.zb[j..j + cols], &t.sb[j..j + cols], &t.bias[j..j + cols]);
        for r in 0..rows {
            let g = self.row0 + i + r;
            let (za, sa) = (t.za[g], t.sa[g]);
            // acc - za cs - zb rs + k za zb = acc - za cs - zb (rs - k za)
            let rz = rowsum[i + r].wrapping_sub(self.k.wrapping_mul(za));
            let dst = &mut self.c[(i + r) * self.ldc + j..][..cols];
            let src = &tile[r * ts..][..cols];
            for q in 0..cols {
                let v = src[q]
                    .wrapping_add(adj[q])
                    .wrapping_sub(za.wrapping_mul(cs[q]))
                    .wrapping_sub(zb[q].wrapping_mul(rz));
                dst[q] = v as f32 * (sa * sb[q]) + bias[q];
            }
        }
    }
}

/// Columns per block: packed B of the block within [`L2_BUDGET`], at least
/// one panel pair.
fn col_block(k: usize) -> usize {
    let cols = L2_BUDGET / k.max(1);
    (cols / PANEL_PAIR).max(1) * PANEL_PAIR
}

/// Rows `r0..r0 + rows` of `C = A * B` through microkernel `K`.
///
/// # Safety
///
/// The CPU runs the instructions of `K`'s tier. The rows lie inside A
/// (`a` holds row `r0 + rows - 1` at `lda` elements per row, `b.k()` long),
/// which the public entry points have checked.
#[inline(always)]
pub(crate) unsafe fn run_chunk<K: Micro, T: AIn, S: Sink>(
    a: &[T],
    lda: usize,
    r0: usize,
    rows: usize,
    b: &PackedB,
    sink: &mut S,
) {
    let (k, n, groups) = (b.k(), b.n(), b.groups());
    let shift = if T::SIGNED { K::SHIFT_I8 } else { K::SHIFT_U8 };
    let rowsum = if S::ROW_SUMS { row_sums(a, lda, r0, rows, k) } else { Vec::new() };
    // Full row tiles of u8 A are read in place when the kernel can and
    // every group is whole; the rest is packed.
    let direct = K::DIRECT_U8 && !T::SIGNED && k % GROUP == 0;
    let full = if direct { rows / K::MR * K::MR } else { 0 };
    let pa = pack_a::<T, K::A>(a, lda, r0 + full, rows - full, k, K::MR, shift);
    // Each stored value is a + shift, so each sum is off by shift * colsum.
    let adj: Vec<i32> =
        b.col_sums().iter().map(|&s| s.wrapping_mul(shift.wrapping_neg())).collect();
    let a_tile = groups * K::MR * GROUP;
    let nc = col_block(k);
    let mut tile = [0i32; TILE];

    // LOOP 3: column blocks of B sized for L2.
    for jb in (0..n).step_by(nc) {
        let jend = (jb + nc).min(n);
        // LOOP 2: MR-row tiles of A, in place or packed.
        for i in (0..rows).step_by(K::MR) {
            let mr = (rows - i).min(K::MR);
            let (ap, a_rs, a_gs) = if i < full {
                // T is u8 and K::A is u8 here (DIRECT_U8), so the cast
                // only renames the type.
                (a.as_ptr().wrapping_add((r0 + i) * lda).cast::<K::A>(), lda, GROUP)
            } else {
                (pa.as_ptr().wrapping_add((i - full) / K::MR * a_tile), GROUP, K::MR * GROUP)
            };
            // LOOP 1: NR-column tiles of the block.
            for j in (jb..jend).step_by(K::NR) {
                let nr = (jend - j).min(K::NR);
                // SAFETY: the caller vouches for the CPU. In place, rows
                // i..i + MR are whole rows of A with k a multiple of 4; packed,
                // the tile holds `a_tile` elements. j is a multiple of NR (8,
                // 16 or 32) and B is padded to a multiple of 32 columns.
                unsafe {
                    K::tile(groups, ap, a_rs, a_gs, b.col_ptr(j), b.panel_stride(), &mut tile)
                };
                sink.put(i, j, mr, nr, &tile, K::NR, &rowsum, &adj);
            }
        }
    }
}

/// Plain sums of rows `r0..r0 + rows` of A over `k` columns, as loops
/// that inline (and vectorize) into the tier's function.
#[inline(always)]
fn row_sums<T: AIn>(a: &[T], lda: usize, r0: usize, rows: usize, k: usize) -> Vec<i32> {
    let mut out = vec![0i32; rows];
    if k == 0 {
        return out;
    }
    for (r, sum) in out.iter_mut().enumerate() {
        let mut acc = 0i32;
        for &v in &a[(r0 + r) * lda..][..k] {
            acc += v.val();
        }
        *sum = acc;
    }
    out
}

/// Runs one chunk of rows on the tier's microkernel.
fn run<T: AIn, S: Sink>(
    tier: Tier,
    a: &[T],
    lda: usize,
    r0: usize,
    rows: usize,
    b: &PackedB,
    sink: &mut S,
) {
    match tier.isa() {
        // SAFETY (all arms): a `Tier` is only made for a CPU that runs it,
        // and `has` reports only capabilities the CPU has; the rows were
        // checked against A by the public entry points.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 if tier.has(Feature::Avx512Vnni) => unsafe {
            super::avx512::chunk_vnni(a, lda, r0, rows, b, sink)
        },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { super::avx512::chunk_bw(a, lda, r0, rows, b, sink) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { super::avx2::chunk(a, lda, r0, rows, b, sink) },
        #[cfg(target_arch = "aarch64")]
        Isa::Neon if tier.has(Feature::DotProd) => unsafe {
            super::neon::chunk_sdot(a, lda, r0, rows, b, sink)
        },
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => unsafe { super::neon::chunk_widen(a, lda, r0, rows, b, sink) },
        // SAFETY: the scalar microkernel needs no CPU feature.
        _ => unsafe { run_chunk::<super::scalar::Portable, T, S>(a, lda, r0, rows, b, sink) },
    }
}

/// `C = A * B` into `out`, split over rayon's threads when large enough.
pub(crate) fn execute(tier: Tier, a: &AView<'_>, b: &PackedB, out: Out<'_>) {
    match a.data() {
        AData::U8(s) => execute_typed(tier, s, a.ld(), a.rows(), b, out),
        AData::I8(s) => execute_typed(tier, s, a.ld(), a.rows(), b, out),
    }
}

fn execute_typed<T: AIn>(tier: Tier, a: &[T], lda: usize, m: usize, b: &PackedB, out: Out<'_>) {
    let n = b.n();
    if m == 0 || n == 0 {
        return;
    }
    // Chunks of whole row tiles, a few per thread so that a thread slowed
    // by other work does not hold the rest up.
    let threads = rayon::current_num_threads();
    let work = m.saturating_mul(n).saturating_mul(b.k().max(1));
    let chunks = if threads > 1 && work >= PAR_WORK { (4 * threads).min(m / ROW_ALIGN) } else { 1 };
    let per = m.div_ceil(chunks.max(1)).next_multiple_of(ROW_ALIGN);
    let k = b.k() as i32;

    match out {
        Out::I32 { c, ldc } if chunks <= 1 => run(tier, a, lda, 0, m, b, &mut I32Sink { c, ldc }),
        Out::I32 { c, ldc } => c.par_chunks_mut(per * ldc).enumerate().for_each(|(t, c)| {
            let r0 = t * per;
            run(tier, a, lda, r0, per.min(m - r0), b, &mut I32Sink { c, ldc })
        }),
        Out::F32 { c, ldc, terms } if chunks <= 1 => {
            let mut sink = F32Sink { c, ldc, terms, colsum: b.col_sums(), row0: 0, k };
            run(tier, a, lda, 0, m, b, &mut sink)
        }
        Out::F32 { c, ldc, terms } => c.par_chunks_mut(per * ldc).enumerate().for_each(|(t, c)| {
            let r0 = t * per;
            let mut sink = F32Sink { c, ldc, terms, colsum: b.col_sums(), row0: r0, k };
            run(tier, a, lda, r0, per.min(m - r0), b, &mut sink)
        }),
    }
}
