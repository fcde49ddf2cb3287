//! The BERT-style text encoder: its configuration, its parameters and its
//! forward pass.

pub mod config;

pub use config::{EncoderConfig, NormPlacement, Pooling};
