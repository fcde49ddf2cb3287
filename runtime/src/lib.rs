//! edgecl's runtime: everything a device needs to embed text and search an
//! index, and the tensors and autodiff the trainer builds on.
//!
//! The training core: [`Tensor`] (strided views over f32, i8, u8 or mapped
//! storage), [`Graph`] (parameters, a tape and a buffer pool; ops are its
//! methods, see [`ops`]), [`optim`] (AdamW, SGD, schedules, clipping,
//! accumulation), [`weights`] (safetensors files), [`Runtime`] (the thread
//! pool every op runs on), [`init`] (seeded initialisation) and
//! [`gradcheck`] (finite-difference checks). Errors are one [`Error`].

pub use edgecl_kernels as kernels;

pub mod autodiff;
pub mod container;
pub mod context;
pub mod encoder;
pub mod error;
pub mod gradcheck;
pub mod hnsw;
pub mod index;
pub mod infer;
pub mod init;
pub mod ops;
pub mod optim;
pub mod params;
pub mod pool;
pub mod quant;
pub mod tensor;
pub mod weights;

pub use autodiff::{Graph, Var};
pub use context::Runtime;
pub use error::{Error, Result};
pub use params::{Param, ParamId, ParamSet};
pub use tensor::{DType, Shape, Tensor};
pub mod tokenizer;

pub use encoder::EncoderConfig;

/// The README's Rust examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
