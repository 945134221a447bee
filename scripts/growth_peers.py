"""BERTopic's routes for an archive that grows, on the same vectors and the same plan as
`themap eval-growth --save-plan PLAN`, scored the same way.

    python growth_peers.py VECTORS.npy LABELLED.tsv PLAN --arrive LABEL [--routes online,merge] [--k 10]

LABELLED.tsv: `label<TAB>text` per vector; PLAN: `initial`, `update` or `unused` per line.
Prints one JSON object per route: ari_old (the first fit's passages, before against after),
arriving_f1 (the best topic not there before, against the arriving class), arriving_absorbed
(largest share of the class in one topic that was there before), nmi_update and nmi_refit (every
passage after the update, and after a fit from scratch of the same pipeline), seconds.

- online: BERTopic's online pipeline (its documentation's: IncrementalPCA to 5 components,
  MiniBatchKMeans with --k clusters, OnlineCountVectorizer with decay 0.01), `partial_fit` over
  the first fit's passages in batches of 1,000, then over the update's; topics from `transform`.
  Its refit: the same pipeline's `partial_fit` over all passages in one pass.
- merge: BERTopic's default pipeline (UMAP 15 neighbours, 5 components, cosine; HDBSCAN min
  cluster size 10; outliers given topics by reduce_outliers "embeddings", the topics' embeddings
  left as fitted: their passages' centroids) fitted on the first
  fit's passages and, apart, on the update's; `BERTopic.merge_models([first, update],
  min_similarity=0.7)`: the first model's passages keep their topics, an update topic takes the
  id of the merged model's topic it was matched to (its embedding within cosine 0.7) or its new
  id. Its refit: the default pipeline on all passages.
Chinese texts are segmented with jieba for the vectorizers.
"""

import argparse
import json
import re
import sys
import time

import numpy as np
from sklearn import metrics


def segment(texts):
    if any(re.search(r"[\u4e00-\u9fff]", t) for t in texts[:100]):
        import jieba

        jieba.setLogLevel(60)
        return [" ".join(jieba.cut(t)) for t in texts]
    return texts


def scores(route, truth, arrive, before, after_old, after_all, refit, seconds):
    """before/after_old: topics of the first fit's passages; after_all: of every passage (first
    fit's, then the update's), refit: the same from scratch."""
    truth = np.asarray(truth)
    after_all = np.asarray(after_all)
    old_topics = set(np.asarray(before).tolist())
    arriving = truth == arrive
    best = 0.0
    for t in set(after_all.tolist()) - old_topics:
        members = after_all == t
        hits = int((members & arriving).sum())
        if hits:
            p, r = hits / members.sum(), hits / arriving.sum()
            best = max(best, 2 * p * r / (p + r))
    absorbed = max([int(((after_all == t) & arriving).sum()) for t in old_topics] + [0]) / max(arriving.sum(), 1)
    row = {
        "route": route,
        "topics_before": len(old_topics),
        "topics_after": len(set(after_all.tolist())),
        "ari_old": metrics.adjusted_rand_score(before, after_old),
        "arriving_f1": best,
        "arriving_absorbed": absorbed,
        "nmi_update": metrics.normalized_mutual_info_score(truth, after_all),
        "nmi_refit": metrics.normalized_mutual_info_score(truth, refit),
        "seconds": {k: round(v, 2) for k, v in seconds.items()},
    }
    print(json.dumps(row), flush=True)


def online_model(k, seed):
    from bertopic import BERTopic
    from bertopic.vectorizers import OnlineCountVectorizer
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.decomposition import IncrementalPCA

    return BERTopic(
        umap_model=IncrementalPCA(n_components=5),
        hdbscan_model=MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3),
        vectorizer_model=OnlineCountVectorizer(decay=0.01),
    )


def partial_fits(model, texts, x, rows, batch=1000):
    for start in range(0, len(rows), batch):
        chunk = rows[start:start + batch]
        model.partial_fit([texts[i] for i in chunk], embeddings=x[chunk])


def default_model(seed):
    from bertopic import BERTopic
    from hdbscan import HDBSCAN
    from umap import UMAP

    return BERTopic(
        umap_model=UMAP(n_neighbors=15, n_components=5, min_dist=0.0, metric="cosine", low_memory=False, random_state=seed),
        hdbscan_model=HDBSCAN(min_cluster_size=10, metric="euclidean", cluster_selection_method="eom", prediction_data=True),
        calculate_probabilities=False,
    )


def fit_default(texts, x, seed):
    # Outliers get their nearest topic for scoring; the model's topics are left as fitted, so
    # that its topic embeddings stay the centroids of their passages' vectors (update_topics
    # would replace them with c-TF-IDF-weighted ones, which merge_models then matches).
    model = default_model(seed)
    topics, _ = model.fit_transform(texts, embeddings=x)
    topics = model.reduce_outliers(texts, topics, strategy="embeddings", embeddings=x)
    return model, np.asarray(topics)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("vectors")
    parser.add_argument("labelled")
    parser.add_argument("plan")
    parser.add_argument("--arrive", required=True)
    parser.add_argument("--routes", default="online,merge")
    parser.add_argument("--k", type=int, default=10, help="clusters of the online route")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    x = np.ascontiguousarray(np.load(args.vectors), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    rows = [line.rstrip("\n").split("\t", 1) for line in open(args.labelled, encoding="utf-8") if line.strip()]
    plan = [line.strip() for line in open(args.plan, encoding="utf-8")]
    if not (len(rows) == len(x) == len(plan)):
        sys.exit(f"{len(x)} vectors, {len(rows)} labelled lines, {len(plan)} plan lines")
    texts = segment([r[1] for r in rows])
    initial = [i for i, p in enumerate(plan) if p == "initial"]
    update = [i for i, p in enumerate(plan) if p == "update"]
    grown = initial + update
    truth = [rows[i][0] for i in grown]

    for route in args.routes.split(","):
        seconds = {}
        if route == "online":
            # IncrementalPCA gives float64 rows; MiniBatchKMeans then wants float64 throughout.
            x = x.astype(np.float64)
            model = online_model(args.k, args.seed)
            started = time.time()
            partial_fits(model, texts, x, initial)
            seconds["fit"] = time.time() - started
            before = model.transform([texts[i] for i in initial], embeddings=x[initial])[0]
            started = time.time()
            partial_fits(model, texts, x, update)
            seconds["update"] = time.time() - started
            after = model.transform([texts[i] for i in grown], embeddings=x[grown])[0]
            started = time.time()
            fresh = online_model(args.k, args.seed)
            partial_fits(fresh, texts, x, grown)
            refit = fresh.transform([texts[i] for i in grown], embeddings=x[grown])[0]
            seconds["refit"] = time.time() - started
            scores("BERTopic partial_fit (online)", truth, args.arrive, before, after[:len(initial)], after, refit, seconds)
        elif route == "merge":
            from bertopic import BERTopic

            x = x.astype(np.float32)
            started = time.time()
            first, before = fit_default([texts[i] for i in initial], x[initial], args.seed)
            seconds["fit"] = time.time() - started
            started = time.time()
            second, new_topics = fit_default([texts[i] for i in update], x[update], args.seed)
            merged = BERTopic.merge_models([first, second], min_similarity=0.7)
            seconds["update"] = time.time() - started
            # merge_models' own rule: an update topic joins the first model's most similar topic
            # if their embeddings are within cosine 0.7, else it is added with the next new id.
            a = first.topic_embeddings_ / np.linalg.norm(first.topic_embeddings_, axis=1, keepdims=True)
            b = second.topic_embeddings_ / np.linalg.norm(second.topic_embeddings_, axis=1, keepdims=True)
            a_ids = sorted(first.get_topics().keys())
            b_ids = sorted(second.get_topics().keys())
            similar = b @ a.T
            mapping, fresh_id = {}, max(a_ids) + 1
            for row, topic in enumerate(b_ids):
                best = int(np.argmax(similar[row]))
                if similar[row, best] >= 0.7:
                    mapping[topic] = a_ids[best]
                else:
                    mapping[topic] = fresh_id
                    fresh_id += 1
            added = len(merged.get_topics()) - len(first.get_topics())
            if added != fresh_id - max(a_ids) - 1:
                print(f"warning: merge_models added {added} topics, the reproduced rule {fresh_id - max(a_ids) - 1}", file=sys.stderr)
            after = np.concatenate([before, [mapping[t] for t in new_topics.tolist()]])
            started = time.time()
            _, refit = fit_default([texts[i] for i in grown], x[grown], args.seed)
            seconds["refit"] = time.time() - started
            scores("BERTopic merge_models", truth, args.arrive, before, before, after, refit, seconds)
        else:
            sys.exit(f"unknown route {route}")


if __name__ == "__main__":
    main()
