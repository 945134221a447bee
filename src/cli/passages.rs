//! `themap passages`: how documents are cleaned and split, without embedding anything.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::{open_tokenizer, output, read_corpus, split_options, Reading};

#[derive(Debug, Args)]
pub struct PassagesArgs {
    /// Files and folders to read (.txt, .md, .jsonl, .html web pages, .rss/.atom/.xml feeds;
    /// folders recursively).
    #[arg(required = true)]
    paths: Vec<PathBuf>,

    #[command(flatten)]
    reading: Reading,

    /// Model directory (its tokenizer measures passages). Default as for `themap index`.
    #[arg(long, env = "THEMAP_MODEL", value_name = "DIR")]
    model: Option<PathBuf>,

    /// Print passages as JSON lines.
    #[arg(long)]
    json: bool,
}

pub fn passages(args: PassagesArgs) -> Result<()> {
    // Only the tokenizer: measuring passages needs no weights.
    let tokenizer = open_tokenizer(args.model.as_deref(), None)?;
    let split = split_options(&args.reading, &tokenizer);
    let corpus = read_corpus(&args.paths, &args.reading, &split, &tokenizer)?;
    output::passages(&corpus, &|text| tokenizer.count_tokens(text), args.json)
}
