//! Seconds per contrastive training step of the dual encoder, for scripts
//! that set it beside other frameworks (one JSON line with `--json`).
//!
//! ```text
//! cargo run --release -p edgecl-benches --example train_step -- \
//!     --preset tiny|micro [--seq 64] [--batch 64] [--threads 1] \
//!     [--warmup 2] [--steps 5] [--vocab 30522] [--norm pre|post] \
//!     [--seed 7] [--json]
//! ```
//!
//! One step is what the training loop does for in-batch InfoNCE without
//! hard negatives: `batch` queries and `batch` positives, each exactly
//! `seq` tokens (`[CLS]`, random word ids in `[1000, vocab)`, `[SEP]`, no
//! padding; the same batch every step), go forward through one shared
//! encoder (mean pooling, L2 normalisation, hidden-state dropout 0.1 in
//! training mode); the trainer's InfoNCE (temperature 0.05, queries
//! against every positive) gives the loss; then backward, global gradient
//! norm clipped to 1.0, and AdamW (lr 1e-4, weight decay 0.01 on matrices
//! and tables, betas 0.9/0.999, eps 1e-8), gradients zeroed.
//!
//! The encoder is the preset with random, seeded initialisation (`micro`:
//! 2 layers, width 128, 2 heads, FFN 512; `tiny`: 4 layers, 256, 4 heads,
//! FFN 1024) over a `--vocab` table; `--norm` picks the block layout
//! (`pre`, the presets' own, or BERT's `post`). After `--warmup` untimed
//! steps, `--steps` steps are timed one by one; the report gives the
//! median step, pairs (query-positive) per second from it, the median of
//! each phase (forward with loss, backward, clip with optimizer), the
//! loss of the first warmup step (taken before any update: near
//! `ln(batch)` for random weights) and of the last step, the parameter
//! count and the process's peak resident set (`VmHWM`).

use std::process::ExitCode;
use std::time::Instant;

use edgecl_runtime::encoder::{Encoder, EncoderConfig, NormPlacement, TokenBatch};
use edgecl_runtime::optim::{clip_grad_norm, AdamW, AdamWConfig, Optimizer};
use edgecl_runtime::{Graph, Runtime};
use edgecl_trainer::loss::{info_nce, InfoNceOptions, Temperature};

const CLS: u32 = 101;
const SEP: u32 = 102;
/// Word ids are drawn from `[FIRST_WORD, vocab)`.
const FIRST_WORD: u32 = 1000;
const DROPOUT: f32 = 0.1;
const TEMPERATURE: f32 = 0.05;
const LR: f32 = 1e-4;
const WEIGHT_DECAY: f32 = 0.01;
const CLIP: f32 = 1.0;

const USAGE: &str = "\
train_step: time one contrastive training step of the dual encoder

  --preset micro|tiny   encoder shape (default tiny)
  --seq N               tokens per sequence, [CLS] and [SEP] included (64)
  --batch N             query-positive pairs per step (64)
  --threads N           runtime threads (1)
  --warmup N            untimed steps first (2)
  --steps N             timed steps (5)
  --vocab N             vocabulary rows, more than 1000 (30522)
  --norm pre|post       block layout: the presets' pre-norm or BERT's post-norm (pre)
  --seed N              initialisation, data and dropout seed (7)
  --json                print one JSON line instead of text

Fixed: hidden-state dropout 0.1, InfoNCE temperature 0.05, grad-norm clip 1.0,
AdamW lr 1e-4, weight decay 0.01.";

struct Args {
    preset: String,
    seq: usize,
    batch: usize,
    threads: usize,
    warmup: usize,
    steps: usize,
    vocab: usize,
    norm: NormPlacement,
    seed: u64,
    json: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        preset: "tiny".into(),
        seq: 64,
        batch: 64,
        threads: 1,
        warmup: 2,
        steps: 5,
        vocab: 30522,
        norm: NormPlacement::Pre,
        seed: 7,
        json: false,
    };
    let mut argv = std::env::args().skip(1);
    while let Some(flag) = argv.next() {
        if flag == "--json" {
            a.json = true;
            continue;
        }
        if flag == "--help" || flag == "-h" {
            return Err(String::new());
        }
        let value = argv.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let int =
            |v: &str| v.parse::<usize>().map_err(|_| format!("{flag}: {v:?} is not an integer"));
        match flag.as_str() {
            "--preset" => a.preset = value,
            "--seq" => a.seq = int(&value)?,
            "--batch" => a.batch = int(&value)?,
            "--threads" => a.threads = int(&value)?,
            "--warmup" => a.warmup = int(&value)?,
            "--steps" => a.steps = int(&value)?,
            "--vocab" => a.vocab = int(&value)?,
            "--seed" => a.seed = int(&value)? as u64,
            "--norm" => {
                a.norm = match value.as_str() {
                    "pre" => NormPlacement::Pre,
                    "post" => NormPlacement::Post,
                    v => return Err(format!("--norm: {v:?} is neither pre nor post")),
                }
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if a.seq < 3 || a.batch < 2 || a.threads == 0 || a.steps == 0 {
        return Err("need --seq >= 3, --batch >= 2, --threads >= 1, --steps >= 1".into());
    }
    if a.vocab <= FIRST_WORD as usize {
        return Err(format!("--vocab must exceed {FIRST_WORD}"));
    }
    Ok(a)
}

/// A splitmix64 step: the token stream depends only on the seed.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `rows` sequences of exactly `seq` tokens, no padding.
fn token_batch(rows: usize, seq: usize, vocab: usize, state: &mut u64) -> TokenBatch {
    let words = vocab as u64 - FIRST_WORD as u64;
    let mut ids = Vec::with_capacity(rows * seq);
    for _ in 0..rows {
        ids.push(CLS);
        ids.extend((2..seq).map(|_| FIRST_WORD + (next(state) % words) as u32));
        ids.push(SEP);
    }
    TokenBatch { ids, type_ids: vec![0; rows * seq], mask: vec![1.0; rows * seq], batch: rows, seq }
}

/// Peak resident set of this process in MB (`VmHWM`), if the kernel says.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        0.5 * (xs[n / 2 - 1] + xs[n / 2])
    }
}

/// Phase times of one step, in seconds, and its loss.
struct Timed {
    forward: f64,
    backward: f64,
    optim: f64,
    loss: f32,
}

struct Step {
    encoder: Encoder,
    g: Graph,
    opt: AdamW,
    queries: TokenBatch,
    positives: TokenBatch,
    opts: InfoNceOptions,
    params: usize,
}

impl Step {
    fn new(a: &Args) -> Result<Step, Box<dyn std::error::Error>> {
        let mut cfg = EncoderConfig::preset(&a.preset, a.vocab)?;
        cfg.norm = a.norm;
        cfg.max_seq_len = a.seq.max(cfg.max_seq_len).min(cfg.max_position_embeddings);
        let encoder = Encoder::new(cfg)?.with_dropout(DROPOUT);
        let params = encoder.init_params(a.seed)?;
        let count = params.numel();
        let adam = AdamWConfig { weight_decay: WEIGHT_DECAY, ..AdamWConfig::default() };
        let opt = AdamW::new(&params, adam);
        let mut g = Graph::new(Runtime::new(a.threads)?, a.seed);
        g.set_params(params);
        g.set_training(true);
        let mut state = a.seed ^ 0x7472_6169_6e5f_7374;
        let queries = token_batch(a.batch, a.seq, a.vocab, &mut state);
        let positives = token_batch(a.batch, a.seq, a.vocab, &mut state);
        let opts = InfoNceOptions {
            temperature: Temperature::Fixed(TEMPERATURE),
            ..InfoNceOptions::default()
        };
        Ok(Step { encoder, g, opt, queries, positives, opts, params: count })
    }

    fn run(&mut self) -> Result<Timed, Box<dyn std::error::Error>> {
        let t0 = Instant::now();
        let g = &mut self.g;
        let q = self.encoder.forward(g, &self.queries)?;
        let d = self.encoder.forward(g, &self.positives)?;
        let loss = info_nce(g, q, d, &self.opts)?;
        let value = g.scalar(loss)?;
        if !value.is_finite() {
            return Err(format!("loss is {value}").into());
        }
        let t1 = Instant::now();
        g.backward(loss)?;
        let t2 = Instant::now();
        g.reset();
        clip_grad_norm(g.params_mut(), CLIP)?;
        self.opt.step_graph(g, LR)?;
        g.params_mut().zero_grad();
        let t3 = Instant::now();
        Ok(Timed {
            forward: (t1 - t0).as_secs_f64(),
            backward: (t2 - t1).as_secs_f64(),
            optim: (t3 - t2).as_secs_f64(),
            loss: value,
        })
    }
}

fn main() -> ExitCode {
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("train_step: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&a) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("train_step: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(a: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let mut step = Step::new(a)?;
    let mut first_loss = None;
    for _ in 0..a.warmup {
        let t = step.run()?;
        first_loss.get_or_insert(t.loss);
    }
    let mut timed = Vec::with_capacity(a.steps);
    for _ in 0..a.steps {
        let t = step.run()?;
        first_loss.get_or_insert(t.loss);
        timed.push(t);
    }
    let first_loss = first_loss.unwrap_or(f32::NAN);
    let mut total: Vec<f64> = timed.iter().map(|t| t.forward + t.backward + t.optim).collect();
    let mut fwd: Vec<f64> = timed.iter().map(|t| t.forward).collect();
    let mut bwd: Vec<f64> = timed.iter().map(|t| t.backward).collect();
    let mut opt: Vec<f64> = timed.iter().map(|t| t.optim).collect();
    let secs = median(&mut total);
    let (fwd, bwd, opt) = (median(&mut fwd), median(&mut bwd), median(&mut opt));
    let pairs = a.batch as f64 / secs;
    let loss = timed.last().map_or(f32::NAN, |t| t.loss);
    let rss = peak_rss_mb().map_or("null".to_string(), |m| format!("{m:.1}"));
    let norm = match a.norm {
        NormPlacement::Pre => "pre",
        NormPlacement::Post => "post",
    };
    if a.json {
        println!(
            "{{\"impl\":\"edgecl\",\"preset\":\"{}\",\"seq\":{},\"batch\":{},\"threads\":{},\
             \"secs_per_step\":{secs:.6},\"pairs_per_sec\":{pairs:.3},\"peak_rss_mb\":{rss},\
             \"loss\":{loss},\"first_loss\":{first_loss},\"params\":{},\"dropout\":{DROPOUT},\"norm\":\"{norm}\",\"vocab\":{},\
             \"steps\":{},\"forward_secs\":{fwd:.6},\"backward_secs\":{bwd:.6},\
             \"optim_secs\":{opt:.6}}}",
            a.preset, a.seq, a.batch, a.threads, step.params, a.vocab, a.steps
        );
    } else {
        println!(
            "train_step preset={} norm={norm} seq={} batch={} threads={} vocab={} \
             dropout={DROPOUT}\n  secs_per_step={secs:.4} pairs_per_sec={pairs:.1} \
             (forward+loss {fwd:.4}, backward {bwd:.4}, clip+adamw {opt:.4}; median of {})\n  \
             first_loss={first_loss:.5} loss={loss:.5} params={} peak_rss_mb={rss}",
            a.preset, a.seq, a.batch, a.threads, a.vocab, a.steps, step.params
        );
    }
    Ok(())
}
