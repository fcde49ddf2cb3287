#!/usr/bin/env python3
"""Checks edgecl's retrieval metrics against pytrec_eval, query by query.

For each BEIR collection given (default: SciFact test, and Cranfield test for graded
judgments when present) it
  1. runs BM25 with `cargo run --release -p edgecl-trainer --example bm25_run`, which
     writes a TREC run file;
  2. derives a second run from it with scores rounded to one decimal, so that many
     documents tie and the tie-breaking rule is exercised;
  3. evaluates both runs with edgecl (`--example trec_eval_run`, JSON per query) and with
     pytrec_eval (ndcg_cut, map_cut, recall, P; MRR@k as recip_rank on the run cut to its
     top k in trec_eval order);
  4. compares every measure of every query to 1e-6 and exits non-zero on any difference.

pytrec_eval's source build downloads trec_eval from the network, so when it fails the
script falls back to the `pytrec-eval-terrier` wheel (same trec_eval code, same API).
The venv lives in target/pytrec-venv unless --venv says otherwise.

Usage: python3 tools/scripts/pytrec_eval_check.py [--data DIR:SPLIT ...] [--cutoffs 1,3,10]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_DATA = ["/work/shared/data/scifact:test", "/work/shared/data/cranfield:test"]
TOLERANCE = 1e-6


def ensure_venv(venv):
    """Creates the venv with pytrec_eval (or its terrier build) and re-runs inside it."""
    python = os.path.join(venv, "bin", "python")
    if os.path.realpath(sys.prefix) == os.path.realpath(venv):
        return
    if not os.path.exists(python):
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    probe = subprocess.run([python, "-c", "import pytrec_eval"], capture_output=True)
    if probe.returncode != 0:
        pip = [python, "-m", "pip", "install", "-q"]
        if subprocess.run(pip + ["pytrec_eval"]).returncode != 0:
            print("pytrec_eval did not build; installing pytrec-eval-terrier", flush=True)
            subprocess.run(pip + ["pytrec-eval-terrier"], check=True)
    os.execv(python, [python] + sys.argv)


def cargo_example(name, args, capture=False):
    cmd = ["cargo", "run", "--quiet", "--release", "-p", "edgecl-trainer", "--example", name,
           "--"] + args
    res = subprocess.run(cmd, cwd=ROOT, check=True, text=True,
                         stdout=subprocess.PIPE if capture else None)
    return res.stdout


def read_qrels(path):
    qrels = {}
    with open(path) as f:
        header = f.readline().rstrip("\n")
        assert header == "query-id\tcorpus-id\tscore", header
        for line in f:
            if line.strip():
                q, d, s = line.rstrip("\n").split("\t")
                qrels.setdefault(q, {})[d] = int(s)
    return qrels


def read_run(path):
    run = {}
    with open(path) as f:
        for line in f:
            q, _, d, _, s, _ = line.split()
            run.setdefault(q, {})[d] = float(s)
    return run


def write_run(path, run):
    with open(path, "w") as f:
        for q in sorted(run):
            ranked = sorted(run[q].items(), key=lambda x: (-x[1], x[0]))
            for i, (d, s) in enumerate(ranked):
                f.write(f"{q} Q0 {d} {i + 1} {s!r} rounded\n")


def trec_order(docs):
    """trec_eval's ranking: score descending, then doc id descending."""
    return sorted(docs.items(), key=lambda x: (x[1], x[0]), reverse=True)


def pytrec_values(pytrec_eval, qrels, run, cutoffs):
    ks = ",".join(str(k) for k in cutoffs)
    measures = {f"ndcg_cut.{ks}", f"map_cut.{ks}", f"recall.{ks}", f"P.{ks}"}
    out = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
    # MRR@k: reciprocal rank over the run cut to its top k in trec_eval order.
    for k in cutoffs:
        cut = {q: dict(trec_order(docs)[:k]) for q, docs in run.items()}
        rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(cut)
        for q, vals in rr.items():
            out[q][f"recip_rank_cut_{k}"] = vals["recip_rank"]
    return out


def compare(label, ours, theirs, qrels):
    """Returns the number of disagreements, printing the worst per measure."""
    problems = 0
    with_relevant = {q for q, docs in qrels.items() if any(r >= 1 for r in docs.values())}
    expected = with_relevant & set(theirs)
    if set(ours) != expected:
        print(f"  {label}: query sets differ: only ours {sorted(set(ours) - expected)[:5]}, "
              f"only pytrec_eval {sorted(expected - set(ours))[:5]}")
        problems += 1
    worst = {}
    for q, vals in ours.items():
        for m, v in vals.items():
            ref = theirs.get(q, {}).get(m)
            if ref is None:
                print(f"  {label}: pytrec_eval has no {m} for query {q}")
                problems += 1
                continue
            diff = abs(v - ref)
            if diff > worst.get(m, (-1.0,))[0]:
                worst[m] = (diff, q, v, ref)
            if diff > TOLERANCE:
                problems += 1
    print(f"  {label}: {len(ours)} queries x {len(worst)} measures, "
          f"max |diff| {max(w[0] for w in worst.values()):.3g}, {problems} disagreements")
    for m in sorted(worst):
        diff, q, v, ref = worst[m]
        if diff > TOLERANCE:
            print(f"    {m}: query {q}: ours {v:.10f} pytrec_eval {ref:.10f}")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", nargs="*", default=None, help="BEIR_DIR:SPLIT pairs")
    parser.add_argument("--cutoffs", default="1,3,5,10,100,1000")
    parser.add_argument("--venv", default=os.path.join(ROOT, "target", "pytrec-venv"))
    args = parser.parse_args()
    ensure_venv(args.venv)
    import pytrec_eval

    cutoffs = [int(k) for k in args.cutoffs.split(",")]
    data = args.data or [d for d in DEFAULT_DATA if os.path.isdir(d.rsplit(":", 1)[0])]
    problems = 0
    with tempfile.TemporaryDirectory() as tmp:
        for spec in data:
            beir_dir, split = spec.rsplit(":", 1)
            name = os.path.basename(beir_dir.rstrip("/"))
            print(f"== {name} {split}", flush=True)
            qrels_path = os.path.join(beir_dir, "qrels", f"{split}.tsv")
            run_path = os.path.join(tmp, f"{name}.trec")
            cargo_example("bm25_run", [beir_dir, split, run_path])
            qrels = read_qrels(qrels_path)

            # The run as written, and a copy with scores rounded to force ties.
            run = read_run(run_path)
            tied_path = os.path.join(tmp, f"{name}.tied.trec")
            write_run(tied_path, {q: {d: round(s, 1) for d, s in docs.items()}
                                  for q, docs in run.items()})
            for label, path in [("bm25 run", run_path), ("rounded-score run", tied_path)]:
                ours = json.loads(cargo_example(
                    "trec_eval_run", [qrels_path, path, args.cutoffs], capture=True))
                theirs = pytrec_values(pytrec_eval, qrels, read_run(path), cutoffs)
                problems += compare(label, ours, theirs, qrels)
    print("AGREE" if problems == 0 else f"DISAGREE ({problems})")
    sys.exit(0 if problems == 0 else 1)


if __name__ == "__main__":
    main()
