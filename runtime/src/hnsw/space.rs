//! Distances the graph can be built and searched over.
//!
//! A [`Space`] owns (or borrows, e.g. from a mapped container) n stored
//! items and answers two questions: the distance between two items (build)
//! and from a query to an item (search). Smaller is closer. Inner-product
//! spaces return the negated product so that one ordering serves all.

use super::HnswError;

/// Stored items plus a distance over them.
pub trait Space: Sync {
    /// What a query looks like (`[f32]`, `[i8]`, `[u64]`, ...).
    type Query: ?Sized;
    /// Name written into the graph, checked again at search.
    const NAME: &'static str;
    /// Number of items.
    fn len(&self) -> usize;
    /// Whether there are no items.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Checks a query's shape (and values) before a search.
    fn check_query(&self, q: &Self::Query) -> Result<(), HnswError>;
    /// Distance from query `q` to item `id` (`id < len()`).
    fn query_distance(&self, q: &Self::Query, id: u32) -> f32;
    /// Distance between items `a` and `b` (both `< len()`).
    fn item_distance(&self, a: u32, b: u32) -> f32;
}

fn rows(what: &'static str, len: usize, dim: usize) -> Result<usize, HnswError> {
    if dim == 0 {
        return Err(HnswError::BadConfig { field: "dim", reason: "must be positive".into() });
    }
    if !len.is_multiple_of(dim) {
        return Err(HnswError::Shape { what, expected: len.div_ceil(dim) * dim, found: len });
    }
    let n = len / dim;
    if n > u32::MAX as usize {
        return Err(HnswError::BadConfig {
            field: "n",
            reason: format!("{n} items exceed u32 ids"),
        });
    }
    Ok(n)
}

fn finite(what: &'static str, x: &[f32]) -> Result<(), HnswError> {
    match x.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(HnswError::NonFinite { what, index }),
        None => Ok(()),
    }
}

fn same_dim(dim: usize, found: usize) -> Result<(), HnswError> {
    if found != dim {
        return Err(HnswError::Shape { what: "query", expected: dim, found });
    }
    Ok(())
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    crate::kernels::vector::dot(a, b).expect("stored rows and checked queries share the dimension")
}

// One-row calls into the kernels crate's scans, so graph distances run on
// the same SIMD tier as flat search. Every caller has checked the lengths
// (rows are `dim` long, queries pass `check_query`, and int8 dimensions
// are capped at construction), so the kernels cannot refuse them.
fn l2(a: &[f32], b: &[f32]) -> f32 {
    let mut out = [0f32];
    crate::kernels::search::l2sq_f32(a, b, &mut out).expect("lengths checked by the space");
    out[0]
}

// Exact in i32 (the kernel's dimension cap keeps the sum in range); the
// f32 result is exact while |sum| < 2^24, i.e. for dim up to ~1000.
fn dot_i8(a: &[i8], b: &[i8]) -> f32 {
    let mut out = [0i32];
    crate::kernels::search::dot_i8(a, b, &mut out).expect("lengths checked by the space");
    out[0] as f32
}

fn hamming(a: &[u64], b: &[u64]) -> f32 {
    let mut out = [0u32];
    crate::kernels::search::hamming(a, b, &mut out).expect("lengths checked by the space");
    out[0] as f32
}

macro_rules! row {
    ($data:expr, $dim:expr, $id:expr) => {{
        let s = $id as usize * $dim;
        &$data[s..s + $dim]
    }};
}

/// f32 vectors under negated inner product (cosine for unit vectors).
#[derive(Clone, Copy, Debug)]
pub struct F32Dot<'a> {
    data: &'a [f32],
    dim: usize,
    n: usize,
}

impl<'a> F32Dot<'a> {
    /// Rows of `dim` values; every value must be finite.
    pub fn new(data: &'a [f32], dim: usize) -> Result<Self, HnswError> {
        let n = rows("vectors", data.len(), dim)?;
        finite("vectors", data)?;
        Ok(F32Dot { data, dim, n })
    }

    /// Like [`F32Dot::new`] without the pass over every value: for rows
    /// checked when they were written (an index checks its vectors at
    /// build), where a per-query pass would cost as much as an exact scan.
    /// A non-finite value left in the rows gives that row a NaN or
    /// infinite distance and so a wrong rank, never a panic.
    pub fn prechecked(data: &'a [f32], dim: usize) -> Result<Self, HnswError> {
        let n = rows("vectors", data.len(), dim)?;
        Ok(F32Dot { data, dim, n })
    }
}

impl Space for F32Dot<'_> {
    type Query = [f32];
    const NAME: &'static str = "f32_dot";
    fn len(&self) -> usize {
        self.n
    }
    fn check_query(&self, q: &[f32]) -> Result<(), HnswError> {
        same_dim(self.dim, q.len())?;
        finite("query", q)
    }
    fn query_distance(&self, q: &[f32], id: u32) -> f32 {
        -dot(q, row!(self.data, self.dim, id))
    }
    fn item_distance(&self, a: u32, b: u32) -> f32 {
        -dot(row!(self.data, self.dim, a), row!(self.data, self.dim, b))
    }
}

/// f32 vectors under squared Euclidean distance.
#[derive(Clone, Copy, Debug)]
pub struct F32L2<'a> {
    data: &'a [f32],
    dim: usize,
    n: usize,
}

impl<'a> F32L2<'a> {
    /// Rows of `dim` values; every value must be finite.
    pub fn new(data: &'a [f32], dim: usize) -> Result<Self, HnswError> {
        let n = rows("vectors", data.len(), dim)?;
        finite("vectors", data)?;
        Ok(F32L2 { data, dim, n })
    }
}

impl Space for F32L2<'_> {
    type Query = [f32];
    const NAME: &'static str = "f32_l2";
    fn len(&self) -> usize {
        self.n
    }
    fn check_query(&self, q: &[f32]) -> Result<(), HnswError> {
        same_dim(self.dim, q.len())?;
        finite("query", q)
    }
    fn query_distance(&self, q: &[f32], id: u32) -> f32 {
        l2(q, row!(self.data, self.dim, id))
    }
    fn item_distance(&self, a: u32, b: u32) -> f32 {
        l2(row!(self.data, self.dim, a), row!(self.data, self.dim, b))
    }
}

/// int8 codes under negated integer dot product (meaningful for symmetric
/// quantization with one global scale, where it is the float dot product
/// divided by scale squared).
#[derive(Clone, Copy, Debug)]
pub struct I8Dot<'a> {
    data: &'a [i8],
    dim: usize,
    n: usize,
}

impl<'a> I8Dot<'a> {
    /// Rows of `dim` codes.
    pub fn new(data: &'a [i8], dim: usize) -> Result<Self, HnswError> {
        let n = rows("codes", data.len(), dim)?;
        let max = crate::kernels::search::MAX_I8_DIM;
        if dim > max {
            return Err(HnswError::BadConfig {
                field: "dim",
                reason: format!("{dim} exceeds the int8 kernels' limit of {max}"),
            });
        }
        Ok(I8Dot { data, dim, n })
    }
}

impl Space for I8Dot<'_> {
    type Query = [i8];
    const NAME: &'static str = "i8_dot";
    fn len(&self) -> usize {
        self.n
    }
    fn check_query(&self, q: &[i8]) -> Result<(), HnswError> {
        same_dim(self.dim, q.len())
    }
    fn query_distance(&self, q: &[i8], id: u32) -> f32 {
        -dot_i8(q, row!(self.data, self.dim, id))
    }
    fn item_distance(&self, a: u32, b: u32) -> f32 {
        -dot_i8(row!(self.data, self.dim, a), row!(self.data, self.dim, b))
    }
}

/// Binary codes (u64 words per item) under Hamming distance.
#[derive(Clone, Copy, Debug)]
pub struct Hamming<'a> {
    data: &'a [u64],
    words: usize,
    n: usize,
}

impl<'a> Hamming<'a> {
    /// Rows of `words` u64 words.
    pub fn new(data: &'a [u64], words: usize) -> Result<Self, HnswError> {
        let n = rows("codes", data.len(), words)?;
        Ok(Hamming { data, words, n })
    }
}

impl Space for Hamming<'_> {
    type Query = [u64];
    const NAME: &'static str = "hamming";
    fn len(&self) -> usize {
        self.n
    }
    fn check_query(&self, q: &[u64]) -> Result<(), HnswError> {
        same_dim(self.words, q.len())
    }
    fn query_distance(&self, q: &[u64], id: u32) -> f32 {
        hamming(q, row!(self.data, self.words, id))
    }
    fn item_distance(&self, a: u32, b: u32) -> f32 {
        hamming(row!(self.data, self.words, a), row!(self.data, self.words, b))
    }
}
