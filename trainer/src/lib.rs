//! edgecl's trainer: contrastive training of small dual encoders for
//! retrieval, and their evaluation.

pub use edgecl_runtime as runtime;

pub mod augment;
pub mod bank;
pub mod batch;
pub mod bm25;
pub mod cross_train;
pub mod data;
pub mod embedder;
pub mod error;
pub mod eval;
pub mod gradcache;
pub mod loss;
pub mod mining;
pub mod rng;
pub mod teacher;
pub mod train;
pub mod vocab;
pub mod wordnet;
pub mod wordnet_task;
