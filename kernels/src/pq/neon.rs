//! NEON fast-scan kernel: `vqtbl1q_u8` looks up one sub-quantizer's
//! 16-entry table for 16 vectors at a time (low nibbles, then high
//! nibbles); the bytes are widened into u16 accumulators with `uaddw`,
//! which leaves the sums in vector order with no fix-up.

use std::arch::aarch64::*;

/// The 32 sums of one block, vectors 0..8, 8..16, 16..24, 24..32.
///
/// # Safety
///
/// - `lut` holds `16 m` bytes and `block` the block's `16 m` bytes.
#[inline(always)]
unsafe fn block_sums(lut: *const u8, m: usize, block: *const u8) -> [uint16x8_t; 4] {
    let nib = vdupq_n_u8(0x0f);
    let mut acc = [vdupq_n_u16(0); 4];
    for j in 0..m {
        // SAFETY: bytes 16j..16j + 16 lie in the block and in `lut`.
        let (c, t) = unsafe { (vld1q_u8(block.add(j * 16)), vld1q_u8(lut.add(j * 16))) };
        let lo = vqtbl1q_u8(t, vandq_u8(c, nib));
        let hi = vqtbl1q_u8(t, vshrq_n_u8(c, 4));
        acc[0] = vaddw_u8(acc[0], vget_low_u8(lo));
        acc[1] = vaddw_high_u8(acc[1], lo);
        acc[2] = vaddw_u8(acc[2], vget_low_u8(hi));
        acc[3] = vaddw_high_u8(acc[3], hi);
    }
    acc
}

/// Quantized sums for `out.len() / 32` whole blocks.
///
/// # Safety
///
/// - `lut.len() >= 16 m`, `packed.len() >= out.len() / 32 * 16 m`,
///   `out.len() % 32 == 0`.
#[target_feature(enable = "neon")]
pub unsafe fn fastscan(lut: &[u8], m: usize, packed: &[u8], out: &mut [u16]) {
    for b in 0..out.len() / 32 {
        // SAFETY: block b and its 32 outputs are in bounds (preconditions).
        unsafe {
            let acc = block_sums(lut.as_ptr(), m, packed.as_ptr().add(b * m * 16));
            for (g, a) in acc.iter().enumerate() {
                vst1q_u16(out.as_mut_ptr().add(b * 32 + g * 8), *a);
            }
        }
    }
}

/// Scans `blocks` whole blocks; a block with some sum below `threshold`
/// goes to `hit(b, sums)` (sums in vector order), which returns the new
/// threshold. Returns the last threshold.
///
/// # Safety
///
/// - `lut.len() >= 16 m`, `packed.len() >= blocks * 16 m`.
#[target_feature(enable = "neon")]
pub unsafe fn fastscan_below(
    lut: &[u8],
    m: usize,
    packed: &[u8],
    blocks: usize,
    mut threshold: u16,
    hit: &mut dyn FnMut(usize, &[u16; 32]) -> u16,
) -> u16 {
    let mut sums = [0u16; 32];
    for b in 0..blocks {
        // SAFETY: block b is in bounds (preconditions).
        let acc = unsafe { block_sums(lut.as_ptr(), m, packed.as_ptr().add(b * m * 16)) };
        let t = vdupq_n_u16(threshold);
        let below = vorrq_u16(
            vorrq_u16(vcltq_u16(acc[0], t), vcltq_u16(acc[1], t)),
            vorrq_u16(vcltq_u16(acc[2], t), vcltq_u16(acc[3], t)),
        );
        if vmaxvq_u16(below) != 0 {
            for (g, a) in acc.iter().enumerate() {
                // SAFETY: group g is 8 of the 32 u16 in `sums`.
                unsafe { vst1q_u16(sums.as_mut_ptr().add(g * 8), *a) };
            }
            threshold = hit(b, &sums);
        }
    }
    threshold
}
