//! Stage 7: the theme map. [`ThemeMap::build`] clusters an index, names the themes and works out
//! where and when each recurs; [`json`], [`markdown`] and [`html`] write it for scripts and people.

pub mod html;
pub mod json;
pub mod markdown;
mod project;
mod tsne;
pub mod umap;

use std::collections::{BTreeMap, BTreeSet};

use ndarray::Axis;
use serde::Serialize;

use crate::cluster::{self, ClusterParams, Join, PromptMap};
use crate::embed::{Embedder, Prompt};
use crate::error::{Error, Result};
use crate::index::{Index, ModelInfo, PassageRecord};
use crate::label::{self, Keyword, KeywordOptions};
use crate::progress::{Progress, Silent};

/// Version of the `themes.json` schema; bumped only for incompatible changes. 2: so that it
/// stays small at any size, the map's points left it for `assignments.tsv` (with their
/// positions), and documents are listed up to [`LISTED_DOCUMENTS`] (with `document_count`).
pub const SCHEMA_VERSION: u32 = 2;

/// What to look for.
#[derive(Debug, Clone)]
pub struct ThemeOptions {
    /// Number of themes (named ones included); `None`: chosen by silhouette.
    pub k: Option<usize>,
    /// Named themes to look for (any language): they seed their own clusters.
    pub names: Vec<String>,
    /// Merge themes whose centroids are at least this similar (cosine).
    pub merge: Option<f32>,
    pub seed: u64,
    pub keywords: usize,
    /// Representative passages shown per theme.
    pub representatives: usize,
    /// Which of the index's vectors are clustered.
    pub vectors: ThemeVectors,
    /// Passages with fewer letters and characters than this do not shape the themes: they are
    /// assigned to the nearest theme afterwards and marked short (bylines, captions and one-line
    /// headings would otherwise gather into a theme of their own because they are short).
    /// `None`: a quarter of the median passage's; `Some(0)`: every passage shapes the themes.
    pub min_chars: Option<usize>,
    /// Lay every passage out on the 2D map (the report needs it; `themap themes` does not).
    pub map: bool,
}

/// The passage vectors themes are found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ThemeVectors {
    /// The search vectors carried towards the clustering prompt's by a linear map fitted on a
    /// sample of passages embedded with that prompt: most of its gain (THUCNews 100k: NMI 0.673,
    /// against 0.651 for the search vectors) for the cost of the sample. Indexes no larger than
    /// the sample, or with clustering vectors given, use those.
    Mapped,
    /// Embedded with the model's clustering prompt (`task: clustering | query: `): better
    /// separated themes (THUCNews: NMI 0.682 against 0.651 with the document prompt), for a
    /// second embedding pass over every passage.
    Clustering,
    /// The search vectors (document prompt): no extra embedding needed.
    Document,
}

/// Passages of a large index embedded with the clustering prompt to fit the map
/// ([`ThemeVectors::Mapped`]); an index no larger is embedded whole.
pub const CLUSTERING_SAMPLE: usize = 2000;
/// Ridge penalty of the map's fit (rows are unit vectors; measured on THUCNews, 0.1 to 3 are
/// within noise of each other at 2,000 pairs).
const MAP_RIDGE: f64 = 1.0;

impl Default for ThemeOptions {
    fn default() -> Self {
        Self {
            k: None,
            names: Vec::new(),
            merge: None,
            seed: 42,
            keywords: 10,
            representatives: 3,
            vectors: ThemeVectors::Mapped,
            min_chars: None,
            map: true,
        }
    }
}

/// Everything the report shows, in a stable, serialisable form (`themes.json`).
#[derive(Debug, Clone, Serialize)]
pub struct ThemeMap {
    pub schema_version: u32,
    pub generated_by: String,
    pub model: ModelInfo,
    pub settings: Settings,
    pub passages: usize,
    pub outliers: usize,
    /// Passages too short to shape the themes (assigned to the nearest one).
    pub short: usize,
    pub themes: Vec<Theme>,
    /// Documents with their passages in each theme (the document × theme matrix). In
    /// themes.json only the [`LISTED_DOCUMENTS`] with most passages; every passage's theme is
    /// in assignments.tsv.
    #[serde(serialize_with = "serialize_largest")]
    pub documents: Vec<DocumentThemes>,
    /// How many documents there are (all of them, listed or not).
    pub document_count: usize,
    /// Passages per theme on each date that documents carry.
    pub timeline: Vec<TimelineEntry>,
    /// How themes group as similarity falls (ids above the theme count are earlier joins).
    pub hierarchy: Vec<HierarchyJoin>,
    /// Every passage's theme, in index order (`write_assignments`; not in themes.json, which
    /// would grow with every passage).
    #[serde(skip)]
    pub assignments: Vec<Assignment>,
    /// Every passage on the 2D map (empty when no map was asked for); in the page and, with
    /// their positions, in `write_assignments`.
    #[serde(skip)]
    pub points: Vec<Point>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub k: usize,
    pub k_chosen_automatically: bool,
    pub seed: u64,
    pub merge: Option<f32>,
    pub named_themes: Vec<String>,
    /// (k, silhouette) for every k tried when choosing automatically.
    pub silhouettes: Vec<(usize, f64)>,
    pub projection: String,
    pub vectors: ThemeVectors,
    /// Passages shorter than this (letters and characters) did not shape the themes.
    pub min_chars: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Theme {
    /// 1-based, in report order: named themes first, then by size.
    pub id: usize,
    pub label: String,
    /// The `--theme` name this theme grew from.
    pub name: Option<String>,
    pub keywords: Vec<Keyword>,
    pub size: usize,
    /// Fraction of all passages.
    pub share: f32,
    pub outliers: usize,
    /// Of its passages, those too short to shape themes.
    pub short: usize,
    /// The documents it appears in, most passages first (in themes.json, the first
    /// [`LISTED_DOCUMENTS`]).
    #[serde(serialize_with = "serialize_first")]
    pub documents: Vec<ThemeDocument>,
    /// How many documents it appears in.
    pub document_count: usize,
    /// Dates of the documents it appears in, sorted.
    pub dates: Vec<String>,
    /// Passages nearest the theme's centroid.
    pub representatives: Vec<Representative>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ThemeDocument {
    pub id: String,
    pub title: String,
    pub date: Option<String>,
    pub passages: usize,
    /// Fraction of the document's passages in this theme.
    pub share: f32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Representative {
    pub id: String,
    pub doc_id: String,
    pub similarity: f32,
    pub text: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct DocumentThemes {
    pub id: String,
    pub title: String,
    pub date: Option<String>,
    pub passages: usize,
    /// Passages in each theme, in theme order.
    pub counts: Vec<usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TimelineEntry {
    pub date: String,
    pub documents: usize,
    /// Passages in each theme on that date, in theme order.
    pub counts: Vec<usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HierarchyJoin {
    /// Theme ids are 1..=k; the group made by join i (0-based) has id k + 1 + i.
    pub a: usize,
    pub b: usize,
    pub similarity: f32,
    pub passages: usize,
}

/// A passage's theme.
#[derive(Debug, Clone, Serialize)]
pub struct Assignment {
    pub id: String,
    /// 1-based theme id.
    pub theme: usize,
    pub confidence: f32,
    pub outlier: bool,
    /// Too short to shape the themes; assigned to the nearest.
    pub short: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Point {
    /// The passage and its theme.
    #[serde(flatten)]
    pub passage: Assignment,
    pub doc_id: String,
    pub x: f32,
    pub y: f32,
    pub snippet: String,
}

/// Characters of passage text kept in map points: up to 120, fewer for large maps so that all
/// of them together stay near `MAP_TEXT_BUDGET` (80 at 100,000 passages, 24 at 1,000,000).
fn snippet_chars(passages: usize) -> usize {
    const MAP_TEXT_BUDGET: usize = 8_000_000;
    (MAP_TEXT_BUDGET / passages.max(1)).clamp(24, 120)
}

impl ThemeMap {
    /// Clusters the index's vectors and describes every theme. The embedder (the model that
    /// built the index) embeds named themes and ranks keywords; without one, named themes are
    /// an error and keywords are plain c-TF-IDF. The index is consumed: its vectors are freed
    /// once the themes are found, before the embedder is used for keywords (a model loaded on
    /// first use, [`crate::embed::LazyModel`], then never shares memory with them).
    pub fn build(
        mut index: Index,
        embedder: Option<&dyn Embedder>,
        options: &ThemeOptions,
        progress: &dyn Progress,
    ) -> Result<ThemeMap> {
        let (name_scores, seeds): (Vec<Vec<f32>>, Vec<Vec<usize>>) = match (options.names.is_empty(), embedder) {
            (true, _) => (Vec::new(), Vec::new()),
            (false, Some(embedder)) => anchor_passages(&index, embedder, &options.names)?.into_iter().unzip(),
            (false, None) => {
                return Err(Error::InvalidArgument(
                    "named themes need the model to embed them".into(),
                ))
            }
        };
        // The rows clustered: the clustering vectors, or the search vectors (mapped in place).
        let mapped = match options.vectors {
            ThemeVectors::Mapped if index.clustering_vectors.is_none() => {
                let sample = index.clustering_sample.as_ref().ok_or_else(|| {
                    Error::InvalidArgument(
                        "the index has no clustering sample yet (Index::ensure_clustering_sample)".into(),
                    )
                })?;
                let (rows, targets) = sample.pairs(&index);
                let map = PromptMap::fit(index.vectors.select(Axis(0), &rows).view(), targets.view(), MAP_RIDGE)?;
                let lengths = map.apply_in_place(&mut index.vectors, progress);
                Some((map, lengths))
            }
            ThemeVectors::Document => None,
            ThemeVectors::Mapped | ThemeVectors::Clustering if index.clustering_vectors.is_some() => None,
            _ => {
                return Err(Error::InvalidArgument(
                    "the index has no clustering vectors yet (Index::ensure_clustering_vectors)".into(),
                ))
            }
        };
        let clustered = match (&mapped, options.vectors) {
            (None, ThemeVectors::Mapped | ThemeVectors::Clustering) => {
                index.clustering_vectors.as_ref().expect("checked above")
            }
            _ => &index.vectors,
        };
        let (min_chars, fit_rows) = content_rows(&index.passages, options.min_chars);
        let params = ClusterParams {
            k: options.k,
            seed: options.seed,
            merge: options.merge,
            seeds,
            fit_rows: fit_rows.clone(),
            ..ClusterParams::default()
        };
        let clustering = cluster::cluster(clustered.view(), &params, progress)?;
        let k = clustering.k();
        let shapes: Vec<bool> = match &fit_rows {
            None => vec![true; index.passages.len()],
            Some(rows) => cluster::rows_marked(index.passages.len(), rows),
        };
        let short: Vec<bool> = shapes.iter().map(|s| !s).collect();
        let layout = if options.map {
            Some(project::to_2d(clustered.view(), progress)?)
        } else {
            None
        };
        // Keywords are embedded as queries, so they are compared with centroids of the search
        // (document) vectors, the pairing the model was trained for. Mapped in place, those are
        // recovered from the mapped rows' sums.
        let keyword_centroids = match &mapped {
            None => cluster::centroids_of(index.vectors.view(), &clustering.labels, k, &shapes),
            Some((map, lengths)) => {
                let sums = cluster::theme_sums(index.vectors.view(), &clustering.labels, k, &shapes, Some(lengths));
                cluster::normalize_rows(map.unmap_sums(sums.view())?)
            }
        };
        // The vectors are not needed past this point: free them before keywords may load a model.
        index.vectors = ndarray::Array2::zeros((0, index.model.dims));
        index.clustering_vectors = None;

        let (texts, labels): (Vec<&str>, Vec<usize>) = index
            .passages
            .iter()
            .zip(&clustering.labels)
            .zip(&short)
            .filter(|(_, &is_short)| !is_short)
            .map(|((p, &l), _)| (p.passage.text.as_str(), l))
            .unzip();
        let keyword_options = KeywordOptions {
            count: options.keywords,
            ..KeywordOptions::default()
        };
        let keywords = label::theme_keywords(
            &texts,
            &labels,
            keyword_centroids.view(),
            embedder,
            keyword_options,
            progress,
        )?;
        drop((texts, labels));

        // Document × theme counts, in index document order.
        let doc_row = index.document_numbers();
        let mut counts = vec![vec![0usize; k]; index.documents.len()];
        for (p, &t) in index.passages.iter().zip(&clustering.labels) {
            if let Some(&d) = doc_row.get(p.passage.doc_id.as_str()) {
                counts[d][t] += 1;
            }
        }

        let total = index.passages.len();
        let members = clustering.members_by_theme();
        let themes = (0..k)
            .map(|t| {
                let members = &members[t];
                let name = clustering.seed_of[t].map(|s| options.names[s].clone());
                let words = &keywords[t];
                let label = name.clone().unwrap_or_else(|| {
                    words
                        .iter()
                        .take(3)
                        .map(|w| w.word.as_str())
                        .collect::<Vec<_>>()
                        .join(" · ")
                });
                let mut documents: Vec<ThemeDocument> = index
                    .documents
                    .iter()
                    .enumerate()
                    .filter(|(d, _)| counts[*d][t] > 0)
                    .map(|(d, doc)| ThemeDocument {
                        id: doc.id.clone(),
                        title: doc.display_title().to_string(),
                        date: doc.meta.date.clone(),
                        passages: counts[d][t],
                        share: counts[d][t] as f32 / doc.passages.max(1) as f32,
                    })
                    .collect();
                documents.sort_by(|a, b| b.passages.cmp(&a.passages).then(a.id.cmp(&b.id)));
                let dates: BTreeSet<String> = documents.iter().filter_map(|d| d.date.clone()).collect();
                // Representatives shaped the theme, when it has such passages. A named theme's
                // answer its name best; the others' are nearest the centroid.
                let shaping: Vec<usize> = members.iter().copied().filter(|&i| !short[i]).collect();
                let mut representatives = if shaping.is_empty() {
                    members.clone()
                } else {
                    shaping.clone()
                };
                if let Some(scores) = clustering.seed_of[t].map(|s| &name_scores[s]) {
                    representatives.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
                }
                Theme {
                    document_count: documents.len(),
                    id: t + 1,
                    label,
                    name,
                    keywords: words.clone(),
                    size: members.len(),
                    share: members.len() as f32 / total as f32,
                    outliers: members.iter().filter(|&&i| clustering.outlier[i]).count(),
                    short: members.len() - shaping.len(),
                    documents,
                    dates: dates.into_iter().collect(),
                    representatives: representatives
                        .iter()
                        .take(options.representatives)
                        .map(|&i| Representative {
                            id: index.passages[i].passage.id.clone(),
                            doc_id: index.passages[i].passage.doc_id.clone(),
                            similarity: clustering.similarity[i],
                            text: index.passages[i].passage.text.clone(),
                        })
                        .collect(),
                }
            })
            .collect();

        let documents: Vec<DocumentThemes> = index
            .documents
            .iter()
            .zip(&counts)
            .map(|(doc, counts)| DocumentThemes {
                id: doc.id.clone(),
                title: doc.display_title().to_string(),
                date: doc.meta.date.clone(),
                passages: doc.passages,
                counts: counts.clone(),
            })
            .collect();

        let mut by_date: BTreeMap<String, (usize, Vec<usize>)> = BTreeMap::new();
        for doc in &documents {
            if let Some(date) = &doc.date {
                let entry = by_date.entry(date.clone()).or_insert_with(|| (0, vec![0; k]));
                entry.0 += 1;
                for (sum, n) in entry.1.iter_mut().zip(&doc.counts) {
                    *sum += n;
                }
            }
        }
        let timeline = by_date
            .into_iter()
            .map(|(date, (documents, counts))| TimelineEntry {
                date,
                documents,
                counts,
            })
            .collect();

        let hierarchy = clustering
            .hierarchy
            .iter()
            .map(|j: &Join| HierarchyJoin {
                a: j.a + 1,
                b: j.b + 1,
                similarity: j.similarity,
                passages: j.size,
            })
            .collect();

        let assignments: Vec<Assignment> = index
            .passages
            .iter()
            .enumerate()
            .map(|(i, p)| Assignment {
                id: p.passage.id.clone(),
                theme: clustering.labels[i] + 1,
                confidence: clustering.confidence[i],
                outlier: clustering.outlier[i],
                short: short[i],
            })
            .collect();
        let (points, projection) = match layout {
            None => (Vec::new(), "none (no map asked for)".to_string()),
            Some((xy, projection)) => {
                let chars = snippet_chars(total);
                let points = index
                    .passages
                    .iter()
                    .zip(&assignments)
                    .enumerate()
                    .map(|(i, (p, assignment))| Point {
                        passage: assignment.clone(),
                        doc_id: p.passage.doc_id.clone(),
                        x: xy[[i, 0]],
                        y: xy[[i, 1]],
                        snippet: crate::corpus::snippet(&p.passage.text, chars),
                    })
                    .collect();
                (points, projection)
            }
        };

        Ok(ThemeMap {
            schema_version: SCHEMA_VERSION,
            generated_by: format!("themap {}", env!("CARGO_PKG_VERSION")),
            model: index.model.clone(),
            settings: Settings {
                k,
                k_chosen_automatically: options.k.is_none(),
                seed: options.seed,
                merge: options.merge,
                named_themes: options.names.clone(),
                silhouettes: clustering.silhouettes.clone(),
                projection,
                vectors: options.vectors,
                min_chars,
            },
            passages: total,
            outliers: clustering.outlier.iter().filter(|&&o| o).count(),
            short: short.iter().filter(|&&s| s).count(),
            themes,
            document_count: documents.len(),
            documents,
            timeline,
            hierarchy,
            assignments,
            points,
        })
    }
}

/// Every passage's theme as tab-separated lines under a header: id, theme (1-based),
/// confidence, outlier (0/1), short (0/1), and with a map its position on it (x, y in [-1, 1]).
pub fn write_assignments(map: &ThemeMap, out: &mut impl std::io::Write) -> std::io::Result<()> {
    let with_map = !map.points.is_empty();
    writeln!(
        out,
        "id\ttheme\tconfidence\toutlier\tshort{}",
        if with_map { "\tx\ty" } else { "" }
    )?;
    for (i, a) in map.assignments.iter().enumerate() {
        write!(
            out,
            "{}\t{}\t{:.4}\t{}\t{}",
            a.id,
            a.theme,
            a.confidence,
            u8::from(a.outlier),
            u8::from(a.short)
        )?;
        match map.points.get(i) {
            Some(p) => writeln!(out, "\t{:.5}\t{:.5}", p.x, p.y)?,
            None => writeln!(out)?,
        }
    }
    Ok(())
}

/// Documents a report lists (the heatmap, each theme's in themes.json); the rest are counted,
/// and every passage's theme is in assignments.tsv.
pub const LISTED_DOCUMENTS: usize = 50;
/// Bars a timeline shows at most: beyond, dates are gathered by month, then by year.
pub const TIMELINE_BARS: usize = 60;

/// The documents with the most passages, at most `limit`, in their own order.
pub fn largest_documents(documents: &[DocumentThemes], limit: usize) -> Vec<&DocumentThemes> {
    let mut order: Vec<usize> = (0..documents.len()).collect();
    order.sort_by(|&a, &b| documents[b].passages.cmp(&documents[a].passages).then(a.cmp(&b)));
    order.truncate(limit);
    order.sort_unstable();
    order.iter().map(|&d| &documents[d]).collect()
}

fn serialize_largest<S: serde::Serializer>(
    documents: &[DocumentThemes],
    to: S,
) -> std::result::Result<S::Ok, S::Error> {
    to.collect_seq(largest_documents(documents, LISTED_DOCUMENTS))
}

fn serialize_first<S: serde::Serializer>(documents: &[ThemeDocument], to: S) -> std::result::Result<S::Ok, S::Error> {
    to.collect_seq(documents.iter().take(LISTED_DOCUMENTS))
}

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

/// Counts the letters and characters of a text (not spaces, punctuation or symbols).
fn content_chars(text: &str) -> usize {
    text.chars().filter(|c| c.is_alphanumeric()).count()
}

/// The threshold in use, and the rows long enough to shape themes (`None`: all of them).
fn content_rows(passages: &[PassageRecord], min_chars: Option<usize>) -> (usize, Option<Vec<usize>>) {
    let lengths: Vec<usize> = passages.iter().map(|p| content_chars(&p.passage.text)).collect();
    let threshold = min_chars.unwrap_or_else(|| {
        let mut sorted = lengths.clone();
        sorted.sort_unstable();
        sorted.get(sorted.len() / 2).copied().unwrap_or(0) / 4
    });
    let rows: Vec<usize> = (0..lengths.len()).filter(|&i| lengths[i] >= threshold).collect();
    // Too few long passages to shape themes: let every passage count.
    let rows = (rows.len() < lengths.len() && rows.len() >= 2).then_some(rows);
    (threshold, rows)
}

/// For each named theme: how well every passage answers its name as a search query, and the
/// passages that answer it best (at most one in twenty, 3 to 50), where the theme starts.
fn anchor_passages(index: &Index, embedder: &dyn Embedder, names: &[String]) -> Result<Vec<(Vec<f32>, Vec<usize>)>> {
    let queries: Vec<&str> = names.iter().map(String::as_str).collect();
    let vectors = embedder.embed(&queries, Prompt::Query, &Silent)?;
    let n = index.passages.len();
    let count = (n / 20).clamp(3, 50).min(n);
    Ok(vectors
        .outer_iter()
        .map(|query| {
            let scores = index.vectors.dot(&query).to_vec();
            let mut rows: Vec<usize> = (0..n).collect();
            rows.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
            rows.truncate(count);
            (scores, rows)
        })
        .collect())
}
