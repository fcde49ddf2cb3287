#!/usr/bin/env python3
"""Search kernels of edgecl beside FAISS (and SimSIMD) on identical data.

Creates a venv (EDGECL_BENCH_VENV, default ./bench-venv) with faiss-cpu,
simsimd and numpy and re-runs itself inside it; generates seeded,
clustered data (binary codes and float vectors), writes it for the Rust
driver (benches/examples/search_driver.rs), then times in one run:

  hamming  1M x 256-bit top-10: faiss IndexBinaryFlat, simsimd cdist + partial
           sort, ours (one query per call, and batches of 8)
  flat_ip  float dot top-10: faiss IndexFlatIP, ours
  pq8      8-bit PQ, M sub-quantizers, ADC top-10: faiss IndexPQ, ours
  pq4fs    4-bit PQ fast-scan top-10: faiss IndexPQFastScan (no re-ranking),
           ours ranked by the quantized tables alone (as FAISS) and ours
           with the best 100 re-ranked with float tables

each with 1 and 2 threads, the fastest of 3 passes over the queries (OMP for faiss, RAYON_NUM_THREADS for ours).
Reported per row: time per query, recall@10 against exact search, FAISS's
time for the same task and thread count over ours (the "vs faiss" ratio;
above 1 means we are faster), and bytes scanned per second beside a memory
bandwidth measured in the same run (numpy sum and copy of 256 MiB).

Recall for Hamming is tie-aware: a returned id counts when its exact
distance is within the exact 10th-smallest distance, since many codes tie.
PQ recall is against exact inner-product search on the original vectors.

--corpus-npy/--queries-npy replace the generated float vectors with real
ones (f32 .npy, e.g. from benches/scripts/embed_scifact.py); PQ then
trains on the corpus itself and --d follows the files.

Left out: IVF indexes, OPQ, GPU; one query per call is the mode timed for
FAISS on every task, plus one call with all queries (its batched mode).

`faiss_search.py index ...` compares whole indexes instead of kernels: it
runs benches/examples/index_report.rs on a vectors file (or has it generate
seeded clustered vectors), builds the FAISS peers on the same vectors in
the same run, and prints both side by side. See index_main's --help.
"""

import argparse
import os
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
PACKAGES = ["faiss-cpu", "simsimd", "numpy"]


def ensure_venv():
    """Re-executes this script inside the bench venv, creating it if needed."""
    venv = pathlib.Path(os.environ.get("EDGECL_BENCH_VENV", ROOT / "bench-venv")).resolve()
    py = venv / "bin" / "python"
    if pathlib.Path(sys.prefix).resolve() == venv:
        return
    if not py.exists():
        print(f"creating venv {venv}", flush=True)
        subprocess.check_call([sys.executable, "-m", "venv", str(venv)])
        subprocess.check_call([str(py), "-m", "pip", "install", "-q", *PACKAGES])
    os.execv(str(py), [str(py), __file__, *sys.argv[1:]])


def args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-bin", type=int, default=1_000_000, help="binary codes")
    p.add_argument("--words", type=int, default=4, help="u64 words per code")
    p.add_argument("--n-vec", type=int, default=100_000, help="float vectors")
    p.add_argument("--n-train", type=int, default=20_000, help="PQ training vectors")
    p.add_argument("--d", type=int, default=128, help="float dimension")
    p.add_argument("--m", type=int, default=16, help="PQ sub-quantizers")
    p.add_argument("--nq", type=int, default=100, help="queries")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--threads", default="1,2")
    p.add_argument("--tasks", default="hamming,flat_ip,pq8,pq4fs")
    p.add_argument("--dir", default=str(ROOT / "out" / "search-bench"), help="data directory")
    p.add_argument("--corpus-npy", help="real float vectors instead of generated ones")
    p.add_argument("--queries-npy", help="real float queries (with --corpus-npy)")
    return p.parse_args()


def generate(a, np):
    """Clustered data: codes are centre codes with ~1/8 of bits flipped,
    vectors are Gaussian centres plus smaller Gaussian noise."""
    rng = np.random.default_rng(a.seed)
    u64 = np.iinfo(np.uint64).max
    centres = rng.integers(0, u64, size=(1024, a.words), dtype=np.uint64, endpoint=True)

    def codes(n):
        noise = rng.integers(0, u64, size=(3, n, a.words), dtype=np.uint64, endpoint=True)
        return centres[rng.integers(0, 1024, n)] ^ (noise[0] & noise[1] & noise[2])

    bin_codes, bin_q = codes(a.n_bin), codes(a.nq)
    fc = rng.standard_normal((256, a.d), dtype=np.float32)

    def vecs(n):
        x = fc[rng.integers(0, 256, n)] + 0.5 * rng.standard_normal((n, a.d), dtype=np.float32)
        return x.astype(np.float32)

    return bin_codes, bin_q, vecs(a.n_vec), vecs(a.nq), vecs(a.n_train)


def write(path, arr):
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        f.write(arr.astype(arr.dtype.newbyteorder("<")).tobytes())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def bandwidth(np):
    """Bytes/s of one thread over 256 MiB, best of 3: the larger of a numpy
    sum (reads only) and a copy (counted as read plus write)."""
    x = np.ones(1 << 25, dtype=np.uint64)
    y = np.empty_like(x)
    read = x.nbytes / min(timeit(lambda: x.sum()) for _ in range(3))
    copy = 2 * x.nbytes / min(timeit(lambda: np.copyto(y, x)) for _ in range(3))
    return max(read, copy), read, copy


def timeit(f):
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


PASSES = 3  # the fastest of PASSES passes is reported (the machine may be shared)


def per_query(f, nq):
    f(0)
    best = float("inf")
    for _ in range(PASSES):
        t = time.perf_counter()
        res = [f(i) for i in range(nq)]
        best = min(best, (time.perf_counter() - t) / nq)
    return res, best


def hamming_recall(np, codes, queries, ids):
    """Tie-aware recall@10 of ids (nq x 10) against exact Hamming."""
    hits = 0
    for q, row in zip(queries, ids):
        dist = np.bitwise_count(codes ^ q).sum(axis=1)
        kth = np.partition(dist, 9)[9]
        row = row[(row >= 0) & (row < len(codes))]
        hits += int((dist[row] <= kth).sum())
    return hits / (10 * len(queries))


def ip_recall(np, gt, ids):
    return float(np.mean([len(set(g) & set(r)) / 10 for g, r in zip(gt, ids)]))


def main():
    ensure_venv()
    import faiss
    import numpy as np

    a = args()
    d = pathlib.Path(a.dir)
    d.mkdir(parents=True, exist_ok=True)
    tasks = a.tasks.split(",")
    threads = [int(t) for t in a.threads.split(",")]

    print(f"generating data (seed {a.seed})", flush=True)
    bin_codes, bin_q, vecs, vq, train = generate(a, np)
    if a.corpus_npy:
        vecs = np.ascontiguousarray(np.load(a.corpus_npy), dtype=np.float32)
        vq = np.ascontiguousarray(np.load(a.queries_npy), dtype=np.float32)
        train, a.n_vec, a.d = vecs, len(vecs), vecs.shape[1]
        print(f"real vectors: {a.n_vec} x {a.d}, {len(vq)} queries", flush=True)
    for name, arr in [("codes.u64", bin_codes), ("bq.u64", bin_q), ("vecs.f32", vecs),
                      ("vq.f32", vq), ("train.f32", train)]:
        write(d / name, arr)
    (d / "meta.txt").write_text(f"words={a.words}\nd={a.d}\nm={a.m}\n")

    print("building the Rust driver", flush=True)
    subprocess.check_call(["cargo", "build", "--release", "-q", "-p", "edgecl-benches",
                           "--example", "search_driver"], cwd=ROOT)
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    driver = target / "release" / "examples" / "search_driver"

    bw, bw_read, bw_copy = bandwidth(np)
    print(f"memory bandwidth, 1 thread: sum {bw_read / 1e9:.1f} GB/s, copy {bw_copy / 1e9:.1f} GB/s",
          flush=True)
    gt_ip = np.argsort(-(vq @ vecs.T), axis=1)[:, :10] if set(tasks) - {"hamming"} else None
    bcodes8 = bin_codes.view(np.uint8)
    bq8 = bin_q.view(np.uint8)
    rows = []  # (task, impl, threads, sec/query, recall, bytes/query)

    def ours(task, t, rerank=100):
        env = dict(os.environ, RAYON_NUM_THREADS=str(t))
        out = subprocess.run([str(driver), str(d), task, str(rerank)], env=env, check=True,
                             capture_output=True, text=True).stdout
        kv = dict(x.split("=", 1) for x in out.split())
        ids = np.fromfile(d / f"ours_{task}.u32", dtype="<u4").reshape(-1, 10).astype(np.int64)
        ids[ids == 0xFFFFFFFF] = -1
        return float(kv["sec_per_query"]), ids, int(kv["bytes_per_query"]), float(kv["train_s"])

    def faiss_rows(task, index, xq, t, recall, nbytes):
        faiss.omp_set_num_threads(t)
        res, s = per_query(lambda i: index.search(xq[i:i + 1], 10)[1], len(xq))
        rows.append((task, "faiss 1 query/call", t, s, recall(np.vstack(res)), nbytes))
        s_all = min(timeit(lambda: index.search(xq, 10)) for _ in range(PASSES)) / len(xq)
        rows.append((task, f"faiss {len(xq)} queries/call", t, s_all, None, nbytes))

    if "hamming" in tasks:
        index = faiss.IndexBinaryFlat(64 * a.words)
        index.add(bcodes8)
        nbytes = bcodes8.nbytes
        rec = lambda ids: hamming_recall(np, bin_codes, bin_q, ids)
        for t in threads:
            faiss_rows("hamming", index, bq8, t, rec, nbytes)
            for task, label in [("hamming", "ours 1 query/call"), ("hamming_batch8", "ours 8 queries/call")]:
                s, ids, nb, _ = ours(task, t)
                rows.append(("hamming", label, t, s, rec(ids), nb))
        try:
            import simsimd
            def ss(i):
                dist = np.asarray(simsimd.cdist(bq8[i:i + 1], bcodes8, metric="hamming", dtype="bin8"))
                return np.argpartition(dist.ravel(), 10)[:10]
            res, s = per_query(ss, len(bq8))
            rows.append(("hamming", "simsimd cdist+argpartition", 1, s, rec(np.vstack(res)), nbytes))
        except Exception as e:  # a missing kernel or API change is reported, not fatal
            print(f"simsimd hamming skipped: {e}")

    if "flat_ip" in tasks:
        index = faiss.IndexFlatIP(a.d)
        index.add(vecs)
        rec = lambda ids: ip_recall(np, gt_ip, ids)
        for t in threads:
            faiss_rows("flat_ip", index, vq, t, rec, vecs.nbytes)
            s, ids, nb, _ = ours("flat_ip", t)
            rows.append(("flat_ip", "ours 1 query/call", t, s, rec(ids), nb))

    for task, make in [("pq8", lambda: faiss.IndexPQ(a.d, a.m, 8, faiss.METRIC_INNER_PRODUCT)),
                       ("pq4fs", lambda: faiss.IndexPQFastScan(a.d, a.m, 4, faiss.METRIC_INNER_PRODUCT))]:
        if task not in tasks:
            continue
        index = make()
        faiss.omp_set_num_threads(1)
        t0 = time.perf_counter()
        index.train(train)
        index.add(vecs)
        print(f"{task}: faiss train+add {time.perf_counter() - t0:.1f} s", flush=True)
        nbytes = a.n_vec * a.m * (1 if task == "pq8" else 0.5)
        rec = lambda ids: ip_recall(np, gt_ip, ids)
        for t in threads:
            faiss_rows(task, index, vq, t, rec, nbytes)
            s, ids, nb, train_s = ours(task, t)
            print(f"{task}: ours train+encode {train_s:.1f} s ({t} threads)", flush=True)
            label = "ours 1 query/call" if task == "pq8" else "ours 1 query/call, rerank 100"
            rows.append((task, label, t, s, rec(ids), nb))
            if task == "pq4fs":
                s, ids, nb, _ = ours(task, t, rerank=10)
                rows.append((task, "ours 1 query/call, quantized only", t, s, rec(ids), nb))

    faiss_ref = {(r[0], r[2]): r[3] for r in rows if r[1] == "faiss 1 query/call"}
    print()
    print(f"| task | implementation | threads | us/query | recall@10 | faiss 1q/call time / this | GB/s scanned | % of {bw / 1e9:.1f} GB/s |")
    print("|---|---|---|---|---|---|---|---|")
    for task, impl, t, s, rec, nb in rows:
        ref = faiss_ref.get((task, t))
        ratio = f"{ref / s:.2f}" if ref else "-"
        recs = f"{rec:.3f}" if rec is not None else "-"
        gbs = nb / s / 1e9
        print(f"| {task} | {impl} | {t} | {s * 1e6:.1f} | {recs} | {ratio} | {gbs:.1f} | {100 * gbs * 1e9 / bw:.0f}% |")


INDEX_HELP = """Whole indexes, ours (benches/examples/index_report.rs) beside FAISS on the
same vectors in the same run, one query per call on one thread:

  ours           FAISS peer
  exact          IndexFlatIP
  int8           IndexScalarQuantizer QT_8bit (inner product)
  binary         IndexBinaryFlat over the same centred sign bits
  pq4+f32        IndexPQFastScan (4-bit, M = --pq-m) in IndexRefineFlat
  pq8+f32        IndexPQ (8-bit, M = --pq-m) in IndexRefineFlat
  hnsw efN       IndexHNSWFlat M16 (efConstruction 40), efSearch N

Binary with int8 or f32 rescoring has no FAISS peer (IndexRefine needs a
float base index). Both sides train PQ on the same even-stride sample of at
most 65,536 vectors and rescore the same shortlist (k_factor = shortlist /
10). FAISS latencies include a Python call per query (a few microseconds);
recall@10 is against exact inner-product search; nDCG@10 with --qrels.
QPS ratio = our QPS / FAISS QPS (above 1: we are faster), QPS being one
over the mean latency; on a shared machine preemptions inflate the mean, so
the median ratio (FAISS p50 / our p50, above 1: we are faster) is printed
too. Builds use every core on both sides; searches one thread.
"""


def index_args(argv):
    p = argparse.ArgumentParser(prog="faiss_search.py index", description=INDEX_HELP,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", help="f32 .npy, rows are documents")
    p.add_argument("--queries", help="f32 .npy")
    p.add_argument("--corpus-ids")
    p.add_argument("--query-ids")
    p.add_argument("--qrels", help="BEIR qrels TSV (needs the two id files)")
    p.add_argument("--generate", type=int, help="seeded clustered vectors instead of files")
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--nq", type=int, default=200)
    p.add_argument("--out", default=str(ROOT / "target" / "index-report"))
    p.add_argument("--modes", default="exact,int8,binary,binary+int8,binary+f32,pq4+f32,pq8+f32,hnsw")
    p.add_argument("--pq-m", type=int, help="PQ sub-quantizers (default dim / 8)")
    p.add_argument("--shortlist", type=int, default=100)
    p.add_argument("--ef", default="16,32,64,128", help="HNSW efSearch values")
    return p.parse_args(argv)


def ndcg10(np, ranked, rel):
    dcg = sum(rel.get(d, 0.0) / np.log2(i + 2) for i, d in enumerate(ranked[:10]))
    ideal = sorted(rel.values(), reverse=True)[:10]
    idcg = sum(g / np.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def read_qrels(path):
    out = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            parts = line.rstrip("\n").split("\t")
            if n == 1 and parts[0] == "query-id":
                continue
            if len(parts) != 3:
                raise SystemExit(f"{path}:{n}: expected 3 tab-separated fields")
            if float(parts[2]) > 0:
                out.setdefault(parts[0], {})[parts[1]] = float(parts[2])
    return out


def index_main(argv):
    ensure_venv()
    import faiss
    import numpy as np

    a = index_args(argv)
    out = pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)

    # Ours first (it also writes generated vectors for FAISS to read).
    print("building the Rust report", flush=True)
    subprocess.check_call(["cargo", "build", "--release", "-q", "-p", "edgecl-benches",
                           "--example", "index_report"], cwd=ROOT)
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    cmd = [str(target / "release" / "examples" / "index_report"), "--out", str(out),
           "--modes", a.modes, "--shortlist", str(a.shortlist), "--ef", a.ef,
           "--tsv", str(out / "ours.tsv"), "--nq", str(a.nq), "--dim", str(a.dim)]
    if a.generate:
        cmd += ["--generate", str(a.generate)]
        corpus_path, queries_path = out / "corpus.npy", out / "queries.npy"
    else:
        cmd += ["--corpus", a.corpus, "--queries", a.queries]
        corpus_path, queries_path = pathlib.Path(a.corpus), pathlib.Path(a.queries)
    for flag, val in [("--corpus-ids", a.corpus_ids), ("--query-ids", a.query_ids),
                      ("--qrels", a.qrels), ("--pq-m", a.pq_m)]:
        if val is not None:
            cmd += [flag, str(val)]
    print(" ".join(cmd), flush=True)
    subprocess.check_call(cmd, cwd=ROOT)
    ours = {}
    with open(out / "ours.tsv", encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        for line in f:
            row = dict(zip(header, line.rstrip("\n").split("\t")))
            ours[row["mode"]] = row

    xb = np.load(corpus_path).astype(np.float32)
    xq = np.load(queries_path).astype(np.float32)
    n, d = xb.shape
    m = a.pq_m or d // 8
    doc_ids = qrels = qids = None
    if a.qrels:
        doc_ids = [l.strip() for l in open(a.corpus_ids, encoding="utf-8") if l.strip()]
        qids = [l.strip() for l in open(a.query_ids, encoding="utf-8") if l.strip()]
        qrels = read_qrels(a.qrels)

    # Exact top-10 by inner product, in query blocks to bound memory.
    gt = np.vstack([np.argsort(-(xq[i:i + 16] @ xb.T), axis=1)[:, :10]
                    for i in range(0, len(xq), 16)])
    take = min(n, 65536)
    xt = xb[(np.arange(take) * n) // take]
    mean = xb.mean(axis=0)
    to_bits = lambda x: np.packbits((x - mean) > 0, axis=1, bitorder="little")

    def measure(index, queries, label, build_s):
        faiss.omp_set_num_threads(1)
        for i in range(len(queries)):  # warm-up pass
            index.search(queries[i:i + 1], 10)
        lat, ids = [], []
        for i in range(len(queries)):
            t = time.perf_counter()
            _, I = index.search(queries[i:i + 1], 10)
            lat.append(time.perf_counter() - t)
            ids.append(I[0])
        lat = np.array(lat)
        rec = float(np.mean([len(set(g) & set(r)) / 10 for g, r in zip(gt, ids)]))
        nd = None
        if qrels is not None:
            nd = float(np.mean([ndcg10(np, [doc_ids[j] for j in r if j >= 0], qrels.get(q, {}))
                                for q, r in zip(qids, ids)]))
        return dict(label=label, recall=rec, ndcg=nd, p50=np.percentile(lat, 50) * 1e6,
                    p99=np.percentile(lat, 99) * 1e6, qps=1 / lat.mean(), build=build_s)

    def build(make, train=True, data=None):
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        t = time.perf_counter()
        index = make()
        if train:
            index.train(xt)
        index.add(xb if data is None else data)
        return index, time.perf_counter() - t

    ip = faiss.METRIC_INNER_PRODUCT
    peers = {}
    modes = a.modes.split(",")
    if "exact" in modes:
        idx, s = build(lambda: faiss.IndexFlatIP(d), train=False)
        peers["exact"] = measure(idx, xq, "IndexFlatIP", s)
    if "int8" in modes:
        idx, s = build(lambda: faiss.IndexScalarQuantizer(d, faiss.ScalarQuantizer.QT_8bit, ip))
        peers["int8"] = measure(idx, xq, "IndexScalarQuantizer SQ8", s)
    if "binary" in modes:
        idx, s = build(lambda: faiss.IndexBinaryFlat(8 * to_bits(xb[:1]).shape[1]), train=False,
                       data=to_bits(xb))
        peers["binary"] = measure(idx, to_bits(xq), "IndexBinaryFlat", s)
    for mode, label, make in [
        ("pq4+f32", f"PQFastScan M{m}x4 + RefineFlat", lambda: faiss.IndexPQFastScan(d, m, 4, ip)),
        ("pq8+f32", f"PQ M{m}x8 + RefineFlat", lambda: faiss.IndexPQ(d, m, 8, ip)),
    ]:
        if mode in modes:
            def refined(make=make):
                r = faiss.IndexRefineFlat(make())
                r.k_factor = a.shortlist / 10
                return r
            idx, s = build(refined)
            peers[mode] = measure(idx, xq, label, s)
    if "hnsw" in modes:
        def hnsw():
            h = faiss.IndexHNSWFlat(d, 16, ip)
            h.hnsw.efConstruction = 40
            return h
        idx, s = build(hnsw, train=False)
        for ef in a.ef.split(","):
            idx.hnsw.efSearch = int(ef)
            peers[f"hnsw ef{ef}"] = measure(idx, xq, f"IndexHNSWFlat M16 efSearch{ef}", s)

    # Side by side.
    load = os.getloadavg()[0]
    print(f"\n{n} x {d}, {len(xq)} queries, 1 search thread each side; load average {load:.1f} "
          f"on {os.cpu_count()} cores (a shared machine: compare the ratios)\n")
    has_nd = qrels is not None
    head = ["mode", "bytes/vec", "recall", *(["nDCG@10"] if has_nd else []), "p50 us", "p99 us",
            "QPS", "build s", "FAISS peer", "recall", *(["nDCG@10"] if has_nd else []),
            "p50 us", "p99 us", "QPS", "build s", "QPS ours/FAISS", "p50 FAISS/ours"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for mode, r in ours.items():
        f = peers.get(mode)
        cells = [mode, r["bytes"], f"{float(r['recall']):.4f}",
                 *([r["ndcg"]] if has_nd else []), f"{float(r['p50_us']):.1f}",
                 f"{float(r['p99_us']):.1f}", f"{float(r['qps']):.0f}", f"{float(r['build_s']):.2f}"]
        if f:
            cells += [f["label"], f"{f['recall']:.4f}", *([f"{f['ndcg']:.4f}"] if has_nd else []),
                      f"{f['p50']:.1f}", f"{f['p99']:.1f}", f"{f['qps']:.0f}", f"{f['build']:.2f}",
                      f"{float(r['qps']) / f['qps']:.2f}", f"{f['p50'] / float(r['p50_us']):.2f}"]
        else:
            cells += ["-"] * (len(head) - len(cells))
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "index":
        index_main(sys.argv[2:])
    else:
        main()
