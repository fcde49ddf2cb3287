//! The portable microkernel behind the `scalar` tier: a 4 x 8 tile in plain
//! Rust arrays.
//!
//! It makes no use of `std::arch`; with eight f32 columns per row the
//! compiler turns each row's update into two 4-lane vector operations on any
//! target with 128-bit SIMD in its baseline (SSE2, NEON), and into scalar code
//! elsewhere. It multiplies and adds separately (`mul_add` without hardware
//! FMA would be a slow library call), so it rounds twice per step, like the
//! reference. The naive reference itself stays in [`super::scalar`].

use super::driver::{store_tile_scalar, MicroKernel, Tile};

/// A 4 x 8 register tile with blocking sized for a 32 KiB L1 and 256 KiB L2.
pub(crate) struct Portable4x8;

const MR: usize = 4;
const NR: usize = 8;

impl MicroKernel for Portable4x8 {
    const MR: usize = MR;
    const NR: usize = NR;
    const KC: usize = 256;
    const MC: usize = 128;
    const NC: usize = 2048;

    unsafe fn tile(kc: usize, a: *const f32, b: *const f32, alpha: f32, beta: f32, c: Tile) {
        // SAFETY: the panels hold kc * MR and kc * NR floats (our contract).
        let (a, b) = unsafe {
            (std::slice::from_raw_parts(a, kc * MR), std::slice::from_raw_parts(b, kc * NR))
        };
        let mut acc = [[0.0f32; NR]; MR];
        // acc[i][j] += A[i, p] * B[p, j], one rank-1 update per p.
        for (ap, bp) in a.chunks_exact(MR).zip(b.chunks_exact(NR)) {
            for i in 0..MR {
                for j in 0..NR {
                    acc[i][j] += ap[i] * bp[j];
                }
            }
        }
        // SAFETY: the tile is valid (our contract) and acc is MR x NR.
        unsafe { store_tile_scalar(acc.as_flattened(), NR, alpha, beta, c) };
    }
}
