//! `index.html`: the page a person looks at. The map of every passage is drawn on a canvas
//! from packed typed arrays (positions as 16-bit integers, theme, document, and the passages'
//! ids and opening words as UTF-8), gzipped and base64-encoded in the page, unpacked by the
//! browser's `DecompressionStream`: about 80 bytes a passage at 100,000 passages, where an SVG
//! circle and a JSON record took about 1,000 (benches/README.md). Around it: the themes with
//! keywords and representative passages as a tree that opens, the document × theme heatmap and
//! the timeline, each bounded so that thousands of documents and dates stay readable.
//!
//! The page is one self-contained file with nothing fetched, up to [`INLINE_MAX_PASSAGES`];
//! above, the map's data goes to [`DATA_FILE`] beside it, loaded by a `<script>` element (which,
//! unlike `fetch`, also works for a page opened from disk).

use std::fmt::Write as _;
use std::io::Write;

use base64::Engine as _;

use super::TIMELINE_BARS;
use crate::themes::time::Direction;
use crate::themes::{largest_documents, Theme, ThemeMap, LISTED_DOCUMENTS};

/// Distinct colours for themes (Tableau 20, strong shades first); themes beyond 20 reuse them.
const PALETTE: [&str; 20] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
];

const CHART_WIDTH: f32 = 960.0;
/// Documents listed on a theme card.
const CARD_DOCUMENTS: usize = 10;

/// Largest map kept inside `index.html` (8 MB at 100,000 THUCNews headlines, so about twice
/// that here): a page that can still be mailed. Above it the data goes beside the page.
pub const INLINE_MAX_PASSAGES: usize = 200_000;
/// The map's data beside `index.html` for larger maps.
pub const DATA_FILE: &str = "map-data.js";

/// The colour of top-level theme `theme_id` (1-based).
pub fn color(theme_id: usize) -> &'static str {
    PALETTE[(theme_id.max(1) - 1) % PALETTE.len()]
}

/// A theme's colour: its top-level theme's, in lighter and darker shades for sub-themes
/// (alternating, so that neighbouring sub-themes differ).
pub fn theme_color(theme: &Theme) -> String {
    let top: usize = theme.path.split('.').next().and_then(|p| p.parse().ok()).unwrap_or(1);
    let base = color(top);
    let Some(child) = theme
        .path
        .rsplit('.')
        .next()
        .and_then(|p| p.parse::<usize>().ok())
        .filter(|_| theme.level > 1)
    else {
        return base.to_string();
    };
    let step = 0.18 * ((child - 1) / 2 + 1) as f32 / (theme.level - 1) as f32;
    let (towards, amount) = if child % 2 == 1 {
        (255.0, step.min(0.6))
    } else {
        (0.0, step.min(0.45))
    };
    let channel = |at: usize| {
        let c = u8::from_str_radix(&base[at..at + 2], 16).unwrap_or(0) as f32;
        (c + (towards - c) * amount).round() as u8
    };
    format!("#{:02x}{:02x}{:02x}", channel(1), channel(3), channel(5))
}

/// Whether the map's data for `map` goes beside the page ([`write_split`]) rather than inside.
pub fn data_beside(map: &ThemeMap) -> bool {
    map.points.len() > INLINE_MAX_PASSAGES
}

/// The whole page in one file, the map's data inline.
pub fn write(map: &ThemeMap, out: &mut impl Write) -> std::io::Result<()> {
    let data = MapData::encode(map)?;
    let inline = format!(
        r#"<script id="map-data" type="application/octet-stream">{}</script>"#,
        data.blob
    );
    out.write_all(page(map, &data.meta, &inline).as_bytes())
}

/// The page, and the map's data as a script for [`DATA_FILE`] beside it.
pub fn write_split(map: &ThemeMap, html: &mut impl Write, beside: &mut impl Write) -> std::io::Result<()> {
    let data = MapData::encode(map)?;
    let loader = format!(r#"<script src="{DATA_FILE}"></script>"#);
    html.write_all(page(map, &data.meta, &loader).as_bytes())?;
    writeln!(beside, "window.themapMapData = \"{}\";", data.blob)
}

fn page(map: &ThemeMap, meta: &str, data: &str) -> String {
    let mut page = String::new();
    render(map, meta, data, &mut page).expect("writing to a String cannot fail");
    page
}

/// The map's passages packed for the page's script: `meta` (JSON: themes, documents, where each
/// column lies in the blob) and `blob` (the columns, gzipped, base64).
struct MapData {
    meta: String,
    blob: String,
}

impl MapData {
    fn encode(map: &ThemeMap) -> std::io::Result<MapData> {
        let n = map.points.len();
        let document_of = map
            .documents
            .iter()
            .enumerate()
            .map(|(i, d)| (d.id.as_str(), i as u32))
            .collect::<std::collections::HashMap<_, _>>();
        // Positions in [-1, 1] as 16-bit integers: finer than any screen, at zoom 100 included.
        let quantize = |v: f32| (((v.clamp(-1.0, 1.0) + 1.0) / 2.0) * 65535.0).round() as u16;
        let mut columns = Columns::default();
        columns.add(
            "xy",
            map.points
                .iter()
                .flat_map(|p| [quantize(p.x), quantize(p.y)])
                .flat_map(u16::to_le_bytes),
        );
        // Each passage's deepest theme, by id: preorder makes a theme's subtree one range of ids.
        columns.add(
            "theme",
            map.points.iter().flat_map(|p| (p.node as u16 + 1).to_le_bytes()),
        );
        columns.add(
            "doc",
            map.points.iter().flat_map(|p| {
                document_of
                    .get(p.doc_id.as_str())
                    .copied()
                    .unwrap_or(u32::MAX)
                    .to_le_bytes()
            }),
        );
        columns.add(
            "flags",
            map.points
                .iter()
                .map(|p| u8::from(p.passage.outlier) | (u8::from(p.passage.short) << 1)),
        );
        columns.add_text("id", map.points.iter().map(|p| p.passage.id.as_str()));
        columns.add_text("snippet", map.points.iter().map(|p| p.snippet.as_str()));

        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&columns.bytes)?;
        let blob = base64::engine::general_purpose::STANDARD.encode(gz.finish()?);
        let meta = serde_json::json!({
            "n": n,
            "columns": columns.offsets,
            "snippet_chars": map.points.iter().map(|p| p.snippet.chars().count()).max().unwrap_or(0),
            "themes": map.themes.iter().map(|t| serde_json::json!({
                "id": t.id, "path": t.path, "label": t.label, "color": theme_color(t), "size": t.size,
                "level": t.level, "parent": t.parent, "end": subtree_end(map, t), "mark": map_mark(t),
            })).collect::<Vec<_>>(),
            // [id, title, date] per document, in the order `doc` counts them.
            "documents": map.documents.iter().map(|d| serde_json::json!([d.id, d.title, d.date])).collect::<Vec<_>>(),
        });
        Ok(MapData {
            meta: script_safe(&meta.to_string()),
            blob,
        })
    }
}

/// Little-endian columns one after another, each starting on a 4-byte boundary (typed arrays
/// need their element's alignment), and where each lies: name → [byte offset, bytes].
#[derive(Default)]
struct Columns {
    bytes: Vec<u8>,
    offsets: serde_json::Map<String, serde_json::Value>,
}

impl Columns {
    fn add(&mut self, name: &str, bytes: impl Iterator<Item = u8>) {
        let start = self.bytes.len();
        self.bytes.extend(bytes);
        self.offsets
            .insert(name.into(), serde_json::json!([start, self.bytes.len() - start]));
        self.bytes.resize(self.bytes.len().next_multiple_of(4), 0);
    }

    /// Strings as `name` (UTF-8, one after another) and `name_end` (u32: where each ends).
    fn add_text<'a>(&mut self, name: &str, texts: impl Iterator<Item = &'a str> + Clone) {
        let mut end = 0u32;
        let ends = texts.clone().flat_map(|t| {
            end += t.len() as u32;
            end.to_le_bytes()
        });
        self.add(&format!("{name}_end"), ends);
        self.add(name, texts.flat_map(str::bytes));
    }
}

fn render(map: &ThemeMap, meta: &str, data: &str, page: &mut String) -> std::fmt::Result {
    let dated = map.documents.iter().filter(|d| d.date.is_some()).count();
    write!(
        page,
        r#"<!DOCTYPE html>
<html lang="zh">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Theme map · {top} themes · {passages} passages</title>
<style>{STYLE}</style>
</head>
<body>
<header>
<h1>Theme map</h1>
<p class="summary">{passages} passages from {documents} documents ({dated} dated) · <b>{themes}</b>{auto} · {outliers} outliers flagged{short} · model {model} ({dims} dims)</p>
</header>
"#,
        top = map.top_themes().count(),
        themes = esc(&super::theme_count_summary(map)),
        short = esc(&super::short_summary(map)),
        passages = map.passages,
        documents = map.documents.len(),
        auto = if map.settings.k_chosen_automatically {
            " (top-level count chosen where merging themes costs most)"
        } else {
            ""
        },
        outliers = map.outliers,
        model = esc(&map.model.name),
        dims = map.model.dims,
    )?;

    // The map: a canvas the script draws every passage on.
    write!(
        page,
        r#"<section id="map"><h2>Map of passages</h2><p class="note">Each point is a passage, coloured by its top-level theme, in shades by sub-theme; pale points are outliers and short lines. Top-level labels show at full view, sub-themes' as you zoom in. Scroll to zoom, drag to pan, double-click to reset. Hover for a passage; click a point or a theme to highlight it with its sub-themes. Layout: {}.</p>"#,
        esc(&map.settings.projection)
    )?;
    write!(page, r#"<div class="legend">"#)?;
    for t in map.top_themes() {
        legend_entry(map, t, page)?;
    }
    writeln!(
        page,
        r#"</div><div class="controls"><label>Find <input id="find" type="search" placeholder="text in a passage" autocomplete="off"></label><label>Documents <input id="doc-filter" type="search" placeholder="title or id contains" autocomplete="off"></label><label>From <input id="date-from" type="text" placeholder="YYYY-MM-DD" size="10"></label><label>to <input id="date-to" type="text" placeholder="YYYY-MM-DD" size="10"></label><button id="reset" type="button">Reset view</button><output id="map-status">Loading the map…</output></div><div id="canvas-box"><canvas id="points" role="img" aria-label="map of passages"></canvas></div></section>"#
    )?;

    // Themes.
    write!(page, r#"<section id="themes"><h2>Themes</h2><div class="cards">"#)?;
    for t in map.top_themes() {
        card(map, t, page)?;
    }
    writeln!(page, "</div></section>")?;

    // Document × theme heatmap.
    let listed = largest_documents(&map.documents, LISTED_DOCUMENTS);
    let which = if listed.len() < map.documents.len() {
        format!(
            " The {} documents with the most passages are shown, of {} (every passage's theme is in assignments.tsv).",
            listed.len(),
            map.documents.len()
        )
    } else {
        String::new()
    };
    write!(
        page,
        r#"<section id="heatmap"><h2>Documents × themes</h2><p class="note">Share of each document's passages in each theme (number: passages).{which}</p><div class="scroll"><table><thead><tr><th>document</th><th>date</th>"#
    )?;
    for t in map.top_themes() {
        write!(
            page,
            r#"<th title="{}"><span class="dot" style="background:{}"></span>{}</th>"#,
            esc(&t.label),
            theme_color(t),
            esc(&t.path)
        )?;
    }
    write!(page, "</tr></thead><tbody>")?;
    for d in listed {
        write!(
            page,
            "<tr><td class=\"doc\">{}</td><td>{}</td>",
            esc(&d.title),
            esc(d.date.as_deref().unwrap_or(""))
        )?;
        for n in &d.counts {
            let share = *n as f32 / d.passages.max(1) as f32;
            let text = if *n == 0 { String::new() } else { n.to_string() };
            write!(
                page,
                r#"<td class="cell" style="background:rgba(31,119,180,{:.2})">{text}</td>"#,
                share.min(1.0) * 0.9
            )?;
        }
        write!(page, "</tr>")?;
    }
    writeln!(page, "</tbody></table></div></section>")?;

    // Timeline: stacked bars of passages per theme per date (or month, or year).
    write!(page, r#"<section id="timeline"><h2>Timeline</h2>"#)?;
    let (unit, timeline) = map.timeline_in_bars(TIMELINE_BARS);
    let tops: Vec<&Theme> = map.top_themes().collect();
    if timeline.is_empty() {
        write!(
            page,
            r#"<p class="note">No document carries a date (front matter <code>date:</code>).</p>"#
        )?;
    } else {
        let tallest = timeline
            .iter()
            .map(|e| e.counts.iter().sum::<usize>())
            .max()
            .unwrap_or(1)
            .max(1) as f32;
        let bar = (CHART_WIDTH - 80.0) / timeline.len() as f32;
        // Every label where they fit, else every few.
        let label_every = (60.0 / bar).ceil().max(1.0) as usize;
        let height = 220.0;
        write!(
            page,
            r#"<p class="note">Passages per theme, by the {unit} of their document.</p><svg viewBox="0 0 {CHART_WIDTH} {}" class="timeline">"#,
            height + 40.0
        )?;
        for (i, e) in timeline.iter().enumerate() {
            let x = 60.0 + i as f32 * bar;
            let mut top = height;
            for (t, &n) in e.counts.iter().enumerate() {
                if n == 0 {
                    continue;
                }
                let h = n as f32 / tallest * (height - 20.0);
                top -= h;
                write!(
                    page,
                    r#"<rect x="{:.1}" y="{top:.1}" width="{:.1}" height="{h:.1}" fill="{}"><title>{}: {} passages of “{}” ({} documents)</title></rect>"#,
                    x + bar * 0.15,
                    bar * 0.7,
                    color(t + 1),
                    esc(&e.date),
                    n,
                    esc(&tops[t].label),
                    e.documents
                )?;
            }
            // Where a top-level theme first appears (after the first bar): a marker above it.
            let firsts: Vec<(usize, &&Theme)> = tops
                .iter()
                .enumerate()
                .filter(|(_, t)| {
                    i > 0
                        && t.first_seen
                            .date
                            .as_deref()
                            .is_some_and(|d| d.starts_with(e.date.as_str()))
                })
                .collect();
            for (k, (t, theme)) in firsts.iter().enumerate() {
                write!(
                    page,
                    r#"<path d="M{:.1} {:.1} l-5 -8 h10 z" fill="{}"><title>{} first appears ({})</title></path>"#,
                    x + bar / 2.0,
                    top - 3.0 - 10.0 * k as f32,
                    color(t + 1),
                    esc(&theme.label),
                    esc(theme.first_seen.date.as_deref().unwrap_or(""))
                )?;
            }
            if i % label_every == 0 {
                write!(
                    page,
                    r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text><text x="{:.1}" y="{}" text-anchor="middle" class="small">{} doc.</text>"#,
                    x + bar / 2.0,
                    height + 18.0,
                    esc(&e.date),
                    x + bar / 2.0,
                    height + 34.0,
                    e.documents
                )?;
            }
        }
        write!(page, "</svg>")?;
    }
    writeln!(page, "</section>")?;

    let levels: Vec<String> = map
        .levels
        .iter()
        .enumerate()
        .map(|(l, c)| {
            format!(
                "level {}: {} themes ({})",
                l + 1,
                c.count,
                if c.chosen_automatically { "chosen" } else { "given" }
            )
        })
        .collect();
    write!(
        page,
        r#"<footer class="meta">{} · seed {} · theme tree of {} leaves · {}</footer>
<div id="tip" hidden></div>
<script id="map-meta" type="application/json">{meta}</script>
{data}
<script>{SCRIPT}</script>
</body>
</html>
"#,
        esc(&map.generated_by),
        map.settings.seed,
        map.settings.leaves,
        levels.join(", "),
    )
}

/// "new" and "rising"/"falling" badges, the trend's test in the tooltip.
fn badges(map: &ThemeMap, t: &Theme) -> String {
    let mut out = String::new();
    if t.new {
        let why = match &map.since {
            Some(since) => format!("first dated on or after {since}"),
            None => format!("found by update {} of the kept themes", t.first_seen.update),
        };
        out.push_str(&format!(r#" <span class="badge new" title="{}">new</span>"#, esc(&why)));
    }
    if let Some(trend) = &t.trend {
        let latest = map
            .periods
            .as_ref()
            .and_then(|p| p.periods.last())
            .map_or("", |p| p.period.as_str());
        let (class, word) = match trend.direction {
            Direction::Rising => ("rising", "rising ↑"),
            Direction::Falling => ("falling", "falling ↓"),
            Direction::Steady => return out,
        };
        out.push_str(&format!(
            r#" <span class="badge {class}" title="{:.1}% of {}'s passages against {:.1}% before; two-proportion z = {:.1} (|z| ≥ {} and a ratio of {} or more)">{word}</span>"#,
            100.0 * trend.latest_share,
            esc(latest),
            100.0 * trend.earlier_share,
            trend.z,
            crate::themes::time::TREND_Z,
            crate::themes::time::TREND_RATIO
        ));
    }
    out
}

/// A short mark for a theme's label on the map: "new", "↑", "↓" or nothing.
fn map_mark(t: &Theme) -> &'static str {
    match (t.new, t.trend.as_ref().map(|tr| tr.direction)) {
        (true, _) => "new",
        (_, Some(Direction::Rising)) => "↑",
        (_, Some(Direction::Falling)) => "↓",
        _ => "",
    }
}

/// A theme's card, with its sub-themes' cards in a section that opens.
fn card(map: &ThemeMap, t: &Theme, page: &mut String) -> std::fmt::Result {
    write!(
        page,
        r#"<article class="card level-{level}" id="theme-{id}" style="border-top-color:{c}"><h3><span class="dot" style="background:{c}"></span>{path}. {label}{badges} <small class="id">#{stable}</small></h3>"#,
        level = t.level,
        id = t.id,
        path = esc(&t.path),
        c = theme_color(t),
        label = esc(&t.label),
        badges = badges(map, t),
        stable = t.stable_id,
    )?;
    if let Some(date) = t.first_seen.date.as_deref().filter(|_| t.new) {
        write!(page, r#"<p class="note">First appears {}</p>"#, esc(date))?;
    }
    if let Some(name) = &t.name {
        write!(page, r#"<p class="note">Named theme “{}”</p>"#, esc(name))?;
    }
    write!(
        page,
        r#"<p class="size">{} passages · {:.0}% of all · {} documents{}{}</p><p class="keywords">"#,
        t.size,
        100.0 * t.share,
        t.documents.len(),
        if t.outliers > 0 {
            format!(" · {} outliers", t.outliers)
        } else {
            String::new()
        },
        if t.short > 0 {
            format!(" · and {} short lines attached", t.short)
        } else {
            String::new()
        }
    )?;
    for k in &t.keywords {
        write!(page, r#"<span class="kw">{}</span>"#, esc(&k.word))?;
    }
    let span = match (t.dates.first(), t.dates.last()) {
        (Some(first), Some(last)) if first != last => format!(", {} to {}", esc(first), esc(last)),
        (Some(only), _) => format!(", {}", esc(only)),
        _ => String::new(),
    };
    write!(
        page,
        "</p><details{}><summary>Where it recurs ({} documents{span})</summary><ul class=\"docs\">",
        if t.level == 1 { " open" } else { "" },
        t.documents.len()
    )?;
    for d in t.documents.iter().take(CARD_DOCUMENTS) {
        let date = d
            .date
            .as_deref()
            .map(|d| format!(" <time>{}</time>", esc(d)))
            .unwrap_or_default();
        write!(
            page,
            "<li>{}{date} — {} passages ({:.0}% of the document)</li>",
            esc(&d.title),
            d.passages,
            100.0 * d.share
        )?;
    }
    if let Some(more) = t.documents.len().checked_sub(CARD_DOCUMENTS).filter(|&m| m > 0) {
        write!(page, r#"<li class="more">and {more} more</li>"#)?;
    }
    write!(
        page,
        "</ul></details><details><summary>Representative passages</summary>"
    )?;
    for r in &t.representatives {
        write!(
            page,
            r#"<blockquote>{}<footer>{} · similarity {:.2}</footer></blockquote>"#,
            esc(&r.text).replace('\n', "<br>"),
            esc(&r.id),
            r.similarity
        )?;
    }
    write!(page, "</details>")?;
    if !t.children.is_empty() {
        write!(
            page,
            r#"<details class="subthemes"><summary>{} sub-themes</summary><div class="cards">"#,
            t.children.len()
        )?;
        for &c in &t.children {
            card(map, &map.themes[c - 1], page)?;
        }
        write!(page, "</div></details>")?;
    }
    write!(page, "</article>")
}

/// A theme's button in the legend, its sub-themes' below it.
fn legend_entry(map: &ThemeMap, t: &Theme, page: &mut String) -> std::fmt::Result {
    write!(
        page,
        r#"<span class="legend-entry level-{}"><button class="theme-name" data-theme="{}"><span class="dot" style="background:{}"></span>{}. {}</button>"#,
        t.level,
        t.id,
        theme_color(t),
        esc(&t.path),
        esc(&t.label)
    )?;
    if !t.children.is_empty() {
        write!(page, r#"<details><summary>{} sub-themes</summary>"#, t.children.len())?;
        for &c in &t.children {
            legend_entry(map, &map.themes[c - 1], page)?;
        }
        write!(page, "</details>")?;
    }
    write!(page, "</span>")
}

/// The id after the last theme of `t`'s subtree (themes are in preorder).
fn subtree_end(map: &ThemeMap, t: &Theme) -> usize {
    map.themes[t.id..]
        .iter()
        .position(|other| other.level <= t.level)
        .map_or(map.themes.len() + 1, |offset| t.id + offset + 1)
}

/// JSON that cannot end the `<script>` element holding it ("</" is written "<\/", which JSON
/// reads the same).
fn script_safe(json: &str) -> String {
    json.replace("</", "<\\/")
}

/// Escapes text for HTML content and attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = include_str!("page.css");
const SCRIPT: &str = include_str!("page.js");
