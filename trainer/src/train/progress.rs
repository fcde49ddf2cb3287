//! What a training run tells its caller while it runs, and how the caller
//! can stop it.
//!
//! [`TrainHooks`] has a default no-op for every event, so a caller (the CLI,
//! a test that aborts at step k, a job runner) overrides only what it
//! needs. [`ConsoleHooks`] is the interactive one: an indicatif bar with
//! loss, lr, pairs/s and ETA on stderr, and one plain line per log step in
//! the manner of llm.c's `step 20/300 | loss ...`. The bar hides itself when
//! stderr is not a terminal (indicatif checks), and `quiet` silences both.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::eval::DevMetrics;

/// One optimizer step, as reported to hooks.
#[derive(Clone, Debug)]
pub struct StepInfo {
    /// 1-based index of the step just taken.
    pub step: u64,
    pub total_steps: u64,
    /// 0-based epoch the step's batch came from.
    pub epoch: u64,
    pub loss: f32,
    pub lr: f32,
    /// Global gradient norm before clipping (`None` without clipping).
    pub grad_norm: Option<f32>,
    /// Training pairs per second over the steps since the last log line.
    pub pairs_per_sec: f64,
    /// Wall time since the run (or the resumed run) started.
    pub elapsed: Duration,
}

/// Events of a run; every method has a no-op default.
pub trait TrainHooks {
    /// Before the first step; `start_step` is the checkpoint's step when
    /// resuming, else 0.
    fn on_start(&mut self, _total_steps: u64, _start_step: u64) {}
    /// A free-form note (data summary, resumed from ..., checkpoint written).
    fn on_message(&mut self, _msg: &str) {}
    /// After every optimizer step.
    fn on_step(&mut self, _info: &StepInfo) {}
    /// Every `log_every` steps (also written to `log.jsonl`).
    fn on_log(&mut self, _info: &StepInfo) {}
    /// After each dev evaluation; `best` when it improved nDCG@10.
    fn on_eval(&mut self, _step: u64, _metrics: &DevMetrics, _best: bool) {}
    /// Asked after every step: `true` ends the run there, without a final
    /// checkpoint or model, as if the process had been killed.
    fn should_stop(&mut self, _step: u64) -> bool {
        false
    }
    /// After the last step and the final writes.
    fn on_finish(&mut self) {}
}

/// Hooks that do nothing.
pub struct NoHooks;

impl TrainHooks for NoHooks {}

/// A progress bar plus log lines on stderr.
pub struct ConsoleHooks {
    bar: ProgressBar,
    quiet: bool,
}

impl ConsoleHooks {
    /// `quiet` prints nothing; otherwise the bar shows when stderr is a
    /// terminal and log lines print either way.
    pub fn new(quiet: bool) -> ConsoleHooks {
        let bar = ProgressBar::hidden();
        ConsoleHooks { bar, quiet }
    }

    fn println(&self, line: &str) {
        if self.quiet {
            return;
        }
        if self.bar.is_hidden() {
            eprintln!("{line}");
        } else {
            self.bar.println(line);
        }
    }
}

impl TrainHooks for ConsoleHooks {
    fn on_start(&mut self, total_steps: u64, start_step: u64) {
        if self.quiet {
            return;
        }
        let bar = ProgressBar::with_draw_target(Some(total_steps), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "{bar:30} {pos}/{len} [{elapsed_precise} < {eta_precise}] {msg}",
        )
        .expect("the template is fixed and valid");
        bar.set_style(style);
        bar.set_position(start_step);
        bar.reset_eta();
        self.bar = bar;
    }

    fn on_message(&mut self, msg: &str) {
        self.println(msg);
    }

    fn on_step(&mut self, info: &StepInfo) {
        self.bar.set_position(info.step);
        self.bar.set_message(format!(
            "loss {:.4} lr {:.2e} {:.0} pairs/s",
            info.loss, info.lr, info.pairs_per_sec
        ));
    }

    fn on_log(&mut self, info: &StepInfo) {
        self.println(&format!(
            "step {:>6}/{} | loss {:.4} | lr {:.2e} | {:.0} pairs/s | {:.1} s",
            info.step,
            info.total_steps,
            info.loss,
            info.lr,
            info.pairs_per_sec,
            info.elapsed.as_secs_f64()
        ));
    }

    fn on_eval(&mut self, step: u64, m: &DevMetrics, best: bool) {
        self.println(&format!(
            "eval step {step}: nDCG@10 {:.4} | Recall@10 {:.4} | Recall@100 {:.4} | MRR@10 \
             {:.4} | {} queries, {} docs{}",
            m.ndcg_at_10,
            m.recall_at_10,
            m.recall_at_100,
            m.mrr_at_10,
            m.queries,
            m.documents,
            if best { " (best)" } else { "" }
        ));
    }

    fn on_finish(&mut self) {
        self.bar.finish_and_clear();
    }
}
