//! NEON int8 microkernels: `sdot` with the dot-product extension, i16
//! multiplies with pairwise accumulation without it.
//!
//! dotprod: `sdot v.4s, b.16b, a.4b[l]` adds, to each i32 lane, the dot
//! product of four i8 of B (one column's group) with the four i8 of A in
//! lane `l` (one row's group), which matches the packed layouts: a 16-byte
//! load of B is 4 columns x 4 k, one of A is 4 rows x 4 k. The intrinsic
//! is unstable, so the instruction is written with `asm!`. `sdot` takes
//! signed bytes only (the mixed `usdot` needs the later i8mm extension), so
//! u8 A is stored as `a - 128` and the driver adds back `128 colsum_b[j]`,
//! exact in wrapping i32 arithmetic.
//!
//! Without dotprod (Cortex-A53 and other Armv8.0 cores): A is packed as
//! i16 and B widened with `sxtl`; every u8 x i8 or i8 x i8 product fits in
//! i16, so `mul` on i16 lanes is exact and `sadalp` adds adjacent products
//! into i32 accumulators. A final `addp` joins the two halves of each column.

use std::arch::aarch64::*;
use std::arch::asm;

use super::driver::{run_chunk, Micro, Sink, TILE};
use super::pack::{AIn, PackedB, GROUP};

/// dotprod tile: 8 rows x 8 columns, 16 accumulators.
pub(crate) struct Sdot;

/// Rows of the dotprod tile.
const SDOT_MR: usize = 8;

impl Micro for Sdot {
    const MR: usize = SDOT_MR;
    const NR: usize = 8;
    const SHIFT_U8: i32 = -128;
    const SHIFT_I8: i32 = 0;
    type A = i8;

    #[inline(always)]
    unsafe fn tile(
        groups: usize,
        a: *const i8,
        _a_rs: usize,
        _a_gs: usize,
        b: *const i8,
        _panel_stride: usize,
        out: &mut [i32; TILE],
    ) {
        // SAFETY: forwarded from the trait contract.
        unsafe { tile_sdot(groups, a, b, out) }
    }
}

/// `acc[l] += dot(b[4l..4l+4], a[4L..4L+4])` for each lane `l`.
///
/// # Safety
///
/// The CPU has NEON and the dot-product extension.
#[target_feature(enable = "neon,dotprod")]
#[inline]
unsafe fn sdot<const L: i32>(acc: int32x4_t, b: int8x16_t, a: int8x16_t) -> int32x4_t {
    let mut acc = acc;
    // SAFETY: register-only instruction the caller's CPU supports.
    unsafe {
        asm!(
            "sdot {acc:v}.4s, {b:v}.16b, {a:v}.4b[{l}]",
            acc = inout(vreg) acc,
            b = in(vreg) b,
            a = in(vreg) a,
            l = const L,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    acc
}

/// # Safety
///
/// - The CPU has NEON and dotprod.
/// - `a` points to `groups * 8 * 4` bytes; `b` to 32 readable bytes at the
///   start of each of `groups` 64-byte lines.
#[target_feature(enable = "neon,dotprod")]
#[inline]
unsafe fn tile_sdot(groups: usize, a: *const i8, b: *const i8, out: &mut [i32; TILE]) {
    const MR: usize = SDOT_MR;
    let mut acc = [[vdupq_n_s32(0); 2]; MR];
    for g in 0..groups {
        // SAFETY: group g of the A tile and 32 bytes of line g of B are in
        // the ranges the caller guarantees; the CPU has dotprod.
        unsafe {
            let bg = b.add(g * 64);
            let (b0, b1) = (vld1q_s8(bg), vld1q_s8(bg.add(16)));
            let ag = a.add(g * MR * GROUP);
            let (a0, a1) = (vld1q_s8(ag), vld1q_s8(ag.add(16)));
            for h in 0..2 {
                let bh = if h == 0 { b0 } else { b1 };
                acc[0][h] = sdot::<0>(acc[0][h], bh, a0);
                acc[1][h] = sdot::<1>(acc[1][h], bh, a0);
                acc[2][h] = sdot::<2>(acc[2][h], bh, a0);
                acc[3][h] = sdot::<3>(acc[3][h], bh, a0);
                acc[4][h] = sdot::<0>(acc[4][h], bh, a1);
                acc[5][h] = sdot::<1>(acc[5][h], bh, a1);
                acc[6][h] = sdot::<2>(acc[6][h], bh, a1);
                acc[7][h] = sdot::<3>(acc[7][h], bh, a1);
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        // SAFETY: row r of an 8-wide tile lies inside the 384-entry buffer.
        unsafe {
            let o = out.as_mut_ptr().add(r * 8);
            vst1q_s32(o, acc[0]);
            vst1q_s32(o.add(4), acc[1]);
        }
    }
}

/// Widening tile: 4 rows x 8 columns, 16 accumulators of two columns each.
pub(crate) struct Widen;

/// Rows of the widening tile.
const WIDEN_MR: usize = 4;

impl Micro for Widen {
    const MR: usize = WIDEN_MR;
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
        unsafe { tile_widen(groups, a, b, out) }
    }
}

/// # Safety
///
/// - The CPU has NEON.
/// - `a` points to `groups * 4 * 4` i16; `b` to 32 readable bytes at the
///   start of each of `groups` 64-byte lines.
#[target_feature(enable = "neon")]
#[inline]
unsafe fn tile_widen(groups: usize, a: *const i16, b: *const i8, out: &mut [i32; TILE]) {
    const MR: usize = WIDEN_MR;
    let mut acc = [[vdupq_n_s32(0); 4]; MR];
    for g in 0..groups {
        // SAFETY: group g of the A tile and 32 bytes of line g of B are in
        // the ranges the caller guarantees.
        unsafe {
            let bg = b.add(g * 64);
            let (b0, b1) = (vld1q_s8(bg), vld1q_s8(bg.add(16)));
            // Columns (0,1), (2,3), (4,5), (6,7), each 2 x 4 k as i16.
            let w = [
                vmovl_s8(vget_low_s8(b0)),
                vmovl_high_s8(b0),
                vmovl_s8(vget_low_s8(b1)),
                vmovl_high_s8(b1),
            ];
            let ag = a.add(g * MR * GROUP);
            for (r, acc) in acc.iter_mut().enumerate() {
                // The row's four values in both halves.
                let av = vreinterpretq_s16_s64(vld1q_dup_s64(ag.add(r * GROUP).cast()));
                for (acc, &w) in acc.iter_mut().zip(&w) {
                    *acc = vpadalq_s16(*acc, vmulq_s16(av, w));
                }
            }
        }
    }
    // acc[r][x] lanes are [c c c' c'] halves of columns 2x and 2x+1.
    for (r, acc) in acc.iter().enumerate() {
        // SAFETY: row r of an 8-wide tile lies inside the 384-entry buffer.
        unsafe {
            let o = out.as_mut_ptr().add(r * 8);
            vst1q_s32(o, vpaddq_s32(acc[0], acc[1]));
            vst1q_s32(o.add(4), vpaddq_s32(acc[2], acc[3]));
        }
    }
}

/// [`run_chunk`] on the dotprod microkernel.
///
/// # Safety
///
/// The CPU has NEON and dotprod; the rows lie inside A.
#[target_feature(enable = "neon,dotprod")]
pub(crate) unsafe fn chunk_sdot<T: AIn, S: Sink>(
    a: &[T],
    lda: usize,
    r0: usize,
    rows: usize,
    b: &PackedB,
    sink: &mut S,
) {
    // SAFETY: forwarded from this function's contract.
    unsafe { run_chunk::<Sdot, T, S>(a, lda, r0, rows, b, sink) }
}

/// [`run_chunk`] on the widening NEON microkernel.
///
/// # Safety
///
/// The CPU has NEON; the rows lie inside A.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn chunk_widen<T: AIn, S: Sink>(
    a: &[T],
    lda: usize,
    r0: usize,
    rows: usize,
    b: &PackedB,
    sink: &mut S,
) {
    // SAFETY: forwarded from this function's contract.
    unsafe { run_chunk::<Widen, T, S>(a, lda, r0, rows, b, sink) }
}
