//! The AVX-512 microkernel: a 12 x 32 tile in 24 zmm accumulators.
//!
//! Per step of k it loads one row of the B panel (two zmm, 32 columns),
//! broadcasts twelve A values and issues 24 FMAs: 24 of the 32 zmm registers
//! hold C. That is 14 loads per 24 FMAs, which two FMA ports retire in 12
//! cycles while the load ports have room to spare, and 24 independent
//! accumulators are three times the 4-cycle latency x 2 ports the FMA units
//! need to stay busy.
//!
//! A C with unit column stride is updated in place, whatever the tile's
//! size: rows past the edge are skipped and columns past it are masked off
//! (`k`-register masked loads and stores), so edge tiles cost no extra pass.
//! Other strides spill the tile to the stack and take the scalar path.

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

use super::driver::{store_tile_scalar, MicroKernel, Tile};

/// The 12 x 32 AVX-512F microkernel.
pub(crate) struct Avx512x12x32;

const MR: usize = 12;
const NR: usize = 32;

impl MicroKernel for Avx512x12x32 {
    const MR: usize = MR;
    const NR: usize = NR;
    // B micro-panel 256 x 32 x 4 B = 32 KiB in a 48 KiB L1; A block
    // 192 x 256 x 4 B = 192 KiB in L2.
    const KC: usize = 256;
    const MC: usize = 192;
    const NC: usize = 4096;

    unsafe fn tile(kc: usize, a: *const f32, b: *const f32, alpha: f32, beta: f32, c: Tile) {
        // SAFETY: the caller guarantees AVX-512F and the panel/tile bounds.
        unsafe { tile_12x32(kc, a, b, alpha, beta, c) }
    }
}

/// # Safety
/// The CPU has AVX-512F; `a`, `b`, `c` as in [`MicroKernel::tile`].
#[target_feature(enable = "avx512f")]
unsafe fn tile_12x32(kc: usize, a: *const f32, b: *const f32, alpha: f32, beta: f32, c: Tile) {
    let mut acc = [[_mm512_setzero_ps(); 2]; MR];

    // acc[i] += A[i, p] * B[p, 0..32] for each p.
    for p in 0..kc {
        // SAFETY: p < kc, so row p of each panel is inside it.
        unsafe {
            let b0 = _mm512_loadu_ps(b.add(p * NR));
            let b1 = _mm512_loadu_ps(b.add(p * NR + 16));
            let ap = a.add(p * MR);
            for (i, row) in acc.iter_mut().enumerate() {
                let ai = _mm512_set1_ps(*ap.add(i));
                row[0] = _mm512_fmadd_ps(ai, b0, row[0]);
                row[1] = _mm512_fmadd_ps(ai, b1, row[1]);
            }
        }
    }

    if c.cs != 1 {
        // Strided C: spill and take the scalar path.
        let mut spill = [0.0f32; MR * NR];
        for (i, row) in acc.iter().enumerate() {
            // SAFETY: row i of the spill tile has NR = 32 floats.
            unsafe {
                _mm512_storeu_ps(spill.as_mut_ptr().add(i * NR), row[0]);
                _mm512_storeu_ps(spill.as_mut_ptr().add(i * NR + 16), row[1]);
            }
        }
        // SAFETY: the tile is valid (our contract); spill is MR x NR.
        unsafe { store_tile_scalar(&spill, NR, alpha, beta, c) };
        return;
    }

    // Lane masks for the two halves of a row: the first c.cols lanes.
    let lanes = |from: usize| -> __mmask16 {
        let w = c.cols.saturating_sub(from).min(16);
        ((1u32 << w) - 1) as __mmask16
    };
    let (m0, m1) = (lanes(0), lanes(16));
    let valpha = _mm512_set1_ps(alpha);
    let vbeta = _mm512_set1_ps(beta);
    for (i, row) in acc.iter().enumerate() {
        // Rows past the edge of C are skipped; the loop is unrolled, so the
        // accumulators stay in registers.
        if i >= c.rows {
            break;
        }
        // SAFETY: row i < c.rows of the tile; the masks cover only its
        // c.cols contiguous columns (cs == 1), and masked-off lanes are
        // neither read nor written.
        unsafe {
            let dst = c.ptr.add(i * c.rs);
            // The upper half may start past the end of C when c.cols <= 16;
            // its mask is then empty, so it is formed without `add`.
            let dst_hi = dst.wrapping_add(16);
            let mut v0 = _mm512_mul_ps(valpha, row[0]);
            let mut v1 = _mm512_mul_ps(valpha, row[1]);
            // beta == 0 must not read C: it may hold NaN.
            if beta != 0.0 {
                v0 = _mm512_fmadd_ps(vbeta, _mm512_maskz_loadu_ps(m0, dst), v0);
                v1 = _mm512_fmadd_ps(vbeta, _mm512_maskz_loadu_ps(m1, dst_hi), v1);
            }
            _mm512_mask_storeu_ps(dst, m0, v0);
            _mm512_mask_storeu_ps(dst_hi, m1, v1);
        }
    }
}
