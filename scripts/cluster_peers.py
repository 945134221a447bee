"""Clustering peers on the same vectors themap clusters, scored against known labels.

    python cluster_peers.py VECTORS.npy LABELS.txt --k 10 [--peers sklearn,minibatch,faiss,bertopic]
        [--texts TEXTS.txt] [--seed 0] [--faiss-iterations 20] [--faiss-max-points 256]

Prints one JSON object per line: {"peer", "k", "nmi", "ari", "v_measure", "seconds"}.

- sklearn:   scikit-learn KMeans (k-means++, n_init 10, the defaults otherwise).
- minibatch: scikit-learn MiniBatchKMeans (k-means++, n_init 3, batch 1024 as scikit-learn's default).
- faiss:     faiss.Kmeans (niter and max points per centroid as given: faiss's defaults are 25
             and 256), then every row assigned to its nearest centroid (index.search): the
             time includes the assignment, as themap's does.
- bertopic:  BERTopic's default clustering on the given embeddings: UMAP (15 neighbours, 5
             components, min_dist 0, cosine) then HDBSCAN (min cluster size 10, eom), as
             BERTopic() builds them. Two rows: outliers kept as their own class (-1), and every
             outlier given a topic by BERTopic's reduce_outliers (strategy "embeddings").
             BERTopic chooses its own number of topics; --k does not apply.
"""

import argparse
import json
import sys
import time

import numpy as np
from sklearn import metrics


def scores(truth, predicted):
    h, c, v = metrics.homogeneity_completeness_v_measure(truth, predicted)
    return {
        "nmi": metrics.normalized_mutual_info_score(truth, predicted),
        "ari": metrics.adjusted_rand_score(truth, predicted),
        "v_measure": v,
    }


def emit(peer, k, truth, predicted, seconds, **extra):
    row = {"peer": peer, "k": k, **scores(truth, predicted), "seconds": round(seconds, 2), **extra}
    print(json.dumps(row), flush=True)


def sklearn_kmeans(x, k, seed):
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=k, n_init=10, random_state=seed).fit(x).labels_


def minibatch(x, k, seed):
    from sklearn.cluster import MiniBatchKMeans

    return MiniBatchKMeans(n_clusters=k, n_init=3, random_state=seed).fit(x).labels_


def faiss_kmeans(x, k, seed, iterations, max_points):
    import faiss

    km = faiss.Kmeans(x.shape[1], k, niter=iterations, seed=seed, max_points_per_centroid=max_points, verbose=False)
    km.train(x)
    _, labels = km.index.search(x, 1)
    return labels[:, 0]


def bertopic(x, texts, seed):
    """Both rows: (labels with outliers as -1, labels after reduce_outliers)."""
    from bertopic import BERTopic
    from hdbscan import HDBSCAN
    from umap import UMAP

    # BERTopic's own defaults (bertopic/_bertopic.py), with a seed for repeatability.
    umap_model = UMAP(n_neighbors=15, n_components=5, min_dist=0.0, metric="cosine", low_memory=False, random_state=seed)
    hdbscan_model = HDBSCAN(min_cluster_size=10, metric="euclidean", cluster_selection_method="eom", prediction_data=True)
    model = BERTopic(umap_model=umap_model, hdbscan_model=hdbscan_model, calculate_probabilities=False)
    started = time.time()
    topics, _ = model.fit_transform(texts, embeddings=x)
    fitted = time.time() - started
    started = time.time()
    reduced = model.reduce_outliers(texts, topics, strategy="embeddings", embeddings=x)
    return np.array(topics), fitted, np.array(reduced), fitted + time.time() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("vectors")
    parser.add_argument("labels")
    parser.add_argument("--k", type=int, required=True)
    parser.add_argument("--peers", default="sklearn,minibatch,faiss,bertopic")
    parser.add_argument("--texts", help="one text per line (BERTopic's topic words); default: placeholders")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--faiss-iterations", type=int, default=25)
    parser.add_argument("--faiss-max-points", type=int, default=256)
    args = parser.parse_args()

    x = np.ascontiguousarray(np.load(args.vectors), dtype=np.float32)
    truth = [line.rstrip("\n") for line in open(args.labels, encoding="utf-8")]
    if len(truth) != len(x):
        sys.exit(f"{len(x)} vectors for {len(truth)} labels")
    for peer in args.peers.split(","):
        started = time.time()
        if peer == "sklearn":
            emit("scikit-learn KMeans", args.k, truth, sklearn_kmeans(x, args.k, args.seed), time.time() - started)
        elif peer == "minibatch":
            emit("scikit-learn MiniBatchKMeans", args.k, truth, minibatch(x, args.k, args.seed), time.time() - started)
        elif peer == "faiss":
            labels = faiss_kmeans(x, args.k, args.seed, args.faiss_iterations, args.faiss_max_points)
            emit("faiss Kmeans", args.k, truth, labels, time.time() - started)
        elif peer == "bertopic":
            texts = (
                [line.rstrip("\n") for line in open(args.texts, encoding="utf-8")]
                if args.texts
                else [f"text {i}" for i in range(len(x))]
            )
            kept, kept_seconds, reduced, reduced_seconds = bertopic(x, texts, args.seed)
            topics = len(set(kept.tolist()) - {-1})
            outliers = int((kept == -1).sum())
            emit("BERTopic default (UMAP + HDBSCAN), outliers as a class", topics, truth, kept, kept_seconds,
                 outliers=outliers)
            emit("BERTopic default + reduce_outliers", topics, truth, reduced, reduced_seconds)
        else:
            sys.exit(f"unknown peer {peer}")


if __name__ == "__main__":
    main()
