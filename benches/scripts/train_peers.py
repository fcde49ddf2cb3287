#!/usr/bin/env python3
"""One contrastive training step of edgecl beside PyTorch.

Both sides train the same model with the same step, and this script times
them in one run on the same machine:

  model   BERT-style encoder: word + position (512) + token-type (2)
          embeddings, embedding LayerNorm, transformer layers (erf GELU,
          LayerNorm eps 1e-12) in the presets' pre-norm layout
          (x += drop(attn(LN1 x)); x += drop(ffn(LN2 x)); one final
          LayerNorm) or, with --norm post, BERT's post-norm layout; mean
          pooling over the attention mask, L2 normalisation; BERT
          initialisation (normal 0.02 for matrices, zero biases, unit
          LayerNorm weights), no pretrained weights. Presets (vocabulary
          30522 for both):
            micro  2 layers, hidden 128, 2 heads, FFN 512
            tiny   4 layers, hidden 256, 4 heads, FFN 1024
  batch   --batch query-positive pairs (default 64), every sequence exactly
          --seq tokens of seeded random ids, token type 0, mask all ones
  step    dropout 0.1 after the embeddings, after each attention output and
          after each FFN output (none on the attention probabilities: edgecl's
          fused attention op has none, so the PyTorch side leaves it out too);
          in-batch InfoNCE: cross-entropy of the [B, B] cosine-similarity
          matrix / 0.05 against the diagonal; backward; global-norm clip 1.0;
          AdamW (lr 1e-4, betas 0.9/0.999, eps 1e-8, weight decay 0.01 on
          matrices and embedding tables, none on biases and LayerNorm
          weights, as edgecl groups them)

  torch   plain torch.nn modules (nn.Embedding, nn.Linear, nn.LayerNorm,
          nn.GELU, F.scaled_dot_product_attention with the key mask);
          queries and positives go through the encoder as one batch of 2B;
          torch.set_num_threads(t) and torch.set_num_interop_threads(t),
          OMP/MKL_NUM_THREADS=t; torch.optim.AdamW with its default
          implementation choice
  edgecl  the train_step example (release build), run as
          target/release/examples/train_step --preset P --seq S --batch B
              --threads T --warmup W --steps N --norm pre|post --json

Each (impl, preset, seq, threads) runs in its own fresh process, so its peak
RSS (VmHWM; for torch this includes the interpreter and the torch import)
belongs to that case alone. Per case the two impls run back to back
(--repeats alternates their order), so the ratio compares runs under the same
machine load; absolute times on a shared machine are noise. A case reports
the median seconds per step over --steps timed steps after --warmup untimed
ones, pairs/s = batch / median, and the loss of the first step, taken before
any update: with random weights it should sit near ln(batch) (4.16 for 64);
the table flags a first-step loss further than --loss-tol from ln(batch).
The script prints both parameter counts and fails if they differ from each
other or from the count the config implies.

Table columns: preset, seq, threads; torch and edgecl seconds per step;
ratio = edgecl pairs/s over torch pairs/s (above 1: edgecl faster); both peak
RSS in MB; for each impl the speedup of this thread count over 1 thread on
the same preset and seq; both first-step losses.

Candle and burn are not included: neither ships a Python package that runs
a training step, so comparing them would mean writing and maintaining a Rust
training loop per framework rather than calling each peer as its users do.

Usage (through train_peers.sh, which picks or creates the venv):

    benches/scripts/train_peers.sh [--presets micro,tiny] [--seqs 32,64]
        [--threads 1,2] [--batch 64] [--warmup 2] [--steps 5]
        [--repeats 1] [--impls torch,edgecl] [--norm pre] [--json rows.jsonl]
        [--no-build] [--loss-tol 0.5]

--json writes every run as one JSON line (per impl and case; with
--repeats > 1 each repeat has its own line, and the table shows the median
of the repeats). The PyTorch side needs Python 3.9+ and torch only; the
edgecl side needs cargo.
"""

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
EDGECL_EXE = os.path.join(REPO, "target", "release", "examples", "train_step")
VOCAB, MAX_POS, TYPES = 30522, 512, 2
PRESETS = {
    # layers, hidden, heads, intermediate (EncoderConfig::micro / tiny shapes)
    "micro": (2, 128, 2, 512),
    "tiny": (4, 256, 4, 1024),
}
DROPOUT, TEMPERATURE, LR, WEIGHT_DECAY, CLIP = 0.1, 0.05, 1e-4, 0.01, 1.0


def expected_params(preset, norm):
    """Parameter count of the encoder with this preset's shape and layout."""
    layers, h, _, f = PRESETS[preset]
    embed = (VOCAB + MAX_POS + TYPES) * h + 2 * h
    # q, k, v, attention output; FFN in and out; two LayerNorms.
    layer = 4 * (h * h + h) + (f * h + f) + (h * f + h) + 2 * 2 * h
    # Pre-norm ends with one more LayerNorm.
    final = 2 * h if norm == "pre" else 0
    return embed + layers * layer + final


def peak_rss_mb():
    """This process's peak resident set (VmHWM) in MB."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    # ru_maxrss is in kilobytes on Linux, bytes on macOS.
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024.0 * 1024.0 if sys.platform == "darwin" else 1024.0)


# ---------------------------------------------------------------------------
# PyTorch side (runs in a worker process per case)


def torch_worker(args):
    """Times the step in PyTorch for one case; prints one JSON line."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    # Threads first: interop threads cannot change after parallel work.
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(args.threads)
    base_rss = peak_rss_mb()
    layers, h, heads, inter = PRESETS[args.preset]
    pre_norm = args.norm == "pre"

    class Layer(nn.Module):
        """One block, pre-norm (x += drop(attn(LN1 x)); x += drop(ffn(LN2 x)))
        or post-norm (x = LN1(x + drop(attn x)); x = LN2(x + drop(ffn x)))."""

        def __init__(self):
            super().__init__()
            self.q, self.k, self.v = nn.Linear(h, h), nn.Linear(h, h), nn.Linear(h, h)
            self.o = nn.Linear(h, h)
            self.ln1 = nn.LayerNorm(h, eps=1e-12)
            self.ffn_in, self.ffn_out = nn.Linear(h, inter), nn.Linear(inter, h)
            self.act = nn.GELU()  # erf form
            self.ln2 = nn.LayerNorm(h, eps=1e-12)
            self.drop = nn.Dropout(DROPOUT)

        def attn(self, x, key_mask):
            b, t, _ = x.shape

            def heads_of(y):  # [B, T, C] -> [B, H, T, C/H]
                return y.view(b, t, heads, h // heads).transpose(1, 2)

            a = F.scaled_dot_product_attention(
                heads_of(self.q(x)), heads_of(self.k(x)), heads_of(self.v(x)),
                attn_mask=key_mask,
            )
            return self.o(a.transpose(1, 2).reshape(b, t, h))

        def ffn(self, x):
            return self.ffn_out(self.act(self.ffn_in(x)))

        def forward(self, x, key_mask):
            if pre_norm:
                x = x + self.drop(self.attn(self.ln1(x), key_mask))
                return x + self.drop(self.ffn(self.ln2(x)))
            x = self.ln1(x + self.drop(self.attn(x, key_mask)))
            return self.ln2(x + self.drop(self.ffn(x)))

    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.word = nn.Embedding(VOCAB, h)
            self.pos = nn.Embedding(MAX_POS, h)
            self.typ = nn.Embedding(TYPES, h)
            self.ln = nn.LayerNorm(h, eps=1e-12)
            self.drop = nn.Dropout(DROPOUT)
            self.layers = nn.ModuleList(Layer() for _ in range(layers))
            self.final_ln = nn.LayerNorm(h, eps=1e-12) if pre_norm else None

        def forward(self, ids, type_ids, mask):
            t = ids.shape[1]
            pos = torch.arange(t, device=ids.device)
            x = self.word(ids) + self.pos(pos) + self.typ(type_ids)
            x = self.drop(self.ln(x))
            key_mask = mask.bool()[:, None, None, :]  # [B, 1, 1, T]
            for layer in self.layers:
                x = layer(x, key_mask)
            if self.final_ln is not None:
                x = self.final_ln(x)
            m = mask.unsqueeze(-1).to(x.dtype)
            pooled = (x * m).sum(1) / m.sum(1).clamp(min=1e-9)
            return F.normalize(pooled, p=2, dim=1, eps=1e-12)

    # BERT initialisation, as edgecl's: matrices N(0, 0.02), biases 0, LN 1.
    torch.manual_seed(args.seed)
    model = Encoder()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2:
                p.normal_(0.0, 0.02)
            elif name.endswith("bias"):
                p.zero_()
            else:
                p.fill_(1.0)
    model.train()
    params = sum(p.numel() for p in model.parameters())
    decay = [p for p in model.parameters() if p.dim() == 2]
    no_decay = [p for p in model.parameters() if p.dim() != 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": WEIGHT_DECAY},
         {"params": no_decay, "weight_decay": 0.0}],
        lr=LR, betas=(0.9, 0.999), eps=1e-8,
    )

    # Queries are rows 0..B, their positives rows B..2B of one batch.
    b, t = args.batch, args.seq
    gen = torch.Generator().manual_seed(args.seed)
    ids = torch.randint(0, VOCAB, (2 * b, t), generator=gen)
    type_ids = torch.zeros_like(ids)
    mask = torch.ones_like(ids)
    labels = torch.arange(b)

    def step():
        opt.zero_grad(set_to_none=True)
        e = model(ids, type_ids, mask)
        logits = e[:b] @ e[b:].T / TEMPERATURE
        loss = F.cross_entropy(logits, labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        opt.step()
        return loss.item()

    first_loss, times = None, []
    for i in range(args.warmup + args.steps):
        start = time.perf_counter()
        loss = step()
        elapsed = time.perf_counter() - start
        if first_loss is None:
            first_loss = loss
        if i >= args.warmup:
            times.append(elapsed)
    secs = statistics.median(times)
    print(json.dumps({
        "impl": "torch",
        "preset": args.preset,
        "seq": t,
        "batch": b,
        "threads": args.threads,
        "secs_per_step": secs,
        "pairs_per_sec": b / secs,
        "peak_rss_mb": peak_rss_mb(),
        "base_rss_mb": base_rss,
        "loss": loss,
        "first_loss": first_loss,
        "dropout": DROPOUT,
        "norm": args.norm,
        "params": params,
        "torch_version": torch.__version__,
    }), flush=True)


# ---------------------------------------------------------------------------
# Driver


def last_json_line(text, what):
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"{what}: no JSON line in its output:\n{text}")


def run_case(impl, preset, seq, threads, args):
    """One fresh process for one case; returns its JSON row."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    common = [
        "--preset", preset, "--seq", str(seq), "--batch", str(args.batch),
        "--threads", str(threads), "--warmup", str(args.warmup),
        "--steps", str(args.steps), "--norm", args.norm,
    ]
    if impl == "torch":
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", "torch",
               "--seed", str(args.seed)] + common
    else:
        cmd = [EDGECL_EXE] + common + ["--json"]
    what = f"{impl} {preset} seq {seq} threads {threads}"
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(
            f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n{proc.stderr}")
    row = last_json_line(proc.stdout, what)
    row["impl"] = impl
    return row


def median_of(rows, key):
    vals = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def fmt(v, spec, width):
    return f"{'-':>{width}}" if v is None else f"{v:>{width}{spec}}"


def uptime():
    try:
        with open("/proc/loadavg") as f:
            return "load average " + " ".join(f.read().split()[:3])
    except OSError:
        return "load average unknown"


def main():
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        epilog=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--presets", default="micro,tiny", help="comma list of micro, tiny")
    ap.add_argument("--seqs", default="32,64", help="comma list of sequence lengths")
    ap.add_argument("--threads", default="1,2", help="comma list of thread counts")
    ap.add_argument("--batch", type=int, default=64, help="query-positive pairs per step")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    ap.add_argument("--steps", type=int, default=5, help="timed steps (median reported)")
    ap.add_argument("--repeats", type=int, default=1,
                    help="runs per impl and case, order alternating; table shows medians")
    ap.add_argument("--impls", default="torch,edgecl", help="comma list of torch, edgecl")
    ap.add_argument("--norm", choices=["pre", "post"], default="pre",
                    help="block layout: the presets' pre-norm or BERT's post-norm")
    ap.add_argument("--json", metavar="PATH", help="write every run as a JSON line here")
    ap.add_argument("--no-build", action="store_true",
                    help="use the existing target/release/examples/train_step")
    ap.add_argument("--loss-tol", type=float, default=0.5,
                    help="flag a first-step loss further than this from ln(batch)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the PyTorch weights and ids")
    # Internal: one PyTorch case in this process.
    ap.add_argument("--worker", choices=["torch"], help=argparse.SUPPRESS)
    ap.add_argument("--preset", help=argparse.SUPPRESS)
    ap.add_argument("--seq", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        args.threads = int(args.threads)
        torch_worker(args)
        return 0

    presets = args.presets.split(",")
    for p in presets:
        if p not in PRESETS:
            ap.error(f"--presets: unknown preset {p!r} (expected micro or tiny)")
    seqs = [int(s) for s in args.seqs.split(",")]
    threads = [int(t) for t in args.threads.split(",")]
    impls = args.impls.split(",")
    for i in impls:
        if i not in ("torch", "edgecl"):
            ap.error(f"--impls: unknown impl {i!r} (expected torch or edgecl)")
    if args.steps < 1 or args.warmup < 0 or args.repeats < 1 or args.batch < 2:
        ap.error("need --steps >= 1, --warmup >= 0, --repeats >= 1, --batch >= 2")
    for s in seqs:
        if not 1 <= s <= MAX_POS:
            ap.error(f"--seqs: {s} outside 1..{MAX_POS}")

    if "edgecl" in impls and not args.no_build:
        subprocess.run(
            ["cargo", "build", "--release", "-q", "-p", "edgecl-benches",
             "--example", "train_step"],
            cwd=REPO, check=True,
        )
    print(f"{args.norm}-norm, batch {args.batch} pairs, warmup {args.warmup}, "
          f"median of {args.steps} steps, "
          f"{args.repeats} repeat(s), {os.cpu_count()} CPUs visible, {uptime()} at start",
          flush=True)

    # Every case, the impls back to back; alternate the order per repeat.
    runs = []
    out = open(args.json, "w") if args.json else None
    for preset in presets:
        for seq in seqs:
            for t in threads:
                for rep in range(args.repeats):
                    order = impls if rep % 2 == 0 else impls[::-1]
                    for impl in order:
                        row = run_case(impl, preset, seq, t, args)
                        row["repeat"] = rep
                        row["load_average"] = uptime()
                        runs.append(row)
                        if out:
                            out.write(json.dumps(row) + "\n")
                            out.flush()
                        print(f"  {impl:6} {preset:5} seq {seq:3} threads {t}: "
                              f"{row['secs_per_step']:.4f} s/step, "
                              f"{row['pairs_per_sec']:.1f} pairs/s, "
                              f"peak RSS {row['peak_rss_mb']:.0f} MB", flush=True)
    if out:
        out.close()

    def cell(impl, preset, seq, t, key):
        return median_of([r for r in runs if (r["impl"], r["preset"], r["seq"], r["threads"])
                          == (impl, preset, seq, t)], key)

    def first_loss(impl, preset, seq, t):
        # edgecl's example reports "first_loss" when it has one, else "loss".
        v = cell(impl, preset, seq, t, "first_loss")
        return v if v is not None else cell(impl, preset, seq, t, "loss")

    # Parameter counts: both impls against each other and the config.
    failures = []
    print()
    for preset in presets:
        want = expected_params(preset, args.norm)
        counts = {i: {r.get("params") for r in runs if r["impl"] == i and r["preset"] == preset}
                  for i in impls}
        parts = []
        for i in impls:
            c = counts[i]
            if c == {None}:
                parts.append(f"{i} not reported")
                continue
            parts.append(f"{i} {'/'.join(str(x) for x in sorted(c, key=str))}")
            if c != {want}:
                failures.append(f"{preset}: {i} has {sorted(c, key=str)} parameters, "
                                f"the config implies {want}")
        print(f"{preset} parameters: config {want}, " + ", ".join(parts))

    # The table.
    ln_b = math.log(args.batch)
    print()
    print(f"seconds per step (median), ratio = edgecl pairs/s / torch pairs/s, "
          f"speedup = this thread count over 1 thread, loss0 = first step (ln {args.batch} = "
          f"{ln_b:.2f}); {uptime()} at end")
    head = (f"{'preset':6} {'seq':>4} {'thr':>3} {'torch s':>8} {'edgecl s':>8} {'ratio':>6} "
            f"{'torch MB':>8} {'edgecl MB':>9} {'torch xT':>8} {'edgecl xT':>9} "
            f"{'loss0 t':>7} {'loss0 e':>7}")
    print(head)
    for preset in presets:
        for seq in seqs:
            for t in threads:
                ts, es = (cell(i, preset, seq, t, "secs_per_step") for i in ("torch", "edgecl"))
                ratio = ts / es if ts and es else None
                speed = {}
                for i in ("torch", "edgecl"):
                    one = cell(i, preset, seq, 1, "secs_per_step")
                    mine = cell(i, preset, seq, t, "secs_per_step")
                    speed[i] = one / mine if one and mine and t != 1 else None
                losses = []
                for i in ("torch", "edgecl"):
                    v = first_loss(i, preset, seq, t)
                    if v is None:
                        losses.append(f"{'-':>7}")
                        continue
                    flag = "" if abs(v - ln_b) <= args.loss_tol else "!"
                    if flag:
                        failures.append(f"{i} {preset} seq {seq} threads {t}: first-step "
                                        f"loss {v:.3f} is more than {args.loss_tol} from "
                                        f"ln {args.batch} = {ln_b:.3f}")
                    losses.append(f"{v:>6.2f}{flag or ' '}")
                print(f"{preset:6} {seq:>4} {t:>3} {fmt(ts, '.4f', 8)} {fmt(es, '.4f', 8)} "
                      f"{fmt(ratio, '.2f', 6)} "
                      f"{fmt(cell('torch', preset, seq, t, 'peak_rss_mb'), '.0f', 8)} "
                      f"{fmt(cell('edgecl', preset, seq, t, 'peak_rss_mb'), '.0f', 9)} "
                      f"{fmt(speed['torch'], '.2f', 8)} {fmt(speed['edgecl'], '.2f', 9)} "
                      + " ".join(losses))
    if failures:
        print()
        for f in failures:
            print("FAILED:", f)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
