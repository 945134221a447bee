//! `themap index`: read, split and embed documents into an index directory, or take vectors
//! computed elsewhere.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use themap::embed::output::VectorsMeta;
use themap::embed::Prompt;
use themap::index::{import, store, BuildSettings, Index, Vectors};

use super::progress::CliProgress;
use super::{load_model, model_info, open_tokenizer, output, read_corpus, split_options, Compute, Locations, Reading};

#[derive(Debug, Args)]
pub struct IndexArgs {
    /// Files and folders to index (.txt, .md, .jsonl; folders recursively).
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
    /// text, in order.
    #[arg(long, value_name = "FILE.npy")]
    vectors: Option<PathBuf>,

    /// With --vectors: the clustering-prompt vectors of the same input (`themap embed
    /// --prompt clustering`), kept for `themap themes --vectors clustering`.
    #[arg(long, value_name = "FILE.npy", requires = "vectors")]
    clustering_vectors: Option<PathBuf>,

    /// Embed every passage again instead of reusing vectors of unchanged passages.
    #[arg(long, conflicts_with = "vectors")]
    rebuild: bool,

    /// Build the search graph afresh from the current passages, reclaiming the space of removed
    /// or changed ones (which are already left out of results). Without paths, re-reads the
    /// index's sources as usual; nothing unchanged is embedded again.
    #[arg(long)]
    compact: bool,

    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

pub fn index(args: IndexArgs, quiet: bool) -> Result<()> {
    let started = Instant::now();
    // A rebuild from given paths needs nothing from the old index, so it also repairs a
    // damaged one (the fix its error message names).
    // --compact replaces the graph, so it also repairs a damaged graph file.
    let previous = if store::exists(&args.at.index) && !(args.rebuild && !args.paths.is_empty()) {
        Some(if args.compact {
            store::load_without_graph(&args.at.index)?
        } else {
            store::load(&args.at.index)?
        })
    } else {
        None
    };
    let sources = match (&previous, args.paths.is_empty()) {
        (_, false) => args.paths.clone(),
        (Some(previous), true) => previous.settings.sources.clone(),
        (None, true) => {
            anyhow::bail!("give the files or folders to index, e.g. `themap index data/`")
        }
    };
    let given = args.vectors.as_deref().map(import::read_meta).transpose()?;
    // Given vectors decide the size; the model's weights are then not needed at all.
    let dims = args.dims.or(given.as_ref().map(|meta| meta.settings.dims));
    let tokenizer = open_tokenizer(args.at.model.as_deref(), dims)?;
    let split = split_options(&args.reading, &tokenizer);
    let corpus = read_corpus(&sources, &args.reading, &split, &tokenizer)?;
    let settings = BuildSettings {
        sources: absolute(&sources),
        max_tokens: split.max_tokens,
        min_tokens: split.min_tokens,
    };
    // Index::build reuses vectors only from an index of the same model.
    let previous = previous.filter(|_| !args.rebuild);
    let progress = CliProgress::new(quiet);

    let (built, stats) = match given {
        Some(meta) => {
            let model = model_info(&tokenizer, Some(meta.settings.dtype));
            let check = |path: &Path, meta: &VectorsMeta, prompt: Prompt| {
                let expected = import::Expected {
                    model: &model,
                    prompt,
                    max_tokens: split.max_tokens,
                    min_tokens: split.min_tokens,
                    passages: &corpus.passages,
                };
                import::read_checked(path, meta, &expected)
            };
            let search = check(
                args.vectors.as_deref().expect("meta read from it"),
                &meta,
                Prompt::Document,
            )?;
            let clustering = match args.clustering_vectors.as_deref() {
                Some(path) => Some(check(path, &import::read_meta(path)?, Prompt::Clustering)?),
                None => None,
            };
            let vectors = Vectors::Given { search, clustering };
            Index::build(&corpus, vectors, model, settings, previous.as_ref(), &progress)?
        }
        None => {
            let embedder = load_model(args.at.model.as_deref(), args.dims, &args.compute)?;
            let model = model_info(&tokenizer, Some(embedder.dtype()));
            let vectors = Vectors::Embed(&embedder);
            Index::build(&corpus, vectors, model, settings, previous.as_ref(), &progress)?
        }
    };
    store::save(&built, &args.at.index)
        .with_context(|| format!("index not written; {} is unchanged", args.at.index.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    output::index_summary(&stats, &args.at.index, seconds, corpus.skipped.len(), args.json)
}

/// Sources are stored absolute, so `themap index` with no paths works from any directory.
fn absolute(paths: &[PathBuf]) -> Vec<PathBuf> {
    paths
        .iter()
        .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone()))
        .collect()
}
