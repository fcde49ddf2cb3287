//! Allow-lists in every search mode, 8-bit PQ, the model check, and the
//! reusable-scratch entry point agreeing with the allocating one.

mod index_util;

use edgecl_runtime::container::{Container, ContainerBuilder};
use edgecl_runtime::hnsw::{AllowList, HnswConfig};
use edgecl_runtime::index::{
    Hit, Index, IndexBuilder, IndexError, IndexOptions, Rescore, SearchMode, SearchParams,
    SearchScratch,
};
use edgecl_runtime::kernels::pq::fastscan::QuantizedTable;
use edgecl_runtime::kernels::pq::Metric;
use index_util::{clustered, exact_topk_where, ids, queries_near, recall};

const DIM: usize = 32;
/// Which documents a filter keeps.
type Keep = fn(u32) -> bool;
const N: usize = 2000;

/// An index with every section over clustered vectors, and the vectors.
fn bytes_and_vectors(model: Option<[u8; 32]>) -> (Vec<u8>, Vec<f32>) {
    let v = clustered(N, DIM, 25, 11);
    let opts = IndexOptions {
        pq4: Some(8),
        pq8: Some(8),
        hnsw: Some(HnswConfig { m: 12, ef_construction: 80, seed: 5 }),
        model_hash: model,
        ..IndexOptions::default()
    };
    let built = IndexBuilder::build(ids(N), &v, DIM, &opts).unwrap();
    let mut b = ContainerBuilder::new();
    built.add_to(&mut b).unwrap();
    (b.to_bytes().unwrap().as_slice().to_vec(), v)
}

/// Every mode with the rescoring the tests use, and the recall against
/// exact restricted search each must reach on this data.
const MODES: [(SearchMode, Rescore, f64); 8] = [
    (SearchMode::Exact, Rescore::None, 1.0),
    (SearchMode::Int8, Rescore::None, 0.85),
    (SearchMode::Int8, Rescore::F32, 0.99),
    (SearchMode::Binary, Rescore::F32, 0.9),
    (SearchMode::Binary, Rescore::Int8, 0.85),
    (SearchMode::Pq4, Rescore::F32, 0.9),
    (SearchMode::Pq8, Rescore::F32, 0.9),
    (SearchMode::Hnsw, Rescore::None, 0.9),
];

#[test]
fn allow_lists_are_honoured_by_every_mode() {
    let (bytes, v) = bytes_and_vectors(None);
    let aligned = edgecl_runtime::container::AlignedBytes::from_slice(&bytes);
    let c = Container::parse(aligned.as_slice()).unwrap();
    let index = Index::open(&c).unwrap();
    let queries = queries_near(&v, DIM, 30, 3);
    let k = 10;

    // A dense filter (every third document, the scan path that skips rows)
    // and a sparse one (1 in 40, visited id by id; for the graph, below its
    // exact-scan threshold).
    let filters: [(&str, Keep); 2] = [("dense", |d| d % 3 != 1), ("sparse", |d| d % 40 == 7)];
    for (name, keep) in filters {
        let allow = AllowList::from_fn(N, keep).unwrap();
        for (mode, rescore, want) in MODES {
            let p = SearchParams { k, mode, rescore, shortlist: 100, ef: 64, allow: Some(&allow) };
            let mut total = 0.0;
            for q in queries.chunks_exact(DIM) {
                let hits = index.search(q, &p).unwrap();
                assert_eq!(hits.len(), k, "{name} {mode:?}: too few hits");
                for h in &hits {
                    assert!(keep(h.doc), "{name} {mode:?}: disallowed document {}", h.doc);
                }
                let got: Vec<u32> = hits.iter().map(|h| h.doc).collect();
                let want_ids = exact_topk_where(&v, DIM, q, k, keep);
                if mode == SearchMode::Exact {
                    assert_eq!(
                        got, want_ids,
                        "{name}: exact search differs from the restricted scan"
                    );
                }
                total += recall(&got, &want_ids);
            }
            let r = total / 30.0;
            assert!(r >= want, "{name} {mode:?}+{rescore:?}: recall@10 {r:.3} below {want}");
        }
    }

    // An allow-list over another universe is refused; one with fewer than
    // k ids returns just those.
    let wrong = AllowList::from_ids(N + 1, [1]).unwrap();
    let p = SearchParams { allow: Some(&wrong), ..SearchParams::default() };
    assert!(matches!(index.search(&queries[..DIM], &p), Err(IndexError::Shape { .. })));
    let few = AllowList::from_ids(N, [5, 900, 1999]).unwrap();
    for (mode, rescore, _) in MODES {
        let p = SearchParams { k: 10, mode, rescore, allow: Some(&few), ..SearchParams::default() };
        let mut got: Vec<u32> =
            index.search(&queries[..DIM], &p).unwrap().iter().map(|h| h.doc).collect();
        got.sort_unstable();
        assert_eq!(got, [5, 900, 1999], "{mode:?}");
    }
}

#[test]
fn search_into_matches_search_with_one_scratch() {
    let (bytes, v) = bytes_and_vectors(None);
    let aligned = edgecl_runtime::container::AlignedBytes::from_slice(&bytes);
    let c = Container::parse(aligned.as_slice()).unwrap();
    let index = Index::open(&c).unwrap();
    let queries = queries_near(&v, DIM, 12, 8);
    let allow = AllowList::from_fn(N, |d| d % 2 == 0).unwrap();

    // One scratch and one output vector across modes, filters and k.
    let mut scratch = SearchScratch::new();
    let mut out: Vec<Hit> = Vec::new();
    for (mode, rescore, _) in MODES {
        for (ki, q) in queries.chunks_exact(DIM).enumerate() {
            let filter = (ki % 2 == 0).then_some(&allow);
            let p = SearchParams { k: 1 + ki, mode, rescore, shortlist: 50, ef: 40, allow: filter };
            index.search_into(q, &p, &mut scratch, &mut out).unwrap();
            assert_eq!(out, index.search(q, &p).unwrap(), "{mode:?} query {ki}");
        }
    }
}

#[test]
fn pq8_beats_pq4_before_rescoring() {
    let (bytes, v) = bytes_and_vectors(None);
    let aligned = edgecl_runtime::container::AlignedBytes::from_slice(&bytes);
    let c = Container::parse(aligned.as_slice()).unwrap();
    let index = Index::open(&c).unwrap();
    let queries = queries_near(&v, DIM, 40, 21);
    let mean_recall = |mode| {
        let p = SearchParams { k: 10, mode, rescore: Rescore::None, ..SearchParams::default() };
        let mut t = 0.0;
        for q in queries.chunks_exact(DIM) {
            let got: Vec<u32> = index.search(q, &p).unwrap().iter().map(|h| h.doc).collect();
            t += recall(&got, &exact_topk_where(&v, DIM, q, 10, |_| true));
        }
        t / 40.0
    };
    let (r4, r8) = (mean_recall(SearchMode::Pq4), mean_recall(SearchMode::Pq8));
    // Same m, 256 centroids per sub-space instead of 16.
    assert!(r8 > r4, "pq8 recall {r8:.3} should beat pq4 {r4:.3} at the same m");
    assert_eq!(index.bytes_per_vector(SearchMode::Pq8, Rescore::None), 8);
    assert_eq!(index.bytes_per_vector(SearchMode::Pq4, Rescore::None), 4);
    assert_eq!(index.bytes_per_vector(SearchMode::Binary, Rescore::Int8), 8 + DIM);

    // PQ8 needs 256 training documents.
    let small = clustered(100, DIM, 5, 1);
    let opts = IndexOptions { pq8: Some(8), ..IndexOptions::default() };
    assert!(matches!(IndexBuilder::build(ids(100), &small, DIM, &opts), Err(IndexError::Pq(_))));
}

#[test]
fn model_hash_refuses_other_models() {
    let mine = [7u8; 32];
    let mut other = mine;
    other[31] = 8;
    let (bytes, v) = bytes_and_vectors(Some(mine));
    let aligned = edgecl_runtime::container::AlignedBytes::from_slice(&bytes);
    let c = Container::parse(aligned.as_slice()).unwrap();
    let index = Index::open(&c).unwrap();
    let q = &v[..DIM];
    let p = SearchParams::default();

    assert_eq!(index.model_hash(), Some(&mine));
    index.check_model(&mine).unwrap();
    assert_eq!(index.search_for_model(&mine, q, &p).unwrap(), index.search(q, &p).unwrap());
    match index.search_for_model(&other, q, &p) {
        Err(IndexError::ModelMismatch { stored, query }) => {
            assert_eq!((stored, query), (mine, other));
        }
        r => panic!("expected a model mismatch, got {r:?}"),
    }

    // Without a stored digest there is nothing to check against.
    let (bytes, _) = bytes_and_vectors(None);
    let aligned = edgecl_runtime::container::AlignedBytes::from_slice(&bytes);
    let c = Container::parse(aligned.as_slice()).unwrap();
    let index = Index::open(&c).unwrap();
    assert!(matches!(index.check_model(&mine), Err(IndexError::NoModelHash)));
}

#[test]
fn refilled_fast_scan_table_equals_a_new_one() {
    let table: Vec<f32> = (0..8 * 16).map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0).collect();
    let other: Vec<f32> = table.iter().map(|x| x * -0.5 + 1.0).collect();
    for metric in [Metric::L2, Metric::InnerProduct] {
        let mut t = QuantizedTable::new(&other, 8, metric).unwrap();
        t.refill(&table, metric).unwrap();
        let fresh = QuantizedTable::new(&table, 8, metric).unwrap();
        assert_eq!(t.lut(), fresh.lut());
        for s in [0u16, 1, 777, 2040] {
            assert_eq!(t.to_cost(s), fresh.to_cost(s));
        }
    }
    let mut t = QuantizedTable::new(&table, 8, Metric::L2).unwrap();
    assert!(t.refill(&table[..16], Metric::L2).is_err());
}
