//! The `edgecl` program as a user runs it: exit codes and one-line errors.

use std::process::Command;

use edgecl_runtime::index::{IndexBuilder, IndexOptions};

fn edgecl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_edgecl"))
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("edgecl-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn cpu_reports_the_active_tier() {
    let out = edgecl().arg("cpu").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("active tier"), "{text}");

    let out = edgecl().arg("cpu").env("EDGECL_ISA", "sse9").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("EDGECL_ISA") && err.lines().count() == 1, "{err}");
}

#[test]
fn inspect_shows_sections_and_rejects_corruption() {
    let dir = temp_dir("inspect");
    let path = dir.join("small.ecl");
    let dim = 16;
    let v: Vec<f32> = (0..40 * dim).map(|i| ((i * 7919 % 97) as f32 - 48.0) / 50.0).collect();
    let ids: Vec<String> = (0..40).map(|i| format!("d{i}")).collect();
    IndexBuilder::build(ids, &v, dim, &IndexOptions::default()).unwrap().write(&path).unwrap();

    let out = edgecl().arg("inspect").arg(&path).arg("--verify").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    for want in
        ["vectors.f32", "vectors.i8", "vectors.bin", "40 documents", "every payload verified"]
    {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }

    // Flip one payload byte: the header still parses, --verify must fail.
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    let bad = dir.join("bad.ecl");
    std::fs::write(&bad, &bytes).unwrap();
    let out = edgecl().arg("inspect").arg(&bad).arg("--verify").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("checksum"), "{err}");

    // A truncated file is refused before any section is read.
    std::fs::write(&bad, &bytes[..bytes.len() / 2]).unwrap();
    let out = edgecl().arg("inspect").arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1));

    // A missing file names the path.
    let out = edgecl().arg("inspect").arg(dir.join("nope.ecl")).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8(out.stderr).unwrap().contains("nope.ecl"));
    std::fs::remove_dir_all(&dir).unwrap();
}
