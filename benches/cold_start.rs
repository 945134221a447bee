//! Cold start of a lookup, in one process: opening an index in place (`MappedIndex::open`, what
//! `themap search` and `similar` do) and its first lookups, beside reading it whole and checking
//! every byte (`store::load`, what `themap index` and `themes` do). `scripts/bench-cold-start.sh`
//! makes a 1,000,000-passage index and runs this on it, then times the commands themselves.
//!
//! ```text
//! cargo bench --bench cold_start -- INDEX_DIR [PASSAGE_ID]
//! ```
//!
//! Under `cargo test --benches` (no arguments) it does nothing.

use std::path::PathBuf;
use std::time::Instant;

use themap::index::{store, Filter, Limits, MappedIndex};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let Some(dir) = args.first().map(PathBuf::from) else {
        return;
    };
    let id = args.get(1).cloned().unwrap_or_else(|| "doc0000042#3".into());
    let limits = Limits {
        k: 10,
        per_doc: None,
        ef: None,
        exact: false,
    };
    let mut rows: Vec<(String, f64, f64)> = Vec::new();
    let mut step = |label: &str, started: Instant| {
        rows.push((label.to_string(), started.elapsed().as_secs_f64(), peak_rss_mib()));
    };

    let started = Instant::now();
    let mapped = MappedIndex::open(&dir).expect("open the index in place");
    step("open in place (MappedIndex::open)", started);
    let started = Instant::now();
    let first = mapped
        .similar(&id, &limits, false, &Filter::default())
        .expect("first lookup");
    step("first lookup by passage id (graph, k 10)", started);
    let started = Instant::now();
    let second = mapped
        .similar(&first[3].passage.passage.id, &limits, false, &Filter::default())
        .expect("lookup");
    step("a second lookup, another passage", started);
    let started = Instant::now();
    let filter = Filter {
        since: Some("2025-06".into()),
        ..Filter::default()
    };
    mapped
        .similar(&second[5].passage.passage.id, &limits, true, &filter)
        .expect("lookup");
    step("a filtered lookup (--since, --other-docs)", started);
    drop(mapped);

    let started = Instant::now();
    let index = store::load(&dir).expect("read the index whole");
    step("read whole, every byte checked (store::load)", started);
    println!(
        "\n{} passages × {} dims in {}\n",
        index.passages.len(),
        index.model.dims,
        dir.display()
    );
    println!("| step | seconds | peak RSS MiB so far |\n|---|---|---|");
    for (label, seconds, rss) in rows {
        println!("| {label} | {seconds:.3} | {rss:.0} |");
    }
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}
