//! Mines hard negatives for the training split of a BEIR collection, with
//! BM25 or with a sentence-transformers model as the teacher.
//!
//! ```text
//! cargo run --release -p edgecl-trainer --example mine_negatives -- \
//!     [--model <hf dir>] [--int8] <beir dir> <split> <out dir> [start] [end] [k]
//! ```
//!
//! Builds one training example per judged (query, relevant document) pair
//! of `split`, writes them to `<out dir>/<split>.jsonl`, then mines `k`
//! negatives (default 8, at random from ranks 10..100, relative margin
//! 0.95) into `<out dir>/<split>.mined.jsonl`, and runs the same call a
//! second time to show the cached file being reused. Prints counts and the
//! embed / index / search times.
//!
//! With `--model`, a Hugging Face folder (config.json, model.safetensors,
//! vocab.txt) runs through the runtime's inference path as a dense
//! teacher, exact search; then the same model re-mines once more through
//! [`DynamicMiner::start`] on a background thread, as a training loop
//! would, and the result is checked equal to the static run's.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use edgecl_trainer::bm25::Bm25Params;
use edgecl_trainer::data::beir::load_beir;
use edgecl_trainer::data::ReadOptions;
use edgecl_trainer::embedder::Embedder;
use edgecl_trainer::error::TrainerError;
use edgecl_trainer::mining::{
    examples_from_beir, mine_file, write_examples_atomic, Bm25Teacher, Corpus, DenseTeacher,
    DynamicMiner, MiningError, MiningParams, Teacher,
};
use edgecl_trainer::runtime::infer::{InferenceModel, Precision};

/// The runtime's inference model seen as an [`Embedder`].
struct Model(Arc<InferenceModel>);

impl Embedder for Model {
    fn dim(&self) -> usize {
        self.0.dim()
    }
    fn normalized(&self) -> bool {
        true
    }
    fn embed(&self, texts: &[&str]) -> edgecl_trainer::error::Result<Vec<f32>> {
        self.0
            .embed(texts)
            .map_err(|e| TrainerError::InvalidArgument { name: "model", reason: e.to_string() })
    }
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut model_dir = None;
    if let Some(i) = args.iter().position(|a| a == "--model") {
        if i + 1 >= args.len() {
            eprintln!("--model needs a folder");
            return ExitCode::from(2);
        }
        model_dir = Some(args.remove(i + 1));
        args.remove(i);
    }
    let precision = match args.iter().position(|a| a == "--int8") {
        Some(i) => {
            args.remove(i);
            Precision::Int8
        }
        None => Precision::F32,
    };
    if !(3..=6).contains(&args.len()) {
        eprintln!(
            "usage: mine_negatives [--model <hf dir>] [--int8] <beir dir> <split> <out dir> \
             [start] [end] [k]"
        );
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
    let dirs = (Path::new(&args[0]), args[1].as_str(), Path::new(&args[2]));
    match run(dirs, model_dir.as_deref().map(Path::new), precision, &params) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(
    (dir, split, out): (&Path, &str, &Path),
    model_dir: Option<&Path>,
    precision: Precision,
    params: &MiningParams,
) -> Result<(), MiningError> {
    // Training examples and corpus from the collection.
    let t = Instant::now();
    let data = load_beir(dir, split, ReadOptions::STRICT)?;
    let examples = examples_from_beir(&data.queries, &data.corpus, &data.qrels);
    let corpus = Corpus::from_documents(&data.corpus)?;
    std::fs::create_dir_all(out).map_err(|e| TrainerError::io(out, e))?;
    let train = out.join(format!("{split}.jsonl"));
    write_examples_atomic(&train, &examples)?;
    println!(
        "loaded {} documents, {} queries, {} examples in {:.2}s",
        corpus.len(),
        data.queries.len(),
        examples.len(),
        t.elapsed().as_secs_f64()
    );

    // The teacher.
    let model = match model_dir {
        None => None,
        Some(d) => {
            let m = InferenceModel::from_hf_dir(d, precision).map_err(|e| {
                MiningError::InvalidParams { field: "--model", reason: e.to_string() }
            })?;
            Some(Model(Arc::new(m)))
        }
    };
    let bm25 = Bm25Teacher { params: Bm25Params::default() };
    let dense = model.as_ref().map(|m| {
        let name = format!("{} {}", model_dir.unwrap_or(Path::new("")).display(), precision.name());
        DenseTeacher::new(m, name)
    });
    let teacher: &dyn Teacher = match &dense {
        Some(d) => d,
        None => &bm25,
    };
    println!("teacher: {}", teacher.identity());

    // Mine, then ask again: the second call reads the cached file.
    let mut first = None;
    for call in ["first", "second"] {
        let t = Instant::now();
        let mined = mine_file(&train, &corpus, teacher, params)?;
        let secs = t.elapsed().as_secs_f64();
        match &mined.report {
            Some(r) => println!("{call} call: mined in {secs:.2}s: {r}"),
            None => println!(
                "{call} call: reused {} ({} examples) in {secs:.3}s",
                mined.path.display(),
                mined.examples.len()
            ),
        }
        first.get_or_insert(mined.examples);
    }

    // Re-mining as a training loop would: a snapshot on a background thread.
    if let Some(m) = &model {
        let miner = DynamicMiner::new(Arc::new(examples), Arc::new(corpus), params.clone())?;
        let t = Instant::now();
        let handle = miner.start(Model(m.0.clone()));
        let mined = handle.join()?;
        println!("background re-mine in {:.2}s: {}", t.elapsed().as_secs_f64(), mined.report.times);
        let same = first.as_ref().is_some_and(|f| *f == mined.examples);
        println!("background negatives equal the static run's: {same}");
    }
    Ok(())
}
