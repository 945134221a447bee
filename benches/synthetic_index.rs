//! Writes a synthetic index for benchmarking themes at sizes nobody embeds on a laptop:
//! clustered unit vectors (`tests/common/synthetic.rs`) with Chinese-like passages whose words
//! come from their cluster's vocabulary, grouped into dated documents of one main theme each.
//! The true cluster of every passage goes to `labels.txt` beside the index.
//!
//! ```text
//! cargo run --release --example synthetic-index -- --out DIR [--passages 1000000] [--dims 768]
//!     [--clusters 50] [--seed 7] [--model DIR] [--graph]
//! ```
//!
//! `--graph` gives the index its search graph (as `themap index` would), for lookups at scale.
//!
//! ```text
//! ```
//!
//! The index is stamped with the model in `--model` (default: the one `scripts/fetch-model.sh`
//! fills) so that `themap themes` runs on it exactly as on a real index, loading that model to
//! rank keywords. Its vectors stand in for that model's: they are not the model's embeddings.

#[path = "../tests/common/synthetic.rs"]
mod synthetic;

use std::path::PathBuf;

use themap::embed::{ModelTokenizer, Prompt};
use themap::index::{store, ModelInfo};

struct Args {
    out: PathBuf,
    passages: usize,
    dims: usize,
    clusters: usize,
    seed: u64,
    model: PathBuf,
    graph: bool,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse()?;
    let started = std::time::Instant::now();
    let tokenizer = ModelTokenizer::open(&args.model, Some(args.dims))?;
    let mut shape = synthetic::Clustered::new(args.dims, args.seed);
    shape.clusters = args.clusters;
    let model = ModelInfo {
        name: tokenizer.name(),
        checksum: tokenizer.checksum().to_string(),
        dims: args.dims,
        prompt: Prompt::Document,
        dtypes: Vec::new(),
    };
    let (mut index, labels) = synthetic::index(&shape, args.passages, model);
    if args.graph {
        eprintln!("building the search graph of {} passages", index.passages.len());
        index.compact(&themap::progress::Silent)?;
    }
    store::save(&index, &store::lock(&args.out, false)?)?;
    let truth: String = labels.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(args.out.join("labels.txt"), truth)?;
    eprintln!(
        "wrote {} passages in {} documents to {} in {:.1} s",
        index.passages.len(),
        index.documents.len(),
        args.out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        out: PathBuf::new(),
        passages: 1_000_000,
        dims: 768,
        clusters: 50,
        seed: 7,
        model: std::env::var_os("THEMAP_MODEL").map(PathBuf::from).unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/themap/models/embeddinggemma-300m")
        }),
        graph: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--out" => args.out = PathBuf::from(value()?),
            "--passages" => args.passages = value()?.parse().map_err(|e| format!("--passages: {e}"))?,
            "--dims" => args.dims = value()?.parse().map_err(|e| format!("--dims: {e}"))?,
            "--clusters" => args.clusters = value()?.parse().map_err(|e| format!("--clusters: {e}"))?,
            "--seed" => args.seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--model" => args.model = PathBuf::from(value()?),
            "--graph" => args.graph = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.out.as_os_str().is_empty() {
        return Err("--out DIR is required".into());
    }
    Ok(args)
}
