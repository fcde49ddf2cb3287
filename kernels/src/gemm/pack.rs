//! Packing of GEMM operands into micro-panels, and the buffers that hold them.
//!
//! A micro-panel of width `R` covers `R` rows of a matrix `X` (op(A), or
//! op(B) transposed) over `kc` columns and is laid out column by column:
//!
//! ```text
//! dst[p * R + i] = X[i0 + i, p0 + p]      i < R, p < kc
//! ```
//!
//! so a microkernel reads one contiguous run of `R` floats per step of k.
//! Rows past the edge of `X` are filled with zeros, which lets every
//! microkernel run full tiles and clip only when it writes C. Any strides go
//! through here, which is why the driver never looks at the layout of A or B.
//!
//! Buffers are 64-byte aligned and kept per thread between calls, so a steady
//! stream of GEMMs allocates nothing after the first few.

use std::cell::Cell;
use std::thread::LocalKey;

/// One cache line of f32s; the unit of allocation of [`PackBuf`].
#[repr(C, align(64))]
#[derive(Clone, Copy)]
struct Line([f32; 16]);

/// A growable f32 buffer whose start is 64-byte aligned.
#[derive(Default)]
pub(crate) struct PackBuf {
    lines: Vec<Line>,
}

impl PackBuf {
    pub(crate) const fn new() -> PackBuf {
        PackBuf { lines: Vec::new() }
    }

    /// The first `len` floats, growing the buffer if needed. The contents
    /// are whatever an earlier use left; packing overwrites all of it.
    pub(crate) fn get(&mut self, len: usize) -> &mut [f32] {
        let lines = len.div_ceil(16);
        if self.lines.len() < lines {
            self.lines.resize(lines, Line([0.0; 16]));
        }
        // SAFETY: `Line` is `repr(C)` over `[f32; 16]` with size 64 and no
        // padding, so `lines.len()` initialised lines are `16 * lines.len()`
        // contiguous initialised f32s, and `len <= 16 * lines.len()`.
        unsafe { std::slice::from_raw_parts_mut(self.lines.as_mut_ptr().cast::<f32>(), len) }
    }
}

thread_local! {
    /// Packed A blocks, one per thread that runs a GEMM task.
    pub(crate) static BUF_A: Cell<PackBuf> = const { Cell::new(PackBuf::new()) };
    /// Packed B blocks, held by the thread that drives a GEMM.
    pub(crate) static BUF_B: Cell<PackBuf> = const { Cell::new(PackBuf::new()) };
}

/// Runs `f` with a thread's buffer taken out of `key` and puts it back after.
///
/// Taking (rather than borrowing) makes re-entry harmless: a GEMM that runs
/// on this thread while another holds the buffer (rayon may run a stolen
/// task while a thread waits) finds an empty buffer and allocates its own.
pub(crate) fn with_buf<T>(
    key: &'static LocalKey<Cell<PackBuf>>,
    f: impl FnOnce(&mut PackBuf) -> T,
) -> T {
    let mut buf = key.take();
    let out = f(&mut buf);
    key.set(buf);
    out
}

/// The raw parts of a read-only strided matrix: element `(i, j)` lives at
/// `ptr + i * rs + j * cs`.
#[derive(Clone, Copy)]
pub(crate) struct RawMat {
    pub ptr: *const f32,
    pub rs: usize,
    pub cs: usize,
}

// SAFETY: a `RawMat` is only built from a `MatRef` borrowed for the whole
// GEMM call, so reading through it from several threads is reading a shared
// `&[f32]`.
unsafe impl Send for RawMat {}
// SAFETY: as for `Send`: the pointee is immutable for the duration of use.
unsafe impl Sync for RawMat {}

/// Packs rows `i0..i0 + rows` and columns `p0..p0 + kc` of `x` into
/// micro-panels of width `r`, zero-padding the last one to `r` rows.
///
/// `dst` must hold at least `rows.div_ceil(r) * r * kc` floats.
///
/// # Safety
/// Every element `(i, p)` with `i0 <= i < i0 + rows`, `p0 <= p < p0 + kc`
/// must lie inside the allocation `x.ptr` points into.
pub(crate) unsafe fn pack(
    r: usize,
    x: RawMat,
    i0: usize,
    rows: usize,
    p0: usize,
    kc: usize,
    dst: &mut [f32],
) {
    // Monomorphise the common widths so the inner copy has a fixed length.
    // SAFETY (all arms): the caller's precondition is passed on unchanged.
    unsafe {
        match r {
            4 => pack_fixed::<4>(x, i0, rows, p0, kc, dst),
            6 => pack_fixed::<6>(x, i0, rows, p0, kc, dst),
            8 => pack_fixed::<8>(x, i0, rows, p0, kc, dst),
            12 => pack_fixed::<12>(x, i0, rows, p0, kc, dst),
            16 => pack_fixed::<16>(x, i0, rows, p0, kc, dst),
            32 => pack_fixed::<32>(x, i0, rows, p0, kc, dst),
            _ => pack_any(r, x, i0, rows, p0, kc, dst),
        }
    }
}

/// [`pack`] for a width known at compile time.
///
/// # Safety
/// As for [`pack`].
unsafe fn pack_fixed<const R: usize>(
    x: RawMat,
    i0: usize,
    rows: usize,
    p0: usize,
    kc: usize,
    dst: &mut [f32],
) {
    if kc == 0 {
        return;
    }
    let panels = rows.div_ceil(R);
    assert!(dst.len() >= panels * R * kc, "gemm packing buffer too small");
    for (panel, out) in dst.chunks_exact_mut(R * kc).take(panels).enumerate() {
        let first = i0 + panel * R;
        let h = (rows - panel * R).min(R);
        // SAFETY: rows first..first + h and columns p0..p0 + kc lie inside
        // the region the caller vouched for.
        let base = unsafe { x.ptr.add(first * x.rs + p0 * x.cs) };

        if h == R && x.rs == 1 {
            // The panel's rows are adjacent in memory: copy R at a time.
            for (p, col) in out.chunks_exact_mut(R).enumerate() {
                // SAFETY: elements (first..first + R, p0 + p) are in bounds
                // and adjacent because rs == 1.
                let src = unsafe { std::slice::from_raw_parts(base.add(p * x.cs), R) };
                col.copy_from_slice(src);
            }
        } else if h == R && x.cs == 1 && R.is_multiple_of(4) && cfg!(target_arch = "x86_64") {
            // Rows contiguous along p (row-major A, or B^T of an NT
            // product): a transposing copy, four rows by four columns.
            // SAFETY: the whole panel (R rows, kc columns) is in bounds.
            unsafe { transpose_panel::<R>(base, x.rs, kc, out) };
        } else if h == R {
            // General strides: gather R rows per column. Reading row by row
            // keeps each source row streaming.
            for i in 0..R {
                // SAFETY: row first + i is in bounds.
                let row = unsafe { base.add(i * x.rs) };
                for p in 0..kc {
                    // SAFETY: element (first + i, p0 + p) is in bounds.
                    out[p * R + i] = unsafe { *row.add(p * x.cs) };
                }
            }
        } else {
            // The ragged last panel: real rows, then zeros.
            for p in 0..kc {
                for i in 0..R {
                    out[p * R + i] = if i < h {
                        // SAFETY: i < h, so (first + i, p0 + p) is in bounds.
                        unsafe { *base.add(i * x.rs + p * x.cs) }
                    } else {
                        0.0
                    };
                }
            }
        }
    }
}

/// [`pack`] for any width.
///
/// # Safety
/// As for [`pack`].
unsafe fn pack_any(
    r: usize,
    x: RawMat,
    i0: usize,
    rows: usize,
    p0: usize,
    kc: usize,
    dst: &mut [f32],
) {
    if kc == 0 || r == 0 {
        return;
    }
    let panels = rows.div_ceil(r);
    assert!(dst.len() >= panels * r * kc, "gemm packing buffer too small");
    for (panel, out) in dst.chunks_exact_mut(r * kc).take(panels).enumerate() {
        let first = i0 + panel * r;
        let h = (rows - panel * r).min(r);
        for p in 0..kc {
            for i in 0..r {
                out[p * r + i] = if i < h {
                    // SAFETY: i < h, so (first + i, p0 + p) is in bounds.
                    unsafe { *x.ptr.add((first + i) * x.rs + (p0 + p) * x.cs) }
                } else {
                    0.0
                };
            }
        }
    }
}

/// Writes `out[p * R + i] = src[i * rs + p]` for `i < R`, `p < kc`: a full
/// panel whose source rows are contiguous, transposed 4 x 4 at a time with
/// SSE shuffles (baseline on x86-64, so no target feature is needed). On
/// other targets it is the plain gather.
///
/// # Safety
/// `src[i * rs + p]` is readable for every `i < R`, `p < kc`;
/// `out.len() >= R * kc`.
#[inline]
unsafe fn transpose_panel<const R: usize>(src: *const f32, rs: usize, kc: usize, out: &mut [f32]) {
    debug_assert!(out.len() >= R * kc && R.is_multiple_of(4));
    // Advanced only by the x86-64 block below.
    #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
    let mut p = 0;
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        let dst = out.as_mut_ptr();
        while p + 4 <= kc {
            for i in (0..R).step_by(4) {
                // SAFETY: rows i..i + 4 < R and columns p..p + 4 <= kc are
                // readable; the stores go to out[(p + q) * R + i..][..4] with
                // q < 4, inside R * kc.
                unsafe {
                    // r_q = row i + q, columns p..p + 4.
                    let r0 = _mm_loadu_ps(src.add(i * rs + p));
                    let r1 = _mm_loadu_ps(src.add((i + 1) * rs + p));
                    let r2 = _mm_loadu_ps(src.add((i + 2) * rs + p));
                    let r3 = _mm_loadu_ps(src.add((i + 3) * rs + p));
                    // t0 = r0[0] r1[0] r0[1] r1[1], t1 = the upper halves; same for r2, r3.
                    let t0 = _mm_unpacklo_ps(r0, r1);
                    let t1 = _mm_unpackhi_ps(r0, r1);
                    let t2 = _mm_unpacklo_ps(r2, r3);
                    let t3 = _mm_unpackhi_ps(r2, r3);
                    // Column q of the 4 x 4 block, i.e. rows i..i + 4 at p + q.
                    _mm_storeu_ps(dst.add(p * R + i), _mm_movelh_ps(t0, t2));
                    _mm_storeu_ps(dst.add((p + 1) * R + i), _mm_movehl_ps(t2, t0));
                    _mm_storeu_ps(dst.add((p + 2) * R + i), _mm_movelh_ps(t1, t3));
                    _mm_storeu_ps(dst.add((p + 3) * R + i), _mm_movehl_ps(t3, t1));
                }
            }
            p += 4;
        }
    }
    // The last kc % 4 columns (or all of them off x86-64).
    for p in p..kc {
        for i in 0..R {
            // SAFETY: i < R, p < kc: readable by the caller's promise.
            out[p * R + i] = unsafe { *src.add(i * rs + p) };
        }
    }
}
