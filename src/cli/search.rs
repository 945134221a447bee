//! `themap search` and `themap similar`: the passages nearest a query or a passage.
//!
//! Both open the index in place ([`MappedIndex`]): at a million passages, opening reads a few
//! megabytes instead of gigabytes. `search` loads the model only once the index and the filter
//! are known to be good, and `--queries` loads it once for a whole file of queries.

use std::io::BufRead;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use themap::embed::{Embedder, Prompt};
use themap::index::{store, MappedIndex};
use themap::Progress;

use super::progress::CliProgress;
use super::{load_model, model_info, output, Compute, Locations, Lookup};

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// What to look for: a question, a phrase or a passage of text, in any language.
    #[arg(required_unless_present = "queries")]
    query: Option<String>,

    /// Look up every line of FILE (`-`: standard input) as a query, loading the model and the
    /// index once: for many lookups, much faster than one command each. Blank lines are skipped.
    /// Results follow each query; with --json, one JSON object per line.
    #[arg(long, value_name = "FILE", conflicts_with = "query")]
    queries: Option<PathBuf>,

    #[command(flatten)]
    lookup: Lookup,

    #[command(flatten)]
    at: Locations,

    /// Print results as JSON (full passage text included).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct SimilarArgs {
    /// Passage id, as shown by `themap search`.
    id: String,

    #[command(flatten)]
    lookup: Lookup,

    /// Only passages from other documents.
    #[arg(long)]
    other_docs: bool,

    #[command(flatten)]
    at: Locations,

    /// Print results as JSON (full passage text included).
    #[arg(long)]
    json: bool,
}

/// Queries in a batch embedded per model call: bounds memory, and moves the progress bar.
const QUERY_CHUNK: usize = 256;

pub fn search(args: SearchArgs, quiet: bool) -> Result<()> {
    let queries = read_queries(&args)?;
    let started = Instant::now();
    let index = MappedIndex::open(&args.at.index)?;
    // Before the model loads: a filter that matches nothing is a mistake to report at once.
    index.check_filter(&args.lookup.filter())?;
    let opened = started.elapsed().as_secs_f64();

    let model = load_model(args.at.model.as_deref(), Some(index.model.dims), &Compute::default())?;
    store::check_model(&index.model, &model_info(model.tokenizer(), None), &args.at.index)?;
    let loaded = started.elapsed().as_secs_f64() - opened;
    tracing::debug!("opened the index in {opened:.3} s, loaded the model in {loaded:.3} s");

    // Progress only for a file of queries: one query needs none.
    let batch = args.queries.is_some();
    let bar;
    let progress: &dyn Progress = match batch {
        true => {
            bar = CliProgress::new(quiet);
            &bar
        }
        false => &themap::Silent,
    };
    progress.start("searching", queries.len() as u64, "queries");
    let mut out = std::io::stdout().lock();
    for chunk in queries.chunks(QUERY_CHUNK) {
        for query in chunk {
            if model.tokenizer().is_cut(query, Prompt::Query)? {
                tracing::warn!(
                    "a query is longer than the model reads ({} tokens); only its start is searched for: {}",
                    model.tokenizer().max_tokens(),
                    themap::corpus::snippet(query, 60)
                );
            }
        }
        let texts: Vec<&str> = chunk.iter().map(String::as_str).collect();
        let embedded = Instant::now();
        let vectors = model.embed(&texts, Prompt::Query, &themap::Silent)?;
        let embedded = embedded.elapsed().as_secs_f64();
        let searched = Instant::now();
        for (query, vector) in chunk.iter().zip(vectors.outer_iter()) {
            let found = index.search(vector, &args.lookup.limits(), &args.lookup.filter())?;
            output::hits(&mut out, &index.documents, &found, query, args.json, batch)?;
        }
        progress.advance(chunk.len() as u64, 0);
        tracing::debug!(
            "embedded {} queries in {embedded:.3} s, searched in {:.3} s",
            chunk.len(),
            searched.elapsed().as_secs_f64()
        );
    }
    progress.finish();
    Ok(())
}

/// The query given, or the lines of `--queries`.
fn read_queries(args: &SearchArgs) -> Result<Vec<String>> {
    let Some(path) = &args.queries else {
        let query = args.query.clone().unwrap_or_default();
        if query.trim().is_empty() {
            anyhow::bail!(themap::Error::InvalidArgument(
                "the query is empty; give words to look for, e.g. `themap search \"tariffs\"`".into()
            ));
        }
        return Ok(vec![query]);
    };
    let reader: Box<dyn BufRead> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let file = std::fs::File::open(path).map_err(themap::Error::io(path))?;
        Box::new(std::io::BufReader::new(file))
    };
    let mut queries = Vec::new();
    for (n, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("{}: line {} is not UTF-8 text", path.display(), n + 1))?;
        if !line.trim().is_empty() {
            queries.push(line);
        }
    }
    if queries.is_empty() {
        anyhow::bail!(themap::Error::InvalidArgument(format!(
            "{} holds no query; write one query per line",
            path.display()
        )));
    }
    Ok(queries)
}

pub fn similar(args: SimilarArgs) -> Result<()> {
    let index = MappedIndex::open(&args.at.index)?;
    let found = index.similar(&args.id, &args.lookup.limits(), args.other_docs, &args.lookup.filter())?;
    output::hits(
        &mut std::io::stdout().lock(),
        &index.documents,
        &found,
        &args.id,
        args.json,
        false,
    )
}
