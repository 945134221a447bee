//! Criterion benches for the index store: what opening an index costs, and the share of it that
//! verifying the data files' checksums takes (issue 13). On a seeded synthetic index of 100,000
//! passages × 768 dimensions, from the page cache.
//!
//! `cargo bench --bench store`

use std::hint::black_box;
use std::io::Write;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use themap::corpus::Passage;
use themap::embed::Prompt;
use themap::hash::Hashing;
use themap::index::{store, BuildSettings, DocumentRecord, Index, ModelInfo, PassageRecord};
#[path = "../tests/common/synthetic.rs"]
mod synthetic;

const PASSAGES: usize = 100_000;
const DIMS: usize = 768;
const PER_DOCUMENT: usize = 20;

fn synthetic_index() -> Index {
    let (vectors, _) = synthetic::Clustered::new(DIMS, 0x5eed).generate(PASSAGES, 0);
    let passages = (0..PASSAGES)
        .map(|i| PassageRecord {
            passage: Passage {
                id: format!("d{}#{}", i / PER_DOCUMENT, i % PER_DOCUMENT + 1),
                doc_id: format!("d{}", i / PER_DOCUMENT),
                ordinal: (i % PER_DOCUMENT) as u32 + 1,
                section: None,
                char_start: 0,
                char_end: 120,
                line: 1,
                text: format!("第{i}段：美国对中国商品加征关税，贸易战升级。Tariffs and the dollar, passage {i}."),
            },
            hash: format!("{i:064x}"),
        })
        .collect();
    let documents = (0..PASSAGES / PER_DOCUMENT)
        .map(|d| DocumentRecord {
            id: format!("d{d}"),
            path: format!("docs/d{d}.txt").into(),
            encoding: "UTF-8".into(),
            meta: Default::default(),
            passages: PER_DOCUMENT,
        })
        .collect();
    Index {
        model: ModelInfo {
            name: "synthetic".into(),
            checksum: "0".repeat(64),
            dims: DIMS,
            prompt: Prompt::Document,
            dtypes: Vec::new(),
        },
        settings: BuildSettings {
            sources: vec!["docs".into()],
            max_tokens: 256,
            min_tokens: 51,
        },
        documents,
        passages,
        vectors,
        clustering_vectors: None,
        clustering_sample: None,
        graph: None,
        generation: None,
    }
}

fn load(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    store::save(&synthetic_index(), &store::lock(dir.path(), false).unwrap()).unwrap();
    let data: Vec<std::path::PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "npy" || e == "jsonl" || e == "json") && !p.ends_with("manifest.json")
        })
        .collect();
    let bytes: Vec<Vec<u8>> = data.iter().map(|p| std::fs::read(p).unwrap()).collect();
    let total: u64 = bytes.iter().map(|b| b.len() as u64).sum();

    let mut group = c.benchmark_group("store_load");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(total));
    // What a command pays to open the index: parse, check sizes and checksums.
    group.bench_function("load_verified", |b| {
        b.iter(|| black_box(store::load(dir.path()).unwrap()))
    });
    // The floor: the same files' bytes read into memory, nothing parsed.
    group.bench_function("read_files", |b| {
        b.iter(|| {
            for path in &data {
                black_box(std::fs::read(path).unwrap());
            }
        })
    });
    // The checksums alone, over bytes already in memory.
    group.bench_function("xxh3", |b| {
        b.iter(|| {
            for file in &bytes {
                let mut hashing = Hashing::new(std::io::sink());
                hashing.write_all(file).unwrap();
                black_box(hashing.digest());
            }
        })
    });
    group.finish();
}

criterion_group!(benches, load);
criterion_main!(benches);
