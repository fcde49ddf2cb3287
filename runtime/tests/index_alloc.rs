//! A warm `Index::search_into` allocates nothing, in every mode, with and
//! without an allow-list: counted by a global allocator wrapper, so this
//! test lives alone in its binary.

mod index_util;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use edgecl_runtime::container::{Container, ContainerBuilder};
use edgecl_runtime::hnsw::{AllowList, HnswConfig};
use edgecl_runtime::index::{
    Hit, Index, IndexBuilder, IndexOptions, Rescore, SearchMode, SearchParams, SearchScratch,
};
use index_util::{clustered, ids, queries_near};

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; the
// counter is a relaxed atomic with no effect on the allocation itself.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn warm_single_queries_do_not_allocate() {
    let (n, dim) = (3000, 48);
    let v = clustered(n, dim, 30, 4);
    let opts = IndexOptions {
        pq4: Some(12),
        pq8: Some(12),
        hnsw: Some(HnswConfig { m: 12, ef_construction: 60, seed: 9 }),
        ..IndexOptions::default()
    };
    let built = IndexBuilder::build(ids(n), &v, dim, &opts).unwrap();
    let mut b = ContainerBuilder::new();
    built.add_to(&mut b).unwrap();
    let bytes = b.to_bytes().unwrap();
    let c = Container::parse(bytes.as_slice()).unwrap();
    let index = Index::open(&c).unwrap();
    let queries = queries_near(&v, dim, 20, 5);
    let dense = AllowList::from_fn(n, |d| d % 5 != 0).unwrap();
    let sparse = AllowList::from_fn(n, |d| d % 97 == 3).unwrap();

    let modes = [
        (SearchMode::Exact, Rescore::None),
        (SearchMode::Int8, Rescore::None),
        (SearchMode::Int8, Rescore::F32),
        (SearchMode::Binary, Rescore::Int8),
        (SearchMode::Binary, Rescore::F32),
        (SearchMode::Pq4, Rescore::F32),
        (SearchMode::Pq8, Rescore::Int8),
        (SearchMode::Hnsw, Rescore::None),
    ];
    for (mode, rescore) in modes {
        for allow in [None, Some(&dense), Some(&sparse)] {
            let p = SearchParams { k: 10, mode, rescore, shortlist: 80, ef: 48, allow };
            let mut scratch = SearchScratch::new();
            let mut out: Vec<Hit> = Vec::new();
            // Warm-up: every buffer grows to its size for this workload.
            for q in queries.chunks_exact(dim) {
                index.search_into(q, &p, &mut scratch, &mut out).unwrap();
            }
            let before = ALLOCS.load(Ordering::Relaxed);
            let mut found = 0;
            for q in queries.chunks_exact(dim) {
                index.search_into(q, &p, &mut scratch, &mut out).unwrap();
                found += out.len();
            }
            let allocs = ALLOCS.load(Ordering::Relaxed) - before;
            assert_eq!(found, 10 * queries.len() / dim, "{mode:?}: missing hits");
            let filter =
                allow.map_or("none", |a| if a.count() < n / 2 { "sparse" } else { "dense" });
            assert_eq!(allocs, 0, "{mode:?}+{rescore:?} filter {filter}: {allocs} allocations");
        }
    }
}
