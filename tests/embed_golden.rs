//! The candle encoder against the reference implementation's vectors (sentence-transformers, f32).

use std::collections::BTreeMap;

use serde::Deserialize;
use themap::embed::kernels::bf16_supported;
use themap::embed::probe::available_kernels;
use themap::embed::{DeviceChoice, EmbedOptions, Embedder, EmbeddingModel, Kernel, Prompt};
use themap::Silent;

use crate::common::{cosine, golden_path, tokenizer};

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

#[test]
fn token_ids_match_reference() {
    let golden = golden();
    for (name, text) in &golden.texts {
        let ids = tokenizer().tokenize(&[text], Prompt::None).unwrap().remove(0);
        assert_eq!(&ids, &golden.token_ids[name], "token ids differ for {name}");
    }
}

/// Each text alone and all texts in one padded batch reproduce the reference vectors, for every
/// prompt; returns the largest 1 - cosine seen.
fn check_against_reference(model: &EmbeddingModel, min_cosine: f64, what: &str) -> f64 {
    let golden = golden();
    let names: Vec<&String> = golden.texts.keys().collect();
    let texts: Vec<&str> = golden.texts.values().map(String::as_str).collect();
    let mut worst = f64::MAX;
    for (variant, prompt) in VARIANTS {
        let batched = model.embed(&texts, prompt, &Silent).unwrap();
        for (i, name) in names.iter().enumerate() {
            let reference = &golden.vectors[variant][*name];
            let single = model.embed(&[texts[i]], prompt, &Silent).unwrap();
            for (how, vector) in [("single", single.row(0)), ("batched", batched.row(i))] {
                let cos = cosine(vector.as_slice().unwrap(), reference);
                assert!(cos >= min_cosine, "{what}, {variant}/{name}: {how} cosine {cos:.6}");
                worst = worst.min(cos);
            }
        }
    }
    eprintln!("{what}: largest 1 - cosine to the reference {:.1e}", 1.0 - worst);
    1.0 - worst
}

/// The model on the CPU with `kernel`.
fn on_the_cpu(kernel: Kernel) -> EmbeddingModel {
    let options = EmbedOptions {
        kernel: Some(kernel),
        ..EmbedOptions::default()
    };
    EmbeddingModel::load(&crate::common::model_dir(), &options).unwrap()
}

/// Both f32 kernels reproduce the reference: candle's, and themap's own where the CPU has
/// AVX-512 (the timing chooses between them).
#[test]
fn f32_matches_reference() {
    check_against_reference(&on_the_cpu(Kernel::Candle), 0.9999, "f32 on the CPU (candle)");
    if !available_kernels().contains(&Kernel::CpuF32) {
        eprintln!("themap's f32 kernel skipped: this CPU lacks AVX-512");
        return;
    }
    check_against_reference(&on_the_cpu(Kernel::CpuF32), 0.9999, "f32 on the CPU (themap's kernel)");
}

/// bf16 matrix products on the CPU (AVX-512 BF16) stay within cosine 0.999 of the reference.
/// Skips where the CPU lacks the instructions.
#[test]
fn bf16_on_the_cpu_stays_close_to_reference() {
    if !bf16_supported() {
        eprintln!("skipped: this CPU lacks AVX512_BF16, which --dtype bf16 on the CPU needs");
        return;
    }
    let bf16 = on_the_cpu(Kernel::CpuBf16);
    let error = check_against_reference(&bf16, 0.999, "bf16 on the CPU");
    // Rounding to bf16 must show: a kernel that silently ran in f32 would pass the bar above.
    assert!(error > 1e-6, "bf16 vectors as close as f32 ones: {error:.1e}");
}

/// In bf16 on a GPU the vectors stay within cosine 0.999 of the reference. Skips where this
/// build or machine has no CUDA device (CI never has one).
#[test]
fn bf16_on_a_gpu_stays_close_to_reference() {
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
    check_against_reference(&gpu, 0.999, "bf16 on the GPU");
}
