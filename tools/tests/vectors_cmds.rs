//! `edgecl quantize`, `index build` and `search` as a user runs them: each
//! command's output checked against the runtime on the same data, the
//! quantize -> index -> search round trip, and every error path giving one
//! line that names the file, line or flag, with exit code 1 or 2.

mod common;

use common::{ids, p, read_npy, run, tempdir, unit_vectors, write_jsonl, write_npy};
use edgecl_runtime::container::{self, names, Checksums, KeyValues, StringTable};
use edgecl_runtime::index::Index;
use edgecl_runtime::quant::{metrics, Int8Quantizer};

const N: usize = 300;
const DIM: usize = 48;

#[test]
fn quantize_reports_the_error_it_stored() {
    let dir = tempdir();
    let data = unit_vectors(N, DIM, 1);
    let vecs = p(dir.path(), "v.npy");
    write_npy(dir.path().join("v.npy").as_path(), &data, N, DIM);

    // int8: decode the stored codes with the stored parameters and measure
    // the error again; it must be the reported one.
    let out = p(dir.path(), "q.ecl");
    let r =
        run(&["quantize", "--vectors", &vecs, "--out", &out, "--mode", "int8", "--json"]).json();
    let mapped = container::open(&out, Checksums::All).unwrap();
    let c = mapped.container();
    let q = Int8Quantizer::load(&c, names::QUANT_I8).unwrap();
    let codes = c.section::<i8>(names::VECTORS_I8).unwrap();
    assert_eq!(codes.len(), N * DIM);
    let recon = q.dequantize_vec(codes).unwrap();
    let mse = metrics::mse(&data, &recon).unwrap();
    assert_eq!(r["mse"].as_f64().unwrap(), mse);
    assert_eq!(
        r["mean_cosine"].as_f64().unwrap(),
        metrics::mean_cosine(&data, &recon, DIM).unwrap()
    );
    assert_eq!(r["vectors"], N);
    assert_eq!(r["bytes_per_vector"], DIM);
    let meta = KeyValues::load(&c, names::META).unwrap();
    assert_eq!(meta.get("kind"), Some("quantized"));
    assert_eq!(StringTable::load(&c, names::DOC_IDS).unwrap().get(7), Some("7"));

    // Every mode: fewer bytes for coarser codes, and an error that grows
    // as the code shrinks (int8 < pq8 < pq4; binary is the coarsest).
    let mut cos = Vec::new();
    for (mode, bytes) in [("int8", DIM), ("pq8", DIM / 4), ("pq4", DIM / 2), ("binary", 8)] {
        let r =
            run(&["quantize", "--vectors", &vecs, "--out", &out, "--mode", mode, "--json"]).json();
        assert_eq!(r["bytes_per_vector"], bytes, "{mode}");
        let c = r["mean_cosine"].as_f64().unwrap();
        assert!(c > 0.5 && c < 1.0, "{mode}: {c}");
        cos.push(c);
    }
    assert!(cos[0] > cos[1] && cos[1] > cos[2] && cos[2] > cos[3], "{cos:?}");

    // inspect shows the stored error beside the sections.
    let shown = run(&["inspect", &out]).ok();
    assert!(shown.contains("[quant.error]") && shown.contains("mean_cosine"), "{shown}");

    // One global range fits the data less closely than one per dimension.
    let global = run(&[
        "quantize",
        "--vectors",
        &vecs,
        "--out",
        &out,
        "--mode",
        "int8",
        "--calibration",
        "global",
        "--json",
    ])
    .json();
    assert!(global["description"].as_str().unwrap().contains("global"));
    assert!(global["mse"].as_f64().unwrap() > mse, "{global}");

    // A percentile range clips the tails: the largest error grows beyond
    // the half step a min/max range guarantees.
    let minmax =
        run(&["quantize", "--vectors", &vecs, "--out", &out, "--mode", "int8", "--json"]).json();
    let clipped = run(&[
        "quantize",
        "--vectors",
        &vecs,
        "--out",
        &out,
        "--mode",
        "int8",
        "--percentile",
        "90",
        "--json",
    ])
    .json();
    assert!(clipped["description"].as_str().unwrap().contains("percentile 90"), "{clipped}");
    let (a, b) =
        (minmax["max_abs_error"].as_f64().unwrap(), clipped["max_abs_error"].as_f64().unwrap());
    assert!(b > 2.0 * a, "percentile 90 max error {b} vs min/max {a}");

    // The text report lists the same measures.
    let text =
        run(&["quantize", "--vectors", &vecs, "--out", &out, "--mode", "binary", "--center"]).ok();
    for want in ["mse", "max abs error", "mean cosine", "binary (sign bits, centred)"] {
        assert!(text.contains(want), "{want:?} in {text}");
    }
}

#[test]
fn quantize_index_search_round_trip_finds_the_stored_vector() {
    let dir = tempdir();
    let data = unit_vectors(N, DIM, 2);
    let doc_ids = ids(N, "doc-");
    let vecs = p(dir.path(), "docs.jsonl");
    write_jsonl(dir.path().join("docs.jsonl").as_path(), &doc_ids, &data, DIM, true);

    // Quantize to int8 and keep the decoded vectors: they are the queries.
    let decoded = p(dir.path(), "decoded.npy");
    let qout = p(dir.path(), "q.ecl");
    run(&["quantize", "--vectors", &vecs, "--out", &qout, "--mode", "int8", "--decoded", &decoded])
        .ok();
    let (rows, cols, queries) = read_npy(dir.path().join("decoded.npy").as_path());
    assert_eq!((rows, cols), (N, DIM));

    let index = p(dir.path(), "docs.ecl");
    let built = run(&[
        "index",
        "build",
        "--vectors",
        &vecs,
        "--out",
        &index,
        "--modes",
        "exact,int8,binary,hnsw,pq4,pq8",
    ])
    .ok();
    assert!(built.contains(&format!("indexed {N} documents")), "{built}");

    // In every mode, query i's best hit is document i (self-similarity ~1,
    // other random unit vectors in 48 dimensions stay far below).
    for (mode, rescore) in [
        ("exact", "none"),
        ("int8", "none"),
        ("binary", "f32"),
        ("hnsw", "none"),
        ("pq4", "int8"),
        ("pq8", "f32"),
    ] {
        let r = run(&[
            "search",
            "--index",
            &index,
            "--queries",
            &decoded,
            "--vector-file",
            "-k",
            "3",
            "--mode",
            mode,
            "--rescore",
            rescore,
            "--json",
        ])
        .json();
        assert_eq!(r["mode"], mode);
        let answers = r["queries"].as_array().unwrap();
        assert_eq!(answers.len(), N);
        for (i, a) in answers.iter().enumerate() {
            let hits = a["hits"].as_array().unwrap();
            assert_eq!(hits.len(), 3);
            assert_eq!(hits[0]["id"], doc_ids[i].as_str(), "{mode}, query {i}");
            assert_eq!(hits[0]["text"], format!("text of document {i}"));
            assert!(a["latency_ms"].as_f64().unwrap() >= 0.0);
        }
    }

    // The scores are the index's: the exact mode's top score is the dot
    // product of the decoded query with the stored vector.
    let r = run(&[
        "search",
        "--index",
        &index,
        "--queries",
        &decoded,
        "--vector-file",
        "-k",
        "1",
        "--mode",
        "exact",
        "--json",
    ])
    .json();
    let mapped = container::open(&index, Checksums::HeaderOnly).unwrap();
    let c = mapped.container();
    let idx = Index::open(&c).unwrap();
    assert_eq!(idx.modes().len(), 6);
    let q0 = &queries[..DIM];
    let params = edgecl_runtime::index::SearchParams {
        k: 1,
        mode: edgecl_runtime::index::SearchMode::Exact,
        ..Default::default()
    };
    let want = idx.search(q0, &params).unwrap()[0].score;
    assert_eq!(r["queries"][0]["hits"][0]["score"].as_f64().unwrap(), f64::from(want));

    // The table output shows ids, snippets and the latency summary.
    let text =
        run(&["search", "--index", &index, "--queries", &decoded, "--vector-file", "-k", "2"]).ok();
    assert!(text.contains("doc-0") && text.contains("text of document 0"), "{text}");
    assert!(text.contains("latency mean"), "{text}");
}

#[test]
fn index_build_stores_what_modes_ask() {
    let dir = tempdir();
    let data = unit_vectors(64, 16, 3);
    let vecs = p(dir.path(), "v.npy");
    write_npy(dir.path().join("v.npy").as_path(), &data, 64, 16);
    let idsf = dir.path().join("ids.txt");
    std::fs::write(&idsf, ids(64, "x").join("\n")).unwrap();
    let index = p(dir.path(), "i.ecl");
    run(&[
        "index",
        "build",
        "--vectors",
        &vecs,
        "--ids",
        idsf.to_str().unwrap(),
        "--out",
        &index,
        "--modes",
        "exact,hnsw",
        "--hnsw-m",
        "8",
        "--ef-construction",
        "40",
    ])
    .ok();
    let mapped = container::open(&index, Checksums::All).unwrap();
    let c = mapped.container();
    let idx = Index::open(&c).unwrap();
    let modes: Vec<&str> = idx.modes().iter().map(|m| m.name()).collect();
    assert_eq!(modes, ["exact", "hnsw"]);
    assert_eq!(idx.id(5), Some("x5"));
    let params = KeyValues::load(&c, names::BUILD_PARAMS).unwrap();
    assert_eq!(params.get("hnsw_m"), Some("8"));
    assert_eq!(params.get("hnsw_ef_construction"), Some("40"));
    // No texts in an .npy: no doc.meta section.
    assert!(!c.contains("doc.meta.offsets"));

    // A mode the index lacks is a usage error naming --mode.
    let q = p(dir.path(), "v.npy");
    run(&["search", "--index", &index, "--queries", &q, "--vector-file", "--mode", "binary"])
        .fails(2, &["--mode", "binary"]);
}

#[test]
fn vector_file_errors_name_the_file_and_line() {
    let dir = tempdir();
    let d = dir.path();
    let out = p(d, "o.ecl");
    let quantize =
        |input: &str| run(&["quantize", "--vectors", input, "--out", &out, "--mode", "int8"]);

    // Missing file.
    quantize(&p(d, "absent.npy")).fails(1, &["absent.npy"]);

    // Malformed JSON on line 3 (line 2 is blank and skipped).
    let bad = d.join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"id\": \"a\", \"vector\": [1, 2]}\n\n{\"id\": \"b\", \"vector\": [1,\n",
    )
    .unwrap();
    quantize(bad.to_str().unwrap()).fails(1, &["bad.jsonl:3", "invalid json"]);

    // Wrong dimension on line 2.
    std::fs::write(&bad, "{\"id\": \"a\", \"vector\": [1, 2]}\n{\"id\": \"b\", \"vector\": [1]}\n")
        .unwrap();
    quantize(bad.to_str().unwrap()).fails(1, &["bad.jsonl:2", "dimension 1, expected 2"]);

    // A value beyond f32, a missing vector, a duplicate id.
    std::fs::write(&bad, "{\"id\": \"a\", \"vector\": [1, 1e39]}\n").unwrap();
    quantize(bad.to_str().unwrap()).fails(1, &["bad.jsonl:1", "vector[1]", "finite"]);
    std::fs::write(&bad, "{\"id\": \"a\", \"vector\": [1, 2]}\n{\"id\": \"c\"}\n").unwrap();
    quantize(bad.to_str().unwrap()).fails(1, &["bad.jsonl:2", "\"vector\": missing"]);
    std::fs::write(&bad, "{\"id\": \"a\", \"vector\": [1]}\n{\"id\": \"a\", \"vector\": [2]}\n")
        .unwrap();
    quantize(bad.to_str().unwrap()).fails(1, &["bad.jsonl:2", "duplicate id \"a\""]);

    // Empty input.
    std::fs::write(&bad, "\n\n").unwrap();
    quantize(bad.to_str().unwrap()).fails(1, &["bad.jsonl", "no vectors"]);

    // NaN inside an .npy names its row and column.
    let mut data = unit_vectors(4, 3, 4);
    data[2 * 3 + 1] = f32::NAN;
    let nan = d.join("nan.npy");
    write_npy(&nan, &data, 4, 3);
    quantize(nan.to_str().unwrap()).fails(1, &["nan.npy", "row 2 column 1", "NaN"]);

    // A truncated .npy and a float64 one.
    let good = d.join("good.npy");
    write_npy(&good, &unit_vectors(4, 3, 5), 4, 3);
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(&nan, &bytes[..bytes.len() - 2]).unwrap();
    quantize(nan.to_str().unwrap()).fails(1, &["nan.npy", "payload"]);
    let mut wrong = bytes.clone();
    let at = wrong.windows(3).position(|w| w == b"<f4").unwrap();
    wrong[at + 2] = b'8';
    std::fs::write(&nan, wrong).unwrap();
    quantize(nan.to_str().unwrap()).fails(1, &["nan.npy", "dtype"]);

    // An extension that is neither .npy nor .jsonl is a usage error.
    quantize(&p(d, "v.csv")).fails(2, &["--vectors", "v.csv"]);

    // Too few vectors to train 16 PQ centroids.
    run(&[
        "quantize",
        "--vectors",
        good.to_str().unwrap(),
        "--out",
        &out,
        "--mode",
        "pq4",
        "--pq-m",
        "3",
    ])
    .fails(1, &["good.npy", "pq training"]);

    // An ids file with the wrong count names itself.
    let idsf = d.join("ids.txt");
    std::fs::write(&idsf, "a\nb\n").unwrap();
    run(&[
        "index",
        "build",
        "--vectors",
        good.to_str().unwrap(),
        "--ids",
        idsf.to_str().unwrap(),
        "--out",
        &out,
    ])
    .fails(1, &["ids.txt", "2 ids for 4 vectors"]);
}

#[test]
fn usage_errors_exit_2_with_the_flag() {
    let dir = tempdir();
    let v = p(dir.path(), "v.npy");
    write_npy(dir.path().join("v.npy").as_path(), &unit_vectors(20, 8, 6), 20, 8);
    let out = p(dir.path(), "o.ecl");

    run(&["quantize", "--vectors", &v, "--out", &out, "--mode", "int4"]).fails(2, &["--mode"]);
    run(&["quantize", "--vectors", &v, "--out", &out, "--mode", "int8", "--center"])
        .fails(2, &["--center"]);
    run(&[
        "quantize",
        "--vectors",
        &v,
        "--out",
        &out,
        "--mode",
        "binary",
        "--calibration",
        "global",
    ])
    .fails(2, &["--calibration"]);
    run(&["quantize", "--vectors", &v, "--out", &out, "--mode", "binary", "--percentile", "99"])
        .fails(2, &["--percentile"]);
    run(&["quantize", "--vectors", &v, "--out", &out, "--mode", "int8", "--percentile", "40"])
        .fails(2, &["--percentile", "(50, 100]"]);
    run(&[
        "index",
        "build",
        "--vectors",
        &v,
        "--out",
        &out,
        "--modes",
        "exact",
        "--int8-percentile",
        "99",
    ])
    .fails(2, &["--int8-percentile"]);
    run(&["quantize", "--vectors", &v, "--out", &out, "--mode", "pq4", "--pq-m", "3"])
        .fails(2, &["--pq-m", "does not divide"]);
    run(&["quantize", "--vectors", &v, "--out", &out]).fails(2, &["--mode"]);
    run(&["quantize", "--frobnicate"]).fails(2, &["--frobnicate"]);
    run(&["index", "build", "--vectors", &v, "--out", &out, "--modes", "hnsw"])
        .fails(2, &["--modes", "exact"]);
    run(&["index", "build", "--vectors", &v, "--out", &out, "--modes", "exact,ivf"])
        .fails(2, &["--modes"]);
    run(&["search", "--index", &out, "-k", "0"]).fails(2, &["-k"]);
    run(&["search", "--index", &out, "--queries", &v]).fails(2, &["--vector-file"]);
    // No queries and stdin is not a terminal: nothing to prompt.
    run(&["search", "--index", &out]).fails(2, &["--queries"]);
    run(&["nosuchcommand"]).fails(2, &["nosuchcommand"]);
}

#[test]
fn search_refuses_bad_queries_and_indexes() {
    let dir = tempdir();
    let d = dir.path();
    let v = d.join("v.npy");
    write_npy(&v, &unit_vectors(40, 8, 7), 40, 8);
    let index = p(d, "i.ecl");
    run(&["index", "build", "--vectors", v.to_str().unwrap(), "--out", &index]).ok();

    // Queries of another dimension.
    let q = d.join("q.npy");
    write_npy(&q, &unit_vectors(2, 9, 8), 2, 9);
    run(&["search", "--index", &index, "--queries", q.to_str().unwrap(), "--vector-file"])
        .fails(1, &["q.npy", "dimension 9", "the index 8"]);

    // A NaN query.
    let mut bad = unit_vectors(2, 8, 9);
    bad[3] = f32::NAN;
    write_npy(&q, &bad, 2, 8);
    run(&["search", "--index", &index, "--queries", q.to_str().unwrap(), "--vector-file"])
        .fails(1, &["q.npy", "row 0 column 3"]);

    // A missing index, and a file that is not a container.
    run(&[
        "search",
        "--index",
        &p(d, "none.ecl"),
        "--queries",
        v.to_str().unwrap(),
        "--vector-file",
    ])
    .fails(1, &["none.ecl"]);
    run(&[
        "search",
        "--index",
        v.to_str().unwrap(),
        "--queries",
        v.to_str().unwrap(),
        "--vector-file",
    ])
    .fails(1, &["v.npy"]);

    // A quantized-vectors container is not an index.
    let qc = p(d, "q.ecl");
    run(&["quantize", "--vectors", v.to_str().unwrap(), "--out", &qc, "--mode", "binary"]).ok();
    run(&["search", "--index", &qc, "--queries", v.to_str().unwrap(), "--vector-file"])
        .fails(1, &["q.ecl", "not an"]);
}

#[test]
fn every_command_has_help_with_examples() {
    for cmd in [&["eval"][..], &["quantize"], &["index", "build"], &["search"], &["inspect"]] {
        let mut args: Vec<&str> = cmd.to_vec();
        args.push("--help");
        let text = run(&args).ok();
        assert!(text.contains("Examples:"), "{cmd:?}: {text}");
    }
    let text = run(&["--help"]).ok();
    assert!(text.contains("Exit codes"), "{text}");
}

#[test]
fn a_closed_stdout_ends_the_program_quietly() {
    // Far more output than a pipe buffers, read by nobody: every write
    // after the reader is gone fails with a broken pipe.
    let dir = tempdir();
    let v = dir.path().join("v.npy");
    write_npy(&v, &unit_vectors(N, DIM, 10), N, DIM);
    let index = p(dir.path(), "i.ecl");
    run(&["index", "build", "--vectors", v.to_str().unwrap(), "--out", &index]).ok();
    let mut c = common::edgecl();
    c.args(["search", "--index", &index, "--queries", v.to_str().unwrap(), "--vector-file"])
        .args(["-k", "100", "--mode", "exact"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn the_prompt_reads_vectors_and_reports_typos() {
    let dir = tempdir();
    let data = unit_vectors(50, 8, 11);
    let v = dir.path().join("v.jsonl");
    write_jsonl(&v, &ids(50, "doc-"), &data, 8, true);
    let index = p(dir.path(), "i.ecl");
    run(&["index", "build", "--vectors", v.to_str().unwrap(), "--out", &index]).ok();
    let row: Vec<String> = data[7 * 8..8 * 8].iter().map(|x| x.to_string()).collect();
    let input = format!("[{}]\n1, 2\nabc\n\n", row.join(", "));
    let Some(r) = common::run_on_terminal(&["search", "--index", &index, "-k", "2"], &input) else {
        return;
    };
    // The terminal merges stdout and stderr: results and both typos show,
    // and the prompt carries on to a clean exit at the empty line.
    let text = r.ok();
    assert!(text.contains("doc-7") && text.contains("text of document 7"), "{text}");
    assert!(text.contains("stdin:2: dimension 2, expected 8"), "{text}");
    assert!(text.contains("stdin:3: \"abc\" is not a finite number"), "{text}");
}
