"""What the Ray path costs: the same records embedded by one `themap embed` using every core; by
scripts/ray/embed.py on a loopback cluster of one-core workers (as many as cores); and, the
baseline that isolates Ray's share, by as many one-thread `themap embed --jobs` processes started
by hand on the same shards. In rotating order, each timed wall to wall (process start, Ray
connection, actor start and model loads included; the cluster's own start is reported apart: a
real cluster is already up).

    $(scripts/ray/venv.sh) scripts/ray/bench.py RECORDS.jsonl [--runs 2] [--shard-size 1024]

Needs THEMAP_MODEL; THEMAP_BIN defaults to target/release/themap. Prints a Markdown table.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts", "ray"))

from local_cluster import LoopbackCluster  # noqa: E402


def timed(command) -> float:
    started = time.perf_counter()
    if callable(command):
        command()
    else:
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def cut(records: str, size: int, folder: str) -> list[str]:
    """The records' non-empty lines in files of `size`, as the driver cuts them."""
    os.makedirs(folder)
    lines = [line for line in open(records, "rb") if line.strip()]
    paths = []
    for start in range(0, len(lines), size):
        paths.append(os.path.join(folder, f"{start // size:06d}.jsonl"))
        with open(paths[-1], "wb") as f:
            f.writelines(lines[start : start + size])
    return paths


def by_hand(themap: str, model: str, shards: list[str], out: str, processes: int) -> None:
    """The shards dealt round-robin to one-thread `themap embed --jobs` processes, no Ray."""
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    env = dict(os.environ, RAYON_NUM_THREADS="1")
    running = []
    for p in range(processes):
        jobs = "".join(
            json.dumps({"inputs": [shard], "out": os.path.join(out, os.path.basename(shard) + ".npy")}) + "\n"
            for shard in shards[p::processes]
        )
        command = [themap, "-q", "embed", "--jobs", "-", "--model", model, "--device", "cpu"]
        child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env, text=True)
        child.stdin.write(jobs)
        child.stdin.close()
        running.append(child)
    for child in running:
        if child.wait() != 0:
            raise RuntimeError("a themap embed --jobs process failed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("records")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--shard-size", type=int, default=1024)
    args = parser.parse_args()
    themap = os.path.abspath(os.environ.get("THEMAP_BIN", os.path.join(ROOT, "target", "release", "themap")))
    model = os.environ["THEMAP_MODEL"]
    cores = os.cpu_count()
    records = sum(1 for line in open(args.records, "rb") if line.strip())
    work = tempfile.mkdtemp(prefix="themap-ray-bench-")
    started = time.perf_counter()
    cluster = LoopbackCluster(workers=cores, cpus_per_worker=1, gpus_per_worker=1, base_port=36300).up()
    cluster_seconds = time.perf_counter() - started
    try:
        single_cmd = [themap, "-q", "embed", args.records, "-o", f"{work}/single.npy", "--model", model,
                      "--device", "cpu", "--overwrite", "--restart"]
        ray_cmd = [sys.executable, os.path.join(ROOT, "scripts", "ray", "embed.py"), args.records, "--out", f"{work}/ray",
                   "--address", cluster.address, "--themap", themap, "--model", model, "--device", "cpu",
                   "--shard-size", str(args.shard_size), "--restart"]
        times = {"single": [], "ray": [], "hand": []}
        shards = cut(args.records, args.shard_size, os.path.join(work, "shards"))
        commands = {
            "single": single_cmd,
            "ray": ray_cmd,
            "hand": lambda: by_hand(themap, model, shards, os.path.join(work, "hand"), cores),
        }
        order = list(commands)
        for run in range(args.runs):
            for name in order[run % 3:] + order[: run % 3]:
                times[name].append(timed(commands[name]))
                print(f"run {run + 1}: {name} {times[name][-1]:.1f} s", file=sys.stderr)
    finally:
        cluster.down()
        shutil.rmtree(work, ignore_errors=True)
    single, ray, hand = (statistics.median(times[k]) for k in ("single", "ray", "hand"))
    runs = {k: ", ".join(f"{t:.1f}" for t in v) for k, v in times.items()}
    print(f"{records} records, {cores} cores; cluster start {cluster_seconds:.0f} s (not counted)\n")
    print("| path | runs, s | median, s | against one process | against by hand |")
    print("|---|---|---|---|---|")
    print(f"| themap embed, one process, {cores} threads | {runs['single']} | {single:.1f} | | |")
    print(f"| {cores} one-thread themap embed --jobs processes by hand, shards of {args.shard_size} "
          f"| {runs['hand']} | {hand:.1f} | {hand / single - 1:+.1%} | |")
    print(f"| scripts/ray/embed.py, {cores} workers × 1 core, shards of {args.shard_size} "
          f"| {runs['ray']} | {ray:.1f} | {ray / single - 1:+.1%} | {ray / hand - 1:+.1%} |")
    print(json.dumps({"records": records, "cores": cores, **times}), file=sys.stderr)

if __name__ == "__main__":
    main()
