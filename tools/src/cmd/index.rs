//! `edgecl index build`: vectors (and their ids and texts) into one index
//! container that `edgecl search` maps and searches in place.
//!
//! The work is the runtime's [`IndexBuilder`]: this command reads the
//! vectors, turns `--modes` into [`IndexOptions`], and adds one section of
//! its own: `doc.meta`, a JSON object `{"text": ...}` per document when the
//! input carried texts, so search results can show a snippet. The build
//! runs as one call, so its progress is a spinner with the elapsed time.

use std::path::PathBuf;
use std::time::Instant;

use edgecl_runtime::container::{names, ContainerBuilder};
use edgecl_runtime::hnsw::HnswConfig;
use edgecl_runtime::index::{IndexBuilder, IndexOptions};

use super::quantize::default_pq_m;
use super::CmdResult;
use crate::error::{CliError, Context};
use crate::output::out;
use crate::progress::Progress;
use crate::vectors;

const EXAMPLES: &str = "Examples:
  edgecl index build --vectors emb.npy --ids ids.txt --out corpus.ecl
  edgecl index build --vectors emb.jsonl --out corpus.ecl --modes exact,int8,binary,hnsw
  edgecl index build --vectors emb.npy --out corpus.ecl --modes exact,pq4 --pq-m 96";

#[derive(clap::Subcommand)]
pub enum Command {
    /// Build an index container from vectors.
    Build(BuildArgs),
}

#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct BuildArgs {
    /// Document vectors: .npy (f32, [n, d]) or .jsonl lines {"id", "vector",
    /// "text"?}.
    #[arg(long, value_name = "FILE")]
    vectors: PathBuf,
    /// Document ids, one per line, in the order of the vectors (default: the
    /// JSONL ids, or row numbers for .npy).
    #[arg(long, value_name = "FILE")]
    ids: Option<PathBuf>,
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
    /// pq4: number of sub-quantizers (must divide the dimension; at most 256)
    /// [default: sub-vectors of 2 values].
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
    if args.pq_m.is_some() && !has(StoreMode::Pq4) {
        return Err(CliError::usage("--pq-m", "applies only when --modes has pq4"));
    }

    let mut v = vectors::read(&args.vectors, "--vectors")?;
    if let Some(path) = &args.ids {
        v.ids = vectors::read_ids(path, v.len())?;
    }
    let pq4 = if has(StoreMode::Pq4) {
        match args.pq_m {
            Some(m) if m == 0 || m > 256 || !v.dim.is_multiple_of(m) => {
                return Err(CliError::usage(
                    "--pq-m",
                    format!("{m} must divide the dimension {} and be at most 256", v.dim),
                ))
            }
            Some(m) => Some(m),
            None => Some(default_pq_m(v.dim, 2).ok_or_else(|| {
                CliError::usage("--pq-m", format!("no default for dimension {}; give one", v.dim))
            })?),
        }
    } else {
        None
    };
    let options = IndexOptions {
        f32: has(StoreMode::Exact),
        int8: has(StoreMode::Int8),
        binary: has(StoreMode::Binary),
        pq4,
        hnsw: has(StoreMode::Hnsw).then(|| HnswConfig {
            m: args.hnsw_m as usize,
            ef_construction: args.ef_construction as usize,
            ..HnswConfig::default()
        }),
        ..IndexOptions::default()
    };

    // The build itself: quantizers, codes, graph.
    let start = Instant::now();
    let spinner = Progress::spinner(&format!("indexing {} documents", v.len()), quiet);
    let (n, dim) = (v.len(), v.dim);
    let builder = IndexBuilder::build(v.ids, &v.data, dim, &options).at(args.vectors.display())?;
    spinner.finish();

    // Sections: the index's, then the texts when there are any.
    let out = args.out.display();
    let mut b = ContainerBuilder::new();
    builder.add_to(&mut b).at(&out)?;
    let metas: Vec<String> =
        v.texts.iter().map(|t| serde_json::json!({ "text": t }).to_string()).collect();
    if !metas.is_empty() {
        b.add_strings(names::DOC_META, &metas).at(&out)?;
    }
    b.write_atomic(&args.out).at(&out)?;

    let bytes = std::fs::metadata(&args.out).map(|m| m.len()).unwrap_or(0);
    let modes: Vec<String> = args.modes.iter().map(|m| format!("{m:?}").to_lowercase()).collect();
    out!(
        "indexed {n} documents of dimension {dim} ({}) in {:.2} s: {out}, {bytes} bytes",
        modes.join(", "),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
