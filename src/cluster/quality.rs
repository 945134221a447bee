//! How good a partition is: silhouette (no labels needed) and agreement with known labels
//! (NMI, ARI, V-measure), computed from the contingency table.

use std::collections::HashMap;

use ndarray::ArrayView2;

/// Mean silhouette with cosine distance over unit rows. O(n²): callers pass a sample.
pub fn silhouette(vectors: ArrayView2<f32>, labels: &[usize], k: usize) -> f64 {
    silhouette_of(vectors.dot(&vectors.t()).view(), labels, k).mean
}

/// A mean silhouette over sampled rows, and how precisely the sample pins it down.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Silhouette {
    pub mean: f64,
    /// Standard error of the mean: the rows' standard deviation over √rows.
    pub standard_error: f64,
}

/// [`silhouette`] from the rows' cosine similarities (`n × n`), so that several partitions of
/// the same sample are scored without recomputing them; with its standard error.
pub fn silhouette_of(similarity: ArrayView2<f32>, labels: &[usize], k: usize) -> Silhouette {
    let n = labels.len();
    if n < 2 || k < 2 {
        return Silhouette {
            mean: 0.0,
            standard_error: 0.0,
        };
    }
    let sizes = labels.iter().fold(vec![0usize; k], |mut s, &l| {
        s[l] += 1;
        s
    });
    let scores: Vec<f64> = (0..n)
        .map(|i| {
            let mut sum = vec![0.0f64; k];
            for (j, &l) in labels.iter().enumerate() {
                if j != i {
                    sum[l] += 1.0 - similarity[[i, j]] as f64;
                }
            }
            let own = labels[i];
            if sizes[own] <= 1 {
                return 0.0; // a singleton's silhouette is 0 by convention
            }
            let a = sum[own] / (sizes[own] - 1) as f64;
            let b = (0..k)
                .filter(|&c| c != own && sizes[c] > 0)
                .map(|c| sum[c] / sizes[c] as f64)
                .fold(f64::INFINITY, f64::min);
            if b.is_finite() {
                (b - a) / a.max(b)
            } else {
                0.0
            }
        })
        .collect();
    let mean = scores.iter().sum::<f64>() / n as f64;
    let variance = scores.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    Silhouette {
        mean,
        standard_error: (variance / n as f64).sqrt(),
    }
}

/// Agreement between a clustering and reference labels.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Agreement {
    /// Normalised mutual information (arithmetic mean normalisation, as scikit-learn).
    pub nmi: f64,
    /// Adjusted Rand index.
    pub ari: f64,
    pub homogeneity: f64,
    pub completeness: f64,
    /// Harmonic mean of homogeneity and completeness (equals NMI with arithmetic normalisation).
    pub v_measure: f64,
}

/// Compares predicted clusters with true labels (any hashable ids).
pub fn agreement<T: std::hash::Hash + Eq, U: std::hash::Hash + Eq>(truth: &[T], predicted: &[U]) -> Agreement {
    assert_eq!(truth.len(), predicted.len(), "one prediction per label");
    let n = truth.len() as f64;
    let mut table: HashMap<(usize, usize), f64> = HashMap::new();
    let truth_ids = ids(truth);
    let pred_ids = ids(predicted);
    for (&t, &p) in truth_ids.iter().zip(&pred_ids) {
        *table.entry((t, p)).or_default() += 1.0;
    }
    let rows = marginal(&truth_ids);
    let cols = marginal(&pred_ids);

    let entropy = |counts: &[f64]| -> f64 {
        counts
            .iter()
            .filter(|&&c| c > 0.0)
            .map(|&c| -(c / n) * (c / n).ln())
            .sum()
    };
    let (h_true, h_pred) = (entropy(&rows), entropy(&cols));
    let mutual: f64 = table
        .iter()
        .map(|(&(t, p), &c)| (c / n) * ((c * n) / (rows[t] * cols[p])).ln())
        .sum();
    let homogeneity = if h_true == 0.0 { 1.0 } else { mutual / h_true };
    let completeness = if h_pred == 0.0 { 1.0 } else { mutual / h_pred };
    let v_measure = if homogeneity + completeness == 0.0 {
        0.0
    } else {
        2.0 * homogeneity * completeness / (homogeneity + completeness)
    };
    let nmi = if h_true + h_pred == 0.0 {
        1.0
    } else {
        mutual / ((h_true + h_pred) / 2.0)
    };

    let pairs = |x: f64| x * (x - 1.0) / 2.0;
    let index: f64 = table.values().map(|&c| pairs(c)).sum();
    let (sum_rows, sum_cols) = (
        rows.iter().map(|&c| pairs(c)).sum::<f64>(),
        cols.iter().map(|&c| pairs(c)).sum::<f64>(),
    );
    let expected = sum_rows * sum_cols / pairs(n);
    let max_index = (sum_rows + sum_cols) / 2.0;
    let ari = if max_index == expected {
        1.0
    } else {
        (index - expected) / (max_index - expected)
    };

    Agreement {
        nmi,
        ari,
        homogeneity,
        completeness,
        v_measure,
    }
}

/// Dense ids 0..m for arbitrary values, in order of first appearance.
fn ids<T: std::hash::Hash + Eq>(values: &[T]) -> Vec<usize> {
    let mut seen: HashMap<&T, usize> = HashMap::new();
    values
        .iter()
        .map(|v| {
            let next = seen.len();
            *seen.entry(v).or_insert(next)
        })
        .collect()
}

fn marginal(ids: &[usize]) -> Vec<f64> {
    let mut counts = vec![0.0; ids.iter().max().map_or(0, |m| m + 1)];
    for &i in ids {
        counts[i] += 1.0;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    /// Values computed by scikit-learn 1.9.1 (normalized_mutual_info_score, adjusted_rand_score,
    /// homogeneity_completeness_v_measure) on the same labels.
    #[test]
    fn matches_scikit_learn() {
        let truth = [0, 0, 0, 1, 1, 1, 2, 2, 2];
        let pred = [0, 0, 1, 1, 1, 2, 2, 2, 2];
        let a = agreement(&truth, &pred);
        assert!((a.nmi - 0.589_509_827_447_305).abs() < 1e-9, "{a:?}");
        assert!((a.ari - 0.357_142_857_142_857).abs() < 1e-9, "{a:?}");
        assert!((a.homogeneity - 0.579_380_164_285_695).abs() < 1e-9, "{a:?}");
        assert!((a.completeness - 0.6).abs() < 1e-9, "{a:?}");
        assert!((a.v_measure - a.nmi).abs() < 1e-12);
    }

    #[test]
    fn perfect_and_relabelled_partitions_score_one() {
        let a = agreement(&["a", "a", "b", "b"], &[7, 7, 3, 3]);
        assert!((a.nmi - 1.0).abs() < 1e-12 && (a.ari - 1.0).abs() < 1e-12);
    }

    #[test]
    fn silhouette_separates_good_from_bad() {
        let v = crate::cluster::normalize_rows(array![[1.0f32, 0.05], [1.0, -0.05], [0.05, 1.0], [-0.05, 1.0]]);
        assert!(silhouette(v.view(), &[0, 0, 1, 1], 2) > 0.9);
        assert!(silhouette(v.view(), &[0, 1, 0, 1], 2) < 0.0);
    }
}
