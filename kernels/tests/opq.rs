//! Optimized PQ: the Jacobi SVD reconstructs and is orthogonal (also for
//! singular matrices), Procrustes recovers a known rotation, rotations
//! keep inner products, and a learnt rotation quantizes data whose
//! structure crosses sub-vector boundaries better than plain PQ.

use edgecl_kernels::dispatch::Tier;
use edgecl_kernels::pq::kmeans::SplitMix64;
use edgecl_kernels::pq::opq::{self, OpqConfig};
use edgecl_kernels::pq::{PqError, ProductQuantizer, TrainConfig};
use proptest::prelude::*;

/// f64 factorisations of matrices with entries in [-1, 1]: allowed error.
const SVD_TOL: f64 = 1e-9;

fn cfg() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(24);
    ProptestConfig { cases, ..ProptestConfig::default() }
}

fn uniform(rng: &mut SplitMix64, len: usize) -> Vec<f64> {
    (0..len).map(|_| rng.next_f64() * 2.0 - 1.0).collect()
}

/// Largest `|R R^T - I|` entry of a row-major `d x d` matrix.
fn orth_error(r: &[f64], d: usize) -> f64 {
    let mut worst = 0f64;
    for i in 0..d {
        for j in 0..d {
            let dot: f64 = (0..d).map(|k| r[i * d + k] * r[j * d + k]).sum();
            worst = worst.max((dot - if i == j { 1.0 } else { 0.0 }).abs());
        }
    }
    worst
}

/// Checks `A = U diag(s) V^T` with orthogonal `U`, `V` and `s >= 0`.
fn check_svd(a: &[f64], d: usize) -> Result<(), TestCaseError> {
    let svd = opq::svd_jacobi(a, d).unwrap();
    prop_assert!(svd.s.iter().all(|&x| x >= 0.0));
    prop_assert!(orth_error(&svd.ut, d) < SVD_TOL, "U not orthogonal");
    prop_assert!(orth_error(&svd.vt, d) < SVD_TOL, "V not orthogonal");
    for i in 0..d {
        for j in 0..d {
            let r: f64 = (0..d).map(|k| svd.ut[k * d + i] * svd.s[k] * svd.vt[k * d + j]).sum();
            prop_assert!(
                (r - a[i * d + j]).abs() < SVD_TOL,
                "A[{}][{}]: {} vs {}",
                i,
                j,
                r,
                a[i * d + j]
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(cfg())]

    #[test]
    fn svd_reconstructs(d in 1usize..14, seed: u64) {
        let mut rng = SplitMix64::new(seed);
        check_svd(&uniform(&mut rng, d * d), d)?;
    }

    #[test]
    fn svd_of_rank_deficient_matrices(d in 2usize..12, rank in 0usize..4, seed: u64) {
        // A = B C with B d x rank, C rank x d: rank below d.
        let mut rng = SplitMix64::new(seed);
        let rank = rank.min(d - 1);
        let (b, c) = (uniform(&mut rng, d * rank), uniform(&mut rng, rank * d));
        let mut a = vec![0f64; d * d];
        for i in 0..d {
            for j in 0..d {
                a[i * d + j] = (0..rank).map(|k| b[i * rank + k] * c[k * d + j]).sum();
            }
        }
        check_svd(&a, d)?;
    }

    #[test]
    fn procrustes_recovers_a_rotation(d in 1usize..12, scale in 0.1f64..10.0, seed: u64) {
        // An orthogonal Q (the polar factor of a random matrix); the
        // orthogonal R maximising trace(R^T (s Q)) is Q itself.
        let mut rng = SplitMix64::new(seed);
        let q = opq::procrustes(&uniform(&mut rng, d * d), d).unwrap();
        prop_assert!(orth_error(&q, d) < SVD_TOL);
        let sq: Vec<f64> = q.iter().map(|x| x * scale).collect();
        let r = opq::procrustes(&sq, d).unwrap();
        for (x, y) in r.iter().zip(&q) {
            prop_assert!((x - y).abs() < 1e-8, "{} vs {}", x, y);
        }
    }

    #[test]
    fn rotation_keeps_inner_products(d in 1usize..40, n in 1usize..9, seed: u64) {
        let mut rng = SplitMix64::new(seed);
        let r: Vec<f32> = opq::procrustes(&uniform(&mut rng, d * d), d)
            .unwrap()
            .iter()
            .map(|&x| x as f32)
            .collect();
        let x: Vec<f32> = uniform(&mut rng, n * d).iter().map(|&v| v as f32).collect();
        for tier in Tier::all_variants() {
            let mut y = vec![f32::NAN; n * d];
            opq::rotate_with(tier, &r, d, &x, &mut y).unwrap();
            for (a, ya) in x.chunks_exact(d).zip(y.chunks_exact(d)) {
                for (b, yb) in x.chunks_exact(d).zip(y.chunks_exact(d)) {
                    let dot = |u: &[f32], v: &[f32]| -> f32 { u.iter().zip(v).map(|(p, q)| p * q).sum() };
                    prop_assert!((dot(a, b) - dot(ya, yb)).abs() < 1e-4 * d as f32, "tier {}", tier);
                }
            }
        }
    }
}

/// Points in 16 dimensions that vary mostly along 4 directions spread
/// over every coordinate, so each sub-vector of plain PQ sees all of them.
fn tangled(n: usize, seed: u64) -> Vec<f32> {
    let d = 16;
    let mut rng = SplitMix64::new(seed);
    let dirs = opq::procrustes(&uniform(&mut rng, d * d), d).unwrap();
    let scales = [4.0, 3.0, 2.5, 2.0];
    (0..n)
        .flat_map(|_| {
            let mut x = vec![0f64; d];
            for (k, s) in scales.iter().enumerate() {
                let g = s * (rng.next_f64() * 2.0 - 1.0);
                x.iter_mut().zip(&dirs[k * d..(k + 1) * d]).for_each(|(o, &v)| *o += g * v);
            }
            x.iter_mut().for_each(|o| *o += 0.05 * (rng.next_f64() * 2.0 - 1.0));
            x.into_iter().map(|v| v as f32).collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn opq_beats_pq_on_tangled_data() {
    let (n, d, m) = (2000, 16, 4);
    let data = tangled(n, 7);
    let cfg = OpqConfig { iters: 8, pq_iters: 4, final_iters: 12, seed: 3 };
    let o = opq::train(&data, d, m, 4, cfg).unwrap();
    let r64: Vec<f64> = o.rotation.iter().map(|&x| x as f64).collect();
    assert!(orth_error(&r64, d) < 1e-5, "rotation not orthogonal");

    // Plain PQ with as many Lloyd iterations in all.
    let pq = ProductQuantizer::train(&data, d, m, 4, TrainConfig { iters: 40, seed: 3 }).unwrap();
    let mse = |pq: &ProductQuantizer, x: &[f32]| {
        let mut codes = vec![0u8; n * m];
        let mut back = vec![0f32; n * d];
        pq.encode(x, &mut codes).unwrap();
        pq.decode(&codes, &mut back).unwrap();
        x.iter().zip(&back).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>() / n as f64
    };
    let mut y = vec![0f32; n * d];
    opq::rotate(&o.rotation, d, &data, &mut y).unwrap();
    let (e_pq, e_opq) = (mse(&pq, &data), mse(&o.pq, &y));
    // The recorded last error is the one measured here.
    let last = *o.errors.last().unwrap();
    assert!((last - e_opq).abs() <= 1e-6 * e_opq.max(1.0), "{last} vs {e_opq}");
    assert!(e_opq < 0.8 * e_pq, "opq {e_opq} vs pq {e_pq}");
}

#[test]
fn opq_errors() {
    let cfg = OpqConfig::default();
    let too_wide = opq::MAX_DIM + 1;
    assert!(matches!(opq::train(&[0.0; 4], too_wide, 1, 4, cfg), Err(PqError::Invalid { .. })));
    assert!(matches!(opq::train(&[0.0; 5], 2, 1, 4, cfg), Err(PqError::Shape { .. })));
    // Too few points for 16 centroids.
    assert!(matches!(opq::train(&[0.5; 20], 2, 1, 4, cfg), Err(PqError::TooFewPoints { .. })));
    assert!(matches!(opq::svd_jacobi(&[1.0; 3], 2), Err(PqError::Mismatch { .. })));
    assert!(matches!(
        opq::svd_jacobi(&[1.0, f64::NAN, 0.0, 1.0], 2),
        Err(PqError::NotFinite { .. })
    ));
    let mut out = [0f32; 4];
    assert!(matches!(
        opq::rotate(&[1.0; 3], 2, &[0.0; 4], &mut out),
        Err(PqError::Mismatch { .. })
    ));
    assert!(matches!(opq::rotate(&[1.0; 4], 2, &[0.0; 3], &mut out), Err(PqError::Shape { .. })));
}
