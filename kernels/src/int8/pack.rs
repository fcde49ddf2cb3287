//! Panel layouts shared by every int8 microkernel.
//!
//! B is cut into panels of [`PANEL`] = 16 columns and k into groups of four.
//! Inside a panel, group `g` is one 64-byte line holding, for each column
//! `c`, the four bytes `b[4g..4g+4][c]`:
//!
//! ```text
//! line g of panel p: [b[4g][16p] b[4g+1][16p] b[4g+2][16p] b[4g+3][16p] | b[4g][16p+1] ... ]
//! ```
//!
//! That is the operand order of `vpdpbusd` and `sdot` (four adjacent bytes
//! meet four bytes of A in one i32 lane), and the widening tiers read the
//! same lines as 16-column by 4-deep i16 blocks. One layout means a
//! [`PackedB`] serves every tier. Lines are 64-byte aligned, so a 512-bit
//! load never splits a cache line. Rows past k and columns past n (up to a
//! multiple of [`PANEL_PAIR`]) are zero, which adds nothing to any sum.
//!
//! A is packed per call into tiles of `MR` rows with the same grouping:
//! group `g` of a tile holds `a[r][4g..4g+4]` for `r` in `0..MR`, stored as
//! whatever element the microkernel reads (u8, i8 or i16, shifted or not).

use super::{row_major_span, BLayout, Int8Error, MAX_K};

/// Columns per packed panel.
pub(crate) const PANEL: usize = 16;
/// Columns are padded to this, so a microkernel spanning two panels never
/// reads past the end.
pub(crate) const PANEL_PAIR: usize = 32;
/// Depth of one group: four k values per i32 lane.
pub(crate) const GROUP: usize = 4;

/// Checks that a slice of `len` elements holds a `k x n` B laid out as
/// `layout`.
pub(crate) fn check_b(k: usize, n: usize, len: usize, layout: BLayout) -> Result<(), Int8Error> {
    // (rows, cols, ld) of the slice as stored.
    let (rows, cols, ld) = match layout {
        BLayout::KByN { ldb } => (k, n, ldb),
        BLayout::NByK { ldw } => (n, k, ldw),
    };
    let needed = row_major_span("int8 gemm: B", rows, cols, ld)?;
    if needed > len {
        return Err(Int8Error::OutOfBounds { what: "int8 gemm: B", needed, len });
    }
    Ok(())
}

/// One 64-byte line of a panel: a group of four k values for 16 columns.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([i8; 64]);

/// B packed once for repeated products: the weights of a linear layer.
#[derive(Clone)]
pub struct PackedB {
    k: usize,
    n: usize,
    groups: usize,
    lines: Vec<Line>,
    colsum: Vec<i32>,
}

impl std::fmt::Debug for PackedB {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackedB").field("k", &self.k).field("n", &self.n).finish_non_exhaustive()
    }
}

impl PackedB {
    /// Packs a `k x n` B stored as `layout` says.
    ///
    /// Fails when the slice is too short, a leading dimension is below its
    /// row length, or k exceeds [`MAX_K`].
    pub fn new(k: usize, n: usize, b: &[i8], layout: BLayout) -> Result<PackedB, Int8Error> {
        if k > MAX_K {
            return Err(Int8Error::TooDeep { k, max: MAX_K });
        }
        check_b(k, n, b.len(), layout)?;

        let groups = k.div_ceil(GROUP);
        let panels = n.div_ceil(PANEL_PAIR) * (PANEL_PAIR / PANEL);
        let total =
            panels.checked_mul(groups).ok_or(Int8Error::Overflow { what: "int8 gemm: B" })?;
        let mut lines = vec![Line([0; 64]); total];
        let mut colsum = vec![0i32; n];

        // b[p][j] for p < k, j < n.
        let at = |p: usize, j: usize| match layout {
            BLayout::KByN { ldb } => b[p * ldb + j],
            BLayout::NByK { ldw } => b[j * ldw + p],
        };
        for (j, sum) in colsum.iter_mut().enumerate() {
            let (panel, col) = (j / PANEL, j % PANEL);
            for p in 0..k {
                let v = at(p, j);
                lines[panel * groups + p / GROUP].0[col * GROUP + p % GROUP] = v;
                *sum += i32::from(v);
            }
        }
        Ok(PackedB { k, n, groups, lines, colsum })
    }

    /// Rows of B (the depth of the product).
    pub fn k(&self) -> usize {
        self.k
    }

    /// Columns of B (outputs of the layer).
    pub fn n(&self) -> usize {
        self.n
    }

    /// `colsum[j] = sum_p b[p][j]`, used to remove A's zero point.
    pub fn col_sums(&self) -> &[i32] {
        &self.colsum
    }

    /// Number of four-deep groups, `ceil(k / 4)`.
    pub(crate) fn groups(&self) -> usize {
        self.groups
    }

    /// Bytes from one panel to the next.
    pub(crate) fn panel_stride(&self) -> usize {
        self.groups * 64
    }

    /// Pointer to column `j` (a multiple of 8) of group 0; the columns up
    /// to the next multiple of [`PANEL_PAIR`] are readable for every group.
    pub(crate) fn col_ptr(&self, j: usize) -> *const i8 {
        let base = self.lines.as_ptr().cast::<i8>();
        let off = (j / PANEL) * self.panel_stride() + (j % PANEL) * GROUP;
        base.wrapping_add(off)
    }
}

/// A value as a microkernel stores it in its packed A.
pub(crate) trait AElem: Copy + Default + Send + Sync {
    fn from_i32(v: i32) -> Self;
}

impl AElem for u8 {
    fn from_i32(v: i32) -> Self {
        v as u8
    }
}

impl AElem for i8 {
    fn from_i32(v: i32) -> Self {
        v as i8
    }
}

impl AElem for i16 {
    fn from_i32(v: i32) -> Self {
        v as i16
    }
}

/// An element of A as the caller holds it.
pub(crate) trait AIn: Copy + Send + Sync {
    const SIGNED: bool;
    fn val(self) -> i32;
}

impl AIn for u8 {
    const SIGNED: bool = false;
    fn val(self) -> i32 {
        i32::from(self)
    }
}

impl AIn for i8 {
    const SIGNED: bool = true;
    fn val(self) -> i32 {
        i32::from(self)
    }
}

/// Packs rows `r0..r0 + rows` of A (leading dimension `lda`, `k` columns)
/// into `MR`-row tiles of `ceil(k / 4)` groups, each value plus `shift`.
#[inline(always)]
pub(crate) fn pack_a<T: AIn, E: AElem>(
    a: &[T],
    lda: usize,
    r0: usize,
    rows: usize,
    k: usize,
    mr: usize,
    shift: i32,
) -> Vec<E> {
    let groups = k.div_ceil(GROUP);
    let tile = groups * mr * GROUP;
    let mut buf = vec![E::default(); rows.div_ceil(mr) * tile];
    if k == 0 {
        return buf;
    }
    let cvt = |v: T| E::from_i32(v.val() + shift);
    for r in 0..rows {
        let src = &a[(r0 + r) * lda..][..k];
        let dst = &mut buf[(r / mr) * tile + (r % mr) * GROUP..];
        // Whole groups as four-element copies, one group-stride apart.
        let quads = src.chunks_exact(GROUP);
        let tail = quads.remainder();
        for (q, d) in quads.zip(dst.chunks_mut(mr * GROUP)) {
            d[..GROUP].copy_from_slice(&[cvt(q[0]), cvt(q[1]), cvt(q[2]), cvt(q[3])]);
        }
        // The ragged last group; its padding stays zero.
        if !tail.is_empty() {
            let d = &mut dst[(k / GROUP) * mr * GROUP..][..tail.len()];
            for (o, &v) in d.iter_mut().zip(tail) {
                *o = cvt(v);
            }
        }
    }
    buf
}
