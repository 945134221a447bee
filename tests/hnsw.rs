//! The HNSW search graph against exact search (the oracle): recall, persistence, incremental
//! insertion, filters, dead nodes, and parameter checks.

use crate::common::synthetic::Clustered;
use hnsw_rs::frozen::FrozenHnsw;
use ndarray::{s, Array2, ArrayView2};
use themap::index::flat::{self, recall};
use themap::index::hnsw::{rerank, HnswGraph, HnswParams, Precision};
use themap::index::quantize::dot_f32;
use themap::index::{Hit, PassageRecord, SearchGraph};
use themap::progress::Silent;

const K: usize = 10;

fn data(n: usize, dims: usize) -> (Array2<f32>, Array2<f32>) {
    Clustered::new(dims, 42).generate(n, 200)
}

fn params(precision: Precision) -> HnswParams {
    HnswParams {
        precision,
        ..HnswParams::default()
    }
}

/// Top-k ids through the graph (re-ranked exactly when it walks on codes).
fn graph_top_k(graph: &HnswGraph, vectors: ArrayView2<f32>, query: &[f32], ef: usize) -> Vec<u32> {
    let candidates = graph.search(query, ef, None);
    rerank(&candidates, K, |node| {
        dot_f32(query, vectors.row(node as usize).as_slice().unwrap())
    })
    .into_iter()
    .map(|(node, _)| node)
    .collect()
}

fn exact_top_k(vectors: ArrayView2<f32>, query: ndarray::ArrayView1<f32>, keep: impl Fn(usize) -> bool) -> Vec<u32> {
    flat::top_k(vectors, query, K, keep)
        .into_iter()
        .map(|h| h.row as u32)
        .collect()
}

fn recall_of(graph: &HnswGraph, vectors: ArrayView2<f32>, queries: ArrayView2<f32>, ef: usize) -> f64 {
    let found: Vec<Vec<u32>> = queries
        .outer_iter()
        .map(|q| graph_top_k(graph, vectors, q.as_slice().unwrap(), ef))
        .collect();
    let truth: Vec<Vec<u32>> = queries
        .outer_iter()
        .map(|q| exact_top_k(vectors, q, |_| true))
        .collect();
    recall(&found, &truth)
}

#[test]
fn recall_at_10_against_exact_search() {
    let (vectors, queries) = data(10_000, 128);
    for precision in [Precision::I8, Precision::U4, Precision::F32] {
        let graph = HnswGraph::build(vectors.view(), params(precision), &Silent).unwrap();
        let r = recall_of(&graph, vectors.view(), queries.view(), 64);
        assert!(r >= 0.95, "{precision:?}: recall@10 {r:.4} at ef 64");
        // A wider search is at least as good.
        let wide = recall_of(&graph, vectors.view(), queries.view(), 256);
        assert!(
            wide >= r - 0.005 && wide >= 0.99,
            "{precision:?}: recall@10 {wide:.4} at ef 256"
        );
    }
}

/// `n` unit vectors spread evenly over a random 16-dimensional subspace of `dims` dimensions:
/// neighbours a 4-bit step can tell apart, unlike those of tight clusters.
fn spread_on_subspace(n: usize, dims: usize) -> Array2<f32> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(5);
    let basis = Array2::from_shape_fn((16, dims), |_| rng.gen_range(-1.0f32..1.0));
    let mut vectors = Array2::from_shape_fn((n, 16), |_| rng.gen_range(-1.0f32..1.0)).dot(&basis);
    for mut row in vectors.outer_iter_mut() {
        let norm = row.dot(&row).sqrt();
        row /= norm;
    }
    vectors
}

#[test]
fn automatic_codes_are_chosen_by_their_recall() {
    // Tight clusters: neighbours differ by less than a 4-bit step, so 8-bit codes are kept. The
    // choice is what an index gets by default.
    let tight = Clustered::new(64, 42).generate(6000, 0).0;
    for (vectors, expected) in [(tight, Precision::I8), (spread_on_subspace(6000, 256), Precision::U4)] {
        let graph = HnswGraph::build(vectors.view(), HnswParams::default(), &Silent).unwrap();
        assert_eq!(graph.params().precision, expected);
        // The choice is written down: the graph reads back with the parameters it reports.
        let mut bytes = Vec::new();
        graph.write_to(&mut bytes).unwrap();
        assert_eq!(
            HnswGraph::read_from(&mut bytes.as_slice(), *graph.params()).unwrap(),
            graph
        );
        assert!(graph.params().satisfies(&params(Precision::Auto)));
        assert!(!graph.params().satisfies(&params(Precision::F32)));
    }
    // Parameters that leave the codes open describe no file.
    let graph = HnswGraph::build(
        Clustered::new(16, 1).generate(300, 0).0.view(),
        params(Precision::I8),
        &Silent,
    )
    .unwrap();
    let mut bytes = Vec::new();
    graph.write_to(&mut bytes).unwrap();
    assert!(HnswGraph::read_from(&mut bytes.as_slice(), params(Precision::Auto)).is_err());
}

#[test]
fn each_search_starts_with_nothing_seen() {
    // One thread's searches share their "seen" marks, cleared between searches: a mark left
    // behind would hide nodes from the next search, here of the same graph and of another
    // of a different size.
    let (vectors, queries) = data(3000, 64);
    let large = HnswGraph::build(vectors.view(), params(Precision::I8), &Silent).unwrap();
    let small = HnswGraph::build(vectors.slice(s![..500, ..]), params(Precision::I8), &Silent).unwrap();
    let query = queries.row(0).to_vec();
    let first = large.search(&query, 64, None);
    assert_eq!(first.len(), 64);
    for _ in 0..3 {
        let other = small.search(&queries.row(1).to_vec(), 64, None);
        assert_eq!(other.len(), 64);
        assert_eq!(large.search(&query, 64, None), first);
    }
}

#[test]
fn dump_and_reload_give_identical_results() {
    let (vectors, queries) = data(3000, 64);
    for precision in [Precision::I8, Precision::U4, Precision::F32] {
        let graph = HnswGraph::build(vectors.view(), params(precision), &Silent).unwrap();
        let mut bytes = Vec::new();
        graph.write_to(&mut bytes).unwrap();
        let loaded = HnswGraph::read_from(&mut bytes.as_slice(), params(precision)).unwrap();
        assert_eq!(loaded, graph);
        for q in queries.outer_iter() {
            let q = q.as_slice().unwrap();
            assert_eq!(loaded.search(q, 32, None), graph.search(q, 32, None));
        }
        // Every truncation is an error, never a panic or a graph.
        for cut in [0, 7, 8, 60, bytes.len() / 2, bytes.len() - 1] {
            assert!(
                HnswGraph::read_from(&mut &bytes[..cut], params(precision)).is_err(),
                "cut at {cut}"
            );
        }
        // So is a damaged dimension count before the vectors (the first of their header's 12
        // bytes, which end where the stored vectors begin).
        let stored = graph.memory_bytes() - FrozenHnsw::read_from(&mut bytes.as_slice()).unwrap().memory_bytes();
        let mut damaged = bytes.clone();
        let at = damaged.len() - stored - 12;
        assert_eq!(damaged[at..at + 8], 64u64.to_le_bytes());
        damaged[at..at + 8].copy_from_slice(&65_536u64.to_le_bytes());
        assert!(HnswGraph::read_from(&mut damaged.as_slice(), params(precision)).is_err());
    }
}

#[test]
fn damaged_links_are_an_error() {
    let (vectors, _) = data(500, 16);
    let graph = HnswGraph::build(vectors.view(), params(Precision::I8), &Silent).unwrap();
    let mut bytes = Vec::new();
    graph.write_to(&mut bytes).unwrap();
    // Header is 8 magic + 6 × 8 bytes, then one level byte per node, then layer-0 rows whose
    // first word is the link count: make node 0's count impossible.
    let first_row = 8 + 48 + 500;
    bytes[first_row..first_row + 4].copy_from_slice(&1000u32.to_le_bytes());
    let err = HnswGraph::read_from(&mut bytes.as_slice(), params(Precision::I8)).unwrap_err();
    assert!(err.to_string().contains("bad links"), "{err}");
}

#[test]
fn incremental_insertion_matches_a_full_build() {
    let (vectors, queries) = data(8000, 96);
    for precision in [Precision::I8, Precision::U4] {
        let full = HnswGraph::build(vectors.view(), params(precision), &Silent).unwrap();
        let first = HnswGraph::build(vectors.slice(s![..5000, ..]), params(precision), &Silent).unwrap();
        let grown = first.extend(vectors.slice(s![5000.., ..]), &Silent).unwrap();
        assert_eq!(grown.len(), 8000);
        let full_recall = recall_of(&full, vectors.view(), queries.view(), 64);
        let grown_recall = recall_of(&grown, vectors.view(), queries.view(), 64);
        assert!(
            grown_recall >= 0.95,
            "{precision:?}: incremental recall@10 {grown_recall:.4}"
        );
        assert!(
            (grown_recall - full_recall).abs() <= 0.02,
            "{precision:?}: incremental {grown_recall:.4} vs full {full_recall:.4}"
        );
    }
}

#[test]
fn freezing_and_thawing_keep_the_graph() {
    use hnsw_rs::prelude::{DistDot, Hnsw};
    let (vectors, _) = data(2000, 32);
    let hnsw: Hnsw<f32, DistDot> = Hnsw::new(8, 2000, 16, 64, DistDot);
    for (i, row) in vectors.outer_iter().enumerate() {
        hnsw.insert_slice((row.as_slice().unwrap(), i));
    }
    let frozen = FrozenHnsw::from_hnsw(&hnsw).unwrap();
    assert_eq!(frozen.len(), 2000);
    let thawed = frozen.thaw(|i| vectors.row(i).to_vec(), DistDot, 2000);
    assert_eq!(FrozenHnsw::from_hnsw(&thawed).unwrap(), frozen);
    // Layer-0 links stay within twice m, upper ones within m.
    for node in 0..2000u32 {
        assert!(frozen.neighbours(node, 0).len() <= 16);
    }
}

#[test]
fn filters_apply_inside_the_search() {
    let (vectors, queries) = data(6000, 64);
    let graph = SearchGraph::build(vectors.view(), params(Precision::I8), &Silent).unwrap();
    // Keep one row in three: the graph must still find the best allowed ones.
    let allowed = |row: usize| row % 3 == 0;
    let mut found = Vec::new();
    let mut truth = Vec::new();
    for q in queries.outer_iter() {
        let hits: Vec<Hit> = graph.search(q.as_slice().unwrap(), 64, 64, &allowed, vectors.view());
        assert!(hits.iter().all(|h| allowed(h.row)));
        found.push(hits.iter().take(K).map(|h| h.row as u32).collect());
        truth.push(exact_top_k(vectors.view(), q, allowed));
    }
    let r = recall(&found, &truth);
    assert!(r >= 0.95, "filtered recall@10 {r:.4}");
    // A filter that accepts nothing returns nothing (hnsw_rs issue #27 returned one result).
    assert!(graph
        .search(queries.row(0).as_slice().unwrap(), 64, 64, &|_| false, vectors.view())
        .is_empty());
}

fn records(n: usize, offset: usize) -> Vec<PassageRecord> {
    (0..n)
        .map(|i| PassageRecord {
            passage: themap::corpus::Passage {
                id: format!("d#{i}"),
                doc_id: "d".into(),
                ordinal: i as u32,
                section: None,
                char_start: 0,
                char_end: 0,
                line: 1,
                text: String::new(),
            },
            hash: format!("{:064}", i + offset),
        })
        .collect()
}

#[test]
fn removed_passages_stop_appearing_and_new_ones_are_found() {
    let (vectors, _) = data(3000, 32);
    let old = records(2000, 0);
    let graph = SearchGraph::build(vectors.slice(s![..2000, ..]), params(Precision::I8), &Silent).unwrap();
    // The new collection drops old rows 0..500 and adds rows 2000..3000 (hashes 2000..).
    let new = records(2500, 500);
    let new_vectors = vectors.slice(s![500..3000, ..]).to_owned();
    let (graph, added) = graph.update(&old, &new, new_vectors.view(), &Silent).unwrap();
    assert_eq!(added, 1000);
    assert_eq!((graph.nodes(), graph.live()), (3000, 2500));
    for row in [0usize, 100, 1499, 1500, 2499] {
        // Each current passage is its own nearest neighbour, at its new row.
        let q = new_vectors.row(row);
        let hits = graph.search(q.as_slice().unwrap(), 32, 32, &|_| true, new_vectors.view());
        assert_eq!(hits[0].row, row);
        assert!((hits[0].score - 1.0).abs() < 1e-5);
        assert!(hits.iter().all(|h| h.row < 2500));
    }
    // A removed passage's vector finds only current passages, never its dead node.
    let gone = vectors.row(10);
    let hits = graph.search(gone.as_slice().unwrap(), 32, 32, &|_| true, new_vectors.view());
    assert!(hits.iter().all(|h| h.score < 0.9999));
}

#[test]
fn bad_parameters_are_errors_not_exits() {
    let (vectors, _) = data(100, 8);
    for bad in [
        HnswParams {
            m: 0,
            ..HnswParams::default()
        },
        HnswParams {
            m: 300,
            ..HnswParams::default()
        },
        HnswParams {
            ef_construction: 4,
            ..HnswParams::default()
        },
        HnswParams {
            max_layers: 0,
            ..HnswParams::default()
        },
        HnswParams {
            ef_search: 0,
            ..HnswParams::default()
        },
    ] {
        let err = HnswGraph::build(vectors.view(), bad, &Silent).unwrap_err();
        assert!(err.to_string().contains("HNSW"), "{err}");
    }
}
