//! The container file: one format for indexes and models.
//!
//! A container is a 32-byte little-endian preamble (magic, format version,
//! flags, header length, header checksum), a header listing typed sections
//! (name, dtype, shape, offset, length, payload checksum), and the section
//! payloads, each starting on a 64-byte boundary of the file so a mapped
//! payload can be viewed in place as `&[f32]`, `&[i8]`, `&[u64]`, ... The
//! byte-level specification is `docs/FORMAT.md`; [`read`] checks every rule
//! it states before handing out any typed view.
//!
//! Why this shape: the reader follows the safetensors discipline (borrowed
//! bytes, capped header, checked arithmetic everywhere, payloads contiguous
//! and covering the file exactly), but the header is a packed binary table
//! rather than JSON, so parsing needs no dependency and no allocation sized
//! by a number read from the file. Payloads are aligned, not merely packed,
//! because indexes are searched straight from the mapping.
//!
//! Layout of this module: [`Container`] parses and views borrowed bytes;
//! [`MappedContainer`] maps a file (the one `unsafe` of the module, in
//! `mmap.rs`); [`ContainerBuilder`] writes a file atomically (temp file,
//! fsync, rename, directory fsync); [`strtab`] stores string tables and
//! key/value parameters; [`names`] lists the conventional section names.
//!
//! Left out: compression, in-place update (a container is rewritten
//! whole), and big-endian hosts (typed views assume a little-endian CPU;
//! on a big-endian one every typed view returns an error).

mod error;
mod mmap;
pub mod names;
mod read;
pub mod strtab;
mod write;
pub mod xxh64;

pub use error::ContainerError;
pub use mmap::{open, Checksums, MappedContainer};
pub use read::{Container, SectionInfo};
pub use strtab::{KeyValues, StringTable};
pub use write::{atomic_write, AlignedBytes, ContainerBuilder};

/// The eight magic bytes every container starts with.
pub const MAGIC: [u8; 8] = *b"EDGECLC\0";
/// The format version this reader understands and this writer produces.
pub const FORMAT_VERSION: u32 = 1;
/// Size of the fixed preamble in bytes.
pub const PREAMBLE_LEN: usize = 32;
/// Every payload starts at a file offset that is a multiple of this.
pub const ALIGN: u64 = 64;
/// Largest header a reader accepts, in bytes.
pub const MAX_HEADER_LEN: u64 = 16 << 20;
/// Largest number of sections a reader accepts.
pub const MAX_SECTIONS: u64 = 1 << 16;
/// Largest section name, in bytes of UTF-8.
pub const MAX_NAME_LEN: u64 = 256;
/// Largest number of dimensions of a section's shape.
pub const MAX_RANK: u64 = 8;
/// Seed of every XXH64 checksum in the file.
pub const CHECKSUM_SEED: u64 = 0;

/// Element type of a section; the discriminant is the byte stored in the
/// header. `F16` and `BF16` are stored as raw 16-bit patterns and viewed as
/// `u16`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Dtype {
    U8 = 1,
    I8 = 2,
    U16 = 3,
    I16 = 4,
    U32 = 5,
    I32 = 6,
    U64 = 7,
    I64 = 8,
    F16 = 9,
    BF16 = 10,
    F32 = 11,
    F64 = 12,
}

impl Dtype {
    /// Every dtype, in code order.
    pub const ALL: [Dtype; 12] = [
        Dtype::U8,
        Dtype::I8,
        Dtype::U16,
        Dtype::I16,
        Dtype::U32,
        Dtype::I32,
        Dtype::U64,
        Dtype::I64,
        Dtype::F16,
        Dtype::BF16,
        Dtype::F32,
        Dtype::F64,
    ];

    /// The dtype stored as `code`, if any.
    pub fn from_code(code: u8) -> Option<Dtype> {
        Dtype::ALL.into_iter().find(|d| *d as u8 == code)
    }

    /// Bytes per element.
    pub fn size(self) -> u64 {
        match self {
            Dtype::U8 | Dtype::I8 => 1,
            Dtype::U16 | Dtype::I16 | Dtype::F16 | Dtype::BF16 => 2,
            Dtype::U32 | Dtype::I32 | Dtype::F32 => 4,
            Dtype::U64 | Dtype::I64 | Dtype::F64 => 8,
        }
    }

    /// Lowercase name used in messages and docs.
    pub fn name(self) -> &'static str {
        match self {
            Dtype::U8 => "u8",
            Dtype::I8 => "i8",
            Dtype::U16 => "u16",
            Dtype::I16 => "i16",
            Dtype::U32 => "u32",
            Dtype::I32 => "i32",
            Dtype::U64 => "u64",
            Dtype::I64 => "i64",
            Dtype::F16 => "f16",
            Dtype::BF16 => "bf16",
            Dtype::F32 => "f32",
            Dtype::F64 => "f64",
        }
    }
}

impl std::fmt::Display for Dtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A Rust element type with a container dtype. Viewing a section as `T`
/// requires the stored dtype to be exactly `T::DTYPE`, except that `u16`
/// also views `f16` and `bf16` sections (their raw bit patterns).
pub trait Element: bytemuck::Pod {
    /// The dtype written for slices of this type.
    const DTYPE: Dtype;
    /// Whether a section stored as `d` may be viewed as this type.
    fn accepts(d: Dtype) -> bool {
        d == Self::DTYPE
    }
}

macro_rules! element {
    ($($t:ty => $d:ident),*) => {$(
        impl Element for $t {
            const DTYPE: Dtype = Dtype::$d;
        }
    )*};
}
element!(u8 => U8, i8 => I8, i16 => I16, u32 => U32, i32 => I32, u64 => U64, i64 => I64,
    f32 => F32, f64 => F64);

impl Element for u16 {
    const DTYPE: Dtype = Dtype::U16;
    fn accepts(d: Dtype) -> bool {
        matches!(d, Dtype::U16 | Dtype::F16 | Dtype::BF16)
    }
}

/// Rounds `x` up to the next multiple of [`ALIGN`], or `None` on overflow.
pub(crate) fn align_up(x: u64) -> Option<u64> {
    x.checked_add(ALIGN - 1).map(|v| v & !(ALIGN - 1))
}
