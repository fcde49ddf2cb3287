//! Forward values of the ops against naive f64 references written from the
//! definitions (the gradient checks only prove backward matches forward).

#![allow(clippy::needless_range_loop)] // index loops mirror the maths

use edgecl_runtime::{init, Graph, Runtime, Tensor, Var};

const TOL: f64 = 1e-5;

fn randn(dims: &[usize], stream: u64) -> Tensor {
    init::normal(dims, 1.0, 77, stream).unwrap()
}

fn v64(t: &Tensor) -> Vec<f64> {
    t.as_f32().unwrap().iter().map(|&x| x as f64).collect()
}

fn close(name: &str, got: &[f32], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{name}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!((g as f64 - w).abs() <= TOL * (1.0 + w.abs()), "{name}[{i}]: got {g}, want {w}");
    }
}

fn graph(threads: usize) -> Graph {
    Graph::new(Runtime::new(threads).unwrap(), 0)
}

fn input(g: &mut Graph, t: &Tensor) -> Var {
    g.input(t).unwrap()
}

fn out(g: &Graph, v: Var) -> Vec<f32> {
    g.value(v).unwrap().as_f32().unwrap().to_vec()
}

#[test]
fn matmul_layouts_match_naive() {
    // [2, 3, 4]^T(last two) x [5, 3]^T -> [2, 4, 5] with both transposed.
    let (a, b) = (randn(&[2, 3, 4], 1), randn(&[5, 3], 2));
    let mut g = graph(2);
    let (av, bv) = (input(&mut g, &a), input(&mut g, &b));
    let c = g.matmul_t(av, bv, true, true).unwrap();
    assert_eq!(g.dims(c).unwrap(), &[2, 4, 5]);
    let (x, y) = (v64(&a), v64(&b));
    let mut want = vec![0.0; 40];
    for p in 0..2 {
        for i in 0..4 {
            for j in 0..5 {
                want[(p * 4 + i) * 5 + j] =
                    (0..3).map(|k| x[p * 12 + k * 4 + i] * y[j * 3 + k]).sum();
            }
        }
    }
    close("matmul ta tb", &out(&g, c), &want);
}

#[test]
fn broadcast_matches_index_math() {
    let (a, b) = (randn(&[2, 1, 3], 1), randn(&[4, 1], 2));
    let mut g = graph(1);
    let (av, bv) = (input(&mut g, &a), input(&mut g, &b));
    let s = g.add(av, bv).unwrap();
    let m = g.mul(av, bv).unwrap();
    assert_eq!(g.dims(s).unwrap(), &[2, 4, 3]);
    let (x, y) = (v64(&a), v64(&b));
    let (mut ws, mut wm) = (vec![], vec![]);
    for i in 0..2 {
        for j in 0..4 {
            for k in 0..3 {
                ws.push(x[i * 3 + k] + y[j]);
                wm.push(x[i * 3 + k] * y[j]);
            }
        }
    }
    close("add", &out(&g, s), &ws);
    close("mul", &out(&g, m), &wm);
}

fn softmax64(x: &[f64]) -> Vec<f64> {
    let m = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = x.iter().map(|v| (v - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

#[test]
fn attention_matches_naive() {
    let (b, t, c, h) = (2, 5, 6, 3);
    let d = c / h;
    let (q, k, v) = (randn(&[b, t, c], 1), randn(&[b, t, c], 2), randn(&[b, t, c], 3));
    let mask: Vec<f32> = vec![1., 1., 1., 1., 1., 1., 1., 0., 1., 0.];
    for threads in [1, 2] {
        let mut g = graph(threads);
        let (qv, kv, vv) = (input(&mut g, &q), input(&mut g, &k), input(&mut g, &v));
        let m = g.input_slice(&[b, t], &mask).unwrap();
        let o = g.attention(qv, kv, vv, Some(m), h).unwrap();
        let (x, y, z) = (v64(&q), v64(&k), v64(&v));
        let mut want = vec![0.0; b * t * c];
        for bi in 0..b {
            for hi in 0..h {
                for i in 0..t {
                    let at = |buf: &[f64], r: usize, e: usize| buf[(bi * t + r) * c + hi * d + e];
                    let scores: Vec<f64> = (0..t)
                        .map(|j| {
                            if mask[bi * t + j] == 0.0 {
                                f64::NEG_INFINITY
                            } else {
                                (0..d).map(|e| at(&x, i, e) * at(&y, j, e)).sum::<f64>()
                                    / (d as f64).sqrt()
                            }
                        })
                        .collect();
                    let p = softmax64(&scores);
                    for e in 0..d {
                        want[(bi * t + i) * c + hi * d + e] =
                            (0..t).map(|j| p[j] * at(&z, j, e)).sum();
                    }
                }
            }
        }
        close("attention", &out(&g, o), &want);
    }
}

#[test]
fn norms_and_softmaxes_match_naive() {
    let x = randn(&[3, 5], 1);
    let (gm, bt) = (randn(&[5], 2), randn(&[5], 3));
    let mut g = graph(2);
    let xv = input(&mut g, &x);
    let (gv, bv) = (input(&mut g, &gm), input(&mut g, &bt));
    let ln = g.layer_norm(xv, gv, bv, 1e-5).unwrap();
    let sm = g.softmax(xv).unwrap();
    let ls = g.log_softmax(xv).unwrap();
    let l2 = g.l2_normalize(xv, 1e-6).unwrap();
    let (xs, gs, bs) = (v64(&x), v64(&gm), v64(&bt));
    let (mut wln, mut wsm, mut wls, mut wl2) = (vec![], vec![], vec![], vec![]);
    for r in xs.chunks(5) {
        let mean = r.iter().sum::<f64>() / 5.0;
        let var = r.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 5.0;
        let rstd = 1.0 / (var + 1e-5).sqrt();
        wln.extend(r.iter().enumerate().map(|(i, v)| (v - mean) * rstd * gs[i] + bs[i]));
        let p = softmax64(r);
        wls.extend(p.iter().map(|v| v.ln()));
        wsm.extend(p);
        let n = r.iter().map(|v| v * v).sum::<f64>().sqrt();
        wl2.extend(r.iter().map(|v| v / n));
    }
    close("layer_norm", &out(&g, ln), &wln);
    close("softmax", &out(&g, sm), &wsm);
    close("log_softmax", &out(&g, ls), &wls);
    close("l2_normalize", &out(&g, l2), &wl2);
}

#[test]
fn losses_match_naive() {
    let (a, b) = (randn(&[3, 4], 1), randn(&[3, 4], 2));
    let targets = [1u32, 3, 0];
    let mut g = graph(1);
    let (av, bv) = (input(&mut g, &a), input(&mut g, &b));
    let ce = g.cross_entropy(av, &targets).unwrap();
    let (pa, pb) = (g.log_softmax(av).unwrap(), g.log_softmax(bv).unwrap());
    let kl = g.kl_div(pa, pb).unwrap();
    let mse = g.mse(av, bv).unwrap();
    let (x, y) = (v64(&a), v64(&b));
    let mut wce = 0.0;
    let mut wkl = 0.0;
    for (i, (r, s)) in x.chunks(4).zip(y.chunks(4)).enumerate() {
        let (p, q) = (softmax64(r), softmax64(s));
        wce -= p[targets[i] as usize].ln() / 3.0;
        wkl += (0..4).map(|j| p[j] * (p[j].ln() - q[j].ln())).sum::<f64>() / 3.0;
    }
    let wmse = x.iter().zip(&y).map(|(p, q)| (p - q).powi(2)).sum::<f64>() / 12.0;
    close("cross_entropy", &out(&g, ce), &[wce]);
    close("kl_div", &out(&g, kl), &[wkl]);
    close("mse", &out(&g, mse), &[wmse]);
}

#[test]
fn gathers_and_pooling_match_naive() {
    let table = randn(&[5, 3], 1);
    let mut g = graph(1);
    let tv = input(&mut g, &table);
    let e = g.embedding(tv, &[4, 0, 4, 2], &[2, 2]).unwrap();
    assert_eq!(g.dims(e).unwrap(), &[2, 2, 3]);
    let tb = v64(&table);
    let want: Vec<f64> = [4, 0, 4, 2].iter().flat_map(|&r| tb[r * 3..r * 3 + 3].to_vec()).collect();
    close("embedding", &out(&g, e), &want);

    let x = randn(&[2, 3, 2], 2);
    let xv = input(&mut g, &x);
    let m = g.input_slice(&[2, 3], &[1.0, 0.0, 1.0, 0.0, 0.0, 0.0]).unwrap();
    let mp = g.mean_pool(xv, m).unwrap();
    let cls = g.cls_pool(xv).unwrap();
    let xs = v64(&x);
    // Row 0 averages positions 0 and 2; row 1 is fully masked -> zeros.
    let wmp = vec![(xs[0] + xs[4]) / 2.0, (xs[1] + xs[5]) / 2.0, 0.0, 0.0];
    close("mean_pool", &out(&g, mp), &wmp);
    close("cls_pool", &out(&g, cls), &[xs[0], xs[1], xs[6], xs[7]]);
}
