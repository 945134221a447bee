//! The map layout harness: themap's UMAP on a `.npy` of unit vectors, timed, its 2-D positions
//! written as `.npy` so `scripts/layout_peers.py` scores them beside umap-learn, openTSNE and PCA
//! run on the same vectors (`scripts/bench-layout.sh` runs both).
//!
//! ```text
//! cargo bench --bench layout -- --vectors FILE.npy --out FILE.npy [--seed 42]
//! ```
//!
//! With `LAYOUT_KNN_ONLY=1` it also times the neighbour graph alone and prints its recall@15
//! against exact neighbours (every 50th row). Under `cargo test --benches` it lays out a small
//! seeded set, as a smoke test.

use std::path::PathBuf;
use std::time::Instant;

use themap::npy;
use themap::progress::Silent;
use themap::report::umap::umap;
#[path = "../tests/common/synthetic.rs"]
mod synthetic;

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let seed: u64 = value("--seed").map_or(Ok(42), |s| s.parse().map_err(|e| format!("--seed: {e}")))?;
    let (vectors, out) = match (value("--vectors"), value("--out")) {
        (Some(vectors), Some(out)) => {
            let file = std::fs::File::open(&vectors).map_err(|e| format!("{vectors}: {e}"))?;
            let vectors = npy::read_array(&mut std::io::BufReader::new(file))?;
            (vectors, Some(PathBuf::from(out)))
        }
        // The smoke test.
        _ => (synthetic::Clustered::new(64, seed).generate(1_000, 0).0, None),
    };
    if std::env::var_os("LAYOUT_KNN_ONLY").is_some() {
        let started = Instant::now();
        let graph = themap::index::descent::knn_graph(vectors.view(), 15, seed, &Silent);
        let seconds = started.elapsed().as_secs_f64();
        // Recall@15 against exact neighbours, on every 50th row.
        let (mut found, mut asked) = (0, 0);
        for i in (0..vectors.nrows()).step_by(50) {
            let mut exact: Vec<(f32, usize)> = (0..vectors.nrows())
                .filter(|&j| j != i)
                .map(|j| (-vectors.row(i).dot(&vectors.row(j)), j))
                .collect();
            exact.select_nth_unstable_by(15, |a, b| a.0.total_cmp(&b.0));
            found += exact[..15]
                .iter()
                .filter(|(_, j)| graph.of(i).0.contains(&(*j as u32)))
                .count();
            asked += 15;
        }
        eprintln!("knn {seconds:.2} s, recall@15 {:.4}", found as f64 / asked as f64);
    }
    let started = Instant::now();
    let xy = umap(vectors.view(), seed, &Silent);
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{{\"method\": \"themap\", \"n\": {}, \"seconds\": {seconds:.2}}}",
        vectors.nrows()
    );
    if let Some(out) = out {
        let mut file =
            std::io::BufWriter::new(std::fs::File::create(&out).map_err(|e| format!("{}: {e}", out.display()))?);
        npy::write_array(&mut file, &xy).map_err(|e| e.to_string())?;
    }
    Ok(())
}
