//! Stage 7: the theme report. [`crate::themes::ThemeMap`] is drawn for people ([`html`],
//! [`markdown`]) and written for scripts ([`json`], [`write_assignments`]); the map's 2D layout
//! ([`project`]) is laid out here too.

pub mod html;
pub mod json;
pub mod markdown;
pub(crate) mod project;
mod tsne;
pub mod umap;

use crate::themes::{ThemeMap, TimelineEntry};

/// Every passage's theme as tab-separated lines under a header: id, theme (top-level, 1-based),
/// path (its deepest theme, "3.2"), confidence, outlier (0/1), short (0/1), and with a map its
/// position on it (x, y in [-1, 1]).
pub fn write_assignments(map: &ThemeMap, out: &mut impl std::io::Write) -> std::io::Result<()> {
    let with_map = !map.points.is_empty();
    writeln!(
        out,
        "id\ttheme\tpath\tconfidence\toutlier\tshort\ttheme_id{}",
        if with_map { "\tx\ty" } else { "" }
    )?;
    for (i, a) in map.assignments.iter().enumerate() {
        write!(
            out,
            "{}\t{}\t{}\t{:.4}\t{}\t{}\t{}",
            a.id,
            a.theme,
            a.path,
            a.confidence,
            u8::from(a.outlier),
            u8::from(a.short),
            a.theme_id
        )?;
        match map.points.get(i) {
            Some(p) => writeln!(out, "\t{:.5}\t{:.5}", p.x, p.y)?,
            None => writeln!(out)?,
        }
    }
    Ok(())
}

/// "8 top-level themes, 31 in all over 2 levels".
pub(crate) fn theme_count_summary(map: &ThemeMap) -> String {
    let top = map.top_themes().count();
    let depth = map.themes.iter().map(|t| t.level).max().unwrap_or(0);
    match depth {
        0 | 1 => format!("{top} themes"),
        _ => format!(
            "{top} top-level themes, {} in all over {depth} levels",
            map.themes.len()
        ),
    }
}

/// ", 192 short lines counted apart", or nothing.
pub(crate) fn short_summary(map: &ThemeMap) -> String {
    match map.short {
        0 => String::new(),
        n => format!(
            " · {n} short lines (under {} characters) attached to their nearest theme, counted apart",
            map.settings.min_chars
        ),
    }
}

/// Bars a timeline shows at most: beyond, dates are gathered by month, then by year.
pub const TIMELINE_BARS: usize = 60;

impl ThemeMap {
    /// The timeline with at most `bars` entries where the dates allow: by date, else by month
    /// (`YYYY-MM`), else by year; and the unit used ("date", "month" or "year").
    pub fn timeline_in_bars(&self, bars: usize) -> (&'static str, Vec<TimelineEntry>) {
        for (unit, prefix) in [("date", usize::MAX), ("month", 7), ("year", 4)] {
            let mut merged: Vec<TimelineEntry> = Vec::new();
            for e in &self.timeline {
                let key: String = e.date.chars().take(prefix).collect();
                match merged.last_mut() {
                    Some(last) if last.date == key => {
                        last.documents += e.documents;
                        for (sum, n) in last.counts.iter_mut().zip(&e.counts) {
                            *sum += n;
                        }
                    }
                    _ => merged.push(TimelineEntry { date: key, ..e.clone() }),
                }
            }
            if merged.len() <= bars || unit == "year" {
                return (unit, merged);
            }
        }
        unreachable!("the year pass always returns")
    }
}
