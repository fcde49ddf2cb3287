//! `edgecl search`: the top-k documents of an index for query vectors,
//! with scores, stored text snippets and the time each query took.
//!
//! Queries come from a vector file (`--queries FILE --vector-file`, .npy
//! or JSONL like the index's input) or, when no query is given and stdin
//! is a terminal, from a prompt that reads one vector per line (numbers
//! separated by commas or spaces). The index is mapped, not read: opening
//! costs the header check and whatever pages the search touches.
//!
//! Latency is wall time of one `Index::search` call per query, run one
//! after another on the calling thread's pool, so it is what a device
//! answering one query at a time would see; the summary gives mean, median
//! and maximum. Left out: text queries, which need a model to embed them.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use edgecl_runtime::container::{names, strtab, Checksums, Container, StringTable};
use edgecl_runtime::index::{Hit, Index, SearchParams};
use serde_json::{json, Value};

use super::{open_container, rescore_name, CmdResult, SearchOpts};
use crate::error::{CliError, Context};
use crate::output::out;
use crate::progress::Progress;
use crate::vectors;

const EXAMPLES: &str = "Examples:
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
    /// Query file; with --vector-file, vectors (.npy or .jsonl {"id", "vector"}).
    #[arg(long, value_name = "FILE")]
    queries: Option<PathBuf>,
    /// The --queries file holds vectors.
    #[arg(long)]
    vector_file: bool,
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
    millis: f64,
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

pub fn run(args: &Args, quiet: bool) -> CmdResult {
    if args.vector_file && args.queries.is_none() {
        return Err(CliError::usage("--vector-file", "needs --queries FILE"));
    }
    if args.queries.is_some() && !args.vector_file {
        return Err(CliError::usage(
            "--queries",
            "pass --vector-file: queries are vectors (.npy or .jsonl)",
        ));
    }
    let interactive = args.queries.is_none();
    if interactive && !std::io::stdin().is_terminal() {
        return Err(CliError::usage(
            "--queries",
            "no queries: give --queries FILE --vector-file, or run on a terminal",
        ));
    }

    let mapped = open_container(&args.index, Checksums::HeaderOnly)?;
    let c = mapped.container();
    let index = Index::open(&c).at(args.index.display())?;
    let texts = doc_texts(&c, &args.index)?;
    let params = args.search.params(&index, args.k as usize)?;

    if interactive {
        return prompt(&index, &params, texts.as_ref());
    }

    // Batch: every vector of the file, one search each, timed.
    let path = args.queries.as_deref().expect("checked above");
    let q = vectors::read(path, "--queries")?;
    if q.dim != index.dim() {
        return Err(CliError::runtime(
            path.display(),
            format!("queries have dimension {}, the index {}", q.dim, index.dim()),
        ));
    }
    let bar = Progress::new(q.len() as u64, "queries", quiet || q.len() < 64);
    let mut answers = Vec::with_capacity(q.len());
    for (id, vector) in q.ids.iter().zip(q.data.chunks_exact(q.dim)) {
        let t = Instant::now();
        let hits = index.search(vector, &params).at(format!("{}: query {id}", path.display()))?;
        let millis = t.elapsed().as_secs_f64() * 1e3;
        answers.push(Answer { query: id.clone(), hits, millis });
        bar.inc(1);
    }
    bar.finish();
    print_answers(args, &index, &params, texts.as_ref(), &answers);
    Ok(())
}

/// Reads vectors from the terminal until end of input or an empty line.
fn prompt(index: &Index<'_>, params: &SearchParams, texts: Option<&StringTable<'_>>) -> CmdResult {
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    eprintln!(
        "{} documents, dimension {}; type a vector per line, an empty line ends",
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
        let vector = match vectors::parse_vector_line(&line) {
            Ok(v) if v.len() == index.dim() => v,
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
        };
        let t = Instant::now();
        let hits = index.search(&vector, params).at(format!("stdin:{n}"))?;
        let millis = t.elapsed().as_secs_f64() * 1e3;
        print_table(index, texts, &Answer { query: format!("stdin:{n}"), hits, millis }, params);
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
    out!("query {}  ({}, {:.3} ms)", a.query, mode_label(params), a.millis);
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
                json!({ "query": a.query, "latency_ms": a.millis, "hits": hits })
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
