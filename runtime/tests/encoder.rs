//! The BERT-style encoder: parameter layout, forward shapes for each
//! variant, padding invariance, a gradient check through a whole (small)
//! encoder, checkpoint folders (round trip, Hugging Face layouts, errors)
//! and a few training steps that must lower an InfoNCE loss.
//!
//! None of these need a downloaded model except the comparison with
//! sentence-transformers' all-MiniLM-L6-v2 on the golden fixture
//! (`fixtures/golden/`), which runs when `EDGECL_MINILM_DIR` names the model
//! folder or `tools/scripts/fetch_minilm.sh` has unpacked it under
//! `target/models`, and says why it skipped otherwise.

mod minilm;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use edgecl_runtime::encoder::{
    load_pretrained, save_pretrained, Encoder, EncoderConfig, NormPlacement, Pooling, TokenBatch,
};
use edgecl_runtime::gradcheck::{check, GradCheck};
use edgecl_runtime::optim::{AdamW, AdamWConfig, Optimizer};
use edgecl_runtime::tokenizer::{Tokenizer, Vocab};
use edgecl_runtime::{Graph, ParamSet, Runtime, Tensor};
use minilm::minilm_dir;

/// A 24-token vocabulary over a handful of words.
fn tiny_tokenizer() -> Tokenizer {
    let words = [
        "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "dog", "sat", "on", "mat", "a",
        "bird", "flew", "over", "house", "red", "blue", "car", "drove", "fast", "##s", "sun",
        "rain",
    ];
    Tokenizer::new(Vocab::from_tokens(words, "tiny").unwrap())
}

/// A small config of any placement and pooling; vocabulary of 24.
fn small(norm: NormPlacement, pooling: Pooling, projection: Option<usize>) -> EncoderConfig {
    EncoderConfig {
        vocab_size: 24,
        hidden_size: 8,
        num_layers: 1,
        num_heads: 2,
        intermediate_size: 16,
        max_position_embeddings: 16,
        type_vocab_size: 2,
        layer_norm_eps: 1e-12,
        norm,
        pooling,
        projection_dim: projection,
        normalize: true,
        max_seq_len: 16,
    }
}

/// A graph in inference mode holding `params`.
fn eval_graph(params: ParamSet) -> Graph {
    let mut g = Graph::new(Runtime::new(2).unwrap(), 1);
    g.set_params(params);
    g.set_training(false);
    g
}

fn embed(enc: &Encoder, g: &mut Graph, b: &TokenBatch) -> Vec<f32> {
    g.reset();
    let y = enc.forward(g, b).unwrap();
    g.value(y).unwrap().as_f32().unwrap().to_vec()
}

#[test]
fn token_batches_pad_truncate_and_check() {
    let tok = tiny_tokenizer();
    // [CLS]=2, [SEP]=3, the=5, cat=6, sat=8, on=9, mat=10, a=11, bird=12.
    let b = TokenBatch::from_texts(&tok, &["the cat sat", "a"], 16).unwrap();
    assert_eq!((b.batch, b.seq), (2, 5));
    assert_eq!(b.ids, [2, 5, 6, 8, 3, 2, 11, 3, 0, 0]);
    assert_eq!(b.mask, [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0]);
    assert_eq!((b.row_len(0), b.row_len(1)), (5, 3));
    assert!(b.type_ids.iter().all(|&t| t == 0));
    // Truncation keeps [CLS] .. [SEP] within max_len.
    let t = TokenBatch::from_texts(&tok, &["the cat sat on the mat"], 4).unwrap();
    assert_eq!(t.ids, [2, 5, 6, 3]);

    // Pairs: longest-first truncation, type ids 0 then 1.
    let p = TokenBatch::from_pairs(&tok, &["the cat sat on the mat"], &["a bird"], 8).unwrap();
    assert_eq!(p.ids, [2, 5, 6, 8, 3, 11, 12, 3]);
    assert_eq!(p.type_ids, [0, 0, 0, 0, 0, 1, 1, 1]);
    let e = TokenBatch::from_pairs(&tok, &["a", "b"], &["c"], 8).unwrap_err().to_string();
    assert!(e.contains("2 first segments but 1 second"), "{e}");
    assert!(TokenBatch::from_pairs(&tok, &["a"], &["b"], 2).is_err(), "max_len below 3 specials");

    // Hand-made batches are checked before use.
    let mut bad = b.clone();
    bad.mask[0] = 0.5;
    assert!(bad.validate().unwrap_err().to_string().contains("0.5"));
    let empty = TokenBatch::from_texts::<&str>(&tok, &[], 8).unwrap();
    assert!(empty.validate().is_err());
}

#[test]
fn params_match_the_config_names_and_init_recipe() {
    for cfg in [
        EncoderConfig::micro(100),
        EncoderConfig { projection_dim: Some(32), ..EncoderConfig::tiny(100) },
        EncoderConfig::minilm(),
    ] {
        let enc = Encoder::new(cfg.clone()).unwrap();
        let ps = enc.init_params(3).unwrap();
        let names = cfg.param_names();
        assert_eq!(ps.len(), names.len());
        for (p, (name, dims)) in ps.iter().zip(&names) {
            assert_eq!(p.name(), name);
            assert_eq!(p.value().dims(), dims.as_slice(), "{name}");
            let v = p.value().as_f32().unwrap();
            if dims.len() == 2 {
                assert!(p.decay(), "{name} should decay");
                let std = (v.iter().map(|x| x * x).sum::<f32>() / v.len() as f32).sqrt();
                assert!((std - 0.02).abs() < 0.004, "{name}: std {std}");
            } else if name.ends_with(".bias") {
                assert!(!p.decay() && v.iter().all(|&x| x == 0.0), "{name}");
            } else {
                assert!(!p.decay() && v.iter().all(|&x| x == 1.0), "{name}");
            }
        }
        assert_eq!(ps.numel(), cfg.num_params());
    }
    // The same seed gives the same model; another seed another.
    let enc = Encoder::new(EncoderConfig::micro(50)).unwrap();
    let (a, b, c) =
        (enc.init_params(1).unwrap(), enc.init_params(1).unwrap(), enc.init_params(2).unwrap());
    let first = |p: &ParamSet| p.iter().next().unwrap().value().to_vec_f32().unwrap();
    assert_eq!(first(&a), first(&b));
    assert_ne!(first(&a), first(&c));
    // Bad configs are refused up front.
    assert!(Encoder::new(EncoderConfig { num_heads: 3, ..EncoderConfig::micro(10) }).is_err());
}

#[test]
fn forward_shapes_for_every_variant() {
    let tok = tiny_tokenizer();
    let texts = ["the cat sat on the mat", "a bird", "red car drove fast over the house"];
    for preset in ["micro", "tiny"] {
        for norm in [NormPlacement::Post, NormPlacement::Pre] {
            for pooling in [Pooling::Mean, Pooling::Cls] {
                for projection in [None, Some(48)] {
                    let cfg = EncoderConfig {
                        norm,
                        pooling,
                        projection_dim: projection,
                        ..EncoderConfig::preset(preset, 24).unwrap()
                    };
                    let enc = Encoder::new(cfg.clone()).unwrap();
                    let mut g = eval_graph(enc.init_params(5).unwrap());
                    let b = TokenBatch::from_texts(&tok, &texts, cfg.max_seq_len).unwrap();
                    assert_eq!((b.batch, b.seq), (3, 9));
                    let x = enc.token_states(&mut g, &b).unwrap();
                    assert_eq!(g.dims(x).unwrap(), [3, 9, cfg.hidden_size]);
                    let y = enc.forward(&mut g, &b).unwrap();
                    let dim = cfg.embedding_dim();
                    assert_eq!(g.dims(y).unwrap(), [3, dim]);
                    let v = g.value(y).unwrap().as_f32().unwrap();
                    for row in v.chunks(dim) {
                        let n = row.iter().map(|x| x * x).sum::<f32>().sqrt();
                        assert!((n - 1.0).abs() < 1e-5, "{preset} {norm:?} {pooling:?}: norm {n}");
                    }
                }
            }
        }
    }
}

#[test]
fn padding_does_not_change_an_embedding() {
    let tok = tiny_tokenizer();
    for norm in [NormPlacement::Post, NormPlacement::Pre] {
        for pooling in [Pooling::Mean, Pooling::Cls] {
            let cfg = EncoderConfig { norm, pooling, ..EncoderConfig::micro(24) };
            let enc = Encoder::new(cfg).unwrap();
            let mut g = eval_graph(enc.init_params(9).unwrap());
            let alone = TokenBatch::from_texts(&tok, &["a cat"], 64).unwrap();
            let long = "the red dog drove the blue car over the house in the rain and the sun";
            let padded = TokenBatch::from_texts(&tok, &[long, "a cat", "bird"], 64).unwrap();
            assert!(padded.seq > alone.seq + 10);
            let a = embed(&enc, &mut g, &alone);
            let p = embed(&enc, &mut g, &padded);
            let d = a.len();
            let diff = a.iter().zip(&p[d..2 * d]).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
            assert!(diff <= 1e-5, "{norm:?} {pooling:?}: max diff {diff}");
        }
    }
}

#[test]
fn gradients_off_and_dropout_behave() {
    let tok = tiny_tokenizer();
    let enc = Encoder::new(EncoderConfig::micro(24)).unwrap();
    let b =
        TokenBatch::from_texts(&tok, &["the cat sat", "a bird flew over the house"], 32).unwrap();
    let mut g = eval_graph(enc.init_params(4).unwrap());
    let with_grad = embed(&enc, &mut g, &b);
    g.set_grad_enabled(false);
    let without = embed(&enc, &mut g, &b);
    assert_eq!(with_grad, without);
    g.set_grad_enabled(true);

    // Training mode with dropout changes the output; with p = 0 it does not.
    g.set_training(true);
    assert_ne!(embed(&enc, &mut g, &b), with_grad);
    let no_drop = enc.clone().with_dropout(0.0);
    assert_eq!(embed(&no_drop, &mut g, &b), with_grad);
    let bad = enc.clone().with_dropout(1.5);
    g.reset();
    assert!(bad.forward(&mut g, &b).is_err());

    // A batch longer than the position table, or ragged, is refused.
    let mut long = b.clone();
    long.seq = 600;
    long.ids = vec![5; 1200];
    long.type_ids = vec![0; 1200];
    long.mask = vec![1.0; 1200];
    g.reset();
    assert!(enc.forward(&mut g, &long).is_err());
    let mut ragged = b.clone();
    ragged.mask.pop();
    assert!(enc.forward(&mut g, &ragged).is_err());
}

#[test]
fn gradcheck_through_a_one_layer_encoder() {
    let tok = tiny_tokenizer();
    let pairs_a = ["the cat", "a red car drove"];
    let pairs_b = ["sat on the mat", "fast"];
    for (norm, pooling, projection) in
        [(NormPlacement::Post, Pooling::Mean, None), (NormPlacement::Pre, Pooling::Cls, Some(4))]
    {
        let enc = Encoder::new(small(norm, pooling, projection)).unwrap().with_dropout(0.1);
        // Pairs exercise both type ids and padding.
        let b = TokenBatch::from_pairs(&tok, &pairs_a, &pairs_b, 16).unwrap();
        let ps = enc.init_params(21).unwrap();
        // Larger weights than BERT's 0.02 so every path carries gradient.
        let inputs: Vec<Tensor> = ps
            .iter()
            .map(|p| {
                let v = p.value().to_vec_f32().unwrap();
                let scaled =
                    if p.value().rank() == 2 { v.iter().map(|x| x * 20.0).collect() } else { v };
                Tensor::from_vec(p.value().dims(), scaled).unwrap()
            })
            .collect();
        let report =
            check(&inputs, &GradCheck::default(), |g, vars| enc.forward_with(g, vars, &b)).unwrap();
        println!(
            "{norm:?} {pooling:?}: {} elements, max abs err {:.2e}",
            report.checked, report.max_abs_err
        );
        assert!(
            report.ok(),
            "{norm:?} {pooling:?}: {:?}",
            &report.mismatches[..report.mismatches.len().min(5)]
        );
    }
}

#[test]
fn a_few_steps_lower_an_info_nce_loss() {
    let tok = tiny_tokenizer();
    let queries = ["the cat", "a bird", "red car", "the sun", "blue house", "the dog"];
    let docs = [
        "cat sat on the mat",
        "bird flew over the house",
        "car drove fast",
        "sun over the rain",
        "house blue",
        "dog sat",
    ];
    let enc = Encoder::new(EncoderConfig::micro(24)).unwrap().with_dropout(0.0);
    let mut g = Graph::new(Runtime::new(2).unwrap(), 3);
    g.set_params(enc.init_params(8).unwrap());
    let mut opt = AdamW::new(g.params(), AdamWConfig::default());
    let qb = TokenBatch::from_texts(&tok, &queries, 32).unwrap();
    let db = TokenBatch::from_texts(&tok, &docs, 32).unwrap();
    let targets: Vec<u32> = (0..queries.len() as u32).collect();
    let mut losses = Vec::new();
    for _ in 0..12 {
        g.reset();
        let q = enc.forward(&mut g, &qb).unwrap();
        let d = enc.forward(&mut g, &db).unwrap();
        let s = g.similarity(q, d).unwrap();
        let logits = g.scale(s, 20.0).unwrap();
        let loss = g.cross_entropy(logits, &targets).unwrap();
        losses.push(g.scalar(loss).unwrap());
        g.backward(loss).unwrap();
        opt.step_graph(&mut g, 1e-3).unwrap();
        g.params_mut().zero_grad();
    }
    println!("losses {losses:?}");
    assert!(losses.iter().all(|l| l.is_finite()));
    assert!(losses[11] < 0.5 * losses[0], "{} -> {}", losses[0], losses[11]);
}

/// A trained-looking parameter set: init, then every value nudged so that
/// a bit-exact comparison means something.
fn distinct_params(enc: &Encoder) -> ParamSet {
    let mut ps = enc.init_params(17).unwrap();
    for (k, p) in ps.iter_mut().enumerate() {
        for (i, v) in p.value_mut().as_f32_mut().unwrap().iter_mut().enumerate() {
            *v += ((i * 7 + k) % 13) as f32 * 1e-3;
        }
    }
    ps
}

#[test]
fn save_then_load_is_bit_exact() {
    let tok = tiny_tokenizer();
    for cfg in [
        EncoderConfig {
            projection_dim: Some(16),
            pooling: Pooling::Cls,
            ..EncoderConfig::micro(24)
        },
        EncoderConfig {
            norm: NormPlacement::Post,
            normalize: false,
            max_seq_len: 40,
            ..EncoderConfig::micro(24)
        },
    ] {
        let enc = Encoder::new(cfg.clone()).unwrap();
        let ps = distinct_params(&enc);
        let dir = tempfile::tempdir().unwrap();
        save_pretrained(dir.path(), &cfg, &ps, tok.vocab()).unwrap();
        let back = load_pretrained(dir.path()).unwrap();
        assert_eq!(back.config, cfg);
        assert_eq!(back.params.len(), ps.len());
        for (a, b) in ps.iter().zip(back.params.iter()) {
            assert_eq!(a.name(), b.name());
            let bits = |p: &edgecl_runtime::Param| {
                p.value().as_f32().unwrap().iter().map(|x| x.to_bits()).collect::<Vec<_>>()
            };
            assert_eq!(bits(a), bits(b), "{}", a.name());
        }
        assert_eq!(
            back.tokenizer.vocab().tokens().collect::<Vec<_>>(),
            tok.vocab().tokens().collect::<Vec<_>>()
        );
        assert_eq!(back.vocab_path, dir.path().join("vocab.txt"));
        // No temp files are left behind.
        let mut files: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        assert_eq!(files, ["config.json", "model.safetensors", "vocab.txt"]);
    }
}

/// Writes a Hugging Face style folder: `bert.`-prefixed f32 tensors (or
/// f16 ones), a pooler, an i64 `position_ids` buffer, a plain BERT
/// config.json and sentence-transformers side files.
fn write_hf_folder(dir: &Path, cfg: &EncoderConfig, ps: &ParamSet, half: bool) {
    use safetensors::tensor::TensorView;
    use safetensors::Dtype;
    let mut blobs: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for p in ps.iter() {
        let v = p.value().as_f32().unwrap();
        let bytes: Vec<u8> = if half {
            // Values chosen exactly representable in bf16 below; see caller.
            v.iter().flat_map(|x| ((x.to_bits() >> 16) as u16).to_le_bytes()).collect()
        } else {
            v.iter().flat_map(|x| x.to_le_bytes()).collect()
        };
        let dt = if half { Dtype::BF16 } else { Dtype::F32 };
        blobs.push((format!("bert.{}", p.name()), dt, p.value().dims().to_vec(), bytes));
    }
    let h = cfg.hidden_size;
    blobs.push(("bert.pooler.dense.weight".into(), Dtype::F32, vec![h, h], vec![0; 4 * h * h]));
    let pos: Vec<u8> =
        (0..cfg.max_position_embeddings as i64).flat_map(|i| i.to_le_bytes()).collect();
    blobs.push((
        "bert.embeddings.position_ids".into(),
        Dtype::I64,
        vec![1, cfg.max_position_embeddings],
        pos,
    ));
    let views: Vec<(String, TensorView)> = blobs
        .iter()
        .map(|(n, dt, s, b)| (n.clone(), TensorView::new(*dt, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize_to_file(views, &None, &dir.join("model.safetensors")).unwrap();
    let hf = serde_json::json!({
        "architectures": ["BertForMaskedLM"], "model_type": "bert", "hidden_act": "gelu",
        "vocab_size": cfg.vocab_size, "hidden_size": h, "num_hidden_layers": cfg.num_layers,
        "num_attention_heads": cfg.num_heads, "intermediate_size": cfg.intermediate_size,
        "max_position_embeddings": cfg.max_position_embeddings, "type_vocab_size": 2,
        "layer_norm_eps": 1e-12, "position_embedding_type": "absolute"
    });
    std::fs::write(dir.join("config.json"), hf.to_string()).unwrap();
    let vocab: String = tiny_tokenizer().vocab().tokens().map(|t| format!("{t}\n")).collect();
    std::fs::write(dir.join("vocab.txt"), vocab).unwrap();
}

#[test]
fn reads_hugging_face_and_sentence_transformers_folders() {
    let cfg =
        EncoderConfig { norm: NormPlacement::Post, max_seq_len: 256, ..EncoderConfig::micro(24) };
    let enc = Encoder::new(cfg.clone()).unwrap();
    let ps = distinct_params(&enc);
    for half in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        write_hf_folder(dir.path(), &cfg, &ps, half);
        let back = load_pretrained(dir.path()).unwrap();
        // A plain BERT config: post-norm, mean pooling, normalised.
        assert_eq!(back.config, cfg);
        for (a, b) in ps.iter().zip(back.params.iter()) {
            assert_eq!(a.name(), b.name(), "prefix stripped, pooler and buffers skipped");
            for (x, y) in a.value().as_f32().unwrap().iter().zip(b.value().as_f32().unwrap()) {
                let want = if half { f32::from_bits(x.to_bits() & 0xffff_0000) } else { *x };
                assert_eq!(want.to_bits(), y.to_bits(), "{}", a.name());
            }
        }
    }

    // sentence-transformers side files: CLS pooling, no Normalize module,
    // a shorter token limit.
    let dir = tempfile::tempdir().unwrap();
    write_hf_folder(dir.path(), &cfg, &ps, false);
    std::fs::create_dir(dir.path().join("1_Pooling")).unwrap();
    std::fs::write(
        dir.path().join("1_Pooling/config.json"),
        r#"{"word_embedding_dimension": 128, "pooling_mode_cls_token": true,
            "pooling_mode_mean_tokens": false}"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("sentence_bert_config.json"), r#"{"max_seq_length": 64}"#)
        .unwrap();
    std::fs::write(
        dir.path().join("modules.json"),
        r#"[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},
            {"idx":1,"name":"1","path":"1_Pooling",
             "type":"sentence_transformers.models.Pooling"}]"#,
    )
    .unwrap();
    let back = load_pretrained(dir.path()).unwrap();
    assert_eq!(back.config.pooling, Pooling::Cls);
    assert!(!back.config.normalize);
    assert_eq!(back.config.max_seq_len, 64);

    // What the encoder cannot reproduce is refused by name: max pooling, a
    // Dense module after pooling.
    std::fs::write(
        dir.path().join("1_Pooling/config.json"),
        r#"{"pooling_mode_max_tokens": true, "pooling_mode_mean_tokens": false}"#,
    )
    .unwrap();
    let e = load_pretrained(dir.path()).err().expect("max pooling must fail").to_string();
    assert!(e.contains("pooling_mode_max_tokens") && e.contains("1_Pooling"), "{e}");
    std::fs::write(
        dir.path().join("modules.json"),
        r#"[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},
            {"idx":1,"name":"1","path":"2_Dense","type":"sentence_transformers.models.Dense"}]"#,
    )
    .unwrap();
    let e = load_pretrained(dir.path()).err().expect("Dense must fail").to_string();
    assert!(e.contains("Dense") && e.contains("modules.json"), "{e}");
}

#[test]
fn load_errors_name_what_is_wrong() {
    let tok = tiny_tokenizer();
    let cfg = EncoderConfig::micro(24);
    let enc = Encoder::new(cfg.clone()).unwrap();
    let ps = enc.init_params(1).unwrap();
    let err = |dir: &Path| load_pretrained(dir).err().expect("load should fail").to_string();

    // A missing tensor.
    let dir = tempfile::tempdir().unwrap();
    save_pretrained(dir.path(), &cfg, &ps, tok.vocab()).unwrap();
    let mut tensors: HashMap<String, Tensor> =
        edgecl_runtime::weights::load(&dir.path().join("model.safetensors"))
            .unwrap()
            .into_iter()
            .collect();
    tensors.remove("encoder.layer.1.output.dense.bias");
    let list: Vec<(&str, &Tensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    edgecl_runtime::weights::save(&dir.path().join("model.safetensors"), &list, None).unwrap();
    let e = err(dir.path());
    assert!(e.contains("encoder.layer.1.output.dense.bias") && e.contains("missing"), "{e}");
    assert!(e.contains("model.safetensors"), "{e}");

    // A mis-shaped tensor.
    tensors.insert("encoder.layer.1.output.dense.bias".into(), Tensor::zeros(&[127]).unwrap());
    let list: Vec<(&str, &Tensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    edgecl_runtime::weights::save(&dir.path().join("model.safetensors"), &list, None).unwrap();
    let e = err(dir.path());
    assert!(e.contains("encoder.layer.1.output.dense.bias") && e.contains("[127]"), "{e}");

    // A bad config field, and a missing config.
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("config.json")).unwrap())
            .unwrap();
    json["num_attention_heads"] = "two".into();
    std::fs::write(dir.path().join("config.json"), json.to_string()).unwrap();
    let e = err(dir.path());
    assert!(e.contains("num_attention_heads") && e.contains("config.json"), "{e}");
    std::fs::remove_file(dir.path().join("config.json")).unwrap();
    assert!(err(dir.path()).contains("config.json"));

    // A vocabulary larger than the embedding table.
    let dir = tempfile::tempdir().unwrap();
    let small_cfg = EncoderConfig { vocab_size: 30, ..cfg.clone() };
    let small_enc = Encoder::new(small_cfg.clone()).unwrap();
    save_pretrained(dir.path(), &small_cfg, &small_enc.init_params(1).unwrap(), tok.vocab())
        .unwrap();
    let big: String =
        (0..40).map(|i| format!("w{i}\n")).collect::<String>() + "[PAD]\n[UNK]\n[CLS]\n[SEP]\n";
    std::fs::write(dir.path().join("vocab.txt"), big).unwrap();
    let e = err(dir.path());
    assert!(e.contains("vocab.txt") && e.contains("vocab_size"), "{e}");

    // Saving refuses a parameter set that does not match the config.
    let dir = tempfile::tempdir().unwrap();
    let other = Encoder::new(EncoderConfig::micro(30)).unwrap().init_params(1).unwrap();
    let e = save_pretrained(dir.path(), &cfg, &other, tok.vocab()).unwrap_err().to_string();
    assert!(e.contains("embeddings.word_embeddings.weight"), "{e}");
}

/// The graph forward pass (the training path) on the real model reproduces
/// sentence-transformers' embeddings of the golden sentences.
#[test]
fn graph_forward_matches_sentence_transformers() {
    let Some(dir) = minilm_dir() else { return };
    let golden = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden");
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(golden.join("minilm.json")).unwrap()).unwrap();
    let sentences: Vec<&str> =
        meta["sentences"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    let dim = meta["dim"].as_u64().unwrap() as usize;
    let bytes = std::fs::read(golden.join("minilm_f32.bin")).unwrap();
    let want: Vec<f32> =
        bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    assert_eq!(want.len(), sentences.len() * dim);

    let pre = load_pretrained(&dir).unwrap();
    assert_eq!(
        (pre.config.max_seq_len, pre.config.pooling, pre.config.normalize),
        (256, Pooling::Mean, true)
    );
    let enc = Encoder::new(pre.config.clone()).unwrap();
    let mut g = eval_graph(pre.params);
    g.set_grad_enabled(false);
    // Batches of 16, each padded to its own longest row.
    let mut got = Vec::new();
    for chunk in sentences.chunks(16) {
        let b = TokenBatch::from_texts(&pre.tokenizer, chunk, pre.config.max_seq_len).unwrap();
        got.extend(embed(&enc, &mut g, &b));
    }
    let cosine = |a: &[f32], b: &[f32]| {
        let dot: f64 = a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum();
        let n = |v: &[f32]| v.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
        dot / (n(a) * n(b))
    };
    let (mut worst, mut worst_i, mut max_diff) = (1.0f64, 0, 0.0f32);
    for (i, (a, b)) in got.chunks(dim).zip(want.chunks(dim)).enumerate() {
        let c = cosine(a, b);
        if c < worst {
            (worst, worst_i) = (c, i);
        }
        max_diff = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(max_diff, f32::max);
    }
    println!(
        "graph forward vs sentence-transformers over {} sentences: min cosine {worst:.8} \
         (1 - cos = {:.1e}, sentence {worst_i}), largest element difference {max_diff:.2e}",
        sentences.len(),
        1.0 - worst
    );
    assert!(worst >= 0.9999, "sentence {worst_i} {:?}: cosine {worst}", sentences[worst_i]);
}
