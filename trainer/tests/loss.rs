//! Losses against closed forms and an independent f64 reference, plus
//! finite-difference gradient checks of every loss.

use edgecl_runtime::gradcheck::{check, GradCheck};
use edgecl_runtime::{init, Graph, ParamSet, Runtime, Tensor, Var};
use edgecl_trainer::loss::{
    add_projection_param, add_temperature_param, bce_pointwise, embedding_distill,
    false_negative_mask, info_nce, info_nce_grouped, kl_distill, listwise_softmax, margin_mse,
    weighted_sum, EmbeddingDistill, InfoNceOptions, Temperature, TEMPERATURE_PARAM,
};

fn graph() -> Graph {
    Graph::new(Runtime::new(1).unwrap(), 3)
}

fn randn(dims: &[usize], stream: u64) -> Tensor {
    init::normal(dims, 1.0, 11, stream).unwrap()
}

/// Rows scaled to unit length.
fn normalized(rows: usize, dim: usize, stream: u64) -> Vec<f32> {
    let mut v = randn(&[rows, dim], stream).to_vec_f32().unwrap();
    for r in v.chunks_mut(dim) {
        let n = r.iter().map(|x| x * x).sum::<f32>().sqrt();
        r.iter_mut().for_each(|x| *x /= n);
    }
    v
}

fn fixed(t: f32) -> InfoNceOptions {
    InfoNceOptions { temperature: Temperature::Fixed(t), ..Default::default() }
}

/// InfoNCE value for host embeddings.
fn loss_of(q: &[f32], d: &[f32], b: usize, n: usize, dim: usize, opts: &InfoNceOptions) -> f32 {
    let mut g = graph();
    let qv = g.input_slice(&[b, dim], q).unwrap();
    let dv = g.input_slice(&[n, dim], d).unwrap();
    let l = info_nce(&mut g, qv, dv, opts).unwrap();
    g.scalar(l).unwrap()
}

/// Straight-line f64 InfoNCE with fixed temperature: the formula of the
/// module doc, written independently of the graph code.
fn reference(
    q: &[f32],
    d: &[f32],
    (b, n, dim): (usize, usize, usize),
    t: f64,
    opts: &InfoNceOptions,
) -> f64 {
    let cos = |a: &[f32], c: &[f32]| a.iter().zip(c).map(|(&x, &y)| x as f64 * y as f64).sum();
    let masked = |i: usize, j: usize| opts.mask.as_ref().is_some_and(|m| m[i * n + j]);
    // One direction: rows `a` against columns `c`, positive on the diagonal.
    let direction = |a: &[f32], c: &[f32], cols: usize, transposed: bool| -> f64 {
        let mut total = 0.0;
        for i in 0..b {
            let mut logits = Vec::new();
            for j in 0..cols {
                let s: f64 = cos(&a[i * dim..(i + 1) * dim], &c[j * dim..(j + 1) * dim]);
                let excluded = if transposed { masked(j, i) } else { masked(i, j) };
                if j == i {
                    logits.push((s - opts.margin as f64) / t);
                } else if !excluded {
                    logits.push(s / t + opts.hardness as f64 * s);
                }
            }
            // The positive's index among the kept logits.
            let kept_before =
                (0..i).filter(|&j| !if transposed { masked(j, i) } else { masked(i, j) }).count();
            let m = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let lse = m + logits.iter().map(|l| (l - m).exp()).sum::<f64>().ln();
            total += lse - logits[kept_before];
        }
        total / b as f64
    };
    let fwd = direction(q, d, n, false);
    if !opts.symmetric {
        return fwd;
    }
    (fwd + direction(&d[..b * dim], q, b, true)) / 2.0
}

#[test]
fn info_nce_closed_forms() {
    // Orthogonal unit rows: cos = 1 on the diagonal, 0 elsewhere, so
    // loss = ln(1 + (N - 1) e^(-1/T)).
    let (b, dim, t) = (3, 4, 0.5f32);
    let mut eye = vec![0.0f32; b * dim];
    for i in 0..b {
        eye[i * dim + i] = 1.0;
    }
    let l = loss_of(&eye, &eye, b, b, dim, &fixed(t));
    let want = (1.0 + 2.0 * (-1.0 / t as f64).exp()).ln();
    assert!((l as f64 - want).abs() < 1e-6, "{l} vs {want}");

    // An extra orthogonal negative row (a memory-bank row): N = 4.
    let mut d = eye.clone();
    d.extend_from_slice(&[0.0, 0.0, 0.0, 1.0]);
    let l = loss_of(&eye, &d, b, 4, dim, &fixed(t));
    let want = (1.0 + 3.0 * (-1.0 / t as f64).exp()).ln();
    assert!((l as f64 - want).abs() < 1e-6, "{l} vs {want}");

    // Identical rows everywhere: every logit equal, loss = ln N.
    let same: Vec<f32> = (0..b).flat_map(|_| [0.6f32, 0.8, 0.0, 0.0]).collect();
    let l = loss_of(&same, &same, b, b, dim, &fixed(0.05));
    assert!((l as f64 - (b as f64).ln()).abs() < 1e-5, "{l}");
}

#[test]
fn info_nce_matches_the_f64_reference_for_every_option() {
    let (b, n, dim) = (4, 7, 5);
    let q = normalized(b, dim, 1);
    let d = normalized(n, dim, 2);
    let mut mask = vec![false; b * n];
    mask[1] = true; // query 0 excludes document 1
    mask[2 * n + 5] = true; // query 2 excludes an extra negative
    mask[3 * n + 3] = true; // on the positive: must be ignored
    for symmetric in [false, true] {
        for (margin, hardness) in [(0.0, 0.0), (0.2, 0.0), (0.0, 1.5), (0.1, 2.0)] {
            for m in [None, Some(mask.clone())] {
                let opts = InfoNceOptions {
                    temperature: Temperature::Fixed(0.1),
                    symmetric,
                    margin,
                    hardness,
                    mask: m,
                };
                let got = loss_of(&q, &d, b, n, dim, &opts) as f64;
                let want = reference(&q, &d, (b, n, dim), 0.1, &opts);
                assert!((got - want).abs() < 1e-4 * want.max(1.0), "{opts:?}: {got} vs {want}");
            }
        }
    }
}

#[test]
fn hardness_weights_negatives_without_differentiating_the_weights() {
    // The analytic gradient with hardness h must equal the finite
    // difference of a loss whose extra term h * cos is frozen at the
    // starting cosines (a stop-gradient), not of the full expression.
    let (b, n, dim, t, h) = (3, 5, 4, 0.2f64, 2.0f32);
    let q = normalized(b, dim, 40);
    let d = normalized(n, dim, 41);
    let dot = |a: &[f32], c: &[f32]| a.iter().zip(c).map(|(&x, &y)| x as f64 * y as f64).sum();
    let frozen: Vec<f64> =
        (0..b * n).map(|ij| dot(&q[ij / n * dim..][..dim], &d[ij % n * dim..][..dim])).collect();
    let frozen_loss = |q: &[f32]| -> f64 {
        let mut total = 0.0;
        for i in 0..b {
            let logits: Vec<f64> = (0..n)
                .map(|j| {
                    let c: f64 = dot(&q[i * dim..][..dim], &d[j * dim..][..dim]);
                    c / t + if j == i { 0.0 } else { h as f64 * frozen[i * n + j] }
                })
                .collect();
            let m = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            total += m + logits.iter().map(|l| (l - m).exp()).sum::<f64>().ln() - logits[i];
        }
        total / b as f64
    };
    let mut g = graph();
    let qv = g.leaf(&[b, dim], &q).unwrap();
    let dv = g.input_slice(&[n, dim], &d).unwrap();
    let opts = InfoNceOptions { hardness: h, ..fixed(t as f32) };
    let l = info_nce(&mut g, qv, dv, &opts).unwrap();
    assert!((g.scalar(l).unwrap() as f64 - frozen_loss(&q)).abs() < 1e-5);
    g.backward(l).unwrap();
    let analytic = g.grad(qv).unwrap().to_vec();
    let step = 1e-3f32;
    for k in 0..b * dim {
        let (mut qp, mut qm) = (q.clone(), q.clone());
        qp[k] += step;
        qm[k] -= step;
        let numeric = (frozen_loss(&qp) - frozen_loss(&qm)) / (2.0 * step as f64);
        let a = analytic[k] as f64;
        assert!((a - numeric).abs() < 1e-3 + 1e-3 * numeric.abs(), "q[{k}]: {a} vs {numeric}");
    }
}

#[test]
fn large_margin_raises_the_loss() {
    let (b, dim) = (5, 6);
    let q = normalized(b, dim, 3);
    let d = normalized(b, dim, 4);
    let plain = loss_of(&q, &d, b, b, dim, &fixed(0.05));
    let with = loss_of(&q, &d, b, b, dim, &InfoNceOptions { margin: 0.1, ..fixed(0.05) });
    // The positive logit drops by 0.1 / 0.05 = 2, so the loss must rise.
    assert!(with > plain + 0.1, "{with} vs {plain}");
}

#[test]
fn mask_never_hides_the_positive() {
    let (b, n, dim) = (3, 5, 4);
    let q = normalized(b, dim, 5);
    let d = normalized(n, dim, 6);
    // Everything masked: only the positive is left, so the loss is 0.
    let all = InfoNceOptions { mask: Some(vec![true; b * n]), ..fixed(0.1) };
    let l = loss_of(&q, &d, b, n, dim, &all);
    assert!(l.abs() < 1e-6, "{l}");
    assert!(l.is_finite());

    // Masking the extra rows for every query equals dropping them.
    let mut m = vec![false; b * n];
    for i in 0..b {
        for j in b..n {
            m[i * n + j] = true;
        }
    }
    let masked = loss_of(&q, &d, b, n, dim, &InfoNceOptions { mask: Some(m), ..fixed(0.1) });
    let dropped = loss_of(&q, &d[..b * dim], b, b, dim, &fixed(0.1));
    assert!((masked - dropped).abs() < 1e-6, "{masked} vs {dropped}");
}

#[test]
fn grouped_equals_masked_flat_layout() {
    // Query i sees all positives and only its own k negatives; the same
    // loss comes out of the flat layout [pos; all negatives] with the
    // other queries' negatives masked.
    let (b, k, dim) = (3, 2, 4);
    let q = normalized(b, dim, 7);
    let pos = normalized(b, dim, 8);
    let negs = normalized(b * k, dim, 9);
    let opts = InfoNceOptions { margin: 0.05, hardness: 0.5, ..fixed(0.1) };

    let mut g = graph();
    let qv = g.input_slice(&[b, dim], &q).unwrap();
    let pv = g.input_slice(&[b, dim], &pos).unwrap();
    let nv = g.input_slice(&[b * k, dim], &negs).unwrap();
    let grouped = info_nce_grouped(&mut g, qv, pv, nv, k, &opts).unwrap();
    let grouped = g.scalar(grouped).unwrap();

    let n = b + b * k;
    let mut d = pos.clone();
    d.extend_from_slice(&negs);
    let mut mask = vec![false; b * n];
    for i in 0..b {
        for j in 0..b * k {
            mask[i * n + b + j] = j / k != i;
        }
    }
    let flat = loss_of(&q, &d, b, n, dim, &InfoNceOptions { mask: Some(mask), ..opts.clone() });
    assert!((grouped - flat).abs() < 1e-5, "{grouped} vs {flat}");
}

#[test]
fn shape_and_option_errors() {
    let mut g = graph();
    let q = g.input_slice(&[3, 4], &[0.5; 12]).unwrap();
    let d = g.input_slice(&[2, 4], &[0.5; 8]).unwrap();
    assert!(info_nce(&mut g, q, d, &fixed(0.1)).is_err(), "fewer documents than queries");
    let d = g.input_slice(&[3, 4], &[0.5; 12]).unwrap();
    assert!(info_nce(&mut g, q, d, &fixed(0.0)).is_err(), "zero temperature");
    let bad_mask = InfoNceOptions { mask: Some(vec![false; 5]), ..fixed(0.1) };
    assert!(info_nce(&mut g, q, d, &bad_mask).is_err(), "mask size");
    let learned = InfoNceOptions {
        temperature: Temperature::Learned { init: 0.05, min: 0.01, max: 1.0 },
        ..Default::default()
    };
    assert!(info_nce(&mut g, q, d, &learned).is_err(), "learned temperature not registered");
    assert!(false_negative_mask(&[0.0; 4], &[0.0; 4], 2, 1, 2, 0.1).is_err());
    assert!(false_negative_mask(&[0.0; 3], &[0.0; 4], 2, 2, 2, 0.1).is_err());
}

#[test]
fn false_negative_mask_by_hand() {
    // Two queries, three documents in 2-D. Query 0 = (1, 0): positive
    // scores 0.6; document 1 scores 0.8 (above 0.6 - 0.1: masked),
    // document 2 scores 0.45 (below: kept). Query 1 = (0, 1): positive
    // scores 0.6; document 0 scores 0.8 (masked), document 2 0.0.
    let gq = [1.0, 0.0, 0.0, 1.0];
    let gd = [0.6, 0.8, 0.8, 0.6, 0.45, 0.0];
    let m = false_negative_mask(&gq, &gd, 2, 3, 2, 0.1).unwrap();
    assert_eq!(m, [false, true, false, true, false, false]);
    // A wide margin masks everything but the positives.
    let m = false_negative_mask(&gq, &gd, 2, 3, 2, 10.0).unwrap();
    assert_eq!(m, [false, true, true, true, false, true]);

    // Random guides against a straight dot-product loop.
    let (b, n, dim, margin) = (5, 9, 7, 0.3);
    let (gq, gd) = (normalized(b, dim, 50), normalized(n, dim, 51));
    let m = false_negative_mask(&gq, &gd, b, n, dim, margin).unwrap();
    let dot = |i: usize, j: usize| (0..dim).map(|k| gq[i * dim + k] * gd[j * dim + k]).sum::<f32>();
    let mut masked = 0;
    for i in 0..b {
        for j in 0..n {
            let s = dot(i, j) - (dot(i, i) - margin);
            if s.abs() > 1e-5 {
                assert_eq!(m[i * n + j], j != i && s > 0.0, "({i}, {j})");
            }
            masked += m[i * n + j] as usize;
        }
    }
    assert!(masked > 0 && masked < b * (n - 1), "{masked} masked: test proves little");
}

#[test]
fn learned_temperature_value_gradient_and_clamp() {
    let (b, dim) = (4, 5);
    let q = normalized(b, dim, 10);
    let d = normalized(b, dim, 11);
    let opts = |min| InfoNceOptions {
        temperature: Temperature::Learned { init: 0.1, min, max: 1.0 },
        margin: 0.1,
        ..Default::default()
    };
    // Loss and d loss / d log-scale at a given parameter value.
    let eval = |p: f32, min: f32| -> (f32, f32) {
        let mut g = graph();
        let mut ps = ParamSet::new();
        let id = add_temperature_param(&mut ps, 0.1).unwrap();
        ps.get_mut(id).value_mut().as_f32_mut().unwrap()[0] = p;
        g.set_params(ps);
        let qv = g.input_slice(&[b, dim], &q).unwrap();
        let dv = g.input_slice(&[b, dim], &d).unwrap();
        let l = info_nce(&mut g, qv, dv, &opts(min)).unwrap();
        g.backward(l).unwrap();
        let grad = g.params().get(g.params().id(TEMPERATURE_PARAM).unwrap()).grad()[0];
        (g.scalar(l).unwrap(), grad)
    };
    // At ln(1/0.1) the value equals the fixed-temperature loss.
    let p0 = 10.0f32.ln();
    let (l0, grad) = eval(p0, 0.01);
    let fixed_l = loss_of(&q, &d, b, b, dim, &InfoNceOptions { margin: 0.1, ..fixed(0.1) });
    assert!((l0 - fixed_l).abs() < 1e-5, "{l0} vs {fixed_l}");
    // Central difference in the parameter.
    let h = 1e-2;
    let numeric = (eval(p0 + h, 0.01).0 - eval(p0 - h, 0.01).0) / (2.0 * h);
    assert!((grad - numeric).abs() < 2e-3 + 2e-2 * numeric.abs(), "{grad} vs {numeric}");
    assert!(grad != 0.0);
    // Clamped: with min temperature 0.2 the scale cannot pass 5, so at
    // scale 10 the loss is the one at temperature 0.2 and has no gradient.
    let (lc, gc) = eval(p0, 0.2);
    let at_min = loss_of(&q, &d, b, b, dim, &InfoNceOptions { margin: 0.1, ..fixed(0.2) });
    assert!((lc - at_min).abs() < 1e-5, "{lc} vs {at_min}");
    assert_eq!(gc, 0.0);
}

#[test]
fn kl_is_zero_when_student_and_teacher_agree() {
    let scores = randn(&[3, 5], 12).to_vec_f32().unwrap();
    for t in [1.0, 2.0, 0.5] {
        let mut g = graph();
        let s = g.input_slice(&[3, 5], &scores).unwrap();
        let l = kl_distill(&mut g, s, &scores, t, t).unwrap();
        assert!(g.scalar(l).unwrap().abs() < 1e-6, "T = {t}: {}", g.scalar(l).unwrap());
    }
    // Disagreeing scores: T^2 times the f64 KL.
    let teacher = randn(&[3, 5], 13).to_vec_f32().unwrap();
    let (ts, tt) = (2.0f64, 1.0f64);
    let mut g = graph();
    let s = g.input_slice(&[3, 5], &scores).unwrap();
    let l = kl_distill(&mut g, s, &teacher, ts as f32, tt as f32).unwrap();
    let softmax = |row: &[f32], t: f64| -> Vec<f64> {
        let e: Vec<f64> = row.iter().map(|&v| (v as f64 / t).exp()).collect();
        let z: f64 = e.iter().sum();
        e.into_iter().map(|v| v / z).collect()
    };
    let mut kl = 0.0;
    for (sr, tr) in scores.chunks(5).zip(teacher.chunks(5)) {
        let (p, q) = (softmax(tr, tt), softmax(sr, ts));
        kl += p.iter().zip(&q).map(|(p, q)| p * (p / q).ln()).sum::<f64>();
    }
    let want = ts * ts * kl / 3.0;
    assert!((g.scalar(l).unwrap() as f64 - want).abs() < 1e-5, "{want}");
}

#[test]
fn margin_mse_and_pointwise_values() {
    // Student margins (2 - 1, 2 - 0) against teacher (1 - 0, 1 - 1):
    // errors 0 and 2, mean of squares 2.
    let mut g = graph();
    let sp = g.input_slice(&[1], &[2.0]).unwrap();
    let sn = g.input_slice(&[1, 2], &[1.0, 0.0]).unwrap();
    let l = margin_mse(&mut g, sp, sn, &[1.0], &[0.0, 1.0]).unwrap();
    assert!((g.scalar(l).unwrap() - 2.0).abs() < 1e-6);
    // [B] negatives (k = 1).
    let sn1 = g.input_slice(&[1], &[1.0]).unwrap();
    let l = margin_mse(&mut g, sp, sn1, &[1.0], &[0.5]).unwrap();
    assert!((g.scalar(l).unwrap() - 0.25).abs() < 1e-6);

    // Listwise with one positive per row is cross-entropy.
    let s = g.input_slice(&[2, 3], &[1.0, 2.0, 0.5, 0.0, 0.0, 0.0]).unwrap();
    let l = listwise_softmax(&mut g, s, &[0.0, 1.0, 0.0, 1.0, 0.0, 0.0]).unwrap();
    let ce = g.cross_entropy(s, &[1, 0]).unwrap();
    assert!((g.scalar(l).unwrap() - g.scalar(ce).unwrap()).abs() < 1e-6);
    assert!(listwise_softmax(&mut g, s, &[0.0; 6]).is_err());
    assert!(bce_pointwise(&mut g, s, &[2.0; 6]).is_err());

    // Logit 0 against label 1: ln 2 per element.
    let z = g.input_slice(&[1, 2], &[0.0, 0.0]).unwrap();
    let l = bce_pointwise(&mut g, z, &[1.0, 0.0]).unwrap();
    assert!((g.scalar(l).unwrap() - 2f32.ln()).abs() < 1e-6);

    // Weighted sum: 0.5 * ln 2 + 2 * ln 2.
    let l2 = weighted_sum(&mut g, &[(0.5, l), (2.0, l)]).unwrap();
    assert!((g.scalar(l2).unwrap() - 2.5 * 2f32.ln()).abs() < 1e-6);
    assert!(weighted_sum(&mut g, &[]).is_err());
}

#[test]
fn embedding_distill_values() {
    let mut g = graph();
    let s = g.input_slice(&[2, 2], &[1.0, 0.0, 0.0, 2.0]).unwrap();
    // Same direction, different lengths: cosine loss 0, MSE not.
    let t = [3.0, 0.0, 0.0, 1.0];
    let c = embedding_distill(&mut g, s, &t, EmbeddingDistill::Cosine, None).unwrap();
    assert!(g.scalar(c).unwrap().abs() < 1e-6);
    let m = embedding_distill(&mut g, s, &t, EmbeddingDistill::Mse, None).unwrap();
    assert!((g.scalar(m).unwrap() - 5.0 / 4.0).abs() < 1e-6);
    // Width mismatch without a projection is refused; with one it runs.
    assert!(embedding_distill(&mut g, s, &[0.0; 6], EmbeddingDistill::Mse, None).is_err());
    let mut ps = ParamSet::new();
    let id = add_projection_param(&mut ps, 2, 3, 5).unwrap();
    g.set_params(ps);
    let s = g.input_slice(&[2, 2], &[1.0, 0.0, 0.0, 2.0]).unwrap();
    let l = embedding_distill(&mut g, s, &[1.0; 6], EmbeddingDistill::Cosine, Some(id)).unwrap();
    assert!(g.scalar(l).unwrap().is_finite());
}

// ---------------------------------------------------------------------------
// gradient checks

fn assert_grads(
    name: &str,
    inputs: &[Tensor],
    f: impl Fn(&mut Graph, &[Var]) -> Result<Var, String>,
) {
    let cfg = GradCheck::default();
    let r = check(inputs, &cfg, |g, v| {
        f(g, v).map_err(|e| edgecl_runtime::Error::InvalidArgument { op: "loss", what: e })
    })
    .unwrap_or_else(|e| panic!("{name}: {e}"));
    println!("{name}: {} elements, max abs err {:.2e}", r.checked, r.max_abs_err);
    assert!(r.ok(), "{name}: {:?}", &r.mismatches[..r.mismatches.len().min(5)]);
}

/// Normalises raw inputs in the graph, as an encoder's last step would.
fn unit(g: &mut Graph, v: Var) -> Result<Var, String> {
    g.l2_normalize(v, 1e-6).map_err(|e| e.to_string())
}

#[test]
fn gradcheck_info_nce_options() {
    let (b, n, dim) = (3, 5, 4);
    let mut mask = vec![false; b * n];
    mask[1] = true;
    mask[2 * n + 4] = true;
    for symmetric in [false, true] {
        let opts = InfoNceOptions {
            temperature: Temperature::Fixed(0.5),
            symmetric,
            margin: 0.2,
            // Hardness adds a stop-gradient term, which a finite difference
            // would see and the analytic gradient by design does not; its
            // value is covered by the f64 reference test.
            hardness: 0.0,
            mask: Some(mask.clone()),
        };
        assert_grads("info_nce", &[randn(&[b, dim], 20), randn(&[n, dim], 21)], |g, v| {
            let (q, d) = (unit(g, v[0])?, unit(g, v[1])?);
            info_nce(g, q, d, &opts).map_err(|e| e.to_string())
        });
    }
}

#[test]
fn gradcheck_info_nce_grouped() {
    let (b, k, dim) = (3, 2, 4);
    let opts = InfoNceOptions { symmetric: true, margin: 0.1, ..fixed(0.5) };
    let inputs = [randn(&[b, dim], 22), randn(&[b, dim], 23), randn(&[b * k, dim], 24)];
    assert_grads("info_nce_grouped", &inputs, |g, v| {
        let (q, p, n) = (unit(g, v[0])?, unit(g, v[1])?, unit(g, v[2])?);
        info_nce_grouped(g, q, p, n, k, &opts).map_err(|e| e.to_string())
    });
}

#[test]
fn gradcheck_distillation_and_rerank() {
    let teacher = randn(&[3, 4], 30).to_vec_f32().unwrap();
    assert_grads("kl_distill", &[randn(&[3, 4], 31)], |g, v| {
        kl_distill(g, v[0], &teacher, 2.0, 1.5).map_err(|e| e.to_string())
    });
    let tp = [1.0, 0.5, -0.2];
    let tn = [0.3, 0.1, 0.0, 0.4, -1.0, 0.2];
    assert_grads("margin_mse", &[randn(&[3], 32), randn(&[3, 2], 33)], |g, v| {
        margin_mse(g, v[0], v[1], &tp, &tn).map_err(|e| e.to_string())
    });
    let t6 = randn(&[2, 3], 34).to_vec_f32().unwrap();
    for kind in [EmbeddingDistill::Mse, EmbeddingDistill::Cosine] {
        // Student [2, 2] projected by input 1 ([2, 3]) onto teacher width 3.
        assert_grads("embedding_distill", &[randn(&[2, 2], 35), randn(&[2, 3], 36)], |g, v| {
            let id = g.params().id("input1").map_err(|e| e.to_string())?;
            embedding_distill(g, v[0], &t6, kind, Some(id)).map_err(|e| e.to_string())
        });
    }
    let labels = [1.0, 0.0, 0.5, 0.0, 0.2, 1.0];
    assert_grads("bce_pointwise", &[randn(&[2, 3], 37)], |g, v| {
        bce_pointwise(g, v[0], &labels).map_err(|e| e.to_string())
    });
    assert_grads("listwise_softmax", &[randn(&[2, 3], 38)], |g, v| {
        listwise_softmax(g, v[0], &labels).map_err(|e| e.to_string())
    });
    assert_grads("weighted_sum", &[randn(&[2, 3], 39)], |g, v| {
        let a = bce_pointwise(g, v[0], &labels).map_err(|e| e.to_string())?;
        let b = listwise_softmax(g, v[0], &labels).map_err(|e| e.to_string())?;
        weighted_sum(g, &[(0.3, a), (1.7, b)]).map_err(|e| e.to_string())
    });
}
