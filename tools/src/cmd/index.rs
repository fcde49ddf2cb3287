//! `edgecl index build`: vectors (and their ids and texts), or a BEIR
//! corpus embedded with a model, into one index container that `edgecl
//! search` maps and searches in place.
//!
//! The work is the runtime's [`IndexBuilder`]: this command reads or
//! embeds the vectors, turns `--modes` into [`IndexOptions`], and adds
//! sections of its own: `doc.meta`, a JSON object `{"text": ...}` per
//! document when the input carried texts, so search results can show a
//! snippet; and, with `--model`, the model's digest (`model.hash`, see
//! [`crate::model`]) with an `index.model` table naming its algorithm and
//! source, so a search with another model is refused. The build runs as
//! one call, so its progress is a spinner with the elapsed time.

use std::path::PathBuf;
use std::time::Instant;

use edgecl_runtime::container::{names, ContainerBuilder};
use edgecl_runtime::hnsw::HnswConfig;
use edgecl_runtime::index::{IndexBuilder, IndexOptions};
use edgecl_trainer::data::beir::open_corpus;
use edgecl_trainer::data::ReadOptions;

use super::quantize::{default_pq_m, percentile_calibration};
use super::CmdResult;
use crate::error::{CliError, Context};
use crate::model::{self, hex};
use crate::output::out;
use crate::progress::Progress;
use crate::vectors;

const EXAMPLES: &str = "Examples:
  edgecl index build --vectors emb.npy --ids ids.txt --out corpus.ecl
  edgecl index build --vectors emb.jsonl --out corpus.ecl --modes exact,int8,binary,hnsw
  edgecl index build --vectors emb.npy --out corpus.ecl --modes exact,pq4 --pq-m 96
  edgecl index build --corpus scifact/corpus.jsonl --model models/minilm --out scifact.ecl";

#[derive(clap::Subcommand)]
pub enum Command {
    /// Build an index container from vectors.
    Build(BuildArgs),
}

#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
#[command(group = clap::ArgGroup::new("input").required(true).args(["vectors", "corpus"]))]
pub struct BuildArgs {
    /// Document vectors: .npy (f32, [n, d]) or .jsonl lines {"id", "vector",
    /// "text"?}.
    #[arg(long, value_name = "FILE")]
    vectors: Option<PathBuf>,
    /// Document ids, one per line, in the order of the vectors (default: the
    /// JSONL ids, or row numbers for .npy).
    #[arg(long, value_name = "FILE", requires = "vectors")]
    ids: Option<PathBuf>,
    /// BEIR corpus.jsonl to embed with --model (title and text joined).
    #[arg(long, value_name = "FILE", requires = "model")]
    corpus: Option<PathBuf>,
    /// The model that made (or, with --corpus, makes) the vectors; its
    /// digest is stored so searches with another model are refused.
    #[arg(long, value_name = "MODEL")]
    model: Option<PathBuf>,
    /// --corpus: run a folder model's linear layers in int8.
    #[arg(long, requires = "corpus")]
    int8: bool,
    /// --corpus: texts per forward pass.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    batch: u32,
    /// Output index file.
    #[arg(long, value_name = "INDEX")]
    out: PathBuf,
    /// What to store, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "exact,int8,binary")]
    modes: Vec<StoreMode>,
    /// HNSW: links per node (layer 0 keeps twice as many).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(2..=256))]
    hnsw_m: u32,
    /// HNSW: candidates kept while linking a new node.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    ef_construction: u32,
    /// int8: take each dimension's range from the P-th percentile and its
    /// mirror (100 - P) instead of the minimum and maximum; P in (50, 100].
    #[arg(long, value_name = "P")]
    int8_percentile: Option<f32>,
    /// pq4/pq8: number of sub-quantizers (must divide the dimension; at most
    /// 256) [default: sub-vectors of 2 values for pq4, 4 for pq8].
    #[arg(long, value_name = "M")]
    pq_m: Option<usize>,
}

/// A part of the index, as typed in `--modes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum StoreMode {
    Exact,
    Int8,
    Binary,
    Hnsw,
    Pq4,
    Pq8,
}

pub fn run(cmd: &Command, quiet: bool) -> CmdResult {
    match cmd {
        Command::Build(args) => build(args, quiet),
    }
}

fn build(args: &BuildArgs, quiet: bool) -> CmdResult {
    let has = |m| args.modes.contains(&m);
    if has(StoreMode::Hnsw) && !has(StoreMode::Exact) {
        return Err(CliError::usage("--modes", "hnsw searches the f32 vectors: add exact"));
    }
    if args.int8_percentile.is_some() && !has(StoreMode::Int8) {
        return Err(CliError::usage("--int8-percentile", "applies only when --modes has int8"));
    }
    if args.pq_m.is_some() && !has(StoreMode::Pq4) && !has(StoreMode::Pq8) {
        return Err(CliError::usage("--pq-m", "applies only when --modes has pq4 or pq8"));
    }

    // Vectors from a file, or a corpus embedded now.
    let model = match &args.model {
        Some(path) => Some(model::load(path, args.int8, "--model")?),
        None => None,
    };
    let (v, source) = match (&args.vectors, &args.corpus, &model) {
        (Some(path), _, _) => {
            let mut v = vectors::read(path, "--vectors")?;
            if let Some(ids) = &args.ids {
                v.ids = vectors::read_ids(ids, v.len())?;
            }
            (v, path)
        }
        (None, Some(path), Some(m)) => {
            let docs = open_corpus(path, ReadOptions::STRICT)?.collect_loaded()?.data;
            if docs.is_empty() {
                return Err(CliError::runtime(path.display(), "holds no documents"));
            }
            let texts: Vec<String> =
                docs.iter().map(|d| format!("{} {}", d.title, d.text).trim().to_string()).collect();
            let t = Instant::now();
            let data = m.embed_all(&texts, args.batch as usize, "documents", quiet)?;
            let secs = t.elapsed().as_secs_f64();
            out!(
                "embedded {} documents in {secs:.1} s ({:.1} documents/s)",
                texts.len(),
                texts.len() as f64 / secs.max(1e-9)
            );
            let ids = docs.into_iter().map(|d| d.id).collect();
            (vectors::Vectors { ids, texts, dim: m.dim(), data }, path)
        }
        _ => return Err(CliError::usage("--corpus", "needs --model to embed the documents")),
    };
    let digest = match &model {
        Some(m) if m.dim() != v.dim => {
            return Err(CliError::runtime(
                source.display(),
                format!(
                    "vectors have dimension {}, the model {} makes {}",
                    v.dim,
                    m.path.display(),
                    m.dim()
                ),
            ))
        }
        Some(m) => Some(m.digest()?),
        None => None,
    };
    // Sub-quantizers per PQ mode: --pq-m, or the mode's default.
    let pq_m = |mode: StoreMode, min_dsub: usize| -> CmdResult<Option<usize>> {
        if !has(mode) {
            return Ok(None);
        }
        match args.pq_m {
            Some(m) if m == 0 || m > 256 || !v.dim.is_multiple_of(m) => Err(CliError::usage(
                "--pq-m",
                format!("{m} must divide the dimension {} and be at most 256", v.dim),
            )),
            Some(m) => Ok(Some(m)),
            None => default_pq_m(v.dim, min_dsub).map(Some).ok_or_else(|| {
                CliError::usage("--pq-m", format!("no default for dimension {}; give one", v.dim))
            }),
        }
    };
    let (pq4, pq8) = (pq_m(StoreMode::Pq4, 2)?, pq_m(StoreMode::Pq8, 4)?);
    let options = IndexOptions {
        f32: has(StoreMode::Exact),
        int8: has(StoreMode::Int8),
        binary: has(StoreMode::Binary),
        pq4,
        pq8,
        hnsw: has(StoreMode::Hnsw).then(|| HnswConfig {
            m: args.hnsw_m as usize,
            ef_construction: args.ef_construction as usize,
            ..HnswConfig::default()
        }),
        int8_calibration: percentile_calibration(args.int8_percentile, "--int8-percentile")?,
        model_hash: digest,
        ..IndexOptions::default()
    };

    // The build itself: quantizers, codes, graph.
    let start = Instant::now();
    let spinner = Progress::spinner(&format!("indexing {} documents", v.len()), quiet);
    let (n, dim) = (v.len(), v.dim);
    let builder = IndexBuilder::build(v.ids, &v.data, dim, &options).at(source.display())?;
    spinner.finish();

    // Sections: the index's, then the texts when there are any.
    let stamp = model.as_ref().zip(digest.as_ref());
    write_index(&builder, &v.texts, stamp, &args.out)?;
    let out = args.out.display();

    let bytes = std::fs::metadata(&args.out).map(|m| m.len()).unwrap_or(0);
    let modes: Vec<String> = args.modes.iter().map(|m| format!("{m:?}").to_lowercase()).collect();
    out!(
        "indexed {n} documents of dimension {dim} ({}) in {:.2} s (build and write): {out}, \
         {bytes} bytes",
        modes.join(", "),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Writes an index file atomically: the builder's sections, the document
/// texts as metadata when there are any (search shows them as snippets),
/// and, for an index built from text, the model's digest and path in an
/// `index.model` table.
pub fn write_index(
    builder: &IndexBuilder,
    texts: &[String],
    model: Option<(&model::Model, &[u8; 32])>,
    path: &std::path::Path,
) -> CmdResult {
    let out = path.display();
    let mut b = ContainerBuilder::new();
    builder.add_to(&mut b).at(&out)?;
    let metas: Vec<String> =
        texts.iter().map(|t| serde_json::json!({ "text": t }).to_string()).collect();
    if !metas.is_empty() {
        b.add_strings(names::DOC_META, &metas).at(&out)?;
    }
    if let Some((m, d)) = model {
        let table = [
            ("digest", format!("sha256:{}", hex(d))),
            ("digest_of", "the model's files (edgecl model file, or folder files)".to_string()),
            ("model", m.path.display().to_string()),
            ("dim", m.dim().to_string()),
        ];
        b.add_key_values("index.model", table).at(&out)?;
    }
    b.write_atomic(path).at(&out)
}
