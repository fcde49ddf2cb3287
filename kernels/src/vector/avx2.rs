//! AVX2 + FMA tier of the vector kernels: 8 lanes of f32 in `__m256`.
//!
//! Implements [`Simd`] and stamps the entry points. Tails use
//! `vmaskmovps`, which neither reads nor faults on the masked-off lanes, so
//! a row that ends at a page boundary is safe. `maxps` returns its second
//! operand when either is NaN; [`Simd::max_nan`] ORs in an unordered-compare
//! mask to keep NaN instead.

use core::arch::x86_64::*;

use super::simd::{entry_points, Simd};

/// The AVX2 + FMA lane type marker.
#[derive(Clone, Copy)]
pub(crate) struct Avx2;

/// All-ones in the low `n` of 8 lanes.
#[inline(always)]
unsafe fn tail_mask(n: usize) -> __m256i {
    _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
}

impl Simd for Avx2 {
    type V = __m256;
    const LANES: usize = 8;

    #[inline(always)]
    unsafe fn splat(x: f32) -> __m256 {
        _mm256_set1_ps(x)
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> __m256 {
        _mm256_loadu_ps(p)
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: __m256) {
        _mm256_storeu_ps(p, v)
    }
    #[inline(always)]
    unsafe fn load_tail(p: *const f32, n: usize, fill: __m256) -> __m256 {
        let m = tail_mask(n);
        _mm256_blendv_ps(fill, _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m))
    }
    #[inline(always)]
    unsafe fn store_tail(p: *mut f32, n: usize, v: __m256) {
        _mm256_maskstore_ps(p, tail_mask(n), v)
    }
    #[inline(always)]
    unsafe fn add(a: __m256, b: __m256) -> __m256 {
        _mm256_add_ps(a, b)
    }
    #[inline(always)]
    unsafe fn sub(a: __m256, b: __m256) -> __m256 {
        _mm256_sub_ps(a, b)
    }
    #[inline(always)]
    unsafe fn mul(a: __m256, b: __m256) -> __m256 {
        _mm256_mul_ps(a, b)
    }
    #[inline(always)]
    unsafe fn div(a: __m256, b: __m256) -> __m256 {
        _mm256_div_ps(a, b)
    }
    #[inline(always)]
    unsafe fn mul_add(a: __m256, b: __m256, c: __m256) -> __m256 {
        _mm256_fmadd_ps(a, b, c)
    }
    #[inline(always)]
    unsafe fn max_nan(acc: __m256, x: __m256) -> __m256 {
        // max(x, acc) keeps a NaN acc (second operand); the OR makes a NaN x
        // lane all-ones, which is a NaN.
        _mm256_or_ps(_mm256_max_ps(x, acc), _mm256_cmp_ps::<_CMP_UNORD_Q>(x, x))
    }
    #[inline(always)]
    unsafe fn clamp(v: __m256, lo: __m256, hi: __m256) -> __m256 {
        // With v as the second operand a NaN v passes through both.
        _mm256_max_ps(lo, _mm256_min_ps(hi, v))
    }
    #[inline(always)]
    unsafe fn abs(v: __m256) -> __m256 {
        _mm256_andnot_ps(_mm256_set1_ps(-0.0), v)
    }
    #[inline(always)]
    unsafe fn select_lt(a: __m256, b: __m256, t: __m256, f: __m256) -> __m256 {
        _mm256_blendv_ps(f, t, _mm256_cmp_ps::<_CMP_LT_OQ>(a, b))
    }
    #[inline(always)]
    unsafe fn round(v: __m256) -> __m256 {
        _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(v)
    }
    #[inline(always)]
    unsafe fn pow2i(n: __m256) -> __m256 {
        let e = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
        _mm256_castsi256_ps(_mm256_slli_epi32::<23>(e))
    }
}

entry_points!("avx2,fma", Avx2);
