//! Optimizer updates in closed form, schedules, clipping, gradient
//! accumulation, and checkpoint round trips of optimizer state.

use edgecl_runtime::optim::{
    clip_grad_norm, global_grad_norm, AdamW, AdamWConfig, GradAccumulator, LrSchedule, Optimizer,
    Sgd,
};
use edgecl_runtime::{init, Graph, ParamSet, Runtime, Tensor};

fn set(grads: &[(&str, &[f32], &[f32], bool)]) -> ParamSet {
    let mut ps = ParamSet::new();
    for (name, v, g, decay) in grads {
        let id = ps.add(name, Tensor::from_vec(&[v.len()], v.to_vec()).unwrap(), *decay).unwrap();
        ps.get_mut(id).grad_mut().copy_from_slice(g);
    }
    ps
}

#[test]
fn adamw_first_step_closed_form() {
    // Step 1: mhat = g, vhat = g^2, so p1 = p0 (1 - lr wd) - lr g / (|g| + eps).
    let mut ps = set(&[
        ("w", &[1.0, -2.0], &[0.5, -4.0], true),
        ("norm.gamma", &[1.0, 3.0], &[1.0, 0.0], false),
    ]);
    let cfg = AdamWConfig { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.1 };
    let mut opt = AdamW::new(&ps, cfg);
    let lr = 0.01f32;
    opt.step(&mut ps, lr).unwrap();
    let w = ps.get(ps.id("w").unwrap()).value().as_f32().unwrap().to_vec();
    let want = |p: f32, g: f32, wd: f32| p * (1.0 - lr * wd) - lr * g / (g.abs() + 1e-8);
    assert!((w[0] - want(1.0, 0.5, 0.1)).abs() < 1e-6, "{w:?}");
    assert!((w[1] - want(-2.0, -4.0, 0.1)).abs() < 1e-6, "{w:?}");
    // No decay on the norm gain; a zero gradient leaves it unchanged.
    let n = ps.get(ps.id("norm.gamma").unwrap()).value().as_f32().unwrap().to_vec();
    assert!((n[0] - want(1.0, 1.0, 0.0)).abs() < 1e-6, "{n:?}");
    assert_eq!(n[1], 3.0);
    assert_eq!(opt.steps(), 1);
}

#[test]
fn sgd_momentum_closed_form() {
    // b1 = g, p1 = p0 - lr g; b2 = mu b1 + g, p2 = p1 - lr b2.
    let mut ps = set(&[("w", &[1.0], &[2.0], false)]);
    let mut opt = Sgd::new(&ps, 0.9, 0.0);
    opt.step(&mut ps, 0.1).unwrap();
    opt.step(&mut ps, 0.1).unwrap();
    let w = ps.get(ps.id("w").unwrap()).value().as_f32().unwrap()[0];
    assert!((w - (1.0 - 0.2 - 0.1 * (0.9 * 2.0 + 2.0))).abs() < 1e-6, "{w}");
}

#[test]
fn schedules() {
    let c = LrSchedule::WarmupCosine { peak: 1.0, min: 0.1, warmup: 4, total: 14 };
    assert_eq!(c.lr(0), 0.25);
    assert_eq!(c.lr(3), 1.0);
    assert!((c.lr(4) - 1.0).abs() < 1e-6);
    assert!((c.lr(9) - 0.55).abs() < 1e-6, "midpoint of the cosine");
    assert!((c.lr(14) - 0.1).abs() < 1e-6);
    assert!((c.lr(100) - 0.1).abs() < 1e-6);
    let l = LrSchedule::WarmupLinear { peak: 1.0, min: 0.0, warmup: 2, total: 12 };
    assert_eq!(l.lr(1), 1.0);
    assert!((l.lr(7) - 0.5).abs() < 1e-6);
    assert_eq!(LrSchedule::Constant { lr: 0.3 }.lr(5), 0.3);
}

#[test]
fn clipping() {
    let mut ps = set(&[("a", &[0.0, 0.0], &[3.0, 0.0], true), ("b", &[0.0], &[4.0], true)]);
    assert_eq!(global_grad_norm(&ps).unwrap(), 5.0);
    assert_eq!(clip_grad_norm(&mut ps, 10.0).unwrap(), 5.0);
    assert_eq!(ps.get(ps.id("a").unwrap()).grad(), &[3.0, 0.0]);
    assert_eq!(clip_grad_norm(&mut ps, 1.0).unwrap(), 5.0);
    assert!((global_grad_norm(&ps).unwrap() - 1.0).abs() < 1e-5);
    ps.get_mut(ps.id("b").unwrap()).grad_mut()[0] = f32::NAN;
    assert!(clip_grad_norm(&mut ps, 1.0).is_err());
}

/// `mse(x @ w, y)` on rows `rows` of a fixed data set.
fn loss_on(g: &mut Graph, rows: std::ops::Range<usize>) -> edgecl_runtime::Var {
    let x = init::normal(&[8, 3], 1.0, 4, 0).unwrap();
    let y = init::normal(&[8, 2], 1.0, 4, 1).unwrap();
    let n = rows.len();
    let xv = g.input_slice(&[n, 3], &x.as_f32().unwrap()[rows.start * 3..rows.end * 3]).unwrap();
    let yv = g.input_slice(&[n, 2], &y.as_f32().unwrap()[rows.start * 2..rows.end * 2]).unwrap();
    let w = g.param_named("w").unwrap();
    let p = g.matmul(xv, w).unwrap();
    g.mse(p, yv).unwrap()
}

fn fresh_graph() -> Graph {
    let mut ps = ParamSet::new();
    ps.add("w", init::normal(&[3, 2], 0.5, 5, 0).unwrap(), true).unwrap();
    let mut g = Graph::new(Runtime::new(1).unwrap(), 0);
    g.set_params(ps);
    g
}

#[test]
fn accumulation_matches_full_batch() {
    // Two half batches with a mean loss, averaged, equal one full batch.
    let mut full = fresh_graph();
    let mut opt_full = Sgd::new(full.params(), 0.0, 0.0);
    let l = loss_on(&mut full, 0..8);
    full.backward(l).unwrap();
    let full_norm = global_grad_norm(full.params()).unwrap();
    opt_full.step_graph(&mut full, 0.1).unwrap();

    let mut acc_g = fresh_graph();
    let mut opt_acc = Sgd::new(acc_g.params(), 0.0, 0.0);
    // A clip bound far above the norm: reported, never applied.
    let mut acc = GradAccumulator::new(2, Some(1e9)).unwrap();
    let l = loss_on(&mut acc_g, 0..4);
    acc_g.backward(l).unwrap();
    assert!(acc.micro_step(&mut acc_g, &mut opt_acc, 0.1).unwrap().is_none());
    let l = loss_on(&mut acc_g, 4..8);
    acc_g.backward(l).unwrap();
    let stepped =
        acc.micro_step(&mut acc_g, &mut opt_acc, 0.1).unwrap().expect("second call steps");
    let norm = stepped.grad_norm.expect("clipping reports the norm");
    assert!((norm - full_norm).abs() < 1e-5 * full_norm.max(1.0), "{norm} vs {full_norm}");

    let a = full.params().get(full.params().id("w").unwrap()).value().as_f32().unwrap().to_vec();
    let b = acc_g.params().get(acc_g.params().id("w").unwrap()).value().as_f32().unwrap().to_vec();
    for (x, y) in a.iter().zip(&b) {
        assert!((x - y).abs() < 1e-6, "{a:?} vs {b:?}");
    }
    assert!(acc_g.params().iter().all(|p| p.grad().iter().all(|&g| g == 0.0)));
}

#[test]
fn optimizer_state_checkpoint_resumes_exactly() {
    let dir = std::env::temp_dir().join(format!("edgecl-optim-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (pp, sp) = (dir.join("params.safetensors"), dir.join("adamw.safetensors"));
    let step = |g: &mut Graph, opt: &mut AdamW| {
        let l = loss_on(g, 0..8);
        g.backward(l).unwrap();
        opt.step_graph(g, 0.05).unwrap();
        g.params_mut().zero_grad();
    };

    let mut g = fresh_graph();
    let mut opt = AdamW::new(g.params(), AdamWConfig::default());
    for _ in 0..3 {
        step(&mut g, &mut opt);
    }
    edgecl_runtime::weights::save_params(&pp, g.params(), None).unwrap();
    opt.save_state(&sp, g.params()).unwrap();
    for _ in 0..2 {
        step(&mut g, &mut opt);
    }

    let mut h = fresh_graph();
    edgecl_runtime::weights::load_params(&pp, h.params_mut()).unwrap();
    let mut opt2 = AdamW::new(h.params(), AdamWConfig::default());
    opt2.load_state(&sp, h.params()).unwrap();
    assert_eq!(opt2.steps(), 3);
    for _ in 0..2 {
        step(&mut h, &mut opt2);
    }
    let a = g.params().get(g.params().id("w").unwrap()).value().as_f32().unwrap().to_vec();
    let b = h.params().get(h.params().id("w").unwrap()).value().as_f32().unwrap().to_vec();
    assert_eq!(a, b, "resumed training diverged");

    // SGD state is not AdamW state.
    let mut sgd = Sgd::new(h.params(), 0.9, 0.0);
    let e = sgd.load_state(&sp, h.params()).unwrap_err();
    assert!(e.to_string().contains("not a sgd optimizer state"), "{e}");
}
