//! The NEON microkernel: a 12 x 8 tile in 24 q-register accumulators.
//!
//! Per step of k it loads one row of the B panel (two q registers, eight
//! columns) and the twelve A values of the step (three q registers), then
//! issues 24 `fmla` by-element instructions, each multiplying a B vector by
//! one lane of an A register, so A needs no broadcast. 24 + 2 + 3 = 29 of
//! the 32 vector registers are live. Twenty-four independent accumulators
//! cover the FMA latency of in-order cores (Cortex-A53/A55) and the wider
//! out-of-order ones alike.
//!
//! Full tiles of a C with unit column stride are updated in place; edge
//! tiles and other strides spill to the stack and take the scalar path.

#![cfg(target_arch = "aarch64")]

use std::arch::aarch64::*;

use super::driver::{store_tile_scalar, MicroKernel, Tile};

/// The 12 x 8 NEON microkernel.
pub(crate) struct Neon12x8;

const MR: usize = 12;
const NR: usize = 8;

impl MicroKernel for Neon12x8 {
    const MR: usize = MR;
    const NR: usize = NR;
    // B micro-panel 256 x 8 x 4 B = 8 KiB and A micro-panel 12 KiB fit a
    // 32 KiB L1; A block 120 x 256 x 4 B = 120 KiB fits a 256 KiB L2.
    const KC: usize = 256;
    const MC: usize = 120;
    const NC: usize = 2048;

    unsafe fn tile(kc: usize, a: *const f32, b: *const f32, alpha: f32, beta: f32, c: Tile) {
        // SAFETY: NEON is part of the aarch64 baseline; the caller
        // guarantees the panel and tile bounds.
        unsafe { tile_12x8(kc, a, b, alpha, beta, c) }
    }
}

/// # Safety
/// `a`, `b`, `c` as in [`MicroKernel::tile`].
#[target_feature(enable = "neon")]
unsafe fn tile_12x8(kc: usize, a: *const f32, b: *const f32, alpha: f32, beta: f32, c: Tile) {
    let mut acc = [[vdupq_n_f32(0.0); 2]; MR];

    // acc[i] += A[i, p] * B[p, 0..8] for each p; A[i, p] is lane i % 4 of
    // the (i / 4)-th A register.
    for p in 0..kc {
        // SAFETY: p < kc, so row p of each panel is inside it.
        unsafe {
            let b0 = vld1q_f32(b.add(p * NR));
            let b1 = vld1q_f32(b.add(p * NR + 4));
            let ap = a.add(p * MR);
            let av = [vld1q_f32(ap), vld1q_f32(ap.add(4)), vld1q_f32(ap.add(8))];
            for (q, &a4) in av.iter().enumerate() {
                let rows = &mut acc[4 * q..4 * q + 4];
                rows[0][0] = vfmaq_laneq_f32::<0>(rows[0][0], b0, a4);
                rows[0][1] = vfmaq_laneq_f32::<0>(rows[0][1], b1, a4);
                rows[1][0] = vfmaq_laneq_f32::<1>(rows[1][0], b0, a4);
                rows[1][1] = vfmaq_laneq_f32::<1>(rows[1][1], b1, a4);
                rows[2][0] = vfmaq_laneq_f32::<2>(rows[2][0], b0, a4);
                rows[2][1] = vfmaq_laneq_f32::<2>(rows[2][1], b1, a4);
                rows[3][0] = vfmaq_laneq_f32::<3>(rows[3][0], b0, a4);
                rows[3][1] = vfmaq_laneq_f32::<3>(rows[3][1], b1, a4);
            }
        }
    }

    if c.rows == MR && c.cols == NR && c.cs == 1 {
        // Full tile, contiguous rows: update C in place.
        for (i, row) in acc.iter().enumerate() {
            // SAFETY: row i, columns 0..8 are inside the tile (cs == 1).
            unsafe {
                let dst = c.ptr.add(i * c.rs);
                let mut v0 = vmulq_n_f32(row[0], alpha);
                let mut v1 = vmulq_n_f32(row[1], alpha);
                // beta == 0 must not read C: it may hold NaN.
                if beta != 0.0 {
                    v0 = vfmaq_n_f32(v0, vld1q_f32(dst), beta);
                    v1 = vfmaq_n_f32(v1, vld1q_f32(dst.add(4)), beta);
                }
                vst1q_f32(dst, v0);
                vst1q_f32(dst.add(4), v1);
            }
        }
    } else {
        // Edge or strided tile: spill and take the scalar path.
        let mut spill = [0.0f32; MR * NR];
        for (i, row) in acc.iter().enumerate() {
            // SAFETY: row i of the spill tile has NR = 8 floats.
            unsafe {
                vst1q_f32(spill.as_mut_ptr().add(i * NR), row[0]);
                vst1q_f32(spill.as_mut_ptr().add(i * NR + 4), row[1]);
            }
        }
        // SAFETY: the tile is valid (our contract); spill is MR x NR.
        unsafe { store_tile_scalar(&spill, NR, alpha, beta, c) };
    }
}
