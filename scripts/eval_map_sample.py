"""How large the prompt map's sample needs to be, on labelled vectors embedded with both prompts.

    python eval_map_sample.py [10k|100k] [--sizes 500,1000,2000,4000,8000] [--reps 3]
    python eval_map_sample.py --search S.npy --clustering C.npy --labels L.txt --k K [--sizes ...]

THUCNews by default (run scripts/eval-thucnews.sh first); any other set with --search (its
document-prompt vectors), --clustering (the same rows with the clustering prompt) and --labels
(one label per row, or a TSV: --column picks the label's column). For each sample size, fits the
same map themap fits (ridge regression, penalty 1, from the search vectors to the residual
towards the clustering vectors) on that many rows drawn at random, carries every search vector
through it, and clusters the result with `themap eval-clusters` at k. Prints the mean NMI and
its spread over the draws, next to the search vectors and the full clustering pass.
"""
import argparse, json, os, subprocess, tempfile
import numpy as np

parser = argparse.ArgumentParser()
parser.add_argument("size", nargs="?", default="100k")
parser.add_argument("--sizes", default="500,1000,2000,4000,8000")
parser.add_argument("--reps", type=int, default=3)
parser.add_argument("--search")
parser.add_argument("--clustering")
parser.add_argument("--labels")
parser.add_argument("--k", type=int, default=10)
parser.add_argument("--column", type=int, default=0, help="the label's column in a TSV --labels file")
args = parser.parse_args()
root = os.path.join(os.path.dirname(__file__), "..")
work = os.path.join(os.environ.get("THEMAP_CACHE", os.path.expanduser("~/.cache/themap")), "thucnews")
themap = os.path.join(root, "target", "release", "themap")
search = np.load(args.search or f"{work}/vec-{args.size}-document.npy").astype(np.float32)
clustering = np.load(args.clustering or f"{work}/vec-{args.size}-clustering.npy").astype(np.float32)
labels = [l.rstrip("\n").split("\t")[args.column] for l in open(args.labels or f"{work}/thucnews-{args.size}.labels.txt", encoding="utf-8")]
assert len(labels) == len(search) == len(clustering), (len(labels), len(search), len(clustering))
tmp = tempfile.mkdtemp()
with open(f"{tmp}/labels.tsv", "w", encoding="utf-8") as f:
    f.writelines(f"{label}\tx\n" for label in labels)  # eval-clusters reads labels; texts unused with --vectors


def nmi(vectors, seed):
    np.save(f"{tmp}/v.npy", vectors)
    out = subprocess.run([themap, "eval-clusters", f"{tmp}/labels.tsv", "--vectors", f"{tmp}/v.npy", "--k", str(args.k),
                          "--seed", str(seed), "-q", "--json"], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)["nmi"]


def unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


print(f"search vectors: NMI {nmi(search, 42):.4f}; clustering pass: NMI {nmi(clustering, 42):.4f}")
for size in (s for s in map(int, args.sizes.split(",")) if s < len(search)):
    scores = []
    for rep in range(args.reps):
        rows = np.random.default_rng(rep + 10).choice(len(search), size, replace=False)
        a = search[rows].astype(np.float64)
        w = np.linalg.solve(a.T @ a + np.eye(a.shape[1]), a.T @ (clustering[rows] - a))
        scores.append(nmi(unit(search + search @ w), 42 + rep))
    print(f"sample {size}: NMI {np.mean(scores):.4f} ± {np.std(scores):.4f}", flush=True)
