//! Conventional section names, so indexes and models written by different
//! parts of edgecl read each other's files. `docs/FORMAT.md` lists them
//! with dtypes and shapes; n is the number of documents, d the vector
//! dimension. A string table `t` is the pair `t.offsets` / `t.blob` (see
//! [`super::strtab`]); a key/value table is a string table of pairs.

/// Key/value table: what the file is (`kind` = `index` or `model`), the
/// writer's version, and free-form provenance.
pub const META: &str = "meta";
/// String table, n entries: the external id of each document.
pub const DOC_IDS: &str = "doc.ids";
/// String table, n entries: per-document metadata (JSON text by
/// convention, empty when absent).
pub const DOC_META: &str = "doc.meta";
/// f32 `[n, d]`: full-precision vectors.
pub const VECTORS_F32: &str = "vectors.f32";
/// i8 `[n, d]`: int8 scalar-quantized vectors; parameters under
/// [`QUANT_I8`].
pub const VECTORS_I8: &str = "vectors.i8";
/// u64 `[n, ceil(d / 64)]`: sign bits, bit j of word w is dimension
/// 64 w + j; parameters under [`QUANT_BIN`].
pub const VECTORS_BIN: &str = "vectors.bin";
/// u8 `[n, m]`: product-quantization codes, m sub-spaces.
pub const PQ_CODES: &str = "pq.codes";
/// f32 `[m, k, d / m]`: product-quantization codebooks.
pub const PQ_CODEBOOKS: &str = "pq.codebooks";
/// f32 `[d, d]`, optional: an orthogonal rotation `R` (optimized PQ);
/// the 4-bit codes quantize `x R` and queries are rotated the same way.
pub const PQ_ROTATION: &str = "pq.rotation";
/// Prefix of the int8 quantizer's sections (`quant.i8.scale`, ...).
pub const QUANT_I8: &str = "quant.i8";
/// Prefix of the binary quantizer's sections (`quant.bin.mean`, ...).
pub const QUANT_BIN: &str = "quant.bin";
/// Prefix of the HNSW graph's sections (`hnsw.node_offsets`, ...).
pub const HNSW: &str = "hnsw";
/// u8 `[32]`: digest of the model that produced the vectors, so an index
/// refuses queries embedded by another model. The algorithm is named by
/// the `model_hash` key of [`BUILD_PARAMS`].
pub const MODEL_HASH: &str = "model.hash";
/// Key/value table: build parameters of the index or model.
pub const BUILD_PARAMS: &str = "build.params";
