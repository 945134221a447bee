//! The theme tree: leaves grouped bottom-up by Ward's criterion, one level at a time, so that
//! themes nest and every level is named and counted.
//!
//! In a collection of up to [`PASSAGE_LEAVES_MAX`] passages every passage is a leaf, and the
//! levels are cuts of Ward's dendrogram of the passages, found with a nearest-neighbour chain
//! (quadratic time, one triangle of merge costs). A larger collection's leaves are fine k-means
//! clusters: they cost passes over the passages (one k-means), and so does settling the top
//! level (a few Lloyd iterations from the Ward cut's means, so that a top-level boundary can
//! run through a leaf); everything else works on a few hundred rows of sizes and means. Each
//! level is a cut of Ward dendrograms over parts (fine clusters within the themes above: the
//! leaves themselves for the top level; below, one dendrogram inside each theme), refined by
//! moving whole parts to the nearest theme's mean (k-means over parts, weighted by their
//! passages), which keeps the nesting. Ward merges what adds least to the within-theme sum of
//! squares, so no theme grows by swallowing its neighbours one by one as average or single
//! linkage lets it; the number of themes at a level is where that cost jumps most against the
//! trend around it.

use std::collections::HashMap;

use ndarray::{Array2, ArrayView2, Axis};
use serde::Serialize;

use super::{cluster, theme_sums, ClusterParams};
use crate::error::{Error, Result};
use crate::progress::Progress;

/// How a theme tree is grown.
#[derive(Debug, Clone)]
pub struct TreeParams {
    /// Themes at each level, top first; its length is the number of levels. `None`: chosen
    /// where the merge cost jumps most (see [`choose_count`]).
    pub counts: Vec<Option<usize>>,
    /// Fine clusters (k-means) the tree is built from. `None`: every passage is a leaf up to
    /// [`PASSAGE_LEAVES_MAX`] passages; above, one leaf per [`PASSAGES_PER_LEAF`] passages that
    /// shape themes (at least [`SMALL_LEAVES`] of three passages or more where few do),
    /// [`MAX_LEAVES`] at most.
    pub leaves: Option<usize>,
    /// The fine k-means (its `k` is set from `leaves`; `seeds` are named themes, each of which
    /// starts a leaf and becomes a top-level theme).
    pub cluster: ClusterParams,
}

impl Default for TreeParams {
    fn default() -> Self {
        Self {
            counts: vec![None, None],
            leaves: None,
            cluster: ClusterParams::for_tree(),
        }
    }
}

/// Up to this many passages every passage is a leaf of its own (a named theme's passages one
/// leaf), and the tree is Ward's over the passages, the best of the methods compared at every
/// level of the Debian sets (benches/README.md, "Theme tree"). The merge costs are quadratic:
/// 400 MB at 10,000 passages (6 s for a tree of THUCNews 10k on 2 cores).
pub const PASSAGE_LEAVES_MAX: usize = 10_000;
/// Passages per fine cluster when their number is chosen: fine enough for sub-themes of a few
/// dozen passages, coarse enough that a leaf's mean is steady.
pub const PASSAGES_PER_LEAF: usize = 20;
/// Leaves of a small collection (one passage in three, up to this many), so that it still has
/// a few themes to choose from.
pub const SMALL_LEAVES: usize = 40;
/// The leaves' k-means is the one step whose cost grows with passages × leaves; at 256 a
/// million passages cost about as much as the flat clustering did.
pub const MAX_LEAVES: usize = 256;
/// k-means restarts for the leaves. More bought nothing at the tree's levels (THUCNews 10k at
/// k = 10, seeds 42, 1, 2: 0.6892, 0.6808, 0.6808 with ten against 0.6809, 0.6810, 0.6810 with
/// three; Debian zh 5/74/501 the same tree) and cost three seconds each at a million passages.
/// The counts chosen move with the seed at any number of restarts (benches/README.md).
pub const LEAF_RUNS: usize = 3;
/// Passages the leaves (and the top level) are refined on: Lloyd iterations at 256 leaves cost
/// 45 s on 200,000 passages, most of a million passages' tree.
pub const TREE_REFINE_SAMPLE: usize = 50_000;

impl ClusterParams {
    /// The settings of the k-means a tree is grown from (see [`LEAF_RUNS`] and
    /// [`TREE_REFINE_SAMPLE`]); the rest as for flat themes.
    pub fn for_tree() -> Self {
        Self {
            runs: LEAF_RUNS,
            refine_sample: TREE_REFINE_SAMPLE,
            ..Self::default()
        }
    }
}

/// Most top-level themes chosen automatically: what a reader takes in at a glance.
pub const MAX_TOP: usize = 20;
/// Largest share of the passages one top-level theme may hold when the count is chosen.
const MAX_TOP_SHARE: f64 = 0.4;
/// A count whose jump is at least this share of the largest counts as as good (see
/// [`split_level`]).
const NEAR_BEST_JUMP: f64 = 0.9;
/// Merges on each side whose cost ratios make the trend a jump is measured against.
const TREND_WINDOW: usize = 4;

/// A theme of the tree.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Node {
    /// Index of the parent theme in [`ThemeTree::nodes`]; `None` at the top level.
    pub parent: Option<usize>,
    /// Sub-themes, in order.
    pub children: Vec<usize>,
    /// 1 for top-level themes.
    pub level: usize,
    /// Numbers from the top, 1-based: `[3, 2]` is sub-theme 2 of theme 3 ("3.2").
    pub path: Vec<usize>,
    /// The parts (fine clusters within a top-level theme, [`ThemeTree::parts`]) it holds.
    pub leaves: Vec<usize>,
    /// The named theme (index into the named seeds) it holds, if any.
    pub seed: Option<usize>,
    /// Passages that shaped it (short ones assigned to it not counted).
    pub weight: usize,
}

impl Node {
    /// "3.2".
    pub fn path_label(&self) -> String {
        let parts: Vec<String> = self.path.iter().map(usize::to_string).collect();
        parts.join(".")
    }
}

/// How the number of themes at one level came about.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LevelChoice {
    /// Themes at this level, those without sub-themes carried down from above included.
    pub count: usize,
    pub chosen_automatically: bool,
    /// (count, score) of every count tried: the ratio of the first merge not made to the last
    /// one made.
    pub scores: Vec<(usize, f64)>,
}

/// Themes as a tree over the passages.
#[derive(Debug, Clone)]
pub struct ThemeTree {
    /// Fine clusters the tree was built from (passages themselves in a small collection).
    pub leaf_count: usize,
    /// Every passage's part: its fine cluster within its top-level theme (0..`part_count`).
    /// Themes below the top are made of whole parts.
    pub parts: Vec<usize>,
    pub part_count: usize,
    /// Themes in preorder: each top-level theme followed by its sub-themes, depth first.
    pub nodes: Vec<Node>,
    /// Every passage's deepest theme (index into `nodes`).
    pub node_of: Vec<usize>,
    /// One entry per level of `TreeParams::counts`.
    pub levels: Vec<LevelChoice>,
}

impl ThemeTree {
    /// Indices of the top-level themes, in order.
    pub fn top(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].parent.is_none())
            .collect()
    }

    /// Deepest level of any theme.
    pub fn depth(&self) -> usize {
        self.nodes.iter().map(|n| n.level).max().unwrap_or(0)
    }

    /// Every passage's theme at `level` (1-based), as an index into `nodes`: its deepest theme
    /// where that is not so deep.
    pub fn node_at_level(&self, level: usize) -> Vec<usize> {
        let mut at: Vec<usize> = (0..self.nodes.len()).collect();
        for (i, node) in self.nodes.iter().enumerate() {
            let mut n = i;
            let mut l = node.level;
            while l > level {
                n = self.nodes[n].parent.expect("levels below 1 have parents");
                l -= 1;
            }
            at[i] = n;
        }
        self.node_of.iter().map(|&n| at[n]).collect()
    }

    /// The top-level theme of every passage, numbered 0.. in order.
    pub fn top_labels(&self) -> Vec<usize> {
        let top = self.top();
        let mut number = vec![0; self.nodes.len()];
        for (t, &n) in top.iter().enumerate() {
            number[n] = t;
        }
        self.node_at_level(1).into_iter().map(|n| number[n]).collect()
    }
}

/// Grows the theme tree of unit row vectors. Deterministic for a given seed, on any number of
/// threads.
#[tracing::instrument(skip_all, fields(n = vectors.nrows(), levels = params.counts.len()))]
pub fn grow(vectors: ArrayView2<f32>, params: &TreeParams, progress: &dyn Progress) -> Result<ThemeTree> {
    let n = vectors.nrows();
    let fitted_rows = params.cluster.fit_rows.as_ref().map_or(n, Vec::len);
    if params.counts.is_empty() {
        return Err(Error::InvalidArgument("a theme tree needs at least one level".into()));
    }
    let seeds = params.cluster.seeds.len();
    let largest_asked = params.counts.iter().flatten().copied().max().unwrap_or(0);
    if let Some(w) = params
        .counts
        .windows(2)
        .find(|w| matches!(w, [Some(a), Some(b)] if b < a))
    {
        return Err(Error::InvalidArgument(format!(
            "themes per level must not fall from one level to the next ({:?} then {:?})",
            w[0], w[1]
        )));
    }
    if let Some(Some(top)) = params.counts.first() {
        if *top < seeds.max(1) {
            return Err(Error::InvalidArgument(format!(
                "{top} top-level themes is fewer than the {seeds} named themes"
            )));
        }
    }
    if largest_asked > fitted_rows {
        return Err(Error::InvalidArgument(format!(
            "{largest_asked} themes asked for {fitted_rows} passages that shape themes"
        )));
    }
    params.cluster.check(n)?;
    let fitted = match &params.cluster.fit_rows {
        Some(rows) => super::rows_marked(n, rows),
        None => vec![true; n],
    };
    let every_passage_a_leaf = params.leaves.is_none() && n <= PASSAGE_LEAVES_MAX;
    let (leaf_of, leaf_named) = if every_passage_a_leaf {
        passage_leaves(vectors, &fitted, &params.cluster.seeds)
    } else {
        let leaves = params
            .leaves
            .unwrap_or_else(|| {
                (fitted_rows / PASSAGES_PER_LEAF)
                    .max((fitted_rows / 3).min(SMALL_LEAVES))
                    .clamp(2, MAX_LEAVES)
            })
            .max(2 * largest_asked)
            .max(seeds + 1)
            .min(fitted_rows);
        let fine = cluster(
            vectors,
            &ClusterParams {
                k: Some(leaves),
                merge: None,
                ..params.cluster.clone()
            },
            progress,
        )?;
        (fine.labels, fine.seed_of)
    };
    let leaf_count = leaf_named.len();
    // Level by level, each cut from parts: fine clusters within the themes above (at the top,
    // the fine clusters themselves). Ward over a parent's parts chooses the count and the start.
    // Where the leaves are k-means clusters, each level is refined by moving whole parts between
    // siblings, and at the top k-means over the passages then settles the level, so that a
    // boundary can run through a fine cluster (which whole clusters cannot follow): THUCNews 10k
    // at k = 10, NMI 0.6630 -> 0.6892. Below the top, the same within each parent lowered NMI
    // against the Debian chapters and sections (en 0.3681 -> 0.3651 and 0.6378 -> 0.6278).
    // Where every passage is a leaf, the levels are Ward's cuts as they are: refining or settling
    // them lowered NMI at every Debian level (zh 0.1070 / 0.4019 / 0.6718 -> 0.1036 / 0.3802 /
    // 0.6456), except a tree of one level, which nothing below depends on: k-means settles it
    // (THUCNews 10k at k = 10: 0.6476 -> 0.6892).
    let settle = !every_passage_a_leaf || params.counts.len() == 1;
    let mut parts = Parts {
        of: leaf_of,
        named: leaf_named,
    };
    let mut parts_data = Leaves::of(vectors, &parts.of, parts.count(), &fitted, &parts.named);
    // Each level's group of every part.
    let mut levels: Vec<Vec<usize>> = Vec::with_capacity(params.counts.len());
    let mut choices = Vec::with_capacity(params.counts.len());
    for (depth, asked) in params.counts.iter().enumerate() {
        let parents = levels.last().cloned().unwrap_or_else(|| vec![0; parts.count()]);
        progress.start(
            &format!("joining themes, level {}", depth + 1),
            parts.count() as u64,
            "parts",
        );
        let (mut groups, choice) = split_level(
            &parts_data,
            &parents,
            *asked,
            depth == 0,
            seeds,
            !every_passage_a_leaf,
            progress,
        )?;
        progress.finish();
        if depth == 0 && settle {
            // The only level whose passages leave their part: the parts become the fine
            // clusters' pieces within each top-level theme.
            let top_of = settle_top(vectors, &fitted, &parts.of, &groups, &parts_data, &params.cluster)?;
            groups = renumber(&parts.split(&top_of, &fitted));
            parts_data = Leaves::of(vectors, &parts.of, parts.count(), &fitted, &parts.named);
        }
        choices.push(LevelChoice {
            count: groups.iter().max().map_or(0, |&g| g + 1),
            ..choice
        });
        levels.push(groups);
    }
    let mut weight = vec![0usize; parts.count()];
    for (&p, &f) in parts.of.iter().zip(&fitted) {
        weight[p] += usize::from(f);
    }
    let (nodes, node_of_part) = build_nodes(&levels, &parts_data, &weight);
    let node_of = parts.of.iter().map(|&p| node_of_part[p]).collect();
    Ok(ThemeTree {
        leaf_count,
        part_count: parts.count(),
        parts: parts.of,
        nodes,
        node_of,
        levels: choices,
    })
}

/// Every passage a leaf: the passages of each named theme (each passage in the first that lists
/// it) one leaf, every other passage that shapes themes one of its own, and those that do not
/// (short lines) in the leaf of the most similar passage that does. Returns every passage's leaf
/// and each leaf's named theme.
fn passage_leaves(vectors: ArrayView2<f32>, fitted: &[bool], seeds: &[Vec<usize>]) -> (Vec<usize>, Vec<Option<usize>>) {
    let n = vectors.nrows();
    let mut leaf_of = vec![usize::MAX; n];
    let mut named = Vec::new();
    for (s, rows) in seeds.iter().enumerate() {
        let free: Vec<usize> = rows.iter().copied().filter(|&r| leaf_of[r] == usize::MAX).collect();
        if !free.is_empty() {
            free.iter().for_each(|&r| leaf_of[r] = named.len());
            named.push(Some(s));
        }
    }
    for r in 0..n {
        if fitted[r] && leaf_of[r] == usize::MAX {
            leaf_of[r] = named.len();
            named.push(None);
        }
    }
    let rest: Vec<usize> = (0..n).filter(|&r| leaf_of[r] == usize::MAX).collect();
    if !rest.is_empty() {
        let shaping: Vec<usize> = (0..n).filter(|&r| leaf_of[r] != usize::MAX).collect();
        let leaf_vectors = vectors.select(Axis(0), &shaping);
        for block in rest.chunks(COST_BLOCK) {
            let similarity = vectors.select(Axis(0), block).dot(&leaf_vectors.t());
            for (&r, row) in block.iter().zip(similarity.outer_iter()) {
                let best = (0..row.len()).max_by(|&a, &b| row[a].total_cmp(&row[b]).then(b.cmp(&a)));
                leaf_of[r] = leaf_of[shaping[best.expect("fitted passages exist")]];
            }
        }
    }
    (leaf_of, named)
}

/// Every passage's part: a fine cluster, or once the top level is settled, its piece within
/// one top-level theme.
struct Parts {
    of: Vec<usize>,
    /// The named theme of each part: a named fine cluster's largest part.
    named: Vec<Option<usize>>,
}

impl Parts {
    fn count(&self) -> usize {
        self.named.len()
    }

    /// Splits every part by the passages' `group`, numbering the new parts in order of their
    /// first passage. A named part's name goes with its largest piece (then the lowest group).
    /// Returns each new part's group.
    fn split(&mut self, group: &[usize], fitted: &[bool]) -> Vec<usize> {
        let mut id: HashMap<(usize, usize), usize> = HashMap::new();
        let mut old_of = Vec::new();
        let mut group_of = Vec::new();
        let mut weight: Vec<usize> = Vec::new();
        for ((part, &g), &f) in self.of.iter_mut().zip(group).zip(fitted) {
            let new = *id.entry((*part, g)).or_insert_with(|| {
                old_of.push(*part);
                group_of.push(g);
                weight.push(0);
                old_of.len() - 1
            });
            weight[new] += usize::from(f);
            *part = new;
        }
        let mut heir: HashMap<usize, usize> = HashMap::new();
        for (p, &old) in old_of.iter().enumerate() {
            if self.named[old].is_some() {
                let best = heir.entry(old).or_insert(p);
                let key = |q: usize| (std::cmp::Reverse(weight[q]), group_of[q]);
                if key(p) < key(*best) {
                    *best = p;
                }
            }
        }
        self.named = (0..old_of.len())
            .map(|p| {
                (heir.get(&old_of[p]) == Some(&p))
                    .then(|| self.named[old_of[p]])
                    .flatten()
            })
            .collect();
        group_of
    }
}

/// Every passage's top-level theme: the theme of its part, then, unless refinement is off,
/// Lloyd iterations over the passages started from the themes' means.
fn settle_top(
    vectors: ArrayView2<f32>,
    fitted: &[bool],
    part_of: &[usize],
    top_of_part: &[usize],
    parts: &Leaves,
    params: &ClusterParams,
) -> Result<Vec<usize>> {
    let by_part: Vec<usize> = part_of.iter().map(|&p| top_of_part[p]).collect();
    let tops = top_of_part.iter().max().map_or(0, |&t| t + 1);
    let fit: Vec<usize> = (0..part_of.len()).filter(|&r| fitted[r]).collect();
    if params.refine_iterations == 0 || tops < 2 || fit.len() <= tops {
        return Ok(by_part);
    }
    let mut means = Array2::<f64>::zeros((tops, vectors.ncols()));
    let mut mass = vec![0.0f64; tops];
    for (p, &t) in top_of_part.iter().enumerate() {
        means.row_mut(t).scaled_add(parts.weight[p], &parts.means.row(p));
        mass[t] += parts.weight[p];
    }
    let start = Array2::from_shape_fn(means.dim(), |(t, j)| {
        (means[[t, j]] / mass[t].max(f64::MIN_POSITIVE)) as f32
    });
    super::kmeans::refine_from(vectors, &fit, start, params)
}

impl Leaves {
    /// Each group's mean and weight over the passages that shaped it (all of its own where none
    /// did), of the `count` groups of `labels`.
    fn of(
        vectors: ArrayView2<f32>,
        labels: &[usize],
        count: usize,
        fitted: &[bool],
        named: &[Option<usize>],
    ) -> Leaves {
        let sums = theme_sums(vectors, labels, count, fitted, None);
        let mut weight = vec![0usize; count];
        let mut members = vec![0usize; count];
        for (&l, &f) in labels.iter().zip(fitted) {
            weight[l] += usize::from(f);
            members[l] += 1;
        }
        let weight: Vec<f64> = (0..count)
            .map(|l| if weight[l] > 0 { weight[l] } else { members[l].max(1) } as f64)
            .collect();
        let mut means = sums.mapv(f64::from);
        for (mut row, &w) in means.outer_iter_mut().zip(&weight) {
            row /= w;
        }
        Leaves {
            means,
            weight,
            named: named.to_vec(),
        }
    }
}

/// The leaves as the levels see them.
struct Leaves {
    /// Mean of each leaf's passages (f64: Ward's updates subtract near-equal numbers).
    means: Array2<f64>,
    /// Passages in each leaf.
    weight: Vec<f64>,
    /// The named theme a leaf grew from.
    named: Vec<Option<usize>>,
}

/// The groups of one level: every parent's leaves cut into groups by their Ward dendrogram,
/// at a count asked for or chosen, then, if `refine`, by moving whole leaves within their parent.
/// Returns each leaf's group (numbered 0.. without gaps) and how the count came about.
fn split_level(
    leaves: &Leaves,
    parent_of: &[usize],
    asked: Option<usize>,
    top: bool,
    seeds: usize,
    refine: bool,
    progress: &dyn Progress,
) -> Result<(Vec<usize>, LevelChoice)> {
    let count = parent_of.len();
    let parents = parent_of.iter().max().map_or(0, |&p| p + 1);
    // One dendrogram per parent, over its leaves.
    let mut merges: Vec<(f64, usize, usize)> = Vec::new(); // (height, parent, step)
    let mut trees: Vec<(Vec<usize>, Vec<Merge>)> = Vec::with_capacity(parents);
    for p in 0..parents {
        let items: Vec<usize> = (0..count).filter(|&l| parent_of[l] == p).collect();
        let tree = ward(leaves, &items, progress);
        let mut floor = 0.0f64;
        for (step, m) in tree.iter().enumerate() {
            // Ward never inverts in exact arithmetic; rounding may, and a cut must take every
            // dendrogram's merges in order.
            floor = floor.max(m.height);
            merges.push((floor, p, step));
        }
        trees.push((items, tree));
    }
    merges.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    // Applying the j lowest merges leaves `count - j` groups.
    let fewest = count - merges.len();
    let (lo, hi) = if top {
        let hi = MAX_TOP.min(count / 2).max(seeds + 1).max(3);
        ((seeds + 1).max(3), hi)
    } else {
        // Below the top: two to four sub-themes a theme on average (more make sub-themes of a
        // few passages each on small collections).
        (2 * parents, 4 * parents)
    };
    let (lo, hi) = (lo.clamp(fewest, count), hi.clamp(fewest, count));
    // How much the next merge costs against the last one made, relative to the same ratio
    // nearby: merge costs grow steadily as groups grow, and a natural number of themes is where
    // they jump more than their trend.
    let ratio = |j: usize| merges[j + 1].0 / merges[j].0.max(f64::MIN_POSITIVE);
    let ratios = merges.len().saturating_sub(1);
    let scores: Vec<(usize, f64)> = (lo..=hi)
        .filter_map(|groups| {
            let made = count - groups;
            let j = made.checked_sub(1).filter(|&j| j < ratios)?;
            let mut nearby: Vec<f64> = (j.saturating_sub(TREND_WINDOW)..(j + TREND_WINDOW + 1).min(ratios))
                .filter(|&i| i != j)
                .map(ratio)
                .collect();
            nearby.sort_by(f64::total_cmp);
            let trend = nearby.get(nearby.len() / 2).copied().unwrap_or(1.0);
            Some((groups, ratio(j) / trend.max(f64::MIN_POSITIVE)))
        })
        .collect();
    // At the top, no theme may hold more than MAX_TOP_SHARE of the passages where some count
    // in range avoids it.
    let largest = top.then(|| largest_share_by_count(&leaves.weight, &trees, &merges));
    let balanced = |g: usize| {
        largest
            .as_ref()
            .is_none_or(|l| l.get(&g).is_some_and(|&s| s <= MAX_TOP_SHARE))
    };
    let any_balanced = scores.iter().any(|&(g, _)| balanced(g));
    let eligible = || scores.iter().filter(|&&(g, _)| !any_balanced || balanced(g));
    let target = match asked {
        Some(k) => k.clamp(fewest, count),
        None => {
            // The fewest themes whose jump is near the largest: two nested groupings make two
            // jumps of about the same size, and the finer one is the next level's.
            let best = eligible().map(|s| s.1).fold(f64::NEG_INFINITY, f64::max);
            eligible().find(|s| s.1 >= NEAR_BEST_JUMP * best).map_or(lo, |s| s.0)
        }
    };
    let made = count - target;
    let mut applied = vec![0usize; parents];
    for &(_, p, _) in &merges[..made] {
        applied[p] += 1;
    }
    let mut group = vec![usize::MAX; count];
    let mut next_group = 0;
    for (p, (items, tree)) in trees.iter().enumerate() {
        let cut = cut_tree(items.len(), &tree[..applied[p]]);
        let offset = next_group;
        for (&leaf, &g) in items.iter().zip(&cut) {
            group[leaf] = offset + g;
        }
        next_group += cut.iter().max().map_or(0, |&g| g + 1);
    }
    if refine {
        refine_groups(leaves, &mut group, parent_of);
    }
    let group = renumber(&group);
    let choice = LevelChoice {
        count: group.iter().max().map_or(0, |&g| g + 1),
        chosen_automatically: asked.is_none(),
        scores,
    };
    Ok((group, choice))
}

/// For each number of groups the merges (sorted, across the trees) pass through, the largest
/// group's share of all the weight.
fn largest_share_by_count(
    weight: &[f64],
    trees: &[(Vec<usize>, Vec<Merge>)],
    merges: &[(f64, usize, usize)],
) -> std::collections::HashMap<usize, f64> {
    let total: f64 = weight.iter().sum();
    // Per tree: the weight of each item and merge node.
    let mut node_weight: Vec<Vec<f64>> = trees
        .iter()
        .map(|(items, tree)| {
            let mut w: Vec<f64> = items.iter().map(|&l| weight[l]).collect();
            w.resize(items.len() + tree.len(), 0.0);
            w
        })
        .collect();
    let mut largest = weight.iter().copied().fold(0.0f64, f64::max);
    let mut groups = weight.len();
    let mut out = std::collections::HashMap::from([(groups, largest / total)]);
    for &(_, p, step) in merges {
        let (items, tree) = &trees[p];
        let m = tree[step];
        let joined = node_weight[p][m.a] + node_weight[p][m.b];
        node_weight[p][items.len() + step] = joined;
        largest = largest.max(joined);
        groups -= 1;
        out.insert(groups, largest / total);
    }
    out
}

/// One step of a Ward dendrogram: `a` and `b` (items below the item count, earlier merges
/// above, SciPy's convention) join, adding `height` to the within-group sum of squares.
#[derive(Debug, Clone, Copy)]
struct Merge {
    a: usize,
    b: usize,
    height: f64,
}

/// Ward's agglomeration of the leaves `items` (weighted by their passages), by the
/// Lance–Williams update, found with a nearest-neighbour chain (Murtagh; SciPy's and fastcluster's
/// method): quadratic time and one triangle of merge costs, so that a few thousand passages can
/// each be a leaf. Two groups that each hold a named theme never join, so the result may stop
/// short of one root. Merges come out in order of height.
/// `progress` advances by one per item (the first when the costs are in, then one per merge).
fn ward(leaves: &Leaves, items: &[usize], progress: &dyn Progress) -> Vec<Merge> {
    let m = items.len();
    if m < 2 {
        progress.advance(m as u64, 0);
        return Vec::new();
    }
    let mut size: Vec<f64> = items.iter().map(|&l| leaves.weight[l]).collect();
    let mut named: Vec<bool> = items.iter().map(|&l| leaves.named[l].is_some()).collect();
    let mut cost = Triangle::ward_costs(leaves, items, &size, &named);
    progress.advance(1, 0);
    // Slots of the groups still open; a merged group lives on in one of its two slots.
    let mut open: Vec<usize> = (0..m).collect();
    let mut chain: Vec<usize> = Vec::new();
    // (height, a slot of each side), in the order the chain finds them.
    let mut found: Vec<(f64, usize, usize)> = Vec::with_capacity(m - 1);
    while open.len() > 1 {
        if chain.is_empty() {
            chain.push(open[0]);
        }
        let a = *chain.last().expect("not empty");
        let previous = chain.len().checked_sub(2).map(|i| chain[i]);
        // The nearest open group, the previous link on a tie (so that the chain cannot cycle).
        let mut nearest = previous.map(|p| (cost.get(a, p), p));
        for &k in &open {
            if k != a && nearest.is_none_or(|(c, _)| cost.get(a, k) < c) {
                nearest = Some((cost.get(a, k), k));
            }
        }
        let (height, b) = match nearest {
            Some((c, b)) if c.is_finite() => (c, b),
            // Named, with every other open group named too: it joins nothing more.
            _ => {
                progress.advance(1, 0);
                chain.clear();
                open.retain(|&k| k != a);
                continue;
            }
        };
        if previous != Some(b) {
            chain.push(b);
            continue;
        }
        // a and b are each other's nearest: join them into slot b, a retires.
        chain.truncate(chain.len() - 2);
        found.push((height, a, b));
        progress.advance(1, 0);
        open.retain(|&k| k != a);
        for &k in open.iter().filter(|&&k| k != b) {
            let joined = if named[k] && (named[a] || named[b]) {
                f64::INFINITY
            } else {
                let total = size[a] + size[b] + size[k];
                ((size[a] + size[k]) * cost.get(k, a) + (size[b] + size[k]) * cost.get(k, b) - size[k] * height) / total
            };
            cost.set(k, b, joined);
        }
        size[b] += size[a];
        named[b] |= named[a];
    }
    // In order of height (Ward is reducible: the order of a greedy search for the cheapest
    // pair), numbered as SciPy numbers its dendrograms.
    found.sort_by(|x, y| x.0.total_cmp(&y.0));
    let mut parent: Vec<usize> = (0..m).collect();
    let mut node: Vec<usize> = (0..m).collect();
    let mut merges = Vec::with_capacity(found.len());
    for (height, a, b) in found {
        let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
        merges.push(Merge {
            a: node[ra].min(node[rb]),
            b: node[ra].max(node[rb]),
            height,
        });
        parent[rb] = ra;
        node[ra] = m + merges.len() - 1;
    }
    merges
}

/// Union-find's root of `x`, halving the path on the way.
fn root(parent: &mut [usize], mut x: usize) -> usize {
    while parent[x] != x {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    x
}

/// A symmetric matrix without its diagonal, stored as its upper triangle.
struct Triangle {
    m: usize,
    values: Vec<f64>,
}

/// Rows multiplied at once by a matrix product over all leaves (the merge costs; short passages'
/// nearest passage): bounds the scratch memory.
const COST_BLOCK: usize = 256;

impl Triangle {
    /// Ward's cost of joining every two of `items`: w_i w_j / (w_i + w_j) · |μ_i − μ_j|²
    /// (infinite between two named ones), from one matrix product per block of rows.
    fn ward_costs(leaves: &Leaves, items: &[usize], size: &[f64], named: &[bool]) -> Self {
        let m = items.len();
        let means = leaves.means.select(Axis(0), items);
        let norms: Vec<f64> = means.outer_iter().map(|r| r.dot(&r)).collect();
        let mut triangle = Self {
            m,
            values: vec![0.0; m * (m - 1) / 2],
        };
        for start in (0..m).step_by(COST_BLOCK) {
            let end = (start + COST_BLOCK).min(m);
            let gram = means.slice(ndarray::s![start..end, ..]).dot(&means.t());
            for i in start..end {
                for j in i + 1..m {
                    let squared = (norms[i] + norms[j] - 2.0 * gram[[i - start, j]]).max(0.0);
                    let c = if named[i] && named[j] {
                        f64::INFINITY
                    } else {
                        size[i] * size[j] / (size[i] + size[j]) * squared
                    };
                    triangle.set(i, j, c);
                }
            }
        }
        triangle
    }

    fn index(&self, i: usize, j: usize) -> usize {
        let (i, j) = if i < j { (i, j) } else { (j, i) };
        i * self.m - i * (i + 1) / 2 + (j - i - 1)
    }

    fn get(&self, i: usize, j: usize) -> f64 {
        self.values[self.index(i, j)]
    }

    fn set(&mut self, i: usize, j: usize, value: f64) {
        let at = self.index(i, j);
        self.values[at] = value;
    }
}

/// Groups (0.., in order of their first item) of `items` items after `merges`.
fn cut_tree(items: usize, merges: &[Merge]) -> Vec<usize> {
    // Union-find over items and merge nodes.
    let mut parent: Vec<usize> = (0..items + merges.len()).collect();
    for (step, m) in merges.iter().enumerate() {
        let node = items + step;
        let (a, b) = (root(&mut parent, m.a), root(&mut parent, m.b));
        parent[a] = node;
        parent[b] = node;
    }
    let roots: Vec<usize> = (0..items).map(|i| root(&mut parent, i)).collect();
    renumber(&roots)
}

/// Numbers distinct values 0.. in order of first appearance.
fn renumber(values: &[usize]) -> Vec<usize> {
    let mut number = std::collections::HashMap::new();
    values
        .iter()
        .map(|v| {
            let next = number.len();
            *number.entry(*v).or_insert(next)
        })
        .collect()
}

/// Most rounds of moving leaves between the groups of one parent.
const REFINE_ROUNDS: usize = 20;

/// k-means over leaves: each leaf moves to the group (of its own parent) whose weighted mean is
/// nearest, until none moves. A group holding a named leaf keeps it; a group left empty is gone.
fn refine_groups(leaves: &Leaves, group: &mut [usize], parent_of: &[usize]) {
    let groups = group.iter().max().map_or(0, |&g| g + 1);
    let d = leaves.means.ncols();
    let mut group_parent = vec![0; groups];
    for (l, &g) in group.iter().enumerate() {
        group_parent[g] = parent_of[l];
    }
    for _ in 0..REFINE_ROUNDS {
        let mut means = Array2::<f64>::zeros((groups, d));
        let mut weight = vec![0.0f64; groups];
        for (l, &g) in group.iter().enumerate() {
            means.row_mut(g).scaled_add(leaves.weight[l], &leaves.means.row(l));
            weight[g] += leaves.weight[l];
        }
        for (mut row, &w) in means.outer_iter_mut().zip(&weight) {
            if w > 0.0 {
                row /= w;
            }
        }
        let mut moved = false;
        for l in 0..group.len() {
            if leaves.named[l].is_some() {
                continue;
            }
            let distance = |g: usize| {
                let leaf = leaves.means.row(l);
                leaf.iter()
                    .zip(means.row(g))
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum::<f64>()
            };
            let current = group[l];
            let best = (0..groups)
                .filter(|&g| group_parent[g] == parent_of[l] && weight[g] > 0.0)
                .map(|g| (distance(g), g))
                .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)))
                .map_or(current, |(_, g)| g);
            // Move only where strictly nearer, so that ties never make a leaf wander.
            if best != current && distance(best) < distance(current) {
                group[l] = best;
                moved = true;
            }
        }
        if !moved {
            break;
        }
    }
}

/// Themes in preorder from the levels' groups: siblings named first, then by passages; a group
/// that is its parent's only one is no sub-theme (its leaves' further groups hang from the
/// parent instead). Returns the nodes and every leaf's deepest node.
fn build_nodes(levels: &[Vec<usize>], leaves: &Leaves, leaf_passages: &[usize]) -> (Vec<Node>, Vec<usize>) {
    let count = leaves.weight.len();
    let mut builder = NodeBuilder {
        levels,
        leaves,
        leaf_passages,
        nodes: Vec::new(),
        node_of_leaf: vec![usize::MAX; count],
    };
    let all: Vec<usize> = (0..count).collect();
    for (i, set) in builder.groups_within(0, &all).into_iter().enumerate() {
        builder.visit(set, None, vec![i + 1], 1);
    }
    (builder.nodes, builder.node_of_leaf)
}

struct NodeBuilder<'a> {
    levels: &'a [Vec<usize>],
    leaves: &'a Leaves,
    leaf_passages: &'a [usize],
    nodes: Vec<Node>,
    node_of_leaf: Vec<usize>,
}

impl NodeBuilder<'_> {
    fn weight(&self, set: &[usize]) -> usize {
        set.iter().map(|&l| self.leaf_passages[l]).sum()
    }

    fn seed(&self, set: &[usize]) -> Option<usize> {
        set.iter().filter_map(|&l| self.leaves.named[l]).min()
    }

    /// The groups of `level` (index into `levels`) among `parent_leaves`, as leaf sets: named
    /// first, then by passages.
    fn groups_within(&self, level: usize, parent_leaves: &[usize]) -> Vec<Vec<usize>> {
        let mut order: Vec<usize> = Vec::new();
        let mut sets: Vec<Vec<usize>> = Vec::new();
        for &l in parent_leaves {
            let g = self.levels[level][l];
            match order.iter().position(|&o| o == g) {
                Some(i) => sets[i].push(l),
                None => {
                    order.push(g);
                    sets.push(vec![l]);
                }
            }
        }
        sets.sort_by_key(|s| {
            (
                self.seed(s).unwrap_or(usize::MAX),
                std::cmp::Reverse(self.weight(s)),
                s.iter().copied().min(),
            )
        });
        sets
    }

    /// Adds the theme of leaves `set`, then its sub-themes from the first level at or below
    /// `below` that splits it, depth first.
    fn visit(&mut self, set: Vec<usize>, parent: Option<usize>, path: Vec<usize>, mut below: usize) {
        let me = self.nodes.len();
        for &l in &set {
            self.node_of_leaf[l] = me;
        }
        // A named theme is the highest theme holding its leaf; sub-themes go by their words.
        let seed = self
            .seed(&set)
            .filter(|&s| parent.is_none_or(|p| self.nodes[p].seed != Some(s)));
        self.nodes.push(Node {
            parent,
            children: Vec::new(),
            level: path.len(),
            path: path.clone(),
            weight: self.weight(&set),
            seed,
            leaves: set.clone(),
        });
        if let Some(p) = parent {
            self.nodes[p].children.push(me);
        }
        while below < self.levels.len() {
            let children = self.groups_within(below, &set);
            below += 1;
            if children.len() > 1 {
                for (i, child) in children.into_iter().enumerate() {
                    let mut child_path = path.clone();
                    child_path.push(i + 1);
                    self.visit(child, Some(me), child_path, below);
                }
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::normalize_rows;
    use crate::cluster::quality::agreement;
    use rand::{Rng, SeedableRng};
    use rand_xoshiro::Xoshiro256Plus;

    /// `top` well-separated groups on the unit sphere, each made of `sub` tighter blobs.
    fn nested(top: usize, sub: usize, per: usize, seed: u64) -> (Array2<f32>, Vec<usize>, Vec<usize>) {
        let dims = 32;
        let mut rng = Xoshiro256Plus::seed_from_u64(seed);
        let mut rows = Vec::new();
        let (mut upper, mut lower) = (Vec::new(), Vec::new());
        for t in 0..top {
            for s in 0..sub {
                for _ in 0..per {
                    let mut v = vec![0.0f32; dims];
                    v[t] = 3.0;
                    v[top + (t * sub + s) % (dims - top)] = 1.2;
                    for x in v.iter_mut() {
                        *x += rng.gen_range(-0.3..0.3);
                    }
                    rows.extend(v);
                    upper.push(t);
                    lower.push(t * sub + s);
                }
            }
        }
        let n = upper.len();
        (
            normalize_rows(Array2::from_shape_vec((n, dims), rows).unwrap()),
            upper,
            lower,
        )
    }

    fn grow_default(v: &Array2<f32>) -> ThemeTree {
        grow(v.view(), &TreeParams::default(), &crate::Silent).unwrap()
    }

    #[test]
    fn finds_both_levels_of_nested_groups() {
        let (v, upper, lower) = nested(4, 3, 40, 1);
        let tree = grow_default(&v);
        assert_eq!(tree.top().len(), 4, "levels {:?}", tree.levels);
        assert!(agreement(&upper, &tree.top_labels()).ari > 0.99);
        let second = tree.node_at_level(2);
        let score = agreement(&lower, &second);
        assert!(score.nmi > 0.95, "{score:?}, levels {:?}", tree.levels);
    }

    #[test]
    fn every_passage_sits_on_one_path_and_sizes_add_up() {
        let (v, _, _) = nested(3, 4, 30, 2);
        let tree = grow_default(&v);
        let n = v.nrows();
        assert_eq!(tree.node_of.len(), n);
        let mut passages = vec![0usize; tree.nodes.len()];
        for &node in &tree.node_of {
            assert!(
                tree.nodes[node].children.is_empty(),
                "passages sit on a leaf of the tree"
            );
            let mut at = Some(node);
            while let Some(i) = at {
                passages[i] += 1;
                at = tree.nodes[i].parent;
            }
        }
        let top: usize = tree.top().iter().map(|&t| passages[t]).sum();
        assert_eq!(top, n);
        for (i, node) in tree.nodes.iter().enumerate() {
            if !node.children.is_empty() {
                let below: usize = node.children.iter().map(|&c| passages[c]).sum();
                assert_eq!(below, passages[i], "children of {} add up", node.path_label());
                assert!(node.children.len() >= 2, "no theme has a single sub-theme");
            }
            for &c in &node.children {
                assert_eq!(tree.nodes[c].parent, Some(i));
                assert_eq!(tree.nodes[c].level, node.level + 1);
                assert!(tree.nodes[c].path.starts_with(&node.path));
            }
            assert_eq!(node.weight, passages[i]);
        }
        // Preorder: a node's parent comes before it.
        for (i, node) in tree.nodes.iter().enumerate() {
            assert!(node.parent.is_none_or(|p| p < i));
        }
    }

    #[test]
    fn same_seed_same_tree() {
        let (v, _, _) = nested(3, 3, 30, 3);
        let a = grow_default(&v);
        let b = grow_default(&v);
        assert_eq!(a.nodes, b.nodes);
        assert_eq!(a.node_of, b.node_of);
        // On one thread too.
        let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        let c = pool.install(|| grow_default(&v));
        assert_eq!(a.nodes, c.nodes);
        assert_eq!(a.node_of, c.node_of);
    }

    #[test]
    fn counts_can_be_set_and_levels_nest() {
        let (v, _, _) = nested(4, 3, 30, 4);
        let params = TreeParams {
            counts: vec![Some(2), Some(6), None],
            ..TreeParams::default()
        };
        let tree = grow(v.view(), &params, &crate::Silent).unwrap();
        assert_eq!(tree.top().len(), 2);
        assert_eq!(tree.levels[0].count, 2);
        assert_eq!(tree.levels[1].count, 6);
        assert!(!tree.levels[0].chosen_automatically && tree.levels[2].chosen_automatically);
        let top = tree.node_at_level(1);
        let second = tree.node_at_level(2);
        for (t, s) in top.iter().zip(&second) {
            assert!(tree.nodes[*s].path.starts_with(&tree.nodes[*t].path));
        }
    }

    #[test]
    fn named_themes_are_top_level_themes() {
        let (v, upper, _) = nested(3, 1, 60, 5);
        // Passages 60..63 are in group 1.
        let params = TreeParams {
            cluster: ClusterParams {
                seeds: vec![vec![60, 61, 62]],
                ..ClusterParams::default()
            },
            ..TreeParams::default()
        };
        let tree = grow(v.view(), &params, &crate::Silent).unwrap();
        let first = tree.top()[0];
        assert_eq!(tree.nodes[first].seed, Some(0));
        let labels = tree.top_labels();
        let group1: Vec<usize> = (0..v.nrows()).filter(|&i| upper[i] == 1).map(|i| labels[i]).collect();
        assert!(group1.iter().all(|&l| l == 0), "{group1:?} {:?}", tree.levels);
    }

    #[test]
    fn bad_counts_are_errors() {
        let (v, _, _) = nested(2, 2, 10, 6);
        for counts in [vec![], vec![Some(5), Some(3)], vec![Some(1000)]] {
            let params = TreeParams {
                counts: counts.clone(),
                ..TreeParams::default()
            };
            assert!(grow(v.view(), &params, &crate::Silent).is_err(), "{counts:?}");
        }
    }

    #[test]
    fn a_small_collection_grows_the_same_tree_whatever_the_seed() {
        // Its leaves are the passages: no k-means start for the seed to move (the counts chosen
        // on the Debian sets moved with it while the leaves were k-means clusters). Points with
        // no clear groups, where k-means' start decides most.
        let mut rng = Xoshiro256Plus::seed_from_u64(6);
        let v = normalize_rows(Array2::from_shape_fn((300, 16), |_| rng.gen_range(-1.0f32..1.0)));
        let with_seed = |seed| {
            let params = TreeParams {
                cluster: ClusterParams {
                    seed,
                    ..ClusterParams::for_tree()
                },
                ..TreeParams::default()
            };
            grow(v.view(), &params, &crate::Silent).unwrap()
        };
        let (a, b) = (with_seed(1), with_seed(2));
        assert_eq!(a.nodes, b.nodes);
        assert_eq!(a.node_of, b.node_of);
    }

    #[test]
    fn kmeans_leaves_find_both_levels_too() {
        // As a collection above PASSAGE_LEAVES_MAX grows its tree.
        let (v, upper, lower) = nested(4, 3, 40, 1);
        let params = TreeParams {
            leaves: Some(48),
            ..TreeParams::default()
        };
        let tree = grow(v.view(), &params, &crate::Silent).unwrap();
        assert_eq!(tree.leaf_count, 48);
        assert_eq!(tree.top().len(), 4, "levels {:?}", tree.levels);
        assert!(agreement(&upper, &tree.top_labels()).ari > 0.99);
        assert!(
            agreement(&lower, &tree.node_at_level(2)).nmi > 0.95,
            "{:?}",
            tree.levels
        );
    }

    #[test]
    fn a_small_collection_makes_every_passage_a_leaf() {
        let (v, _, _) = nested(3, 2, 20, 4);
        assert_eq!(grow_default(&v).leaf_count, v.nrows());
        let params = TreeParams {
            cluster: ClusterParams {
                // A named theme's passages make one leaf; short passages join a leaf.
                seeds: vec![vec![0, 1, 2]],
                fit_rows: Some((0..v.nrows() - 5).collect()),
                ..ClusterParams::default()
            },
            ..TreeParams::default()
        };
        let tree = grow(v.view(), &params, &crate::Silent).unwrap();
        assert_eq!(tree.leaf_count, v.nrows() - 5 - 2);
    }

    /// Ward by searching every pair for the cheapest join at each step: what the chain must
    /// reproduce.
    fn ward_by_search(points: &Array2<f64>, weight: &[f64]) -> Vec<f64> {
        let mut groups: Vec<(Vec<f64>, f64)> = points.outer_iter().zip(weight).map(|(p, &w)| (p.to_vec(), w)).collect();
        let mut heights = Vec::new();
        while groups.len() > 1 {
            let cost = |a: &(Vec<f64>, f64), b: &(Vec<f64>, f64)| {
                let d: f64 = a.0.iter().zip(&b.0).map(|(x, y)| (x - y) * (x - y)).sum();
                a.1 * b.1 / (a.1 + b.1) * d
            };
            let (mut bi, mut bj) = (0, 1);
            for i in 0..groups.len() {
                for j in i + 1..groups.len() {
                    if cost(&groups[i], &groups[j]) < cost(&groups[bi], &groups[bj]) {
                        (bi, bj) = (i, j);
                    }
                }
            }
            heights.push(cost(&groups[bi], &groups[bj]));
            let (b, a) = (groups.remove(bj), groups[bi].clone());
            let w = a.1 + b.1;
            let mean = a.0.iter().zip(&b.0).map(|(x, y)| (a.1 * x + b.1 * y) / w).collect();
            groups[bi] = (mean, w);
        }
        heights
    }

    #[test]
    fn the_chain_finds_the_merges_a_search_for_the_cheapest_pair_finds() {
        let mut rng = Xoshiro256Plus::seed_from_u64(9);
        let m = 60;
        let means = Array2::from_shape_fn((m, 3), |_| rng.gen_range(-1.0..1.0));
        let weight: Vec<f64> = (0..m).map(|_| rng.gen_range(1..20) as f64).collect();
        let leaves = Leaves {
            means: means.clone(),
            weight: weight.clone(),
            named: vec![None; m],
        };
        let items: Vec<usize> = (0..m).collect();
        let merges = ward(&leaves, &items, &crate::Silent);
        let expected = ward_by_search(&means, &weight);
        assert_eq!(merges.len(), m - 1);
        for (got, want) in merges.iter().zip(&expected) {
            assert!(
                (got.height - want).abs() < 1e-9 * want.max(1.0),
                "{} {want}",
                got.height
            );
        }
        // Every merge joins two groups that exist by then, each once.
        let mut used = vec![false; 2 * m - 1];
        for (step, merge) in merges.iter().enumerate() {
            assert!(merge.a < m + step && merge.b < m + step && merge.a != merge.b);
            assert!(!used[merge.a] && !used[merge.b]);
            (used[merge.a], used[merge.b]) = (true, true);
        }
    }

    #[test]
    fn identical_and_tiny_collections_grow_a_tree() {
        // Every merge costs nothing: ties everywhere, and the chain must still end.
        let same = Array2::from_shape_fn((300, 8), |(_, j)| if j == 0 { 1.0f32 } else { 0.0 });
        let tree = grow_default(&same);
        assert_eq!(tree.node_of.len(), 300);
        assert!(!tree.top().is_empty());
        let two = normalize_rows(Array2::from_shape_vec((2, 2), vec![1.0, 0.0, 0.0, 1.0]).unwrap());
        let params = TreeParams {
            counts: vec![None],
            ..TreeParams::default()
        };
        let tree = grow(two.view(), &params, &crate::Silent).unwrap();
        assert_eq!(tree.node_of.len(), 2);
    }

    #[test]
    fn ward_joins_the_nearest_pair_first_and_respects_names() {
        let leaves = Leaves {
            means: Array2::from_shape_vec((4, 1), vec![0.0, 0.1, 5.0, 5.3]).unwrap(),
            weight: vec![1.0; 4],
            named: vec![Some(0), None, Some(1), None],
        };
        let merges = ward(&leaves, &[0, 1, 2, 3], &crate::Silent);
        assert_eq!((merges[0].a, merges[0].b), (0, 1));
        assert_eq!((merges[1].a, merges[1].b), (2, 3));
        assert_eq!(merges.len(), 2, "the two named groups never join");
        assert!((merges[0].height - 0.005).abs() < 1e-12);
    }
}
