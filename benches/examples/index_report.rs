//! The index report: every search mode of one index over one set of
//! vectors, measured for size, quality and single-thread latency.
//!
//! For each mode (exact f32, int8, binary, binary with int8 rescoring,
//! binary with f32 rescoring, pq4 and pq8 with f32 rescoring, HNSW at a few
//! `ef`) it prints bytes read per vector, recall@10 against exact f32
//! search, nDCG@10 when BEIR qrels are given, p50/p99 latency of one query
//! per call on one thread, and the build time of the sections the mode
//! needs. The same rows go to a TSV (`--tsv`) that
//! `benches/scripts/faiss_search.py index` puts beside FAISS's.
//!
//! Input: `--corpus` and `--queries`, f32 `.npy` (`<f4`, C order, 2-D) or
//! raw little-endian f32 with `--dim`; optional `--corpus-ids`,
//! `--query-ids` (one id per line, row order) and `--qrels` (BEIR TSV) for
//! nDCG. Or `--generate N` writes seeded clustered unit vectors (`--dim`,
//! `--nq` queries) as `.npy` under `--out` and measures those.
//!
//! Latency is wall time around [`Index::search_into`] with a warm scratch,
//! one query per call, after one warm-up pass; the machine may be shared,
//! so compare ratios measured in the same run rather than absolute times.
//! The index is written to `--out/index.edgecl` and mapped back before
//! searching, so the scans read the file's pages as a device would.
//!
//! Left out: multi-thread throughput (see `search_batch`), IVF.

use std::collections::HashMap;
use std::error::Error;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use edgecl_runtime::container::{self, Checksums, ContainerError};
use edgecl_runtime::hnsw::HnswConfig;
use edgecl_runtime::index::{
    Hit, Index, IndexBuilder, IndexOptions, Rescore, SearchMode, SearchParams, SearchScratch,
};

type Res<T> = Result<T, Box<dyn Error>>;

const K: usize = 10;

// ---------------------------------------------------------------------------
// Vectors in and out: .npy (version 1-3, little-endian f32, C order) or raw.

/// Rows of `dim` f32 from a `.npy` file, or raw f32 when `dim` is given and
/// the file has no `.npy` magic.
fn read_vectors(path: &Path, dim: Option<usize>) -> Res<(Vec<f32>, usize)> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let err = |m: String| -> Box<dyn Error> { format!("{}: {m}", path.display()).into() };
    let (payload, d) = if bytes.starts_with(b"\x93NUMPY") {
        let major = *bytes.get(6).ok_or_else(|| err("truncated header".into()))?;
        let (len, start) = match major {
            1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
            2 | 3 if bytes.len() >= 12 => {
                (u32::from_le_bytes(bytes[8..12].try_into()?) as usize, 12)
            }
            _ => return Err(err(format!("unsupported .npy version {major}"))),
        };
        let header = bytes
            .get(start..start + len)
            .ok_or_else(|| err("truncated header".into()))
            .and_then(|h| std::str::from_utf8(h).map_err(|e| err(e.to_string())))?;
        if !header.contains("'descr': '<f4'") {
            return Err(err(format!("dtype must be '<f4', header is {header}")));
        }
        if !header.contains("'fortran_order': False") {
            return Err(err("Fortran-ordered arrays are not supported".into()));
        }
        let shape = header
            .split("'shape': (")
            .nth(1)
            .and_then(|s| s.split(')').next())
            .ok_or_else(|| err(format!("no shape in header {header}")))?;
        let dims: Vec<usize> = shape
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<usize>())
            .collect::<Result<_, _>>()
            .map_err(|e| err(format!("shape ({shape}): {e}")))?;
        let [_, d] = dims[..] else { return Err(err(format!("shape ({shape}) is not 2-D"))) };
        (&bytes[start + len..], d)
    } else {
        let d = dim.ok_or_else(|| err("not a .npy file; give --dim for raw f32".into()))?;
        (&bytes[..], d)
    };
    if d == 0 || payload.len() % (4 * d) != 0 {
        return Err(err(format!("{} payload bytes are not rows of {d} f32", payload.len())));
    }
    let v = payload.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]));
    Ok((v.collect(), d))
}

/// Writes rows of `dim` f32 as a version-1 `.npy`, atomically.
fn write_npy(path: &Path, v: &[f32], dim: usize) -> Res<()> {
    let mut header = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {dim}), }}",
        v.len() / dim
    );
    // Magic (6) + version (2) + length (2) + header + '\n' is a multiple of 64.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = Vec::with_capacity(10 + header.len() + v.len() * 4);
    bytes.extend_from_slice(b"\x93NUMPY\x01\x00");
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for x in v {
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    save(path, &bytes)
}

/// Writes `bytes` to `path` atomically (temp file, fsync, rename).
fn save(path: &Path, bytes: &[u8]) -> Res<()> {
    container::atomic_write(path, |w| {
        w.write_all(bytes).map_err(|source| ContainerError::Io {
            path: path.to_path_buf(),
            op: "write",
            source,
        })
    })?;
    Ok(())
}

/// A seeded stream of standard normal draws (splitmix64 + Box-Muller).
fn gaussians(seed: u64) -> impl FnMut() -> f32 {
    let mut s = seed;
    let mut next = move || {
        s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    move || {
        // Two uniforms, the first in (0, 1] so its log is finite.
        let u = ((next() >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
        let w = (next() >> 11) as f64 / (1u64 << 53) as f64;
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * w).cos()) as f32
    }
}

/// Intrinsic dimension of each cluster of generated vectors.
const LATENT: usize = 8;

/// Seeded clustered unit vectors shaped like embeddings: each cluster is
/// a Gaussian centre plus a spread along `LATENT` random directions of its
/// own, plus a little isotropic noise, normalised. Isotropic noise alone
/// in 128 dimensions would make every point nearly equidistant from every
/// other, which real embeddings are not, and no approximate search (ours
/// or another) finds neighbours there.
struct Clusters {
    dim: usize,
    /// `nc x dim` centres.
    centres: Vec<f32>,
    /// `nc x LATENT x dim` directions.
    bases: Vec<f32>,
}

impl Clusters {
    fn new(nc: usize, dim: usize, seed: u64) -> Self {
        let mut g = gaussians(seed);
        let centres = (0..nc * dim).map(|_| g()).collect();
        let bases = (0..nc * LATENT * dim).map(|_| 0.35 * g()).collect();
        Clusters { dim, centres, bases }
    }

    fn sample(&self, n: usize, seed: u64) -> Vec<f32> {
        let (dim, nc) = (self.dim, self.centres.len() / self.dim);
        let mut g = gaussians(seed);
        let mut v = Vec::with_capacity(n * dim);
        let mut row = vec![0f32; dim];
        for i in 0..n {
            let c = i * 7919 % nc;
            row.copy_from_slice(&self.centres[c * dim..][..dim]);
            for l in 0..LATENT {
                let z = g();
                let b = &self.bases[(c * LATENT + l) * dim..][..dim];
                row.iter_mut().zip(b).for_each(|(x, &b)| *x += z * b);
            }
            row.iter_mut().for_each(|x| *x += 0.15 * g());
            let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
            v.extend(row.iter().map(|x| x / norm));
        }
        v
    }
}

fn generate(n: usize, nq: usize, dim: usize, seed: u64, out: &Path) -> Res<(PathBuf, PathBuf)> {
    let clusters = Clusters::new((n / 1000).max(64), dim, seed ^ 0xc3);
    let corpus = clusters.sample(n, seed);
    let queries = clusters.sample(nq, seed ^ 0x51);
    std::fs::create_dir_all(out)?;
    let (cp, qp) = (out.join("corpus.npy"), out.join("queries.npy"));
    write_npy(&cp, &corpus, dim)?;
    write_npy(&qp, &queries, dim)?;
    Ok((cp, qp))
}

// ---------------------------------------------------------------------------
// Relevance judgments and metrics.

fn read_lines(path: &Path) -> Res<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text.lines().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect())
}

/// BEIR qrels: query id -> (document id -> grade), grades > 0 only.
fn read_qrels(path: &Path) -> Res<HashMap<String, HashMap<String, f64>>> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out: HashMap<String, HashMap<String, f64>> = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let f: Vec<&str> = line.split('\t').collect();
        if i == 0 && f.first() == Some(&"query-id") || line.trim().is_empty() {
            continue;
        }
        let [q, d, g] = f[..] else {
            return Err(format!(
                "{} line {}: expected 3 tab-separated fields",
                path.display(),
                i + 1
            )
            .into());
        };
        let g: f64 =
            g.trim().parse().map_err(|e| format!("{} line {}: {e}", path.display(), i + 1))?;
        if g > 0.0 {
            out.entry(q.to_string()).or_default().insert(d.to_string(), g);
        }
    }
    Ok(out)
}

/// nDCG@k with linear gains (trec_eval's `ndcg_cut`).
fn ndcg(ranked: &[&str], rel: &HashMap<String, f64>, k: usize) -> f64 {
    let dcg: f64 = ranked
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, d)| rel.get(*d).copied().unwrap_or(0.0) / (i as f64 + 2.0).log2())
        .sum();
    let mut ideal: Vec<f64> = rel.values().copied().collect();
    ideal.sort_by(|a, b| b.total_cmp(a));
    let idcg: f64 =
        ideal.iter().take(k).enumerate().map(|(i, g)| g / (i as f64 + 2.0).log2()).sum();
    if idcg > 0.0 {
        dcg / idcg
    } else {
        0.0
    }
}

// ---------------------------------------------------------------------------
// Arguments.

struct Args {
    corpus: Option<PathBuf>,
    queries: Option<PathBuf>,
    dim: Option<usize>,
    generate: Option<usize>,
    nq: usize,
    seed: u64,
    out: PathBuf,
    corpus_ids: Option<PathBuf>,
    query_ids: Option<PathBuf>,
    qrels: Option<PathBuf>,
    modes: Vec<String>,
    pq_m: Option<usize>,
    shortlist: usize,
    hnsw_m: usize,
    ef_construction: usize,
    efs: Vec<usize>,
    tsv: Option<PathBuf>,
}

const ALL_MODES: &str = "exact,int8,binary,binary+int8,binary+f32,pq4+f32,pq8+f32,hnsw";

fn parse_args() -> Res<Args> {
    let mut a = Args {
        corpus: None,
        queries: None,
        dim: None,
        generate: None,
        nq: 200,
        seed: 42,
        out: PathBuf::from("target/index-report"),
        corpus_ids: None,
        query_ids: None,
        qrels: None,
        modes: ALL_MODES.split(',').map(String::from).collect(),
        pq_m: None,
        shortlist: 100,
        hnsw_m: 16,
        ef_construction: 40,
        efs: vec![16, 32, 64, 128],
        tsv: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let num = |s: String| s.parse::<usize>().map_err(|e| format!("{flag} {s}: {e}"));
        match flag.as_str() {
            "--corpus" => a.corpus = Some(val()?.into()),
            "--queries" => a.queries = Some(val()?.into()),
            "--dim" => a.dim = Some(num(val()?)?),
            "--generate" => a.generate = Some(num(val()?)?),
            "--nq" => a.nq = num(val()?)?,
            "--seed" => a.seed = num(val()?)? as u64,
            "--out" => a.out = val()?.into(),
            "--corpus-ids" => a.corpus_ids = Some(val()?.into()),
            "--query-ids" => a.query_ids = Some(val()?.into()),
            "--qrels" => a.qrels = Some(val()?.into()),
            "--modes" => a.modes = val()?.split(',').map(String::from).collect(),
            "--pq-m" => a.pq_m = Some(num(val()?)?),
            "--shortlist" => a.shortlist = num(val()?)?,
            "--hnsw-m" => a.hnsw_m = num(val()?)?,
            "--ef-construction" => a.ef_construction = num(val()?)?,
            "--ef" => {
                a.efs = val()?.split(',').map(|s| num(s.to_string())).collect::<Result<_, _>>()?
            }
            "--tsv" => a.tsv = Some(val()?.into()),
            _ => return Err(format!("unknown flag {flag}").into()),
        }
    }
    Ok(a)
}

/// One measured mode.
struct Row {
    name: String,
    bytes: usize,
    recall: f64,
    ndcg: Option<f64>,
    p50_us: f64,
    p99_us: f64,
    qps: f64,
    build_s: f64,
}

fn main() -> Res<()> {
    let a = parse_args()?;

    // Vectors: generated, or read.
    let (cp, qp) = match a.generate {
        Some(n) => generate(n, a.nq, a.dim.unwrap_or(128), a.seed, &a.out)?,
        None => (
            a.corpus.clone().ok_or("give --corpus and --queries, or --generate N")?,
            a.queries.clone().ok_or("give --queries")?,
        ),
    };
    let (corpus, dim) = read_vectors(&cp, a.dim)?;
    let (queries, qdim) = read_vectors(&qp, Some(dim))?;
    if qdim != dim {
        return Err(format!("queries have dimension {qdim}, the corpus {dim}").into());
    }
    let (n, nq) = (corpus.len() / dim, queries.len() / dim);
    println!("corpus {} x {dim}, {nq} queries ({})", n, cp.display());

    // Ids and judgments, when given.
    let doc_ids = match &a.corpus_ids {
        Some(p) => read_lines(p)?,
        None => (0..n).map(|i| i.to_string()).collect(),
    };
    if doc_ids.len() != n {
        return Err(format!("{} corpus ids for {n} vectors", doc_ids.len()).into());
    }
    let judged = match (&a.qrels, &a.query_ids) {
        (Some(qr), Some(qi)) => {
            let qrels = read_qrels(qr)?;
            let qids = read_lines(qi)?;
            if qids.len() != nq {
                return Err(format!("{} query ids for {nq} queries", qids.len()).into());
            }
            let empty = HashMap::new();
            Some(qids.iter().map(|q| qrels.get(q).unwrap_or(&empty).clone()).collect::<Vec<_>>())
        }
        (Some(_), None) => return Err("--qrels needs --query-ids".into()),
        _ => None,
    };

    // Build with every section the chosen modes need.
    let wants = |p: &str| a.modes.iter().any(|m| m.starts_with(p));
    let m = a.pq_m.unwrap_or(dim / 8);
    let opts = IndexOptions {
        pq4: wants("pq4").then_some(m),
        pq8: wants("pq8").then_some(m),
        hnsw: wants("hnsw").then_some(HnswConfig {
            m: a.hnsw_m,
            ef_construction: a.ef_construction,
            seed: 7,
        }),
        ..IndexOptions::default()
    };
    let t = Instant::now();
    let built = IndexBuilder::build(doc_ids.clone(), &corpus, dim, &opts)?;
    let total_build = t.elapsed().as_secs_f64();
    let times = built.times();
    std::fs::create_dir_all(&a.out)?;
    let path = a.out.join("index.edgecl");
    built.write(&path)?;
    drop(built);
    let t = Instant::now();
    let mapped = container::open(&path, Checksums::HeaderOnly)?;
    let c = mapped.container();
    let index = Index::open(&c)?;
    let open_us = t.elapsed().as_secs_f64() * 1e6;
    println!(
        "build {total_build:.1} s (int8 {:.2}, binary {:.2}, pq4 {:.1}, pq8 {:.1}, hnsw {:.1}); \
         file {} MB, open {open_us:.0} us",
        times.int8,
        times.binary,
        times.pq4,
        times.pq8,
        times.hnsw,
        std::fs::metadata(&path)?.len() / 1_000_000
    );

    // Exact answers first: the reference of every recall.
    let mut scratch = SearchScratch::new();
    let mut out: Vec<Hit> = Vec::new();
    let exact_p = SearchParams { k: K, mode: SearchMode::Exact, ..SearchParams::default() };
    let mut truth: Vec<Vec<u32>> = Vec::with_capacity(nq);
    for q in queries.chunks_exact(dim) {
        index.search_into(q, &exact_p, &mut scratch, &mut out)?;
        truth.push(out.iter().map(|h| h.doc).collect());
    }

    // The modes, each as (label, params, build seconds).
    let mut plans: Vec<(String, SearchParams, f64)> = Vec::new();
    let p = |mode, rescore| SearchParams {
        k: K,
        mode,
        rescore,
        shortlist: a.shortlist,
        ..SearchParams::default()
    };
    for name in &a.modes {
        match name.as_str() {
            "exact" => plans.push((name.clone(), p(SearchMode::Exact, Rescore::None), 0.0)),
            "int8" => plans.push((name.clone(), p(SearchMode::Int8, Rescore::None), times.int8)),
            "int8+f32" => plans.push((name.clone(), p(SearchMode::Int8, Rescore::F32), times.int8)),
            "binary" => {
                plans.push((name.clone(), p(SearchMode::Binary, Rescore::None), times.binary))
            }
            "binary+int8" => plans.push((
                name.clone(),
                p(SearchMode::Binary, Rescore::Int8),
                times.binary + times.int8,
            )),
            "binary+f32" => {
                plans.push((name.clone(), p(SearchMode::Binary, Rescore::F32), times.binary))
            }
            "pq4" => plans.push((name.clone(), p(SearchMode::Pq4, Rescore::None), times.pq4)),
            "pq4+f32" => plans.push((name.clone(), p(SearchMode::Pq4, Rescore::F32), times.pq4)),
            "pq8" => plans.push((name.clone(), p(SearchMode::Pq8, Rescore::None), times.pq8)),
            "pq8+f32" => plans.push((name.clone(), p(SearchMode::Pq8, Rescore::F32), times.pq8)),
            "hnsw" => {
                for &ef in &a.efs {
                    let params = SearchParams { ef, ..p(SearchMode::Hnsw, Rescore::None) };
                    plans.push((format!("hnsw ef{ef}"), params, times.hnsw));
                }
            }
            other => return Err(format!("unknown mode {other}; modes: {ALL_MODES}").into()),
        }
    }

    // Each mode: a warm-up pass, then one timed pass of single queries.
    let mut rows = Vec::new();
    for (name, params, build_s) in plans {
        for q in queries.chunks_exact(dim) {
            index.search_into(q, &params, &mut scratch, &mut out)?;
        }
        let mut lat = Vec::with_capacity(nq);
        let (mut recall, mut nd) = (0.0, 0.0);
        for (qi, q) in queries.chunks_exact(dim).enumerate() {
            let t = Instant::now();
            index.search_into(q, &params, &mut scratch, &mut out)?;
            lat.push(t.elapsed().as_secs_f64());
            let got: Vec<u32> = out.iter().map(|h| h.doc).collect();
            recall += got.iter().filter(|d| truth[qi].contains(d)).count() as f64
                / truth[qi].len().max(1) as f64;
            if let Some(j) = &judged {
                let ranked: Vec<&str> = got.iter().map(|&d| doc_ids[d as usize].as_str()).collect();
                nd += ndcg(&ranked, &j[qi], K);
            }
        }
        let mean = lat.iter().sum::<f64>() / nq as f64;
        lat.sort_by(f64::total_cmp);
        let pct = |p: f64| lat[((p * (nq - 1) as f64).round() as usize).min(nq - 1)] * 1e6;
        rows.push(Row {
            bytes: index.bytes_per_vector(params.mode, params.rescore),
            name,
            recall: recall / nq as f64,
            ndcg: judged.as_ref().map(|_| nd / nq as f64),
            p50_us: pct(0.5),
            p99_us: pct(0.99),
            qps: 1.0 / mean,
            build_s,
        });
    }

    // The table, and the TSV for the FAISS script.
    let mut text = String::new();
    writeln!(
        text,
        "{:<14} {:>9} {:>10} {:>8} {:>10} {:>10} {:>9} {:>9}",
        "mode", "bytes/vec", "recall@10", "nDCG@10", "p50 us", "p99 us", "QPS", "build s"
    )?;
    let mut tsv = String::from("mode\tbytes\trecall\tndcg\tp50_us\tp99_us\tqps\tbuild_s\n");
    for r in &rows {
        let nd = r.ndcg.map_or("-".to_string(), |x| format!("{x:.4}"));
        writeln!(
            text,
            "{:<14} {:>9} {:>10.4} {:>8} {:>10.1} {:>10.1} {:>9.0} {:>9.2}",
            r.name, r.bytes, r.recall, nd, r.p50_us, r.p99_us, r.qps, r.build_s
        )?;
        writeln!(
            tsv,
            "{}\t{}\t{:.5}\t{}\t{:.2}\t{:.2}\t{:.1}\t{:.3}",
            r.name, r.bytes, r.recall, nd, r.p50_us, r.p99_us, r.qps, r.build_s
        )?;
    }
    print!("{text}");
    if let Some(p) = &a.tsv {
        save(p, tsv.as_bytes())?;
    }
    Ok(())
}
