//! Named tensor sets in safetensors files: save, load, and map read-only.
//!
//! Parsing and validation of the header (length cap, offsets contiguous
//! from zero, the data section exactly covered) are the `safetensors`
//! crate's; this module turns its views into [`Tensor`]s and its errors
//! into [`Error::SafeTensors`] naming the file. [`map`] keeps the file
//! mapped and hands out tensors that borrow it, so opening a model for
//! inference copies no weights; [`load`] reads the file into owned tensors
//! for training. Writes go to a temporary file in the same directory, are
//! fsynced, then renamed over the target.
//!
//! Supported dtypes are F32, I8 and U8 (what [`Tensor`] stores); others are
//! a typed error naming the tensor. The files are little-endian by
//! definition, and so are the targets this runtime serves; a big-endian
//! host gets an error rather than byte-swapped copies. An f32 tensor whose
//! offset in a file is not 4-byte aligned (only possible in files written
//! by other tools that mix dtypes) is copied out of the map.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;

use crate::error::{Error, Result};
use crate::params::ParamSet;
use crate::tensor::{DType, Tensor};

fn st_err(path: &Path, reason: impl ToString) -> Error {
    Error::SafeTensors { path: path.to_path_buf(), reason: reason.to_string() }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_path_buf(), source }
}

fn check_endian(path: &Path) -> Result<()> {
    if cfg!(target_endian = "big") {
        return Err(st_err(path, "big-endian hosts are not supported"));
    }
    Ok(())
}

fn dtype_of(path: &Path, name: &str, d: Dtype) -> Result<DType> {
    match d {
        Dtype::F32 => Ok(DType::F32),
        Dtype::I8 => Ok(DType::I8),
        Dtype::U8 => Ok(DType::U8),
        other => Err(st_err(path, format!("tensor {name:?} has unsupported dtype {other:?}"))),
    }
}

/// The raw little-endian bytes of a contiguous tensor.
fn bytes_of(t: &Tensor) -> Result<&[u8]> {
    Ok(match t.dtype() {
        DType::F32 => bytemuck::cast_slice(t.as_f32()?),
        DType::I8 => bytemuck::cast_slice(t.as_i8()?),
        DType::U8 => t.as_u8()?,
    })
}

/// Saves named tensors (any layout; non-contiguous ones are copied) with
/// optional string metadata.
pub fn save(
    path: &Path,
    tensors: &[(&str, &Tensor)],
    metadata: Option<HashMap<String, String>>,
) -> Result<()> {
    check_endian(path)?;
    let owned: Vec<(&str, Tensor)> =
        tensors.iter().map(|(n, t)| Ok((*n, t.contiguous()?))).collect::<Result<_>>()?;
    let mut views = Vec::with_capacity(owned.len());
    for (name, t) in &owned {
        let dt = match t.dtype() {
            DType::F32 => Dtype::F32,
            DType::I8 => Dtype::I8,
            DType::U8 => Dtype::U8,
        };
        let view =
            TensorView::new(dt, t.dims().to_vec(), bytes_of(t)?).map_err(|e| st_err(path, e))?;
        views.push((name.to_string(), view));
    }
    let bytes = safetensors::serialize(views, &metadata).map_err(|e| st_err(path, e))?;
    write_atomic(path, &bytes)
}

/// Writes `bytes` to a sibling temp file, fsyncs it and renames it over
/// `path`.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = PathBuf::from(path);
    let mut fname = path.file_name().map(|f| f.to_os_string()).unwrap_or_default();
    fname.push(".tmp");
    tmp.set_file_name(fname);
    let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
    f.write_all(bytes).map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io_err(path))
}

/// Saves every parameter under its name.
pub fn save_params(
    path: &Path,
    params: &ParamSet,
    metadata: Option<HashMap<String, String>>,
) -> Result<()> {
    let list: Vec<(&str, &Tensor)> = params.iter().map(|p| (p.name(), p.value())).collect();
    save(path, &list, metadata)
}

/// Reads a file into owned tensors, in file order of names (sorted).
pub fn load(path: &Path) -> Result<Vec<(String, Tensor)>> {
    check_endian(path)?;
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| st_err(path, e))?;
    let mut out = Vec::with_capacity(st.len());
    let mut names: Vec<&String> = st.names();
    names.sort();
    for name in names {
        let v = st.tensor(name).map_err(|e| st_err(path, e))?;
        let t = match dtype_of(path, name, v.dtype())? {
            DType::F32 => {
                let data =
                    v.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]));
                Tensor::from_vec(v.shape(), data.collect())?
            }
            DType::I8 => Tensor::from_i8(v.shape(), v.data().iter().map(|&b| b as i8).collect())?,
            DType::U8 => Tensor::from_u8(v.shape(), v.data().to_vec())?,
        };
        out.push((name.clone(), t));
    }
    Ok(out)
}

/// A safetensors file mapped read-only, with tensors that borrow the map.
pub struct MappedWeights {
    path: PathBuf,
    tensors: Vec<(String, Tensor)>,
    metadata: HashMap<String, String>,
}

impl MappedWeights {
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// The tensors, sorted by name.
    pub fn tensors(&self) -> &[(String, Tensor)] {
        &self.tensors
    }
    /// A tensor by name (a cheap clone sharing the map).
    pub fn get(&self, name: &str) -> Result<Tensor> {
        self.tensors
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .map(|i| self.tensors[i].1.clone())
            .map_err(|_| st_err(&self.path, format!("no tensor named {name:?}")))
    }
    pub fn metadata(&self) -> &HashMap<String, String> {
        &self.metadata
    }
}

/// Maps a file read-only and validates it; no tensor data is copied.
pub fn map(path: &Path) -> Result<MappedWeights> {
    check_endian(path)?;
    let file = File::open(path).map_err(io_err(path))?;
    // SAFETY: the map is read-only and private to this process; the file
    // could still be truncated or rewritten by another process while
    // mapped, which is the usual caveat of mapping model files and is
    // documented for callers (replace files by rename, never in place).
    let map = Arc::new(unsafe { Mmap::map(&file) }.map_err(io_err(path))?);
    let (header_len, meta) = SafeTensors::read_metadata(&map).map_err(|e| st_err(path, e))?;
    // Validate the whole file (offsets, coverage) through the parser too.
    SafeTensors::deserialize(&map).map_err(|e| st_err(path, e))?;
    let base = 8 + header_len;
    let mut tensors = Vec::new();
    for (name, info) in meta.tensors() {
        let dt = dtype_of(path, &name, info.dtype)?;
        let start = base + info.data_offsets.0;
        let aligned = dt != DType::F32 || (map.as_ptr() as usize + start).is_multiple_of(4);
        let t = if aligned {
            Tensor::from_mapped(map.clone(), start, &info.shape, dt)
                .map_err(|e| st_err(path, format!("tensor {name:?}: {e}")))?
        } else {
            // Misaligned f32: copy this one tensor out.
            let b = &map[start..base + info.data_offsets.1];
            let v =
                b.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            Tensor::from_vec(&info.shape, v)?
        };
        tensors.push((name, t));
    }
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let metadata = meta.metadata().clone().unwrap_or_default();
    Ok(MappedWeights { path: path.to_path_buf(), tensors, metadata })
}

/// Sets every parameter of `params` from the file's tensor of the same
/// name and shape; a missing name or a different shape is an error.
/// Extra tensors in the file are ignored.
pub fn load_params(path: &Path, params: &mut ParamSet) -> Result<()> {
    let loaded: HashMap<String, Tensor> = load(path)?.into_iter().collect();
    let ids: Vec<_> = params.iter().map(|p| p.name().to_string()).collect();
    for name in ids {
        let t =
            loaded.get(&name).ok_or_else(|| st_err(path, format!("missing parameter {name:?}")))?;
        let id = params.id(&name)?;
        params
            .set_value(id, t.clone())
            .map_err(|e| st_err(path, format!("parameter {name:?}: {e}")))?;
    }
    Ok(())
}
