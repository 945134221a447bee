"""How large the prompt map's sample needs to be, on THUCNews (run scripts/eval-thucnews.sh first).

    python eval_map_sample.py [10k|100k] [--sizes 500,1000,2000,4000,8000] [--reps 3]

For each sample size, fits the same map themap fits (ridge regression, penalty 1, from the
search vectors to the residual towards the clustering vectors) on that many titles drawn at
random, carries every search vector through it, and clusters the result with `themap
eval-clusters` at k = 10. Prints the mean NMI and its spread over the draws, next to the search
vectors and the full clustering pass.
"""
import argparse, json, os, subprocess, tempfile
import numpy as np

parser = argparse.ArgumentParser()
parser.add_argument("size", nargs="?", default="100k")
parser.add_argument("--sizes", default="500,1000,2000,4000,8000")
parser.add_argument("--reps", type=int, default=3)
args = parser.parse_args()
root = os.path.join(os.path.dirname(__file__), "..")
work = os.path.join(os.environ.get("THEMAP_CACHE", os.path.expanduser("~/.cache/themap")), "thucnews")
themap = os.path.join(root, "target", "release", "themap")
search = np.load(f"{work}/vec-{args.size}-document.npy").astype(np.float32)
clustering = np.load(f"{work}/vec-{args.size}-clustering.npy").astype(np.float32)
labels = [l.rstrip("\n") for l in open(f"{work}/thucnews-{args.size}.labels.txt", encoding="utf-8")]
tmp = tempfile.mkdtemp()
with open(f"{tmp}/labels.tsv", "w", encoding="utf-8") as f:
    f.writelines(f"{label}\tx\n" for label in labels)  # eval-clusters reads labels; texts unused with --vectors


def nmi(vectors, seed):
    np.save(f"{tmp}/v.npy", vectors)
    out = subprocess.run([themap, "eval-clusters", f"{tmp}/labels.tsv", "--vectors", f"{tmp}/v.npy", "--k", "10",
                          "--seed", str(seed), "-q", "--json"], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)["nmi"]


def unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


print(f"search vectors: NMI {nmi(search, 42):.4f}; clustering pass: NMI {nmi(clustering, 42):.4f}")
for size in map(int, args.sizes.split(",")):
    scores = []
    for rep in range(args.reps):
        rows = np.random.default_rng(rep + 10).choice(len(search), size, replace=False)
        a = search[rows].astype(np.float64)
        w = np.linalg.solve(a.T @ a + np.eye(a.shape[1]), a.T @ (clustering[rows] - a))
        scores.append(nmi(unit(search + search @ w), 42 + rep))
    print(f"sample {size}: NMI {np.mean(scores):.4f} ± {np.std(scores):.4f}", flush=True)
