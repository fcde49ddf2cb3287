//! NEON tier of the vector kernels: 4 lanes of f32 in `float32x4_t`.
//!
//! Implements [`Simd`] and stamps the entry points. NEON has no masked
//! load, so a tail of 1 to 3 floats goes through a 4-float stack buffer
//! prefilled with the fill value. `fmax`/`fmin` already return NaN when
//! either input is NaN, so the NaN-keeping max and clamp need no extra step.
//! Every aarch64 CPU has NEON, so this tier needs no runtime detection
//! beyond what [`crate::dispatch`] already does.

use core::arch::aarch64::*;

use super::simd::{entry_points, Simd};

/// The NEON lane type marker.
#[derive(Clone, Copy)]
pub(crate) struct Neon;

impl Simd for Neon {
    type V = float32x4_t;
    const LANES: usize = 4;

    #[inline(always)]
    unsafe fn splat(x: f32) -> float32x4_t {
        vdupq_n_f32(x)
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> float32x4_t {
        vld1q_f32(p)
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: float32x4_t) {
        vst1q_f32(p, v)
    }
    #[inline(always)]
    unsafe fn load_tail(p: *const f32, n: usize, fill: float32x4_t) -> float32x4_t {
        let mut buf = [0.0f32; 4];
        vst1q_f32(buf.as_mut_ptr(), fill);
        core::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), n);
        vld1q_f32(buf.as_ptr())
    }
    #[inline(always)]
    unsafe fn store_tail(p: *mut f32, n: usize, v: float32x4_t) {
        let mut buf = [0.0f32; 4];
        vst1q_f32(buf.as_mut_ptr(), v);
        core::ptr::copy_nonoverlapping(buf.as_ptr(), p, n);
    }
    #[inline(always)]
    unsafe fn add(a: float32x4_t, b: float32x4_t) -> float32x4_t {
        vaddq_f32(a, b)
    }
    #[inline(always)]
    unsafe fn sub(a: float32x4_t, b: float32x4_t) -> float32x4_t {
        vsubq_f32(a, b)
    }
    #[inline(always)]
    unsafe fn mul(a: float32x4_t, b: float32x4_t) -> float32x4_t {
        vmulq_f32(a, b)
    }
    #[inline(always)]
    unsafe fn div(a: float32x4_t, b: float32x4_t) -> float32x4_t {
        vdivq_f32(a, b)
    }
    #[inline(always)]
    unsafe fn mul_add(a: float32x4_t, b: float32x4_t, c: float32x4_t) -> float32x4_t {
        vfmaq_f32(c, a, b)
    }
    #[inline(always)]
    unsafe fn max_nan(acc: float32x4_t, x: float32x4_t) -> float32x4_t {
        vmaxq_f32(acc, x)
    }
    #[inline(always)]
    unsafe fn clamp(v: float32x4_t, lo: float32x4_t, hi: float32x4_t) -> float32x4_t {
        vminq_f32(vmaxq_f32(v, lo), hi)
    }
    #[inline(always)]
    unsafe fn abs(v: float32x4_t) -> float32x4_t {
        vabsq_f32(v)
    }
    #[inline(always)]
    unsafe fn select_lt(
        a: float32x4_t,
        b: float32x4_t,
        t: float32x4_t,
        f: float32x4_t,
    ) -> float32x4_t {
        vbslq_f32(vcltq_f32(a, b), t, f)
    }
    #[inline(always)]
    unsafe fn round(v: float32x4_t) -> float32x4_t {
        vrndnq_f32(v)
    }
    #[inline(always)]
    unsafe fn pow2i(n: float32x4_t) -> float32x4_t {
        let e = vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127));
        vreinterpretq_f32_s32(vshlq_n_s32::<23>(e))
    }
}

entry_points!("neon", Neon);
