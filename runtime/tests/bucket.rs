//! Length buckets: the plan partitions the rows, minimises its objective
//! (checked against brute force on small batches), and a bucketed forward
//! pass gives the padded pass's embeddings and gradients.

use edgecl_runtime::encoder::{
    bucket_stats, plan_buckets, Encoder, EncoderConfig, NormPlacement, Pooling, TokenBatch,
};
use edgecl_runtime::{Graph, Runtime};

/// A right-padded batch with the given row lengths; token ids derive from
/// the row and position so every row is distinct.
fn batch_of(lens: &[usize], vocab: u32) -> TokenBatch {
    let seq = lens.iter().copied().max().unwrap_or(1);
    let mut b = TokenBatch {
        ids: vec![0; lens.len() * seq],
        type_ids: vec![0; lens.len() * seq],
        mask: vec![0.0; lens.len() * seq],
        batch: lens.len(),
        seq,
    };
    for (r, &n) in lens.iter().enumerate() {
        for t in 0..n {
            b.ids[r * seq + t] = 1 + ((r * 7 + t * 3) as u32 % (vocab - 1));
            b.mask[r * seq + t] = 1.0;
        }
    }
    b
}

/// The objective of the plan for one grouping of sorted lengths.
fn cost(sorted: &[usize], cuts: &[usize], group_cost: usize) -> usize {
    cuts.windows(2).map(|w| (w[1] - w[0]) * sorted[w[1] - 1] + group_cost).sum()
}

/// The least objective over every split of `sorted` into at most `max`
/// contiguous groups.
fn brute_force(sorted: &[usize], max: usize, group_cost: usize) -> usize {
    let n = sorted.len();
    let mut best = usize::MAX;
    for mask in 0u32..(1 << (n - 1)) {
        if mask.count_ones() as usize + 1 > max {
            continue;
        }
        let mut cuts = vec![0];
        cuts.extend((1..n).filter(|&i| mask & (1 << (i - 1)) != 0));
        cuts.push(n);
        best = best.min(cost(sorted, &cuts, group_cost));
    }
    best
}

#[test]
fn plans_partition_the_rows_and_keep_their_tokens() {
    let lens = [3, 17, 5, 5, 9, 2, 30, 4, 12, 6];
    let b = batch_of(&lens, 50);
    for max_groups in 1..=6 {
        let plan = plan_buckets(&b, max_groups, 8).unwrap();
        assert!(!plan.is_empty() && plan.len() <= max_groups);
        let mut seen: Vec<usize> = plan.iter().flat_map(|g| g.rows.clone()).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..lens.len()).collect::<Vec<_>>(), "every row exactly once");
        for g in &plan {
            g.batch.validate().unwrap();
            assert_eq!(g.batch.seq, g.rows.iter().map(|&r| lens[r]).max().unwrap());
            for (k, &r) in g.rows.iter().enumerate() {
                assert_eq!(g.batch.row_len(k), lens[r]);
                let n = lens[r];
                assert_eq!(g.batch.ids[k * g.batch.seq..][..n], b.ids[r * b.seq..][..n]);
            }
        }
        let s = bucket_stats(&b, &plan);
        assert_eq!(s.padded, lens.len() * 30);
        assert!(s.bucketed <= s.padded, "{s:?}");
    }
    // Free groups: every distinct length gets its own, nothing is padded.
    let plan = plan_buckets(&b, lens.len(), 0).unwrap();
    assert_eq!(bucket_stats(&b, &plan).bucketed, lens.iter().sum::<usize>());
    // Groups too dear to pay for: one group, the padded batch's positions.
    let plan = plan_buckets(&b, 4, 1 << 20).unwrap();
    assert_eq!(plan.len(), 1);
    assert!(plan_buckets(&b, 0, 8).is_err());
}

#[test]
fn plans_minimise_the_objective() {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = |m: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % m as u64) as usize
    };
    for _ in 0..200 {
        let n = 1 + next(9);
        let lens: Vec<usize> = (0..n).map(|_| 1 + next(40)).collect();
        let (max_groups, group_cost) = (1 + next(5), next(60));
        let b = batch_of(&lens, 64);
        let plan = plan_buckets(&b, max_groups, group_cost).unwrap();
        let mut sorted = lens.clone();
        sorted.sort_unstable();
        let got: usize = plan.iter().map(|g| g.rows.len() * g.batch.seq + group_cost).sum();
        assert_eq!(got, brute_force(&sorted, max_groups, group_cost), "{lens:?} {max_groups}");
    }
}

#[test]
fn bucketed_forward_matches_the_padded_one_in_value_and_gradient() {
    let cfg = EncoderConfig {
        vocab_size: 40,
        hidden_size: 16,
        num_layers: 2,
        num_heads: 2,
        intermediate_size: 32,
        max_position_embeddings: 32,
        type_vocab_size: 2,
        layer_norm_eps: 1e-12,
        norm: NormPlacement::Post,
        pooling: Pooling::Mean,
        projection_dim: Some(8),
        normalize: true,
        max_seq_len: 32,
    };
    let enc = Encoder::new(cfg).unwrap().with_dropout(0.0);
    let lens = [3, 20, 5, 4, 11, 2, 18, 7];
    let b = batch_of(&lens, 40);
    let weights: Vec<f32> =
        (0..lens.len() * 8).map(|i| ((i * 37 % 11) as f32 - 5.0) / 7.0).collect();

    let run = |bucketed: bool| {
        let mut g = Graph::new(Runtime::new(1).unwrap(), 5);
        g.set_params(enc.init_params(11).unwrap());
        let y = if bucketed {
            let plan = plan_buckets(&b, 4, 4).unwrap();
            assert!(plan.len() > 1, "the test needs more than one group");
            enc.forward_planned(&mut g, &plan).unwrap()
        } else {
            enc.forward(&mut g, &b).unwrap()
        };
        let w = g.input_slice(&[lens.len(), 8], &weights).unwrap();
        let yw = g.mul(y, w).unwrap();
        let loss = g.sum(yw).unwrap();
        g.backward(loss).unwrap();
        let out = g.value(y).unwrap().as_f32().unwrap().to_vec();
        let grads: Vec<Vec<f32>> = g.params().iter().map(|p| p.grad().to_vec()).collect();
        (out, grads)
    };
    let (y0, g0) = run(false);
    let (y1, g1) = run(true);
    for (a, c) in y0.iter().zip(&y1) {
        assert!((a - c).abs() < 1e-5, "embedding {a} vs {c}");
    }
    assert_eq!(g0.len(), g1.len());
    for (p, (a, c)) in g0.iter().zip(&g1).enumerate() {
        assert_eq!(a.len(), c.len(), "param {p}");
        let scale = a.iter().fold(1e-3f32, |m, x| m.max(x.abs()));
        for (x, z) in a.iter().zip(c) {
            assert!((x - z).abs() <= 1e-4 * scale, "param {p}: {x} vs {z}");
        }
    }
}
