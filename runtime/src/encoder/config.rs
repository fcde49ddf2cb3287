//! The encoder's shape: one plain struct, the presets, and the mapping from a
//! Hugging Face BERT `config.json`.
//!
//! Parameter names follow Hugging Face's `BertModel` exactly
//! (`embeddings.word_embeddings.weight`,
//! `encoder.layer.{i}.attention.self.query.weight`, ...), so a pretrained
//! checkpoint loads by name and a trained model saves as a checkpoint other
//! tools read. The parts BERT does not have (pre-layer-norm blocks, the
//! optional projection to a smaller embedding) add their own names, listed
//! on [`EncoderConfig::param_names`].
//!
//! The config is serialised as JSON (serde_json is already a runtime
//! dependency for safetensors metadata) with every field spelled out, so a
//! model file says what it is without reading code.

use std::path::Path;

use serde_json::{json, Map, Value};

use crate::error::{Error, Result};

/// Where each block's layer norms sit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NormPlacement {
    /// BERT's original: `x = LN(x + f(x))` after each sub-layer.
    Post,
    /// `x = x + f(LN(x))`, with one final layer norm after the last block;
    /// steadier when training small models from scratch.
    Pre,
}

/// How token states become one vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pooling {
    /// Mean over the tokens the attention mask keeps (sentence-transformers'
    /// default).
    Mean,
    /// The first token's state.
    Cls,
}

/// Everything that fixes an encoder's parameters and forward pass.
#[derive(Clone, Debug, PartialEq)]
pub struct EncoderConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    /// Segment (token type) embeddings; 2 for BERT checkpoints.
    pub type_vocab_size: usize,
    pub layer_norm_eps: f32,
    pub norm: NormPlacement,
    pub pooling: Pooling,
    /// Output size of the optional linear projection after pooling; `None`
    /// keeps `hidden_size`.
    pub projection_dim: Option<usize>,
    /// L2-normalise the pooled (and projected) vector.
    pub normalize: bool,
    /// Token limit applied when encoding text (including `[CLS]`/`[SEP]`).
    pub max_seq_len: usize,
}

impl EncoderConfig {
    /// 2 layers of width 128, 2 heads: the smallest model that still learns.
    pub fn micro(vocab_size: usize) -> EncoderConfig {
        EncoderConfig {
            vocab_size,
            hidden_size: 128,
            num_layers: 2,
            num_heads: 2,
            intermediate_size: 512,
            max_position_embeddings: 512,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
            norm: NormPlacement::Pre,
            pooling: Pooling::Mean,
            projection_dim: None,
            normalize: true,
            max_seq_len: 128,
        }
    }

    /// 4 layers of width 256, 4 heads.
    pub fn tiny(vocab_size: usize) -> EncoderConfig {
        EncoderConfig {
            hidden_size: 256,
            num_layers: 4,
            num_heads: 4,
            intermediate_size: 1024,
            ..EncoderConfig::micro(vocab_size)
        }
    }

    /// all-MiniLM-L6-v2's shape: 6 post-norm layers of width 384, 12 heads,
    /// BERT's 30522-token vocabulary, mean pooling, max length 256.
    pub fn minilm() -> EncoderConfig {
        EncoderConfig {
            vocab_size: 30522,
            hidden_size: 384,
            num_layers: 6,
            num_heads: 12,
            intermediate_size: 1536,
            max_position_embeddings: 512,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
            norm: NormPlacement::Post,
            pooling: Pooling::Mean,
            projection_dim: None,
            normalize: true,
            max_seq_len: 256,
        }
    }

    /// A preset by name: `micro`, `tiny` (with `vocab_size`) or `minilm`.
    pub fn preset(name: &str, vocab_size: usize) -> Result<EncoderConfig> {
        let cfg = match name {
            "micro" => EncoderConfig::micro(vocab_size),
            "tiny" => EncoderConfig::tiny(vocab_size),
            "minilm" => EncoderConfig { vocab_size, ..EncoderConfig::minilm() },
            _ => {
                return Err(Error::InvalidArgument {
                    op: "encoder preset",
                    what: format!("unknown preset {name:?} (expected micro, tiny or minilm)"),
                })
            }
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_heads
    }

    /// Length of the vectors the encoder returns.
    pub fn embedding_dim(&self) -> usize {
        self.projection_dim.unwrap_or(self.hidden_size)
    }

    /// Refuse shapes the forward pass cannot run.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: String| Err(Error::InvalidArgument { op: "encoder config", what });
        let positive = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_layers", self.num_layers),
            ("num_heads", self.num_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
            ("max_seq_len", self.max_seq_len),
        ];
        for (name, v) in positive {
            if v == 0 {
                return bad(format!("{name} must be positive"));
            }
        }
        if !self.hidden_size.is_multiple_of(self.num_heads) {
            return bad(format!(
                "hidden_size {} is not a multiple of num_heads {}",
                self.hidden_size, self.num_heads
            ));
        }
        if self.max_seq_len > self.max_position_embeddings {
            return bad(format!(
                "max_seq_len {} exceeds max_position_embeddings {}",
                self.max_seq_len, self.max_position_embeddings
            ));
        }
        if self.projection_dim == Some(0) {
            return bad("projection_dim must be positive".into());
        }
        if !(self.layer_norm_eps.is_finite() && self.layer_norm_eps > 0.0) {
            return bad(format!(
                "layer_norm_eps {} must be finite and positive",
                self.layer_norm_eps
            ));
        }
        Ok(())
    }

    /// Every parameter's name and shape, in a fixed order.
    ///
    /// Hugging Face `BertModel` names, plus `encoder.final_norm.{weight,bias}`
    /// for pre-norm models and `projection.{weight,bias}` (weight
    /// `[projection_dim, hidden]`) when projecting. Linear weights are
    /// `[out, in]` as in PyTorch.
    pub fn param_names(&self) -> Vec<(String, Vec<usize>)> {
        let (h, f) = (self.hidden_size, self.intermediate_size);
        let mut out: Vec<(String, Vec<usize>)> = vec![
            ("embeddings.word_embeddings.weight".into(), vec![self.vocab_size, h]),
            ("embeddings.position_embeddings.weight".into(), vec![self.max_position_embeddings, h]),
            ("embeddings.token_type_embeddings.weight".into(), vec![self.type_vocab_size, h]),
            ("embeddings.LayerNorm.weight".into(), vec![h]),
            ("embeddings.LayerNorm.bias".into(), vec![h]),
        ];
        for i in 0..self.num_layers {
            let p = format!("encoder.layer.{i}");
            for (name, dims) in [
                ("attention.self.query", [h, h]),
                ("attention.self.key", [h, h]),
                ("attention.self.value", [h, h]),
                ("attention.output.dense", [h, h]),
                ("intermediate.dense", [f, h]),
                ("output.dense", [h, f]),
            ] {
                out.push((format!("{p}.{name}.weight"), dims.to_vec()));
                out.push((format!("{p}.{name}.bias"), vec![dims[0]]));
            }
            for name in ["attention.output.LayerNorm", "output.LayerNorm"] {
                out.push((format!("{p}.{name}.weight"), vec![h]));
                out.push((format!("{p}.{name}.bias"), vec![h]));
            }
        }
        if self.norm == NormPlacement::Pre {
            out.push(("encoder.final_norm.weight".into(), vec![h]));
            out.push(("encoder.final_norm.bias".into(), vec![h]));
        }
        if let Some(d) = self.projection_dim {
            out.push(("projection.weight".into(), vec![d, h]));
            out.push(("projection.bias".into(), vec![d]));
        }
        out
    }

    /// Total parameter count.
    pub fn num_params(&self) -> usize {
        self.param_names().iter().map(|(_, d)| d.iter().product::<usize>()).sum()
    }

    /// The config as a JSON object with every field.
    pub fn to_json(&self) -> Value {
        json!({
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "num_hidden_layers": self.num_layers,
            "num_attention_heads": self.num_heads,
            "intermediate_size": self.intermediate_size,
            "max_position_embeddings": self.max_position_embeddings,
            "type_vocab_size": self.type_vocab_size,
            "layer_norm_eps": self.layer_norm_eps,
            "hidden_act": "gelu",
            "edgecl_norm": match self.norm { NormPlacement::Post => "post", NormPlacement::Pre => "pre" },
            "edgecl_pooling": match self.pooling { Pooling::Mean => "mean", Pooling::Cls => "cls" },
            "edgecl_projection_dim": self.projection_dim,
            "edgecl_normalize": self.normalize,
            "edgecl_max_seq_len": self.max_seq_len,
        })
    }

    /// Read a config from JSON: either one written by [`EncoderConfig::to_json`]
    /// or a Hugging Face BERT `config.json`, whose missing `edgecl_*` fields
    /// take sentence-transformers' defaults (post-norm, mean pooling,
    /// normalised, max length 256 capped by the position table).
    /// `source` names the file in errors.
    pub fn from_json(v: &Value, source: &str) -> Result<EncoderConfig> {
        let bad = |what: String| Error::InvalidArgument { op: "encoder config", what };
        let obj: &Map<String, Value> =
            v.as_object().ok_or_else(|| bad(format!("{source}: not a JSON object")))?;
        let usize_field = |key: &str| -> Result<usize> {
            let x = obj.get(key).ok_or_else(|| bad(format!("{source}: missing field {key:?}")))?;
            x.as_u64().map(|n| n as usize).ok_or_else(|| {
                bad(format!("{source}: field {key:?} is not a non-negative integer"))
            })
        };
        if let Some(act) = obj.get("hidden_act") {
            if act.as_str() != Some("gelu") {
                return Err(bad(format!(
                    "{source}: hidden_act {act} is unsupported (only the erf \"gelu\" is)"
                )));
            }
        }
        if let Some(pe) = obj.get("position_embedding_type") {
            if pe.as_str() != Some("absolute") {
                return Err(bad(format!(
                    "{source}: position_embedding_type {pe} is unsupported (only \"absolute\" is)"
                )));
            }
        }
        let max_pos = usize_field("max_position_embeddings")?;
        let norm = match obj.get("edgecl_norm").and_then(Value::as_str) {
            None | Some("post") => NormPlacement::Post,
            Some("pre") => NormPlacement::Pre,
            Some(o) => return Err(bad(format!("{source}: edgecl_norm {o:?} is not post or pre"))),
        };
        let pooling = match obj.get("edgecl_pooling").and_then(Value::as_str) {
            None | Some("mean") => Pooling::Mean,
            Some("cls") => Pooling::Cls,
            Some(o) => {
                return Err(bad(format!("{source}: edgecl_pooling {o:?} is not mean or cls")))
            }
        };
        let projection_dim = match obj.get("edgecl_projection_dim") {
            None | Some(Value::Null) => None,
            Some(x) => Some(x.as_u64().ok_or_else(|| {
                bad(format!("{source}: edgecl_projection_dim is not an integer or null"))
            })? as usize),
        };
        let cfg = EncoderConfig {
            vocab_size: usize_field("vocab_size")?,
            hidden_size: usize_field("hidden_size")?,
            num_layers: usize_field("num_hidden_layers")?,
            num_heads: usize_field("num_attention_heads")?,
            intermediate_size: usize_field("intermediate_size")?,
            max_position_embeddings: max_pos,
            type_vocab_size: match obj.get("type_vocab_size") {
                None => 2,
                Some(_) => usize_field("type_vocab_size")?,
            },
            layer_norm_eps: match obj.get("layer_norm_eps") {
                None => 1e-12,
                Some(x) => x
                    .as_f64()
                    .ok_or_else(|| bad(format!("{source}: layer_norm_eps is not a number")))?
                    as f32,
            },
            norm,
            pooling,
            projection_dim,
            normalize: obj.get("edgecl_normalize").and_then(Value::as_bool).unwrap_or(true),
            max_seq_len: match obj.get("edgecl_max_seq_len") {
                None => 256.min(max_pos),
                Some(_) => usize_field("edgecl_max_seq_len")?,
            },
        };
        cfg.validate().map_err(|e| bad(format!("{source}: {e}")))?;
        Ok(cfg)
    }

    /// Read a config file (see [`EncoderConfig::from_json`]).
    pub fn load(path: &Path) -> Result<EncoderConfig> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
        let v: Value = serde_json::from_str(&text).map_err(|e| Error::InvalidArgument {
            op: "encoder config",
            what: format!("{}: not JSON: {e}", path.display()),
        })?;
        EncoderConfig::from_json(&v, &path.display().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_have_the_documented_sizes() {
        let m = EncoderConfig::minilm();
        // all-MiniLM-L6-v2 without its (unused) pooler: 22,713,216 with it, less 147,840.
        assert_eq!(m.num_params(), 22_713_216 - 147_840);
        assert_eq!(m.head_dim(), 32);
        let t = EncoderConfig::tiny(8192);
        assert_eq!(t.embedding_dim(), 256);
        assert!(t.num_params() < 6_000_000, "{}", t.num_params());
        assert!(EncoderConfig::preset("huge", 100).is_err());
    }

    #[test]
    fn json_round_trips_and_reads_hf_configs() {
        let c = EncoderConfig { projection_dim: Some(64), ..EncoderConfig::tiny(4000) };
        assert_eq!(EncoderConfig::from_json(&c.to_json(), "t").unwrap(), c);
        let hf = json!({
            "vocab_size": 30522, "hidden_size": 384, "num_hidden_layers": 6,
            "num_attention_heads": 12, "intermediate_size": 1536,
            "max_position_embeddings": 512, "type_vocab_size": 2,
            "layer_norm_eps": 1e-12, "hidden_act": "gelu",
            "position_embedding_type": "absolute"
        });
        assert_eq!(EncoderConfig::from_json(&hf, "hf").unwrap(), EncoderConfig::minilm());
        let relu = json!({"vocab_size": 10, "hidden_size": 8, "num_hidden_layers": 1,
            "num_attention_heads": 2, "intermediate_size": 8, "max_position_embeddings": 8,
            "hidden_act": "relu"});
        let e = EncoderConfig::from_json(&relu, "x.json").unwrap_err().to_string();
        assert!(e.contains("x.json") && e.contains("hidden_act"), "{e}");
        let odd_heads = json!({"vocab_size": 10, "hidden_size": 10, "num_hidden_layers": 1,
            "num_attention_heads": 3, "intermediate_size": 8, "max_position_embeddings": 8});
        assert!(EncoderConfig::from_json(&odd_heads, "y").is_err());
    }
}
