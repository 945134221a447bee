#!/usr/bin/env python3
"""Runs hnswlib, faiss (IndexHNSWFlat) and usearch on the vectors the themap harness wrote
(base.npy, queries.npy, truth.npy in DIR), with the same M and ef_construction, and prints one
table with themap's rows (DIR/themap.json) and the ratios to hnswlib. hnswlib also runs with
each extra ef_construction themap was measured with (--also-ef-construction), so a cheaper
build is compared with the same cheaper build.

usage: ann_peers.py DIR [--engines hnswlib,faiss,usearch] [--index-cache DIR]
"""
import argparse
import hashlib
import json
import os
import resource
import time

import numpy as np

K = 10
# faiss-sq re-ranks K_FACTOR * K candidates exactly, as themap re-ranks its i8 walk in f32.
K_FACTOR = 2


def rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def recall(found, truth):
    hits = sum(len(set(f[:K].tolist()) & set(t.tolist())) for f, t in zip(found, truth))
    return hits / (len(truth) * K)


REPEATS = 5


def timed(search, queries, threads):
    # One batch call, as each library is meant to be used; threads=1 is one query thread. The
    # best of REPEATS passes, as themap's harness does: the machine is shared, and a pass that
    # another process interrupted measures that process.
    search(queries[: min(100, len(queries))], threads)  # warm-up
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        found = search(queries, threads)
        best = min(best, time.perf_counter() - start)
    return len(queries) / best, np.asarray(found)


def hnswlib_engine(base, m, efc, threads):
    import hnswlib

    index = hnswlib.Index(space="ip", dim=base.shape[1])
    index.init_index(max_elements=len(base), M=m, ef_construction=efc, random_seed=1)
    index.add_items(base, np.arange(len(base)), num_threads=threads)

    def search(ef):
        index.set_ef(max(ef, K))
        return lambda q, t: index.knn_query(q, k=K, num_threads=t)[0]

    return "hnswlib 0.8", search


def faiss_engine(base, m, efc, threads):
    import faiss

    faiss.omp_set_num_threads(threads)
    index = faiss.IndexHNSWFlat(base.shape[1], m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = efc
    index.add(base)

    def search(ef):
        def run(q, t):
            faiss.omp_set_num_threads(t)
            params = faiss.SearchParametersHNSW(efSearch=max(ef, K))
            return index.search(q, K, params=params)[1]

        return run

    return "faiss-cpu IndexHNSWFlat", search


def faiss_sq_engine(base, m, efc, threads, cache=None):
    """themap's design in faiss: an 8-bit scalar-quantized HNSW walk, then an exact f32 re-rank
    of K_FACTOR * k candidates (IndexRefineFlat)."""
    import faiss

    faiss.omp_set_num_threads(threads)
    # main() writes the build time after the index, so with it the index is whole.
    if cache and os.path.exists(cache + ".build_s"):
        index = faiss.read_index(cache)  # already the IndexRefineFlat it was
    else:
        hnsw = faiss.IndexHNSWSQ(base.shape[1], faiss.ScalarQuantizer.QT_8bit, m, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = efc
        index = faiss.IndexRefineFlat(hnsw)
        index.k_factor = K_FACTOR
        index.train(base)
        index.add(base)
        if cache:
            faiss.write_index(index, cache)

    def search(ef):
        def run(q, t):
            faiss.omp_set_num_threads(t)
            params = faiss.IndexRefineSearchParameters(
                k_factor=K_FACTOR, base_index_params=faiss.SearchParametersHNSW(efSearch=max(ef, K * K_FACTOR))
            )
            return index.search(q, K, params=params)[1]

        return run

    return f"faiss-cpu IndexHNSWSQ 8-bit + IndexRefineFlat (k_factor {K_FACTOR})", search


def usearch_engine(base, m, efc, threads):
    from usearch.index import Index

    index = Index(ndim=base.shape[1], metric="ip", dtype="f32", connectivity=m, expansion_add=efc)
    index.add(np.arange(len(base)), base, threads=threads)

    def search(ef):
        def run(q, t):
            index.expansion_search = max(ef, K)
            return index.search(q, K, threads=t).keys

        return run

    return "usearch f32", search


ENGINES = {
    "hnswlib": hnswlib_engine,
    "faiss": faiss_engine,
    "faiss-sq": faiss_sq_engine,
    "usearch": usearch_engine,
}


def at_recall(sweep, target):
    """The fastest point (one thread) whose recall reaches target, else None."""
    points = [p for p in sweep if p["recall"] >= target]
    return max(points, key=lambda p: p["qps_1"]) if points else None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("dir")
    parser.add_argument("--engines", default="hnswlib,faiss,faiss-sq,usearch")
    parser.add_argument("--print", action="store_true", help="print the table of DIR/all.json again, running nothing")
    parser.add_argument(
        "--index-cache",
        help="keep faiss-sq's built index here and reuse it (the build time shown is then that of the run that built it)",
    )
    args = parser.parse_args()
    if args.print:
        everything = json.load(open(os.path.join(args.dir, "all.json")))
        print_table(everything, everything["rows"])
        return
    meta = json.load(open(os.path.join(args.dir, "themap.json")))
    base = np.ascontiguousarray(np.load(os.path.join(args.dir, "base.npy")), dtype=np.float32)
    queries = np.ascontiguousarray(np.load(os.path.join(args.dir, "queries.npy")), dtype=np.float32)
    truth = np.load(os.path.join(args.dir, "truth.npy")).astype(np.int64)
    threads = os.cpu_count()
    efs = sorted({p["ef"] for row in meta["rows"] for p in row["sweep"] if p["ef"] > 0})
    rows = list(meta["rows"])
    runs = [(name, meta["ef_construction"]) for name in args.engines.split(",")]
    if "hnswlib" in args.engines.split(","):
        runs += [("hnswlib", efc) for efc in meta.get("also_ef_construction", [])]
    for name, efc in runs:
        before = rss_mib()
        start = time.perf_counter()
        cache = None
        if args.index_cache and name == "faiss-sq":
            # A fingerprint of the vectors in the name, so other vectors of the same shape never
            # reuse it (about a thousand rows: hashing every one would take seconds at 1M).
            n, dims = base.shape
            sample = hashlib.blake2b(base[:: max(1, n // 1000)].tobytes(), digest_size=8).hexdigest()
            cache = os.path.join(args.index_cache, f"faiss-sq-{n}x{dims}-{sample}-m{meta['m']}-efc{efc}.index")
            label, search_at = ENGINES[name](base, meta["m"], efc, threads, cache)
        else:
            label, search_at = ENGINES[name](base, meta["m"], efc, threads)
        build = time.perf_counter() - start
        memory = rss_mib() - before
        if cache:
            if os.path.exists(cache + ".build_s"):
                build = float(open(cache + ".build_s").read())
            else:
                open(cache + ".build_s", "w").write(str(build))
        sweep = []
        for ef in efs:
            search = search_at(ef)
            qps_1, found = timed(search, queries, 1)
            qps_all, _ = timed(search, queries, threads)
            sweep.append({"ef": ef, "recall": recall(found, truth), "qps_1": qps_1, "qps_all": qps_all})
        if efc != meta["ef_construction"]:
            label += f" (ef_construction {efc})"
        rows.append({"engine": label, "build_s": build, "memory_mib": memory, "sweep": sweep})
        print(f"{label}: built in {build:.1f} s", flush=True)
    json.dump({**meta, "rows": rows}, open(os.path.join(args.dir, "all.json"), "w"), indent=1)
    print_table(meta, rows)


def print_table(meta, rows):
    n, dims, m = meta["n"], meta["dims"], meta["m"]
    raw_links = (4 * n * dims + 4 * n * (2 * m + 1)) / 2**20
    find = lambda prefix: next((r for r in rows if r["engine"].startswith(prefix)), None)
    faiss_sq, hnswlib = find("faiss-cpu IndexHNSWSQ"), find("hnswlib 0.8")
    print(
        f"\n{n:,} × {dims} unit vectors, {meta['queries']} queries, recall@10 against exact search, "
        f"M={m}, ef_construction={meta['ef_construction']}, {meta['threads']} threads; "
        "QPS at the fastest ef reaching the recall (recall, ef); best of 5 passes\n"
    )
    print(
        "| engine | build s | index MiB (× raw+links) | QPS 1 thread @0.95 | QPS all threads @0.95 "
        "| QPS 1 thread @0.98 | QPS all threads @0.98 "
        "| vs faiss HNSWSQ: @0.95 1 thread / all, @0.98 1 thread / all, build | vs hnswlib @0.98, 1 thread |"
    )
    print("|---|---|---|---|---|---|---|---|---|")

    def points(row):
        if row is None:
            return None, None
        if row["sweep"][0]["ef"] == 0:
            return row["sweep"][0], row["sweep"][0]
        return at_recall(row["sweep"], 0.95), at_recall(row["sweep"], 0.98)

    def ratio(a, b, key):
        return "-" if a is None or b is None else f"{a[key] / b[key]:.2f}×"

    sq95, sq98 = points(faiss_sq)
    _, lib98 = points(hnswlib)
    for row in rows:
        p95, p98 = points(row)

        def cell(p, key):
            return "not reached" if p is None else f"{p[key]:,.0f} ({p['recall']:.3f}, ef {p['ef']})"

        build = f"{row['build_s'] / faiss_sq['build_s']:.2f}×" if faiss_sq and row["build_s"] else "-"
        vs_sq = " / ".join(
            [ratio(p95, sq95, "qps_1"), ratio(p95, sq95, "qps_all"), ratio(p98, sq98, "qps_1"), ratio(p98, sq98, "qps_all"), build]
        )
        memory = f"{row['memory_mib']:,.0f} ({row['memory_mib'] / raw_links:.2f}×)" if row["memory_mib"] > 0 else "-"
        print(
            f"| {row['engine']} | {row['build_s']:.1f} | {memory} | {cell(p95, 'qps_1')} | "
            f"{cell(p95, 'qps_all')} | {cell(p98, 'qps_1')} | {cell(p98, 'qps_all')} | {vs_sq} | {ratio(p98, lib98, 'qps_1')} |"
        )


if __name__ == "__main__":
    main()
