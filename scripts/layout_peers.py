"""Scores 2-D maps of the same vectors: trustworthiness (k = 10) and how often a point's 10
nearest on the map share its class, for themap's layout (given as .npy with its time) and for
PCA, umap-learn and openTSNE run here on the same vectors.

usage: layout_peers.py VECTORS.npy LABELS.txt THEMAP_XY.npy THEMAP_SECONDS [--sample 2000] [--skip tsne]

Trustworthiness (Venna & Kaski 2001, as scikit-learn computes it) needs each point's rank
among all others in the original space; at 100,000 points that is computed for a seeded sample
of points against all points (every method scored on the same sample)."""
import argparse, json, time

import numpy as np

K = 10


def trustworthiness(x, xy, sample, k=K):
    n = x.shape[0]
    total = 0.0
    for start in range(0, len(sample), 128):
        rows = sample[start:start + 128]
        # Ranks in the original space (cosine on unit vectors): 1 = nearest other point.
        sims = x[rows] @ x.T
        sims[np.arange(len(rows)), rows] = np.inf
        order = np.argsort(-sims, axis=1)
        ranks = np.empty_like(order)
        ranks[np.arange(len(rows))[:, None], order] = np.arange(n)[None, :]
        # The k nearest on the map.
        d = ((xy[rows, None, :] - xy[None, :, :]) ** 2).sum(-1)
        d[np.arange(len(rows)), rows] = np.inf
        near = np.argpartition(d, k, axis=1)[:, :k]
        r = ranks[np.arange(len(rows))[:, None], near]  # 1-based rank: position + 0 (self is 0)
        total += np.maximum(r - k, 0).sum()
    m = len(sample)
    return 1.0 - 2.0 / (m * k * (2.0 * n - 3.0 * k - 1.0)) * total


def class_agreement(xy, labels, sample, k=K):
    same = 0
    for start in range(0, len(sample), 512):
        rows = sample[start:start + 512]
        d = ((xy[rows, None, :] - xy[None, :, :]) ** 2).sum(-1)
        d[np.arange(len(rows)), rows] = np.inf
        near = np.argpartition(d, k, axis=1)[:, :k]
        same += (labels[near] == labels[rows][:, None]).sum()
    return same / (len(sample) * k)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("vectors"); p.add_argument("labels"); p.add_argument("themap_xy"); p.add_argument("themap_seconds", type=float)
    p.add_argument("--sample", type=int, default=2000)
    p.add_argument("--skip", action="append", default=[])
    a = p.parse_args()
    x = np.load(a.vectors).astype(np.float32)
    labels = np.array([l.rstrip("\n") for l in open(a.labels, encoding="utf-8")])
    assert len(labels) == x.shape[0]
    sample = np.random.default_rng(20261130).choice(x.shape[0], size=min(a.sample, x.shape[0]), replace=False)
    maps = {"themap UMAP": (np.load(a.themap_xy), a.themap_seconds)}

    t = time.time()
    from sklearn.decomposition import PCA
    maps["PCA (scikit-learn)"] = (PCA(n_components=2, random_state=42).fit_transform(x), time.time() - t)
    if "umap" not in a.skip:
        import umap
        t = time.time()
        xy = umap.UMAP(n_neighbors=15, min_dist=0.1, metric="cosine", random_state=42).fit_transform(x)
        maps["umap-learn 0.5 (cosine, seeded)"] = (xy, time.time() - t)
    if "tsne" not in a.skip:
        from openTSNE import TSNE
        t = time.time()
        xy = np.asarray(TSNE(n_components=2, metric="cosine", n_jobs=2, random_state=42).fit(x))
        maps["openTSNE (FFT, cosine)"] = (xy, time.time() - t)

    for name, (xy, seconds) in maps.items():
        xy = np.asarray(xy, dtype=np.float64)
        row = {
            "method": name,
            "n": int(x.shape[0]),
            "seconds": round(seconds, 1),
            "trustworthiness@10": round(float(trustworthiness(x, xy, sample)), 4),
            "same_class@10": round(float(class_agreement(xy, labels, sample)), 4),
        }
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
