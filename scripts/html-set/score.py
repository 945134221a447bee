"""Scores article extraction on the labelled pages: themap (`themap passages PAGE --json`, the
text its passages hold) beside trafilatura (`trafilatura.extract`, default settings), in one run.

    python scripts/html-set/score.py SET_DIR THEMAP_BINARY

SET_DIR holds NAME.html and NAME.gold pairs (the article as a reader sees it), grouped by the
prefix before the first '-'. The score is precision, recall and F1 of character 5-grams (as
multisets, whitespace and Markdown marks removed from every text alike), per page, averaged
per group and over all pages. furniture.lst, where present, lists lines (menus, footers,
scripts, comments) that no passage may hold; they are counted in each extractor's output.
"""
import collections
import glob
import json
import os
import re
import subprocess
import sys
import time

import trafilatura

STRIP = re.compile(r"[\s#*|`_\-]+")


def grams(text, n=5):
    text = STRIP.sub("", text)
    return collections.Counter(text[i : i + n] for i in range(max(0, len(text) - n + 1)))


def score(found, gold):
    f, g = grams(found), grams(gold)
    common = sum((f & g).values())
    p = common / max(1, sum(f.values()))
    r = common / max(1, sum(g.values()))
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def themap_text(binary, page):
    out = subprocess.run([binary, "passages", page, "--json", "-q"], capture_output=True, text=True)
    if out.returncode != 0:
        return "", out.stderr.strip()
    return "\n".join(json.loads(line)["text"] for line in out.stdout.splitlines() if line.strip()), ""


def main(set_dir, binary):
    furniture = []
    if os.path.exists(os.path.join(set_dir, "furniture.lst")):
        furniture = [l.strip() for l in open(os.path.join(set_dir, "furniture.lst"), encoding="utf-8") if l.strip()]
    pages = sorted(glob.glob(os.path.join(set_dir, "*.html")))
    rows, seconds = [], collections.Counter()
    for page in pages:
        gold = open(page[: -len(".html")] + ".gold", encoding="utf-8").read()
        started = time.perf_counter()
        mine, error = themap_text(binary, page)
        seconds["themap"] += time.perf_counter() - started
        started = time.perf_counter()
        theirs = trafilatura.extract(open(page, "rb").read()) or ""
        seconds["trafilatura"] += time.perf_counter() - started
        name = os.path.basename(page)[: -len(".html")]
        group = name.split("-")[0]
        chinese = group in ("news", "blog", "forum")
        leaks = lambda text: sum(1 for line in furniture if line in text) if chinese else 0
        rows.append((group, name, score(mine, gold), score(theirs, gold), leaks(mine), leaks(theirs), error))
    print(f"\n{len(pages)} pages; precision / recall / F1 of character 5-grams against the labelled article text\n")
    print("| pages | n | themap P | R | F1 | trafilatura P | R | F1 |")
    print("|---|---|---|---|---|---|---|---|")
    groups = sorted({r[0] for r in rows}) + ["all"]
    for group in groups:
        chosen = [r for r in rows if group in ("all", r[0])]
        mean = lambda i, j: sum(r[i][j] for r in chosen) / len(chosen)
        label = "**all**" if group == "all" else group
        print(
            f"| {label} | {len(chosen)} | {mean(2, 0):.3f} | {mean(2, 1):.3f} | **{mean(2, 2):.3f}** | "
            f"{mean(3, 0):.3f} | {mean(3, 1):.3f} | **{mean(3, 2):.3f}** |"
        )
    chinese = [r for r in rows if r[0] in ("news", "blog", "forum")]
    if chinese:
        print(
            f"\nFurniture lines (menus, footers, comments, scripts) found in the output of the {len(chinese)} Chinese site pages: "
            f"themap {sum(r[4] for r in chinese)}, trafilatura {sum(r[5] for r in chinese)} (of {len(furniture)} checked per page)"
        )
    print(f"\nSeconds for all pages: themap {seconds['themap']:.2f} (a process per page), trafilatura {seconds['trafilatura']:.2f}")
    print("\nPer page (themap F1 / trafilatura F1):")
    for group, name, mine, theirs, _, _, error in rows:
        print(f"  {name}: {mine[2]:.3f} / {theirs[2]:.3f}" + (f"  themap: {error}" if error else ""))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
