"""Hierarchical clustering peers on the same vectors themap's theme tree is grown from, scored
against the labels of each level.

    python tree_peers.py VECTORS.npy LABELLED.tsv --levels 2 [--k 10,40] [--peers sklearn,ward,bertopic]

LABELLED.tsv: `level1<TAB>level2<TAB>text` lines (as many labels as --levels), one per vector.
Prints one JSON object per line: {"peer", "level", "k", "nmi", "ari", "largest_theme", "seconds"}.

- sklearn:  scikit-learn KMeans at each level's k (k-means++, n_init 10), fitted per level.
- ward:     scikit-learn's Ward agglomeration (scipy's linkage "ward" on the vectors, one tree),
            cut at each level's k: levels nest. Quadratic memory: skipped above 30,000 vectors.
- bertopic: BERTopic's default pipeline on the given embeddings (UMAP 15 neighbours, 5
            components, min_dist 0, cosine; HDBSCAN min cluster size 10, eom), every outlier
            given a topic by reduce_outliers (strategy "embeddings"), then hierarchical_topics
            (Ward over the topics' c-TF-IDF, BERTopic's default) cut at each level's k by
            applying its merges from the closest. Chinese texts are segmented with jieba first,
            so that its CountVectorizer sees words. Where the level's k exceeds BERTopic's topic
            count, its topics are scored as they are (k says how many).
k per level: --k, else the number of distinct labels of that level.
"""

import argparse
import json
import re
import sys
import time

import numpy as np
from sklearn import metrics


def emit(peer, level, truth, predicted, seconds):
    predicted = np.asarray(predicted)
    _, counts = np.unique(predicted, return_counts=True)
    row = {
        "peer": peer,
        "level": level,
        "k": int(len(counts)),
        "nmi": metrics.normalized_mutual_info_score(truth, predicted),
        "ari": metrics.adjusted_rand_score(truth, predicted),
        "largest_theme": float(counts.max() / len(predicted)),
        "seconds": round(seconds, 2),
    }
    print(json.dumps(row), flush=True)


def cut_merges(leaves, merges, k):
    """Groups of `leaves` (ids) after applying `merges` [(distance, left, right, parent)] (node
    ids: leaves, or the parents of earlier merges) closest first until k groups remain; returns
    {leaf: group}."""
    parent = {}

    def root(x):
        while parent.get(x, x) != x:
            x = parent[x]
        return x

    groups = len(leaves)
    for _, left, right, joined in sorted(merges, key=lambda m: m[0]):
        if groups <= k:
            break
        parent[root(left)] = joined
        parent[root(right)] = joined
        groups -= 1
    return {leaf: root(leaf) for leaf in leaves}


def bertopic_tree(x, texts, seed):
    from bertopic import BERTopic
    from hdbscan import HDBSCAN
    from umap import UMAP

    umap_model = UMAP(n_neighbors=15, n_components=5, min_dist=0.0, metric="cosine", low_memory=False, random_state=seed)
    hdbscan_model = HDBSCAN(min_cluster_size=10, metric="euclidean", cluster_selection_method="eom", prediction_data=True)
    model = BERTopic(umap_model=umap_model, hdbscan_model=hdbscan_model, calculate_probabilities=False)
    topics, _ = model.fit_transform(texts, embeddings=x)
    topics = model.reduce_outliers(texts, topics, strategy="embeddings", embeddings=x)
    model.update_topics(texts, topics=topics)
    hierarchy = model.hierarchical_topics(texts)
    # Each row joins two nodes (topics, or earlier rows' parents) into a new parent.
    merges = [(row.Distance, int(row.Child_Left_ID), int(row.Child_Right_ID), int(row.Parent_ID))
              for row in hierarchy.itertuples()]
    return np.asarray(topics), merges


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("vectors")
    parser.add_argument("labelled")
    parser.add_argument("--levels", type=int, default=2)
    parser.add_argument("--k", help="per level, comma-separated")
    parser.add_argument("--peers", default="sklearn,ward,bertopic")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    x = np.ascontiguousarray(np.load(args.vectors), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    rows = [line.rstrip("\n").split("\t", args.levels) for line in open(args.labelled, encoding="utf-8") if line.strip()]
    if len(rows) != len(x):
        sys.exit(f"{len(x)} vectors for {len(rows)} labelled lines")
    truth = [[r[level] for r in rows] for level in range(args.levels)]
    texts = [r[args.levels] for r in rows]
    ks = [int(k) for k in args.k.split(",")] if args.k else [len(set(t)) for t in truth]

    for peer in args.peers.split(","):
        if peer == "sklearn":
            from sklearn.cluster import KMeans

            for level, k in enumerate(ks):
                started = time.time()
                labels = KMeans(n_clusters=k, n_init=10, random_state=args.seed).fit(x).labels_
                emit("scikit-learn KMeans", level + 1, truth[level], labels, time.time() - started)
        elif peer == "ward":
            if len(x) > 30000:
                print(json.dumps({"peer": "Ward", "skipped": f"{len(x)} vectors: quadratic memory"}), flush=True)
                continue
            from scipy.cluster.hierarchy import fcluster, linkage

            started = time.time()
            tree = linkage(x, method="ward")
            built = time.time() - started
            for level, k in enumerate(ks):
                emit("Ward (scipy linkage)", level + 1, truth[level], fcluster(tree, k, criterion="maxclust"), built)
        elif peer == "bertopic":
            if any(re.search(r"[\u4e00-\u9fff]", t) for t in texts[:100]):
                import jieba

                jieba.setLogLevel(60)
                texts = [" ".join(jieba.cut(t)) for t in texts]
            started = time.time()
            topics, merges = bertopic_tree(x, texts, args.seed)
            seconds = time.time() - started
            leaves = sorted(set(topics.tolist()))
            for level, k in enumerate(ks):
                group = cut_merges(leaves, merges, k)
                emit("BERTopic hierarchy (+ reduce_outliers)", level + 1, truth[level],
                     [group[t] for t in topics.tolist()], seconds)
        else:
            sys.exit(f"unknown peer {peer}")


if __name__ == "__main__":
    main()
