//! The EmbeddingGemma encoder: Gemma 3's transformer stack run bidirectionally.
//!
//! candle-transformers' `gemma3` is a causal decoder with a KV cache; an embedding model needs
//! every token to see its neighbours on both sides, limited to a window on sliding layers, and
//! no cache. The arithmetic follows Hugging Face's `Gemma3TextModel` with
//! `use_bidirectional_attention = true`; every size comes from `config.json`.

use candle_core::{DType, Device, Module, Result, Tensor, D};
use candle_nn::{linear_no_bias, Activation, Embedding, Linear, VarBuilder};

use super::model_dir::{EncoderConfig, LayerType};

/// Gemma's RMSNorm scales by `1 + weight`; we fold the `+ 1` in once at load time.
#[derive(Debug, Clone)]
struct RmsNorm {
    scale: Tensor,
    eps: f32,
}

impl RmsNorm {
    fn load(dim: usize, eps: f64, vb: VarBuilder) -> Result<Self> {
        let scale = (vb.get(dim, "weight")? + 1.0)?;
        Ok(Self { scale, eps: eps as f32 })
    }
}

impl Module for RmsNorm {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        // Normalise in f32 even when the model runs in half precision, as the reference does.
        let dtype = xs.dtype();
        let xs = xs.to_dtype(DType::F32)?;
        super::kernels::rms_norm(&xs, &self.scale.to_dtype(DType::F32)?, self.eps)?.to_dtype(dtype)
    }
}

/// Rotary position tables for one base frequency.
#[derive(Debug, Clone)]
pub(super) struct Rotary {
    cos: Tensor,
    sin: Tensor,
}

impl Rotary {
    pub(super) fn new(base: f64, head_dim: usize, max_len: usize, dtype: DType, device: &Device) -> Result<Self> {
        let inv_freq: Vec<f32> = (0..head_dim)
            .step_by(2)
            .map(|i| 1.0 / base.powf(i as f64 / head_dim as f64) as f32)
            .collect();
        let inv_freq = Tensor::from_vec(inv_freq, (1, head_dim / 2), device)?;
        let positions = Tensor::arange(0u32, max_len as u32, device)?
            .to_dtype(DType::F32)?
            .reshape((max_len, 1))?;
        let freqs = positions.matmul(&inv_freq)?;
        Ok(Self {
            cos: freqs.cos()?.to_dtype(dtype)?,
            sin: freqs.sin()?.to_dtype(dtype)?,
        })
    }

    /// The tables as the CPU kernels read them (f32, position after position).
    pub(super) fn table(&self) -> Result<super::kernels::RopeTable> {
        Ok(super::kernels::RopeTable {
            cos: self.cos.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?,
            sin: self.sin.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?,
            half: self.cos.dim(1)?,
        })
    }

    /// Rotates `xs` of shape (batch, heads, seq, head_dim) by positions 0..seq.
    fn apply(&self, xs: &Tensor) -> Result<Tensor> {
        let seq_len = xs.dim(2)?;
        let cos = self.cos.narrow(0, 0, seq_len)?;
        let sin = self.sin.narrow(0, 0, seq_len)?;
        candle_nn::rotary_emb::rope(&xs.contiguous()?, &cos, &sin)
    }
}

#[derive(Debug, Clone)]
struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    o_proj: Linear,
    q_norm: RmsNorm,
    k_norm: RmsNorm,
    num_heads: usize,
    num_kv_heads: usize,
    head_dim: usize,
    scale: f64,
}

impl Attention {
    fn load(cfg: &EncoderConfig, vb: VarBuilder) -> Result<Self> {
        let (hidden, heads, kv_heads, head_dim) = (
            cfg.hidden_size,
            cfg.num_attention_heads,
            cfg.num_key_value_heads,
            cfg.head_dim,
        );
        Ok(Self {
            q_proj: linear_no_bias(hidden, heads * head_dim, vb.pp("q_proj"))?,
            k_proj: linear_no_bias(hidden, kv_heads * head_dim, vb.pp("k_proj"))?,
            v_proj: linear_no_bias(hidden, kv_heads * head_dim, vb.pp("v_proj"))?,
            o_proj: linear_no_bias(heads * head_dim, hidden, vb.pp("o_proj"))?,
            q_norm: RmsNorm::load(head_dim, cfg.rms_norm_eps, vb.pp("q_norm"))?,
            k_norm: RmsNorm::load(head_dim, cfg.rms_norm_eps, vb.pp("k_norm"))?,
            num_heads: heads,
            num_kv_heads: kv_heads,
            head_dim,
            scale: cfg.query_pre_attn_scalar.powf(-0.5),
        })
    }

    fn forward(&self, xs: &Tensor, mask: &KeyMask, rotary: &Rotary) -> Result<Tensor> {
        let (batch, seq_len, _) = xs.dims3()?;
        let heads = |proj: &Linear, n: usize| proj.forward(xs)?.reshape((batch, seq_len, n, self.head_dim));
        let q = self
            .q_norm
            .forward(&heads(&self.q_proj, self.num_heads)?)?
            .transpose(1, 2)?;
        let k = self
            .k_norm
            .forward(&heads(&self.k_proj, self.num_kv_heads)?)?
            .transpose(1, 2)?;
        let v = heads(&self.v_proj, self.num_kv_heads)?.transpose(1, 2)?.contiguous()?;
        let q = rotary.apply(&q)?;
        let k = rotary.apply(&k)?;

        // Grouped-query attention without copying K and V per query head: the query heads that
        // share a key-value head are stacked along the sequence axis, so one matmul serves them all.
        let group = self.num_heads / self.num_kv_heads;
        let q = q.reshape((batch, self.num_kv_heads, group * seq_len, self.head_dim))?;
        let scores = q.matmul(&k.t()?)?;
        let weights = match mask {
            KeyMask::Additive(mask) => {
                let scores = (scores * self.scale)?
                    .reshape((batch, self.num_heads, seq_len, seq_len))?
                    .broadcast_add(mask)?;
                candle_nn::ops::softmax_last_dim(&scores)?.reshape((
                    batch,
                    self.num_kv_heads,
                    group * seq_len,
                    seq_len,
                ))?
            }
            KeyMask::Lengths { lengths, window } => {
                super::kernels::masked_softmax(&scores, self.scale as f32, lengths, *window)?
            }
        };
        let out = weights.matmul(&v)?;
        let out = out
            .reshape((batch, self.num_heads, seq_len, self.head_dim))?
            .transpose(1, 2)?
            .reshape((batch, seq_len, self.num_heads * self.head_dim))?;
        self.o_proj.forward(&out)
    }
}

/// Which keys each query sees.
enum KeyMask<'a> {
    /// Added to the scaled scores before candle's softmax (any device), broadcastable to
    /// (batch, heads, seq, seq).
    Additive(Tensor),
    /// Each text's real tokens, within `window` of the query if any: the CPU's fused kernel.
    Lengths {
        lengths: &'a [usize],
        window: Option<usize>,
    },
}

#[derive(Debug, Clone)]
struct Mlp {
    gate_proj: Linear,
    up_proj: Linear,
    down_proj: Linear,
    activation: Activation,
}

impl Mlp {
    fn load(cfg: &EncoderConfig, vb: VarBuilder) -> Result<Self> {
        let (hidden, inner) = (cfg.hidden_size, cfg.intermediate_size);
        Ok(Self {
            gate_proj: linear_no_bias(hidden, inner, vb.pp("gate_proj"))?,
            up_proj: linear_no_bias(hidden, inner, vb.pp("up_proj"))?,
            down_proj: linear_no_bias(inner, hidden, vb.pp("down_proj"))?,
            activation: cfg.hidden_activation,
        })
    }
}

impl Module for Mlp {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let gate = self.gate_proj.forward(xs)?;
        let up = self.up_proj.forward(xs)?;
        let hidden = match self.activation {
            Activation::GeluPytorchTanh => super::kernels::gelu_tanh_mul(&gate, &up)?,
            _ => (gate.apply(&self.activation)? * up)?,
        };
        self.down_proj.forward(&hidden)
    }
}

#[derive(Debug, Clone)]
struct Layer {
    kind: LayerType,
    input_norm: RmsNorm,
    attention: Attention,
    post_attention_norm: RmsNorm,
    pre_feedforward_norm: RmsNorm,
    mlp: Mlp,
    post_feedforward_norm: RmsNorm,
}

impl Layer {
    fn load(cfg: &EncoderConfig, kind: LayerType, vb: VarBuilder) -> Result<Self> {
        let norm = |name: &str| RmsNorm::load(cfg.hidden_size, cfg.rms_norm_eps, vb.pp(name));
        Ok(Self {
            kind,
            input_norm: norm("input_layernorm")?,
            attention: Attention::load(cfg, vb.pp("self_attn"))?,
            post_attention_norm: norm("post_attention_layernorm")?,
            pre_feedforward_norm: norm("pre_feedforward_layernorm")?,
            mlp: Mlp::load(cfg, vb.pp("mlp"))?,
            post_feedforward_norm: norm("post_feedforward_layernorm")?,
        })
    }

    fn forward(&self, xs: &Tensor, mask: &KeyMask, rotary: &Rotary) -> Result<Tensor> {
        let attended = self.attention.forward(&self.input_norm.forward(xs)?, mask, rotary)?;
        let xs = (xs + self.post_attention_norm.forward(&attended)?)?;
        let fed = self.mlp.forward(&self.pre_feedforward_norm.forward(&xs)?)?;
        xs + self.post_feedforward_norm.forward(&fed)?
    }
}

/// The encoder: token ids in, one hidden vector per token out.
#[derive(Debug, Clone)]
pub struct GemmaEncoder {
    embed_tokens: Embedding,
    embed_scale: f64,
    layers: Vec<Layer>,
    norm: RmsNorm,
    global_rotary: Rotary,
    local_rotary: Rotary,
    /// Radius of the bidirectional window on sliding layers: keys at distance < this are seen.
    sliding_window: usize,
    dtype: DType,
}

impl GemmaEncoder {
    pub fn load(cfg: &EncoderConfig, vb: VarBuilder) -> Result<Self> {
        if !cfg.use_bidirectional_attention {
            candle_core::bail!(
                "config.json does not set use_bidirectional_attention: this is a decoder, not an embedding model"
            );
        }
        let embed_tokens = candle_nn::embedding(cfg.vocab_size, cfg.hidden_size, vb.pp("embed_tokens"))?;
        let layers = cfg
            .layer_types
            .iter()
            .enumerate()
            .map(|(i, &kind)| Layer::load(cfg, kind, vb.pp(format!("layers.{i}"))))
            .collect::<Result<Vec<_>>>()?;
        let (dtype, device) = (vb.dtype(), vb.device().clone());
        let rotary = |base| Rotary::new(base, cfg.head_dim, cfg.max_position_embeddings, dtype, &device);
        Ok(Self {
            embed_tokens,
            // The reference multiplies by sqrt(hidden) cast to the weights' dtype.
            embed_scale: (cfg.hidden_size as f32).sqrt() as f64,
            layers,
            norm: RmsNorm::load(cfg.hidden_size, cfg.rms_norm_eps, vb.pp("norm"))?,
            global_rotary: rotary(cfg.rope_theta)?,
            local_rotary: rotary(cfg.rope_local_base_freq)?,
            // The reference turns the causal window into a radius when attention is bidirectional:
            // a token sees keys at distance < window / 2 + 1 on either side (transformers'
            // Gemma3TextConfig), so the total span stays about `sliding_window`.
            sliding_window: cfg.sliding_window / 2 + 1,
            dtype,
        })
    }

    /// `input_ids`: (batch, seq) u32, right-padded; `lengths`: real tokens per row.
    /// Returns hidden states (batch, seq, hidden) in the model's dtype.
    pub fn forward(&self, input_ids: &Tensor, lengths: &[usize]) -> Result<Tensor> {
        let seq_len = input_ids.dim(1)?;
        let device = input_ids.device();
        // Below the window size a sliding layer sees everything, so it can share the global mask.
        let window = (seq_len > self.sliding_window).then_some(self.sliding_window);
        let (global_mask, local_mask) = if device.is_cpu() && self.dtype == DType::F32 {
            (
                KeyMask::Lengths { lengths, window: None },
                KeyMask::Lengths { lengths, window },
            )
        } else {
            let global = self.attention_mask(lengths, seq_len, None, device)?;
            let local = match window {
                Some(_) => self.attention_mask(lengths, seq_len, window, device)?,
                None => global.clone(),
            };
            (KeyMask::Additive(global), KeyMask::Additive(local))
        };
        let mut xs = (self.embed_tokens.forward(input_ids)? * self.embed_scale)?;
        for layer in &self.layers {
            xs = match layer.kind {
                LayerType::FullAttention => layer.forward(&xs, &global_mask, &self.global_rotary)?,
                LayerType::SlidingAttention => layer.forward(&xs, &local_mask, &self.local_rotary)?,
            };
        }
        self.norm.forward(&xs)
    }

    /// An additive mask: 0 where a query may attend to a key, a large negative number elsewhere.
    /// Keys beyond a row's length are padding; with a window, keys at distance >= window are hidden.
    /// Shape (batch, 1, 1, seq) without a window, (batch, 1, seq, seq) with one.
    fn attention_mask(
        &self,
        lengths: &[usize],
        seq_len: usize,
        window: Option<usize>,
        device: &Device,
    ) -> Result<Tensor> {
        // Finite rather than -inf: a padded query row may have no visible key, and -inf there
        // would turn its softmax into NaN, which 0-weights cannot cancel in the next matmul.
        let hidden = match self.dtype {
            DType::F16 => -65504f32,
            _ => -1e30f32,
        };
        let batch = lengths.len();
        let mask: Vec<f32> = match window {
            None => lengths
                .iter()
                .flat_map(|&len| (0..seq_len).map(move |k| if k < len { 0.0 } else { hidden }))
                .collect(),
            Some(window) => {
                let mut mask = Vec::with_capacity(batch * seq_len * seq_len);
                for &len in lengths {
                    for q in 0..seq_len {
                        mask.extend((0..seq_len).map(|k| if k < len && q.abs_diff(k) < window { 0.0 } else { hidden }));
                    }
                }
                mask
            }
        };
        let rows = if window.is_some() { seq_len } else { 1 };
        Tensor::from_vec(mask, (batch, 1, rows, seq_len), device)?.to_dtype(self.dtype)
    }
}

/// Masked mean of token vectors: (batch, seq, hidden) -> (batch, hidden), padding excluded.
pub fn mean_pool(hidden: &Tensor, lengths: &[usize]) -> Result<Tensor> {
    let (batch, seq_len, _) = hidden.dims3()?;
    let weights: Vec<f32> = lengths
        .iter()
        .flat_map(|&len| (0..seq_len).map(move |i| if i < len { 1.0 / len as f32 } else { 0.0 }))
        .collect();
    let weights = Tensor::from_vec(weights, (batch, 1, seq_len), hidden.device())?;
    weights.matmul(&hidden.to_dtype(DType::F32)?)?.squeeze(1)
}

/// The first token's vector of each row: (batch, seq, hidden) -> (batch, hidden).
pub fn cls_pool(hidden: &Tensor) -> Result<Tensor> {
    hidden.narrow(1, 0, 1)?.squeeze(1)?.to_dtype(DType::F32)
}

/// Scales each row to unit length.
pub fn l2_normalize(xs: &Tensor) -> Result<Tensor> {
    let norms = xs.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?.clamp(1e-12, f32::MAX)?;
    xs.broadcast_div(&norms)
}
