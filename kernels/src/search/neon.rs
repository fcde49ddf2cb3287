//! NEON search kernels for aarch64.
//!
//! Hamming: `vcntq_u8` counts bits per byte of `query ^ code`; byte counts
//! (at most 8 each) accumulate in u8 lanes for up to 16 registers, then
//! `vaddlvq_u8` folds them into the code's total. 1-word codes go two per
//! register, the two halves summed by pairwise widening adds.
//!
//! int8 dot: without dotprod, `smull`/`smull2` make i16 products and
//! `sadalp` adds adjacent pairs into i32 lanes right away (two products of
//! -128 * -128 would overflow i16). With dotprod, `sdot` through inline
//! assembly, because the `vdotq_s32` intrinsic is not stable. Squared L2
//! widens the difference to i16 (`ssubl`) and squares into i32
//! (`smlal`). f32 uses `fmla` with two accumulators. Tails go to scalar
//! code.

use std::arch::aarch64::*;
use std::arch::asm;

/// Hamming distance of `query` to each code of `codes`.
///
/// # Safety
///
/// - `query` is non-empty and `codes.len() == out.len() * query.len()`.
#[target_feature(enable = "neon")]
pub unsafe fn hamming(query: &[u64], codes: &[u64], out: &mut [u32]) {
    let w = query.len();
    let n = out.len();
    let mut i = 0;

    // Two 1-word codes per register.
    if w == 1 {
        let q = vdupq_n_u64(query[0]);
        while i + 2 <= n {
            // SAFETY: codes i and i + 1 are words i and i + 1 of `codes`.
            let c = unsafe { vld1q_u64(codes.as_ptr().add(i)) };
            let bytes = vcntq_u8(vreinterpretq_u8_u64(veorq_u64(q, c)));
            let per_word = vpaddlq_u32(vpaddlq_u16(vpaddlq_u8(bytes)));
            out[i] = vgetq_lane_u64(per_word, 0) as u32;
            out[i + 1] = vgetq_lane_u64(per_word, 1) as u32;
            i += 2;
        }
    }

    // One code at a time, two words per register.
    let pairs = w / 2;
    while i < n {
        let code = &codes[i * w..(i + 1) * w];
        let mut total = 0u32;
        let mut p = 0;
        while p < pairs {
            let end = (p + 16).min(pairs);
            let mut acc = vdupq_n_u8(0);
            while p < end {
                // SAFETY: words 2p and 2p + 1 < w lie in `query` and `code`.
                let (a, b) = unsafe {
                    (vld1q_u64(query.as_ptr().add(2 * p)), vld1q_u64(code.as_ptr().add(2 * p)))
                };
                acc = vaddq_u8(acc, vcntq_u8(vreinterpretq_u8_u64(veorq_u64(a, b))));
                p += 1;
            }
            total += vaddlvq_u8(acc) as u32;
        }
        if w % 2 == 1 {
            total += (query[w - 1] ^ code[w - 1]).count_ones();
        }
        out[i] = total;
        i += 1;
    }
}

/// `out[i] = query . rows[i]` for i8 rows with `smull` + `sadalp`.
///
/// # Safety
///
/// - `query` is non-empty and `rows.len() == out.len() * query.len()`.
#[target_feature(enable = "neon")]
pub unsafe fn dot_i8(query: &[i8], rows: &[i8], out: &mut [i32]) {
    let d = query.len();
    let full = d / 16 * 16;
    for (row, o) in rows.chunks_exact(d).zip(out.iter_mut()) {
        let mut acc = vdupq_n_s32(0);
        let mut j = 0;
        while j < full {
            // SAFETY: j + 16 <= full <= d, inside `query` and `row`.
            let (a, b) =
                unsafe { (vld1q_s8(query.as_ptr().add(j)), vld1q_s8(row.as_ptr().add(j))) };
            acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(a), vget_low_s8(b)));
            acc = vpadalq_s16(acc, vmull_high_s8(a, b));
            j += 16;
        }
        let mut s = vaddvq_s32(acc);
        for t in full..d {
            s += query[t] as i32 * row[t] as i32;
        }
        *o = s;
    }
}

/// `acc += sdot(a, b)`: each i32 lane gains the dot of four byte pairs.
#[inline(always)]
unsafe fn sdot(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    let mut acc = acc;
    // SAFETY: `sdot` reads and writes only these registers; the caller's
    // target features include dotprod.
    unsafe {
        asm!(
            "sdot {acc:v}.4s, {a:v}.16b, {b:v}.16b",
            acc = inout(vreg) acc,
            a = in(vreg) a,
            b = in(vreg) b,
            options(pure, nomem, nostack),
        );
    }
    acc
}

/// `out[i] = query . rows[i]` for i8 rows with `sdot`.
///
/// # Safety
///
/// - The CPU supports the Armv8.2 dot product instructions.
/// - `query` is non-empty and `rows.len() == out.len() * query.len()`.
#[target_feature(enable = "neon,dotprod")]
pub unsafe fn dot_i8_sdot(query: &[i8], rows: &[i8], out: &mut [i32]) {
    let d = query.len();
    let full = d / 16 * 16;
    for (row, o) in rows.chunks_exact(d).zip(out.iter_mut()) {
        let (mut acc0, mut acc1) = (vdupq_n_s32(0), vdupq_n_s32(0));
        let mut j = 0;
        while j + 32 <= full {
            // SAFETY: j + 32 <= full <= d, inside `query` and `row`.
            unsafe {
                let (a, b) = (vld1q_s8(query.as_ptr().add(j)), vld1q_s8(row.as_ptr().add(j)));
                let (c, e) =
                    (vld1q_s8(query.as_ptr().add(j + 16)), vld1q_s8(row.as_ptr().add(j + 16)));
                acc0 = sdot(acc0, a, b);
                acc1 = sdot(acc1, c, e);
            }
            j += 32;
        }
        if j < full {
            // SAFETY: j + 16 <= full <= d, inside `query` and `row`.
            unsafe {
                let (a, b) = (vld1q_s8(query.as_ptr().add(j)), vld1q_s8(row.as_ptr().add(j)));
                acc0 = sdot(acc0, a, b);
            }
        }
        let mut s = vaddvq_s32(vaddq_s32(acc0, acc1));
        for t in full..d {
            s += query[t] as i32 * row[t] as i32;
        }
        *o = s;
    }
}

/// `out[i] = |query - rows[i]|^2` for i8 rows.
///
/// # Safety
///
/// - `query` is non-empty and `rows.len() == out.len() * query.len()`.
#[target_feature(enable = "neon")]
pub unsafe fn l2sq_i8(query: &[i8], rows: &[i8], out: &mut [u32]) {
    let d = query.len();
    let full = d / 16 * 16;
    for (row, o) in rows.chunks_exact(d).zip(out.iter_mut()) {
        let mut acc = vdupq_n_s32(0);
        let mut j = 0;
        while j < full {
            // SAFETY: j + 16 <= full <= d, inside `query` and `row`.
            let (a, b) =
                unsafe { (vld1q_s8(query.as_ptr().add(j)), vld1q_s8(row.as_ptr().add(j))) };
            let lo = vsubl_s8(vget_low_s8(a), vget_low_s8(b));
            let hi = vsubl_high_s8(a, b);
            acc = vmlal_s16(acc, vget_low_s16(lo), vget_low_s16(lo));
            acc = vmlal_high_s16(acc, lo, lo);
            acc = vmlal_s16(acc, vget_low_s16(hi), vget_low_s16(hi));
            acc = vmlal_high_s16(acc, hi, hi);
            j += 16;
        }
        let mut s = vaddvq_s32(acc) as u32;
        for t in full..d {
            let e = query[t] as i32 - row[t] as i32;
            s += (e * e) as u32;
        }
        *o = s;
    }
}

/// One f32 row against the query: dot (`L2 = false`) or squared L2.
#[inline(always)]
unsafe fn row_f32<const L2: bool>(query: &[f32], row: &[f32]) -> f32 {
    let d = query.len();
    let (qp, rp) = (query.as_ptr(), row.as_ptr());
    let step = |acc: float32x4_t, a: float32x4_t, b: float32x4_t| {
        if L2 {
            let e = vsubq_f32(a, b);
            vfmaq_f32(acc, e, e)
        } else {
            vfmaq_f32(acc, a, b)
        }
    };
    let (mut a0, mut a1) = (vdupq_n_f32(0.0), vdupq_n_f32(0.0));
    let mut j = 0;
    while j + 8 <= d {
        // SAFETY: j + 8 <= d, inside `query` and `row`.
        unsafe {
            a0 = step(a0, vld1q_f32(qp.add(j)), vld1q_f32(rp.add(j)));
            a1 = step(a1, vld1q_f32(qp.add(j + 4)), vld1q_f32(rp.add(j + 4)));
        }
        j += 8;
    }
    if j + 4 <= d {
        // SAFETY: j + 4 <= d, inside `query` and `row`.
        unsafe { a0 = step(a0, vld1q_f32(qp.add(j)), vld1q_f32(rp.add(j))) };
        j += 4;
    }
    let mut s = vaddvq_f32(vaddq_f32(a0, a1));
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
/// - `query` is non-empty and `rows.len() == out.len() * query.len()`.
#[target_feature(enable = "neon")]
pub unsafe fn dot_f32(query: &[f32], rows: &[f32], out: &mut [f32]) {
    for (row, o) in rows.chunks_exact(query.len()).zip(out.iter_mut()) {
        *o = row_f32::<false>(query, row);
    }
}

/// `out[i] = |query - rows[i]|^2` for f32 rows.
///
/// # Safety
///
/// - `query` is non-empty and `rows.len() == out.len() * query.len()`.
#[target_feature(enable = "neon")]
pub unsafe fn l2sq_f32(query: &[f32], rows: &[f32], out: &mut [f32]) {
    for (row, o) in rows.chunks_exact(query.len()).zip(out.iter_mut()) {
        *o = row_f32::<true>(query, row);
    }
}
