//! Resumable checkpoints, written so that a crash never leaves a broken one.
//!
//! Layout under `<output_dir>/checkpoints/`:
//!
//! ```text
//! step-00000400/params.safetensors     every parameter (runtime::weights)
//! step-00000400/optimizer.safetensors  AdamW moments and step (runtime::optim)
//! step-00000400/vocab.txt              the tokenizer's vocabulary
//! step-00000400/extra.safetensors      other tensors of the run (memory bank rows,
//!                                      momentum encoder)
//! step-00000400/state.json             step, RNG, sampler position, re-mined
//!                                      negatives, history, config
//! latest                               the name of the newest complete checkpoint
//! ```
//!
//! Writing: every file goes into `step-N.tmp/` and is fsynced; the folder is
//! fsynced and renamed to `step-N/`, the parent fsynced; only then is
//! `latest` replaced (temp file, fsync, rename). A failure at any point
//! leaves `latest` naming the previous checkpoint, which is untouched.
//! Older checkpoints beyond the number to keep are deleted afterwards, never
//! the one `latest` names.
//!
//! Everything a run's future depends on is in the checkpoint (parameters,
//! optimizer moments, the step, the sampler's RNG and position, the dropout
//! pass counter, the memory bank and momentum encoder, the re-mined
//! negatives), which is what makes a resumed run bit-identical to an
//! uninterrupted one. The config's result-fixing sections are stored too,
//! and resuming under a different one is refused.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::eval::DevMetrics;
use crate::error::{IoResultExt, Result, TrainerError};
use crate::runtime::optim::Optimizer;
use crate::runtime::{weights, ParamSet, Tensor};

/// Version of `state.json`.
pub const STATE_FORMAT: u32 = 1;

/// One log step, as in `log.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogRecord {
    pub step: u64,
    pub epoch: u64,
    pub loss: f32,
    pub lr: f32,
    pub grad_norm: Option<f32>,
    pub pairs_per_sec: f64,
    pub elapsed_seconds: f64,
    /// Seconds spent re-mining since the previous log line (absent when
    /// there was no refresh).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mining_seconds: Option<f64>,
    /// Corpus passages embedded by re-mining since the previous log line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mining_docs: Option<u64>,
}

/// One re-mining of hard negatives inside the loop.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MiningRecord {
    /// Steps taken when the negatives were replaced.
    pub step: u64,
    /// Wall time of the whole refresh.
    pub seconds: f64,
    /// Of which embedding (corpus, queries, positives).
    pub embed_seconds: f64,
    /// Corpus passages embedded and searched.
    pub docs: usize,
    /// Texts embedded in all: passages, distinct queries, positives.
    pub texts: usize,
    /// Negatives written over all examples.
    pub negatives: usize,
    /// Examples left with fewer than `loss.hard_negatives`.
    pub short: usize,
}

/// Re-mining's part of the resumable state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MiningState {
    /// Per training example, its current negatives as passage numbers of
    /// the mining corpus; `None` before the first refresh (the data's own
    /// negatives are in use).
    pub negatives: Option<Vec<Vec<u32>>>,
    /// Every refresh so far.
    pub refreshes: Vec<MiningRecord>,
}

/// One dev evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalRecord {
    pub step: u64,
    pub metrics: DevMetrics,
}

/// Everything besides tensors that a resumed run needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    pub format: u32,
    /// Optimizer steps taken.
    pub step: u64,
    /// The batch sampler's state (epoch, order, position, its RNG).
    pub sampler: serde_json::Value,
    /// The forward-pass counter that keys dropout masks.
    pub graph_pass: u64,
    /// The sections of the config that fix the results.
    pub fingerprint: String,
    /// The whole config, for the record.
    pub config: String,
    pub log: Vec<LogRecord>,
    pub evals: Vec<EvalRecord>,
    /// Step and metrics of the best dev evaluation so far.
    pub best: Option<EvalRecord>,
    /// Training seconds before this checkpoint (over all resumed pieces).
    pub elapsed_seconds: f64,
    /// Rows ever pushed into the memory bank (fixes its ring position).
    #[serde(default)]
    pub bank_rows_pushed: u64,
    /// Re-mined negatives and the cost of each refresh.
    #[serde(default)]
    pub mining: MiningState,
}

fn bad(path: &Path, reason: impl Into<String>) -> TrainerError {
    TrainerError::InvalidArgument {
        name: "checkpoint",
        reason: format!("{}: {}", path.display(), reason.into()),
    }
}

/// The folder name of step `step`.
pub fn step_dir_name(step: u64) -> String {
    format!("step-{step:08}")
}

/// Writes `bytes` to `path` through a sibling temp file, fsync and rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = File::create(&tmp).with_path(&tmp)?;
    f.write_all(bytes).with_path(&tmp)?;
    f.sync_all().with_path(&tmp)?;
    drop(f);
    fs::rename(&tmp, path).with_path(path)?;
    if let Some(parent) = path.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

/// fsyncs a directory, so a rename inside it is durable.
fn sync_dir(dir: &Path) -> Result<()> {
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    File::open(dir).and_then(|f| f.sync_all()).with_path(dir)
}

/// Writes a checkpoint of step `state.step` under `root` and points
/// `latest` at it; keeps the newest `keep` checkpoints. Returns its folder.
pub fn write(
    root: &Path,
    params: &ParamSet,
    optimizer: &dyn Optimizer,
    vocab: &[String],
    extra: &[(&str, &Tensor)],
    state: &TrainState,
    keep: usize,
) -> Result<PathBuf> {
    fs::create_dir_all(root).with_path(root)?;
    let name = step_dir_name(state.step);
    let tmp = root.join(format!("{name}.tmp"));
    let fin = root.join(&name);

    // A leftover temp folder of a crashed write is incomplete: start over.
    if tmp.is_dir() {
        fs::remove_dir_all(&tmp).with_path(&tmp)?;
    }
    fs::create_dir(&tmp).with_path(&tmp)?;

    // The files, each fsynced (the safetensors writers fsync themselves).
    weights::save_params(&tmp.join("params.safetensors"), params, None)?;
    optimizer.save_state(&tmp.join("optimizer.safetensors"), params)?;
    let mut text = String::with_capacity(vocab.iter().map(|t| t.len() + 1).sum());
    for t in vocab {
        text.push_str(t);
        text.push('\n');
    }
    write_atomic(&tmp.join("vocab.txt"), text.as_bytes())?;
    weights::save(&tmp.join("extra.safetensors"), extra, None)?;
    let json = serde_json::to_vec_pretty(state).map_err(|e| bad(&tmp, e.to_string()))?;
    write_atomic(&tmp.join("state.json"), &json)?;
    sync_dir(&tmp)?;

    // Publish: rename the folder, then move `latest`. A same-step folder can
    // only be left over from a run that died before updating `latest`.
    if fin.exists() {
        fs::remove_dir_all(&fin).with_path(&fin)?;
    }
    fs::rename(&tmp, &fin).with_path(&fin)?;
    sync_dir(root)?;
    write_atomic(&root.join("latest"), format!("{name}\n").as_bytes())?;

    prune(root, &name, keep)?;
    Ok(fin)
}

/// Deletes all but the newest `keep` checkpoint folders, sparing `current`.
fn prune(root: &Path, current: &str, keep: usize) -> Result<()> {
    let mut steps: Vec<String> = fs::read_dir(root)
        .with_path(root)?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with("step-") && !n.ends_with(".tmp"))
        .collect();
    steps.sort();
    let excess = steps.len().saturating_sub(keep.max(1));
    for n in steps.into_iter().take(excess).filter(|n| n != current) {
        let p = root.join(n);
        fs::remove_dir_all(&p).with_path(&p)?;
    }
    Ok(())
}

/// The folder `latest` names, if there is a complete checkpoint.
pub fn latest(root: &Path) -> Result<Option<PathBuf>> {
    let pointer = root.join("latest");
    let name = match fs::read_to_string(&pointer) {
        Ok(s) => s.trim().to_string(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(TrainerError::io(&pointer, e)),
    };
    if !name.starts_with("step-") || name.contains('/') {
        return Err(bad(&pointer, format!("does not name a checkpoint: {name:?}")));
    }
    let dir = root.join(name);
    if !dir.is_dir() {
        return Err(bad(&pointer, format!("names missing folder {}", dir.display())));
    }
    Ok(Some(dir))
}

/// Reads a checkpoint's `state.json`.
pub fn read_state(dir: &Path) -> Result<TrainState> {
    let path = dir.join("state.json");
    let bytes = fs::read(&path).with_path(&path)?;
    let state: TrainState =
        serde_json::from_slice(&bytes).map_err(|e| bad(&path, format!("invalid: {e}")))?;
    if state.format != STATE_FORMAT {
        return Err(bad(&path, format!("format {} (expected {STATE_FORMAT})", state.format)));
    }
    Ok(state)
}

/// Reads a checkpoint's extra tensors, sorted by name.
pub fn read_extra(dir: &Path) -> Result<Vec<(String, Tensor)>> {
    Ok(weights::load(&dir.join("extra.safetensors"))?)
}

/// Reads a checkpoint's vocabulary tokens.
pub fn read_vocab(dir: &Path) -> Result<Vec<String>> {
    let path = dir.join("vocab.txt");
    let text = fs::read_to_string(&path).with_path(&path)?;
    Ok(text.lines().map(str::to_string).collect())
}

/// Loads a checkpoint's parameters and optimizer state into `params` and
/// `optimizer` (same model shape required).
pub fn load_tensors(
    dir: &Path,
    params: &mut ParamSet,
    optimizer: &mut dyn Optimizer,
) -> Result<()> {
    weights::load_params(&dir.join("params.safetensors"), params)?;
    optimizer.load_state(&dir.join("optimizer.safetensors"), params)?;
    Ok(())
}
