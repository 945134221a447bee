"""The reference implementation's side of scripts/bench-embed.sh: sentence-transformers on PyTorch.

Embeds the passages of a JSONL file ({"id", "text"} per line) with the same model directory and
prompt as `themap embed`, writes the vectors as .npy and prints one JSON line of figures.
Only the encode call is timed (after a short warm-up), as themap's --stats times only embedding.
"""

import argparse
import json
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("passages", help="JSONL with id and text")
    parser.add_argument("--model", required=True, help="sentence-transformers model directory")
    parser.add_argument("--out", required=True, help=".npy file for the vectors")
    parser.add_argument("--batch-size", type=int, default=32, help="sentence-transformers' default: 32")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    with open(args.passages, encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f if line.strip()]
    model = SentenceTransformer(
        args.model, device=args.device, model_kwargs={"torch_dtype": getattr(torch, args.dtype)}
    )
    prompt = model.prompts["document"]
    tokens = sum(
        len(ids) for ids in model.tokenizer([prompt + t for t in texts], truncation=True)["input_ids"]
    )

    model.encode(texts[:4], prompt_name="document", batch_size=args.batch_size)
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    started = time.perf_counter()
    vectors = model.encode(
        texts, prompt_name="document", batch_size=args.batch_size, normalize_embeddings=True, convert_to_numpy=True
    )
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    np.save(args.out, vectors.astype(np.float32))
    print(
        json.dumps(
            {
                "engine": f"sentence-transformers (torch {torch.__version__}, {args.dtype}, batch {args.batch_size})",
                "passages": len(texts),
                "tokens": tokens,
                "seconds": seconds,
                "threads": torch.get_num_threads(),
            }
        )
    )


if __name__ == "__main__":
    main()
