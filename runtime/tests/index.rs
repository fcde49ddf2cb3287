//! Index build, open and search: every mode against exact search on
//! clustered vectors, the file round trip, sharding, and bad input.

use edgecl_runtime::container::{Checksums, Container, ContainerBuilder};
use edgecl_runtime::hnsw::HnswConfig;
use edgecl_runtime::index::{
    search_shards, Index, IndexBuilder, IndexError, IndexOptions, Rescore, SearchMode, SearchParams,
};

mod index_util;

use index_util::{clustered, exact_topk, ids, queries_near, recall};

#[test]
fn every_mode_finds_the_true_neighbours() {
    let (n, dim, k) = (3000, 64, 10);
    let v = clustered(n, dim, 40, 7);
    let opts = IndexOptions {
        pq4: Some(16),
        pq8: Some(16),
        hnsw: Some(HnswConfig { m: 16, ef_construction: 100, seed: 3 }),
        ..IndexOptions::default()
    };
    let built = IndexBuilder::build(ids(n), &v, dim, &opts).unwrap();
    let mut b = ContainerBuilder::new();
    built.add_to(&mut b).unwrap();
    let bytes = b.to_bytes().unwrap();
    let c = Container::parse_verified(bytes.as_slice()).unwrap();
    let index = Index::open(&c).unwrap();
    assert_eq!(index.len(), n);
    assert_eq!(index.id(17), Some("doc-17"));
    assert_eq!(index.modes().len(), 6);

    let queries = queries_near(&v, dim, 50, 99);
    let cases = [
        (SearchMode::Exact, Rescore::None, 1.0),
        (SearchMode::Int8, Rescore::None, 0.9),
        (SearchMode::Int8, Rescore::F32, 0.99),
        (SearchMode::Binary, Rescore::F32, 0.95),
        (SearchMode::Binary, Rescore::Int8, 0.9),
        (SearchMode::Pq4, Rescore::F32, 0.95),
        (SearchMode::Pq8, Rescore::None, 0.4),
        (SearchMode::Pq8, Rescore::F32, 0.95),
        (SearchMode::Hnsw, Rescore::None, 0.95),
    ];
    for (mode, rescore, want) in cases {
        let p = SearchParams { k, mode, rescore, shortlist: 200, ef: 64, allow: None };
        let mut total = 0.0;
        for q in queries.chunks_exact(dim) {
            let hits = index.search(q, &p).unwrap();
            assert_eq!(hits.len(), k);
            assert!(hits.windows(2).all(|w| w[0].score >= w[1].score), "{mode:?}: unsorted");
            let got: Vec<u32> = hits.iter().map(|h| h.doc).collect();
            total += recall(&got, &exact_topk(&v, dim, q, k));
        }
        let r = total / 50.0;
        assert!(r >= want, "{mode:?} + {rescore:?}: recall@10 {r:.3} below {want}");
    }

    // Exact search scores are the true inner products.
    let q = &queries[..dim];
    let p = SearchParams { mode: SearchMode::Exact, ..SearchParams::default() };
    let top = index.search(q, &p).unwrap()[0];
    let row = &v[top.doc as usize * dim..][..dim];
    let dot: f32 = row.iter().zip(q).map(|(a, b)| a * b).sum();
    assert!((top.score - dot).abs() < 1e-5);

    // A batch answers like single queries.
    let batch = index.search_batch(&queries, &p).unwrap();
    for (qi, q) in queries.chunks_exact(dim).enumerate() {
        assert_eq!(batch[qi], index.search(q, &p).unwrap());
    }
}

#[test]
fn file_round_trip_and_shards() {
    let (n, dim) = (500, 32);
    let v = clustered(n, dim, 10, 1);
    let dir = std::env::temp_dir().join(format!("edgecl-index-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let opts = IndexOptions::default();

    // One index over everything, and the same corpus in two shards.
    let whole = dir.join("whole.ecl");
    IndexBuilder::build(ids(n), &v, dim, &opts).unwrap().write(&whole).unwrap();
    let (a, b) = v.split_at(300 * dim);
    let sa = dir.join("a.ecl");
    let sb = dir.join("b.ecl");
    IndexBuilder::build(ids(300), a, dim, &opts).unwrap().write(&sa).unwrap();
    let ids_b: Vec<String> = (300..n).map(|i| format!("doc-{i}")).collect();
    IndexBuilder::build(ids_b, b, dim, &opts).unwrap().write(&sb).unwrap();

    let mw = edgecl_runtime::container::open(&whole, Checksums::All).unwrap();
    let ma = edgecl_runtime::container::open(&sa, Checksums::All).unwrap();
    let mb = edgecl_runtime::container::open(&sb, Checksums::All).unwrap();
    let (cw, ca, cb) = (mw.container(), ma.container(), mb.container());
    let iw = Index::open(&cw).unwrap();
    let shards = [Index::open(&ca).unwrap(), Index::open(&cb).unwrap()];

    let p = SearchParams { mode: SearchMode::Exact, k: 15, ..SearchParams::default() };
    for q in clustered(20, dim, 10, 5).chunks_exact(dim) {
        let one: Vec<String> =
            iw.search(q, &p).unwrap().iter().map(|h| iw.id(h.doc).unwrap().to_string()).collect();
        let merged: Vec<String> = search_shards(&shards, q, &p)
            .unwrap()
            .iter()
            .map(|h| shards[h.shard].id(h.doc).unwrap().to_string())
            .collect();
        assert_eq!(one, merged);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_input_is_a_typed_error() {
    let dim = 8;
    let v = clustered(20, dim, 2, 3);
    let opts = IndexOptions { f32: false, ..IndexOptions::default() };
    assert!(matches!(IndexBuilder::build(ids(19), &v, dim, &opts), Err(IndexError::Shape { .. })));
    assert!(matches!(
        IndexBuilder::build(vec![], &[], dim, &opts),
        Err(IndexError::Invalid { .. })
    ));
    let mut nan = v.clone();
    nan[13] = f32::NAN;
    let err = IndexBuilder::build(ids(20), &nan, dim, &opts).err().unwrap();
    assert!(err.to_string().contains("document 1 dimension 5"), "{err}");

    let built = IndexBuilder::build(ids(20), &v, dim, &opts).unwrap();
    let mut b = ContainerBuilder::new();
    built.add_to(&mut b).unwrap();
    let bytes = b.to_bytes().unwrap();
    let c = Container::parse(bytes.as_slice()).unwrap();
    let index = Index::open(&c).unwrap();
    let p = SearchParams { mode: SearchMode::Exact, ..SearchParams::default() };
    assert!(matches!(index.search(&v[..dim], &p), Err(IndexError::Missing { .. })));
    let p = SearchParams::default();
    assert!(matches!(index.search(&v[..dim - 1], &p), Err(IndexError::Shape { .. })));
    let mut q = v[..dim].to_vec();
    q[2] = f32::INFINITY;
    assert!(matches!(index.search(&q, &p), Err(IndexError::Invalid { .. })));
    // k larger than the corpus returns the whole corpus.
    let p = SearchParams { k: 50, rescore: Rescore::None, ..SearchParams::default() };
    assert_eq!(index.search(&v[..dim], &p).unwrap().len(), 20);

    // A container that is not an index.
    let mut b = ContainerBuilder::new();
    b.add_key_values("meta", [("kind", "model")]).unwrap();
    let bytes = b.to_bytes().unwrap();
    let c = Container::parse(bytes.as_slice()).unwrap();
    assert!(matches!(Index::open(&c), Err(IndexError::NotAnIndex { .. })));
}

/// Opens `built` with, optionally, a hand-made `pq.rotation` section.
fn open_with_rotation(
    built: &IndexBuilder,
    rotation: Option<(&[u64], &[f32])>,
) -> (Vec<u8>, Result<(), IndexError>) {
    let mut b = ContainerBuilder::new();
    built.add_to(&mut b).unwrap();
    if let Some((shape, r)) = rotation {
        b.add(edgecl_runtime::container::names::PQ_ROTATION, shape, r).unwrap();
    }
    let bytes = b.to_bytes().unwrap().to_vec();
    let c = Container::parse(bytes.as_slice()).unwrap();
    let res = Index::open(&c).map(|_| ());
    (bytes, res)
}

#[test]
fn optimized_pq_section() {
    let (n, dim, k) = (1500, 32, 10);
    let v = clustered(n, dim, 30, 5);
    let base = IndexOptions { pq4: Some(8), int8: false, binary: false, ..IndexOptions::default() };
    let opq = IndexOptions { pq4_opq: true, ..base.clone() };
    let plain = IndexBuilder::build(ids(n), &v, dim, &base).unwrap();
    let rotated = IndexBuilder::build(ids(n), &v, dim, &opq).unwrap();

    // The learnt rotation is written, read back and searched with.
    let (bytes, res) = open_with_rotation(&rotated, None);
    res.unwrap();
    let c = Container::parse(bytes.as_slice()).unwrap();
    assert!(c.contains(edgecl_runtime::container::names::PQ_ROTATION));
    let index = Index::open(&c).unwrap();
    let queries = queries_near(&v, dim, 30, 8);
    // Quantized ranking alone: 16-centroid codes of 4 dimensions keep a
    // fraction of the true top 10, while tables built from an unrotated
    // query would rank near chance (10 of 1500).
    for (rescore, want) in [(Rescore::F32, 0.95), (Rescore::None, 0.2)] {
        let p = SearchParams {
            k,
            mode: SearchMode::Pq4,
            rescore,
            shortlist: 200,
            ..SearchParams::default()
        };
        let mut total = 0.0;
        for q in queries.chunks_exact(dim) {
            let got: Vec<u32> = index.search(q, &p).unwrap().iter().map(|h| h.doc).collect();
            total += recall(&got, &exact_topk(&v, dim, q, k));
        }
        let r = total / 30.0;
        assert!(r >= want, "opq + {rescore:?}: recall@10 {r:.3} below {want}");
    }

    // The identity rotation ranks exactly as no rotation.
    let mut eye = vec![0f32; dim * dim];
    (0..dim).for_each(|i| eye[i * dim + i] = 1.0);
    let d = dim as u64;
    let (with_eye, res) = open_with_rotation(&plain, Some((&[d, d], &eye)));
    res.unwrap();
    let (without, _) = open_with_rotation(&plain, None);
    let (ce, cw) = (
        Container::parse(with_eye.as_slice()).unwrap(),
        Container::parse(without.as_slice()).unwrap(),
    );
    let (ie, iw) = (Index::open(&ce).unwrap(), Index::open(&cw).unwrap());
    let p = SearchParams {
        k,
        mode: SearchMode::Pq4,
        rescore: Rescore::None,
        ..SearchParams::default()
    };
    for q in queries.chunks_exact(dim) {
        let a: Vec<u32> = ie.search(q, &p).unwrap().iter().map(|h| h.doc).collect();
        let b: Vec<u32> = iw.search(q, &p).unwrap().iter().map(|h| h.doc).collect();
        assert_eq!(a, b);
    }

    // Corrupt sections are typed errors naming the section.
    let mut nan = eye.clone();
    nan[dim + 3] = f32::NAN;
    let doubled: Vec<f32> = eye.iter().map(|x| 2.0 * x).collect();
    let wide = vec![0f32; dim * (dim + 1)];
    let bad: [(&[u64], &[f32]); 3] = [(&[d, d], &nan), (&[d, d], &doubled), (&[d, d + 1], &wide)];
    for (shape, r) in bad {
        let (_, res) = open_with_rotation(&plain, Some((shape, r)));
        match res {
            Err(IndexError::Invalid { what, .. }) => assert_eq!(what, "pq.rotation"),
            other => panic!("shape {shape:?}: expected Invalid, got {other:?}"),
        }
    }
    // A rotation without 4-bit codebooks.
    let no_pq = IndexBuilder::build(ids(n), &v, dim, &IndexOptions::default()).unwrap();
    let (_, res) = open_with_rotation(&no_pq, Some((&[d, d], &eye)));
    assert!(matches!(res, Err(IndexError::Missing { .. })), "{res:?}");
}
