//! AVX-512 fast-scan kernel: the AVX2 scheme at twice the width, four
//! sub-quantizers per `vpshufb`, with a masked load for the last one to
//! three (masked-off table bytes are zero and add nothing).

use std::arch::x86_64::*;

/// Quantized sums for `out.len() / 32` whole blocks.
///
/// # Safety
///
/// - The CPU supports AVX-512 F/BW.
/// - `lut.len() >= 16 m`, `packed.len() >= out.len() / 32 * 16 m`,
///   `out.len() % 32 == 0`, `m >= 1`.
#[target_feature(enable = "avx512f,avx512bw")]
pub unsafe fn fastscan(lut: &[u8], m: usize, packed: &[u8], out: &mut [u16]) {
    let blocks = out.len() / 32;
    let (lp, op) = (lut.as_ptr(), out.as_mut_ptr());
    let nib = _mm512_set1_epi8(0x0f);
    let byte = _mm512_set1_epi16(0x00ff);
    for b in 0..blocks {
        let block = packed.as_ptr().add(b * m * 16);
        let mut acc = [_mm512_setzero_si512(); 4];
        let mut j = 0;
        while j < m {
            // Up to four sub-quantizers: 16 bytes each of codes and table.
            let lanes = (m - j).min(4);
            let mask: __mmask64 = if lanes == 4 { u64::MAX } else { (1u64 << (16 * lanes)) - 1 };
            // SAFETY: the mask enables bytes 16j..16(j + lanes), inside the
            // block and inside `lut`.
            let (c, t) = unsafe {
                (
                    _mm512_maskz_loadu_epi8(mask, block.add(j * 16) as *const i8),
                    _mm512_maskz_loadu_epi8(mask, lp.add(j * 16) as *const i8),
                )
            };
            let lo = _mm512_shuffle_epi8(t, _mm512_and_si512(c, nib));
            let hi = _mm512_shuffle_epi8(t, _mm512_and_si512(_mm512_srli_epi16(c, 4), nib));
            acc[0] = _mm512_add_epi16(acc[0], _mm512_and_si512(lo, byte));
            acc[1] = _mm512_add_epi16(acc[1], _mm512_srli_epi16(lo, 8));
            acc[2] = _mm512_add_epi16(acc[2], _mm512_and_si512(hi, byte));
            acc[3] = _mm512_add_epi16(acc[3], _mm512_srli_epi16(hi, 8));
            j += 4;
        }
        // Fold four lanes into one, then interleave even and odd vectors.
        let fold = |v: __m512i| {
            let h = _mm256_add_epi16(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
            _mm_add_epi16(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1))
        };
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
