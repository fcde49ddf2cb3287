//! The model file (a container, `docs/FORMAT.md` "Model file") and the
//! readers of Hugging Face / sentence-transformers folders.
//!
//! A model file holds the config as JSON text, the vocabulary as a string
//! table, the tokenizer's case settings, and every weight as its own
//! section under `weights.` + its parameter name. A quantized linear layer
//! stores its i8 codes `[out, in]` and per-channel scales `[out]` in place
//! of the f32 weight. [`InferenceModel::open`] maps the file and builds
//! f32 tensors straight over the mapping: embedding tables, norms, biases,
//! f32 weights and int8 scales are used in place, never copied.
//!
//! What is copied at open: the int8 codes, once, into the GEMM's packed
//! panel layout (`PackedB`), because the kernel owns that buffer and offers
//! no view over borrowed bytes; storing the packed layout in the file would
//! tie the format to one kernel's panel width. For MiniLM that is 10 MiB
//! (the int8 file is 56 MiB, most of it the f32 word embedding table). The
//! vocabulary is also rebuilt into the tokenizer's hash maps.

use std::borrow::Cow;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use memmap2::Mmap;
use safetensors::tensor::Dtype as StDtype;
use safetensors::SafeTensors;
use serde_json::Value;

use crate::container::{
    Container, ContainerBuilder, ContainerError, Dtype, KeyValues, SectionInfo, StringTable,
};
use crate::encoder::{EncoderConfig, Pooling};
use crate::error::Error;
use crate::tensor::{DType, Tensor};
use crate::tokenizer::{BasicTokenizer, Tokenizer, Vocab};

use super::linear::Linear;
use super::{assemble, InferError, InferenceModel, Precision, Result};

/// `format` value of a model file's `meta` table.
pub const MODEL_FORMAT: &str = "edgecl-encoder";
/// `format_version` this code writes and reads.
const FORMAT_VERSION: u32 = 1;

/// Section names of a model file.
pub mod section_names {
    /// Key/value table: `kind` = `model`, `format`, `format_version`,
    /// `precision`, `lowercase`, `strip_accents`, `writer`.
    pub const META: &str = "meta";
    /// u8 `[len]`: the encoder config as JSON text (`EncoderConfig::to_json`).
    pub const CONFIG: &str = "model.config";
    /// String table of the vocabulary, in id order.
    pub const VOCAB: &str = "model.vocab";
    /// Prefix of every weight section: `weights.` + parameter name.
    pub const WEIGHTS: &str = "weights.";
    /// Suffix (after a linear layer's `.weight` name) of its i8 codes.
    pub const CODES: &str = ".i8";
    /// Suffix (after a linear layer's `.weight` name) of its f32 scales.
    pub const SCALES: &str = ".scale";
}

use section_names as names;

impl InferenceModel {
    /// Writes the model (config, vocabulary, tokenizer settings, weights)
    /// as a container file, atomically (temp file, fsync, rename).
    pub fn write(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let cerr = |source| InferError::Container { path: path.to_path_buf(), source };
        let basic = self.tokenizer.basic();
        let mut b = ContainerBuilder::new();
        b.add_key_values(
            names::META,
            [
                ("kind", "model".to_string()),
                ("format", MODEL_FORMAT.to_string()),
                ("format_version", FORMAT_VERSION.to_string()),
                ("precision", self.precision.name().to_string()),
                ("lowercase", basic.lowercase.to_string()),
                ("strip_accents", basic.strip_accents.to_string()),
                ("writer", format!("edgecl-runtime {}", env!("CARGO_PKG_VERSION"))),
            ],
        )
        .map_err(cerr)?;
        let config = self.config.to_json().to_string().into_bytes();
        b.add_raw(names::CONFIG, Dtype::U8, &[config.len() as u64], Cow::Owned(config))
            .map_err(cerr)?;
        b.add_strings(names::VOCAB, self.tokenizer.vocab().tokens()).map_err(cerr)?;

        for (name, t) in self.named_tensors() {
            let shape: Vec<u64> = t.dims().iter().map(|&d| d as u64).collect();
            let section = format!("{}{name}", names::WEIGHTS);
            match t.dtype() {
                DType::F32 => b.add(&section, &shape, t.as_f32()?),
                DType::I8 => b.add(&section, &shape, t.as_i8()?),
                DType::U8 => b.add(&section, &shape, t.as_u8()?),
            }
            .map_err(cerr)?;
        }
        b.write_atomic(path).map_err(cerr)
    }

    /// Every stored tensor with its section name after `weights.`.
    fn named_tensors(&self) -> Vec<(String, &Tensor)> {
        let w = &self.weights;
        let mut out: Vec<(String, &Tensor)> = vec![
            ("embeddings.word_embeddings.weight".into(), &w.word),
            ("embeddings.position_embeddings.weight".into(), &w.position),
            ("embeddings.token_type_embeddings.weight".into(), &w.token_type),
            ("embeddings.LayerNorm.weight".into(), &w.emb_norm.gamma),
            ("embeddings.LayerNorm.bias".into(), &w.emb_norm.beta),
        ];
        fn linear<'w>(prefix: String, l: &'w Linear, out: &mut Vec<(String, &'w Tensor)>) {
            for (role, t) in l.parts() {
                out.push((format!("{prefix}.{role}"), t));
            }
        }
        for (i, l) in w.layers.iter().enumerate() {
            let p = format!("encoder.layer.{i}");
            linear(format!("{p}.attention.self.query"), &l.query, &mut out);
            linear(format!("{p}.attention.self.key"), &l.key, &mut out);
            linear(format!("{p}.attention.self.value"), &l.value, &mut out);
            linear(format!("{p}.attention.output.dense"), &l.attn_out, &mut out);
            linear(format!("{p}.intermediate.dense"), &l.up, &mut out);
            linear(format!("{p}.output.dense"), &l.down, &mut out);
            for (n, norm) in
                [("attention.output.LayerNorm", &l.attn_norm), ("output.LayerNorm", &l.ffn_norm)]
            {
                out.push((format!("{p}.{n}.weight"), &norm.gamma));
                out.push((format!("{p}.{n}.bias"), &norm.beta));
            }
        }
        if let Some(n) = &w.final_norm {
            out.push(("encoder.final_norm.weight".into(), &n.gamma));
            out.push(("encoder.final_norm.bias".into(), &n.beta));
        }
        if let Some(p) = &w.projection {
            linear("projection".into(), p, &mut out);
        }
        out
    }

    /// Maps a model file written by [`InferenceModel::write`], checks its
    /// structure and every payload checksum, and builds the model over the
    /// mapping (see the module doc for what is copied).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        if cfg!(target_endian = "big") {
            return Err(InferError::Invalid {
                what: format!(
                    "{}: model files are little-endian; this host is not",
                    path.display()
                ),
            });
        }
        let file = File::open(path).map_err(|source| Error::Io { path: path.into(), source })?;
        // SAFETY: the map is read-only and only shared slices of it are
        // handed out (through tensors that hold the `Arc`). Its one hazard
        // is another process truncating or rewriting the file while it is
        // mapped; the format's writers replace files by rename and never
        // write in place, the contract `container::open` documents as well.
        let map = unsafe { Mmap::map(&file) }
            .map_err(|source| Error::Io { path: path.into(), source })?;
        let map = Arc::new(map);
        let c = Container::parse_verified(&map).map_err(|e| section_error(path, "", e))?;
        let r = FileReader { path, c: &c, map: &map };

        // Meta, config, vocabulary.
        let meta =
            KeyValues::load(&c, names::META).map_err(|e| section_error(path, names::META, e))?;
        let bad_meta = |reason: String| InferError::BadSection {
            path: path.into(),
            section: names::META.into(),
            reason,
        };
        let kv = |key: &str| -> Result<&str> {
            meta.get(key).ok_or_else(|| bad_meta(format!("missing key {key:?}")))
        };
        if kv("kind")? != "model" || kv("format")? != MODEL_FORMAT {
            return Err(bad_meta(format!(
                "kind {:?} and format {:?} are not model and {MODEL_FORMAT}",
                kv("kind")?,
                kv("format")?
            )));
        }
        if kv("format_version")? != FORMAT_VERSION.to_string() {
            return Err(bad_meta(format!(
                "format_version {} is not {FORMAT_VERSION}",
                kv("format_version")?
            )));
        }
        let precision: Precision =
            kv("precision")?.parse().map_err(|e| bad_meta(format!("{e}")))?;
        let flag = |key: &str| -> Result<bool> {
            kv(key)?.parse().map_err(|_| bad_meta(format!("{key} is not true or false")))
        };
        let basic =
            BasicTokenizer { lowercase: flag("lowercase")?, strip_accents: flag("strip_accents")? };
        let config = r.config()?;
        let table = StringTable::load(&c, names::VOCAB)
            .map_err(|e| section_error(path, names::VOCAB, e))?;
        let vocab =
            Vocab::from_tokens(table.iter(), &format!("{}: {}", path.display(), names::VOCAB))?;
        let tokenizer = Tokenizer::new(vocab).with_basic(basic);

        // Weights over the mapping.
        let get = |name: &str, dims: &[usize]| r.tensor(name, DType::F32, dims);
        let linear = |name: &str, out: usize, inp: usize| -> Result<Linear> {
            let w = format!("{name}.weight");
            let bias = r.tensor(&format!("{name}.bias"), DType::F32, &[out])?;
            match precision {
                Precision::F32 => Linear::f32(r.tensor(&w, DType::F32, &[out, inp])?, bias),
                Precision::Int8 => Linear::int8(
                    &w,
                    r.tensor(&format!("{w}{}", names::CODES), DType::I8, &[out, inp])?,
                    r.tensor(&format!("{w}{}", names::SCALES), DType::F32, &[out])?,
                    bias,
                ),
            }
        };
        let weights = assemble(&config, &get, &linear)?;
        InferenceModel::from_parts(config, precision, tokenizer, weights)
    }
}

/// A container error as an [`InferError`] naming the file (and the section
/// when the error is that it is missing).
fn section_error(path: &Path, section: &str, e: ContainerError) -> InferError {
    match e {
        ContainerError::NotFound { section } => {
            InferError::MissingSection { path: path.into(), section }
        }
        source if section.is_empty() => InferError::Container { path: path.into(), source },
        other => InferError::BadSection {
            path: path.into(),
            section: section.into(),
            reason: other.to_string(),
        },
    }
}

/// Typed lookups into an opened model file.
struct FileReader<'a> {
    path: &'a Path,
    c: &'a Container<'a>,
    map: &'a Arc<Mmap>,
}

impl FileReader<'_> {
    fn info(&self, section: &str) -> Result<SectionInfo<'_>> {
        self.c.info(section).map_err(|e| section_error(self.path, section, e))
    }

    fn bad(&self, section: &str, reason: String) -> InferError {
        InferError::BadSection { path: self.path.into(), section: section.into(), reason }
    }

    /// The config from its JSON section.
    fn config(&self) -> Result<EncoderConfig> {
        let bytes = self
            .c
            .section_bytes(names::CONFIG)
            .map_err(|e| section_error(self.path, names::CONFIG, e))?;
        let v: Value = serde_json::from_slice(bytes)
            .map_err(|e| self.bad(names::CONFIG, format!("not JSON: {e}")))?;
        EncoderConfig::from_json(&v, &format!("{}: {}", self.path.display(), names::CONFIG))
            .map_err(InferError::from)
    }

    /// Weight `name` as a tensor over the mapping, checked for dtype and
    /// shape.
    fn tensor(&self, name: &str, dtype: DType, dims: &[usize]) -> Result<Tensor> {
        let section = format!("{}{name}", names::WEIGHTS);
        let info = self.info(&section)?;
        let want = match dtype {
            DType::F32 => Dtype::F32,
            DType::I8 => Dtype::I8,
            DType::U8 => Dtype::U8,
        };
        if info.dtype != want {
            return Err(self.bad(
                &section,
                format!("dtype {} where {} is needed", info.dtype.name(), want.name()),
            ));
        }
        if info.shape.len() != dims.len()
            || info.shape.iter().zip(dims).any(|(&a, &b)| a != b as u64)
        {
            return Err(self
                .bad(&section, format!("shape {:?} where the config needs {dims:?}", info.shape)));
        }
        let offset = usize::try_from(info.offset)
            .map_err(|_| self.bad(&section, "offset beyond the address space".into()))?;
        Tensor::from_mapped(Arc::clone(self.map), offset, dims, dtype)
            .map_err(|e| self.bad(&section, e.to_string()))
    }
}

/// Reads a JSON file that may be absent.
fn optional_json(path: &Path) -> Result<Option<Value>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| InferError::Invalid {
            what: format!("{}: not JSON: {e}", path.display()),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Io { path: path.into(), source }.into()),
    }
}

/// Applies a sentence-transformers folder's settings to a config read from
/// its `config.json`: max length, pooling and normalisation.
pub(super) fn apply_sentence_transformers(dir: &Path, config: &mut EncoderConfig) -> Result<()> {
    let bad = |file: &str, what: String| InferError::Invalid {
        what: format!("{}: {what}", dir.join(file).display()),
    };
    if let Some(v) = optional_json(&dir.join("sentence_bert_config.json"))? {
        if let Some(len) = v.get("max_seq_length") {
            let len = len.as_u64().ok_or_else(|| {
                bad("sentence_bert_config.json", "max_seq_length is not an integer".into())
            })?;
            config.max_seq_len = (len as usize).min(config.max_position_embeddings);
        }
    }
    if let Some(v) = optional_json(&dir.join("1_Pooling").join("config.json"))? {
        let on = |key: &str| v.get(key).and_then(Value::as_bool).unwrap_or(false);
        config.pooling = match (on("pooling_mode_mean_tokens"), on("pooling_mode_cls_token")) {
            (true, false) => Pooling::Mean,
            (false, true) => Pooling::Cls,
            _ => {
                return Err(bad(
                    "1_Pooling/config.json",
                    "only mean pooling or CLS pooling, alone, is supported".into(),
                ))
            }
        };
        if on("pooling_mode_max_tokens") || on("pooling_mode_mean_sqrt_len_tokens") {
            return Err(bad(
                "1_Pooling/config.json",
                "max and sqrt-length pooling are unsupported".into(),
            ));
        }
    }
    if let Some(v) = optional_json(&dir.join("modules.json"))? {
        let types: Vec<&str> = v
            .as_array()
            .map(|a| a.iter().filter_map(|m| m.get("type").and_then(Value::as_str)).collect())
            .unwrap_or_default();
        if let Some(t) = types.iter().find(|t| {
            !(t.ends_with(".Transformer") || t.ends_with(".Pooling") || t.ends_with(".Normalize"))
        }) {
            return Err(bad("modules.json", format!("module {t} is unsupported")));
        }
        config.normalize = types.iter().any(|t| t.ends_with(".Normalize"));
    }
    config.validate()?;
    Ok(())
}

/// The WordPiece tokenizer of a Hugging Face folder: `vocab.txt` with the
/// case settings of `tokenizer_config.json` (lower-casing on by default;
/// accents stripped when `strip_accents` is true, or null and lower-casing
/// is on, as BERT's tokenizer does).
pub(super) fn hf_tokenizer(dir: &Path) -> Result<Tokenizer> {
    let mut basic = BasicTokenizer::default();
    if let Some(v) = optional_json(&dir.join("tokenizer_config.json"))? {
        basic.lowercase = v.get("do_lower_case").and_then(Value::as_bool).unwrap_or(true);
        basic.strip_accents =
            v.get("strip_accents").and_then(Value::as_bool).unwrap_or(basic.lowercase);
    }
    Ok(Tokenizer::from_vocab_file(dir.join("vocab.txt"))?.with_basic(basic))
}

/// The f32 tensors of a safetensors file, read into memory; tensors of
/// other dtypes (such as the i64 `position_ids` buffer of Hugging Face
/// checkpoints) are skipped.
pub(super) fn read_safetensors_f32(path: &Path) -> Result<Vec<(String, Tensor)>> {
    let st_err = |reason: String| Error::SafeTensors { path: path.into(), reason };
    if cfg!(target_endian = "big") {
        return Err(st_err("big-endian hosts are not supported".into()).into());
    }
    let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.into(), source })?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| st_err(e.to_string()))?;
    let mut out = Vec::new();
    for (name, view) in st.tensors() {
        if view.dtype() != StDtype::F32 {
            continue;
        }
        let data: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        out.push((name, Tensor::from_vec(view.shape(), data)?));
    }
    Ok(out)
}
