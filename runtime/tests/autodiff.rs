//! Closed-form gradient cases and the autodiff error paths.

use edgecl_runtime::{Error, Graph, ParamSet, Runtime, Tensor};

fn graph_with(params: &[(&str, &[usize], Vec<f32>)]) -> Graph {
    let mut ps = ParamSet::new();
    for (n, d, v) in params {
        ps.add(n, Tensor::from_vec(d, v.clone()).unwrap(), true).unwrap();
    }
    let mut g = Graph::new(Runtime::new(1).unwrap(), 0);
    g.set_params(ps);
    g
}

#[test]
fn square_sum_and_accumulation() {
    // L = sum(x * x)  =>  dL/dx = 2x.
    let mut g = graph_with(&[("x", &[3], vec![1.0, -2.0, 0.5])]);
    for round in 1..=2 {
        let x = g.param_named("x").unwrap();
        let y = g.mul(x, x).unwrap();
        let l = g.sum(y).unwrap();
        assert_eq!(g.scalar(l).unwrap(), 5.25);
        g.backward(l).unwrap();
        g.reset();
        // Gradients accumulate across backward passes until zero_grad.
        let want: Vec<f32> = [2.0, -4.0, 1.0].iter().map(|v| v * round as f32).collect();
        assert_eq!(g.params().get(g.params().id("x").unwrap()).grad(), &want[..]);
    }
    g.params_mut().zero_grad();
    assert!(g.params().iter().all(|p| p.grad().iter().all(|&v| v == 0.0)));
}

#[test]
fn matmul_bias_mean() {
    // L = mean(x @ w + b) with x = [[1, 2]], w = [[3], [4]], b = [5]:
    // value 1*3 + 2*4 + 5 = 16; dL/dw = x^T = [1, 2]; dL/db = 1.
    let mut g = graph_with(&[("w", &[2, 1], vec![3.0, 4.0]), ("b", &[1], vec![5.0])]);
    let x = g.input_slice(&[1, 2], &[1.0, 2.0]).unwrap();
    let w = g.param_named("w").unwrap();
    let b = g.param_named("b").unwrap();
    let y = g.matmul(x, w).unwrap();
    let y = g.add(y, b).unwrap();
    let l = g.mean(y).unwrap();
    assert_eq!(g.scalar(l).unwrap(), 16.0);
    g.backward(l).unwrap();
    let ps = g.params();
    assert_eq!(ps.get(ps.id("w").unwrap()).grad(), &[1.0, 2.0]);
    assert_eq!(ps.get(ps.id("b").unwrap()).grad(), &[1.0]);
    // Constant inputs get no gradient buffer.
    assert!(g.grad(x).is_none());
}

#[test]
fn fused_matmul_bias_matches_closed_form_and_checks_bias_shape() {
    // y = x @ w^T + b over two rows: x = [[1, 2], [3, 4]], w = [[1, 1]],
    // b = [10] give y = [13, 17]; L = sum(y) so dL/dw = column sums of x
    // = [4, 6] and dL/db = 2 (one per row).
    let mut g = graph_with(&[("w", &[1, 2], vec![1.0, 1.0]), ("b", &[1], vec![10.0])]);
    let x = g.input_slice(&[2, 2], &[1.0, 2.0, 3.0, 4.0]).unwrap();
    let w = g.param_named("w").unwrap();
    let b = g.param_named("b").unwrap();
    let y = g.matmul_bias(x, w, b, false, true).unwrap();
    assert_eq!(g.op_name(y).unwrap(), "matmul_bias");
    assert_eq!(g.value(y).unwrap().as_f32().unwrap(), &[13.0, 17.0]);
    let l = g.sum(y).unwrap();
    g.backward(l).unwrap();
    let ps = g.params();
    assert_eq!(ps.get(ps.id("w").unwrap()).grad(), &[4.0, 6.0]);
    assert_eq!(ps.get(ps.id("b").unwrap()).grad(), &[2.0]);
    // The bias must be one row of the output's width.
    let wide = g.input_slice(&[2], &[0.0, 0.0]).unwrap();
    let e = g.matmul_bias(x, w, wide, false, true).unwrap_err();
    assert!(matches!(e, Error::ShapeMismatch { op: "matmul_bias", .. }), "{e}");
}

#[test]
fn dropout_backward_regenerates_the_forward_mask() {
    // With x = 1 everywhere the output is the mask itself (0 or 1/(1-p)),
    // and with dy = 1 so is dx; several parallel chunks of elements.
    let n = 3 * 4096 + 77;
    let p = 0.25;
    let mut g = graph_with(&[("x", &[n], vec![1.0; n])]);
    let x = g.param_named("x").unwrap();
    let y = g.dropout(x, p).unwrap();
    let l = g.sum(y).unwrap();
    let out = g.value(y).unwrap().as_f32().unwrap().to_vec();
    g.backward(l).unwrap();
    let ps = g.params();
    assert_eq!(ps.get(ps.id("x").unwrap()).grad(), &out[..]);
    let keep = 1.0 / (1.0 - p);
    assert!(out.iter().all(|&v| v == 0.0 || v == keep));
    let dropped = out.iter().filter(|&&v| v == 0.0).count() as f32 / n as f32;
    assert!((dropped - p).abs() < 0.02, "dropped fraction {dropped}");
}

#[test]
fn embedding_grad_touches_only_used_rows() {
    let mut g = graph_with(&[("e", &[4, 2], vec![1.0; 8])]);
    let e = g.param_named("e").unwrap();
    let x = g.embedding(e, &[2, 2, 0], &[3]).unwrap();
    let l = g.sum(x).unwrap();
    g.backward(l).unwrap();
    let ps = g.params();
    // Row 2 used twice, row 0 once, rows 1 and 3 untouched.
    assert_eq!(ps.get(ps.id("e").unwrap()).grad(), &[1.0, 1.0, 0.0, 0.0, 2.0, 2.0, 0.0, 0.0]);
}

#[test]
fn typed_errors() {
    let mut g = graph_with(&[("x", &[2, 3], vec![0.5; 6])]);
    let x = g.param_named("x").unwrap();

    // A missing backward names the op.
    let am = g.argmax(x).unwrap();
    let l = g.sum(am).unwrap();
    let e = g.backward(l).unwrap_err();
    assert!(matches!(e, Error::BackwardNotSupported { op: "argmax" }), "{e}");
    assert_eq!(e.to_string(), "backward not supported for op argmax");

    // Non-scalar backward without an output gradient.
    let e = g.backward(x).unwrap_err();
    assert!(matches!(e, Error::NotScalar { .. }), "{e}");

    // Shape errors name the op and both shapes.
    let y = g.input_slice(&[4], &[0.0; 4]).unwrap();
    let e = g.add(x, y).unwrap_err();
    assert_eq!(e.to_string(), "add: shapes [2, 3] and [4] do not match");
    let e = g.matmul(x, x).unwrap_err();
    assert!(e.to_string().starts_with("matmul: shapes"), "{e}");
    let e = g.embedding(x, &[7], &[1]).unwrap_err();
    assert_eq!(e.to_string(), "embedding: index 7 out of range (bound 2)");
    let e = g.cross_entropy(x, &[0]).unwrap_err();
    assert!(matches!(e, Error::ElementCount { .. }), "{e}");
    let e = g.attention(x, x, x, None, 2).unwrap_err();
    assert!(matches!(e, Error::BadShape { .. }), "{e}");
    let e = g.dropout(x, 1.0).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument { .. }), "{e}");

    // A var from a cleared tape.
    g.reset();
    let e = g.value(x).unwrap_err();
    assert!(matches!(e, Error::UnknownVar { .. }), "{e}");

    // Gradient into an attention mask is refused, naming the op.
    let mut g =
        graph_with(&[("q", &[1, 2, 2], vec![0.1, 0.2, 0.3, 0.4]), ("m", &[1, 2], vec![1.0, 1.0])]);
    let q = g.param_named("q").unwrap();
    let m = g.param_named("m").unwrap();
    let a = g.attention(q, q, q, Some(m), 1).unwrap();
    let l = g.sum(a).unwrap();
    let e = g.backward(l).unwrap_err();
    assert!(
        matches!(e, Error::BackwardNotSupported { op: "attention (gradient into the mask)" }),
        "{e}"
    );
}

#[test]
fn attention_fully_masked_row_is_zero_and_eval_skips_dropout() {
    let mut g = graph_with(&[("q", &[2, 2, 2], (0..8).map(|v| v as f32 * 0.1).collect())]);
    let q = g.param_named("q").unwrap();
    let m = g.input_slice(&[2, 2], &[1.0, 1.0, 0.0, 0.0]).unwrap();
    let a = g.attention(q, q, q, Some(m), 2).unwrap();
    let out = g.value(a).unwrap().as_f32().unwrap();
    assert!(out[..4].iter().all(|v| v.is_finite() && *v != 0.0));
    assert_eq!(&out[4..], &[0.0; 4]);
    g.set_training(false);
    let d = g.dropout(q, 0.5).unwrap();
    assert_eq!(d, q);
}

#[test]
fn intermediate_grads_released_unless_kept() {
    // y = 3x, L = sum(y): dL/dy = 1, dL/dx = 3.
    for keep in [false, true] {
        let mut g = graph_with(&[("x", &[2], vec![1.0, 2.0])]);
        g.set_keep_grads(keep);
        let x = g.param_named("x").unwrap();
        let y = g.scale(x, 3.0).unwrap();
        let l = g.sum(y).unwrap();
        g.backward(l).unwrap();
        assert_eq!(g.grad(l), Some(&[1.0][..]));
        assert_eq!(g.grad(y).map(|v| v.to_vec()), keep.then(|| vec![1.0, 1.0]));
        let ps = g.params();
        assert_eq!(ps.get(ps.id("x").unwrap()).grad(), &[3.0, 3.0]);
    }
}
