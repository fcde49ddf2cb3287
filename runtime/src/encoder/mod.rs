//! The BERT-style text encoder: its configuration ([`config`]), token
//! batches ([`batch`]), the forward pass ([`model`]) and its length-bucketed
//! form ([`bucket`]), checkpoint folders ([`pretrained`]) and the
//! cross-encoder with its scoring head ([`cross`]).

pub mod batch;
pub mod bucket;
pub mod config;
pub mod cross;
pub mod model;
pub mod pretrained;

pub use batch::TokenBatch;
pub use bucket::{bucket_stats, plan_buckets, Bucket, BucketStats};
pub use config::{EncoderConfig, NormPlacement, Pooling};
pub use cross::{load_pretrained_cross, save_pretrained_cross, CrossEncoder, PretrainedCross};
pub use model::Encoder;
pub use pretrained::{load_pretrained, save_pretrained, Pretrained};
