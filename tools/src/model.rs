//! Loading an encoder for the text paths (`embed`, `index build --corpus`,
//! `search QUERY`, `eval --model`), embedding in batches with a progress
//! bar, and the model digest an index stores.
//!
//! `--model` names either a model file written by edgecl (a container,
//! opened by mapping) or a Hugging Face / sentence-transformers folder
//! (`config.json`, `model.safetensors`, `vocab.txt`, ...). `--int8` runs a
//! folder's linear layers in int8 (dynamic quantization); a model file
//! keeps the precision it was written with.
//!
//! The digest is SHA-256 over the model's files: a model file's bytes, or
//! for a folder each file the loader reads, in a fixed order, as name,
//! length and bytes. It identifies the files, not the function they
//! compute: the same weights saved as a folder and as a model file digest
//! differently, so an index built with one refuses queries embedded with
//! the other. Comparing the weights themselves would need the model to
//! expose them, which it does not.

use std::path::{Path, PathBuf};

use edgecl_runtime::infer::{InferenceModel, Precision};
use sha2::{Digest, Sha256};

use crate::error::{CliError, CmdResult, Context};
use crate::progress::Progress;

/// The files of a folder model that the loader reads, in digest order.
const FOLDER_FILES: [&str; 7] = [
    "config.json",
    "model.safetensors",
    "vocab.txt",
    "sentence_bert_config.json",
    "1_Pooling/config.json",
    "modules.json",
    "tokenizer_config.json",
];

/// An encoder and where it came from.
pub struct Model {
    pub inner: InferenceModel,
    pub path: PathBuf,
}

/// Loads `path` (a model file or a folder); `flag` names the option.
pub fn load(path: &Path, int8: bool, flag: &str) -> CmdResult<Model> {
    let precision = if int8 { Precision::Int8 } else { Precision::F32 };
    let inner = if path.is_dir() {
        InferenceModel::from_hf_dir(path, precision).map_err(|e| model_error(path, e))?
    } else if path.is_file() {
        let m = InferenceModel::open(path).map_err(|e| model_error(path, e))?;
        if int8 && m.precision() != Precision::Int8 {
            return Err(CliError::usage(
                "--int8",
                format!(
                    "{} holds an {} model; --int8 applies to Hugging Face folders",
                    path.display(),
                    m.precision()
                ),
            ));
        }
        m
    } else {
        return Err(CliError::runtime(
            format!("{flag} {}", path.display()),
            "no such file or folder",
        ));
    };
    Ok(Model { inner, path: path.to_path_buf() })
}

/// A model error, led by the model's path unless it already names a file.
fn model_error(path: &Path, e: edgecl_runtime::infer::InferError) -> CliError {
    let msg = e.to_string();
    if msg.contains(&*path.to_string_lossy()) {
        CliError { usage: false, msg }
    } else {
        CliError::runtime(path.display(), msg)
    }
}

impl Model {
    /// Output dimension.
    pub fn dim(&self) -> usize {
        self.inner.dim()
    }

    /// SHA-256 of the model's files (see the module doc).
    pub fn digest(&self) -> CmdResult<[u8; 32]> {
        let mut h = Sha256::new();
        if self.path.is_dir() {
            for name in FOLDER_FILES {
                let p = self.path.join(name);
                if p.is_file() {
                    let bytes = std::fs::read(&p).at(p.display())?;
                    h.update(name.as_bytes());
                    h.update((bytes.len() as u64).to_le_bytes());
                    h.update(&bytes);
                }
            }
        } else {
            h.update(std::fs::read(&self.path).at(self.path.display())?);
        }
        Ok(h.finalize().into())
    }

    /// Embeds `texts` in batches of `batch`, ticking a bar labelled `what`;
    /// returns `texts.len() x dim` values.
    pub fn embed_all(
        &self,
        texts: &[String],
        batch: usize,
        what: &str,
        quiet: bool,
    ) -> CmdResult<Vec<f32>> {
        let bar = Progress::new(texts.len() as u64, what, quiet);
        let mut out = Vec::with_capacity(texts.len() * self.dim());
        for chunk in texts.chunks(batch.max(1)) {
            let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
            let v = self.inner.embed(&refs).map_err(|e| model_error(&self.path, e))?;
            out.extend_from_slice(&v);
            bar.inc(chunk.len() as u64);
        }
        bar.finish();
        Ok(out)
    }
}

/// Lower-case hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Refuses a model whose digest differs from the one `stored` in an index.
pub fn check_digest(model: &Model, stored: Option<&[u8]>, index: &Path) -> CmdResult {
    let Some(stored) = stored else { return Ok(()) };
    let ours = model.digest()?;
    if stored != ours {
        return Err(CliError::runtime(
            format!("--model {}", model.path.display()),
            format!(
                "not the model {} was built with (digest {} there, {} here)",
                index.display(),
                &hex(stored)[..16],
                &hex(&ours)[..16]
            ),
        ));
    }
    Ok(())
}
