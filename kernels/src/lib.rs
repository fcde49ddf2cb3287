//! SIMD kernels for edgecl: dense f32 GEMM, int8 GEMM, the vector kernels of
//! a transformer's forward and backward pass, and the scans behind
//! similarity search.
//!
//! Every kernel family has a portable scalar reference and tiers for AVX2,
//! AVX-512 and NEON, chosen once per process by [`dispatch`]; set
//! `EDGECL_ISA=scalar|avx2|avx512|neon` to force one. Each public kernel
//! `foo` has a `foo_with(tier, ..)` twin that runs a given tier, which is how
//! the tests compare every tier against the reference.
//!
//! The crate logs nothing and allocates only where a function says so.

pub mod dispatch;
pub mod gemm;
pub mod mat;
pub mod peak;
pub mod pq;
pub mod search;
pub mod vector;

pub use dispatch::{active, Isa, Tier};
pub use mat::{MatMut, MatRef, ShapeError};
