//! Stage 5: grouping passage vectors into themes.
//!
//! k-means (linfa, k-means++ initialisation, seeded) on unit vectors. The number of themes is
//! chosen by silhouette unless given; named seed vectors (`--theme`) start their own clusters.
//! Every passage gets a theme, a confidence, and an outlier flag: nothing is dropped.

mod kmeans;
mod map;
pub mod quality;
mod tree;

use ndarray::{Array2, ArrayView2};
use serde::Serialize;

use crate::error::{Error, Result};

pub use kmeans::{centroids, centroids_of, cluster, rows_marked, score_themes, theme_sums, Scores};
pub use map::PromptMap;
pub use tree::{grow, LevelChoice, Node, ThemeTree, TreeParams, MAX_LEAVES, PASSAGES_PER_LEAF};

/// Settings for [`cluster`]; `check` validates them against the data.
#[derive(Debug, Clone)]
pub struct ClusterParams {
    /// Number of themes, seeds included. `None`: chosen by silhouette.
    pub k: Option<usize>,
    /// Upper bound when choosing k.
    pub max_k: usize,
    /// Seed of the random generator: the same seed gives the same themes.
    pub seed: u64,
    /// k-means restarts of the final fit from different k-means++ starts; the lowest inertia wins.
    pub runs: usize,
    /// k-means restarts for each k tried while choosing k.
    pub sweep_runs: usize,
    /// Most passages clustered for each k tried while choosing k.
    pub sweep_sample: usize,
    /// Most Lloyd iterations of each run while choosing k: silhouette needs the partition's
    /// shape, not its last digits.
    pub sweep_iterations: u64,
    /// Most passages the final fit's restarts run on (at least k). faiss trains on 256 per
    /// centroid; more gives steadier themes, and the refinement below sees everything.
    pub train_sample: usize,
    /// Lloyd iterations over all fitted passages after the restarts.
    pub refine_iterations: u64,
    /// Most passages refined on when only some passages shape the themes (`fit_rows`): those
    /// are copied, so the copy stays bounded.
    pub refine_sample: usize,
    /// Most Lloyd iterations of one k-means run on a sample.
    pub max_iterations: u64,
    /// A run stops when its centroids move less than this (summed Euclidean norm).
    pub tolerance: f32,
    /// Named themes, in order: for each, the rows (passages) it starts from. Its first
    /// centroid is their mean, so it begins where its passages are.
    pub seeds: Vec<Vec<usize>>,
    /// The rows that shape the themes, sorted (`None`: all). The others (short lines, say) are
    /// only assigned to the nearest theme afterwards.
    pub fit_rows: Option<Vec<usize>>,
    /// Merge themes whose centroids have at least this cosine similarity.
    pub merge: Option<f32>,
    /// Most passages scored when computing silhouette (it is quadratic).
    pub silhouette_sample: usize,
    /// Softmax temperature turning centroid similarities into confidences.
    pub temperature: f32,
}

impl Default for ClusterParams {
    fn default() -> Self {
        Self {
            k: None,
            max_k: 30,
            seed: 42,
            runs: 10,
            sweep_runs: 2,
            sweep_sample: 5_000,
            sweep_iterations: 30,
            train_sample: 20_000,
            refine_iterations: 20,
            refine_sample: 200_000,
            max_iterations: 100,
            tolerance: 1e-4,
            seeds: Vec::new(),
            fit_rows: None,
            merge: None,
            silhouette_sample: 3000,
            temperature: 0.05,
        }
    }
}

impl ClusterParams {
    /// Checks the settings against `n` vectors.
    pub fn check(&self, n: usize) -> Result<()> {
        let seeds = self.seeds.len();
        if n < 2 {
            return Err(Error::InvalidArgument(format!(
                "{n} passage(s) cannot be clustered; 2 at least"
            )));
        }
        if self
            .seeds
            .iter()
            .any(|rows| rows.is_empty() || rows.iter().any(|&r| r >= n))
        {
            return Err(Error::InvalidArgument(format!(
                "a named theme's passages must be non-empty rows below {n}"
            )));
        }
        if let Some(k) = self.k {
            if k < 1 || k > n {
                return Err(Error::InvalidArgument(format!(
                    "k = {k} themes for {n} passages: choose 1 to {n}"
                )));
            }
            if k < seeds {
                return Err(Error::InvalidArgument(format!(
                    "k = {k} is fewer than the {seeds} named themes"
                )));
            }
        }
        if seeds > n {
            return Err(Error::InvalidArgument(format!("{seeds} named themes for {n} passages")));
        }
        if self.max_k < 2
            || self.runs == 0
            || self.sweep_runs == 0
            || self.silhouette_sample < 10
            || self.sweep_sample < 10
            || self.train_sample == 0
            || self.refine_sample == 0
            || self.max_iterations == 0
            || self.sweep_iterations == 0
        {
            return Err(Error::InvalidArgument(
                "max_k ≥ 2, runs ≥ 1, samples ≥ 10 and iterations ≥ 1 are required".into(),
            ));
        }
        if let Some(rows) = &self.fit_rows {
            let fitted = rows.len();
            if !rows.windows(2).all(|w| w[0] < w[1]) || rows.last().is_some_and(|&r| r >= n) {
                return Err(Error::InvalidArgument(format!(
                    "the rows to fit on must be sorted, distinct and below {n}"
                )));
            }
            if fitted < 2 || self.k.is_some_and(|k| k > fitted) || seeds > fitted {
                return Err(Error::InvalidArgument(format!(
                    "{fitted} passages to fit {} themes on",
                    self.k.unwrap_or(2).max(seeds)
                )));
            }
        }
        if let Some(t) = self.merge {
            if !(-1.0..=1.0).contains(&t) {
                return Err(Error::InvalidArgument(format!(
                    "merge threshold {t} is not a cosine similarity (-1 to 1)"
                )));
            }
        }
        if !(self.temperature > 0.0) {
            return Err(Error::InvalidArgument("temperature must be positive".into()));
        }
        Ok(())
    }
}

/// The result: one theme per passage, plus what describes each theme.
#[derive(Debug, Clone)]
pub struct Clustering {
    /// Theme of each passage (0..k).
    pub labels: Vec<usize>,
    /// Probability-like confidence of each passage's theme (softmax over centroid similarities).
    pub confidence: Vec<f32>,
    /// Cosine similarity of each passage to its theme's centroid.
    pub similarity: Vec<f32>,
    /// Passages far from their theme (similarity more than 2 standard deviations below the theme's mean).
    pub outlier: Vec<bool>,
    /// Unit centroid of each theme.
    pub centroids: Array2<f32>,
    /// For each theme, the seed it grew from (index into `ClusterParams::seeds`), if any.
    pub seed_of: Vec<Option<usize>>,
    /// Silhouette of each k tried when k was chosen automatically.
    pub silhouettes: Vec<(usize, f64)>,
    /// Where the time went, in seconds.
    pub timings: Timings,
}

/// Seconds spent in each step of [`cluster`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Timings {
    /// Choosing k (0 when it was given).
    pub choose_k: f64,
    /// The final k-means: restarts on a sample, then refinement.
    pub fit: f64,
    /// Assigning every passage to its nearest centroid.
    pub assign: f64,
    /// Scoring every passage (similarity, confidence, outliers) and ordering themes.
    pub describe: f64,
}

impl Clustering {
    pub fn k(&self) -> usize {
        self.centroids.nrows()
    }

    /// Passages of theme `t`, most central first.
    pub fn members(&self, t: usize) -> Vec<usize> {
        self.members_by_theme().swap_remove(t)
    }

    /// The passages of every theme, most central first, in one pass over the passages.
    pub fn members_by_theme(&self) -> Vec<Vec<usize>> {
        let mut members = vec![Vec::new(); self.k()];
        for (row, &t) in self.labels.iter().enumerate() {
            members[t].push(row);
        }
        for rows in &mut members {
            rows.sort_by(|&a, &b| self.similarity[b].total_cmp(&self.similarity[a]).then(a.cmp(&b)));
        }
        members
    }
}

/// Scales each row to unit length (zero rows stay zero).
pub fn normalize_rows(mut m: Array2<f32>) -> Array2<f32> {
    for mut row in m.outer_iter_mut() {
        let norm = row.dot(&row).sqrt();
        if norm > 0.0 {
            row /= norm;
        }
    }
    m
}

/// The mean of `rows` of `vectors`, scaled to unit length.
pub fn centroid_of(vectors: ArrayView2<f32>, rows: &[usize]) -> ndarray::Array1<f32> {
    let mut sum = ndarray::Array1::<f32>::zeros(vectors.ncols());
    for &r in rows {
        sum += &vectors.row(r);
    }
    let norm = sum.dot(&sum).sqrt();
    if norm > 0.0 {
        sum /= norm;
    }
    sum
}
