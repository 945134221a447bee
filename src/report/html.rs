//! `index.html`: one self-contained page (styles, script and data inline; nothing fetched):
//! the map of all passages coloured by theme, the themes with keywords and representative
//! passages, the document × theme heatmap, the timeline and the hierarchy.

use std::fmt::Write as _;
use std::io::Write;

use super::{HierarchyJoin, ThemeMap};

/// Distinct colours for themes (Tableau 20, strong shades first); themes beyond 20 reuse them.
const PALETTE: [&str; 20] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
];

const MAP_WIDTH: f32 = 960.0;
const MAP_HEIGHT: f32 = 600.0;
const MAP_MARGIN: f32 = 16.0;

pub fn color(theme_id: usize) -> &'static str {
    PALETTE[(theme_id.max(1) - 1) % PALETTE.len()]
}

pub fn write(map: &ThemeMap, out: &mut impl Write) -> std::io::Result<()> {
    let mut page = String::new();
    render(map, &mut page).expect("writing to a String cannot fail");
    out.write_all(page.as_bytes())
}

fn render(map: &ThemeMap, page: &mut String) -> std::fmt::Result {
    let dated = map.documents.iter().filter(|d| d.date.is_some()).count();
    write!(
        page,
        r#"<!DOCTYPE html>
<html lang="zh">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Theme map · {themes} themes · {passages} passages</title>
<style>{STYLE}</style>
</head>
<body>
<header>
<h1>Theme map</h1>
<p class="summary">{passages} passages from {documents} documents ({dated} dated) · <b>{themes} themes</b>{auto} · {outliers} outliers flagged · model {model} ({dims} dims)</p>
</header>
"#,
        themes = map.themes.len(),
        passages = map.passages,
        documents = map.documents.len(),
        auto = if map.settings.k_chosen_automatically {
            " (number chosen by silhouette)"
        } else {
            ""
        },
        outliers = map.outliers,
        model = esc(&map.model.name),
        dims = map.model.dims,
    )?;

    // The map: one circle per passage; hover shows its theme and text.
    write!(
        page,
        r#"<section id="map"><h2>Map of passages</h2><p class="note">Each point is a passage, coloured by theme; hollow points are outliers. Hover for the text; click a theme below to highlight it. Layout: {}.</p>"#,
        esc(&map.settings.projection)
    )?;
    write!(page, r#"<div class="legend">"#)?;
    for t in &map.themes {
        write!(
            page,
            r#"<button class="theme-name" data-theme="{}"><span class="dot" style="background:{}"></span>{}. {}</button>"#,
            t.id,
            color(t.id),
            t.id,
            esc(&t.label)
        )?;
    }
    write!(
        page,
        r#"</div><svg id="points" viewBox="0 0 {MAP_WIDTH} {MAP_HEIGHT}" role="img" aria-label="map of passages">"#
    )?;
    for (i, p) in map.points.iter().enumerate() {
        let x = MAP_MARGIN + (p.x + 1.0) / 2.0 * (MAP_WIDTH - 2.0 * MAP_MARGIN);
        let y = MAP_MARGIN + (1.0 - (p.y + 1.0) / 2.0) * (MAP_HEIGHT - 2.0 * MAP_MARGIN);
        let c = color(p.passage.theme);
        let fill = if p.passage.outlier { "#fff" } else { c };
        write!(
            page,
            r#"<circle class="pt" data-i="{i}" data-theme="{}" cx="{x:.1}" cy="{y:.1}" r="4.5" fill="{fill}" stroke="{c}"/>"#,
            p.passage.theme
        )?;
    }
    write!(page, "</svg></section>\n")?;

    // Themes.
    write!(page, r#"<section id="themes"><h2>Themes</h2><div class="cards">"#)?;
    for t in &map.themes {
        write!(
            page,
            r#"<article class="card" id="theme-{id}" style="border-top-color:{c}"><h3><span class="dot" style="background:{c}"></span>{id}. {label}</h3>"#,
            id = t.id,
            c = color(t.id),
            label = esc(&t.label)
        )?;
        if let Some(name) = &t.name {
            write!(page, r#"<p class="note">Named theme “{}”</p>"#, esc(name))?;
        }
        write!(
            page,
            r#"<p class="size">{} passages · {:.0}% of all · {} documents{}</p><p class="keywords">"#,
            t.size,
            100.0 * t.share,
            t.documents.len(),
            if t.outliers > 0 {
                format!(" · {} outliers", t.outliers)
            } else {
                String::new()
            }
        )?;
        for k in &t.keywords {
            write!(page, r#"<span class="kw">{}</span>"#, esc(&k.word))?;
        }
        write!(
            page,
            "</p><details open><summary>Where it recurs</summary><ul class=\"docs\">"
        )?;
        for d in &t.documents {
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
        write!(page, "</details></article>")?;
    }
    write!(page, "</div></section>\n")?;

    // Document × theme heatmap.
    write!(
        page,
        r#"<section id="heatmap"><h2>Documents × themes</h2><p class="note">Share of each document's passages in each theme (number: passages).</p><div class="scroll"><table><thead><tr><th>document</th><th>date</th>"#
    )?;
    for t in &map.themes {
        write!(
            page,
            r#"<th title="{}"><span class="dot" style="background:{}"></span>{}</th>"#,
            esc(&t.label),
            color(t.id),
            t.id
        )?;
    }
    write!(page, "</tr></thead><tbody>")?;
    for d in &map.documents {
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
    write!(page, "</tbody></table></div></section>\n")?;

    // Timeline: stacked bars of passages per theme per date.
    write!(page, r#"<section id="timeline"><h2>Timeline</h2>"#)?;
    if map.timeline.is_empty() {
        write!(
            page,
            r#"<p class="note">No document carries a date (front matter <code>date:</code>).</p>"#
        )?;
    } else {
        let tallest = map
            .timeline
            .iter()
            .map(|e| e.counts.iter().sum::<usize>())
            .max()
            .unwrap_or(1)
            .max(1) as f32;
        let bar = (MAP_WIDTH - 80.0) / map.timeline.len() as f32;
        let height = 220.0;
        write!(
            page,
            r#"<p class="note">Passages per theme, by the date of their document.</p><svg viewBox="0 0 {MAP_WIDTH} {}" class="timeline">"#,
            height + 40.0
        )?;
        for (i, e) in map.timeline.iter().enumerate() {
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
                    r#"<rect x="{:.1}" y="{top:.1}" width="{:.1}" height="{h:.1}" fill="{}"><title>{}: {} passages of “{}”</title></rect>"#,
                    x + bar * 0.15,
                    bar * 0.7,
                    color(t + 1),
                    esc(&e.date),
                    n,
                    esc(&map.themes[t].label)
                )?;
            }
            write!(
                page,
                r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
                x + bar / 2.0,
                height + 18.0,
                esc(&e.date)
            )?;
            write!(
                page,
                r#"<text x="{:.1}" y="{}" text-anchor="middle" class="small">{} doc.</text>"#,
                x + bar / 2.0,
                height + 34.0,
                e.documents
            )?;
        }
        write!(page, "</svg>")?;
    }
    write!(page, "</section>\n")?;

    // Hierarchy.
    write!(
        page,
        r#"<section id="hierarchy"><h2>Hierarchy</h2><p class="note">Themes join as their centroids' similarity falls (average linkage).</p>"#
    )?;
    if let Some(root) = map.hierarchy.len().checked_sub(1) {
        write!(page, "<ul class=\"tree\">")?;
        tree(map, &map.hierarchy, map.themes.len() + 1 + root, page)?;
        write!(page, "</ul>")?;
    }
    write!(page, "</section>\n")?;

    let silhouettes: Vec<String> = map
        .settings
        .silhouettes
        .iter()
        .map(|(k, s)| format!("k={k}: {s:.3}"))
        .collect();
    write!(
        page,
        r#"<footer class="meta">{} · seed {} · {}{}</footer>
<div id="tip" hidden></div>
<script id="data" type="application/json">{}</script>
<script>{SCRIPT}</script>
</body>
</html>
"#,
        esc(&map.generated_by),
        map.settings.seed,
        if silhouettes.is_empty() {
            "k given".to_string()
        } else {
            format!("silhouette by k: {}", silhouettes.join(", "))
        },
        map.settings
            .merge
            .map(|m| format!(" · merged above {m}"))
            .unwrap_or_default(),
        script_json(map),
    )
}

fn tree(map: &ThemeMap, joins: &[HierarchyJoin], id: usize, page: &mut String) -> std::fmt::Result {
    let k = map.themes.len();
    if id <= k {
        let t = &map.themes[id - 1];
        return write!(
            page,
            r#"<li><span class="dot" style="background:{}"></span>{}. {} <span class="small">({} passages)</span></li>"#,
            color(t.id),
            t.id,
            esc(&t.label),
            t.size
        );
    }
    let join = &joins[id - k - 1];
    write!(
        page,
        r#"<li><span class="small">similarity {:.2} · {} passages</span><ul>"#,
        join.similarity, join.passages
    )?;
    tree(map, joins, join.a, page)?;
    tree(map, joins, join.b, page)?;
    write!(page, "</ul></li>")
}

/// The data the page's script needs (themes' labels, points), safe inside a `<script>` element.
fn script_json(map: &ThemeMap) -> String {
    let data = serde_json::json!({
        "themes": map.themes.iter().map(|t| serde_json::json!({"id": t.id, "label": t.label})).collect::<Vec<_>>(),
        "points": map.points,
    });
    // "</" would end the script element early; JSON allows the escaped form.
    data.to_string().replace("</", "<\\/")
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

const STYLE: &str = r#"
:root { --fg:#1d2330; --muted:#5b6475; --line:#e3e6ec; --bg:#fafbfc; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1240px; padding: 24px 32px 48px; color: var(--fg); background: var(--bg);
  font: 15px/1.55 system-ui, -apple-system, "Segoe UI", "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC",
  "PingFang SC", "Microsoft YaHei", "Noto Sans CJK TC", sans-serif; }
h1 { margin: 0 0 4px; font-size: 28px; } h2 { margin: 36px 0 8px; font-size: 21px; } h3 { margin: 0 0 6px; font-size: 17px; }
.summary, .note, .meta, .small { color: var(--muted); } .note { margin: 0 0 12px; } .small { font-size: 12px; }
.dot { display: inline-block; width: 10px; height: 10px; border-radius: 50%; margin-right: 6px; vertical-align: baseline; }
.legend { display: flex; flex-wrap: wrap; gap: 6px; margin-bottom: 8px; }
.legend button { font: inherit; font-size: 13px; border: 1px solid var(--line); background: #fff; border-radius: 14px; padding: 2px 10px; cursor: pointer; }
.legend button.on { border-color: var(--fg); font-weight: 600; }
#points { width: 100%; height: auto; background: #fff; border: 1px solid var(--line); border-radius: 8px; }
#points circle { fill-opacity: .8; stroke-width: 1.2; transition: opacity .15s; }
#points.focus circle:not(.hl) { opacity: .08; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(360px, 1fr)); gap: 14px; }
.card { background: #fff; border: 1px solid var(--line); border-top: 4px solid; border-radius: 8px; padding: 12px 14px; }
.size { margin: 0 0 6px; color: var(--muted); font-size: 13px; }
.kw { display: inline-block; background: #eef2f8; border-radius: 4px; padding: 0 6px; margin: 0 4px 4px 0; font-size: 13px; }
details { margin-top: 6px; } summary { cursor: pointer; color: var(--muted); font-size: 13px; }
ul.docs { margin: 4px 0; padding-left: 18px; font-size: 13px; }
blockquote { margin: 8px 0; padding: 6px 10px; border-left: 3px solid var(--line); font-size: 13px; background: #fbfbfd; }
blockquote footer { color: var(--muted); font-size: 12px; margin-top: 4px; }
.scroll { overflow-x: auto; } table { border-collapse: collapse; background: #fff; font-size: 13px; }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: center; } td.doc { text-align: left; max-width: 420px; }
td.cell { min-width: 38px; }
svg.timeline { width: 100%; height: auto; background: #fff; border: 1px solid var(--line); border-radius: 8px; font-size: 13px; }
svg.timeline .small { font-size: 11px; fill: var(--muted); }
ul.tree, ul.tree ul { list-style: none; padding-left: 18px; border-left: 1px dashed var(--line); margin: 2px 0; }
#tip { position: absolute; max-width: 380px; background: #1d2330; color: #fff; padding: 8px 10px; border-radius: 6px;
  font-size: 13px; pointer-events: none; box-shadow: 0 4px 14px rgba(0,0,0,.2); z-index: 10; }
#tip b { display: block; margin-bottom: 2px; }
.meta { margin-top: 40px; font-size: 12px; }
"#;

const SCRIPT: &str = r#"
(() => {
  const data = JSON.parse(document.getElementById('data').textContent);
  const svg = document.getElementById('points');
  const tip = document.getElementById('tip');
  const text = s => { const d = document.createElement('div'); d.textContent = s; return d.innerHTML; };
  svg.addEventListener('mouseover', e => {
    const i = e.target.dataset && e.target.dataset.i;
    if (i === undefined) return;
    const p = data.points[+i], t = data.themes[p.theme - 1];
    tip.innerHTML = `<b>${text(t.id + '. ' + t.label)}</b>${text(p.snippet)}<br><small>${text(p.id)} · confidence ${p.confidence.toFixed(2)}${p.outlier ? ' · outlier' : ''}</small>`;
    tip.hidden = false;
  });
  svg.addEventListener('mousemove', e => { tip.style.left = (e.pageX + 14) + 'px'; tip.style.top = (e.pageY + 14) + 'px'; });
  svg.addEventListener('mouseout', e => { if (e.target.dataset && e.target.dataset.i !== undefined) tip.hidden = true; });
  let focused = null;
  document.querySelectorAll('.legend button').forEach(b => b.addEventListener('click', () => {
    focused = focused === b.dataset.theme ? null : b.dataset.theme;
    document.querySelectorAll('.legend button').forEach(x => x.classList.toggle('on', x.dataset.theme === focused));
    svg.classList.toggle('focus', focused !== null);
    svg.querySelectorAll('circle').forEach(c => c.classList.toggle('hl', c.dataset.theme === focused));
  }));
})();
"#;
