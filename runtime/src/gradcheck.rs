//! Gradient checking by central finite differences.
//!
//! [`check`] registers the given tensors as parameters of a fresh
//! single-threaded graph, builds an output with the caller's closure and
//! reduces it to the scalar `L = sum_i w_i * out_i` with fixed random
//! weights `w` (so every output element matters, with different weight).
//! The analytic gradient comes from one backward pass seeded with `w`; the
//! numeric one perturbs each input element by `+-h` and takes
//! `(L(x + h) - L(x - h)) / 2h`, with `L` accumulated and differenced in
//! f64. The ops themselves run in f32, so `h` cannot be tiny: the defaults
//! (h = 1e-2, tolerance `atol + rtol * max(|a|, |n|)`) suit inputs of order
//! one and small sizes. The pass counter is pinned so dropout masks repeat
//! across evaluations.

use crate::autodiff::{Graph, Var};
use crate::context::Runtime;
use crate::error::Result;
use crate::ops::elementwise::uniform;
use crate::params::ParamId;
use crate::tensor::Tensor;

/// Step and tolerances of a check.
#[derive(Clone, Copy, Debug)]
pub struct GradCheck {
    pub h: f32,
    pub atol: f64,
    pub rtol: f64,
    /// Seeds the output weights and the graph (dropout).
    pub seed: u64,
}

impl Default for GradCheck {
    fn default() -> Self {
        GradCheck { h: 1e-2, atol: 2e-3, rtol: 2e-2, seed: 7 }
    }
}

/// One element whose analytic and numeric gradients disagree.
#[derive(Clone, Debug)]
pub struct Mismatch {
    pub input: usize,
    pub index: usize,
    pub analytic: f64,
    pub numeric: f64,
}

/// The outcome of a check.
#[derive(Clone, Debug, Default)]
pub struct GradReport {
    /// Elements compared.
    pub checked: usize,
    pub max_abs_err: f64,
    pub mismatches: Vec<Mismatch>,
}

impl GradReport {
    pub fn ok(&self) -> bool {
        self.mismatches.is_empty() && self.checked > 0
    }
}

/// Compares analytic and numeric gradients of `f` with respect to every
/// element of every input.
pub fn check<F>(inputs: &[Tensor], cfg: &GradCheck, f: F) -> Result<GradReport>
where
    F: Fn(&mut Graph, &[Var]) -> Result<Var>,
{
    let mut g = Graph::new(Runtime::new(1)?, cfg.seed);
    let mut ids: Vec<ParamId> = Vec::new();
    for (i, t) in inputs.iter().enumerate() {
        ids.push(g.params_mut().add(&format!("input{i}"), t.contiguous()?, false)?);
    }

    // One evaluation of L at the current parameter values.
    let eval = |g: &mut Graph, w: &[f64]| -> Result<(Var, f64)> {
        g.reset();
        g.set_pass(0);
        let vars: Vec<Var> = ids.iter().map(|&id| g.param(id)).collect();
        let out = f(g, &vars)?;
        let vals = g.value(out)?.as_f32()?;
        let l = vals.iter().zip(w).map(|(&v, &w)| v as f64 * w).sum();
        Ok((out, l))
    };

    // Analytic: backward seeded with w.
    g.reset();
    g.set_pass(0);
    let vars: Vec<Var> = ids.iter().map(|&id| g.param(id)).collect();
    let out = f(&mut g, &vars)?;
    let n = g.value(out)?.numel();
    let w: Vec<f64> = (0..n).map(|i| uniform(cfg.seed, 99, i as u64) as f64 * 2.0 - 1.0).collect();
    let w32: Vec<f32> = w.iter().map(|&x| x as f32).collect();
    g.params_mut().zero_grad();
    g.backward_with(out, &w32)?;
    let analytic: Vec<Vec<f32>> =
        ids.iter().map(|&id| g.params().get(id).grad().to_vec()).collect();

    // Numeric: central differences, one element at a time.
    let mut report = GradReport::default();
    let h = cfg.h;
    for (i, &id) in ids.iter().enumerate() {
        for (j, &a) in analytic[i].iter().enumerate() {
            g.reset();
            let x0 = g.params().get(id).value().as_f32()?[j];
            g.params_mut().get_mut(id).value_mut().as_f32_mut()?[j] = x0 + h;
            let (_, lp) = eval(&mut g, &w)?;
            g.reset();
            g.params_mut().get_mut(id).value_mut().as_f32_mut()?[j] = x0 - h;
            let (_, lm) = eval(&mut g, &w)?;
            g.reset();
            g.params_mut().get_mut(id).value_mut().as_f32_mut()?[j] = x0;
            // The perturbation actually applied, after f32 rounding.
            let step = (x0 + h) as f64 - (x0 - h) as f64;
            let numeric = (lp - lm) / step;
            let a = a as f64;
            let err = (a - numeric).abs();
            report.checked += 1;
            report.max_abs_err = report.max_abs_err.max(err);
            if err > cfg.atol + cfg.rtol * a.abs().max(numeric.abs()) {
                report.mismatches.push(Mismatch { input: i, index: j, analytic: a, numeric });
            }
        }
    }
    Ok(report)
}
