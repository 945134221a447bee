"""OpenBLAS's f32 rate on the encoder's linear shapes: the peer of `cargo bench --bench embed -- linear`.

    python scripts/blas_linear.py [--threads 2] [--seconds 2]

numpy's matmul of x (m × k) by Wᵀ (W is n × k, as a linear layer stores it), which numpy hands to
OpenBLAS's sgemm. Prints one line per shape, the best of repeated runs within --seconds, as
GFLOP/s (2·m·k·n / time), then the kernel OpenBLAS chose for this CPU (threadpoolctl).
"""

import argparse
import json
import os
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--json", action="store_true", help="one JSON object per shape")
    args = parser.parse_args()
    # Before numpy loads OpenBLAS: the thread count is read at load.
    os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)
    import numpy as np
    from threadpoolctl import threadpool_info

    # Tokens × input features × output features of EmbeddingGemma-300m's linear layers, one
    # 4096-token batch (the same shapes as benches/embed.rs).
    shapes = [(4096, 768, 1152), (4096, 768, 768), (4096, 768, 4608), (4096, 1152, 768)]
    rng = np.random.default_rng(0)
    for m, k, n in shapes:
        x = rng.uniform(-4, 4, (m, k)).astype(np.float32)
        w = rng.uniform(-4, 4, (n, k)).astype(np.float32)
        out = np.empty((m, n), np.float32)
        np.matmul(x, w.T, out=out)
        best, start = float("inf"), time.perf_counter()
        while time.perf_counter() - start < args.seconds:
            t = time.perf_counter()
            np.matmul(x, w.T, out=out)
            best = min(best, time.perf_counter() - t)
        gflops = 2 * m * k * n / best / 1e9
        if args.json:
            print(json.dumps({"shape": f"{m}x{k}x{n}", "gflops": round(gflops, 1)}))
        else:
            print(f"openblas f32 {m}x{k}x{n}: {gflops:.0f} GFLOP/s")
    blas = [p for p in threadpool_info() if p.get("internal_api") == "openblas"]
    for p in blas:
        print(f"openblas {p.get('version')}, kernel {p.get('architecture')}, {p.get('num_threads')} threads", file=sys.stderr)


if __name__ == "__main__":
    main()
