//! The inference path on small random encoders (no download needed):
//! agreement with the same encoder written with the autodiff ops, int8
//! against f32, invariance to batching and padding, the model file's round
//! trip, and typed errors on bad files and inputs.

use std::borrow::Cow;

use edgecl_runtime::container::{Container, ContainerBuilder, Dtype};
use edgecl_runtime::encoder::{EncoderConfig, NormPlacement, Pooling};
use edgecl_runtime::infer::{section_names, InferError, InferenceModel, Precision};
use edgecl_runtime::tokenizer::{Tokenizer, Vocab};
use edgecl_runtime::{init, Graph, ParamSet, Runtime, Tensor, Var};

const TEXTS: [&str; 6] = [
    "the cat sat on the mat",
    "a dog",
    "cats and dogs and birds sat on a red mat in the sun",
    "sun",
    "the bird sang, the dog ran; the cat slept.",
    "red red red red red red red red red red red red red red red red red red red red",
];

fn tokenizer() -> Tokenizer {
    let mut tokens: Vec<String> =
        ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ",", ".", ";"].map(String::from).to_vec();
    for w in
        "the a cat cats dog dogs sat on mat and bird birds sang ran slept in red sun".split(' ')
    {
        tokens.push(w.into());
    }
    for piece in ["##s", "##ed", "##ing"] {
        tokens.push(piece.into());
    }
    Tokenizer::new(Vocab::from_tokens(tokens, "test vocab").unwrap())
}

/// Seeded parameters for every name of the config: norms near 1 and 0,
/// everything else normal with std 0.1 (large enough that int8 rounding and
/// layout bugs show).
fn params(config: &EncoderConfig, seed: u64) -> ParamSet {
    let mut ps = ParamSet::new();
    for (i, (name, dims)) in config.param_names().into_iter().enumerate() {
        let t = init::normal(&dims, 0.1, seed, i as u64).unwrap();
        let t = if name.contains("LayerNorm.weight") || name.contains("final_norm.weight") {
            let v = t.as_f32().unwrap().iter().map(|x| 1.0 + x).collect();
            Tensor::from_vec(&dims, v).unwrap()
        } else {
            t
        };
        ps.add(&name, t, true).unwrap();
    }
    ps
}

/// The micro preset (pre-norm, mean pooling) and a post-norm variant with
/// CLS pooling and a projection, both over the test vocabulary.
fn configs() -> Vec<EncoderConfig> {
    let vocab = tokenizer().vocab().len();
    let micro = EncoderConfig { max_seq_len: 24, ..EncoderConfig::micro(vocab) };
    let post = EncoderConfig {
        norm: NormPlacement::Post,
        pooling: Pooling::Cls,
        projection_dim: Some(48),
        hidden_size: 64,
        num_heads: 4,
        intermediate_size: 96,
        ..micro.clone()
    };
    vec![micro, post]
}

fn model(config: &EncoderConfig, precision: Precision) -> InferenceModel {
    InferenceModel::from_params(config, &params(config, 7), tokenizer(), precision).unwrap()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let n = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (n(a) * n(b))
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// The same encoder written with the autodiff ops, for one unpadded text.
fn reference(config: &EncoderConfig, ps: &ParamSet, ids: &[u32]) -> Vec<f32> {
    let mut g = Graph::new(Runtime::new(1).unwrap(), 0);
    let mut own = ParamSet::new();
    for p in ps.iter() {
        own.add(p.name(), p.value().clone(), p.decay()).unwrap();
    }
    g.set_params(own);
    g.set_grad_enabled(false);
    let t = ids.len();
    let p = |g: &mut Graph, name: &str| g.param_named(name).unwrap();
    let linear = |g: &mut Graph, x: Var, name: &str| {
        let (w, b) = (p(g, &format!("{name}.weight")), p(g, &format!("{name}.bias")));
        let y = g.matmul_t(x, w, false, true).unwrap();
        g.add(y, b).unwrap()
    };
    let norm = |g: &mut Graph, x: Var, name: &str| {
        let (w, b) = (p(g, &format!("{name}.weight")), p(g, &format!("{name}.bias")));
        g.layer_norm(x, w, b, config.layer_norm_eps).unwrap()
    };
    let positions: Vec<u32> = (0..t as u32).collect();
    let (word, pos, typ) = (
        p(&mut g, "embeddings.word_embeddings.weight"),
        p(&mut g, "embeddings.position_embeddings.weight"),
        p(&mut g, "embeddings.token_type_embeddings.weight"),
    );
    let e = g.embedding(word, ids, &[1, t]).unwrap();
    let pe = g.embedding(pos, &positions, &[1, t]).unwrap();
    let te = g.embedding(typ, &vec![0; t], &[1, t]).unwrap();
    let e = g.add(e, pe).unwrap();
    let e = g.add(e, te).unwrap();
    let mut x = norm(&mut g, e, "embeddings.LayerNorm");
    for i in 0..config.num_layers {
        let l = format!("encoder.layer.{i}");
        let attn = |g: &mut Graph, h: Var| {
            let q = linear(g, h, &format!("{l}.attention.self.query"));
            let k = linear(g, h, &format!("{l}.attention.self.key"));
            let v = linear(g, h, &format!("{l}.attention.self.value"));
            let a = g.attention(q, k, v, None, config.num_heads).unwrap();
            linear(g, a, &format!("{l}.attention.output.dense"))
        };
        let ffn = |g: &mut Graph, h: Var| {
            let u = linear(g, h, &format!("{l}.intermediate.dense"));
            let u = g.gelu(u).unwrap();
            linear(g, u, &format!("{l}.output.dense"))
        };
        let (an, fnm) =
            (format!("{l}.attention.output.LayerNorm"), format!("{l}.output.LayerNorm"));
        x = match config.norm {
            NormPlacement::Post => {
                let a = attn(&mut g, x);
                let s = g.add(a, x).unwrap();
                let x1 = norm(&mut g, s, &an);
                let f = ffn(&mut g, x1);
                let s = g.add(f, x1).unwrap();
                norm(&mut g, s, &fnm)
            }
            NormPlacement::Pre => {
                let h = norm(&mut g, x, &an);
                let a = attn(&mut g, h);
                let x1 = g.add(x, a).unwrap();
                let h = norm(&mut g, x1, &fnm);
                let f = ffn(&mut g, h);
                g.add(x1, f).unwrap()
            }
        };
    }
    if config.norm == NormPlacement::Pre {
        x = norm(&mut g, x, "encoder.final_norm");
    }
    let mut y = match config.pooling {
        Pooling::Mean => {
            let m = g.input(&Tensor::from_vec(&[1, t], vec![1.0; t]).unwrap()).unwrap();
            g.mean_pool(x, m).unwrap()
        }
        Pooling::Cls => g.cls_pool(x).unwrap(),
    };
    if config.projection_dim.is_some() {
        y = linear(&mut g, y, "projection");
    }
    if config.normalize {
        y = g.l2_normalize(y, 1e-12).unwrap();
    }
    g.value(y).unwrap().as_f32().unwrap().to_vec()
}

#[test]
fn f32_matches_the_autodiff_ops() {
    for config in configs() {
        let ps = params(&config, 7);
        let m = InferenceModel::from_params(&config, &ps, tokenizer(), Precision::F32).unwrap();
        let got = m.embed(&TEXTS).unwrap();
        assert_eq!(got.len(), TEXTS.len() * m.dim());
        for (i, text) in TEXTS.iter().enumerate() {
            let ids = m.tokenizer().encode(text, &Default::default()).unwrap().ids;
            let want = reference(&config, &ps, &ids);
            let row = &got[i * m.dim()..(i + 1) * m.dim()];
            let d = max_diff(row, &want);
            assert!(d < 2e-5, "{:?} {text:?}: max difference {d}", config.norm);
        }
    }
}

#[test]
fn int8_stays_close_to_f32() {
    for config in configs() {
        let (a, b) = (model(&config, Precision::F32), model(&config, Precision::Int8));
        let (ea, eb) = (a.embed(&TEXTS).unwrap(), b.embed(&TEXTS).unwrap());
        let cos: Vec<f32> =
            ea.chunks(a.dim()).zip(eb.chunks(a.dim())).map(|(x, y)| cosine(x, y)).collect();
        let min = cos.iter().copied().fold(1.0, f32::min);
        println!("{:?}: int8 vs f32 cosines {cos:?}", config.norm);
        assert!(min > 0.99, "{:?}: min cosine {min}", config.norm);
        // Quantization changes the answer, so identical output would mean
        // the int8 path did not run.
        assert!(max_diff(&ea, &eb) > 0.0);
    }
}

#[test]
fn batching_and_padding_do_not_change_embeddings() {
    for config in configs() {
        for precision in [Precision::F32, Precision::Int8] {
            let m = model(&config, precision);
            let batched = m.embed(&TEXTS).unwrap();
            let single: Vec<f32> = TEXTS.iter().flat_map(|t| m.embed(&[t]).unwrap()).collect();
            assert!(max_diff(&batched, &single) < 1e-5, "{precision}: batch vs one by one");

            // The same texts as a padded [B, T] batch with extra padding.
            let encs: Vec<_> = TEXTS
                .iter()
                .map(|t| m.tokenizer().encode(t, &Default::default()).unwrap())
                .collect();
            let t = encs.iter().map(|e| e.len()).max().unwrap() + 3;
            let (mut ids, mut mask) = (vec![], vec![]);
            for e in &encs {
                let pad = t - e.len();
                ids.extend(e.ids.iter().copied().chain(std::iter::repeat_n(0, pad)));
                mask.extend(std::iter::repeat_n(1u8, e.len()).chain(std::iter::repeat_n(0, pad)));
            }
            let padded = m.embed_tokens(&ids, &mask, t).unwrap();
            assert!(max_diff(&batched, &padded) < 1e-5, "{precision}: padded batch");

            // Unit length when normalising.
            for row in batched.chunks(m.dim()) {
                let n = row.iter().map(|x| x * x).sum::<f32>().sqrt();
                assert!((n - 1.0).abs() < 1e-5, "norm {n}");
            }
            assert!(m.embed(&[]).unwrap().is_empty());
        }
    }
}

#[test]
fn inputs_beyond_one_pass_come_back_in_order() {
    // 240 texts of up to 24 tokens: more tokens than one forward pass takes.
    let m = model(&configs()[0], Precision::Int8);
    let texts: Vec<&str> = (0..240).map(|i| TEXTS[(i * 5) % TEXTS.len()]).collect();
    let all = m.embed(&texts).unwrap();
    let each = m.embed(&TEXTS).unwrap();
    let dim = m.dim();
    for (i, row) in all.chunks(dim).enumerate() {
        let j = (i * 5) % TEXTS.len();
        assert!(max_diff(row, &each[j * dim..(j + 1) * dim]) < 1e-5, "text {i}");
    }
}

#[test]
fn long_inputs_are_truncated_to_max_seq_len() {
    let config = &configs()[0];
    let m = model(config, Precision::F32);
    let long = "red ".repeat(100);
    let cut: Vec<&str> = long.split(' ').take(config.max_seq_len - 2).collect();
    let (a, b) = (m.embed(&[&long]).unwrap(), m.embed(&[&cut.join(" ")]).unwrap());
    assert!(max_diff(&a, &b) < 1e-6);
}

#[test]
fn model_file_round_trips() {
    let tmp = tempfile::tempdir().unwrap();
    for config in configs() {
        for precision in [Precision::F32, Precision::Int8] {
            let m = model(&config, precision);
            let path = tmp.path().join("m.edgecl");
            m.write(&path).unwrap();
            let o = InferenceModel::open(&path).unwrap();
            assert_eq!(o.config(), m.config());
            assert_eq!(o.precision(), precision);
            assert_eq!(o.tokenizer().vocab().len(), m.tokenizer().vocab().len());
            assert_eq!(o.embed(&TEXTS).unwrap(), m.embed(&TEXTS).unwrap(), "{precision}");
            // Writing the opened model again gives the same bytes.
            let again = tmp.path().join("again.edgecl");
            o.write(&again).unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), std::fs::read(&again).unwrap());
        }
    }
}

#[test]
fn from_weights_accepts_the_bert_prefix_and_names_missing_weights() {
    let config = &configs()[1];
    let ps = params(config, 7);
    let named: Vec<(String, Tensor)> =
        ps.iter().map(|p| (format!("bert.{}", p.name()), p.value().clone())).collect();
    let m = InferenceModel::from_weights(config, &named, tokenizer(), Precision::F32).unwrap();
    assert_eq!(m.embed(&TEXTS).unwrap(), model(config, Precision::F32).embed(&TEXTS).unwrap());

    let without: Vec<_> =
        named.iter().filter(|(n, _)| !n.ends_with("layer.1.output.dense.bias")).cloned().collect();
    let e =
        InferenceModel::from_weights(config, &without, tokenizer(), Precision::F32).unwrap_err();
    assert!(
        matches!(&e, InferError::MissingWeight { name, .. } if name == "encoder.layer.1.output.dense.bias"),
        "{e}"
    );

    let mut reshaped = named.clone();
    reshaped[0].1 = Tensor::zeros(&[3]).unwrap();
    let e =
        InferenceModel::from_weights(config, &reshaped, tokenizer(), Precision::Int8).unwrap_err();
    assert!(matches!(e, InferError::BadWeight { .. }), "{e}");

    let mut nan = named;
    let i = nan.iter().position(|(n, _)| n.ends_with("layer.0.intermediate.dense.weight")).unwrap();
    let dims = nan[i].1.dims().to_vec();
    nan[i].1 = Tensor::from_vec(&dims, vec![f32::NAN; dims.iter().product()]).unwrap();
    let e = InferenceModel::from_weights(config, &nan, tokenizer(), Precision::Int8).unwrap_err();
    assert!(e.to_string().contains("intermediate.dense.weight"), "{e}");
}

/// Rewrites a model file, letting `edit` drop or replace sections by name.
fn rewrite(
    bytes: &[u8],
    edit: impl Fn(&str, Dtype, &[u64], &[u8]) -> Option<(Dtype, Vec<u64>, Vec<u8>)>,
) -> Vec<u8> {
    let c = Container::parse(bytes).unwrap();
    let mut b = ContainerBuilder::new();
    for s in c.sections() {
        let data = c.section_bytes(s.name).unwrap();
        if let Some((dtype, shape, data)) = edit(s.name, s.dtype, s.shape, data) {
            b.add_raw(s.name, dtype, &shape, Cow::Owned(data)).unwrap();
        }
    }
    b.to_bytes().unwrap().as_slice().to_vec()
}

#[test]
fn bad_model_files_are_typed_errors_naming_the_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let config = &configs()[0];
    let path = tmp.path().join("good.edgecl");
    model(config, Precision::Int8).write(&path).unwrap();
    let good = std::fs::read(&path).unwrap();
    let open = |name: &str, bytes: &[u8]| {
        let p = tmp.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        InferenceModel::open(&p).unwrap_err()
    };

    // Truncated, and one flipped payload byte (caught by its checksum).
    let e = open("truncated", &good[..good.len() - 100]);
    assert!(matches!(e, InferError::Container { .. }), "{e}");
    let mut flipped = good.clone();
    let n = flipped.len();
    flipped[n - 5] ^= 0x40;
    let e = open("flipped", &flipped);
    assert!(matches!(e, InferError::Container { .. }), "{e}");

    // A missing weight section.
    let codes = "weights.encoder.layer.1.output.dense.weight.i8";
    let e = open(
        "missing",
        &rewrite(&good, |n, d, s, b| (n != codes).then(|| (d, s.to_vec(), b.to_vec()))),
    );
    assert!(matches!(&e, InferError::MissingSection { section, .. } if section == codes), "{e}");

    // A config that disagrees with the weights: shapes are named.
    let wide = EncoderConfig { hidden_size: 256, num_heads: 4, ..config.clone() };
    let json = wide.to_json().to_string().into_bytes();
    let e = open(
        "mismatched",
        &rewrite(&good, |n, d, s, b| {
            Some(if n == section_names::CONFIG {
                (d, vec![json.len() as u64], json.clone())
            } else {
                (d, s.to_vec(), b.to_vec())
            })
        }),
    );
    assert!(
        matches!(&e, InferError::BadSection { section, .. } if section.starts_with("weights.")),
        "{e}"
    );

    // Scales stored as i8, and a non-model container.
    let scale = "weights.encoder.layer.0.attention.self.key.weight.scale";
    let e = open(
        "dtype",
        &rewrite(&good, |n, d, s, b| {
            Some(if n == scale {
                (Dtype::I8, vec![b.len() as u64], b.to_vec())
            } else {
                (d, s.to_vec(), b.to_vec())
            })
        }),
    );
    assert!(matches!(&e, InferError::BadSection { section, .. } if section == scale), "{e}");
    let mut b = ContainerBuilder::new();
    b.add_key_values("meta", [("kind", "index")]).unwrap();
    let e = open("index", b.to_bytes().unwrap().as_slice());
    assert!(matches!(&e, InferError::BadSection { section, .. } if section == "meta"), "{e}");
    let e = InferenceModel::open(tmp.path().join("absent")).unwrap_err();
    assert!(e.to_string().contains("absent"), "{e}");
}

#[test]
fn bad_inputs_are_typed_errors() {
    let m = model(&configs()[0], Precision::F32);
    let vocab = m.config().vocab_size as u32;
    let e = m.embed_tokens(&[2, vocab, 3], &[1, 1, 1], 3).unwrap_err();
    assert!(e.to_string().contains("token id"), "{e}");
    let e = m.embed_tokens(&[2, 5, 3, 2, 5, 3], &[1, 1, 1, 0, 0, 0], 3).unwrap_err();
    assert!(e.to_string().contains("sequence 1"), "{e}");
    assert!(m.embed_tokens(&[2, 5, 3], &[1, 1], 3).is_err());
    assert!(m.embed_tokens(&[2, 5, 3], &[1, 1, 1], 0).is_err());
    let long = vec![5u32; m.config().max_position_embeddings + 1];
    let e = m.embed_tokens(&long, &vec![1; long.len()], long.len()).unwrap_err();
    assert!(e.to_string().contains("position"), "{e}");

    // A tokenizer larger than the embedding table.
    let small = EncoderConfig::micro(4);
    let e = InferenceModel::from_params(&small, &params(&small, 1), tokenizer(), Precision::F32)
        .unwrap_err();
    assert!(matches!(e, InferError::Invalid { .. }), "{e}");
    assert!("int4".parse::<Precision>().is_err());
    assert_eq!("int8".parse::<Precision>().unwrap(), Precision::Int8);
}
