//! The kept theme model: updates keep ids and find new themes, refits say how themes map to the
//! old ones, and the model is stored like every other part of the index (checksummed, committed
//! by rename, under the writer lock).

use std::collections::{BTreeMap, HashSet};

use ndarray::{Array2, Axis};
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};
use tempfile::TempDir;
use themap::cluster::{ClusterParams, ThemeTree, TreeParams};
use themap::index::kept::{EventKind, KeptThemes};
use themap::index::store;
use themap::themes::fit_vectors;
use themap::{Error, Silent};

/// `per` unit vectors around each of `centres` random directions (32 dimensions), rows grouped
/// by cluster; `spread` is the noise per dimension.
fn clusters(centres: usize, per: usize, spread: f32, seed: u64) -> (Array2<f32>, Vec<usize>) {
    let mut rng = rand_xoshiro::Xoshiro256Plus::seed_from_u64(seed);
    let normal = Normal::new(0.0f32, 1.0).unwrap();
    let dims = 32;
    let centre: Vec<Vec<f32>> = (0..centres)
        .map(|_| (0..dims).map(|_| normal.sample(&mut rng)).collect())
        .collect();
    let mut rows = Array2::<f32>::zeros((centres * per, dims));
    let mut labels = Vec::new();
    for (c, centre) in centre.iter().enumerate() {
        for i in 0..per {
            let mut row = rows.row_mut(c * per + i);
            for (x, &mid) in row.iter_mut().zip(centre) {
                *x = mid + spread * normal.sample(&mut rng);
            }
            let norm = row.dot(&row).sqrt();
            row /= norm;
            labels.push(c);
        }
    }
    (rows, labels)
}

fn params(levels: usize) -> TreeParams {
    TreeParams {
        counts: vec![None; levels],
        leaves: None,
        cluster: ClusterParams {
            seed: 42,
            ..ClusterParams::for_tree()
        },
    }
}

/// The first fit of an archive: themes of `levels` over the rows `keys` names, from the top.
fn first_fit(vectors: ndarray::ArrayView2<f32>, keys: &[&str], levels: usize) -> (ThemeTree, KeptThemes, Vec<u32>) {
    let rows = vectors.slice(ndarray::s![..keys.len(), ..]);
    fit_vectors(rows, keys, None, &params(levels), false, &Silent).unwrap()
}

/// Each row's top-level theme id.
fn tops(tree: &ThemeTree, ids: &[u32]) -> Vec<u32> {
    tree.node_at_level(1).iter().map(|&n| ids[n]).collect()
}

fn hashes(rows: &[usize]) -> Vec<String> {
    rows.iter().map(|r| format!("row{r}")).collect()
}

fn refs(hashes: &[String]) -> Vec<&str> {
    hashes.iter().map(String::as_str).collect()
}

/// Rows 0..n of clusters `0..first` (first fit), then some more of them and all of cluster
/// `first` (the arriving one): the plan of a growing archive.
fn grown_archive() -> (Array2<f32>, Vec<usize>, usize) {
    let (all, labels) = clusters(5, 120, 0.35, 7);
    // First fit: 100 of each of clusters 0..4; update: 20 more of each, and 60 of cluster 4.
    let mut order: Vec<usize> = (0..4).flat_map(|c| c * 120..c * 120 + 100).collect();
    let first = order.len();
    order.extend((0..4).flat_map(|c| c * 120 + 100..c * 120 + 120));
    order.extend(4 * 120..4 * 120 + 60);
    let vectors = all.select(Axis(0), &order);
    let labels = order.iter().map(|&r| labels[r]).collect();
    (vectors, labels, first)
}

#[test]
fn an_update_keeps_every_theme_of_the_old_passages_and_finds_the_class_that_arrived() {
    let (vectors, labels, first) = grown_archive();
    let keys = hashes(&(0..vectors.nrows()).collect::<Vec<_>>());
    let keys = refs(&keys);
    let (before, kept, before_ids) = first_fit(vectors.view(), &keys[..first], 1);
    assert_eq!(before.top().len(), 4, "four clusters, four themes");
    let (after, updated, after_ids) =
        fit_vectors(vectors.view(), &keys, Some(&kept), &params(1), false, &Silent).unwrap();

    let (old, new) = (tops(&before, &before_ids), tops(&after, &after_ids));
    assert_eq!(old[..], new[..first], "every old passage keeps its theme id");
    // The arriving cluster is one new theme, with an id never used before, holding all of it.
    let old_ids: HashSet<u32> = kept.model.themes.iter().map(|t| t.id).collect();
    let arriving: Vec<u32> = (first..vectors.nrows())
        .filter(|&i| labels[i] == 4)
        .map(|i| new[i])
        .collect();
    let arriving_ids: HashSet<u32> = arriving.iter().copied().collect();
    assert_eq!(arriving_ids.len(), 1, "the arriving cluster went to {arriving_ids:?}");
    let id = *arriving_ids.iter().next().unwrap();
    assert!(!old_ids.contains(&id) && id >= kept.model.next_id);
    assert!(
        new.iter().filter(|&&t| t == id).count() == arriving.len(),
        "and nothing else"
    );
    // The others' new passages joined their clusters' themes.
    for i in first..vectors.nrows() {
        if labels[i] < 4 {
            let theme_of_class = old[labels[i] * 100];
            assert_eq!(new[i], theme_of_class, "row {i}");
        }
    }
    let events: Vec<(EventKind, u32)> = updated
        .model
        .events
        .iter()
        .filter(|e| e.update == 2)
        .map(|e| (e.kind, e.theme))
        .collect();
    assert_eq!(events, vec![(EventKind::New, id)]);
    let theme = updated.model.themes.iter().find(|t| t.id == id).unwrap();
    assert_eq!((theme.first_update, theme.ended), (2, None));
}

#[test]
fn a_theme_whose_passages_left_fades_and_its_id_is_not_reused() {
    let (vectors, _, first) = grown_archive();
    let keys = hashes(&(0..first).collect::<Vec<_>>());
    let keys = refs(&keys);
    let old = vectors.slice(ndarray::s![..first, ..]);
    let (before, kept, ids) = fit_vectors(old, &keys, None, &params(1), false, &Silent).unwrap();
    // The documents of the first cluster leave the index.
    let gone = tops(&before, &ids)[0];
    let rest: Vec<usize> = (100..first).collect();
    let rest_keys: Vec<&str> = rest.iter().map(|&r| keys[r]).collect();
    let (_, updated, _) = fit_vectors(
        old.select(Axis(0), &rest).view(),
        &rest_keys,
        Some(&kept),
        &params(1),
        false,
        &Silent,
    )
    .unwrap();
    let theme = updated.model.themes.iter().find(|t| t.id == gone).unwrap();
    assert_eq!(theme.ended, Some(2));
    assert!(updated
        .model
        .events
        .iter()
        .any(|e| e.kind == EventKind::Faded && e.theme == gone));
    assert!(
        !updated.model.centroid_ids.contains(&gone),
        "an ended theme takes no new passages"
    );
    assert!(updated.members.iter().all(|m| m.theme != gone));
    // It comes back as a new theme, under a new id.
    let (after, again, after_ids) = fit_vectors(old, &keys, Some(&updated), &params(1), false, &Silent).unwrap();
    let back: HashSet<u32> = tops(&after, &after_ids)[..100].iter().copied().collect();
    assert_eq!(back.len(), 1);
    assert!(
        back.iter().all(|id| *id >= updated.model.next_id && *id != gone),
        "{back:?}"
    );
    assert!(again
        .model
        .events
        .iter()
        .any(|e| e.update == 3 && e.kind == EventKind::New));
}

#[test]
fn a_refit_keeps_the_ids_of_matching_themes_and_records_merges_and_splits() {
    // Four clusters, two of them close together: 3 themes asked for merges those, 4 splits them.
    let (a, labels) = clusters(3, 100, 0.3, 11);
    let mut vectors = a.clone();
    let mut labels = labels;
    // A fourth cluster near the third: the third's centre nudged.
    let mut near = a.slice(ndarray::s![200..300, ..]).to_owned();
    let (shift, _) = clusters(1, 100, 0.0, 12);
    near.scaled_add(0.6, &shift);
    for mut row in near.outer_iter_mut() {
        let n = row.dot(&row).sqrt();
        row /= n;
    }
    vectors.append(Axis(0), near.view()).unwrap();
    labels.extend(std::iter::repeat_n(3, 100));
    let keys = hashes(&(0..vectors.nrows()).collect::<Vec<_>>());
    let keys = refs(&keys);
    let with = |k: usize| TreeParams {
        counts: vec![Some(k)],
        ..params(1)
    };
    let (four, kept, four_ids) = fit_vectors(vectors.view(), &keys, None, &with(4), false, &Silent).unwrap();
    let four_tops = tops(&four, &four_ids);
    assert_eq!(four_tops.iter().collect::<HashSet<_>>().len(), 4);
    let (three, merged, three_ids) = fit_vectors(vectors.view(), &keys, Some(&kept), &with(3), true, &Silent).unwrap();
    let three_tops = tops(&three, &three_ids);
    // Clusters 0 and 1 keep their ids; of 2 and 3, one id lives on and the other merged into it.
    assert_eq!(three_tops[0], four_tops[0]);
    assert_eq!(three_tops[100], four_tops[100]);
    let joined = three_tops[200];
    assert_eq!(three_tops[300], joined);
    assert!(
        [four_tops[200], four_tops[300]].contains(&joined),
        "four {:?} three {:?}",
        [four_tops[0], four_tops[100], four_tops[200], four_tops[300]],
        [three_tops[0], three_tops[100], three_tops[200], three_tops[300]]
    );
    let ended = if joined == four_tops[200] {
        four_tops[300]
    } else {
        four_tops[200]
    };
    let event = merged
        .model
        .events
        .iter()
        .find(|e| e.update == 2 && e.theme == ended)
        .unwrap();
    assert_eq!((event.kind, event.others.clone()), (EventKind::Merged, vec![joined]));
    // And back to four: the merged one splits; the new part gets a fresh id, recorded as a split.
    let (again, split, again_ids) = fit_vectors(vectors.view(), &keys, Some(&merged), &with(4), true, &Silent).unwrap();
    let again_tops = tops(&again, &again_ids);
    let parts: HashSet<u32> = again_tops[200..].iter().copied().collect();
    assert!(parts.contains(&joined) && parts.len() == 2, "{parts:?}");
    let fresh = *parts.iter().find(|&&id| id != joined).unwrap();
    assert!(fresh >= merged.model.next_id && fresh != ended, "ids are never reused");
    let event = split
        .model
        .events
        .iter()
        .find(|e| e.update == 3 && e.theme == fresh)
        .unwrap();
    assert_eq!((event.kind, event.others.clone()), (EventKind::Split, vec![joined]));
}

/// Fits, then two updates, stored in `dir`; returns the bytes of every theme file.
fn stored_sequence(dir: &std::path::Path) -> BTreeMap<String, Vec<u8>> {
    let (vectors, _, first) = grown_archive();
    let keys = hashes(&(0..vectors.nrows()).collect::<Vec<_>>());
    let keys = refs(&keys);
    let half = first + 40;
    let (_, mut kept, _) = first_fit(vectors.view(), &keys[..first], 2);
    for end in [half, vectors.nrows()] {
        kept = fit_vectors(
            vectors.slice(ndarray::s![..end, ..]),
            &keys[..end],
            Some(&kept),
            &params(2),
            false,
            &Silent,
        )
        .unwrap()
        .1;
    }
    save_model(dir, &kept);
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("theme"))
        .map(|name| (name.clone(), std::fs::read(dir.join(&name)).unwrap()))
        .collect()
}

/// Saves `kept` with a tiny index in `dir`.
fn save_model(dir: &std::path::Path, kept: &KeptThemes) {
    if !store::exists(dir) {
        let index = crate::store::tiny_index(3);
        store::save(&index, &store::lock(dir, false).unwrap()).unwrap();
    }
    store::save_themes(kept, None, &store::lock(dir, false).unwrap()).unwrap();
}

#[test]
fn the_same_updates_give_the_same_model_byte_for_byte() {
    let (a, b) = (TempDir::new().unwrap(), TempDir::new().unwrap());
    let (first, second) = (stored_sequence(a.path()), stored_sequence(b.path()));
    assert_eq!(first.keys().count(), 3, "{:?}", first.keys());
    assert_eq!(first, second);
}

#[test]
fn the_model_is_kept_through_index_saves_and_a_damaged_file_is_named() {
    let tmp = TempDir::new().unwrap();
    let (vectors, _, first) = grown_archive();
    let keys = hashes(&(0..first).collect::<Vec<_>>());
    let (_, kept, _) = first_fit(vectors.view(), &refs(&keys), 1);
    save_model(tmp.path(), &kept);
    assert_eq!(store::load_themes(tmp.path()).unwrap().as_ref(), Some(&kept));
    // `themap index` saves a new generation: the model goes along unchanged.
    let index = store::load(tmp.path()).unwrap();
    store::save(&index, &store::lock(tmp.path(), false).unwrap()).unwrap();
    assert_eq!(store::load_themes(tmp.path()).unwrap().as_ref(), Some(&kept));

    // A model fitted on a generation another writer has since replaced is not committed.
    let stale = index.generation.unwrap();
    let err = store::save_themes(&kept, Some(stale), &store::lock(tmp.path(), false).unwrap()).unwrap_err();
    assert!(matches!(err, Error::IndexChanged { .. }), "{err}");
    // A second writer is refused while one holds the lock.
    let held = store::lock(tmp.path(), false).unwrap();
    assert!(matches!(store::lock(tmp.path(), false), Err(Error::IndexBusy { .. })));
    drop(held);

    // A killed save: the next generation's theme files written, the manifest not replaced.
    let next = store::load(tmp.path()).unwrap().generation.unwrap() + 1;
    std::fs::write(tmp.path().join(format!("themes-{next}.json")), b"{ half").unwrap();
    assert_eq!(
        store::load_themes(tmp.path()).unwrap().as_ref(),
        Some(&kept),
        "the previous model stands"
    );

    // A damaged members file: one clear error naming it, and the fix.
    let members = std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("theme-members"))
        .unwrap();
    let mut bytes = std::fs::read(&members).unwrap();
    bytes[10] ^= 1;
    std::fs::write(&members, &bytes).unwrap();
    let err = store::load_themes(tmp.path()).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::ThemeModelCorrupt { .. }));
    assert!(
        text.contains(&members.display().to_string()) && text.contains("--refit"),
        "{text}"
    );
}

#[test]
fn new_passages_are_filed_under_the_nearest_theme_and_removed_ones_forgotten() {
    let (vectors, labels, first) = grown_archive();
    let keys = hashes(&(0..vectors.nrows()).collect::<Vec<_>>());
    let keys = refs(&keys);
    let (before, mut kept, ids) = first_fit(vectors.view(), &keys[..first], 1);
    let theme_of_class: Vec<u32> = (0..4).map(|c| tops(&before, &ids)[c * 100]).collect();
    // The index now: clusters 1.. of the first fit, and the others' new passages.
    let rows: Vec<usize> = (100..first)
        .chain((first..vectors.nrows()).filter(|&i| labels[i] < 4))
        .collect();
    let passages: Vec<themap::index::PassageRecord> = rows
        .iter()
        .map(|&r| themap::index::PassageRecord {
            passage: themap::corpus::Passage {
                id: format!("p{r}"),
                doc_id: "d".into(),
                ordinal: 1,
                section: None,
                char_start: 0,
                char_end: 1,
                line: 1,
                text: String::new(),
            },
            hash: keys[r].to_string(),
        })
        .collect();
    let filed = kept.file_new(&passages, vectors.select(Axis(0), &rows).view());
    assert_eq!(filed, vectors.nrows() - first - 60);
    assert_eq!(kept.members.len(), rows.len(), "the removed passages are forgotten");
    for (m, &r) in kept.members.iter().zip(&rows) {
        assert_eq!(m.theme, theme_of_class[labels[r]], "row {r}");
        assert_eq!(m.fitted, r < first);
    }
}
