//! `edgecl embed`: texts to vectors with an encoder, written as `.npy` or
//! JSONL (`{"id", "vector", "text"}`, ready for `index build`).
//!
//! Texts come from arguments, from a file of one text per line (ids are
//! line numbers), or from a BEIR `corpus.jsonl` (title and text joined by
//! a space, ids from `_id`). They are embedded in batches of `--batch`;
//! the model groups each batch's tokens into large GEMMs, so bigger batches
//! run faster per text until memory says otherwise.

use std::path::PathBuf;

use edgecl_trainer::data::beir::open_corpus;
use edgecl_trainer::data::ReadOptions;

use super::CmdResult;
use crate::error::CliError;
use crate::files::read_to_string;
use crate::model;
use crate::output::out;
use crate::vectors;

const EXAMPLES: &str = "Examples:
  edgecl embed --model models/minilm --out q.npy \"what is a product quantizer\"
  edgecl embed --model model.ecl --texts lines.txt --out lines.jsonl --batch 128
  edgecl embed --model models/minilm --int8 --corpus scifact/corpus.jsonl --out docs.jsonl";

#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
#[command(group = clap::ArgGroup::new("input").required(true).args(["texts", "corpus", "text"]))]
pub struct Args {
    /// Model file (edgecl container) or Hugging Face / sentence-transformers folder.
    #[arg(long, value_name = "MODEL")]
    model: PathBuf,
    /// File of texts, one per line.
    #[arg(long, value_name = "FILE")]
    texts: Option<PathBuf>,
    /// BEIR corpus.jsonl ({"_id", "title", "text"}).
    #[arg(long, value_name = "FILE")]
    corpus: Option<PathBuf>,
    /// Texts given on the command line.
    #[arg(value_name = "TEXT")]
    text: Vec<String>,
    /// Output: .npy (f32 [n, d]) or .jsonl.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Run a folder model's linear layers in int8.
    #[arg(long)]
    int8: bool,
    /// Texts per forward pass.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    batch: u32,
}

/// Ids and texts from whichever input was given.
fn inputs(args: &Args) -> CmdResult<(Vec<String>, Vec<String>)> {
    if let Some(path) = &args.texts {
        let text = read_to_string(path)?;
        let mut ids = Vec::new();
        let mut texts = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                return Err(CliError::runtime(
                    format!("{}:{}", path.display(), i + 1),
                    "empty text",
                ));
            }
            ids.push((i + 1).to_string());
            texts.push(line.to_string());
        }
        if texts.is_empty() {
            return Err(CliError::runtime(path.display(), "holds no texts"));
        }
        return Ok((ids, texts));
    }
    if let Some(path) = &args.corpus {
        let docs = open_corpus(path, ReadOptions::STRICT)?.collect_loaded()?.data;
        if docs.is_empty() {
            return Err(CliError::runtime(path.display(), "holds no documents"));
        }
        let texts = docs.iter().map(|d| format!("{} {}", d.title, d.text).trim().to_string());
        let texts: Vec<String> = texts.collect();
        return Ok((docs.into_iter().map(|d| d.id).collect(), texts));
    }
    if let Some(i) = args.text.iter().position(|t| t.trim().is_empty()) {
        return Err(CliError::usage("TEXT", format!("argument {} is empty", i + 1)));
    }
    Ok(((0..args.text.len()).map(|i| i.to_string()).collect(), args.text.clone()))
}

pub fn run(args: &Args, quiet: bool) -> CmdResult {
    vectors::format_of(&args.out, "--out")?;
    let (ids, texts) = inputs(args)?;
    let m = model::load(&args.model, args.int8, "--model")?;
    let start = std::time::Instant::now();
    let data = m.embed_all(&texts, args.batch as usize, "texts", quiet)?;
    let secs = start.elapsed().as_secs_f64();
    vectors::write(&args.out, "--out", &ids, &texts, &data, m.dim())?;
    out!(
        "embedded {} texts to dimension {} in {secs:.2} s ({:.1} texts/s): {}",
        texts.len(),
        m.dim(),
        texts.len() as f64 / secs.max(1e-9),
        args.out.display()
    );
    Ok(())
}
