//! Raw bytes -> container -> HNSW graph load -> searches. A graph that
//! passes `GraphView::load` must be searchable without panicking whatever
//! its bytes, with or without a filter, over a space sized to match.
//!
//! Input: first byte = mode (bit 0 recomputes the header checksum, as in
//! `container_parse`), then the container bytes.
#![no_main]

use edgecl_runtime::container::xxh64::xxh64;
use edgecl_runtime::container::{AlignedBytes, Container};
use edgecl_runtime::hnsw::{AllowList, GraphView, Hamming, SearchScratch};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let mut buf = AlignedBytes::from_slice(rest);
    let bytes = buf.as_mut_slice();
    if mode & 1 != 0 && bytes.len() >= 32 {
        let mut w = [0u8; 8];
        w.copy_from_slice(&bytes[16..24]);
        if let Some(end) =
            usize::try_from(u64::from_le_bytes(w)).ok().and_then(|h| h.checked_add(32))
        {
            if end <= bytes.len() {
                let sum = xxh64(&bytes[32..end], 0);
                bytes[24..32].copy_from_slice(&sum.to_le_bytes());
            }
        }
    }
    let Ok(c) = Container::parse(&buf) else { return };
    let Ok(g) = GraphView::load(&c, "hnsw") else { return };

    // Items: one u64 word each, all distinct; the graph decides the path.
    let n = g.len().min(1 << 16);
    if n != g.len() {
        return;
    }
    let words: Vec<u64> = (0..n as u64).map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).collect();
    let Ok(space) = Hamming::new(&words, 1) else { return };
    let mut s = SearchScratch::new();
    // The stored distance name may not be "hamming": then search must
    // refuse with an error, which is also fine.
    for q in [0u64, u64::MAX, 0x5555_5555_5555_5555] {
        if let Ok(r) = g.search(&space, &[q], 5, 8, &mut s) {
            assert!(r.len() <= 5 && r.iter().all(|nb| (nb.id as usize) < n));
        }
        if let Ok(allow) = AllowList::from_ids(n, (0..n as u32).step_by(3)) {
            if let Ok(r) = g.search_filtered(&space, &[q], 5, 8, &allow, &mut s) {
                assert!(r.iter().all(|nb| nb.id % 3 == 0));
            }
        }
    }
});
