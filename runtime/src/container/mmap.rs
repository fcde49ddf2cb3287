//! Opening a container file through a read-only memory map.
//!
//! This file holds the module's only `unsafe`: the call that maps the file.
//! Everything after it is the safe reader of `read.rs` over the mapped
//! bytes. The mapping is page-aligned, so the 64-byte payload alignment of
//! the format carries over to memory and every typed view is in place.

use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::read::{parse_index, Index};
use super::{Container, ContainerError};

/// A container file mapped read-only, validated at open.
#[derive(Debug)]
pub struct MappedContainer {
    path: PathBuf,
    map: Mmap,
    index: Index,
}

/// Which checksums [`open`] checks before returning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checksums {
    /// Only the header checksum (structure is always fully validated).
    HeaderOnly,
    /// The header and every payload (one pass over the whole file).
    All,
}

/// Maps `path` read-only and validates it (see [`Checksums`]).
pub fn open(
    path: impl AsRef<Path>,
    checksums: Checksums,
) -> Result<MappedContainer, ContainerError> {
    let path = path.as_ref().to_path_buf();
    let io = |op, source| ContainerError::Io { path: path.clone(), op, source };
    let file = File::open(&path).map_err(|e| io("open", e))?;
    // SAFETY: the mapping is read-only and `MappedContainer` hands out only
    // shared slices of it. Its one hazard is the file being truncated or
    // rewritten by another process while mapped, which would change the
    // bytes under those slices (or fault on access). The format's writers
    // never modify a file in place: they write a temp file and rename it
    // over the old path, which leaves this mapping's inode untouched. A
    // process that truncates the file behind our back is outside what this
    // reader can defend against; this is the documented contract of `open`.
    let map = unsafe { Mmap::map(&file) }.map_err(|e| io("mmap", e))?;
    let index = parse_index(&map)?;
    let mapped = MappedContainer { path, map, index };
    if checksums == Checksums::All {
        mapped.container().verify()?;
    }
    Ok(mapped)
}

impl MappedContainer {
    /// The validated container over the mapping (no re-parse).
    pub fn container(&self) -> Container<'_> {
        Container::from_parts(&self.map, &self.index)
    }

    /// The path the file was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
