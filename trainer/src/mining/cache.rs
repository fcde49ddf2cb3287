//! Mining once per (teacher, parameters, data): results written next to the
//! training file, keyed so that a re-run reads them back instead of mining.
//!
//! `train.jsonl` (or `.tsv`) is mined into `train.mined.jsonl`, in the
//! JSONL format [`crate::data::examples`] reads, and the key goes into the
//! sidecar `train.mined.jsonl.key`. The key is a 128-bit FNV-1a hash (two
//! 64-bit lanes with different offsets) of a format tag, the teacher's
//! identity, the parameters, the training file's size, modification time
//! and bytes, and the corpus ids and texts. FNV is not collision-resistant
//! against an adversary; it only has to tell honest inputs apart.
//!
//! Writes go to a temporary file in the same folder, are flushed to disk,
//! then renamed over the target. The old key is removed before the results
//! are replaced and the new key written after, so a crash in between leaves
//! no key and the next run mines again.

use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::{mine, Corpus, MiningParams, MiningReport, Result, Teacher};
use crate::data::examples::{load_examples, TrainingExample};
use crate::data::ReadOptions;
use crate::error::{IoResultExt, TrainerError};

/// Format tag hashed into every key; bump when the output changes meaning.
const KEY_VERSION: &str = "edgecl-mining-v1";

/// Two FNV-1a 64-bit lanes, the second with a different offset basis.
pub(crate) struct Fnv128([u64; 2]);

impl Fnv128 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    pub(crate) fn new() -> Self {
        Fnv128([0xcbf2_9ce4_8422_2325, 0x6c62_272e_07bb_0142])
    }

    pub(crate) fn write(&mut self, bytes: &[u8]) {
        for lane in &mut self.0 {
            for &b in bytes {
                *lane = (*lane ^ u64::from(b)).wrapping_mul(Self::PRIME);
            }
        }
    }

    // Length-prefixed, so that field boundaries cannot shift.
    pub(crate) fn field(&mut self, bytes: &[u8]) {
        self.write(&(bytes.len() as u64).to_le_bytes());
        self.write(bytes);
    }

    pub(crate) fn hex(&self) -> String {
        format!("{:016x}{:016x}", self.0[0], self.0[1])
    }
}

/// The cache key of mining `train` over `corpus` with `teacher_identity`
/// and `params`.
pub fn cache_key(
    train: &Path,
    corpus: &Corpus,
    teacher_identity: &str,
    params: &MiningParams,
) -> Result<String> {
    let mut h = Fnv128::new();
    h.field(KEY_VERSION.as_bytes());
    h.field(teacher_identity.as_bytes());
    h.field(params.fingerprint().as_bytes());

    // The training file: size, modification time, contents.
    let meta = fs::metadata(train).with_path(train)?;
    h.field(&meta.len().to_le_bytes());
    let mtime = meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
    h.field(&mtime.map_or(0, |d| d.as_nanos()).to_le_bytes());
    let mut file = File::open(train).with_path(train)?;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).with_path(train)?;
        if n == 0 {
            break;
        }
        h.write(&buf[..n]);
    }

    // The corpus, passage by passage.
    h.field(&(corpus.len() as u64).to_le_bytes());
    for (id, text) in corpus.ids().iter().zip(corpus.texts()) {
        h.field(id.as_bytes());
        h.field(text.as_bytes());
    }
    Ok(h.hex())
}

/// Where mining `train` writes: the mined JSONL and its key sidecar.
pub fn mined_paths(train: &Path) -> (PathBuf, PathBuf) {
    let stem = train.file_stem().map_or_else(|| "train".into(), |s| s.to_string_lossy());
    let out = train.with_file_name(format!("{stem}.mined.jsonl"));
    let key = train.with_file_name(format!("{stem}.mined.jsonl.key"));
    (out, key)
}

/// The result of [`mine_file`].
#[derive(Debug)]
pub struct MinedFile {
    /// The mined JSONL file.
    pub path: PathBuf,
    /// Its examples.
    pub examples: Vec<TrainingExample>,
    /// The mining report; `None` when the file was reused.
    pub report: Option<MiningReport>,
    /// The cache key.
    pub key: String,
}

/// Mines the examples of `train` (JSONL or TSV) and writes them next to it,
/// or reads back a previous result whose key matches.
pub fn mine_file(
    train: &Path,
    corpus: &Corpus,
    teacher: &dyn Teacher,
    params: &MiningParams,
) -> Result<MinedFile> {
    params.validate()?;
    let key = cache_key(train, corpus, &teacher.identity(), params)?;
    let (out, key_path) = mined_paths(train);

    // Reuse when the sidecar holds this key.
    if out.is_file() && fs::read_to_string(&key_path).is_ok_and(|k| k.trim() == key) {
        let examples = load_examples(&out, ReadOptions::STRICT)?.data;
        return Ok(MinedFile { path: out, examples, report: None, key });
    }

    let examples = load_examples(train, ReadOptions::STRICT)?.data;
    let mined = mine(&examples, corpus, teacher, params)?;
    match fs::remove_file(&key_path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(TrainerError::io(&key_path, e).into())
        }
        _ => {}
    }
    write_examples_atomic(&out, &mined.examples)?;
    write_atomic(&key_path, |w| writeln!(w, "{key}"))?;
    Ok(MinedFile { path: out, examples: mined.examples, report: Some(mined.report), key })
}

/// One example as a JSON object of the training-example format.
pub(crate) fn example_json(e: &TrainingExample) -> Value {
    let mut v = json!({ "query": e.query, "positive": e.positive, "negatives": e.negatives });
    if let Some(s) = &e.scores {
        v["scores"] = json!(s.iter().map(|&x| f64::from(x)).collect::<Vec<_>>());
    }
    v
}

/// Writes `examples` as JSONL to `path` through a temporary file, fsync
/// and rename.
pub fn write_examples_atomic(path: &Path, examples: &[TrainingExample]) -> Result<()> {
    write_atomic(path, |w| {
        for e in examples {
            serde_json::to_writer(&mut *w, &example_json(e))?;
            w.write_all(b"\n")?;
        }
        Ok(())
    })
}

/// Writes a file through `<path>.tmp.<pid>`: fill, flush, fsync, rename,
/// then fsync the folder so the rename itself is durable.
pub(crate) fn write_atomic(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<()> {
    let name = path.file_name().map_or_else(|| "out".into(), |s| s.to_string_lossy());
    let tmp = path.with_file_name(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| -> std::result::Result<(), TrainerError> {
        let mut w = BufWriter::new(File::create(&tmp).with_path(&tmp)?);
        fill(&mut w).with_path(&tmp)?;
        let file = w.into_inner().map_err(|e| TrainerError::io(&tmp, e.into_error()))?;
        file.sync_all().with_path(&tmp)?;
        fs::rename(&tmp, path).with_path(path)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // Directory fsync is best effort: some filesystems refuse it.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}
