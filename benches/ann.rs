//! The vector-search harness: build time, queries per second (one thread and all threads),
//! recall@10 against exact search, and memory, swept over ef. Writes the vectors, queries and
//! exact answers as `.npy` so `scripts/ann_peers.py` runs hnswlib, faiss and usearch on the
//! same data and prints one table (`scripts/bench-ann.sh` runs both).
//!
//! ```text
//! cargo bench --bench ann -- --n 100000 --dims 768 [--queries 1000] [--seed 1] [--m 16]
//!     [--ef-construction 200] [--also-ef-construction 100,64] [--efs 16,32,64,128,256] [--precision auto,i8,u4,f32]
//!     [--rerank 0,2,3]   (f32 re-rank depth of the i8 walk, in multiples of k; 0: all ef candidates)
//!     [--hnsw-rs-search] [--vectors FILE.npy [--query-vectors FILE.npy]] [--out DIR]
//!     [--graph-cache DIR]   (keep built graphs there and reuse them: for trying search changes)
//! ```
//!
//! Under `cargo test --benches` it runs a small configuration and asserts recall, as a smoke test.

use std::path::PathBuf;
use std::time::Instant;

use hnsw_rs::prelude::{DistDot, Hnsw};
use ndarray::{s, Array2, ArrayView2};
use rayon::prelude::*;
use serde::Serialize;
use themap::index::flat::recall;
use themap::index::hnsw::{rerank, HnswGraph, HnswParams, Precision};
#[path = "../tests/common/synthetic.rs"]
mod synthetic;
use synthetic::Clustered;
use themap::npy;
use themap::progress::Silent;

const K: usize = 10;

struct Config {
    n: usize,
    dims: usize,
    queries: usize,
    seed: u64,
    m: usize,
    ef_construction: usize,
    /// More themap rows (default codes) built with these ef_construction values; peers use `ef_construction`.
    also_ef_construction: Vec<usize>,
    efs: Vec<usize>,
    /// How many of the i8 walk's candidates are re-ranked on f32, as multiples of k (0: all ef).
    reranks: Vec<usize>,
    precisions: Vec<Precision>,
    hnsw_rs_search: bool,
    vectors: Option<PathBuf>,
    /// Queries of their own (e.g. held-out texts embedded with the query prompt) for `vectors`.
    query_vectors: Option<PathBuf>,
    out: Option<PathBuf>,
    /// Reuse graphs built by an earlier run with the same vectors and parameters (kept here).
    graph_cache: Option<PathBuf>,
}

impl Config {
    fn parse(args: &[String]) -> Result<Self, String> {
        let mut config = Config {
            n: 100_000,
            dims: 768,
            queries: 1000,
            seed: 1,
            m: 16,
            ef_construction: 200,
            also_ef_construction: Vec::new(),
            efs: vec![16, 24, 32, 48, 64, 96, 128, 256],
            reranks: vec![0],
            precisions: vec![Precision::Auto],
            hnsw_rs_search: false,
            vectors: None,
            query_vectors: None,
            out: None,
            graph_cache: None,
        };
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            if flag == "--bench" {
                continue;
            }
            if flag == "--hnsw-rs-search" {
                config.hnsw_rs_search = true;
                continue;
            }
            let value = it.next().ok_or(format!("{flag} needs a value"))?;
            let number = || value.parse::<usize>().map_err(|e| format!("{flag} {value}: {e}"));
            match flag.as_str() {
                "--n" => config.n = number()?,
                "--dims" => config.dims = number()?,
                "--queries" => config.queries = number()?,
                "--seed" => config.seed = number()? as u64,
                "--m" => config.m = number()?,
                "--ef-construction" => config.ef_construction = number()?,
                "--efs" => config.efs = list(flag, value)?,
                "--rerank" => config.reranks = list(flag, value)?,
                "--also-ef-construction" => config.also_ef_construction = list(flag, value)?,
                "--precision" => {
                    config.precisions = value
                        .split(',')
                        .map(|v| match v {
                            "auto" => Ok(Precision::Auto),
                            "i8" => Ok(Precision::I8),
                            "u4" => Ok(Precision::U4),
                            "f32" => Ok(Precision::F32),
                            _ => Err(format!("--precision {v}: auto, i8, u4 or f32")),
                        })
                        .collect::<Result<_, _>>()?
                }
                "--vectors" => config.vectors = Some(value.into()),
                "--query-vectors" => config.query_vectors = Some(value.into()),
                "--out" => config.out = Some(value.into()),
                "--graph-cache" => config.graph_cache = Some(value.into()),
                _ => return Err(format!("unknown option {flag}")),
            }
        }
        Ok(config)
    }
}

fn list(flag: &str, value: &str) -> Result<Vec<usize>, String> {
    value
        .split(',')
        .map(|v| v.parse().map_err(|e| format!("{flag} {v}: {e}")))
        .collect()
}

#[derive(Serialize)]
struct Row {
    engine: String,
    build_s: f64,
    memory_mib: f64,
    peak_rss_mib: f64,
    sweep: Vec<Point>,
}

#[derive(Serialize, Clone, Copy)]
struct Point {
    ef: usize,
    recall: f64,
    qps_1: f64,
    qps_all: f64,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let smoke = !args.iter().any(|a| a == "--bench");
    let mut config = match Config::parse(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ann bench: {e}");
            std::process::exit(2);
        }
    };
    if smoke {
        config.n = 3000;
        config.dims = 64;
        config.queries = 100;
        config.efs = vec![64];
        config.precisions = vec![Precision::I8, Precision::U4, Precision::F32];
    }
    let rows = run(&config);
    if smoke {
        for row in &rows {
            let recall = row.sweep[0].recall;
            assert!(recall >= 0.95, "{}: recall@10 {recall} at ef 64", row.engine);
        }
    }
}

fn run(config: &Config) -> Vec<Row> {
    let threads = rayon::current_num_threads();
    let (base, queries) = data(config);
    let (n, dims) = base.dim();
    println!(
        "{n} vectors × {dims}, {} queries, k = {K}, {threads} threads",
        queries.nrows()
    );

    let started = Instant::now();
    let truth = exact_top_k(base.view(), queries.view());
    println!("exact ground truth in {:.1} s", started.elapsed().as_secs_f64());
    if let Some(dir) = &config.out {
        write_npy(dir, "base.npy", &base);
        write_npy(dir, "queries.npy", &queries);
        let truth_f32 = Array2::from_shape_fn((truth.len(), K), |(q, j)| truth[q][j] as f32);
        write_npy(dir, "truth.npy", &truth_f32);
    }

    let mut rows = vec![exact_row(base.view(), queries.view())];
    for &precision in &config.precisions {
        rows.extend(graph_rows(
            config,
            precision,
            config.ef_construction,
            base.view(),
            queries.view(),
            &truth,
        ));
    }
    for &ef_construction in &config.also_ef_construction {
        rows.extend(graph_rows(
            config,
            Precision::Auto,
            ef_construction,
            base.view(),
            queries.view(),
            &truth,
        ));
    }
    if config.hnsw_rs_search {
        rows.push(hnsw_rs_row(config, base.view(), queries.view(), &truth));
    }
    print_table(&rows, n, dims, config.m);
    if let Some(dir) = &config.out {
        let json = serde_json::json!({
            "n": n, "dims": dims, "queries": queries.nrows(), "k": K, "threads": threads,
            "m": config.m, "ef_construction": config.ef_construction,
            "also_ef_construction": config.also_ef_construction, "rows": rows,
        });
        std::fs::write(dir.join("themap.json"), serde_json::to_vec_pretty(&json).unwrap()).unwrap();
    }
    rows
}

fn data(config: &Config) -> (Array2<f32>, Array2<f32>) {
    let read = |path: &PathBuf| {
        let mut file = std::io::BufReader::new(std::fs::File::open(path).expect("open a vectors file"));
        npy::read_array(&mut file).expect("read a vectors file")
    };
    match (&config.vectors, &config.query_vectors) {
        // Real vectors with their own queries: the first `queries` of them.
        (Some(path), Some(queries)) => {
            let queries = read(queries);
            let count = config.queries.min(queries.nrows());
            (read(path), queries.slice(s![..count, ..]).to_owned())
        }
        // Real vectors alone: the last `queries` rows are the queries.
        (Some(path), None) => {
            let all = read(path);
            let split = all.nrows().saturating_sub(config.queries);
            (
                all.slice(s![..split, ..]).to_owned(),
                all.slice(s![split.., ..]).to_owned(),
            )
        }
        (None, _) => Clustered::new(config.dims, config.seed).generate(config.n, config.queries),
    }
}

fn write_npy(dir: &std::path::Path, name: &str, array: &Array2<f32>) {
    std::fs::create_dir_all(dir).unwrap();
    let mut file = std::io::BufWriter::new(std::fs::File::create(dir.join(name)).unwrap());
    npy::write_array(&mut file, array).unwrap();
}

/// Exact top-k ids per query, by blocked matrix products over all threads.
fn exact_top_k(base: ArrayView2<f32>, queries: ArrayView2<f32>) -> Vec<Vec<u32>> {
    themap::index::flat::top_k_batch(base, queries, K)
        .into_iter()
        .map(|hits| hits.into_iter().map(|h| h.row as u32).collect())
        .collect()
}

/// Recall and queries per second (one thread, all threads) of `search(ef, query)` at each ef.
fn sweep(
    efs: &[usize],
    queries: usize,
    truth: &[Vec<u32>],
    search: impl Fn(usize, usize) -> Vec<u32> + Sync,
) -> Vec<Point> {
    efs.iter()
        .map(|&ef| {
            let (qps_1, found) = timed(queries, false, |q| search(ef, q));
            let (qps_all, _) = timed(queries, true, |q| search(ef, q));
            Point {
                ef,
                recall: recall(&found, truth),
                qps_1,
                qps_all,
            }
        })
        .collect()
}

/// Queries per second answering every query once, one at a time (`parallel`: over all threads).
fn timed(queries: usize, parallel: bool, search: impl Fn(usize) -> Vec<u32> + Sync) -> (f64, Vec<Vec<u32>>) {
    // Warm-up: fault the index in and settle the caches before timing.
    if parallel {
        (0..queries.min(200)).into_par_iter().for_each(|q| drop(search(q)));
    } else {
        (0..queries.min(100)).for_each(|q| drop(search(q)));
    }
    // The best of REPEATS passes (as scripts/ann_peers.py does): the machine is shared, and a
    // pass that another process interrupted measures that process.
    let mut best = f64::INFINITY;
    let mut found = Vec::new();
    for _ in 0..REPEATS {
        let started = Instant::now();
        found = if parallel {
            (0..queries).into_par_iter().map(&search).collect()
        } else {
            (0..queries).map(&search).collect()
        };
        best = best.min(started.elapsed().as_secs_f64());
    }
    (queries as f64 / best, found)
}

const REPEATS: usize = 5;

fn exact_row(base: ArrayView2<f32>, queries: ArrayView2<f32>) -> Row {
    // A full scan is slow at scale: time a sample of queries.
    let sample = queries.nrows().min(200);
    let search = |q: usize| {
        themap::index::flat::top_k(base, queries.row(q), K, |_| true)
            .into_iter()
            .map(|h| h.row as u32)
            .collect()
    };
    let (qps_1, _) = timed(sample, false, search);
    let (qps_all, _) = timed(sample, true, search);
    Row {
        engine: "exact scan (themap flat)".into(),
        build_s: 0.0,
        memory_mib: mib(4 * base.len()),
        peak_rss_mib: peak_rss_mib(),
        sweep: vec![Point {
            ef: 0,
            recall: 1.0,
            qps_1,
            qps_all,
        }],
    }
}

/// One row per re-rank depth (`config.reranks`) for an f32-re-ranked i8 graph; one row for an
/// f32 graph. The graph is built once.
fn graph_rows(
    config: &Config,
    precision: Precision,
    ef_construction: usize,
    base: ArrayView2<f32>,
    queries: ArrayView2<f32>,
    truth: &[Vec<u32>],
) -> Vec<Row> {
    let params = HnswParams {
        m: config.m,
        ef_construction,
        precision,
        ..HnswParams::default()
    };
    let (graph, build_s) = built_graph(config, params, base);
    // The re-rank reads the f32 vectors, so they count as part of an i8 index.
    let memory = graph.memory_bytes() + if graph.exact() { 0 } else { 4 * base.len() };
    let reranks = if graph.exact() { &[0][..] } else { &config.reranks };
    reranks
        .iter()
        .map(|&rerank_k| {
            let sweep = sweep(&config.efs, queries.nrows(), truth, |ef, q| {
                let query = queries.row(q);
                let query = query.as_slice().expect("contiguous");
                let mut candidates = graph.search(query, ef.max(K), None);
                if graph.exact() {
                    return candidates.iter().take(K).map(|c| c.node).collect();
                }
                if rerank_k > 0 {
                    candidates.truncate(rerank_k * K);
                }
                rerank(&candidates, K, |node| {
                    themap::index::quantize::dot_f32(query, base.row(node as usize).as_slice().unwrap())
                })
                .into_iter()
                .map(|(node, _)| node)
                .collect()
            });
            let built = graph.params().precision;
            let codes = match built {
                Precision::Auto => unreachable!("a built graph holds one kind of codes"),
                Precision::I8 => "i8",
                Precision::U4 => "u4",
                Precision::F32 => "f32",
            };
            let codes = match precision {
                Precision::Auto => format!("{codes}, chosen"),
                _ => codes.to_string(),
            };
            let walk = match (built, rerank_k) {
                (Precision::F32, _) => "f32 walk".to_string(),
                (_, 0) => format!("{codes} walk + f32 re-rank of ef"),
                (_, r) => format!("{codes} walk + f32 re-rank of {r}k"),
            };
            Row {
                engine: format!("themap HNSW ({walk}, ef_construction {ef_construction})"),
                build_s,
                memory_mib: mib(memory),
                peak_rss_mib: peak_rss_mib(),
                sweep,
            }
        })
        .collect()
}

/// The graph for `params`, built (and its build time), or read from `--graph-cache` with the
/// build time of the run that wrote it (and, for `auto`, the codes it chose). The file name holds
/// a fingerprint of the vectors, so other vectors of the same shape never reuse it.
fn built_graph(config: &Config, params: HnswParams, base: ArrayView2<f32>) -> (HnswGraph, f64) {
    let cached = config.graph_cache.as_ref().map(|dir| {
        let (n, dims) = base.dim();
        let name = format!(
            "{n}x{dims}-{:016x}-{:?}-m{}-efc{}",
            fingerprint(base),
            params.precision,
            params.m,
            params.ef_construction
        );
        (dir.join(format!("{name}.graph")), dir.join(format!("{name}.build_s")))
    });
    if let Some((graph, build_s)) = &cached {
        // The build time is written after the graph, so with it the graph is whole.
        if let (Ok(file), Ok(written)) = (std::fs::File::open(graph), std::fs::read_to_string(build_s)) {
            let (seconds, precision) = written.trim().split_once(' ').expect("build time and codes");
            let precision = serde_json::from_value(precision.into()).expect("codes");
            let params = HnswParams { precision, ..params };
            let graph =
                HnswGraph::read_from(&mut std::io::BufReader::new(file), params).expect("read the cached graph");
            println!("graph read from the cache (built in {seconds} s)");
            return (graph, seconds.parse().expect("a build time"));
        }
    }
    let started = Instant::now();
    let graph = HnswGraph::build(base, params, &Silent).expect("build");
    let seconds = started.elapsed().as_secs_f64();
    if let Some((path, build_s)) = &cached {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
        graph.write_to(&mut file).unwrap();
        let precision = serde_json::to_value(graph.params().precision).unwrap();
        std::fs::write(build_s, format!("{seconds} {}", precision.as_str().unwrap())).unwrap();
    }
    (graph, seconds)
}

/// xxh3 of about a thousand rows spread over `base` (every row would take seconds at 1M).
fn fingerprint(base: ArrayView2<f32>) -> u64 {
    let step = (base.nrows() / 1000).max(1);
    let bytes: Vec<u8> = base
        .outer_iter()
        .step_by(step)
        .flatten()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    xxhash_rust::xxh3::xxh3_64(&bytes)
}

/// hnsw_rs's own search on its own structure (patched crate, f32, anndists DistDot): the
/// starting point, measured in the same run.
fn hnsw_rs_row(config: &Config, base: ArrayView2<f32>, queries: ArrayView2<f32>, truth: &[Vec<u32>]) -> Row {
    let started = Instant::now();
    let hnsw: Hnsw<f32, DistDot> = Hnsw::new(config.m, base.nrows(), 16, config.ef_construction, DistDot);
    let items: Vec<(&[f32], usize)> = base.outer_iter().map(|r| r.to_slice().unwrap()).zip(0..).collect();
    hnsw.parallel_insert_slice(&items);
    let build_s = started.elapsed().as_secs_f64();
    let sweep = sweep(&config.efs, queries.nrows(), truth, |ef, q| {
        hnsw.search(queries.row(q).as_slice().unwrap(), K, ef.max(K))
            .into_iter()
            .map(|n| n.d_id as u32)
            .collect()
    });
    Row {
        engine: "hnsw_rs search (patched, f32 DistDot)".into(),
        build_s,
        // Not measured: freed memory from the rows before stays in the allocator, so an RSS
        // difference would mean little here.
        memory_mib: 0.0,
        peak_rss_mib: peak_rss_mib(),
        sweep,
    }
}

fn print_table(rows: &[Row], n: usize, dims: usize, m: usize) {
    // Raw f32 vectors plus hnswlib-sized links (2M ids and a count per node at layer 0).
    let reference = mib(4 * n * dims + 4 * n * (2 * m + 1));
    println!("\n| engine | build s | index MiB (× raw+links) | ef | recall@10 | QPS 1 thread | QPS all threads |");
    println!("|---|---|---|---|---|---|---|");
    for row in rows {
        for (i, p) in row.sweep.iter().enumerate() {
            let head = if i == 0 {
                let memory = if row.memory_mib > 0.0 {
                    format!("{:.0} ({:.2}×)", row.memory_mib, row.memory_mib / reference)
                } else {
                    "-".into()
                };
                format!("{} | {:.1} | {memory}", row.engine, row.build_s)
            } else {
                " | | ".to_string()
            };
            println!(
                "| {head} | {} | {:.4} | {:.0} | {:.0} |",
                p.ef, p.recall, p.qps_1, p.qps_all
            );
        }
    }
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn status_kib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .unwrap_or(0.0)
}

fn peak_rss_mib() -> f64 {
    status_kib("VmHWM:") / 1024.0
}
