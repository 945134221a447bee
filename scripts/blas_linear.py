"""OpenBLAS's f32 rate on the encoder's linear shapes: the peer of `cargo bench --bench embed -- linear`.

    python scripts/blas_linear.py [--threads 2] [--seconds 2]

numpy's matmul of x (m × k) by Wᵀ (W is n × k, as a linear layer stores it), which numpy hands to
OpenBLAS's sgemm. Prints one line per shape, the median of repeated runs within --seconds, as
GFLOP/s (2·m·k·n / time), then the kernel OpenBLAS chose for this CPU (threadpoolctl).
"""

import argparse
import json
import os
import statistics
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--json", action="store_true", help="one JSON object per shape")
    parser.add_argument("--shape", help="only this shape, e.g. 4096x768x1152")
    args = parser.parse_args()
    # Before numpy loads OpenBLAS: the thread count is read at load.
    os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)
    import numpy as np
    from threadpoolctl import threadpool_info

    # Tokens × input features × output features of EmbeddingGemma-300m's linear layers, one
    # 4096-token batch (the same shapes as benches/embed.rs).
    shapes = [(4096, 768, 1152), (4096, 768, 768), (4096, 768, 256), (4096, 1152, 768), (4096, 768, 4608)]
    if args.shape:
        shapes = [s for s in shapes if "x".join(map(str, s)) == args.shape]
    rng = np.random.default_rng(0)
    for m, k, n in shapes:
        x = rng.uniform(-4, 4, (m, k)).astype(np.float32)
        w = rng.uniform(-4, 4, (n, k)).astype(np.float32)
        out = np.empty((m, n), np.float32)
        np.matmul(x, w.T, out=out)
        times, start = [], time.perf_counter()
        while time.perf_counter() - start < args.seconds or len(times) < 5:
            t = time.perf_counter()
            np.matmul(x, w.T, out=out)
            times.append(time.perf_counter() - t)
        # The median, as criterion reports for the Rust kernels.
        gflops = 2 * m * k * n / statistics.median(times) / 1e9
        if args.json:
            print(json.dumps({"engine": "OpenBLAS f32", "shape": f"{m}x{k}x{n}", "gflops": round(gflops, 1)}))
        else:
            print(f"openblas f32 {m}x{k}x{n}: {gflops:.0f} GFLOP/s")
    blas = [p for p in threadpool_info() if p.get("internal_api") == "openblas"]
    for p in blas:
        print(f"openblas {p.get('version')}, kernel {p.get('architecture')}, {p.get('num_threads')} threads", file=sys.stderr)


if __name__ == "__main__":
    main()
