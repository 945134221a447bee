"""A second peer for scripts/bench-embed.sh: sentence-transformers' ONNX backend on the CPU, by default
with dynamic int8 quantization (`export_dynamic_quantized_onnx_model`, config avx512_vnni).

Same interface and output as scripts/embed_reference.py: embeds the passages of a JSONL file
({"id", "text"} per line) with the same model directory and "document" prompt, writes the
L2-normalised vectors as float32 .npy and prints one JSON line of figures. Only the encode call is
timed (after a short warm-up).

The ONNX export (fp32) and its quantized copy are made on first use and cached under
$THEMAP_CACHE/onnx/<model directory name>/ (default ~/.cache/themap/onnx/), a complete
sentence-transformers directory with onnx/model.onnx and onnx/model_qint8_<config>.onnx.
Needs the venv-onnx environment (optimum-onnx, onnxruntime, transformers 4.57), not venv-ref.
"""

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402
from sentence_transformers.backend import export_dynamic_quantized_onnx_model  # noqa: E402

PROVIDER = "CPUExecutionProvider"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def ensure_export(model_dir: Path, cache: Path, quantize: str, qconfig: str) -> tuple[Path, str]:
    """Returns the cached sentence-transformers directory and the ONNX file (relative) to load."""
    target = cache / model_dir.resolve().name
    fp32 = "onnx/model.onnx"
    if not (target / fp32).is_file():
        log(f"exporting {model_dir} to ONNX (fp32) in {target}")
        tmp = target.with_name(target.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        model = SentenceTransformer(
            str(model_dir), device="cpu", backend="onnx", model_kwargs={"export": True, "provider": PROVIDER}
        )
        model.save_pretrained(str(tmp))
        del model
        shutil.rmtree(target, ignore_errors=True)
        tmp.parent.mkdir(parents=True, exist_ok=True)
        tmp.rename(target)
    if quantize == "none":
        return target, fp32
    name = f"onnx/model_qint8_{qconfig}.onnx"
    if not (target / name).is_file():
        log(f"quantizing to int8 (dynamic, {qconfig}) in {target / name}")
        model = SentenceTransformer(
            str(target), device="cpu", backend="onnx", model_kwargs={"file_name": fp32, "provider": PROVIDER}
        )
        export_dynamic_quantized_onnx_model(model, qconfig, str(target))
        del model
    return target, name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("passages", help="JSONL with id and text")
    parser.add_argument("--model", required=True, help="sentence-transformers model directory")
    parser.add_argument("--out", required=True, help=".npy file for the vectors")
    parser.add_argument("--batch-size", type=int, default=32, help="sentence-transformers' default: 32")
    parser.add_argument("--quantize", default="int8", choices=["int8", "none"], help="int8: dynamic quantization")
    parser.add_argument(
        "--qconfig", default="avx512_vnni", choices=["avx512_vnni", "avx512", "avx2", "arm64"],
        help="optimum's AutoQuantizationConfig preset for --quantize int8",
    )
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads (0: torch's count)")
    parser.add_argument(
        "--cache", default=os.path.join(os.environ.get("THEMAP_CACHE", os.path.expanduser("~/.cache/themap")), "onnx"),
        help="where exported ONNX models are kept",
    )
    args = parser.parse_args()

    with open(args.passages, encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f if line.strip()]

    model_dir = Path(args.model)
    target, file_name = ensure_export(model_dir, Path(args.cache), args.quantize, args.qconfig)

    threads = args.threads or torch.get_num_threads()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    model = SentenceTransformer(
        str(target),
        device="cpu",
        backend="onnx",
        model_kwargs={"file_name": file_name, "provider": PROVIDER, "session_options": options},
    )
    log(f"model: {target / file_name}, max_seq_length {model.max_seq_length}, {threads} threads")
    # The "document" prompt of the original model directory (what embed_reference.py uses), checked
    # against the cached copy, which encode(prompt_name="document") applies.
    with open(model_dir / "config_sentence_transformers.json", encoding="utf-8") as f:
        prompt = json.load(f)["prompts"]["document"]
    if model.prompts.get("document") != prompt:
        raise SystemExit(f"cached model's document prompt {model.prompts.get('document')!r} != {prompt!r}")
    tokens = sum(
        len(ids) for ids in model.tokenizer([prompt + t for t in texts], truncation=True)["input_ids"]
    )

    model.encode(texts[:4], prompt_name="document", batch_size=args.batch_size)
    started = time.perf_counter()
    vectors = model.encode(
        texts, prompt_name="document", batch_size=args.batch_size, normalize_embeddings=True, convert_to_numpy=True
    )
    seconds = time.perf_counter() - started
    np.save(args.out, vectors.astype(np.float32))
    kind = "int8" if args.quantize == "int8" else "fp32"
    config = f", {args.qconfig}" if args.quantize == "int8" else ""
    print(
        json.dumps(
            {
                "engine": f"sentence-transformers ONNX {kind} (onnxruntime {ort.__version__}{config}, batch {args.batch_size})",
                "passages": len(texts),
                "tokens": tokens,
                "seconds": seconds,
                "threads": threads,
            }
        )
    )


if __name__ == "__main__":
    main()
