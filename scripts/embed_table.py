"""The table of scripts/bench-embed.sh, from the files its engines left in OUT.

    python scripts/embed_table.py OUT CORPUS MODEL_DIR ENGINE...

Each ENGINE left OUT/ENGINE.json (its figures; themap's --json output, or the peers' one JSON
line) and OUT/ENGINE.npy (its vectors, rows in passage order); "reference" must be among them.
Prints the table and writes it to OUT/table.md.
"""

import json
import sys

import numpy as np


def figures(path: str) -> dict:
    text = open(path, encoding="utf-8").read().strip()
    try:
        return json.loads(text)
    except json.JSONDecodeError:  # a log line or two before the figures
        return json.loads(text.splitlines()[-1])


def main() -> None:
    out, corpus, model, engines = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    config = json.load(open(f"{model}/config.json"))
    hidden, inner, heads, kv, head = (
        config[k] for k in ("hidden_size", "intermediate_size", "num_attention_heads", "num_key_value_heads", "head_dim")
    )
    # Multiply-adds per token in the encoder's linear layers: q, k, v, o, gate, up, down.
    macs = config["num_hidden_layers"] * hidden * (2 * heads * head + 2 * kv * head + 3 * inner)
    runs = {name: figures(f"{out}/{name}.json") for name in engines}
    reference = runs["reference"]
    ref_vectors = np.load(f"{out}/reference.npy").astype(np.float32)
    tokens = reference["tokens"]
    base = reference["passages"] / reference["seconds"]
    lines = [
        f"{corpus}: {reference['passages']} passages, {tokens} tokens "
        f"(mean {tokens / reference['passages']:.0f}, prompt included)",
        "",
        "| engine | seconds | passages/s | tokens/s | ratio | linear layers, GFLOP/s | cosine to reference, min / mean |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in engines:
        run = runs[name]
        label = f"themap ({run['device']}, {run['dtype']})" if name.startswith("themap") else run["engine"]
        vectors = np.load(f"{out}/{name}.npy").astype(np.float32)
        cos = (vectors * ref_vectors).sum(1) / np.linalg.norm(vectors, axis=1) / np.linalg.norm(ref_vectors, axis=1)
        cosine = "(itself)" if name == "reference" else f"{cos.min():.7f} / {cos.mean():.7f}"
        rate = run["passages"] / run["seconds"]
        gflops = 2 * macs * tokens / run["seconds"] / 1e9
        lines.append(
            f"| {label} | {run['seconds']:.1f} | {rate:.2f} | {tokens / run['seconds']:.0f} | {rate / base:.2f}x "
            f"| {gflops:.0f} | {cosine} |"
        )
    themap = next((runs[name] for name in engines if name.startswith("themap")), None)
    lines += [
        "",
        f"GFLOP/s: the linear layers' {2 * macs / 1e6:.0f} MFLOP per token × tokens (padding not counted) / seconds, "
        "the whole run",
    ]
    if themap:
        lines[-1] += f"; themap's batch fill {themap['tokens'] / max(themap['padded_tokens'], 1):.1%}"
    table = "\n".join(lines)
    open(f"{out}/table.md", "w").write(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
