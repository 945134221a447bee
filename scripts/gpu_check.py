"""The GPU check's measurements, run by scripts/gpu-check.sh from an unpacked bundle.

One run, bounded in time, on the GPU machine (or with --device cpu here, as its rehearsal):

1. EmbeddingGemma's shapes with seeded random values, made with PyTorch from the bundled
   config.json (speed does not depend on the values; both engines load the same files);
2. 256-token passages cut from data/ (both engines truncate at 256 tokens: max_seq_length);
3. the card's bf16 matrix-multiply rate (PyTorch, 8192^3), the roofline for the fraction below;
4. themap --dtype bf16 at batch sizes from 16 up, doubling until a run fails (the card is full)
   or the time budget is spent: passages/s, tokens/s, the gain per doubling, GPU memory;
5. themap --device cpu --dtype f32 on the first passages: the agreement reference;
6. sentence-transformers bf16 on the same device, same weights and passages, at several batch
   sizes (and in f32 on the first passages, a second agreement reference);
7. the People's Daily length mix (when bundled) through both engines at their defaults;
8. one Markdown table (table.md) and every figure (figures.json) under --out.

    python3 scripts/gpu_check.py --themap BIN --config DIR --work DIR --out DIR [--device cuda|cpu] [--quick]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402

transformers.utils.logging.disable_progress_bar()

TOKENS = 256
SEED = 20261130


def log(message: str) -> None:
    print(f"[gpu-check {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Inputs: random weights and passages


def make_model(config_dir: str, model_dir: str) -> None:
    """The bundled model folder (configs and tokenizer) with seeded random weights of its shapes."""
    from safetensors.torch import save_file
    from transformers import AutoConfig, AutoModel

    if os.path.exists(model_dir):
        shutil.rmtree(model_dir)
    shutil.copytree(config_dir, model_dir)
    # Both engines truncate at max_seq_length, so every passage is exactly TOKENS long.
    with open(os.path.join(model_dir, "sentence_bert_config.json"), "w") as f:
        json.dump({"max_seq_length": TOKENS, "do_lower_case": False}, f)
    torch.manual_seed(SEED)
    config = AutoConfig.from_pretrained(model_dir)
    encoder = AutoModel.from_config(config, dtype=torch.float32)
    save_file({k: v.contiguous() for k, v in encoder.state_dict().items()}, os.path.join(model_dir, "model.safetensors"))
    for folder in sorted(os.listdir(model_dir)):
        dense = os.path.join(model_dir, folder, "config.json")
        if folder.endswith("_Dense") and os.path.isfile(dense):
            shape = json.load(open(dense))
            linear = torch.nn.Linear(shape["in_features"], shape["out_features"], bias=shape["bias"])
            save_file(
                {f"linear.{k}": v.contiguous() for k, v in linear.state_dict().items()},
                os.path.join(model_dir, folder, "model.safetensors"),
            )


def make_passages(data_dir: str, path: str, count: int) -> None:
    """`count` texts well over TOKENS tokens each, from windows of the sample corpus's text."""
    text = "".join(
        open(os.path.join(data_dir, name), encoding="utf-8").read().replace("\n", " ")
        for name in sorted(os.listdir(data_dir))
        if name.endswith(".txt")
    )
    width, stride = 2400, 7919
    with open(path, "w", encoding="utf-8") as f:
        for i in range(count):
            start = (i * stride) % (len(text) - width)
            f.write(json.dumps({"id": f"p{i}", "text": text[start : start + width]}, ensure_ascii=False) + "\n")


def head(path: str, out: str, count: int) -> str:
    with open(path, encoding="utf-8") as src, open(out, "w", encoding="utf-8") as dst:
        for _, line in zip(range(count), src):
            dst.write(line)
    return out


# ---------------------------------------------------------------------------------------------
# Measurements


class MemoryPeak:
    """Peak GPU memory in use (nvidia-smi, every 0.2 s) above what was in use when started."""

    def __init__(self, enabled: bool):
        self.enabled = enabled and shutil.which("nvidia-smi") is not None
        self.peak = 0
        self._stop = threading.Event()

    @staticmethod
    def used_mib() -> int:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits", "-i", "0"],
            capture_output=True,
            text=True,
        )
        return int(out.stdout.split()[0]) if out.returncode == 0 and out.stdout.strip() else 0

    def __enter__(self):
        if self.enabled:
            self.base = self.used_mib()
            self.thread = threading.Thread(target=self._poll, daemon=True)
            self.thread.start()
        return self

    def _poll(self):
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, self.used_mib() - self.base)

    def __exit__(self, *exc):
        if self.enabled:
            self._stop.set()
            self.thread.join()

    def gib(self):
        return round(self.peak / 1024, 1) if self.enabled else None


def matmul_rate(device: str, quick: bool) -> dict:
    """The device's bf16 matrix-multiply rate: the median of timed n^3 products after warm-up."""
    n = 1024 if quick or device == "cpu" else 8192
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    times = []
    for i in range(3 + 10):
        if device.startswith("cuda"):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            a @ b
            end.record()
            torch.cuda.synchronize()
            seconds = start.elapsed_time(end) / 1e3
        else:
            started = time.perf_counter()
            a @ b
            seconds = time.perf_counter() - started
        if i >= 3:
            times.append(seconds)
    return {"n": n, "tflops": 2 * n**3 / float(np.median(times)) / 1e12}


def themap_embed(args, model: str, passages: str, out: str, device: str, dtype: str, extra=()) -> dict:
    """One `themap embed` run: its --json figures, GPU memory peak and exit status."""
    command = [args.themap, "-q", "embed", passages, "-o", out, "--model", model, "--device", device]
    command += ["--dtype", dtype, "--overwrite", "--restart", "--json", *extra]
    with MemoryPeak(device.startswith("cuda")) as memory:
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        wall = time.perf_counter() - started
    if done.returncode != 0:
        return {"failed": True, "error": done.stderr.strip().splitlines()[-1:] or ["(no message)"], "wall": wall}
    figures = json.loads(done.stdout)
    figures.update(memory_gib=memory.gib(), wall=wall, vectors=out)
    return figures


def sentence_transformers_runs(model_dir: str, passages: str, device: str, dtype: str, batch_sizes, out_prefix: str):
    """sentence-transformers on the same passages at each batch size (one model load)."""
    from sentence_transformers import SentenceTransformer

    texts = [json.loads(line)["text"] for line in open(passages, encoding="utf-8")]
    model = SentenceTransformer(model_dir, device=device, model_kwargs={"dtype": getattr(torch, dtype)})
    model.encode(texts[:8], prompt_name="document", batch_size=8)  # warm-up
    runs = []
    for batch in batch_sizes:
        if device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        try:
            vectors = model.encode(
                texts, prompt_name="document", batch_size=batch, normalize_embeddings=True, convert_to_numpy=True
            )
        except torch.OutOfMemoryError:
            runs.append({"batch": batch, "failed": True, "error": ["out of memory"]})
            break
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
        path = f"{out_prefix}-{batch}.npy"
        np.save(path, vectors.astype(np.float32))
        runs.append(
            {
                "batch": batch,
                "passages": len(texts),
                "seconds": seconds,
                "passages_per_second": len(texts) / seconds,
                "memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 1) if device.startswith("cuda") else None,
                "vectors": path,
            }
        )
    del model
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return runs


def cosines(a_path: str, b_path: str, rows: int) -> dict:
    a = np.load(a_path)[:rows].astype(np.float64)
    b = np.load(b_path)[:rows].astype(np.float64)
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    return {"rows": len(cos), "min": float(cos.min()), "mean": float(cos.mean())}


def flop_per_token(config: dict, tokens: int) -> float:
    """The encoder's floating-point operations per token: linear layers and attention."""
    hidden, inner, heads, kv, head = (
        config[k] for k in ("hidden_size", "intermediate_size", "num_attention_heads", "num_key_value_heads", "head_dim")
    )
    linear = hidden * (2 * heads * head + 2 * kv * head + 3 * inner)
    attention = 2 * heads * head * tokens  # q·k and weights·v, each a multiply-add per key
    return 2.0 * config["num_hidden_layers"] * (linear + attention)


# ---------------------------------------------------------------------------------------------
# The run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--themap", required=True, help="the themap binary (a `cuda` build)")
    parser.add_argument("--config", required=True, help="the model folder without weights (bundled)")
    parser.add_argument("--data", default="data", help="the sample corpus, source of the passages")
    parser.add_argument("--peoples-daily", help="People's Daily passages (JSONL), if bundled")
    parser.add_argument("--work", required=True, help="scratch folder (weights, vectors)")
    parser.add_argument("--out", required=True, help="where table.md and figures.json go")
    parser.add_argument("--device", default="cuda", help="cuda (the check) or cpu (its rehearsal)")
    parser.add_argument("--quick", action="store_true", help="small sizes: a rehearsal of every step")
    parser.add_argument("--budget", type=float, default=240, help="seconds for the batch-size sweep")
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    os.makedirs(args.out, exist_ok=True)
    gpu = args.device.startswith("cuda")
    if gpu and not torch.cuda.is_available():
        sys.exit("gpu-check: PyTorch sees no CUDA device here; run with --device cpu for the rehearsal")
    figures = {"device": args.device, "quick": args.quick}
    if gpu:
        figures["card"] = torch.cuda.get_device_name(0)
        figures["torch"] = torch.__version__
    version = subprocess.run([args.themap, "--version"], capture_output=True, text=True)
    figures["themap"] = version.stdout.strip()

    pool = 256 if args.quick else 32768
    agree_rows = 16 if args.quick else 256
    sizes = [16, 32] if args.quick else [16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384]
    st_batches = [16] if args.quick else [32, 128, 512, 2048]

    log("random weights of EmbeddingGemma's shapes (PyTorch, seeded)")
    model = os.path.join(args.work, "model")
    make_model(args.config, model)
    config = json.load(open(os.path.join(model, "config.json")))
    passages = os.path.join(args.work, "passages.jsonl")
    make_passages(args.data, passages, pool)
    figures["flop_per_token"] = flop_per_token(config, TOKENS)

    log("bf16 matrix-multiply rate (PyTorch)")
    figures["matmul"] = matmul_rate(args.device, args.quick)
    log(f"  {figures['matmul']['tflops']:.1f} TFLOP/s at n={figures['matmul']['n']}")

    sweep, started = [], time.perf_counter()
    for batch in sizes:
        count = min(pool, max(4096 if not args.quick else 64, 8 * batch))
        subset = head(passages, os.path.join(args.work, f"passages-{count}.jsonl"), count)
        log(f"themap --dtype bf16 --batch-size {batch}: {count} passages")
        run = themap_embed(
            args,
            model,
            subset,
            os.path.join(args.work, f"themap-{batch}.npy"),
            args.device,
            "bf16",
            ["--batch-size", str(batch), "--batch-tokens", str(batch * TOKENS), "--window", str(max(1024, 2 * batch))],
        )
        run["batch"] = batch
        sweep.append(run)
        if run.get("failed"):
            log(f"  stopped: {run['error'][0]}")
            break
        log(f"  {run['passages_per_second']:.0f} passages/s, {run['tokens_per_second']:.0f} tokens/s, {run['memory_gib']} GiB")
        if time.perf_counter() - started > args.budget:
            log("  the sweep's time budget is spent")
            break
    figures["themap_sweep"] = sweep
    done = [run for run in sweep if not run.get("failed")]
    if not done:
        sys.exit(f"gpu-check: themap failed at every batch size: {sweep[0]['error'][0]}")
    best = max(done, key=lambda run: run["passages_per_second"])

    log(f"themap --device cpu --dtype f32 on the first {agree_rows} passages (agreement reference)")
    first = head(passages, os.path.join(args.work, f"passages-{agree_rows}.jsonl"), agree_rows)
    cpu_f32 = themap_embed(args, model, first, os.path.join(args.work, "themap-cpu-f32.npy"), "cpu", "f32")
    figures["themap_cpu_f32"] = cpu_f32

    log(f"sentence-transformers bf16 on {args.device}, batch sizes {st_batches}")
    st_passages = head(passages, os.path.join(args.work, "passages-st.jsonl"), min(pool, 16384))
    figures["st_bf16"] = sentence_transformers_runs(
        model, st_passages, args.device, "bfloat16", st_batches, os.path.join(args.work, "st-bf16")
    )
    log(f"sentence-transformers f32 on {args.device}, first {agree_rows} passages (agreement reference)")
    figures["st_f32"] = sentence_transformers_runs(
        model, first, args.device, "float32", [32], os.path.join(args.work, "st-f32")
    )
    st_done = [run for run in figures["st_bf16"] if not run.get("failed")]
    st_best = max(st_done, key=lambda run: run["passages_per_second"])

    references = {
        "themap CPU f32": cpu_f32.get("vectors"),
        "sentence-transformers f32": figures["st_f32"][0].get("vectors"),
        "sentence-transformers bf16": st_best["vectors"],
    }
    figures["agreement"] = {
        name: cosines(best["vectors"], path, agree_rows) for name, path in references.items() if path
    }

    if args.peoples_daily and os.path.isfile(args.peoples_daily):
        mix = args.peoples_daily
        if args.quick:
            mix = head(mix, os.path.join(args.work, "pd-quick.jsonl"), 64)
        log("People's Daily length mix: themap at its defaults, sentence-transformers bf16")
        figures["pd_themap"] = themap_embed(args, model, mix, os.path.join(args.work, "pd-themap.npy"), args.device, "bf16")
        figures["pd_st"] = sentence_transformers_runs(
            model, mix, args.device, "bfloat16", [32, 256] if not args.quick else [16], os.path.join(args.work, "pd-st")
        )

    table = render(figures, best, st_best, config)
    open(os.path.join(args.out, "table.md"), "w").write(table + "\n")
    json.dump(figures, open(os.path.join(args.out, "figures.json"), "w"), indent=1)
    print(table)


def render(figures: dict, best: dict, st_best: dict, config: dict) -> str:
    device = figures.get("card", figures["device"])
    peak = figures["matmul"]["tflops"]
    flop = figures["flop_per_token"]
    lines = [
        f"## themap GPU check: {device}",
        "",
        f"{figures['themap']}; EmbeddingGemma shapes ({config['num_hidden_layers']} layers, hidden "
        f"{config['hidden_size']}), seeded random weights; passages of {TOKENS} tokens; "
        f"{flop / 1e6:.0f} MFLOP per token (linear layers and attention). "
        f"Measured bf16 matrix-multiply rate (PyTorch, {figures['matmul']['n']}^3): {peak:.1f} TFLOP/s.",
        "",
        "| engine | batch | passages | passages/s | tokens/s | gain per doubling | TFLOP/s | of matmul rate | memory, GiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    previous = None
    for run in figures["themap_sweep"]:
        if run.get("failed"):
            lines.append(f"| themap bf16 | {run['batch']} | | failed: {run['error'][0]} | | | | | |")
            continue
        rate = run["passages_per_second"]
        tflops = run["tokens_per_second"] * flop / 1e12
        gain = f"{rate / previous:.2f}x" if previous else ""
        previous = rate
        lines.append(
            f"| themap bf16 | {run['batch']} | {run['passages']} | {rate:.0f} | {run['tokens_per_second']:.0f} | {gain} "
            f"| {tflops:.1f} | {tflops / peak:.1%} | {run['memory_gib'] if run['memory_gib'] is not None else '-'} |"
        )
    for run in figures["st_bf16"]:
        if run.get("failed"):
            lines.append(f"| sentence-transformers bf16 | {run['batch']} | | failed: {run['error'][0]} | | | | | |")
            continue
        tokens = run["passages_per_second"] * TOKENS
        tflops = tokens * flop / 1e12
        lines.append(
            f"| sentence-transformers bf16 | {run['batch']} | {run['passages']} | {run['passages_per_second']:.0f} "
            f"| {tokens:.0f} | | {tflops:.1f} | {tflops / peak:.1%} | {run['memory_gib'] if run['memory_gib'] is not None else '-'} |"
        )
    ratio = best["passages_per_second"] / st_best["passages_per_second"]
    lines += [
        "",
        f"Best: themap {best['passages_per_second']:.0f} passages/s (batch {best['batch']}), sentence-transformers "
        f"{st_best['passages_per_second']:.0f} (batch {st_best['batch']}): **{ratio:.2f}x**.",
        "",
        "| themap bf16 (batch %d) against | passages | cosine min | cosine mean |" % best["batch"],
        "|---|---|---|---|",
    ]
    for name, agree in figures["agreement"].items():
        lines.append(f"| {name} | {agree['rows']} | {agree['min']:.6f} | {agree['mean']:.6f} |")
    if "pd_themap" in figures:
        pd, st = figures["pd_themap"], figures["pd_st"]
        lines += ["", "People's Daily length mix (January 1998 paragraphs), each engine at its defaults:", ""]
        if pd.get("failed"):
            lines.append(f"- themap: failed: {pd['error'][0]}")
        else:
            lines.append(
                f"- themap bf16: {pd['passages']} passages, {pd['tokens'] / pd['passages']:.0f} tokens mean, "
                f"{pd['passages_per_second']:.0f} passages/s, batch fill {pd['tokens'] / pd['padded_tokens']:.1%}"
            )
        for run in st:
            if not run.get("failed"):
                lines.append(
                    f"- sentence-transformers bf16, batch {run['batch']}: {run['passages_per_second']:.0f} passages/s"
                    + (
                        f" (themap {pd['passages_per_second'] / run['passages_per_second']:.2f}x; "
                        f"cosine min {cosines(pd['vectors'], run['vectors'], pd['passages'])['min']:.6f})"
                        if not pd.get("failed")
                        else ""
                    )
                )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
