//! Passages on a plane: principal component analysis (linfa), seeded, so the map is stable.

use linfa::traits::{Fit, Predict};
use linfa_reduction::Pca;
use ndarray::{Array2, ArrayView2};

use crate::error::{Error, Result};

/// The first two principal components of the rows, scaled to [-1, 1], and a description.
pub fn to_2d(vectors: ArrayView2<f32>) -> Result<(Array2<f32>, String)> {
    let n = vectors.nrows();
    if n < 3 {
        // Too few points for PCA; lay them on a line.
        let xy = Array2::from_shape_fn((n, 2), |(i, j)| if j == 0 { i as f32 } else { 0.0 });
        return Ok((scale(xy), "none (fewer than 3 passages)".into()));
    }
    let data = vectors.mapv(f64::from);
    let pca = Pca::params(2)
        .fit(&linfa::DatasetBase::from(data.clone()))
        .map_err(|e| Error::InvalidArgument(format!("PCA failed: {e}")))?;
    let explained = pca.explained_variance_ratio();
    let xy: Array2<f64> = pca.predict(&data);
    let description = format!(
        "PCA, first two components ({:.1}% of variance)",
        100.0 * explained.iter().take(2).sum::<f64>()
    );
    Ok((scale(xy.mapv(|v| v as f32)), description))
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
