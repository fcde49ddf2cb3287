//! The crate's one error type.
//!
//! A flat enum, grouped by kind (shape, dtype and storage, autodiff, files),
//! so every layer of the runtime returns the same `Result`. Display is
//! lowercase and names the op, the shapes or the file involved. Parts of the
//! runtime that arrive later (tokenizer, quantization, container, indexes)
//! add their own variants in their own group rather than wrapping this enum.

use std::fmt;
use std::path::PathBuf;

use crate::kernels::ShapeError;

/// Result with the runtime's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the runtime.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    // --- shapes -----------------------------------------------------------
    /// Operand shapes an op cannot combine.
    ShapeMismatch { op: &'static str, lhs: Vec<usize>, rhs: Vec<usize> },
    /// A shape that is wrong on its own (rank, zero size, too many dims).
    BadShape { op: &'static str, shape: Vec<usize>, reason: &'static str },
    /// An element count that disagrees with a shape.
    ElementCount { op: &'static str, shape: Vec<usize>, expected: usize, found: usize },
    /// A kernel refused its arguments.
    Kernel { op: &'static str, source: ShapeError },
    /// An index (token id, target class, narrow range) outside its bound.
    IndexOutOfRange { op: &'static str, index: usize, bound: usize },
    /// A scalar argument out of its domain (dropout p, eps, learning rate).
    InvalidArgument { op: &'static str, what: String },

    // --- dtype and storage ------------------------------------------------
    /// A tensor of the wrong element type for an op.
    Dtype { op: &'static str, expected: &'static str, found: &'static str },
    /// A write to storage that is shared with another tensor or mapped
    /// read-only.
    NotWritable { op: &'static str },
    /// A view whose strides an op cannot take without a copy.
    NotContiguous { op: &'static str, shape: Vec<usize> },

    // --- autodiff ---------------------------------------------------------
    /// Backward reached an op that has no backward rule.
    BackwardNotSupported { op: &'static str },
    /// A variable that does not belong to the current tape.
    UnknownVar { index: usize, len: usize },
    /// `backward` from a non-scalar output without an output gradient.
    NotScalar { op: &'static str, shape: Vec<usize> },
    /// A parameter name that is missing or registered twice.
    Param { name: String, reason: &'static str },
    /// A NaN or infinity where a finite value is required.
    NonFinite { op: &'static str },

    // --- files ------------------------------------------------------------
    /// An I/O failure on a named file.
    Io { path: PathBuf, source: std::io::Error },
    /// A safetensors file that is malformed or holds what we cannot use.
    SafeTensors { path: PathBuf, reason: String },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::ShapeMismatch { op, lhs, rhs } => {
                write!(f, "{op}: shapes {lhs:?} and {rhs:?} do not match")
            }
            Error::BadShape { op, shape, reason } => write!(f, "{op}: shape {shape:?}: {reason}"),
            Error::ElementCount { op, shape, expected, found } => {
                write!(f, "{op}: shape {shape:?} needs {expected} elements, found {found}")
            }
            Error::Kernel { op, source } => write!(f, "{op}: kernel rejected arguments: {source}"),
            Error::IndexOutOfRange { op, index, bound } => {
                write!(f, "{op}: index {index} out of range (bound {bound})")
            }
            Error::InvalidArgument { op, what } => write!(f, "{op}: invalid argument: {what}"),
            Error::Dtype { op, expected, found } => {
                write!(f, "{op}: expected {expected} tensor, found {found}")
            }
            Error::NotWritable { op } => {
                write!(f, "{op}: storage is shared or read-only and cannot be written")
            }
            Error::NotContiguous { op, shape } => {
                write!(f, "{op}: tensor of shape {shape:?} is not contiguous")
            }
            Error::BackwardNotSupported { op } => write!(f, "backward not supported for op {op}"),
            Error::UnknownVar { index, len } => {
                write!(f, "variable {index} is not on the tape (tape holds {len} nodes)")
            }
            Error::NotScalar { op, shape } => write!(
                f,
                "{op}: backward from output of shape {shape:?} needs an explicit output gradient"
            ),
            Error::Param { name, reason } => write!(f, "parameter {name:?}: {reason}"),
            Error::NonFinite { op } => write!(f, "{op}: non-finite value"),
            Error::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Error::SafeTensors { path, reason } => {
                write!(f, "{}: bad safetensors file: {reason}", path.display())
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Kernel { source, .. } => Some(source),
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Attaches an op name to a kernel's shape error.
pub(crate) trait KernelContext<T> {
    fn op(self, op: &'static str) -> Result<T>;
}

impl<T> KernelContext<T> for std::result::Result<T, ShapeError> {
    fn op(self, op: &'static str) -> Result<T> {
        self.map_err(|source| Error::Kernel { op, source })
    }
}
