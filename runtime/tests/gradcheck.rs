//! Finite-difference gradient checks for every differentiable op and for a
//! whole transformer block built from them. Sizes are tiny on purpose.

use edgecl_runtime::gradcheck::{check, GradCheck};
use edgecl_runtime::{init, Graph, Result, Tensor, Var};

fn randn(dims: &[usize], stream: u64) -> Tensor {
    init::normal(dims, 1.0, 42, stream).unwrap()
}

fn assert_grads(name: &str, inputs: &[Tensor], f: impl Fn(&mut Graph, &[Var]) -> Result<Var>) {
    assert_grads_with(name, inputs, &GradCheck::default(), f)
}

fn assert_grads_with(
    name: &str,
    inputs: &[Tensor],
    cfg: &GradCheck,
    f: impl Fn(&mut Graph, &[Var]) -> Result<Var>,
) {
    let r = check(inputs, cfg, f).unwrap_or_else(|e| panic!("{name}: {e}"));
    println!("{name}: {} elements, max abs err {:.2e}", r.checked, r.max_abs_err);
    assert!(
        r.ok(),
        "{name}: gradient mismatches (first 5): {:?}",
        &r.mismatches[..r.mismatches.len().min(5)]
    );
}

#[test]
fn matmul_all_layouts() {
    assert_grads("matmul", &[randn(&[3, 4], 1), randn(&[4, 5], 2)], |g, v| g.matmul(v[0], v[1]));
    assert_grads("matmul ta", &[randn(&[4, 3], 1), randn(&[4, 5], 2)], |g, v| {
        g.matmul_t(v[0], v[1], true, false)
    });
    assert_grads("matmul tb", &[randn(&[3, 4], 1), randn(&[5, 4], 2)], |g, v| {
        g.matmul_t(v[0], v[1], false, true)
    });
    assert_grads("matmul ta tb", &[randn(&[4, 3], 1), randn(&[5, 4], 2)], |g, v| {
        g.matmul_t(v[0], v[1], true, true)
    });
    // Shared weight under a batch, and a batch of right operands.
    assert_grads("matmul shared", &[randn(&[2, 3, 4], 1), randn(&[4, 2], 2)], |g, v| {
        g.matmul(v[0], v[1])
    });
    assert_grads("matmul shared ta", &[randn(&[2, 4, 3], 1), randn(&[2, 4], 2)], |g, v| {
        g.matmul_t(v[0], v[1], true, true)
    });
    assert_grads("matmul batched", &[randn(&[2, 3, 4], 1), randn(&[2, 5, 4], 2)], |g, v| {
        g.matmul_t(v[0], v[1], false, true)
    });
    // The same operand on both sides.
    assert_grads("similarity self", &[randn(&[3, 4], 1)], |g, v| g.similarity(v[0], v[0]));
    assert_grads("similarity", &[randn(&[3, 4], 1), randn(&[2, 4], 2)], |g, v| {
        g.similarity(v[0], v[1])
    });
}

#[test]
fn matmul_bias_layouts() {
    // A weight shared by a batch, as the encoder's linear layers use it.
    assert_grads(
        "matmul_bias shared tb",
        &[randn(&[2, 3, 4], 1), randn(&[5, 4], 2), randn(&[5], 3)],
        |g, v| g.matmul_bias(v[0], v[1], v[2], false, true),
    );
    assert_grads("matmul_bias", &[randn(&[3, 4], 1), randn(&[4, 5], 2), randn(&[5], 3)], |g, v| {
        g.matmul_bias(v[0], v[1], v[2], false, false)
    });
    assert_grads(
        "matmul_bias ta batched",
        &[randn(&[2, 4, 3], 1), randn(&[2, 4, 5], 2), randn(&[5], 3)],
        |g, v| g.matmul_bias(v[0], v[1], v[2], true, false),
    );
    // More rows than one block of the bias-gradient partial sums.
    assert_grads(
        "matmul_bias many rows",
        &[randn(&[150, 2], 1), randn(&[3, 2], 2), randn(&[3], 3)],
        |g, v| g.matmul_bias(v[0], v[1], v[2], false, true),
    );
    assert_grads("linear", &[randn(&[3, 4], 1), randn(&[4, 2], 2), randn(&[2], 3)], |g, v| {
        g.linear(v[0], v[1], Some(v[2]))
    });
}

#[test]
fn broadcasting_add_mul() {
    assert_grads("add same", &[randn(&[2, 3], 1), randn(&[2, 3], 2)], |g, v| g.add(v[0], v[1]));
    assert_grads("add bias", &[randn(&[2, 3, 4], 1), randn(&[4], 2)], |g, v| g.add(v[0], v[1]));
    assert_grads("add bias left", &[randn(&[1, 4], 1), randn(&[3, 4], 2)], |g, v| {
        g.add(v[0], v[1])
    });
    assert_grads("add general", &[randn(&[2, 1, 3], 1), randn(&[4, 1], 2)], |g, v| {
        g.add(v[0], v[1])
    });
    assert_grads("mul same", &[randn(&[2, 3], 1), randn(&[2, 3], 2)], |g, v| g.mul(v[0], v[1]));
    assert_grads("mul square", &[randn(&[5], 1)], |g, v| g.mul(v[0], v[0]));
    assert_grads("mul bias", &[randn(&[3, 4], 1), randn(&[4], 2)], |g, v| g.mul(v[0], v[1]));
    assert_grads("mul bias left", &[randn(&[4], 1), randn(&[3, 4], 2)], |g, v| g.mul(v[0], v[1]));
    assert_grads("mul general", &[randn(&[2, 1], 1), randn(&[3, 1, 4], 2)], |g, v| {
        g.mul(v[0], v[1])
    });
}

#[test]
fn shape_and_reduction_ops() {
    assert_grads("scale", &[randn(&[2, 3], 1)], |g, v| g.scale(v[0], -1.7));
    assert_grads("reshape", &[randn(&[2, 3], 1), randn(&[3, 2], 2)], |g, v| {
        let r = g.reshape(v[0], &[3, 2])?;
        g.mul(r, v[1])
    });
    assert_grads("sum", &[randn(&[2, 3], 1)], |g, v| g.sum(v[0]));
    assert_grads("mean", &[randn(&[2, 3], 1)], |g, v| g.mean(v[0]));
}

#[test]
fn activations_and_norms() {
    assert_grads("gelu", &[randn(&[3, 5], 1)], |g, v| g.gelu(v[0]));
    assert_grads("softmax", &[randn(&[3, 5], 1)], |g, v| g.softmax(v[0]));
    assert_grads("log_softmax", &[randn(&[3, 5], 1)], |g, v| g.log_softmax(v[0]));
    assert_grads("layer_norm", &[randn(&[2, 3, 6], 1), randn(&[6], 2), randn(&[6], 3)], |g, v| {
        g.layer_norm(v[0], v[1], v[2], 1e-5)
    });
    // More rows than one parallel block of the backward.
    assert_grads(
        "layer_norm blocks",
        &[randn(&[70, 3], 4), randn(&[3], 5), randn(&[3], 6)],
        |g, v| g.layer_norm(v[0], v[1], v[2], 1e-5),
    );
    assert_grads("l2_normalize", &[randn(&[3, 4], 1)], |g, v| g.l2_normalize(v[0], 1e-6));
    assert_grads("dropout", &[randn(&[4, 6], 1)], |g, v| g.dropout(v[0], 0.3));
}

#[test]
fn gathers_and_pooling() {
    // Ids repeat, so the scatter-add must accumulate.
    let ids = [3u32, 0, 3, 1, 4, 3];
    assert_grads("embedding", &[randn(&[6, 4], 1)], |g, v| g.embedding(v[0], &ids, &[2, 3]));
    let mask = [1.0f32, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0];
    assert_grads("mean_pool", &[randn(&[2, 4, 3], 1)], |g, v| {
        let m = g.input_slice(&[2, 4], &mask)?;
        g.mean_pool(v[0], m)
    });
    assert_grads("cls_pool", &[randn(&[2, 4, 3], 1)], |g, v| g.cls_pool(v[0]));
}

#[test]
fn attention_with_padding() {
    // B = 2, T = 4, C = 6, H = 2; the second sequence has two padded keys.
    let mask = [1.0f32, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0];
    let inputs = [randn(&[2, 4, 6], 1), randn(&[2, 4, 6], 2), randn(&[2, 4, 6], 3)];
    assert_grads("attention", &inputs, |g, v| {
        let m = g.input_slice(&[2, 4], &mask)?;
        g.attention(v[0], v[1], v[2], Some(m), 2)
    });
    assert_grads("attention self, no mask", &inputs[..1], |g, v| {
        g.attention(v[0], v[0], v[0], None, 3)
    });
}

#[test]
fn losses() {
    let targets = [2u32, 0, 4];
    assert_grads("cross_entropy", &[randn(&[3, 5], 1)], |g, v| g.cross_entropy(v[0], &targets));
    assert_grads("kl_div", &[randn(&[3, 5], 1), randn(&[3, 5], 2)], |g, v| {
        let p = g.log_softmax(v[0])?;
        let q = g.log_softmax(v[1])?;
        g.kl_div(p, q)
    });
    assert_grads("mse", &[randn(&[3, 4], 1), randn(&[3, 4], 2)], |g, v| g.mse(v[0], v[1]));
}

/// Pre-norm-free BERT-style block: attention + residual + layer norm, then
/// GELU feed-forward + residual + layer norm, all from the ops above.
#[test]
fn transformer_block() {
    let (b, t, c, f, h) = (2, 3, 4, 8, 2);
    let s = |dims: &[usize], k| init::normal(dims, 0.5, 9, k).unwrap();
    let inputs = vec![
        randn(&[b, t, c], 0), // x
        s(&[c, c], 1),        // wq
        s(&[c, c], 2),        // wk
        s(&[c, c], 3),        // wv
        s(&[c, c], 4),        // wo
        s(&[c], 5),           // bo
        init::constant(&[c], 1.0).unwrap(),
        s(&[c], 6), // ln1
        s(&[c, f], 7),
        s(&[f], 8),
        s(&[f, c], 9),
        s(&[c], 10), // ffn
        init::constant(&[c], 1.0).unwrap(),
        s(&[c], 11), // ln2
    ];
    let mask = [1.0f32, 1.0, 1.0, 1.0, 1.0, 0.0];
    let cfg = GradCheck { atol: 3e-3, rtol: 3e-2, ..GradCheck::default() };
    assert_grads_with("transformer block", &inputs, &cfg, |g, v| {
        let m = g.input_slice(&[b, t], &mask)?;
        let q = g.matmul(v[0], v[1])?;
        let k = g.matmul(v[0], v[2])?;
        let vv = g.matmul(v[0], v[3])?;
        let a = g.attention(q, k, vv, Some(m), h)?;
        let o = g.matmul(a, v[4])?;
        let o = g.add(o, v[5])?;
        let r = g.add(v[0], o)?;
        let x1 = g.layer_norm(r, v[6], v[7], 1e-5)?;
        let u = g.matmul(x1, v[8])?;
        let u = g.add(u, v[9])?;
        let u = g.gelu(u)?;
        let d = g.matmul(u, v[10])?;
        let d = g.add(d, v[11])?;
        let r2 = g.add(x1, d)?;
        g.layer_norm(r2, v[12], v[13], 1e-5)
    });
}
