//! The subcommands of `edgecl`, and the pieces several of them share:
//! opening a container with errors naming the file, and the search flags
//! common to `search` and `eval`.

pub mod bench;
pub mod cpu;
pub mod embed;
pub mod eval;
pub mod index;
pub mod inspect;
pub mod quantize;
pub mod quickstart;
pub mod search;
pub mod train;
pub mod train_cross;

use std::path::Path;

use edgecl_runtime::container::{self, Checksums, ContainerError, MappedContainer};
use edgecl_runtime::index::{Index, Rescore, SearchMode, SearchParams};

use crate::error::CliError;
pub use crate::error::CmdResult;

/// Maps and validates a container, naming `path` in any error.
pub fn open_container(path: &Path, checksums: Checksums) -> CmdResult<MappedContainer> {
    container::open(path, checksums).map_err(|e| match e {
        ContainerError::Io { op, source, .. } => {
            CliError::runtime(path.display(), format!("{op}: {source}"))
        }
        e => CliError::runtime(path.display(), e),
    })
}

/// A search mode as typed after `--mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ModeArg {
    Exact,
    Int8,
    Binary,
    Pq4,
    Pq8,
    Hnsw,
}

impl From<ModeArg> for SearchMode {
    fn from(m: ModeArg) -> Self {
        match m {
            ModeArg::Exact => SearchMode::Exact,
            ModeArg::Int8 => SearchMode::Int8,
            ModeArg::Binary => SearchMode::Binary,
            ModeArg::Pq4 => SearchMode::Pq4,
            ModeArg::Pq8 => SearchMode::Pq8,
            ModeArg::Hnsw => SearchMode::Hnsw,
        }
    }
}

/// What rescores a shortlist, as typed after `--rescore`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RescoreArg {
    None,
    Int8,
    F32,
}

/// Search settings shared by `search` and `eval --index`.
#[derive(clap::Args, Debug, Clone)]
pub struct SearchOpts {
    /// First-pass mode [default: binary when the index has sign bits, else
    /// int8, exact, hnsw, pq8, pq4 in that order].
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    /// Rescoring of the first pass's shortlist (int8, binary, pq4, pq8 modes)
    /// [default: int8 when stored, else f32 when stored, else none].
    #[arg(long, value_enum)]
    pub rescore: Option<RescoreArg>,
    /// Candidates the first pass keeps for rescoring.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub shortlist: u32,
    /// HNSW candidate list size.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    pub ef: u32,
}

impl SearchOpts {
    /// The parameters for `index`, filling defaults from what it stores
    /// and refusing (as a usage error) a mode it cannot answer.
    pub fn params(&self, index: &Index<'_>, k: usize) -> CmdResult<SearchParams<'static>> {
        let have = index.modes();
        let mode = match self.mode {
            Some(m) => {
                let m = SearchMode::from(m);
                if !have.contains(&m) {
                    let names: Vec<&str> = have.iter().map(|m| m.name()).collect();
                    return Err(CliError::usage(
                        "--mode",
                        format!(
                            "this index cannot answer {} (it supports {})",
                            m.name(),
                            names.join(", ")
                        ),
                    ));
                }
                m
            }
            None => [
                SearchMode::Binary,
                SearchMode::Int8,
                SearchMode::Exact,
                SearchMode::Hnsw,
                SearchMode::Pq8,
                SearchMode::Pq4,
            ]
            .into_iter()
            .find(|m| have.contains(m))
            .ok_or_else(|| {
                CliError::runtime("--index", "the index stores no searchable vectors")
            })?,
        };
        let rescorable = matches!(
            mode,
            SearchMode::Int8 | SearchMode::Binary | SearchMode::Pq4 | SearchMode::Pq8
        );
        let rescore = match self.rescore {
            _ if !rescorable => Rescore::None,
            Some(RescoreArg::None) => Rescore::None,
            Some(RescoreArg::Int8) if have.contains(&SearchMode::Int8) => Rescore::Int8,
            Some(RescoreArg::F32) if have.contains(&SearchMode::Exact) => Rescore::F32,
            Some(r) => {
                let what = if r == RescoreArg::Int8 { "int8 codes" } else { "f32 vectors" };
                return Err(CliError::usage("--rescore", format!("the index stores no {what}")));
            }
            // int8 mode's own codes gain nothing from an int8 rescoring.
            None if mode != SearchMode::Int8 && have.contains(&SearchMode::Int8) => Rescore::Int8,
            None if have.contains(&SearchMode::Exact) => Rescore::F32,
            None => Rescore::None,
        };
        Ok(SearchParams {
            k,
            mode,
            rescore,
            shortlist: self.shortlist as usize,
            ef: self.ef as usize,
            allow: None,
        })
    }
}

/// A short name for a rescoring.
pub fn rescore_name(r: Rescore) -> &'static str {
    match r {
        Rescore::None => "none",
        Rescore::Int8 => "int8",
        Rescore::F32 => "f32",
    }
}
