//! Helpers shared by the command tests: running the built binary, making
//! vectors and files, and checking the one-line error contract.

#![allow(dead_code)] // each test file uses a different subset

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The built `edgecl` binary, with stdin closed (never a terminal).
pub fn edgecl() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_edgecl"));
    c.stdin(Stdio::null());
    c
}

/// What a run printed and how it ended.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `edgecl` with `args`.
pub fn run(args: &[&str]) -> Run {
    let mut c = edgecl();
    c.args(args);
    output(c)
}

/// Runs a prepared command.
pub fn output(mut c: Command) -> Run {
    let Output { status, stdout, stderr } = c.output().expect("the binary runs");
    Run {
        code: status.code(),
        stdout: String::from_utf8(stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(stderr).expect("utf-8 stderr"),
    }
}

impl Run {
    /// Asserts success and returns stdout.
    pub fn ok(self) -> String {
        assert_eq!(self.code, Some(0), "stderr: {}\nstdout: {}", self.stderr, self.stdout);
        self.stdout
    }

    /// Asserts failure with `code`, one `edgecl: error:` line that
    /// contains every piece of `needles`, and returns that line.
    pub fn fails(self, code: i32, needles: &[&str]) -> String {
        assert_eq!(self.code, Some(code), "stderr: {}\nstdout: {}", self.stderr, self.stdout);
        let err = self.stderr.trim_end();
        assert_eq!(err.lines().count(), 1, "not one line: {err}");
        assert!(err.starts_with("edgecl: error: "), "{err}");
        for n in needles {
            assert!(err.contains(n), "missing {n:?} in: {err}");
        }
        assert!(!err.contains("panicked"), "{err}");
        err.to_string()
    }

    pub fn json(self) -> serde_json::Value {
        let out = self.ok();
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
    }
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary directory")
}

/// `n` unit vectors of dimension `dim` from a fixed seed (xorshift, summed
/// uniforms for a rough Gaussian).
pub fn unit_vectors(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut out = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let row: Vec<f64> = (0..dim).map(|_| (0..4).map(|_| next()).sum::<f64>() - 2.0).collect();
        let norm = row.iter().map(|x| x * x).sum::<f64>().sqrt();
        out.extend(row.iter().map(|x| (x / norm) as f32));
    }
    out
}

/// Writes `{"id", "vector", "text"?}` lines.
pub fn write_jsonl(path: &Path, ids: &[String], data: &[f32], dim: usize, texts: bool) {
    let mut s = String::new();
    for (i, (id, row)) in ids.iter().zip(data.chunks_exact(dim)).enumerate() {
        let mut o = serde_json::json!({ "id": id, "vector": row });
        if texts {
            o["text"] = serde_json::Value::String(format!("text of document {i}"));
        }
        s.push_str(&o.to_string());
        s.push('\n');
    }
    std::fs::write(path, s).unwrap();
}

/// Writes a version 1.0 `.npy` of little-endian f32, NumPy's layout.
pub fn write_npy(path: &Path, data: &[f32], rows: usize, cols: usize) {
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    let mut header = dict.into_bytes();
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(b' ');
    }
    header.push(b'\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(&header);
    for v in data {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(path, bytes).unwrap();
}

/// Reads a `.npy` written by the program: (rows, cols, data).
pub fn read_npy(path: &Path) -> (usize, usize, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..6], b"\x93NUMPY");
    let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + hlen]).unwrap();
    let shape = &header[header.find("'shape': (").unwrap() + 10..];
    let shape = &shape[..shape.find(')').unwrap()];
    let dims: Vec<usize> = shape
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    let data: Vec<f32> = bytes[10 + hlen..]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    (dims[0], dims[1], data)
}

pub fn ids(n: usize, prefix: &str) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

/// `dir/name` as a string argument.
pub fn p(dir: &Path, name: &str) -> String {
    dir.join(name).to_str().expect("utf-8 temp path").to_string()
}
