//! Search kernels against their scalar references on every tier variant:
//! Hamming (single and batched) over code widths and tails, int8 and f32
//! scans and their gather variants over dimensions and unaligned starts,
//! and fused top-k against a full sort with the id tie-break.

use edgecl_kernels::dispatch::Tier;
use edgecl_kernels::search::{self, scalar, Hit, SearchError};
use proptest::prelude::*;

/// f32 scans sum in a different order per tier: allowed error relative to
/// `sum |q_j * r_j|` (or `sum (q_j - r_j)^2`).
const F32_REL: f32 = 1e-5;

fn cfg() -> ProptestConfig {
    ProptestConfig { cases: 48, ..ProptestConfig::default() }
}

/// `len` values starting at `off` inside a longer buffer, so kernels see
/// unaligned starts.
fn offset<T: Clone>(v: &[T], off: usize, pad: T) -> Vec<T> {
    let mut out = vec![pad; off];
    out.extend_from_slice(v);
    out
}

/// Reference top-k: every score, sorted by (key, id), first k.
fn sort_topk<S: Copy, K: Ord>(scores: &[S], k: usize, key: impl Fn(S) -> K) -> Vec<Hit<S>> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| (key(scores[a]), a).cmp(&(key(scores[b]), b)));
    idx.truncate(k);
    idx.into_iter().map(|i| Hit { id: i as u32, score: scores[i] }).collect()
}

fn words() -> impl Strategy<Value = usize> {
    prop_oneof![Just(1usize), Just(2), Just(3), Just(4), Just(5), Just(8), Just(9), Just(16)]
}

/// Codes drawn from few bits when `narrow`, so that distances tie often.
fn codes(n: usize, w: usize, seed: u64, narrow: bool) -> Vec<u64> {
    let mut s = seed | 1;
    (0..n * w)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            if narrow {
                s & 0x7
            } else {
                s
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(cfg())]

    #[test]
    fn hamming_matches_scalar(w in words(), n in 0usize..70, off in 0usize..3, seed: u64) {
        let c = codes(n + 1, w, seed, false);
        let (q, cs) = c.split_at(w);
        let padded = offset(cs, off, 0);
        let cs = &padded[off..];
        let mut want = vec![0u32; n];
        scalar::hamming(q, cs, &mut want);
        for tier in Tier::all_variants() {
            let mut got = vec![u32::MAX; n];
            search::hamming_with(tier, q, cs, &mut got).unwrap();
            prop_assert_eq!(&got, &want, "tier {}", tier);
        }
    }

    #[test]
    fn hamming_batch_matches_scalar(w in words(), n in 0usize..600, nq in 1usize..10, seed: u64) {
        let qs = codes(nq, w, seed, false);
        let cs = codes(n, w, seed ^ 0x55, false);
        let mut want = vec![0u32; nq * n];
        for (q, o) in qs.chunks_exact(w).zip(want.chunks_exact_mut(n.max(1))) {
            scalar::hamming(q, &cs, &mut o[..n]);
        }
        for tier in Tier::all_variants() {
            let mut got = vec![u32::MAX; nq * n];
            search::hamming_batch_with(tier, w, &qs, &cs, &mut got).unwrap();
            prop_assert_eq!(&got, &want, "tier {}", tier);
        }
    }

    #[test]
    fn hamming_topk_equals_sort(w in words(), n in 0usize..900, k in 0usize..40, seed: u64, narrow: bool) {
        let cs = codes(n + 1, w, seed, narrow);
        let (q, cs) = cs.split_at(w);
        let mut all = vec![0u32; n];
        scalar::hamming(q, cs, &mut all);
        let want = sort_topk(&all, k, |s| s);
        for tier in Tier::all_variants() {
            let got = search::hamming_topk_with(tier, q, cs, k).unwrap();
            prop_assert_eq!(&got, &want, "tier {}", tier);
        }
    }

    #[test]
    fn hamming_topk_batch_equals_single(w in words(), n in 0usize..700, nq in 1usize..6, k in 1usize..20, seed: u64) {
        let qs = codes(nq, w, seed, true);
        let cs = codes(n, w, seed ^ 3, true);
        for tier in Tier::all_variants() {
            let got = search::hamming_topk_batch_with(tier, w, &qs, &cs, k).unwrap();
            prop_assert_eq!(got.len(), nq);
            for (q, g) in qs.chunks_exact(w).zip(&got) {
                let mut all = vec![0u32; n];
                scalar::hamming(q, &cs, &mut all);
                prop_assert_eq!(g, &sort_topk(&all, k, |s| s), "tier {}", tier);
            }
        }
    }

    #[test]
    fn i8_scans_match_scalar(
        d in 1usize..150,
        n in 0usize..12,
        off in 0usize..5,
        data in proptest::collection::vec(any::<i8>(), 150 * 13),
    ) {
        let q = &data[..d];
        let padded = offset(&data[d..d + n * d], off, 0);
        let rows = &padded[off..];
        let (mut dot, mut l2) = (vec![0i32; n], vec![0u32; n]);
        scalar::dot_i8(q, rows, &mut dot);
        scalar::l2sq_i8(q, rows, &mut l2);
        for tier in Tier::all_variants() {
            let (mut gd, mut gl) = (vec![i32::MIN; n], vec![u32::MAX; n]);
            search::dot_i8_with(tier, q, rows, &mut gd).unwrap();
            search::l2sq_i8_with(tier, q, rows, &mut gl).unwrap();
            prop_assert_eq!(&gd, &dot, "dot tier {}", tier);
            prop_assert_eq!(&gl, &l2, "l2 tier {}", tier);
        }
    }

    #[test]
    fn f32_scans_match_scalar(
        d in 1usize..100,
        n in 0usize..12,
        off in 0usize..5,
        data in proptest::collection::vec(-2f32..2.0, 100 * 13),
    ) {
        let q = &data[..d];
        let padded = offset(&data[d..d + n * d], off, 0.0);
        let rows = &padded[off..];
        let (mut dot, mut l2) = (vec![0f32; n], vec![0f32; n]);
        scalar::dot_f32(q, rows, &mut dot);
        scalar::l2sq_f32(q, rows, &mut l2);
        for tier in Tier::all_variants() {
            let (mut gd, mut gl) = (vec![f32::NAN; n], vec![f32::NAN; n]);
            search::dot_f32_with(tier, q, rows, &mut gd).unwrap();
            search::l2sq_f32_with(tier, q, rows, &mut gl).unwrap();
            for (i, row) in rows.chunks_exact(d).enumerate() {
                let mag: f32 = q.iter().zip(row).map(|(a, b)| (a * b).abs()).sum();
                prop_assert!((gd[i] - dot[i]).abs() <= F32_REL * mag + 1e-6, "dot tier {} row {}: {} vs {}", tier, i, gd[i], dot[i]);
                prop_assert!((gl[i] - l2[i]).abs() <= F32_REL * l2[i] + 1e-6, "l2 tier {} row {}: {} vs {}", tier, i, gl[i], l2[i]);
            }
        }
    }

    #[test]
    fn gathers_equal_scans(
        d in 1usize..70,
        n in 1usize..20,
        ids in proptest::collection::vec(any::<u32>(), 0..30),
        data in proptest::collection::vec(any::<i8>(), 70 * 21),
    ) {
        let ids: Vec<u32> = ids.iter().map(|&i| i % n as u32).collect();
        let q = &data[..d];
        let rows = &data[d..d + n * d];
        let qf: Vec<f32> = q.iter().map(|&x| x as f32 / 64.0).collect();
        let rf: Vec<f32> = rows.iter().map(|&x| x as f32 / 64.0).collect();
        for tier in Tier::all_variants() {
            let (mut a, mut b) = (vec![0i32; n], vec![0u32; n]);
            let (mut c, mut e) = (vec![0f32; n], vec![0f32; n]);
            search::dot_i8_with(tier, q, rows, &mut a).unwrap();
            search::l2sq_i8_with(tier, q, rows, &mut b).unwrap();
            search::dot_f32_with(tier, &qf, &rf, &mut c).unwrap();
            search::l2sq_f32_with(tier, &qf, &rf, &mut e).unwrap();
            let (mut ga, mut gb) = (vec![0i32; ids.len()], vec![0u32; ids.len()]);
            let (mut gc, mut ge) = (vec![0f32; ids.len()], vec![0f32; ids.len()]);
            search::dot_i8_gather_with(tier, q, rows, &ids, &mut ga).unwrap();
            search::l2sq_i8_gather_with(tier, q, rows, &ids, &mut gb).unwrap();
            search::dot_f32_gather_with(tier, &qf, &rf, &ids, &mut gc).unwrap();
            search::l2sq_f32_gather_with(tier, &qf, &rf, &ids, &mut ge).unwrap();
            for (t, &id) in ids.iter().enumerate() {
                let i = id as usize;
                prop_assert_eq!(ga[t], a[i]);
                prop_assert_eq!(gb[t], b[i]);
                prop_assert_eq!(gc[t].to_bits(), c[i].to_bits());
                prop_assert_eq!(ge[t].to_bits(), e[i].to_bits());
            }
        }
    }

    #[test]
    fn dense_topk_equals_sort(
        d in 1usize..40,
        n in 0usize..400,
        k in 0usize..30,
        data in proptest::collection::vec(-3i8..3, 40 * 401),
    ) {
        // Few distinct values, so that scores tie and the id decides.
        let q = &data[..d];
        let rows = &data[d..d + n * d];
        let qf: Vec<f32> = q.iter().map(|&x| x as f32).collect();
        let rf: Vec<f32> = rows.iter().map(|&x| x as f32).collect();
        for tier in Tier::all_variants() {
            let mut s = vec![0i32; n];
            search::dot_i8_with(tier, q, rows, &mut s).unwrap();
            prop_assert_eq!(search::dot_i8_topk_with(tier, q, rows, k).unwrap(), sort_topk(&s, k, std::cmp::Reverse));
            let mut s = vec![0u32; n];
            search::l2sq_i8_with(tier, q, rows, &mut s).unwrap();
            prop_assert_eq!(search::l2sq_i8_topk_with(tier, q, rows, k).unwrap(), sort_topk(&s, k, |x| x));
            let mut s = vec![0f32; n];
            search::dot_f32_with(tier, &qf, &rf, &mut s).unwrap();
            let want = sort_topk(&s, k, |x: f32| std::cmp::Reverse(search::topk::f32_key(x)));
            prop_assert_eq!(search::dot_f32_topk_with(tier, &qf, &rf, k).unwrap(), want);
            search::l2sq_f32_with(tier, &qf, &rf, &mut s).unwrap();
            let want = sort_topk(&s, k, search::topk::f32_key);
            prop_assert_eq!(search::l2sq_f32_topk_with(tier, &qf, &rf, k).unwrap(), want);
        }
    }
}

/// -128 in both operands is the corner of the VNNI shift compensation and
/// of the i16 pair sums.
#[test]
fn i8_extremes() {
    for d in [1usize, 15, 16, 17, 63, 64, 65, 200] {
        for (qv, rv) in [(-128i8, -128i8), (-128, 127), (127, 127), (127, -128)] {
            let q = vec![qv; d];
            let rows = vec![rv; 3 * d];
            let (mut dot, mut l2) = (vec![0i32; 3], vec![0u32; 3]);
            scalar::dot_i8(&q, &rows, &mut dot);
            scalar::l2sq_i8(&q, &rows, &mut l2);
            assert_eq!(dot[0], d as i32 * qv as i32 * rv as i32);
            for tier in Tier::all_variants() {
                let (mut gd, mut gl) = (vec![0i32; 3], vec![0u32; 3]);
                search::dot_i8_with(tier, &q, &rows, &mut gd).unwrap();
                search::l2sq_i8_with(tier, &q, &rows, &mut gl).unwrap();
                assert_eq!(gd, dot, "dot d={d} q={qv} r={rv} tier {tier}");
                assert_eq!(gl, l2, "l2 d={d} q={qv} r={rv} tier {tier}");
            }
        }
    }
    // At the dimension cap the extreme L2 still fits.
    let d = search::MAX_I8_DIM;
    let (q, r) = (vec![-128i8; d], vec![127i8; d]);
    for tier in Tier::all_variants() {
        let mut out = [0u32];
        search::l2sq_i8_with(tier, &q, &r, &mut out).unwrap();
        assert_eq!(out[0], d as u32 * 255 * 255, "tier {tier}");
    }
}

/// Several parallel chunks with heavy ties: equal to the sort, and the same
/// on one thread as on several.
#[test]
fn topk_across_chunks_and_thread_counts() {
    let n = 3 * search::topk::CHUNK + 123;
    let cs = codes(n + 1, 1, 7, true);
    let (q, cs) = cs.split_at(1);
    let mut all = vec![0u32; n];
    scalar::hamming(q, cs, &mut all);
    let want = sort_topk(&all, 1000, |s| s);
    for threads in [1, 2, 3] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        for tier in Tier::all_variants() {
            let got = pool.install(|| search::hamming_topk_with(tier, q, cs, 1000).unwrap());
            assert_eq!(got, want, "threads {threads} tier {tier}");
            let got =
                pool.install(|| search::hamming_topk_batch_with(tier, 1, q, cs, 1000).unwrap());
            assert_eq!(got[0], want, "batch threads {threads} tier {tier}");
        }
    }
}

#[test]
fn nan_scores_rank_last() {
    let q = [1.0f32];
    let rows = [f32::NAN, 2.0, -1.0, f32::NAN, 0.5];
    let top = search::dot_f32_topk_with(Tier::scalar(), &q, &rows, 5).unwrap();
    let ids: Vec<u32> = top.iter().map(|h| h.id).collect();
    assert_eq!(ids, [1, 4, 2, 0, 3]);
    let top = search::l2sq_f32_topk_with(Tier::scalar(), &q, &rows, 5).unwrap();
    let ids: Vec<u32> = top.iter().map(|h| h.id).collect();
    assert_eq!(ids, [4, 1, 2, 0, 3]);
}

#[test]
fn bad_shapes_are_errors() {
    let mut out = [0u32; 2];
    assert!(matches!(search::hamming(&[], &[], &mut out), Err(SearchError::Empty { .. })));
    assert!(matches!(search::hamming(&[1, 2], &[1, 2, 3], &mut out), Err(SearchError::Shape(_))));
    let mut o = [0u32; 1];
    assert!(matches!(
        search::hamming_batch(2, &[1, 2, 3], &[1, 2], &mut o),
        Err(SearchError::Shape(_))
    ));
    let mut di = [0i32; 1];
    assert!(matches!(search::dot_i8(&[1, 2], &[1], &mut di), Err(SearchError::Shape(_))));
    let big = vec![0i8; search::MAX_I8_DIM + 1];
    assert!(matches!(search::dot_i8(&big, &big, &mut di), Err(SearchError::DimTooLarge { .. })));
    let mut g = [0f32; 1];
    assert!(matches!(
        search::dot_f32_gather(&[1.0], &[1.0, 2.0], &[2], &mut g),
        Err(SearchError::IdOutOfRange { id: 2, rows: 2, .. })
    ));
    assert!(matches!(
        search::l2sq_f32_topk(&[1.0, 2.0], &[1.0, 2.0, 3.0], 1),
        Err(SearchError::Shape(_))
    ));
    let e = search::dot_f32_gather(&[1.0], &[1.0, 2.0], &[5], &mut g).unwrap_err();
    assert!(e.to_string().contains("id 5"), "{e}");
}
