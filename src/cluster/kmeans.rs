//! k-means on unit vectors with linfa, choosing k, scoring passages, merging and ordering themes.

use linfa::prelude::*;
use linfa_clustering::{KMeans, KMeansInit};
use ndarray::{Array2, ArrayView2, Axis};
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256Plus;

use super::{centroid_of, quality, ClusterParams, Clustering, Join};
use crate::error::{Error, Result};

/// Clusters unit row vectors into themes. Deterministic for a given `params.seed`.
#[tracing::instrument(skip_all, fields(n = vectors.nrows(), k = ?params.k, seeds = params.seeds.len()))]
pub fn cluster(vectors: ArrayView2<f32>, params: &ClusterParams) -> Result<Clustering> {
    let n = vectors.nrows();
    params.check(n)?;
    let seeds = params.seeds.len();
    let sample_rows = silhouette_sample(n, params);
    let sample = vectors.select(Axis(0), &sample_rows);

    let (labels, silhouettes) = match params.k {
        Some(k) => (fit(vectors, k, params)?, Vec::new()),
        None => {
            // √(n/2) is the usual rule of thumb for the most clusters worth looking at.
            let upper = (((n as f64) / 2.0).sqrt().round() as usize)
                .clamp(2, params.max_k)
                .max(seeds + 1)
                .min(n);
            let lower = (seeds + 1).max(2).min(upper);
            let mut tried = Vec::new();
            for k in lower..=upper {
                let labels = fit(vectors, k, params)?;
                let sampled: Vec<usize> = sample_rows.iter().map(|&r| labels[r]).collect();
                tried.push((k, quality::silhouette(sample.view(), &sampled, k), labels));
            }
            let best = tried.iter().map(|t| t.1).fold(f64::NEG_INFINITY, f64::max);
            // Among near-equal scores prefer the finer partition: themes can be merged
            // afterwards (`merge`), a theme that hides two subjects cannot be split.
            let chosen = tried
                .iter()
                .rposition(|t| t.1 >= best - 0.1 * best.abs())
                .expect("at least one k tried");
            let silhouettes = tried.iter().map(|t| (t.0, t.1)).collect();
            (tried.swap_remove(chosen).2, silhouettes)
        }
    };
    tracing::debug!(k = labels.iter().max().map_or(0, |m| m + 1), "k-means done");

    let mut seed_of: Vec<Option<usize>> = (0..k_of(&labels).max(seeds))
        .map(|t| (t < seeds).then_some(t))
        .collect();
    let mut labels = labels;
    if let Some(threshold) = params.merge {
        merge_similar(vectors, &mut labels, &mut seed_of, threshold);
    }
    drop_empty(&mut labels, &mut seed_of);
    let seed_of = adopt_names(&labels, &params.seeds, seed_of.len());
    Ok(describe(vectors, labels, seed_of, silhouettes, params.temperature))
}

/// Gives each named theme's name to the theme holding most of its passages. k-means can move a
/// seeded centroid away while the passages that match the name form a theme of their own; the
/// name belongs with them. Strongest claims first; a theme takes one name.
fn adopt_names(labels: &[usize], seeds: &[Vec<usize>], k: usize) -> Vec<Option<usize>> {
    let mut votes = Vec::new();
    for (seed, rows) in seeds.iter().enumerate() {
        let mut counts = vec![0usize; k];
        for &row in rows {
            counts[labels[row]] += 1;
        }
        votes.extend((0..k).filter(|&t| counts[t] > 0).map(|t| (counts[t], seed, t)));
    }
    votes.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let mut seed_of = vec![None; k];
    let mut placed = vec![false; seeds.len()];
    for (_, seed, theme) in votes {
        if !placed[seed] && seed_of[theme].is_none() {
            seed_of[theme] = Some(seed);
            placed[seed] = true;
        }
    }
    seed_of
}

/// One k-means: seeded centroids first (if any), k-means++ for the rest; best of `runs`.
fn fit(vectors: ArrayView2<f32>, k: usize, params: &ClusterParams) -> Result<Vec<usize>> {
    let dataset = DatasetBase::from(vectors.to_owned());
    let rng = Xoshiro256Plus::seed_from_u64(params.seed);
    let seeds = params.seeds.len();
    let builder = KMeans::params_with_rng(k, rng.clone())
        .max_n_iterations(300)
        .tolerance(1e-5);
    let model = if seeds == 0 {
        builder
            .n_runs(params.runs)
            .init_method(KMeansInit::KMeansPlusPlus)
            .fit(&dataset)
    } else {
        let init = seeded_init(vectors, &params.seeds, k, rng);
        builder
            .n_runs(1)
            .init_method(KMeansInit::Precomputed(init))
            .fit(&dataset)
    }
    .map_err(|e| Error::InvalidArgument(format!("k-means failed: {e}")))?;
    Ok(model.predict(&dataset).to_vec())
}

/// Named themes first, each at the mean of its passages; then k-means++ among the passages:
/// each next centroid drawn with probability proportional to its squared distance from the
/// nearest chosen one.
fn seeded_init(vectors: ArrayView2<f32>, seeds: &[Vec<usize>], k: usize, mut rng: Xoshiro256Plus) -> Array2<f32> {
    let mut centroids = Array2::zeros((0, vectors.ncols()));
    for rows in seeds {
        centroids
            .push_row(centroid_of(vectors, rows).view())
            .expect("same width");
    }
    let distance_to = |c: ndarray::ArrayView1<f32>| {
        vectors
            .outer_iter()
            .map(|v| (2.0 - 2.0 * v.dot(&c)).max(0.0))
            .collect::<Vec<f32>>()
    };
    let mut nearest = vec![f32::INFINITY; vectors.nrows()];
    for c in centroids.outer_iter() {
        for (d, new) in nearest.iter_mut().zip(distance_to(c)) {
            *d = d.min(new);
        }
    }
    while centroids.nrows() < k {
        let total: f32 = nearest.iter().sum();
        let pick = if total > 0.0 {
            let mut target = rng.gen::<f32>() * total;
            nearest.iter().position(|&d| {
                target -= d;
                target <= 0.0
            })
        } else {
            None
        }
        .unwrap_or_else(|| rng.gen_range(0..vectors.nrows()));
        let row = vectors.row(pick).to_owned();
        for (d, new) in nearest.iter_mut().zip(distance_to(row.view())) {
            *d = d.min(new);
        }
        centroids.push_row(row.view()).expect("same width");
    }
    centroids
}

fn silhouette_sample(n: usize, params: &ClusterParams) -> Vec<usize> {
    if n <= params.silhouette_sample {
        return (0..n).collect();
    }
    let mut rng = Xoshiro256Plus::seed_from_u64(params.seed ^ 0x5111);
    let mut rows = sample(&mut rng, n, params.silhouette_sample).into_vec();
    rows.sort_unstable();
    rows
}

fn k_of(labels: &[usize]) -> usize {
    labels.iter().max().map_or(0, |m| m + 1)
}

/// Joins the most similar pair of themes while their centroids' cosine is at least `threshold`.
/// A named theme keeps its name; two named themes are never merged.
fn merge_similar(vectors: ArrayView2<f32>, labels: &mut [usize], seed_of: &mut Vec<Option<usize>>, threshold: f32) {
    loop {
        let k = seed_of.len();
        let centroids = centroids(vectors, labels, k);
        let mut best: Option<(f32, usize, usize)> = None;
        for a in 0..k {
            for b in a + 1..k {
                let both_named = seed_of[a].is_some() && seed_of[b].is_some();
                let sim = centroids.row(a).dot(&centroids.row(b));
                if !both_named && sim >= threshold && best.is_none_or(|(s, _, _)| sim > s) {
                    best = Some((sim, a, b));
                }
            }
        }
        let Some((_, a, b)) = best else { return };
        // Keep the named one's id; move everything of the other there.
        let (keep, gone) = if seed_of[b].is_some() { (b, a) } else { (a, b) };
        for l in labels.iter_mut() {
            if *l == gone {
                *l = keep;
            }
        }
        drop_empty(labels, seed_of);
    }
}

/// Renumbers themes 0..k without gaps, keeping their order.
fn drop_empty(labels: &mut [usize], seed_of: &mut Vec<Option<usize>>) {
    let mut used = vec![false; seed_of.len()];
    for &l in labels.iter() {
        used[l] = true;
    }
    let mut new_id = vec![usize::MAX; seed_of.len()];
    let mut next = 0;
    for (t, &u) in used.iter().enumerate() {
        if u {
            new_id[t] = next;
            next += 1;
        }
    }
    for l in labels.iter_mut() {
        *l = new_id[*l];
    }
    *seed_of = (0..seed_of.len()).filter(|&t| used[t]).map(|t| seed_of[t]).collect();
}

/// Unit centroid of each of the `k` themes of `labels`, in `vectors`.
pub fn centroids(vectors: ArrayView2<f32>, labels: &[usize], k: usize) -> Array2<f32> {
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); k];
    for (row, &l) in labels.iter().enumerate() {
        members[l].push(row);
    }
    let mut out = Array2::zeros((k, vectors.ncols()));
    for (t, rows) in members.iter().enumerate() {
        out.row_mut(t).assign(&centroid_of(vectors, rows));
    }
    out
}

/// Orders themes (named first in seed order, then by size) and scores every passage.
fn describe(
    vectors: ArrayView2<f32>,
    labels: Vec<usize>,
    seed_of: Vec<Option<usize>>,
    silhouettes: Vec<(usize, f64)>,
    temperature: f32,
) -> Clustering {
    let k = seed_of.len();
    let mut sizes = vec![0usize; k];
    for &l in &labels {
        sizes[l] += 1;
    }
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by_key(|&t| (seed_of[t].map_or(usize::MAX, |s| s), std::cmp::Reverse(sizes[t]), t));
    let mut rank = vec![0; k];
    for (new, &old) in order.iter().enumerate() {
        rank[old] = new;
    }
    let labels: Vec<usize> = labels.iter().map(|&l| rank[l]).collect();
    let seed_of: Vec<Option<usize>> = order.iter().map(|&t| seed_of[t]).collect();

    let centroids = centroids(vectors, &labels, k);
    let sims = vectors.dot(&centroids.t());
    let mut confidence = Vec::with_capacity(labels.len());
    let mut similarity = Vec::with_capacity(labels.len());
    for (row, &l) in sims.outer_iter().zip(&labels) {
        let max = row.fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let total: f32 = row.iter().map(|&v| ((v - max) / temperature).exp()).sum();
        confidence.push(((row[l] - max) / temperature).exp() / total);
        similarity.push(row[l]);
    }
    let mut outlier = vec![false; labels.len()];
    for t in 0..k {
        let rows: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == t).collect();
        if rows.len() < 5 {
            continue; // too few to say what is unusual
        }
        let mean = rows.iter().map(|&i| similarity[i]).sum::<f32>() / rows.len() as f32;
        let std = (rows.iter().map(|&i| (similarity[i] - mean).powi(2)).sum::<f32>() / rows.len() as f32).sqrt();
        for &i in &rows {
            outlier[i] = similarity[i] < mean - 2.0 * std;
        }
    }
    let sizes: Vec<usize> = order.iter().map(|&t| sizes[t]).collect();
    let hierarchy = average_linkage(&centroids, &sizes);
    Clustering {
        labels,
        confidence,
        similarity,
        outlier,
        centroids,
        seed_of,
        silhouettes,
        hierarchy,
    }
}

/// Average-linkage agglomeration of the theme centroids (weighted by theme size).
fn average_linkage(centroids: &Array2<f32>, sizes: &[usize]) -> Vec<Join> {
    let k = centroids.nrows();
    let sim = centroids.dot(&centroids.t());
    // Active groups: (id, member themes).
    let mut groups: Vec<(usize, Vec<usize>)> = (0..k).map(|t| (t, vec![t])).collect();
    let linkage = |a: &[usize], b: &[usize]| -> f32 {
        let (mut total, mut weight) = (0.0f32, 0.0f32);
        for &x in a {
            for &y in b {
                let w = (sizes[x] * sizes[y]) as f32;
                total += w * sim[[x, y]];
                weight += w;
            }
        }
        if weight > 0.0 {
            total / weight
        } else {
            0.0
        }
    };
    let mut joins = Vec::new();
    while groups.len() > 1 {
        let mut best = (f32::NEG_INFINITY, 0, 1);
        for i in 0..groups.len() {
            for j in i + 1..groups.len() {
                let s = linkage(&groups[i].1, &groups[j].1);
                if s > best.0 {
                    best = (s, i, j);
                }
            }
        }
        let (s, i, j) = best;
        let (b_id, b_members) = groups.remove(j);
        let (a_id, mut a_members) = groups.remove(i);
        a_members.extend(b_members);
        let size = a_members.iter().map(|&t| sizes[t]).sum();
        joins.push(Join {
            a: a_id,
            b: b_id,
            similarity: s,
            size,
        });
        groups.push((k + joins.len() - 1, a_members));
    }
    joins
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::normalize_rows;
    use crate::cluster::quality::agreement;

    /// Three well-separated blobs on the unit sphere in 16 dimensions, seeded.
    fn blobs(per: usize, seed: u64) -> (Array2<f32>, Vec<usize>) {
        let mut rng = Xoshiro256Plus::seed_from_u64(seed);
        let mut rows = Vec::new();
        let mut truth = Vec::new();
        for c in 0..3 {
            for _ in 0..per {
                let mut v = vec![0.0f32; 16];
                v[c * 4] = 1.0;
                for x in v.iter_mut() {
                    *x += rng.gen_range(-0.25..0.25);
                }
                rows.extend(v);
                truth.push(c);
            }
        }
        (
            normalize_rows(Array2::from_shape_vec((3 * per, 16), rows).unwrap()),
            truth,
        )
    }

    #[test]
    fn finds_the_blobs_and_chooses_k() {
        let (v, truth) = blobs(40, 1);
        let c = cluster(v.view(), &ClusterParams::default()).unwrap();
        assert_eq!(c.k(), 3, "silhouettes {:?}", c.silhouettes);
        assert!(agreement(&truth, &c.labels).ari > 0.99);
        assert!(c.confidence.iter().all(|&p| p > 0.0 && p <= 1.0));
        assert_eq!(c.hierarchy.len(), 2);
    }

    #[test]
    fn same_seed_same_result() {
        let (v, _) = blobs(30, 2);
        let params = ClusterParams {
            k: Some(5),
            ..ClusterParams::default()
        };
        let a = cluster(v.view(), &params).unwrap();
        let b = cluster(v.view(), &params).unwrap();
        assert_eq!(a.labels, b.labels);
        assert_eq!(a.centroids, b.centroids);
    }

    #[test]
    fn seeds_name_their_clusters_and_the_rest_is_clustered() {
        let (v, truth) = blobs(30, 3);
        // A named theme started from three passages of blob 2; the other blobs must still be found.
        let params = ClusterParams {
            k: Some(3),
            seeds: vec![vec![60, 61, 62]],
            ..ClusterParams::default()
        };
        let c = cluster(v.view(), &params).unwrap();
        assert_eq!(c.seed_of[0], Some(0));
        let blob2: Vec<usize> = (0..truth.len())
            .filter(|&i| truth[i] == 2)
            .map(|i| c.labels[i])
            .collect();
        assert!(blob2.iter().all(|&l| l == 0), "the seeded theme holds blob 2");
        assert!(agreement(&truth, &c.labels).ari > 0.99);
    }

    #[test]
    fn merge_joins_near_duplicates() {
        let (v, truth) = blobs(30, 4);
        let params = ClusterParams {
            k: Some(6),
            merge: Some(0.8),
            ..ClusterParams::default()
        };
        let c = cluster(v.view(), &params).unwrap();
        assert_eq!(c.k(), 3);
        assert!(agreement(&truth, &c.labels).ari > 0.99);
    }

    #[test]
    fn bad_parameters_are_errors() {
        let (v, _) = blobs(5, 5);
        for params in [
            ClusterParams {
                k: Some(0),
                ..ClusterParams::default()
            },
            ClusterParams {
                k: Some(100),
                ..ClusterParams::default()
            },
            ClusterParams {
                merge: Some(2.0),
                ..ClusterParams::default()
            },
            ClusterParams {
                runs: 0,
                ..ClusterParams::default()
            },
            ClusterParams {
                seeds: vec![vec![999]],
                ..ClusterParams::default()
            },
        ] {
            assert!(
                matches!(cluster(v.view(), &params), Err(Error::InvalidArgument(_))),
                "{params:?}"
            );
        }
    }
}
