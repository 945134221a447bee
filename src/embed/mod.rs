//! Stage 3: text to vectors with a sentence-embedding model run by candle.
//!
//! Candle types stay inside this module; callers get `ndarray::Array2<f32>` rows that are
//! L2-normalised, so cosine similarity is a dot product everywhere downstream.
//! [`stream`] is the batching engine, [`output`] the resumable `.npy` writer of `themap embed`.

mod cpu_encoder;
mod device;
mod gemma;
pub mod kernels;
mod model_dir;
pub mod output;
pub mod probe;
pub mod stream;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Linear, VarBuilder};
use ndarray::Array2;
use serde::{Deserialize, Serialize};
use tokenizers::Tokenizer;

pub use device::{DeviceChoice, Dtype};
pub use model_dir::{EncoderConfig, ModelDir, Pooling};
pub use probe::Kernel;
pub use stream::{embed_stream, BatchLimits, EmbedStats, StreamOptions};

use crate::error::{Error, Result};
use crate::progress::Progress;
use cpu_encoder::CpuEncoder;
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
    /// The name `--prompt` takes.
    pub fn name(self) -> &'static str {
        match self {
            Prompt::Document => "document",
            Prompt::Query => "query",
            Prompt::Clustering => "clustering",
            Prompt::None => "none",
        }
    }

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
pub trait Embedder: Sync {
    /// Length of the vectors.
    fn dim(&self) -> usize;
    /// Token ids for `texts` under `prompt`: prompt + text, with special tokens, cut to the
    /// model's maximum length.
    fn tokenize(&self, texts: &[&str], prompt: Prompt) -> Result<Vec<Vec<u32>>>;
    /// One forward pass over tokenized rows: one unit row of `dim()` per row, in row order.
    fn embed_tokens(&self, rows: &[&[u32]]) -> Result<Array2<f32>>;
    /// How rows are grouped into forward passes.
    fn batch_limits(&self) -> BatchLimits;
    /// Whether a forward pass computes every row to its batch's longest (padding), so that
    /// batches should hold rows of similar length.
    fn pads(&self) -> Result<bool> {
        Ok(true)
    }

    /// One unit row per text, in input order.
    fn embed(&self, texts: &[&str], prompt: Prompt, progress: &dyn Progress) -> Result<Array2<f32>> {
        stream::embed_texts(self, texts, prompt, progress)
    }
}

/// Options for loading a model.
#[derive(Debug, Clone, Default)]
pub struct EmbedOptions {
    /// Keep only the first `dims` components (Matryoshka), renormalised. `None`: the full size.
    pub dims: Option<usize>,
    pub batch: BatchLimits,
    pub device: DeviceChoice,
    /// `None`: the device's best: bf16 on a GPU; on the CPU, the fastest as measured
    /// ([`probe`]).
    pub dtype: Option<Dtype>,
    /// On the CPU, the kernel to run with instead of the measured fastest (benchmarks and tests).
    pub kernel: Option<Kernel>,
    /// Where the CPU's kernel timings are kept between runs; `None`: timed at every load where
    /// the choice needs them.
    pub probe_cache: Option<PathBuf>,
}

impl EmbedOptions {
    /// The number format and kernel the encoder of `encoder` runs with on the chosen device.
    fn compute(&self, encoder: &EncoderConfig) -> Result<(Dtype, Kernel)> {
        if let Some(dtype) = self.dtype {
            dtype.check(self.device)?;
        }
        match self.device {
            DeviceChoice::Cuda(_) if self.kernel.is_some_and(|k| k != Kernel::Candle) => Err(Error::InvalidArgument(
                "--cpu-kernel applies to the CPU; on a GPU themap runs candle's kernels".into(),
            )),
            DeviceChoice::Cuda(_) => Ok((self.dtype.unwrap_or(Dtype::Bf16), Kernel::Candle)),
            DeviceChoice::Cpu => {
                let kernel = probe::cpu_kernel(encoder, self.dtype, self.kernel, self.probe_cache.as_deref())?;
                Ok((kernel.dtype(), kernel))
            }
        }
    }
}

/// The truncated sizes Matryoshka-trained models such as EmbeddingGemma support.
const MATRYOSHKA_DIMS: [usize; 3] = [512, 256, 128];

/// A model's tokenizer, prompts and identity (name, weights checksum, vector size), without its
/// weights: enough to split and measure texts, and to check which model vectors came from.
pub struct ModelTokenizer {
    model: ModelDir,
    tokenizer: Tokenizer,
    dims: usize,
    checksum: String,
    /// Most bytes of text one token stands for (the vocabulary's longest token).
    max_token_bytes: usize,
}

impl ModelTokenizer {
    /// Opens the model in `dir` for vectors of `dims` components (`None`: the full size).
    pub fn open(dir: &Path, dims: Option<usize>) -> Result<Self> {
        let model = ModelDir::open(dir)?;
        let full = model.dim();
        let dims = dims.unwrap_or(full);
        if dims != full && !MATRYOSHKA_DIMS.contains(&dims) || dims > full {
            let mut allowed = vec![full];
            allowed.extend(MATRYOSHKA_DIMS.iter().filter(|&&d| d < full));
            return Err(Error::InvalidDims { dims, allowed });
        }
        let tokenizer = Tokenizer::from_file(&model.tokenizer).map_err(|source| Error::Tokenizer {
            path: model.tokenizer.clone(),
            source,
        })?;
        let checksum = weights_checksum(&model)?;
        let max_token_bytes = tokenizer
            .get_vocab(true)
            .keys()
            .map(String::len)
            .max()
            .unwrap_or(1)
            .max(1);
        Ok(Self {
            model,
            tokenizer,
            dims,
            checksum,
            max_token_bytes,
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

    /// Length of the vectors.
    pub fn dim(&self) -> usize {
        self.dims
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

    /// The start of `text` that holds its first `tokens` tokens: what is worth tokenizing of a
    /// text that will be cut there anyway (a megabyte-long text would cost gigabytes at once).
    /// The margin keeps the cut clear of the tokens that are kept.
    pub fn head<'a>(&self, text: &'a str, tokens: usize) -> &'a str {
        let mut end = ((tokens + 64) * self.max_token_bytes).min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        &text[..end]
    }

    /// Whether `text` under `prompt` is longer than the model reads (the rest is ignored).
    pub fn is_cut(&self, text: &str, prompt: Prompt) -> Result<bool> {
        let max = self.max_tokens();
        let head = self.head(text, max);
        let prompt_tokens = self.count_tokens(self.prompt_text(prompt)?);
        // Two special tokens (start and end) besides the prompt.
        Ok(head.len() < text.len() || prompt_tokens + self.count_tokens(head) + 2 > max)
    }

    /// Token ids as the model sees them: prompt + text, with special tokens, cut to the
    /// model's maximum length (the final special token is kept).
    pub fn tokenize(&self, texts: &[&str], prompt: Prompt) -> Result<Vec<Vec<u32>>> {
        let prefix = self.prompt_text(prompt)?;
        let max = self.model.max_seq_len;
        let inputs: Vec<String> = texts.iter().map(|t| format!("{prefix}{}", self.head(t, max))).collect();
        let encodings = self.tokenizer.encode_batch(inputs, true).map_err(Error::Tokenize)?;
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
}

/// A sentence-transformers EmbeddingGemma model loaded for inference.
pub struct EmbeddingModel {
    tokenizer: ModelTokenizer,
    encoder: Encoder,
    dense: Vec<Linear>,
    device: Device,
    dtype: Dtype,
    kernel: Kernel,
    batch: BatchLimits,
}

impl EmbeddingModel {
    /// Loads the model in `dir` onto the device `options` names.
    pub fn load(dir: &Path, options: &EmbedOptions) -> Result<Self> {
        Self::load_weights(ModelTokenizer::open(dir, options.dims)?, options)
    }

    /// Loads the weights of the model `tokenizer` belongs to.
    pub fn load_weights(tokenizer: ModelTokenizer, options: &EmbedOptions) -> Result<Self> {
        if options.batch.max_texts == 0 || options.batch.max_tokens == 0 {
            return Err(Error::InvalidArgument("batch limits must be positive".into()));
        }
        let model = &tokenizer.model;
        let (dtype, kernel) = options.compute(&model.encoder)?;
        let device = options.device.open()?;
        let weights_error = |path: &PathBuf| {
            let path = path.clone();
            move |e: candle_core::Error| Error::ModelInvalid {
                path,
                reason: e.to_string(),
            }
        };
        // themap's CPU kernels read the weights in f32 and pack them (rounded to bf16 for bf16
        // products); everything between products stays f32.
        let weights_dtype = match kernel {
            Kernel::Candle => dtype.candle(),
            Kernel::CpuF32 | Kernel::CpuBf16 => DType::F32,
        };
        // SAFETY: the weights file is memory-mapped read-only; themap never writes to it, and the
        // fetch script replaces model directories by rename, never in place.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[&model.weights], weights_dtype, &device) }
            .map_err(weights_error(&model.weights))?;
        let encoder = Encoder::load(&model.encoder, kernel, vb).map_err(weights_error(&model.weights))?;
        let dense = model
            .dense
            .iter()
            .map(|d| {
                // The projections after pooling are small: f32 whatever the encoder runs in.
                let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[&d.weights], DType::F32, &device) }
                    .map_err(weights_error(&d.weights))?;
                let layer = if d.bias {
                    candle_nn::linear(d.in_features, d.out_features, vb.pp("linear"))
                } else {
                    candle_nn::linear_no_bias(d.in_features, d.out_features, vb.pp("linear"))
                };
                layer.map_err(weights_error(&d.weights))
            })
            .collect::<Result<Vec<_>>>()?;
        tracing::info!(model = %model.dir.display(), dims = tokenizer.dims, device = %options.device, dtype = dtype.name(), %kernel, "embedding model loaded");
        Ok(Self {
            tokenizer,
            encoder,
            dense,
            device,
            dtype,
            kernel,
            batch: options.batch,
        })
    }

    /// The tokenizer side: name, checksum, prompts, token counts.
    pub fn tokenizer(&self) -> &ModelTokenizer {
        &self.tokenizer
    }

    /// The model directory's name, e.g. `embeddinggemma-300m`.
    pub fn name(&self) -> String {
        self.tokenizer.name()
    }

    /// The number format the encoder computes in.
    pub fn dtype(&self) -> Dtype {
        self.dtype
    }

    /// What runs the encoder's arithmetic.
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// sha256 of the model weights, so an index can tell which model built it.
    pub fn checksum(&self) -> &str {
        self.tokenizer.checksum()
    }

    /// Number of tokens of `text` without prompt or special tokens: what the passage splitter budgets.
    pub fn count_tokens(&self, text: &str) -> usize {
        self.tokenizer.count_tokens(text)
    }

    /// Longest input, in tokens, the model accepts.
    pub fn max_tokens(&self) -> usize {
        self.tokenizer.max_tokens()
    }

    /// Runs one forward pass over already-tokenized rows: returns (rows, full dim) unit vectors.
    fn forward(&self, rows: &[&[u32]]) -> Result<Array2<f32>> {
        let model = &self.tokenizer.model;
        let mut pooled = self
            .encoder
            .pooled(rows, model.pooling, model.encoder.pad_token_id, &self.device)?;
        for layer in &self.dense {
            pooled = layer.forward(&pooled)?;
        }
        let vectors = gemma::l2_normalize(&pooled)?.to_dtype(DType::F32)?;
        let (n, d) = vectors.dims2()?;
        Ok(Array2::from_shape_vec((n, d), vectors.flatten_all()?.to_vec1::<f32>()?)
            .expect("tensor shape matches its element count"))
    }
}

/// The encoder in the form its kernel runs: candle's (any device) or themap's CPU encoder.
enum Encoder {
    Candle(GemmaEncoder),
    Cpu(CpuEncoder),
}

impl Encoder {
    fn load(cfg: &EncoderConfig, kernel: Kernel, vb: VarBuilder) -> candle_core::Result<Self> {
        Ok(match kernel.format() {
            None => Self::Candle(GemmaEncoder::load(cfg, vb)?),
            Some(format) => Self::Cpu(CpuEncoder::load(cfg, format, vb)?),
        })
    }

    /// One pooled hidden vector per row of token ids: (rows, hidden) f32 on `device`.
    fn pooled(&self, rows: &[&[u32]], pooling: Pooling, pad: u32, device: &Device) -> candle_core::Result<Tensor> {
        match self {
            Self::Candle(encoder) => {
                let lengths: Vec<usize> = rows.iter().map(|r| r.len()).collect();
                let seq_len = lengths.iter().copied().max().unwrap_or(0);
                let ids: Vec<u32> = rows
                    .iter()
                    .flat_map(|r| r.iter().copied().chain(std::iter::repeat_n(pad, seq_len - r.len())))
                    .collect();
                let ids = Tensor::from_vec(ids, (rows.len(), seq_len), device)?;
                let hidden = encoder.forward(&ids, &lengths)?;
                match pooling {
                    Pooling::Mean => gemma::mean_pool(&hidden, &lengths),
                    Pooling::Cls => gemma::cls_pool(&hidden),
                }
            }
            Self::Cpu(encoder) => encoder.pooled(rows, pooling),
        }
    }
}

impl Embedder for EmbeddingModel {
    fn dim(&self) -> usize {
        self.tokenizer.dims
    }

    fn tokenize(&self, texts: &[&str], prompt: Prompt) -> Result<Vec<Vec<u32>>> {
        self.tokenizer.tokenize(texts, prompt)
    }

    fn embed_tokens(&self, rows: &[&[u32]]) -> Result<Array2<f32>> {
        Ok(truncate_dims(self.forward(rows)?, self.tokenizer.dims))
    }

    fn batch_limits(&self) -> BatchLimits {
        self.batch
    }

    fn pads(&self) -> Result<bool> {
        Ok(matches!(self.encoder, Encoder::Candle(_)))
    }
}

/// A model whose weights are loaded on first use: work that may not need them (themes without
/// named themes or keyword re-ranking, say) does not pay for them, and work that does can
/// free other memory first.
pub struct LazyModel {
    tokenizer: ModelTokenizer,
    dir: PathBuf,
    options: EmbedOptions,
    /// The number format and kernel, chosen on first need (the CPU's may be timed).
    compute: OnceLock<(Dtype, Kernel)>,
    loaded: OnceLock<EmbeddingModel>,
}

impl LazyModel {
    /// Opens the tokenizer of the model in `dir` now; its weights when first needed.
    pub fn open(dir: &Path, options: EmbedOptions) -> Result<Self> {
        Ok(Self {
            tokenizer: ModelTokenizer::open(dir, options.dims)?,
            dir: dir.to_path_buf(),
            options,
            compute: OnceLock::new(),
            loaded: OnceLock::new(),
        })
    }

    pub fn tokenizer(&self) -> &ModelTokenizer {
        &self.tokenizer
    }

    /// The number format the model will compute in, checked against the device.
    pub fn dtype(&self) -> Result<Dtype> {
        Ok(self.compute()?.0)
    }

    fn compute(&self) -> Result<(Dtype, Kernel)> {
        if let Some(chosen) = self.compute.get() {
            return Ok(*chosen);
        }
        let chosen = self.options.compute(&self.tokenizer.model.encoder)?;
        Ok(*self.compute.get_or_init(|| chosen))
    }

    /// The loaded model, loading it now if needed.
    pub fn model(&self) -> Result<&EmbeddingModel> {
        if let Some(model) = self.loaded.get() {
            return Ok(model);
        }
        // The choice made for `dtype()`, not made again.
        let (dtype, kernel) = self.compute()?;
        let options = EmbedOptions {
            dtype: Some(dtype),
            kernel: Some(kernel),
            ..self.options.clone()
        };
        let model = EmbeddingModel::load(&self.dir, &options)?;
        Ok(self.loaded.get_or_init(|| model))
    }
}

impl Embedder for LazyModel {
    fn dim(&self) -> usize {
        self.tokenizer.dims
    }

    fn tokenize(&self, texts: &[&str], prompt: Prompt) -> Result<Vec<Vec<u32>>> {
        self.tokenizer.tokenize(texts, prompt)
    }

    fn embed_tokens(&self, rows: &[&[u32]]) -> Result<Array2<f32>> {
        self.model()?.embed_tokens(rows)
    }

    fn batch_limits(&self) -> BatchLimits {
        self.options.batch
    }

    fn pads(&self) -> Result<bool> {
        Ok(self.compute()?.1.format().is_none())
    }
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
    fn matryoshka_truncation_renormalises() {
        let v = Array2::from_shape_vec((1, 4), vec![0.5f32, 0.5, 0.5, 0.5]).unwrap();
        let cut = truncate_dims(v, 2);
        assert_eq!(cut.dim(), (1, 2));
        assert!((cut.row(0).dot(&cut.row(0)) - 1.0).abs() < 1e-6);
    }
}
