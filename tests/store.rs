//! The index directory: atomic saves, version and model checks, round trips.

use ndarray::Array2;
use tempfile::TempDir;
use themap::corpus::Passage;
use themap::embed::{Dtype, Prompt};
use themap::index::{
    store, BuildSettings, ClusteringSample, DocumentRecord, Filter, HnswParams, Index, Limits, ModelInfo,
    PassageRecord, SearchGraph,
};
use themap::Error;

fn lock(dir: &std::path::Path) -> store::WriteLock {
    store::lock(dir, false).unwrap()
}

pub fn tiny_index(n: usize) -> Index {
    let passages = (0..n)
        .map(|i| PassageRecord {
            passage: Passage {
                id: format!("doc#{}", i + 1),
                doc_id: "doc".into(),
                ordinal: i as u32 + 1,
                section: None,
                char_start: i * 10,
                char_end: i * 10 + 9,
                line: i + 1,
                text: format!("passage {i}"),
            },
            hash: format!("{i:064}"),
        })
        .collect();
    let mut vectors = Array2::<f32>::zeros((n, 4));
    for i in 0..n {
        vectors[[i, i % 4]] = 1.0;
    }
    Index {
        model: ModelInfo {
            name: "test".into(),
            checksum: "abc".into(),
            dims: 4,
            prompt: Prompt::Document,
            dtypes: vec![Dtype::F32],
        },
        settings: BuildSettings {
            sources: vec!["docs".into()],
            max_tokens: 256,
            min_tokens: 51,
        },
        documents: vec![DocumentRecord {
            id: "doc".into(),
            path: "docs/doc.txt".into(),
            encoding: "UTF-8".into(),
            meta: Default::default(),
            passages: n,
        }],
        passages,
        vectors,
        clustering_vectors: None,
        clustering_sample: None,
        graph: None,
        generation: None,
    }
}

#[test]
fn save_and_load_round_trip() {
    let tmp = TempDir::new().unwrap();
    let index = tiny_index(6);
    store::save(&index, &lock(tmp.path())).unwrap();
    let loaded = store::load(tmp.path()).unwrap();
    assert_eq!(loaded.passages, index.passages);
    assert_eq!(loaded.documents, index.documents);
    assert_eq!(loaded.vectors, index.vectors);
    let limits = Limits {
        k: 2,
        ..Limits::default()
    };
    assert_eq!(
        loaded
            .search(index.vectors.row(1), &limits, &Filter::default())
            .unwrap(),
        index.search(index.vectors.row(1), &limits, &Filter::default()).unwrap()
    );
}

#[test]
fn clustering_vectors_round_trip() {
    let tmp = TempDir::new().unwrap();
    let mut index = tiny_index(4);
    index.clustering_vectors = Some(index.vectors.mapv(|v| 1.0 - v));
    store::save(&index, &lock(tmp.path())).unwrap();
    assert_eq!(
        store::load(tmp.path()).unwrap().clustering_vectors,
        index.clustering_vectors
    );
    // Saved without them, the index has none; their file goes with its generation.
    index.clustering_vectors = None;
    store::save(&index, &lock(tmp.path())).unwrap();
    store::save(&index, &lock(tmp.path())).unwrap();
    assert!(store::load(tmp.path()).unwrap().clustering_vectors.is_none());
    assert!(!tmp.path().join("vectors-clustering-1.npy").exists());
}

#[test]
fn adding_clustering_parts_keeps_what_was_not_read() {
    // `themap themes` reads an index without its graph, then keeps the clustering sample it
    // embedded: the graph, passages and vectors must stay, and not be written again.
    let tmp = TempDir::new().unwrap();
    let mut index = tiny_index(8);
    index.graph = Some(SearchGraph::build(index.vectors.view(), HnswParams::default(), &themap::Silent).unwrap());
    store::save(&index, &lock(tmp.path())).unwrap();
    let mut read = store::load_without_graph(tmp.path()).unwrap();
    read.clustering_sample = Some(ClusteringSample {
        hashes: vec![read.passages[2].hash.clone()],
        vectors: Array2::from_elem((1, 4), 0.5),
    });
    store::save_clustering(&read, &lock(tmp.path())).unwrap();

    let loaded = store::load(tmp.path()).unwrap();
    assert!(loaded.graph.is_some(), "the graph is kept");
    assert_eq!(loaded.passages, index.passages);
    assert_eq!(loaded.vectors, index.vectors);
    let sample = loaded.clustering_sample.expect("the sample is added");
    assert_eq!(sample.hashes, vec![index.passages[2].hash.clone()]);
    assert!(tmp.path().join("vectors-1.npy").exists() && !tmp.path().join("vectors-2.npy").exists());

    // An index that changed since it was read is not overwritten with a stale view.
    store::save(&tiny_index(9), &lock(tmp.path())).unwrap();
    assert!(store::save_clustering(&read, &lock(tmp.path())).is_err());
    assert_eq!(store::load(tmp.path()).unwrap().passages.len(), 9);
}

#[test]
fn an_interrupted_save_leaves_the_previous_index() {
    let tmp = TempDir::new().unwrap();
    store::save(&tiny_index(3), &lock(tmp.path())).unwrap();
    // What a save killed before its commit leaves behind: new-generation data, temporary files.
    std::fs::write(tmp.path().join("passages-2.jsonl"), "{\"half\": ").unwrap();
    std::fs::write(tmp.path().join(".manifest.json.tmp-1"), "{").unwrap();
    let loaded = store::load(tmp.path()).unwrap();
    assert_eq!(loaded.passages.len(), 3);
    // The next saves commit cleanly (above the leftover's generation, never over it) and sweep
    // the leftovers; the previous generation stays for readers that opened it just before a
    // commit, older ones go.
    store::save(&tiny_index(5), &lock(tmp.path())).unwrap();
    store::save(&tiny_index(6), &lock(tmp.path())).unwrap();
    assert_eq!(store::load(tmp.path()).unwrap().passages.len(), 6);
    let mut names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let expected = [
        "documents-3.json",
        "documents-4.json",
        "manifest.json",
        "passages-3.jsonl",
        "passages-4.jsonl",
        "rows-3.bin",
        "rows-4.bin",
        "vectors-3.npy",
        "vectors-4.npy",
        "writer.lock",
    ];
    assert_eq!(names, expected);
}

#[test]
fn other_format_versions_and_models_are_refused() {
    let tmp = TempDir::new().unwrap();
    let index = tiny_index(2);
    store::save(&index, &lock(tmp.path())).unwrap();
    let manifest = tmp.path().join("manifest.json");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replace("\"format_version\": 1", "\"format_version\": 99"),
    )
    .unwrap();
    assert!(matches!(
        store::load(tmp.path()),
        Err(Error::IndexVersion { found: 99, .. })
    ));
    std::fs::write(&manifest, &text).unwrap();

    let other = ModelInfo {
        checksum: "def".into(),
        ..index.model.clone()
    };
    let loaded = store::load(tmp.path()).unwrap();
    assert!(matches!(
        store::check_model(&loaded.model, &other, tmp.path()),
        Err(Error::IndexModelMismatch { .. })
    ));
    assert!(store::check_model(&loaded.model, &index.model, tmp.path()).is_ok());
}

#[test]
fn missing_index_names_the_command() {
    let tmp = TempDir::new().unwrap();
    let err = store::load(&tmp.path().join("nothing")).unwrap_err();
    assert!(err.to_string().contains("themap index"), "{err}");
}

/// Each data file, damaged in place (same size), is refused by name: never a wrong answer.
#[test]
fn damaged_data_files_are_caught_by_their_checksums() {
    let tmp = TempDir::new().unwrap();
    let mut index = tiny_index(6);
    index.graph = Some(SearchGraph::build(index.vectors.view(), HnswParams::default(), &themap::Silent).unwrap());
    index.clustering_vectors = Some(index.vectors.clone());
    store::save(&index, &lock(tmp.path())).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("manifest.json")).unwrap()).unwrap();
    let names = [
        manifest["files"]["documents"]["name"].as_str().unwrap(),
        manifest["files"]["vectors"]["name"].as_str().unwrap(),
        manifest["files"]["clustering_vectors"]["name"].as_str().unwrap(),
        manifest["graph"]["file"]["name"].as_str().unwrap(),
    ];
    for name in names {
        let path = tmp.path().join(name);
        let original = std::fs::read(&path).unwrap();
        let mut bytes = original.clone();
        // The last bytes: a vector's last component, the graph's node → passage table.
        let at = bytes.len() - 3;
        bytes[at] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        let err = store::load(tmp.path()).unwrap_err().to_string();
        assert!(err.contains(name) && err.contains("checksum"), "{name}: {err}");
        std::fs::write(&path, &original).unwrap();
    }
    // Two passages swapped: every line still parses, only the order is wrong.
    let path = tmp.path().join(manifest["files"]["passages"]["name"].as_str().unwrap());
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.swap(1, 2);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let err = store::load(tmp.path()).unwrap_err().to_string();
    assert!(err.contains("passages-1.jsonl") && err.contains("checksum"), "{err}");
    std::fs::write(&path, &text).unwrap();
    assert_eq!(store::load(tmp.path()).unwrap().passages, index.passages);
}

/// Indexes written before checksums load as before; a damaged vector in one is still caught.
#[test]
fn indexes_without_checksums_still_load_and_damage_is_caught() {
    let tmp = TempDir::new().unwrap();
    store::save(&tiny_index(4), &lock(tmp.path())).unwrap();
    let manifest = tmp.path().join("manifest.json");
    let mut value: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    for entry in value["files"].as_object_mut().unwrap().values_mut() {
        entry.as_object_mut().unwrap().remove("xxh3");
    }
    std::fs::write(&manifest, serde_json::to_string_pretty(&value).unwrap()).unwrap();
    assert_eq!(store::load(tmp.path()).unwrap().passages.len(), 4);

    let vectors = tmp.path().join("vectors-1.npy");
    let mut bytes = std::fs::read(&vectors).unwrap();
    let at = bytes.len() - 2;
    bytes[at] = 0x7f;
    std::fs::write(&vectors, &bytes).unwrap();
    let err = store::load(tmp.path()).unwrap_err().to_string();
    assert!(err.contains("vectors-1.npy") && err.contains("unit vector"), "{err}");
}

/// One writer at a time, and none commits over a generation it did not read.
#[test]
fn writers_lock_and_never_commit_over_a_newer_generation() {
    let tmp = TempDir::new().unwrap();
    store::save(&tiny_index(3), &lock(tmp.path())).unwrap();
    let held = lock(tmp.path());
    assert!(matches!(store::lock(tmp.path(), false), Err(Error::IndexBusy { .. })));
    drop(held);

    let stale = store::load(tmp.path()).unwrap();
    store::save(&tiny_index(5), &lock(tmp.path())).unwrap();
    let err = store::save(&stale, &lock(tmp.path())).unwrap_err();
    assert!(matches!(err, Error::IndexChanged { read: 1, now: 2, .. }), "{err}");
    assert_eq!(store::load(tmp.path()).unwrap().passages.len(), 5);

    let file = tmp.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let err = store::lock(&file, false).unwrap_err().to_string();
    assert!(err.contains("is a file"), "{err}");
}

/// Two writers × 50 rounds, random delays between reading and committing: every round either
/// commits or is told why (busy, or the index changed), no update is lost, and the index always
/// loads.
#[test]
fn concurrent_writers_lose_no_update() {
    use rand::{Rng, SeedableRng};
    let tmp = TempDir::new().unwrap();
    store::save(&tiny_index(1), &lock(tmp.path())).unwrap();
    let dir = tmp.path().to_path_buf();
    let writers: Vec<_> = (0..2)
        .map(|writer| {
            let dir = dir.clone();
            std::thread::spawn(move || {
                let mut rng = rand::rngs::StdRng::seed_from_u64(writer);
                let (mut committed, mut refused) = (0, 0);
                for round in 0..50 {
                    // Even rounds hold the lock throughout (`themap index`); odd ones read
                    // unlocked and lock only to commit (`themap themes`), relying on the check.
                    let add = |index: &mut Index| {
                        let mut record = index.passages[0].clone();
                        record.passage.id = format!("w{writer}-{round}");
                        index.passages.push(record);
                        let row = index.vectors.row(0).to_owned();
                        index.vectors.push_row(row.view()).unwrap();
                        index.documents[0].passages += 1;
                    };
                    let delay = std::time::Duration::from_millis(rng.gen_range(0..5));
                    let pause = || std::thread::sleep(delay);
                    let result = if round % 2 == 0 {
                        let held = store::lock(&dir, true).unwrap();
                        let mut index = store::load(&dir).unwrap();
                        pause();
                        add(&mut index);
                        store::save(&index, &held)
                    } else {
                        let mut index = store::load(&dir).unwrap();
                        pause();
                        add(&mut index);
                        store::lock(&dir, false).and_then(|held| store::save(&index, &held))
                    };
                    match result {
                        Ok(()) => committed += 1,
                        Err(Error::IndexBusy { .. } | Error::IndexChanged { .. }) => refused += 1,
                        Err(e) => panic!("writer {writer}, round {round}: {e}"),
                    }
                }
                (committed, refused)
            })
        })
        .collect();
    let results: Vec<(usize, usize)> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    let committed: usize = results.iter().map(|r| r.0).sum();
    assert_eq!(results.iter().map(|r| r.0 + r.1).sum::<usize>(), 100);
    let index = store::load(&dir).unwrap();
    // Every commit added one passage to the one before it: none was lost.
    assert_eq!(index.passages.len(), 1 + committed, "{results:?}");
    assert!(committed >= 50, "{results:?}");
}
