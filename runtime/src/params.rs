//! Named parameters with their gradients.
//!
//! A [`ParamSet`] owns every trainable tensor of a model, each with a dense
//! f32 gradient that backward passes accumulate into (so gradient
//! accumulation over micro-batches is just several backward calls) and a
//! weight-decay flag that splits the set into the two usual optimizer
//! groups. Parameters keep their registration order, which fixes the order
//! of optimizer state and of saved files.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Index of a parameter in its [`ParamSet`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ParamId(pub(crate) usize);

impl ParamId {
    pub fn index(self) -> usize {
        self.0
    }
}

/// One named parameter.
pub struct Param {
    name: String,
    pub(crate) value: Tensor,
    pub(crate) grad: Vec<f32>,
    decay: bool,
}

impl Param {
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn value(&self) -> &Tensor {
        &self.value
    }
    /// The value, mutable (fails with `NotWritable` while a tape or a view
    /// still shares it).
    pub fn value_mut(&mut self) -> &mut Tensor {
        &mut self.value
    }
    pub fn grad(&self) -> &[f32] {
        &self.grad
    }
    pub fn grad_mut(&mut self) -> &mut [f32] {
        &mut self.grad
    }
    /// Whether the optimizer applies weight decay to this parameter.
    pub fn decay(&self) -> bool {
        self.decay
    }
    pub fn set_decay(&mut self, decay: bool) {
        self.decay = decay;
    }
}

/// Whether a parameter name looks like a norm gain or a bias, which the
/// usual recipe leaves out of weight decay.
/// (Any dot-separated segment containing `norm` in any case, as in Hugging
/// Face's `LayerNorm`, or named `ln`, `ln_*`, `*_ln`, `ln1`, ...; or a last
/// segment `bias`, `beta` or `gamma`.)
pub fn is_norm_or_bias(name: &str) -> bool {
    let last = name.rsplit('.').next().unwrap_or(name);
    let norm_segment = |s: &str| {
        s.to_ascii_lowercase().contains("norm")
            || s.strip_prefix("ln").is_some_and(|r| {
                r.is_empty() || r.starts_with('_') || r.bytes().all(|b| b.is_ascii_digit())
            })
            || s.ends_with("_ln")
    };
    last == "bias" || last == "beta" || last == "gamma" || name.split('.').any(norm_segment)
}

/// Named parameters in registration order.
#[derive(Default)]
pub struct ParamSet {
    params: Vec<Param>,
    by_name: HashMap<String, usize>,
}

impl ParamSet {
    pub fn new() -> ParamSet {
        ParamSet::default()
    }

    /// Registers an f32 parameter. `decay` chooses its optimizer group; see
    /// [`is_norm_or_bias`] for the usual choice. A value whose storage is
    /// shared with another tensor is copied so the optimizer can write it;
    /// a memory-mapped value stays mapped (and read-only).
    pub fn add(&mut self, name: &str, value: Tensor, decay: bool) -> Result<ParamId> {
        if self.by_name.contains_key(name) {
            return Err(Error::Param { name: name.into(), reason: "registered twice" });
        }
        let value = value.unshared()?;
        value.as_f32().map_err(|_| Error::Param {
            name: name.into(),
            reason: "must be a contiguous f32 tensor",
        })?;
        let id = self.params.len();
        self.by_name.insert(name.to_string(), id);
        let grad = vec![0.0; value.numel()];
        self.params.push(Param { name: name.to_string(), value, grad, decay });
        Ok(ParamId(id))
    }

    pub fn len(&self) -> usize {
        self.params.len()
    }
    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }
    pub fn id(&self, name: &str) -> Result<ParamId> {
        self.by_name
            .get(name)
            .map(|&i| ParamId(i))
            .ok_or_else(|| Error::Param { name: name.into(), reason: "not found" })
    }
    pub fn get(&self, id: ParamId) -> &Param {
        &self.params[id.0]
    }
    pub fn get_mut(&mut self, id: ParamId) -> &mut Param {
        &mut self.params[id.0]
    }
    pub fn iter(&self) -> impl Iterator<Item = &Param> {
        self.params.iter()
    }
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Param> {
        self.params.iter_mut()
    }
    /// Total number of scalar parameters.
    pub fn numel(&self) -> usize {
        self.params.iter().map(|p| p.value.numel()).sum()
    }

    /// Sets every gradient to zero.
    pub fn zero_grad(&mut self) {
        for p in &mut self.params {
            p.grad.fill(0.0);
        }
    }

    /// Replaces a parameter's value with one of the same shape (loading a
    /// checkpoint); the gradient is kept.
    pub fn set_value(&mut self, id: ParamId, value: Tensor) -> Result<()> {
        let p = &mut self.params[id.0];
        if value.dims() != p.value.dims() {
            return Err(Error::ShapeMismatch {
                op: "set parameter",
                lhs: p.value.dims().to_vec(),
                rhs: value.dims().to_vec(),
            });
        }
        let value = value.unshared()?;
        value.as_f32().map_err(|_| Error::Param {
            name: p.name.clone(),
            reason: "must be a contiguous f32 tensor",
        })?;
        p.value = value;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::is_norm_or_bias;

    #[test]
    fn decay_groups_by_name() {
        for n in [
            "enc.0.ln1.weight",
            "emb_norm.gamma",
            "ffn.b1.bias",
            "final_ln.weight",
            "LayerNorm.beta",
            "encoder.layer.0.attention.output.LayerNorm.weight",
            "embeddings.LayerNorm.weight",
        ] {
            assert!(is_norm_or_bias(n), "{n}");
        }
        for n in ["ffn.w1", "attn.wq", "linear.weight", "kernel", "tok_emb"] {
            assert!(!is_norm_or_bias(n), "{n}");
        }
    }
}
