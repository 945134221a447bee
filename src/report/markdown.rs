//! `themes.md`: the theme map as a document a person reads (or pastes into notes).

use std::io::Write;

use super::TIMELINE_BARS;
use crate::themes::{largest_documents, ThemeMap, LISTED_DOCUMENTS};

/// Documents listed under each theme; the rest are counted.
const THEME_DOCUMENTS: usize = 10;

pub fn write(map: &ThemeMap, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(out, "# Theme map\n")?;
    writeln!(
        out,
        "{} passages from {} documents · {}{} · {} outliers flagged{} · model {} ({} dims)\n",
        map.passages,
        map.documents.len(),
        super::theme_count_summary(map),
        if map.settings.k_chosen_automatically {
            " (top-level count chosen where merging themes costs most)"
        } else {
            ""
        },
        map.outliers,
        super::short_summary(map),
        map.model.name,
        map.model.dims
    )?;

    writeln!(
        out,
        "| # | theme | passages | share | short lines | documents | dates |\n|---|---|---|---|---|---|---|"
    )?;
    for t in &map.themes {
        writeln!(
            out,
            "| {} | {}{} | {} | {:.0}% | {} | {} | {} |",
            t.path,
            "↳ ".repeat(t.level - 1),
            cell(&t.label),
            t.size,
            100.0 * t.share,
            t.short,
            t.documents.len(),
            cell(&t.dates.join(", "))
        )?;
    }

    for t in &map.themes {
        writeln!(out, "\n{} {} {}\n", "#".repeat(t.level + 1), t.path, t.label)?;
        if let Some(name) = &t.name {
            writeln!(out, "Named theme: “{name}”.\n")?;
        }
        let words: Vec<&str> = t.keywords.iter().map(|k| k.word.as_str()).collect();
        writeln!(out, "**Keywords:** {}\n", words.join(", "))?;
        writeln!(
            out,
            "**{} passages** ({:.0}% of all; {} outliers){}. Recurs in:\n",
            t.size,
            100.0 * t.share,
            t.outliers,
            match t.short {
                0 => String::new(),
                n => format!(", and {n} short lines attached"),
            }
        )?;
        for d in t.documents.iter().take(THEME_DOCUMENTS) {
            let date = d.date.as_deref().map(|d| format!(" ({d})")).unwrap_or_default();
            writeln!(
                out,
                "- {}{} — {} passages, {:.0}% of the document",
                d.title,
                date,
                d.passages,
                100.0 * d.share
            )?;
        }
        if t.documents.len() > THEME_DOCUMENTS {
            writeln!(
                out,
                "- and {} more documents (the first {LISTED_DOCUMENTS} in themes.json)",
                t.documents.len() - THEME_DOCUMENTS
            )?;
        }
        writeln!(out, "\nRepresentative passages:\n")?;
        for r in &t.representatives {
            writeln!(
                out,
                "> {}\n>\n> — `{}` (similarity {:.2})\n",
                r.text.replace('\n', "\n> "),
                r.id,
                r.similarity
            )?;
        }
    }

    writeln!(out, "\n## Documents × themes\n")?;
    let listed = largest_documents(&map.documents, LISTED_DOCUMENTS);
    if listed.len() < map.documents.len() {
        writeln!(
            out,
            "The {} documents with the most passages, of {} (every passage's theme is in assignments.tsv).\n",
            listed.len(),
            map.documents.len()
        )?;
    }
    theme_columns(map, &["document", "date", "passages"], out)?;
    for d in listed {
        let passages = d.passages.to_string();
        theme_row(
            &[&cell(&d.title), d.date.as_deref().unwrap_or(""), &passages],
            &d.counts,
            out,
        )?;
    }

    writeln!(out, "\n## Timeline\n")?;
    let (unit, timeline) = map.timeline_in_bars(TIMELINE_BARS);
    if timeline.is_empty() {
        writeln!(out, "No document carries a date (front matter `date:`).")?;
    } else {
        theme_columns(map, &[unit, "documents"], out)?;
        for e in &timeline {
            theme_row(&[&e.date, &e.documents.to_string()], &e.counts, out)?;
        }
    }

    writeln!(out, "\n## Levels\n")?;
    for (level, choice) in map.levels.iter().enumerate() {
        writeln!(
            out,
            "- level {}: {} themes{}",
            level + 1,
            choice.count,
            if choice.chosen_automatically {
                " (chosen)"
            } else {
                " (given)"
            }
        )?;
    }
    writeln!(
        out,
        "\n---\n{} · seed {} · map: {}",
        map.generated_by, map.settings.seed, map.settings.projection
    )
}

/// Table header: the leading columns, then one column per top-level theme.
fn theme_columns(map: &ThemeMap, leading: &[&str], out: &mut impl Write) -> std::io::Result<()> {
    let ids: Vec<String> = map.top_themes().map(|t| t.path.clone()).collect();
    writeln!(out, "| {} | {} |", leading.join(" | "), ids.join(" | "))?;
    writeln!(out, "|{}", "---|".repeat(leading.len() + ids.len()))
}

/// Table row: the leading cells, then a count per theme (blank for zero).
fn theme_row(leading: &[&str], counts: &[usize], out: &mut impl Write) -> std::io::Result<()> {
    let counts: Vec<String> = counts
        .iter()
        .map(|&n| if n == 0 { String::new() } else { n.to_string() })
        .collect();
    writeln!(out, "| {} | {} |", leading.join(" | "), counts.join(" | "))
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}
