//! NumPy `.npy` files of f32 matrices: the exchange format for vectors.
//!
//! A file is the magic `\x93NUMPY`, a version (1.0: u16 header length;
//! 2.0 and 3.0: u32), an ASCII dict literal such as
//! `{'descr': '<f4', 'fortran_order': False, 'shape': (1000, 384), }`
//! padded with spaces to a 64-byte boundary and ended by a newline, then
//! the raw values. Only little-endian f32 in C order is read or written
//! (what `np.save(path, x.astype('<f4'))` produces); a 1-D shape `(d,)` is
//! read as one row. Every error names the file and what was expected.
//!
//! Why not the `npyz` or `ndarray-npy` crates: they read every dtype and
//! layout into arrays this program would flatten straight away, and their
//! errors do not name the file; the subset needed here is sixty lines.
//! Left out: other dtypes (no conversion on read), Fortran order, memory
//! mapping (files are read whole; an embedding matrix fits in memory).

use std::path::Path;

use crate::error::{CliError, CmdResult, Context};
use crate::files::write_atomic;

const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// A row-major f32 matrix read from a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f32>,
}

/// Reads the f32 matrix of `path`.
pub fn read(path: &Path) -> CmdResult<Matrix> {
    let bytes = std::fs::read(path).at(path.display())?;
    parse(&bytes).map_err(|what| CliError::runtime(path.display(), what))
}

/// Parses the bytes of an `.npy` file; the error says what is wrong.
pub fn parse(bytes: &[u8]) -> Result<Matrix, String> {
    // Preamble: magic, version, header length.
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err("not an .npy file (no \\x93NUMPY magic)".into());
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let (header_len, start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10usize),
        2 | 3 => {
            let b = bytes.get(8..12).ok_or("truncated .npy preamble")?;
            (u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize, 12)
        }
        _ => return Err(format!(".npy version {major}.{minor} is not supported")),
    };
    let end = start.checked_add(header_len).ok_or("header length overflows")?;
    let header = bytes.get(start..end).ok_or("truncated .npy header")?;
    let header = std::str::from_utf8(header).map_err(|_| "header is not text")?;

    // The dict: descr, fortran_order, shape.
    let descr = dict_value(header, "descr")?;
    if descr != "'<f4'" {
        return Err(format!(
            "dtype {descr} is not supported (expected '<f4', little-endian float32)"
        ));
    }
    let fortran = dict_value(header, "fortran_order")?;
    if fortran != "False" {
        return Err("fortran_order is not False (only C order is read)".into());
    }
    let shape = parse_shape(dict_value(header, "shape")?)?;
    let (rows, cols) = match shape[..] {
        [d] => (1, d),
        [n, d] => (n, d),
        _ => return Err(format!("shape {shape:?} is not a matrix (expected 1 or 2 axes)")),
    };

    // Payload: exactly rows * cols values.
    let payload = &bytes[end..];
    let want = rows.checked_mul(cols).and_then(|v| v.checked_mul(4)).ok_or("shape overflows")?;
    if payload.len() != want {
        return Err(format!(
            "payload holds {} bytes, shape ({rows}, {cols}) of f32 needs {want}",
            payload.len()
        ));
    }
    let data = payload.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    Ok(Matrix { rows, cols, data: data.collect() })
}

/// The text of `key`'s value in a dict literal, trimmed (a tuple keeps its
/// parentheses, a string its quotes).
fn dict_value<'h>(header: &'h str, key: &str) -> Result<&'h str, String> {
    let missing = || format!("header has no {key:?} entry");
    let at = header
        .find(&format!("'{key}'"))
        .or_else(|| header.find(&format!("\"{key}\"")))
        .ok_or_else(missing)?;
    let rest = &header[at + key.len() + 2..];
    let rest = rest.trim_start().strip_prefix(':').ok_or_else(missing)?.trim_start();
    let len = if rest.starts_with('(') {
        rest.find(')').map(|i| i + 1)
    } else if let Some(q @ ('\'' | '"')) = rest.chars().next() {
        rest[1..].find(q).map(|i| i + 2)
    } else {
        rest.find([',', '}'])
    };
    let len = len.ok_or_else(|| format!("header entry {key:?} is not terminated"))?;
    Ok(rest[..len].trim())
}

/// `(1000, 384)`, `(384,)` or `()` as a list of sizes.
fn parse_shape(text: &str) -> Result<Vec<usize>, String> {
    let inner = text
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .ok_or_else(|| format!("shape {text} is not a tuple"))?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| format!("shape {text}: {s:?} is not a size")))
        .collect()
}

/// Writes `rows x cols` values of `data` to `path` as a version 1.0 file.
pub fn write(path: &Path, data: &[f32], rows: usize, cols: usize) -> CmdResult {
    if data.len() != rows * cols {
        return Err(CliError::runtime(
            path.display(),
            format!("{} values do not fill a {rows} x {cols} matrix", data.len()),
        ));
    }
    let bytes = encode(data, rows, cols);
    write_atomic(path, |w| w.write_all(&bytes))
}

/// The bytes of a version 1.0 file holding `data` as `rows x cols`.
pub fn encode(data: &[f32], rows: usize, cols: usize) -> Vec<u8> {
    // The header is padded with spaces so the payload starts on a 64-byte
    // boundary: 10 preamble bytes + dict + padding + '\n'.
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    let unpadded = 10 + dict.len() + 1;
    let header_len = unpadded.next_multiple_of(64) - 10;
    let mut out = Vec::with_capacity(10 + header_len + data.len() * 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header_len as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.resize(10 + header_len - 1, b' ');
    out.push(b'\n');
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_alignment() {
        let data: Vec<f32> = (0..15).map(|i| i as f32 * 0.5 - 3.0).collect();
        let bytes = encode(&data, 5, 3);
        let header_end = 10 + u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!(header_end % 64, 0);
        assert_eq!(bytes[header_end - 1], b'\n');
        assert_eq!(parse(&bytes).unwrap(), Matrix { rows: 5, cols: 3, data });
    }

    #[test]
    fn reads_numpy_style_headers() {
        // NumPy's own spacing, a 1-D shape, and version 2.0's u32 length.
        let mut v1 = b"\x93NUMPY\x01\x00".to_vec();
        let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n";
        v1.extend_from_slice(&(dict.len() as u16).to_le_bytes());
        v1.extend_from_slice(dict.as_bytes());
        v1.extend_from_slice(&1.5f32.to_le_bytes());
        v1.extend_from_slice(&(-2f32).to_le_bytes());
        assert_eq!(parse(&v1).unwrap(), Matrix { rows: 1, cols: 2, data: vec![1.5, -2.0] });

        let mut v2 = b"\x93NUMPY\x02\x00".to_vec();
        v2.extend_from_slice(&(dict.len() as u32).to_le_bytes());
        v2.extend_from_slice(dict.as_bytes());
        v2.extend_from_slice(&v1[10 + dict.len()..]);
        assert_eq!(parse(&v2).unwrap().data, vec![1.5, -2.0]);
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        let good = encode(&[1.0, 2.0], 1, 2);
        assert!(parse(b"PK\x03\x04").unwrap_err().contains("magic"));
        assert!(parse(&good[..good.len() - 1]).unwrap_err().contains("payload"));
        // Edits of the header text, same length so the payload stays put.
        let swap = |from: &str, to: &str| {
            let at = good.windows(from.len()).position(|w| w == from.as_bytes()).unwrap();
            let mut bad = good[..at].to_vec();
            bad.extend_from_slice(to.as_bytes());
            bad.extend_from_slice(&good[at + from.len()..]);
            parse(&bad).unwrap_err()
        };
        assert!(swap("<f4", "<f8").contains("dtype"));
        assert!(swap("False", "True ").contains("fortran"));
        assert!(swap("(1, 2)", "(1,2,1)").contains("not a matrix"));
        assert!(swap("(1, 2)", "(1, x)").contains("not a size"));
    }
}
