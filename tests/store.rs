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

fn tiny_index(n: usize) -> Index {
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
    }
}

#[test]
fn save_and_load_round_trip() {
    let tmp = TempDir::new().unwrap();
    let index = tiny_index(6);
    store::save(&index, tmp.path()).unwrap();
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
    store::save(&index, tmp.path()).unwrap();
    assert_eq!(
        store::load(tmp.path()).unwrap().clustering_vectors,
        index.clustering_vectors
    );
    // Saved without them, the index has none; their file goes with its generation.
    index.clustering_vectors = None;
    store::save(&index, tmp.path()).unwrap();
    store::save(&index, tmp.path()).unwrap();
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
    store::save(&index, tmp.path()).unwrap();
    let mut read = store::load_without_graph(tmp.path()).unwrap();
    read.clustering_sample = Some(ClusteringSample {
        hashes: vec![read.passages[2].hash.clone()],
        vectors: Array2::from_elem((1, 4), 0.5),
    });
    store::save_clustering(&read, tmp.path()).unwrap();

    let loaded = store::load(tmp.path()).unwrap();
    assert!(loaded.graph.is_some(), "the graph is kept");
    assert_eq!(loaded.passages, index.passages);
    assert_eq!(loaded.vectors, index.vectors);
    let sample = loaded.clustering_sample.expect("the sample is added");
    assert_eq!(sample.hashes, vec![index.passages[2].hash.clone()]);
    assert!(tmp.path().join("vectors-1.npy").exists() && !tmp.path().join("vectors-2.npy").exists());

    // An index that changed since it was read is not overwritten with a stale view.
    store::save(&tiny_index(9), tmp.path()).unwrap();
    assert!(store::save_clustering(&read, tmp.path()).is_err());
    assert_eq!(store::load(tmp.path()).unwrap().passages.len(), 9);
}

#[test]
fn an_interrupted_save_leaves_the_previous_index() {
    let tmp = TempDir::new().unwrap();
    store::save(&tiny_index(3), tmp.path()).unwrap();
    // What a save killed before its commit leaves behind: new-generation data, temporary files.
    std::fs::write(tmp.path().join("passages-2.jsonl"), "{\"half\": ").unwrap();
    std::fs::write(tmp.path().join(".manifest.json.tmp-1"), "{").unwrap();
    let loaded = store::load(tmp.path()).unwrap();
    assert_eq!(loaded.passages.len(), 3);
    // The next saves commit cleanly and sweep the leftovers; the previous generation stays
    // for readers that opened it just before a commit, older ones go.
    store::save(&tiny_index(5), tmp.path()).unwrap();
    store::save(&tiny_index(6), tmp.path()).unwrap();
    assert_eq!(store::load(tmp.path()).unwrap().passages.len(), 6);
    let mut names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let expected = [
        "documents-2.json",
        "documents-3.json",
        "manifest.json",
        "passages-2.jsonl",
        "passages-3.jsonl",
        "vectors-2.npy",
        "vectors-3.npy",
    ];
    assert_eq!(names, expected);
}

#[test]
fn other_format_versions_and_models_are_refused() {
    let tmp = TempDir::new().unwrap();
    let index = tiny_index(2);
    store::save(&index, tmp.path()).unwrap();
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
        store::check_model(&loaded, &other, tmp.path()),
        Err(Error::IndexModelMismatch { .. })
    ));
    assert!(store::check_model(&loaded, &index.model, tmp.path()).is_ok());
}

#[test]
fn missing_index_names_the_command() {
    let tmp = TempDir::new().unwrap();
    let err = store::load(&tmp.path().join("nothing")).unwrap_err();
    assert!(err.to_string().contains("themap index"), "{err}");
}
