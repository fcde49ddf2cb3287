//! The blocked GEMM driver shared by every tier: loop nest, packing, threads.
//!
//! The nest follows BLIS. With C of size m x n and k the shared dimension:
//!
//! ```text
//! LOOP 5  jc over n in steps of NC     B block   kc x nc   -> L3, shared
//! LOOP 4  pc over k in steps of KC       (pack op(B)[pc.., jc..] once)
//! LOOP 3  ic over m in chunks <= MC    A block   mc x kc   -> L2, per task
//!                                        (pack op(A)[ic.., pc..] per task)
//! LOOP 2  jr over nc in steps of NR    B micro-panel kc x NR -> L1
//! LOOP 1  ir over mc in steps of MR    A micro-panel kc x MR, streamed
//!         microkernel: C[ir.., jr..] (MR x NR) += A panel * B panel
//! ```
//!
//! The microkernels keep an MR x NR tile of C in registers with the NR
//! columns along the vector lanes, so C is written row by row. A C that is
//! column-major is handled by computing `C^T = op(B)^T op(A)^T` instead,
//! which costs nothing with strided views. Other C layouts go through the
//! microkernels' scalar edge path, correct but slower.
//!
//! Threads: LOOP 3 (and, when m is too short to feed every thread, LOOP 2)
//! is split into tasks run by rayon, all reading the one packed B. Problems
//! under [`PAR_MIN_MACS`] multiply-adds stay on the calling thread.
//!
//! Left out: packing A is skipped for no layout (a row-major A pays for a
//! transposing copy even when few column panels reuse it), and B is packed
//! by the driving thread alone, which for very short m could dominate.

use super::pack::{self, PackBuf, RawMat, BUF_A, BUF_B};
use crate::mat::{MatMut, MatRef};

/// Below this many multiply-adds (m * n * k) a GEMM stays single-threaded.
///
/// 2^21 multiply-adds take roughly 20 to 60 microseconds on one core of a
/// current x86 or ARM CPU; waking rayon workers and splitting the work costs
/// a few microseconds per task, so smaller problems would gain little or
/// lose. Larger ones get the threads of the current rayon pool.
pub const PAR_MIN_MACS: usize = 1 << 21;

/// The part of C one microkernel call writes: `rows x cols` elements, element
/// `(i, j)` at `ptr + i * rs + j * cs`, with `rows <= MR` and `cols <= NR`.
#[derive(Clone, Copy)]
pub(crate) struct Tile {
    pub ptr: *mut f32,
    pub rs: usize,
    pub cs: usize,
    pub rows: usize,
    pub cols: usize,
}

/// A register-blocked microkernel and the block sizes that suit it.
pub(crate) trait MicroKernel {
    /// Rows of C per tile (the width of an A micro-panel).
    const MR: usize;
    /// Columns of C per tile (the width of a B micro-panel).
    const NR: usize;
    /// Depth of one packed block; a B micro-panel (KC x NR) should sit in L1.
    const KC: usize;
    /// Rows of one packed A block (a multiple of MR); the block sits in L2.
    const MC: usize;
    /// Columns of one packed B block (a multiple of NR); the block sits in L3.
    const NC: usize;

    /// `C = alpha * (A panel x B panel) + beta * C` on one tile; with
    /// `beta == 0` C is not read.
    ///
    /// # Safety
    /// - The CPU runs the instructions of this kernel's tier.
    /// - `a` points to `kc * MR` floats and `b` to `kc * NR` floats, laid
    ///   out as [`pack::pack`] writes them. No alignment is promised: the
    ///   buffers start on a cache line, but an A panel of 12 x kc floats
    ///   starts on one only when kc allows, so kernels load unaligned.
    /// - Every element of `c` is valid to read and write, and nothing else
    ///   accesses those elements during the call.
    unsafe fn tile(kc: usize, a: *const f32, b: *const f32, alpha: f32, beta: f32, c: Tile);
}

/// `C = alpha * acc + beta * C` for the `rows x cols` corner of a row-major
/// `MR x nr` accumulator tile: the edge path of every microkernel.
///
/// # Safety
/// `c` as in [`MicroKernel::tile`]; `acc` holds at least `c.rows * nr`
/// floats and `c.cols <= nr`.
#[inline]
pub(crate) unsafe fn store_tile_scalar(acc: &[f32], nr: usize, alpha: f32, beta: f32, c: Tile) {
    for i in 0..c.rows {
        for j in 0..c.cols {
            let v = alpha * acc[i * nr + j];
            // SAFETY: (i, j) is inside the tile the caller vouched for.
            unsafe {
                let dst = c.ptr.add(i * c.rs + j * c.cs);
                // beta == 0 must not read C: it may hold NaN.
                *dst = if beta == 0.0 { v } else { v + beta * *dst };
            }
        }
    }
}

/// A C pointer handed to several rayon tasks, each writing disjoint tiles.
#[derive(Clone, Copy)]
struct SyncPtr(*mut f32);

// SAFETY: tasks write disjoint sets of C elements (see `run_task`), and the
// `MatMut` the pointer came from is borrowed mutably for the whole call.
unsafe impl Send for SyncPtr {}
// SAFETY: as for `Send`.
unsafe impl Sync for SyncPtr {}

/// Everything a task needs for one (jc, pc) block.
#[derive(Clone, Copy)]
struct Block<'b> {
    a: RawMat,
    c: SyncPtr,
    rs_c: usize,
    cs_c: usize,
    m: usize,
    /// First column of C in this block and its width.
    jc: usize,
    nc: usize,
    /// First index of k in this block and its depth.
    pc: usize,
    kc: usize,
    alpha: f32,
    beta: f32,
    packed_b: &'b [f32],
}

/// `C = alpha * op(A) * op(B) + beta * C` with microkernel `K`.
///
/// The caller has checked the dimensions (`a` is m x k, `b` is k x n, `c`
/// is m x n).
///
/// # Safety
/// The CPU runs the instructions of `K`'s tier.
pub(crate) unsafe fn gemm<K: MicroKernel>(
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    beta: f32,
    mut c: MatMut<'_>,
) {
    let (m, n, k) = (c.rows(), c.cols(), a.cols());
    debug_assert!(a.rows() == m && b.rows() == k && b.cols() == n);
    if m == 0 || n == 0 {
        return;
    }
    // No product to add (BLAS convention: alpha == 0 skips A and B).
    if k == 0 || alpha == 0.0 {
        scale(beta, c);
        return;
    }
    // Column-major C: solve the transposed problem so tiles are stored
    // along contiguous rows.
    if c.col_stride() != 1 && c.row_stride() == 1 {
        // SAFETY: same kernel, same CPU.
        unsafe { gemm::<K>(alpha, b.t(), a.t(), beta, c.t()) };
        return;
    }

    let threads = if m.saturating_mul(n).saturating_mul(k) < PAR_MIN_MACS {
        1
    } else {
        rayon::current_num_threads().max(1)
    };
    // Split k into equal blocks no deeper than KC (384 = 2 x 192, not 256 + 128).
    let k_blocks = k.div_ceil(K::KC);
    let kc_step = k.div_ceil(k_blocks);

    let a_raw = RawMat { ptr: a.data().as_ptr(), rs: a.row_stride(), cs: a.col_stride() };
    // op(B) transposed: its rows are the columns of C, packed NR at a time.
    let bt_raw = RawMat { ptr: b.data().as_ptr(), rs: b.col_stride(), cs: b.row_stride() };
    let (rs_c, cs_c) = (c.row_stride(), c.col_stride());
    let c_ptr = SyncPtr(c.data_mut().as_mut_ptr());

    pack::with_buf(&BUF_B, |bbuf: &mut PackBuf| {
        // LOOP 5: column blocks of C.
        for jc in (0..n).step_by(K::NC) {
            let nc = (n - jc).min(K::NC);
            // LOOP 4: depth blocks; only the first applies the caller's beta.
            for (pb, pc) in (0..k).step_by(kc_step).enumerate() {
                let kc = (k - pc).min(kc_step);
                let packed_b = bbuf.get(nc.div_ceil(K::NR) * K::NR * kc);
                // SAFETY: rows jc..jc + nc of op(B)^T are columns of op(B)
                // inside its n columns, and pc..pc + kc lie inside its k rows;
                // the view checked that all of them are in its slice.
                unsafe { pack::pack(K::NR, bt_raw, jc, nc, pc, kc, packed_b) };
                let block = Block {
                    a: a_raw,
                    c: c_ptr,
                    rs_c,
                    cs_c,
                    m,
                    jc,
                    nc,
                    pc,
                    kc,
                    alpha,
                    beta: if pb == 0 { beta } else { 1.0 },
                    packed_b,
                };
                // SAFETY: the CPU runs K's tier (our precondition).
                unsafe { run_block::<K>(&block, threads) };
            }
        }
    });
}

/// LOOP 3 (and maybe LOOP 2) of one (jc, pc) block, split into tasks.
///
/// # Safety
/// As for [`gemm`].
unsafe fn run_block<K: MicroKernel>(block: &Block<'_>, threads: usize) {
    let m_panels = block.m.div_ceil(K::MR);
    let n_panels = block.nc.div_ceil(K::NR);
    let mc_panels = K::MC / K::MR;
    // Row chunks: at least one per MC rows; with threads, a multiple of the
    // thread count so the last round of tasks is not half empty.
    let mut m_chunks = m_panels.div_ceil(mc_panels);
    if threads > 1 {
        m_chunks = m_chunks.div_ceil(threads) * threads;
    }
    let m_chunks = m_chunks.min(m_panels);
    // Too few rows for the threads: split the columns as well.
    let n_chunks = if m_chunks < threads { threads.div_ceil(m_chunks).min(n_panels) } else { 1 };
    let tasks = m_chunks * n_chunks;

    let task = |t: usize| {
        let (mi, ni) = (t / n_chunks, t % n_chunks);
        let rows = even_split(m_panels, m_chunks, mi);
        let cols = even_split(n_panels, n_chunks, ni);
        // SAFETY: the CPU runs K's tier; tasks own disjoint panel ranges.
        unsafe { run_task::<K>(block, rows, cols) };
    };
    if threads == 1 || tasks == 1 {
        (0..tasks).for_each(task);
    } else {
        use rayon::prelude::*;
        (0..tasks).into_par_iter().for_each(task);
    }
}

/// The `index`-th of `parts` near-equal ranges of `0..total`.
fn even_split(total: usize, parts: usize, index: usize) -> std::ops::Range<usize> {
    (index * total / parts)..((index + 1) * total / parts)
}

/// Packs the A rows of panel range `rows` and multiplies them with the B
/// panels of range `cols`: LOOP 3's body with LOOPs 2 and 1.
///
/// # Safety
/// As for [`gemm`]; no other task writes the same (row panel, column panel)
/// pairs of C, and no row panel range exceeds MC rows.
unsafe fn run_task<K: MicroKernel>(
    block: &Block<'_>,
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
) {
    let (mr, nr, kc) = (K::MR, K::NR, block.kc);
    let i0 = rows.start * mr;
    let i1 = (rows.end * mr).min(block.m);
    if i0 >= i1 || cols.is_empty() {
        return;
    }
    pack::with_buf(&BUF_A, |abuf| {
        // Rows may exceed MC when a chunk was widened; pack them in MC steps.
        let mut ic = i0;
        while ic < i1 {
            let mc = (i1 - ic).min(K::MC);
            let packed_a = abuf.get(mc.div_ceil(mr) * mr * kc);
            // SAFETY: rows ic..ic + mc and columns pc..pc + kc are inside
            // op(A) (m x k), whose view checked its slice.
            unsafe { pack::pack(mr, block.a, ic, mc, block.pc, kc, packed_a) };

            // LOOP 2: B micro-panels; LOOP 1: A micro-panels.
            for jp in cols.clone() {
                let j = jp * nr;
                let b_panel = &block.packed_b[jp * nr * kc..(jp + 1) * nr * kc];
                let w = (block.nc - j).min(nr);
                for (ip, a_panel) in packed_a.chunks_exact(mr * kc).enumerate() {
                    let i = ic + ip * mr;
                    let tile = Tile {
                        // SAFETY: (i, jc + j) is an element of C: i < m and
                        // jc + j < jc + nc <= n.
                        ptr: unsafe { block.c.0.add(i * block.rs_c + (block.jc + j) * block.cs_c) },
                        rs: block.rs_c,
                        cs: block.cs_c,
                        rows: (i1 - i).min(mr),
                        cols: w,
                    };
                    // SAFETY: the CPU runs K's tier; the panels hold
                    // kc * MR and kc * NR packed floats; the tile is inside
                    // C and belongs to this task alone.
                    unsafe {
                        K::tile(
                            kc,
                            a_panel.as_ptr(),
                            b_panel.as_ptr(),
                            block.alpha,
                            block.beta,
                            tile,
                        )
                    };
                }
            }
            ic += mc;
        }
    });
}

/// `C = beta * C`, where `beta == 0` writes zeros without reading C.
fn scale(beta: f32, mut c: MatMut<'_>) {
    if beta == 1.0 {
        return;
    }
    for i in 0..c.rows() {
        for j in 0..c.cols() {
            let v = c.at_mut(i, j);
            *v = if beta == 0.0 { 0.0 } else { beta * *v };
        }
    }
}
