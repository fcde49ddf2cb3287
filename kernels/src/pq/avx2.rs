//! AVX2 fast-scan kernel: one 256-bit `vpshufb` looks up two
//! sub-quantizers' 16-entry tables for 16 vectors (low nibbles) and a
//! second one for the other 16 (high nibbles). Byte results are added into
//! u16 lanes split by parity (`and 0x00ff` for even vectors, `>> 8` for
//! odd) instead of unpacking, which keeps the shuffle port free for the
//! lookups; the lanes are interleaved back into vector order once per block.

use std::arch::x86_64::*;

/// Adds the lookups of one 32-byte code group into the four accumulators
/// (even/odd vectors of the low and high nibbles).
#[inline(always)]
unsafe fn step(acc: &mut [__m256i; 4], codes: __m256i, lut: __m256i) {
    let nib = _mm256_set1_epi8(0x0f);
    let byte = _mm256_set1_epi16(0x00ff);
    let lo = _mm256_shuffle_epi8(lut, _mm256_and_si256(codes, nib));
    let hi = _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(codes, 4), nib));
    acc[0] = _mm256_add_epi16(acc[0], _mm256_and_si256(lo, byte));
    acc[1] = _mm256_add_epi16(acc[1], _mm256_srli_epi16(lo, 8));
    acc[2] = _mm256_add_epi16(acc[2], _mm256_and_si256(hi, byte));
    acc[3] = _mm256_add_epi16(acc[3], _mm256_srli_epi16(hi, 8));
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
    let blocks = out.len() / 32;
    let (lp, op) = (lut.as_ptr(), out.as_mut_ptr());
    for b in 0..blocks {
        let block = packed.as_ptr().add(b * m * 16);
        let mut acc = [_mm256_setzero_si256(); 4];
        let mut j = 0;
        // Two sub-quantizers per step: their code groups and their tables
        // are both adjacent in memory.
        while j + 2 <= m {
            // SAFETY: bytes 16j..16j + 32 lie in the block and in `lut`.
            let (c, t) = unsafe {
                (
                    _mm256_loadu_si256(block.add(j * 16) as *const __m256i),
                    _mm256_loadu_si256(lp.add(j * 16) as *const __m256i),
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
                    _mm_loadu_si128(lp.add(j * 16) as *const __m128i),
                )
            };
            let z = _mm_setzero_si128();
            step(&mut acc, _mm256_set_m128i(z, c), _mm256_set_m128i(z, t));
        }
        // Fold the two lanes, then interleave even and odd vectors:
        // acc[0]/acc[1] are vectors 0..16, acc[2]/acc[3] vectors 16..32.
        let fold =
            |v: __m256i| _mm_add_epi16(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
        let (e0, o0, e1, o1) = (fold(acc[0]), fold(acc[1]), fold(acc[2]), fold(acc[3]));
        let dst = op.add(b * 32) as *mut __m128i;
        // SAFETY: out holds 32 u16 (four 16-byte stores) for block b.
        unsafe {
            _mm_storeu_si128(dst, _mm_unpacklo_epi16(e0, o0));
            _mm_storeu_si128(dst.add(1), _mm_unpackhi_epi16(e0, o0));
            _mm_storeu_si128(dst.add(2), _mm_unpacklo_epi16(e1, o1));
            _mm_storeu_si128(dst.add(3), _mm_unpackhi_epi16(e1, o1));
        }
    }
}
