//! Writing output files whole or not at all.
//!
//! Every file the program writes (vectors, runs, JSONL) goes to a sibling
//! temporary file first, is synced, then renamed over the target, so an
//! interrupted run leaves either the old file or the new one, never half
//! of one. Containers use the runtime's own atomic writer.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{CliError, CmdResult, Context};

/// A temporary sibling of `path`, unique to this process.
fn temp_sibling(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".tmp{}", std::process::id()));
    path.with_file_name(name)
}

/// Writes `path` through `fill`, atomically (temp file, fsync, rename).
pub fn write_atomic(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> CmdResult {
    if path.as_os_str().is_empty() {
        return Err(CliError::usage("output", "empty path"));
    }
    let tmp = temp_sibling(path);
    let result = (|| -> std::io::Result<()> {
        let mut out = BufWriter::new(File::create(&tmp)?);
        fill(&mut out)?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.at(path.display())
}

/// Reads a whole file, naming it in the error.
pub fn read_to_string(path: &Path) -> CmdResult<String> {
    std::fs::read_to_string(path).at(path.display())
}
