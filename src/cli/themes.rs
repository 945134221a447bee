//! `themap themes` and `themap report`: recurring themes of an index.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use themap::index::kept::EventKind;
use themap::index::store;
use themap::report;
use themap::themes::time::Direction;
use themap::themes::{
    clustering_sample_size, FitKind, Theme, ThemeMap, ThemeOptions, ThemeVectors, MIN_CLUSTERING_SAMPLE,
};

use themap::embed::LazyModel;

use super::{embed_options, model_dir, model_info, output, progress::CliProgress, Compute, Locations};

/// How themes are found; shared by `themes` and `report`.
#[derive(Debug, Args)]
pub struct ThemeArgs {
    #[command(flatten)]
    at: Locations,

    #[command(flatten)]
    compute: Compute,

    /// Themes per level, top first: `--k 8` sets the top level, `--k 8,30` the second level too
    /// (30 in all, shared out where themes are least uniform). Default: each level's number is
    /// chosen where merging themes would cost most (3 to 20 at the top).
    #[arg(long, value_name = "N[,N…]", value_delimiter = ',')]
    k: Vec<usize>,

    /// Levels of the theme tree: 1 gives flat themes; 2 (the default) sub-themes within them.
    /// A theme too uniform to split has none below it.
    #[arg(long, default_value_t = 2, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=4))]
    levels: u8,

    /// A theme to look for, in any language; repeat for several:
    /// --theme "AI bubble" --theme "dollar hegemony" --theme tariffs.
    /// Each is a top-level theme; passages that fit none are still grouped into further themes.
    #[arg(long = "theme", value_name = "NAME")]
    names: Vec<String>,

    /// Random seed: the same seed gives the same themes.
    #[arg(long, default_value_t = 42)]
    seed: u64,

    /// Keywords shown per theme.
    #[arg(long, default_value_t = 10, value_name = "N")]
    keywords: usize,

    /// Vectors to cluster. `mapped`: the search vectors mapped towards the model's clustering
    /// prompt by a linear map fitted on a sample embedded with that prompt (one passage in twenty,
    /// 125 to 8,000; an index of up to 125 is embedded whole); `clustering`: every passage embedded once more with the
    /// clustering prompt; `document`: the search vectors as they are. What is embedded is kept
    /// in the index for later runs.
    #[arg(long, value_enum, default_value_t = ThemeVectors::Mapped)]
    vectors: ThemeVectors,

    /// Passages with fewer letters and characters than N only join the nearest theme and are
    /// marked short: bylines, captions and one-line headings would otherwise gather into a
    /// theme of their own. Default: a quarter of the median passage's; 0 lets every passage
    /// shape the themes.
    #[arg(long, value_name = "N")]
    min_chars: Option<usize>,

    /// When another command is writing the index, wait for it to finish before keeping the
    /// theme model and the vectors this run embedded (without it they are not kept, and the
    /// run says so).
    #[arg(long)]
    wait: bool,

    /// Find the themes from scratch instead of updating the ones kept with the index, and say
    /// how they map to the kept ones (kept ids where they match, splits, merges, fades).
    /// Without it, a run keeps every theme's id and places only passages added since.
    #[arg(long)]
    refit: bool,

    /// Mark as new the themes first dated on or after DATE (2025-11, 2025-11-03); without it,
    /// those found by this run's update.
    #[arg(long, value_name = "DATE", value_parser = parse_since)]
    since: Option<String>,
}

fn parse_since(text: &str) -> std::result::Result<String, String> {
    match themap::themes::time::parse_date(text) {
        Some(_) => Ok(text.trim().to_string()),
        None => Err(format!("`{text}` is not a date; give YYYY, YYYY-MM or YYYY-MM-DD")),
    }
}

#[derive(Debug, Args)]
pub struct ThemesArgs {
    #[command(flatten)]
    theme: ThemeArgs,

    /// Print the theme map as JSON (the themes.json schema).
    #[arg(long)]
    json: bool,

    /// Print themes down to this level (1: top-level themes only). Default: every level.
    #[arg(long, value_name = "N")]
    depth: Option<usize>,

    /// Write every passage's theme to FILE, tab-separated: passage id, theme (top-level,
    /// 1-based), path (its deepest theme, "3.2"), confidence, outlier (0/1), short (0/1), theme_id
    /// (its deepest theme's stable id, which lasts across runs).
    #[arg(long, value_name = "FILE")]
    assignments: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    theme: ThemeArgs,

    /// Folder for index.html, themes.json, themes.md and assignments.tsv (created if missing).
    /// Above 200,000 passages the map's data goes to map-data.js beside index.html.
    #[arg(long, default_value = "themap-report", value_name = "DIR")]
    out: PathBuf,
}

/// Documents listed per theme in the printed summary (`--json` and the report list up to 50).
const SHOWN_DOCUMENTS: usize = 12;

fn build(args: &ThemeArgs, map: bool, quiet: bool) -> Result<ThemeMap> {
    let progress = CliProgress::new(quiet);
    let parts = store::Parts {
        graph: false,
        clustering_vectors: args.vectors != ThemeVectors::Document,
    };
    let mut index = store::load_parts(&args.at.index, parts)?;
    // The weights load when first needed (named themes, keyword ranking, clustering vectors),
    // after the vectors are freed where possible.
    let model = LazyModel::open(
        &model_dir(args.at.model.as_deref()),
        embed_options(Some(index.model.dims), &args.compute),
    )?;
    store::check_model(&index.model, &model_info(model.tokenizer(), None), &args.at.index)?;
    // The generation the themes are fitted on: as read, or as the clustering vectors were kept.
    let mut read = index.generation;
    let computed = match args.vectors {
        ThemeVectors::Document => false,
        ThemeVectors::Mapped if index.clustering_vectors.is_none() && index.passages.len() > MIN_CLUSTERING_SAMPLE => {
            let size = clustering_sample_size(index.passages.len());
            index.ensure_clustering_sample(size, args.seed, &model, &progress)?
        }
        ThemeVectors::Mapped | ThemeVectors::Clustering => index.ensure_clustering_vectors(&model, &progress)?,
    };
    if computed {
        // Kept with the index, so later runs (and re-indexing) reuse them. Only they are
        // written: the index was read without its graph.
        let kept = store::lock(&args.at.index, args.wait).and_then(|lock| store::save_clustering(&index, &lock));
        match kept {
            Ok(generation) => read = Some(generation),
            // The themes are right for the index as read; only the cache is lost.
            Err(e @ (themap::Error::IndexBusy { .. } | themap::Error::IndexChanged { .. })) => {
                tracing::warn!("the clustering vectors computed for this run were not kept with the index: {e}")
            }
            Err(e) => return Err(e.into()),
        }
    }
    // The kept theme model: updated by this run, or matched to a refit. A damaged one stops an
    // update (its message names the fix, --refit, which does not read it).
    let kept = match args.refit {
        true => store::load_themes(&args.at.index).unwrap_or_else(|e| {
            tracing::warn!("{e}; this refit starts a new theme model");
            None
        }),
        false => store::load_themes(&args.at.index)?,
    };
    let levels = usize::from(args.levels).max(args.k.len());
    let options = ThemeOptions {
        counts: (0..levels).map(|l| args.k.get(l).copied()).collect(),
        names: args.names.clone(),
        seed: args.seed,
        keywords: args.keywords,
        vectors: args.vectors,
        min_chars: args.min_chars,
        map,
        kept,
        refit: args.refit,
        since: args.since.clone(),
        ..ThemeOptions::default()
    };
    let mut map = ThemeMap::build(index, Some(&model), &options, &progress)?;
    // Exploring with other settings does not replace the themes being followed: only a first
    // fit, an update and an explicit --refit are kept.
    let keep = args.refit || map.fit.kind != FitKind::Refit;
    match (&map.fit.reason, map.fit.kind) {
        (Some(reason), FitKind::First) => tracing::warn!("a new theme model starts: {reason}"),
        (Some(reason), FitKind::Refit) if !args.refit => tracing::warn!(
            "themes found from scratch and matched to the kept ones, which stay as they are: {reason} (--refit replaces them)"
        ),
        _ => {}
    }
    if let Some(kept) = map.kept.take().filter(|_| keep) {
        let saved = store::lock(&args.at.index, args.wait).and_then(|lock| store::save_themes(&kept, read, &lock));
        match saved {
            Ok(()) => {}
            Err(e @ (themap::Error::IndexBusy { .. } | themap::Error::IndexChanged { .. })) => tracing::warn!(
                "the theme model of this run was not kept with the index (the next run places the same passages again): {e}"
            ),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(map)
}

pub fn themes(args: ThemesArgs, quiet: bool) -> Result<()> {
    if let Some(path) = &args.assignments {
        output::check_output_file(path)?;
    }
    let map = build(&args.theme, false, quiet)?;
    if let Some(path) = &args.assignments {
        themap::fsutil::write_atomic(path, |w| report::write_assignments(&map, w))?;
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        report::json::write(&map, &mut out)?;
        return Ok(());
    }
    let short = match map.short {
        0 => String::new(),
        n => format!(
            "; {} too short to shape themes (under {} characters) attached to the nearest, counted apart",
            count(n, "passage"),
            map.settings.min_chars
        ),
    };
    let tops = map.top_themes().count();
    let all = match map.themes.len() {
        n if n == tops => String::new(),
        n => format!(" ({n} with sub-themes)"),
    };
    writeln!(
        out,
        "{}{all} in {} from {} ({} flagged{short})\n",
        count(tops, "theme"),
        count(map.passages, "passage"),
        count(map.documents.len(), "document"),
        count(map.outliers, "outlier")
    )?;
    writeln!(out, "{}\n", fit_line(&map))?;
    let depth = args.depth.unwrap_or(usize::MAX);
    let shown: Vec<&Theme> = map
        .themes
        .iter()
        .filter(|t| t.level <= depth && (map.since.is_none() || t.new))
        .collect();
    if let Some(since) = &map.since {
        writeln!(
            out,
            "{} first dated on or after {since}:\n",
            count(shown.len(), "theme")
        )?;
    }
    let latest = map
        .periods
        .as_ref()
        .and_then(|p| p.periods.last())
        .map(|p| p.period.as_str());
    for t in shown {
        print_theme(&mut out, t, latest)?;
    }
    print_changes(&mut out, &map)
}

/// How this run's themes relate to the kept model: "Theme model: update 3, 412 new passages placed".
fn fit_line(map: &ThemeMap) -> String {
    let f = &map.fit;
    let placed = count(f.new_passages, "new passage");
    match f.kind {
        FitKind::First => "Theme model: new (ids from 1), kept with the index; later runs update it".to_string(),
        FitKind::Update => format!("Theme model: update {} of the kept themes, {placed} placed", f.update),
        FitKind::Refit => match f.reason.as_deref() {
            Some("--refit") | None => format!(
                "Theme model: refit {} from scratch, matched to the kept themes, and kept",
                f.update
            ),
            Some(reason) => {
                format!("Theme model: themes from scratch, matched to the kept ones, which stay as they are ({reason})")
            }
        },
    }
}

/// What happened to themes in this run, by stable id.
fn print_changes(out: &mut impl Write, map: &ThemeMap) -> Result<()> {
    if map.changes.is_empty() {
        return Ok(());
    }
    let label: std::collections::HashMap<u32, &str> =
        map.themes.iter().map(|t| (t.stable_id, t.label.as_str())).collect();
    let name = |id: &u32| match label.get(id) {
        Some(l) => format!("#{id} {l}"),
        None => format!("#{id}"),
    };
    let list = |ids: &[u32]| ids.iter().map(name).collect::<Vec<_>>().join(", ");
    writeln!(out, "Changes in update {}:", map.fit.update)?;
    for e in &map.changes {
        let what = match e.kind {
            EventKind::New => format!("new: {} ({})", name(&e.theme), count(e.passages, "passage")),
            EventKind::Split => format!("new: {}, split from {}", name(&e.theme), list(&e.others)),
            EventKind::Merged => format!("ended: #{} merged into {}", e.theme, list(&e.others)),
            EventKind::SplitUp => format!("ended: #{} split up into {}", e.theme, list(&e.others)),
            EventKind::Faded => format!("ended: #{} faded (no passages left)", e.theme),
        };
        writeln!(out, "  {what}")?;
    }
    Ok(())
}

/// One theme, indented by its level: label, stable id and marks, size, keywords, documents,
/// trend, an example.
fn print_theme(out: &mut impl Write, t: &Theme, latest: Option<&str>) -> std::io::Result<()> {
    let indent = "    ".repeat(t.level - 1);
    let short = match t.short {
        0 => String::new(),
        n => format!(" + {n} short"),
    };
    let number = if t.level == 1 {
        format!("{:>2}.", t.path)
    } else {
        t.path.clone()
    };
    let mut marks = format!("#{}", t.stable_id);
    if t.new {
        marks.push_str(" NEW");
    }
    match t.trend.as_ref().map(|tr| tr.direction) {
        Some(Direction::Rising) => marks.push_str(" RISING"),
        Some(Direction::Falling) => marks.push_str(" FALLING"),
        _ => {}
    }
    writeln!(
        out,
        "{indent}{number} {}  [{marks}] — {} ({:.0}%){short}, {}",
        t.label,
        count(t.size, "passage"),
        100.0 * t.share,
        count(t.document_count, "document")
    )?;
    let words: Vec<&str> = t.keywords.iter().map(|k| k.word.as_str()).collect();
    writeln!(out, "{indent}    keywords: {}", words.join(", "))?;
    let docs: Vec<String> = t
        .documents
        .iter()
        .take(SHOWN_DOCUMENTS)
        .map(|d| {
            format!(
                "{}{} ×{}",
                d.id,
                d.date.as_deref().map(|d| format!(" ({d})")).unwrap_or_default(),
                d.passages
            )
        })
        .collect();
    let more = match t.document_count.saturating_sub(SHOWN_DOCUMENTS) {
        0 => String::new(),
        n => format!(" and {n} more"),
    };
    writeln!(out, "{indent}    recurs in: {}{more}", docs.join(", "))?;
    if let (Some(tr), Some(latest)) = (&t.trend, latest) {
        if tr.direction != Direction::Steady {
            writeln!(
                out,
                "{indent}    {:.1}% of {latest}'s passages against {:.1}% before (z = {:.1})",
                100.0 * tr.latest_share,
                100.0 * tr.earlier_share,
                tr.z
            )?;
        }
    }
    if let Some(date) = t.first_seen.date.as_deref().filter(|_| t.new) {
        writeln!(out, "{indent}    first appears {date}")?;
    }
    if let Some(r) = t.representatives.first() {
        writeln!(
            out,
            "{indent}    e.g. {} {}",
            r.id,
            themap::corpus::snippet(&r.text, 100)
        )?;
    }
    writeln!(out)
}

/// "1 document", "2 documents".
fn count(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

pub fn report(args: ReportArgs, quiet: bool) -> Result<()> {
    // Before the work: a report that cannot be written must not cost an embedding run.
    if args.out.exists() && !args.out.is_dir() {
        anyhow::bail!(themap::Error::InvalidArgument(format!(
            "--out {} is a file; the report is a folder (index.html, themes.json, themes.md, assignments.tsv): name a new or existing folder",
            args.out.display()
        )));
    }
    std::fs::create_dir_all(&args.out).map_err(themap::Error::io(&args.out))?;
    let map = build(&args.theme, true, quiet)?;
    let html = args.out.join("index.html");
    let beside = args.out.join(report::html::DATA_FILE);
    let mut files = vec!["index.html"];
    if report::html::data_beside(&map) {
        // The data first: a page never names a data file that is not there yet.
        let mut page = Vec::new();
        themap::fsutil::write_atomic(&beside, |w| report::html::write_split(&map, &mut page, w))?;
        themap::fsutil::write_atomic(&html, |w| w.write_all(&page))?;
        files.push(report::html::DATA_FILE);
    } else {
        themap::fsutil::write_atomic(&html, |w| report::html::write(&map, w))?;
        // A larger report's data left in the folder would only mislead.
        if beside.exists() {
            std::fs::remove_file(&beside).map_err(themap::Error::io(&beside))?;
        }
    }
    themap::fsutil::write_atomic(&args.out.join("themes.json"), |w| report::json::write(&map, w))?;
    themap::fsutil::write_atomic(&args.out.join("themes.md"), |w| report::markdown::write(&map, w))?;
    themap::fsutil::write_atomic(&args.out.join("assignments.tsv"), |w| {
        report::write_assignments(&map, w)
    })?;
    files.extend(["themes.json", "themes.md", "assignments.tsv"]);
    println!(
        "Wrote {} themes ({} with sub-themes) to {} ({})",
        map.top_themes().count(),
        map.themes.len(),
        args.out.display(),
        files.join(", ")
    );
    Ok(())
}
