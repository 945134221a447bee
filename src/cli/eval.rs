//! `themap eval-clusters`: how well themap's clustering recovers known labels.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::Serialize;
use themap::cluster::{self, quality, ClusterParams};
use themap::embed::{Embedder, Prompt};

use super::{load_model, progress::CliProgress, Compute};

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Labelled texts, one per line: `label<TAB>text`.
    file: PathBuf,

    /// Number of clusters. Default: the number of distinct labels.
    #[arg(long, value_name = "N", conflicts_with = "choose_k")]
    k: Option<usize>,

    /// Choose the number of clusters as `themap themes` does (silhouette), without the labels.
    #[arg(long)]
    choose_k: bool,

    /// Prompt the texts are embedded with.
    #[arg(long, value_enum, default_value_t = Prompt::Clustering)]
    prompt: Prompt,

    /// Use these vectors (`.npy`, one row per line of FILE) instead of embedding.
    #[arg(long, value_name = "FILE.npy")]
    vectors: Option<PathBuf>,

    /// Save the vectors used (`.npy`), e.g. to cluster the same vectors with another tool.
    #[arg(long, value_name = "FILE.npy")]
    save_vectors: Option<PathBuf>,

    /// Save the predicted cluster of each line, one number per line.
    #[arg(long, value_name = "FILE")]
    save_labels: Option<PathBuf>,

    /// Random seed for k-means.
    #[arg(long, default_value_t = 42)]
    seed: u64,

    /// k-means restarts of the final fit (default as `themap themes`).
    #[arg(long, value_name = "N")]
    runs: Option<usize>,

    /// Most Lloyd iterations of each restart (default as `themap themes`).
    #[arg(long, value_name = "N")]
    iterations: Option<u64>,

    /// Run every restart's iterations, however little the centroids move.
    #[arg(long)]
    no_early_stop: bool,

    /// Most texts the restarts train on (default as `themap themes`).
    #[arg(long, value_name = "N")]
    train_sample: Option<usize>,

    /// Lloyd iterations over all texts after the restarts (default as `themap themes`).
    #[arg(long, value_name = "N")]
    refine_iterations: Option<u64>,

    /// Model directory. Default as for `themap index`.
    #[arg(long, env = "THEMAP_MODEL", value_name = "DIR")]
    model: Option<PathBuf>,

    #[command(flatten)]
    compute: Compute,

    /// Print the scores as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Report {
    file: PathBuf,
    texts: usize,
    labels: usize,
    k: usize,
    prompt: Prompt,
    seed: u64,
    #[serde(flatten)]
    scores: quality::Agreement,
    cluster_seconds: f64,
    /// The steps of `cluster_seconds`.
    timings: cluster::Timings,
}

pub fn eval_clusters(args: EvalArgs, quiet: bool) -> Result<()> {
    let (truth, texts) = read_tsv(&args.file)?;
    let vectors = match &args.vectors {
        Some(path) => {
            let file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
            let vectors = themap::npy::read_array(&mut std::io::BufReader::new(file))
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            let rows = vectors.nrows();
            if rows != texts.len() {
                bail!(
                    "{} holds {rows} vectors for {} lines of {}",
                    path.display(),
                    texts.len(),
                    args.file.display()
                );
            }
            cluster::normalize_rows(vectors)
        }
        None => {
            let model = load_model(args.model.as_deref(), None, &args.compute)?;
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            model.embed(&refs, args.prompt, &CliProgress::new(quiet))?
        }
    };
    if let Some(path) = &args.save_vectors {
        themap::fsutil::write_atomic(path, |w| themap::npy::write_array(w, &vectors))?;
    }

    let distinct = truth.iter().collect::<std::collections::BTreeSet<_>>().len();
    let k = (!args.choose_k).then_some(args.k.unwrap_or(distinct));
    let started = Instant::now();
    let defaults = ClusterParams::default();
    let params = ClusterParams {
        k,
        seed: args.seed,
        runs: args.runs.unwrap_or(defaults.runs),
        max_iterations: args.iterations.unwrap_or(defaults.max_iterations),
        // linfa needs a positive tolerance: the smallest one never stops a run early.
        tolerance: if args.no_early_stop {
            f32::MIN_POSITIVE
        } else {
            defaults.tolerance
        },
        train_sample: args.train_sample.unwrap_or(defaults.train_sample),
        refine_iterations: args.refine_iterations.unwrap_or(defaults.refine_iterations),
        ..defaults
    };
    let clustering = cluster::cluster(vectors.view(), &params, &CliProgress::new(quiet))?;
    let cluster_seconds = started.elapsed().as_secs_f64();
    if let Some(path) = &args.save_labels {
        themap::fsutil::write_atomic(path, |w| clustering.labels.iter().try_for_each(|l| writeln!(w, "{l}")))?;
    }

    let k = clustering.k();
    let report = Report {
        file: args.file.clone(),
        texts: texts.len(),
        labels: distinct,
        k,
        prompt: args.prompt,
        seed: args.seed,
        scores: quality::agreement(&truth, &clustering.labels),
        cluster_seconds,
        timings: clustering.timings,
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        let s = report.scores;
        writeln!(
            out,
            "{} texts, {} labels, k = {}, prompt {:?}, seed {}",
            report.texts, report.labels, k, args.prompt, args.seed
        )?;
        writeln!(
            out,
            "NMI {:.4}  ARI {:.4}  V-measure {:.4} (homogeneity {:.4}, completeness {:.4})",
            s.nmi, s.ari, s.v_measure, s.homogeneity, s.completeness
        )?;
    }
    Ok(())
}

/// `label<TAB>text` lines; a line without a tab is an error naming the line.
fn read_tsv(path: &Path) -> Result<(Vec<String>, Vec<String>)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {} as UTF-8 text", path.display()))?;
    let mut labels = Vec::new();
    let mut texts = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let Some((label, body)) = line.split_once('\t') else {
            bail!("{} line {}: expected `label<TAB>text`", path.display(), n + 1);
        };
        labels.push(label.trim().to_string());
        texts.push(body.trim().to_string());
    }
    if texts.len() < 2 {
        bail!(
            "{} has {} labelled lines; 2 at least are needed",
            path.display(),
            texts.len()
        );
    }
    Ok((labels, texts))
}
