//! Measured arithmetic peaks of this CPU, per tier.
//!
//! A GEMM's efficiency is its throughput over what the core can issue at
//! most. Rather than trust a nominal clock (turbo, virtualisation and
//! power limits all move it), these probes run register-only loops of the
//! instruction a tier's kernels are built on, with enough independent
//! accumulators to hide latency, and time them:
//!
//! - f32: fused multiply-add (`vfmadd231ps` on x86, `fmla` on aarch64),
//!   2 flops per lane;
//! - int8: `vpdpbusd` with VNNI, `vpmaddubsw` + `vpmaddwd` + `vpaddd` on
//!   AVX2 or AVX-512BW without VNNI, `sdot` with dotprod and
//!   `smull` + `sadalp` on plain NEON; 2 ops (multiply and add) per
//!   8-bit product.
//!
//! The figure is what one thread reaches; two threads on two cores reach
//! about twice that. The scalar tier has no probe: its code is whatever the
//! compiler makes of plain loops, so there is no instruction to time.

use std::time::Instant;

use crate::dispatch::Tier;

/// Runs `f(iters)` with growing iteration counts until one run takes at
/// least `min_secs`, and returns operations per second for `ops_per_iter`.
fn rate(ops_per_iter: f64, min_secs: f64, mut f: impl FnMut(u64)) -> f64 {
    let mut iters = 1u64 << 10;
    loop {
        let t = Instant::now();
        f(iters);
        let dt = t.elapsed().as_secs_f64();
        if dt >= min_secs || iters >= 1 << 40 {
            return ops_per_iter * iters as f64 / dt;
        }
        iters = iters.saturating_mul(if dt < min_secs / 16.0 { 8 } else { 2 });
    }
}

/// Peak f32 flops per second of one thread on `tier`, timed for about
/// `min_secs` seconds; `None` for the scalar tier.
pub fn f32_flops(tier: Tier, min_secs: f64) -> Option<f64> {
    Some(match tier.isa() {
        #[cfg(target_arch = "x86_64")]
        crate::Isa::Avx512 => {
            // SAFETY: the tier token proves AVX-512F is present.
            rate(12.0 * 16.0 * 2.0, min_secs, |n| unsafe { x86::fma_avx512(n) })
        }
        #[cfg(target_arch = "x86_64")]
        crate::Isa::Avx2 => {
            // SAFETY: the tier token proves AVX2 and FMA are present.
            rate(12.0 * 8.0 * 2.0, min_secs, |n| unsafe { x86::fma_avx2(n) })
        }
        #[cfg(target_arch = "aarch64")]
        crate::Isa::Neon => {
            // SAFETY: the tier token proves NEON is present.
            rate(12.0 * 4.0 * 2.0, min_secs, |n| unsafe { arm::fma_neon(n) })
        }
        _ => return None,
    })
}

/// Peak int8 operations per second (a multiply and an add per 8-bit
/// product) of one thread on `tier`, timed for about `min_secs` seconds;
/// `None` for the scalar tier.
pub fn int8_ops(tier: Tier, min_secs: f64) -> Option<f64> {
    Some(match tier.isa() {
        #[cfg(target_arch = "x86_64")]
        crate::Isa::Avx512 if tier.has(crate::dispatch::Feature::Avx512Vnni) => {
            // SAFETY: the tier token proves AVX-512F and VNNI are present.
            rate(12.0 * 64.0 * 2.0, min_secs, |n| unsafe { x86::dpbusd_avx512(n) })
        }
        #[cfg(target_arch = "x86_64")]
        crate::Isa::Avx512 => {
            // SAFETY: the tier token proves AVX-512BW is present.
            rate(16.0 * 64.0 * 2.0, min_secs, |n| unsafe { x86::maddubs_avx512(n) })
        }
        #[cfg(target_arch = "x86_64")]
        crate::Isa::Avx2 => {
            // SAFETY: the tier token proves AVX2 is present.
            rate(16.0 * 32.0 * 2.0, min_secs, |n| unsafe { x86::maddubs_avx2(n) })
        }
        #[cfg(target_arch = "aarch64")]
        crate::Isa::Neon if tier.has(crate::dispatch::Feature::DotProd) => {
            // SAFETY: the tier token proves NEON with dotprod is present.
            rate(12.0 * 16.0 * 2.0, min_secs, |n| unsafe { arm::sdot_neon(n) })
        }
        #[cfg(target_arch = "aarch64")]
        crate::Isa::Neon => {
            // SAFETY: the tier token proves NEON is present.
            rate(12.0 * 8.0 * 2.0, min_secs, |n| unsafe { arm::smull_neon(n) })
        }
        _ => return None,
    })
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;
    use std::hint::black_box;

    // Twelve accumulators: FMA latency 4 cycles times 2 ports needs at
    // least 8 in flight; 12 leaves slack on cores with longer latency.
    macro_rules! unrolled {
        ($acc:ident, $n:expr, $body:expr) => {
            for _ in 0..$n {
                for a in $acc.iter_mut() {
                    *a = $body(*a);
                }
            }
        };
    }

    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn fma_avx512(n: u64) {
        let x = _mm512_set1_ps(black_box(0.999_9));
        let y = _mm512_set1_ps(black_box(1e-7));
        let mut acc = [_mm512_set1_ps(1.0); 12];
        unrolled!(acc, n, |a| _mm512_fmadd_ps(a, x, y));
        black_box(acc);
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn fma_avx2(n: u64) {
        let x = _mm256_set1_ps(black_box(0.999_9));
        let y = _mm256_set1_ps(black_box(1e-7));
        let mut acc = [_mm256_set1_ps(1.0); 12];
        unrolled!(acc, n, |a| _mm256_fmadd_ps(a, x, y));
        black_box(acc);
    }

    /// # Safety
    /// The CPU must support AVX-512F and AVX-512 VNNI.
    #[target_feature(enable = "avx512f,avx512vnni")]
    pub unsafe fn dpbusd_avx512(n: u64) {
        let x = _mm512_set1_epi8(black_box(3));
        let y = _mm512_set1_epi8(black_box(-5));
        let mut acc = [_mm512_setzero_si512(); 12];
        unrolled!(acc, n, |a| _mm512_dpbusd_epi32(a, x, y));
        black_box(acc);
    }

    /// # Safety
    /// The CPU must support AVX-512BW.
    #[target_feature(enable = "avx512f,avx512bw")]
    pub unsafe fn maddubs_avx512(n: u64) {
        // The accumulator feeds the multiply, so nothing can be hoisted out
        // of the loop; 16 chains cover the three instructions' latency.
        let y = _mm512_set1_epi8(black_box(-5));
        let ones = _mm512_set1_epi16(1);
        let mut acc = [_mm512_set1_epi8(3); 16];
        unrolled!(acc, n, |a| _mm512_add_epi32(
            a,
            _mm512_madd_epi16(_mm512_maddubs_epi16(a, y), ones)
        ));
        black_box(acc);
    }

    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub unsafe fn maddubs_avx2(n: u64) {
        // As in the AVX-512 probe: the accumulator feeds the multiply.
        let y = _mm256_set1_epi8(black_box(-5));
        let ones = _mm256_set1_epi16(1);
        let mut acc = [_mm256_set1_epi8(3); 16];
        unrolled!(acc, n, |a| _mm256_add_epi32(
            a,
            _mm256_madd_epi16(_mm256_maddubs_epi16(a, y), ones)
        ));
        black_box(acc);
    }
}

#[cfg(target_arch = "aarch64")]
mod arm {
    use std::arch::aarch64::*;
    use std::arch::asm;
    use std::hint::black_box;

    /// # Safety
    /// The CPU must support NEON.
    #[target_feature(enable = "neon")]
    pub unsafe fn fma_neon(n: u64) {
        let x = vdupq_n_f32(black_box(0.999_9));
        let y = vdupq_n_f32(black_box(1e-7));
        let mut acc = [vdupq_n_f32(1.0); 12];
        for _ in 0..n {
            for a in acc.iter_mut() {
                *a = vfmaq_f32(y, *a, x);
            }
        }
        black_box(acc);
    }

    /// # Safety
    /// The CPU must support NEON and the dot-product extension.
    #[target_feature(enable = "neon,dotprod")]
    pub unsafe fn sdot_neon(n: u64) {
        let x = vdupq_n_s8(black_box(3));
        let y = vdupq_n_s8(black_box(-5));
        let mut acc = [vdupq_n_s32(0); 12];
        for _ in 0..n {
            for a in acc.iter_mut() {
                // SAFETY: dotprod is enabled for this function; the
                // instruction reads two vector registers and updates one.
                asm!("sdot {0:v}.4s, {1:v}.16b, {2:v}.16b",
                     inout(vreg) *a, in(vreg) x, in(vreg) y,
                     options(pure, nomem, nostack));
            }
        }
        black_box(acc);
    }

    /// # Safety
    /// The CPU must support NEON.
    #[target_feature(enable = "neon")]
    pub unsafe fn smull_neon(n: u64) {
        // The accumulator's low bytes feed the multiply, so nothing is
        // hoisted out of the loop.
        let y = vdup_n_s8(black_box(-5));
        let mut acc = [vdupq_n_s32(3); 12];
        for _ in 0..n {
            for a in acc.iter_mut() {
                let x = vget_low_s8(vreinterpretq_s8_s32(*a));
                *a = vpadalq_s16(*a, vmull_s8(x, y));
            }
        }
        black_box(acc);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_run_on_every_tier() {
        for t in Tier::all_variants() {
            let f = f32_flops(t, 0.002);
            let i = int8_ops(t, 0.002);
            if t == Tier::scalar() {
                assert_eq!((f, i), (None, None));
                continue;
            }
            let (f, i) = (f.expect("a SIMD tier has a probe"), i.expect("a SIMD tier has a probe"));
            assert!(f.is_finite() && f > 0.0, "{t}: {f}");
            assert!(i.is_finite() && i > 0.0, "{t}: {i}");
        }
    }
}
