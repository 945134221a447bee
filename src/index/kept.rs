//! The theme model kept with the index, so that themes last across runs: every theme's id, place
//! in the tree, name and history, its centroid, and which theme each passage belongs to (by the
//! hash of its text, which survives re-indexing). [`crate::themes`] fits and updates it; the
//! index only stores it ([`super::store`]) and files new passages under it ([`KeptThemes::file_new`]).

use std::collections::{HashMap, HashSet};

use ndarray::{Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};

use super::{ModelInfo, PassageRecord};

/// Version of `themes-<gen>.json`; a model of another version is refitted, not misread.
pub const THEME_MODEL_VERSION: u32 = 1;

/// The theme model and its two data files.
#[derive(Debug, Clone, PartialEq)]
pub struct KeptThemes {
    /// `themes-<gen>.json`.
    pub model: ThemeModel,
    /// `theme-centroids-<gen>.npy`: the unit centroid of each live theme in the search vectors'
    /// space (one row per `model.centroid_ids`), so that new passages are filed without the
    /// clustering prompt.
    pub centroids: Array2<f32>,
    /// `theme-members-<gen>.tsv`: each passage's deepest theme, in index order, one line per text.
    pub members: Vec<Member>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThemeModel {
    pub version: u32,
    /// The vectors it was fitted on: an index rebuilt with another model or size starts afresh.
    pub model: ModelInfo,
    /// How it was fitted; an update asking for something else refits.
    pub settings: KeptSettings,
    /// Fits so far: 1 after the first, one more for every update or refit.
    pub updates: u32,
    /// The index generation the last fit read.
    pub generation: u64,
    /// The id the next new theme gets: ids are never reused.
    pub next_id: u32,
    /// Every theme ever found, by id (ended ones included, with their fate).
    pub themes: Vec<KeptTheme>,
    /// Ids of the rows of the centroid file: the live themes, in `themes` order.
    pub centroid_ids: Vec<u32>,
    /// What happened to themes at each update, oldest first.
    pub events: Vec<ThemeEvent>,
}

/// The options that decide a theme model's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeptSettings {
    /// Themes asked for at each level (`None`: chosen); its length is the number of levels.
    pub counts: Vec<Option<usize>>,
    pub names: Vec<String>,
    pub seed: u64,
    /// Which vectors were clustered (`mapped`, `clustering`, `document`).
    pub vectors: String,
    pub min_chars: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeptTheme {
    pub id: u32,
    pub parent: Option<u32>,
    /// 1 for top-level themes.
    pub level: usize,
    pub label: String,
    /// The `--theme` name it grew from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub keywords: Vec<String>,
    /// Passages in it (its sub-themes' included) at the last fit.
    pub size: usize,
    /// The fit that found it (1 = the first) and the index generation it read.
    pub first_update: u32,
    pub first_generation: u64,
    /// When it ended (merged, split or faded), if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<u32>,
}

impl KeptTheme {
    pub fn is_live(&self) -> bool {
        self.ended.is_none()
    }
}

/// Something that happened to a theme at an update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThemeEvent {
    pub update: u32,
    pub generation: u64,
    pub kind: EventKind,
    pub theme: u32,
    /// For `split`: the theme it came from; for `merged` and `split_up`: where its passages went.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub others: Vec<u32>,
    /// Passages it held when the event happened.
    pub passages: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A theme not seen before (`others` empty) or gathered from new passages.
    New,
    /// A new theme made mostly of one older theme's passages (`others`: that theme), which lives on.
    Split,
    /// An older theme whose passages now lie mostly in another (`others`: that one); it ends.
    Merged,
    /// An older theme whose passages spread over several new ones (`others`); it ends.
    SplitUp,
    /// An older theme with no passages left; it ends.
    Faded,
}

/// A passage's theme: the hash of its text and its deepest theme's id.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub hash: String,
    pub theme: u32,
    /// Whether a fit placed it; `false` for passages [`KeptThemes::file_new`] filed by their
    /// nearest centroid alone, which the next update places properly.
    pub fitted: bool,
}

impl KeptThemes {
    /// Files the passages the model does not know under the nearest live theme without
    /// sub-themes (one matrix product; `vectors` are the passages' search vectors), and forgets
    /// passages no longer in the index. Returns how many were filed.
    pub fn file_new(&mut self, passages: &[PassageRecord], vectors: ArrayView2<f32>) -> usize {
        let mut known: HashMap<&str, &Member> = self.members.iter().map(|m| (m.hash.as_str(), m)).collect();
        let leaves = self.leaf_rows();
        let new_rows: Vec<usize> = {
            let mut seen = HashSet::new();
            (0..passages.len())
                .filter(|&i| !known.contains_key(passages[i].hash.as_str()) && seen.insert(passages[i].hash.as_str()))
                .collect()
        };
        let filed: Vec<u32> = match leaves.is_empty() || new_rows.is_empty() {
            true => Vec::new(),
            false => {
                let centroids = self.centroids.select(Axis(0), &leaves);
                let scores = vectors.select(Axis(0), &new_rows).dot(&centroids.t());
                scores
                    .outer_iter()
                    .map(|row| {
                        let best = (0..row.len()).fold(0, |b, j| if row[j] > row[b] { j } else { b });
                        self.model.centroid_ids[leaves[best]]
                    })
                    .collect()
            }
        };
        let fresh: HashMap<&str, u32> = new_rows
            .iter()
            .zip(&filed)
            .map(|(&i, &theme)| (passages[i].hash.as_str(), theme))
            .collect();
        let mut members = Vec::with_capacity(passages.len());
        for p in passages {
            let hash = p.hash.as_str();
            if let Some(m) = known.remove(hash) {
                members.push(m.clone());
            } else if let Some(&theme) = fresh.get(hash) {
                members.push(Member {
                    hash: hash.to_string(),
                    theme,
                    fitted: false,
                });
            }
        }
        self.members = members;
        filed.len()
    }

    /// Rows of `centroids` whose themes have no live sub-themes.
    pub fn leaf_rows(&self) -> Vec<usize> {
        let parents: HashSet<u32> = self
            .model
            .themes
            .iter()
            .filter(|t| t.is_live())
            .filter_map(|t| t.parent)
            .collect();
        (0..self.model.centroid_ids.len())
            .filter(|&r| !parents.contains(&self.model.centroid_ids[r]))
            .collect()
    }

    /// Whether it was fitted on vectors like `model`'s (same weights and size).
    pub fn fits(&self, model: &ModelInfo) -> bool {
        self.model.version == THEME_MODEL_VERSION && self.model.model.same_vectors(model)
    }

    /// The members file: `hash \t theme \t fitted (0/1)` per line.
    pub(super) fn write_members(&self, w: &mut impl std::io::Write) -> std::io::Result<()> {
        for m in &self.members {
            writeln!(w, "{}\t{}\t{}", m.hash, m.theme, u8::from(m.fitted))?;
        }
        Ok(())
    }

    pub(super) fn read_members(r: &mut dyn std::io::BufRead) -> Result<Vec<Member>, String> {
        let mut members = Vec::new();
        for (n, line) in std::io::BufRead::lines(&mut *r).enumerate() {
            let line = line.map_err(|e| format!("line {}: {e}", n + 1))?;
            let mut fields = line.split('\t');
            let parsed = (|| {
                let hash = fields.next()?.to_string();
                let theme = fields.next()?.parse().ok()?;
                let fitted = match fields.next()? {
                    "1" => true,
                    "0" => false,
                    _ => return None,
                };
                Some(Member { hash, theme, fitted })
            })();
            members.push(parsed.ok_or_else(|| format!("line {}: not `hash, theme, 0/1`", n + 1))?);
        }
        Ok(members)
    }
}
