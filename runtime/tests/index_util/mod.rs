//! Data and reference answers shared by the index tests: seeded clustered
//! unit vectors, queries near them, and brute-force top-k.

#![allow(dead_code)]

/// `n` unit vectors of `dim` around `clusters` random centres, seeded.
pub fn clustered(n: usize, dim: usize, clusters: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    let mut rnd = move || {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((s >> 33) as f32 / (1u64 << 31) as f32) * 2.0 - 1.0
    };
    let centres: Vec<f32> = (0..clusters * dim).map(|_| rnd()).collect();
    let mut v = Vec::with_capacity(n * dim);
    for i in 0..n {
        let c = &centres[(i % clusters) * dim..][..dim];
        let row: Vec<f32> = c.iter().map(|&x| x + 0.35 * rnd()).collect();
        let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.extend(row.iter().map(|x| x / norm));
    }
    v
}

/// Queries near the corpus: rows of `v` with noise, renormalised.
pub fn queries_near(v: &[f32], dim: usize, count: usize, seed: u64) -> Vec<f32> {
    let noise = clustered(count, dim, 1, seed);
    let mut out = Vec::with_capacity(count * dim);
    for i in 0..count {
        let row = &v[(i * 37 % (v.len() / dim)) * dim..][..dim];
        let q: Vec<f32> = row.iter().zip(&noise[i * dim..]).map(|(a, b)| a + 0.3 * b).collect();
        let norm = q.iter().map(|x| x * x).sum::<f32>().sqrt();
        out.extend(q.iter().map(|x| x / norm));
    }
    out
}

pub fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("doc-{i}")).collect()
}

pub fn exact_topk(v: &[f32], dim: usize, q: &[f32], k: usize) -> Vec<u32> {
    let mut s: Vec<(f32, u32)> = v
        .chunks_exact(dim)
        .enumerate()
        .map(|(i, r)| (r.iter().zip(q).map(|(a, b)| a * b).sum(), i as u32))
        .collect();
    s.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    s.into_iter().take(k).map(|x| x.1).collect()
}

pub fn recall(got: &[u32], want: &[u32]) -> f64 {
    got.iter().filter(|d| want.contains(d)).count() as f64 / want.len() as f64
}

/// Brute-force top-k restricted to documents `keep` accepts.
pub fn exact_topk_where(
    v: &[f32],
    dim: usize,
    q: &[f32],
    k: usize,
    keep: impl Fn(u32) -> bool,
) -> Vec<u32> {
    let mut s: Vec<(f32, u32)> = v
        .chunks_exact(dim)
        .enumerate()
        .filter(|(i, _)| keep(*i as u32))
        .map(|(i, r)| (r.iter().zip(q).map(|(a, b)| a * b).sum(), i as u32))
        .collect();
    s.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    s.into_iter().take(k).map(|x| x.1).collect()
}
