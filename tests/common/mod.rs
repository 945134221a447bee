//! Shared fixtures: where the model and the golden vectors live.

pub mod synthetic;

use std::path::PathBuf;
use std::sync::OnceLock;

use themap::embed::ModelTokenizer;

/// The model directory: `THEMAP_MODEL` if set, else the cache the fetch script fills.
pub fn model_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("THEMAP_MODEL") {
        return dir.into();
    }
    let cache = std::env::var_os("THEMAP_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/themap"));
    cache.join("models/embeddinggemma-300m")
}

/// The model's tokenizer alone, opened once for all tests in this binary.
pub fn tokenizer() -> &'static ModelTokenizer {
    static TOKENIZER: OnceLock<ModelTokenizer> = OnceLock::new();
    TOKENIZER.get_or_init(|| {
        ModelTokenizer::open(&model_dir(), None)
            .unwrap_or_else(|e| panic!("{e} (the test command runs scripts/fetch-model.sh first)"))
    })
}

/// `../shared/golden/` next to the repository, or `THEMAP_GOLDEN`.
pub fn golden_path() -> PathBuf {
    std::env::var_os("THEMAP_GOLDEN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/golden/embeddinggemma-300m.json"))
}

pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}
