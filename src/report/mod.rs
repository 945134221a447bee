//! Stage 7: the theme map. [`ThemeMap::build`] clusters an index, names the themes and works out
//! where and when each recurs; [`json`], [`markdown`] and [`html`] write it for scripts and people.

pub mod html;
pub mod json;
pub mod markdown;
mod project;
mod tsne;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::cluster::{self, ClusterParams, Join};
use crate::embed::{Embedder, Prompt};
use crate::error::{Error, Result};
use crate::index::{Index, ModelInfo};
use crate::label::{self, Keyword, KeywordOptions};
use crate::progress::Silent;

/// Version of the `themes.json` schema; bumped only for incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;

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
}

/// The passage vectors themes are found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ThemeVectors {
    /// Embedded with the model's clustering prompt (`task: clustering | query: `): better
    /// separated themes (THUCNews: NMI 0.682 against 0.650 with the document prompt).
    Clustering,
    /// The search vectors (document prompt): no extra embedding needed.
    Document,
}

impl Default for ThemeOptions {
    fn default() -> Self {
        Self {
            k: None,
            names: Vec::new(),
            merge: None,
            seed: 42,
            keywords: 10,
            representatives: 3,
            vectors: ThemeVectors::Clustering,
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
    pub themes: Vec<Theme>,
    /// Documents with their share of passages in each theme (the document × theme matrix).
    pub documents: Vec<DocumentThemes>,
    /// Passages per theme on each date that documents carry.
    pub timeline: Vec<TimelineEntry>,
    /// How themes group as similarity falls (ids above the theme count are earlier joins).
    pub hierarchy: Vec<HierarchyJoin>,
    /// Every passage on the 2D map.
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
    pub documents: Vec<ThemeDocument>,
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

#[derive(Debug, Clone, Serialize)]
pub struct Point {
    pub id: String,
    pub doc_id: String,
    /// 1-based theme id.
    pub theme: usize,
    pub x: f32,
    pub y: f32,
    pub confidence: f32,
    pub outlier: bool,
    pub snippet: String,
}

/// Characters of passage text kept in map points.
const SNIPPET_CHARS: usize = 120;

impl ThemeMap {
    /// Clusters the index's vectors and describes every theme. The embedder (the model that
    /// built the index) embeds named themes and ranks keywords; without one, named themes are
    /// an error and keywords are plain c-TF-IDF.
    pub fn build(index: &Index, embedder: Option<&dyn Embedder>, options: &ThemeOptions) -> Result<ThemeMap> {
        let vectors = match options.vectors {
            ThemeVectors::Document => &index.vectors,
            ThemeVectors::Clustering => index.clustering_vectors.as_ref().ok_or_else(|| {
                Error::InvalidArgument(
                    "the index has no clustering vectors yet (Index::ensure_clustering_vectors)".into(),
                )
            })?,
        };
        let seeds = match (options.names.is_empty(), embedder) {
            (true, _) => Vec::new(),
            (false, Some(embedder)) => anchor_passages(index, embedder, &options.names)?,
            (false, None) => {
                return Err(Error::InvalidArgument(
                    "named themes need the model to embed them".into(),
                ))
            }
        };
        let params = ClusterParams {
            k: options.k,
            seed: options.seed,
            merge: options.merge,
            seeds,
            ..ClusterParams::default()
        };
        let clustering = cluster::cluster(vectors.view(), &params)?;
        let k = clustering.k();

        let texts: Vec<&str> = index.passages.iter().map(|p| p.passage.text.as_str()).collect();
        let keyword_options = KeywordOptions {
            count: options.keywords,
            ..KeywordOptions::default()
        };
        let keywords = label::theme_keywords(
            &texts,
            &clustering.labels,
            // Keywords are embedded as queries, so they are compared with centroids of the
            // search (document) vectors, the pairing the model was trained for.
            cluster::centroids(index.vectors.view(), &clustering.labels, k).view(),
            embedder,
            keyword_options,
        )?;

        // Document × theme counts, in index document order.
        let doc_row = index.document_numbers();
        let mut counts = vec![vec![0usize; k]; index.documents.len()];
        for (p, &t) in index.passages.iter().zip(&clustering.labels) {
            if let Some(&d) = doc_row.get(p.passage.doc_id.as_str()) {
                counts[d][t] += 1;
            }
        }

        let total = index.passages.len();
        let themes = (0..k)
            .map(|t| {
                let members = clustering.members(t);
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
                Theme {
                    id: t + 1,
                    label,
                    name,
                    keywords: words.clone(),
                    size: members.len(),
                    share: members.len() as f32 / total as f32,
                    outliers: members.iter().filter(|&&i| clustering.outlier[i]).count(),
                    documents,
                    dates: dates.into_iter().collect(),
                    representatives: members
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

        let (xy, projection) = project::to_2d(vectors.view())?;
        let points = index
            .passages
            .iter()
            .enumerate()
            .map(|(i, p)| Point {
                id: p.passage.id.clone(),
                doc_id: p.passage.doc_id.clone(),
                theme: clustering.labels[i] + 1,
                x: xy[[i, 0]],
                y: xy[[i, 1]],
                confidence: clustering.confidence[i],
                outlier: clustering.outlier[i],
                snippet: crate::corpus::snippet(&p.passage.text, SNIPPET_CHARS),
            })
            .collect();

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
            },
            passages: total,
            outliers: clustering.outlier.iter().filter(|&&o| o).count(),
            themes,
            documents,
            timeline,
            hierarchy,
            points,
        })
    }
}

/// For each named theme, the passages that best answer its name as a search query (at most
/// one in twenty passages, 3 to 50): where the theme starts.
fn anchor_passages(index: &Index, embedder: &dyn Embedder, names: &[String]) -> Result<Vec<Vec<usize>>> {
    let queries: Vec<&str> = names.iter().map(String::as_str).collect();
    let vectors = embedder.embed(&queries, Prompt::Query, &Silent)?;
    let n = index.passages.len();
    let count = (n / 20).clamp(3, 50).min(n);
    Ok(vectors
        .outer_iter()
        .map(|query| {
            let scores = index.vectors.dot(&query);
            let mut rows: Vec<usize> = (0..n).collect();
            rows.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
            rows.truncate(count);
            rows
        })
        .collect())
}
