//! Integer matrix multiplication for int8 inference of linear layers.
//!
//! `C (m x n) = A (m x k) * B (k x n)` with 8-bit inputs and 32-bit sums:
//! A holds activations quantized per token, as `u8` with a zero point or as
//! `i8`; B holds weights quantized per output channel as `i8`. Weights do not
//! change between calls, so B is packed once into a [`PackedB`]; A is packed
//! on the fly, a cost of `O(m k)` against the `O(m n k)` product.
//!
//! Two outputs are offered: the raw `i32` sums ([`gemm_i32`]) and an `f32`
//! epilogue ([`gemm_f32`]) that applies zero points, scales and a bias:
//!
//! ```text
//! out[i][j] = sa[i] * sb[j] * (acc[i][j] - za[i] colsum_b[j] - zb[j] rowsum_a[i]
//!                               + k za[i] zb[j]) + bias[j]
//! ```
//!
//! which equals `sa[i] sb[j] sum_p (a[i][p] - za[i]) (b[p][j] - zb[j]) + bias[j]`.
//! Scales and zero points may be uniform or given per row of A and per
//! column of B (see [`Epilogue`]); the bias is optional.
//!
//! Integer results are bit-exact across tiers for every input: each tier
//! either multiplies exactly (widening to i16 before any pairwise sum) or
//! shifts one operand into the other signedness and removes the shift with
//! a per-column term `128 colsum_b[j]`, exact in wrapping i32 arithmetic.
//! [`MAX_K`] bounds k so that no sum can leave the i32 range.
//!
//! | tier | A u8 x B i8 | A i8 x B i8 |
//! |------|-------------|-------------|
//! | scalar | i16 products, plain loops | same |
//! | avx2 | `vpmovsxbw` + `vpmaddwd` on widened operands | same |
//! | avx512 + VNNI | `vpdpbusd` | A + 128 as u8, then `vpdpbusd`, minus 128 colsum_b |
//! | avx512 | widened `vpmaddwd` on 512-bit registers | same |
//! | neon + dotprod | A - 128 as i8, then `sdot`, plus 128 colsum_b | `sdot` |
//! | neon | i16 `mul` + `sadalp` | same |
//!
//! `vpmaddubsw` is not used: it adds two u8 x i8 products into an i16 with
//! saturation (255 * 127 * 2 does not fit), and the usual remedy of keeping
//! A below 128 changes the answer for arbitrary u8 activations.
//!
//! With VNNI, whole 12-row tiles of u8 A whose k is a multiple of 4 are read
//! in place; other A is packed per call (`O(m k)`, small beside `O(m n k)`).
//! Large products are split by rows over rayon's threads
//! (`rayon::current_num_threads()`).
//!
//! Not covered: column-major or strided-column A, an output added to an
//! existing C, and blocking over k (a packed column tile spans all of k; for
//! k up to a few thousand it still fits in L2). Nor are AMX tiles (Sapphire
//! Rapids and later; their intrinsics are not stable Rust) or the 256-bit
//! AVX-VNNI encoding, which the dispatch tiers do not name: the AVX2 tier
//! stays on `vpmaddwd` even where AVX-VNNI exists.

mod driver;
mod pack;
pub mod scalar;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "aarch64")]
mod neon;

use std::fmt;

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
use crate::dispatch::Feature;
use crate::dispatch::{active, Isa, Tier};

pub use pack::PackedB;

/// The deepest k accepted.
///
/// With 8-bit operands and zero points inside their element type's range,
/// every term is at most `255 * 255` in magnitude, so `k <= 32768` keeps
/// every corrected sum inside i32.
pub const MAX_K: usize = 32768;

/// Why an int8 GEMM call was refused.
#[derive(Clone, Debug, PartialEq)]
pub enum Int8Error {
    /// A slice too short for the matrix it should hold.
    OutOfBounds { what: &'static str, needed: usize, len: usize },
    /// A leading dimension smaller than the row it has to step over.
    Stride { what: &'static str, ld: usize, min: usize },
    /// Operand dimensions, or a per-row/per-column list, that do not agree.
    Mismatch { what: &'static str, expected: usize, found: usize },
    /// A size whose element count overflows `usize`.
    Overflow { what: &'static str },
    /// k beyond [`MAX_K`].
    TooDeep { k: usize, max: usize },
    /// A NaN or infinite scale or bias.
    NonFinite { what: &'static str, index: usize },
    /// A zero point outside the range of the values it applies to.
    ZeroPoint { what: &'static str, index: usize, value: i32 },
}

impl fmt::Display for Int8Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Int8Error::OutOfBounds { what, needed, len } => {
                write!(f, "{what}: needs {needed} elements but the slice holds {len}")
            }
            Int8Error::Stride { what, ld, min } => {
                write!(f, "{what}: leading dimension {ld} is below the row length {min}")
            }
            Int8Error::Mismatch { what, expected, found } => {
                write!(f, "{what}: expected {expected}, found {found}")
            }
            Int8Error::Overflow { what } => write!(f, "{what}: size overflows usize"),
            Int8Error::TooDeep { k, max } => {
                write!(f, "int8 gemm: k = {k} exceeds {max}, beyond which i32 sums may overflow")
            }
            Int8Error::NonFinite { what, index } => {
                write!(f, "{what}[{index}] is NaN or infinite")
            }
            Int8Error::ZeroPoint { what, index, value } => {
                write!(f, "{what}[{index}] = {value} lies outside the range of its values")
            }
        }
    }
}

impl std::error::Error for Int8Error {}

/// Elements a `rows x cols` row-major matrix with leading dimension `ld`
/// spans, after checking that `ld` covers a row.
pub(crate) fn row_major_span(
    what: &'static str,
    rows: usize,
    cols: usize,
    ld: usize,
) -> Result<usize, Int8Error> {
    if rows > 1 && ld < cols {
        return Err(Int8Error::Stride { what, ld, min: cols });
    }
    if rows == 0 || cols == 0 {
        return Ok(0);
    }
    (rows - 1).checked_mul(ld).and_then(|s| s.checked_add(cols)).ok_or(Int8Error::Overflow { what })
}

/// The elements of A: unsigned activations (with a zero point) or signed.
#[derive(Clone, Copy, Debug)]
pub enum AData<'a> {
    U8(&'a [u8]),
    I8(&'a [i8]),
}

/// A row-major view of A: element `(i, p)` is `data[i * ld + p]`.
#[derive(Clone, Copy, Debug)]
pub struct AView<'a> {
    data: AData<'a>,
    rows: usize,
    cols: usize,
    ld: usize,
}

impl<'a> AView<'a> {
    /// A view of unsigned activations, checked against the slice length.
    pub fn u8(data: &'a [u8], rows: usize, cols: usize, ld: usize) -> Result<Self, Int8Error> {
        AView::new(AData::U8(data), data.len(), rows, cols, ld)
    }

    /// A view of signed activations, checked against the slice length.
    pub fn i8(data: &'a [i8], rows: usize, cols: usize, ld: usize) -> Result<Self, Int8Error> {
        AView::new(AData::I8(data), data.len(), rows, cols, ld)
    }

    fn new(
        data: AData<'a>,
        len: usize,
        rows: usize,
        cols: usize,
        ld: usize,
    ) -> Result<Self, Int8Error> {
        let needed = row_major_span("int8 gemm: A", rows, cols, ld)?;
        if needed > len {
            return Err(Int8Error::OutOfBounds { what: "int8 gemm: A", needed, len });
        }
        Ok(AView { data, rows, cols, ld })
    }

    pub fn rows(&self) -> usize {
        self.rows
    }
    pub fn cols(&self) -> usize {
        self.cols
    }
    pub fn ld(&self) -> usize {
        self.ld
    }
    pub fn data(&self) -> AData<'a> {
        self.data
    }
}

/// How an unpacked B is laid out in its slice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BLayout {
    /// k x n row-major: `b[p][j]` at `p * ldb + j`.
    KByN { ldb: usize },
    /// n x k row-major, the way linear layers store `W`: `b[p][j]` at
    /// `j * ldw + p`.
    NByK { ldw: usize },
}

/// A value shared by every row (or column), or one per row (or column).
#[derive(Clone, Copy, Debug)]
pub enum Per<'a, T> {
    All(T),
    Each(&'a [T]),
}

/// What turns the i32 sums into f32 outputs.
///
/// `a_scale` and `a_zero` are uniform or per row of A (per token);
/// `b_scale` and `b_zero` uniform or per column of B (per output channel).
/// Zero points must lie in the range of the values they apply to: 0..=255
/// for u8 A, -128..=127 for i8 A and for B.
#[derive(Clone, Copy, Debug)]
pub struct Epilogue<'a> {
    pub a_scale: Per<'a, f32>,
    pub a_zero: Per<'a, i32>,
    pub b_scale: Per<'a, f32>,
    pub b_zero: Per<'a, i32>,
    pub bias: Option<&'a [f32]>,
}

impl<'a> Epilogue<'a> {
    /// Scales only: zero points 0 and no bias.
    pub fn scales(a_scale: Per<'a, f32>, b_scale: Per<'a, f32>) -> Self {
        Epilogue { a_scale, a_zero: Per::All(0), b_scale, b_zero: Per::All(0), bias: None }
    }
}

/// Expands a [`Per`] to `len` values, checking its length and each value.
fn expand<T: Copy>(
    what: &'static str,
    per: Per<'_, T>,
    len: usize,
    check: impl Fn(T) -> bool,
    err: impl Fn(usize, T) -> Int8Error,
) -> Result<Vec<T>, Int8Error> {
    let out = match per {
        Per::All(v) => vec![v; len],
        Per::Each(s) if s.len() == len => s.to_vec(),
        Per::Each(s) => return Err(Int8Error::Mismatch { what, expected: len, found: s.len() }),
    };
    match out.iter().position(|&v| !check(v)) {
        Some(i) => Err(err(i, out[i])),
        None => Ok(out),
    }
}

/// Per-row and per-column values of an [`Epilogue`], expanded and checked.
pub(crate) struct Terms {
    pub sa: Vec<f32>,
    pub za: Vec<i32>,
    pub sb: Vec<f32>,
    pub zb: Vec<i32>,
    pub bias: Vec<f32>,
}

impl Terms {
    fn new(ep: &Epilogue<'_>, m: usize, n: usize, a_signed: bool) -> Result<Terms, Int8Error> {
        let finite = |what| move |i, _| Int8Error::NonFinite { what, index: i };
        let zp = |what| move |index, value| Int8Error::ZeroPoint { what, index, value };
        let a_range = if a_signed { -128..=127 } else { 0..=255 };
        let sa =
            expand("int8 epilogue: a_scale", ep.a_scale, m, f32::is_finite, finite("a_scale"))?;
        let sb =
            expand("int8 epilogue: b_scale", ep.b_scale, n, f32::is_finite, finite("b_scale"))?;
        let za =
            expand("int8 epilogue: a_zero", ep.a_zero, m, |z| a_range.contains(&z), zp("a_zero"))?;
        let zb = expand(
            "int8 epilogue: b_zero",
            ep.b_zero,
            n,
            |z| (-128..=127).contains(&z),
            zp("b_zero"),
        )?;
        let bias = match ep.bias {
            None => vec![0.0; n],
            Some(b) => {
                expand("int8 epilogue: bias", Per::Each(b), n, f32::is_finite, finite("bias"))?
            }
        };
        Ok(Terms { sa, za, sb, zb, bias })
    }
}

/// Checks that C can hold `m x n` results with leading dimension `ldc`.
fn check_c(len: usize, m: usize, n: usize, ldc: usize) -> Result<usize, Int8Error> {
    let needed = row_major_span("int8 gemm: C", m, n, ldc)?;
    if needed > len {
        return Err(Int8Error::OutOfBounds { what: "int8 gemm: C", needed, len });
    }
    Ok(needed)
}

/// Checks that A's columns match the packed B's rows.
fn check_k(a: &AView<'_>, b: &PackedB) -> Result<(), Int8Error> {
    if a.cols() != b.k() {
        return Err(Int8Error::Mismatch {
            what: "int8 gemm: columns of A against rows of B",
            expected: b.k(),
            found: a.cols(),
        });
    }
    Ok(())
}

/// `C = A * B` as raw i32 sums, on the process tier.
pub fn gemm_i32(a: AView<'_>, b: &PackedB, c: &mut [i32], ldc: usize) -> Result<(), Int8Error> {
    gemm_i32_with(active(), a, b, c, ldc)
}

/// `C = A * B` as raw i32 sums, on a chosen tier.
pub fn gemm_i32_with(
    tier: Tier,
    a: AView<'_>,
    b: &PackedB,
    c: &mut [i32],
    ldc: usize,
) -> Result<(), Int8Error> {
    check_k(&a, b)?;
    let used = check_c(c.len(), a.rows(), b.n(), ldc)?;
    driver::execute(tier, &a, b, driver::Out::I32 { c: &mut c[..used], ldc });
    Ok(())
}

/// `C = epilogue(A * B)` in f32, on the process tier.
pub fn gemm_f32(
    a: AView<'_>,
    b: &PackedB,
    ep: &Epilogue<'_>,
    c: &mut [f32],
    ldc: usize,
) -> Result<(), Int8Error> {
    gemm_f32_with(active(), a, b, ep, c, ldc)
}

/// `C = epilogue(A * B)` in f32, on a chosen tier.
pub fn gemm_f32_with(
    tier: Tier,
    a: AView<'_>,
    b: &PackedB,
    ep: &Epilogue<'_>,
    c: &mut [f32],
    ldc: usize,
) -> Result<(), Int8Error> {
    check_k(&a, b)?;
    let used = check_c(c.len(), a.rows(), b.n(), ldc)?;
    let terms = Terms::new(ep, a.rows(), b.n(), matches!(a.data(), AData::I8(_)))?;
    driver::execute(tier, &a, b, driver::Out::F32 { c: &mut c[..used], ldc, terms: &terms });
    Ok(())
}

/// `C = A * B` as raw i32 sums from an unpacked B (k = `a.cols()`), on a
/// chosen tier. Packs B on every call; prefer [`PackedB`] for weights.
pub fn gemm_i32_unpacked_with(
    tier: Tier,
    a: AView<'_>,
    b: &[i8],
    n: usize,
    layout: BLayout,
    c: &mut [i32],
    ldc: usize,
) -> Result<(), Int8Error> {
    let packed = PackedB::new(a.cols(), n, b, layout)?;
    gemm_i32_with(tier, a, &packed, c, ldc)
}

/// [`gemm_i32_unpacked_with`] on the process tier.
pub fn gemm_i32_unpacked(
    a: AView<'_>,
    b: &[i8],
    n: usize,
    layout: BLayout,
    c: &mut [i32],
    ldc: usize,
) -> Result<(), Int8Error> {
    gemm_i32_unpacked_with(active(), a, b, n, layout, c, ldc)
}

/// `C = epilogue(A * B)` in f32 from an unpacked B, on a chosen tier.
#[allow(clippy::too_many_arguments)]
pub fn gemm_f32_unpacked_with(
    tier: Tier,
    a: AView<'_>,
    b: &[i8],
    n: usize,
    layout: BLayout,
    ep: &Epilogue<'_>,
    c: &mut [f32],
    ldc: usize,
) -> Result<(), Int8Error> {
    let packed = PackedB::new(a.cols(), n, b, layout)?;
    gemm_f32_with(tier, a, &packed, ep, c, ldc)
}

/// [`gemm_f32_unpacked_with`] on the process tier.
pub fn gemm_f32_unpacked(
    a: AView<'_>,
    b: &[i8],
    n: usize,
    layout: BLayout,
    ep: &Epilogue<'_>,
    c: &mut [f32],
    ldc: usize,
) -> Result<(), Int8Error> {
    gemm_f32_unpacked_with(active(), a, b, n, layout, ep, c, ldc)
}

/// Which microkernel a tier runs, as named in benches and reports.
pub fn kernel_name(tier: Tier) -> &'static str {
    match tier.isa() {
        Isa::Scalar => "scalar-i16",
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => "avx2-vpmaddwd",
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 if tier.has(Feature::Avx512Vnni) => "avx512-vpdpbusd",
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => "avx512-vpmaddwd",
        #[cfg(target_arch = "aarch64")]
        Isa::Neon if tier.has(Feature::DotProd) => "neon-sdot",
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => "neon-sadalp",
        _ => "scalar-i16",
    }
}
