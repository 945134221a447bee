"""The table of scripts/bench-kernels.sh: criterion's `linear` group beside OpenBLAS.

    python scripts/kernels_table.py collect CRITERION_DIR    # the group's rates now, as JSON lines
    python scripts/kernels_table.py table FILE...            # the table from collected lines

`collect` reads each linear bench's median time from CRITERION_DIR (criterion's estimates.json)
as GFLOP/s; scripts/blas_linear.py --json writes OpenBLAS's lines in the same form. `table` keeps
each engine's best rate per shape over all the lines given (the harness alternates engines over
several rounds, so that a slow minute on a shared machine does not decide a ratio) and prints
GFLOP/s per shape and engine, with themap's f32 kernel against OpenBLAS and against candle.
"""

import glob
import json
import os
import re
import sys


def collect(criterion: str) -> None:
    for path in glob.glob(f"{criterion}/linear*/*/new/estimates.json"):
        name = json.load(open(os.path.join(os.path.dirname(path), "benchmark.json")))["function_id"]
        match = re.match(r"(.+) (\d+)x(\d+)x(\d+)$", name)  # e.g. "themap f32 4096x768x1152"
        if not match:
            continue
        engine, m, k, n = match.group(1), *map(int, match.groups()[1:])
        seconds = json.load(open(path))["median"]["point_estimate"] / 1e9
        print(json.dumps({"engine": engine, "shape": f"{m}x{k}x{n}", "gflops": round(2 * m * k * n / seconds / 1e9, 1)}))


def table(files: list[str]) -> None:
    rates: dict[str, dict[str, float]] = {}
    for path in files:
        for line in open(path):
            row = json.loads(line)
            best = rates.setdefault(row["shape"], {})
            best[row["engine"]] = max(best.get(row["engine"], 0.0), row["gflops"])
    engines = ["candle f32", "themap f32", "themap bf16", "OpenBLAS f32"]
    cpu = os.environ.get("CPU", "")
    lines = [f"CPU: {cpu}", ""] if cpu else []
    lines += [
        "| x·Wᵀ, m × k × n | " + " | ".join(engines) + " | themap f32 / OpenBLAS | themap f32 / candle |",
        "|---" * (len(engines) + 3) + "|",
    ]
    for shape in sorted(rates, key=lambda s: [int(x) for x in s.split("x")]):
        r = rates[shape]
        ours, blas, candle = r.get("themap f32"), r.get("OpenBLAS f32"), r.get("candle f32")
        ratio = lambda a, b: f"{a / b:.2f}" if a and b else "–"  # noqa: E731
        cells = " | ".join(f"{r[e]:.0f}" if e in r else "–" for e in engines)
        lines.append(f"| {shape.replace('x', ' × ')} | {cells} | {ratio(ours, blas)} | {ratio(ours, candle)} |")
    lines += [
        "",
        f"GFLOP/s (2·m·k·n / median time; best of {len(files)} rounds): criterion for candle and themap, "
        "numpy's OpenBLAS sgemm right after each shape.",
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    if sys.argv[1] == "collect":
        collect(sys.argv[2])
    else:
        table(sys.argv[2:])
