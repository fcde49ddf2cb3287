//! Product quantization: k-means invariants as properties (nearest-centre
//! assignment, non-increasing objective, determinism per seed and across
//! thread counts), PQ encode and tables against brute force, and the 4-bit
//! fast-scan on every tier against a scalar scan over the same quantized
//! tables, bit-exact and ranked identically.

use edgecl_kernels::dispatch::Tier;
use edgecl_kernels::pq::fastscan::{self, PackedCodes, QuantizedTable};
use edgecl_kernels::pq::{self, KMeansConfig, Metric, PqError, ProductQuantizer, TrainConfig};
use edgecl_kernels::search::{self, topk::f32_key, Hit};
use proptest::prelude::*;

/// The objective is an f64 sum of f32 distances to f32 means, so an
/// iteration may "increase" it by rounding: allowed relative slack.
const OBJ_REL: f64 = 1e-5;

fn cfg() -> ProptestConfig {
    // PROPTEST_CASES, when set, wins over this file's default.
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(24);
    ProptestConfig { cases, ..ProptestConfig::default() }
}

/// Points around a few centres, on a coarse grid so duplicates occur.
fn clustered(n: usize, d: usize, seed: u64) -> Vec<f32> {
    let mut rng = pq::kmeans::SplitMix64::new(seed);
    let centres: Vec<f32> = (0..4 * d).map(|_| (rng.below(21) as f32 - 10.0) * 0.5).collect();
    (0..n)
        .flat_map(|_| {
            let c = rng.below(4);
            (0..d)
                .map(|j| centres[c * d + j] + (rng.below(9) as f32 - 4.0) * 0.125)
                .collect::<Vec<_>>()
        })
        .collect()
}

fn sort_topk<S: Copy, K: Ord>(scores: &[S], k: usize, key: impl Fn(S) -> K) -> Vec<Hit<S>> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| (key(scores[a]), a).cmp(&(key(scores[b]), b)));
    idx.truncate(k);
    idx.into_iter().map(|i| Hit { id: i as u32, score: scores[i] }).collect()
}

proptest! {
    #![proptest_config(cfg())]

    #[test]
    fn kmeans_invariants(n in 8usize..300, d in 1usize..7, k in 1usize..9, iters in 0usize..8, seed: u64) {
        prop_assume!(n >= k);
        let data = clustered(n, d, seed);
        for tier in Tier::all_variants() {
            let kc = KMeansConfig { k, iters, seed };
            let km = pq::kmeans_with(tier, &data, d, kc).unwrap();
            prop_assert_eq!(km.centroids.len(), k * d);
            // Every point sits with its nearest centre (first on ties).
            let mut dist = vec![0f32; k];
            for (i, x) in data.chunks_exact(d).enumerate() {
                search::l2sq_f32_with(tier, x, &km.centroids, &mut dist).unwrap();
                let best = (0..k).fold(0, |b, c| if dist[c] < dist[b] { c } else { b });
                prop_assert_eq!(km.assign[i] as usize, best, "point {} tier {}", i, tier);
            }
            // The objective never increases (beyond rounding).
            for w in km.objective.windows(2) {
                prop_assert!(w[1] <= w[0] * (1.0 + OBJ_REL) + 1e-9, "objective rose: {:?}", km.objective);
            }
            // Same seed, same result, whatever the thread count.
            for threads in [1, 3] {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                let again = pool.install(|| pq::kmeans_with(tier, &data, d, kc).unwrap());
                prop_assert_eq!(&again.centroids, &km.centroids);
                prop_assert_eq!(&again.assign, &km.assign);
            }
        }
    }

    #[test]
    fn fastscan_matches_scalar_scan(
        n in 0usize..200,
        m in 1usize..20,
        seed: u64,
    ) {
        let mut rng = pq::kmeans::SplitMix64::new(seed);
        let codes: Vec<u8> = (0..n * m).map(|_| rng.below(16) as u8).collect();
        let lut: Vec<u8> = (0..m * 16).map(|_| rng.below(256) as u8).collect();
        // Reference straight from the unpacked codes.
        let want: Vec<u16> = codes
            .chunks_exact(m)
            .map(|c| c.iter().enumerate().map(|(j, &v)| lut[j * 16 + v as usize] as u16).sum())
            .collect();
        let packed = PackedCodes::pack(&codes, m).unwrap();
        for (i, c) in codes.chunks_exact(m).enumerate() {
            for (j, &v) in c.iter().enumerate() {
                prop_assert_eq!(packed.code(i, j), v);
            }
        }
        let table = QuantizedTable::from_lut(lut, m).unwrap();
        for tier in Tier::all_variants() {
            let mut got = vec![u16::MAX; n];
            fastscan::scan_with(tier, &table, &packed, &mut got).unwrap();
            prop_assert_eq!(&got, &want, "tier {}", tier);
            for k in [0usize, 1, 10, 250] {
                let top = fastscan::topk_with(tier, &table, &packed, k).unwrap();
                prop_assert_eq!(&top, &sort_topk(&want, k, |s| s), "k {} tier {}", k, tier);
                for parts in [2, 3, 7] {
                    let split = fastscan::topk_split_with(tier, &table, &packed, k, parts).unwrap();
                    prop_assert_eq!(&split, &top, "k {} parts {} tier {}", k, parts, tier);
                }
            }
        }
    }

    #[test]
    fn fastscan_threshold_scan_matches_scalar(
        n in 0usize..300,
        m in 1usize..20,
        k in 0usize..40,
        start in 0u16..3000,
        every in 1u32..5,
        seed: u64,
    ) {
        let mut rng = pq::kmeans::SplitMix64::new(seed);
        let codes: Vec<u8> = (0..n * m).map(|_| rng.below(16) as u8).collect();
        let lut: Vec<u8> = (0..m * 16).map(|_| rng.below(256) as u8).collect();
        let packed = PackedCodes::pack(&codes, m).unwrap();
        let table = QuantizedTable::from_lut(lut.clone(), m).unwrap();
        // Sums of whole blocks, padding included, as the kernels see them.
        let blocks = n.div_ceil(fastscan::BLOCK);
        let mut all = vec![0u16; blocks * fastscan::BLOCK];
        fastscan::scan_scalar(&lut, m, packed.bytes(), &mut all);
        let want_top = {
            let kept: Vec<u16> = all[..n].to_vec();
            let mut top = sort_topk(&kept, n, |s| s);
            top.retain(|h| h.id % every == 0);
            top.truncate(k);
            top
        };
        for tier in Tier::all_variants() {
            // A threshold that drops by one on every hit: the blocks
            // reported and the sums handed over are the reference's.
            let mut want_blocks = Vec::new();
            let mut t = start;
            for (b, s) in all.chunks_exact(fastscan::BLOCK).enumerate() {
                if s.iter().any(|&x| x < t) {
                    want_blocks.push((b * fastscan::BLOCK, s.to_vec()));
                    t = t.saturating_sub(1);
                }
            }
            let mut got_blocks = Vec::new();
            let mut hit = |first: usize, sums: &[u16; 32]| {
                got_blocks.push((first, sums.to_vec()));
                start.saturating_sub(got_blocks.len() as u16)
            };
            let last =
                fastscan::scan_below_with(tier, &table, &packed, 0..blocks, start, &mut hit)
                    .unwrap();
            prop_assert_eq!(last, t, "tier {}", tier);
            prop_assert_eq!(&got_blocks, &want_blocks, "tier {}", tier);
            // The filtered top-k on the calling thread ranks as sorting does.
            let mut best = fastscan::Best::new(k);
            fastscan::topk_into_with(tier, &table, &packed, &mut best, |id| id % every == 0)
                .unwrap();
            prop_assert_eq!(best.into_sorted(), want_top.clone(), "k {} tier {}", k, tier);
        }
    }

    #[test]
    fn quantized_tables_bound_the_error(m in 1usize..12, seed: u64, ip: bool) {
        let mut rng = pq::kmeans::SplitMix64::new(seed);
        let table: Vec<f32> = (0..m * 16).map(|_| rng.next_f64() as f32 * 10.0 - 3.0).collect();
        let metric = if ip { Metric::InnerProduct } else { Metric::L2 };
        let q = QuantizedTable::new(&table, m, metric).unwrap();
        let codes: Vec<u8> = (0..50 * m).map(|_| rng.below(16) as u8).collect();
        let packed = PackedCodes::pack(&codes, m).unwrap();
        let mut sums = vec![0u16; 50];
        fastscan::scan(&q, &packed, &mut sums).unwrap();
        // Each entry rounds by at most half a unit: m / 2 units in all.
        let range = table.chunks_exact(16).map(|t| {
            t.iter().copied().fold(f32::MIN, f32::max) - t.iter().copied().fold(f32::MAX, f32::min)
        }).fold(0f32, f32::max);
        let unit = range / 255.0;
        for (c, &s) in codes.chunks_exact(m).zip(&sums) {
            let exact: f32 = c.iter().enumerate().map(|(j, &v)| table[j * 16 + v as usize]).sum();
            let cost = if ip { -exact } else { exact };
            prop_assert!((q.to_cost(s) - cost).abs() <= unit * (m as f32 * 0.5 + 0.01) + 1e-4);
        }
    }
}

/// With a shortlist as long as the data, fast-scan search is exact ADC.
#[test]
fn fastscan_search_with_full_rerank_is_exact_adc() {
    let (n, d, m) = (700, 16, 8);
    let data = clustered(n, d, 11);
    let pq = ProductQuantizer::train(&data, d, m, 4, TrainConfig { iters: 6, seed: 5 }).unwrap();
    let mut codes = vec![0u8; n * m];
    pq.encode(&data, &mut codes).unwrap();
    let packed = PackedCodes::pack(&codes, m).unwrap();
    let mut table = vec![0f32; m * 16];
    for metric in [Metric::L2, Metric::InnerProduct] {
        pq.distance_table(&data[..d], metric, &mut table).unwrap();
        let want = pq::adc_topk(&table, m, 16, &codes, metric, 10).unwrap();
        for tier in Tier::all_variants() {
            let got = fastscan::search_with(tier, &table, metric, &packed, 10, n).unwrap();
            assert_eq!(got, want, "{metric:?} tier {tier}");
        }
    }
}

/// The widest table: 256 sub-quantizers of 255 sum to 65280 without wrap.
#[test]
fn fastscan_widest_m() {
    let m = fastscan::MAX_M;
    let codes = vec![15u8; 40 * m];
    let packed = PackedCodes::pack(&codes, m).unwrap();
    let table = QuantizedTable::from_lut(vec![255; m * 16], m).unwrap();
    for tier in Tier::all_variants() {
        let mut out = vec![0u16; 40];
        fastscan::scan_with(tier, &table, &packed, &mut out).unwrap();
        assert!(out.iter().all(|&s| s == 65280), "tier {tier}");
    }
}

#[test]
fn pq_encode_tables_and_adc() {
    let (n, d, m) = (600, 12, 3);
    let data = clustered(n, d, 3);
    let pq = ProductQuantizer::train(&data, d, m, 8, TrainConfig { iters: 4, seed: 9 }).unwrap();
    assert_eq!((pq.ksub(), pq.dsub()), (256, 4));
    let mut codes = vec![0u8; n * m];
    pq.encode(&data, &mut codes).unwrap();
    let cents = pq.centroids();
    let l2 = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f32>();
    // Each code is a nearest centroid of its sub-vector.
    for (x, c) in data.chunks_exact(d).zip(codes.chunks_exact(m)) {
        for j in 0..m {
            let xs = &x[j * 4..(j + 1) * 4];
            let chosen = l2(xs, &cents[(j * 256 + c[j] as usize) * 4..][..4]);
            for k in 0..256 {
                assert!(chosen <= l2(xs, &cents[(j * 256 + k) * 4..][..4]) * (1.0 + 1e-5) + 1e-6);
            }
        }
    }
    // Tables, scan and top-k.
    let q = &data[5 * d..6 * d];
    let mut table = vec![0f32; m * 256];
    pq.distance_table(q, Metric::L2, &mut table).unwrap();
    for j in 0..m {
        for k in 0..256 {
            let want = l2(&q[j * 4..(j + 1) * 4], &cents[(j * 256 + k) * 4..][..4]);
            assert!((table[j * 256 + k] - want).abs() <= 1e-4 * (1.0 + want));
        }
    }
    let mut scores = vec![0f32; n];
    pq::adc_scan(&table, m, 256, &codes, &mut scores).unwrap();
    for (c, &s) in codes.chunks_exact(m).zip(&scores) {
        let want: f32 = (0..m).map(|j| table[j * 256 + c[j] as usize]).sum();
        assert_eq!(s.to_bits(), want.to_bits());
    }
    let top = pq::adc_topk(&table, m, 256, &codes, Metric::L2, 25).unwrap();
    assert_eq!(top, sort_topk(&scores, 25, f32_key));
    // Row 5 encodes to itself, so its ADC distance is the smallest there is.
    assert!(top[0].score <= scores[5]);
}

#[test]
fn pq_errors() {
    let data = vec![0f32; 40];
    let tc = TrainConfig { iters: 2, seed: 1 };
    assert!(matches!(ProductQuantizer::train(&data, 4, 3, 8, tc), Err(PqError::Invalid { .. })));
    assert!(matches!(ProductQuantizer::train(&data, 4, 2, 5, tc), Err(PqError::Invalid { .. })));
    assert!(matches!(
        ProductQuantizer::train(&data, 4, 2, 4, tc),
        Err(PqError::TooFewPoints { .. })
    ));
    let mut bad = clustered(20, 2, 1);
    bad[7] = f32::NAN;
    let kc = KMeansConfig { k: 3, iters: 2, seed: 0 };
    assert_eq!(
        pq::kmeans(&bad, 2, kc).unwrap_err(),
        PqError::NotFinite { what: "kmeans: data", index: 7 }
    );
    assert!(matches!(
        PackedCodes::pack(&[1, 16], 2),
        Err(PqError::CodeOutOfRange { index: 1, .. })
    ));
    assert!(matches!(
        pq::adc_scan(&[0.0; 32], 2, 16, &[1, 2, 3], &mut [0.0]),
        Err(PqError::Shape { .. })
    ));
    let t = QuantizedTable::from_lut(vec![0; 32], 2).unwrap();
    let p = PackedCodes::pack(&[1, 2, 3], 3).unwrap();
    assert!(matches!(fastscan::scan(&t, &p, &mut [0]), Err(PqError::Mismatch { .. })));
}

/// More centres than distinct points: centres left empty cannot be split
/// further, yet the run succeeds, every point sits on a centre and the
/// objective reaches zero.
#[test]
fn kmeans_with_more_centres_than_distinct_points() {
    let data: Vec<f32> =
        [0f32, 10.0, 20.0].iter().flat_map(|&p| std::iter::repeat_n(p, 30)).collect();
    for seed in 0..20 {
        let km = pq::kmeans(&data, 1, KMeansConfig { k: 5, iters: 10, seed }).unwrap();
        assert_eq!(km.centroids.len(), 5);
        for (x, &a) in data.iter().zip(&km.assign) {
            assert_eq!(km.centroids[a as usize], *x, "seed {seed}");
        }
        assert_eq!(*km.objective.last().unwrap(), 0.0);
    }
}
