//! The one error type of the container reader and writer.
//!
//! Every rule of `docs/FORMAT.md` that a file can break has its own variant,
//! naming the section (or header field) at fault, so a damaged or hostile
//! file is always a typed error, never a panic.

use std::fmt;
use std::path::PathBuf;

use super::Dtype;

/// What went wrong reading, validating, viewing or writing a container.
#[derive(Debug)]
#[non_exhaustive]
pub enum ContainerError {
    /// An operating-system call on `path` failed (`op` names it).
    Io { path: PathBuf, op: &'static str, source: std::io::Error },
    /// The file ends before the `what` it must contain.
    Truncated { what: &'static str, needed: u64, available: u64 },
    /// The first eight bytes are not the container magic.
    BadMagic { found: [u8; 8] },
    /// The format version is not one this reader understands.
    UnsupportedVersion { found: u32 },
    /// A field the format reserves (`field`) is not zero.
    ReservedNonZero { field: &'static str, found: u64 },
    /// The header length exceeds the reader's cap.
    HeaderTooLarge { len: u64, max: u64 },
    /// The header bytes do not hash to the checksum in the preamble.
    HeaderChecksum { stored: u64, computed: u64 },
    /// The header declares more sections than the reader's cap.
    TooManySections { count: u64, max: u64 },
    /// The section table ends before the declared header length.
    HeaderTrailingBytes { extra: u64 },
    /// Section entry `index` has a name that is empty, too long or not UTF-8.
    InvalidName { index: u64, reason: &'static str },
    /// Two sections share a name.
    DuplicateName { section: String },
    /// A section's dtype code is not one the format defines.
    UnknownDtype { section: String, code: u8 },
    /// A section's shape has more dimensions than the format allows.
    RankTooLarge { section: String, rank: u64, max: u64 },
    /// A section's element count or byte size overflows 64 bits.
    ShapeOverflow { section: String },
    /// A section's byte length differs from shape x dtype size.
    LengthMismatch { section: String, expected: u64, found: u64 },
    /// A section's payload does not start on a 64-byte boundary.
    Misaligned { section: String, offset: u64 },
    /// A section starts before the end of the one listed before it (or
    /// inside the header): sections overlap or are out of order.
    Overlap { section: String, offset: u64, previous_end: u64 },
    /// A section starts later than the first aligned offset after the one
    /// before it: payloads are not contiguous.
    Gap { section: String, offset: u64, expected: u64 },
    /// A section's payload runs past the end of the file.
    OutOfBounds { section: String, end: u64, file_len: u64 },
    /// An alignment padding byte at `offset` is not zero.
    NonZeroPadding { offset: u64 },
    /// The file is longer than its last section (or header).
    TrailingBytes { expected_len: u64, file_len: u64 },
    /// A section's payload does not hash to its stored checksum.
    ChecksumMismatch { section: String, stored: u64, computed: u64 },
    /// No section has this name.
    NotFound { section: String },
    /// A section was requested as a dtype other than the one stored.
    DtypeMismatch { section: String, stored: Dtype, requested: Dtype },
    /// The bytes given to the reader are not aligned enough for the
    /// requested element type (the reader checks, it never copies).
    ViewMisaligned { section: String, align: usize },
    /// Typed views need a little-endian CPU.
    BigEndianHost,
    /// A section is well-formed bytes but breaks the convention of its kind
    /// (string table, key/value table, quantizer or graph parameters).
    Invalid { section: String, reason: String },
}

impl fmt::Display for ContainerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ContainerError::*;
        match self {
            Io { path, op, source } => write!(f, "{op} {}: {source}", path.display()),
            Truncated { what, needed, available } => {
                write!(f, "truncated file: {what} needs {needed} bytes, {available} available")
            }
            BadMagic { found } => write!(f, "not a container: magic is {found:02x?}"),
            UnsupportedVersion { found } => write!(f, "unsupported container version {found}"),
            ReservedNonZero { field, found } => {
                write!(f, "reserved field {field} is {found:#x}, must be 0")
            }
            HeaderTooLarge { len, max } => {
                write!(f, "header length {len} exceeds the limit of {max} bytes")
            }
            HeaderChecksum { stored, computed } => {
                write!(f, "header checksum mismatch: stored {stored:#018x}, computed {computed:#018x}")
            }
            TooManySections { count, max } => {
                write!(f, "{count} sections exceed the limit of {max}")
            }
            HeaderTrailingBytes { extra } => {
                write!(f, "{extra} bytes after the last section entry in the header")
            }
            InvalidName { index, reason } => write!(f, "section entry {index}: name {reason}"),
            DuplicateName { section } => write!(f, "section {section:?} appears twice"),
            UnknownDtype { section, code } => {
                write!(f, "section {section:?}: unknown dtype code {code}")
            }
            RankTooLarge { section, rank, max } => {
                write!(f, "section {section:?}: rank {rank} exceeds the limit of {max}")
            }
            ShapeOverflow { section } => write!(f, "section {section:?}: shape size overflows"),
            LengthMismatch { section, expected, found } => write!(
                f,
                "section {section:?}: length {found} bytes, shape and dtype give {expected}"
            ),
            Misaligned { section, offset } => {
                write!(f, "section {section:?}: offset {offset} is not a multiple of 64")
            }
            Overlap { section, offset, previous_end } => write!(
                f,
                "section {section:?}: offset {offset} is before the previous end {previous_end}"
            ),
            Gap { section, offset, expected } => {
                write!(f, "section {section:?}: offset {offset}, contiguous layout needs {expected}")
            }
            OutOfBounds { section, end, file_len } => {
                write!(f, "section {section:?}: ends at {end}, past the file length {file_len}")
            }
            NonZeroPadding { offset } => write!(f, "padding byte at offset {offset} is not zero"),
            TrailingBytes { expected_len, file_len } => {
                write!(f, "file is {file_len} bytes, its sections end at {expected_len}")
            }
            ChecksumMismatch { section, stored, computed } => write!(
                f,
                "section {section:?}: checksum mismatch, stored {stored:#018x}, computed {computed:#018x}"
            ),
            NotFound { section } => write!(f, "no section named {section:?}"),
            DtypeMismatch { section, stored, requested } => {
                write!(f, "section {section:?} holds {stored}, requested as {requested}")
            }
            ViewMisaligned { section, align } => write!(
                f,
                "section {section:?}: buffer not aligned to {align} bytes for a typed view"
            ),
            BigEndianHost => write!(f, "typed container views need a little-endian CPU"),
            Invalid { section, reason } => write!(f, "section {section:?}: {reason}"),
        }
    }
}

impl std::error::Error for ContainerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ContainerError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl ContainerError {
    /// Shorthand for [`ContainerError::Invalid`].
    pub fn invalid(section: &str, reason: impl Into<String>) -> Self {
        ContainerError::Invalid { section: section.to_owned(), reason: reason.into() }
    }
}
