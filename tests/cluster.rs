//! Theme clustering at a size where every sampled step runs (k chosen on a sample, restarts on
//! a sample, refinement and assignment over everything), checked against the known clusters.

use ndarray::Axis;
use themap::cluster::{cluster, quality, ClusterParams};
use themap::Silent;

use crate::common::synthetic::Clustered;

/// 30,000 passages in 12 clusters: more than the k sweep's sample (5,000) and the restarts'
/// (20,000), so both samples and the refinement over all rows are used.
fn data() -> (ndarray::Array2<f32>, Vec<usize>) {
    let mut shape = Clustered::new(96, 11);
    shape.clusters = 12;
    shape.spread = 0.6;
    shape.labelled(30_000)
}

#[test]
fn large_inputs_are_clustered_through_samples_and_match_the_truth() {
    let (vectors, truth) = data();
    let params = ClusterParams::default();
    assert!(vectors.nrows() > params.sweep_sample && vectors.nrows() > params.train_sample);
    let found = cluster(vectors.view(), &params, &Silent).unwrap();
    let agreement = quality::agreement(&truth, &found.labels);
    assert!(agreement.nmi > 0.9, "{agreement:?} with k = {}", found.k());
    // Clusters drawn with uneven weights: the smallest may not stand apart from a neighbour.
    assert!((8..=16).contains(&found.k()), "k = {} for 12 clusters", found.k());

    // At k = 12 the clusters come back almost exactly.
    let twelve = cluster(
        vectors.view(),
        &ClusterParams {
            k: Some(12),
            ..params.clone()
        },
        &Silent,
    )
    .unwrap();
    assert!(quality::agreement(&truth, &twelve.labels).ari > 0.95);

    // Every passage is scored against its theme's centroid.
    for (row, (&label, &similarity)) in vectors
        .outer_iter()
        .zip(twelve.labels.iter().zip(&twelve.similarity))
        .step_by(997)
    {
        let exact = row.dot(&twelve.centroids.index_axis(Axis(0), label));
        assert!((exact - similarity).abs() < 1e-4);
    }

    // The same seed gives the same themes, on one thread as on all of them.
    let one_thread = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let again = one_thread.install(|| cluster(vectors.view(), &params, &Silent).unwrap());
    assert_eq!(found.labels, again.labels);
    assert_eq!(found.centroids, again.centroids);
    assert_eq!(found.confidence, again.confidence);
}
