"""The table of scripts/bench-embed.sh, from the files its engines left in OUT.

    python scripts/embed_table.py OUT CORPUS MODEL_DIR ENGINE...

Each ENGINE left OUT/ENGINE.json (its figures; themap's --json output, or the peers' one JSON
line), OUT/ENGINE.r2.json ... for later rounds (the fastest round counts), and OUT/ENGINE.npy
(its vectors, rows in passage order); "reference" must be among them.
Prints the table and writes it to OUT/table.md, with the line the CPU environment variable holds
(scripts/cpu-line.sh) at its top.
"""

import glob
import json
import os
import sys

import numpy as np


def figures(path: str) -> dict:
    text = open(path, encoding="utf-8").read().strip()
    try:
        return json.loads(text)
    except json.JSONDecodeError:  # a log line or two before the figures
        return json.loads(text.splitlines()[-1])


def label_of(name: str, run: dict) -> str:
    """An engine as the table names it."""
    if not name.startswith("themap-"):
        return run["engine"]
    what = ", ".join(str(run[key]) for key in ("device", "dtype", "kernel") if key in run)
    return f"themap default ({what})" if name == "themap-default" else f"themap ({what})"


def main() -> None:
    out, corpus, model, engines = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    config = json.load(open(f"{model}/config.json"))
    hidden, inner, heads, kv, head = (
        config[k] for k in ("hidden_size", "intermediate_size", "num_attention_heads", "num_key_value_heads", "head_dim")
    )
    # Multiply-adds per token in the encoder's linear layers: q, k, v, o, gate, up, down.
    macs = config["num_hidden_layers"] * hidden * (2 * heads * head + 2 * kv * head + 3 * inner)
    # Each engine's fastest round (ENGINE.json, ENGINE.r2.json, ...).
    runs = {
        name: min(
            (figures(path) for path in [f"{out}/{name}.json", *sorted(glob.glob(f"{out}/{name}.r*.json"))]),
            key=lambda run: run["seconds"],
        )
        for name in engines
    }
    rounds = 1 + len(glob.glob(f"{out}/reference.r*.json"))
    reference = runs["reference"]
    ref_vectors = np.load(f"{out}/reference.npy").astype(np.float32)
    tokens = reference["tokens"]
    base = reference["passages"] / reference["seconds"]
    cpu = os.environ.get("CPU", "")
    lines = [f"CPU: {cpu}", ""] if cpu else []
    lines += [
        f"{corpus}: {reference['passages']} passages, {tokens} tokens "
        f"(mean {tokens / reference['passages']:.0f}, prompt included)",
        "",
        "| engine | seconds | passages/s | tokens/s | ratio | linear layers, GFLOP/s | cosine to reference, min / mean |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in engines:
        run = runs[name]
        label = label_of(name, run)
        vectors = np.load(f"{out}/{name}.npy").astype(np.float32)
        cos = (vectors * ref_vectors).sum(1) / np.linalg.norm(vectors, axis=1) / np.linalg.norm(ref_vectors, axis=1)
        cosine = "(itself)" if name == "reference" else f"{cos.min():.7f} / {cos.mean():.7f}"
        rate = run["passages"] / run["seconds"]
        gflops = 2 * macs * tokens / run["seconds"] / 1e9
        lines.append(
            f"| {label} | {run['seconds']:.1f} | {rate:.2f} | {tokens / run['seconds']:.0f} | {rate / base:.2f}x "
            f"| {gflops:.0f} | {cosine} |"
        )
    lines += [
        "",
        f"GFLOP/s: the linear layers' {2 * macs / 1e6:.0f} MFLOP per token × tokens (padding not counted) / seconds, "
        "the whole run" + (f"; each engine's fastest of {rounds} rounds" if rounds > 1 else ""),
    ]
    themap = {name: runs[name] for name in engines if name.startswith("themap-")}
    default = themap.get("themap-default")
    if default:
        lines[-1] += f"; themap's batch fill {default['tokens'] / max(default['padded_tokens'], 1):.1%}"
        speed = {name: run["passages"] / run["seconds"] for name, run in themap.items()}
        fastest = max((n for n in speed if n != "themap-default"), key=speed.get, default="themap-default")
        peers = [n for n in ("reference", "reference-bf16") if n in runs]
        best_peer = max(peers, key=lambda n: runs[n]["passages"] / runs[n]["seconds"])
        peer_rate = runs[best_peer]["passages"] / runs[best_peer]["seconds"]
        lines += [
            "",
            f"The default ({default.get('kernel', default['dtype'])}) runs at {speed['themap-default'] / speed[fastest]:.3f}x "
            f"the fastest of themap's kernels ({label_of(fastest, themap[fastest])}), and at "
            f"{speed['themap-default'] / peer_rate:.2f}x the faster of sentence-transformers' formats "
            f"({label_of(best_peer, runs[best_peer])}).",
        ]
    table = "\n".join(lines)
    open(f"{out}/table.md", "w").write(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
