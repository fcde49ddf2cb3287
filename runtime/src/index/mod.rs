//! Index files: a corpus's embeddings, quantized, in one container that a
//! device maps and searches in place.
//!
//! [`IndexBuilder`] takes document ids and their f32 embeddings and stores
//! any mix of: the f32 vectors (exact search and rescoring), int8 codes
//! ([`Int8Quantizer`], per-dimension or global ranges), sign bits
//! ([`BinaryQuantizer`], optionally centred on the corpus mean), 4-bit and
//! 8-bit product-quantization codes, and an HNSW graph over the f32
//! vectors. [`Index`] opens such a container without copying the vectors,
//! and answers a query in one of these modes:
//!
//! | mode     | first pass                               | rescoring (optional) |
//! |----------|------------------------------------------|----------------------|
//! | `Exact`  | f32 dot scan                             | -                    |
//! | `Int8`   | int8 dot scan of the folded query        | f32                  |
//! | `Binary` | Hamming scan of the sign bits            | int8 or f32          |
//! | `Pq4`    | 4-bit fast-scan with u8 tables           | int8 or f32          |
//! | `Pq8`    | 8-bit ADC scan with an f32 table         | int8 or f32          |
//! | `Hnsw`   | graph search over the f32 vectors        | -                    |
//!
//! Scores are inner products (embeddings are L2-normalised, so cosines),
//! larger is better, ties to the smaller document number: the same query
//! gives the same list on every machine and thread count. A first pass
//! keeps `shortlist` candidates when a rescoring follows, `k` otherwise.
//! Every mode honours an allow-list ([`SearchParams::allow`]): scans skip
//! disallowed rows (or visit only the allowed ones when they are few), the
//! graph uses its filtered search.
//!
//! One query, no allocation: [`Index::search_into`] works in a caller-held
//! [`SearchScratch`] and writes into a caller-held `Vec<Hit>`; once both
//! have grown to the sizes a workload needs, a query allocates nothing
//! (`scan.rs` says how each mode manages it). [`Index::search`] is the
//! convenient form that allocates both per call.
//!
//! Int8 scoring. Stored codes decode as `x_j ~ s_j c_j + b_j`, so
//! `q . x ~ sum_j (q_j s_j) c_j + sum_j q_j b_j`. The query is folded into
//! `w_j = q_j s_j`, quantized symmetrically to `w_j ~ t v_j`, and scored as
//! `t * (v . c) + sum_j q_j b_j` with the int8 dot kernel; the second term
//! is the same for every document and only makes the score comparable
//! across shards.
//!
//! Models: an index may store the digest of the model that embedded its
//! vectors; [`Index::check_model`] and [`Index::search_for_model`] refuse a
//! query from another model with [`IndexError::ModelMismatch`].
//!
//! Sharding: [`search_shards`] runs a query on several indexes (built in
//! pieces, perhaps on several machines) and merges their top-k.
//!
//! Opening costs: the vectors, codes and ids are viewed in place, and only
//! their sizes are checked at open (each id is validated when it is read),
//! so opening does not grow with the corpus except for two sections. The
//! HNSW graph gets one validation pass over its lists, because a search
//! follows stored ids blindly afterwards. The 4-bit PQ codes are repacked
//! into the fast-scan layout at open, which copies n * m / 2 bytes: the
//! kernel's packed-code type owns its bytes, and storing the packed layout
//! in the file would tie the format to that kernel's block size.

mod scan;

use std::fmt;

use rayon::prelude::*;

use crate::container::{names, Container, ContainerBuilder, ContainerError, KeyValues};
use crate::hnsw::{self, AllowList, GraphView, Hnsw, HnswConfig, HnswError};
use crate::kernels::pq::{self, fastscan, PqError, ProductQuantizer};
use crate::kernels::search::SearchError;
use crate::quant::{BinaryQuantizer, Calibration, Granularity, Int8Quantizer, Mode, QuantError};

pub use scan::SearchScratch;

/// The `kind` an index container declares in its `meta` table.
pub const KIND: &str = "index";
/// u8 `[n, m]`: 8-bit product-quantization codes (one byte per
/// sub-quantizer), beside the 4-bit codes of `pq.codes`.
pub const PQ8_CODES: &str = "pq8.codes";
/// f32 `[m, 256, d / m]`: the 8-bit product quantizer's centroids.
pub const PQ8_CODEBOOKS: &str = "pq8.codebooks";

/// Why an index could not be built, opened or searched.
#[derive(Debug)]
pub enum IndexError {
    /// The container itself is unreadable or invalid.
    Container(ContainerError),
    /// A quantizer's parameters are invalid.
    Quant(QuantError),
    /// The HNSW graph is invalid or its search failed.
    Hnsw(HnswError),
    /// A scan kernel rejected its arguments.
    Search(SearchError),
    /// Product quantization failed.
    Pq(PqError),
    /// The container is not an index (its `meta.kind` says otherwise).
    NotAnIndex { kind: String },
    /// A search mode needs sections this index does not hold.
    Missing { mode: &'static str, needs: &'static str },
    /// A length or count that does not agree with the index.
    Shape { what: &'static str, expected: usize, found: usize },
    /// A parameter out of its domain, or a non-finite value.
    Invalid { what: &'static str, reason: String },
    /// The query's model is not the one that built the index.
    ModelMismatch { stored: [u8; 32], query: [u8; 32] },
    /// A model check was asked of an index that stores no model digest.
    NoModelHash,
}

// The first 8 bytes of a digest in hex, enough to tell models apart.
fn short_hex(h: &[u8; 32]) -> String {
    h[..8].iter().map(|b| format!("{b:02x}")).collect()
}

impl fmt::Display for IndexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IndexError::Container(e) => write!(f, "index container: {e}"),
            IndexError::Quant(e) => write!(f, "index quantizer: {e}"),
            IndexError::Hnsw(e) => write!(f, "index graph: {e}"),
            IndexError::Search(e) => write!(f, "index scan: {e}"),
            IndexError::Pq(e) => write!(f, "index product quantizer: {e}"),
            IndexError::NotAnIndex { kind } => {
                write!(f, "container holds a {kind:?}, not an {KIND:?}")
            }
            IndexError::Missing { mode, needs } => {
                write!(f, "search mode {mode} needs {needs}, which this index does not store")
            }
            IndexError::Shape { what, expected, found } => {
                write!(f, "{what}: expected {expected}, found {found}")
            }
            IndexError::Invalid { what, reason } => write!(f, "{what}: {reason}"),
            IndexError::ModelMismatch { stored, query } => write!(
                f,
                "index was built by model {}.., the query comes from model {}..",
                short_hex(stored),
                short_hex(query)
            ),
            IndexError::NoModelHash => {
                write!(f, "index stores no model digest to check the query's model against")
            }
        }
    }
}

impl std::error::Error for IndexError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            IndexError::Container(e) => Some(e),
            IndexError::Quant(e) => Some(e),
            IndexError::Hnsw(e) => Some(e),
            IndexError::Search(e) => Some(e),
            IndexError::Pq(e) => Some(e),
            _ => None,
        }
    }
}

macro_rules! from_err {
    ($($t:ty => $v:ident),*) => {$(
        impl From<$t> for IndexError {
            fn from(e: $t) -> Self {
                IndexError::$v(e)
            }
        }
    )*};
}
from_err!(ContainerError => Container, QuantError => Quant, HnswError => Hnsw,
          SearchError => Search, PqError => Pq);

/// What an index stores besides the document ids.
#[derive(Clone, Debug)]
pub struct IndexOptions {
    /// Full f32 vectors: exact search, f32 rescoring, HNSW.
    pub f32: bool,
    /// int8 codes (asymmetric, ranges as the two fields below say).
    pub int8: bool,
    /// One int8 scale per dimension, or one for all.
    pub int8_granularity: Granularity,
    /// How the int8 ranges are taken from the corpus.
    pub int8_calibration: Calibration,
    /// Sign bits.
    pub binary: bool,
    /// Subtract the corpus mean before taking signs.
    pub binary_centre: bool,
    /// 4-bit product quantization with this many sub-quantizers (it must
    /// divide the dimension).
    pub pq4: Option<usize>,
    /// Learn an orthogonal rotation with the 4-bit codebooks (optimized
    /// PQ), stored as `pq.rotation`; training costs several PQ trainings.
    pub pq4_opq: bool,
    /// 8-bit product quantization with this many sub-quantizers (it must
    /// divide the dimension; the corpus needs at least 256 documents).
    pub pq8: Option<usize>,
    /// PQ codebooks are trained on at most this many documents, taken at
    /// an even stride; every document is encoded.
    pub pq_train_sample: usize,
    /// An HNSW graph over the f32 vectors (needs `f32`).
    pub hnsw: Option<HnswConfig>,
    /// Seed of PQ training.
    pub seed: u64,
    /// A digest of the model that made the vectors, stored so a caller can
    /// refuse queries from another model.
    pub model_hash: Option<[u8; 32]>,
}

impl Default for IndexOptions {
    fn default() -> Self {
        IndexOptions {
            f32: true,
            int8: true,
            int8_granularity: Granularity::PerDim,
            int8_calibration: Calibration::MinMax,
            binary: true,
            binary_centre: true,
            pq4: None,
            pq4_opq: false,
            pq8: None,
            pq_train_sample: 65_536,
            hnsw: None,
            seed: 0x1dec_5eed,
            model_hash: None,
        }
    }
}

/// How long each part of a build took, in seconds.
#[derive(Clone, Copy, Debug, Default)]
pub struct BuildTimes {
    pub int8: f64,
    pub binary: f64,
    pub pq4: f64,
    pub pq8: f64,
    pub hnsw: f64,
}

/// The parts of an index, built in memory and written as one container.
pub struct IndexBuilder {
    ids: Vec<String>,
    dim: usize,
    f32: Option<Vec<f32>>,
    int8: Option<(Int8Quantizer, Vec<i8>)>,
    binary: Option<(BinaryQuantizer, Vec<u64>)>,
    pq4: Option<(ProductQuantizer, Vec<u8>)>,
    /// `d x d` rotation applied before the 4-bit quantizer (optimized PQ).
    pq4_rotation: Option<Vec<f32>>,
    pq8: Option<(ProductQuantizer, Vec<u8>)>,
    hnsw: Option<Hnsw>,
    model_hash: Option<[u8; 32]>,
    options: IndexOptions,
    times: BuildTimes,
}

// Seconds since `t`.
fn since(t: std::time::Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

/// Trains a product quantizer of `2^nbits` centroids on at most
/// `sample` rows (an even stride over the corpus) and encodes every row.
fn train_pq(
    vectors: &[f32],
    dim: usize,
    m: usize,
    nbits: u32,
    options: &IndexOptions,
) -> Result<(ProductQuantizer, Vec<u8>), IndexError> {
    let cfg = pq::TrainConfig { iters: 20, seed: options.seed };
    let q = ProductQuantizer::train(&pq_sample(vectors, dim, nbits, options), dim, m, nbits, cfg)?;
    let mut codes = vec![0u8; vectors.len() / dim * m];
    q.encode(vectors, &mut codes)?;
    Ok((q, codes))
}

/// At most `pq_train_sample` rows (and at least `2^nbits`), an even
/// stride over the corpus; the whole corpus when it is that small.
fn pq_sample<'v>(
    vectors: &'v [f32],
    dim: usize,
    nbits: u32,
    options: &IndexOptions,
) -> std::borrow::Cow<'v, [f32]> {
    let n = vectors.len() / dim;
    let take = options.pq_train_sample.max(1 << nbits);
    if n <= take {
        return std::borrow::Cow::Borrowed(vectors);
    }
    let mut sample = Vec::with_capacity(take * dim);
    for i in 0..take {
        let r = i * n / take;
        sample.extend_from_slice(&vectors[r * dim..(r + 1) * dim]);
    }
    std::borrow::Cow::Owned(sample)
}

/// Optimized PQ with 4-bit codes: a rotation and codebooks learnt on the
/// training sample, then every row rotated and encoded.
fn train_opq4(
    vectors: &[f32],
    dim: usize,
    m: usize,
    options: &IndexOptions,
) -> Result<(ProductQuantizer, Vec<u8>, Vec<f32>), IndexError> {
    let cfg = pq::opq::OpqConfig { seed: options.seed, ..pq::opq::OpqConfig::default() };
    let o = pq::opq::train(&pq_sample(vectors, dim, 4, options), dim, m, 4, cfg)?;
    let mut rotated = vec![0f32; vectors.len()];
    pq::opq::rotate(&o.rotation, dim, vectors, &mut rotated)?;
    let mut codes = vec![0u8; vectors.len() / dim * m];
    o.pq.encode(&rotated, &mut codes)?;
    Ok((o.pq, codes, o.rotation))
}

impl IndexBuilder {
    /// Quantizes `vectors` (`ids.len()` rows of `dim`) as `options` asks.
    pub fn build(
        ids: Vec<String>,
        vectors: &[f32],
        dim: usize,
        options: &IndexOptions,
    ) -> Result<Self, IndexError> {
        let n = ids.len();
        if dim == 0 {
            return Err(IndexError::Invalid { what: "dimension", reason: "is zero".into() });
        }
        if n == 0 {
            return Err(IndexError::Invalid {
                what: "corpus",
                reason: "holds no documents".into(),
            });
        }
        if vectors.len() != n * dim {
            let what = "vectors (documents x dimension)";
            return Err(IndexError::Shape { what, expected: n * dim, found: vectors.len() });
        }
        if let Some(i) = vectors.iter().position(|v| !v.is_finite()) {
            return Err(IndexError::Invalid {
                what: "vectors",
                reason: format!("document {} dimension {} is not finite", i / dim, i % dim),
            });
        }
        if n > u32::MAX as usize {
            return Err(IndexError::Invalid { what: "corpus", reason: format!("{n} documents") });
        }
        if options.hnsw.is_some() && !options.f32 {
            return Err(IndexError::Missing { mode: "hnsw (build)", needs: "f32 vectors" });
        }
        let mut times = BuildTimes::default();

        let t = std::time::Instant::now();
        let int8 = if options.int8 {
            let q = Int8Quantizer::calibrate(
                vectors,
                dim,
                Mode::Asymmetric,
                options.int8_granularity,
                options.int8_calibration,
            )?;
            let mut codes = vec![0i8; n * dim];
            q.quantize(vectors, &mut codes)?;
            Some((q, codes))
        } else {
            None
        };
        times.int8 = since(t);

        let t = std::time::Instant::now();
        let binary = if options.binary {
            let q = BinaryQuantizer::calibrate(vectors, dim, options.binary_centre)?;
            let mut codes = vec![0u64; n * q.words()];
            q.encode(vectors, &mut codes)?;
            Some((q, codes))
        } else {
            None
        };
        times.binary = since(t);

        let t = std::time::Instant::now();
        let (pq4, pq4_rotation) = match options.pq4 {
            Some(m) if options.pq4_opq => {
                let (q, codes, r) = train_opq4(vectors, dim, m, options)?;
                (Some((q, codes)), Some(r))
            }
            Some(m) => (Some(train_pq(vectors, dim, m, 4, options)?), None),
            None => (None, None),
        };
        times.pq4 = since(t);
        let t = std::time::Instant::now();
        let pq8 = options.pq8.map(|m| train_pq(vectors, dim, m, 8, options)).transpose()?;
        times.pq8 = since(t);

        let t = std::time::Instant::now();
        let hnsw = match &options.hnsw {
            Some(cfg) => Some(hnsw::build(&hnsw::F32Dot::new(vectors, dim)?, cfg)?),
            None => None,
        };
        times.hnsw = since(t);

        Ok(IndexBuilder {
            ids,
            dim,
            f32: options.f32.then(|| vectors.to_vec()),
            int8,
            binary,
            pq4,
            pq4_rotation,
            pq8,
            hnsw,
            model_hash: options.model_hash,
            options: options.clone(),
            times,
        })
    }

    /// Wall-clock time of each quantizer's calibration and encoding, and
    /// of the graph build.
    pub fn times(&self) -> BuildTimes {
        self.times
    }

    /// Adds every section to `b`.
    pub fn add_to<'a>(&'a self, b: &mut ContainerBuilder<'a>) -> Result<(), IndexError> {
        let (n, d) = (self.ids.len() as u64, self.dim as u64);
        let modes: Vec<&str> = [
            (self.f32.is_some(), "f32"),
            (self.int8.is_some(), "int8"),
            (self.binary.is_some(), "binary"),
            (self.pq4.is_some(), "pq4"),
            (self.pq8.is_some(), "pq8"),
            (self.hnsw.is_some(), "hnsw"),
        ]
        .iter()
        .filter(|m| m.0)
        .map(|m| m.1)
        .collect();
        b.add_key_values(
            names::META,
            [
                ("kind", KIND.to_string()),
                ("writer", format!("edgecl {}", env!("CARGO_PKG_VERSION"))),
                ("n", n.to_string()),
                ("dim", d.to_string()),
                ("metric", "dot".to_string()),
                ("modes", modes.join(",")),
            ],
        )?;
        b.add_strings(names::DOC_IDS, &self.ids)?;
        if let Some(v) = &self.f32 {
            b.add(names::VECTORS_F32, &[n, d], v)?;
        }
        if let Some((q, codes)) = &self.int8 {
            b.add(names::VECTORS_I8, &[n, d], codes)?;
            q.write(b, names::QUANT_I8)?;
        }
        if let Some((q, codes)) = &self.binary {
            b.add(names::VECTORS_BIN, &[n, q.words() as u64], codes)?;
            q.write(b, names::QUANT_BIN)?;
        }
        for (pq, codes_name, books_name) in [
            (&self.pq4, names::PQ_CODES, names::PQ_CODEBOOKS),
            (&self.pq8, PQ8_CODES, PQ8_CODEBOOKS),
        ] {
            if let Some((q, codes)) = pq {
                let (m, ksub, dsub) = (q.m() as u64, q.ksub() as u64, q.dsub() as u64);
                b.add(codes_name, &[n, m], codes)?;
                b.add(books_name, &[m, ksub, dsub], q.centroids())?;
            }
        }
        if let Some(r) = &self.pq4_rotation {
            b.add(names::PQ_ROTATION, &[d, d], r)?;
        }
        if let Some(g) = &self.hnsw {
            g.write(b, names::HNSW)?;
        }
        if let Some(h) = &self.model_hash {
            b.add(names::MODEL_HASH, &[32], &h[..])?;
        }
        let o = &self.options;
        let int8 = format!(
            "asymmetric,{},{}",
            match o.int8_granularity {
                Granularity::PerDim => "per-dim",
                Granularity::Global => "global",
            },
            match o.int8_calibration {
                Calibration::MinMax => "minmax".to_string(),
                Calibration::Percentile(p) => format!("percentile:{p}"),
            }
        );
        let binary = if o.binary_centre { "sign,centred" } else { "sign" };
        let opt = |v: Option<usize>| v.map_or("-".into(), |m| m.to_string());
        let mut kv = vec![
            ("int8", int8),
            ("binary", binary.to_string()),
            ("pq4_m", opt(o.pq4)),
            ("pq4_opq", (o.pq4.is_some() && o.pq4_opq).to_string()),
            ("pq8_m", opt(o.pq8)),
            ("pq_train_sample", o.pq_train_sample.to_string()),
            ("pq_seed", o.seed.to_string()),
            ("hnsw_m", opt(o.hnsw.as_ref().map(|h| h.m))),
            ("hnsw_ef_construction", opt(o.hnsw.as_ref().map(|h| h.ef_construction))),
        ];
        if self.model_hash.is_some() {
            kv.push(("model_hash", "32 bytes given by the writer".to_string()));
        }
        b.add_key_values(names::BUILD_PARAMS, kv)?;
        Ok(())
    }

    /// Writes the index atomically (temp file, fsync, rename).
    pub fn write(&self, path: impl AsRef<std::path::Path>) -> Result<(), IndexError> {
        let mut b = ContainerBuilder::new();
        self.add_to(&mut b)?;
        b.write_atomic(path)?;
        Ok(())
    }
}

/// How a query is answered; see the module doc.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SearchMode {
    Exact,
    Int8,
    Binary,
    Pq4,
    Pq8,
    Hnsw,
}

impl SearchMode {
    pub fn name(self) -> &'static str {
        match self {
            SearchMode::Exact => "exact",
            SearchMode::Int8 => "int8",
            SearchMode::Binary => "binary",
            SearchMode::Pq4 => "pq4",
            SearchMode::Pq8 => "pq8",
            SearchMode::Hnsw => "hnsw",
        }
    }
}

/// What re-scores a first pass's shortlist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rescore {
    None,
    Int8,
    F32,
}

/// Search settings.
#[derive(Clone, Copy, Debug)]
pub struct SearchParams<'f> {
    pub k: usize,
    pub mode: SearchMode,
    pub rescore: Rescore,
    /// Candidates a first pass keeps for rescoring (raised to `k`).
    pub shortlist: usize,
    /// HNSW candidate list size (raised to `k`).
    pub ef: usize,
    /// Only these documents may be returned (an allow-list over the
    /// index's documents, so its size must be [`Index::len`]).
    pub allow: Option<&'f AllowList>,
}

impl Default for SearchParams<'_> {
    fn default() -> Self {
        SearchParams {
            k: 10,
            mode: SearchMode::Binary,
            rescore: Rescore::Int8,
            shortlist: 100,
            ef: 64,
            allow: None,
        }
    }
}

/// One result: a document number (see [`Index::id`]) and its score.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hit {
    pub doc: u32,
    pub score: f32,
}

/// A product quantizer with its codes: 4-bit codes packed for the
/// fast-scan kernel, 8-bit codes borrowed from the file.
struct Pq4<'a> {
    q: ProductQuantizer,
    packed: fastscan::PackedCodes,
    /// `d x d`, row-major: queries are searched as `q R` (optimized PQ).
    rotation: Option<&'a [f32]>,
}
struct Pq8<'a> {
    q: ProductQuantizer,
    codes: &'a [u8],
}

/// An index viewed in place over a container's bytes.
pub struct Index<'a> {
    n: usize,
    dim: usize,
    id_offsets: &'a [u64],
    id_blob: &'a [u8],
    f32: Option<&'a [f32]>,
    int8: Option<(Int8Quantizer, &'a [i8])>,
    binary: Option<(BinaryQuantizer, &'a [u64])>,
    pq4: Option<Pq4<'a>>,
    pq8: Option<Pq8<'a>>,
    hnsw: Option<GraphView<'a>>,
    model_hash: Option<[u8; 32]>,
}

/// Checks that codebooks `name` have shape `[m, ksub, d / m]` and that
/// `codes_name` is `[n, m]`; returns m.
/// Checks and views `pq.rotation`: f32 `[dim, dim]`, finite, each row of
/// unit length within [`ROTATION_TOL`]. Full orthogonality is not checked
/// at open (it costs `d^3`); a rotation that passes these checks cannot
/// make a search read out of bounds, only rank badly.
fn rotation<'a>(c: &Container<'a>, dim: usize) -> Result<&'a [f32], IndexError> {
    let name = names::PQ_ROTATION;
    let shape = c.info(name)?.shape.to_vec();
    if shape != [dim as u64, dim as u64] {
        let reason = format!("shape {shape:?}, expected [{dim}, {dim}]");
        return Err(IndexError::Invalid { what: name, reason });
    }
    let r = c.section::<f32>(name)?;
    for (i, row) in r.chunks_exact(dim).enumerate() {
        if let Some(j) = row.iter().position(|x| !x.is_finite()) {
            let reason = format!("row {i} column {j} is not finite");
            return Err(IndexError::Invalid { what: name, reason });
        }
        let norm: f64 = row.iter().map(|&x| (x as f64) * (x as f64)).sum();
        if (norm.sqrt() - 1.0).abs() > ROTATION_TOL {
            let reason = format!("row {i} has length {:.6}, not 1", norm.sqrt());
            return Err(IndexError::Invalid { what: name, reason });
        }
    }
    Ok(r)
}

/// Allowed deviation from unit length of a stored rotation's rows: f32
/// rounding of an orthogonal matrix stays orders of magnitude below it.
const ROTATION_TOL: f64 = 1e-3;

fn pq_shape(
    c: &Container<'_>,
    name: &'static str,
    codes_name: &'static str,
    ksub: u64,
    n: usize,
    dim: usize,
) -> Result<usize, IndexError> {
    let shape = c.info(name)?.shape.to_vec();
    let bad = || IndexError::Invalid {
        what: name,
        reason: format!("shape {shape:?} is not [m, {ksub}, {dim} / m]"),
    };
    let [m, k, dsub] = shape[..] else { return Err(bad()) };
    if k != ksub || m == 0 || m.checked_mul(dsub) != Some(dim as u64) {
        return Err(bad());
    }
    let m = m as usize;
    if !c.contains(codes_name) {
        return Err(IndexError::Missing { mode: "pq", needs: codes_name });
    }
    let codes = c.info(codes_name)?.shape.to_vec();
    if codes != [n as u64, m as u64] {
        return Err(IndexError::Invalid {
            what: codes_name,
            reason: format!("shape {codes:?}, expected [{n}, {m}]"),
        });
    }
    Ok(m)
}

impl<'a> Index<'a> {
    /// Validates an index container's structure and views its sections
    /// (see the module doc for what open costs).
    pub fn open(c: &Container<'a>) -> Result<Self, IndexError> {
        let meta = KeyValues::load(c, names::META)?;
        let kind = meta.get("kind").unwrap_or("");
        if kind != KIND {
            return Err(IndexError::NotAnIndex { kind: kind.to_string() });
        }
        let n: usize = meta.parse("n")?;
        let dim: usize = meta.parse("dim")?;
        if dim == 0 {
            return Err(IndexError::Invalid { what: "meta.dim", reason: "is zero".into() });
        }
        if n > u32::MAX as usize {
            return Err(IndexError::Invalid { what: "meta.n", reason: format!("{n} documents") });
        }

        // Ids: the table's ends are checked here, each entry when read.
        let offsets_name = crate::container::strtab::offsets_name(names::DOC_IDS);
        let id_offsets = c.section::<u64>(&offsets_name)?;
        let id_blob = c.section::<u8>(&crate::container::strtab::blob_name(names::DOC_IDS))?;
        if id_offsets.len() != n + 1 {
            let found = id_offsets.len().saturating_sub(1);
            return Err(IndexError::Shape { what: "document ids", expected: n, found });
        }
        if id_offsets[0] != 0 || id_offsets[n] != id_blob.len() as u64 {
            return Err(IndexError::Invalid {
                what: "doc.ids.offsets",
                reason: format!(
                    "offsets run {}..{}, the blob holds {} bytes",
                    id_offsets[0],
                    id_offsets[n],
                    id_blob.len()
                ),
            });
        }

        let matrix_of = |name: &'static str, cols: usize| -> Result<bool, IndexError> {
            if !c.contains(name) {
                return Ok(false);
            }
            let shape: Vec<u64> = c.info(name)?.shape.to_vec();
            if shape != [n as u64, cols as u64] {
                return Err(IndexError::Invalid {
                    what: name,
                    reason: format!("shape {shape:?}, expected [{n}, {cols}]"),
                });
            }
            Ok(true)
        };

        let f32 = if matrix_of(names::VECTORS_F32, dim)? {
            Some(c.section::<f32>(names::VECTORS_F32)?)
        } else {
            None
        };
        let int8 = if matrix_of(names::VECTORS_I8, dim)? {
            let q = Int8Quantizer::load(c, names::QUANT_I8)?;
            check_dim("int8 quantizer", dim, q.dim())?;
            Some((q, c.section::<i8>(names::VECTORS_I8)?))
        } else {
            None
        };
        let binary = if matrix_of(names::VECTORS_BIN, dim.div_ceil(64))? {
            let q = BinaryQuantizer::load(c, names::QUANT_BIN)?;
            check_dim("binary quantizer", dim, q.dim())?;
            Some((q, c.section::<u64>(names::VECTORS_BIN)?))
        } else {
            None
        };
        let pq4 = if c.contains(names::PQ_CODEBOOKS) {
            let m = pq_shape(c, names::PQ_CODEBOOKS, names::PQ_CODES, 16, n, dim)?;
            let cents = c.section::<f32>(names::PQ_CODEBOOKS)?.to_vec();
            let q = ProductQuantizer::from_centroids(dim, m, 4, cents)?;
            let packed = fastscan::PackedCodes::pack(c.section::<u8>(names::PQ_CODES)?, m)?;
            let rotation =
                if c.contains(names::PQ_ROTATION) { Some(rotation(c, dim)?) } else { None };
            Some(Pq4 { q, packed, rotation })
        } else {
            if c.contains(names::PQ_ROTATION) {
                return Err(IndexError::Missing { mode: "pq", needs: names::PQ_CODEBOOKS });
            }
            None
        };
        let pq8 = if c.contains(PQ8_CODEBOOKS) {
            let m = pq_shape(c, PQ8_CODEBOOKS, PQ8_CODES, 256, n, dim)?;
            let cents = c.section::<f32>(PQ8_CODEBOOKS)?.to_vec();
            let q = ProductQuantizer::from_centroids(dim, m, 8, cents)?;
            Some(Pq8 { q, codes: c.section::<u8>(PQ8_CODES)? })
        } else {
            None
        };
        let hnsw = if c.contains(&format!("{}.node_offsets", names::HNSW)) {
            let g = GraphView::load(c, names::HNSW)?;
            if g.len() != n {
                return Err(IndexError::Shape { what: "hnsw nodes", expected: n, found: g.len() });
            }
            Some(g)
        } else {
            None
        };
        let model_hash = if c.contains(names::MODEL_HASH) {
            let h = c.section::<u8>(names::MODEL_HASH)?;
            let h: [u8; 32] = h.try_into().map_err(|_| IndexError::Shape {
                what: names::MODEL_HASH,
                expected: 32,
                found: h.len(),
            })?;
            Some(h)
        } else {
            None
        };
        Ok(Index { n, dim, id_offsets, id_blob, f32, int8, binary, pq4, pq8, hnsw, model_hash })
    }

    /// Number of documents.
    pub fn len(&self) -> usize {
        self.n
    }
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }
    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The external id of document `doc`, or why it cannot be read (out
    /// of range, offsets out of order or past the blob, not UTF-8).
    pub fn id_checked(&self, doc: u32) -> Result<&'a str, IndexError> {
        let i = doc as usize;
        if i >= self.n {
            return Err(IndexError::Invalid {
                what: "document number",
                reason: format!("{doc} is not below {}", self.n),
            });
        }
        let (a, b) = (self.id_offsets[i], self.id_offsets[i + 1]);
        let bad = |reason: String| IndexError::Invalid { what: "doc.ids", reason };
        if a > b || b > self.id_blob.len() as u64 {
            return Err(bad(format!("entry {i} spans {a}..{b} of {} bytes", self.id_blob.len())));
        }
        std::str::from_utf8(&self.id_blob[a as usize..b as usize])
            .map_err(|e| bad(format!("entry {i} is not UTF-8: {e}")))
    }

    /// The external id of document `doc`; `None` when [`Index::id_checked`]
    /// would return an error.
    pub fn id(&self, doc: u32) -> Option<&'a str> {
        self.id_checked(doc).ok()
    }

    /// Checks every document id (one pass over the id table), for callers
    /// that want a corrupt table reported at open rather than at first use.
    pub fn verify_ids(&self) -> Result<(), IndexError> {
        (0..self.n as u32).try_for_each(|d| self.id_checked(d).map(|_| ()))
    }

    /// The stored model digest, if any.
    pub fn model_hash(&self) -> Option<&[u8; 32]> {
        self.model_hash.as_ref()
    }

    /// Refuses a query embedded by another model than the one that built
    /// the index, or any model check when the index stores no digest.
    pub fn check_model(&self, query_model: &[u8; 32]) -> Result<(), IndexError> {
        match &self.model_hash {
            None => Err(IndexError::NoModelHash),
            Some(h) if h == query_model => Ok(()),
            Some(h) => Err(IndexError::ModelMismatch { stored: *h, query: *query_model }),
        }
    }

    /// Which search modes this index can answer.
    pub fn modes(&self) -> Vec<SearchMode> {
        let mut m = Vec::new();
        if self.f32.is_some() {
            m.push(SearchMode::Exact);
        }
        if self.int8.is_some() {
            m.push(SearchMode::Int8);
        }
        if self.binary.is_some() {
            m.push(SearchMode::Binary);
        }
        if self.pq4.is_some() {
            m.push(SearchMode::Pq4);
        }
        if self.pq8.is_some() {
            m.push(SearchMode::Pq8);
        }
        if self.hnsw.is_some() && self.f32.is_some() {
            m.push(SearchMode::Hnsw);
        }
        m
    }

    /// Bytes per document that a mode's first pass and its rescoring read
    /// (codes only; quantizer parameters and tables are per index).
    pub fn bytes_per_vector(&self, mode: SearchMode, rescore: Rescore) -> usize {
        let d = self.dim;
        let first = match mode {
            SearchMode::Exact => 4 * d,
            SearchMode::Int8 => d,
            SearchMode::Binary => 8 * d.div_ceil(64),
            SearchMode::Pq4 => self.pq4.as_ref().map_or(0, |p| p.q.m().div_ceil(2)),
            SearchMode::Pq8 => self.pq8.as_ref().map_or(0, |p| p.q.m()),
            SearchMode::Hnsw => {
                let links = self.hnsw.as_ref().map_or(0, |g| g.params().m0 * 4);
                4 * d + links
            }
        };
        let second = match (mode, rescore) {
            (SearchMode::Exact | SearchMode::Hnsw, _) | (_, Rescore::None) => 0,
            (_, Rescore::Int8) => d,
            (_, Rescore::F32) => 4 * d,
        };
        first + second
    }

    /// The best `params.k` documents for `query` (length [`Index::dim`]).
    /// Allocates its working memory; see [`Index::search_into`].
    pub fn search(&self, query: &[f32], params: &SearchParams) -> Result<Vec<Hit>, IndexError> {
        let mut out = Vec::new();
        self.search_into(query, params, &mut SearchScratch::new(), &mut out)?;
        Ok(out)
    }

    /// [`Index::search`] after [`Index::check_model`].
    pub fn search_for_model(
        &self,
        query_model: &[u8; 32],
        query: &[f32],
        params: &SearchParams,
    ) -> Result<Vec<Hit>, IndexError> {
        self.check_model(query_model)?;
        self.search(query, params)
    }

    /// Searches `queries` (rows of [`Index::dim`]) in parallel, one
    /// scratch per worker.
    pub fn search_batch(
        &self,
        queries: &[f32],
        params: &SearchParams,
    ) -> Result<Vec<Vec<Hit>>, IndexError> {
        if !queries.len().is_multiple_of(self.dim) {
            let expected = queries.len().div_ceil(self.dim) * self.dim;
            return Err(IndexError::Shape { what: "queries", expected, found: queries.len() });
        }
        queries
            .par_chunks_exact(self.dim)
            .map_init(SearchScratch::new, |s, q| {
                let mut out = Vec::new();
                self.search_into(q, params, s, &mut out).map(|_| out)
            })
            .collect()
    }
}

fn check_dim(what: &'static str, expected: usize, found: usize) -> Result<(), IndexError> {
    if expected == found {
        Ok(())
    } else {
        Err(IndexError::Shape { what, expected, found })
    }
}

/// A hit from one of several shards.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ShardHit {
    pub shard: usize,
    pub doc: u32,
    pub score: f32,
}

/// Searches every shard and merges their top-k: larger score first, ties
/// to the earlier shard, then the smaller document number.
pub fn search_shards(
    shards: &[Index<'_>],
    query: &[f32],
    params: &SearchParams,
) -> Result<Vec<ShardHit>, IndexError> {
    let per: Vec<Vec<Hit>> =
        shards.par_iter().map(|s| s.search(query, params)).collect::<Result<_, _>>()?;
    let mut all: Vec<ShardHit> = per
        .into_iter()
        .enumerate()
        .flat_map(|(shard, hits)| {
            hits.into_iter().map(move |h| ShardHit { shard, doc: h.doc, score: h.score })
        })
        .collect();
    all.sort_unstable_by(|a, b| {
        b.score.total_cmp(&a.score).then(a.shard.cmp(&b.shard)).then(a.doc.cmp(&b.doc))
    });
    all.truncate(params.k);
    Ok(all)
}
