//! Optimizers, learning-rate schedules, gradient clipping and gradient
//! accumulation.
//!
//! [`AdamW`] and [`Sgd`] (with momentum) update a [`ParamSet`] from the
//! gradients backward left in it. Weight decay applies only to parameters
//! whose `decay` flag is set, which is how the two usual groups (matrices
//! and embedding tables decayed, as the encoder's parameters are; norm
//! gains and biases not) are expressed.
//! State is one buffer per parameter, allocated when the optimizer is made,
//! so a step allocates nothing. State saves to and loads from a
//! safetensors file (one tensor per buffer, the step count and
//! hyper-parameters in the metadata) for checkpoints.
//!
//! Updates are elementwise, so chunked parallel loops give the same bits
//! at any thread count. The global gradient norm is summed per parameter
//! in f64, in registration order.

use std::collections::HashMap;
use std::path::Path;

use rayon::prelude::*;

use crate::autodiff::Graph;
use crate::error::{Error, KernelContext, Result};
use crate::kernels::vector;
use crate::ops::CHUNK;
use crate::params::ParamSet;
use crate::tensor::Tensor;
use crate::weights;

// ---------------------------------------------------------------------------
// schedules

/// Learning rate as a function of the optimizer step (0-based).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LrSchedule {
    Constant {
        lr: f32,
    },
    /// Linear warmup from 0 to `peak` over `warmup` steps, then cosine decay
    /// to `min` at `total` steps (held at `min` after).
    WarmupCosine {
        peak: f32,
        min: f32,
        warmup: u64,
        total: u64,
    },
    /// Linear warmup, then linear decay to `min` at `total` steps.
    WarmupLinear {
        peak: f32,
        min: f32,
        warmup: u64,
        total: u64,
    },
}

impl LrSchedule {
    pub fn lr(&self, step: u64) -> f32 {
        match *self {
            LrSchedule::Constant { lr } => lr,
            LrSchedule::WarmupCosine { peak, min, warmup, total }
            | LrSchedule::WarmupLinear { peak, min, warmup, total } => {
                if step < warmup {
                    return peak * (step + 1) as f32 / warmup as f32;
                }
                let span = total.saturating_sub(warmup).max(1);
                let frac = ((step - warmup) as f32 / span as f32).min(1.0);
                let shape = match self {
                    LrSchedule::WarmupCosine { .. } => {
                        0.5 * (1.0 + (std::f32::consts::PI * frac).cos())
                    }
                    _ => 1.0 - frac,
                };
                min + (peak - min) * shape
            }
        }
    }
}

// ---------------------------------------------------------------------------
// clipping

/// `sqrt(sum of squared gradient elements)` over all parameters.
pub fn global_grad_norm(params: &ParamSet) -> Result<f32> {
    let mut total = 0.0f64;
    for p in params.iter() {
        total += vector::dot(p.grad(), p.grad()).op("grad norm")? as f64;
    }
    Ok(total.sqrt() as f32)
}

/// Scales all gradients so their global norm is at most `max_norm`.
/// Returns the norm before clipping; a non-finite norm is an error (the
/// step should be skipped).
pub fn clip_grad_norm(params: &mut ParamSet, max_norm: f32) -> Result<f32> {
    let norm = global_grad_norm(params)?;
    if !norm.is_finite() {
        return Err(Error::NonFinite { op: "clip_grad_norm" });
    }
    if norm > max_norm {
        let s = max_norm / (norm + 1e-6);
        params.iter_mut().for_each(|p| vector::scale(s, p.grad_mut()));
    }
    Ok(norm)
}

// ---------------------------------------------------------------------------
// the optimizer interface

/// An optimizer over a parameter set.
pub trait Optimizer: Send {
    /// One update with learning rate `lr`. Values must not be shared with a
    /// live tape (call [`Graph::reset`] first, or use [`Optimizer::step_graph`]).
    /// The update loops run on the current rayon pool, so call this inside
    /// [`crate::Runtime::install`]; [`Optimizer::step_graph`] does both.
    fn step(&mut self, params: &mut ParamSet, lr: f32) -> Result<()>;
    /// Updates taken so far.
    fn steps(&self) -> u64;
    /// Saves the state to a safetensors file.
    fn save_state(&self, path: &Path, params: &ParamSet) -> Result<()>;
    /// Loads state saved by [`Optimizer::save_state`] for the same params.
    fn load_state(&mut self, path: &Path, params: &ParamSet) -> Result<()>;

    /// Clears the tape, then steps the graph's parameters.
    fn step_graph(&mut self, g: &mut Graph, lr: f32) -> Result<()> {
        g.reset();
        let rt = g.runtime().clone();
        rt.install(|| self.step(g.params_mut(), lr))
    }
}

fn check_lr(lr: f32) -> Result<()> {
    if !lr.is_finite() || lr < 0.0 {
        return Err(Error::InvalidArgument {
            op: "optimizer step",
            what: format!("learning rate {lr}"),
        });
    }
    Ok(())
}

fn state_for(params: &ParamSet) -> Vec<Vec<f32>> {
    params.iter().map(|p| vec![0.0; p.value().numel()]).collect()
}

/// Saves named per-parameter buffers with metadata.
fn save_buffers(
    path: &Path,
    params: &ParamSet,
    groups: &[(&str, &[Vec<f32>])],
    meta: HashMap<String, String>,
) -> Result<()> {
    let mut owned = Vec::new();
    for (prefix, bufs) in groups {
        for (p, b) in params.iter().zip(bufs.iter()) {
            owned.push((
                format!("{prefix}.{}", p.name()),
                Tensor::from_vec(p.value().dims(), b.clone())?,
            ));
        }
    }
    let list: Vec<(&str, &Tensor)> = owned.iter().map(|(n, t)| (n.as_str(), t)).collect();
    weights::save(path, &list, Some(meta))
}

/// Loads buffers saved by [`save_buffers`]; returns the metadata.
fn load_buffers(
    path: &Path,
    params: &ParamSet,
    groups: &mut [(&str, &mut Vec<Vec<f32>>)],
    kind: &str,
) -> Result<HashMap<String, String>> {
    let file = weights::map(path)?;
    let bad = |reason: String| Error::SafeTensors { path: path.to_path_buf(), reason };
    if file.metadata().get("optimizer").map(String::as_str) != Some(kind) {
        return Err(bad(format!("not a {kind} optimizer state")));
    }
    for (prefix, bufs) in groups.iter_mut() {
        for (p, b) in params.iter().zip(bufs.iter_mut()) {
            let t = file.get(&format!("{prefix}.{}", p.name()))?;
            if t.dims() != p.value().dims() {
                return Err(bad(format!("state {prefix}.{} has shape {:?}", p.name(), t.dims())));
            }
            b.copy_from_slice(t.as_f32()?);
        }
    }
    Ok(file.metadata().clone())
}

fn parse_step(path: &Path, meta: &HashMap<String, String>) -> Result<u64> {
    meta.get("step").and_then(|s| s.parse().ok()).ok_or_else(|| Error::SafeTensors {
        path: path.to_path_buf(),
        reason: "metadata field \"step\" missing or not an integer".into(),
    })
}

// ---------------------------------------------------------------------------
// AdamW

/// AdamW hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamWConfig {
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.01 }
    }
}

/// Adam with decoupled weight decay, as in Loshchilov & Hutter, "Decoupled
/// Weight Decay Regularization" (ICLR 2019), Algorithm 2, in the form of
/// PyTorch's `torch.optim.AdamW` documentation:
///
/// ```text
/// p  *= 1 - lr * wd                      (decayed parameters only)
/// m   = b1 m + (1 - b1) g
/// v   = b2 v + (1 - b2) g^2
/// p  -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
/// ```
pub struct AdamW {
    cfg: AdamWConfig,
    t: u64,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
}

impl AdamW {
    pub fn new(params: &ParamSet, cfg: AdamWConfig) -> AdamW {
        AdamW { cfg, t: 0, m: state_for(params), v: state_for(params) }
    }
    pub fn config(&self) -> &AdamWConfig {
        &self.cfg
    }
}

impl Optimizer for AdamW {
    fn step(&mut self, params: &mut ParamSet, lr: f32) -> Result<()> {
        check_lr(lr)?;
        if self.m.len() != params.len() {
            return Err(Error::InvalidArgument {
                op: "adamw",
                what: "parameter set changed since creation".into(),
            });
        }
        self.t += 1;
        let c = self.cfg;
        let bc1 = 1.0 - c.beta1.powi(self.t.min(i32::MAX as u64) as i32);
        let bc2 = 1.0 - c.beta2.powi(self.t.min(i32::MAX as u64) as i32);
        for ((p, m), v) in params.iter_mut().zip(&mut self.m).zip(&mut self.v) {
            let decay = if p.decay() { 1.0 - lr * c.weight_decay } else { 1.0 };
            let grad: &[f32] = &p.grad;
            let w = p.value.as_f32_mut()?;
            w.par_chunks_mut(CHUNK)
                .zip(grad.par_chunks(CHUNK))
                .zip(m.par_chunks_mut(CHUNK).zip(v.par_chunks_mut(CHUNK)))
                .for_each(|((w, g), (m, v))| {
                    for (((w, &g), m), v) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut())
                    {
                        *m = c.beta1 * *m + (1.0 - c.beta1) * g;
                        *v = c.beta2 * *v + (1.0 - c.beta2) * g * g;
                        let mhat = *m / bc1;
                        let vhat = *v / bc2;
                        *w = *w * decay - lr * mhat / (vhat.sqrt() + c.eps);
                    }
                });
        }
        Ok(())
    }

    fn steps(&self) -> u64 {
        self.t
    }

    fn save_state(&self, path: &Path, params: &ParamSet) -> Result<()> {
        let c = self.cfg;
        let meta = HashMap::from([
            ("optimizer".to_string(), "adamw".to_string()),
            ("step".to_string(), self.t.to_string()),
            ("beta1".to_string(), c.beta1.to_string()),
            ("beta2".to_string(), c.beta2.to_string()),
            ("eps".to_string(), c.eps.to_string()),
            ("weight_decay".to_string(), c.weight_decay.to_string()),
        ]);
        save_buffers(path, params, &[("m", &self.m), ("v", &self.v)], meta)
    }

    fn load_state(&mut self, path: &Path, params: &ParamSet) -> Result<()> {
        let (mut m, mut v) = (state_for(params), state_for(params));
        let meta = load_buffers(path, params, &mut [("m", &mut m), ("v", &mut v)], "adamw")?;
        self.t = parse_step(path, &meta)?;
        self.m = m;
        self.v = v;
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// SGD with momentum

/// SGD with momentum and (coupled, L2) weight decay, as PyTorch's
/// `torch.optim.SGD` without dampening or Nesterov:
/// `g += wd p` (decayed parameters), `b = mu b + g`, `p -= lr b`.
pub struct Sgd {
    momentum: f32,
    weight_decay: f32,
    t: u64,
    buf: Vec<Vec<f32>>,
}

impl Sgd {
    pub fn new(params: &ParamSet, momentum: f32, weight_decay: f32) -> Sgd {
        Sgd { momentum, weight_decay, t: 0, buf: state_for(params) }
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, params: &mut ParamSet, lr: f32) -> Result<()> {
        check_lr(lr)?;
        if self.buf.len() != params.len() {
            return Err(Error::InvalidArgument {
                op: "sgd",
                what: "parameter set changed since creation".into(),
            });
        }
        self.t += 1;
        let (mu, first) = (self.momentum, self.t == 1);
        for (p, b) in params.iter_mut().zip(&mut self.buf) {
            let wd = if p.decay() { self.weight_decay } else { 0.0 };
            let grad: &[f32] = &p.grad;
            let w = p.value.as_f32_mut()?;
            w.par_chunks_mut(CHUNK)
                .zip(grad.par_chunks(CHUNK))
                .zip(b.par_chunks_mut(CHUNK))
                .for_each(|((w, g), b)| {
                    for ((w, &g), b) in w.iter_mut().zip(g).zip(b.iter_mut()) {
                        let gi = g + wd * *w;
                        *b = if first { gi } else { mu * *b + gi };
                        *w -= lr * *b;
                    }
                });
        }
        Ok(())
    }

    fn steps(&self) -> u64 {
        self.t
    }

    fn save_state(&self, path: &Path, params: &ParamSet) -> Result<()> {
        let meta = HashMap::from([
            ("optimizer".to_string(), "sgd".to_string()),
            ("step".to_string(), self.t.to_string()),
            ("momentum".to_string(), self.momentum.to_string()),
            ("weight_decay".to_string(), self.weight_decay.to_string()),
        ]);
        save_buffers(path, params, &[("momentum", &self.buf)], meta)
    }

    fn load_state(&mut self, path: &Path, params: &ParamSet) -> Result<()> {
        let mut b = state_for(params);
        let meta = load_buffers(path, params, &mut [("momentum", &mut b)], "sgd")?;
        self.t = parse_step(path, &meta)?;
        self.buf = b;
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// gradient accumulation

/// What an accumulation call that stepped reports.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stepped {
    /// Global gradient norm before clipping, when clipping is on.
    pub grad_norm: Option<f32>,
}

/// Steps every `every` micro-batches on the mean of their gradients,
/// optionally clipping the global norm first.
pub struct GradAccumulator {
    every: usize,
    seen: usize,
    max_norm: Option<f32>,
}

impl GradAccumulator {
    pub fn new(every: usize, max_norm: Option<f32>) -> Result<GradAccumulator> {
        if every == 0 {
            return Err(Error::InvalidArgument {
                op: "grad accumulation",
                what: "every = 0".into(),
            });
        }
        Ok(GradAccumulator { every, seen: 0, max_norm })
    }

    /// Call after each micro-batch's backward; clears the tape. On every
    /// `every`-th call: scale gradients by `1/every`, clip, step, zero
    /// gradients, and return `Some`.
    pub fn micro_step(
        &mut self,
        g: &mut Graph,
        opt: &mut dyn Optimizer,
        lr: f32,
    ) -> Result<Option<Stepped>> {
        self.seen += 1;
        if self.seen < self.every {
            g.reset();
            return Ok(None);
        }
        self.seen = 0;
        g.reset();
        let s = 1.0 / self.every as f32;
        if self.every > 1 {
            g.params_mut().iter_mut().for_each(|p| vector::scale(s, p.grad_mut()));
        }
        let norm = match self.max_norm {
            Some(m) => Some(clip_grad_norm(g.params_mut(), m)?),
            None => None,
        };
        opt.step_graph(g, lr)?;
        g.params_mut().zero_grad();
        Ok(Some(Stepped { grad_norm: norm }))
    }
}
