//! Seeded "sentence-embedding-like" unit vectors for tests and benchmarks: a mixture of
//! anisotropic Gaussian clusters of uneven size, projected onto the unit sphere, so that
//! neighbourhoods are dense in places and sparse in others, as with real passages. Each row's
//! cluster is known, so clusterings can be scored against it.
//!
//! Shared by the integration tests (`mod common`) and the benches (`#[path]`), each of which
//! uses part of it.
#![allow(dead_code)]

use std::path::PathBuf;

use ndarray::{Array2, Axis};
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use rand_xoshiro::Xoshiro256PlusPlus;
use themap::corpus::{Metadata, Passage};
use themap::index::{BuildSettings, DocumentRecord, Index, ModelInfo, PassageRecord};

/// Shape of the generated data.
#[derive(Debug, Clone, Copy)]
pub struct Clustered {
    pub dims: usize,
    pub clusters: usize,
    /// Noise norm relative to the (unit) cluster centre before normalisation.
    pub spread: f32,
    pub seed: u64,
}

impl Clustered {
    pub fn new(dims: usize, seed: u64) -> Self {
        Self {
            dims,
            clusters: 200,
            spread: 1.0,
            seed,
        }
    }

    /// `base` data rows and `queries` query rows from the same mixture (different draws).
    pub fn generate(&self, base: usize, queries: usize) -> (Array2<f32>, Array2<f32>) {
        let mut mixture = Mixture::new(self);
        (mixture.draw(base).0, mixture.draw(queries).0)
    }

    /// `rows` rows and the cluster each was drawn from.
    pub fn labelled(&self, rows: usize) -> (Array2<f32>, Vec<usize>) {
        Mixture::new(self).draw(rows)
    }
}

/// The mixture's centres, per-dimension spreads and weights, and the generator drawing from it.
struct Mixture {
    rng: Xoshiro256PlusPlus,
    normal: Normal<f32>,
    centres: Array2<f32>,
    scales: Array2<f32>,
    cumulative: Vec<f32>,
}

impl Mixture {
    fn new(shape: &Clustered) -> Self {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(shape.seed);
        let normal = Normal::new(0f32, 1.0).expect("valid normal");
        let d = shape.dims;
        let clusters = shape.clusters.max(1);
        let mut centres = Array2::<f32>::zeros((clusters, d));
        // Per-cluster, per-dimension noise scales: some directions vary much more than others.
        let mut scales = Array2::<f32>::zeros((clusters, d));
        for c in 0..clusters {
            for i in 0..d {
                centres[[c, i]] = normal.sample(&mut rng);
                scales[[c, i]] = (0.7 * normal.sample(&mut rng)).exp();
            }
            let norm = centres.row(c).dot(&centres.row(c)).sqrt();
            centres.row_mut(c).mapv_inplace(|v| v / norm);
            let scale_norm = scales.row(c).dot(&scales.row(c)).sqrt();
            let factor = shape.spread / scale_norm;
            scales.row_mut(c).mapv_inplace(|v| v * factor);
        }
        // Uneven cluster sizes: weights drawn from an exponential distribution.
        let weights: Vec<f32> = (0..clusters).map(|_| -rng.gen::<f32>().max(1e-6).ln()).collect();
        let total: f32 = weights.iter().sum();
        let cumulative: Vec<f32> = weights
            .iter()
            .scan(0.0, |acc, w| {
                *acc += w / total;
                Some(*acc)
            })
            .collect();
        Self {
            rng,
            normal,
            centres,
            scales,
            cumulative,
        }
    }

    fn draw(&mut self, rows: usize) -> (Array2<f32>, Vec<usize>) {
        let (clusters, d) = self.centres.dim();
        let mut out = Array2::<f32>::zeros((rows, d));
        let mut labels = Vec::with_capacity(rows);
        for mut row in out.outer_iter_mut() {
            let u: f32 = self.rng.gen();
            let c = self.cumulative.partition_point(|&x| x < u).min(clusters - 1);
            for i in 0..d {
                row[i] = self.centres[[c, i]] + self.scales[[c, i]] * self.normal.sample(&mut self.rng);
            }
            let norm = row.dot(&row).sqrt();
            row.mapv_inplace(|v| v / norm);
            labels.push(c);
        }
        (out, labels)
    }
}

/// Passages per document of [`index`].
const PER_DOCUMENT: usize = 20;
/// Words in each cluster's own vocabulary, and shared by all.
const OWN_WORDS: usize = 40;
const SHARED_WORDS: usize = 300;

/// An index of `rows` labelled rows of `shape`: Chinese-like passages whose words come from
/// their cluster's vocabulary, grouped into dated documents of one cluster each, and each row's
/// cluster in index order. Stamped with `model`; its vectors stand in for that model's.
pub fn index(shape: &Clustered, rows: usize, model: ModelInfo) -> (Index, Vec<usize>) {
    let (vectors, labels) = shape.labelled(rows);
    let (clusters, seed) = (shape.clusters, shape.seed);
    // Documents hold passages of one cluster: order the rows by cluster, then cut.
    let mut order: Vec<usize> = (0..labels.len()).collect();
    order.sort_by_key(|&row| (labels[row], row));
    let vectors = vectors.select(Axis(0), &order);
    let labels: Vec<usize> = order.iter().map(|&row| labels[row]).collect();

    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0x7e47);
    let mut word = || -> String {
        (0..2)
            .map(|_| char::from_u32(rng.gen_range(0x4E00..0x9FA5)).unwrap())
            .collect()
    };
    let shared: Vec<String> = (0..SHARED_WORDS).map(|_| word()).collect();
    let own: Vec<Vec<String>> = (0..clusters)
        .map(|_| (0..OWN_WORDS).map(|_| word()).collect())
        .collect();

    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0x7e48);
    let mut passages = Vec::with_capacity(labels.len());
    let mut documents = Vec::new();
    for (d, rows) in labels.chunks(PER_DOCUMENT).enumerate() {
        let doc_id = format!("doc{d:07}");
        for (i, &label) in rows.iter().enumerate() {
            let words = rng.gen_range(20..30);
            let text: String = (0..words)
                .map(|_| {
                    if rng.gen_bool(0.6) {
                        // Zipf-like: low ranks far more often.
                        let rank = (rng.gen::<f64>().powi(3) * OWN_WORDS as f64) as usize;
                        own[label][rank].as_str()
                    } else {
                        shared[rng.gen_range(0..SHARED_WORDS)].as_str()
                    }
                })
                .collect::<Vec<_>>()
                .join("");
            let chars = text.chars().count();
            passages.push(PassageRecord {
                hash: themap::hash::sha256_hex(text.as_bytes()),
                passage: Passage {
                    id: format!("{doc_id}#{}", i + 1),
                    doc_id: doc_id.clone(),
                    ordinal: i as u32 + 1,
                    section: None,
                    char_start: i * 60,
                    char_end: i * 60 + chars,
                    line: i + 1,
                    text,
                },
            });
        }
        // Two years of dates, one a day.
        let day = d % 730;
        documents.push(DocumentRecord {
            id: doc_id.clone(),
            path: PathBuf::from(format!("synthetic/{doc_id}.txt")),
            encoding: "UTF-8".into(),
            meta: Metadata {
                title: Some(format!("synthetic document {d}")),
                date: Some(format!(
                    "{}-{:02}-{:02}",
                    2024 + day / 365,
                    (day % 365) / 31 + 1,
                    day % 28 + 1
                )),
                ..Metadata::default()
            },
            passages: rows.len(),
        });
    }

    let index = Index {
        model,
        settings: BuildSettings {
            sources: vec![PathBuf::from("synthetic")],
            max_tokens: 256,
            min_tokens: 51,
        },
        documents,
        passages,
        vectors,
        clustering_vectors: None,
        clustering_sample: None,
        graph: None,
        generation: None,
    };
    (index, labels)
}
