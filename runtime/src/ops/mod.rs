//! The differentiable ops, each forward beside its backward.
//!
//! Files group ops by family: [`elementwise`] (broadcast add/mul, scale,
//! reshape, reductions, GELU, dropout), [`linalg`] (batched matmul and the
//! similarity matrix), [`norm`] (layer norm, L2 normalisation, softmax and
//! log-softmax), [`attention`] (fused multi-head attention), [`pooling`]
//! (embedding gather, mean and CLS pooling), [`loss`] (cross-entropy, KL
//! divergence, MSE) and [`shape`] (concatenation, narrowing, transpose and
//! the pointwise functions losses need). Forward functions are methods on [`crate::Graph`];
//! `backward` routes a tape node to its rule. Hot loops call
//! `edgecl_kernels` so they speed up with the kernels.
//!
//! Parallel loops split rows or elements into fixed-size chunks
//! (independent of the thread count) and never combine partial sums across
//! chunks, so results do not depend on scheduling.

pub mod activation;
pub mod attention;
pub mod elementwise;
pub mod linalg;
pub mod loss;
pub mod norm;
pub mod pooling;
pub mod shape;

use crate::autodiff::{Graph, Op};
use crate::error::Result;

/// Elements per parallel chunk of an elementwise loop.
pub(crate) const CHUNK: usize = 4096;

/// Runs node `i`'s backward rule with output gradient `dy`.
pub(crate) fn backward(g: &mut Graph, i: usize, dy: &[f32]) -> Result<()> {
    // Copy indices (and clone saved buffers, a counter bump) out of the node
    // so the rules can borrow the graph mutably.
    match &g.nodes[i].op {
        Op::Input | Op::Param(_) => Ok(()),
        &Op::MatMul { a, b, ta, tb } => linalg::matmul_backward(g, i, a, b, ta, tb, dy),
        &Op::MatMulBias { a, b, bias, ta, tb } => {
            linalg::matmul_backward(g, i, a, b, ta, tb, dy)?;
            linalg::bias_backward(g, bias, dy)
        }
        &Op::Add { a, b } => elementwise::add_backward(g, i, a, b, dy),
        &Op::Mul { a, b } => elementwise::mul_backward(g, i, a, b, dy),
        &Op::Scale { a, s } => elementwise::scale_backward(g, a, s, dy),
        &Op::Reshape { a } | &Op::Sum { a } => elementwise::passthrough_backward(g, a, dy, false),
        &Op::Mean { a } => elementwise::passthrough_backward(g, a, dy, true),
        &Op::Embedding { table, ids } => pooling::embedding_backward(g, table, ids, dy),
        Op::LayerNorm { x, gamma, beta, stats } => {
            let (x, gamma, beta, stats) = (*x, *gamma, *beta, stats.clone());
            norm::layer_norm_backward(g, x, gamma, beta, &stats, dy)
        }
        &Op::Gelu { x } => elementwise::gelu_backward(g, x, dy),
        &Op::Tanh { x } => activation::tanh_backward(g, i, x, dy),
        &Op::Softmax { x } => norm::softmax_backward(g, i, x, dy),
        &Op::LogSoftmax { x } => norm::log_softmax_backward(g, i, x, dy),
        &Op::Attention { q, k, v, mask, heads } => {
            attention::attention_backward(g, q, k, v, mask, heads, dy)
        }
        &Op::Dropout { x, key, p } => elementwise::dropout_backward(g, x, key, p, dy),
        &Op::MeanPool { x, mask } => pooling::mean_pool_backward(g, x, mask, dy),
        &Op::ClsPool { x } => pooling::cls_pool_backward(g, x, dy),
        Op::L2Normalize { x, inv } => {
            let (x, inv) = (*x, inv.clone());
            norm::l2_normalize_backward(g, i, x, &inv, dy)
        }
        Op::CrossEntropy { logits, targets, probs } => {
            let (l, t, p) = (*logits, *targets, probs.clone());
            loss::cross_entropy_backward(g, l, t, &p, dy)
        }
        &Op::KlDiv { logp, logq } => loss::kl_div_backward(g, logp, logq, dy),
        &Op::Mse { a, b } => loss::mse_backward(g, a, b, dy),
        &Op::Shape(op) => shape::backward(g, i, op, dy),
        &Op::NoGrad { name, .. } => Err(crate::Error::BackwardNotSupported { op: name }),
    }
}

thread_local! {
    /// Per-thread scratch for row temporaries and one attention head's
    /// score matrices; grows to the largest request, then is reused.
    static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` with `n` scratch floats of unspecified content. The buffer is
/// moved out while in use, so a nested call (a rayon task stolen while `f`
/// waits inside a parallel kernel) gets its own buffer instead of a
/// `RefCell` panic; the larger one is kept afterwards.
pub(crate) fn with_scratch<R>(n: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    let mut buf = SCRATCH.with(|s| std::mem::take(&mut *s.borrow_mut()));
    if buf.len() < n {
        buf.resize(n, 0.0);
    }
    let r = f(&mut buf[..n]);
    SCRATCH.with(|s| {
        let mut s = s.borrow_mut();
        if s.len() < buf.len() {
            *s = buf;
        }
    });
    r
}
