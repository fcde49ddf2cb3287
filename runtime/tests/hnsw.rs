//! HNSW: recall against brute force on clustered data for each distance,
//! filters, determinism across seeds and thread counts, a round trip
//! through a mapped container, rejection of damaged graphs, and a count of
//! heap allocations during steady-state search (this test binary installs
//! a counting allocator).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use edgecl_runtime::container::{open, Checksums, Container, ContainerBuilder, ContainerError};
use edgecl_runtime::hnsw::{
    build, AllowList, F32Dot, GraphView, Hamming, HnswConfig, HnswError, I8Dot, Neighbor,
    SearchScratch, Space, F32L2,
};
use edgecl_runtime::quant::{BinaryQuantizer, Calibration, Granularity, Int8Quantizer, Mode};

// ---- allocation counting, per thread ----

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

struct Counting;

// SAFETY: forwards every call unchanged to the system allocator; the
// thread-local counter is a const-initialised Cell with no destructor, so
// touching it never allocates or re-enters the allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: `p` came from `System.alloc` with layout `l`.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: `p` came from `System` with layout `l`.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> usize {
    ALLOCS.with(|c| c.get())
}

// ---- data ----

struct Rng(u64);
impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn normal(&mut self) -> f32 {
        let u = ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        let v = ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
    }
}

const DIM: usize = 32;

// n points around `clusters` Gaussian centres (spread 3, noise 1); rows
// are unit-normalised when `unit`.
fn clustered(n: usize, clusters: usize, seed: u64, unit: bool) -> Vec<f32> {
    let mut r = Rng(seed);
    let mut centres = Rng(99);
    let c: Vec<f32> = (0..clusters * DIM).map(|_| 3.0 * centres.normal()).collect();
    let mut out = Vec::with_capacity(n * DIM);
    for i in 0..n {
        let k = (r.next_u64() as usize + i) % clusters;
        let row: Vec<f32> = (0..DIM).map(|j| c[k * DIM + j] + r.normal()).collect();
        let norm = if unit { row.iter().map(|x| x * x).sum::<f32>().sqrt() } else { 1.0 };
        out.extend(row.iter().map(|x| x / norm));
    }
    out
}

// Exact k nearest under `space`, closest first (ties by id).
fn brute<S: Space>(space: &S, q: &S::Query, k: usize, allow: Option<&AllowList>) -> Vec<Neighbor> {
    let mut all: Vec<Neighbor> = (0..space.len() as u32)
        .filter(|&id| allow.is_none_or(|a| a.allows(id)))
        .map(|id| Neighbor { id, distance: space.query_distance(q, id) })
        .collect();
    all.sort_by(|a, b| a.distance.total_cmp(&b.distance).then(a.id.cmp(&b.id)));
    all.truncate(k);
    all
}

// Fraction of results at least as close as the true k-th neighbour, so
// ties (frequent with Hamming) count as hits.
fn recall(found: &[Neighbor], truth: &[Neighbor]) -> f64 {
    let kth = truth.last().map_or(f32::INFINITY, |t| t.distance);
    found.iter().filter(|f| f.distance <= kth).count() as f64 / truth.len() as f64
}

fn mean_recall<S: Space>(g: &GraphView<'_>, space: &S, queries: &[&S::Query], ef: usize) -> f64 {
    let mut s = SearchScratch::new();
    let total: f64 = queries
        .iter()
        .map(|q| recall(g.search(space, q, 10, ef, &mut s).unwrap(), &brute(space, q, 10, None)))
        .sum();
    total / queries.len() as f64
}

const N: usize = 3000;

fn config() -> HnswConfig {
    HnswConfig { m: 12, ef_construction: 100, seed: 42 }
}

#[test]
fn recall_f32_l2_and_dot() {
    let data = clustered(N, 40, 1, false);
    let qs = clustered(100, 40, 2, false);
    let queries: Vec<&[f32]> = qs.chunks(DIM).collect();
    let l2 = F32L2::new(&data, DIM).unwrap();
    let g = build(&l2, &config()).unwrap();
    let r = mean_recall(&g.view(), &l2, &queries, 64);
    eprintln!("f32 l2 recall@10 at ef 64: {r:.4}");
    assert!(r >= 0.95, "f32 l2 recall@10 {r}");

    let unit = clustered(N, 40, 3, true);
    let uq = clustered(100, 40, 4, true);
    let queries: Vec<&[f32]> = uq.chunks(DIM).collect();
    let dot = F32Dot::new(&unit, DIM).unwrap();
    let g = build(&dot, &config()).unwrap();
    let r = mean_recall(&g.view(), &dot, &queries, 64);
    eprintln!("f32 dot recall@10 at ef 64: {r:.4}");
    assert!(r >= 0.95, "f32 dot recall@10 {r}");
}

#[test]
fn recall_int8_and_hamming() {
    let data = clustered(N, 40, 5, true);
    let qs = clustered(100, 40, 6, true);
    let q8 = Int8Quantizer::calibrate(
        &data,
        DIM,
        Mode::Symmetric,
        Granularity::Global,
        Calibration::MinMax,
    )
    .unwrap();
    let codes = q8.quantize_vec(&data).unwrap();
    let qcodes = q8.quantize_vec(&qs).unwrap();
    let space = I8Dot::new(&codes, DIM).unwrap();
    let g = build(&space, &config()).unwrap();
    let queries: Vec<&[i8]> = qcodes.chunks(DIM).collect();
    let r = mean_recall(&g.view(), &space, &queries, 64);
    eprintln!("int8 dot recall@10 at ef 64: {r:.4}");
    assert!(r >= 0.95, "int8 dot recall@10 {r}");

    let qb = BinaryQuantizer::calibrate(&data, DIM, true).unwrap();
    let bits = qb.encode_vec(&data).unwrap();
    let qbits = qb.encode_vec(&qs).unwrap();
    let space = Hamming::new(&bits, qb.words()).unwrap();
    let g = build(&space, &config()).unwrap();
    let queries: Vec<&[u64]> = qbits.chunks(qb.words()).collect();
    let r = mean_recall(&g.view(), &space, &queries, 64);
    eprintln!("hamming recall@10 at ef 64: {r:.4}");
    assert!(r >= 0.95, "hamming recall@10 {r}");
}

#[test]
fn filters_are_respected() {
    let data = clustered(N, 40, 7, false);
    let qs = clustered(30, 40, 8, false);
    let space = F32L2::new(&data, DIM).unwrap();
    let hnsw = build(&space, &config()).unwrap();
    let g = hnsw.view();
    let mut s = SearchScratch::new();
    let mut r = Rng(9);
    for (frac, min_recall) in [(0.5, 0.95), (0.1, 0.9), (0.005, 1.0)] {
        let allow = AllowList::from_ids(
            N,
            (0..N as u32).filter(|_| (r.next_u64() % 10_000) as f64 / 10_000.0 < frac),
        )
        .unwrap();
        let mut total = 0.0;
        for q in qs.chunks(DIM) {
            let found = g.search_filtered(&space, q, 10, 64, &allow, &mut s).unwrap().to_vec();
            assert!(found.iter().all(|n| allow.allows(n.id)), "disallowed id returned");
            let truth = brute(&space, q, 10, Some(&allow));
            assert_eq!(found.len(), truth.len().min(10));
            total += recall(&found, &truth);
        }
        let rec = total / 30.0;
        eprintln!("filtered, allowed fraction {frac}: recall@10 {rec:.4}");
        assert!(rec >= min_recall, "allowed fraction {frac}: recall {rec}");
    }
    // An empty allow-list gives no results; a wrong-sized one is an error.
    let none = AllowList::from_ids(N, []).unwrap();
    assert!(g.search_filtered(&space, &qs[..DIM], 10, 64, &none, &mut s).unwrap().is_empty());
    let small = AllowList::from_ids(10, [1]).unwrap();
    assert!(matches!(
        g.search_filtered(&space, &qs[..DIM], 10, 64, &small, &mut s),
        Err(HnswError::Shape { .. })
    ));
    assert!(matches!(
        AllowList::from_ids(10, [10]),
        Err(HnswError::IdOutOfRange { id: 10, n: 10 })
    ));
}

#[test]
fn build_is_deterministic_across_threads() {
    let data = clustered(1500, 20, 10, false);
    let space = F32L2::new(&data, DIM).unwrap();
    let in_pool = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| build(&space, &config()).unwrap())
    };
    let one = in_pool(1);
    assert_eq!(one, in_pool(3));
    assert_eq!(one, build(&space, &config()).unwrap());
    let other = build(&space, &HnswConfig { seed: 43, ..config() }).unwrap();
    assert_ne!(one, other, "a different seed should change the levels");
}

#[test]
fn round_trip_through_a_mapped_container() {
    let data = clustered(2000, 30, 11, false);
    let qs = clustered(20, 30, 12, false);
    let space = F32L2::new(&data, DIM).unwrap();
    let hnsw = build(&space, &config()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index.edc");
    let mut b = ContainerBuilder::new();
    b.add("vectors.f32", &[2000, DIM as u64], &data).unwrap();
    hnsw.write(&mut b, "hnsw").unwrap();
    b.write_atomic(&path).unwrap();

    let mapped = open(&path, Checksums::All).unwrap();
    let c = mapped.container();
    let (vecs, rows, cols) = c.matrix::<f32>("vectors.f32").unwrap();
    assert_eq!((rows, cols), (2000, DIM));
    let mspace = F32L2::new(vecs, cols).unwrap();
    let g = GraphView::load(&c, "hnsw").unwrap();
    assert_eq!(g.params(), hnsw.params());
    let (mut s1, mut s2) = (SearchScratch::new(), SearchScratch::new());
    for q in qs.chunks(DIM) {
        let a = hnsw.view().search(&space, q, 10, 50, &mut s1).unwrap();
        let b = g.search(&mspace, q, 10, 50, &mut s2).unwrap();
        assert_eq!(a, b);
    }

    // Searching with another distance or another item count is refused.
    let dot = F32Dot::new(vecs, cols).unwrap();
    assert!(matches!(
        g.search(&dot, &qs[..DIM], 10, 50, &mut s1),
        Err(HnswError::DistanceMismatch { .. })
    ));
    let fewer = F32L2::new(&vecs[..DIM * 10], cols).unwrap();
    assert!(matches!(
        g.search(&fewer, &qs[..DIM], 10, 50, &mut s1),
        Err(HnswError::SpaceSize { graph: 2000, space: 10 })
    ));
    assert!(matches!(
        g.search(&mspace, &qs[..DIM - 1], 10, 50, &mut s1),
        Err(HnswError::Shape { what: "query", .. })
    ));
}

#[test]
fn damaged_graphs_are_rejected() {
    let data = clustered(300, 5, 13, false);
    let space = F32L2::new(&data, DIM).unwrap();
    let hnsw = build(&space, &config()).unwrap();
    let mut b = ContainerBuilder::new();
    hnsw.write(&mut b, "hnsw").unwrap();
    let bytes = b.to_bytes().unwrap();
    let c = Container::parse(&bytes).unwrap();
    let no = c.section::<u64>("hnsw.node_offsets").unwrap();
    let lo = c.section::<u64>("hnsw.list_offsets").unwrap();
    let nb = c.section::<u32>("hnsw.neighbors").unwrap();
    let params = GraphView::load(&c, "hnsw").unwrap().params().clone();
    let invalid = |r: Result<GraphView<'_>, HnswError>| {
        matches!(r, Err(HnswError::Container(ContainerError::Invalid { .. })))
    };

    let mut bad_nb = nb.to_vec();
    bad_nb[0] = 300; // past the last node
    assert!(invalid(GraphView::new(no, lo, &bad_nb, params.clone(), "hnsw")));
    let mut bad_lo = lo.to_vec();
    bad_lo[1] = u64::MAX; // a list running past the ids
    assert!(invalid(GraphView::new(no, &bad_lo, nb, params.clone(), "hnsw")));
    let mut bad_no = no.to_vec();
    bad_no[300] = u64::MAX;
    assert!(invalid(GraphView::new(&bad_no, lo, nb, params.clone(), "hnsw")));
    let wrong_entry =
        edgecl_runtime::hnsw::GraphParams { max_level: params.max_level + 1, ..params.clone() };
    assert!(invalid(GraphView::new(no, lo, nb, wrong_entry, "hnsw")));
    let tight = edgecl_runtime::hnsw::GraphParams { m0: 2, m: 2, ..params.clone() };
    assert!(invalid(GraphView::new(no, lo, nb, tight, "hnsw")));
    // A node linked on a layer it does not reach.
    let upper = (0..300u32).find(|&v| hnsw.view().level(v) >= 1).expect("some node above layer 0");
    let low = (0..300u32).find(|&v| hnsw.view().level(v) == 0).unwrap();
    let i = no[upper as usize] as usize + 1;
    if lo[i + 1] > lo[i] {
        let mut bad_nb = nb.to_vec();
        bad_nb[lo[i] as usize] = low;
        assert!(invalid(GraphView::new(no, lo, &bad_nb, params.clone(), "hnsw")));
    }
    assert!(GraphView::new(no, lo, nb, params, "hnsw").is_ok());
}

#[test]
fn steady_state_search_allocates_nothing() {
    let data = clustered(2000, 20, 14, false);
    let qs = clustered(50, 20, 15, false);
    let space = F32L2::new(&data, DIM).unwrap();
    let hnsw = build(&space, &config()).unwrap();
    let g = hnsw.view();
    let allow = AllowList::from_ids(2000, (0..2000).filter(|i| i % 3 == 0)).unwrap();
    let mut s = SearchScratch::new();
    // Warm up: the scratch grows to its working size.
    for q in qs.chunks(DIM) {
        g.search(&space, q, 10, 64, &mut s).unwrap();
        g.search_filtered(&space, q, 10, 64, &allow, &mut s).unwrap();
    }
    let before = allocs();
    let mut checksum = 0u64;
    for q in qs.chunks(DIM) {
        checksum += g.search(&space, q, 10, 64, &mut s).unwrap()[0].id as u64;
        checksum += g.search_filtered(&space, q, 10, 64, &allow, &mut s).unwrap()[0].id as u64;
    }
    assert_eq!(allocs() - before, 0, "allocations during search (checksum {checksum})");
}

#[test]
fn small_and_degenerate_inputs() {
    let mut s = SearchScratch::new();
    let empty = F32L2::new(&[], DIM).unwrap();
    let g = build(&empty, &config()).unwrap();
    assert!(g.view().search(&empty, &[0.0; DIM], 5, 10, &mut s).unwrap().is_empty());
    let one = [1.0f32; DIM];
    let single = F32L2::new(&one, DIM).unwrap();
    let g = build(&single, &config()).unwrap();
    let r = g.view().search(&single, &[0.0; DIM], 5, 10, &mut s).unwrap();
    assert_eq!(r, &[Neighbor { id: 0, distance: DIM as f32 }]);
    // Identical points: every one is found, no self-links.
    let same = vec![0.5f32; DIM * 50];
    let sp = F32L2::new(&same, DIM).unwrap();
    let g = build(&sp, &config()).unwrap();
    assert_eq!(g.view().search(&sp, &same[..DIM], 50, 50, &mut s).unwrap().len(), 50);
    assert!(matches!(
        build(&sp, &HnswConfig { m: 1, ..config() }),
        Err(HnswError::BadConfig { .. })
    ));
    assert!(matches!(F32L2::new(&[f32::NAN; DIM], DIM), Err(HnswError::NonFinite { .. })));
    assert!(matches!(F32L2::new(&[0.0; 5], DIM), Err(HnswError::Shape { .. })));
}
