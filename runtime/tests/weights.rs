//! safetensors save / load / map, typed errors naming the file, and a
//! round trip through Python's `safetensors` when it is installed
//! (`EDGECL_PYTHON` picks the interpreter, default `python3`).

use std::path::{Path, PathBuf};
use std::process::Command;

use edgecl_runtime::{init, weights, Error, ParamSet, Tensor};

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("edgecl-weights-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn sample() -> Vec<(String, Tensor)> {
    vec![
        ("layer.w".into(), init::normal(&[3, 5], 1.0, 1, 0).unwrap()),
        ("layer.b".into(), init::normal(&[5], 1.0, 1, 1).unwrap()),
        ("q.codes".into(), Tensor::from_i8(&[2, 3], vec![-128, -1, 0, 1, 2, 127]).unwrap()),
        ("mask".into(), Tensor::from_u8(&[4], vec![0, 1, 255, 7]).unwrap()),
    ]
}

fn same(a: &Tensor, b: &Tensor) -> bool {
    a.dims() == b.dims()
        && a.dtype() == b.dtype()
        && match a.dtype() {
            edgecl_runtime::DType::F32 => a.as_f32().unwrap() == b.as_f32().unwrap(),
            edgecl_runtime::DType::I8 => a.as_i8().unwrap() == b.as_i8().unwrap(),
            edgecl_runtime::DType::U8 => a.as_u8().unwrap() == b.as_u8().unwrap(),
        }
}

fn save_sample(path: &Path) -> Vec<(String, Tensor)> {
    let s = sample();
    let list: Vec<(&str, &Tensor)> = s.iter().map(|(n, t)| (n.as_str(), t)).collect();
    weights::save(path, &list, None).unwrap();
    s
}

#[test]
fn save_load_and_map_round_trip() {
    let path = tmp("round.safetensors");
    let s = save_sample(&path);
    let loaded = weights::load(&path).unwrap();
    let mapped = weights::map(&path).unwrap();
    for (name, t) in &s {
        let l = &loaded.iter().find(|(n, _)| n == name).unwrap().1;
        assert!(same(t, l), "{name} after load");
        let m = mapped.get(name).unwrap();
        assert!(m.is_mapped(), "{name} should borrow the map");
        assert!(same(t, &m), "{name} after map");
    }
    // A transposed view is saved in row-major order of the view.
    let t = init::normal(&[2, 3], 1.0, 2, 0).unwrap();
    let tt = t.transpose(0, 1).unwrap();
    weights::save(&path, &[("tt", &tt)], None).unwrap();
    let back = weights::load(&path).unwrap();
    assert_eq!(back[0].1.as_f32().unwrap(), &tt.to_vec_f32().unwrap()[..]);
}

#[test]
fn params_round_trip_and_mismatches() {
    let path = tmp("params.safetensors");
    let mut ps = ParamSet::new();
    ps.add("a", init::normal(&[4, 2], 1.0, 3, 0).unwrap(), true).unwrap();
    ps.add("b", init::normal(&[2], 1.0, 3, 1).unwrap(), false).unwrap();
    weights::save_params(&path, &ps, None).unwrap();

    let mut fresh = ParamSet::new();
    fresh.add("a", Tensor::zeros(&[4, 2]).unwrap(), true).unwrap();
    fresh.add("b", Tensor::zeros(&[2]).unwrap(), false).unwrap();
    weights::load_params(&path, &mut fresh).unwrap();
    for (p, q) in ps.iter().zip(fresh.iter()) {
        assert_eq!(p.value().as_f32().unwrap(), q.value().as_f32().unwrap());
    }

    let mut wrong = ParamSet::new();
    wrong.add("a", Tensor::zeros(&[2, 4]).unwrap(), true).unwrap();
    let e = weights::load_params(&path, &mut wrong).unwrap_err();
    assert!(e.to_string().contains("params.safetensors") && e.to_string().contains("\"a\""), "{e}");
    let mut missing = ParamSet::new();
    missing.add("c", Tensor::zeros(&[1]).unwrap(), true).unwrap();
    let e = weights::load_params(&path, &mut missing).unwrap_err();
    assert!(e.to_string().contains("missing parameter \"c\""), "{e}");
}

#[test]
fn bad_files_are_typed_errors_naming_the_file() {
    let path = tmp("bad.safetensors");
    save_sample(&path);
    let bytes = std::fs::read(&path).unwrap();

    // Truncated data section.
    std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
    for e in [weights::load(&path).unwrap_err(), weights::map(&path).err().unwrap()] {
        assert!(matches!(e, Error::SafeTensors { .. }), "{e}");
        assert!(e.to_string().contains("bad.safetensors"), "{e}");
    }
    // Garbage and empty files.
    std::fs::write(&path, b"not a safetensors file at all").unwrap();
    assert!(matches!(weights::load(&path), Err(Error::SafeTensors { .. })));
    std::fs::write(&path, b"").unwrap();
    assert!(matches!(weights::map(&path), Err(Error::SafeTensors { .. })));
    // A dtype the runtime does not store.
    let header = br#"{"x":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}}"#;
    let mut f = (header.len() as u64).to_le_bytes().to_vec();
    f.extend_from_slice(header);
    f.extend_from_slice(&[0u8; 8]);
    std::fs::write(&path, &f).unwrap();
    let e = weights::load(&path).unwrap_err();
    assert!(e.to_string().contains("unsupported dtype") && e.to_string().contains("\"x\""), "{e}");
    // A missing file is an I/O error naming it.
    let e = weights::load(&tmp("nope.safetensors")).unwrap_err();
    assert!(matches!(e, Error::Io { .. }) && e.to_string().contains("nope.safetensors"), "{e}");
}

#[test]
fn python_round_trip() {
    let python = std::env::var("EDGECL_PYTHON").unwrap_or_else(|_| "python3".into());
    let probe = Command::new(&python).args(["-c", "import safetensors, numpy"]).output();
    match probe {
        Ok(o) if o.status.success() => {}
        _ => {
            println!(
                "skipped: `{python} -c 'import safetensors, numpy'` failed (set EDGECL_PYTHON)"
            );
            return;
        }
    }
    let ours = tmp("to_python.safetensors");
    let theirs = tmp("from_python.safetensors");
    let s = save_sample(&ours);
    // Python checks our bytes, then writes 2x + 1 of every float tensor and
    // the int tensors negated / inverted.
    let script = r#"
import sys, numpy as np
from safetensors.numpy import load_file, save_file
d = load_file(sys.argv[1])
assert d["layer.w"].dtype == np.float32 and d["layer.w"].shape == (3, 5)
assert d["q.codes"].dtype == np.int8 and d["q.codes"].tolist() == [[-128, -1, 0], [1, 2, 127]]
assert d["mask"].dtype == np.uint8 and d["mask"].tolist() == [0, 1, 255, 7]
out = {
    "layer.w": d["layer.w"] * 2 + 1,
    "layer.b": d["layer.b"] * 2 + 1,
    "q.codes": (-(d["q.codes"].astype(np.int16))).clip(-128, 127).astype(np.int8),
    "mask": 255 - d["mask"],
}
save_file(out, sys.argv[2], metadata={"from": "python"})
"#;
    let o = Command::new(&python).args(["-c", script]).arg(&ours).arg(&theirs).output().unwrap();
    assert!(o.status.success(), "python failed: {}", String::from_utf8_lossy(&o.stderr));

    let back = weights::map(&theirs).unwrap();
    assert_eq!(back.metadata().get("from").map(String::as_str), Some("python"));
    for (name, t) in &s {
        let b = back.get(name).unwrap();
        assert_eq!(b.dims(), t.dims(), "{name}");
        match name.as_str() {
            "layer.w" | "layer.b" => {
                let want: Vec<f32> = t.as_f32().unwrap().iter().map(|x| x * 2.0 + 1.0).collect();
                assert_eq!(b.as_f32().unwrap(), &want[..], "{name}");
            }
            "q.codes" => assert_eq!(b.as_i8().unwrap(), &[127, 1, 0, -1, -2, -127]),
            _ => assert_eq!(b.as_u8().unwrap(), &[255, 254, 0, 248]),
        }
    }
}

#[test]
fn mapped_params_serve_inference_and_refuse_updates() {
    use edgecl_runtime::optim::{Optimizer, Sgd};
    use edgecl_runtime::{Graph, Runtime};
    let path = tmp("infer.safetensors");
    let w = init::normal(&[3, 2], 1.0, 8, 0).unwrap();
    weights::save(&path, &[("w", &w)], None).unwrap();
    let mapped = weights::map(&path).unwrap();
    let ps = weights::params_from_mapped(&mapped).unwrap();
    assert!(ps.get(ps.id("w").unwrap()).value().is_mapped(), "registration must not copy");

    let mut g = Graph::new(Runtime::new(1).unwrap(), 0);
    g.set_params(ps);
    g.set_grad_enabled(false);
    let x = g.input_slice(&[1, 3], &[1.0, 2.0, 3.0]).unwrap();
    let wv = g.param_named("w").unwrap();
    let y = g.matmul(x, wv).unwrap();
    let wd = w.as_f32().unwrap();
    let got = g.value(y).unwrap().as_f32().unwrap().to_vec();
    for (j, gj) in got.iter().enumerate() {
        let want = wd[j] + 2.0 * wd[2 + j] + 3.0 * wd[4 + j];
        assert!((gj - want).abs() < 1e-5);
    }
    // Read-only weights cannot be stepped: a typed error, not a crash.
    let mut opt = Sgd::new(g.params(), 0.0, 0.0);
    let e = opt.step_graph(&mut g, 0.1).unwrap_err();
    assert!(matches!(e, Error::NotWritable { .. }), "{e}");
}
