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

    /// Number of clusters (with --tree, per level, top first: 10,40). Default: the number of
    /// distinct labels (of each level).
    #[arg(long, value_name = "N[,N…]", value_delimiter = ',', conflicts_with = "choose_k")]
    k: Vec<usize>,

    /// Choose the number of clusters without the labels: as `themap themes` does with --tree,
    /// by silhouette for flat k-means.
    #[arg(long)]
    choose_k: bool,

    /// Grow the theme tree as `themap themes` does (levels as label columns) and score each
    /// level against its labels, instead of one flat k-means.
    #[arg(long)]
    tree: bool,

    /// Label columns before the text: 2 reads `level1<TAB>level2<TAB>text`. Flat k-means is
    /// scored against the first.
    #[arg(long, default_value_t = 1, value_name = "N")]
    levels: usize,

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

    /// k-means restarts of the final fit (default as `themap themes`: 10, and 3 for the leaves
    /// with --tree).
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

/// How one level of the theme tree matches that level's labels.
#[derive(Serialize)]
struct LevelReport {
    level: usize,
    labels: usize,
    themes: usize,
    chosen_automatically: bool,
    #[serde(flatten)]
    scores: quality::Agreement,
    /// Share of the texts in the largest theme, and in the largest label.
    largest_theme: f64,
    largest_label: f64,
    /// (count, score) of every count the tree tried at this level (see `themap themes --json`).
    count_scores: Vec<(usize, f64)>,
}

#[derive(Serialize)]
struct TreeReport {
    file: PathBuf,
    texts: usize,
    leaves: usize,
    seed: u64,
    levels: Vec<LevelReport>,
    cluster_seconds: f64,
}

pub fn eval_clusters(args: EvalArgs, quiet: bool) -> Result<()> {
    if args.levels == 0 {
        bail!("--levels must be 1 or more (label columns before the text)");
    }
    let (labels, texts) = read_tsv(&args.file, args.levels)?;
    let truth = labels[0].clone();
    let vectors = match &args.vectors {
        Some(path) => read_vectors(path, texts.len(), &args.file)?,
        None => {
            let model = load_model(args.model.as_deref(), None, &args.compute)?;
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            model.embed(&refs, args.prompt, &CliProgress::new(quiet))?
        }
    };
    if let Some(path) = &args.save_vectors {
        themap::fsutil::write_atomic(path, |w| themap::npy::write_array(w, &vectors))?;
    }

    let defaults = if args.tree {
        ClusterParams::for_tree()
    } else {
        ClusterParams::default()
    };
    let params = ClusterParams {
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
    if args.tree {
        return eval_tree(&args, &labels, vectors.view(), params, quiet);
    }
    let distinct = truth.iter().collect::<std::collections::BTreeSet<_>>().len();
    let k = (!args.choose_k).then_some(args.k.first().copied().unwrap_or(distinct));
    let started = Instant::now();
    let params = ClusterParams { k, ..params };
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

/// Grows the theme tree and scores each level against its labels.
fn eval_tree(
    args: &EvalArgs,
    labels: &[Vec<String>],
    vectors: ndarray::ArrayView2<f32>,
    cluster: ClusterParams,
    quiet: bool,
) -> Result<()> {
    let distinct: Vec<usize> = labels
        .iter()
        .map(|level| level.iter().collect::<std::collections::BTreeSet<_>>().len())
        .collect();
    let counts: Vec<Option<usize>> = (0..args.levels)
        .map(|l| match args.choose_k {
            true => None,
            false => Some(args.k.get(l).copied().unwrap_or(distinct[l])),
        })
        .collect();
    let params = cluster::TreeParams {
        counts,
        leaves: None,
        cluster,
    };
    let started = Instant::now();
    let tree = cluster::grow(vectors, &params, &CliProgress::new(quiet))?;
    let cluster_seconds = started.elapsed().as_secs_f64();
    let n = vectors.nrows() as f64;
    let largest = |values: &[usize]| {
        let mut counts = std::collections::HashMap::new();
        for v in values {
            *counts.entry(v).or_insert(0usize) += 1;
        }
        counts.values().copied().max().unwrap_or(0) as f64 / n
    };
    let levels = (0..args.levels)
        .map(|l| {
            let predicted = tree.node_at_level(l + 1);
            let label_ids: Vec<usize> = {
                let mut ids = std::collections::HashMap::new();
                labels[l]
                    .iter()
                    .map(|v| {
                        let next = ids.len();
                        *ids.entry(v).or_insert(next)
                    })
                    .collect()
            };
            LevelReport {
                level: l + 1,
                labels: distinct[l],
                themes: predicted.iter().collect::<std::collections::BTreeSet<_>>().len(),
                chosen_automatically: tree.levels[l].chosen_automatically,
                scores: quality::agreement(&labels[l], &predicted),
                largest_theme: largest(&predicted),
                largest_label: largest(&label_ids),
                count_scores: tree.levels[l].scores.clone(),
            }
        })
        .collect();
    if let Some(path) = &args.save_labels {
        themap::fsutil::write_atomic(path, |w| {
            tree.node_of
                .iter()
                .try_for_each(|&node| writeln!(w, "{}", tree.nodes[node].path_label()))
        })?;
    }
    let report = TreeReport {
        file: args.file.clone(),
        texts: vectors.nrows(),
        leaves: tree.leaf_count,
        seed: args.seed,
        levels,
        cluster_seconds,
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        return Ok(writeln!(out)?);
    }
    writeln!(
        out,
        "{} texts, theme tree of {} leaves in {:.1} s, seed {}",
        report.texts, report.leaves, cluster_seconds, args.seed
    )?;
    for l in &report.levels {
        writeln!(
            out,
            "level {}: {} themes{} for {} labels · NMI {:.4}  ARI {:.4} · largest theme {:.0}% (largest label {:.0}%)",
            l.level,
            l.themes,
            if l.chosen_automatically { " (chosen)" } else { "" },
            l.labels,
            l.scores.nmi,
            l.scores.ari,
            100.0 * l.largest_theme,
            100.0 * l.largest_label
        )?;
    }
    Ok(())
}

/// Unit rows of the `.npy` at `path`, one per line of the labelled `file` (`lines` of them).
pub(super) fn read_vectors(path: &Path, lines: usize, file: &Path) -> Result<ndarray::Array2<f32>> {
    let opened = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let vectors = themap::npy::read_array(&mut std::io::BufReader::new(opened))
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let rows = vectors.nrows();
    if rows != lines {
        bail!(
            "{} holds {rows} vectors for {lines} lines of {}",
            path.display(),
            file.display()
        );
    }
    Ok(cluster::normalize_rows(vectors))
}

/// `label<TAB>text` lines (`levels` labels before the text); a line without them is an error
/// naming the line. Returns the labels of each level and the texts.
pub(super) fn read_tsv(path: &Path, levels: usize) -> Result<(Vec<Vec<String>>, Vec<String>)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {} as UTF-8 text", path.display()))?;
    let mut labels = vec![Vec::new(); levels];
    let mut texts = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.splitn(levels + 1, '\t').collect();
        if fields.len() <= levels {
            bail!(
                "{} line {}: expected {} labels, then the text, separated by tabs",
                path.display(),
                n + 1,
                levels
            );
        }
        for (level, field) in labels.iter_mut().zip(&fields) {
            level.push(field.trim().to_string());
        }
        texts.push(fields[levels].trim().to_string());
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
