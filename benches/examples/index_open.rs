//! Time to open a large index: `container::open` (the map, the header
//! checksum, the structure) plus `Index::open` (section views), on a file
//! of about 1 GB built once under `target/` and reused.
//!
//! The file holds f32 vectors, int8 codes, sign bits and ids (no HNSW
//! graph, which is validated list by list at open, and no 4-bit PQ, which
//! is repacked at open; both costs grow with the corpus and are measured
//! by the index report instead). Opening must not read the payloads: the
//! figure printed is the median of many opens, with the file's pages
//! already cached by the OS, which is the repeated-open case of a device.
//!
//! Usage: `index_open [path] [documents] [dim]` (defaults
//! `target/index-open/1g.edgecl`, 1,600,000 x 128: 512 + 128 + 16 bytes of
//! codes per document, about 1.05 GB with the ids). Asserts nothing; it
//! prints the figures.

use std::error::Error;
use std::path::PathBuf;
use std::time::Instant;

use edgecl_runtime::container::{self, Checksums};
use edgecl_runtime::index::{Index, IndexBuilder, IndexOptions};

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let path = PathBuf::from(args.next().unwrap_or("target/index-open/1g.edgecl".into()));
    let n: usize = args.next().map_or(Ok(1_600_000), |s| s.parse())?;
    let dim: usize = args.next().map_or(Ok(128), |s| s.parse())?;

    // Build once: cheap seeded vectors (the open does not look at them).
    if !path.exists() {
        let t = Instant::now();
        let mut s = 0x1234_5678_9abc_def0u64;
        let v: Vec<f32> = (0..n * dim)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
            })
            .collect();
        let ids: Vec<String> = (0..n).map(|i| format!("d{i}")).collect();
        let built = IndexBuilder::build(ids, &v, dim, &IndexOptions::default())?;
        drop(v);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        built.write(&path)?;
        println!("built {} in {:.1} s", path.display(), t.elapsed().as_secs_f64());
    }
    let bytes = std::fs::metadata(&path)?.len();

    // Warm the page cache and the code paths once, then time many opens.
    let mapped = container::open(&path, Checksums::HeaderOnly)?;
    let docs = Index::open(&mapped.container())?.len();
    drop(mapped);
    let mut times = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        let mapped = container::open(&path, Checksums::HeaderOnly)?;
        let c = mapped.container();
        let index = Index::open(&c)?;
        std::hint::black_box(index.len());
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{}: {:.2} GB, {docs} documents x {dim}: open (map + header + Index::open) \
         median {:.1} us, p90 {:.1} us, min {:.1} us over {} opens",
        path.display(),
        bytes as f64 / 1e9,
        times[times.len() / 2],
        times[times.len() * 9 / 10],
        times[0],
        times.len()
    );
    Ok(())
}
