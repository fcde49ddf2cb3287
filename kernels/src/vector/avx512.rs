//! AVX-512 tier of the vector kernels: 16 lanes of f32 in `__m512`.
//!
//! Implements [`Simd`] and stamps the entry points. Tails use the
//! k-mask forms of `vmovups` (`n` low bits set): masked-off lanes are neither
//! read nor written and cannot fault. Like AVX2, `vmaxps` drops a NaN first
//! operand, so [`Simd::max_nan`] blends NaN lanes back in under a mask.
//! Only AVX-512F instructions are used; the tier also promises BW/DQ/VL,
//! which the feature string enables so the compiler may pick them.

use core::arch::x86_64::*;

use super::simd::{entry_points, Simd};

/// The AVX-512 lane type marker.
#[derive(Clone, Copy)]
pub(crate) struct Avx512;

/// The low `n` of 16 bits.
#[inline(always)]
fn tail_mask(n: usize) -> __mmask16 {
    ((1u32 << n) - 1) as __mmask16
}

impl Simd for Avx512 {
    type V = __m512;
    const LANES: usize = 16;

    #[inline(always)]
    unsafe fn splat(x: f32) -> __m512 {
        _mm512_set1_ps(x)
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> __m512 {
        _mm512_loadu_ps(p)
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: __m512) {
        _mm512_storeu_ps(p, v)
    }
    #[inline(always)]
    unsafe fn load_tail(p: *const f32, n: usize, fill: __m512) -> __m512 {
        _mm512_mask_loadu_ps(fill, tail_mask(n), p)
    }
    #[inline(always)]
    unsafe fn store_tail(p: *mut f32, n: usize, v: __m512) {
        _mm512_mask_storeu_ps(p, tail_mask(n), v)
    }
    #[inline(always)]
    unsafe fn add(a: __m512, b: __m512) -> __m512 {
        _mm512_add_ps(a, b)
    }
    #[inline(always)]
    unsafe fn sub(a: __m512, b: __m512) -> __m512 {
        _mm512_sub_ps(a, b)
    }
    #[inline(always)]
    unsafe fn mul(a: __m512, b: __m512) -> __m512 {
        _mm512_mul_ps(a, b)
    }
    #[inline(always)]
    unsafe fn div(a: __m512, b: __m512) -> __m512 {
        _mm512_div_ps(a, b)
    }
    #[inline(always)]
    unsafe fn mul_add(a: __m512, b: __m512, c: __m512) -> __m512 {
        _mm512_fmadd_ps(a, b, c)
    }
    #[inline(always)]
    unsafe fn max_nan(acc: __m512, x: __m512) -> __m512 {
        // max(x, acc) keeps a NaN acc; lanes where x is NaN take x.
        let x_nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(x, x);
        _mm512_mask_mov_ps(_mm512_max_ps(x, acc), x_nan, x)
    }
    #[inline(always)]
    unsafe fn clamp(v: __m512, lo: __m512, hi: __m512) -> __m512 {
        // With v as the second operand a NaN v passes through both.
        _mm512_max_ps(lo, _mm512_min_ps(hi, v))
    }
    #[inline(always)]
    unsafe fn abs(v: __m512) -> __m512 {
        _mm512_abs_ps(v)
    }
    #[inline(always)]
    unsafe fn select_lt(a: __m512, b: __m512, t: __m512, f: __m512) -> __m512 {
        _mm512_mask_blend_ps(_mm512_cmp_ps_mask::<_CMP_LT_OQ>(a, b), f, t)
    }
    #[inline(always)]
    unsafe fn round(v: __m512) -> __m512 {
        _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(v)
    }
    #[inline(always)]
    unsafe fn pow2i(n: __m512) -> __m512 {
        let e = _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127));
        _mm512_castsi512_ps(_mm512_slli_epi32::<23>(e))
    }
}

entry_points!("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma", Avx512);
