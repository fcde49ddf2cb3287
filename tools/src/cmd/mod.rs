//! The subcommands of `edgecl`.

pub mod bench;
pub mod cpu;
pub mod inspect;

/// A subcommand's failure: one line for the user.
pub type CmdResult = Result<(), Box<dyn std::error::Error>>;
