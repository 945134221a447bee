//! The candle encoder against the reference implementation's vectors (sentence-transformers, f32).

use std::collections::BTreeMap;

use serde::Deserialize;
use themap::embed::{Embedder, Prompt};
use themap::Silent;

use crate::common::{cosine, golden_path, model};

#[derive(Deserialize)]
struct Golden {
    texts: BTreeMap<String, String>,
    token_ids: BTreeMap<String, Vec<u32>>,
    vectors: BTreeMap<String, BTreeMap<String, Vec<f32>>>,
}

fn golden() -> Golden {
    let path = golden_path();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("golden file parses")
}

const VARIANTS: [(&str, Prompt); 4] = [
    ("none", Prompt::None),
    ("document", Prompt::Document),
    ("query", Prompt::Query),
    ("clustering", Prompt::Clustering),
];

const MIN_COSINE: f64 = 0.9999;

#[test]
fn token_ids_match_reference() {
    let golden = golden();
    for (name, text) in &golden.texts {
        let ids = model().tokenize(&[text], Prompt::None).unwrap().remove(0);
        assert_eq!(&ids, &golden.token_ids[name], "token ids differ for {name}");
    }
}

/// Each text alone and all texts in one padded batch reproduce the reference vectors.
#[test]
fn vectors_match_reference_single_and_batched() {
    let golden = golden();
    let names: Vec<&String> = golden.texts.keys().collect();
    let texts: Vec<&str> = golden.texts.values().map(String::as_str).collect();
    let (mut min_single, mut min_batched) = (f64::MAX, f64::MAX);
    for (variant, prompt) in VARIANTS {
        let batched = model().embed(&texts, prompt, &Silent).unwrap();
        for (i, name) in names.iter().enumerate() {
            let reference = &golden.vectors[variant][*name];
            let single = model().embed(&[texts[i]], prompt, &Silent).unwrap();
            let single_cos = cosine(single.row(0).as_slice().unwrap(), reference);
            let batched_cos = cosine(batched.row(i).as_slice().unwrap(), reference);
            (min_single, min_batched) = (min_single.min(single_cos), min_batched.min(batched_cos));
            assert!(
                single_cos >= MIN_COSINE,
                "{variant}/{name}: single cosine {single_cos:.6}"
            );
            assert!(
                batched_cos >= MIN_COSINE,
                "{variant}/{name}: batched cosine {batched_cos:.6}"
            );
        }
    }
    eprintln!(
        "largest 1 - cosine to the reference: {:.1e} single, {:.1e} batched",
        1.0 - min_single,
        1.0 - min_batched
    );
}

/// In bf16 on a GPU the vectors stay within cosine 0.999 of the reference. Skips where this
/// build or machine has no CUDA device (CI never has one).
#[test]
fn bf16_on_a_gpu_stays_close_to_reference() {
    use themap::embed::{DeviceChoice, EmbedOptions, EmbeddingModel};
    let options = EmbedOptions {
        device: DeviceChoice::Cuda(0),
        ..EmbedOptions::default()
    };
    let gpu = match EmbeddingModel::load(&crate::common::model_dir(), &options) {
        Ok(model) => model,
        Err(themap::Error::DeviceUnavailable(why)) => {
            eprintln!("skipped: {why}");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let golden = golden();
    let texts: Vec<&str> = golden.texts.values().map(String::as_str).collect();
    let mut worst = f64::MAX;
    for (variant, prompt) in VARIANTS {
        let vectors = gpu.embed(&texts, prompt, &Silent).unwrap();
        for (i, name) in golden.texts.keys().enumerate() {
            let cos = cosine(vectors.row(i).as_slice().unwrap(), &golden.vectors[variant][name]);
            assert!(cos >= 0.999, "{variant}/{name}: bf16 cosine {cos:.6}");
            worst = worst.min(cos);
        }
    }
    eprintln!(
        "bf16 on the GPU: largest 1 - cosine to the reference {:.1e}",
        1.0 - worst
    );
}
