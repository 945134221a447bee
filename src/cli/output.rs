//! What commands print: a readable form for people, JSON for scripts.

use std::io::Write;
use std::path::Path;

use anyhow::Result;
use serde::Serialize;
use themap::corpus::{snippet, Corpus};
use themap::index::{BuildStats, DocumentRecord, Found};

/// Characters of passage text shown per hit in the readable form.
const SNIPPET_CHARS: usize = 140;

/// Checks that `path` can be written as a file, before any work is done for it: it is not a
/// folder, and its folder exists.
pub fn check_output_file(path: &Path) -> Result<()> {
    let problem = if path.is_dir() {
        "is a folder"
    } else if path.parent().is_some_and(|p| !p.as_os_str().is_empty() && !p.is_dir()) {
        "is in a folder that does not exist"
    } else {
        return Ok(());
    };
    Err(themap::Error::InvalidArgument(format!("{} {problem}; name a file to write", path.display())).into())
}

pub fn index_summary(stats: &BuildStats, dir: &Path, seconds: f64, skipped: usize, json: bool) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        #[derive(Serialize)]
        struct Summary<'a> {
            index: &'a Path,
            #[serde(flatten)]
            stats: &'a BuildStats,
            skipped_files: usize,
            seconds: f64,
        }
        serde_json::to_writer_pretty(
            &mut out,
            &Summary {
                index: dir,
                stats,
                skipped_files: skipped,
                seconds,
            },
        )?;
        writeln!(out)?;
        return Ok(());
    }
    let sources = if stats.imported > 0 {
        format!("{} imported", stats.imported)
    } else {
        format!("{} embedded, {} reused", stats.embedded, stats.reused)
    };
    writeln!(
        out,
        "Indexed {} documents, {} passages ({sources}; {} added to the search graph) in {:.1} s into {}",
        stats.documents,
        stats.passages,
        stats.graph_added,
        seconds,
        dir.display()
    )?;
    if skipped > 0 {
        writeln!(out, "{skipped} file(s) skipped; see the warnings above")?;
    }
    Ok(())
}

/// One search result, resolved to what a reader needs.
#[derive(Serialize)]
struct ShownHit<'a> {
    rank: usize,
    score: f32,
    id: &'a str,
    doc_id: &'a str,
    title: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    date: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    section: Option<&'a str>,
    path: &'a Path,
    line: usize,
    char_start: usize,
    char_end: usize,
    text: &'a str,
}

/// Prints the results of one lookup. With `batch` (one of many queries), the readable form
/// starts with the query, and JSON is one line.
pub fn hits(
    out: &mut impl Write,
    documents: &[DocumentRecord],
    found: &[Found],
    query: &str,
    json: bool,
    batch: bool,
) -> Result<()> {
    let shown: Vec<ShownHit> = found
        .iter()
        .enumerate()
        .map(|(rank, hit)| {
            let passage = &hit.passage.passage;
            let doc = hit.document.and_then(|d| documents.get(d));
            ShownHit {
                rank: rank + 1,
                score: hit.score,
                id: &passage.id,
                doc_id: &passage.doc_id,
                title: doc.map_or(passage.doc_id.as_str(), |d| d.display_title()),
                date: doc.and_then(|d| d.meta.date.as_deref()),
                section: passage.section.as_deref(),
                path: doc.map_or(Path::new(""), |d| d.path.as_path()),
                line: passage.line,
                char_start: passage.char_start,
                char_end: passage.char_end,
                text: &passage.text,
            }
        })
        .collect();

    if json {
        let value = serde_json::json!({ "query": query, "hits": shown });
        match batch {
            true => serde_json::to_writer(&mut *out, &value)?,
            false => serde_json::to_writer_pretty(&mut *out, &value)?,
        }
        writeln!(out)?;
        return Ok(());
    }
    if batch {
        writeln!(out, "== {}", snippet(query, SNIPPET_CHARS))?;
    }
    if shown.is_empty() {
        writeln!(out, "No passages found.")?;
    }
    for hit in &shown {
        let date = hit.date.map(|d| format!(" ({d})")).unwrap_or_default();
        writeln!(out, "{:>2}. {:.3}  {}{}", hit.rank, hit.score, hit.title, date)?;
        let section = hit.section.map(|s| format!(" · {s}")).unwrap_or_default();
        writeln!(
            out,
            "    {} · {} line {}{}",
            hit.id,
            hit.path.display(),
            hit.line,
            section
        )?;
        writeln!(out, "    {}", snippet(hit.text, SNIPPET_CHARS))?;
    }
    if batch {
        writeln!(out)?;
    }
    Ok(())
}

/// Every passage: id, position, size in tokens and the start of its text (or JSON lines).
pub fn passages(corpus: &Corpus, count_tokens: &dyn Fn(&str) -> usize, json: bool) -> Result<()> {
    let mut out = std::io::stdout().lock();
    for passage in &corpus.passages {
        if json {
            serde_json::to_writer(&mut out, passage)?;
            writeln!(out)?;
        } else {
            writeln!(
                out,
                "{} · line {} · {} tokens",
                passage.id,
                passage.line,
                count_tokens(&passage.text)
            )?;
            writeln!(out, "    {}", snippet(&passage.text, SNIPPET_CHARS))?;
        }
    }
    if !json {
        writeln!(
            out,
            "{} passages from {} documents",
            corpus.passages.len(),
            corpus.documents.len()
        )?;
    }
    Ok(())
}
