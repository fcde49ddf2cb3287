//! AVX2 search kernels (also the fallback of the `avx512` tier for Hamming
//! when VPOPCNTDQ is masked off).
//!
//! Hamming: codes shorter than 8 words go through the scalar `popcnt`
//! instruction, one word at a time with the word count fixed at compile
//! time for 1, 2 and 4 words; longer codes use the nibble lookup
//! (`vpshufb` on each half-byte, `vpsadbw` to sum bytes into u64 lanes).
//! The split at [`LUT_MIN_WORDS`] = 8 was measured on Sapphire Rapids
//! (test `ab::hamming_paths_timing`, 65 536 codes, best of 200 interleaved
//! runs on a busy machine): 4 words, popcnt 1.50 ns per code against 1.77
//! for the lookup; 8 words, 3.08 against 2.80; 16 words, 6.50 against
//! 5.64. The lookup pays one horizontal reduction per code, which only
//! longer codes amortise.
//!
//! int8: both operands are sign-extended to i16 (`vpmovsxbw`) and
//! multiplied pairwise into i32 (`vpmaddwd`); no saturation can occur since
//! one pair sums to at most 2 * 128 * 128. f32 uses FMA with four
//! independent accumulators. Row tails shorter than a vector go to scalar
//! code.

use std::arch::x86_64::*;

/// Sum of the eight i32 lanes.
///
/// # Safety
///
/// - Called only from functions compiled with AVX2 enabled.
#[inline(always)]
unsafe fn hsum_epi32(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b01_00_11_10));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b10_11_00_01));
    _mm_cvtsi128_si32(s)
}

/// Sum of the eight f32 lanes.
///
/// # Safety
///
/// - Called only from functions compiled with AVX2 enabled.
#[inline(always)]
unsafe fn hsum_ps(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

/// Hamming distances with the word count known at compile time.
///
/// # Safety
///
/// - Called only from functions compiled with POPCNT enabled.
/// - `query.len() == W` and `codes.len() == out.len() * W`.
#[inline(always)]
unsafe fn hamming_fixed<const W: usize>(query: &[u64], codes: &[u64], out: &mut [u32]) {
    let q: [u64; W] = std::array::from_fn(|j| query[j]);
    for (code, o) in codes.chunks_exact(W).zip(out.iter_mut()) {
        let mut d = 0u32;
        for j in 0..W {
            d += (q[j] ^ code[j]).count_ones();
        }
        *o = d;
    }
}

/// Popcount of each byte of `v`, by looking up each nibble.
///
/// # Safety
///
/// - Called only from functions compiled with AVX2 enabled.
#[inline(always)]
unsafe fn popcnt_bytes(v: __m256i, lut: __m256i, low: __m256i) -> __m256i {
    let lo = _mm256_and_si256(v, low);
    let hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
    _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo), _mm256_shuffle_epi8(lut, hi))
}

/// Hamming distance of `query` to each code of `codes`: `popcnt` below
/// [`LUT_MIN_WORDS`] words, the nibble lookup from there (see the module
/// doc for the measurement).
///
/// # Safety
///
/// - The CPU supports AVX2 and POPCNT.
/// - `query` is non-empty and `codes.len() == out.len() * query.len()`.
#[target_feature(enable = "avx2,popcnt")]
pub unsafe fn hamming(query: &[u64], codes: &[u64], out: &mut [u32]) {
    if query.len() < LUT_MIN_WORDS {
        hamming_popcnt(query, codes, out)
    } else {
        hamming_lut(query, codes, out)
    }
}

/// Codes of at least this many words take the nibble-lookup path.
pub const LUT_MIN_WORDS: usize = 8;

/// Word by word with `popcnt`; widths 1, 2 and 4 unrolled.
///
/// # Safety
///
/// As for [`hamming`].
#[target_feature(enable = "avx2,popcnt")]
pub unsafe fn hamming_popcnt(query: &[u64], codes: &[u64], out: &mut [u32]) {
    match query.len() {
        1 => hamming_fixed::<1>(query, codes, out),
        2 => hamming_fixed::<2>(query, codes, out),
        4 => hamming_fixed::<4>(query, codes, out),
        w => {
            for (code, o) in codes.chunks_exact(w).zip(out.iter_mut()) {
                *o = query.iter().zip(code).map(|(a, b)| (a ^ b).count_ones()).sum();
            }
        }
    }
}

/// Nibble lookup over four words at a time, remaining words by `popcnt`.
///
/// # Safety
///
/// As for [`hamming`].
#[target_feature(enable = "avx2,popcnt")]
pub unsafe fn hamming_lut(query: &[u64], codes: &[u64], out: &mut [u32]) {
    let w = query.len();
    // Byte counts (<= 8 each) are summed into u64 lanes by vpsadbw every
    // step, so nothing overflows.
    let lut = _mm256_setr_epi8(
        0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, //
        0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
    );
    let low = _mm256_set1_epi8(0x0f);
    let zero = _mm256_setzero_si256();
    let full = w / 4 * 4;
    for (code, o) in codes.chunks_exact(w).zip(out.iter_mut()) {
        let mut acc = _mm256_setzero_si256();
        let mut j = 0;
        while j < full {
            // SAFETY: j + 4 <= full <= w, the length of both `query` and `code`.
            let (a, b) = unsafe {
                (
                    _mm256_loadu_si256(query.as_ptr().add(j) as *const __m256i),
                    _mm256_loadu_si256(code.as_ptr().add(j) as *const __m256i),
                )
            };
            let c = popcnt_bytes(_mm256_xor_si256(a, b), lut, low);
            acc = _mm256_add_epi64(acc, _mm256_sad_epu8(c, zero));
            j += 4;
        }
        let s = _mm_add_epi64(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
        let mut d = (_mm_cvtsi128_si64(s) + _mm_extract_epi64(s, 1)) as u32;
        for t in full..w {
            d += (query[t] ^ code[t]).count_ones();
        }
        *o = d;
    }
}

/// `out[i] = query . rows[i]` for i8 rows, in i32.
///
/// # Safety
///
/// - The CPU supports AVX2.
/// - `query` is non-empty and `rows.len() == out.len() * query.len()`.
#[target_feature(enable = "avx2")]
pub unsafe fn dot_i8(query: &[i8], rows: &[i8], out: &mut [i32]) {
    let d = query.len();
    let full = d / 16 * 16;
    for (row, o) in rows.chunks_exact(d).zip(out.iter_mut()) {
        let mut acc = _mm256_setzero_si256();
        let mut j = 0;
        while j < full {
            // SAFETY: j + 16 <= full <= d, the length of `query` and `row`.
            let (a, b) = unsafe {
                (
                    _mm_loadu_si128(query.as_ptr().add(j) as *const __m128i),
                    _mm_loadu_si128(row.as_ptr().add(j) as *const __m128i),
                )
            };
            let p = _mm256_madd_epi16(_mm256_cvtepi8_epi16(a), _mm256_cvtepi8_epi16(b));
            acc = _mm256_add_epi32(acc, p);
            j += 16;
        }
        let mut s = hsum_epi32(acc);
        for t in full..d {
            s += query[t] as i32 * row[t] as i32;
        }
        *o = s;
    }
}

/// `out[i] = |query - rows[i]|^2` for i8 rows, in u32.
///
/// # Safety
///
/// - The CPU supports AVX2.
/// - `query` is non-empty and `rows.len() == out.len() * query.len()`.
#[target_feature(enable = "avx2")]
pub unsafe fn l2sq_i8(query: &[i8], rows: &[i8], out: &mut [u32]) {
    let d = query.len();
    let full = d / 16 * 16;
    for (row, o) in rows.chunks_exact(d).zip(out.iter_mut()) {
        let mut acc = _mm256_setzero_si256();
        let mut j = 0;
        while j < full {
            // SAFETY: j + 16 <= full <= d, the length of `query` and `row`.
            let (a, b) = unsafe {
                (
                    _mm_loadu_si128(query.as_ptr().add(j) as *const __m128i),
                    _mm_loadu_si128(row.as_ptr().add(j) as *const __m128i),
                )
            };
            // Differences lie in [-255, 255]; two squares sum to < 2^17.
            let diff = _mm256_sub_epi16(_mm256_cvtepi8_epi16(a), _mm256_cvtepi8_epi16(b));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(diff, diff));
            j += 16;
        }
        let mut s = hsum_epi32(acc) as u32;
        for t in full..d {
            let e = query[t] as i32 - row[t] as i32;
            s += (e * e) as u32;
        }
        *o = s;
    }
}

/// One f32 row against the query: dot (`L2 = false`) or squared L2.
///
/// # Safety
///
/// - Called only from functions compiled with AVX2 and FMA enabled.
/// - `row.len() >= query.len()`.
#[inline(always)]
unsafe fn row_f32<const L2: bool>(query: &[f32], row: &[f32]) -> f32 {
    let d = query.len();
    let (qp, rp) = (query.as_ptr(), row.as_ptr());
    let mut acc = [_mm256_setzero_ps(); 4];
    let step = |acc: __m256, a: __m256, b: __m256| {
        if L2 {
            let e = _mm256_sub_ps(a, b);
            _mm256_fmadd_ps(e, e, acc)
        } else {
            _mm256_fmadd_ps(a, b, acc)
        }
    };
    let mut j = 0;
    while j + 32 <= d {
        for (u, a) in acc.iter_mut().enumerate() {
            // SAFETY: j + 8u + 8 <= j + 32 <= d, inside `query` and `row`.
            let (x, y) =
                unsafe { (_mm256_loadu_ps(qp.add(j + 8 * u)), _mm256_loadu_ps(rp.add(j + 8 * u))) };
            *a = step(*a, x, y);
        }
        j += 32;
    }
    while j + 8 <= d {
        // SAFETY: j + 8 <= d, inside `query` and `row`.
        let (x, y) = unsafe { (_mm256_loadu_ps(qp.add(j)), _mm256_loadu_ps(rp.add(j))) };
        acc[0] = step(acc[0], x, y);
        j += 8;
    }
    let v = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    let mut s = hsum_ps(v);
    for t in j..d {
        if L2 {
            let e = query[t] - row[t];
            s += e * e;
        } else {
            s += query[t] * row[t];
        }
    }
    s
}

/// `out[i] = query . rows[i]` for f32 rows.
///
/// # Safety
///
/// - The CPU supports AVX2 and FMA.
/// - `query` is non-empty and `rows.len() == out.len() * query.len()`.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn dot_f32(query: &[f32], rows: &[f32], out: &mut [f32]) {
    for (row, o) in rows.chunks_exact(query.len()).zip(out.iter_mut()) {
        *o = row_f32::<false>(query, row);
    }
}

/// `out[i] = |query - rows[i]|^2` for f32 rows.
///
/// # Safety
///
/// - The CPU supports AVX2 and FMA.
/// - `query` is non-empty and `rows.len() == out.len() * query.len()`.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn l2sq_f32(query: &[f32], rows: &[f32], out: &mut [f32]) {
    for (row, o) in rows.chunks_exact(query.len()).zip(out.iter_mut()) {
        *o = row_f32::<true>(query, row);
    }
}

#[cfg(test)]
mod ab {
    /// Interleaved A/B timing of the two Hamming paths (min of many runs,
    /// which resists a busy machine); run with `--ignored --nocapture`.
    #[test]
    #[ignore = "a timing printout for choosing the Hamming path; asserts nothing"]
    fn hamming_paths_timing() {
        use std::time::Instant;
        if !std::arch::is_x86_feature_detected!("avx2") {
            return;
        }
        let n = 1 << 16;
        for w in [2usize, 4, 8, 16] {
            let mut s = 0x9e3779b97f4a7c15u64;
            let codes: Vec<u64> = (0..n * w)
                .map(|_| {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    s
                })
                .collect();
            let q = codes[..w].to_vec();
            let mut out = vec![0u32; n];
            let (mut best_p, mut best_l) = (f64::MAX, f64::MAX);
            for _ in 0..200 {
                let t = Instant::now();
                // SAFETY: AVX2 checked above (POPCNT comes with it here); shapes match.
                unsafe { super::hamming_popcnt(&q, &codes, &mut out) };
                best_p = best_p.min(t.elapsed().as_secs_f64());
                let t = Instant::now();
                // SAFETY: as above.
                unsafe { super::hamming_lut(&q, &codes, &mut out) };
                best_l = best_l.min(t.elapsed().as_secs_f64());
            }
            let ns = |x: f64| x * 1e9 / n as f64;
            println!("w={w}: popcnt {:.3} ns/code, lut {:.3} ns/code", ns(best_p), ns(best_l));
        }
    }
}
