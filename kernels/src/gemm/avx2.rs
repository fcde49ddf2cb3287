//! The AVX2 + FMA microkernel: a 6 x 16 tile in twelve ymm accumulators.
//!
//! Per step of k it loads one row of the B panel (two ymm, 16 columns),
//! broadcasts six A values and issues twelve FMAs: 12 of the 16 ymm registers
//! hold C, two hold B, one the broadcast. Twelve independent accumulators
//! cover the FMA latency (4-5 cycles) times two FMA ports.
//!
//! Full tiles of a C with unit column stride are updated in place with
//! unaligned loads and stores; edge tiles and other strides spill the
//! accumulators to a stack tile and take the scalar store path, which is
//! cheap next to the kc-long loop that precedes it.

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

use super::driver::{store_tile_scalar, MicroKernel, Tile};

/// The 6 x 16 AVX2 + FMA microkernel.
pub(crate) struct Avx2Fma6x16;

const MR: usize = 6;
const NR: usize = 16;

impl MicroKernel for Avx2Fma6x16 {
    const MR: usize = MR;
    const NR: usize = NR;
    // B micro-panel 256 x 16 x 4 B = 16 KiB in L1; A block 144 x 256 x 4 B
    // = 144 KiB in L2.
    const KC: usize = 256;
    const MC: usize = 144;
    const NC: usize = 4080;

    unsafe fn tile(kc: usize, a: *const f32, b: *const f32, alpha: f32, beta: f32, c: Tile) {
        // SAFETY: the caller guarantees AVX2 + FMA and the panel/tile bounds.
        unsafe { tile_6x16(kc, a, b, alpha, beta, c) }
    }
}

/// # Safety
/// The CPU has AVX2 and FMA; `a`, `b`, `c` as in [`MicroKernel::tile`].
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_6x16(kc: usize, a: *const f32, b: *const f32, alpha: f32, beta: f32, c: Tile) {
    let mut acc = [[_mm256_setzero_ps(); 2]; MR];

    // acc[i] += A[i, p] * B[p, 0..16] for each p.
    for p in 0..kc {
        // SAFETY: p < kc, so row p of each panel is inside it.
        unsafe {
            let b0 = _mm256_loadu_ps(b.add(p * NR));
            let b1 = _mm256_loadu_ps(b.add(p * NR + 8));
            let ap = a.add(p * MR);
            for (i, row) in acc.iter_mut().enumerate() {
                let ai = _mm256_broadcast_ss(&*ap.add(i));
                row[0] = _mm256_fmadd_ps(ai, b0, row[0]);
                row[1] = _mm256_fmadd_ps(ai, b1, row[1]);
            }
        }
    }

    let valpha = _mm256_set1_ps(alpha);
    if c.rows == MR && c.cols == NR && c.cs == 1 {
        // Full tile, contiguous rows: update C in place.
        let vbeta = _mm256_set1_ps(beta);
        for (i, row) in acc.iter().enumerate() {
            // SAFETY: row i, columns 0..16 are inside the tile (cs == 1).
            unsafe {
                let dst = c.ptr.add(i * c.rs);
                let mut v0 = _mm256_mul_ps(valpha, row[0]);
                let mut v1 = _mm256_mul_ps(valpha, row[1]);
                // beta == 0 must not read C: it may hold NaN.
                if beta != 0.0 {
                    v0 = _mm256_fmadd_ps(vbeta, _mm256_loadu_ps(dst), v0);
                    v1 = _mm256_fmadd_ps(vbeta, _mm256_loadu_ps(dst.add(8)), v1);
                }
                _mm256_storeu_ps(dst, v0);
                _mm256_storeu_ps(dst.add(8), v1);
            }
        }
    } else {
        // Edge or strided tile: spill and take the scalar path.
        let mut spill = [0.0f32; MR * NR];
        for (i, row) in acc.iter().enumerate() {
            // SAFETY: row i of the spill tile has NR = 16 floats.
            unsafe {
                _mm256_storeu_ps(spill.as_mut_ptr().add(i * NR), row[0]);
                _mm256_storeu_ps(spill.as_mut_ptr().add(i * NR + 8), row[1]);
            }
        }
        // SAFETY: the tile is valid (our contract); spill is MR x NR.
        unsafe { store_tile_scalar(&spill, NR, alpha, beta, c) };
    }
}
