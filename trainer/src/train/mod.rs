//! Contrastive training of a dual encoder: configuration, the loop, and
//! what a run leaves behind.
//!
//! [`config`] reads the TOML file; [`data`] turns it into training pairs and
//! a dev set; the loop itself is [`run`] (one readable file, step by step);
//! [`checkpoint`] writes and reads resumable state atomically; [`eval`]
//! scores the dev set with exact search; [`curves`] draws the loss and dev
//! nDCG@10; [`progress`] is how a caller watches and stops a run;
//! [`negatives`] re-mines hard negatives, masks guided false negatives and
//! keeps the momentum encoder of the memory bank.

pub mod checkpoint;
pub mod config;
pub mod curves;
pub mod data;
pub mod eval;
pub mod negatives;
pub mod progress;
pub mod run;

pub use config::{ConfigError, TrainConfig};
pub use eval::{DevMetrics, DevSet};
pub use progress::{ConsoleHooks, NoHooks, StepInfo, TrainHooks};
pub use run::{train, TrainReport};

/// Peak resident set size of this process in bytes (`VmHWM` of
/// `/proc/self/status`); `None` where that file does not exist.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
