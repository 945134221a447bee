//! Stage 6: the theme model. [`ThemeMap::build`] grows the theme tree of an index
//! ([`crate::cluster::grow`]), names every theme at every level ([`crate::label`], [`names`]),
//! and works out where and when each recurs. [`crate::report`] only draws it.

mod kept;
pub use kept::fit_vectors;
mod names;
pub mod time;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ndarray::{Array2, ArrayView2, Axis};
use rayon::prelude::*;
use serde::Serialize;

use crate::cluster::{self, ClusterParams, LevelChoice, PromptMap, ThemeTree, TreeParams};
use crate::embed::{Embedder, Prompt};
use crate::error::{Error, Result};
use crate::index::kept::{KeptSettings, KeptThemes, ThemeEvent};
use crate::index::{Index, ModelInfo, PassageRecord};
use crate::label::{self, Keyword, KeywordOptions};
use crate::progress::{Progress, Silent};

/// Version of the `themes.json` schema; bumped only for incompatible changes. 2: so that it
/// stays small at any size, the map's points left it for `assignments.tsv` (with their
/// positions), and documents are listed up to [`LISTED_DOCUMENTS`] (with `document_count`).
/// 3: themes form a tree (`parent`, `children`, `level`, `path`; `themes` in preorder), a
/// theme's `size` and `share` count the passages that shaped it and `short` the short lines
/// attached to it, document and timeline counts are per top-level theme, and `levels` replaces
/// `hierarchy` and the silhouettes. Added since without a bump (readers of 3 may ignore them): a
/// theme's `stable_id`, `first_seen`, `new`, `by_period` and `trend`; the map's `fit`,
/// `changes`, `periods` and `since`.
pub const SCHEMA_VERSION: u32 = 3;

/// What to look for.
#[derive(Debug, Clone)]
pub struct ThemeOptions {
    /// Themes at each level, top first; its length is the number of levels. `None`: chosen
    /// where merging themes costs most (see [`cluster::TreeParams`]).
    pub counts: Vec<Option<usize>>,
    /// Named themes to look for (any language): each starts a top-level theme.
    pub names: Vec<String>,
    pub seed: u64,
    pub keywords: usize,
    /// Representative passages shown per theme.
    pub representatives: usize,
    /// Which of the index's vectors are clustered.
    pub vectors: ThemeVectors,
    /// Passages with fewer letters and characters than this do not shape the themes: they are
    /// assigned to the nearest theme afterwards and counted apart as short lines (bylines,
    /// captions and one-line headings would otherwise gather into a theme of their own because
    /// they are short). `None`: a quarter of the median passage's; `Some(0)`: every passage
    /// shapes the themes.
    pub min_chars: Option<usize>,
    /// Lay every passage out on the 2D map (the report needs it; `themap themes` does not).
    pub map: bool,
    /// The theme model kept with the index: updated (its themes keep their ids, new passages
    /// join them or form new themes), or with `refit`, matched to a fit from scratch. `None`:
    /// a fit from scratch starts a new model.
    pub kept: Option<KeptThemes>,
    pub refit: bool,
    /// Themes whose first date is on or after this ("2025-11", "2025-11-03") are marked new;
    /// without it, those found by the latest update.
    pub since: Option<String>,
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

/// Passages of an index embedded with the clustering prompt to fit the map
/// ([`ThemeVectors::Mapped`]): one in [`CLUSTERING_SAMPLE_SHARE`], between
/// [`MIN_CLUSTERING_SAMPLE`] and [`MAX_CLUSTERING_SAMPLE`]. An index of no more than the least
/// sample is embedded whole.
pub fn clustering_sample_size(passages: usize) -> usize {
    (passages / CLUSTERING_SAMPLE_SHARE).clamp(MIN_CLUSTERING_SAMPLE, MAX_CLUSTERING_SAMPLE)
}
/// The sample grows with the index, and its cost stays a small share of indexing: a twentieth
/// of the passages costs a twentieth of their embedding. More buys little (benches/README.md,
/// "The clustering sample": Debian zh at 74 chapters, NMI 0.386 +- 0.002 from 125 to 2,000).
pub const CLUSTERING_SAMPLE_SHARE: usize = 20;
/// THUCNews 10k, k = 10: 125 titles give NMI 0.672 (250: 0.675, 60: 0.667) against 0.648
/// without the map; Debian zh chapters 0.386 (250: 0.384). Below 5,000 passages the sample is
/// this size, and at 2,000 a 250-passage one was 0.08 of the index's time.
pub const MIN_CLUSTERING_SAMPLE: usize = 125;
/// THUCNews 100k: 8,000 titles NMI 0.6761, near a full second pass (0.6810).
pub const MAX_CLUSTERING_SAMPLE: usize = 8000;
/// Ridge penalty of the map's fit (rows are unit vectors; measured on THUCNews, 0.1 to 3 are
/// within noise of each other at 2,000 pairs).
const MAP_RIDGE: f64 = 1.0;

impl Default for ThemeOptions {
    fn default() -> Self {
        Self {
            counts: vec![None, None],
            names: Vec::new(),
            seed: 42,
            keywords: 10,
            representatives: 3,
            vectors: ThemeVectors::Mapped,
            min_chars: None,
            map: true,
            kept: None,
            refit: false,
            since: None,
        }
    }
}

impl ThemeOptions {
    /// What a kept model records of these options (an update with others refits).
    fn kept_settings(&self) -> KeptSettings {
        KeptSettings {
            counts: self.counts.clone(),
            names: self.names.clone(),
            seed: self.seed,
            vectors: format!("{:?}", self.vectors).to_lowercase(),
            min_chars: self.min_chars,
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
    /// Passages too short to shape the themes (attached to the nearest one, counted apart).
    pub short: usize,
    /// Every theme, in preorder: each top-level theme followed by its sub-themes.
    pub themes: Vec<Theme>,
    /// How many themes each level has, and how that number was chosen.
    pub levels: Vec<LevelChoice>,
    /// Documents with their passages in each top-level theme (the document × theme matrix).
    /// In themes.json only the [`LISTED_DOCUMENTS`] with most passages; every passage's theme
    /// is in assignments.tsv.
    #[serde(serialize_with = "serialize_largest")]
    pub documents: Vec<DocumentThemes>,
    /// How many documents there are (all of them, listed or not).
    pub document_count: usize,
    /// Passages per top-level theme on each date that documents carry.
    pub timeline: Vec<TimelineEntry>,
    /// Every passage's theme, in index order (`write_assignments`; not in themes.json, which
    /// would grow with every passage).
    #[serde(skip)]
    pub assignments: Vec<Assignment>,
    /// Every passage on the 2D map (empty when no map was asked for); in the page and, with
    /// their positions, in `write_assignments`.
    #[serde(skip)]
    pub points: Vec<Point>,
    /// How this run's themes relate to the kept theme model.
    pub fit: Fit,
    /// What happened to themes in the kept model's latest update (this run's, where it placed
    /// new passages or refitted): new ones, splits, merges, fades.
    pub changes: Vec<ThemeEvent>,
    /// The periods of the documents' dates (absent when none is dated); each theme's
    /// `by_period` counts follow them.
    pub periods: Option<time::Periods>,
    /// `--since`, if given: themes first dated on or after it are `new`.
    pub since: Option<String>,
    /// The theme model to keep with the index after this run.
    #[serde(skip)]
    pub kept: Option<KeptThemes>,
}

/// How a run's themes came about.
#[derive(Debug, Clone, Serialize)]
pub struct Fit {
    /// `first` (a new theme model), `update` (the kept one, updated) or `refit` (from scratch,
    /// matched to the kept one).
    pub kind: FitKind,
    /// The kept model's fits so far, this one included.
    pub update: u32,
    /// Why the kept model was not updated, where it was not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Passages placed by this run that the model had not fitted before.
    pub new_passages: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FitKind {
    First,
    Update,
    Refit,
}

#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// Top-level themes.
    pub k: usize,
    pub k_chosen_automatically: bool,
    /// Levels asked for (a theme too uniform to split has fewer below it).
    pub levels: usize,
    /// Leaves the tree was grown from: the passages that shape themes, up to 10,000 of them; fine
    /// k-means clusters above.
    pub leaves: usize,
    pub seed: u64,
    pub named_themes: Vec<String>,
    pub projection: String,
    pub vectors: ThemeVectors,
    /// Passages shorter than this (letters and characters) did not shape the themes.
    pub min_chars: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Theme {
    /// 1-based position in `themes` (preorder).
    pub id: usize,
    /// Its id in the theme model kept with the index: the same theme keeps it from run to run
    /// as the archive grows; ids are never reused.
    pub stable_id: u32,
    /// When the kept model first found it, and the date it first appeared in the documents.
    pub first_seen: FirstSeen,
    /// First dated on or after `--since`; without it, found by this run's update.
    pub new: bool,
    /// Passages in each period of [`ThemeMap::periods`].
    pub by_period: Vec<usize>,
    /// Rising, falling or steady in the latest period (absent without two dated periods).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trend: Option<time::Trend>,
    /// Where it sits in the tree: "3" is the third top-level theme, "3.2" its second sub-theme.
    pub path: String,
    /// 1 for top-level themes.
    pub level: usize,
    /// The id of the theme it is a sub-theme of.
    pub parent: Option<usize>,
    /// Ids of its sub-themes.
    pub children: Vec<usize>,
    /// Unique among the themes of its level.
    pub label: String,
    /// The `--theme` name this theme grew from.
    pub name: Option<String>,
    pub keywords: Vec<Keyword>,
    /// Passages that shaped it (short lines attached to it not counted).
    pub size: usize,
    /// Its share of all passages that shaped themes.
    pub share: f32,
    pub outliers: usize,
    /// Short lines attached to it (nearest theme), counted apart from `size`.
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
pub struct FirstSeen {
    /// The kept model's fit that found it (1: the first).
    pub update: u32,
    /// The index generation that fit read.
    pub generation: u64,
    /// The date by which a twentieth of its dated passages had appeared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ThemeDocument {
    pub id: String,
    pub title: String,
    pub date: Option<String>,
    /// Its passages in the theme, short lines included.
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
    /// Passages in each top-level theme, in order.
    pub counts: Vec<usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TimelineEntry {
    pub date: String,
    pub documents: usize,
    /// Passages in each top-level theme on that date, in order.
    pub counts: Vec<usize>,
}

/// A passage's theme.
#[derive(Debug, Clone, Serialize)]
pub struct Assignment {
    pub id: String,
    /// Its top-level theme, 1-based (the first part of `path`).
    pub theme: usize,
    /// Its deepest theme's path ("3.2").
    pub path: String,
    /// Its deepest theme's stable id (see [`Theme::stable_id`]).
    pub theme_id: u32,
    /// Confidence in the top-level theme.
    pub confidence: f32,
    pub outlier: bool,
    /// Too short to shape the themes; attached to the nearest.
    pub short: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Point {
    /// The passage and its theme.
    #[serde(flatten)]
    pub passage: Assignment,
    /// Index of its deepest theme in [`ThemeMap::themes`].
    pub node: usize,
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

/// The clustered rows of an index: its clustering vectors, or its search vectors mapped in
/// place towards the clustering prompt (the map and each row's length before mapping kept, so
/// that sums can be taken back), or its search vectors as they are.
enum Clustered {
    Own,
    Mapped(PromptMap, Vec<f32>),
    Search,
}

impl ThemeMap {
    /// Grows the theme tree of the index's vectors and describes every theme. The embedder (the
    /// model that built the index) embeds named themes and ranks keywords; without one, named
    /// themes are an error and keywords are plain c-TF-IDF. The index is consumed: its vectors
    /// are freed once the themes are found, before the embedder is used for keywords (a model
    /// loaded on first use, [`crate::embed::LazyModel`], then never shares memory with them).
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
        let clustered_by = match options.vectors {
            ThemeVectors::Mapped if index.clustering_vectors.is_none() => {
                let sample = index.clustering_sample.as_ref().ok_or_else(|| {
                    Error::InvalidArgument(
                        "the index has no clustering sample yet (Index::ensure_clustering_sample)".into(),
                    )
                })?;
                let (rows, targets) = sample.pairs(&index);
                let map = PromptMap::fit(index.vectors.select(Axis(0), &rows).view(), targets.view(), MAP_RIDGE)?;
                let lengths = map.apply_in_place(&mut index.vectors, progress);
                Clustered::Mapped(map, lengths)
            }
            ThemeVectors::Document => Clustered::Search,
            ThemeVectors::Mapped | ThemeVectors::Clustering if index.clustering_vectors.is_some() => Clustered::Own,
            _ => {
                return Err(Error::InvalidArgument(
                    "the index has no clustering vectors yet (Index::ensure_clustering_vectors)".into(),
                ))
            }
        };
        let clustered = match &clustered_by {
            Clustered::Own => index.clustering_vectors.as_ref().expect("checked above"),
            Clustered::Mapped(..) | Clustered::Search => &index.vectors,
        };
        let n = index.passages.len();
        let (min_chars, fit_rows) = content_rows(&index.passages, options.min_chars);
        let shapes: Vec<bool> = match &fit_rows {
            None => vec![true; n],
            Some(rows) => cluster::rows_marked(n, rows),
        };
        let params = TreeParams {
            counts: options.counts.clone(),
            leaves: None,
            cluster: ClusterParams {
                seed: options.seed,
                seeds,
                fit_rows,
                ..ClusterParams::for_tree()
            },
        };
        let hashes: Vec<&str> = index.passages.iter().map(|p| p.hash.as_str()).collect();
        let settings = options.kept_settings();
        // The kept model goes on (ids continue) wherever its vectors are like these; it is
        // updated unless a refit is asked for or needed.
        let previous = options.kept.as_ref().filter(|k| k.fits(&index.model));
        let known: std::collections::HashSet<&str> = previous
            .map(|k| k.members.iter().filter(|m| m.fitted).map(|m| m.hash.as_str()).collect())
            .unwrap_or_default();
        let new_passages = hashes.iter().filter(|h| !known.contains(*h)).count();
        let (kind, reason) = match &options.kept {
            None => (FitKind::First, None),
            Some(_) if options.refit => (FitKind::Refit, Some("--refit".to_string())),
            Some(k) => match kept::refit_reason(k, &index.model, &settings) {
                Some(reason) if previous.is_some() => (FitKind::Refit, Some(reason)),
                Some(reason) => (FitKind::First, Some(reason)),
                None if new_passages < n => (FitKind::Update, None),
                None => (FitKind::Refit, Some("none of the kept themes' passages is left".into())),
            },
        };
        let (tree, kept_ids) = match (kind, previous) {
            (FitKind::Update, Some(k)) => {
                let updated = kept::update(k, clustered.view(), &hashes, &shapes, &params, &options.names, progress)?;
                (updated.tree, Some(updated.ids))
            }
            _ => (cluster::grow(clustered.view(), &params, progress)?, None),
        };
        let top_of = tree.top_labels();
        let top_count = tree.top().len();
        let scores = cluster::score_themes(
            clustered.view(),
            &top_of,
            top_count,
            &shapes,
            params.cluster.temperature,
        );
        let layout = if options.map {
            Some(crate::report::project::to_2d(clustered.view(), progress)?)
        } else {
            None
        };
        let leaves = tree.leaf_count;
        // Themes are made of parts (fine clusters within a top-level theme): sums per part.
        let (parts, part_of) = (tree.part_count, &tree.parts);
        let centroids = node_centroids(
            &tree,
            cluster::theme_sums(clustered.view(), part_of, parts, &shapes, None),
        );
        let members = node_members(&tree);
        let representatives = representatives_of(
            &tree,
            &members,
            &shapes,
            clustered.view(),
            centroids.view(),
            &name_scores,
            options.representatives,
        );
        // Keywords are embedded as queries, so they are compared with centroids of the search
        // (document) vectors, the pairing the model was trained for. Mapped in place, those are
        // recovered from the mapped rows' sums.
        let keyword_centroids = match &clustered_by {
            Clustered::Mapped(map, lengths) => {
                // Unmapped per theme, not per part: a solve per row, and every passage can be a part.
                let sums = cluster::theme_sums(index.vectors.view(), part_of, parts, &shapes, Some(lengths));
                cluster::normalize_rows(map.unmap_sums(node_sums(&tree, sums).view())?)
            }
            Clustered::Own | Clustered::Search => node_centroids(
                &tree,
                cluster::theme_sums(index.vectors.view(), part_of, parts, &shapes, None),
            ),
        };
        // The vectors are not needed past this point: free them before keywords may load a model.
        drop(clustered_by);
        index.vectors = Array2::zeros((0, index.model.dims));
        index.clustering_vectors = None;

        let (texts, deepest): (Vec<&str>, Vec<usize>) = index
            .passages
            .iter()
            .zip(&tree.node_of)
            .zip(&shapes)
            .filter(|(_, &shaped)| shaped)
            .map(|((p, &node), _)| (p.passage.text.as_str(), node))
            .unzip();
        let parents: Vec<Option<usize>> = tree.nodes.iter().map(|node| node.parent).collect();
        let keywords = label::tree_keywords(
            &texts,
            &deepest,
            &parents,
            keyword_centroids.view(),
            embedder,
            KeywordOptions {
                count: options.keywords,
                ..KeywordOptions::default()
            },
            progress,
        )?;
        drop((texts, deepest));
        let mut labels = names::labels(&tree.nodes, &keywords, |node| {
            tree.nodes[node].seed.map(|s| options.names[s].clone())
        });
        // Kept themes keep their names; a new theme named like one of them is marked new.
        let node_ids = match (kept_ids, previous) {
            (Some(ids), _) => ids,
            (None, Some(k)) if kind == FitKind::Refit => kept::match_refit(k, &tree, &hashes, keyword_centroids.view()),
            _ => vec![None; tree.nodes.len()],
        };
        if let Some(k) = previous {
            let label_of: HashMap<u32, &str> = k.model.themes.iter().map(|t| (t.id, t.label.as_str())).collect();
            // A named theme is called by its name (`--theme`), whatever it matched.
            for ((label, id), node) in labels.iter_mut().zip(&node_ids).zip(&tree.nodes) {
                if let Some(kept_label) = id.and_then(|id| label_of.get(&id)).filter(|_| node.seed.is_none()) {
                    *label = kept_label.to_string();
                }
            }
            let taken: std::collections::HashSet<String> = labels
                .iter()
                .zip(&node_ids)
                .filter(|(_, id)| id.is_some())
                .map(|(l, _)| l.clone())
                .collect();
            for (label, id) in labels.iter_mut().zip(&node_ids) {
                if id.is_none() && taken.contains(label.as_str()) {
                    label.push_str(" (new)");
                }
            }
        }
        let (kept_model, stable_ids) = kept::keep(
            previous,
            kept::Fitted {
                tree: &tree,
                ids: node_ids,
                labels: &labels,
                names: tree
                    .nodes
                    .iter()
                    .map(|n| n.seed.map(|s| options.names[s].clone()))
                    .collect(),
                keywords: keywords
                    .iter()
                    .map(|k| k.iter().map(|w| w.word.clone()).collect())
                    .collect(),
                centroids: keyword_centroids.view(),
                hashes: &hashes,
                generation: index.generation.unwrap_or(0),
                model: index.model.clone(),
                settings,
                changed: kind != FitKind::Update || new_passages > 0,
            },
        );
        drop(hashes);
        let update = kept_model.model.updates;
        let changes: Vec<ThemeEvent> = kept_model
            .model
            .events
            .iter()
            .filter(|e| e.update == update && update > 1)
            .cloned()
            .collect();
        let first_of: HashMap<u32, (u32, u64)> = kept_model
            .model
            .themes
            .iter()
            .map(|t| (t.id, (t.first_update, t.first_generation)))
            .collect();

        // Passages (short lines included) per document, for each theme; and per top-level theme.
        let doc_row = index.document_numbers();
        let doc_of: Vec<Option<usize>> = index
            .passages
            .iter()
            .map(|p| doc_row.get(p.passage.doc_id.as_str()).copied())
            .collect();
        let mut counts = vec![vec![0usize; top_count]; index.documents.len()];
        for (d, &t) in doc_of.iter().zip(&top_of) {
            if let Some(d) = d {
                counts[*d][t] += 1;
            }
        }

        let document_dates: Vec<Option<chrono::NaiveDate>> = index
            .documents
            .iter()
            .map(|d| d.meta.date.as_deref().and_then(time::parse_date))
            .collect();
        let passage_dates: Vec<Option<chrono::NaiveDate>> =
            doc_of.iter().map(|d| d.and_then(|d| document_dates[d])).collect();
        let passage_documents: Vec<usize> = doc_of.iter().map(|d| d.unwrap_or(usize::MAX)).collect();
        let over_time = time::over_time(&passage_dates, &passage_documents, &members);
        let since = options.since.as_deref();
        let shaped_total = shapes.iter().filter(|&&s| s).count().max(1);
        let themes: Vec<Theme> = tree
            .nodes
            .iter()
            .enumerate()
            .map(|(t, node)| {
                let mut per_document: BTreeMap<usize, usize> = BTreeMap::new();
                for &row in members[t].iter() {
                    if let Some(d) = doc_of[row] {
                        *per_document.entry(d).or_default() += 1;
                    }
                }
                let mut documents: Vec<ThemeDocument> = per_document
                    .into_iter()
                    .map(|(d, passages)| {
                        let doc = &index.documents[d];
                        ThemeDocument {
                            id: doc.id.clone(),
                            title: doc.display_title().to_string(),
                            date: doc.meta.date.clone(),
                            passages,
                            share: passages as f32 / doc.passages.max(1) as f32,
                        }
                    })
                    .collect();
                documents.sort_by(|a, b| b.passages.cmp(&a.passages).then(a.id.cmp(&b.id)));
                let dates: BTreeSet<String> = documents.iter().filter_map(|d| d.date.clone()).collect();
                let size = members[t].iter().filter(|&&r| shapes[r]).count();
                let (first_update, first_generation) = first_of[&stable_ids[t]];
                let first_date = over_time.first_dates[t].clone();
                let new = match since {
                    Some(since) => first_date.as_deref().is_some_and(|d| d >= since),
                    None => kind != FitKind::First && first_update == update,
                };
                Theme {
                    id: t + 1,
                    stable_id: stable_ids[t],
                    first_seen: FirstSeen {
                        update: first_update,
                        generation: first_generation,
                        date: first_date,
                    },
                    new,
                    by_period: over_time.counts[t].clone(),
                    trend: over_time.trends[t].clone(),
                    path: node.path_label(),
                    level: node.level,
                    parent: node.parent.map(|p| p + 1),
                    children: node.children.iter().map(|c| c + 1).collect(),
                    label: labels[t].clone(),
                    name: node.seed.map(|s| options.names[s].clone()),
                    keywords: keywords[t].clone(),
                    size,
                    share: size as f32 / shaped_total as f32,
                    outliers: members[t].iter().filter(|&&r| scores.outlier[r]).count(),
                    short: members[t].len() - size,
                    document_count: documents.len(),
                    documents,
                    dates: dates.into_iter().collect(),
                    representatives: representatives[t]
                        .iter()
                        .map(|&(row, similarity)| {
                            let p = &index.passages[row].passage;
                            Representative {
                                id: p.id.clone(),
                                doc_id: p.doc_id.clone(),
                                similarity,
                                text: p.text.clone(),
                            }
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
        let timeline = timeline_of(&documents, top_count);

        let top_number: Vec<usize> = tree.nodes.iter().map(|node| node.path[0]).collect();
        let assignments: Vec<Assignment> = index
            .passages
            .iter()
            .enumerate()
            .map(|(i, p)| Assignment {
                id: p.passage.id.clone(),
                theme: top_number[tree.node_of[i]],
                path: themes[tree.node_of[i]].path.clone(),
                theme_id: stable_ids[tree.node_of[i]],
                confidence: scores.confidence[i],
                outlier: scores.outlier[i],
                short: !shapes[i],
            })
            .collect();
        let (points, projection) = match layout {
            None => (Vec::new(), "none (no map asked for)".to_string()),
            Some((xy, projection)) => {
                let chars = snippet_chars(n);
                let points = index
                    .passages
                    .iter()
                    .zip(&assignments)
                    .enumerate()
                    .map(|(i, (p, assignment))| Point {
                        passage: assignment.clone(),
                        node: tree.node_of[i],
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
                k: top_count,
                k_chosen_automatically: options.counts.first().is_some_and(Option::is_none),
                levels: options.counts.len(),
                leaves,
                seed: options.seed,
                named_themes: options.names.clone(),
                projection,
                vectors: options.vectors,
                min_chars,
            },
            passages: n,
            outliers: scores.outlier.iter().filter(|&&o| o).count(),
            short: shapes.iter().filter(|&&s| !s).count(),
            themes,
            levels: tree.levels.clone(),
            document_count: documents.len(),
            documents,
            timeline,
            assignments,
            points,
            fit: Fit {
                kind,
                update,
                reason,
                new_passages,
            },
            changes,
            periods: over_time.periods,
            since: options.since.clone(),
            // An update that placed nothing leaves the kept model as it was.
            kept: (kind != FitKind::Update || new_passages > 0).then_some(kept_model),
        })
    }

    /// The top-level themes, in order.
    pub fn top_themes(&self) -> impl Iterator<Item = &Theme> {
        self.themes.iter().filter(|t| t.level == 1)
    }
}

/// Passages per top-level theme and date.
fn timeline_of(documents: &[DocumentThemes], top_count: usize) -> Vec<TimelineEntry> {
    let mut by_date: BTreeMap<String, (usize, Vec<usize>)> = BTreeMap::new();
    for doc in documents {
        if let Some(date) = &doc.date {
            let entry = by_date.entry(date.clone()).or_insert_with(|| (0, vec![0; top_count]));
            entry.0 += 1;
            for (sum, n) in entry.1.iter_mut().zip(&doc.counts) {
                *sum += n;
            }
        }
    }
    by_date
        .into_iter()
        .map(|(date, (documents, counts))| TimelineEntry {
            date,
            documents,
            counts,
        })
        .collect()
}

/// Unit centroid of every theme of the tree from the sums of its parts' rows.
fn node_centroids(tree: &ThemeTree, part_sums: Array2<f32>) -> Array2<f32> {
    cluster::normalize_rows(node_sums(tree, part_sums))
}

/// Sum of every theme's rows from the sums of its parts' rows.
fn node_sums(tree: &ThemeTree, part_sums: Array2<f32>) -> Array2<f32> {
    let mut sums = Array2::<f32>::zeros((tree.nodes.len(), part_sums.ncols()));
    for (mut row, node) in sums.outer_iter_mut().zip(&tree.nodes) {
        for &part in &node.leaves {
            row += &part_sums.row(part);
        }
    }
    sums
}

/// The passages of every theme (its sub-themes' included), in row order.
fn node_members(tree: &ThemeTree) -> Vec<Vec<usize>> {
    let mut all = vec![Vec::new(); tree.nodes.len()];
    for (row, &node) in tree.node_of.iter().enumerate() {
        let mut at = Some(node);
        while let Some(t) = at {
            all[t].push(row);
            at = tree.nodes[t].parent;
        }
    }
    all
}

/// For every theme, its `count` passages (that shaped it, where it has such) nearest its
/// centroid, with their similarity; a named theme's are those that answer its name best.
fn representatives_of(
    tree: &ThemeTree,
    members: &[Vec<usize>],
    shapes: &[bool],
    vectors: ArrayView2<f32>,
    centroids: ArrayView2<f32>,
    name_scores: &[Vec<f32>],
    count: usize,
) -> Vec<Vec<(usize, f32)>> {
    (0..tree.nodes.len())
        .into_par_iter()
        .map(|t| {
            let rows = &members[t];
            let mut shaping: Vec<usize> = rows.iter().copied().filter(|&r| shapes[r]).collect();
            if shaping.is_empty() {
                shaping = rows.clone();
            }
            let centroid = centroids.row(t);
            let mut scored: Vec<(usize, f32, f32)> = shaping
                .iter()
                .map(|&r| {
                    let similarity = vectors.row(r).dot(&centroid);
                    let rank = match tree.nodes[t].seed {
                        Some(s) => name_scores[s][r],
                        None => similarity,
                    };
                    (r, similarity, rank)
                })
                .collect();
            scored.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(&b.0)));
            scored.truncate(count);
            scored.into_iter().map(|(r, s, _)| (r, s)).collect()
        })
        .collect()
}

/// Documents a report lists (the heatmap, each theme's in themes.json); the rest are counted,
/// and every passage's theme is in assignments.tsv.
pub const LISTED_DOCUMENTS: usize = 50;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clustering_sample_grows_with_the_index_within_bounds() {
        assert_eq!(clustering_sample_size(800), MIN_CLUSTERING_SAMPLE);
        assert_eq!(clustering_sample_size(6_000), 300);
        assert_eq!(clustering_sample_size(100_000), 5_000);
        assert_eq!(clustering_sample_size(1_000_000), MAX_CLUSTERING_SAMPLE);
        let sizes: Vec<usize> = (0..200).map(|i| clustering_sample_size(i * 1_000)).collect();
        assert!(sizes.windows(2).all(|w| w[0] <= w[1]));
    }
}
