//! NEON fast-scan kernel: `vqtbl1q_u8` looks up one sub-quantizer's
//! 16-entry table for 16 vectors at a time (low nibbles, then high
//! nibbles); the bytes are widened into u16 accumulators with `uaddw`.

use std::arch::aarch64::*;

/// Quantized sums for `out.len() / 32` whole blocks.
///
/// # Safety
///
/// - `lut.len() >= 16 m`, `packed.len() >= out.len() / 32 * 16 m`,
///   `out.len() % 32 == 0`.
#[target_feature(enable = "neon")]
pub unsafe fn fastscan(lut: &[u8], m: usize, packed: &[u8], out: &mut [u16]) {
    let blocks = out.len() / 32;
    let nib = vdupq_n_u8(0x0f);
    for b in 0..blocks {
        let block = packed.as_ptr().add(b * m * 16);
        let mut acc = [vdupq_n_u16(0); 4];
        for j in 0..m {
            // SAFETY: bytes 16j..16j + 16 lie in the block and in `lut`.
            let (c, t) =
                unsafe { (vld1q_u8(block.add(j * 16)), vld1q_u8(lut.as_ptr().add(j * 16))) };
            let lo = vqtbl1q_u8(t, vandq_u8(c, nib));
            let hi = vqtbl1q_u8(t, vshrq_n_u8(c, 4));
            acc[0] = vaddw_u8(acc[0], vget_low_u8(lo));
            acc[1] = vaddw_high_u8(acc[1], lo);
            acc[2] = vaddw_u8(acc[2], vget_low_u8(hi));
            acc[3] = vaddw_high_u8(acc[3], hi);
        }
        for (g, a) in acc.iter().enumerate() {
            // SAFETY: out holds 32 u16 for block b; group g is 8 of them.
            unsafe { vst1q_u16(out.as_mut_ptr().add(b * 32 + g * 8), *a) };
        }
    }
}
