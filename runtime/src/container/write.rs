//! Writing containers: a builder that lays sections out as the format
//! requires, and [`atomic_write`], which replaces a file so that a crash or
//! error at any point leaves either the previous file or the new one, never
//! a mixture.
//!
//! The builder borrows payloads where it can (`add`), so writing a large
//! index does not copy it; checksums are computed while writing. The whole
//! layout (header length, every offset) is known before the first byte is
//! written, so the file is produced in one forward pass.

use std::borrow::Cow;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::xxh64::xxh64;
use super::{
    align_up, ContainerError, Dtype, Element, CHECKSUM_SEED, FORMAT_VERSION, MAGIC, MAX_HEADER_LEN,
    MAX_NAME_LEN, MAX_RANK, MAX_SECTIONS, PREAMBLE_LEN,
};

type Result<T> = std::result::Result<T, ContainerError>;

struct Pending<'a> {
    name: String,
    dtype: Dtype,
    shape: Vec<u64>,
    data: Cow<'a, [u8]>,
}

/// Collects sections, then writes them as one container.
#[derive(Default)]
pub struct ContainerBuilder<'a> {
    sections: Vec<Pending<'a>>,
}

/// A heap buffer whose start is 64-byte aligned, for holding a whole
/// container in memory (typed views need the buffer aligned, as a mapping
/// is).
#[derive(Clone, Debug, Default)]
pub struct AlignedBytes {
    blocks: Vec<Block>,
    len: usize,
}

#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C, align(64))]
struct Block([u8; 64]);

impl AlignedBytes {
    /// A zero-filled aligned buffer of `len` bytes.
    pub fn zeroed(len: usize) -> Self {
        AlignedBytes { blocks: vec![Block([0; 64]); len.div_ceil(64)], len }
    }

    /// An aligned copy of `bytes`.
    pub fn from_slice(bytes: &[u8]) -> Self {
        let mut a = Self::zeroed(bytes.len());
        a.as_mut_slice().copy_from_slice(bytes);
        a
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &bytemuck::cast_slice::<Block, u8>(&self.blocks)[..self.len]
    }

    /// The bytes, mutably.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut bytemuck::cast_slice_mut::<Block, u8>(&mut self.blocks)[..self.len]
    }
}

impl std::ops::Deref for AlignedBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl<'a> ContainerBuilder<'a> {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds section `name` holding `data` (borrowed, not copied) with the
    /// given shape; `data.len()` must equal the product of `shape`.
    pub fn add<T: Element>(
        &mut self,
        name: &str,
        shape: &[u64],
        data: &'a [T],
    ) -> Result<&mut Self> {
        self.add_raw(name, T::DTYPE, shape, Cow::Borrowed(bytemuck::cast_slice(data)))
    }

    /// Like [`ContainerBuilder::add`] but takes ownership of the data.
    pub fn add_owned<T: Element>(
        &mut self,
        name: &str,
        shape: &[u64],
        data: Vec<T>,
    ) -> Result<&mut Self> {
        let bytes: Vec<u8> = bytemuck::cast_slice(&data).to_vec();
        self.add_raw(name, T::DTYPE, shape, Cow::Owned(bytes))
    }

    /// Adds a section from raw little-endian bytes of the given dtype
    /// (e.g. f16 bit patterns).
    pub fn add_raw(
        &mut self,
        name: &str,
        dtype: Dtype,
        shape: &[u64],
        data: Cow<'a, [u8]>,
    ) -> Result<&mut Self> {
        let index = self.sections.len() as u64;
        if name.is_empty() {
            return Err(ContainerError::InvalidName { index, reason: "is empty" });
        }
        if name.len() as u64 > MAX_NAME_LEN {
            return Err(ContainerError::InvalidName { index, reason: "is longer than 256 bytes" });
        }
        if self.sections.iter().any(|s| s.name == name) {
            return Err(ContainerError::DuplicateName { section: name.to_owned() });
        }
        if index + 1 > MAX_SECTIONS {
            return Err(ContainerError::TooManySections { count: index + 1, max: MAX_SECTIONS });
        }
        if shape.len() as u64 > MAX_RANK {
            return Err(ContainerError::RankTooLarge {
                section: name.to_owned(),
                rank: shape.len() as u64,
                max: MAX_RANK,
            });
        }
        let expected = shape
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d))
            .and_then(|n| n.checked_mul(dtype.size()))
            .ok_or_else(|| ContainerError::ShapeOverflow { section: name.to_owned() })?;
        if expected != data.len() as u64 {
            return Err(ContainerError::LengthMismatch {
                section: name.to_owned(),
                expected,
                found: data.len() as u64,
            });
        }
        self.sections.push(Pending { name: name.to_owned(), dtype, shape: shape.to_vec(), data });
        Ok(self)
    }

    /// Names of the sections added so far, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.sections.iter().map(|s| s.name.as_str())
    }

    // Header length and each section's offset.
    fn layout(&self) -> Result<(u64, Vec<u64>)> {
        let header_len = 8 + self
            .sections
            .iter()
            .map(|s| 8 + 8 * s.shape.len() as u64 + 24 + s.name.len() as u64)
            .sum::<u64>();
        if header_len > MAX_HEADER_LEN {
            return Err(ContainerError::HeaderTooLarge { len: header_len, max: MAX_HEADER_LEN });
        }
        let mut end = PREAMBLE_LEN as u64 + header_len;
        let mut offsets = Vec::with_capacity(self.sections.len());
        for s in &self.sections {
            let off = align_up(end)
                .ok_or_else(|| ContainerError::ShapeOverflow { section: s.name.clone() })?;
            offsets.push(off);
            end = off
                .checked_add(s.data.len() as u64)
                .ok_or_else(|| ContainerError::ShapeOverflow { section: s.name.clone() })?;
        }
        Ok((header_len, offsets))
    }

    /// Total size of the file [`ContainerBuilder::write_to`] produces.
    pub fn file_len(&self) -> Result<u64> {
        let (header_len, offsets) = self.layout()?;
        Ok(match (offsets.last(), self.sections.last()) {
            (Some(off), Some(s)) => off + s.data.len() as u64,
            _ => PREAMBLE_LEN as u64 + header_len,
        })
    }

    /// Writes the container to `w` in one forward pass.
    pub fn write_to(&self, w: &mut dyn Write) -> io::Result<()> {
        let (header_len, offsets) = self.layout().map_err(io::Error::other)?;

        // Header: count, reserved, then one entry per section.
        let mut header = Vec::with_capacity(header_len as usize);
        header.extend_from_slice(&(self.sections.len() as u32).to_le_bytes());
        header.extend_from_slice(&0u32.to_le_bytes());
        for (s, &off) in self.sections.iter().zip(&offsets) {
            header.extend_from_slice(&(s.name.len() as u16).to_le_bytes());
            header.push(s.dtype as u8);
            header.push(s.shape.len() as u8);
            header.extend_from_slice(&0u32.to_le_bytes());
            for d in &s.shape {
                header.extend_from_slice(&d.to_le_bytes());
            }
            header.extend_from_slice(&off.to_le_bytes());
            header.extend_from_slice(&(s.data.len() as u64).to_le_bytes());
            header.extend_from_slice(&xxh64(&s.data, CHECKSUM_SEED).to_le_bytes());
            header.extend_from_slice(s.name.as_bytes());
        }
        debug_assert_eq!(header.len() as u64, header_len);

        // Preamble.
        w.write_all(&MAGIC)?;
        w.write_all(&FORMAT_VERSION.to_le_bytes())?;
        w.write_all(&0u32.to_le_bytes())?;
        w.write_all(&header_len.to_le_bytes())?;
        w.write_all(&xxh64(&header, CHECKSUM_SEED).to_le_bytes())?;
        w.write_all(&header)?;

        // Payloads, each preceded by zero padding up to its offset.
        let mut pos = PREAMBLE_LEN as u64 + header_len;
        let zeros = [0u8; 64];
        for (s, &off) in self.sections.iter().zip(&offsets) {
            w.write_all(&zeros[..(off - pos) as usize])?;
            w.write_all(&s.data)?;
            pos = off + s.data.len() as u64;
        }
        Ok(())
    }

    /// The container as an aligned in-memory buffer.
    pub fn to_bytes(&self) -> Result<AlignedBytes> {
        let mut v = Vec::with_capacity(usize::try_from(self.file_len()?).unwrap_or(0));
        self.write_to(&mut v).map_err(|e| ContainerError::Io {
            path: PathBuf::from("<memory>"),
            op: "write",
            source: e,
        })?;
        Ok(AlignedBytes::from_slice(&v))
    }

    /// Writes the container to `path` atomically (see [`atomic_write`]).
    pub fn write_atomic(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        atomic_write(path, |w| {
            self.write_to(w).map_err(|e| ContainerError::Io {
                path: path.to_path_buf(),
                op: "write",
                source: e,
            })
        })
    }
}

/// Replaces `path` with what `write` produces, crash-safely: the bytes go
/// to a new temp file in the same directory, which is flushed and fsynced,
/// then renamed over `path`, and the directory is fsynced so the rename is
/// durable. If `write` or any step before the rename fails, the temp file
/// is removed and `path` is untouched.
pub fn atomic_write(path: &Path, write: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    let io = |p: &Path, op, source| ContainerError::Io { path: p.to_path_buf(), op, source };
    let file_name = path.file_name().ok_or_else(|| {
        io(path, "name", io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };

    // A fresh name per call: pid plus a process-wide counter.
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(".tmp-{}-{n}", std::process::id()));
    let tmp = dir.join(tmp_name);

    let result = (|| {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| io(&tmp, "create", e))?;
        let mut bw = BufWriter::with_capacity(1 << 20, file);
        write(&mut bw)?;
        let file = bw.into_inner().map_err(|e| io(&tmp, "write", e.into_error()))?;
        file.sync_all().map_err(|e| io(&tmp, "fsync", e))?;
        drop(file);
        fs::rename(&tmp, path).map_err(|e| io(path, "rename", e))
    })();
    if let Err(e) = result {
        // Best effort: the error that matters is the one being returned.
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }

    // Make the rename itself durable (directories can be fsynced on Unix).
    #[cfg(unix)]
    File::open(&dir).and_then(|d| d.sync_all()).map_err(|e| io(&dir, "fsync directory", e))?;
    Ok(())
}
