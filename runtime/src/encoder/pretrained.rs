//! Reading Hugging Face BERT checkpoints and writing our own in the same
//! layout.
//!
//! A folder holds `config.json`, `model.safetensors` and `vocab.txt`. Two
//! kinds are read:
//!
//! - a Hugging Face `BertModel` (or a model with a `bert.` prefix, such as
//!   `BertForSequenceClassification`), optionally wrapped by
//!   sentence-transformers: `modules.json` then says where the transformer
//!   and pooling modules live and whether a normalisation module follows;
//!   `sentence_bert_config.json` gives the token limit and
//!   `1_Pooling/config.json` the pooling mode;
//! - a folder written by [`save_pretrained`], whose `config.json` carries
//!   the `edgecl_*` fields and is taken as it is.
//!
//! Only the tensors the config names are read; the pooler, heads and
//! buffers such as `embeddings.position_ids` (i64) are skipped. f32, f16 and
//! bf16 tensors are accepted and widened to f32. Every missing or
//! mis-shaped tensor is an error naming it and the file.
//!
//! Left out: PyTorch pickles (`pytorch_model.bin`), sharded checkpoints,
//! and sentence-transformers `Dense` modules (refused by name).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};
use serde_json::Value;

use crate::encoder::config::{EncoderConfig, NormPlacement, Pooling};
use crate::error::{Error, Result};
use crate::params::ParamSet;
use crate::tensor::Tensor;
use crate::tokenizer::{BasicTokenizer, Tokenizer, Vocab};
use crate::weights;

/// A model folder read into memory: config, weights and tokenizer.
pub struct Pretrained {
    pub config: EncoderConfig,
    pub params: ParamSet,
    pub tokenizer: Tokenizer,
    pub vocab_path: PathBuf,
}

pub(crate) fn st_err(path: &Path, reason: impl ToString) -> Error {
    Error::SafeTensors { path: path.to_path_buf(), reason: reason.to_string() }
}

fn cfg_err(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::InvalidArgument { op: "encoder config", what: format!("{}: {what}", path.display()) }
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    serde_json::from_str(&text).map_err(|e| cfg_err(path, format!("not JSON: {e}")))
}

/// What a sentence-transformers `modules.json` says about the pipeline.
struct Modules {
    /// Folder of the transformer (config.json, weights, vocab).
    transformer: PathBuf,
    pooling: Option<PathBuf>,
    normalize: bool,
}

/// Reads `modules.json` when present; `None` for a plain model folder.
fn read_modules(dir: &Path) -> Result<Option<Modules>> {
    let path = dir.join("modules.json");
    if !path.exists() {
        return Ok(None);
    }
    let v = read_json(&path)?;
    let list = v.as_array().ok_or_else(|| cfg_err(&path, "not a JSON array"))?;
    let mut m = Modules { transformer: dir.to_path_buf(), pooling: None, normalize: false };
    for (i, entry) in list.iter().enumerate() {
        let kind = entry.get("type").and_then(Value::as_str).unwrap_or("");
        let sub = entry.get("path").and_then(Value::as_str).unwrap_or("");
        let short = kind.rsplit('.').next().unwrap_or(kind);
        match short {
            "Transformer" => m.transformer = dir.join(sub),
            "Pooling" => m.pooling = Some(dir.join(sub)),
            "Normalize" => m.normalize = true,
            _ => {
                return Err(cfg_err(
                    &path,
                    format!(
                        "module {i} of type {kind:?} is unsupported \
                         (only Transformer, Pooling and Normalize are)"
                    ),
                ))
            }
        }
    }
    Ok(Some(m))
}

/// Applies sentence-transformers' pooling config to `cfg`.
fn apply_pooling(path: &Path, cfg: &mut EncoderConfig) -> Result<()> {
    let v = read_json(path)?;
    let flag = |k: &str| v.get(k).and_then(Value::as_bool).unwrap_or(false);
    if let Some(d) = v.get("word_embedding_dimension").and_then(Value::as_u64) {
        if d as usize != cfg.hidden_size {
            return Err(cfg_err(
                path,
                format!(
                    "word_embedding_dimension {d} differs from hidden_size {}",
                    cfg.hidden_size
                ),
            ));
        }
    }
    for unsupported in ["pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens"] {
        if flag(unsupported) {
            return Err(cfg_err(path, format!("{unsupported} is unsupported")));
        }
    }
    cfg.pooling =
        match (flag("pooling_mode_mean_tokens"), flag("pooling_mode_cls_token")) {
            (true, false) => Pooling::Mean,
            (false, true) => Pooling::Cls,
            _ => return Err(cfg_err(
                path,
                "exactly one of pooling_mode_mean_tokens and pooling_mode_cls_token must be true",
            )),
        };
    Ok(())
}

/// Applies `sentence_bert_config.json`'s `max_seq_length`, capped by the
/// position table.
fn apply_max_len(path: &Path, cfg: &mut EncoderConfig) -> Result<()> {
    let v = read_json(path)?;
    if let Some(x) = v.get("max_seq_length") {
        let n = x.as_u64().filter(|&n| n > 0).ok_or_else(|| {
            cfg_err(path, format!("max_seq_length {x} is not a positive integer"))
        })?;
        cfg.max_seq_len = (n as usize).min(cfg.max_position_embeddings);
    }
    Ok(())
}

/// The tokenizer for a folder: `vocab.txt`, cased when
/// `tokenizer_config.json` says `do_lower_case: false`.
pub(crate) fn read_tokenizer(dir: &Path, cfg: &EncoderConfig) -> Result<(Tokenizer, PathBuf)> {
    let vocab_path = dir.join("vocab.txt");
    let vocab = Vocab::from_file(&vocab_path)
        .map_err(|e| Error::InvalidArgument { op: "encoder vocabulary", what: e.to_string() })?;
    if vocab.len() > cfg.vocab_size {
        return Err(cfg_err(
            &vocab_path,
            format!("{} tokens but the model's vocab_size is {}", vocab.len(), cfg.vocab_size),
        ));
    }
    let mut tok = Tokenizer::new(vocab);
    let tc = dir.join("tokenizer_config.json");
    if tc.exists() {
        let v = read_json(&tc)?;
        let lower = v.get("do_lower_case").and_then(Value::as_bool).unwrap_or(true);
        // Hugging Face strips accents with lower-casing unless told otherwise.
        let strip = v.get("strip_accents").and_then(Value::as_bool).unwrap_or(lower);
        tok = tok.with_basic(BasicTokenizer { lowercase: lower, strip_accents: strip });
    }
    Ok((tok, vocab_path))
}

/// Little-endian tensor bytes of dtype `dt` widened to f32.
fn to_f32(path: &Path, name: &str, dt: Dtype, bytes: &[u8]) -> Result<Vec<f32>> {
    Ok(match dt {
        Dtype::F32 => {
            bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
        }
        Dtype::BF16 => bytes
            .chunks_exact(2)
            .map(|b| f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16))
            .collect(),
        Dtype::F16 => {
            bytes.chunks_exact(2).map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]]))).collect()
        }
        other => {
            return Err(st_err(path, format!("tensor {name:?} has dtype {other:?}, not a float")))
        }
    })
}

/// IEEE half to single: rebias the exponent; a subnormal is `man * 2^-24`.
fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let man = u32::from(h & 0x3ff);
    match exp {
        0 => {
            let v = man as f32 * f32::powi(2.0, -24);
            if sign == 0 {
                v
            } else {
                -v
            }
        }
        0x1f => f32::from_bits(sign | 0x7f80_0000 | (man << 13)),
        _ => f32::from_bits(sign | ((exp + 127 - 15) << 23) | (man << 13)),
    }
}

/// A whole safetensors file in memory; parse it with [`parse_file`].
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })
}

/// The tensors of a file read by [`read_file`].
pub(crate) fn parse_file<'a>(path: &Path, bytes: &'a [u8]) -> Result<SafeTensors<'a>> {
    SafeTensors::deserialize(bytes).map_err(|e| st_err(path, e))
}

/// Reads the named tensors from a parsed safetensors file (`path` names it
/// in errors) into a parameter set,
/// registering each as `prefix + name`. A name is looked up as itself and,
/// failing that, under each of `alternatives` prefixes.
pub(crate) fn read_params(
    path: &Path,
    st: &SafeTensors<'_>,
    names: &[(String, Vec<usize>)],
    prefix: &str,
    alternatives: &[&str],
    ps: &mut ParamSet,
) -> Result<()> {
    for (name, dims) in names {
        let found = std::iter::once(String::new())
            .chain(alternatives.iter().map(|a| a.to_string()))
            .map(|a| format!("{a}{name}"))
            .find(|n| st.tensor(n).is_ok());
        let Some(key) = found else {
            let tried: Vec<String> = alternatives.iter().map(|a| format!("{a}{name}")).collect();
            return Err(st_err(
                path,
                format!(
                    "missing tensor {name:?}{}",
                    if tried.is_empty() {
                        String::new()
                    } else {
                        format!(" (also tried {tried:?})")
                    }
                ),
            ));
        };
        let view = st.tensor(&key).map_err(|e| st_err(path, e))?;
        if view.shape() != dims.as_slice() {
            return Err(st_err(
                path,
                format!("tensor {key:?} has shape {:?}, the config needs {dims:?}", view.shape()),
            ));
        }
        let data = to_f32(path, &key, view.dtype(), view.data())?;
        if let Some(i) = data.iter().position(|x| !x.is_finite()) {
            return Err(st_err(path, format!("tensor {key:?} holds a non-finite value at {i}")));
        }
        ps.add(&format!("{prefix}{name}"), Tensor::from_vec(dims, data)?, dims.len() == 2)?;
    }
    Ok(())
}

/// Config of a model folder with sentence-transformers' settings applied,
/// and the folder holding the transformer.
pub(crate) fn read_config(dir: &Path) -> Result<(EncoderConfig, PathBuf)> {
    let modules = read_modules(dir)?;
    let model_dir = modules.as_ref().map_or_else(|| dir.to_path_buf(), |m| m.transformer.clone());
    let config_path = model_dir.join("config.json");
    let raw = read_json(&config_path)?;
    let mut cfg = EncoderConfig::from_json(&raw, &config_path.display().to_string())?;
    let ours = raw.get("edgecl_norm").is_some();
    if !ours {
        if let Some(m) = &modules {
            cfg.normalize = m.normalize;
            if let Some(p) = &m.pooling {
                apply_pooling(&p.join("config.json"), &mut cfg)?;
            }
        }
        for st_dir in [dir, model_dir.as_path()] {
            let p = st_dir.join("sentence_bert_config.json");
            if p.exists() {
                apply_max_len(&p, &mut cfg)?;
                break;
            }
        }
        let pool = dir.join("1_Pooling").join("config.json");
        if modules.is_none() && pool.exists() {
            apply_pooling(&pool, &mut cfg)?;
        }
    }
    cfg.validate().map_err(|e| cfg_err(&config_path, e))?;
    Ok((cfg, model_dir))
}

/// Reads a Hugging Face BERT folder (with or without a `bert.` prefix on
/// tensor names, optionally a sentence-transformers model) or a folder
/// written by [`save_pretrained`].
pub fn load_pretrained(dir: &Path) -> Result<Pretrained> {
    let (config, model_dir) = read_config(dir)?;
    let (tokenizer, vocab_path) = read_tokenizer(&model_dir, &config)?;
    let weights_path = model_dir.join("model.safetensors");
    if !weights_path.exists() && model_dir.join("pytorch_model.bin").exists() {
        return Err(st_err(
            &weights_path,
            "missing; only pytorch_model.bin is present and PyTorch pickles are unsupported",
        ));
    }
    let bytes = read_file(&weights_path)?;
    let st = parse_file(&weights_path, &bytes)?;
    let mut params = ParamSet::new();
    read_params(&weights_path, &st, &config.param_names(), "", &["bert."], &mut params)?;
    Ok(Pretrained { config, params, tokenizer, vocab_path })
}

/// Writes `config.json` ([`EncoderConfig::to_json`], plus Hugging Face's
/// `model_type` when the model is a plain post-norm BERT), `model.safetensors`
/// (the config's parameters by name) and `vocab.txt`, each to a temp file
/// that is synced and renamed into place.
pub fn save_pretrained(
    dir: &Path,
    config: &EncoderConfig,
    params: &ParamSet,
    vocab: &Vocab,
) -> Result<()> {
    config.validate()?;
    if vocab.len() > config.vocab_size {
        return Err(Error::InvalidArgument {
            op: "save_pretrained",
            what: format!(
                "{} vocabulary tokens exceed vocab_size {}",
                vocab.len(),
                config.vocab_size
            ),
        });
    }
    std::fs::create_dir_all(dir).map_err(|source| Error::Io { path: dir.to_path_buf(), source })?;

    // Weights in the config's order, checked by name and shape.
    let names = config.param_names();
    let mut list: Vec<(&str, &Tensor)> = Vec::with_capacity(names.len());
    for (name, dims) in &names {
        let p = params.get(params.id(name)?);
        if p.value().dims() != dims.as_slice() {
            return Err(Error::InvalidArgument {
                op: "save_pretrained",
                what: format!("{name} has shape {:?}, the config needs {dims:?}", p.value().dims()),
            });
        }
        list.push((name.as_str(), p.value()));
    }
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    weights::save(&dir.join("model.safetensors"), &list, Some(meta))?;

    // Config, readable by Hugging Face when it is a plain BERT.
    let mut json = config.to_json();
    if config.norm == NormPlacement::Post && config.projection_dim.is_none() {
        json["model_type"] = "bert".into();
        json["architectures"] = serde_json::json!(["BertModel"]);
        json["pad_token_id"] = vocab.special().pad.into();
    }
    let text = serde_json::to_string_pretty(&json).map_err(|e| Error::InvalidArgument {
        op: "save_pretrained",
        what: format!("config serialisation: {e}"),
    })?;
    weights::write_atomic(&dir.join("config.json"), text.as_bytes())?;

    // One token per line, in id order.
    let mut v = String::new();
    for t in vocab.tokens() {
        v.push_str(t);
        v.push('\n');
    }
    weights::write_atomic(&dir.join("vocab.txt"), v.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::f16_to_f32;

    #[test]
    fn half_precision_widens_exactly() {
        // (bits, value): normals, signed zero, the largest half, subnormals,
        // infinity.
        let cases: [(u16, f32); 9] = [
            (0x3c00, 1.0),
            (0xc000, -2.0),
            (0x3800, 0.5),
            (0x3555, 0.333_251_95),
            (0x8000, -0.0),
            (0x7bff, 65504.0),
            (0x0001, 5.960_464_5e-8),
            (0x83ff, -6.097_555e-5),
            (0x7c00, f32::INFINITY),
        ];
        for (bits, want) in cases {
            let got = f16_to_f32(bits);
            assert_eq!(got.to_bits(), want.to_bits(), "{bits:#06x}: {got} vs {want}");
        }
        assert!(f16_to_f32(0x7e00).is_nan());
    }
}
