//! AVX2 fast-scan kernel: one 256-bit `vpshufb` looks up two
//! sub-quantizers' 16-entry tables for 16 vectors (low nibbles) and a
//! second one for the other 16 (high nibbles).
//!
//! Accumulation avoids unpacking the looked-up bytes. Each 16-bit lane of
//! a lookup holds an even vector's byte `e` and the next odd vector's byte
//! `o` as `e + 256 o`; the kernel adds whole lanes into one accumulator
//! and `lane >> 8` (the odd bytes) into another. After the block the even
//! sums are `all - (odd << 8)`, exact modulo 2^16 because every true sum
//! stays below 2^16 (`m <= 256`, entries <= 255). That is one shift per
//! lookup instead of a shift and a mask, and the shuffle ports stay free
//! for the lookups.
//!
//! [`fastscan_below`] checks a block's 32 sums against a threshold in
//! registers (saturating `threshold - sum` is non-zero exactly when the
//! sum is below it) and hands the block to the caller only then, so a
//! warm top-k scan stores nothing for nearly every block.

use std::arch::x86_64::*;

/// Adds the lookups of one 32-byte code group into the accumulators.
///
/// # Safety
///
/// - Called only from functions compiled with AVX2 enabled.
#[inline(always)]
unsafe fn step(acc: &mut [__m256i; 4], codes: __m256i, table: __m256i) {
    let nib = _mm256_set1_epi8(0x0f);
    let lo = _mm256_shuffle_epi8(table, _mm256_and_si256(codes, nib));
    let hi = _mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_srli_epi16(codes, 4), nib));
    acc[0] = _mm256_add_epi16(acc[0], lo);
    acc[1] = _mm256_add_epi16(acc[1], _mm256_srli_epi16(lo, 8));
    acc[2] = _mm256_add_epi16(acc[2], hi);
    acc[3] = _mm256_add_epi16(acc[3], _mm256_srli_epi16(hi, 8));
}

/// The folded sums of one block: `[even 0..16 | odd 0..16]` of vectors
/// 0..16 and the same of vectors 16..32, 16 u16 each.
///
/// # Safety
///
/// - Called only from functions compiled with AVX2 enabled.
/// - `lut` holds `16 m` bytes and `block` the block's `16 m` bytes.
#[inline(always)]
unsafe fn block_sums(lut: *const u8, m: usize, block: *const u8) -> (__m256i, __m256i) {
    // acc: all and odd lanes of vectors 0..16, then of vectors 16..32.
    let mut acc = [_mm256_setzero_si256(); 4];
    // Two sub-quantizers per step: their code groups and their tables
    // are both adjacent in memory.
    let mut j = 0;
    while j + 2 <= m {
        // SAFETY: bytes 16j..16j + 32 lie in the block and in `lut`.
        let (c, t) = unsafe {
            (
                _mm256_loadu_si256(block.add(j * 16) as *const __m256i),
                _mm256_loadu_si256(lut.add(j * 16) as *const __m256i),
            )
        };
        step(&mut acc, c, t);
        j += 2;
    }
    if j < m {
        // Odd m: the upper lane gets a zero table, adding nothing.
        // SAFETY: bytes 16j..16j + 16 lie in the block and in `lut`.
        let (c, t) = unsafe {
            (
                _mm_loadu_si128(block.add(j * 16) as *const __m128i),
                _mm_loadu_si128(lut.add(j * 16) as *const __m128i),
            )
        };
        step(&mut acc, _mm256_zextsi128_si256(c), _mm256_zextsi128_si256(t));
    }
    (fold(acc[0], acc[1]), fold(acc[2], acc[3]))
}

/// Sums the two 128-bit lanes of `all` and of `odd` and recovers the even
/// sums: returns `[all - (odd << 8) | odd]` (see the module doc).
#[inline(always)]
unsafe fn fold(all: __m256i, odd: __m256i) -> __m256i {
    let s = _mm256_add_epi16(
        _mm256_permute2x128_si256(all, odd, 0x20),
        _mm256_permute2x128_si256(all, odd, 0x31),
    );
    // s = [all | odd]; subtract odd << 8 from the lower lane only.
    let odd_low = _mm256_permute2x128_si256(s, s, 0x81);
    _mm256_sub_epi16(s, _mm256_slli_epi16(odd_low, 8))
}

/// Writes one block's sums in vector order.
#[inline(always)]
unsafe fn store(v0: __m256i, v1: __m256i, dst: *mut __m128i) {
    let (e0, o0) = (_mm256_castsi256_si128(v0), _mm256_extracti128_si256(v0, 1));
    let (e1, o1) = (_mm256_castsi256_si128(v1), _mm256_extracti128_si256(v1, 1));
    // SAFETY: the caller provides 32 u16 (four 16-byte stores) at dst.
    unsafe {
        _mm_storeu_si128(dst, _mm_unpacklo_epi16(e0, o0));
        _mm_storeu_si128(dst.add(1), _mm_unpackhi_epi16(e0, o0));
        _mm_storeu_si128(dst.add(2), _mm_unpacklo_epi16(e1, o1));
        _mm_storeu_si128(dst.add(3), _mm_unpackhi_epi16(e1, o1));
    }
}

/// Quantized sums for `out.len() / 32` whole blocks.
///
/// # Safety
///
/// - The CPU supports AVX2.
/// - `lut.len() >= 16 m`, `packed.len() >= out.len() / 32 * 16 m`,
///   `out.len() % 32 == 0`, `m >= 1`.
#[target_feature(enable = "avx2")]
pub unsafe fn fastscan(lut: &[u8], m: usize, packed: &[u8], out: &mut [u16]) {
    for b in 0..out.len() / 32 {
        // SAFETY: block b and its 32 outputs are in bounds (preconditions).
        unsafe {
            let (v0, v1) = block_sums(lut.as_ptr(), m, packed.as_ptr().add(b * m * 16));
            store(v0, v1, out.as_mut_ptr().add(b * 32) as *mut __m128i);
        }
    }
}

/// Scans `blocks` whole blocks; a block with some sum below `threshold`
/// goes to `hit(b, sums)` (sums in vector order), which returns the new
/// threshold. Returns the last threshold.
///
/// # Safety
///
/// - The CPU supports AVX2.
/// - `lut.len() >= 16 m`, `packed.len() >= blocks * 16 m`, `m >= 1`.
#[target_feature(enable = "avx2")]
pub unsafe fn fastscan_below(
    lut: &[u8],
    m: usize,
    packed: &[u8],
    blocks: usize,
    mut threshold: u16,
    hit: &mut dyn FnMut(usize, &[u16; 32]) -> u16,
) -> u16 {
    let mut sums = [0u16; 32];
    for b in 0..blocks {
        // SAFETY: block b is in bounds (preconditions).
        let (v0, v1) = unsafe { block_sums(lut.as_ptr(), m, packed.as_ptr().add(b * m * 16)) };
        let t = _mm256_set1_epi16(threshold as i16);
        let below = _mm256_or_si256(_mm256_subs_epu16(t, v0), _mm256_subs_epu16(t, v1));
        if _mm256_testz_si256(below, below) == 0 {
            // SAFETY: `sums` holds 32 u16.
            unsafe { store(v0, v1, sums.as_mut_ptr() as *mut __m128i) };
            threshold = hit(b, &sums);
        }
    }
    threshold
}
