//! Writes a synthetic index for benchmarking themes at sizes nobody embeds on a laptop:
//! clustered unit vectors (`tests/common/synthetic.rs`) with Chinese-like passages whose words
//! come from their cluster's vocabulary, grouped into dated documents of one main theme each.
//! The true cluster of every passage goes to `labels.txt` beside the index.
//!
//! ```text
//! cargo run --release --example synthetic-index -- --out DIR [--passages 1000000] [--dims 768]
//!     [--clusters 50] [--seed 7] [--model DIR]
//! ```
//!
//! The index is stamped with the model in `--model` (default: the one `scripts/fetch-model.sh`
//! fills) so that `themap themes` runs on it exactly as on a real index, loading that model to
//! rank keywords. Its vectors stand in for that model's: they are not the model's embeddings.

#[path = "../tests/common/synthetic.rs"]
mod synthetic;

use std::path::PathBuf;

use ndarray::Axis;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use themap::corpus::{Metadata, Passage};
use themap::embed::{ModelTokenizer, Prompt};
use themap::index::{store, BuildSettings, DocumentRecord, Index, ModelInfo, PassageRecord};

struct Args {
    out: PathBuf,
    passages: usize,
    dims: usize,
    clusters: usize,
    seed: u64,
    model: PathBuf,
}

/// Passages per document.
const PER_DOCUMENT: usize = 20;
/// Words in each cluster's own vocabulary, and shared by all.
const OWN_WORDS: usize = 40;
const SHARED_WORDS: usize = 300;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse()?;
    let started = std::time::Instant::now();
    let tokenizer = ModelTokenizer::open(&args.model, Some(args.dims))?;
    let mut shape = synthetic::Clustered::new(args.dims, args.seed);
    shape.clusters = args.clusters;
    let (vectors, labels) = shape.labelled(args.passages);
    eprintln!(
        "{} vectors drawn in {:.1} s",
        args.passages,
        started.elapsed().as_secs_f64()
    );

    // Documents hold passages of one cluster: order the rows by cluster, then cut.
    let mut order: Vec<usize> = (0..labels.len()).collect();
    order.sort_by_key(|&row| (labels[row], row));
    let vectors = vectors.select(Axis(0), &order);
    let labels: Vec<usize> = order.iter().map(|&row| labels[row]).collect();

    let mut rng = Xoshiro256PlusPlus::seed_from_u64(args.seed ^ 0x7e47);
    let mut word = || -> String {
        (0..2)
            .map(|_| char::from_u32(rng.gen_range(0x4E00..0x9FA5)).unwrap())
            .collect()
    };
    let shared: Vec<String> = (0..SHARED_WORDS).map(|_| word()).collect();
    let own: Vec<Vec<String>> = (0..args.clusters)
        .map(|_| (0..OWN_WORDS).map(|_| word()).collect())
        .collect();

    let mut rng = Xoshiro256PlusPlus::seed_from_u64(args.seed ^ 0x7e48);
    let mut passages = Vec::with_capacity(labels.len());
    let mut documents = Vec::new();
    for (d, rows) in labels.chunks(PER_DOCUMENT).enumerate() {
        let doc_id = format!("doc{d:07}");
        for (i, &label) in rows.iter().enumerate() {
            let words = rng.gen_range(20..30);
            let text: String = (0..words)
                .map(|_| {
                    if rng.gen_bool(0.6) {
                        // Zipf-like: low ranks far more often.
                        let rank = (rng.gen::<f64>().powi(3) * OWN_WORDS as f64) as usize;
                        own[label][rank].as_str()
                    } else {
                        shared[rng.gen_range(0..SHARED_WORDS)].as_str()
                    }
                })
                .collect::<Vec<_>>()
                .join("");
            let chars = text.chars().count();
            passages.push(PassageRecord {
                hash: themap::hash::sha256_hex(text.as_bytes()),
                passage: Passage {
                    id: format!("{doc_id}#{}", i + 1),
                    doc_id: doc_id.clone(),
                    ordinal: i as u32 + 1,
                    section: None,
                    char_start: i * 60,
                    char_end: i * 60 + chars,
                    line: i + 1,
                    text,
                },
            });
        }
        // Two years of dates, one a day.
        let day = d % 730;
        documents.push(DocumentRecord {
            id: doc_id.clone(),
            path: PathBuf::from(format!("synthetic/{doc_id}.txt")),
            encoding: "UTF-8".into(),
            meta: Metadata {
                title: Some(format!("synthetic document {d}")),
                date: Some(format!(
                    "{}-{:02}-{:02}",
                    2024 + day / 365,
                    (day % 365) / 31 + 1,
                    day % 28 + 1
                )),
                ..Metadata::default()
            },
            passages: rows.len(),
        });
    }

    let index = Index {
        model: ModelInfo {
            name: tokenizer.name(),
            checksum: tokenizer.checksum().to_string(),
            dims: args.dims,
            prompt: Prompt::Document,
            dtypes: Vec::new(),
        },
        settings: BuildSettings {
            sources: vec![PathBuf::from("synthetic")],
            max_tokens: 256,
            min_tokens: 51,
        },
        documents,
        passages,
        vectors,
        clustering_vectors: None,
        clustering_sample: None,
        graph: None,
        generation: None,
    };
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
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.out.as_os_str().is_empty() {
        return Err("--out DIR is required".into());
    }
    Ok(args)
}
