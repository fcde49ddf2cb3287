//! `edgecl inspect FILE`: a container's sections with their dtypes, shapes,
//! offsets and checksums, its key/value tables, and what an index holds.

use std::path::PathBuf;

use edgecl_runtime::container::{Checksums, KeyValues};
use edgecl_runtime::index::Index;

use super::{open_container, CmdResult};
use crate::output::out;

#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  edgecl inspect corpus.ecl\n  edgecl inspect --verify model.ecl"
)]
pub struct Args {
    /// The container file (an index or a model).
    file: PathBuf,
    /// Verify every payload checksum, not only the header's.
    #[arg(long)]
    verify: bool,
}

pub fn run(args: &Args) -> CmdResult {
    let mode = if args.verify { Checksums::All } else { Checksums::HeaderOnly };
    let mapped = open_container(&args.file, mode)?;
    let c = mapped.container();
    out!("{}: {} bytes, {} sections", args.file.display(), c.bytes().len(), c.len());
    out!(
        "checksums: header verified{}",
        if args.verify { ", every payload verified" } else { " (payloads: pass --verify)" }
    );
    out!();
    out!(
        "{:<28} {:<6} {:<18} {:>12} {:>12}  checksum",
        "section",
        "dtype",
        "shape",
        "offset",
        "bytes"
    );
    for s in c.sections() {
        let shape = format!("{:?}", s.shape);
        out!(
            "{:<28} {:<6} {:<18} {:>12} {:>12}  {:016x}",
            s.name,
            s.dtype.name(),
            shape,
            s.offset,
            s.len,
            s.checksum
        );
    }

    // Key/value tables are string tables whose name ends in a known suffix;
    // show the conventional ones that are present.
    for table in ["meta", "build.params", "hnsw.params", "model.config"] {
        if let Ok(kv) = KeyValues::load(&c, table) {
            out!();
            out!("[{table}]");
            for (k, v) in kv.iter() {
                out!("  {k} = {v}");
            }
        }
    }

    if let Ok(index) = Index::open(&c) {
        out!();
        let modes: Vec<&str> = index.modes().iter().map(|m| m.name()).collect();
        out!(
            "index: {} documents, dimension {}, search modes: {}",
            index.len(),
            index.dim(),
            modes.join(", ")
        );
        if let Some(h) = index.model_hash() {
            let hex: String = h.iter().map(|b| format!("{b:02x}")).collect();
            out!("model hash: {hex}");
        }
    }
    Ok(())
}
