//! The BERT-style text encoder: its configuration ([`config`]), token
//! batches ([`batch`]), the forward pass ([`model`]) and checkpoint folders
//! ([`pretrained`]).

pub mod batch;
pub mod config;
pub mod model;
pub mod pretrained;

pub use batch::TokenBatch;
pub use config::{EncoderConfig, NormPlacement, Pooling};
pub use model::Encoder;
pub use pretrained::{load_pretrained, save_pretrained, Pretrained};
