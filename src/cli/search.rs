//! `themap search` and `themap similar`: the passages nearest a query or a passage.

use anyhow::Result;
use clap::Args;
use themap::embed::{Embedder, Prompt};
use themap::index::store;

use super::{load_model, model_info, output, Compute, Locations, Lookup};

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// What to look for: a question, a phrase or a passage of text, in any language.
    query: String,

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

pub fn search(args: SearchArgs) -> Result<()> {
    if args.query.trim().is_empty() {
        anyhow::bail!(themap::Error::InvalidArgument(
            "the query is empty; give words to look for, e.g. `themap search \"tariffs\"`".into()
        ));
    }
    let index = store::load(&args.at.index)?;
    // Before the model loads: a filter that matches nothing is a mistake to report at once.
    index.check_filter(&args.lookup.filter())?;
    let model = load_model(args.at.model.as_deref(), Some(index.model.dims), &Compute::default())?;
    store::check_model(&index, &model_info(model.tokenizer(), None), &args.at.index)?;
    if model.tokenizer().is_cut(&args.query, Prompt::Query)? {
        tracing::warn!(
            "the query is longer than the model reads ({} tokens); only its start is searched for",
            model.tokenizer().max_tokens()
        );
    }
    let query = model.embed(&[args.query.as_str()], Prompt::Query, &themap::Silent)?;
    let hits = index.search(query.row(0), &args.lookup.limits(), &args.lookup.filter())?;
    output::hits(&index, &hits, &args.query, args.json)
}

pub fn similar(args: SimilarArgs) -> Result<()> {
    let index = store::load(&args.at.index)?;
    let hits = index.similar(&args.id, &args.lookup.limits(), args.other_docs, &args.lookup.filter())?;
    output::hits(&index, &hits, &args.id, args.json)
}
