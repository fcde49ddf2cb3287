//! Mines BM25 hard negatives for the training split of a BEIR collection.
//!
//! ```text
//! cargo run --release -p edgecl-trainer --example mine_negatives -- \
//!     <beir dir> <split> <out dir> [window start] [window end] [k]
//! ```
//!
//! Builds one training example per judged (query, relevant document) pair
//! of `split`, writes them to `<out dir>/<split>.jsonl`, then mines `k`
//! negatives (default 8, at random from BM25 ranks 10..100, relative margin
//! 0.95) into `<out dir>/<split>.mined.jsonl`, and runs the same call a
//! second time to show the cached file being reused. Prints counts and
//! times of both calls.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use edgecl_trainer::data::beir::load_beir;
use edgecl_trainer::data::ReadOptions;
use edgecl_trainer::mining::{
    examples_from_beir, mine_file, write_examples_atomic, Bm25Teacher, Corpus, MiningError,
    MiningParams,
};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !(3..=6).contains(&args.len()) {
        eprintln!("usage: mine_negatives <beir dir> <split> <out dir> [start] [end] [k]");
        return ExitCode::from(2);
    }
    let num = |i: usize, default: usize| match args.get(i) {
        None => Ok(default),
        Some(s) => {
            s.parse::<usize>().map_err(|_| format!("argument {}: {s:?} is not a count", i + 1))
        }
    };
    let params = match (num(3, 10), num(4, 100), num(5, 8)) {
        (Ok(start), Ok(end), Ok(k)) => MiningParams { window: start..end, k, ..Default::default() },
        (Err(e), ..) | (_, Err(e), _) | (.., Err(e)) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(Path::new(&args[0]), &args[1], Path::new(&args[2]), &params) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(dir: &Path, split: &str, out: &Path, params: &MiningParams) -> Result<(), MiningError> {
    // Training examples and corpus from the collection.
    let t = Instant::now();
    let data = load_beir(dir, split, ReadOptions::STRICT)?;
    let examples = examples_from_beir(&data.queries, &data.corpus, &data.qrels);
    let corpus = Corpus::from_documents(&data.corpus)?;
    std::fs::create_dir_all(out).map_err(|e| edgecl_trainer::error::TrainerError::io(out, e))?;
    let train = out.join(format!("{split}.jsonl"));
    write_examples_atomic(&train, &examples)?;
    println!(
        "loaded {} documents, {} queries, {} examples in {:.2}s",
        corpus.len(),
        data.queries.len(),
        examples.len(),
        t.elapsed().as_secs_f64()
    );

    // Mine, then ask again: the second call reads the cached file.
    let teacher = Bm25Teacher::default();
    for call in ["first", "second"] {
        let t = Instant::now();
        let mined = mine_file(&train, &corpus, &teacher, params)?;
        let secs = t.elapsed().as_secs_f64();
        match &mined.report {
            Some(r) => println!("{call} call: mined in {secs:.2}s: {r}"),
            None => println!(
                "{call} call: reused {} ({} examples) in {secs:.3}s",
                mined.path.display(),
                mined.examples.len()
            ),
        }
    }
    Ok(())
}
