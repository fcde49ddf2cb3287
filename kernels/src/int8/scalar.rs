//! The int8 references, and the portable microkernel of the scalar tier.
//!
//! [`gemm_i32`] and [`gemm_f32`] are plain triple loops over an unpacked B,
//! summing in order of k with wrapping i32 arithmetic; every tier is tested
//! against them. They share no code with the packed path, so a packing or
//! driver bug cannot hide in both.

use super::driver::{Micro, TILE};
use super::pack::{check_b, GROUP};
use super::{AData, AView, BLayout, Epilogue, Int8Error, Terms};

/// `a[i][p]` as i32.
fn a_at(a: &AView<'_>, i: usize, p: usize) -> i32 {
    match a.data() {
        AData::U8(s) => i32::from(s[i * a.ld() + p]),
        AData::I8(s) => i32::from(s[i * a.ld() + p]),
    }
}

/// `b[p][j]` as i32.
fn b_at(b: &[i8], layout: BLayout, p: usize, j: usize) -> i32 {
    i32::from(match layout {
        BLayout::KByN { ldb } => b[p * ldb + j],
        BLayout::NByK { ldw } => b[j * ldw + p],
    })
}

/// Checks B and C for the references.
fn check(
    a: &AView<'_>,
    b_len: usize,
    n: usize,
    layout: BLayout,
    c_len: usize,
    ldc: usize,
) -> Result<(), Int8Error> {
    check_b(a.cols(), n, b_len, layout)?;
    super::check_c(c_len, a.rows(), n, ldc).map(|_| ())
}

/// `c[i][j] = sum_p a[i][p] b[p][j]` in wrapping i32; the reference.
pub fn gemm_i32(
    a: AView<'_>,
    b: &[i8],
    n: usize,
    layout: BLayout,
    c: &mut [i32],
    ldc: usize,
) -> Result<(), Int8Error> {
    check(&a, b.len(), n, layout, c.len(), ldc)?;
    for i in 0..a.rows() {
        for j in 0..n {
            let mut acc = 0i32;
            for p in 0..a.cols() {
                acc = acc.wrapping_add(a_at(&a, i, p) * b_at(b, layout, p, j));
            }
            c[i * ldc + j] = acc;
        }
    }
    Ok(())
}

/// The f32 epilogue written as documented, on reference sums:
/// `sa[i] sb[j] (acc - za[i] colsum[j] - zb[j] rowsum[i] + k za[i] zb[j]) + bias[j]`.
pub fn gemm_f32(
    a: AView<'_>,
    b: &[i8],
    n: usize,
    layout: BLayout,
    ep: &Epilogue<'_>,
    c: &mut [f32],
    ldc: usize,
) -> Result<(), Int8Error> {
    check(&a, b.len(), n, layout, c.len(), ldc)?;
    let (m, k) = (a.rows(), a.cols());
    let t = Terms::new(ep, m, n, matches!(a.data(), AData::I8(_)))?;
    let rowsum: Vec<i32> = (0..m).map(|i| (0..k).map(|p| a_at(&a, i, p)).sum()).collect();
    let colsum: Vec<i32> = (0..n).map(|j| (0..k).map(|p| b_at(b, layout, p, j)).sum()).collect();
    let mut acc = vec![0i32; m * n];
    gemm_i32(a, b, n, layout, &mut acc, n)?;
    let k = k as i32;
    for i in 0..m {
        for j in 0..n {
            let v = acc[i * n + j]
                .wrapping_sub(t.za[i].wrapping_mul(colsum[j]))
                .wrapping_sub(t.zb[j].wrapping_mul(rowsum[i]))
                .wrapping_add(k.wrapping_mul(t.za[i]).wrapping_mul(t.zb[j]));
            c[i * ldc + j] = t.sa[i] * t.sb[j] * v as f32 + t.bias[j];
        }
    }
    Ok(())
}

/// The scalar tier's microkernel: 4 x 16, A widened to i16.
pub(crate) struct Portable;

impl Micro for Portable {
    const MR: usize = 4;
    const NR: usize = 16;
    const SHIFT_U8: i32 = 0;
    const SHIFT_I8: i32 = 0;
    type A = i16;

    #[inline(always)]
    unsafe fn tile(
        groups: usize,
        a: *const i16,
        _a_rs: usize,
        _a_gs: usize,
        b: *const i8,
        _panel_stride: usize,
        out: &mut [i32; TILE],
    ) {
        const MR: usize = Portable::MR;
        const NR: usize = Portable::NR;
        // SAFETY: the caller provides `groups` packed A groups of MR x 4 and
        // `groups` 64-byte lines of one panel (NR = 16 is a whole panel).
        let (a, b) = unsafe {
            (
                std::slice::from_raw_parts(a, groups * MR * GROUP),
                std::slice::from_raw_parts(b, groups * 64),
            )
        };
        let mut acc = [0i32; MR * NR];
        for (ag, bg) in a.chunks_exact(MR * GROUP).zip(b.chunks_exact(64)) {
            for (r, ar) in ag.chunks_exact(GROUP).enumerate() {
                for (c, bc) in bg.chunks_exact(GROUP).enumerate() {
                    let dot: i32 =
                        ar.iter().zip(bc).map(|(&x, &y)| i32::from(x) * i32::from(y)).sum();
                    acc[r * NR + c] = acc[r * NR + c].wrapping_add(dot);
                }
            }
        }
        out[..MR * NR].copy_from_slice(&acc);
    }
}
