//! The cross-encoder against PyTorch: a tiny random
//! `BertForSequenceClassification` (fixture made by
//! tools/scripts/make_cross_encoder_fixture.py) must give the same token ids
//! and the same scores; plus its gradient, checkpoint round trip, loading a
//! plain BERT folder with a fresh head, and refusing multi-label heads.

use std::path::{Path, PathBuf};

use edgecl_runtime::encoder::{
    load_pretrained_cross, save_pretrained, save_pretrained_cross, CrossEncoder, Encoder,
    EncoderConfig, NormPlacement, Pooling, TokenBatch,
};
use edgecl_runtime::gradcheck::{check, GradCheck};
use edgecl_runtime::optim::{AdamW, AdamWConfig, Optimizer};
use edgecl_runtime::{Graph, ParamSet, Runtime, Tensor};

/// Largest |ours - PyTorch| allowed on a score.
const SCORE_TOL: f32 = 1e-4;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cross_encoder")
}

struct Pair {
    a: String,
    b: String,
    ids: Vec<u32>,
    type_ids: Vec<u32>,
    score: f32,
}

fn expected() -> (usize, Vec<Pair>) {
    let text = std::fs::read_to_string(fixture_dir().join("expected.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let ints = |x: &serde_json::Value| -> Vec<u32> {
        x.as_array().unwrap().iter().map(|i| i.as_u64().unwrap() as u32).collect()
    };
    let pairs = v["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| Pair {
            a: p["a"].as_str().unwrap().into(),
            b: p["b"].as_str().unwrap().into(),
            ids: ints(&p["ids"]),
            type_ids: ints(&p["type_ids"]),
            score: p["score"].as_f64().unwrap() as f32,
        })
        .collect();
    (v["max_len"].as_u64().unwrap() as usize, pairs)
}

fn eval_graph(params: ParamSet) -> Graph {
    let mut g = Graph::new(Runtime::new(2).unwrap(), 1);
    g.set_params(params);
    g.set_training(false);
    g.set_grad_enabled(false);
    g
}

fn scores(model: &CrossEncoder, g: &mut Graph, b: &TokenBatch) -> Vec<f32> {
    g.reset();
    let y = model.forward(g, b).unwrap();
    assert_eq!(g.dims(y).unwrap(), [b.batch]);
    g.value(y).unwrap().as_f32().unwrap().to_vec()
}

#[test]
fn matches_pytorch_on_the_fixture() {
    let (max_len, pairs) = expected();
    let pre = load_pretrained_cross(&fixture_dir()).unwrap();
    assert!(pre.head_loaded);
    assert_eq!(pre.config.num_layers, 2);
    let model = CrossEncoder::new(pre.config.clone()).unwrap();
    let mut g = eval_graph(pre.params);

    // Token ids and types as the reference tokenizer made them.
    let a: Vec<&str> = pairs.iter().map(|p| p.a.as_str()).collect();
    let b: Vec<&str> = pairs.iter().map(|p| p.b.as_str()).collect();
    let batch = TokenBatch::from_pairs(&pre.tokenizer, &a, &b, max_len).unwrap();
    for (r, p) in pairs.iter().enumerate() {
        let n = batch.row_len(r);
        let row = r * batch.seq..r * batch.seq + n;
        assert_eq!(batch.ids[row.clone()], p.ids[..], "ids of pair {r}");
        assert_eq!(batch.type_ids[row], p.type_ids[..], "type ids of pair {r}");
    }

    // Scores, batched (padded) and one pair at a time.
    let got = scores(&model, &mut g, &batch);
    let mut worst = 0.0f32;
    for (r, p) in pairs.iter().enumerate() {
        let alone = TokenBatch::from_pairs(&pre.tokenizer, &[&p.a], &[&p.b], max_len).unwrap();
        let single = scores(&model, &mut g, &alone)[0];
        for s in [got[r], single] {
            worst = worst.max((s - p.score).abs());
        }
    }
    println!("max |score - pytorch| = {worst:.2e} over {} pairs", pairs.len());
    assert!(worst <= SCORE_TOL, "max abs diff {worst}");
    // The scores differ from one another, so matching them means something.
    let spread =
        got.iter().cloned().fold(f32::MIN, f32::max) - got.iter().cloned().fold(f32::MAX, f32::min);
    assert!(spread > 0.1, "spread {spread}");
}

fn small_config() -> EncoderConfig {
    EncoderConfig {
        vocab_size: 49,
        hidden_size: 8,
        num_layers: 1,
        num_heads: 2,
        intermediate_size: 16,
        max_position_embeddings: 24,
        type_vocab_size: 2,
        layer_norm_eps: 1e-12,
        norm: NormPlacement::Post,
        pooling: Pooling::Mean,
        projection_dim: None,
        normalize: true,
        max_seq_len: 24,
    }
}

#[test]
fn gradcheck_through_pooler_and_classifier() {
    let pre = load_pretrained_cross(&fixture_dir()).unwrap();
    let model = CrossEncoder::new(small_config()).unwrap();
    let batch = TokenBatch::from_pairs(
        &pre.tokenizer,
        &["the cat", "cold water"],
        &["sat on the mat", "hot sun"],
        24,
    )
    .unwrap();
    let inputs: Vec<Tensor> = model
        .init_params(5)
        .unwrap()
        .iter()
        .map(|p| {
            let v = p.value().to_vec_f32().unwrap();
            let v = if p.value().rank() == 2 { v.iter().map(|x| x * 20.0).collect() } else { v };
            Tensor::from_vec(p.value().dims(), v).unwrap()
        })
        .collect();
    let report =
        check(&inputs, &GradCheck::default(), |g, vars| model.forward_with(g, vars, &batch))
            .unwrap();
    println!("{} elements, max abs err {:.2e}", report.checked, report.max_abs_err);
    assert!(report.ok(), "{:?}", &report.mismatches[..report.mismatches.len().min(5)]);
}

#[test]
fn a_few_steps_fit_target_scores() {
    let pre = load_pretrained_cross(&fixture_dir()).unwrap();
    let model = CrossEncoder::new(small_config()).unwrap().with_dropout(0.0);
    let a = ["the cat", "cold water", "red car", "what is the capital of france"];
    let b = ["the cat sat", "hot sun", "the car drove fast", "paris"];
    let batch = TokenBatch::from_pairs(&pre.tokenizer, &a, &b, 24).unwrap();
    let mut g = Graph::new(Runtime::new(2).unwrap(), 2);
    g.set_params(model.init_params(3).unwrap());
    let mut opt = AdamW::new(g.params(), AdamWConfig::default());
    let mut losses = Vec::new();
    for _ in 0..30 {
        g.reset();
        let s = model.forward(&mut g, &batch).unwrap();
        let t = g.input_slice(&[4], &[1.0, -1.0, 1.0, 1.0]).unwrap();
        let loss = g.mse(s, t).unwrap();
        losses.push(g.scalar(loss).unwrap());
        g.backward(loss).unwrap();
        opt.step_graph(&mut g, 1e-2).unwrap();
        g.params_mut().zero_grad();
    }
    println!("mse {} -> {}", losses[0], losses[29]);
    assert!(losses[29] < 0.25 * losses[0], "{losses:?}");
}

#[test]
fn save_load_round_trip_and_a_fresh_head_on_plain_bert() {
    let pre = load_pretrained_cross(&fixture_dir()).unwrap();
    let cfg = small_config();
    let model = CrossEncoder::new(cfg.clone()).unwrap();
    let params = model.init_params(9).unwrap();
    let names: Vec<String> = model.param_names().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names.last().unwrap(), "classifier.bias");
    assert!(names.contains(&"bert.pooler.dense.weight".to_string()));

    // Round trip, bit for bit.
    let dir = tempfile::tempdir().unwrap();
    save_pretrained_cross(dir.path(), &cfg, &params, pre.tokenizer.vocab()).unwrap();
    let back = load_pretrained_cross(dir.path()).unwrap();
    assert!(back.head_loaded && back.pooler_loaded);
    assert_eq!(back.config, cfg);
    for (x, y) in params.iter().zip(back.params.iter()) {
        assert_eq!(x.name(), y.name());
        let bits = |t: &Tensor| t.as_f32().unwrap().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(x.value()), bits(y.value()), "{}", x.name());
    }

    // A plain BERT folder: the encoder is loaded, the head is fresh.
    let enc = Encoder::new(cfg.clone()).unwrap();
    let enc_params = enc.init_params(4).unwrap();
    let dir = tempfile::tempdir().unwrap();
    save_pretrained(dir.path(), &cfg, &enc_params, pre.tokenizer.vocab()).unwrap();
    let plain = load_pretrained_cross(dir.path()).unwrap();
    assert!(!plain.head_loaded && !plain.pooler_loaded);
    for p in enc_params.iter() {
        let q = plain.params.get(plain.params.id(&format!("bert.{}", p.name())).unwrap());
        assert_eq!(p.value().to_vec_f32().unwrap(), q.value().to_vec_f32().unwrap());
    }
    let model = CrossEncoder::new(plain.config.clone()).unwrap();
    let mut g = eval_graph(plain.params);
    let batch =
        TokenBatch::from_pairs(&plain.tokenizer, &["the cat", "a dog"], &["sat", "ran"], 24)
            .unwrap();
    let s = scores(&model, &mut g, &batch);
    assert!(s.iter().all(|x| x.is_finite()));
}

#[test]
fn refuses_multi_label_heads_and_projections() {
    let pre = load_pretrained_cross(&fixture_dir()).unwrap();
    let cfg = small_config();
    let model = CrossEncoder::new(cfg.clone()).unwrap();
    let mut params = model.init_params(1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    save_pretrained_cross(dir.path(), &cfg, &params, pre.tokenizer.vocab()).unwrap();
    // Rewrite the classifier with three labels.
    let path = dir.path().join("model.safetensors");
    let mut all = edgecl_runtime::weights::load(&path).unwrap();
    for (n, t) in all.iter_mut() {
        if n == "classifier.weight" {
            *t = Tensor::zeros(&[3, 8]).unwrap();
        }
    }
    let list: Vec<(&str, &Tensor)> = all.iter().map(|(n, t)| (n.as_str(), t)).collect();
    edgecl_runtime::weights::save(&path, &list, None).unwrap();
    let e = load_pretrained_cross(dir.path()).err().expect("3 labels must fail").to_string();
    assert!(e.contains("classifier.weight") && e.contains("3 labels"), "{e}");

    assert!(CrossEncoder::new(EncoderConfig { projection_dim: Some(4), ..cfg.clone() }).is_err());
    // Parameters of the wrong shape are named at bind time.
    let id = params.id("classifier.weight").unwrap();
    let mut g = Graph::new(Runtime::new(1).unwrap(), 0);
    params.get_mut(id).value_mut().as_f32_mut().unwrap()[0] = 1.0;
    let mut other = ParamSet::new();
    for p in params.iter() {
        let v = if p.name() == "classifier.weight" {
            Tensor::zeros(&[2, 8]).unwrap()
        } else {
            p.value().clone()
        };
        other.add(p.name(), v, p.decay()).unwrap();
    }
    g.set_params(other);
    let batch = TokenBatch::from_pairs(&pre.tokenizer, &["a"], &["b"], 24).unwrap();
    let e = model.forward(&mut g, &batch).unwrap_err().to_string();
    assert!(e.contains("classifier.weight"), "{e}");
}

/// With all-MiniLM-L6-v2 present (`EDGECL_MINILM_DIR`), a cross-encoder
/// over it loads its encoder and pooler and initialises the classifier.
#[test]
fn minilm_folder_loads_with_a_fresh_classifier() {
    let Some(dir) = std::env::var_os("EDGECL_MINILM_DIR") else {
        println!("skipped: EDGECL_MINILM_DIR is not set");
        return;
    };
    let dir = PathBuf::from(dir);
    if !dir.join("config.json").exists() {
        println!("skipped: {} has no config.json", dir.display());
        return;
    }
    let pre = load_pretrained_cross(&dir).unwrap();
    assert!(!pre.head_loaded);
    assert_eq!(pre.config.hidden_size, 384);
    let model = CrossEncoder::new(pre.config.clone()).unwrap();
    let mut g = eval_graph(pre.params);
    let batch = TokenBatch::from_pairs(
        &pre.tokenizer,
        &["what is the capital of france"],
        &["paris is the capital of france"],
        64,
    )
    .unwrap();
    assert!(scores(&model, &mut g, &batch)[0].is_finite());
}
