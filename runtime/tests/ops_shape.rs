//! Forward values and finite-difference gradient checks for the row and
//! column plumbing and the loss pointwise ops in `ops::shape`.

use edgecl_runtime::gradcheck::{check, GradCheck};
use edgecl_runtime::{init, Error, Graph, Result, Runtime, Tensor, Var};

fn randn(dims: &[usize], stream: u64) -> Tensor {
    init::normal(dims, 1.0, 42, stream).unwrap()
}

fn assert_grads(name: &str, inputs: &[Tensor], f: impl Fn(&mut Graph, &[Var]) -> Result<Var>) {
    let r = check(inputs, &GradCheck::default(), f).unwrap_or_else(|e| panic!("{name}: {e}"));
    println!("{name}: {} elements, max abs err {:.2e}", r.checked, r.max_abs_err);
    assert!(
        r.ok(),
        "{name}: gradient mismatches (first 5): {:?}",
        &r.mismatches[..r.mismatches.len().min(5)]
    );
}

fn graph() -> Graph {
    Graph::new(Runtime::new(1).unwrap(), 1)
}

fn values(g: &Graph, v: Var) -> Vec<f32> {
    g.value(v).unwrap().as_f32().unwrap().to_vec()
}

#[test]
fn concat_and_narrow_forward() {
    let mut g = graph();
    let a = g.input_slice(&[1, 2], &[1.0, 2.0]).unwrap();
    let b = g.input_slice(&[2, 2], &[3.0, 4.0, 5.0, 6.0]).unwrap();
    let r = g.concat_rows(&[a, b]).unwrap();
    assert_eq!(g.dims(r).unwrap(), [3, 2]);
    assert_eq!(values(&g, r), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);

    // [2, 2] beside [2, 1]: each row of the output joins the parts' rows.
    let c = g.input_slice(&[2, 1], &[7.0, 8.0]).unwrap();
    let cc = g.concat_cols(&[b, c]).unwrap();
    assert_eq!(g.dims(cc).unwrap(), [2, 3]);
    assert_eq!(values(&g, cc), [3.0, 4.0, 7.0, 5.0, 6.0, 8.0]);

    let n = g.narrow_rows(r, 1, 2).unwrap();
    assert_eq!(values(&g, n), [3.0, 4.0, 5.0, 6.0]);
    let t = g.transpose2d(cc).unwrap();
    assert_eq!(g.dims(t).unwrap(), [3, 2]);
    assert_eq!(values(&g, t), [3.0, 5.0, 4.0, 6.0, 7.0, 8.0]);
}

#[test]
fn shape_errors_are_typed() {
    let mut g = graph();
    let a = g.input_slice(&[2, 2], &[0.0; 4]).unwrap();
    let b = g.input_slice(&[2, 3], &[0.0; 6]).unwrap();
    assert!(matches!(g.concat_rows(&[a, b]), Err(Error::ShapeMismatch { .. })));
    assert!(matches!(g.concat_rows(&[]), Err(Error::InvalidArgument { .. })));
    let c = g.input_slice(&[3, 2], &[0.0; 6]).unwrap();
    assert!(matches!(g.concat_cols(&[a, c]), Err(Error::ShapeMismatch { .. })));
    assert!(matches!(g.narrow_rows(a, 1, 2), Err(Error::IndexOutOfRange { .. })));
    assert!(matches!(g.narrow_rows(a, usize::MAX, 2), Err(Error::IndexOutOfRange { .. })));
    assert!(matches!(g.log(a), Err(Error::InvalidArgument { .. })));
    assert!(matches!(g.clamp(a, 1.0, 0.0), Err(Error::InvalidArgument { .. })));
    assert!(matches!(g.scale_by(a, b), Err(Error::BadShape { .. })));
    assert!(matches!(g.bce_with_logits(a, b), Err(Error::ShapeMismatch { .. })));
}

#[test]
fn pointwise_forward() {
    let mut g = graph();
    let x = g.input_slice(&[4], &[-100.0, -1.0, 0.0, 2.0]).unwrap();
    let s = g.sigmoid(x).unwrap();
    let sv = values(&g, s);
    assert_eq!(sv[0], (-100.0f32).exp() / (1.0 + (-100.0f32).exp()));
    assert!((sv[2] - 0.5).abs() < 1e-7);
    assert!((sv[3] - 1.0 / (1.0 + (-2.0f32).exp())).abs() < 1e-7);
    let c = g.clamp(x, -1.5, 1.0).unwrap();
    assert_eq!(values(&g, c), [-1.5, -1.0, 0.0, 1.0]);
    let e = g.exp(c).unwrap();
    let l = g.log(e).unwrap();
    for (a, b) in values(&g, l).iter().zip([-1.5, -1.0, 0.0, 1.0]) {
        assert!((a - b).abs() < 1e-6);
    }
}

#[test]
fn bce_with_logits_matches_the_naive_formula() {
    let mut g = graph();
    let xs = [-3.0f32, -0.5, 0.0, 0.7, 4.0, 1.5];
    let ys = [0.0f32, 1.0, 0.5, 1.0, 0.0, 0.2];
    let x = g.input_slice(&[2, 3], &xs).unwrap();
    let y = g.input_slice(&[2, 3], &ys).unwrap();
    let l = g.bce_with_logits(x, y).unwrap();
    let naive: f64 = xs
        .iter()
        .zip(&ys)
        .map(|(&x, &y)| {
            let p = 1.0 / (1.0 + (-x as f64).exp());
            -(y as f64 * p.ln() + (1.0 - y as f64) * (1.0 - p).ln())
        })
        .sum::<f64>()
        / 6.0;
    assert!((g.scalar(l).unwrap() as f64 - naive).abs() < 1e-6);
    // Large logits stay finite where the naive form would take ln(0).
    let big = g.input_slice(&[2], &[200.0, -200.0]).unwrap();
    let t = g.input_slice(&[2], &[0.0, 1.0]).unwrap();
    let l = g.bce_with_logits(big, t).unwrap();
    assert!((g.scalar(l).unwrap() - 200.0).abs() < 1e-3);
}

#[test]
fn leaf_records_its_gradient() {
    let mut g = graph();
    let x = g.leaf(&[3], &[1.0, 2.0, 3.0]).unwrap();
    let s = g.scale(x, 2.0).unwrap();
    let out = g.sum(s).unwrap();
    g.backward(out).unwrap();
    // d/dx sum(2x) = 2 everywhere; the intermediate's gradient is released.
    assert_eq!(g.grad(x).unwrap(), [2.0, 2.0, 2.0]);
    assert!(g.grad(s).is_none());

    // With gradients disabled a leaf is a plain constant.
    g.reset();
    g.set_grad_enabled(false);
    let x = g.leaf(&[1], &[1.0]).unwrap();
    let out = g.sum(x).unwrap();
    g.backward(out).unwrap();
    assert!(g.grad(x).is_none());
}

#[test]
fn gradcheck_concat_narrow_transpose() {
    assert_grads("concat_rows", &[randn(&[2, 3], 1), randn(&[3, 3], 2)], |g, v| {
        g.concat_rows(&[v[0], v[1], v[0]])
    });
    assert_grads("concat_cols", &[randn(&[3, 2], 1), randn(&[3, 4], 2)], |g, v| {
        g.concat_cols(&[v[1], v[0]])
    });
    assert_grads("narrow_rows", &[randn(&[5, 2, 3], 1)], |g, v| g.narrow_rows(v[0], 1, 3));
    assert_grads("transpose2d", &[randn(&[3, 4], 1)], |g, v| g.transpose2d(v[0]));
    // A mix with a constant part, as a batch plus memory-bank rows.
    assert_grads("concat with constant", &[randn(&[2, 3], 1)], |g, v| {
        let bank = g.input_slice(&[2, 3], &[0.5, -0.5, 1.0, 0.0, 2.0, -1.0])?;
        let all = g.concat_rows(&[v[0], bank])?;
        g.similarity(v[0], all)
    });
}

#[test]
fn gradcheck_pointwise() {
    assert_grads("exp", &[randn(&[3, 3], 1)], |g, v| g.exp(v[0]));
    assert_grads("log", &[randn(&[3, 3], 1)], |g, v| {
        let e = g.exp(v[0])?;
        g.log(e)
    });
    assert_grads("sigmoid", &[randn(&[3, 3], 1)], |g, v| g.sigmoid(v[0]));
    // Bounds away from the samples so no finite difference straddles one.
    let x = Tensor::from_vec(&[6], vec![-2.0, -0.9, -0.2, 0.3, 0.8, 2.5]).unwrap();
    assert_grads("clamp", &[x], |g, v| g.clamp(v[0], -1.0, 1.0));
    assert_grads("scale_by", &[randn(&[3, 4], 1), randn(&[1], 2)], |g, v| g.scale_by(v[0], v[1]));
    assert_grads("bce_with_logits", &[randn(&[3, 4], 1), randn(&[3, 4], 2)], |g, v| {
        let y = g.sigmoid(v[1])?;
        g.bce_with_logits(v[0], y)
    });
}
