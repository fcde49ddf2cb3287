//! AVX-512 search kernels.
//!
//! Hamming (needs VPOPCNTDQ): the query is XORed against 512-bit loads and
//! `vpopcntq` counts each word. Short codes share a register: 1-word codes
//! eight per load, 2-word codes four, 4-word (256-bit) codes two; eight
//! codes are finished together by a small add-and-shuffle tree that leaves
//! their eight distances in code order. Other widths run one code at a
//! time with masked loads for the last partial register.
//!
//! int8 dot with VNNI: `vpdpbusd` multiplies unsigned by signed bytes, so
//! each row byte is shifted to unsigned (`r + 128`, an XOR with 0x80) and
//! the query stays signed: `sum (r + 128) q = r.q + 128 sum q`, and the
//! per-query `128 sum q` is subtracted once per row. Every i8 value,
//! -128 included, maps to 0..=255, so the identity is exact. Without VNNI
//! the bytes are widened to i16 (`vpmovsxbw`) and multiplied with
//! `vpmaddwd`. Squared L2 always widens, since differences need 9 bits.
//! Tails are masked loads (zero bytes contribute nothing).

use std::arch::x86_64::*;

/// Mask of the first `n` (< 64) lanes.
#[inline(always)]
fn first_u64(n: usize) -> u64 {
    if n >= 64 {
        u64::MAX
    } else {
        (1u64 << n) - 1
    }
}

/// Popcount of `a ^ b` per u64 lane.
#[inline(always)]
unsafe fn xor_pop(a: __m512i, b: __m512i) -> __m512i {
    _mm512_popcnt_epi64(_mm512_xor_si512(a, b))
}

/// Hamming distance of `query` to each code of `codes`.
///
/// # Safety
///
/// - The CPU supports AVX-512 F/BW/VL and VPOPCNTDQ.
/// - `query` is non-empty and `codes.len() == out.len() * query.len()`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vpopcntdq")]
pub unsafe fn hamming(query: &[u64], codes: &[u64], out: &mut [u32]) {
    let w = query.len();
    let n = out.len();
    let cp = codes.as_ptr();
    let mut i = 0;

    // Eight codes per step for 1, 2 and 4 words: w registers in, one
    // register of eight u64 distances out.
    if matches!(w, 1 | 2 | 4) {
        // The query repeated to fill a register.
        let q = _mm512_set_epi64(
            query[7 % w] as i64,
            query[6 % w] as i64,
            query[5 % w] as i64,
            query[4 % w] as i64,
            query[3 % w] as i64,
            query[2 % w] as i64,
            query[1 % w] as i64,
            query[0] as i64,
        );
        while i + 8 <= n {
            let base = cp.add(i * w);
            // SAFETY (all loads below): codes i..i+8 occupy words
            // i*w..(i+8)*w, which lie inside `codes`.
            let dist = match w {
                1 => xor_pop(q, _mm512_loadu_si512(base as *const _)),
                2 => {
                    // r0 = [c0 c0 c1 c1 c2 c2 c3 c3], r1 likewise c4..c7.
                    let r0 = xor_pop(q, _mm512_loadu_si512(base as *const _));
                    let r1 = xor_pop(q, _mm512_loadu_si512(base.add(8) as *const _));
                    // [c0 c4 c1 c5 c2 c6 c3 c7] -> c0..c7.
                    let s = _mm512_add_epi64(
                        _mm512_unpacklo_epi64(r0, r1),
                        _mm512_unpackhi_epi64(r0, r1),
                    );
                    _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 2, 4, 6, 1, 3, 5, 7), s)
                }
                _ => {
                    // Each register holds two codes of four words.
                    let r0 = xor_pop(q, _mm512_loadu_si512(base as *const _));
                    let r1 = xor_pop(q, _mm512_loadu_si512(base.add(8) as *const _));
                    let r2 = xor_pop(q, _mm512_loadu_si512(base.add(16) as *const _));
                    let r3 = xor_pop(q, _mm512_loadu_si512(base.add(24) as *const _));
                    // Pair sums: a = [c0a c2a c0b c2b c1a c3a c1b c3b]
                    // (a = words 0+1, b = words 2+3), b likewise c4..c7.
                    let a = _mm512_add_epi64(
                        _mm512_unpacklo_epi64(r0, r1),
                        _mm512_unpackhi_epi64(r0, r1),
                    );
                    let b = _mm512_add_epi64(
                        _mm512_unpacklo_epi64(r2, r3),
                        _mm512_unpackhi_epi64(r2, r3),
                    );
                    // Even 128-bit lanes hold the "a" halves, odd the "b"
                    // halves: [c0 c2 c1 c3 c4 c6 c5 c7] after the add.
                    let lo = _mm512_shuffle_i64x2(a, b, 0x88);
                    let hi = _mm512_shuffle_i64x2(a, b, 0xdd);
                    let s = _mm512_add_epi64(lo, hi);
                    _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 2, 1, 3, 4, 6, 5, 7), s)
                }
            };
            // SAFETY: i + 8 <= n = out.len().
            unsafe {
                _mm256_storeu_si256(
                    out.as_mut_ptr().add(i) as *mut __m256i,
                    _mm512_cvtepi64_epi32(dist),
                )
            };
            i += 8;
        }
    }

    // One code at a time, eight words per register, the last one masked.
    while i < n {
        let code = cp.add(i * w);
        let mut acc = _mm512_setzero_si512();
        let mut j = 0;
        while j < w {
            let m = first_u64(w - j) as __mmask8;
            // SAFETY: the mask enables only words j..min(j + 8, w), inside
            // `query` and inside code i of `codes`.
            let (a, b) = unsafe {
                (
                    _mm512_maskz_loadu_epi64(m, query.as_ptr().add(j) as *const i64),
                    _mm512_maskz_loadu_epi64(m, code.add(j) as *const i64),
                )
            };
            acc = _mm512_add_epi64(acc, xor_pop(a, b));
            j += 8;
        }
        out[i] = _mm512_reduce_add_epi64(acc) as u32;
        i += 1;
    }
}

/// `out[i] = query . rows[i]` for i8 rows with `vpdpbusd`.
///
/// # Safety
///
/// - The CPU supports AVX-512 F/BW/VL and VNNI.
/// - `query` is non-empty and `rows.len() == out.len() * query.len()`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
pub unsafe fn dot_i8_vnni(query: &[i8], rows: &[i8], out: &mut [i32]) {
    let d = query.len();
    // The compensation term 128 * sum(q), |.| <= 128 * 128 * d.
    let comp: i32 = 128 * query.iter().map(|&x| x as i32).sum::<i32>();
    let flip = _mm512_set1_epi8(0x80u8 as i8);
    for (row, o) in rows.chunks_exact(d).zip(out.iter_mut()) {
        let mut acc = _mm512_setzero_si512();
        let mut j = 0;
        while j < d {
            let m = first_u64(d - j);
            // SAFETY: the mask enables only bytes j..min(j + 64, d).
            let (q, r) = unsafe {
                (
                    _mm512_maskz_loadu_epi8(m, query.as_ptr().add(j)),
                    _mm512_maskz_loadu_epi8(m, row.as_ptr().add(j)),
                )
            };
            // Masked-off lanes: r' = 0x80 but q = 0, so they add nothing.
            acc = _mm512_dpbusd_epi32(acc, _mm512_xor_si512(r, flip), q);
            j += 64;
        }
        *o = _mm512_reduce_add_epi32(acc) - comp;
    }
}

/// `out[i] = query . rows[i]` for i8 rows by widening to i16.
///
/// # Safety
///
/// - The CPU supports AVX-512 F/BW/VL.
/// - `query` is non-empty and `rows.len() == out.len() * query.len()`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub unsafe fn dot_i8_widen(query: &[i8], rows: &[i8], out: &mut [i32]) {
    let d = query.len();
    for (row, o) in rows.chunks_exact(d).zip(out.iter_mut()) {
        let mut acc = _mm512_setzero_si512();
        let mut j = 0;
        while j < d {
            let m = first_u64(d - j) as __mmask32;
            // SAFETY: the mask enables only bytes j..min(j + 32, d).
            let (q, r) = unsafe {
                (
                    _mm256_maskz_loadu_epi8(m, query.as_ptr().add(j)),
                    _mm256_maskz_loadu_epi8(m, row.as_ptr().add(j)),
                )
            };
            let p = _mm512_madd_epi16(_mm512_cvtepi8_epi16(q), _mm512_cvtepi8_epi16(r));
            acc = _mm512_add_epi32(acc, p);
            j += 32;
        }
        *o = _mm512_reduce_add_epi32(acc);
    }
}

/// `out[i] = |query - rows[i]|^2` for i8 rows.
///
/// # Safety
///
/// - The CPU supports AVX-512 F/BW/VL.
/// - `query` is non-empty and `rows.len() == out.len() * query.len()`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub unsafe fn l2sq_i8(query: &[i8], rows: &[i8], out: &mut [u32]) {
    let d = query.len();
    for (row, o) in rows.chunks_exact(d).zip(out.iter_mut()) {
        let mut acc = _mm512_setzero_si512();
        let mut j = 0;
        while j < d {
            let m = first_u64(d - j) as __mmask32;
            // SAFETY: the mask enables only bytes j..min(j + 32, d).
            let (q, r) = unsafe {
                (
                    _mm256_maskz_loadu_epi8(m, query.as_ptr().add(j)),
                    _mm256_maskz_loadu_epi8(m, row.as_ptr().add(j)),
                )
            };
            let e = _mm512_sub_epi16(_mm512_cvtepi8_epi16(q), _mm512_cvtepi8_epi16(r));
            acc = _mm512_add_epi32(acc, _mm512_madd_epi16(e, e));
            j += 32;
        }
        *o = _mm512_reduce_add_epi32(acc) as u32;
    }
}

/// One f32 row against the query: dot (`L2 = false`) or squared L2.
#[inline(always)]
unsafe fn row_f32<const L2: bool>(query: &[f32], row: &[f32]) -> f32 {
    let d = query.len();
    let (qp, rp) = (query.as_ptr(), row.as_ptr());
    let step = |acc: __m512, a: __m512, b: __m512| {
        if L2 {
            let e = _mm512_sub_ps(a, b);
            _mm512_fmadd_ps(e, e, acc)
        } else {
            _mm512_fmadd_ps(a, b, acc)
        }
    };
    let (mut a0, mut a1) = (_mm512_setzero_ps(), _mm512_setzero_ps());
    let mut j = 0;
    while j + 32 <= d {
        // SAFETY: j + 32 <= d, inside `query` and `row`.
        unsafe {
            a0 = step(a0, _mm512_loadu_ps(qp.add(j)), _mm512_loadu_ps(rp.add(j)));
            a1 = step(a1, _mm512_loadu_ps(qp.add(j + 16)), _mm512_loadu_ps(rp.add(j + 16)));
        }
        j += 32;
    }
    while j < d {
        let m = first_u64(d - j) as __mmask16;
        // SAFETY: the mask enables only elements j..min(j + 16, d).
        unsafe {
            a0 = step(a0, _mm512_maskz_loadu_ps(m, qp.add(j)), _mm512_maskz_loadu_ps(m, rp.add(j)));
        }
        j += 16;
    }
    _mm512_reduce_add_ps(_mm512_add_ps(a0, a1))
}

/// `out[i] = query . rows[i]` for f32 rows.
///
/// # Safety
///
/// - The CPU supports AVX-512 F.
/// - `query` is non-empty and `rows.len() == out.len() * query.len()`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub unsafe fn dot_f32(query: &[f32], rows: &[f32], out: &mut [f32]) {
    for (row, o) in rows.chunks_exact(query.len()).zip(out.iter_mut()) {
        *o = row_f32::<false>(query, row);
    }
}

/// `out[i] = |query - rows[i]|^2` for f32 rows.
///
/// # Safety
///
/// - The CPU supports AVX-512 F.
/// - `query` is non-empty and `rows.len() == out.len() * query.len()`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub unsafe fn l2sq_f32(query: &[f32], rows: &[f32], out: &mut [f32]) {
    for (row, o) in rows.chunks_exact(query.len()).zip(out.iter_mut()) {
        *o = row_f32::<true>(query, row);
    }
}
