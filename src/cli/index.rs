//! `themap index`: read, split and embed documents into an index directory, or take vectors
//! computed elsewhere.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use themap::embed::{LazyModel, Prompt};
use themap::index::{import, store, BuildSettings, Index, Vectors};

use super::progress::CliProgress;
use super::{embed_options, model_dir, model_info, output, read_corpus, split_options, Compute, Locations, Reading};

#[derive(Debug, Args)]
pub struct IndexArgs {
    /// Files and folders to index (.txt, .md, .jsonl, .html web pages, .rss/.atom/.xml feeds;
    /// folders recursively).
    /// Default: the sources the index was last built from.
    paths: Vec<PathBuf>,

    #[command(flatten)]
    at: Locations,

    #[command(flatten)]
    reading: Reading,

    /// Vector size: 768, or 512/256/128 (Matryoshka truncation: smaller index, slightly less accurate).
    /// With --vectors, the size they were made with.
    #[arg(long, value_name = "N")]
    dims: Option<usize>,

    #[command(flatten)]
    compute: Compute,

    /// Take the passages' vectors from this file instead of embedding: the output of
    /// `themap embed` run on the same input (on a GPU machine, say), with the document prompt.
    /// It is checked against the input: model, prompt, size, passage split, and every id and
    /// text, in order. A folder gives the vectors in parts (its .npy files in name order, e.g.
    /// the shards of `scripts/ray/embed.py`).
    #[arg(long, value_name = "FILE.npy|DIR")]
    vectors: Option<PathBuf>,

    /// With --vectors: the clustering-prompt vectors of the same input (`themap embed
    /// --prompt clustering`), kept for `themap themes --vectors clustering`.
    #[arg(long, value_name = "FILE.npy|DIR", requires = "vectors")]
    clustering_vectors: Option<PathBuf>,

    /// Embed every passage again instead of reusing vectors of unchanged passages.
    #[arg(long, conflicts_with = "vectors")]
    rebuild: bool,

    /// Build the search graph afresh from the current passages, reclaiming the space of removed
    /// or changed ones (which are already left out of results). Without paths, re-reads the
    /// index's sources as usual; nothing unchanged is embedded again.
    #[arg(long)]
    compact: bool,

    /// When another command is writing the index, wait for it to finish instead of stopping.
    #[arg(long)]
    wait: bool,

    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

pub fn index(args: IndexArgs, quiet: bool) -> Result<()> {
    let new_folder = !args.at.index.exists();
    // Held from reading the previous index to committing the new one, so no other writer's
    // work is lost in between; taken first, so a busy or impossible --index fails before any work.
    let lock = store::lock(&args.at.index, args.wait)?;
    let result = index_locked(&args, &lock, quiet);
    if result.is_err() && new_folder {
        // A first index that failed leaves nothing behind, not an empty folder.
        let _ = std::fs::remove_dir_all(&args.at.index);
    }
    result
}

fn index_locked(args: &IndexArgs, lock: &store::WriteLock, quiet: bool) -> Result<()> {
    let started = Instant::now();
    // A rebuild needs nothing from the old index but its sources (in the manifest), so it also
    // repairs a damaged one (the fix its error message names). --compact replaces the graph, so
    // it also repairs a damaged graph file.
    let exists = store::exists(&args.at.index);
    let previous = match (exists && !args.rebuild, args.compact) {
        (false, _) => None,
        (true, true) => Some(store::load_without_graph(&args.at.index)?),
        (true, false) => Some(store::load(&args.at.index)?),
    };
    let sources = if !args.paths.is_empty() {
        if exists {
            note_replaced_sources(&store::settings(&args.at.index)?.sources, &args.paths);
        }
        args.paths.clone()
    } else if exists {
        store::settings(&args.at.index)
            .context("give the files or folders to index: the index's own list of them cannot be read")?
            .sources
    } else {
        anyhow::bail!("give the files or folders to index, e.g. `themap index data/`")
    };
    let given = args.vectors.as_deref().map(import::Given::open).transpose()?;
    // Given vectors decide the size; the model's weights are then not needed at all.
    let dims = args.dims.or(given.as_ref().map(|given| given.meta().settings.dims));
    // The weights load only if some passage needs embedding: an update that changed nothing,
    // or given vectors, need only the tokenizer.
    let model = LazyModel::open(&model_dir(args.at.model.as_deref()), embed_options(dims, &args.compute))?;
    let tokenizer = model.tokenizer();
    let split = split_options(&args.reading, tokenizer);
    let corpus = read_corpus(&sources, &args.reading, &split, tokenizer)?;
    let settings = BuildSettings {
        sources: absolute(&sources),
        max_tokens: split.max_tokens,
        min_tokens: split.min_tokens,
    };
    let progress = CliProgress::new(quiet);

    let (built, stats) = match given {
        Some(given) => {
            let info = model_info(tokenizer, Some(given.meta().settings.dtype));
            let check = |given: &import::Given, prompt: Prompt| {
                let expected = import::Expected {
                    model: &info,
                    prompt,
                    max_tokens: split.max_tokens,
                    min_tokens: split.min_tokens,
                    passages: &corpus.passages,
                };
                given.read_checked(&expected)
            };
            let search = check(&given, Prompt::Document)?;
            let clustering = match args.clustering_vectors.as_deref() {
                Some(path) => Some(check(&import::Given::open(path)?, Prompt::Clustering)?),
                None => None,
            };
            let vectors = Vectors::Given { search, clustering };
            Index::build(&corpus, vectors, info, settings, previous.as_ref(), &progress)?
        }
        None => {
            let info = model_info(tokenizer, Some(model.dtype()?));
            let vectors = Vectors::Embed(&model);
            Index::build(&corpus, vectors, info, settings, previous.as_ref(), &progress)?
        }
    };
    let themes = if exists {
        file_under_kept_themes(&args.at.index, &built)
    } else {
        None
    };
    store::save_with_themes(&built, themes.as_ref(), lock)
        .with_context(|| format!("index not written; {} is unchanged", args.at.index.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    output::index_summary(&stats, &args.at.index, seconds, corpus.skipped.len(), args.json)
}

/// The kept theme model with the index's new passages filed under its themes (nearest centroid;
/// the next `themap themes` places them properly). `None` keeps the model's files as they are:
/// there is none, or it was fitted on another model's vectors (`themap themes` then starts a
/// new one and says so), or it cannot be read (said here; `themap themes --refit` replaces it).
fn file_under_kept_themes(dir: &std::path::Path, built: &Index) -> Option<themap::index::kept::KeptThemes> {
    let mut kept = match store::load_themes(dir) {
        Ok(kept) => kept?,
        Err(e) => {
            tracing::warn!("{e}");
            return None;
        }
    };
    if !kept.fits(&built.model) {
        return None;
    }
    let filed = kept.file_new(&built.passages, built.vectors.view());
    if filed > 0 {
        tracing::info!(
            "filed {filed} new passages under the kept themes; `themap themes` places them and finds new themes"
        );
    }
    Some(kept)
}

/// Paths given replace the index's sources (the index mirrors what it was last given): say so
/// when sources drop out, since their documents leave the index.
fn note_replaced_sources(old: &[PathBuf], given: &[PathBuf]) {
    let given = absolute(given);
    let dropped: Vec<String> = old
        .iter()
        .filter(|p| !given.contains(p))
        .map(|p| p.display().to_string())
        .collect();
    if !dropped.is_empty() {
        tracing::warn!(
            "the index now holds only the paths given; documents from {} leave it (to add files, give the old sources too, e.g. `themap index {} NEW...`)",
            dropped.join(", "),
            dropped.join(" ")
        );
    }
}

/// Sources are stored absolute, so `themap index` with no paths works from any directory.
fn absolute(paths: &[PathBuf]) -> Vec<PathBuf> {
    paths
        .iter()
        .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone()))
        .collect()
}
