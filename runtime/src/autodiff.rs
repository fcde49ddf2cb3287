//! Reverse-mode autodiff on a tape.
//!
//! Design: a [`Graph`] owns the parameters, a tape of nodes and a buffer
//! pool. Each op appends one node holding its output value, the op with the
//! indices of its inputs and whatever the backward pass needs that the
//! inputs and output do not already hold (layer-norm statistics, a dropout
//! key, softmax probabilities). A [`Var`] is just a node index. Because an
//! op can only name nodes that already exist, the tape order is a
//! topological order, and [`Graph::backward`] walks it from the output down
//! to node 0 without any sorting: each node's gradient is taken out of the
//! gradient list, its op's backward accumulates into its inputs' gradients
//! (created as zeros on first touch, from the pool), and the node's
//! gradient buffer goes back to the pool at once (unless
//! [`Graph::set_keep_grads`] asks to keep them for inspection), so later
//! gradients reuse it. Parameter nodes need no buffer: ops accumulate
//! straight into the parameter's own gradient, which persists until
//! [`ParamSet::zero_grad`], so several backward passes accumulate.
//!
//! A tape rather than an op graph hanging off reference-counted tensors was
//! chosen for the steady state: the node list, the pool and the index arena
//! keep their capacity across [`Graph::reset`], so a training step with the
//! same shapes allocates nothing once warm (see the allocation test).
//!
//! Each op's forward and backward live side by side in `crate::ops`; this
//! file only routes. Gradients are first order: backward does not record
//! onto the tape, so there is no double backward.
//!
//! Left out: every node value stays on the tape until [`Graph::reset`],
//! including values no backward rule reads (the output of an attention
//! projection before its dropout, a dropout's output once the residual add
//! has used it), and nothing is recomputed in backward except dropout masks
//! and attention probabilities. Activations therefore dominate peak memory
//! in training (about 0.9 GB for the tiny encoder at 128 sequences of 64
//! tokens); releasing unread values would need each op to declare what its
//! backward reads and the tape to know a value's last forward use, and
//! going much lower needs per-layer recomputation (checkpointing).

use std::sync::Arc;

use crate::context::Runtime;
use crate::error::{Error, Result};
use crate::ops;
use crate::params::{ParamId, ParamSet};
use crate::pool::BufferPool;
use crate::tensor::{Shape, Tensor};

/// A value on the tape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Var(pub(crate) usize);

impl Var {
    pub fn index(self) -> usize {
        self.0
    }
}

/// A half-open range of the graph's integer arena (token ids, targets).
#[derive(Clone, Copy, Debug)]
pub(crate) struct IdRange {
    pub start: usize,
    pub len: usize,
}

/// What made a node, with input node indices and saved state.
pub(crate) enum Op {
    /// A constant input; no gradient.
    Input,
    /// A parameter leaf.
    Param(usize),
    MatMul {
        a: usize,
        b: usize,
        ta: bool,
        tb: bool,
    },
    /// `op(a) op(b) + bias`, the bias row repeated over the output rows.
    MatMulBias {
        a: usize,
        b: usize,
        bias: usize,
        ta: bool,
        tb: bool,
    },
    Add {
        a: usize,
        b: usize,
    },
    Mul {
        a: usize,
        b: usize,
    },
    Scale {
        a: usize,
        s: f32,
    },
    Reshape {
        a: usize,
    },
    Sum {
        a: usize,
    },
    Mean {
        a: usize,
    },
    Embedding {
        table: usize,
        ids: IdRange,
    },
    LayerNorm {
        x: usize,
        gamma: usize,
        beta: usize,
        stats: Arc<Vec<f32>>,
    },
    Gelu {
        x: usize,
    },
    Tanh {
        x: usize,
    },
    Softmax {
        x: usize,
    },
    LogSoftmax {
        x: usize,
    },
    Attention {
        q: usize,
        k: usize,
        v: usize,
        mask: Option<usize>,
        heads: usize,
    },
    /// The mask is regenerated from `key` in backward, not saved.
    Dropout {
        x: usize,
        key: u64,
        p: f32,
    },
    MeanPool {
        x: usize,
        mask: usize,
    },
    ClsPool {
        x: usize,
    },
    L2Normalize {
        x: usize,
        inv: Arc<Vec<f32>>,
    },
    CrossEntropy {
        logits: usize,
        targets: IdRange,
        probs: Arc<Vec<f32>>,
    },
    KlDiv {
        logp: usize,
        logq: usize,
    },
    Mse {
        a: usize,
        b: usize,
    },
    /// Row/column plumbing and loss pointwise ops (`ops::shape`).
    Shape(ops::shape::ShapeOp),
    /// A value with no backward rule (argmax); reaching it in backward is
    /// an error naming the op.
    NoGrad {
        name: &'static str,
    },
}

impl Op {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Op::Input => "input",
            Op::Param(_) => "param",
            Op::MatMul { .. } => "matmul",
            Op::MatMulBias { .. } => "matmul_bias",
            Op::Add { .. } => "add",
            Op::Mul { .. } => "mul",
            Op::Scale { .. } => "scale",
            Op::Reshape { .. } => "reshape",
            Op::Sum { .. } => "sum",
            Op::Mean { .. } => "mean",
            Op::Embedding { .. } => "embedding",
            Op::LayerNorm { .. } => "layer_norm",
            Op::Gelu { .. } => "gelu",
            Op::Tanh { .. } => "tanh",
            Op::Softmax { .. } => "softmax",
            Op::LogSoftmax { .. } => "log_softmax",
            Op::Attention { .. } => "attention",
            Op::Dropout { .. } => "dropout",
            Op::MeanPool { .. } => "mean_pool",
            Op::ClsPool { .. } => "cls_pool",
            Op::L2Normalize { .. } => "l2_normalize",
            Op::CrossEntropy { .. } => "cross_entropy",
            Op::KlDiv { .. } => "kl_div",
            Op::Mse { .. } => "mse",
            Op::Shape(op) => op.name(),
            Op::NoGrad { name, .. } => name,
        }
    }

    /// Saved pooled buffers, returned to the pool when the tape is cleared.
    fn into_saved(self) -> Option<Arc<Vec<f32>>> {
        match self {
            Op::LayerNorm { stats: s, .. }
            | Op::L2Normalize { inv: s, .. }
            | Op::CrossEntropy { probs: s, .. } => Some(s),
            _ => None,
        }
    }
}

pub(crate) struct Node {
    pub value: Tensor,
    pub op: Op,
    pub requires_grad: bool,
}

/// Parameters, a tape and the buffers behind it.
pub struct Graph {
    pub(crate) rt: Runtime,
    pub(crate) params: ParamSet,
    pub(crate) nodes: Vec<Node>,
    pub(crate) grads: Vec<Option<Arc<Vec<f32>>>>,
    pub(crate) pool: BufferPool,
    pub(crate) ids: Vec<u32>,
    pub(crate) seed: u64,
    pub(crate) pass: u64,
    pub(crate) training: bool,
    pub(crate) grad_enabled: bool,
    pub(crate) keep_grads: bool,
}

impl Graph {
    /// An empty graph on a runtime; `seed` keys dropout masks.
    pub fn new(rt: Runtime, seed: u64) -> Graph {
        Graph {
            rt,
            params: ParamSet::new(),
            nodes: Vec::new(),
            grads: Vec::new(),
            pool: BufferPool::new(),
            ids: Vec::new(),
            seed,
            pass: 0,
            training: true,
            grad_enabled: true,
            keep_grads: false,
        }
    }

    pub fn runtime(&self) -> &Runtime {
        &self.rt
    }
    pub fn params(&self) -> &ParamSet {
        &self.params
    }
    /// The parameters, mutable. The tape shares parameter storage, so call
    /// [`Graph::reset`] before writing values.
    pub fn params_mut(&mut self) -> &mut ParamSet {
        &mut self.params
    }
    /// Replaces the parameter set (a freshly built or loaded model).
    pub fn set_params(&mut self, params: ParamSet) {
        self.reset();
        self.params = params;
    }
    /// With gradients disabled (inference), parameter leaves do not
    /// require gradients, so nothing downstream does and backward is a
    /// no-op; parameters may then be read-only (memory-mapped).
    pub fn set_grad_enabled(&mut self, enabled: bool) {
        self.grad_enabled = enabled;
    }
    pub fn is_grad_enabled(&self) -> bool {
        self.grad_enabled
    }
    /// Keeps every node's gradient after backward for [`Graph::grad`]
    /// (debugging); by default a gradient is released once consumed.
    pub fn set_keep_grads(&mut self, keep: bool) {
        self.keep_grads = keep;
    }
    /// Training mode enables dropout.
    pub fn set_training(&mut self, training: bool) {
        self.training = training;
    }
    pub fn is_training(&self) -> bool {
        self.training
    }
    /// The forward-pass counter that keys dropout masks together with the
    /// seed and the node index; [`Graph::reset`] advances it.
    pub fn pass(&self) -> u64 {
        self.pass
    }
    /// Sets the pass counter (replaying a pass with the same masks).
    pub fn set_pass(&mut self, pass: u64) {
        self.pass = pass;
    }
    /// Buffers the pool has created so far (stops growing once warm).
    pub fn pool_buffers_created(&self) -> usize {
        self.pool.created()
    }
    /// Nodes on the tape.
    pub fn tape_len(&self) -> usize {
        self.nodes.len()
    }

    /// Clears the tape, returns its buffers to the pool and advances the
    /// pass counter. Parameters and their gradients are kept.
    pub fn reset(&mut self) {
        for node in self.nodes.drain(..) {
            if !matches!(node.op, Op::Param(_)) {
                if let Some(buf) = node.value.into_arc() {
                    self.pool.give(buf);
                }
            }
            if let Some(s) = node.op.into_saved() {
                self.pool.give(s);
            }
        }
        for g in self.grads.drain(..).flatten() {
            self.pool.give(g);
        }
        self.ids.clear();
        self.pass = self.pass.wrapping_add(1);
    }

    // --- leaves -----------------------------------------------------------

    /// A constant input (copied into a pooled buffer).
    pub fn input(&mut self, t: &Tensor) -> Result<Var> {
        let mut buf = self.pool.take(t.numel());
        let dst = Arc::get_mut(&mut buf).expect("fresh from the pool");
        match t.as_f32() {
            Ok(src) => dst.copy_from_slice(src),
            Err(_) => dst.copy_from_slice(&t.to_vec_f32()?),
        }
        Ok(self.push(Tensor::from_arc(t.shape(), buf), Op::Input, false))
    }

    /// A constant input from a slice and a shape.
    pub fn input_slice(&mut self, dims: &[usize], data: &[f32]) -> Result<Var> {
        let shape = Shape::new(dims)?;
        if shape.numel() != data.len() {
            return Err(Error::ElementCount {
                op: "input",
                shape: dims.to_vec(),
                expected: shape.numel(),
                found: data.len(),
            });
        }
        let mut buf = self.pool.take(data.len());
        Arc::get_mut(&mut buf).expect("fresh from the pool").copy_from_slice(data);
        Ok(self.push(Tensor::from_arc(shape, buf), Op::Input, false))
    }

    /// A parameter leaf; shares the parameter's storage, no copy.
    pub fn param(&mut self, id: ParamId) -> Var {
        let value = self.params.get(id).value.clone();
        let rg = self.grad_enabled;
        self.push(value, Op::Param(id.0), rg)
    }

    /// A parameter leaf by name.
    pub fn param_named(&mut self, name: &str) -> Result<Var> {
        let id = self.params.id(name)?;
        Ok(self.param(id))
    }

    // --- access -----------------------------------------------------------

    pub(crate) fn node(&self, v: Var) -> Result<&Node> {
        self.nodes.get(v.0).ok_or(Error::UnknownVar { index: v.0, len: self.nodes.len() })
    }
    /// The value of a variable.
    pub fn value(&self, v: Var) -> Result<&Tensor> {
        Ok(&self.node(v)?.value)
    }
    /// The dims of a variable.
    pub fn dims(&self, v: Var) -> Result<&[usize]> {
        Ok(self.node(v)?.value.dims())
    }
    /// The name of the op that made a variable.
    pub fn op_name(&self, v: Var) -> Result<&'static str> {
        Ok(self.node(v)?.op.name())
    }
    /// A scalar variable's value.
    pub fn scalar(&self, v: Var) -> Result<f32> {
        let t = self.value(v)?;
        if t.numel() != 1 {
            return Err(Error::NotScalar { op: "scalar", shape: t.dims().to_vec() });
        }
        Ok(t.as_f32()?[0])
    }
    /// The gradient a backward pass left on a non-parameter node: the
    /// output's seed and [`Graph::leaf`] inputs always, other nodes only
    /// with [`Graph::set_keep_grads`]; kept until the next backward or
    /// reset.
    pub fn grad(&self, v: Var) -> Option<&[f32]> {
        self.grads.get(v.0).and_then(|g| g.as_deref().map(|g| g.as_slice()))
    }

    pub(crate) fn push(&mut self, value: Tensor, op: Op, requires_grad: bool) -> Var {
        self.nodes.push(Node { value, op, requires_grad });
        Var(self.nodes.len() - 1)
    }

    /// Pushes an op output built in a pooled buffer.
    pub(crate) fn push_out(&mut self, shape: Shape, buf: Arc<Vec<f32>>, op: Op, rg: bool) -> Var {
        self.push(Tensor::from_arc(shape, buf), op, rg)
    }

    pub(crate) fn rg(&self, i: usize) -> bool {
        self.nodes[i].requires_grad
    }

    pub(crate) fn f32_of(&self, i: usize) -> &[f32] {
        self.nodes[i].value.as_f32().expect("tape values are contiguous f32")
    }

    // --- backward ---------------------------------------------------------

    /// Backward from a scalar output with gradient 1.
    pub fn backward(&mut self, out: Var) -> Result<()> {
        let t = &self.node(out)?.value;
        if t.numel() != 1 {
            return Err(Error::NotScalar { op: "backward", shape: t.dims().to_vec() });
        }
        self.backward_with(out, &[1.0])
    }

    /// Backward from `out` with output gradient `dout` (same element
    /// count). Parameter gradients accumulate; node gradients from an
    /// earlier backward on this tape are discarded first.
    pub fn backward_with(&mut self, out: Var, dout: &[f32]) -> Result<()> {
        let n = self.node(out)?.value.numel();
        if dout.len() != n {
            return Err(Error::ElementCount {
                op: "backward",
                shape: self.nodes[out.0].value.dims().to_vec(),
                expected: n,
                found: dout.len(),
            });
        }
        for g in self.grads.drain(..).flatten() {
            self.pool.give(g);
        }
        self.grads.resize(self.nodes.len(), None);
        let mut seed = self.pool.take(n);
        Arc::get_mut(&mut seed).expect("fresh from the pool").copy_from_slice(dout);
        self.grads[out.0] = Some(seed);
        let rt = self.rt.clone();
        rt.install(|| self.walk(out.0))
    }

    /// Reverse tape order from `top`: a topological order by construction.
    fn walk(&mut self, top: usize) -> Result<()> {
        for i in (0..=top).rev() {
            if !self.nodes[i].requires_grad {
                continue;
            }
            let Some(dy) = self.grads[i].take() else { continue };
            let r = self.backward_node(i, &dy);
            // Gradient-recording leaves (`Graph::leaf`) keep theirs too.
            if i == top || self.keep_grads || matches!(self.nodes[i].op, Op::Input) {
                self.grads[i] = Some(dy);
            } else {
                self.pool.give(dy);
            }
            r?;
        }
        Ok(())
    }

    /// Runs one node's backward rule.
    fn backward_node(&mut self, i: usize, dy: &[f32]) -> Result<()> {
        match self.nodes[i].op {
            Op::Input => Ok(()),
            // Parameter gradients were accumulated in place by their users.
            Op::Param(_) => Ok(()),
            Op::NoGrad { name, .. } => Err(Error::BackwardNotSupported { op: name }),
            _ => ops::backward(self, i, dy),
        }
    }

    /// The gradient buffer of node `i`, created as zeros on first touch.
    /// A parameter node's gradient is the parameter's own, so ops
    /// accumulate straight into it (an embedding backward then touches only
    /// the rows it used).
    pub(crate) fn grad_buf(&mut self, i: usize) -> &mut [f32] {
        grad_slot(&self.nodes, &mut self.grads, &mut self.params, &mut self.pool, i)
    }

    /// Values of node `a` and the gradient of node `b` at once.
    pub(crate) fn value_and_grad(&mut self, a: usize, b: usize) -> (&[f32], &mut [f32]) {
        let g = grad_slot(&self.nodes, &mut self.grads, &mut self.params, &mut self.pool, b);
        (self.nodes[a].value.as_f32().expect("tape values are contiguous f32"), g)
    }

    /// Values of nodes `a` and `c` and the gradient of node `b` at once.
    pub(crate) fn values2_and_grad(
        &mut self,
        a: usize,
        c: usize,
        b: usize,
    ) -> (&[f32], &[f32], &mut [f32]) {
        let g = grad_slot(&self.nodes, &mut self.grads, &mut self.params, &mut self.pool, b);
        let va = self.nodes[a].value.as_f32().expect("tape values are contiguous f32");
        let vc = self.nodes[c].value.as_f32().expect("tape values are contiguous f32");
        (va, vc, g)
    }
}

/// Where node `i`'s gradient accumulates: the parameter's gradient for a
/// parameter leaf, else a pooled buffer made on first touch.
fn grad_slot<'a>(
    nodes: &[Node],
    grads: &'a mut [Option<Arc<Vec<f32>>>],
    params: &'a mut ParamSet,
    pool: &mut BufferPool,
    i: usize,
) -> &'a mut [f32] {
    if let Op::Param(p) = nodes[i].op {
        return &mut params.get_mut(ParamId(p)).grad;
    }
    let n = nodes[i].value.numel();
    let g = grads[i].get_or_insert_with(|| pool.take_zeroed(n));
    Arc::get_mut(g).expect("gradient buffers are not shared").as_mut_slice()
}

/// A gradient buffer lifted out of the graph so that a backward rule can
/// write several gradients at once; [`Graph::release`] puts it back. Moving
/// a `Vec` or an `Arc` out and back does not allocate.
pub(crate) enum Held {
    Node(Arc<Vec<f32>>),
    Param(usize, Vec<f32>),
    /// A zeroed stand-in for an input that needs no gradient.
    Scratch(Arc<Vec<f32>>),
}

impl Held {
    pub(crate) fn as_mut(&mut self) -> &mut [f32] {
        match self {
            Held::Node(a) | Held::Scratch(a) => {
                Arc::get_mut(a).expect("gradient buffers are not shared").as_mut_slice()
            }
            Held::Param(_, v) => v,
        }
    }
}

impl Graph {
    /// Lifts node `i`'s gradient out (made as zeros on first touch), or a
    /// zeroed scratch buffer when `i` needs no gradient.
    pub(crate) fn hold(&mut self, i: usize) -> Held {
        let n = self.nodes[i].value.numel();
        if !self.nodes[i].requires_grad {
            return Held::Scratch(self.pool.take_zeroed(n));
        }
        if let Op::Param(p) = self.nodes[i].op {
            return Held::Param(p, std::mem::take(&mut self.params.get_mut(ParamId(p)).grad));
        }
        Held::Node(self.grads[i].take().unwrap_or_else(|| self.pool.take_zeroed(n)))
    }

    /// Puts back what [`Graph::hold`] lifted.
    pub(crate) fn release(&mut self, i: usize, h: Held) {
        match h {
            Held::Node(a) => self.grads[i] = Some(a),
            Held::Param(p, v) => self.params.get_mut(ParamId(p)).grad = v,
            Held::Scratch(a) => self.pool.give(a),
        }
    }
}
