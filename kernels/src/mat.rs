//! Strided matrix views shared by the GEMM kernels.
//!
//! A view is a slice plus `rows`, `cols`, a row stride and a column stride,
//! all in elements. Construction checks that every element lies inside the
//! slice, so kernels may index without bounds checks; a mutable view also
//! checks that no two elements share a slot. Transposition swaps the strides
//! and costs nothing, which is how `op(A)` in `C = alpha op(A) op(B) + beta C`
//! is expressed.

use std::fmt;

/// A shape or layout that a kernel cannot accept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShapeError {
    /// A view's last element lies past the end of its slice.
    OutOfBounds { what: &'static str, needed: usize, len: usize },
    /// A mutable view whose strides make two elements share a slot.
    Aliasing { what: &'static str, rows: usize, cols: usize, row_stride: usize, col_stride: usize },
    /// Operand dimensions that do not agree.
    Mismatch { what: &'static str, expected: usize, found: usize },
    /// A size whose element count overflows `usize`.
    Overflow { what: &'static str },
}

impl fmt::Display for ShapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShapeError::OutOfBounds { what, needed, len } => {
                write!(f, "{what}: view needs {needed} elements but the slice holds {len}")
            }
            ShapeError::Aliasing { what, rows, cols, row_stride, col_stride } => write!(
                f,
                "{what}: a {rows}x{cols} output with strides ({row_stride}, {col_stride}) \
                 writes some elements twice"
            ),
            ShapeError::Mismatch { what, expected, found } => {
                write!(f, "{what}: expected {expected}, found {found}")
            }
            ShapeError::Overflow { what } => write!(f, "{what}: size overflows usize"),
        }
    }
}

impl std::error::Error for ShapeError {}

/// Number of slice elements a `rows x cols` view with these strides spans.
fn span(
    what: &'static str,
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
) -> Result<usize, ShapeError> {
    if rows == 0 || cols == 0 {
        return Ok(0);
    }
    let last = (rows - 1)
        .checked_mul(rs)
        .and_then(|r| (cols - 1).checked_mul(cs).and_then(|c| r.checked_add(c)))
        .ok_or(ShapeError::Overflow { what })?;
    Ok(last + 1)
}

/// An immutable strided view of an f32 matrix.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a> MatRef<'a> {
    /// A view of `rows x cols` elements where element `(i, j)` is
    /// `data[i * row_stride + j * col_stride]`.
    pub fn new(
        data: &'a [f32],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Result<Self, ShapeError> {
        let needed = span("matrix view", rows, cols, row_stride, col_stride)?;
        if needed > data.len() {
            return Err(ShapeError::OutOfBounds { what: "matrix view", needed, len: data.len() });
        }
        Ok(MatRef { data, rows, cols, rs: row_stride, cs: col_stride })
    }

    /// A dense row-major view: row stride `cols`, column stride 1.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Result<Self, ShapeError> {
        MatRef::new(data, rows, cols, cols, 1)
    }

    /// The transpose, sharing the same data.
    pub fn t(self) -> Self {
        MatRef { data: self.data, rows: self.cols, cols: self.rows, rs: self.cs, cs: self.rs }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }
    pub fn cols(&self) -> usize {
        self.cols
    }
    pub fn row_stride(&self) -> usize {
        self.rs
    }
    pub fn col_stride(&self) -> usize {
        self.cs
    }
    /// The underlying slice, starting at element `(0, 0)`.
    pub fn data(&self) -> &'a [f32] {
        self.data
    }

    /// Element `(i, j)`.
    ///
    /// # Panics
    /// If `i >= rows` or `j >= cols`.
    #[inline]
    pub fn at(&self, i: usize, j: usize) -> f32 {
        assert!(
            i < self.rows && j < self.cols,
            "index ({i}, {j}) out of a {}x{} view",
            self.rows,
            self.cols
        );
        self.data[i * self.rs + j * self.cs]
    }
}

/// A mutable strided view of an f32 matrix whose elements are distinct slots.
#[derive(Debug)]
pub struct MatMut<'a> {
    data: &'a mut [f32],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a> MatMut<'a> {
    /// A mutable view; fails when the view leaves the slice or when the
    /// strides would map two elements to one slot.
    pub fn new(
        data: &'a mut [f32],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Result<Self, ShapeError> {
        let needed = span("output view", rows, cols, row_stride, col_stride)?;
        if needed > data.len() {
            return Err(ShapeError::OutOfBounds { what: "output view", needed, len: data.len() });
        }
        // Distinct slots: one stride steps over the whole extent of the other.
        // An empty view has no slots; a single row or column needs a non-zero
        // stride along it; otherwise both strides must be non-zero.
        let distinct = rows == 0
            || cols == 0
            || (rows == 1 || row_stride >= 1)
                && (cols == 1 || col_stride >= 1)
                && (rows == 1
                    || cols == 1
                    || row_stride > (cols - 1) * col_stride
                    || col_stride > (rows - 1) * row_stride);
        if !distinct {
            return Err(ShapeError::Aliasing {
                what: "output view",
                rows,
                cols,
                row_stride,
                col_stride,
            });
        }
        Ok(MatMut { data, rows, cols, rs: row_stride, cs: col_stride })
    }

    /// A dense row-major mutable view.
    pub fn row_major(data: &'a mut [f32], rows: usize, cols: usize) -> Result<Self, ShapeError> {
        MatMut::new(data, rows, cols, cols, 1)
    }

    /// The transpose, sharing the same data.
    pub fn t(self) -> Self {
        MatMut { data: self.data, rows: self.cols, cols: self.rows, rs: self.cs, cs: self.rs }
    }

    /// A shorter-lived mutable view of the same elements.
    pub fn rb_mut(&mut self) -> MatMut<'_> {
        MatMut { data: self.data, rows: self.rows, cols: self.cols, rs: self.rs, cs: self.cs }
    }

    /// An immutable view of the same elements.
    pub fn as_ref(&self) -> MatRef<'_> {
        MatRef { data: self.data, rows: self.rows, cols: self.cols, rs: self.rs, cs: self.cs }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }
    pub fn cols(&self) -> usize {
        self.cols
    }
    pub fn row_stride(&self) -> usize {
        self.rs
    }
    pub fn col_stride(&self) -> usize {
        self.cs
    }
    /// The underlying slice, starting at element `(0, 0)`.
    pub fn data_mut(&mut self) -> &mut [f32] {
        self.data
    }

    /// A mutable reference to element `(i, j)`.
    ///
    /// # Panics
    /// If `i >= rows` or `j >= cols`.
    #[inline]
    pub fn at_mut(&mut self, i: usize, j: usize) -> &mut f32 {
        assert!(
            i < self.rows && j < self.cols,
            "index ({i}, {j}) out of a {}x{} view",
            self.rows,
            self.cols
        );
        &mut self.data[i * self.rs + j * self.cs]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_and_aliasing() {
        let v = vec![0.0f32; 12];
        assert!(MatRef::new(&v, 3, 4, 4, 1).is_ok());
        assert!(MatRef::new(&v, 4, 3, 1, 4).is_ok());
        assert!(matches!(MatRef::new(&v, 3, 5, 4, 1), Err(ShapeError::OutOfBounds { .. })));
        assert!(MatRef::new(&v, 0, 1000, 7, 1).is_ok());
        // Broadcast rows are fine to read...
        assert!(MatRef::new(&v, 5, 4, 0, 1).is_ok());
        let mut w = vec![0.0f32; 12];
        // ...but not to write.
        assert!(matches!(MatMut::new(&mut w, 5, 4, 0, 1), Err(ShapeError::Aliasing { .. })));
        assert!(matches!(MatMut::new(&mut w, 3, 4, 2, 1), Err(ShapeError::Aliasing { .. })));
        assert!(MatMut::new(&mut w, 3, 4, 4, 1).is_ok());
        assert!(MatMut::new(&mut w, 4, 3, 1, 4).is_ok());
        assert!(MatMut::new(&mut w, 1, 1, 0, 0).is_ok());
        // Empty views with zero strides are valid and hold nothing.
        assert!(MatMut::new(&mut w, 0, 0, 0, 0).is_ok());
        assert!(MatMut::new(&mut w, 0, 5, 0, 0).is_ok());
        assert!(MatMut::new(&mut w, 5, 0, 0, 0).is_ok());
        // A single column needs a row stride, a single row a column stride.
        assert!(matches!(MatMut::new(&mut w, 3, 1, 0, 1), Err(ShapeError::Aliasing { .. })));
        assert!(matches!(MatMut::new(&mut w, 1, 3, 1, 0), Err(ShapeError::Aliasing { .. })));
        assert!(MatMut::new(&mut w, 3, 1, 1, 0).is_ok());
        assert!(matches!(
            MatRef::new(&v, usize::MAX, 2, usize::MAX, 1),
            Err(ShapeError::Overflow { .. })
        ));
    }

    #[test]
    fn transpose_swaps() {
        let v: Vec<f32> = (0..6).map(|x| x as f32).collect();
        let a = MatRef::row_major(&v, 2, 3).unwrap();
        assert_eq!(a.at(1, 2), 5.0);
        assert_eq!(a.t().at(2, 1), 5.0);
        assert_eq!(a.t().rows(), 3);
    }
}
