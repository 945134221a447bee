//! Themes that last: updating the kept theme model ([`crate::index::kept`]) instead of starting
//! over, and matching a fit from scratch to it.
//!
//! An **update** keeps every fitted passage in its theme and places only the passages the model
//! has not fitted: each joins its nearest theme without sub-themes, unless it lies further from
//! that theme's centroid than nine in ten of the theme's own passages. Those that fit nowhere
//! are grown into a tree of their own ([`cluster::grow`]); a group of them at least as large as
//! [`min_new_size`] and as tight as the kept top-level themes becomes a **new theme**. A few
//! nearest-centroid rounds over the new passages then settle where each goes (faiss's warm
//! start: kept centroids first, new ones appended; MiniBatchKMeans' way of letting each
//! centroid's mass weigh old against new). A theme left with no passages **fades**.
//!
//! A **refit** grows the tree from scratch and matches its themes to the kept ones level by
//! level, by shared passages (Jaccard) and by centroid (cosine, BERTopic's `merge_models`
//! threshold): matched themes keep their ids and names; the others are new, or split from a
//! theme that lives on; kept themes left unmatched merged into another, split up or faded.
//! Either way ids are never reused.

use std::collections::{BTreeMap, HashMap, HashSet};

use ndarray::{ArrayView2, Axis};

use crate::cluster::{self, ClusterParams, LevelChoice, Node, ThemeTree, TreeParams};
use crate::error::Result;
use crate::index::kept::{
    EventKind, KeptSettings, KeptTheme, KeptThemes, Member, ThemeEvent, ThemeModel, THEME_MODEL_VERSION,
};
use crate::index::ModelInfo;
use crate::progress::Progress;

/// Nearest-centroid rounds over the new passages once new themes are found (after the first).
const SETTLE_ROUNDS: usize = 3;
/// A refit's theme matches a kept one if they share at least this share of their passages
/// (Jaccard) ...
const MATCH_JACCARD: f64 = 0.3;
/// ... and their centroids are at least this similar (BERTopic's `merge_models` default).
const MATCH_COSINE: f32 = 0.7;
/// An unmatched theme holding at least this share of one old theme's passages is a split of it,
/// or where that theme ended, what it merged into.
const MOSTLY: f64 = 0.5;
/// Where an old theme's passages spread over several themes, those holding this share of them.
const SPREAD_SHARE: f64 = 0.2;

/// Fewest passages a group of unfitted passages needs to become a new theme: a quarter of the
/// median kept theme without sub-themes, and at least 10.
pub fn min_new_size(leaf_sizes: &[usize]) -> usize {
    let mut sizes = leaf_sizes.to_vec();
    sizes.sort_unstable();
    (sizes.get(sizes.len() / 2).copied().unwrap_or(0) / 4).max(10)
}

/// The tree an update gives, and each node's kept id (`None`: a new theme).
pub struct Updated {
    pub tree: ThemeTree,
    pub ids: Vec<Option<u32>>,
}

/// Whether `kept` can be updated for these options; otherwise why a refit is needed.
pub fn refit_reason(kept: &KeptThemes, model: &ModelInfo, settings: &KeptSettings) -> Option<String> {
    if kept.model.version != THEME_MODEL_VERSION {
        return Some(format!(
            "the kept theme model has version {} (this themap keeps version {THEME_MODEL_VERSION})",
            kept.model.version
        ));
    }
    if !kept.fits(model) {
        return Some("the index was rebuilt with another model or --dims since the themes were kept".into());
    }
    let old = &kept.model.settings;
    let differs = [
        (old.counts != settings.counts, "--k / --levels"),
        (old.names != settings.names, "--theme"),
        (old.seed != settings.seed, "--seed"),
        (old.vectors != settings.vectors, "--vectors"),
        (old.min_chars != settings.min_chars, "--min-chars"),
    ];
    let changed: Vec<&str> = differs.iter().filter(|d| d.0).map(|d| d.1).collect();
    (!changed.is_empty()).then(|| format!("{} differ from the kept themes'", changed.join(", ")))
}

/// Places the passages `kept` has not fitted (see the module docs). `vectors` are the clustered
/// rows, `hashes` each row's text hash, `shapes` the rows that may shape themes.
pub fn update(
    kept: &KeptThemes,
    vectors: ArrayView2<f32>,
    hashes: &[&str],
    shapes: &[bool],
    params: &TreeParams,
    names: &[String],
    progress: &dyn Progress,
) -> Result<Updated> {
    let n = vectors.nrows();
    let live: Vec<&KeptTheme> = kept.model.themes.iter().filter(|t| t.is_live()).collect();
    let has_children: HashSet<u32> = live.iter().filter_map(|t| t.parent).collect();
    let leaf_ids: Vec<u32> = live
        .iter()
        .map(|t| t.id)
        .filter(|id| !has_children.contains(id))
        .collect();
    let leaf_of_id: HashMap<u32, usize> = leaf_ids.iter().enumerate().map(|(i, &id)| (id, i)).collect();
    let member: HashMap<&str, &Member> = kept.members.iter().map(|m| (m.hash.as_str(), m)).collect();

    // Each row's kept theme without sub-themes, where a fit placed it.
    let mut leaf: Vec<Option<usize>> = hashes
        .iter()
        .map(|h| {
            member
                .get(h)
                .filter(|m| m.fitted)
                .and_then(|m| leaf_of_id.get(&m.theme).copied())
        })
        .collect();
    let new_rows: Vec<usize> = (0..n).filter(|&i| leaf[i].is_none()).collect();
    let old_rows: Vec<usize> = (0..n).filter(|&i| leaf[i].is_some()).collect();
    progress.start(
        "placing new passages among the kept themes",
        new_rows.len() as u64,
        "passages",
    );

    let k = leaf_ids.len();
    let old_labels: Vec<usize> = old_rows.iter().map(|&i| leaf[i].expect("old row")).collect();
    let old_shapes: Vec<bool> = old_rows.iter().map(|&i| shapes[i]).collect();
    let old_vectors = vectors.select(Axis(0), &old_rows);
    let old_sums = cluster::theme_sums(old_vectors.view(), &old_labels, k, &old_shapes, None);
    let old_counts = counts(&old_labels, k);
    // Kept themes that lost every passage (their documents left the index) take no new ones.
    let alive: Vec<bool> = old_counts.iter().map(|&c| c > 0).collect();

    // New passages that may shape themes gather, by Ward's criterion, into the kept themes or
    // into groups of their own; a group large enough is a new theme.
    let leaf_sizes: Vec<usize> = old_counts.iter().copied().filter(|&c| c > 0).collect();
    let min_size = min_new_size(&leaf_sizes);
    let shaping: Vec<usize> = new_rows.iter().copied().filter(|&r| shapes[r]).collect();
    let limit = join_limit(
        vectors,
        &old_rows,
        &old_labels,
        &old_shapes,
        old_sums.view(),
        &old_counts,
    );
    let started = std::time::Instant::now();
    let units = fine_units(vectors, &shaping, params.cluster.seed)?;
    tracing::debug!(
        "{} units of {} new passages in {:.2} s",
        units.len(),
        shaping.len(),
        started.elapsed().as_secs_f64()
    );
    let started = std::time::Instant::now();
    let mut groups: Vec<Vec<usize>> = grouped(&units, &join(vectors, &units, old_sums.view(), &old_counts, limit))
        .into_iter()
        .filter(|rows| rows.len() >= min_size)
        .collect();

    tracing::debug!(
        "{} new groups joined in {:.2} s",
        groups.len(),
        started.elapsed().as_secs_f64()
    );
    let started = std::time::Instant::now();
    // Settle: new passages go to the nearest of the kept and the new centroids, the centroids
    // follow (kept ones weighted by their old passages); new themes left too small dissolve.
    let place_among = |groups: &[Vec<usize>], placed: Option<&[usize]>| {
        let mut sums = old_sums.clone();
        for (&row, &p) in new_rows.iter().zip(placed.unwrap_or_default()) {
            if p < k && shapes[row] {
                let mut sum = sums.row_mut(p);
                sum += &vectors.row(row);
            }
        }
        let mut allowed = alive.clone();
        for rows in groups {
            sums.push_row(cluster::centroid_of(vectors, rows).view())
                .expect("same width");
            allowed.push(true);
        }
        nearest(vectors, &new_rows, cluster::normalize_rows(sums).view(), &allowed).0
    };
    let mut place = place_among(&groups, None);
    for _ in 0..SETTLE_ROUNDS {
        let mut members: Vec<Vec<usize>> = vec![Vec::new(); groups.len()];
        for (&row, &p) in new_rows.iter().zip(&place) {
            if p >= k {
                members[p - k].push(row);
            }
        }
        groups = members.into_iter().filter(|rows| rows.len() >= min_size).collect();
        place = place_among(&groups, Some(&place));
    }
    for (&row, &p) in new_rows.iter().zip(&place) {
        leaf[row] = Some(p);
    }
    progress.advance(new_rows.len() as u64, 0);
    progress.finish();
    tracing::debug!("settled in {:.2} s", started.elapsed().as_secs_f64());
    // The new themes among the kept top-level themes, by the same rule one level up: a new
    // theme joins the top-level theme it would have joined before any two of those joined each
    // other; new themes that join each other instead form a new top-level theme together.
    let new_parents = if params.counts.len() > 1 && !groups.is_empty() {
        let top_of = top_ids(kept);
        let tops: Vec<u32> = {
            let mut t: Vec<u32> = leaf_ids.iter().map(|id| top_of[id]).collect();
            t.sort_unstable();
            t.dedup();
            t
        };
        let top_index: HashMap<u32, usize> = tops.iter().enumerate().map(|(i, &id)| (id, i)).collect();
        let top_labels: Vec<usize> = old_labels.iter().map(|&l| top_index[&top_of[&leaf_ids[l]]]).collect();
        let top_sums = cluster::theme_sums(old_vectors.view(), &top_labels, tops.len(), &old_shapes, None);
        let top_counts = counts(&top_labels, tops.len());
        let limit = join_limit(
            vectors,
            &old_rows,
            &top_labels,
            &old_shapes,
            top_sums.view(),
            &top_counts,
        );
        let joined = join(vectors, &groups, top_sums.view(), &top_counts, limit);
        let mut together: HashMap<usize, usize> = HashMap::new();
        for j in &joined {
            if let Joined::Group(g) = j {
                *together.entry(*g).or_default() += 1;
            }
        }
        joined
            .iter()
            .map(|j| match *j {
                Joined::Kept(t) => NewParent::Kept(tops[t]),
                Joined::Group(g) if together[&g] > 1 => NewParent::NewTop(g),
                Joined::Group(_) => NewParent::Top,
            })
            .collect()
    } else {
        vec![NewParent::Top; groups.len()]
    };
    let placed = Placed {
        leaf_ids: &leaf_ids,
        new_parents,
        leaf: &leaf,
    };
    Ok(build_tree(kept, placed, shapes, params.counts.len(), names))
}

/// How many rows carry each label.
fn counts(labels: &[usize], k: usize) -> Vec<usize> {
    let mut c = vec![0; k];
    for &l in labels {
        c[l] += 1;
    }
    c
}

/// Each row's nearest allowed centroid and its similarity.
fn nearest(
    vectors: ArrayView2<f32>,
    rows: &[usize],
    centroids: ArrayView2<f32>,
    allowed: &[bool],
) -> (Vec<usize>, Vec<f32>) {
    if rows.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let scores = vectors.select(Axis(0), rows).dot(&centroids.t());
    scores
        .outer_iter()
        .map(|row| {
            let mut best = (usize::MAX, f32::NEG_INFINITY);
            for (j, &s) in row.iter().enumerate() {
                if allowed[j] && s > best.1 {
                    best = (j, s);
                }
            }
            // Some centroid is always allowed: an update has kept passages (ThemeMap::build).
            (best.0, best.1)
        })
        .unzip()
}

/// Fine groups of new passages to join ([`join`]): each passage, or above
/// [`GATHER_PASSAGES`] k-means clusters of about [`cluster::PASSAGES_PER_LEAF`].
fn fine_units(vectors: ArrayView2<f32>, rows: &[usize], seed: u64) -> Result<Vec<Vec<usize>>> {
    if rows.len() <= GATHER_PASSAGES {
        return Ok(rows.iter().map(|&r| vec![r]).collect());
    }
    let k = (rows.len() / cluster::PASSAGES_PER_LEAF).clamp(2, cluster::MAX_LEAVES);
    let sub = vectors.select(Axis(0), rows);
    // One restart: the units only need to be fine and compact, the join decides the groups
    // (three restarts cost 4.8 s of a 6 s update at 12,600 new passages).
    let params = ClusterParams {
        k: Some(k),
        seed,
        runs: 1,
        ..ClusterParams::for_tree()
    };
    let labels = cluster::cluster(sub.view(), &params, &crate::progress::Silent)?.labels;
    let mut by: Vec<Vec<usize>> = vec![Vec::new(); k];
    for (j, &l) in labels.iter().enumerate() {
        by[l].push(rows[j]);
    }
    Ok(by.into_iter().filter(|u| !u.is_empty()).collect())
}

/// Where [`join`] put a unit.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Joined {
    /// Into this kept cluster (an index into the kept sums).
    Kept(usize),
    /// Into a group of units that joined no kept cluster (groups numbered from 0).
    Group(usize),
}

/// Joins `units` (groups of rows) by Ward's criterion among kept clusters (`kept_sums`,
/// `kept_counts`: their passages' sums and counts; empty ones left out): cheapest first, to
/// each other or into a kept cluster, never two kept clusters together, while the cheapest join
/// costs less than `limit` ([`join_limit`]).
fn join(
    vectors: ArrayView2<f32>,
    units: &[Vec<usize>],
    kept_sums: ArrayView2<f32>,
    kept_counts: &[usize],
    limit: f64,
) -> Vec<Joined> {
    let kept: Vec<usize> = (0..kept_counts.len()).filter(|&t| kept_counts[t] > 0).collect();
    // Clusters: the kept ones first, then the units.
    let (unit_sums, unit_counts) = sums_and_counts(vectors, units.iter());
    let mut sums = kept_sums.select(Axis(0), &kept).mapv(f64::from);
    sums.append(Axis(0), unit_sums.mapv(f64::from).view())
        .expect("same width");
    let mut counts: Vec<usize> = kept.iter().map(|&t| kept_counts[t]).chain(unit_counts).collect();
    let is_kept: Vec<bool> = (0..counts.len()).map(|c| c < kept.len()).collect();
    let m = counts.len();
    let mut alive = vec![true; m];
    let mut owner: Vec<usize> = (0..m).collect();
    let cost = |sums: &ndarray::Array2<f64>, counts: &[usize], a: usize, b: usize| {
        let (na, nb) = (counts[a] as f64, counts[b] as f64);
        let diff = &sums.row(a) / na - &sums.row(b) / nb;
        na * nb / (na + nb) * diff.dot(&diff)
    };
    let allowed = |a: usize, b: usize| !(is_kept[a] && is_kept[b]);
    // Each unit cluster's cheapest allowed partner, kept up to date as clusters join.
    let partner = |sums: &ndarray::Array2<f64>, counts: &[usize], alive: &[bool], a: usize| {
        (0..m)
            .filter(|&b| b != a && alive[b] && allowed(a, b))
            .map(|b| (cost(sums, counts, a, b), b))
            .min_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)))
    };
    let mut best: Vec<Option<(f64, usize)>> = (0..m)
        .map(|a| {
            if is_kept[a] {
                None
            } else {
                partner(&sums, &counts, &alive, a)
            }
        })
        .collect();
    while let Some((_, a, b)) = (0..m)
        .filter(|&a| alive[a])
        .filter_map(|a| best[a].map(|(c, b)| (c, a, b)))
        .min_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)))
        .filter(|&(c, ..)| c < limit)
    {
        // The kept one (if any) takes the other in.
        let (into, from) = if is_kept[b] { (b, a) } else { (a, b) };
        let moved = sums.row(from).to_owned();
        sums.row_mut(into).scaled_add(1.0, &moved);
        counts[into] += counts[from];
        alive[from] = false;
        best[from] = None;
        for o in owner.iter_mut() {
            if *o == from {
                *o = into;
            }
        }
        // Partners that pointed at either may have changed.
        for x in 0..m {
            if !alive[x] || is_kept[x] {
                continue;
            }
            if x == into || best[x].is_some_and(|(_, p)| p == into || p == from) {
                best[x] = partner(&sums, &counts, &alive, x);
            } else if allowed(x, into) {
                let c = cost(&sums, &counts, x, into);
                if best[x].is_none_or(|(bc, _)| c < bc) {
                    best[x] = Some((c, into));
                }
            }
        }
    }
    let mut group_of: BTreeMap<usize, usize> = BTreeMap::new();
    (0..units.len())
        .map(|u| {
            let cluster = owner[kept.len() + u];
            if is_kept[cluster] {
                Joined::Kept(kept[cluster])
            } else {
                let next = group_of.len();
                Joined::Group(*group_of.entry(cluster).or_insert(next))
            }
        })
        .collect()
}

/// The rows of the units that [`join`] grouped together, per group.
fn grouped(units: &[Vec<usize>], joined: &[Joined]) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (unit, j) in units.iter().zip(joined) {
        if let Joined::Group(g) = *j {
            if groups.len() <= g {
                groups.resize(g + 1, Vec::new());
            }
            groups[g].extend(unit);
        }
    }
    for g in &mut groups {
        g.sort_unstable();
    }
    groups
}

/// The Ward cost below which a join is one the kept tree would have made: between the dearest
/// join it made (splitting its costliest theme in two, estimated by two-means on up to
/// [`SPLIT_SAMPLE`] of its passages) and the cheapest it did not (joining its two nearest themes),
/// their geometric mean, since the tree's cut lies somewhere in that gap and costs grow by
/// ratios. The cheapest join not made alone would let a new group smaller than the kept themes
/// join one of them however far it lies.
fn join_limit(
    vectors: ArrayView2<f32>,
    rows: &[usize],
    labels: &[usize],
    shapes: &[bool],
    sums: ArrayView2<f32>,
    counts: &[usize],
) -> f64 {
    let kept: Vec<usize> = (0..counts.len()).filter(|&t| counts[t] > 0).collect();
    let not_made = cheapest_pair(
        sums.select(Axis(0), &kept).view(),
        &kept.iter().map(|&t| counts[t]).collect::<Vec<_>>(),
    );
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); counts.len()];
    for ((&row, &l), &shaped) in rows.iter().zip(labels).zip(shapes) {
        if shaped {
            members[l].push(row);
        }
    }
    let made = members
        .iter()
        .filter(|m| m.len() >= 4)
        .map(|m| split_cost(vectors, m))
        .fold(0.0f64, f64::max);
    if made > 0.0 && made < not_made {
        (made * not_made).sqrt()
    } else {
        not_made
    }
}

/// Passages of a theme its split cost is estimated on.
const SPLIT_SAMPLE: usize = 256;

/// Ward's cost of the best split of `rows` in two (two-means on an evenly spaced sample, from its
/// two most distant rows, scaled to the full count).
fn split_cost(vectors: ArrayView2<f32>, rows: &[usize]) -> f64 {
    let step = rows.len().div_ceil(SPLIT_SAMPLE).max(1);
    let sample: Vec<usize> = rows.iter().step_by(step).copied().collect();
    let x = vectors.select(Axis(0), &sample).mapv(f64::from);
    let mean = x.mean_axis(Axis(0)).expect("not empty");
    let far = |from: ndarray::ArrayView1<f64>| {
        (0..x.nrows())
            .map(|i| {
                let d = &x.row(i) - &from;
                (d.dot(&d), i)
            })
            .max_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(&a.1)))
            .map_or(0, |(_, i)| i)
    };
    let a = far(mean.view());
    let b = far(x.row(a));
    let (mut ca, mut cb) = (x.row(a).to_owned(), x.row(b).to_owned());
    let mut side = vec![false; x.nrows()];
    for _ in 0..8 {
        for (i, s) in side.iter_mut().enumerate() {
            let (da, db) = (&x.row(i) - &ca, &x.row(i) - &cb);
            *s = db.dot(&db) < da.dot(&da);
        }
        let (mut sa, mut sb) = (
            ndarray::Array1::<f64>::zeros(x.ncols()),
            ndarray::Array1::<f64>::zeros(x.ncols()),
        );
        let (mut na, mut nb) = (0usize, 0usize);
        for (i, &s) in side.iter().enumerate() {
            if s {
                sb += &x.row(i);
                nb += 1;
            } else {
                sa += &x.row(i);
                na += 1;
            }
        }
        if na == 0 || nb == 0 {
            return 0.0;
        }
        ca = sa / na as f64;
        cb = sb / nb as f64;
    }
    let nb = side.iter().filter(|&&s| s).count() as f64;
    let (pa, pb) = (1.0 - nb / x.nrows() as f64, nb / x.nrows() as f64);
    let d = &ca - &cb;
    rows.len() as f64 * pa * pb * d.dot(&d)
}

/// Up to this many new passages each is a unit of [`gather`]; above, k-means clusters are (each
/// join rescans the units: 2,000 single passages took 8 s, 60 clusters of them 0.1 s).
const GATHER_PASSAGES: usize = 200;

/// Ward's cost of joining two clusters given their sums and sizes: n_a n_b / (n_a + n_b) times
/// the squared distance between their means.
fn ward_cost(a: ndarray::ArrayView1<f32>, na: usize, b: ndarray::ArrayView1<f32>, nb: usize) -> f64 {
    let (na, nb) = (na as f64, nb as f64);
    let d2: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) / na - f64::from(y) / nb).powi(2))
        .sum();
    na * nb / (na + nb) * d2
}

/// The cheapest join of two of these clusters (infinite for fewer than two).
fn cheapest_pair(sums: ArrayView2<f32>, counts: &[usize]) -> f64 {
    let mut cheapest = f64::INFINITY;
    for a in 0..counts.len() {
        for b in a + 1..counts.len() {
            cheapest = cheapest.min(ward_cost(sums.row(a), counts[a], sums.row(b), counts[b]));
        }
    }
    cheapest
}

/// Sums of the rows of each group, and the groups' sizes.
fn sums_and_counts<'a>(
    vectors: ArrayView2<f32>,
    groups: impl Iterator<Item = &'a Vec<usize>>,
) -> (ndarray::Array2<f32>, Vec<usize>) {
    let groups: Vec<&Vec<usize>> = groups.collect();
    let mut sums = ndarray::Array2::<f32>::zeros((groups.len(), vectors.ncols()));
    for (mut sum, rows) in sums.outer_iter_mut().zip(&groups) {
        for &r in rows.iter() {
            sum += &vectors.row(r);
        }
    }
    (sums, groups.iter().map(|g| g.len()).collect())
}

/// Each kept theme's top-level ancestor.
fn top_ids(kept: &KeptThemes) -> HashMap<u32, u32> {
    ancestors(kept).into_iter().map(|(id, chain)| (id, chain[0])).collect()
}

/// Where an update placed every row: `leaf[row]` is a kept leaf (`0..leaf_ids.len()`, in
/// `leaf_ids` order) or one of the new themes after them, each under `new_parents[g]`.
struct Placed<'a> {
    leaf_ids: &'a [u32],
    new_parents: Vec<NewParent>,
    leaf: &'a [Option<usize>],
}

/// Where a new theme goes in the tree.
#[derive(Debug, Clone, Copy, PartialEq)]
enum NewParent {
    /// A top-level theme itself.
    Top,
    /// Under this kept top-level theme.
    Kept(u32),
    /// Under a new top-level theme made of the new themes with the same number.
    NewTop(usize),
}

/// The tree of the kept themes that still hold passages and of the new themes (leaf numbers
/// `leaf_ids.len()..`, each under its [`NewParent`]), from every row's leaf. Themes are ordered
/// by size at every level.
fn build_tree(
    kept: &KeptThemes,
    Placed {
        leaf_ids,
        new_parents,
        leaf,
    }: Placed,
    shapes: &[bool],
    levels: usize,
    names: &[String],
) -> Updated {
    let k = leaf_ids.len();
    let leaves = k + new_parents.len();
    let row_leaf: Vec<usize> = leaf.iter().map(|l| l.expect("every row placed")).collect();
    let weight = {
        let mut w = vec![0usize; leaves];
        for (&l, &s) in row_leaf.iter().zip(shapes) {
            w[l] += usize::from(s);
        }
        w
    };
    let parent_of: HashMap<u32, Option<u32>> = kept.model.themes.iter().map(|t| (t.id, t.parent)).collect();

    // Nodes: kept themes on the way up from any leaf holding rows, and the new leaves.
    #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
    enum Key {
        Kept(u32),
        New(usize),
        NewTop(usize),
    }
    let up_of = |key: Key| match key {
        Key::Kept(id) => parent_of[&id].map(Key::Kept),
        Key::New(g) => match new_parents[g] {
            NewParent::Top => None,
            NewParent::Kept(id) => Some(Key::Kept(id)),
            NewParent::NewTop(j) => Some(Key::NewTop(j)),
        },
        Key::NewTop(_) => None,
    };
    let mut parent: BTreeMap<Key, Option<Key>> = BTreeMap::new();
    let mut node_weight: BTreeMap<Key, usize> = BTreeMap::new();
    let mut leaves_under: BTreeMap<Key, Vec<usize>> = BTreeMap::new();
    for l in (0..leaves).filter(|&l| row_leaf.contains(&l)) {
        let mut at = if l < k { Key::Kept(leaf_ids[l]) } else { Key::New(l - k) };
        loop {
            let up = up_of(at);
            parent.insert(at, up);
            *node_weight.entry(at).or_default() += weight[l];
            leaves_under.entry(at).or_default().push(l);
            match up {
                Some(p) => at = p,
                None => break,
            }
        }
    }
    let mut children: BTreeMap<Option<Key>, Vec<Key>> = BTreeMap::new();
    for (&node, &p) in &parent {
        children.entry(p).or_default().push(node);
    }
    for list in children.values_mut() {
        list.sort_by(|a, b| node_weight[b].cmp(&node_weight[a]).then(a.cmp(b)));
    }
    // Preorder.
    let mut nodes: Vec<Node> = Vec::new();
    let mut ids: Vec<Option<u32>> = Vec::new();
    let mut index_of: HashMap<Key, usize> = HashMap::new();
    let mut stack: Vec<(Key, Option<usize>, Vec<usize>)> = children
        .get(&None)
        .map(|tops| {
            tops.iter()
                .enumerate()
                .rev()
                .map(|(i, &t)| (t, None, vec![i + 1]))
                .collect()
        })
        .unwrap_or_default();
    let seed_of = |key: Key| match key {
        Key::Kept(id) => kept
            .model
            .themes
            .iter()
            .find(|t| t.id == id)
            .and_then(|t| t.name.as_ref())
            .and_then(|name| names.iter().position(|n| n == name)),
        Key::New(_) | Key::NewTop(_) => None,
    };
    while let Some((key, up, path)) = stack.pop() {
        let at = nodes.len();
        index_of.insert(key, at);
        if let Some(p) = up {
            nodes[p].children.push(at);
        }
        if let Some(list) = children.get(&Some(key)) {
            for (i, &c) in list.iter().enumerate().rev() {
                let mut child_path = path.clone();
                child_path.push(i + 1);
                stack.push((c, Some(at), child_path));
            }
        }
        nodes.push(Node {
            parent: up,
            children: Vec::new(),
            level: path.len(),
            path,
            leaves: leaves_under[&key].clone(),
            seed: seed_of(key),
            weight: node_weight[&key],
        });
        ids.push(match key {
            Key::Kept(id) => Some(id),
            Key::New(_) | Key::NewTop(_) => None,
        });
    }
    let leaf_node: Vec<usize> = (0..leaves)
        .map(|l| {
            let key = if l < k { Key::Kept(leaf_ids[l]) } else { Key::New(l - k) };
            index_of.get(&key).copied().unwrap_or(usize::MAX)
        })
        .collect();
    let node_of: Vec<usize> = row_leaf.iter().map(|&l| leaf_node[l]).collect();
    let depth = nodes.iter().map(|n| n.level).max().unwrap_or(1);
    let level_choices = (1..=levels.max(depth))
        .map(|level| LevelChoice {
            count: nodes
                .iter()
                .filter(|n| n.level == level || (n.level < level && n.children.is_empty()))
                .count(),
            chosen_automatically: false,
            scores: Vec::new(),
        })
        .collect();
    Updated {
        tree: ThemeTree {
            leaf_count: leaves,
            parts: row_leaf,
            part_count: leaves,
            nodes,
            node_of,
            levels: level_choices,
        },
        ids,
    }
}

/// Matches a tree fitted from scratch to the kept themes (see the module docs): each node's kept
/// id where it matches one, and the events of the match (ids for new nodes are given later).
pub fn match_refit(
    kept: &KeptThemes,
    tree: &ThemeTree,
    hashes: &[&str],
    centroids: ArrayView2<f32>,
) -> Vec<Option<u32>> {
    let member: HashMap<&str, u32> = kept
        .members
        .iter()
        .filter(|m| m.fitted)
        .map(|m| (m.hash.as_str(), m.theme))
        .collect();
    let chains = ancestors(kept);
    let old_centroid: HashMap<u32, usize> = kept
        .model
        .centroid_ids
        .iter()
        .enumerate()
        .map(|(r, &id)| (id, r))
        .collect();
    let mut ids = vec![None; tree.nodes.len()];
    for level in 1..=tree.depth() {
        let node_at = tree.node_at_level(level);
        // overlap[(old, new)], and each side's rows that have an old theme at this level.
        let mut overlap: BTreeMap<(u32, usize), usize> = BTreeMap::new();
        let mut old_size: BTreeMap<u32, usize> = BTreeMap::new();
        let mut new_size: BTreeMap<usize, usize> = BTreeMap::new();
        for (row, &hash) in hashes.iter().enumerate() {
            let Some(old) = member
                .get(hash)
                .and_then(|id| chains.get(id))
                .and_then(|c| c.get(level - 1))
            else {
                continue;
            };
            let new = node_at[row];
            if tree.nodes[new].level != level {
                continue;
            }
            *overlap.entry((*old, new)).or_default() += 1;
            *old_size.entry(*old).or_default() += 1;
            *new_size.entry(new).or_default() += 1;
        }
        let mut pairs: Vec<(f64, u32, usize)> = overlap
            .iter()
            .map(|(&(o, n), &both)| (both as f64 / (old_size[&o] + new_size[&n] - both) as f64, o, n))
            .filter(|&(j, o, n)| {
                j >= MATCH_JACCARD
                    && old_centroid
                        .get(&o)
                        .is_none_or(|&r| kept.centroids.row(r).dot(&centroids.row(n)) >= MATCH_COSINE)
            })
            .collect();
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        let mut used_old = HashSet::new();
        for (_, o, n) in pairs {
            if ids[n].is_none() && used_old.insert(o) {
                ids[n] = Some(o);
            }
        }
    }
    ids
}

/// Each kept theme's chain of ancestors from the top level down to itself.
fn ancestors(kept: &KeptThemes) -> HashMap<u32, Vec<u32>> {
    let parent: HashMap<u32, Option<u32>> = kept.model.themes.iter().map(|t| (t.id, t.parent)).collect();
    kept.model
        .themes
        .iter()
        .map(|t| {
            let mut chain = vec![t.id];
            while let Some(Some(p)) = parent.get(chain.last().expect("not empty")) {
                chain.push(*p);
            }
            chain.reverse();
            (t.id, chain)
        })
        .collect()
}

/// What a fit knows about each node of its tree, to keep.
pub struct Fitted<'a> {
    pub tree: &'a ThemeTree,
    /// Kept id of each node (`None`: new).
    pub ids: Vec<Option<u32>>,
    pub labels: &'a [String],
    pub names: Vec<Option<String>>,
    pub keywords: Vec<Vec<String>>,
    /// Unit centroid of each node in the search vectors' space.
    pub centroids: ArrayView2<'a, f32>,
    pub hashes: &'a [&'a str],
    pub generation: u64,
    pub model: ModelInfo,
    pub settings: KeptSettings,
    /// Whether this fit changed anything: an update with no new passages keeps the model's
    /// update number (and does not need saving).
    pub changed: bool,
}

/// The kept theme model after this fit: `previous` with the fit's themes (new ones given fresh
/// ids), its ended themes marked, and the events of this update. Also each node's id.
pub fn keep(previous: Option<&KeptThemes>, fit: Fitted) -> (KeptThemes, Vec<u32>) {
    let tree = fit.tree;
    let update = previous.map_or(1, |p| p.model.updates + u32::from(fit.changed));
    let mut next_id = previous.map_or(1, |p| p.model.next_id);
    let ids: Vec<u32> = fit
        .ids
        .iter()
        .map(|id| {
            id.unwrap_or_else(|| {
                next_id += 1;
                next_id - 1
            })
        })
        .collect();
    let node_of_id: HashMap<u32, usize> = ids.iter().enumerate().map(|(n, &id)| (id, n)).collect();
    let sizes: Vec<usize> = {
        let mut s = vec![0; tree.nodes.len()];
        for &leaf in &tree.node_of {
            let mut at = Some(leaf);
            while let Some(t) = at {
                s[t] += 1;
                at = tree.nodes[t].parent;
            }
        }
        s
    };

    let mut themes: BTreeMap<u32, KeptTheme> = previous
        .map(|p| p.model.themes.iter().map(|t| (t.id, t.clone())).collect())
        .unwrap_or_default();
    let mut events = previous.map(|p| p.model.events.clone()).unwrap_or_default();
    let event = |kind, theme, others: Vec<u32>, passages| ThemeEvent {
        update,
        generation: fit.generation,
        kind,
        theme,
        others,
        passages,
    };

    // Where each old theme's passages went, and where each new node's came from.
    let old_of: HashMap<&str, u32> = previous
        .map(|p| {
            p.members
                .iter()
                .filter(|m| m.fitted)
                .map(|m| (m.hash.as_str(), m.theme))
                .collect()
        })
        .unwrap_or_default();
    let chains = previous.map(ancestors).unwrap_or_default();
    let mut flow: BTreeMap<(u32, usize), usize> = BTreeMap::new();
    for (row, hash) in fit.hashes.iter().enumerate() {
        if let Some(chain) = old_of.get(hash).and_then(|id| chains.get(id)) {
            // Each new theme on the row's path takes the old theme at its level; the deepest
            // also those below it (a theme without sub-themes holds what was split below).
            let deepest = tree.node_of[row];
            for &old in chain.iter().skip(tree.nodes[deepest].level) {
                *flow.entry((old, deepest)).or_default() += 1;
            }
            let mut at = Some(deepest);
            while let Some(n) = at {
                if let Some(&old) = chain.get(tree.nodes[n].level - 1) {
                    *flow.entry((old, n)).or_default() += 1;
                }
                at = tree.nodes[n].parent;
            }
        }
    }

    for (n, node) in tree.nodes.iter().enumerate() {
        let id = ids[n];
        let parent = node.parent.map(|p| ids[p]);
        match themes.get_mut(&id) {
            Some(t) => {
                t.parent = parent;
                t.level = node.level;
                t.keywords = fit.keywords[n].clone();
                t.size = sizes[n];
            }
            None => {
                // New: a split if most of its passages came from one old theme that lives on.
                let from: Vec<(u32, usize)> = flow
                    .iter()
                    .filter(|((_, m), _)| *m == n)
                    .map(|((o, _), &c)| (*o, c))
                    .collect();
                let source = from
                    .iter()
                    .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
                    .filter(|&&(o, c)| c as f64 >= MOSTLY * sizes[n] as f64 && node_of_id.contains_key(&o));
                let (kind, others) = match source {
                    Some(&(o, _)) => (EventKind::Split, vec![o]),
                    None => (EventKind::New, Vec::new()),
                };
                events.push(event(kind, id, others, sizes[n]));
                themes.insert(
                    id,
                    KeptTheme {
                        id,
                        parent,
                        level: node.level,
                        label: fit.labels[n].clone(),
                        name: fit.names[n].clone(),
                        keywords: fit.keywords[n].clone(),
                        size: sizes[n],
                        first_update: update,
                        first_generation: fit.generation,
                        ended: None,
                    },
                );
            }
        }
    }
    // Old themes not in this fit ended: merged, split up or faded.
    let ended: Vec<u32> = themes
        .values()
        .filter(|t| t.is_live() && !node_of_id.contains_key(&t.id))
        .map(|t| t.id)
        .collect();
    for id in ended {
        let went: Vec<(usize, usize)> = flow
            .iter()
            .filter(|((o, _), _)| *o == id)
            .map(|((_, n), &c)| (*n, c))
            .collect();
        let total: usize = went.iter().map(|w| w.1).sum();
        let (kind, others) = match went.iter().max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0))) {
            None => (EventKind::Faded, Vec::new()),
            Some(&(n, c)) if c as f64 >= MOSTLY * total as f64 => (EventKind::Merged, vec![ids[n]]),
            Some(_) => {
                let mut into: Vec<u32> = went
                    .iter()
                    .filter(|w| w.1 as f64 >= SPREAD_SHARE * total as f64)
                    .map(|w| ids[w.0])
                    .collect();
                into.sort_unstable();
                (EventKind::SplitUp, into)
            }
        };
        let t = themes.get_mut(&id).expect("listed");
        t.ended = Some(update);
        events.push(event(kind, id, others, total));
    }

    // Centroids of the live themes, in id order; members in row order, one line per text.
    let live: Vec<u32> = themes.values().filter(|t| t.is_live()).map(|t| t.id).collect();
    let rows: Vec<usize> = live.iter().map(|id| node_of_id[id]).collect();
    let centroids = fit.centroids.select(Axis(0), &rows);
    let mut seen = HashSet::new();
    let members: Vec<Member> = fit
        .hashes
        .iter()
        .zip(&tree.node_of)
        .filter(|(h, _)| seen.insert(**h))
        .map(|(h, &node)| Member {
            hash: (*h).to_string(),
            theme: ids[node],
            fitted: true,
        })
        .collect();
    let model = ThemeModel {
        version: THEME_MODEL_VERSION,
        model: fit.model,
        settings: fit.settings,
        updates: update,
        generation: fit.generation,
        next_id,
        themes: themes.into_values().collect(),
        centroid_ids: live,
        events,
    };
    (
        KeptThemes {
            model,
            centroids,
            members,
        },
        ids,
    )
}

/// A theme model fitted on bare vectors (no texts, so no names or keywords), as `themap
/// eval-growth` simulates an archive that grows: with `previous`, updated (or with `refit`,
/// fitted from scratch and matched to it). Returns the tree, the model to keep and each node's id.
pub fn fit_vectors(
    vectors: ArrayView2<f32>,
    hashes: &[&str],
    previous: Option<&KeptThemes>,
    params: &TreeParams,
    refit: bool,
    progress: &dyn Progress,
) -> Result<(ThemeTree, KeptThemes, Vec<u32>)> {
    let shapes = vec![true; vectors.nrows()];
    let (tree, ids) = match previous {
        Some(kept) if !refit => {
            let updated = update(kept, vectors, hashes, &shapes, params, &[], progress)?;
            (updated.tree, updated.ids)
        }
        _ => {
            let tree = cluster::grow(vectors, params, progress)?;
            let centroids = node_centroids(&tree, vectors);
            let ids = match previous {
                Some(kept) => match_refit(kept, &tree, hashes, centroids.view()),
                None => vec![None; tree.nodes.len()],
            };
            (tree, ids)
        }
    };
    let centroids = node_centroids(&tree, vectors);
    let nodes = tree.nodes.len();
    let labels = vec![String::new(); nodes];
    let model = ModelInfo {
        name: "vectors".into(),
        checksum: String::new(),
        dims: vectors.ncols(),
        prompt: crate::embed::Prompt::Clustering,
        dtypes: Vec::new(),
    };
    let settings = KeptSettings {
        counts: params.counts.clone(),
        names: Vec::new(),
        seed: params.cluster.seed,
        vectors: "given".into(),
        min_chars: None,
    };
    let (kept, stable) = keep(
        previous,
        Fitted {
            tree: &tree,
            ids,
            labels: &labels,
            names: vec![None; nodes],
            keywords: vec![Vec::new(); nodes],
            centroids: centroids.view(),
            hashes,
            generation: previous.map_or(1, |p| p.model.generation + 1),
            model,
            settings,
            changed: true,
        },
    );
    Ok((tree, kept, stable))
}

/// Unit centroid of every node of the tree (its sub-themes' rows included).
fn node_centroids(tree: &ThemeTree, vectors: ArrayView2<f32>) -> ndarray::Array2<f32> {
    let all = vec![true; vectors.nrows()];
    super::node_centroids(
        tree,
        cluster::theme_sums(vectors, &tree.parts, tree.part_count, &all, None),
    )
}
