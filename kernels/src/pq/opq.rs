//! Optimized product quantization: an orthogonal rotation learnt jointly
//! with the codebooks, so that the sub-vectors PQ cuts are the ones it
//! quantizes best.
//!
//! With data `X` (`n x d`, rows are vectors) and a rotation `R` (`d x d`,
//! orthogonal), vectors are quantized as `y = x R`. Training alternates
//! two steps that each lower the reconstruction error `|X R - Y^|^2`
//! (the non-parametric OPQ of Ge et al., 2013):
//!
//! 1. fix `R`: a few Lloyd iterations per sub-quantizer on `X R`, started
//!    from the previous codebooks, then encode and reconstruct `Y^`;
//! 2. fix `Y^`: the orthogonal `R` minimising `|X R - Y^|` is the
//!    Procrustes solution `R = U V^T` where `X^T Y^ = U S V^T` is an SVD.
//!
//! Because `R` is orthogonal, inner products and distances are unchanged:
//! `(x R) . (q R) = x . q`, so a query is rotated once and searched against
//! the rotated codes, and rescoring with the original vectors needs nothing.
//!
//! The SVD is a one-sided Jacobi (Hestenes) iteration in f64 written here:
//! it is accurate to working precision for every singular value, simple to
//! check, and at `d <= 1024` its `O(d^3)` per sweep costs seconds at most,
//! small beside the PQ training it serves. Columns whose singular value
//! vanishes (a rank-deficient `X^T Y^`) get an orthonormal completion, so
//! the returned `R` is always orthogonal.
//!
//! Left out: the parametric OPQ initialisation (PCA with eigenvalue
//! allocation); training starts from the identity, i.e. from plain PQ.

use super::{kmeans::lloyd_from, PqError, ProductQuantizer, TrainConfig};
use crate::dispatch::{active, Tier};
use crate::gemm::sgemm_with;
use crate::mat::{MatMut, MatRef};

/// Largest dimension [`train`] and [`svd_jacobi`] accept.
pub const MAX_DIM: usize = 1024;

/// Settings of [`train`].
#[derive(Clone, Copy, Debug)]
pub struct OpqConfig {
    /// Alternations of codebook and rotation updates.
    pub iters: usize,
    /// Lloyd iterations per sub-quantizer in each alternation.
    pub pq_iters: usize,
    /// Lloyd iterations of the final codebooks, on the final rotation.
    pub final_iters: usize,
    /// Seed of the initial k-means.
    pub seed: u64,
}

impl Default for OpqConfig {
    fn default() -> Self {
        OpqConfig { iters: 10, pq_iters: 4, final_iters: 20, seed: 0x0b9_5eed }
    }
}

/// A trained rotation with the product quantizer of the rotated space.
#[derive(Clone, Debug)]
pub struct Opq {
    /// `d x d`, row-major; vectors are quantized as `x R`.
    pub rotation: Vec<f32>,
    pub pq: ProductQuantizer,
    /// Mean squared reconstruction error `|X R - Y^|^2 / n` after each
    /// alternation, and last after the final codebooks.
    pub errors: Vec<f64>,
}

/// Rotates the `n x d` rows of `x` into `out`: `out = x R`.
pub fn rotate(rotation: &[f32], d: usize, x: &[f32], out: &mut [f32]) -> Result<(), PqError> {
    rotate_with(active(), rotation, d, x, out)
}

pub fn rotate_with(
    tier: Tier,
    rotation: &[f32],
    d: usize,
    x: &[f32],
    out: &mut [f32],
) -> Result<(), PqError> {
    if d == 0 || rotation.len() != d * d {
        let what = "opq rotate: rotation";
        return Err(PqError::Mismatch { what, expected: d * d, found: rotation.len() });
    }
    if !x.len().is_multiple_of(d) {
        return Err(PqError::Shape { what: "opq rotate: x", len: x.len(), multiple_of: d });
    }
    if out.len() != x.len() {
        let what = "opq rotate: out";
        return Err(PqError::Mismatch { what, expected: x.len(), found: out.len() });
    }
    let n = x.len() / d;
    let bad = |_| PqError::Invalid { what: "opq rotate", reason: "matrix views" };
    let a = MatRef::row_major(x, n, d).map_err(bad)?;
    let b = MatRef::row_major(rotation, d, d).map_err(bad)?;
    let c = MatMut::row_major(out, n, d).map_err(bad)?;
    sgemm_with(tier, 1.0, a, b, 0.0, c).map_err(bad)
}

/// Learns a rotation and `m` sub-quantizers of `2^nbits` centroids on the
/// `n x d` rows of `data` (module doc).
pub fn train(data: &[f32], d: usize, m: usize, nbits: u32, cfg: OpqConfig) -> Result<Opq, PqError> {
    train_with(active(), data, d, m, nbits, cfg)
}

pub fn train_with(
    tier: Tier,
    data: &[f32],
    d: usize,
    m: usize,
    nbits: u32,
    cfg: OpqConfig,
) -> Result<Opq, PqError> {
    if d == 0 || d > MAX_DIM {
        return Err(PqError::Invalid { what: "opq train: d", reason: "must be in 1..=1024" });
    }
    if !data.len().is_multiple_of(d) {
        return Err(PqError::Shape { what: "opq train: data", len: data.len(), multiple_of: d });
    }
    let n = data.len() / d;
    let mut rotation = vec![0f32; d * d];
    for i in 0..d {
        rotation[i * d + i] = 1.0;
    }
    // Step 1 from scratch (k-means++ seeding) on the identity rotation.
    let tc = TrainConfig { iters: cfg.pq_iters, seed: cfg.seed };
    let mut pq = ProductQuantizer::train_with(tier, data, d, m, nbits, tc)?;
    let (mut y, mut recon) = (data.to_vec(), vec![0f32; n * d]);
    let mut codes = vec![0u8; n * m];
    let mut cross = vec![0f32; d * d];
    let mut errors = Vec::with_capacity(cfg.iters + 1);
    for it in 0..cfg.iters {
        if it > 0 {
            pq = refine(tier, &pq, &y, cfg.pq_iters)?;
        }
        pq.encode_with(tier, &y, &mut codes)?;
        pq.decode(&codes, &mut recon)?;
        errors.push(mse(&y, &recon, n));
        // Step 2: R = U V^T from the SVD of X^T Y^.
        let bad = |_| PqError::Invalid { what: "opq train", reason: "matrix views" };
        let xt = MatRef::row_major(data, n, d).map_err(bad)?.t();
        let yh = MatRef::row_major(&recon, n, d).map_err(bad)?;
        let c = MatMut::row_major(&mut cross, d, d).map_err(bad)?;
        sgemm_with(tier, 1.0, xt, yh, 0.0, c).map_err(bad)?;
        let cross64: Vec<f64> = cross.iter().map(|&v| v as f64).collect();
        let r = procrustes(&cross64, d)?;
        rotation.iter_mut().zip(&r).for_each(|(o, &v)| *o = v as f32);
        rotate_with(tier, &rotation, d, data, &mut y)?;
    }
    pq = refine(tier, &pq, &y, cfg.final_iters)?;
    pq.encode_with(tier, &y, &mut codes)?;
    pq.decode(&codes, &mut recon)?;
    errors.push(mse(&y, &recon, n));
    Ok(Opq { rotation, pq, errors })
}

/// Mean squared distance between the rows of `a` and `b`.
fn mse(a: &[f32], b: &[f32], n: usize) -> f64 {
    let s: f64 = a.iter().zip(b).map(|(&x, &y)| ((x - y) as f64).powi(2)).sum();
    s / n.max(1) as f64
}

/// Runs `iters` Lloyd iterations per sub-quantizer from `pq`'s centroids.
fn refine(
    tier: Tier,
    pq: &ProductQuantizer,
    data: &[f32],
    iters: usize,
) -> Result<ProductQuantizer, PqError> {
    let (d, m, ksub, dsub) = (pq.dim(), pq.m(), pq.ksub(), pq.dsub());
    let n = data.len() / d;
    let mut sub = vec![0f32; n * dsub];
    let mut cents = Vec::with_capacity(m * ksub * dsub);
    for j in 0..m {
        for (dst, row) in sub.chunks_exact_mut(dsub).zip(data.chunks_exact(d)) {
            dst.copy_from_slice(&row[j * dsub..(j + 1) * dsub]);
        }
        let init = pq.centroids()[j * ksub * dsub..(j + 1) * ksub * dsub].to_vec();
        cents.extend_from_slice(&lloyd_from(tier, &sub, dsub, init, iters)?.centroids);
    }
    ProductQuantizer::from_centroids(d, m, pq.nbits(), cents)
}

/// The orthogonal `R` (`d x d`, row-major) maximising `trace(R^T M)`, that
/// is `U V^T` for the SVD `M = U S V^T`.
pub fn procrustes(mat: &[f64], d: usize) -> Result<Vec<f64>, PqError> {
    let svd = svd_jacobi(mat, d)?;
    let mut r = vec![0f64; d * d];
    // R[i][j] = sum_k U[i][k] V[j][k]; the SVD keeps U's and V's columns
    // as rows (`ut`, `vt`).
    for k in 0..d {
        let (u, v) = (&svd.ut[k * d..(k + 1) * d], &svd.vt[k * d..(k + 1) * d]);
        for (i, &ui) in u.iter().enumerate() {
            for (o, &vj) in r[i * d..(i + 1) * d].iter_mut().zip(v) {
                *o += ui * vj;
            }
        }
    }
    Ok(r)
}

/// A singular value decomposition `A = U diag(s) V^T` of a square matrix.
#[derive(Clone, Debug)]
pub struct Svd {
    /// `U^T`, row-major: row k is the k-th left singular vector.
    pub ut: Vec<f64>,
    /// Singular values, non-negative, in no particular order.
    pub s: Vec<f64>,
    /// `V^T`, row-major: row k is the k-th right singular vector.
    pub vt: Vec<f64>,
}

/// Sweeps after which [`svd_jacobi`] gives up converging: one-sided Jacobi
/// converges quadratically once close, in well under 30 sweeps for every
/// matrix we have met; a matrix still rotating after this many is reported
/// rather than looped on.
const MAX_SWEEPS: usize = 60;

/// One-sided Jacobi SVD of the `d x d` row-major matrix `a`.
///
/// Works on the columns of `a` (kept as rows of `W = A^T` so each column is
/// contiguous): every pair `(p, q)` with a non-negligible inner product is
/// rotated to make the two columns orthogonal, the same rotation applied to
/// `V` (starting from the identity). When no pair needs a rotation, `A V`
/// has orthogonal columns `s_k u_k`. Columns with `s_k` below `d * eps *
/// max s` are given orthonormal `u_k` by Gram-Schmidt over the unit
/// vectors, so `U` is orthogonal even when `A` is singular.
pub fn svd_jacobi(a: &[f64], d: usize) -> Result<Svd, PqError> {
    if d == 0 || d > MAX_DIM || a.len() != d * d {
        let what = "svd_jacobi: matrix";
        return Err(PqError::Mismatch { what, expected: d * d, found: a.len() });
    }
    if let Some(i) = a.iter().position(|x| !x.is_finite()) {
        return Err(PqError::NotFinite { what: "svd_jacobi: matrix", index: i });
    }
    // w = A^T: row k of w is column k of A.
    let mut w = vec![0f64; d * d];
    for i in 0..d {
        for j in 0..d {
            w[j * d + i] = a[i * d + j];
        }
    }
    let mut vt = vec![0f64; d * d];
    for k in 0..d {
        vt[k * d + k] = 1.0;
    }
    let eps = f64::EPSILON;
    let mut converged = false;
    for _ in 0..MAX_SWEEPS {
        let mut rotated = false;
        for p in 0..d {
            for q in p + 1..d {
                let (wp, wq) = rows2(&mut w, d, p, q);
                let (mut alpha, mut beta, mut gamma) = (0f64, 0f64, 0f64);
                for (&x, &y) in wp.iter().zip(wq.iter()) {
                    alpha += x * x;
                    beta += y * y;
                    gamma += x * y;
                }
                if gamma == 0.0 || gamma.abs() <= eps * (alpha * beta).sqrt() {
                    continue;
                }
                rotated = true;
                // The rotation zeroing the (p, q) entry of W W^T.
                let zeta = (beta - alpha) / (2.0 * gamma);
                let t = zeta.signum() / (zeta.abs() + (1.0 + zeta * zeta).sqrt());
                let c = 1.0 / (1.0 + t * t).sqrt();
                let s = c * t;
                rotate_pair(wp, wq, c, s);
                let (vp, vq) = rows2(&mut vt, d, p, q);
                rotate_pair(vp, vq, c, s);
            }
        }
        if !rotated {
            converged = true;
            break;
        }
    }
    if !converged {
        return Err(PqError::Invalid {
            what: "svd_jacobi",
            reason: "did not converge within the sweep limit",
        });
    }
    // Singular values and left vectors; vanishing ones completed below.
    let mut s: Vec<f64> =
        w.chunks_exact(d).map(|r| r.iter().map(|x| x * x).sum::<f64>().sqrt()).collect();
    let smax = s.iter().copied().fold(0f64, f64::max);
    let tiny = smax * d as f64 * eps;
    let mut ut = w;
    let mut missing = Vec::new();
    for k in 0..d {
        if s[k] > tiny && s[k] > 0.0 {
            ut[k * d..(k + 1) * d].iter_mut().for_each(|x| *x /= s[k]);
        } else {
            s[k] = 0.0;
            missing.push(k);
        }
    }
    complete_basis(&mut ut, d, &missing);
    Ok(Svd { ut, s, vt })
}

/// Rows p < q of a row-major `? x d` matrix, mutably.
fn rows2(m: &mut [f64], d: usize, p: usize, q: usize) -> (&mut [f64], &mut [f64]) {
    let (head, tail) = m.split_at_mut(q * d);
    (&mut head[p * d..(p + 1) * d], &mut tail[..d])
}

/// `(x, y) <- (c x - s y, s x + c y)`.
fn rotate_pair(x: &mut [f64], y: &mut [f64], c: f64, s: f64) {
    for (a, b) in x.iter_mut().zip(y.iter_mut()) {
        let (u, v) = (*a, *b);
        *a = c * u - s * v;
        *b = s * u + c * v;
    }
}

/// Replaces rows `missing` of the row-major `d x d` matrix `u` (whose other
/// rows are orthonormal) by unit vectors orthogonal to every other row:
/// for each, the unit vector `e_i` with the largest residual after two
/// rounds of Gram-Schmidt against the rows kept so far.
fn complete_basis(u: &mut [f64], d: usize, missing: &[usize]) {
    let mut done: Vec<bool> = (0..d).map(|k| !missing.contains(&k)).collect();
    for &k in missing {
        let mut best = (0f64, vec![0f64; d]);
        for i in 0..d {
            let mut v = vec![0f64; d];
            v[i] = 1.0;
            for _ in 0..2 {
                for r in (0..d).filter(|&r| done[r]) {
                    let row = &u[r * d..(r + 1) * d];
                    let dot: f64 = row.iter().zip(&v).map(|(a, b)| a * b).sum();
                    v.iter_mut().zip(row).for_each(|(x, &a)| *x -= dot * a);
                }
            }
            let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
            if norm > best.0 {
                best = (norm, v);
            }
            // Past 1/2 the residual is as good as any for conditioning.
            if norm > 0.5 {
                break;
            }
        }
        let (norm, v) = best;
        u[k * d..(k + 1) * d].iter_mut().zip(&v).for_each(|(o, &x)| *o = x / norm);
        done[k] = true;
    }
}
