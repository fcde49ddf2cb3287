//! A one-layer BERT-style encoder and an in-batch InfoNCE loss built from
//! the runtime's ops, shared by the training tests.

#![allow(dead_code)]

use edgecl_runtime::params::is_norm_or_bias;
use edgecl_runtime::{init, Graph, ParamSet, Result, Var};

pub struct Tiny {
    pub vocab: usize,
    pub t: usize,
    pub c: usize,
    pub heads: usize,
    pub ffn: usize,
    pub dropout: f32,
}

pub const TINY: Tiny = Tiny { vocab: 40, t: 6, c: 16, heads: 2, ffn: 32, dropout: 0.1 };

impl Tiny {
    /// Parameters from a seed; each gets its own init stream.
    pub fn params(&self, seed: u64) -> ParamSet {
        let (c, f) = (self.c, self.ffn);
        let mut ps = ParamSet::new();
        let shapes: Vec<(&str, Vec<usize>)> = vec![
            ("tok_emb", vec![self.vocab, c]),
            ("pos_emb", vec![self.t, c]),
            ("emb_norm.gamma", vec![c]),
            ("emb_norm.beta", vec![c]),
            ("attn.wq", vec![c, c]),
            ("attn.wk", vec![c, c]),
            ("attn.wv", vec![c, c]),
            ("attn.wo", vec![c, c]),
            ("attn.bias", vec![c]),
            ("attn_norm.gamma", vec![c]),
            ("attn_norm.beta", vec![c]),
            ("ffn.w1", vec![c, f]),
            ("ffn.b1.bias", vec![f]),
            ("ffn.w2", vec![f, c]),
            ("ffn.b2.bias", vec![c]),
            ("ffn_norm.gamma", vec![c]),
            ("ffn_norm.beta", vec![c]),
        ];
        for (k, (name, dims)) in shapes.into_iter().enumerate() {
            let t = if name.ends_with("gamma") {
                init::constant(&dims, 1.0).unwrap()
            } else if is_norm_or_bias(name) {
                init::constant(&dims, 0.0).unwrap()
            } else {
                init::normal(&dims, 0.2, seed, k as u64).unwrap()
            };
            let decay = !is_norm_or_bias(name) && !name.ends_with("emb");
            ps.add(name, t, decay).unwrap();
        }
        ps
    }

    /// `[B, T]` ids and mask -> L2-normalised mean-pooled `[B, C]`.
    pub fn encode(&self, g: &mut Graph, ids: &[u32], mask: &[f32], b: usize) -> Result<Var> {
        let t = self.t;
        let p = |g: &mut Graph, n: &str| g.param_named(n);
        let tok = p(g, "tok_emb")?;
        let x = g.embedding(tok, ids, &[b, t])?;
        let pos = p(g, "pos_emb")?;
        let x = g.add(x, pos)?;
        let (eg, eb) = (p(g, "emb_norm.gamma")?, p(g, "emb_norm.beta")?);
        let x = g.layer_norm(x, eg, eb, 1e-5)?;
        let x = g.dropout(x, self.dropout)?;
        let m = g.input_slice(&[b, t], mask)?;

        // Attention sublayer.
        let (wq, wk, wv, wo, bo) = (
            p(g, "attn.wq")?,
            p(g, "attn.wk")?,
            p(g, "attn.wv")?,
            p(g, "attn.wo")?,
            p(g, "attn.bias")?,
        );
        let q = g.matmul(x, wq)?;
        let k = g.matmul(x, wk)?;
        let v = g.matmul(x, wv)?;
        let a = g.attention(q, k, v, Some(m), self.heads)?;
        let a = g.matmul(a, wo)?;
        let a = g.add(a, bo)?;
        let a = g.dropout(a, self.dropout)?;
        let x = g.add(x, a)?;
        let (ag, ab) = (p(g, "attn_norm.gamma")?, p(g, "attn_norm.beta")?);
        let x = g.layer_norm(x, ag, ab, 1e-5)?;

        // Feed-forward sublayer.
        let (w1, b1, w2, b2) =
            (p(g, "ffn.w1")?, p(g, "ffn.b1.bias")?, p(g, "ffn.w2")?, p(g, "ffn.b2.bias")?);
        let h = g.matmul(x, w1)?;
        let h = g.add(h, b1)?;
        let h = g.gelu(h)?;
        let h = g.matmul(h, w2)?;
        let h = g.add(h, b2)?;
        let h = g.dropout(h, self.dropout)?;
        let x = g.add(x, h)?;
        let (fg, fb) = (p(g, "ffn_norm.gamma")?, p(g, "ffn_norm.beta")?);
        let x = g.layer_norm(x, fg, fb, 1e-5)?;

        let pooled = g.mean_pool(x, m)?;
        g.l2_normalize(pooled, 1e-6)
    }
}

/// In-batch InfoNCE: row i of `q` should match row i of `d` among all rows.
pub fn info_nce(g: &mut Graph, q: Var, d: Var, tau: f32, targets: &[u32]) -> Result<Var> {
    let s = g.similarity(q, d)?;
    let s = g.scale(s, 1.0 / tau)?;
    g.cross_entropy(s, targets)
}

/// Toy pairs: query i is a random bag of tokens; its document is the same
/// tokens shuffled with one replaced. Some sequences are padded.
pub fn toy_batch(tiny: &Tiny, b: usize, seed: u64) -> (Vec<u32>, Vec<f32>, Vec<u32>, Vec<f32>) {
    let t = tiny.t;
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut qi, mut qm, mut di, mut dm) = (vec![], vec![], vec![], vec![]);
    for row in 0..b {
        let len = t - (row % 3);
        let toks: Vec<u32> = (0..len).map(|_| (next() % tiny.vocab as u64) as u32).collect();
        let mut doc = toks.clone();
        doc.rotate_left(1 + row % 2);
        doc[0] = (next() % tiny.vocab as u64) as u32;
        for j in 0..t {
            qi.push(if j < len { toks[j] } else { 0 });
            qm.push(if j < len { 1.0 } else { 0.0 });
            di.push(if j < len { doc[j] } else { 0 });
            dm.push(if j < len { 1.0 } else { 0.0 });
        }
    }
    (qi, qm, di, dm)
}
