//! Tokenizer throughput on the compatibility fixture (BERT uncased vocab,
//! 1,859 real and hand-made texts, 3% of them with non-ASCII characters): sentences per second
//! single-threaded with a reused scratch, and as one rayon batch padded to
//! the longest. Measurement time: `EDGECL_BENCH_SECS` (default 2).

use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use edgecl_runtime::tokenizer::{EncodeOptions, Encoding, Padding, Scratch, Tokenizer};

fn fixture() -> (Tokenizer, Vec<String>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tokenizer");
    let tok = Tokenizer::from_vocab_file(dir.join("vocab.txt")).expect("fixture vocab");
    let lines = std::fs::read_to_string(dir.join("wordpiece.jsonl")).expect("fixture texts");
    let texts = lines
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["text"].as_str().map(str::to_owned))
        .collect();
    (tok, texts)
}

fn bench(c: &mut Criterion) {
    let (tok, texts) = fixture();
    let secs = std::env::var("EDGECL_BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(2.0);
    let mut g = c.benchmark_group("tokenizer");
    g.measurement_time(Duration::from_secs_f64(secs)).warm_up_time(Duration::from_millis(300));
    g.throughput(Throughput::Elements(texts.len() as u64));
    let n = texts.len();

    // One thread, one scratch, one output reused: the allocation-free path.
    let opts = EncodeOptions::default();
    g.bench_function(format!("encode/bert-uncased/fixture-{n}/single-thread"), |b| {
        let mut scratch = Scratch::default();
        let mut out = Encoding::default();
        b.iter(|| {
            let mut total = 0;
            for t in &texts {
                tok.encode_with(t, None, &opts, &mut scratch, &mut out).expect("encode");
                total += out.len();
            }
            total
        })
    });

    // The whole fixture as one batch on rayon, max_len 128, padded to the longest.
    let opts = EncodeOptions { max_len: Some(128), padding: Padding::Longest };
    g.bench_function(format!("encode_batch/bert-uncased/fixture-{n}/max128-longest"), |b| {
        b.iter(|| tok.encode_batch(&texts, &opts).expect("encode batch").len())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
