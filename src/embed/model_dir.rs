//! A sentence-transformers model directory on local disk: which files it has and what they say.
//!
//! Nothing here downloads anything: a missing file is an error that names the fetch command.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

/// The Gemma3 text encoder's settings, read from `config.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct EncoderConfig {
    pub model_type: String,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub rope_local_base_freq: f64,
    pub query_pre_attn_scalar: f64,
    pub sliding_window: usize,
    pub layer_types: Vec<LayerType>,
    pub max_position_embeddings: usize,
    pub hidden_activation: candle_nn::Activation,
    pub pad_token_id: u32,
    #[serde(default)]
    pub use_bidirectional_attention: bool,
}

/// Whether a layer attends to the whole sequence or to a window around each token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LayerType {
    FullAttention,
    SlidingAttention,
}

/// How token vectors become one passage vector (from `1_Pooling/config.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    Mean,
    Cls,
}

#[derive(Deserialize)]
struct PoolingFile {
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default = "yes")]
    include_prompt: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
struct ModuleEntry {
    path: String,
    #[serde(rename = "type")]
    kind: String,
}

/// A linear projection applied after pooling (`N_Dense/`).
#[derive(Debug, Clone, Deserialize)]
pub struct DenseConfig {
    pub in_features: usize,
    pub out_features: usize,
    pub bias: bool,
    pub activation_function: String,
    #[serde(skip)]
    pub weights: PathBuf,
}

#[derive(Deserialize)]
struct SentenceTransformersFile {
    #[serde(default)]
    prompts: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct SentenceBertFile {
    max_seq_length: Option<usize>,
}

/// Everything themap needs from a model directory, checked and parsed.
#[derive(Debug, Clone)]
pub struct ModelDir {
    pub dir: PathBuf,
    pub encoder: EncoderConfig,
    pub tokenizer: PathBuf,
    pub weights: PathBuf,
    pub pooling: Pooling,
    pub dense: Vec<DenseConfig>,
    pub normalize: bool,
    pub prompts: BTreeMap<String, String>,
    /// Longest input in tokens, prompt and special tokens included.
    pub max_seq_len: usize,
}

impl ModelDir {
    /// Reads and validates the model directory `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        let need = |file: &str| -> Result<PathBuf> {
            let path = dir.join(file);
            if path.is_file() {
                Ok(path)
            } else {
                Err(Error::ModelFileMissing {
                    dir: dir.to_path_buf(),
                    file: file.to_string(),
                })
            }
        };
        let encoder: EncoderConfig = read_json(&need("config.json")?)?;
        let tokenizer = need("tokenizer.json")?;
        let weights = need("model.safetensors")?;
        let config_path = dir.join("config.json");
        if encoder.model_type != "gemma3_text" {
            return Err(invalid(
                &config_path,
                format!(
                    "model_type {:?} is not supported (themap runs gemma3_text encoders such as EmbeddingGemma)",
                    encoder.model_type
                ),
            ));
        }
        if encoder.layer_types.len() != encoder.num_hidden_layers {
            return Err(invalid(&config_path, "layer_types does not list every layer".into()));
        }
        if encoder.num_key_value_heads == 0 || encoder.num_attention_heads % encoder.num_key_value_heads != 0 {
            return Err(invalid(
                &config_path,
                "attention heads are not a multiple of key-value heads".into(),
            ));
        }

        // modules.json lists the sentence-transformers pipeline: Transformer, Pooling, Dense..., Normalize.
        let modules: Vec<ModuleEntry> = read_json(&need("modules.json")?)?;
        let mut pooling = None;
        let mut dense = Vec::new();
        let mut normalize = false;
        for module in &modules {
            let kind = module.kind.rsplit('.').next().unwrap_or_default();
            match kind {
                "Transformer" => {}
                "Pooling" => pooling = Some(read_pooling(&need(&format!("{}/config.json", module.path))?)?),
                "Dense" => {
                    let config_file = need(&format!("{}/config.json", module.path))?;
                    let mut config: DenseConfig = read_json(&config_file)?;
                    if !config.activation_function.ends_with("Identity") {
                        return Err(invalid(
                            &config_file,
                            format!("activation {} is not supported", config.activation_function),
                        ));
                    }
                    config.weights = need(&format!("{}/model.safetensors", module.path))?;
                    dense.push(config);
                }
                "Normalize" => normalize = true,
                other => {
                    return Err(invalid(
                        &dir.join("modules.json"),
                        format!("module type {other} is not supported"),
                    ))
                }
            }
        }
        let pooling = pooling.ok_or_else(|| invalid(&dir.join("modules.json"), "no Pooling module".into()))?;

        let prompts = match dir.join("config_sentence_transformers.json") {
            path if path.is_file() => read_json::<SentenceTransformersFile>(&path)?.prompts,
            _ => BTreeMap::new(),
        };
        let max_seq_len = match dir.join("sentence_bert_config.json") {
            path if path.is_file() => read_json::<SentenceBertFile>(&path)?.max_seq_length,
            _ => None,
        }
        .unwrap_or(encoder.max_position_embeddings)
        .min(encoder.max_position_embeddings);

        Ok(Self {
            dir: dir.to_path_buf(),
            encoder,
            tokenizer,
            weights,
            pooling,
            dense,
            normalize,
            prompts,
            max_seq_len,
        })
    }

    /// The size of the vectors the model produces.
    pub fn dim(&self) -> usize {
        self.dense.last().map_or(self.encoder.hidden_size, |d| d.out_features)
    }

    /// A short stable name for the model: the directory's name.
    pub fn name(&self) -> String {
        self.dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".into())
    }
}

fn read_pooling(path: &Path) -> Result<Pooling> {
    let file: PoolingFile = read_json(path)?;
    if !file.include_prompt {
        return Err(invalid(path, "include_prompt = false is not supported".into()));
    }
    match (file.pooling_mode_mean_tokens, file.pooling_mode_cls_token) {
        (true, false) => Ok(Pooling::Mean),
        (false, true) => Ok(Pooling::Cls),
        _ => Err(invalid(path, "exactly one of mean or CLS pooling must be set".into())),
    }
}

fn invalid(path: &Path, reason: String) -> Error {
    Error::ModelInvalid {
        path: path.to_path_buf(),
        reason,
    }
}

pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(Error::io(path))?;
    serde_json::from_slice(&bytes).map_err(|source| Error::Json {
        path: path.to_path_buf(),
        source,
    })
}
