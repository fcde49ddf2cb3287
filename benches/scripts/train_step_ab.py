#!/usr/bin/env python3
"""Two builds of the train_step example, alternated, on one training step.

Usage:

    python3 benches/scripts/train_step_ab.py BEFORE AFTER REPEATS [train_step flags...]

BEFORE and AFTER are train_step executables (copies of
target/release/examples/train_step from two commits). Each repeat runs both
once, in alternating order, with the given flags plus --json, so both see
the same machine load; the script prints every run (seconds per step, peak
RSS, forward / backward / optimizer seconds), the median seconds per step of
each and AFTER's speedup (BEFORE median over AFTER median), and the ratio per
repeat so the spread shows. Needs only the Python standard library.
"""

import json
import statistics
import subprocess
import sys


def main():
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    before, after, reps = sys.argv[1], sys.argv[2], int(sys.argv[3])
    flags = sys.argv[4:] + ["--json"]
    runs = {before: [], after: []}
    for r in range(reps):
        for exe in (before, after) if r % 2 == 0 else (after, before):
            out = subprocess.run([exe] + flags, capture_output=True, text=True, check=True).stdout
            row = json.loads(out.strip().splitlines()[-1])
            runs[exe].append(row)
            print(f"{exe}: {row['secs_per_step']:.4f} s/step, peak RSS {row['peak_rss_mb']} MB "
                  f"(forward {row['forward_secs']:.4f}, backward {row['backward_secs']:.4f}, "
                  f"optimizer {row['optim_secs']:.4f})", flush=True)
    mb, ma = (statistics.median(r["secs_per_step"] for r in runs[e]) for e in (before, after))
    print(f"median s/step: before {mb:.4f}, after {ma:.4f}; speedup {mb / ma:.3f}")
    ratios = [b["secs_per_step"] / a["secs_per_step"] for b, a in zip(runs[before], runs[after])]
    print("per-repeat speedups: " + ", ".join(f"{x:.3f}" for x in ratios))
    return 0


if __name__ == "__main__":
    sys.exit(main())
