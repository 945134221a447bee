//! Command-line interface: argument structs (clap derive) and one function per command.

mod embed;
mod eval;
mod growth;
mod index;
mod output;
mod passages;
mod progress;
mod search;
mod themes;

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use themap::corpus::{self, Corpus, ReadOptions, SplitOptions};
use themap::embed::{BatchLimits, DeviceChoice, Dtype, EmbedOptions, EmbeddingModel, Kernel, ModelTokenizer, Prompt};
use themap::index::{Filter, Limits, ModelInfo};

/// Find similar passages and recurring themes in collections of multilingual articles.
///
/// themap splits documents into passages, embeds them with EmbeddingGemma-300M (run locally by
/// candle), and answers similarity queries in any language.
#[derive(Debug, Parser)]
#[command(name = "themap", version, about, long_about, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,

    /// More log output (-v: debug for themap, -vv: debug for everything).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Only warnings and errors on stderr; no progress bar.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Read, split and embed documents into an index directory.
    ///
    /// Re-running reuses the vectors of passages whose text has not changed, so adding a file
    /// embeds only its passages. The previous index stays intact until the new one is complete.
    Index(index::IndexArgs),
    /// Embed texts into a .npy file, streaming: any input size in bounded memory, resumable.
    ///
    /// Interrupted (Ctrl-C, a lost machine), the same command run again continues where it
    /// stopped and writes the same file an uninterrupted run would have.
    Embed(embed::EmbedArgs),
    /// Show how documents are cleaned and split into passages, without embedding anything.
    Passages(passages::PassagesArgs),
    /// Find the passages closest in meaning to a query, in any language.
    Search(search::SearchArgs),
    /// Find the passages closest to a passage of the index, by its id (e.g. `001_3e4df89d6a5f2c88#7`).
    Similar(search::SimilarArgs),
    /// Find the recurring themes of the index: keywords, where and when each recurs.
    Themes(themes::ThemesArgs),
    /// Write the theme map report: index.html (map, themes, heatmap, timeline), themes.json,
    /// themes.md and assignments.tsv.
    Report(themes::ReportArgs),
    /// Cluster labelled texts (`label<TAB>text`) and score the clusters against the labels
    /// (NMI, ARI, V-measure).
    EvalClusters(eval::EvalArgs),
    /// Simulate an archive that grows, on labelled texts and their vectors: fit themes, add
    /// passages (one class new, one no longer arriving), update the kept themes, and score the
    /// update against the themes before it and against a refit from scratch.
    EvalGrowth(growth::GrowthArgs),
}

/// Where the index and the model are.
#[derive(Debug, Args)]
struct Locations {
    /// Index directory.
    #[arg(long, env = "THEMAP_INDEX", default_value = "themap-index", value_name = "DIR")]
    index: PathBuf,

    /// Model directory (config.json, tokenizer.json, model.safetensors, ...).
    /// Default: ~/.cache/themap/models/embeddinggemma-300m, filled by scripts/fetch-model.sh.
    #[arg(long, env = "THEMAP_MODEL", value_name = "DIR")]
    model: Option<PathBuf>,
}

/// Where and how the model runs. The default is the CPU with default batches: for a query or
/// two, where a GPU would not pay.
#[derive(Debug, Default, Args)]
struct Compute {
    /// Device to run the model on: cpu, cuda or cuda:N (CUDA needs a build with `--features cuda`).
    #[arg(long, default_value = "cpu", value_name = "DEVICE", env = "THEMAP_DEVICE")]
    device: DeviceChoice,

    /// Number format of the model: f32 (the reference's own arithmetic), bf16 (within cosine
    /// 0.999 of the reference; the default on a GPU) or f16 (GPU only). Default on the CPU: the
    /// faster of f32 and bf16 on this CPU, timed once and kept in ~/.cache/themap/cpu (-v shows
    /// the timings).
    #[arg(long, value_enum, value_name = "TYPE")]
    dtype: Option<Dtype>,

    /// On the CPU, the matrix-product kernel, instead of the fastest as timed: candle (gemm, f32),
    /// cpu-f32 or cpu-bf16 (themap's own, with AVX-512). For comparing them.
    #[arg(long, value_enum, value_name = "KERNEL", env = "THEMAP_CPU_KERNEL")]
    cpu_kernel: Option<Kernel>,

    /// Most tokens in one forward pass (padding included on a GPU); larger batches suit a GPU.
    /// Default: 4096 on the CPU, 65536 on a GPU.
    #[arg(long, value_name = "N")]
    batch_tokens: Option<usize>,

    /// Most texts in one forward pass. Default: 64 on the CPU, 1024 on a GPU.
    #[arg(long, value_name = "N")]
    batch_size: Option<usize>,
}

impl Compute {
    fn device_kind(&self) -> &'static str {
        match self.device {
            DeviceChoice::Cpu => "cpu",
            DeviceChoice::Cuda(_) => "cuda",
        }
    }

    fn batch(&self) -> BatchLimits {
        let default = match self.device {
            DeviceChoice::Cpu => BatchLimits::default(),
            // A GPU is only busy with large batches; its memory holds them easily at 300M parameters.
            DeviceChoice::Cuda(_) => BatchLimits {
                max_texts: 1024,
                max_tokens: 65_536,
            },
        };
        BatchLimits {
            max_texts: self.batch_size.unwrap_or(default.max_texts),
            max_tokens: self.batch_tokens.unwrap_or(default.max_tokens),
        }
    }
}

/// How documents are read and split.
#[derive(Debug, Args)]
struct Reading {
    /// Text encoding of files that are not UTF-8 (e.g. gb18030, gbk, big5); detected if not given.
    #[arg(long, value_name = "NAME")]
    encoding: Option<String>,

    /// Most tokens in a passage; long paragraphs are cut at sentence ends to fit.
    #[arg(long, default_value_t = SplitOptions::default().max_tokens, value_name = "N")]
    max_tokens: usize,
}

/// How results are found and which passages may be among them.
#[derive(Debug, Args)]
struct Lookup {
    /// Number of passages to show.
    #[arg(short, default_value_t = 10, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    k: u32,

    /// At most N passages from any one document, so other documents get a place (0: no limit).
    #[arg(long, default_value_t = 3, value_name = "N")]
    per_doc: usize,

    /// Search width in the HNSW graph: larger is slower and closer to exact (default 64).
    /// Giving it searches the graph even where an exact scan would be used.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10_000), conflicts_with = "exact")]
    ef: Option<u32>,

    /// Score every passage (exact). The default below 20,000 candidate passages.
    #[arg(long)]
    exact: bool,

    /// Only passages from this document (id or file name; repeatable).
    #[arg(long = "doc", value_name = "ID")]
    documents: Vec<String>,

    /// Only documents dated on or after DATE (YYYY, YYYY-MM or YYYY-MM-DD).
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    since: Option<String>,

    /// Only documents dated on or before DATE (YYYY, YYYY-MM or YYYY-MM-DD; 2025-11 includes all of November).
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    until: Option<String>,

    /// Only documents with this tag (repeatable: any of them).
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
}

impl Lookup {
    fn limits(&self) -> Limits {
        Limits {
            k: self.k as usize,
            per_doc: (self.per_doc > 0).then_some(self.per_doc),
            ef: self.ef.map(|ef| ef as usize),
            exact: self.exact,
        }
    }

    fn filter(&self) -> Filter {
        Filter {
            documents: self.documents.clone(),
            since: self.since.clone(),
            until: self.until.clone(),
            tags: self.tags.clone(),
        }
    }
}

/// Accepts `YYYY`, `YYYY-MM` and `YYYY-MM-DD`, the forms dates are compared in.
fn parse_date(text: &str) -> std::result::Result<String, String> {
    let digits = |part: &str, len: usize| part.len() == len && part.bytes().all(|b| b.is_ascii_digit());
    let parts: Vec<&str> = text.split('-').collect();
    let number = |part: &str| part.parse::<u32>().unwrap_or(0);
    let month_ok = |m: &str| digits(m, 2) && (1..=12).contains(&number(m));
    let ok = match parts.as_slice() {
        [y] => digits(y, 4),
        [y, m] => digits(y, 4) && month_ok(m),
        [y, m, d] => {
            digits(y, 4)
                && month_ok(m)
                && digits(d, 2)
                && (1..=days_in_month(number(y), number(m))).contains(&number(d))
        }
        _ => false,
    };
    if ok {
        Ok(text.to_string())
    } else {
        Err(format!(
            "{text:?} is not a date: use YYYY, YYYY-MM or YYYY-MM-DD (a real month and day)"
        ))
    }
}

fn days_in_month(year: u32, month: u32) -> u32 {
    let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Index(args) => index::index(args, cli.quiet),
        Command::Embed(args) => embed::embed(args, cli.quiet),
        Command::Passages(args) => passages::passages(args),
        Command::Search(args) => search::search(args, cli.quiet),
        Command::Similar(args) => search::similar(args),
        Command::Themes(args) => themes::themes(args, cli.quiet),
        Command::Report(args) => themes::report(args, cli.quiet),
        Command::EvalClusters(args) => eval::eval_clusters(args, cli.quiet),
        Command::EvalGrowth(args) => growth::eval_growth(args, cli.quiet),
    }
}

/// Reads and splits `sources`, warning about every file passed over.
fn read_corpus(
    sources: &[PathBuf],
    reading: &Reading,
    split: &SplitOptions,
    tokenizer: &ModelTokenizer,
) -> Result<Corpus> {
    let corpus = corpus::load(sources, read_options(reading)?, split, &|text| {
        tokenizer.count_tokens(text)
    })?;
    for skipped in &corpus.skipped {
        tracing::warn!("skipped {}: {}", skipped.path.display(), skipped.reason);
    }
    for doc in &corpus.documents {
        for note in &doc.notes {
            tracing::warn!("{}: {note}", doc.path.display());
        }
    }
    Ok(corpus)
}

fn read_options(reading: &Reading) -> Result<ReadOptions> {
    let encoding = reading
        .encoding
        .as_deref()
        .map(|label| {
            encoding_rs::Encoding::for_label(label.as_bytes()).ok_or_else(|| {
                themap::Error::InvalidArgument(format!("unknown encoding {label:?} (try utf-8, gb18030, gbk, big5)"))
            })
        })
        .transpose()?;
    Ok(ReadOptions { encoding })
}

/// The passage budget, kept below the model's input limit (which also holds the prompt).
fn split_options(reading: &Reading, tokenizer: &ModelTokenizer) -> SplitOptions {
    SplitOptions::with_max_tokens(reading.max_tokens.min(tokenizer.max_tokens() - 32))
}

fn embed_options(dims: Option<usize>, compute: &Compute) -> EmbedOptions {
    EmbedOptions {
        dims,
        batch: compute.batch(),
        device: compute.device,
        dtype: compute.dtype,
        kernel: compute.cpu_kernel,
        probe_cache: Some(cache_dir().join("cpu")),
    }
}

/// The model, weights loaded.
fn load_model(dir: Option<&Path>, dims: Option<usize>, compute: &Compute) -> Result<EmbeddingModel> {
    Ok(EmbeddingModel::load(&model_dir(dir), &embed_options(dims, compute))?)
}

/// The model's tokenizer and identity only: for work that embeds nothing.
fn open_tokenizer(dir: Option<&Path>, dims: Option<usize>) -> Result<ModelTokenizer> {
    Ok(ModelTokenizer::open(&model_dir(dir), dims)?)
}

/// The model's identity; `dtype`, the format vectors are computed in, where any will be.
fn model_info(tokenizer: &ModelTokenizer, dtype: Option<Dtype>) -> ModelInfo {
    ModelInfo {
        name: tokenizer.name(),
        checksum: tokenizer.checksum().to_string(),
        dims: tokenizer.dim(),
        prompt: Prompt::Document,
        dtypes: dtype.into_iter().collect(),
    }
}

/// The model directory given, else the default one.
fn model_dir(dir: Option<&Path>) -> PathBuf {
    dir.map(Path::to_path_buf).unwrap_or_else(default_model_dir)
}

/// `$THEMAP_CACHE/models/embeddinggemma-300m`.
fn default_model_dir() -> PathBuf {
    cache_dir().join("models").join("embeddinggemma-300m")
}

/// `$THEMAP_CACHE`, defaulting to `~/.cache/themap`: the model, and the CPU's kernel timings.
fn cache_dir() -> PathBuf {
    std::env::var_os("THEMAP_CACHE").map(PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
        home.join(".cache").join("themap")
    })
}
