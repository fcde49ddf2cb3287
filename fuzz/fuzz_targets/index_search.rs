//! Raw bytes -> container -> index open -> a search in every mode the
//! index claims, with and without rescoring. Crash only: a hostile index
//! must give `Ok` or a typed error, never a panic, and every hit must name
//! a document the index holds.
//!
//! The first byte picks a mode as in `container_parse`: bit 0 recomputes
//! the header checksum so the fuzzer reaches the sections.
#![no_main]

use edgecl_runtime::container::xxh64::xxh64;
use edgecl_runtime::container::{AlignedBytes, Container};
use edgecl_runtime::index::{Index, Rescore, SearchParams};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let mut buf = AlignedBytes::zeroed(rest.len());
    buf.as_mut_slice().copy_from_slice(rest);
    let bytes = buf.as_mut_slice();
    if mode & 1 != 0 && bytes.len() >= 32 {
        let header_len = u64::from_le_bytes(bytes[16..24].try_into().expect("8 bytes"));
        if let Some(end) = usize::try_from(header_len).ok().and_then(|h| h.checked_add(32)) {
            if end <= bytes.len() {
                let sum = xxh64(&bytes[32..end], 0);
                bytes[24..32].copy_from_slice(&sum.to_le_bytes());
            }
        }
    }
    let Ok(c) = Container::parse(buf.as_slice()) else { return };
    let Ok(index) = Index::open(&c) else { return };
    // The query is the caller's allocation; an empty index may claim any
    // dimension, so keep it bounded.
    if index.dim() > 1 << 16 {
        return;
    }
    let query: Vec<f32> = (0..index.dim()).map(|j| ((j * 7 % 11) as f32 - 5.0) / 5.0).collect();
    for mode in index.modes() {
        for rescore in [Rescore::None, Rescore::Int8, Rescore::F32] {
            let p = SearchParams { k: 5, mode, rescore, shortlist: 20, ef: 16, allow: None };
            if let Ok(hits) = index.search(&query, &p) {
                assert!(hits.len() <= 5);
                for h in hits {
                    assert!((h.doc as usize) < index.len());
                    // Ids are checked when read: a corrupt entry is an
                    // error here, never a panic.
                    let _ = index.id_checked(h.doc);
                }
            }
        }
    }
});
