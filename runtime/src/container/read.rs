//! Parsing and validating a container held as borrowed bytes, and typed
//! zero-copy views of its sections.
//!
//! [`Container::parse`] checks every structural rule of `docs/FORMAT.md`
//! before returning: sizes with checked arithmetic, capped header and
//! section count, payloads aligned, ordered, contiguous and covering the
//! file exactly, zero padding, names UTF-8 and unique, lengths equal to
//! shape x dtype size. Payload checksums cost a pass over the data, so they
//! are checked by [`Container::verify`] (or [`Container::parse_verified`])
//! rather than on every parse. Nothing here allocates in proportion to a
//! number read from the file: the section table grows one parsed entry at
//! a time, and an entry needs at least 33 header bytes that are present.

use std::borrow::Cow;

use super::xxh64::xxh64;
use super::{
    align_up, ContainerError, Dtype, Element, ALIGN, CHECKSUM_SEED, FORMAT_VERSION, MAGIC,
    MAX_HEADER_LEN, MAX_NAME_LEN, MAX_RANK, MAX_SECTIONS, PREAMBLE_LEN,
};

type Result<T> = std::result::Result<T, ContainerError>;

/// One parsed section-table entry.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub(crate) name: String,
    pub(crate) dtype: Dtype,
    pub(crate) rank: u8,
    pub(crate) shape: [u64; MAX_RANK as usize],
    pub(crate) offset: u64,
    pub(crate) len: u64,
    pub(crate) checksum: u64,
}

/// The validated section table: entries in file order plus their indices
/// sorted by name for lookup.
#[derive(Clone, Debug)]
pub(crate) struct Index {
    pub(crate) entries: Vec<Entry>,
    pub(crate) by_name: Vec<u32>,
}

/// What the header says about one section.
#[derive(Clone, Copy, Debug)]
pub struct SectionInfo<'c> {
    /// Section name (UTF-8, unique in the file).
    pub name: &'c str,
    /// Element type.
    pub dtype: Dtype,
    /// Dimensions, outermost first; empty for a scalar.
    pub shape: &'c [u64],
    /// Absolute file offset of the payload (a multiple of 64).
    pub offset: u64,
    /// Payload length in bytes.
    pub len: u64,
    /// XXH64 (seed 0) of the payload.
    pub checksum: u64,
}

impl Entry {
    fn info(&self) -> SectionInfo<'_> {
        SectionInfo {
            name: &self.name,
            dtype: self.dtype,
            shape: &self.shape[..usize::from(self.rank)],
            offset: self.offset,
            len: self.len,
            checksum: self.checksum,
        }
    }
}

/// A validated container over borrowed bytes. Views borrow the bytes, so
/// they live as long as the buffer (or mapping), not as long as `self`.
#[derive(Clone, Debug)]
pub struct Container<'a> {
    bytes: &'a [u8],
    index: Cow<'a, Index>,
}

// Little-endian field readers over a slice already known to be long enough
// are avoided: every read goes through `Cursor`, which reports truncation.
struct Cursor<'h> {
    buf: &'h [u8],
    pos: usize,
}

impl<'h> Cursor<'h> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'h [u8]> {
        let end = self.pos.checked_add(n);
        match end.and_then(|e| self.buf.get(self.pos..e)) {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => Err(ContainerError::Truncated {
                what,
                needed: n as u64,
                available: (self.buf.len() - self.pos) as u64,
            }),
        }
    }
    fn u8(&mut self, what: &'static str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &'static str) -> Result<u16> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self, what: &'static str) -> Result<u32> {
        let mut w = [0u8; 4];
        w.copy_from_slice(self.take(4, what)?);
        Ok(u32::from_le_bytes(w))
    }
    fn u64(&mut self, what: &'static str) -> Result<u64> {
        let mut w = [0u8; 8];
        w.copy_from_slice(self.take(8, what)?);
        Ok(u64::from_le_bytes(w))
    }
}

/// Validates the preamble and header of `bytes` and returns the section
/// table. Payload checksums are not read.
pub(crate) fn parse_index(bytes: &[u8]) -> Result<Index> {
    let file_len = bytes.len() as u64;

    // Preamble: magic, version, flags, header length, header checksum.
    let pre = bytes.get(..PREAMBLE_LEN).ok_or(ContainerError::Truncated {
        what: "preamble",
        needed: PREAMBLE_LEN as u64,
        available: file_len,
    })?;
    let mut c = Cursor { buf: pre, pos: 0 };
    let mut magic = [0u8; 8];
    magic.copy_from_slice(c.take(8, "magic")?);
    if magic != MAGIC {
        return Err(ContainerError::BadMagic { found: magic });
    }
    let version = c.u32("version")?;
    if version != FORMAT_VERSION {
        return Err(ContainerError::UnsupportedVersion { found: version });
    }
    let flags = c.u32("flags")?;
    if flags != 0 {
        return Err(ContainerError::ReservedNonZero {
            field: "preamble.flags",
            found: flags.into(),
        });
    }
    let header_len = c.u64("header length")?;
    let stored_sum = c.u64("header checksum")?;

    // Header bytes: capped, present, and hashing to the stored checksum.
    if header_len > MAX_HEADER_LEN {
        return Err(ContainerError::HeaderTooLarge { len: header_len, max: MAX_HEADER_LEN });
    }
    // Cannot overflow: header_len <= 16 MiB.
    let header_end = PREAMBLE_LEN as u64 + header_len;
    let header = bytes.get(PREAMBLE_LEN..header_end as usize).ok_or(ContainerError::Truncated {
        what: "header",
        needed: header_len,
        available: file_len - PREAMBLE_LEN as u64,
    })?;
    let computed = xxh64(header, CHECKSUM_SEED);
    if computed != stored_sum {
        return Err(ContainerError::HeaderChecksum { stored: stored_sum, computed });
    }

    // Section count and the reserved word.
    let mut c = Cursor { buf: header, pos: 0 };
    let count = u64::from(c.u32("section count")?);
    let reserved = c.u32("header reserved word")?;
    if reserved != 0 {
        return Err(ContainerError::ReservedNonZero {
            field: "header.reserved",
            found: reserved.into(),
        });
    }
    if count > MAX_SECTIONS {
        return Err(ContainerError::TooManySections { count, max: MAX_SECTIONS });
    }

    // Entries, in file order. Growth is paid per entry actually parsed.
    let mut entries: Vec<Entry> = Vec::new();
    for index in 0..count {
        entries.push(parse_entry(&mut c, index)?);
    }
    if c.pos != header.len() {
        return Err(ContainerError::HeaderTrailingBytes { extra: (header.len() - c.pos) as u64 });
    }

    // Placement: each payload at the first 64-byte boundary after the
    // previous end, zero padding between, the file ending at the last end.
    let mut prev_end = header_end;
    for e in &entries {
        let name = || e.name.clone();
        if e.offset % ALIGN != 0 {
            return Err(ContainerError::Misaligned { section: name(), offset: e.offset });
        }
        if e.offset < prev_end {
            return Err(ContainerError::Overlap {
                section: name(),
                offset: e.offset,
                previous_end: prev_end,
            });
        }
        // Cannot overflow: prev_end <= file_len, a usize.
        let expected = align_up(prev_end).unwrap_or(u64::MAX);
        if e.offset > expected {
            return Err(ContainerError::Gap { section: name(), offset: e.offset, expected });
        }
        let end = e.offset.saturating_add(e.len);
        if end > file_len {
            return Err(ContainerError::OutOfBounds { section: name(), end, file_len });
        }
        check_padding(bytes, prev_end, e.offset)?;
        prev_end = end;
    }
    if prev_end != file_len {
        return Err(ContainerError::TrailingBytes { expected_len: prev_end, file_len });
    }

    // Unique names, and the lookup order.
    let mut by_name: Vec<u32> = (0..entries.len() as u32).collect();
    by_name.sort_unstable_by(|&a, &b| entries[a as usize].name.cmp(&entries[b as usize].name));
    for w in by_name.windows(2) {
        if entries[w[0] as usize].name == entries[w[1] as usize].name {
            return Err(ContainerError::DuplicateName {
                section: entries[w[0] as usize].name.clone(),
            });
        }
    }
    Ok(Index { entries, by_name })
}

// One section-table entry: name length, dtype, rank, reserved, shape,
// offset, length, checksum, name bytes.
fn parse_entry(c: &mut Cursor<'_>, index: u64) -> Result<Entry> {
    let name_len = u64::from(c.u16("section entry")?);
    let code = c.u8("section entry")?;
    let rank = c.u8("section entry")?;
    let reserved = c.u32("section entry")?;
    if u64::from(rank) > MAX_RANK {
        // The name is not read yet; report the entry by index.
        return Err(ContainerError::RankTooLarge {
            section: format!("#{index}"),
            rank: rank.into(),
            max: MAX_RANK,
        });
    }
    let mut shape = [0u64; MAX_RANK as usize];
    for d in shape.iter_mut().take(usize::from(rank)) {
        *d = c.u64("section shape")?;
    }
    let offset = c.u64("section offset")?;
    let len = c.u64("section length")?;
    let checksum = c.u64("section checksum")?;
    if name_len == 0 {
        return Err(ContainerError::InvalidName { index, reason: "is empty" });
    }
    if name_len > MAX_NAME_LEN {
        return Err(ContainerError::InvalidName { index, reason: "is longer than 256 bytes" });
    }
    let raw = c.take(name_len as usize, "section name")?;
    let name = std::str::from_utf8(raw)
        .map_err(|_| ContainerError::InvalidName { index, reason: "is not UTF-8" })?
        .to_owned();
    if reserved != 0 {
        return Err(ContainerError::ReservedNonZero {
            field: "section.reserved",
            found: reserved.into(),
        });
    }
    let dtype = Dtype::from_code(code)
        .ok_or_else(|| ContainerError::UnknownDtype { section: name.clone(), code })?;

    // Byte length = product(shape) * dtype size, in checked arithmetic.
    let expected = shape[..usize::from(rank)]
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .and_then(|n| n.checked_mul(dtype.size()))
        .ok_or_else(|| ContainerError::ShapeOverflow { section: name.clone() })?;
    if expected != len {
        return Err(ContainerError::LengthMismatch { section: name, expected, found: len });
    }
    Ok(Entry { name, dtype, rank, shape, offset, len, checksum })
}

fn check_padding(bytes: &[u8], from: u64, to: u64) -> Result<()> {
    // Both bounds are <= bytes.len() here, so the range get cannot fail.
    let pad = bytes.get(from as usize..to as usize).unwrap_or(&[]);
    match pad.iter().position(|&b| b != 0) {
        Some(i) => Err(ContainerError::NonZeroPadding { offset: from + i as u64 }),
        None => Ok(()),
    }
}

impl<'a> Container<'a> {
    /// Validates `bytes` as a container (structure and header checksum;
    /// payload checksums are left to [`Container::verify`]).
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        Ok(Container { bytes, index: Cow::Owned(parse_index(bytes)?) })
    }

    /// [`Container::parse`] followed by [`Container::verify`].
    pub fn parse_verified(bytes: &'a [u8]) -> Result<Self> {
        let c = Self::parse(bytes)?;
        c.verify()?;
        Ok(c)
    }

    pub(crate) fn from_parts(bytes: &'a [u8], index: &'a Index) -> Self {
        Container { bytes, index: Cow::Borrowed(index) }
    }

    /// The whole file.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Number of sections.
    pub fn len(&self) -> usize {
        self.index.entries.len()
    }

    /// Whether the container has no sections.
    pub fn is_empty(&self) -> bool {
        self.index.entries.is_empty()
    }

    /// Sections in file order.
    pub fn sections(&self) -> impl Iterator<Item = SectionInfo<'_>> {
        self.index.entries.iter().map(Entry::info)
    }

    fn entry(&self, name: &str) -> Option<&Entry> {
        let ix = &self.index;
        ix.by_name
            .binary_search_by(|&i| ix.entries[i as usize].name.as_str().cmp(name))
            .ok()
            .map(|p| &ix.entries[ix.by_name[p] as usize])
    }

    /// Whether a section named `name` exists.
    pub fn contains(&self, name: &str) -> bool {
        self.entry(name).is_some()
    }

    /// Header information of section `name`.
    pub fn info(&self, name: &str) -> Result<SectionInfo<'_>> {
        self.entry(name)
            .map(Entry::info)
            .ok_or_else(|| ContainerError::NotFound { section: name.to_owned() })
    }

    fn payload(&self, e: &Entry) -> Result<&'a [u8]> {
        // Validated at parse; the checked get keeps this panic-free anyway.
        let start = usize::try_from(e.offset).ok();
        let end = e.offset.checked_add(e.len).and_then(|t| usize::try_from(t).ok());
        let bytes = self.bytes;
        start.zip(end).and_then(|(s, t)| bytes.get(s..t)).ok_or_else(|| {
            ContainerError::OutOfBounds {
                section: e.name.clone(),
                end: e.offset.saturating_add(e.len),
                file_len: bytes.len() as u64,
            }
        })
    }

    /// The raw payload bytes of section `name`, whatever its dtype.
    pub fn section_bytes(&self, name: &str) -> Result<&'a [u8]> {
        let e = self
            .entry(name)
            .ok_or_else(|| ContainerError::NotFound { section: name.to_owned() })?;
        self.payload(e)
    }

    /// Section `name` viewed in place as `&[T]`. The stored dtype must be
    /// `T`'s (or f16/bf16 for `u16`), and the bytes given to the reader
    /// must be aligned for `T` (a mapping always is).
    pub fn section<T: Element>(&self, name: &str) -> Result<&'a [T]> {
        let e = self
            .entry(name)
            .ok_or_else(|| ContainerError::NotFound { section: name.to_owned() })?;
        if !T::accepts(e.dtype) {
            return Err(ContainerError::DtypeMismatch {
                section: name.to_owned(),
                stored: e.dtype,
                requested: T::DTYPE,
            });
        }
        if cfg!(target_endian = "big") {
            return Err(ContainerError::BigEndianHost);
        }
        let raw = self.payload(e)?;
        bytemuck::try_cast_slice(raw).map_err(|_| ContainerError::ViewMisaligned {
            section: name.to_owned(),
            align: std::mem::align_of::<T>(),
        })
    }

    /// Section `name` as a row-major matrix: `(data, rows, cols)`. The
    /// shape must have rank 2.
    pub fn matrix<T: Element>(&self, name: &str) -> Result<(&'a [T], usize, usize)> {
        let data = self.section::<T>(name)?;
        let info = self.info(name)?;
        match *info.shape {
            [r, c] => match (usize::try_from(r), usize::try_from(c)) {
                (Ok(r), Ok(c)) => Ok((data, r, c)),
                _ => Err(ContainerError::ShapeOverflow { section: name.to_owned() }),
            },
            _ => Err(ContainerError::invalid(
                name,
                format!("expected a rank-2 shape, found {:?}", info.shape),
            )),
        }
    }

    /// Checks the payload checksum of section `name`.
    pub fn verify_section(&self, name: &str) -> Result<()> {
        let e = self
            .entry(name)
            .ok_or_else(|| ContainerError::NotFound { section: name.to_owned() })?;
        self.verify_entry(e)
    }

    fn verify_entry(&self, e: &Entry) -> Result<()> {
        let computed = xxh64(self.payload(e)?, CHECKSUM_SEED);
        if computed != e.checksum {
            return Err(ContainerError::ChecksumMismatch {
                section: e.name.clone(),
                stored: e.checksum,
                computed,
            });
        }
        Ok(())
    }

    /// Checks every payload checksum, in file order; the first mismatch is
    /// the error.
    pub fn verify(&self) -> Result<()> {
        self.index.entries.iter().try_for_each(|e| self.verify_entry(e))
    }
}
