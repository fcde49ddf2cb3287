//! edgecl's runtime: everything a device needs to embed text and search an
//! index, and the tensors and autodiff the trainer builds on.

pub use edgecl_kernels as kernels;

pub mod container;
pub mod hnsw;
pub mod quant;
