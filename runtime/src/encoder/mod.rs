//! The BERT-style text encoder: its configuration ([`config`]), token
//! batches ([`batch`]), the forward pass ([`model`]), checkpoint folders
//! ([`pretrained`]) and the cross-encoder with its scoring head ([`cross`]).

pub mod batch;
pub mod config;
pub mod cross;
pub mod model;
pub mod pretrained;

pub use batch::TokenBatch;
pub use config::{EncoderConfig, NormPlacement, Pooling};
pub use cross::{load_pretrained_cross, save_pretrained_cross, CrossEncoder, PretrainedCross};
pub use model::Encoder;
pub use pretrained::{load_pretrained, save_pretrained, Pretrained};
