//! The BERT-style encoder's forward pass, written once over graph ops so
//! the same code trains (backward through the tape) and embeds (with
//! gradients off).
//!
//! Shapes, with B rows, T positions, C = hidden, F = intermediate, H heads:
//!
//! ```text
//! x   = LN(word[ids] + pos[0..T] + type[type_ids])                [B, T, C]
//! per layer (post-norm, BERT):
//!   a = Wo attention(Wq x, Wk x, Wv x, mask, H)                   [B, T, C]
//!   x = LN1(x + drop(a))
//!   x = LN2(x + drop(W2 gelu(W1 x)))                 W1: [F, C], W2: [C, F]
//! per layer (pre-norm):
//!   x = x + drop(Wo attention(Wq y, Wk y, Wv y)),  y = LN1(x)
//!   x = x + drop(W2 gelu(W1 LN2(x)))
//!   and one final LN after the last layer
//! pooled = mean over the mask, or x[:, 0]                         [B, C]
//! out    = normalize(P pooled + p)  (projection and norm optional)
//! ```
//!
//! Linear weights are kept `[out, in]` as checkpoints store them and fed to
//! `matmul_t` transposed, so loading never copies or transposes. Parameters
//! are bound by position in [`EncoderConfig::param_names`] order (checked by
//! name, a string compare, with a hash lookup only as a fallback), so a
//! forward pass does no per-op name formatting.
//!
//! Left out: dropout on the attention probabilities (the fused attention op
//! has no dropout inside; hidden-state dropout after the attention output,
//! after the FFN and after the embeddings is applied), relative position
//! embeddings and activations other than the erf GELU (the config refuses
//! them).

use crate::autodiff::{Graph, Var};
use crate::encoder::batch::TokenBatch;
use crate::encoder::config::{EncoderConfig, NormPlacement, Pooling};
use crate::error::{Error, Result};
use crate::init;
use crate::params::{ParamId, ParamSet};

/// Parameters per transformer layer in `param_names` order.
const PER_LAYER: usize = 16;
/// The embedding block's parameters before the first layer.
const EMBED: usize = 5;

// Offsets inside one layer's block of `PER_LAYER` parameters.
const Q: usize = 0;
const K: usize = 2;
const V: usize = 4;
const ATT_OUT: usize = 6;
const FFN_IN: usize = 8;
const FFN_OUT: usize = 10;
const LN1: usize = 12;
const LN2: usize = 14;

/// L2 normalisation floor, as `torch.nn.functional.normalize`.
const NORM_EPS: f32 = 1e-12;

/// A BERT-style encoder: config, dropout rate and the bookkeeping to bind
/// its parameters quickly. Holds no weights; those live in a [`ParamSet`]
/// installed in the graph.
#[derive(Clone, Debug)]
pub struct Encoder {
    config: EncoderConfig,
    dropout: f32,
    names: Vec<(String, Vec<usize>)>,
    positions: Vec<u32>,
}

impl Encoder {
    /// An encoder for a validated config, with BERT's dropout of 0.1.
    pub fn new(config: EncoderConfig) -> Result<Encoder> {
        config.validate()?;
        let names = config.param_names();
        let positions = (0..config.max_position_embeddings as u32).collect();
        Ok(Encoder { config, dropout: 0.1, names, positions })
    }

    /// Sets the hidden-state dropout probability used in training mode. A
    /// value outside `[0, 1)` is refused by the first forward pass.
    pub fn with_dropout(mut self, p: f32) -> Encoder {
        self.dropout = p;
        self
    }

    pub fn dropout(&self) -> f32 {
        self.dropout
    }

    pub fn config(&self) -> &EncoderConfig {
        &self.config
    }

    /// Names and shapes of every parameter, in binding order.
    pub fn param_names(&self) -> &[(String, Vec<usize>)] {
        &self.names
    }

    /// Fresh parameters, BERT's recipe: matrices and embedding tables from
    /// N(0, 0.02), biases zero, layer-norm gains one. Each parameter draws
    /// from its own stream (its index), so the result depends only on the
    /// seed. Matrices and tables get weight decay; gains and biases do not.
    pub fn init_params(&self, seed: u64) -> Result<ParamSet> {
        init_named(&self.names, "", seed, 0)
    }

    /// Looks up this encoder's parameters in `ps`, each name carrying
    /// `prefix` (`""`, or `"bert."` inside a classification model), checking
    /// shapes. Parameters in `param_names` order at the start of the set
    /// are found by position.
    pub fn param_ids(&self, ps: &ParamSet, prefix: &str) -> Result<Vec<ParamId>> {
        let mut ids = Vec::with_capacity(self.names.len());
        for (i, (name, dims)) in self.names.iter().enumerate() {
            let by_pos = (i < ps.len())
                .then_some(ParamId(i))
                .filter(|&id| ps.get(id).name().strip_prefix(prefix) == Some(name.as_str()));
            let id = match by_pos {
                Some(id) => id,
                None => ps.id(&format!("{prefix}{name}"))?,
            };
            let have = ps.get(id).value().dims();
            if have != dims.as_slice() {
                return Err(Error::InvalidArgument {
                    op: "encoder parameters",
                    what: format!("{prefix}{name} has shape {have:?}, the config needs {dims:?}"),
                });
            }
            ids.push(id);
        }
        Ok(ids)
    }

    /// Puts this encoder's parameters on the tape as leaves, in
    /// `param_names` order.
    pub fn bind(&self, g: &mut Graph, prefix: &str) -> Result<Vec<Var>> {
        let ids = self.param_ids(g.params(), prefix)?;
        Ok(ids.into_iter().map(|id| g.param(id)).collect())
    }

    /// Token states `[B, T, hidden]` (after the final norm of a pre-norm
    /// model). The parameters must be in `g` (see [`Graph::set_params`]).
    pub fn token_states(&self, g: &mut Graph, batch: &TokenBatch) -> Result<Var> {
        let p = self.bind(g, "")?;
        let mask = self.mask_input(g, batch)?;
        self.token_states_with(g, &p, batch, mask)
    }

    /// Pooled, projected (if configured) and normalised (if configured)
    /// embeddings `[B, embedding_dim]`.
    pub fn forward(&self, g: &mut Graph, batch: &TokenBatch) -> Result<Var> {
        let p = self.bind(g, "")?;
        self.forward_with(g, &p, batch)
    }

    /// [`Encoder::forward`] over parameter leaves already on the tape, in
    /// `param_names` order (from [`Encoder::bind`], or any vars of the
    /// right shapes, as a gradient check passes).
    pub fn forward_with(&self, g: &mut Graph, p: &[Var], batch: &TokenBatch) -> Result<Var> {
        let mask = self.mask_input(g, batch)?;
        let x = self.token_states_with(g, p, batch, mask)?;
        let mut y = match self.config.pooling {
            Pooling::Mean => g.mean_pool(x, mask)?,
            Pooling::Cls => g.cls_pool(x)?,
        };
        if self.config.projection_dim.is_some() {
            let at = self.names.len() - 2;
            y = linear(g, y, p[at], p[at + 1])?;
        }
        if self.config.normalize {
            y = g.l2_normalize(y, NORM_EPS)?;
        }
        Ok(y)
    }

    /// The attention mask `[B, T]` as a graph input, after checking the
    /// batch against the config.
    pub fn mask_input(&self, g: &mut Graph, batch: &TokenBatch) -> Result<Var> {
        batch.validate()?;
        if batch.seq > self.config.max_position_embeddings {
            return Err(Error::InvalidArgument {
                op: "encoder forward",
                what: format!(
                    "sequence length {} exceeds max_position_embeddings {}",
                    batch.seq, self.config.max_position_embeddings
                ),
            });
        }
        g.input_slice(&[batch.batch, batch.seq], &batch.mask)
    }

    /// The transformer over bound parameters `p` and a mask from
    /// [`Encoder::mask_input`]: token states `[B, T, hidden]`.
    pub fn token_states_with(
        &self,
        g: &mut Graph,
        p: &[Var],
        batch: &TokenBatch,
        mask: Var,
    ) -> Result<Var> {
        if p.len() != self.names.len() {
            return Err(Error::InvalidArgument {
                op: "encoder forward",
                what: format!("{} parameter vars for {} parameters", p.len(), self.names.len()),
            });
        }
        let cfg = &self.config;
        let (b, t) = (batch.batch, batch.seq);
        let eps = cfg.layer_norm_eps;
        let drop = self.dropout;

        // Embeddings: word [B, T, C] + position [T, C] (broadcast) + type.
        let word = g.embedding(p[0], &batch.ids, &[b, t])?;
        let pos = g.embedding(p[1], &self.positions[..t], &[t])?;
        let typ = g.embedding(p[2], &batch.type_ids, &[b, t])?;
        let x = g.add(word, pos)?;
        let x = g.add(x, typ)?;
        let x = g.layer_norm(x, p[3], p[4], eps)?;
        let mut x = g.dropout(x, drop)?;

        // Transformer layers.
        for l in 0..cfg.num_layers {
            let w = &p[EMBED + l * PER_LAYER..EMBED + (l + 1) * PER_LAYER];
            x = match cfg.norm {
                NormPlacement::Post => {
                    let a = self.attention_block(g, w, x, mask)?;
                    let a = g.dropout(a, drop)?;
                    let s = g.add(x, a)?;
                    let x = g.layer_norm(s, w[LN1], w[LN1 + 1], eps)?;
                    let f = feed_forward(g, w, x)?;
                    let f = g.dropout(f, drop)?;
                    let s = g.add(x, f)?;
                    g.layer_norm(s, w[LN2], w[LN2 + 1], eps)?
                }
                NormPlacement::Pre => {
                    let y = g.layer_norm(x, w[LN1], w[LN1 + 1], eps)?;
                    let a = self.attention_block(g, w, y, mask)?;
                    let a = g.dropout(a, drop)?;
                    let x = g.add(x, a)?;
                    let y = g.layer_norm(x, w[LN2], w[LN2 + 1], eps)?;
                    let f = feed_forward(g, w, y)?;
                    let f = g.dropout(f, drop)?;
                    g.add(x, f)?
                }
            };
        }

        // Pre-norm models end with one more layer norm.
        if cfg.norm == NormPlacement::Pre {
            let at = EMBED + cfg.num_layers * PER_LAYER;
            x = g.layer_norm(x, p[at], p[at + 1], eps)?;
        }
        Ok(x)
    }

    /// `Wo attention(Wq x + bq, Wk x + bk, Wv x + bv) + bo`.
    fn attention_block(&self, g: &mut Graph, w: &[Var], x: Var, mask: Var) -> Result<Var> {
        let q = linear(g, x, w[Q], w[Q + 1])?;
        let k = linear(g, x, w[K], w[K + 1])?;
        let v = linear(g, x, w[V], w[V + 1])?;
        let a = g.attention(q, k, v, Some(mask), self.config.num_heads)?;
        linear(g, a, w[ATT_OUT], w[ATT_OUT + 1])
    }
}

/// `W2 gelu(W1 x + b1) + b2`.
fn feed_forward(g: &mut Graph, w: &[Var], x: Var) -> Result<Var> {
    let h = linear(g, x, w[FFN_IN], w[FFN_IN + 1])?;
    let h = g.gelu(h)?;
    linear(g, h, w[FFN_OUT], w[FFN_OUT + 1])
}

/// `x W^T + b` with a checkpoint-layout weight `[out, in]`, one node.
pub(crate) fn linear(g: &mut Graph, x: Var, w: Var, b: Var) -> Result<Var> {
    g.matmul_bias(x, w, b, false, true)
}

/// BERT initialisation of named parameters, each registered as
/// `prefix + name`; parameter `i` draws from stream `stream0 + i`.
pub(crate) fn init_named(
    names: &[(String, Vec<usize>)],
    prefix: &str,
    seed: u64,
    stream0: u64,
) -> Result<ParamSet> {
    let mut ps = ParamSet::new();
    add_init(&mut ps, names, prefix, seed, stream0)?;
    Ok(ps)
}

/// Appends BERT-initialised parameters to `ps` (see [`init_named`]).
pub(crate) fn add_init(
    ps: &mut ParamSet,
    names: &[(String, Vec<usize>)],
    prefix: &str,
    seed: u64,
    stream0: u64,
) -> Result<()> {
    for (i, (name, dims)) in names.iter().enumerate() {
        let matrix = dims.len() == 2;
        let value = if matrix {
            init::normal(dims, 0.02, seed, stream0 + i as u64)?
        } else if name.ends_with(".bias") {
            init::constant(dims, 0.0)?
        } else {
            init::constant(dims, 1.0)?
        };
        ps.add(&format!("{prefix}{name}"), value, matrix)?;
    }
    Ok(())
}
