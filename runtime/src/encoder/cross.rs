//! A cross-encoder: one BERT pass over `[CLS] query [SEP] document [SEP]`
//! and Hugging Face's sequence-classification head on top, giving one
//! relevance score per pair.
//!
//! ```text
//! x      = encoder token states                        [B, T, C]
//! pooled = tanh(Wp x[:, 0] + bp)                       [B, C]   (BERT's pooler)
//! score  = Wc drop(pooled) + bc                        [B]      (Wc: [1, C])
//! ```
//!
//! Parameter names are those of `BertForSequenceClassification` with
//! `num_labels = 1`: the encoder's names under `bert.`, then
//! `bert.pooler.dense.{weight,bias}` and `classifier.{weight,bias}`, so a
//! checkpoint of that class loads by name and a saved model is one again.
//! The encoder config's pooling, projection and normalisation describe a
//! bi-encoder and play no part here; a projection is refused because its
//! parameters would have no place in the checkpoint.
//!
//! Left out: more than one label (multi-class heads), and the
//! sentence-transformers `CrossEncoder` activation (a sigmoid some
//! checkpoints ask for in their config): scores are raw logits.

use std::path::{Path, PathBuf};

use crate::autodiff::{Graph, Var};
use crate::encoder::batch::TokenBatch;
use crate::encoder::config::{EncoderConfig, NormPlacement};
use crate::encoder::model::{add_init, linear, Encoder};
use crate::encoder::pretrained::{
    parse_file, read_config, read_file, read_params, read_tokenizer, st_err,
};
use crate::error::{Error, Result};
use crate::params::{ParamId, ParamSet};
use crate::tensor::Tensor;
use crate::tokenizer::{Tokenizer, Vocab};
use crate::weights;

/// Prefix of the encoder's parameters inside the classification model.
const BERT: &str = "bert.";

/// Seed of a head initialised fresh by [`load_pretrained_cross`].
const HEAD_SEED: u64 = 0x5eed;

/// BERT plus a pooler and a one-logit classifier.
#[derive(Clone, Debug)]
pub struct CrossEncoder {
    encoder: Encoder,
    /// The four head parameters: pooler weight and bias, classifier weight
    /// and bias, full names.
    head: Vec<(String, Vec<usize>)>,
}

impl CrossEncoder {
    /// A cross-encoder over a validated config without a projection, with
    /// BERT's dropout of 0.1.
    pub fn new(config: EncoderConfig) -> Result<CrossEncoder> {
        if config.projection_dim.is_some() {
            return Err(Error::InvalidArgument {
                op: "cross-encoder config",
                what: "projection_dim must be unset: the classification head replaces it".into(),
            });
        }
        let h = config.hidden_size;
        let head = vec![
            ("bert.pooler.dense.weight".to_string(), vec![h, h]),
            ("bert.pooler.dense.bias".to_string(), vec![h]),
            ("classifier.weight".to_string(), vec![1, h]),
            ("classifier.bias".to_string(), vec![1]),
        ];
        Ok(CrossEncoder { encoder: Encoder::new(config)?, head })
    }

    /// Sets the dropout probability of the encoder and before the
    /// classifier (training mode only).
    pub fn with_dropout(mut self, p: f32) -> CrossEncoder {
        self.encoder = self.encoder.with_dropout(p);
        self
    }

    pub fn config(&self) -> &EncoderConfig {
        self.encoder.config()
    }

    pub fn encoder(&self) -> &Encoder {
        &self.encoder
    }

    /// Every parameter's full name and shape, in binding order.
    pub fn param_names(&self) -> Vec<(String, Vec<usize>)> {
        let enc = self.encoder.param_names().iter().map(|(n, d)| (format!("{BERT}{n}"), d.clone()));
        enc.chain(self.head.iter().cloned()).collect()
    }

    /// Fresh parameters with BERT's initialisation (see
    /// [`Encoder::init_params`]); the head continues the encoder's streams.
    pub fn init_params(&self, seed: u64) -> Result<ParamSet> {
        let mut ps = ParamSet::new();
        add_init(&mut ps, self.encoder.param_names(), BERT, seed, 0)?;
        let n = self.encoder.param_names().len() as u64;
        add_init(&mut ps, &self.head, "", seed, n)?;
        Ok(ps)
    }

    /// Puts every parameter on the tape, in [`CrossEncoder::param_names`]
    /// order.
    pub fn bind(&self, g: &mut Graph) -> Result<Vec<Var>> {
        let mut vars = self.encoder.bind(g, BERT)?;
        let n = vars.len();
        for (k, (name, dims)) in self.head.iter().enumerate() {
            let ps = g.params();
            let at = n + k;
            let id = if at < ps.len() && ps.get(ParamId(at)).name() == name {
                ParamId(at)
            } else {
                ps.id(name)?
            };
            if ps.get(id).value().dims() != dims.as_slice() {
                return Err(Error::InvalidArgument {
                    op: "cross-encoder parameters",
                    what: format!(
                        "{name} has shape {:?}, the config needs {dims:?}",
                        ps.get(id).value().dims()
                    ),
                });
            }
            vars.push(g.param(id));
        }
        Ok(vars)
    }

    /// One score per pair, `[B]`. The parameters must be in `g`.
    pub fn forward(&self, g: &mut Graph, batch: &TokenBatch) -> Result<Var> {
        let p = self.bind(g)?;
        self.forward_with(g, &p, batch)
    }

    /// [`CrossEncoder::forward`] over parameter leaves already on the tape,
    /// in [`CrossEncoder::param_names`] order.
    pub fn forward_with(&self, g: &mut Graph, p: &[Var], batch: &TokenBatch) -> Result<Var> {
        let n = self.encoder.param_names().len();
        if p.len() != n + self.head.len() {
            return Err(Error::InvalidArgument {
                op: "cross-encoder forward",
                what: format!("{} parameter vars for {} parameters", p.len(), n + self.head.len()),
            });
        }
        let mask = self.encoder.mask_input(g, batch)?;
        let x = self.encoder.token_states_with(g, &p[..n], batch, mask)?;

        // Pooler on the [CLS] state, then the one-logit classifier.
        let cls = g.cls_pool(x)?;
        let pooled = linear(g, cls, p[n], p[n + 1])?;
        let pooled = g.tanh(pooled)?;
        let pooled = g.dropout(pooled, self.encoder.dropout())?;
        let logits = linear(g, pooled, p[n + 2], p[n + 3])?;
        g.reshape(logits, &[batch.batch])
    }
}

/// A cross-encoder folder read into memory.
pub struct PretrainedCross {
    pub config: EncoderConfig,
    pub params: ParamSet,
    pub tokenizer: Tokenizer,
    pub vocab_path: PathBuf,
    /// Whether the pooler and classifier came from the checkpoint (a
    /// `BertForSequenceClassification`) rather than fresh initialisation.
    pub head_loaded: bool,
    /// Whether the pooler came from the checkpoint (always so when
    /// `head_loaded`; a plain BERT may carry one too).
    pub pooler_loaded: bool,
}

/// Reads a `BertForSequenceClassification` folder with one label, or a
/// plain BERT / sentence-transformers folder, whose encoder (and pooler,
/// when saved) are loaded and whose classifier is initialised fresh
/// (BERT's recipe, a fixed seed).
pub fn load_pretrained_cross(dir: &Path) -> Result<PretrainedCross> {
    let (mut config, model_dir) = read_config(dir)?;
    // Bi-encoder settings do not apply to a cross-encoder.
    config.projection_dim = None;
    let model = CrossEncoder::new(config.clone())?;
    let (tokenizer, vocab_path) = read_tokenizer(&model_dir, &config)?;
    let path = model_dir.join("model.safetensors");
    let bytes = read_file(&path)?;
    let st = parse_file(&path, &bytes)?;

    // The encoder, with or without the `bert.` prefix in the file.
    let mut params = ParamSet::new();
    let enc_names = model.encoder.param_names();
    read_params(&path, &st, enc_names, BERT, &[BERT], &mut params)?;

    // The head: all from the file when it has a classifier, else the
    // pooler when present and a fresh classifier.
    let h = config.hidden_size;
    let pooler = [
        ("pooler.dense.weight".to_string(), vec![h, h]),
        ("pooler.dense.bias".to_string(), vec![h]),
    ];
    let classifier =
        [("classifier.weight".to_string(), vec![1, h]), ("classifier.bias".to_string(), vec![1])];
    let has = |n: &str| st.tensor(n).is_ok();
    let n = enc_names.len() as u64;
    let head_loaded = has("classifier.weight");
    if head_loaded {
        let labels = st.tensor("classifier.weight").map_err(|e| st_err(&path, e))?.shape()[0];
        if labels != 1 {
            return Err(st_err(
                &path,
                format!("classifier.weight has {labels} labels; only num_labels = 1 is supported"),
            ));
        }
    }
    let pooler_loaded = has("bert.pooler.dense.weight") || has("pooler.dense.weight");
    if pooler_loaded {
        read_params(&path, &st, &pooler, BERT, &[BERT], &mut params)?;
    } else if head_loaded {
        return Err(st_err(&path, "missing tensor \"bert.pooler.dense.weight\""));
    } else {
        add_init(&mut params, &pooler, BERT, HEAD_SEED, n)?;
    }
    if head_loaded {
        read_params(&path, &st, &classifier, "", &[], &mut params)?;
    } else {
        add_init(&mut params, &classifier, "", HEAD_SEED, n + 2)?;
    }
    Ok(PretrainedCross { config, params, tokenizer, vocab_path, head_loaded, pooler_loaded })
}

/// Writes a `BertForSequenceClassification` folder (`config.json` with
/// one label, `model.safetensors`, `vocab.txt`), each file written to a
/// temp file, synced and renamed.
pub fn save_pretrained_cross(
    dir: &Path,
    config: &EncoderConfig,
    params: &ParamSet,
    vocab: &Vocab,
) -> Result<()> {
    let model = CrossEncoder::new(config.clone())?;
    if vocab.len() > config.vocab_size {
        return Err(Error::InvalidArgument {
            op: "save_pretrained_cross",
            what: format!(
                "{} vocabulary tokens exceed vocab_size {}",
                vocab.len(),
                config.vocab_size
            ),
        });
    }
    std::fs::create_dir_all(dir).map_err(|source| Error::Io { path: dir.to_path_buf(), source })?;

    let names = model.param_names();
    let mut list: Vec<(&str, &Tensor)> = Vec::with_capacity(names.len());
    for (name, dims) in &names {
        let p = params.get(params.id(name)?);
        if p.value().dims() != dims.as_slice() {
            return Err(Error::InvalidArgument {
                op: "save_pretrained_cross",
                what: format!("{name} has shape {:?}, the config needs {dims:?}", p.value().dims()),
            });
        }
        list.push((name.as_str(), p.value()));
    }
    let meta = std::collections::HashMap::from([("format".to_string(), "pt".to_string())]);
    weights::save(&dir.join("model.safetensors"), &list, Some(meta))?;

    let mut json = config.to_json();
    if config.norm == NormPlacement::Post {
        json["model_type"] = "bert".into();
    }
    json["architectures"] = serde_json::json!(["BertForSequenceClassification"]);
    json["id2label"] = serde_json::json!({"0": "LABEL_0"});
    json["label2id"] = serde_json::json!({"LABEL_0": 0});
    json["pad_token_id"] = vocab.special().pad.into();
    let text = serde_json::to_string_pretty(&json).map_err(|e| Error::InvalidArgument {
        op: "save_pretrained_cross",
        what: format!("config serialisation: {e}"),
    })?;
    weights::write_atomic(&dir.join("config.json"), text.as_bytes())?;
    let v: String = vocab.tokens().flat_map(|t| [t, "\n"]).collect();
    weights::write_atomic(&dir.join("vocab.txt"), v.as_bytes())
}
