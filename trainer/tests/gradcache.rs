//! Gradient caching must reproduce the full-batch loss and parameter
//! gradients: a small encoder (a linear layer over fixed features, then
//! L2 normalisation, with dropout present but off) under InfoNCE with a
//! learned temperature, hard negatives and memory-bank rows.

use std::ops::Range;

use edgecl_runtime::{init, Graph, ParamSet, Runtime, Var};
use edgecl_trainer::error::Result;
use edgecl_trainer::gradcache::{grad_cache_step, Side};
use edgecl_trainer::loss::{add_temperature_param, info_nce, InfoNceOptions, Temperature};

const F: usize = 6; // feature width
const D: usize = 4; // embedding width
const NQ: usize = 7; // queries (and positives)
const ND: usize = 10; // positives plus 3 hard negatives
const BANK: usize = 5;

struct Fixture {
    g: Graph,
    q_feat: Vec<f32>,
    d_feat: Vec<f32>,
    bank: Vec<f32>,
}

fn fixture() -> Fixture {
    let mut ps = ParamSet::new();
    ps.add("enc.w", init::normal(&[F, D], 0.5, 1, 0).unwrap(), true).unwrap();
    ps.add("enc.b", init::normal(&[D], 0.1, 1, 1).unwrap(), false).unwrap();
    add_temperature_param(&mut ps, 0.1).unwrap();
    let mut g = Graph::new(Runtime::new(2).unwrap(), 9);
    g.set_params(ps);
    g.set_training(false);
    let feats =
        |rows, stream| init::normal(&[rows, F], 1.0, 2, stream).unwrap().to_vec_f32().unwrap();
    let mut bank = init::normal(&[BANK, D], 1.0, 3, 0).unwrap().to_vec_f32().unwrap();
    for r in bank.chunks_mut(D) {
        let n = r.iter().map(|v| v * v).sum::<f32>().sqrt();
        r.iter_mut().for_each(|v| *v /= n);
    }
    Fixture { g, q_feat: feats(NQ, 10), d_feat: feats(ND, 11), bank }
}

/// The encoder: `l2_normalize(dropout(x W + b))` over feature rows.
fn embed(g: &mut Graph, feats: &[f32], rows: Range<usize>) -> Result<Var> {
    let x = g.input_slice(&[rows.len(), F], &feats[rows.start * F..rows.end * F])?;
    let w = g.param_named("enc.w")?;
    let b = g.param_named("enc.b")?;
    let h = g.linear(x, w, Some(b))?;
    let h = g.dropout(h, 0.1)?;
    Ok(g.l2_normalize(h, 1e-6)?)
}

fn options() -> InfoNceOptions {
    InfoNceOptions {
        temperature: Temperature::Learned { init: 0.1, min: 0.01, max: 1.0 },
        symmetric: true,
        margin: 0.05,
        ..Default::default()
    }
}

/// The loss on embeddings, with the bank appended as constant rows.
fn loss(g: &mut Graph, q: Var, d: Var, bank: &[f32]) -> Result<Var> {
    let bank = g.input_slice(&[BANK, D], bank)?;
    let all = g.concat_rows(&[d, bank])?;
    info_nce(g, q, all, &options())
}

fn grads(g: &Graph) -> Vec<Vec<f32>> {
    g.params().iter().map(|p| p.grad().to_vec()).collect()
}

fn full_batch(f: &mut Fixture) -> (f32, Vec<Vec<f32>>) {
    let g = &mut f.g;
    g.params_mut().zero_grad();
    g.reset();
    let q = embed(g, &f.q_feat, 0..NQ).unwrap();
    let d = embed(g, &f.d_feat, 0..ND).unwrap();
    let l = loss(g, q, d, &f.bank).unwrap();
    let value = g.scalar(l).unwrap();
    g.backward(l).unwrap();
    let out = grads(g);
    g.reset();
    (value, out)
}

fn cached(f: &mut Fixture, chunk: usize) -> (f32, Vec<Vec<f32>>) {
    let Fixture { g, q_feat, d_feat, bank } = f;
    g.params_mut().zero_grad();
    let step = grad_cache_step(
        g,
        NQ,
        ND,
        chunk,
        |g, side, rows| match side {
            Side::Query => embed(g, q_feat, rows),
            Side::Doc => embed(g, d_feat, rows),
        },
        |g, q, d| loss(g, q, d, bank),
    )
    .unwrap();
    assert_eq!(step.dim, D);
    assert_eq!(step.chunks, NQ.div_ceil(chunk) + ND.div_ceil(chunk));
    (step.loss, grads(g))
}

fn assert_close(what: &str, a: &[f32], b: &[f32]) {
    let scale = a.iter().chain(b).fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(scale > 0.0, "{what}: all-zero gradient proves nothing");
    for (i, (&x, &y)) in a.iter().zip(b).enumerate() {
        let err = (x - y).abs();
        assert!(
            err <= 1e-4 * x.abs().max(y.abs()) + 1e-6 * scale,
            "{what}[{i}]: full batch {x} vs cached {y}"
        );
    }
}

#[test]
fn cached_step_matches_the_full_batch() {
    let mut f = fixture();
    let (l_full, g_full) = full_batch(&mut f);
    for chunk in [1, 3, 4, 64] {
        let (l_c, g_c) = cached(&mut f, chunk);
        assert!((l_full - l_c).abs() <= 1e-5 * l_full.abs(), "chunk {chunk}: {l_full} vs {l_c}");
        let names: Vec<String> = f.g.params().iter().map(|p| p.name().to_string()).collect();
        for ((name, a), b) in names.iter().zip(&g_full).zip(&g_c) {
            assert_close(&format!("chunk {chunk} {name}"), a, b);
        }
    }
}

#[test]
fn cached_steps_accumulate_like_backward() {
    // Two cached steps without zeroing give twice one step's gradients.
    let mut f = fixture();
    let (_, once) = cached(&mut f, 3);
    let Fixture { g, q_feat, d_feat, bank } = &mut f;
    let embed_fn = |g: &mut Graph, side: Side, rows: Range<usize>| match side {
        Side::Query => embed(g, q_feat, rows),
        Side::Doc => embed(g, d_feat, rows),
    };
    grad_cache_step(g, NQ, ND, 3, embed_fn, |g, q, d| loss(g, q, d, bank)).unwrap();
    let twice = grads(g);
    for (a, b) in once.iter().zip(&twice) {
        let doubled: Vec<f32> = a.iter().map(|v| 2.0 * v).collect();
        assert_close("accumulated", &doubled, b);
    }
}

#[test]
fn bad_arguments_are_refused() {
    let mut f = fixture();
    let Fixture { g, q_feat, bank, .. } = &mut f;
    let ok = |g: &mut Graph, _: Side, rows: Range<usize>| embed(g, q_feat, rows);
    assert!(grad_cache_step(g, NQ, NQ, 0, ok, |g, q, d| loss(g, q, d, bank)).is_err());
    // An encoder that returns the wrong number of rows.
    let short =
        |g: &mut Graph, _: Side, rows: Range<usize>| embed(g, q_feat, rows.start..rows.start + 1);
    let r = grad_cache_step(g, NQ, NQ, 3, short, |g, q, d| loss(g, q, d, bank));
    assert!(r.is_err());
    // The graph is usable (gradients on) after a refused step.
    assert!(g.is_grad_enabled());
}

#[test]
fn dropout_masks_are_replayed() {
    // With dropout on, the cached gradient must be the gradient of the
    // loss the cached step reports (same masks in both forward passes):
    // checked by central differences on every encoder weight, each
    // evaluation starting from the same pass number.
    let mut f = fixture();
    f.g.set_training(true);
    let start = 1000;
    let run = |f: &mut Fixture| -> (f32, Vec<f32>) {
        f.g.set_pass(start);
        let (l, gr) = cached(f, 3);
        (l, gr[0].clone())
    };
    let (_, analytic) = run(&mut f);
    let id = f.g.params().id("enc.w").unwrap();
    let h = 1e-2f32;
    let mut checked = 0;
    for (k, &a) in analytic.iter().enumerate() {
        let x0 = f.g.params().get(id).value().as_f32().unwrap()[k];
        let at = |v: f32, f: &mut Fixture| {
            f.g.params_mut().get_mut(id).value_mut().as_f32_mut().unwrap()[k] = v;
            run(f).0
        };
        let (lp, lm) = (at(x0 + h, &mut f), at(x0 - h, &mut f));
        at(x0, &mut f);
        let numeric = (lp - lm) / (2.0 * h);
        assert!((a - numeric).abs() <= 2e-3 + 2e-2 * numeric.abs(), "w[{k}]: {a} vs {numeric}");
        checked += 1;
    }
    assert_eq!(checked, F * D);
    // The masks really drop something: the loss differs from eval mode.
    f.g.set_pass(start);
    let (l_train, _) = cached(&mut f, 3);
    f.g.set_training(false);
    let (l_eval, _) = cached(&mut f, 3);
    assert!((l_train - l_eval).abs() > 1e-4, "{l_train} vs {l_eval}");
}
