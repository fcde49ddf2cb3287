//! AVX2 int8 microkernel: 6 x 8 tiles on widened operands.
//!
//! B bytes are sign-extended to i16 (`vpmovsxbw`), A is packed as i16
//! (zero- or sign-extended), and `vpmaddwd` multiplies and adds adjacent
//! pairs into i32. Every product fits in i16 x i16 -> i32 and a pair sum is
//! at most 2 * 255 * 128 in magnitude, so nothing saturates: the result is
//! exact for any u8 or i8 A. This costs half the rate of `vpmaddubsw`, whose
//! i16 pair sum saturates on inputs such as 255 * 127 twice.
//!
//! Per group of four k, one 16-byte load of B widens to four columns x four
//! k; A's four values of a row are broadcast as one 64-bit lane. Each i32
//! lane then holds half of a column's group, and the two halves are added
//! once at the end with `vphaddd`.

use std::arch::x86_64::*;

use super::driver::{run_chunk, Micro, Sink, TILE};
use super::pack::{AIn, PackedB, GROUP};

/// 6 rows x 8 columns: 12 accumulators, 2 B registers and 1 A broadcast.
pub(crate) struct Avx2;

impl Micro for Avx2 {
    const MR: usize = 6;
    const NR: usize = 8;
    const SHIFT_U8: i32 = 0;
    const SHIFT_I8: i32 = 0;
    type A = i16;

    #[inline(always)]
    unsafe fn tile(
        groups: usize,
        a: *const i16,
        _a_rs: usize,
        _a_gs: usize,
        b: *const i8,
        _panel_stride: usize,
        out: &mut [i32; TILE],
    ) {
        // SAFETY: forwarded from the trait contract.
        unsafe { tile_6x8(groups, a, b, out) }
    }
}

/// # Safety
///
/// - The CPU has AVX2.
/// - `a` points to `groups * 6 * 4` i16 and `b` to 32 readable bytes at the
///   start of each of `groups` 64-byte lines.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn tile_6x8(groups: usize, a: *const i16, b: *const i8, out: &mut [i32; TILE]) {
    const MR: usize = 6;
    let mut acc = [[_mm256_setzero_si256(); 2]; MR];
    for g in 0..groups {
        // SAFETY: group g of this tile lies inside the ranges the caller
        // guarantees: 32 bytes of line g of B, MR x 4 values of A.
        unsafe {
            let bg = b.add(g * 64);
            let lo = _mm256_cvtepi8_epi16(_mm_loadu_si128(bg.cast()));
            let hi = _mm256_cvtepi8_epi16(_mm_loadu_si128(bg.add(16).cast()));
            let ag = a.add(g * MR * GROUP);
            for (r, acc) in acc.iter_mut().enumerate() {
                let av = _mm256_set1_epi64x(ag.add(r * GROUP).cast::<i64>().read_unaligned());
                acc[0] = _mm256_add_epi32(acc[0], _mm256_madd_epi16(av, lo));
                acc[1] = _mm256_add_epi32(acc[1], _mm256_madd_epi16(av, hi));
            }
        }
    }
    // Lanes hold [c0 c0 c1 c1 c2 c2 c3 c3] halves; hadd gives
    // [c0 c1 c4 c5 c2 c3 c6 c7] and the 64-bit permute restores the order.
    for (r, acc) in acc.iter().enumerate() {
        let sum = _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_hadd_epi32(acc[0], acc[1]));
        // SAFETY: row r of an 8-wide tile lies inside the 384-entry buffer.
        unsafe { _mm256_storeu_si256(out.as_mut_ptr().add(r * 8).cast(), sum) };
    }
}

/// [`run_chunk`] on the AVX2 microkernel.
///
/// # Safety
///
/// The CPU has AVX2; the rows lie inside A (see [`run_chunk`]).
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn chunk<T: AIn, S: Sink>(
    a: &[T],
    lda: usize,
    r0: usize,
    rows: usize,
    b: &PackedB,
    sink: &mut S,
) {
    // SAFETY: forwarded from this function's contract.
    unsafe { run_chunk::<Avx2, T, S>(a, lda, r0, rows, b, sink) }
}
