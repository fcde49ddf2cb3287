//! AVX-512 fast-scan kernel: the AVX2 scheme (`avx2.rs` explains the
//! even/odd accumulation) at twice the width, four sub-quantizers per
//! `vpshufb`, so a block of 16 sub-quantizers takes four steps.
//!
//! Why the width pays here only with a cheap epilogue: 512-bit integer
//! work issues on two ports where 256-bit work has three, so the four
//! steps of a block cost about what the AVX2 kernel's eight do, and the
//! per-block reduction decides which kernel is faster. An earlier version
//! folded each accumulator separately (extract, add, extract, add) and
//! re-packed the sums into vector order for every block, which made it
//! slower than AVX2. This one folds the four accumulators together with
//! six `vshufi64x2` and five adds into one register holding all 32 sums
//! `[even 0..16 | odd 0..16 | even 16..32 | odd 16..32]`, compares that
//! register against the threshold into a 32-bit mask, and re-orders the
//! sums only for the rare block that has a candidate. Whole steps load
//! unmasked; the last one to three sub-quantizers take one masked step.

use std::arch::x86_64::*;

/// Adds the lookups of one 64-byte code group into the accumulators.
///
/// # Safety
///
/// - Called only from functions compiled with AVX-512 F/BW enabled.
#[inline(always)]
unsafe fn step(acc: &mut [__m512i; 4], codes: __m512i, table: __m512i) {
    let nib = _mm512_set1_epi8(0x0f);
    let lo = _mm512_shuffle_epi8(table, _mm512_and_si512(codes, nib));
    let hi = _mm512_shuffle_epi8(table, _mm512_and_si512(_mm512_srli_epi16(codes, 4), nib));
    acc[0] = _mm512_add_epi16(acc[0], lo);
    acc[1] = _mm512_add_epi16(acc[1], _mm512_srli_epi16(lo, 8));
    acc[2] = _mm512_add_epi16(acc[2], hi);
    acc[3] = _mm512_add_epi16(acc[3], _mm512_srli_epi16(hi, 8));
}

/// The 32 sums of one block as
/// `[even 0..16 | odd 0..16 | even 16..32 | odd 16..32]` (8 u16 each).
///
/// # Safety
///
/// - Called only from functions compiled with AVX-512 F/BW enabled.
/// - `lut` holds `16 m` bytes and `block` the block's `16 m` bytes;
///   `tail` enables the last `16 (m % 4)` bytes of a 64-byte step.
#[inline(always)]
unsafe fn block_sums(lut: *const u8, m: usize, block: *const u8, tail: __mmask64) -> __m512i {
    let mut acc = [_mm512_setzero_si512(); 4];
    let whole = m / 4 * 4;
    let mut j = 0;
    while j < whole {
        // SAFETY: bytes 16j..16j + 64 lie in the block and in `lut`.
        let (c, t) = unsafe {
            (
                _mm512_loadu_si512(block.add(j * 16) as *const _),
                _mm512_loadu_si512(lut.add(j * 16) as *const _),
            )
        };
        step(&mut acc, c, t);
        j += 4;
    }
    if whole < m {
        // SAFETY: the mask enables bytes 16j..16m only, inside the block
        // and `lut`; masked-off table bytes are zero and add nothing.
        let (c, t) = unsafe {
            (
                _mm512_maskz_loadu_epi8(tail, block.add(j * 16) as *const i8),
                _mm512_maskz_loadu_epi8(tail, lut.add(j * 16) as *const i8),
            )
        };
        step(&mut acc, c, t);
    }
    // Lanes of x: x0..x3. Pairs first: [a0+a2, a1+a3, b0+b2, b1+b3].
    let pair = |a: __m512i, b: __m512i| {
        _mm512_add_epi16(_mm512_shuffle_i64x2(a, b, 0x44), _mm512_shuffle_i64x2(a, b, 0xee))
    };
    let (p01, p23) = (pair(acc[0], acc[1]), pair(acc[2], acc[3]));
    // Then [all_lo, odd_lo, all_hi, odd_hi], each a full sum of 4 lanes.
    let s = _mm512_add_epi16(
        _mm512_shuffle_i64x2(p01, p23, 0x88),
        _mm512_shuffle_i64x2(p01, p23, 0xdd),
    );
    // Even sums: subtract odd << 8 in lanes 0 and 2 only.
    let odd = _mm512_shuffle_i64x2(s, s, 0xf5);
    _mm512_mask_sub_epi16(s, 0x00ff_00ff, s, _mm512_slli_epi16(odd, 8))
}

/// Writes `[even 0..16 | odd 0..16 | even 16..32 | odd 16..32]` sums in
/// vector order.
#[inline(always)]
unsafe fn store(s: __m512i, dst: *mut __m128i) {
    let (e0, o0) = (_mm512_castsi512_si128(s), _mm512_extracti32x4_epi32(s, 1));
    let (e1, o1) = (_mm512_extracti32x4_epi32(s, 2), _mm512_extracti32x4_epi32(s, 3));
    // SAFETY: the caller provides 32 u16 (four 16-byte stores) at dst.
    unsafe {
        _mm_storeu_si128(dst, _mm_unpacklo_epi16(e0, o0));
        _mm_storeu_si128(dst.add(1), _mm_unpackhi_epi16(e0, o0));
        _mm_storeu_si128(dst.add(2), _mm_unpacklo_epi16(e1, o1));
        _mm_storeu_si128(dst.add(3), _mm_unpackhi_epi16(e1, o1));
    }
}

/// The masked-load mask of the last partial step (unused when 4 | m).
fn tail_mask(m: usize) -> __mmask64 {
    match m % 4 {
        0 => 0,
        r => (1u64 << (16 * r)) - 1,
    }
}

/// Quantized sums for `out.len() / 32` whole blocks.
///
/// # Safety
///
/// - The CPU supports AVX-512 F/BW.
/// - `lut.len() >= 16 m`, `packed.len() >= out.len() / 32 * 16 m`,
///   `out.len() % 32 == 0`, `m >= 1`.
#[target_feature(enable = "avx512f,avx512bw")]
pub unsafe fn fastscan(lut: &[u8], m: usize, packed: &[u8], out: &mut [u16]) {
    let tail = tail_mask(m);
    for b in 0..out.len() / 32 {
        // SAFETY: block b and its 32 outputs are in bounds (preconditions).
        unsafe {
            let s = block_sums(lut.as_ptr(), m, packed.as_ptr().add(b * m * 16), tail);
            store(s, out.as_mut_ptr().add(b * 32) as *mut __m128i);
        }
    }
}

/// Scans `blocks` whole blocks; a block with some sum below `threshold`
/// goes to `hit(b, sums)` (sums in vector order), which returns the new
/// threshold. Returns the last threshold.
///
/// # Safety
///
/// - The CPU supports AVX-512 F/BW.
/// - `lut.len() >= 16 m`, `packed.len() >= blocks * 16 m`, `m >= 1`.
#[target_feature(enable = "avx512f,avx512bw")]
pub unsafe fn fastscan_below(
    lut: &[u8],
    m: usize,
    packed: &[u8],
    blocks: usize,
    mut threshold: u16,
    hit: &mut dyn FnMut(usize, &[u16; 32]) -> u16,
) -> u16 {
    let tail = tail_mask(m);
    let mut sums = [0u16; 32];
    let mut t = _mm512_set1_epi16(threshold as i16);
    for b in 0..blocks {
        // SAFETY: block b is in bounds (preconditions).
        let s = unsafe { block_sums(lut.as_ptr(), m, packed.as_ptr().add(b * m * 16), tail) };
        if _mm512_cmplt_epu16_mask(s, t) != 0 {
            // SAFETY: `sums` holds 32 u16.
            unsafe { store(s, sums.as_mut_ptr() as *mut __m128i) };
            threshold = hit(b, &sums);
            t = _mm512_set1_epi16(threshold as i16);
        }
    }
    threshold
}
