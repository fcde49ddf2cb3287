//! Tensors: typed storage plus a strided layout.
//!
//! Storage is reference counted, so views (reshape of a contiguous tensor,
//! transpose, narrow) cost a counter increment and copy no elements. f32 is
//! the compute type; i8 and u8 hold quantized weights and token masks; a
//! tensor may also borrow a read-only memory map (weights opened for
//! inference). Shapes live in a fixed array of [`MAX_DIMS`] entries so that
//! building a layout never allocates, which the training loop relies on.
//!
//! Writes go through [`Tensor::as_f32_mut`], which succeeds only when the
//! tensor is the sole owner of owned storage: mutation never leaks into a
//! view. There is no f16/bf16 storage yet; the kernels are f32 only.

use std::fmt;
use std::sync::Arc;

use memmap2::Mmap;

use crate::error::{Error, Result};

/// Most dimensions a tensor may have.
pub const MAX_DIMS: usize = 6;

/// A shape of up to [`MAX_DIMS`] dimensions, stored inline.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shape {
    dims: [usize; MAX_DIMS],
    rank: usize,
}

impl Shape {
    /// A shape from its dimensions; more than [`MAX_DIMS`] is an error.
    pub fn new(dims: &[usize]) -> Result<Shape> {
        if dims.len() > MAX_DIMS {
            return Err(Error::BadShape {
                op: "shape",
                shape: dims.to_vec(),
                reason: "more dimensions than supported",
            });
        }
        let mut d = [0; MAX_DIMS];
        d[..dims.len()].copy_from_slice(dims);
        Ok(Shape { dims: d, rank: dims.len() })
    }

    /// The shape of a scalar (rank 0, one element).
    pub fn scalar() -> Shape {
        Shape { dims: [0; MAX_DIMS], rank: 0 }
    }

    pub fn dims(&self) -> &[usize] {
        &self.dims[..self.rank]
    }
    pub fn rank(&self) -> usize {
        self.rank
    }
    /// Product of the dimensions (1 for a scalar).
    pub fn numel(&self) -> usize {
        self.dims().iter().product()
    }
    /// The last dimension (1 for a scalar).
    pub fn last(&self) -> usize {
        self.dims().last().copied().unwrap_or(1)
    }
    /// Product of all dimensions but the last: the number of rows when the
    /// tensor is read as a matrix over its last axis.
    pub fn rows(&self) -> usize {
        if self.rank == 0 {
            1
        } else {
            self.dims[..self.rank - 1].iter().product()
        }
    }

    /// Row-major strides of this shape.
    pub fn contiguous_strides(&self) -> [usize; MAX_DIMS] {
        let mut s = [0; MAX_DIMS];
        let mut acc = 1;
        for i in (0..self.rank).rev() {
            s[i] = acc;
            acc *= self.dims[i];
        }
        s
    }
}

impl fmt::Debug for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.dims())
    }
}

/// Element types a tensor can hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    F32,
    I8,
    U8,
}

impl DType {
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::I8 => "i8",
            DType::U8 => "u8",
        }
    }
    pub fn size(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::I8 | DType::U8 => 1,
        }
    }
}

/// Where a tensor's elements live.
#[derive(Clone)]
pub(crate) enum Storage {
    F32(Arc<Vec<f32>>),
    I8(Arc<Vec<i8>>),
    U8(Arc<Vec<u8>>),
    /// `len` elements of `dtype` at byte `start` of a read-only map; for f32
    /// the start is checked to be 4-byte aligned when the tensor is made.
    Mapped {
        map: Arc<Mmap>,
        start: usize,
        len: usize,
        dtype: DType,
    },
}

impl Storage {
    fn dtype(&self) -> DType {
        match self {
            Storage::F32(_) => DType::F32,
            Storage::I8(_) => DType::I8,
            Storage::U8(_) => DType::U8,
            Storage::Mapped { dtype, .. } => *dtype,
        }
    }
    fn len(&self) -> usize {
        match self {
            Storage::F32(v) => v.len(),
            Storage::I8(v) => v.len(),
            Storage::U8(v) => v.len(),
            Storage::Mapped { len, .. } => *len,
        }
    }
}

/// A strided n-dimensional array over shared storage.
#[derive(Clone)]
pub struct Tensor {
    storage: Storage,
    shape: Shape,
    strides: [usize; MAX_DIMS],
    offset: usize,
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tensor<{}>{:?}", self.dtype().name(), self.shape)
    }
}

impl Tensor {
    // --- construction -----------------------------------------------------

    fn with_storage(storage: Storage, dims: &[usize], op: &'static str) -> Result<Tensor> {
        let shape = Shape::new(dims)?;
        let n = shape.numel();
        if n != storage.len() {
            return Err(Error::ElementCount {
                op,
                shape: dims.to_vec(),
                expected: n,
                found: storage.len(),
            });
        }
        Ok(Tensor { storage, strides: shape.contiguous_strides(), shape, offset: 0 })
    }

    /// An f32 tensor taking ownership of `data` (row-major).
    pub fn from_vec(dims: &[usize], data: Vec<f32>) -> Result<Tensor> {
        Tensor::with_storage(Storage::F32(Arc::new(data)), dims, "tensor from f32")
    }
    /// An f32 tensor over a shared buffer (used by the buffer pool).
    pub(crate) fn from_arc(shape: Shape, data: Arc<Vec<f32>>) -> Tensor {
        debug_assert_eq!(shape.numel(), data.len());
        Tensor {
            storage: Storage::F32(data),
            strides: shape.contiguous_strides(),
            shape,
            offset: 0,
        }
    }
    /// The shared f32 buffer behind a tensor, if it is owned f32 storage.
    pub(crate) fn into_arc(self) -> Option<Arc<Vec<f32>>> {
        match self.storage {
            Storage::F32(v) => Some(v),
            _ => None,
        }
    }
    /// An i8 tensor (quantized weights).
    pub fn from_i8(dims: &[usize], data: Vec<i8>) -> Result<Tensor> {
        Tensor::with_storage(Storage::I8(Arc::new(data)), dims, "tensor from i8")
    }
    /// A u8 tensor (quantized weights, masks).
    pub fn from_u8(dims: &[usize], data: Vec<u8>) -> Result<Tensor> {
        Tensor::with_storage(Storage::U8(Arc::new(data)), dims, "tensor from u8")
    }
    /// Zeros.
    pub fn zeros(dims: &[usize]) -> Result<Tensor> {
        let n = Shape::new(dims)?.numel();
        Tensor::from_vec(dims, vec![0.0; n])
    }
    /// A scalar.
    pub fn scalar(x: f32) -> Tensor {
        Tensor::from_arc(Shape::scalar(), Arc::new(vec![x]))
    }

    /// A read-only tensor over bytes `start..start + numel * size` of a map.
    pub(crate) fn from_mapped(
        map: Arc<Mmap>,
        start: usize,
        dims: &[usize],
        dtype: DType,
    ) -> Result<Tensor> {
        let shape = Shape::new(dims)?;
        let len = shape.numel();
        let end = len.checked_mul(dtype.size()).and_then(|b| b.checked_add(start));
        if end.is_none_or(|e| e > map.len()) {
            return Err(Error::BadShape {
                op: "mapped tensor",
                shape: dims.to_vec(),
                reason: "extends past the end of the mapped file",
            });
        }
        if dtype == DType::F32 && !(map.as_ptr() as usize + start).is_multiple_of(4) {
            return Err(Error::BadShape {
                op: "mapped tensor",
                shape: dims.to_vec(),
                reason: "f32 data is not 4-byte aligned in the file",
            });
        }
        Tensor::with_storage(Storage::Mapped { map, start, len, dtype }, dims, "mapped")
    }

    // --- inspection -------------------------------------------------------

    pub fn shape(&self) -> Shape {
        self.shape
    }
    pub fn dims(&self) -> &[usize] {
        self.shape.dims()
    }
    pub fn rank(&self) -> usize {
        self.shape.rank()
    }
    pub fn numel(&self) -> usize {
        self.shape.numel()
    }
    pub fn dtype(&self) -> DType {
        self.storage.dtype()
    }
    pub fn strides(&self) -> &[usize] {
        &self.strides[..self.shape.rank()]
    }
    /// Whether the elements are dense and row-major from the offset on.
    pub fn is_contiguous(&self) -> bool {
        let want = self.shape.contiguous_strides();
        (0..self.rank()).all(|i| self.shape.dims[i] <= 1 || self.strides[i] == want[i])
    }
    /// Whether the storage is a read-only memory map.
    pub fn is_mapped(&self) -> bool {
        matches!(self.storage, Storage::Mapped { .. })
    }
    /// Whether two tensors share storage (a view and its source).
    pub fn shares_storage(&self, other: &Tensor) -> bool {
        match (&self.storage, &other.storage) {
            (Storage::F32(a), Storage::F32(b)) => Arc::ptr_eq(a, b),
            (Storage::I8(a), Storage::I8(b)) => Arc::ptr_eq(a, b),
            (Storage::U8(a), Storage::U8(b)) => Arc::ptr_eq(a, b),
            (Storage::Mapped { map: a, .. }, Storage::Mapped { map: b, .. }) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    fn whole_f32(&self) -> Option<&[f32]> {
        match &self.storage {
            Storage::F32(v) => Some(v),
            Storage::Mapped { map, start, len, dtype: DType::F32 } => {
                // Alignment and length were checked in `from_mapped`.
                bytemuck::try_cast_slice(&map[*start..*start + len * 4]).ok()
            }
            _ => None,
        }
    }

    fn whole_bytes<T: bytemuck::Pod>(&self, dtype: DType) -> Option<&[T]> {
        match &self.storage {
            Storage::I8(v) if dtype == DType::I8 => bytemuck::try_cast_slice(v).ok(),
            Storage::U8(v) if dtype == DType::U8 => bytemuck::try_cast_slice(v).ok(),
            Storage::Mapped { map, start, len, dtype: d } if *d == dtype => {
                bytemuck::try_cast_slice(&map[*start..*start + len]).ok()
            }
            _ => None,
        }
    }

    /// The elements of a contiguous f32 tensor.
    pub fn as_f32(&self) -> Result<&[f32]> {
        let all = self.whole_f32().ok_or(Error::Dtype {
            op: "as_f32",
            expected: "f32",
            found: self.dtype().name(),
        })?;
        if !self.is_contiguous() {
            return Err(Error::NotContiguous { op: "as_f32", shape: self.dims().to_vec() });
        }
        Ok(&all[self.offset..self.offset + self.numel()])
    }

    /// The elements of a contiguous i8 tensor.
    pub fn as_i8(&self) -> Result<&[i8]> {
        let all = self.whole_bytes::<i8>(DType::I8).ok_or(Error::Dtype {
            op: "as_i8",
            expected: "i8",
            found: self.dtype().name(),
        })?;
        if !self.is_contiguous() {
            return Err(Error::NotContiguous { op: "as_i8", shape: self.dims().to_vec() });
        }
        Ok(&all[self.offset..self.offset + self.numel()])
    }

    /// The elements of a contiguous u8 tensor.
    pub fn as_u8(&self) -> Result<&[u8]> {
        let all = self.whole_bytes::<u8>(DType::U8).ok_or(Error::Dtype {
            op: "as_u8",
            expected: "u8",
            found: self.dtype().name(),
        })?;
        if !self.is_contiguous() {
            return Err(Error::NotContiguous { op: "as_u8", shape: self.dims().to_vec() });
        }
        Ok(&all[self.offset..self.offset + self.numel()])
    }

    /// Mutable elements of a contiguous f32 tensor that solely owns its
    /// storage; a shared, mapped or non-contiguous tensor is an error.
    pub fn as_f32_mut(&mut self) -> Result<&mut [f32]> {
        if !self.is_contiguous() {
            return Err(Error::NotContiguous { op: "as_f32_mut", shape: self.dims().to_vec() });
        }
        let (off, n) = (self.offset, self.numel());
        match &mut self.storage {
            Storage::F32(v) => match Arc::get_mut(v) {
                Some(v) => Ok(&mut v[off..off + n]),
                None => Err(Error::NotWritable { op: "as_f32_mut" }),
            },
            Storage::Mapped { .. } => Err(Error::NotWritable { op: "as_f32_mut" }),
            s => Err(Error::Dtype { op: "as_f32_mut", expected: "f32", found: s.dtype().name() }),
        }
    }

    /// Element at a multi-index (any layout, f32 only).
    pub fn get(&self, index: &[usize]) -> Result<f32> {
        let all = self.whole_f32().ok_or(Error::Dtype {
            op: "get",
            expected: "f32",
            found: self.dtype().name(),
        })?;
        if index.len() != self.rank() {
            return Err(Error::ShapeMismatch {
                op: "get",
                lhs: self.dims().to_vec(),
                rhs: index.to_vec(),
            });
        }
        let mut at = self.offset;
        for (d, &i) in index.iter().enumerate() {
            if i >= self.shape.dims[d] {
                return Err(Error::IndexOutOfRange {
                    op: "get",
                    index: i,
                    bound: self.shape.dims[d],
                });
            }
            at += i * self.strides[d];
        }
        Ok(all[at])
    }

    /// The elements in row-major order, copied (any layout, f32 only).
    pub fn to_vec_f32(&self) -> Result<Vec<f32>> {
        let mut out = Vec::with_capacity(self.numel());
        self.for_each_f32(|x| out.push(x))?;
        Ok(out)
    }

    /// Visits every element in row-major order.
    fn for_each_f32(&self, mut f: impl FnMut(f32)) -> Result<()> {
        if let Ok(s) = self.as_f32() {
            s.iter().for_each(|&x| f(x));
            return Ok(());
        }
        let all = self.whole_f32().ok_or(Error::Dtype {
            op: "to_vec",
            expected: "f32",
            found: self.dtype().name(),
        })?;
        let n = self.numel();
        let rank = self.rank();
        let mut idx = [0usize; MAX_DIMS];
        // Odometer over the multi-index, tracking the storage position.
        let mut at = self.offset;
        for _ in 0..n {
            f(all[at]);
            for d in (0..rank).rev() {
                idx[d] += 1;
                at += self.strides[d];
                if idx[d] < self.shape.dims[d] {
                    break;
                }
                at -= self.strides[d] * idx[d];
                idx[d] = 0;
            }
        }
        Ok(())
    }

    // --- views ------------------------------------------------------------

    /// The same elements under a new shape. Free for a contiguous tensor;
    /// other layouts are copied first.
    pub fn reshape(&self, dims: &[usize]) -> Result<Tensor> {
        let shape = Shape::new(dims)?;
        if shape.numel() != self.numel() {
            return Err(Error::ShapeMismatch {
                op: "reshape",
                lhs: self.dims().to_vec(),
                rhs: dims.to_vec(),
            });
        }
        let base = if self.is_contiguous() { self.clone() } else { self.contiguous()? };
        Ok(Tensor {
            storage: base.storage,
            shape,
            strides: shape.contiguous_strides(),
            offset: base.offset,
        })
    }

    /// Swaps two dimensions; no copy.
    pub fn transpose(&self, d0: usize, d1: usize) -> Result<Tensor> {
        let r = self.rank();
        if d0 >= r || d1 >= r {
            return Err(Error::IndexOutOfRange { op: "transpose", index: d0.max(d1), bound: r });
        }
        let mut t = self.clone();
        t.shape.dims.swap(d0, d1);
        t.strides.swap(d0, d1);
        Ok(t)
    }

    /// Elements `start..start + len` along `dim`; no copy.
    pub fn narrow(&self, dim: usize, start: usize, len: usize) -> Result<Tensor> {
        if dim >= self.rank() {
            return Err(Error::IndexOutOfRange { op: "narrow", index: dim, bound: self.rank() });
        }
        let size = self.shape.dims[dim];
        if start.checked_add(len).is_none_or(|e| e > size) {
            return Err(Error::IndexOutOfRange { op: "narrow", index: start + len, bound: size });
        }
        let mut t = self.clone();
        t.shape.dims[dim] = len;
        t.offset += start * self.strides[dim];
        Ok(t)
    }

    /// This tensor if it solely owns contiguous f32 storage, else a private
    /// contiguous copy; mapped storage is kept as is (read-only by design).
    pub fn unshared(self) -> Result<Tensor> {
        let sole = match &self.storage {
            Storage::F32(v) => Arc::strong_count(v) == 1 && Arc::weak_count(v) == 0,
            _ => true,
        };
        if sole && self.is_contiguous() && self.offset == 0 && self.numel() == self.storage.len() {
            return Ok(self);
        }
        if self.is_mapped() && self.is_contiguous() {
            return Ok(self);
        }
        Tensor::from_vec(self.dims(), self.to_vec_f32()?)
    }

    /// A contiguous f32 copy, or a cheap clone when already contiguous.
    pub fn contiguous(&self) -> Result<Tensor> {
        if self.is_contiguous() {
            return Ok(self.clone());
        }
        let v = self.to_vec_f32()?;
        Tensor::from_vec(self.dims(), v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_share_storage() {
        let t = Tensor::from_vec(&[2, 3], (0..6).map(|x| x as f32).collect()).unwrap();
        let tt = t.transpose(0, 1).unwrap();
        assert!(tt.shares_storage(&t));
        assert!(!tt.is_contiguous());
        assert_eq!(tt.to_vec_f32().unwrap(), vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
        assert_eq!(tt.get(&[2, 1]).unwrap(), 5.0);
        let n = t.narrow(1, 1, 2).unwrap();
        assert!(n.shares_storage(&t));
        assert_eq!(n.to_vec_f32().unwrap(), vec![1.0, 2.0, 4.0, 5.0]);
        let r = t.reshape(&[3, 2]).unwrap();
        assert!(r.shares_storage(&t));
        // Reshaping a transposed view must copy to keep row-major meaning.
        let rt = tt.reshape(&[6]).unwrap();
        assert!(!rt.shares_storage(&t));
        assert_eq!(rt.as_f32().unwrap(), &[0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
        // A row narrow stays contiguous.
        let row = t.narrow(0, 1, 1).unwrap();
        assert_eq!(row.as_f32().unwrap(), &[3.0, 4.0, 5.0]);
    }

    #[test]
    fn writes_need_sole_ownership() {
        let mut t = Tensor::zeros(&[4]).unwrap();
        t.as_f32_mut().unwrap()[0] = 1.0;
        let view = t.clone();
        assert!(matches!(t.as_f32_mut(), Err(Error::NotWritable { .. })));
        drop(view);
        assert!(t.as_f32_mut().is_ok());
    }

    #[test]
    fn typed_errors() {
        assert!(matches!(Tensor::from_vec(&[2, 2], vec![0.0; 3]), Err(Error::ElementCount { .. })));
        assert!(matches!(Shape::new(&[1; 7]), Err(Error::BadShape { .. })));
        let q = Tensor::from_i8(&[2], vec![-1, 2]).unwrap();
        assert_eq!(q.as_i8().unwrap(), &[-1, 2]);
        assert!(matches!(q.as_f32(), Err(Error::Dtype { .. })));
        let u = Tensor::from_u8(&[1], vec![7]).unwrap();
        assert_eq!(u.as_u8().unwrap(), &[7]);
        let t = Tensor::zeros(&[2, 3]).unwrap();
        assert!(matches!(t.narrow(1, 2, 2), Err(Error::IndexOutOfRange { .. })));
        assert!(matches!(t.reshape(&[5]), Err(Error::ShapeMismatch { .. })));
    }
}
