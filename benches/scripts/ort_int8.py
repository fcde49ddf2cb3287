#!/usr/bin/env python3
"""int8 GEMM throughput of edgecl beside ONNX Runtime's MatMulInteger.

For each shape (M x K) u8 times (K x N) i8 -> i32, this builds a one-node
ONNX MatMulInteger model with B as a constant initializer (so ORT may
prepack it, as we prepack ours), times it with 1 and 2 intra-op threads,
runs edgecl's `int8_gops` example on the same shapes in the same run, and
prints GOP/s (2 M N K per call; median and best of repeated calls, since
the best is what survives a loaded machine) side by side with the ratio
ours / ORT. On CPUs with AMX-INT8 (Sapphire Rapids and later) ORT's MLAS
uses AMX tiles, which this crate does not (see the script's output line).

The script needs onnxruntime, onnx and numpy. It re-runs itself inside a
virtual environment: the one named by ORT_INT8_VENV, or a new one at
<repo>/../venv-int8, installing those packages with pip when missing.

    python3 benches/scripts/ort_int8.py [--m 2048] [--sizes 128,256,384,1024]
        [--full] [--threads 1,2] [--secs 1.0]

`--full` runs every (K, N) pair of the sizes; the default runs K = N.
ORT's result is checked against numpy on every shape; edgecl's example
checks itself against a plain dot product.
"""

import argparse
import os
import re
import subprocess
import sys
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PACKAGES = ["onnxruntime", "onnx", "numpy"]


def ensure_venv():
    """Re-executes this script under a venv python that has PACKAGES."""
    venv = os.environ.get("ORT_INT8_VENV") or os.path.join(os.path.dirname(REPO), "venv-int8")
    py = os.path.join(venv, "bin", "python")
    if os.path.realpath(sys.prefix) == os.path.realpath(venv):
        return
    if not os.path.exists(py):
        print(f"creating venv {venv}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    probe = subprocess.run([py, "-c", "import onnxruntime, onnx, numpy"], capture_output=True)
    if probe.returncode != 0:
        subprocess.run([py, "-m", "pip", "install", "-q", *PACKAGES], check=True)
    os.execv(py, [py, os.path.abspath(__file__), *sys.argv[1:]])


def matmul_integer_model(m, k, n, b):
    """A one-node model: Y (m x n, int32) = MatMulInteger(A (m x k, uint8), B)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    a = helper.make_tensor_value_info("A", TensorProto.UINT8, [m, k])
    y = helper.make_tensor_value_info("Y", TensorProto.INT32, [m, n])
    node = helper.make_node("MatMulInteger", ["A", "B"], ["Y"])
    graph = helper.make_graph([node], "int8_gemm", [a], [y], [numpy_helper.from_array(b, "B")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def call_seconds(fn, secs):
    """(median, best) wall time of fn() over at least 3 calls within secs, after a warm-up."""
    fn()
    times = []
    start = time.perf_counter()
    while len(times) < 3 or (time.perf_counter() - start < secs and len(times) < 10000):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2], times[0]


def ort_gops(m, k, n, threads, secs):
    import numpy as np
    import onnxruntime as ort

    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, size=(m, k), dtype=np.uint8)
    b = rng.integers(-128, 128, size=(k, n), dtype=np.int8)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(matmul_integer_model(m, k, n, b), opts, providers=["CPUExecutionProvider"])
    (y,) = sess.run(None, {"A": a})
    want = a.astype(np.int64) @ b.astype(np.int64)
    if not np.array_equal(y.astype(np.int64), want):
        raise SystemExit(f"ORT MatMulInteger disagrees with numpy at {m}x{k}x{n}")
    med, best = call_seconds(lambda: sess.run(None, {"A": a}), secs)
    return 2.0 * m * n * k / med / 1e9, 2.0 * m * n * k / best / 1e9


def ours(m, shapes, threads, secs):
    """Runs the int8_gops example; returns {(k, n, threads): {kernel: (median, best) gops}}."""
    cmd = [
        "cargo", "run", "--quiet", "--release", "-p", "edgecl-benches", "--example", "int8_gops", "--",
        "--m", str(m), "--shapes", ",".join(f"{k}x{n}" for k, n in shapes),
        "--threads", ",".join(map(str, threads)), "--secs", str(secs), "--peak", "1",
    ]
    tiers = os.environ.get("ORT_INT8_TIERS")
    if tiers:
        cmd += ["--tiers", tiers]
    print("$ " + " ".join(cmd), file=sys.stderr)
    out = subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, text=True).stdout
    res = {}
    pat = re.compile(r"k=(\d+) n=(\d+) threads=(\d+) kernel=(\S+) gops=([\d.]+) best_gops=([\d.]+)")
    for line in out.splitlines():
        mt = pat.search(line)
        if mt:
            k, n, t, kernel, g, b = mt.groups()
            res.setdefault((int(k), int(n), int(t)), {})[kernel] = (float(g), float(b))
        elif line.startswith("int8 peak"):
            print(line)
    return res


def main():
    ensure_venv()
    import onnxruntime as ort

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--m", type=int, default=2048)
    p.add_argument("--sizes", default="128,256,384,1024")
    p.add_argument("--full", action="store_true", help="every (K, N) pair instead of K = N")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--secs", type=float, default=1.0)
    args = p.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    threads = [int(t) for t in args.threads.split(",")]
    shapes = [(k, n) for k in sizes for n in sizes] if args.full else [(s, s) for s in sizes]

    mine = ours(args.m, shapes, threads, args.secs)
    kernels = sorted({kn for v in mine.values() for kn in v})
    best_name = next((kn for kn in ["avx512-vpdpbusd", "neon-sdot"] if kn in kernels), kernels[-1] if kernels else "")
    amx = "amx_int8" in open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else False
    print(f"onnxruntime {ort.__version__}; M = {args.m}; GOP/s = 2 M N K / call time, "
          f"median (med) and best (best) of the calls; CPU has AMX-INT8: {amx}")
    head = f"{'K':>5} {'N':>5} {'thr':>3} {'ORT med':>8} {'ORT best':>8} "
    head += " ".join(f"{kn + ' med/best':>28}" for kn in kernels)
    print(head + f" {best_name + '/ORT med,best':>30}")
    for k, n in shapes:
        for t in threads:
            o_med, o_best = ort_gops(args.m, k, n, t, args.secs)
            row = mine.get((k, n, t), {})
            nan = (float("nan"), float("nan"))
            cells = " ".join(f"{row.get(kn, nan)[0]:>18.1f} / {row.get(kn, nan)[1]:>7.1f}" for kn in kernels)
            b_med, b_best = row.get(best_name, nan)
            print(f"{k:>5} {n:>5} {t:>3} {o_med:>8.1f} {o_best:>8.1f} {cells} "
                  f"{b_med / o_med:>22.2f}, {b_best / o_best:.2f}", flush=True)


if __name__ == "__main__":
    main()
