//! `edgecl search`: the top-k documents of an index for query texts or
//! vectors, with scores, stored text snippets and the time each query took.
//!
//! Queries: a `QUERY` text; a `--queries FILE` of texts (one per line, or
//! BEIR `queries.jsonl`); the same file holding vectors with
//! `--vector-file` (.npy or JSONL like the index's input); or, when none is
//! given and stdin is a terminal, a prompt reading one query per line (a
//! text with `--model`, else a vector of numbers separated by commas or
//! spaces). Texts are embedded with `--model`; when the index stores a
//! model digest, a different model is refused before any search.
//!
//! Latency is wall time of one `Index::search` call per query, run one
//! after another, so it is what a device answering one query at a time
//! would see (embedding time is reported beside it); the summary gives
//! mean, median and maximum. The index is mapped, not read: opening costs
//! the header check and whatever pages the search touches.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use edgecl_runtime::container::{names, strtab, Checksums, Container, StringTable};
use edgecl_runtime::index::{Hit, Index, SearchParams};
use edgecl_trainer::data::beir::open_queries;
use edgecl_trainer::data::ReadOptions;
use serde_json::{json, Value};

use super::{open_container, rescore_name, CmdResult, SearchOpts};
use crate::error::{CliError, Context};
use crate::files::read_to_string;
use crate::model::{self, Model};
use crate::output::out;
use crate::progress::Progress;
use crate::vectors;

const EXAMPLES: &str = "Examples:
  edgecl search --index scifact.ecl --model models/minilm \"do statins lower cholesterol\"
  edgecl search --index scifact.ecl --model model.ecl --queries queries.jsonl --json
  edgecl search --index scifact.ecl --model models/minilm   (prompt: a query per line)
  edgecl search --index corpus.ecl --queries queries.npy --vector-file -k 5
  edgecl search --index corpus.ecl --queries q.jsonl --vector-file --mode exact --json
  edgecl search --index corpus.ecl --mode binary --rescore int8 --shortlist 200
      (then type a vector per line: 0.1, -0.3, ...)";

#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// The index file.
    #[arg(long, value_name = "INDEX")]
    index: PathBuf,
    /// A query text (needs --model).
    #[arg(value_name = "QUERY", conflicts_with = "queries")]
    query: Option<String>,
    /// Query file: texts, one per line or BEIR queries.jsonl; with
    /// --vector-file, vectors (.npy or .jsonl {"id", "vector"}).
    #[arg(long, value_name = "FILE")]
    queries: Option<PathBuf>,
    /// The --queries file holds vectors.
    #[arg(long, requires = "queries")]
    vector_file: bool,
    /// Model that embeds query texts (model file or Hugging Face folder).
    #[arg(long, value_name = "MODEL", conflicts_with = "vector_file")]
    model: Option<PathBuf>,
    /// Run a folder model's linear layers in int8.
    #[arg(long, requires = "model")]
    int8: bool,
    /// Results per query.
    #[arg(short, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    k: u32,
    #[command(flatten)]
    search: SearchOpts,
    /// Print results as one JSON object.
    #[arg(long)]
    json: bool,
}

/// One answered query.
struct Answer {
    query: String,
    hits: Vec<Hit>,
    /// Search time.
    millis: f64,
    /// Embedding time, for text queries.
    embed_millis: Option<f64>,
}

/// The index's per-document texts, when it stores them.
pub fn doc_texts<'a>(c: &Container<'a>, path: &Path) -> CmdResult<Option<StringTable<'a>>> {
    if !c.contains(&strtab::offsets_name(names::DOC_META)) {
        return Ok(None);
    }
    Ok(Some(StringTable::load(c, names::DOC_META).at(path.display())?))
}

/// The text of a stored `doc.meta` entry: its `text` field, or the entry.
fn text_of(meta: &str) -> String {
    match serde_json::from_str::<Value>(meta) {
        Ok(Value::Object(o)) => o.get("text").and_then(Value::as_str).unwrap_or("").to_string(),
        _ => meta.to_string(),
    }
}

/// The first `max` characters of `text` on one line.
fn snippet(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        flat
    } else {
        let cut: String = flat.chars().take(max.saturating_sub(3)).collect();
        format!("{cut}...")
    }
}

/// Query texts from a file: BEIR `queries.jsonl` (by extension) or lines.
fn query_texts(path: &Path) -> CmdResult<(Vec<String>, Vec<String>)> {
    let jsonl = path.extension().is_some_and(|e| e == "jsonl");
    let (ids, texts): (Vec<String>, Vec<String>) = if jsonl {
        let qs = open_queries(path, ReadOptions::STRICT)?.collect_loaded()?.data;
        qs.into_iter().map(|q| (q.id, q.text)).unzip()
    } else {
        let text = read_to_string(path)?;
        let mut out = (Vec::new(), Vec::new());
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                return Err(CliError::runtime(
                    format!("{}:{}", path.display(), i + 1),
                    "empty query",
                ));
            }
            out.0.push((i + 1).to_string());
            out.1.push(line.to_string());
        }
        out
    };
    if ids.is_empty() {
        return Err(CliError::runtime(path.display(), "holds no queries"));
    }
    Ok((ids, texts))
}

pub fn run(args: &Args, quiet: bool) -> CmdResult {
    let interactive = args.query.is_none() && args.queries.is_none();
    let texts_in = args.query.is_some() || (args.queries.is_some() && !args.vector_file);
    if texts_in && args.model.is_none() {
        return Err(CliError::usage(
            "--model",
            "query texts need a model (or give vectors: --queries FILE --vector-file)",
        ));
    }
    if interactive && !std::io::stdin().is_terminal() {
        return Err(CliError::usage(
            "--queries",
            "no queries: give QUERY, --queries FILE, or run on a terminal",
        ));
    }

    let mapped = open_container(&args.index, Checksums::HeaderOnly)?;
    let c = mapped.container();
    let index = Index::open(&c).at(args.index.display())?;
    let texts = doc_texts(&c, &args.index)?;
    let params = args.search.params(&index, args.k as usize)?;

    // The model, checked against the index before any query is embedded.
    let model = match &args.model {
        Some(path) => {
            let m = model::load(path, args.int8, "--model")?;
            model::check_digest(&m, index.model_hash().map(|h| &h[..]), &args.index)?;
            if m.dim() != index.dim() {
                return Err(CliError::runtime(
                    format!("--model {}", path.display()),
                    format!("makes dimension {}, the index holds {}", m.dim(), index.dim()),
                ));
            }
            Some(m)
        }
        None => None,
    };

    if interactive {
        return prompt(&index, &params, texts.as_ref(), model.as_ref());
    }

    // Batch: the queries' vectors, embedded first when they are texts.
    let (ids, data, embed_ms) = match (&args.query, &args.queries, &model) {
        (Some(q), _, Some(m)) => {
            let t = Instant::now();
            let v = m.embed_all(std::slice::from_ref(q), 1, "queries", true)?;
            (vec![q.clone()], v, Some(t.elapsed().as_secs_f64() * 1e3))
        }
        (None, Some(path), Some(m)) => {
            let (ids, qtexts) = query_texts(path)?;
            let t = Instant::now();
            let v = m.embed_all(&qtexts, 64, "embedding", quiet)?;
            let per = t.elapsed().as_secs_f64() * 1e3 / ids.len() as f64;
            (ids, v, Some(per))
        }
        (None, Some(path), None) => {
            let q = vectors::read(path, "--queries")?;
            if q.dim != index.dim() {
                return Err(CliError::runtime(
                    path.display(),
                    format!("queries have dimension {}, the index {}", q.dim, index.dim()),
                ));
            }
            (q.ids, q.data, None)
        }
        _ => return Err(CliError::usage("--model", "query texts need a model")),
    };
    let dim = index.dim();
    let bar = Progress::new(ids.len() as u64, "queries", quiet || ids.len() < 64);
    let mut answers = Vec::with_capacity(ids.len());
    for (id, vector) in ids.iter().zip(data.chunks_exact(dim)) {
        let t = Instant::now();
        let hits = index.search(vector, &params).at(format!("query {id}"))?;
        let millis = t.elapsed().as_secs_f64() * 1e3;
        answers.push(Answer { query: id.clone(), hits, millis, embed_millis: embed_ms });
        bar.inc(1);
    }
    bar.finish();
    print_answers(args, &index, &params, texts.as_ref(), &answers);
    Ok(())
}

/// Reads queries from the terminal until end of input or an empty line:
/// texts with a model, vectors without.
fn prompt(
    index: &Index<'_>,
    params: &SearchParams,
    texts: Option<&StringTable<'_>>,
    model: Option<&Model>,
) -> CmdResult {
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    let what = if model.is_some() { "a query" } else { "a vector" };
    eprintln!(
        "{} documents, dimension {}; type {what} per line, an empty line ends",
        index.len(),
        index.dim()
    );
    let mut n = 0;
    loop {
        eprint!("query> ");
        let _ = std::io::stderr().flush();
        let Some(line) = lines.next() else { break };
        let line = line.at("stdin")?;
        if line.trim().is_empty() {
            break;
        }
        n += 1;
        // A typo on the prompt is reported and the prompt goes on.
        let (vector, embed_millis) = match model {
            Some(m) => {
                let t = Instant::now();
                let v = m.embed_all(std::slice::from_ref(&line), 1, "query", true)?;
                (v, Some(t.elapsed().as_secs_f64() * 1e3))
            }
            None => match vectors::parse_vector_line(&line) {
                Ok(v) if v.len() == index.dim() => (v, None),
                Ok(v) => {
                    eprintln!(
                        "edgecl: error: stdin:{n}: dimension {}, expected {}",
                        v.len(),
                        index.dim()
                    );
                    continue;
                }
                Err(e) => {
                    eprintln!("edgecl: error: stdin:{n}: {e}");
                    continue;
                }
            },
        };
        let t = Instant::now();
        let hits = index.search(&vector, params).at(format!("stdin:{n}"))?;
        let millis = t.elapsed().as_secs_f64() * 1e3;
        let query = if model.is_some() { line.clone() } else { format!("stdin:{n}") };
        print_table(index, texts, &Answer { query, hits, millis, embed_millis }, params);
    }
    Ok(())
}

fn mode_label(params: &SearchParams) -> String {
    match params.rescore {
        edgecl_runtime::index::Rescore::None => params.mode.name().to_string(),
        r => format!("{} + {} rescoring", params.mode.name(), rescore_name(r)),
    }
}

fn print_table(
    index: &Index<'_>,
    texts: Option<&StringTable<'_>>,
    a: &Answer,
    params: &SearchParams,
) {
    let embed = a.embed_millis.map_or(String::new(), |e| format!("embed {e:.2} ms, "));
    out!("query {}  ({}, {embed}search {:.3} ms)", a.query, mode_label(params), a.millis);
    let width = a.hits.iter().filter_map(|h| index.id(h.doc)).map(str::len).max().unwrap_or(2);
    for (rank, h) in a.hits.iter().enumerate() {
        let id = index.id(h.doc).unwrap_or("?");
        let text = texts.and_then(|t| t.get(h.doc as usize)).map(|m| snippet(&text_of(m), 72));
        out!("{:>4}  {:>10.4}  {id:<width$}  {}", rank + 1, h.score, text.unwrap_or_default());
    }
}

fn print_answers(
    args: &Args,
    index: &Index<'_>,
    params: &SearchParams,
    texts: Option<&StringTable<'_>>,
    answers: &[Answer],
) {
    let mut ms: Vec<f64> = answers.iter().map(|a| a.millis).collect();
    ms.sort_by(f64::total_cmp);
    let mean = ms.iter().sum::<f64>() / ms.len().max(1) as f64;
    let median = ms.get(ms.len() / 2).copied().unwrap_or(0.0);
    let max = ms.last().copied().unwrap_or(0.0);
    if args.json {
        let queries: Vec<Value> = answers
            .iter()
            .map(|a| {
                let hits: Vec<Value> = a
                    .hits
                    .iter()
                    .enumerate()
                    .map(|(rank, h)| {
                        let mut o = json!({
                            "rank": rank + 1,
                            "id": index.id(h.doc).unwrap_or(""),
                            "score": h.score,
                        });
                        if let Some(m) = texts.and_then(|t| t.get(h.doc as usize)) {
                            o["text"] = Value::String(text_of(m));
                        }
                        o
                    })
                    .collect();
                let mut o = json!({ "query": a.query, "latency_ms": a.millis, "hits": hits });
                if let Some(e) = a.embed_millis {
                    o["embed_ms"] = json!(e);
                }
                o
            })
            .collect();
        let out = json!({
            "index": args.index.display().to_string(),
            "mode": params.mode.name(),
            "rescore": rescore_name(params.rescore),
            "k": params.k,
            "queries": queries,
            "latency_ms": { "mean": mean, "median": median, "max": max },
        });
        out!("{out}");
        return;
    }
    for a in answers {
        print_table(index, texts, a, params);
        out!();
    }
    out!(
        "{} queries, {}: latency mean {mean:.3} ms, median {median:.3} ms, max {max:.3} ms",
        answers.len(),
        mode_label(params)
    );
}
