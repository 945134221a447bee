//! `themap themes` and `themap report`: recurring themes of an index.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use themap::index::store;
use themap::report::{self, ThemeMap, ThemeOptions, ThemeVectors};

use super::{load_model, model_info, progress::CliProgress, Compute, Locations};

/// How themes are found; shared by `themes` and `report`.
#[derive(Debug, Args)]
pub struct ThemeArgs {
    #[command(flatten)]
    at: Locations,

    #[command(flatten)]
    compute: Compute,

    /// Number of themes, named themes included. Default: chosen by silhouette (2 to 30).
    #[arg(long, value_name = "N")]
    k: Option<usize>,

    /// A theme to look for, in any language; repeat for several:
    /// --theme "AI bubble" --theme "dollar hegemony" --theme tariffs.
    /// Passages that fit no named theme are still grouped into further themes.
    #[arg(long = "theme", value_name = "NAME")]
    names: Vec<String>,

    /// Merge themes whose centroids have at least this cosine similarity (e.g. 0.85).
    #[arg(long, value_name = "SIMILARITY")]
    merge: Option<f32>,

    /// Random seed: the same seed gives the same themes.
    #[arg(long, default_value_t = 42)]
    seed: u64,

    /// Keywords shown per theme.
    #[arg(long, default_value_t = 10, value_name = "N")]
    keywords: usize,

    /// Vectors to cluster: `clustering` embeds passages once more with the model's clustering
    /// prompt (cached in the index after the first run); `document` reuses the search vectors.
    #[arg(long, value_enum, default_value_t = ThemeVectors::Clustering)]
    vectors: ThemeVectors,
}

#[derive(Debug, Args)]
pub struct ThemesArgs {
    #[command(flatten)]
    theme: ThemeArgs,

    /// Print the full theme map as JSON (the themes.json schema).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    theme: ThemeArgs,

    /// Folder for index.html, themes.json and themes.md (created if missing).
    #[arg(long, default_value = "themap-report", value_name = "DIR")]
    out: PathBuf,
}

fn build(args: &ThemeArgs, quiet: bool) -> Result<ThemeMap> {
    let mut index = store::load(&args.at.index)?;
    let model = load_model(args.at.model.as_deref(), Some(index.model.dims), &args.compute)?;
    store::check_model(&index, &model_info(&model), &args.at.index)?;
    if args.vectors == ThemeVectors::Clustering && index.ensure_clustering_vectors(&model, &CliProgress::new(quiet))? {
        // Kept with the index, so later runs (and re-indexing) reuse them.
        store::save(&index, &args.at.index)?;
    }
    let options = ThemeOptions {
        k: args.k,
        names: args.names.clone(),
        merge: args.merge,
        seed: args.seed,
        keywords: args.keywords,
        vectors: args.vectors,
        ..ThemeOptions::default()
    };
    Ok(ThemeMap::build(&index, Some(&model), &options)?)
}

pub fn themes(args: ThemesArgs, quiet: bool) -> Result<()> {
    let map = build(&args.theme, quiet)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        report::json::write(&map, &mut out)?;
        return Ok(());
    }
    writeln!(
        out,
        "{} themes in {} passages from {} documents ({} outliers flagged)\n",
        map.themes.len(),
        map.passages,
        map.documents.len(),
        map.outliers
    )?;
    for t in &map.themes {
        writeln!(
            out,
            "{:>2}. {}  — {} passages ({:.0}%), {} documents",
            t.id,
            t.label,
            t.size,
            100.0 * t.share,
            t.documents.len()
        )?;
        let words: Vec<&str> = t.keywords.iter().map(|k| k.word.as_str()).collect();
        writeln!(out, "    keywords: {}", words.join(", "))?;
        let docs: Vec<String> = t
            .documents
            .iter()
            .map(|d| {
                format!(
                    "{}{} ×{}",
                    d.id,
                    d.date.as_deref().map(|d| format!(" ({d})")).unwrap_or_default(),
                    d.passages
                )
            })
            .collect();
        writeln!(out, "    recurs in: {}", docs.join(", "))?;
        if let Some(r) = t.representatives.first() {
            writeln!(out, "    e.g. {} {}", r.id, themap::corpus::snippet(&r.text, 100))?;
        }
        writeln!(out)?;
    }
    Ok(())
}

pub fn report(args: ReportArgs, quiet: bool) -> Result<()> {
    let map = build(&args.theme, quiet)?;
    std::fs::create_dir_all(&args.out).map_err(themap::Error::io(&args.out))?;
    let html = args.out.join("index.html");
    themap::fsutil::write_atomic(&html, |w| report::html::write(&map, w))?;
    themap::fsutil::write_atomic(&args.out.join("themes.json"), |w| report::json::write(&map, w))?;
    themap::fsutil::write_atomic(&args.out.join("themes.md"), |w| report::markdown::write(&map, w))?;
    println!(
        "Wrote {} themes to {} (index.html, themes.json, themes.md)",
        map.themes.len(),
        args.out.display()
    );
    Ok(())
}
