//! `themap index --vectors`: vectors computed by `themap embed` (elsewhere) become an index, and
//! vectors that do not fit the input are refused with the reason, leaving no index behind.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tempfile::TempDir;

use crate::cli::{fails, ok, s};

/// Five short dated documents on three subjects, as JSONL records (one document per line).
fn write_corpus(path: &Path, lines: &[(&str, &str)]) {
    let text: Vec<String> = lines
        .iter()
        .map(|(id, text)| serde_json::json!({"id": id, "text": text, "date": "2025-11-01"}).to_string())
        .collect();
    std::fs::write(path, text.join("\n") + "\n").unwrap();
}

const CORPUS: [(&str, &str); 5] = [
    (
        "tariffs",
        "美国对中国商品加征关税，贸易战再度升级。\n\n最高法院审理关税案，企业等待裁决。",
    ),
    (
        "dollar",
        "美元霸权正在衰落，多极货币秩序萌芽。\n\n金砖国家推动本币结算。",
    ),
    (
        "ai",
        "人工智能泡沫一旦破裂，科技巨头都将受到牵连。\n\n算力投资狂潮推高资本支出。",
    ),
    ("chips", "半导体出口管制收紧，芯片供应链重组。"),
    ("bonds", "美债收益率上升，避险资金流向黄金。"),
];

struct Setup {
    _tmp: TempDir,
    dir: PathBuf,
    corpus: PathBuf,
    vectors: PathBuf,
}

impl Setup {
    fn new() -> Self {
        let tmp = TempDir::new().unwrap();
        let dir = tmp.path().to_path_buf();
        let corpus = dir.join("corpus.jsonl");
        write_corpus(&corpus, &CORPUS);
        let vectors = dir.join("vectors.npy");
        ok(&["embed", "--split", s(&corpus), "-o", s(&vectors), "-q"]);
        Self {
            _tmp: tmp,
            dir,
            corpus,
            vectors,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Passage ids of `input` as `themap passages` splits it.
    fn passage_ids(&self, input: &Path) -> Vec<String> {
        ok(&["passages", s(input), "--json"])
            .lines()
            .map(|line| {
                serde_json::from_str::<Value>(line).unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    }

    /// Embeds `input` with extra arguments into `name`.npy.
    fn embed(&self, input: &Path, name: &str, extra: &[&str]) -> PathBuf {
        let out = self.path(&format!("{name}.npy"));
        let mut args = vec!["embed", s(input), "-o", s(&out), "-q"];
        args.extend_from_slice(extra);
        ok(&args);
        out
    }

    /// `themap index` of `input` from `vectors` must fail with exit code 2, naming `vectors` and
    /// saying `reason`, and leave no index.
    fn refused(&self, input: &Path, vectors: &Path, extra: &[&str], reason: &str) {
        let index = self.path("refused-index");
        let mut args = vec!["index", s(input), "--vectors", s(vectors), "--index", s(&index), "-q"];
        args.extend_from_slice(extra);
        let (code, err) = fails(&args);
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains(s(vectors)) || extra.iter().any(|a| err.contains(a)),
            "names the file: {err}"
        );
        assert!(err.contains(reason), "expected {reason:?} in: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(!index.join("manifest.json").exists(), "no index was written");
    }
}

fn hits(index: &Path, query: &str) -> Vec<(String, f64)> {
    let out: Value = serde_json::from_str(&ok(&[
        "search",
        query,
        "--index",
        s(index),
        "--json",
        "-k",
        "5",
        "--per-doc",
        "0",
    ]))
    .unwrap();
    out["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["id"].as_str().unwrap().to_string(), h["score"].as_f64().unwrap()))
        .collect()
}

#[test]
fn vectors_from_themap_embed_make_the_index_an_embedding_run_makes() {
    let setup = Setup::new();
    let meta: Value = serde_json::from_str(&std::fs::read_to_string(setup.path("vectors.meta.json")).unwrap()).unwrap();
    assert_eq!(meta["format"], "themap-vectors");
    assert_eq!(meta["prompt"], "document");
    let passages = setup.passage_ids(&setup.corpus).len();
    assert_eq!(meta["rows"], passages);

    let clustering = setup.embed(&setup.corpus, "clustering", &["--split", "--prompt", "clustering"]);
    let imported = setup.path("imported");
    let summary: Value = serde_json::from_str(&ok(&[
        "index",
        s(&setup.corpus),
        "--vectors",
        s(&setup.vectors),
        "--clustering-vectors",
        s(&clustering),
        "--index",
        s(&imported),
        "--json",
        "-q",
    ]))
    .unwrap();
    assert_eq!(summary["imported"], passages);
    assert_eq!(summary["embedded"], 0);

    let embedded = setup.path("embedded");
    ok(&["index", s(&setup.corpus), "--index", s(&embedded), "-q"]);
    for query in ["关税与贸易战", "dollar hegemony", "AI investment bubble"] {
        let (a, b) = (hits(&imported, query), hits(&embedded, query));
        assert_eq!(
            a.iter().map(|h| &h.0).collect::<Vec<_>>(),
            b.iter().map(|h| &h.0).collect::<Vec<_>>()
        );
        for (x, y) in a.iter().zip(&b) {
            assert!((x.1 - y.1).abs() < 1e-3, "{query}: {a:?} vs {b:?}");
        }
    }
    // The given clustering vectors serve themes directly.
    let themes: Value = serde_json::from_str(&ok(&[
        "themes",
        "--index",
        s(&imported),
        "--vectors",
        "clustering",
        "--k",
        "3",
        "--json",
        "-q",
    ]))
    .unwrap();
    let top = themes["themes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["level"] == 1)
        .count();
    assert_eq!(top, 3);
}

#[test]
fn vectors_that_do_not_fit_the_input_are_refused() {
    let setup = Setup::new();
    let corpus = &setup.corpus;
    let ids = setup.passage_ids(corpus);

    // Records embedded as they are, not split into passages as the index reads documents.
    let records = setup.embed(corpus, "records", &[]);
    setup.refused(corpus, &records, &[], "records as they are");
    // Another prompt, another size, another passage budget.
    let query = setup.embed(corpus, "query", &["--split", "--prompt", "query"]);
    setup.refused(corpus, &query, &[], "query prompt");
    let small = setup.embed(corpus, "small", &["--split", "--dims", "256"]);
    setup.refused(corpus, &small, &["--dims", "768"], "256 dimensions");
    let budget = setup.embed(corpus, "budget", &["--split", "--max-tokens", "64"]);
    setup.refused(corpus, &budget, &[], "at most 64 tokens");
    // Search vectors given where clustering vectors belong.
    setup.refused(
        corpus,
        &setup.vectors,
        &["--clustering-vectors", s(&setup.vectors)],
        "must be clustering",
    );

    // Other input: a document more, the same documents in another order, a text changed.
    let more = setup.path("more.jsonl");
    let mut lines = CORPUS.to_vec();
    lines.push(("extra", "黄金价格创新高。"));
    write_corpus(&more, &lines);
    let expected = format!("{} vectors for {} passages", ids.len(), ids.len() + 1);
    setup.refused(&more, &setup.vectors, &[], &expected);
    let reordered = setup.path("reordered.jsonl");
    let mut lines = CORPUS.to_vec();
    lines.swap(0, 1);
    write_corpus(&reordered, &lines);
    setup.refused(&reordered, &setup.vectors, &[], &format!("row 1 is {:?}", ids[0]));
    let edited = setup.path("edited.jsonl");
    let mut lines = CORPUS.to_vec();
    lines[3].1 = "半导体出口管制放松，芯片供应链重组。";
    write_corpus(&edited, &lines);
    setup.refused(&edited, &setup.vectors, &[], "texts differ");

    // Another model's vectors, a damaged row, no metadata.
    let meta_path = setup.path("vectors.meta.json");
    let original_meta = std::fs::read_to_string(&meta_path).unwrap();
    let mut meta: Value = serde_json::from_str(&original_meta).unwrap();
    meta["model"] = Value::from("0".repeat(64));
    std::fs::write(&meta_path, meta.to_string()).unwrap();
    setup.refused(corpus, &setup.vectors, &[], "made by model");
    std::fs::write(&meta_path, &original_meta).unwrap();
    let mut bytes = std::fs::read(&setup.vectors).unwrap();
    let row_two = 128 + 768 * 4;
    bytes[row_two..row_two + 64].copy_from_slice(&[0x41; 64]);
    let damaged = setup.path("damaged.npy");
    std::fs::write(&damaged, &bytes).unwrap();
    std::fs::copy(&meta_path, setup.path("damaged.meta.json")).unwrap();
    setup.refused(corpus, &damaged, &[], &format!("row 2 ({}) has length", ids[1]));
    std::fs::remove_file(setup.path("damaged.meta.json")).unwrap();
    setup.refused(corpus, &damaged, &[], "must come from `themap embed`");
}

/// The vectors in parts, as a cluster driver makes them: the passages (`themap passages --json`)
/// cut into records files, each embedded by one `themap embed --jobs` process; `--vectors` on
/// the folder gives the index a single run gives, byte for byte. A part made otherwise is refused.
#[test]
fn vectors_in_parts_make_the_index_one_run_makes() {
    let setup = Setup::new();
    let corpus = &setup.corpus;
    let single = setup.embed(corpus, "single", &["--split", "--window", "2"]);

    let passages = ok(&["passages", s(corpus), "--json"]);
    let lines: Vec<&str> = passages.lines().collect();
    assert!(lines.len() > 4, "several parts: {} passages", lines.len());
    let (inputs, parts) = (setup.path("shards"), setup.path("parts"));
    std::fs::create_dir_all(&inputs).unwrap();
    let mut jobs = String::new();
    for (i, chunk) in lines.chunks(4).enumerate() {
        let input = inputs.join(format!("{i:06}.jsonl"));
        std::fs::write(&input, chunk.join("\n") + "\n").unwrap();
        let job = serde_json::json!({"inputs": [input], "out": parts.join(format!("{i:06}.npy"))});
        jobs += &format!("{job}\n");
    }
    let jobs_file = setup.path("jobs.jsonl");
    std::fs::write(&jobs_file, jobs).unwrap();
    let answers = ok(&["embed", "--jobs", s(&jobs_file), "--window", "2", "-q"]);
    // The model loaded, then one answer per job.
    let ready: Value = serde_json::from_str(answers.lines().next().unwrap()).unwrap();
    assert_eq!(ready["ready"], true, "{answers}");
    assert_eq!(answers.lines().count(), 1 + lines.chunks(4).count(), "{answers}");

    let (whole, parted) = (setup.path("index-single"), setup.path("index-parts"));
    ok(&["index", s(corpus), "--vectors", s(&single), "--index", s(&whole), "-q"]);
    ok(&["index", s(corpus), "--vectors", s(&parts), "--index", s(&parted), "-q"]);
    for file in ["vectors-1.npy", "passages-1.jsonl", "documents-1.json"] {
        assert_eq!(
            std::fs::read(whole.join(file)).unwrap(),
            std::fs::read(parted.join(file)).unwrap(),
            "{file} differs"
        );
    }

    // One part made with another window (so other batches, other last bits) is named.
    let odd = parts.join("000001.npy");
    ok(&[
        "embed",
        s(&inputs.join("000001.jsonl")),
        "-o",
        s(&odd),
        "--window",
        "3",
        "--overwrite",
        "-q",
    ]);
    setup.refused(corpus, &parts, &[], "made with other settings than");
    // Parts that do not add up to the passages.
    std::fs::remove_file(&odd).unwrap();
    setup.refused(corpus, &parts, &[], "vectors for");
}
