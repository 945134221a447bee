//! k-means on unit vectors with linfa, at any size, then merging, naming and ordering themes.
//!
//! The cost that grows with the collection is kept to a few passes over it. k is chosen on a
//! sample (every k tried, a few restarts each, silhouette on a sub-sample whose similarities are
//! computed once); the restarts of the final fit run on a sample too, as faiss trains its
//! k-means. Only then does linfa refine the best centroids on every passage that shapes the
//! themes, and assign all passages to them. The patched linfa (`vendor/linfa-clustering`)
//! measures distances a block of passages at a time with one matrix product.

use linfa::prelude::*;
use linfa_clustering::{KMeans, KMeansInit};
use linfa_nn::distance::L2Dist;
use ndarray::parallel::prelude::*;
use ndarray::{Array2, ArrayView2, Axis};
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256Plus;
use rayon::slice::ParallelSlice;
use std::time::Instant;

use super::{centroid_of, quality, ClusterParams, Clustering, Timings};
use crate::error::{Error, Result};
use crate::progress::{Progress, Silent};

/// Clusters unit row vectors into themes. Deterministic for a given `params.seed`.
#[tracing::instrument(skip_all, fields(n = vectors.nrows(), k = ?params.k, seeds = params.seeds.len()))]
pub fn cluster(vectors: ArrayView2<f32>, params: &ClusterParams, progress: &dyn Progress) -> Result<Clustering> {
    let n = vectors.nrows();
    params.check(n)?;
    let seeds = params.seeds.len();
    let fit_rows = params.fit_rows.clone().unwrap_or_else(|| (0..n).collect());

    let clock = Instant::now();
    let (k, silhouettes) = match params.k {
        Some(k) => (k, Vec::new()),
        None => choose_k(vectors, &fit_rows, params, progress)?,
    };
    let mut timings = Timings {
        choose_k: clock.elapsed().as_secs_f64(),
        ..Timings::default()
    };
    let clock = Instant::now();
    let model = fit(vectors, &fit_rows, k, params, progress)?;
    timings.fit = clock.elapsed().as_secs_f64();
    let clock = Instant::now();
    let labels = model.predict(&vectors).to_vec();
    timings.assign = clock.elapsed().as_secs_f64();

    let mut seed_of: Vec<Option<usize>> = (0..k.max(seeds)).map(|t| (t < seeds).then_some(t)).collect();
    let mut labels = labels;
    if let Some(threshold) = params.merge {
        merge_similar(vectors, &mut labels, &mut seed_of, threshold);
    }
    drop_empty(&mut labels, &mut seed_of);
    let seed_of = adopt_names(&labels, &params.seeds, seed_of.len());
    let fitted = rows_marked(n, &fit_rows);
    let clock = Instant::now();
    let mut clustering = describe(vectors, labels, &fitted, seed_of, silhouettes, params.temperature);
    timings.describe = clock.elapsed().as_secs_f64();
    tracing::debug!(k, ?timings, "themes found");
    clustering.timings = timings;
    Ok(clustering)
}

/// Tries every k from the number of named themes + 1 (3 at least) to √(n/2) (at most
/// `max_k`), each on the same sample, and keeps the finest partition whose silhouette is near
/// the best one.
fn choose_k(
    vectors: ArrayView2<f32>,
    rows: &[usize],
    params: &ClusterParams,
    progress: &dyn Progress,
) -> Result<(usize, Vec<(usize, f64)>)> {
    let n = rows.len();
    let seeds = params.seeds.len();
    // √(n/2) is the usual rule of thumb for the most clusters worth looking at.
    let upper = (((n as f64) / 2.0).sqrt().round() as usize)
        .clamp(2, params.max_k)
        .max(seeds + 1)
        .min(n);
    // Two themes tell a reader little, and silhouette often favours the broadest split (two
    // scripts, two languages): start at three.
    let lower = (seeds + 1).max(3).min(upper);

    let mut rng = Xoshiro256Plus::seed_from_u64(params.seed ^ 0x5111);
    let sweep = vectors.select(Axis(0), &sample_of(rows, params.sweep_sample, &mut rng));
    // Silhouette is quadratic: it scores a sub-sample, whose similarities serve every k.
    let all_sweep: Vec<usize> = (0..sweep.nrows()).collect();
    let scored = sweep.select(Axis(0), &sample_of(&all_sweep, params.silhouette_sample, &mut rng));
    let similarity = scored.dot(&scored.t());

    // Where the sample is small, restarts cost little and steady the silhouette curve.
    let runs = if sweep.nrows() <= SMALL_SWEEP {
        params.runs
    } else {
        params.sweep_runs
    };
    progress.start("choosing the number of themes", (upper - lower + 1) as u64, "k values");
    let mut tried = Vec::new();
    for k in lower..=upper {
        let model = best_of_runs(sweep.view(), vectors, k, runs, params.sweep_iterations, params, &Silent)?;
        let labels = model.predict(&scored).to_vec();
        tried.push((k, quality::silhouette_of(similarity.view(), &labels, k)));
        progress.advance(1, 0);
    }
    progress.finish();
    let chosen = tried[choose_from_silhouettes(&tried)].0;
    tracing::debug!(chosen, silhouettes = ?tried, "k chosen");
    Ok((chosen, tried.into_iter().map(|(k, s)| (k, s.mean)).collect()))
}

/// Up to this many passages, choosing k uses as many restarts as the final fit.
const SMALL_SWEEP: usize = 2000;

/// Which of the tried k to take: the finest partition whose silhouette is within two standard
/// errors of the best one's. Scores that close are not told apart by the sample, and themes can
/// be merged afterwards (`merge`) while a theme that hides two subjects cannot be split. (A
/// fixed 10% margin let a noisy curve choose 17 themes for THUCNews' 10 classes; a fixed 2%
/// one chose 4 for the bundled corpus's 259 passages with three named themes, where scores
/// carry far more noise.)
fn choose_from_silhouettes(tried: &[(usize, quality::Silhouette)]) -> usize {
    let best = tried
        .iter()
        .max_by(|a, b| a.1.mean.total_cmp(&b.1.mean))
        .expect("at least one k tried")
        .1;
    let floor = best.mean - 2.0 * best.standard_error;
    tried
        .iter()
        .rposition(|t| t.1.mean >= floor)
        .expect("the best is above its floor")
}

type Model = KMeans<f32, L2Dist>;

/// The final k-means: the best of `params.runs` starts on a sample, refined by linfa on all the
/// `rows` that shape the themes (up to `params.refine_sample` of them).
fn fit(
    vectors: ArrayView2<f32>,
    rows: &[usize],
    k: usize,
    params: &ClusterParams,
    progress: &dyn Progress,
) -> Result<Model> {
    let mut rng = Xoshiro256Plus::seed_from_u64(params.seed);
    // One unit per restart, and one for the refinement over every row.
    progress.start("fitting themes", params.runs as u64 + 1, "runs");
    let train_rows = sample_of(rows, params.train_sample.max(k), &mut rng);
    let train = vectors.select(Axis(0), &train_rows);
    let trained = best_of_runs(
        train.view(),
        vectors,
        k,
        params.runs,
        params.max_iterations,
        params,
        progress,
    )?;
    if train_rows.len() == rows.len() || params.refine_iterations == 0 {
        // The sample was everything (or no refinement was asked for).
        progress.advance(1, 0);
        progress.finish();
        return Ok(trained);
    }
    let centroids = trained.centroids().clone();
    let refined = refine_on(vectors, rows, centroids, params, &mut rng)?;
    progress.advance(1, 0);
    progress.finish();
    Ok(refined)
}

/// Lowest-inertia centroids of `runs` k-means starts on `data`: k-means++ starts, or with named
/// themes, starts at the named centroids (means of their passages in `all`) plus k-means++.
fn best_of_runs(
    data: ArrayView2<f32>,
    all: ArrayView2<f32>,
    k: usize,
    runs: usize,
    iterations: u64,
    params: &ClusterParams,
    progress: &dyn Progress,
) -> Result<Model> {
    let dataset = DatasetBase::from(data);
    let mut best: Option<Model> = None;
    for run in 0..runs {
        let rng = Xoshiro256Plus::seed_from_u64(params.seed.wrapping_add(run as u64));
        let init = if params.seeds.is_empty() {
            KMeansInit::KMeansPlusPlus
        } else {
            KMeansInit::Precomputed(seeded_init(data, all, &params.seeds, k, rng.clone()))
        };
        let model = KMeans::params_with_rng(k, rng)
            .n_runs(1)
            .max_n_iterations(iterations)
            .tolerance(params.tolerance)
            .init_method(init)
            .fit(&dataset)
            .map_err(|e| Error::InvalidArgument(format!("k-means failed: {e}")))?;
        if best.as_ref().is_none_or(|b| model.inertia() < b.inertia()) {
            best = Some(model);
        }
        progress.advance(1, 0);
    }
    Ok(best.expect("at least one run"))
}

/// Lloyd iterations from `centroids` over `data`.
fn refine(data: ArrayView2<f32>, centroids: Array2<f32>, params: &ClusterParams) -> Result<Model> {
    KMeans::params_with_rng(centroids.nrows(), Xoshiro256Plus::seed_from_u64(params.seed))
        .n_runs(1)
        .max_n_iterations(params.refine_iterations)
        .tolerance(params.tolerance)
        .init_method(KMeansInit::Precomputed(centroids))
        .fit(&DatasetBase::from(data))
        .map_err(|e| Error::InvalidArgument(format!("k-means failed: {e}")))
}

/// [`refine`] over `rows`: every row when they all count and are few enough (a view, no copy);
/// else a sample of `params.refine_sample`, so that time and memory stay bounded.
fn refine_on(
    vectors: ArrayView2<f32>,
    rows: &[usize],
    centroids: Array2<f32>,
    params: &ClusterParams,
    rng: &mut Xoshiro256Plus,
) -> Result<Model> {
    if rows.len() == vectors.nrows() && rows.len() <= params.refine_sample {
        refine(vectors, centroids, params)
    } else {
        let sample = sample_of(rows, params.refine_sample, rng);
        refine(vectors.select(Axis(0), &sample).view(), centroids, params)
    }
}

/// Lloyd iterations from `centroids` over the `rows` that shape themes (a sample of them, as
/// [`fit`] refines), then every row's nearest centroid.
pub(super) fn refine_from(
    vectors: ArrayView2<f32>,
    rows: &[usize],
    centroids: Array2<f32>,
    params: &ClusterParams,
) -> Result<Vec<usize>> {
    let mut rng = Xoshiro256Plus::seed_from_u64(params.seed ^ 0x7ee);
    let model = refine_on(vectors, rows, centroids, params, &mut rng)?;
    Ok(model.predict(&vectors).to_vec())
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

/// Named themes first, each at the mean of its passages in `all`; then k-means++ among the rows
/// of `data`: each next centroid drawn with probability proportional to its squared distance
/// from the nearest chosen one.
fn seeded_init(
    data: ArrayView2<f32>,
    all: ArrayView2<f32>,
    seeds: &[Vec<usize>],
    k: usize,
    mut rng: Xoshiro256Plus,
) -> Array2<f32> {
    let mut centroids = Array2::zeros((0, data.ncols()));
    for rows in seeds {
        centroids.push_row(centroid_of(all, rows).view()).expect("same width");
    }
    let distance_to = |c: ndarray::ArrayView1<f32>| data.dot(&c).mapv(|s| (2.0 - 2.0 * s).max(0.0));
    let mut nearest = ndarray::Array1::from_elem(data.nrows(), f32::INFINITY);
    for c in centroids.outer_iter() {
        nearest.zip_mut_with(&distance_to(c), |d, &new| *d = d.min(new));
    }
    while centroids.nrows() < k {
        let total: f32 = nearest.sum();
        let pick = if total > 0.0 {
            let mut target = rng.gen::<f32>() * total;
            nearest.iter().position(|&d| {
                target -= d;
                target <= 0.0
            })
        } else {
            None
        }
        .unwrap_or_else(|| rng.gen_range(0..data.nrows()));
        let row = data.row(pick).to_owned();
        nearest.zip_mut_with(&distance_to(row.view()), |d, &new| *d = d.min(new));
        centroids.push_row(row.view()).expect("same width");
    }
    centroids
}

/// At most `size` of `rows`, drawn at random (in row order); all of them if there are no more.
fn sample_of(rows: &[usize], size: usize, rng: &mut Xoshiro256Plus) -> Vec<usize> {
    if rows.len() <= size {
        return rows.to_vec();
    }
    let mut picked: Vec<usize> = sample(rng, rows.len(), size).into_iter().map(|i| rows[i]).collect();
    picked.sort_unstable();
    picked
}

/// `true` for the rows listed, of `n`.
pub fn rows_marked(n: usize, rows: &[usize]) -> Vec<bool> {
    let mut member = vec![false; n];
    for &r in rows {
        member[r] = true;
    }
    member
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
    centroids_of(vectors, labels, k, &vec![true; labels.len()])
}

/// Unit centroid of each theme over its rows marked in `counted` (over all its rows where it
/// has none marked).
pub fn centroids_of(vectors: ArrayView2<f32>, labels: &[usize], k: usize, counted: &[bool]) -> Array2<f32> {
    super::normalize_rows(theme_sums(vectors, labels, k, counted, None))
}

/// Sum of each theme's rows marked in `counted` (of all its rows where it has none marked),
/// each row times its `weights` entry if given; in one pass over the rows.
pub fn theme_sums(
    vectors: ArrayView2<f32>,
    labels: &[usize],
    k: usize,
    counted: &[bool],
    weights: Option<&[f32]>,
) -> Array2<f32> {
    let mut sums = Array2::<f32>::zeros((k, vectors.ncols()));
    let mut fallback = Array2::<f32>::zeros((k, vectors.ncols()));
    let mut marked = vec![0usize; k];
    for (row, (&l, &c)) in labels.iter().zip(counted).enumerate() {
        let weight = weights.map_or(1.0, |w| w[row]);
        if c {
            sums.row_mut(l).scaled_add(weight, &vectors.row(row));
            marked[l] += 1;
        } else {
            fallback.row_mut(l).scaled_add(weight, &vectors.row(row));
        }
    }
    for t in 0..k {
        if marked[t] == 0 {
            sums.row_mut(t).assign(&fallback.row(t));
        }
    }
    sums
}

/// Orders themes (named first in seed order, then by the passages that shaped them) and scores
/// every passage. Centroids and the outlier statistics come from the `fitted` rows, those that
/// shaped the themes.
fn describe(
    vectors: ArrayView2<f32>,
    labels: Vec<usize>,
    fitted: &[bool],
    seed_of: Vec<Option<usize>>,
    silhouettes: Vec<(usize, f64)>,
    temperature: f32,
) -> Clustering {
    let k = seed_of.len();
    let mut sizes = vec![0usize; k];
    // The passages that shaped each theme weigh it; those only assigned to it do not.
    let mut weights = vec![0usize; k];
    for (&l, &f) in labels.iter().zip(fitted) {
        sizes[l] += 1;
        weights[l] += usize::from(f);
    }
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by_key(|&t| {
        (
            seed_of[t].map_or(usize::MAX, |s| s),
            std::cmp::Reverse(weights[t]),
            std::cmp::Reverse(sizes[t]),
            t,
        )
    });
    let mut rank = vec![0; k];
    for (new, &old) in order.iter().enumerate() {
        rank[old] = new;
    }
    let labels: Vec<usize> = labels.iter().map(|&l| rank[l]).collect();
    let seed_of: Vec<Option<usize>> = order.iter().map(|&t| seed_of[t]).collect();

    let Scores {
        centroids,
        confidence,
        similarity,
        outlier,
    } = score_themes(vectors, &labels, k, fitted, temperature);
    Clustering {
        labels,
        confidence,
        similarity,
        outlier,
        centroids,
        seed_of,
        silhouettes,
        timings: Timings::default(),
    }
}

/// How every passage sits in its theme; see [`score_themes`].
pub struct Scores {
    /// Unit centroid of each theme, over the passages that shaped it.
    pub centroids: Array2<f32>,
    /// Softmax over the centroid similarities, at the passage's theme.
    pub confidence: Vec<f32>,
    /// Cosine similarity to the theme's centroid.
    pub similarity: Vec<f32>,
    /// More than two standard deviations below the theme's mean similarity.
    pub outlier: Vec<bool>,
}

/// Scores every passage against the `k` themes of `labels`: centroids and the outlier
/// statistics come from the `fitted` rows, those that shaped the themes.
pub fn score_themes(vectors: ArrayView2<f32>, labels: &[usize], k: usize, fitted: &[bool], temperature: f32) -> Scores {
    let centroids = centroids_of(vectors, labels, k, fitted);
    // Blocks of rows in parallel: the full n × k similarity matrix is never held at once.
    let scored: Vec<(Vec<f32>, Vec<f32>)> = vectors
        .axis_chunks_iter(Axis(0), 4096)
        .into_par_iter()
        .zip(labels.par_chunks(4096))
        .map(|(block, block_labels)| {
            let sims = block.dot(&centroids.t());
            sims.outer_iter()
                .zip(block_labels)
                .map(|(row, &l)| {
                    let max = row.fold(f32::NEG_INFINITY, |m, &v| m.max(v));
                    // Terms more than 30 temperatures below the best add under 1e-13 each.
                    let floor = max - 30.0 * temperature;
                    let total: f32 = row
                        .iter()
                        .filter(|&&v| v >= floor)
                        .map(|&v| ((v - max) / temperature).exp())
                        .sum();
                    (((row[l] - max) / temperature).exp() / total, row[l])
                })
                .unzip()
        })
        .collect();
    let (confidence, similarity): (Vec<f32>, Vec<f32>) =
        scored.into_iter().flat_map(|(c, s)| c.into_iter().zip(s)).unzip();
    // Outliers: more than two standard deviations below the theme's mean similarity, measured
    // over its fitted passages (with fewer than 5, too few to say what is unusual).
    let mut count = vec![0usize; k];
    let mut sum = vec![0f64; k];
    let mut sum_sq = vec![0f64; k];
    for ((&l, &s), _) in labels.iter().zip(&similarity).zip(fitted).filter(|(_, &f)| f) {
        count[l] += 1;
        sum[l] += s as f64;
        sum_sq[l] += (s as f64).powi(2);
    }
    let floor: Vec<f64> = (0..k)
        .map(|t| {
            if count[t] < 5 {
                return f64::NEG_INFINITY;
            }
            let mean = sum[t] / count[t] as f64;
            let var = (sum_sq[t] / count[t] as f64 - mean * mean).max(0.0);
            mean - 2.0 * var.sqrt()
        })
        .collect();
    let outlier = labels
        .iter()
        .zip(&similarity)
        .map(|(&l, &s)| (s as f64) < floor[l])
        .collect();
    Scores {
        centroids,
        confidence,
        similarity,
        outlier,
    }
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
        let c = cluster(v.view(), &ClusterParams::default(), &crate::Silent).unwrap();
        assert_eq!(c.k(), 3, "silhouettes {:?}", c.silhouettes);
        assert!(agreement(&truth, &c.labels).ari > 0.99);
        assert!(c.confidence.iter().all(|&p| p > 0.0 && p <= 1.0));
    }

    #[test]
    fn same_seed_same_result() {
        let (v, _) = blobs(30, 2);
        let params = ClusterParams {
            k: Some(5),
            ..ClusterParams::default()
        };
        let a = cluster(v.view(), &params, &crate::Silent).unwrap();
        let b = cluster(v.view(), &params, &crate::Silent).unwrap();
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
        let c = cluster(v.view(), &params, &crate::Silent).unwrap();
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
        let c = cluster(v.view(), &params, &crate::Silent).unwrap();
        assert_eq!(c.k(), 3);
        assert!(agreement(&truth, &c.labels).ari > 0.99);
    }

    #[test]
    fn assignment_is_the_nearest_centroid() {
        let (v, _) = blobs(700, 6);
        let params = ClusterParams::default();
        let model = best_of_runs(v.view(), v.view(), 7, 2, 100, &params, &crate::Silent).unwrap();
        let labels = model.predict(&v);
        for (row, &label) in v.outer_iter().zip(labels.iter()) {
            let distance = |c: usize| {
                let d = &row - &model.centroids().row(c);
                d.dot(&d)
            };
            let nearest = (0..7).min_by(|&a, &b| distance(a).total_cmp(&distance(b))).unwrap();
            assert!(
                distance(label) <= distance(nearest) + 1e-5,
                "row assigned to {label}, nearest is {nearest}"
            );
        }
    }

    #[test]
    fn samples_and_refinement_find_the_blobs() {
        let (v, truth) = blobs(400, 7);
        // Small samples, so that choosing k, training and refining each see part of the data.
        let params = ClusterParams {
            sweep_sample: 300,
            train_sample: 200,
            silhouette_sample: 100,
            ..ClusterParams::default()
        };
        let c = cluster(v.view(), &params, &crate::Silent).unwrap();
        assert_eq!(c.k(), 3, "silhouettes {:?}", c.silhouettes);
        assert!(agreement(&truth, &c.labels).ari > 0.99);
    }

    #[test]
    fn rows_left_out_of_the_fit_are_assigned_but_do_not_shape_themes() {
        let (mut v, truth) = blobs(40, 8);
        // Twenty near-identical rows far from every blob: fitted, they would make a theme.
        let odd = normalize_rows(Array2::from_shape_fn((20, 16), |(i, j)| {
            if j == 15 {
                1.0
            } else {
                0.01 * (i % 3) as f32
            }
        }));
        v.append(Axis(0), odd.view()).unwrap();
        let fit_rows: Vec<usize> = (0..truth.len()).collect();
        let params = ClusterParams {
            k: Some(3),
            fit_rows: Some(fit_rows),
            ..ClusterParams::default()
        };
        let c = cluster(v.view(), &params, &crate::Silent).unwrap();
        assert_eq!(c.k(), 3);
        assert!(agreement(&truth, &c.labels[..truth.len()]).ari > 0.99);
        assert_eq!(c.labels.len(), v.nrows(), "the odd rows get a theme too");
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
            ClusterParams {
                fit_rows: Some(vec![3, 1]),
                ..ClusterParams::default()
            },
            ClusterParams {
                fit_rows: Some(vec![0]),
                ..ClusterParams::default()
            },
        ] {
            assert!(
                matches!(
                    cluster(v.view(), &params, &crate::Silent),
                    Err(Error::InvalidArgument(_))
                ),
                "{params:?}"
            );
        }
    }
}
