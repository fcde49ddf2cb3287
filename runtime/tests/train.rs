//! End-to-end: a one-layer encoder trained with in-batch InfoNCE on toy
//! pairs, and bit-identical reproducibility for a fixed seed and thread
//! count.

mod common;

use common::{info_nce, toy_batch, TINY};
use edgecl_runtime::optim::{AdamW, AdamWConfig, LrSchedule, Optimizer};
use edgecl_runtime::{Graph, Runtime};

/// Runs `steps` training steps and returns the loss of each.
fn train(threads: usize, seed: u64, steps: usize) -> Vec<f32> {
    let b = 8;
    let mut g = Graph::new(Runtime::new(threads).unwrap(), seed);
    g.set_params(TINY.params(seed));
    let mut opt = AdamW::new(g.params(), AdamWConfig::default());
    let sched = LrSchedule::WarmupCosine { peak: 3e-3, min: 3e-4, warmup: 5, total: steps as u64 };
    let targets: Vec<u32> = (0..b as u32).collect();
    let mut losses = Vec::new();
    for step in 0..steps {
        // Two fixed batches, alternating.
        let (qi, qm, di, dm) = toy_batch(&TINY, b, 1 + (step % 2) as u64);
        let q = TINY.encode(&mut g, &qi, &qm, b).unwrap();
        let d = TINY.encode(&mut g, &di, &dm, b).unwrap();
        let loss = info_nce(&mut g, q, d, 0.1, &targets).unwrap();
        losses.push(g.scalar(loss).unwrap());
        g.backward(loss).unwrap();
        opt.step_graph(&mut g, sched.lr(step as u64)).unwrap();
        g.params_mut().zero_grad();
    }
    losses
}

#[test]
fn info_nce_loss_decreases() {
    let losses = train(2, 11, 50);
    let first: f32 = losses[..5].iter().sum::<f32>() / 5.0;
    let last: f32 = losses[45..].iter().sum::<f32>() / 5.0;
    println!("loss: first 5 mean {first:.4}, last 5 mean {last:.4}");
    assert!(losses.iter().all(|l| l.is_finite()));
    assert!(last < 0.5 * first, "loss did not halve: {first} -> {last}");
}

#[test]
fn same_seed_same_threads_bit_identical() {
    for threads in [1, 2] {
        let a = train(threads, 5, 4);
        let b = train(threads, 5, 4);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&a), bits(&b), "threads = {threads}");
    }
    // Chunking does not depend on the thread count and no reduction is
    // split across threads, so the count does not change the bits either.
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&train(1, 5, 4)), bits(&train(3, 5, 4)), "1 vs 3 threads");
    // A different seed changes init and dropout, hence the losses.
    assert_ne!(train(1, 5, 2), train(1, 6, 2));
}

/// Wall time of a training step at a small-BERT-like size, for a human to
/// read (`cargo test -p edgecl-runtime --test train -- --ignored --nocapture`);
/// asserts nothing about speed.
#[test]
#[ignore = "a wall-time printout for a human; asserts nothing about speed"]
fn step_time_report() {
    use common::Tiny;
    let tiny = Tiny { vocab: 1000, t: 32, c: 128, heads: 4, ffn: 512, dropout: 0.1 };
    let b = 16;
    for threads in [1, 2] {
        let mut g = Graph::new(Runtime::new(threads).unwrap(), 1);
        g.set_params(tiny.params(1));
        let mut opt = AdamW::new(g.params(), AdamWConfig::default());
        let targets: Vec<u32> = (0..b as u32).collect();
        let (qi, qm, di, dm) = toy_batch(&tiny, b, 1);
        let mut times = Vec::new();
        for _ in 0..6 {
            let t0 = std::time::Instant::now();
            let q = tiny.encode(&mut g, &qi, &qm, b).unwrap();
            let d = tiny.encode(&mut g, &di, &dm, b).unwrap();
            let loss = info_nce(&mut g, q, d, 0.05, &targets).unwrap();
            g.backward(loss).unwrap();
            opt.step_graph(&mut g, 1e-3).unwrap();
            g.params_mut().zero_grad();
            times.push(t0.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!(
            "threads {threads}: B={b} pairs, T={}, C={}, H={}, F={}: median step {:.1} ms (min {:.1})",
            tiny.t, tiny.c, tiny.heads, tiny.ffn, times[3], times[0]
        );
    }
}
