//! On-device inference of the encoder: text in, embeddings out, without a
//! tape.
//!
//! [`InferenceModel`] runs the forward pass of an [`EncoderConfig`] straight
//! on the kernels: `sgemm` (or the int8 GEMM) for every linear layer, the
//! vector kernels for layer norm, GELU and softmax, attention per
//! (sequence, head), then pooling, the optional projection and L2
//! normalisation. Nothing records gradients and nothing is allocated per op:
//! activations live in scratch buffers that grow to the largest batch seen
//! and are reused by later calls.
//!
//! Why this design:
//! * Batches are ragged. The tokens of all sequences of a batch are stacked
//!   into one `[N, H]` matrix with no padding, so the linear layers (nearly
//!   all the work) run as one large GEMM over real tokens only, and
//!   attention reads each sequence's own rows. A padded `[B, T, H]` layout
//!   would spend work on pad positions whose results are thrown away;
//!   restricting each query to its sequence's keys gives exactly what a key
//!   mask gives.
//! * [`Precision::Int8`] is post-training dynamic quantization: every linear
//!   layer's weight is quantized once per output channel (symmetric, codes
//!   in -127..=127) and prepacked for the int8 GEMM; each activation row
//!   (token) is quantized on the fly to u8 with its own scale and zero point
//!   (asymmetric, because rows after GELU are far from symmetric). The GEMM's
//!   epilogue applies both scales and the bias and writes f32. Embedding
//!   tables, layer norms, softmax, GELU and the attention products stay f32.
//! * Parallelism comes from the current rayon pool: the GEMMs split rows
//!   across it, attention runs (sequence, head) pairs in parallel, and the
//!   row-wise steps are parallel over rows. Call inside
//!   `ThreadPool::install` (or [`crate::Runtime::install`]) to choose the
//!   thread count.
//!
//! Sources: [`InferenceModel::from_params`] (a trained [`ParamSet`]),
//! [`InferenceModel::from_weights`] (named tensors, such as a mapped
//! safetensors file), [`InferenceModel::from_hf_dir`] (a Hugging Face /
//! sentence-transformers folder) and [`InferenceModel::open`] (the model
//! file written by [`InferenceModel::write`]; see `docs/FORMAT.md`, "Model
//! file").
//!
//! Left out: pairs of texts (cross-encoding), token-level outputs, f16/bf16
//! weights, and quantized attention products (their operands change with
//! every input, and they are a small share of the work at sentence lengths).

mod file;
mod forward;
mod linear;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::container::ContainerError;
use crate::encoder::{EncoderConfig, NormPlacement};
use crate::error::Error;
use crate::kernels::int8::Int8Error;
use crate::params::ParamSet;
use crate::tensor::{DType, Tensor};
use crate::tokenizer::{EncodeOptions, Encoding, Tokenizer, TokenizerError};

use forward::{Ragged, Scratch};
use linear::Linear;

pub use file::{section_names, MODEL_FORMAT};

/// Result with the inference [`InferError`].
pub type Result<T, E = InferError> = std::result::Result<T, E>;

/// Number formats of the linear layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Precision {
    /// Every weight and activation in f32.
    F32,
    /// Linear layers in int8 (weights per output channel, activations per
    /// token); everything else in f32.
    Int8,
}

impl Precision {
    /// `f32` or `int8`, as written in model files and accepted by
    /// [`str::parse`].
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Int8 => "int8",
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Precision {
    type Err = InferError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "f32" => Ok(Precision::F32),
            "int8" => Ok(Precision::Int8),
            _ => Err(InferError::Invalid { what: format!("precision {s:?} is not f32 or int8") }),
        }
    }
}

/// Why a model could not be built, loaded or run.
#[derive(Debug)]
#[non_exhaustive]
pub enum InferError {
    /// A runtime failure: a kernel refusing shapes, a bad config, a file
    /// that cannot be read.
    Runtime(Error),
    /// Tokenization failed, or a vocabulary could not be built.
    Tokenizer(TokenizerError),
    /// The model file is not a valid container.
    Container { path: PathBuf, source: ContainerError },
    /// The int8 GEMM refused its operands.
    Int8 { op: &'static str, source: Int8Error },
    /// A weight the config needs that the source does not hold.
    MissingWeight { origin: String, name: String },
    /// A weight whose shape, dtype or layout differs from what the config
    /// needs.
    BadWeight { origin: String, name: String, reason: String },
    /// A section of a model file that is absent.
    MissingSection { path: PathBuf, section: String },
    /// A section of a model file with the wrong dtype or shape, or contents
    /// that do not parse.
    BadSection { path: PathBuf, section: String, reason: String },
    /// An input or setting the model cannot take (a token id past the
    /// vocabulary, a row with no kept token, a vocabulary larger than the
    /// embedding table).
    Invalid { what: String },
}

impl fmt::Display for InferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InferError::Runtime(e) => write!(f, "{e}"),
            InferError::Tokenizer(e) => write!(f, "{e}"),
            InferError::Container { path, source } => write!(f, "{}: {source}", path.display()),
            InferError::Int8 { op, source } => write!(f, "{op}: {source}"),
            InferError::MissingWeight { origin, name } => {
                write!(f, "{origin}: missing weight {name:?}")
            }
            InferError::BadWeight { origin, name, reason } => {
                write!(f, "{origin}: weight {name:?}: {reason}")
            }
            InferError::MissingSection { path, section } => {
                write!(f, "{}: model file has no section {section:?}", path.display())
            }
            InferError::BadSection { path, section, reason } => {
                write!(f, "{}: section {section:?}: {reason}", path.display())
            }
            InferError::Invalid { what } => write!(f, "inference: {what}"),
        }
    }
}

impl std::error::Error for InferError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            InferError::Runtime(e) => Some(e),
            InferError::Tokenizer(e) => Some(e),
            InferError::Container { source, .. } => Some(source),
            InferError::Int8 { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<Error> for InferError {
    fn from(e: Error) -> Self {
        InferError::Runtime(e)
    }
}

impl From<TokenizerError> for InferError {
    fn from(e: TokenizerError) -> Self {
        InferError::Tokenizer(e)
    }
}

/// Most tokens stacked into one forward pass; longer inputs are split into
/// several passes. Bounds the scratch memory (about `4 (7 H + 2 F)` bytes a
/// token, 23 KiB for MiniLM, so 46 MiB at this cap) while keeping the GEMMs
/// large enough to run at full speed.
const MAX_BATCH_TOKENS: usize = 2048;

/// A layer norm's scale and shift, `[H]` each.
struct Norm {
    gamma: Tensor,
    beta: Tensor,
}

/// One transformer block's weights.
struct Layer {
    query: Linear,
    key: Linear,
    value: Linear,
    attn_out: Linear,
    /// `attention.output.LayerNorm`: after attention (post-norm) or before
    /// it (pre-norm).
    attn_norm: Norm,
    up: Linear,
    down: Linear,
    /// `output.LayerNorm`: after the feed-forward (post-norm) or before it.
    ffn_norm: Norm,
}

/// Every weight of the encoder, f32 tensors owned or mapped.
struct Weights {
    word: Tensor,
    position: Tensor,
    token_type: Tensor,
    emb_norm: Norm,
    layers: Vec<Layer>,
    final_norm: Option<Norm>,
    projection: Option<Linear>,
}

/// An encoder ready to embed text on the CPU.
pub struct InferenceModel {
    config: EncoderConfig,
    precision: Precision,
    tokenizer: Tokenizer,
    weights: Weights,
    /// Scratch buffers of finished calls, taken by the next ones.
    scratch: Mutex<Vec<Scratch>>,
}

impl fmt::Debug for InferenceModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InferenceModel")
            .field("config", &self.config)
            .field("precision", &self.precision)
            .finish_non_exhaustive()
    }
}

/// Fetches a named f32 tensor and checks its shape.
type Lookup<'a> = dyn Fn(&str, &[usize]) -> Result<Tensor> + 'a;

/// A named tensor's f32 data, checked for dtype, shape and layout.
fn check_f32(origin: &str, name: &str, t: &Tensor, dims: &[usize]) -> Result<()> {
    let bad = |reason: String| InferError::BadWeight {
        origin: origin.to_owned(),
        name: name.to_owned(),
        reason,
    };
    if t.dtype() != DType::F32 {
        return Err(bad(format!("dtype {} where f32 is needed", t.dtype().name())));
    }
    if t.dims() != dims {
        return Err(bad(format!("shape {:?} where the config needs {dims:?}", t.dims())));
    }
    if !t.is_contiguous() {
        return Err(bad("not contiguous".into()));
    }
    Ok(())
}

impl InferenceModel {
    /// A model over a trained parameter set whose names are those of
    /// [`EncoderConfig::param_names`]. Parameter values are shared, not
    /// copied, at [`Precision::F32`].
    pub fn from_params(
        config: &EncoderConfig,
        params: &ParamSet,
        tokenizer: Tokenizer,
        precision: Precision,
    ) -> Result<Self> {
        let lookup = |name: &str, dims: &[usize]| -> Result<Tensor> {
            let id = params.id(name).map_err(|_| InferError::MissingWeight {
                origin: "parameter set".into(),
                name: name.to_owned(),
            })?;
            let t = params.get(id).value().clone();
            check_f32("parameter set", name, &t, dims)?;
            Ok(t)
        };
        InferenceModel::build(config, &lookup, tokenizer, precision)
    }

    /// A model over named tensors, such as [`crate::weights::MappedWeights::tensors`]
    /// or [`crate::weights::load`]. Names may carry Hugging Face's `bert.`
    /// prefix; tensors the config does not name (a pooler, position ids)
    /// are ignored. Tensors are shared, not copied, at [`Precision::F32`].
    pub fn from_weights(
        config: &EncoderConfig,
        tensors: &[(String, Tensor)],
        tokenizer: Tokenizer,
        precision: Precision,
    ) -> Result<Self> {
        let lookup = |name: &str, dims: &[usize]| -> Result<Tensor> {
            let prefixed = format!("bert.{name}");
            let (_, t) =
                tensors.iter().find(|(n, _)| n == name || *n == prefixed).ok_or_else(|| {
                    InferError::MissingWeight { origin: "weights".into(), name: name.to_owned() }
                })?;
            check_f32("weights", name, t, dims)?;
            Ok(t.clone())
        };
        InferenceModel::build(config, &lookup, tokenizer, precision)
    }

    /// A model from a Hugging Face / sentence-transformers folder:
    /// `config.json`, `model.safetensors` and `vocab.txt`, plus, when
    /// present, `sentence_bert_config.json` (`max_seq_length`),
    /// `1_Pooling/config.json` (mean or CLS pooling), `modules.json`
    /// (whether a Normalize module follows) and `tokenizer_config.json`
    /// (`do_lower_case`, `strip_accents`).
    ///
    /// The safetensors file is read whole rather than mapped: Hugging Face
    /// checkpoints carry an i64 `position_ids` buffer, a dtype the
    /// runtime's tensors do not hold, so the f32 tensors are picked out by
    /// name and the rest ignored. [`InferenceModel::write`] then gives a
    /// file that [`InferenceModel::open`] maps without copying.
    pub fn from_hf_dir(dir: impl AsRef<Path>, precision: Precision) -> Result<Self> {
        let dir = dir.as_ref();
        let mut config = EncoderConfig::load(&dir.join("config.json"))?;
        file::apply_sentence_transformers(dir, &mut config)?;
        let tokenizer = file::hf_tokenizer(dir)?;
        let tensors = file::read_safetensors_f32(&dir.join("model.safetensors"))?;
        let origin = dir.join("model.safetensors").display().to_string();
        let lookup = |name: &str, dims: &[usize]| -> Result<Tensor> {
            let prefixed = format!("bert.{name}");
            let (_, t) =
                tensors.iter().find(|(n, _)| n == name || *n == prefixed).ok_or_else(|| {
                    InferError::MissingWeight { origin: origin.clone(), name: name.to_owned() }
                })?;
            check_f32(&origin, name, t, dims)?;
            Ok(t.clone())
        };
        InferenceModel::build(&config, &lookup, tokenizer, precision)
    }

    /// Assembles the model from a lookup of f32 tensors, quantizing the
    /// linear layers when asked to.
    fn build(
        config: &EncoderConfig,
        get: &Lookup<'_>,
        tokenizer: Tokenizer,
        precision: Precision,
    ) -> Result<Self> {
        config.validate()?;
        let linear = |name: &str, out: usize, inp: usize| -> Result<Linear> {
            let w = get(&format!("{name}.weight"), &[out, inp])?;
            let b = get(&format!("{name}.bias"), &[out])?;
            match precision {
                Precision::F32 => Linear::f32(w, b),
                Precision::Int8 => Linear::quantize(&format!("{name}.weight"), &w, b),
            }
        };
        let weights = assemble(config, get, &linear)?;
        InferenceModel::from_parts(config.clone(), precision, tokenizer, weights)
    }

    fn from_parts(
        config: EncoderConfig,
        precision: Precision,
        tokenizer: Tokenizer,
        weights: Weights,
    ) -> Result<Self> {
        let vocab = tokenizer.vocab().len();
        if vocab > config.vocab_size {
            return Err(InferError::Invalid {
                what: format!(
                    "the tokenizer's {vocab} tokens exceed the embedding table's {} rows",
                    config.vocab_size
                ),
            });
        }
        Ok(InferenceModel { config, precision, tokenizer, weights, scratch: Mutex::new(vec![]) })
    }

    /// Length of the returned vectors.
    pub fn dim(&self) -> usize {
        self.config.embedding_dim()
    }

    /// The encoder's shape.
    pub fn config(&self) -> &EncoderConfig {
        &self.config
    }

    /// Number format of the linear layers.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The tokenizer [`InferenceModel::embed`] uses.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Embeds texts: row-major `[texts.len(), dim]`, in input order.
    ///
    /// Texts are tokenized and cut to `max_seq_len` tokens, then grouped
    /// longest first into passes of at most a few thousand tokens; with no
    /// padding in a pass, grouping by length only evens out the attention
    /// work across threads.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<f32>> {
        let opts = EncodeOptions { max_len: Some(self.config.max_seq_len), ..Default::default() };
        let encodings = self.tokenizer.encode_batch(texts, &opts)?;
        self.embed_encodings(&encodings)
    }

    /// Embeds tokenized texts (see [`Tokenizer::encode_batch`]); positions
    /// whose attention mask is 0 are left out. Each encoding must keep at
    /// least one position and fit `max_position_embeddings`.
    pub fn embed_encodings(&self, encodings: &[Encoding]) -> Result<Vec<f32>> {
        let seqs: Vec<SeqRef<'_>> = encodings
            .iter()
            .map(|e| SeqRef { ids: &e.ids, types: Some(&e.type_ids), mask: &e.attention_mask })
            .collect();
        self.embed_seqs(&seqs)
    }

    /// Embeds a padded batch of token ids: `ids` and `mask` are row-major
    /// `[batch, seq_len]`; positions with mask 0 are left out, token types
    /// are 0. Returns `[batch, dim]`.
    pub fn embed_tokens(&self, ids: &[u32], mask: &[u8], seq_len: usize) -> Result<Vec<f32>> {
        if seq_len == 0 || ids.len() != mask.len() || !ids.len().is_multiple_of(seq_len) {
            return Err(InferError::Invalid {
                what: format!(
                    "token batch of {} ids and {} mask values is not a whole number of rows of {seq_len}",
                    ids.len(),
                    mask.len()
                ),
            });
        }
        let seqs: Vec<SeqRef<'_>> = ids
            .chunks(seq_len)
            .zip(mask.chunks(seq_len))
            .map(|(ids, mask)| SeqRef { ids, types: None, mask })
            .collect();
        self.embed_seqs(&seqs)
    }

    fn embed_seqs(&self, seqs: &[SeqRef<'_>]) -> Result<Vec<f32>> {
        let dim = self.dim();
        let mut out = vec![0.0f32; seqs.len() * dim];
        let lens: Vec<usize> =
            seqs.iter().map(|s| s.mask.iter().filter(|&&m| m != 0).count()).collect();

        // Longest first, then passes of at most MAX_BATCH_TOKENS tokens (a
        // longer sequence goes alone).
        let mut order: Vec<usize> = (0..seqs.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(lens[i]));
        let mut scratch =
            self.scratch.lock().map(|mut s| s.pop()).unwrap_or(None).unwrap_or_default();
        let mut start = 0;
        let result = (|| {
            while start < order.len() {
                let mut end = start;
                let mut tokens = 0;
                while end < order.len()
                    && (end == start || tokens + lens[order[end]] <= MAX_BATCH_TOKENS)
                {
                    tokens += lens[order[end]];
                    end += 1;
                }
                let pass = &order[start..end];
                let batch = Ragged::new(&self.config, pass.iter().map(|&i| (i, &seqs[i])))?;
                let rows = self.forward(&batch, &mut scratch)?;
                for (r, &i) in pass.iter().enumerate() {
                    out[i * dim..(i + 1) * dim].copy_from_slice(&rows[r * dim..(r + 1) * dim]);
                }
                start = end;
            }
            Ok(())
        })();
        if let Ok(mut pool) = self.scratch.lock() {
            pool.push(scratch);
        }
        result.map(|()| out)
    }
}

/// One sequence of a token batch, borrowed.
pub(crate) struct SeqRef<'a> {
    ids: &'a [u32],
    /// Token types; all 0 when absent.
    types: Option<&'a [u8]>,
    mask: &'a [u8],
}

/// Builds [`Weights`] from a lookup of f32 tensors and a maker of linear
/// layers (f32, quantized, or read from a model file).
fn assemble(
    config: &EncoderConfig,
    get: &Lookup<'_>,
    linear: &dyn Fn(&str, usize, usize) -> Result<Linear>,
) -> Result<Weights> {
    let (h, f) = (config.hidden_size, config.intermediate_size);
    let norm = |name: &str| -> Result<Norm> {
        Ok(Norm {
            gamma: get(&format!("{name}.weight"), &[h])?,
            beta: get(&format!("{name}.bias"), &[h])?,
        })
    };
    let mut layers = Vec::with_capacity(config.num_layers);
    for i in 0..config.num_layers {
        let p = format!("encoder.layer.{i}");
        layers.push(Layer {
            query: linear(&format!("{p}.attention.self.query"), h, h)?,
            key: linear(&format!("{p}.attention.self.key"), h, h)?,
            value: linear(&format!("{p}.attention.self.value"), h, h)?,
            attn_out: linear(&format!("{p}.attention.output.dense"), h, h)?,
            attn_norm: norm(&format!("{p}.attention.output.LayerNorm"))?,
            up: linear(&format!("{p}.intermediate.dense"), f, h)?,
            down: linear(&format!("{p}.output.dense"), h, f)?,
            ffn_norm: norm(&format!("{p}.output.LayerNorm"))?,
        });
    }
    Ok(Weights {
        word: get("embeddings.word_embeddings.weight", &[config.vocab_size, h])?,
        position: get(
            "embeddings.position_embeddings.weight",
            &[config.max_position_embeddings, h],
        )?,
        token_type: get("embeddings.token_type_embeddings.weight", &[config.type_vocab_size, h])?,
        emb_norm: norm("embeddings.LayerNorm")?,
        layers,
        final_norm: match config.norm {
            NormPlacement::Pre => Some(norm("encoder.final_norm")?),
            NormPlacement::Post => None,
        },
        projection: match config.projection_dim {
            Some(d) => Some(linear("projection", d, h)?),
            None => None,
        },
    })
}
