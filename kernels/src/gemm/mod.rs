//! f32 matrix multiplication: `C = alpha * op(A) * op(B) + beta * C`.
//!
//! `op` is expressed through the views: pass `a.t()` for a transposed
//! operand. Any row and column strides are accepted. With `beta == 0`, C is
//! never read, so it may hold NaN or garbage on entry. With `alpha == 0` or
//! an empty inner dimension A and B are not read either (the BLAS
//! convention), so NaN in them does not reach C.
//!
//! [`sgemm`] dispatches on the process tier; [`sgemm_with`] runs a given tier
//! (tests and benches); [`scalar::sgemm`] is the reference.
//!
//! Every tier shares one blocked driver (`driver.rs`: BLIS loop nest, packing
//! into per-thread buffers, rayon tasks over row blocks) and differs only in
//! its register-blocked microkernel:
//!
//! | tier     | tile (MR x NR) | accumulators        | file          |
//! |----------|----------------|---------------------|---------------|
//! | `scalar` | 4 x 8          | plain arrays        | `portable.rs` |
//! | `avx2`   | 6 x 16         | 12 ymm, FMA         | `avx2.rs`     |
//! | `avx512` | 12 x 32        | 24 zmm, FMA, masks  | `avx512.rs`   |
//! | `neon`   | 12 x 8         | 24 q, `fmla` by lane| `neon.rs`     |
//!
//! Results differ from the reference by rounding only: the k sum is split
//! into blocks and fused multiply-adds round once where the reference rounds
//! twice. With integer-valued inputs whose sums stay below 2^24 every tier
//! is exact.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod driver;
#[cfg(target_arch = "aarch64")]
mod neon;
mod pack;
mod portable;

pub mod scalar;

use crate::dispatch::{active, Isa, Tier};

use crate::mat::{MatMut, MatRef, ShapeError};
pub use driver::PAR_MIN_MACS;

/// Checks that `op(A)` is m x k, `op(B)` is k x n and C is m x n.
pub(crate) fn check_dims(a: &MatRef<'_>, b: &MatRef<'_>, c: &MatMut<'_>) -> Result<(), ShapeError> {
    if a.cols() != b.rows() {
        return Err(ShapeError::Mismatch {
            what: "gemm: columns of op(A) against rows of op(B)",
            expected: a.cols(),
            found: b.rows(),
        });
    }
    if c.rows() != a.rows() {
        return Err(ShapeError::Mismatch {
            what: "gemm: rows of C against rows of op(A)",
            expected: a.rows(),
            found: c.rows(),
        });
    }
    if c.cols() != b.cols() {
        return Err(ShapeError::Mismatch {
            what: "gemm: columns of C against columns of op(B)",
            expected: b.cols(),
            found: c.cols(),
        });
    }
    Ok(())
}

/// `C = alpha * A * B + beta * C` on the process tier.
pub fn sgemm(
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    beta: f32,
    c: MatMut<'_>,
) -> Result<(), ShapeError> {
    sgemm_with(active(), alpha, a, b, beta, c)
}

/// `C = alpha * A * B + beta * C` on a chosen tier.
///
/// Problems of at least [`PAR_MIN_MACS`] multiply-adds run on the threads of
/// the current rayon pool (`rayon::current_num_threads()`); smaller ones, and
/// every problem inside a one-thread pool, stay on the calling thread.
pub fn sgemm_with(
    tier: Tier,
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    beta: f32,
    c: MatMut<'_>,
) -> Result<(), ShapeError> {
    check_dims(&a, &b, &c)?;
    // SAFETY (every arm): a `Tier` is only made for an ISA the CPU runs, and
    // each arm picks the microkernel of the tier's ISA.
    match tier.isa() {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { driver::gemm::<avx512::Avx512x12x32>(alpha, a, b, beta, c) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { driver::gemm::<avx2::Avx2Fma6x16>(alpha, a, b, beta, c) },
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => unsafe { driver::gemm::<neon::Neon12x8>(alpha, a, b, beta, c) },
        // Scalar, and the ISAs of other architectures, which no `Tier` on
        // this one can name.
        _ => unsafe { driver::gemm::<portable::Portable4x8>(alpha, a, b, beta, c) },
    }
    Ok(())
}
