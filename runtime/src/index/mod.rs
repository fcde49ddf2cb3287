//! Index files: a corpus's embeddings, quantized, in one container that a
//! device maps and searches in place.
//!
//! [`IndexBuilder`] takes document ids and their f32 embeddings and stores
//! any mix of: the f32 vectors (exact search and rescoring), int8 codes
//! ([`Int8Quantizer`], per-dimension ranges), sign bits ([`BinaryQuantizer`],
//! centred on the corpus mean), 4-bit product-quantization codes, and an
//! HNSW graph over the f32 vectors. [`Index`] opens such a container
//! without copying the vectors, and answers a query in one of these modes:
//!
//! | mode     | first pass                               | rescoring (optional) |
//! |----------|------------------------------------------|----------------------|
//! | `Exact`  | f32 dot scan, fused top-k                | -                    |
//! | `Int8`   | int8 dot scan of the folded query        | f32                  |
//! | `Binary` | Hamming scan of the sign bits            | int8 or f32          |
//! | `Pq4`    | 4-bit fast-scan with u8 tables           | int8 or f32          |
//! | `Hnsw`   | graph search over the f32 vectors        | -                    |
//!
//! Scores are inner products (embeddings are L2-normalised, so cosines),
//! larger is better, ties to the smaller document number: the same query
//! gives the same list on every machine and thread count. A first pass
//! keeps `shortlist` candidates when a rescoring follows, `k` otherwise.
//!
//! Int8 scoring. Stored codes decode as `x_j ~ s_j c_j + b_j`, so
//! `q . x ~ sum_j (q_j s_j) c_j + sum_j q_j b_j`. The query is folded into
//! `w_j = q_j s_j`, quantized symmetrically to `w_j ~ t v_j`, and scored as
//! `t * (v . c) + sum_j q_j b_j` with the int8 dot kernel; the second term
//! is the same for every document and only makes the score comparable
//! across shards.
//!
//! Sharding: [`search_shards`] runs a query on several indexes (built in
//! pieces, perhaps on several machines) and merges their top-k.
//!
//! Left out: a single query still allocates its result lists (the kernels'
//! fused top-k returns a `Vec`); PQ codes are packed into the fast-scan
//! layout at open, which copies n * m / 2 bytes, because the kernel's
//! packed-code type owns its bytes.

use std::fmt;

use rayon::prelude::*;

use crate::container::{
    names, Container, ContainerBuilder, ContainerError, KeyValues, StringTable,
};
use crate::hnsw::{self, GraphView, Hnsw, HnswConfig, HnswError, SearchScratch};
use crate::kernels::pq::{self, fastscan, Metric, PqError, ProductQuantizer};
use crate::kernels::search::{self as ks, SearchError};
use crate::quant::{BinaryQuantizer, Calibration, Granularity, Int8Quantizer, Mode, QuantError};

/// The `kind` an index container declares in its `meta` table.
pub const KIND: &str = "index";

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
    /// int8 codes with per-dimension ranges.
    pub int8: bool,
    /// Sign bits after centring on the corpus mean.
    pub binary: bool,
    /// 4-bit product quantization with this many sub-quantizers (it must
    /// divide the dimension).
    pub pq4: Option<usize>,
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
            binary: true,
            pq4: None,
            hnsw: None,
            seed: 0x1dec_5eed,
            model_hash: None,
        }
    }
}

/// The parts of an index, built in memory and written as one container.
pub struct IndexBuilder {
    ids: Vec<String>,
    dim: usize,
    f32: Option<Vec<f32>>,
    int8: Option<(Int8Quantizer, Vec<i8>)>,
    binary: Option<(BinaryQuantizer, Vec<u64>)>,
    pq: Option<(ProductQuantizer, Vec<u8>)>,
    hnsw: Option<Hnsw>,
    model_hash: Option<[u8; 32]>,
    options: IndexOptions,
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

        let int8 = if options.int8 {
            let q = Int8Quantizer::calibrate(
                vectors,
                dim,
                Mode::Asymmetric,
                Granularity::PerDim,
                Calibration::MinMax,
            )?;
            let mut codes = vec![0i8; n * dim];
            for (x, c) in vectors.chunks_exact(dim).zip(codes.chunks_exact_mut(dim)) {
                q.quantize(x, c)?;
            }
            Some((q, codes))
        } else {
            None
        };

        let binary = if options.binary {
            let q = BinaryQuantizer::calibrate(vectors, dim, true)?;
            let w = q.words();
            let mut codes = vec![0u64; n * w];
            for (x, c) in vectors.chunks_exact(dim).zip(codes.chunks_exact_mut(w)) {
                q.encode(x, c)?;
            }
            Some((q, codes))
        } else {
            None
        };

        let pq = match options.pq4 {
            Some(m) => {
                let cfg = pq::TrainConfig { iters: 20, seed: options.seed };
                let q = ProductQuantizer::train(vectors, dim, m, 4, cfg)?;
                let mut codes = vec![0u8; n * m];
                q.encode(vectors, &mut codes)?;
                Some((q, codes))
            }
            None => None,
        };

        let hnsw = match &options.hnsw {
            Some(cfg) => Some(hnsw::build(&hnsw::F32Dot::new(vectors, dim)?, cfg)?),
            None => None,
        };

        Ok(IndexBuilder {
            ids,
            dim,
            f32: options.f32.then(|| vectors.to_vec()),
            int8,
            binary,
            pq,
            hnsw,
            model_hash: options.model_hash,
            options: options.clone(),
        })
    }

    /// Adds every section to `b`.
    pub fn add_to<'a>(&'a self, b: &mut ContainerBuilder<'a>) -> Result<(), IndexError> {
        let (n, d) = (self.ids.len() as u64, self.dim as u64);
        let modes: Vec<&str> = [
            (self.f32.is_some(), "f32"),
            (self.int8.is_some(), "int8"),
            (self.binary.is_some(), "binary"),
            (self.pq.is_some(), "pq4"),
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
        if let Some((q, codes)) = &self.pq {
            let (m, ksub, dsub) = (q.m() as u64, q.ksub() as u64, q.dsub() as u64);
            b.add(names::PQ_CODES, &[n, m], codes)?;
            b.add(names::PQ_CODEBOOKS, &[m, ksub, dsub], q.centroids())?;
        }
        if let Some(g) = &self.hnsw {
            g.write(b, names::HNSW)?;
        }
        if let Some(h) = &self.model_hash {
            b.add(names::MODEL_HASH, &[32], &h[..])?;
        }
        let o = &self.options;
        b.add_key_values(
            names::BUILD_PARAMS,
            [
                ("int8", "asymmetric,per-dim,minmax".to_string()),
                ("binary", "sign,centred".to_string()),
                ("pq4_m", o.pq4.map_or("-".into(), |m| m.to_string())),
                ("pq_seed", o.seed.to_string()),
                ("hnsw_m", o.hnsw.as_ref().map_or("-".into(), |h| h.m.to_string())),
                (
                    "hnsw_ef_construction",
                    o.hnsw.as_ref().map_or("-".into(), |h| h.ef_construction.to_string()),
                ),
            ],
        )?;
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
    Hnsw,
}

impl SearchMode {
    pub fn name(self) -> &'static str {
        match self {
            SearchMode::Exact => "exact",
            SearchMode::Int8 => "int8",
            SearchMode::Binary => "binary",
            SearchMode::Pq4 => "pq4",
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
pub struct SearchParams {
    pub k: usize,
    pub mode: SearchMode,
    pub rescore: Rescore,
    /// Candidates a first pass keeps for rescoring (raised to `k`).
    pub shortlist: usize,
    /// HNSW candidate list size (raised to `k`).
    pub ef: usize,
}

impl Default for SearchParams {
    fn default() -> Self {
        SearchParams {
            k: 10,
            mode: SearchMode::Binary,
            rescore: Rescore::Int8,
            shortlist: 100,
            ef: 64,
        }
    }
}

/// One result: a document number (see [`Index::id`]) and its score.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hit {
    pub doc: u32,
    pub score: f32,
}

/// Orders hits by score, larger first, then by the smaller document.
fn sort_hits(hits: &mut [Hit]) {
    hits.sort_unstable_by(|a, b| b.score.total_cmp(&a.score).then(a.doc.cmp(&b.doc)));
}

/// An index viewed in place over a container's bytes.
pub struct Index<'a> {
    n: usize,
    dim: usize,
    ids: StringTable<'a>,
    f32: Option<&'a [f32]>,
    int8: Option<(Int8Quantizer, &'a [i8])>,
    binary: Option<(BinaryQuantizer, &'a [u64])>,
    pq: Option<(ProductQuantizer, fastscan::PackedCodes)>,
    hnsw: Option<GraphView<'a>>,
    model_hash: Option<&'a [u8]>,
}

impl<'a> Index<'a> {
    /// Validates an index container and views its sections.
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
        let ids = StringTable::load(c, names::DOC_IDS)?;
        if ids.len() != n {
            return Err(IndexError::Shape { what: "document ids", expected: n, found: ids.len() });
        }
        let matrix_of = |name: &'static str, cols: usize| -> Result<bool, IndexError> {
            if !c.contains(name) {
                return Ok(false);
            }
            let info = c.info(name)?;
            let shape: Vec<u64> = info.shape.to_vec();
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
        let words = dim.div_ceil(64);
        let binary = if matrix_of(names::VECTORS_BIN, words)? {
            let q = BinaryQuantizer::load(c, names::QUANT_BIN)?;
            check_dim("binary quantizer", dim, q.dim())?;
            Some((q, c.section::<u64>(names::VECTORS_BIN)?))
        } else {
            None
        };
        let pq = if c.contains(names::PQ_CODEBOOKS) {
            let info = c.info(names::PQ_CODEBOOKS)?;
            let shape = info.shape.to_vec();
            let [m, ksub, dsub] = shape[..] else {
                return Err(IndexError::Invalid {
                    what: names::PQ_CODEBOOKS,
                    reason: format!("shape {shape:?} is not [m, 16, d / m]"),
                });
            };
            if ksub != 16 || m.checked_mul(dsub) != Some(dim as u64) {
                return Err(IndexError::Invalid {
                    what: names::PQ_CODEBOOKS,
                    reason: format!("shape {shape:?} is not [m, 16, {dim} / m]"),
                });
            }
            let m = m as usize;
            if !matrix_of(names::PQ_CODES, m)? {
                return Err(IndexError::Missing { mode: "pq4", needs: names::PQ_CODES });
            }
            let cents = c.section::<f32>(names::PQ_CODEBOOKS)?.to_vec();
            let q = ProductQuantizer::from_centroids(dim, m, 4, cents)?;
            let packed = fastscan::PackedCodes::pack(c.section::<u8>(names::PQ_CODES)?, m)?;
            Some((q, packed))
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
            Some(c.section::<u8>(names::MODEL_HASH)?)
        } else {
            None
        };
        Ok(Index { n, dim, ids, f32, int8, binary, pq, hnsw, model_hash })
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
    /// The external id of document `doc`.
    pub fn id(&self, doc: u32) -> Option<&'a str> {
        self.ids.get(doc as usize)
    }
    /// The stored model digest, if any.
    pub fn model_hash(&self) -> Option<&'a [u8]> {
        self.model_hash
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
        if self.pq.is_some() {
            m.push(SearchMode::Pq4);
        }
        if self.hnsw.is_some() && self.f32.is_some() {
            m.push(SearchMode::Hnsw);
        }
        m
    }

    fn need_f32(&self, mode: &'static str) -> Result<&'a [f32], IndexError> {
        self.f32.ok_or(IndexError::Missing { mode, needs: "f32 vectors" })
    }
    fn need_int8(&self, mode: &'static str) -> Result<&(Int8Quantizer, &'a [i8]), IndexError> {
        self.int8.as_ref().ok_or(IndexError::Missing { mode, needs: "int8 codes" })
    }

    /// The best `params.k` documents for `query` (length [`Index::dim`]).
    pub fn search(&self, query: &[f32], params: &SearchParams) -> Result<Vec<Hit>, IndexError> {
        check_dim("query", self.dim, query.len())?;
        if let Some(i) = query.iter().position(|v| !v.is_finite()) {
            return Err(IndexError::Invalid {
                what: "query",
                reason: format!("dimension {i} is not finite"),
            });
        }
        let k = params.k.min(self.n);
        if k == 0 {
            return Ok(Vec::new());
        }
        let rescoring = params.rescore != Rescore::None
            && matches!(params.mode, SearchMode::Int8 | SearchMode::Binary | SearchMode::Pq4);
        let first = if rescoring { params.shortlist.max(k).min(self.n) } else { k };
        let mode = params.mode.name();

        let mut hits: Vec<Hit> = match params.mode {
            SearchMode::Exact => {
                let v = self.need_f32(mode)?;
                to_hits(ks::dot_f32_topk(query, v, first)?, |s| s)
            }
            SearchMode::Int8 => {
                let (q, codes) = self.need_int8(mode)?;
                let (v, t, offset) = fold_query(q, query);
                let raw = ks::dot_i8_topk(&v, codes, first)?;
                to_hits(raw, |s| t * s as f32 + offset)
            }
            SearchMode::Binary => {
                let (q, codes) =
                    self.binary.as_ref().ok_or(IndexError::Missing { mode, needs: "sign bits" })?;
                let code = q.encode_vec(query)?;
                let d = self.dim as f32;
                // Sign agreement: d - 2 * hamming, a cosine estimate times d.
                to_hits(ks::hamming_topk(&code, codes, first)?, |h| d - 2.0 * h as f32)
            }
            SearchMode::Pq4 => {
                let (q, packed) =
                    self.pq.as_ref().ok_or(IndexError::Missing { mode, needs: "pq codes" })?;
                let mut table = vec![0f32; q.m() * q.ksub()];
                q.distance_table(query, Metric::InnerProduct, &mut table)?;
                // The kernel re-ranks its quantized shortlist with the float
                // table; keep a few times more than asked before that.
                let rerank = (first * 4).min(self.n);
                let raw = fastscan::search(&table, Metric::InnerProduct, packed, first, rerank)?;
                raw.into_iter().map(|h| Hit { doc: h.id, score: h.score }).collect()
            }
            SearchMode::Hnsw => {
                let v = self.need_f32(mode)?;
                let g = self.hnsw.as_ref().ok_or(IndexError::Missing { mode, needs: "a graph" })?;
                let space = hnsw::F32Dot::new(v, self.dim)?;
                let mut scratch = SearchScratch::new();
                let found = g.search(&space, query, k, params.ef.max(k), &mut scratch)?;
                // The space's distance is the negated inner product.
                found.iter().map(|nb| Hit { doc: nb.id, score: -nb.distance }).collect()
            }
        };

        if rescoring {
            let ids: Vec<u32> = hits.iter().map(|h| h.doc).collect();
            match params.rescore {
                Rescore::F32 => {
                    let v = self.need_f32("f32 rescoring")?;
                    let mut s = vec![0f32; ids.len()];
                    ks::dot_f32_gather(query, v, &ids, &mut s)?;
                    for (h, s) in hits.iter_mut().zip(s) {
                        h.score = s;
                    }
                }
                Rescore::Int8 => {
                    let (q, codes) = self.need_int8("int8 rescoring")?;
                    let (v, t, offset) = fold_query(q, query);
                    let mut s = vec![0i32; ids.len()];
                    ks::dot_i8_gather(&v, codes, &ids, &mut s)?;
                    for (h, s) in hits.iter_mut().zip(s) {
                        h.score = t * s as f32 + offset;
                    }
                }
                Rescore::None => {}
            }
        }
        sort_hits(&mut hits);
        hits.truncate(k);
        Ok(hits)
    }

    /// Searches `queries` (rows of [`Index::dim`]) in parallel.
    pub fn search_batch(
        &self,
        queries: &[f32],
        params: &SearchParams,
    ) -> Result<Vec<Vec<Hit>>, IndexError> {
        if !queries.len().is_multiple_of(self.dim) {
            let expected = queries.len().div_ceil(self.dim) * self.dim;
            return Err(IndexError::Shape { what: "queries", expected, found: queries.len() });
        }
        queries.par_chunks_exact(self.dim).map(|q| self.search(q, params)).collect()
    }
}

fn check_dim(what: &'static str, expected: usize, found: usize) -> Result<(), IndexError> {
    if expected == found {
        Ok(())
    } else {
        Err(IndexError::Shape { what, expected, found })
    }
}

fn to_hits<S: Copy>(raw: Vec<ks::Hit<S>>, score: impl Fn(S) -> f32) -> Vec<Hit> {
    raw.into_iter().map(|h| Hit { doc: h.id, score: score(h.score) }).collect()
}

/// Folds the int8 quantizer's scales into the query and quantizes it
/// symmetrically: returns `(v, t, offset)` with
/// `q . x ~ t * (v . c) + offset` for a stored code `c` (module doc).
fn fold_query(q: &Int8Quantizer, query: &[f32]) -> (Vec<i8>, f32, f32) {
    let (scale, bias) = (q.scale(), q.bias());
    let at = |s: &[f32], j: usize| if s.len() == 1 { s[0] } else { s[j] };
    let w: Vec<f32> = query.iter().enumerate().map(|(j, &x)| x * at(scale, j)).collect();
    let offset: f32 = query.iter().enumerate().map(|(j, &x)| x * at(bias, j)).sum();
    let amax = w.iter().fold(0f32, |m, &x| m.max(x.abs()));
    let t = if amax > 0.0 { amax / 127.0 } else { 1.0 };
    let v = w.iter().map(|&x| (x / t).round().clamp(-127.0, 127.0) as i8).collect();
    (v, t, offset)
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
