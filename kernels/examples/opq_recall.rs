//! Recall@10 of plain PQ beside optimized PQ (a learnt rotation before
//! cutting) at the same code size, on real embeddings.
//!
//! Usage: `opq_recall <corpus.npy> <queries.npy> [m,m,...] [nbits]` with
//! f32 row-major `.npy` files (as `benches/scripts/embed_scifact.py`
//! writes them). Both quantizers train on the whole corpus with the same
//! seed and as many Lloyd iterations in all; each query is searched by
//! exact ADC (float tables over every code) for its top 10, compared with
//! exact inner-product search. For 4-bit codes the fast-scan shortlist of
//! 100 re-ranked with the float table is reported too. Prints one
//! markdown row per (m, quantizer) with the reconstruction error, recall
//! and training time.

use edgecl_kernels::pq::fastscan::{self, PackedCodes};
use edgecl_kernels::pq::opq::{self, OpqConfig};
use edgecl_kernels::pq::{self, Metric, ProductQuantizer, TrainConfig};
use std::collections::HashSet;
use std::error::Error;
use std::time::Instant;

type Res<T> = Result<T, Box<dyn Error>>;

const K: usize = 10;
const SHORTLIST: usize = 100;

/// Reads a 2-D little-endian f32 C-order `.npy` file: (rows, cols, data).
fn read_npy(path: &str) -> Res<(usize, usize, Vec<f32>)> {
    let b = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    if b.len() < 10 || &b[..6] != b"\x93NUMPY" {
        return Err(format!("{path}: not a .npy file").into());
    }
    let (hlen, start) = match b[6] {
        1 => (u16::from_le_bytes([b[8], b[9]]) as usize, 10),
        _ if b.len() >= 12 => (u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize, 12),
        _ => return Err(format!("{path}: truncated header").into()),
    };
    let header = std::str::from_utf8(b.get(start..start + hlen).ok_or("truncated header")?)?;
    if !header.contains("'<f4'") || header.contains("'fortran_order': True") {
        return Err(format!("{path}: expected little-endian f32 in C order: {header}").into());
    }
    let shape = header
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| format!("{path}: no shape in {header}"))?;
    let dims: Vec<usize> = shape
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let [rows, cols] = dims[..] else {
        return Err(format!("{path}: expected 2 dimensions, found {dims:?}").into());
    };
    let data = &b[start + hlen..];
    if data.len() != rows * cols * 4 {
        return Err(format!("{path}: {} data bytes for shape {rows} x {cols}", data.len()).into());
    }
    let v = data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    Ok((rows, cols, v))
}

/// The top-10 ids of each query by exact inner product.
fn exact(corpus: &[f32], queries: &[f32], d: usize) -> Vec<Vec<u32>> {
    queries
        .chunks_exact(d)
        .map(|q| {
            let mut s: Vec<(f32, u32)> = corpus
                .chunks_exact(d)
                .enumerate()
                .map(|(i, x)| (q.iter().zip(x).map(|(a, b)| a * b).sum(), i as u32))
                .collect();
            s.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            s.into_iter().take(K).map(|(_, i)| i).collect()
        })
        .collect()
}

fn recall(gt: &[Vec<u32>], got: &[Vec<u32>]) -> f64 {
    let hits: usize = gt
        .iter()
        .zip(got)
        .map(|(g, r)| {
            let g: HashSet<_> = g.iter().collect();
            r.iter().filter(|i| g.contains(i)).count()
        })
        .sum();
    hits as f64 / (K * gt.len()) as f64
}

/// Recall of exact ADC and (4-bit) fast-scan + re-rank for `pq` over the
/// already rotated `corpus` and `queries`; also the reconstruction MSE.
fn measure(
    pq: &ProductQuantizer,
    corpus: &[f32],
    queries: &[f32],
    gt: &[Vec<u32>],
) -> Res<(f64, f64, Option<f64>)> {
    let (d, m, ksub) = (pq.dim(), pq.m(), pq.ksub());
    let n = corpus.len() / d;
    let mut codes = vec![0u8; n * m];
    pq.encode(corpus, &mut codes)?;
    let mut back = vec![0f32; n * d];
    pq.decode(&codes, &mut back)?;
    let mse =
        corpus.iter().zip(&back).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>() / n as f64;
    let packed = if ksub == 16 { Some(PackedCodes::pack(&codes, m)?) } else { None };
    let mut table = vec![0f32; m * ksub];
    let (mut adc, mut fs) = (Vec::new(), Vec::new());
    for q in queries.chunks_exact(d) {
        pq.distance_table(q, Metric::InnerProduct, &mut table)?;
        let hits = pq::adc_topk(&table, m, ksub, &codes, Metric::InnerProduct, K)?;
        adc.push(hits.iter().map(|h| h.id).collect::<Vec<_>>());
        if let Some(p) = &packed {
            let hits = fastscan::search(&table, Metric::InnerProduct, p, K, SHORTLIST)?;
            fs.push(hits.iter().map(|h| h.id).collect::<Vec<_>>());
        }
    }
    Ok((mse, recall(gt, &adc), packed.map(|_| recall(gt, &fs))))
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        return Err("usage: opq_recall <corpus.npy> <queries.npy> [m,m,...] [nbits]".into());
    }
    let (n, d, corpus) = read_npy(&args[1])?;
    let (nq, dq, queries) = read_npy(&args[2])?;
    if d != dq {
        return Err(format!("corpus dimension {d}, queries {dq}").into());
    }
    let ms: Vec<usize> = match args.get(3) {
        Some(s) => s.split(',').map(str::parse).collect::<Result<_, _>>()?,
        None => vec![d / 8, d / 4],
    };
    let nbits: u32 = args.get(4).map(|s| s.parse()).transpose()?.unwrap_or(4);
    let gt = exact(&corpus, &queries, d);
    println!("{n} x {d} corpus, {nq} queries, {nbits}-bit codes, recall@{K} against exact IP");
    println!();
    println!("| m | bytes/vec | quantizer | MSE | recall ADC | recall fast-scan+rerank{SHORTLIST} | train s |");
    println!("|---|---|---|---|---|---|---|");
    let cfg = OpqConfig::default();
    for &m in &ms {
        let bytes = m * nbits as usize / 8;
        // Plain PQ with as many Lloyd iterations as OPQ runs in all.
        let iters = cfg.pq_iters * cfg.iters + cfg.final_iters;
        let t = Instant::now();
        let pq =
            ProductQuantizer::train(&corpus, d, m, nbits, TrainConfig { iters, seed: cfg.seed })?;
        let pq_s = t.elapsed().as_secs_f64();
        let (mse, r_adc, r_fs) = measure(&pq, &corpus, &queries, &gt)?;
        let fs = r_fs.map_or("-".into(), |r| format!("{r:.4}"));
        println!("| {m} | {bytes} | PQ | {mse:.5} | {r_adc:.4} | {fs} | {pq_s:.1} |");

        let t = Instant::now();
        let o = opq::train(&corpus, d, m, nbits, cfg)?;
        let opq_s = t.elapsed().as_secs_f64();
        let (mut rc, mut rq) = (vec![0f32; corpus.len()], vec![0f32; queries.len()]);
        opq::rotate(&o.rotation, d, &corpus, &mut rc)?;
        opq::rotate(&o.rotation, d, &queries, &mut rq)?;
        let (mse, r_adc, r_fs) = measure(&o.pq, &rc, &rq, &gt)?;
        let fs = r_fs.map_or("-".into(), |r| format!("{r:.4}"));
        println!("| {m} | {bytes} | OPQ | {mse:.5} | {r_adc:.4} | {fs} | {opq_s:.1} |");
    }
    Ok(())
}
