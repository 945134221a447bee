//! `themes.md`: the theme map as a document a person reads (or pastes into notes).

use std::io::Write;

use super::{HierarchyJoin, ThemeMap, LISTED_DOCUMENTS, TIMELINE_BARS};

/// Documents listed under each theme; the rest are counted.
const THEME_DOCUMENTS: usize = 10;

pub fn write(map: &ThemeMap, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(out, "# Theme map\n")?;
    writeln!(
        out,
        "{} passages from {} documents · {} themes{} · {} outliers flagged · model {} ({} dims)\n",
        map.passages,
        map.documents.len(),
        map.themes.len(),
        if map.settings.k_chosen_automatically {
            " (number chosen by silhouette)"
        } else {
            ""
        },
        map.outliers,
        map.model.name,
        map.model.dims
    )?;

    writeln!(
        out,
        "| # | theme | passages | share | documents | dates |\n|---|---|---|---|---|---|"
    )?;
    for t in &map.themes {
        writeln!(
            out,
            "| {} | {} | {} | {:.0}% | {} | {} |",
            t.id,
            cell(&t.label),
            t.size,
            100.0 * t.share,
            t.documents.len(),
            cell(&t.dates.join(", "))
        )?;
    }

    for t in &map.themes {
        writeln!(out, "\n## {}. {}\n", t.id, t.label)?;
        if let Some(name) = &t.name {
            writeln!(out, "Named theme: “{name}”.\n")?;
        }
        let words: Vec<&str> = t.keywords.iter().map(|k| k.word.as_str()).collect();
        writeln!(out, "**Keywords:** {}\n", words.join(", "))?;
        writeln!(
            out,
            "**{} passages** ({:.0}% of all; {} outliers). Recurs in:\n",
            t.size,
            100.0 * t.share,
            t.outliers
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
    let listed = super::largest_documents(&map.documents, LISTED_DOCUMENTS);
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

    writeln!(out, "\n## Hierarchy\n")?;
    writeln!(out, "Themes join as centroid similarity falls (average linkage):\n")?;
    if let Some(root) = map.hierarchy.len().checked_sub(1) {
        tree(map, &map.hierarchy, map.themes.len() + 1 + root, 0, out)?;
    }
    writeln!(
        out,
        "\n---\n{} · seed {} · map: {}",
        map.generated_by, map.settings.seed, map.settings.projection
    )
}

/// Writes the subtree of node `id` (themes 1..=k, joins above) as a nested list.
pub(crate) fn tree(
    map: &ThemeMap,
    joins: &[HierarchyJoin],
    id: usize,
    depth: usize,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let k = map.themes.len();
    let indent = "  ".repeat(depth);
    if id <= k {
        let t = &map.themes[id - 1];
        return writeln!(out, "{indent}- {}. {} ({} passages)", t.id, t.label, t.size);
    }
    let join = &joins[id - k - 1];
    writeln!(
        out,
        "{indent}- similarity {:.2} · {} passages",
        join.similarity, join.passages
    )?;
    tree(map, joins, join.a, depth + 1, out)?;
    tree(map, joins, join.b, depth + 1, out)
}

/// Table header: the leading columns, then one column per theme id.
fn theme_columns(map: &ThemeMap, leading: &[&str], out: &mut impl Write) -> std::io::Result<()> {
    let ids: Vec<String> = map.themes.iter().map(|t| t.id.to_string()).collect();
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
