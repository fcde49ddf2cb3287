//! Writes a few valid containers into the directory given as the only
//! argument, as seed inputs for the fuzz targets: a tiny two-section file,
//! a small hand-assembled index (string tables, quantizer parameters, vectors and an
//! HNSW graph over the same Hamming items `hnsw_load` searches), and an
//! index built by `IndexBuilder` with every search mode.

use edgecl_runtime::container::ContainerBuilder;
use edgecl_runtime::hnsw::{build, Hamming, HnswConfig};
use edgecl_runtime::index::{IndexBuilder, IndexOptions};
use edgecl_runtime::quant::{BinaryQuantizer, Calibration, Granularity, Int8Quantizer, Mode};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).ok_or("usage: seeds DIR")?);
    std::fs::create_dir_all(&dir)?;

    // Tiny: one f32 matrix, one byte string.
    let a = [1.0f32, -2.0, 3.5, 0.0, 7.25, -0.5];
    let b = [9u8, 8, 7, 6, 5];
    let mut c = ContainerBuilder::new();
    c.add("a", &[2, 3], &a)?.add("b", &[5], &b)?;
    c.write_atomic(dir.join("tiny.edc"))?;

    // Small index over 40 items of dimension 4.
    let n = 40usize;
    let x: Vec<f32> = (0..n * 4).map(|i| ((i * 37 % 17) as f32 - 8.0) / 4.0).collect();
    let q8 =
        Int8Quantizer::calibrate(&x, 4, Mode::Symmetric, Granularity::PerDim, Calibration::MinMax)?;
    let qb = BinaryQuantizer::calibrate(&x, 4, true)?;
    let codes = q8.quantize_vec(&x)?;
    let words: Vec<u64> = (0..n as u64).map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).collect();
    let graph =
        build(&Hamming::new(&words, 1)?, &HnswConfig { m: 4, ef_construction: 16, seed: 1 })?;
    let ids: Vec<String> = (0..n).map(|i| format!("doc-{i}")).collect();
    let mut c = ContainerBuilder::new();
    c.add_key_values("meta", [("kind", "index")])?;
    c.add_strings("doc.ids", &ids)?;
    c.add("vectors.f32", &[n as u64, 4], &x)?;
    c.add("vectors.i8", &[n as u64, 4], &codes)?;
    c.add("vectors.bin", &[n as u64, 1], &words)?;
    q8.write(&mut c, "quant.i8")?;
    qb.write(&mut c, "quant.bin")?;
    graph.write(&mut c, "hnsw")?;
    c.write_atomic(dir.join("index.edc"))?;

    // An index as edgecl builds it: every search mode, PQ and a graph.
    let (n, d) = (64usize, 16usize);
    let v: Vec<f32> = (0..n * d).map(|i| ((i * 7919 % 101) as f32 - 50.0) / 50.0).collect();
    let ids: Vec<String> = (0..n).map(|i| format!("d{i}")).collect();
    let opts = IndexOptions {
        pq4: Some(4),
        hnsw: Some(HnswConfig { m: 4, ef_construction: 16, seed: 2 }),
        ..IndexOptions::default()
    };
    IndexBuilder::build(ids.clone(), &v, d, &opts)?.write(dir.join("edgecl-index.edc"))?;

    // The same with optimized PQ: a `pq.rotation` section for the reader.
    let opts = IndexOptions { pq4_opq: true, hnsw: None, ..opts };
    IndexBuilder::build(ids, &v, d, &opts)?.write(dir.join("edgecl-index-opq.edc"))?;
    Ok(())
}
