//! Passages on a plane for the map. t-SNE on a 50-component PCA (linfa) keeps themes apart on
//! the page, which two principal components alone cannot (they hold about a sixth of the
//! variance of sentence embeddings). Above `TSNE_MAX_POINTS`, where exact t-SNE would take
//! minutes, the map is a UMAP layout ([`super::umap`]): on 10,000 THUCNews headlines its
//! trustworthiness is 0.960 against PCA's 0.772 (benches/README.md). All are seeded: the same
//! data gives the same map.

use linfa::traits::{Fit, Predict};
use linfa::DatasetBase;
use linfa_reduction::Pca;
use ndarray::{Array2, ArrayView2, Axis};

use crate::error::{Error, Result};
use crate::progress::Progress;

/// Largest input laid out with t-SNE: exact t-SNE grows as the square of the points (14 s of a
/// 2,000-passage report, against 1 s for UMAP, which took it from 24.1 s to 10.8 s).
const TSNE_MAX_POINTS: usize = 1_000;
/// PCA components fed to t-SNE (the usual noise-reducing first step).
const TSNE_INPUT_DIMS: usize = 50;
const PERPLEXITY: f64 = 30.0;
const SEED: u64 = 42;

/// 2D coordinates of the rows scaled to [-1, 1], and how they were made.
pub fn to_2d(vectors: ArrayView2<f32>, progress: &dyn Progress) -> Result<(Array2<f32>, String)> {
    let n = vectors.nrows();
    if n < 4 {
        // Too few points for either method; lay them on a line.
        let xy = Array2::from_shape_fn((n, 2), |(i, j)| if j == 0 { i as f32 } else { 0.0 });
        return Ok((scale(xy), "none (fewer than 4 passages)".into()));
    }
    if n > TSNE_MAX_POINTS {
        // Cosine neighbours need unit rows. Mapped vectors are not quite; the others are, and
        // are not copied (at a million passages a copy is 3 GB).
        let is_unit = vectors.outer_iter().all(|row| (row.dot(&row) - 1.0).abs() < 1e-3);
        let unit = (!is_unit).then(|| crate::cluster::normalize_rows(vectors.to_owned()));
        let rows = match &unit {
            Some(unit) => unit.view(),
            None => vectors.view(),
        };
        let xy = super::umap::umap(rows, SEED, progress);
        return Ok((
            scale(xy),
            format!("UMAP ({} neighbours by cosine)", super::umap::NEIGHBOURS),
        ));
    }
    let data = vectors.mapv(f64::from);
    let dims = TSNE_INPUT_DIMS.min(n - 1).min(data.ncols());
    let (reduced, _) = pca(&data, dims)?;
    // Perplexity must stay below a third of the points.
    let perplexity = PERPLEXITY.min((n as f64 - 1.0) / 3.0 - 1e-6);
    let xy = super::tsne::tsne(reduced.view(), perplexity, SEED);
    Ok((
        scale(xy.mapv(|v| v as f32)),
        format!("t-SNE (perplexity {perplexity:.0}) on {dims} principal components"),
    ))
}

/// The first `dims` principal components of `data`, and the share of variance they keep
/// (measured on the projection: linfa's own ratio is relative to the kept components only).
fn pca(data: &Array2<f64>, dims: usize) -> Result<(Array2<f64>, f64)> {
    let model = Pca::params(dims)
        .fit(&DatasetBase::from(data.clone()))
        .map_err(|e| Error::InvalidArgument(format!("PCA failed: {e}")))?;
    let projected: Array2<f64> = model.predict(data);
    let total: f64 = data.var_axis(Axis(0), 1.0).sum();
    let kept: f64 = projected.var_axis(Axis(0), 1.0).sum();
    Ok((projected, kept / total.max(f64::EPSILON)))
}

/// Scales each column to [-1, 1] (a constant column goes to 0): the central 99.6% of the
/// points linearly to [-0.9, 0.9], the few beyond squeezed into the outer band, in order. A
/// layout's strays (a handful of near-duplicates pushed far off) would otherwise set the scale
/// and crowd every other point into a corner of the map.
fn scale(mut xy: Array2<f32>) -> Array2<f32> {
    const TAIL: f64 = 0.002;
    const INNER: f32 = 0.9;
    for mut column in xy.columns_mut() {
        let mut sorted = column.to_vec();
        let n = sorted.len();
        let (lo_at, hi_at) = ((TAIL * n as f64) as usize, n - 1 - (TAIL * n as f64) as usize);
        let lo = *sorted.select_nth_unstable_by(lo_at, f32::total_cmp).1;
        let hi = *sorted.select_nth_unstable_by(hi_at, f32::total_cmp).1;
        let span = hi - lo;
        column.mapv_inplace(|v| {
            if span <= 0.0 {
                return 0.0;
            }
            let t = 2.0 * (v - lo) / span - 1.0;
            if t.abs() <= 1.0 {
                INNER * t
            } else {
                t.signum() * (INNER + (1.0 - INNER) * (t.abs() - 1.0).tanh())
            }
        });
    }
    xy
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strays_do_not_set_the_scale() {
        // 999 points on [0, 1] and one far off.
        let mut xy = Array2::from_shape_fn((1000, 2), |(i, _)| i as f32 / 998.0);
        xy[[999, 0]] = 1e6;
        let scaled = scale(xy);
        let x = scaled.column(0);
        assert!(x.iter().all(|v| (-1.0..=1.0).contains(v)));
        // The bulk spans most of the axis, in order; the stray is at the edge.
        assert!(x[0] < -0.85 && x[997] > 0.85, "{} {}", x[0], x[997]);
        assert!(x.windows(2).into_iter().all(|w| w[0] <= w[1]));
        assert!(x[999] > 0.99);
        // A constant column goes to 0.
        assert!(scale(Array2::ones((5, 2))).iter().all(|&v| v == 0.0));
    }
}
