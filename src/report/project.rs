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

/// Largest input laid out with t-SNE.
const TSNE_MAX_POINTS: usize = 3_000;
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
        // Cosine neighbours need unit rows (mapped vectors are not quite).
        let unit = crate::cluster::normalize_rows(vectors.to_owned());
        let xy = super::umap::umap(unit.view(), SEED, progress);
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

/// Scales each column to [-1, 1] (a constant column goes to 0).
fn scale(mut xy: Array2<f32>) -> Array2<f32> {
    for mut column in xy.columns_mut() {
        let (lo, hi) = column.fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
        let span = hi - lo;
        column.mapv_inplace(|v| if span > 0.0 { 2.0 * (v - lo) / span - 1.0 } else { 0.0 });
    }
    xy
}
