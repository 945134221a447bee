//! Stage 3: text to vectors with a sentence-embedding model run by candle.
//!
//! Candle types stay inside this module; callers get `ndarray::Array2<f32>` rows that are
//! L2-normalised, so cosine similarity is a dot product everywhere downstream.

mod gemma;
mod model_dir;

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Linear, VarBuilder};
use ndarray::Array2;
use serde::{Deserialize, Serialize};
use tokenizers::Tokenizer;

pub use model_dir::{ModelDir, Pooling};

use crate::error::{Error, Result};
use crate::progress::Progress;
use gemma::GemmaEncoder;

/// Which instruction prefix the model sees before a text (from `config_sentence_transformers.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Prompt {
    /// Passages to be searched: `title: none | text: `.
    Document,
    /// Search queries: `task: search result | query: `.
    Query,
    /// Texts to be grouped: `task: clustering | query: `.
    Clustering,
    /// No prefix.
    None,
}

impl Prompt {
    /// The prompt's name in `config_sentence_transformers.json`.
    fn config_name(self) -> Option<&'static str> {
        match self {
            Prompt::Document => Some("document"),
            Prompt::Query => Some("query"),
            Prompt::Clustering => Some("Clustering"),
            Prompt::None => None,
        }
    }
}

/// Turns texts into unit-length vectors. The seam between the model and everything else.
pub trait Embedder {
    /// Length of the vectors `embed` returns.
    fn dim(&self) -> usize;
    /// One row per text, in input order, L2-normalised.
    fn embed(&self, texts: &[&str], prompt: Prompt, progress: &dyn Progress) -> Result<Array2<f32>>;
}

/// How texts are grouped into forward passes.
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    /// Most texts in one forward pass.
    pub max_texts: usize,
    /// Most tokens in one forward pass, counting padding.
    pub max_tokens: usize,
}

impl Default for BatchLimits {
    fn default() -> Self {
        // Past a few thousand tokens a CPU batch gains nothing and attention memory grows.
        Self {
            max_texts: 32,
            max_tokens: 4096,
        }
    }
}

/// Options for loading a model.
#[derive(Debug, Clone, Default)]
pub struct EmbedOptions {
    /// Keep only the first `dims` components (Matryoshka), renormalised. `None`: the full size.
    pub dims: Option<usize>,
    pub batch: BatchLimits,
}

/// The truncated sizes Matryoshka-trained models such as EmbeddingGemma support.
const MATRYOSHKA_DIMS: [usize; 3] = [512, 256, 128];

/// A sentence-transformers EmbeddingGemma model loaded for inference.
pub struct EmbeddingModel {
    model: ModelDir,
    tokenizer: Tokenizer,
    encoder: GemmaEncoder,
    dense: Vec<Linear>,
    device: Device,
    dims: usize,
    batch: BatchLimits,
    checksum: String,
}

impl EmbeddingModel {
    /// Loads the model in `dir` onto the CPU.
    pub fn load(dir: &Path, options: &EmbedOptions) -> Result<Self> {
        let model = ModelDir::open(dir)?;
        let full = model.dim();
        let dims = options.dims.unwrap_or(full);
        if dims != full && !MATRYOSHKA_DIMS.contains(&dims) || dims > full {
            let mut allowed = vec![full];
            allowed.extend(MATRYOSHKA_DIMS.iter().filter(|&&d| d < full));
            return Err(Error::InvalidDims { dims, allowed });
        }
        if options.batch.max_texts == 0 || options.batch.max_tokens == 0 {
            return Err(Error::InvalidArgument("batch limits must be positive".into()));
        }
        let tokenizer = Tokenizer::from_file(&model.tokenizer).map_err(|source| Error::Tokenizer {
            path: model.tokenizer.clone(),
            source,
        })?;
        let device = Device::Cpu;
        let dtype = DType::F32;
        let weights_error = |path: &PathBuf| {
            let path = path.clone();
            move |e: candle_core::Error| Error::ModelInvalid {
                path,
                reason: e.to_string(),
            }
        };
        // SAFETY: the weights file is memory-mapped read-only; themap never writes to it, and the
        // fetch script replaces model directories by rename, never in place.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[&model.weights], dtype, &device) }
            .map_err(weights_error(&model.weights))?;
        let encoder = GemmaEncoder::load(&model.encoder, vb).map_err(weights_error(&model.weights))?;
        let dense = model
            .dense
            .iter()
            .map(|d| {
                let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[&d.weights], dtype, &device) }
                    .map_err(weights_error(&d.weights))?;
                let layer = if d.bias {
                    candle_nn::linear(d.in_features, d.out_features, vb.pp("linear"))
                } else {
                    candle_nn::linear_no_bias(d.in_features, d.out_features, vb.pp("linear"))
                };
                layer.map_err(weights_error(&d.weights))
            })
            .collect::<Result<Vec<_>>>()?;
        let checksum = weights_checksum(&model)?;
        tracing::info!(model = %model.dir.display(), dims, device = ?device, "embedding model loaded");
        Ok(Self {
            model,
            tokenizer,
            encoder,
            dense,
            device,
            dims,
            batch: options.batch,
            checksum,
        })
    }

    /// The model directory's name, e.g. `embeddinggemma-300m`.
    pub fn name(&self) -> String {
        self.model.name()
    }

    /// sha256 of the model weights, so an index can tell which model built it.
    pub fn checksum(&self) -> &str {
        &self.checksum
    }

    /// The prompt text the model puts before texts of this kind.
    pub fn prompt_text(&self, prompt: Prompt) -> Result<&str> {
        match prompt.config_name() {
            None => Ok(""),
            Some(name) => self
                .model
                .prompts
                .get(name)
                .map(String::as_str)
                .ok_or_else(|| Error::ModelInvalid {
                    path: self.model.dir.join("config_sentence_transformers.json"),
                    reason: format!("no prompt named {name:?}"),
                }),
        }
    }

    /// Token ids as the model sees them: prompt + text, with special tokens, cut to the
    /// model's maximum length (the final special token is kept).
    pub fn tokenize(&self, texts: &[&str], prompt: Prompt) -> Result<Vec<Vec<u32>>> {
        let prefix = self.prompt_text(prompt)?;
        let inputs: Vec<String> = texts.iter().map(|t| format!("{prefix}{t}")).collect();
        let encodings = self.tokenizer.encode_batch(inputs, true).map_err(Error::Tokenize)?;
        let max = self.model.max_seq_len;
        Ok(encodings
            .into_iter()
            .map(|e| {
                let mut ids = e.get_ids().to_vec();
                if ids.len() > max {
                    let last = ids[ids.len() - 1];
                    ids.truncate(max - 1);
                    ids.push(last);
                }
                ids
            })
            .collect())
    }

    /// Number of tokens of `text` without prompt or special tokens: what the passage splitter budgets.
    pub fn count_tokens(&self, text: &str) -> usize {
        self.tokenizer
            .encode_fast(text, false)
            .map(|e| e.len())
            .unwrap_or_else(|_| text.chars().count())
    }

    /// Longest input, in tokens, the model accepts.
    pub fn max_tokens(&self) -> usize {
        self.model.max_seq_len
    }

    /// Runs one forward pass over already-tokenized rows: returns (rows, full dim) unit vectors.
    fn embed_batch(&self, rows: &[&[u32]]) -> Result<Array2<f32>> {
        let seq_len = rows.iter().map(|r| r.len()).max().unwrap_or(0);
        let lengths: Vec<usize> = rows.iter().map(|r| r.len()).collect();
        let pad = self.model.encoder.pad_token_id;
        let ids: Vec<u32> = rows
            .iter()
            .flat_map(|r| r.iter().copied().chain(std::iter::repeat(pad).take(seq_len - r.len())))
            .collect();
        let ids = Tensor::from_vec(ids, (rows.len(), seq_len), &self.device)?;
        let hidden = self.encoder.forward(&ids, &lengths)?;
        let mut pooled = match self.model.pooling {
            Pooling::Mean => gemma::mean_pool(&hidden, &lengths)?,
            Pooling::Cls => gemma::cls_pool(&hidden)?,
        };
        for layer in &self.dense {
            pooled = layer.forward(&pooled)?;
        }
        let vectors = gemma::l2_normalize(&pooled)?.to_dtype(DType::F32)?;
        let (n, d) = vectors.dims2()?;
        Ok(Array2::from_shape_vec((n, d), vectors.flatten_all()?.to_vec1::<f32>()?)
            .expect("tensor shape matches its element count"))
    }
}

impl Embedder for EmbeddingModel {
    fn dim(&self) -> usize {
        self.dims
    }

    fn embed(&self, texts: &[&str], prompt: Prompt, progress: &dyn Progress) -> Result<Array2<f32>> {
        let tokens = self.tokenize(texts, prompt)?;
        let mut out = Array2::<f32>::zeros((texts.len(), self.model.dim()));
        progress.start("embedding", texts.len() as u64);
        for batch in plan_batches(&tokens, self.batch) {
            let rows: Vec<&[u32]> = batch.iter().map(|&i| tokens[i].as_slice()).collect();
            let vectors = self.embed_batch(&rows)?;
            for (row, &i) in vectors.outer_iter().zip(&batch) {
                out.row_mut(i).assign(&row);
            }
            progress.advance(batch.len() as u64, rows.iter().map(|r| r.len() as u64).sum());
        }
        progress.finish();
        Ok(truncate_dims(out, self.dims))
    }
}

/// Groups row indices into forward passes: rows sorted by length so padding stays small,
/// each batch within `limits` (a row longer than the token budget goes alone).
pub fn plan_batches(tokens: &[Vec<u32>], limits: BatchLimits) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..tokens.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(tokens[i].len()));
    let mut batches = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    for i in order {
        // Sorted longest first, so the batch's first row sets its padded length.
        let longest = current.first().map_or(tokens[i].len(), |&f| tokens[f].len());
        if !current.is_empty()
            && (current.len() == limits.max_texts || longest * (current.len() + 1) > limits.max_tokens)
        {
            batches.push(std::mem::take(&mut current));
        }
        current.push(i);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

/// Keeps the first `dims` columns and rescales each row to unit length (Matryoshka truncation).
pub fn truncate_dims(vectors: Array2<f32>, dims: usize) -> Array2<f32> {
    if dims >= vectors.ncols() {
        return vectors;
    }
    let mut cut = vectors.slice(ndarray::s![.., ..dims]).to_owned();
    for mut row in cut.outer_iter_mut() {
        let norm = row.dot(&row).sqrt().max(1e-12);
        row /= norm;
    }
    cut
}

/// sha256 of the weights: from the fetch script's verification record when present, else computed.
fn weights_checksum(model: &ModelDir) -> Result<String> {
    let record = model.dir.join(".verified");
    if let Ok(text) = std::fs::read_to_string(&record) {
        if let Some(sum) = text.split_whitespace().next() {
            return Ok(sum.to_string());
        }
    }
    crate::hash::sha256_file(&model.weights)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_respect_limits_and_cover_every_row_once() {
        let lengths = [5usize, 300, 12, 40, 41, 7, 2000, 3];
        let tokens: Vec<Vec<u32>> = lengths.iter().map(|&n| vec![1; n]).collect();
        let limits = BatchLimits {
            max_texts: 3,
            max_tokens: 100,
        };
        let batches = plan_batches(&tokens, limits);
        let mut seen: Vec<usize> = batches.iter().flatten().copied().collect();
        seen.sort();
        assert_eq!(seen, (0..lengths.len()).collect::<Vec<_>>());
        for batch in &batches {
            let longest = batch.iter().map(|&i| lengths[i]).max().unwrap();
            assert!(batch.len() <= 3);
            assert!(batch.len() == 1 || longest * batch.len() <= 100, "{batch:?}");
        }
    }

    #[test]
    fn matryoshka_truncation_renormalises() {
        let v = Array2::from_shape_vec((1, 4), vec![0.5f32, 0.5, 0.5, 0.5]).unwrap();
        let cut = truncate_dims(v, 2);
        assert_eq!(cut.dim(), (1, 2));
        assert!((cut.row(0).dot(&cut.row(0)) - 1.0).abs() < 1e-6);
    }
}
