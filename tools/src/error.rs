//! The program's one error type: a line for the user and an exit code.
//!
//! Every failure prints as `edgecl: error: <where>: <what>` on one line,
//! where `<where>` is a file (with its line when one is at fault) or the
//! flag that was wrong. Two kinds exist because the exit code tells a
//! script which side is to blame: a usage error (bad flags, flags that do
//! not go together) exits with 2, like clap's own parse errors; anything
//! that goes wrong while running (missing or corrupt files, bad data)
//! exits with 1.
//!
//! Library errors are wrapped with [`Context::at`], which puts the file or
//! flag in front; the trainer's errors already start with their file and
//! line, so they convert with a plain `?`.

use std::fmt;

/// Exit code of a usage error.
pub const EXIT_USAGE: u8 = 2;
/// Exit code of a runtime error.
pub const EXIT_RUNTIME: u8 = 1;

/// A failure of a subcommand.
#[derive(Debug)]
pub struct CliError {
    /// Whether the command line itself is at fault (exit 2) or the run (1).
    pub usage: bool,
    /// The message, beginning with the file, line or flag at fault.
    pub msg: String,
}

impl CliError {
    /// A usage error about `flag`.
    pub fn usage(flag: impl fmt::Display, what: impl fmt::Display) -> Self {
        CliError { usage: true, msg: format!("{flag}: {what}") }
    }

    /// A runtime error about `at` (a file, `file:line` or a flag).
    pub fn runtime(at: impl fmt::Display, what: impl fmt::Display) -> Self {
        CliError { usage: false, msg: format!("{at}: {what}") }
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        if self.usage {
            EXIT_USAGE
        } else {
            EXIT_RUNTIME
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One line, whatever a wrapped error's text held.
        let one_line: String =
            self.msg.chars().map(|c| if c == '\n' || c == '\r' { ' ' } else { c }).collect();
        f.write_str(&one_line)
    }
}

/// The trainer's errors name their file and line already.
impl From<edgecl_trainer::error::TrainerError> for CliError {
    fn from(e: edgecl_trainer::error::TrainerError) -> Self {
        CliError { usage: false, msg: e.to_string() }
    }
}

/// Result of a subcommand.
pub type CmdResult<T = ()> = Result<T, CliError>;

/// Puts the file or flag at fault in front of a library error.
pub trait Context<T> {
    /// A runtime error `"{at}: {error}"`.
    fn at(self, at: impl fmt::Display) -> CmdResult<T>;
}

impl<T, E: fmt::Display> Context<T> for Result<T, E> {
    fn at(self, at: impl fmt::Display) -> CmdResult<T> {
        self.map_err(|e| CliError::runtime(at, e))
    }
}
