//! The EmbeddingGemma encoder on the CPU with themap's own kernels (AVX-512, f32 or bf16).
//!
//! The same arithmetic as [`GemmaEncoder`](super::gemma::GemmaEncoder), laid out for the CPU:
//!
//! - **No padding.** The texts of a batch are packed end to end, one row per token: the linear
//!   layers multiply only real tokens, positions restart at each text, and attention runs text
//!   by text ([`kernels::attention`]).
//! - **Fused products.** q, k and v are one product (their weights stacked), and so are gate
//!   and up: the activations are read (and, in bf16, rounded) once per block instead of three or
//!   two times.
//! - **No copies between heads.** The query and key heads are normalised and rotated where the
//!   product wrote them ([`kernels::norm_rope`]), attention reads them there and writes each
//!   head into its columns of the output projection's input.
//! - **Fused residuals.** Each block's output norm, the residual add and the next block's input
//!   norm are one pass ([`kernels::add_norm`]).
//! - **Buffers reused.** One set of buffers per batch serves all layers, so the large ones are
//!   not allocated (and faulted in by the kernel) 24 times over.

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::gemma::Rotary;
use super::kernels::{self, Heads, MatmulFormat, PackedWeights, RopeTable};
use super::model_dir::{EncoderConfig, LayerType, Pooling};

#[derive(Debug, Clone)]
pub struct CpuEncoder {
    format: MatmulFormat,
    embed_tokens: candle_nn::Embedding,
    embed_scale: f32,
    layers: Vec<Layer>,
    /// The final norm's scale.
    norm: Vec<f32>,
    eps: f32,
    heads: Heads,
    hidden: usize,
    inner: usize,
    scale: f32,
    global_rope: RopeTable,
    local_rope: RopeTable,
    /// Radius of the bidirectional window on sliding layers (as in `GemmaEncoder`).
    sliding_window: usize,
}

#[derive(Debug, Clone)]
struct Layer {
    kind: LayerType,
    /// RMSNorm scales (`1 + weight`): before attention, after it, before the feed-forward
    /// block, after it; and of the query and key heads.
    input_norm: Vec<f32>,
    post_attention_norm: Vec<f32>,
    pre_feedforward_norm: Vec<f32>,
    post_feedforward_norm: Vec<f32>,
    q_norm: Vec<f32>,
    k_norm: Vec<f32>,
    /// q, k and v projections stacked: one row per query, key and value output.
    qkv: PackedWeights,
    o_proj: PackedWeights,
    /// Gate and up projections stacked: the gate's outputs, then the up's.
    gate_up: PackedWeights,
    down: PackedWeights,
}

impl CpuEncoder {
    /// Loads the encoder's weights from `vb` (f32) and packs them for `format`'s kernel.
    pub fn load(cfg: &EncoderConfig, format: MatmulFormat, vb: VarBuilder) -> Result<Self> {
        if !cfg.use_bidirectional_attention {
            candle_core::bail!(
                "config.json does not set use_bidirectional_attention: this is a decoder, not an embedding model"
            );
        }
        if cfg.hidden_activation != candle_nn::Activation::GeluPytorchTanh {
            candle_core::bail!("themap's CPU encoder runs gelu_pytorch_tanh models; use --cpu-kernel candle");
        }
        let heads = Heads {
            query: cfg.num_attention_heads,
            key_value: cfg.num_key_value_heads,
            dim: cfg.head_dim,
        };
        let (hidden, inner) = (cfg.hidden_size, cfg.intermediate_size);
        let values = |vb: &VarBuilder, shape: (usize, usize), name: &str| -> Result<Vec<f32>> {
            vb.get(shape, name)?.to_dtype(DType::F32)?.flatten_all()?.to_vec1()
        };
        let scale = |vb: VarBuilder, dim: usize| -> Result<Vec<f32>> {
            (vb.get(dim, "weight")?.to_dtype(DType::F32)? + 1.0)?.to_vec1()
        };
        // Weights of several projections stacked row after row, then packed.
        let stacked = |vb: &VarBuilder, parts: &[(&str, usize)], k: usize| -> Result<PackedWeights> {
            let mut rows = Vec::new();
            for (name, n) in parts {
                rows.extend(values(&vb.pp(*name), (*n, k), "weight")?);
            }
            let n = parts.iter().map(|(_, n)| n).sum();
            PackedWeights::pack(format, &rows, n, k)
                .ok_or_else(|| candle_core::Error::Msg(format!("this CPU cannot run the {format:?} kernel")))
        };
        let layers = cfg
            .layer_types
            .iter()
            .enumerate()
            .map(|(i, &kind)| {
                let vb = vb.pp(format!("layers.{i}"));
                let (attn, mlp) = (vb.pp("self_attn"), vb.pp("mlp"));
                let (q, kv) = (heads.query * heads.dim, heads.key_value * heads.dim);
                Ok(Layer {
                    kind,
                    input_norm: scale(vb.pp("input_layernorm"), hidden)?,
                    post_attention_norm: scale(vb.pp("post_attention_layernorm"), hidden)?,
                    pre_feedforward_norm: scale(vb.pp("pre_feedforward_layernorm"), hidden)?,
                    post_feedforward_norm: scale(vb.pp("post_feedforward_layernorm"), hidden)?,
                    q_norm: scale(attn.pp("q_norm"), heads.dim)?,
                    k_norm: scale(attn.pp("k_norm"), heads.dim)?,
                    qkv: stacked(&attn, &[("q_proj", q), ("k_proj", kv), ("v_proj", kv)], hidden)?,
                    o_proj: stacked(&attn, &[("o_proj", hidden)], q)?,
                    gate_up: stacked(&mlp, &[("gate_proj", inner), ("up_proj", inner)], hidden)?,
                    down: stacked(&mlp, &[("down_proj", hidden)], inner)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let rope = |base| {
            Rotary::new(
                base,
                cfg.head_dim,
                cfg.max_position_embeddings,
                DType::F32,
                &Device::Cpu,
            )?
            .table()
        };
        Ok(Self {
            format,
            embed_tokens: candle_nn::embedding(cfg.vocab_size, hidden, vb.pp("embed_tokens"))?,
            // The reference multiplies by sqrt(hidden) cast to the weights' dtype.
            embed_scale: (hidden as f32).sqrt(),
            layers,
            norm: scale(vb.pp("norm"), hidden)?,
            eps: cfg.rms_norm_eps as f32,
            heads,
            hidden,
            inner,
            scale: cfg.query_pre_attn_scalar.powf(-0.5) as f32,
            global_rope: rope(cfg.rope_theta)?,
            local_rope: rope(cfg.rope_local_base_freq)?,
            sliding_window: cfg.sliding_window / 2 + 1,
        })
    }

    /// One pooled hidden vector per text (the mean of its tokens', or its first token's):
    /// (texts, hidden) f32 on the CPU.
    pub fn pooled(&self, texts: &[&[u32]], pooling: Pooling) -> Result<Tensor> {
        let hidden = self.forward(texts)?;
        let width = self.hidden;
        let mut pooled = vec![0f32; texts.len() * width];
        let mut start = 0;
        for (text, out) in texts.iter().zip(pooled.chunks_exact_mut(width)) {
            let tokens = &hidden[start * width..(start + text.len()) * width];
            start += text.len();
            match pooling {
                Pooling::Mean => {
                    for token in tokens.chunks_exact(width) {
                        out.iter_mut().zip(token).for_each(|(sum, x)| *sum += x);
                    }
                    let count = text.len().max(1) as f32;
                    out.iter_mut().for_each(|sum| *sum /= count);
                }
                Pooling::Cls => out.copy_from_slice(tokens.get(..width).unwrap_or(&vec![0f32; width])),
            }
        }
        Tensor::from_vec(pooled, (texts.len(), width), &Device::Cpu)
    }

    /// The hidden state of every token of every text after the final norm: one row of
    /// `hidden` values per token, the texts' rows one after another.
    fn forward(&self, texts: &[&[u32]]) -> Result<Vec<f32>> {
        let lengths: Vec<usize> = texts.iter().map(|t| t.len()).collect();
        let longest = lengths.iter().copied().max().unwrap_or(0);
        let max_positions = self.global_rope.cos.len() / self.global_rope.half;
        if longest > max_positions {
            candle_core::bail!("a text of {longest} tokens is longer than the model's {max_positions} positions");
        }
        let positions: Vec<u32> = lengths.iter().flat_map(|&len| 0..len as u32).collect();
        let tokens = positions.len();
        let ids = Tensor::from_iter(texts.iter().flat_map(|t| t.iter().copied()), &Device::Cpu)?;
        let mut xs: Vec<f32> = (self.embed_tokens.forward(&ids)? * self.embed_scale as f64)?
            .flatten_all()?
            .to_vec1()?;

        let (hidden, heads) = (self.hidden, self.heads);
        let mut normed = vec![0f32; tokens * hidden];
        let mut qkv = vec![0f32; tokens * heads.qkv_width()];
        let mut attended = vec![0f32; tokens * heads.out_width()];
        let mut projected = vec![0f32; tokens * hidden];
        let mut gate_up = vec![0f32; tokens * 2 * self.inner];
        let mut activated = vec![0f32; tokens * self.inner];
        let Some(first) = self.layers.first() else {
            candle_core::bail!("the encoder has no layers");
        };
        kernels::rms_norm_rows(&xs, &first.input_norm, self.eps, &mut normed);
        for (i, layer) in self.layers.iter().enumerate() {
            let (rope, window) = match layer.kind {
                LayerType::FullAttention => (&self.global_rope, None),
                // Below the window a sliding layer sees everything.
                LayerType::SlidingAttention => (
                    &self.local_rope,
                    (longest > self.sliding_window).then_some(self.sliding_window),
                ),
            };
            layer.qkv.matmul(&normed, &mut qkv);
            let (row, queries) = (heads.qkv_width(), heads.query * heads.dim);
            kernels::norm_rope(&mut qkv, row, 0, heads.query, &layer.q_norm, self.eps, rope, &positions);
            kernels::norm_rope(
                &mut qkv,
                row,
                queries,
                heads.key_value,
                &layer.k_norm,
                self.eps,
                rope,
                &positions,
            );
            kernels::attention(self.format, &qkv, heads, &lengths, self.scale, window, &mut attended);
            layer.o_proj.matmul(&attended, &mut projected);
            kernels::add_norm(
                &mut xs,
                &projected,
                &layer.post_attention_norm,
                &layer.pre_feedforward_norm,
                self.eps,
                &mut normed,
            );

            layer.gate_up.matmul(&normed, &mut gate_up);
            kernels::gelu_tanh_mul_halves(&gate_up, self.inner, &mut activated);
            layer.down.matmul(&activated, &mut projected);
            // The next block's input norm, or after the last layer the final norm.
            let next_norm = self.layers.get(i + 1).map_or(&self.norm, |next| &next.input_norm);
            kernels::add_norm(
                &mut xs,
                &projected,
                &layer.post_feedforward_norm,
                next_norm,
                self.eps,
                &mut normed,
            );
        }
        Ok(normed)
    }
}
