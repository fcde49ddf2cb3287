//! Progress bars on stderr for long work, with rate and time left.
//!
//! A bar is drawn only when stderr is a terminal and `--quiet` is off:
//! redirected output and scripts see nothing but results and errors. The
//! bar is cheap to tick from many threads (indicatif batches its redraws).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A bar, or nothing when hidden.
pub struct Progress(Option<ProgressBar>);

impl Progress {
    /// A bar of `len` steps labelled `what` ("documents", "queries").
    pub fn new(len: u64, what: &str, quiet: bool) -> Self {
        if quiet || !std::io::stderr().is_terminal() {
            return Progress(None);
        }
        let style = ProgressStyle::with_template(
            "{msg:>10} [{bar:32}] {human_pos}/{human_len} {per_sec} eta {eta}",
        )
        .expect("the template is a valid literal")
        .progress_chars("=> ");
        let bar = ProgressBar::new(len).with_style(style).with_message(what.to_string());
        Progress(Some(bar))
    }

    /// A spinner for one long step with no count (index builds).
    pub fn spinner(what: &str, quiet: bool) -> Self {
        if quiet || !std::io::stderr().is_terminal() {
            return Progress(None);
        }
        let style = ProgressStyle::with_template("{spinner} {msg} {elapsed}")
            .expect("the template is a valid literal");
        let bar = ProgressBar::new_spinner().with_style(style).with_message(what.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        Progress(Some(bar))
    }

    /// Advances by `n` steps.
    pub fn inc(&self, n: u64) {
        if let Some(b) = &self.0 {
            b.inc(n);
        }
    }

    /// Removes the bar from the terminal.
    pub fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
