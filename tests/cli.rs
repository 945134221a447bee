//! The `themap` binary end to end, as a user runs it, in temporary directories.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;
use tempfile::TempDir;

use crate::common::model_dir;

pub fn themap(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_themap"))
        .args(args)
        .env("THEMAP_MODEL", model_dir())
        .env_remove("THEMAP_INDEX")
        .output()
        .expect("themap runs")
}

pub fn ok(args: &[&str]) -> String {
    let out = themap(args);
    assert!(
        out.status.success(),
        "themap {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Runs a command that must fail; returns (exit code, stderr).
pub fn fails(args: &[&str]) -> (i32, String) {
    let out = themap(args);
    assert!(!out.status.success(), "themap {args:?} should have failed");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data")
}

pub fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// A copy of the sample index (built once for all tests), to damage or update.
pub fn copy_of_sample_index(tmp: &TempDir) -> PathBuf {
    let index = tmp.path().join("index");
    std::fs::create_dir(&index).unwrap();
    for file in std::fs::read_dir(sample_index()).unwrap() {
        let file = file.unwrap();
        std::fs::copy(file.path(), index.join(file.file_name())).unwrap();
    }
    index
}

/// Every file of a directory with its bytes.
pub fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|f| f.unwrap())
        .map(|f| {
            (
                f.file_name().to_string_lossy().into_owned(),
                std::fs::read(f.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

/// The sample corpus indexed once for all tests (embedding it takes a minute on CPU).
pub fn sample_index_path() -> &'static Path {
    sample_index()
}

fn sample_index() -> &'static Path {
    static INDEX: OnceLock<(TempDir, PathBuf)> = OnceLock::new();
    let (_, dir) = INDEX.get_or_init(|| {
        let tmp = TempDir::new().unwrap();
        let dir = tmp.path().join("index");
        ok(&["index", s(&data_dir()), "--index", s(&dir), "-q"]);
        // Fill the clustering-vector cache now, so concurrent tests only read the index.
        ok(&["themes", "--index", s(&dir), "-q"]);
        (tmp, dir)
    });
    dir
}

fn search(query: &str, k: usize) -> Vec<Value> {
    let out = ok(&[
        "search",
        query,
        "-k",
        &k.to_string(),
        "--index",
        s(sample_index()),
        "--json",
    ]);
    let json: Value = serde_json::from_str(&out).unwrap();
    json["hits"].as_array().unwrap().clone()
}

fn doc_prefix(hit: &Value) -> &str {
    &hit["doc_id"].as_str().unwrap()[..3]
}

#[test]
fn tariff_query_finds_tariff_passages_across_documents() {
    let hits = search("美国关税与最高法院", 5);
    assert_eq!(hits.len(), 5);
    for hit in &hits {
        let text = hit["text"].as_str().unwrap();
        assert!(
            text.contains("关税") || text.contains("關稅"),
            "not about tariffs: {text}"
        );
    }
    let docs: Vec<&str> = hits.iter().map(doc_prefix).collect();
    assert!(docs.contains(&"000"), "{docs:?}");
    assert!(docs.contains(&"003") || docs.contains(&"004"), "{docs:?}");
}

#[test]
fn english_query_finds_chinese_dollar_passages() {
    let hits = search("dollar hegemony", 10);
    let docs: Vec<&str> = hits.iter().map(doc_prefix).collect();
    assert!(docs.contains(&"001") && docs.contains(&"004"), "{docs:?}");
    for hit in &hits[..5] {
        let text = hit["text"].as_str().unwrap();
        assert!(
            text.contains("美元") || text.contains("dollar"),
            "not about the dollar: {text}"
        );
    }
}

#[test]
fn hits_carry_position_and_metadata() {
    let hit = &search("川普关税政策面临最高法院挑战", 1)[0];
    assert_eq!(doc_prefix(hit), "000");
    assert_eq!(hit["date"], "2025-11-03");
    assert!(hit["line"].as_u64().unwrap() > 1);
    let (start, end) = (hit["char_start"].as_u64().unwrap(), hit["char_end"].as_u64().unwrap());
    assert!(start < end);
    // The offsets point at the passage in the file.
    let file: Vec<char> = std::fs::read_to_string(hit["path"].as_str().unwrap())
        .unwrap()
        .chars()
        .collect();
    let span: String = file[start as usize..end as usize].iter().collect();
    assert!(span.contains("最高法院"), "{span}");
}

/// `--queries FILE`: the model and index load once; each query gets what a search of its own
/// gives, in order, one JSON object per line; blank lines are skipped; an empty file is refused.
#[test]
fn a_file_of_queries_answers_each_as_a_search_would() {
    let tmp = TempDir::new().unwrap();
    let queries = ["dollar hegemony", "", "美国关税与最高法院", "人工智能泡沫"];
    let file = tmp.path().join("queries.txt");
    std::fs::write(&file, queries.join("\n") + "\n").unwrap();
    let out = ok(&[
        "search",
        "--queries",
        s(&file),
        "-k",
        "3",
        "--index",
        s(sample_index()),
        "--json",
    ]);
    let lines: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let asked: Vec<&str> = queries.iter().copied().filter(|q| !q.is_empty()).collect();
    assert_eq!(lines.len(), asked.len());
    for (line, query) in lines.iter().zip(&asked) {
        assert_eq!(line["query"], *query);
        let ids = |hits: &[Value]| {
            hits.iter()
                .map(|h| h["id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(line["hits"].as_array().unwrap()), ids(&search(query, 3)), "{query}");
    }
    let text = ok(&["search", "--queries", s(&file), "-k", "1", "--index", s(sample_index())]);
    assert_eq!(
        text.matches("\n== ").count() + usize::from(text.starts_with("== ")),
        asked.len(),
        "{text}"
    );

    std::fs::write(&file, "\n  \n").unwrap();
    let (code, err) = fails(&["search", "--queries", s(&file), "--index", s(sample_index())]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("holds no query"), "{err}");
    let (code, err) = fails(&["search", "tariffs", "--queries", s(&file), "--index", s(sample_index())]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn similar_passages_from_other_documents() {
    let first = &search("dollar hegemony", 1)[0];
    let id = first["id"].as_str().unwrap();
    let out = ok(&[
        "similar",
        id,
        "--other-docs",
        "-k",
        "5",
        "--index",
        s(sample_index()),
        "--json",
    ]);
    let hits: Value = serde_json::from_str(&out).unwrap();
    let hits = hits["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 5);
    assert!(hits.iter().all(|h| h["doc_id"] != first["doc_id"]));
    let (code, err) = fails(&["similar", "no-such-passage#1", "--index", s(sample_index())]);
    assert_eq!(code, 1);
    assert!(err.contains("no passage with id"), "{err}");
}

#[test]
fn forum_furniture_is_not_a_passage() {
    let out = ok(&[
        "passages",
        s(&data_dir().join("001_3e4df89d6a5f2c88.txt")),
        "--json",
        "-q",
    ]);
    assert!(out.lines().count() > 50);
    for furniture in [
        "登录",
        "返回顶端",
        "printer-friendly",
        "加入时间",
        "不能在本论坛",
        "phpbb",
        "论坛转跳",
    ] {
        assert!(!out.contains(furniture), "menu text {furniture:?} became a passage");
    }
}

#[test]
fn reindexing_reuses_vectors_of_unchanged_passages() {
    let tmp = TempDir::new().unwrap();
    let docs = tmp.path().join("docs");
    std::fs::create_dir(&docs).unwrap();
    for name in ["000_141982620089a88c.txt", "002_e81e739ff95e68b4.txt"] {
        std::fs::copy(data_dir().join(name), docs.join(name)).unwrap();
    }
    let index = tmp.path().join("index");
    let first: Value = serde_json::from_str(&ok(&[
        "index",
        s(&docs),
        "--index",
        s(&index),
        "--json",
        "-q",
        "--dtype",
        "f32",
    ]))
    .unwrap();
    assert_eq!(first["reused"], 0);
    let dtypes = || {
        let manifest: Value =
            serde_json::from_str(&std::fs::read_to_string(index.join("manifest.json")).unwrap()).unwrap();
        manifest["model"]["dtypes"].clone()
    };
    assert_eq!(dtypes(), serde_json::json!(["f32"]));

    std::fs::write(docs.join("new.md"), "---\ntitle: 新文章\ndate: 2026-02-01\ntags: [tariffs]\n---\n# 关税\n\n美国最高法院对关税案作出裁决，市场随之波动，投资者重新评估贸易战的前景。\n").unwrap();
    // Vectors of another format (bf16 where the CPU has AVX-512 BF16) are reused beside f32 ones:
    // they agree to cosine 0.999; the manifest records both formats.
    let (format, expected) = if themap::embed::kernels::bf16_supported() {
        ("bf16", serde_json::json!(["f32", "bf16"]))
    } else {
        ("f32", serde_json::json!(["f32"]))
    };
    // No paths: the sources recorded in the index are read again.
    let second: Value =
        serde_json::from_str(&ok(&["index", "--index", s(&index), "--json", "-q", "--dtype", format])).unwrap();
    assert_eq!(second["embedded"], 1, "{second}");
    assert_eq!(second["reused"], first["passages"], "{second}");
    assert_eq!(dtypes(), expected);
    let hits = ok(&["search", "最高法院裁决关税", "-k", "1", "--index", s(&index), "--json"]);
    assert!(hits.contains("new#1") && hits.contains("2026-02-01"), "{hits}");
}

#[test]
fn encodings_are_detected_named_or_refused() {
    let tmp = TempDir::new().unwrap();
    let text = "美國對中國商品加徵關稅，貿易戰升級。川普的關稅政策面臨最高法院的挑戰，市場正在等待判決。";
    let (gb, _, _) = encoding_rs::GB18030.encode(text);
    let (big5, _, _) = encoding_rs::BIG5.encode(text);
    std::fs::write(tmp.path().join("gb.txt"), &gb).unwrap();
    std::fs::write(tmp.path().join("big5.txt"), &big5).unwrap();
    std::fs::write(
        tmp.path().join("image.txt"),
        [0x89, b'P', b'N', b'G', 0, 0, 0, 13, 0, 0],
    )
    .unwrap();

    let out = themap(&["passages", s(tmp.path()), "--json"]);
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.matches(text).count(), 2, "both files decoded: {stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("image.txt") && stderr.contains("binary"), "{stderr}");

    // Named explicitly: Big5 is read as Big5; Big5 bytes read as UTF-8 do not decode, and the
    // file is named while the readable file is still read.
    let out = ok(&[
        "passages",
        s(&tmp.path().join("big5.txt")),
        "--encoding",
        "big5",
        "--json",
    ]);
    assert!(out.contains(text), "{out}");
    std::fs::write(tmp.path().join("plain.txt"), text).unwrap();
    let out = themap(&[
        "passages",
        s(&tmp.path().join("big5.txt")),
        s(&tmp.path().join("plain.txt")),
        "--encoding",
        "utf-8",
        "--json",
    ]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap().matches(text).count(), 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("big5.txt") && stderr.contains("cannot be decoded as UTF-8"),
        "{stderr}"
    );
}

#[test]
fn bad_input_gets_one_clear_error_and_damages_nothing() {
    let tmp = TempDir::new().unwrap();
    let index = copy_of_sample_index(&tmp);
    let before = snapshot(&index);

    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let (code, err) = fails(&["index", s(&empty), "--index", s(&index)]);
    assert_eq!(code, 1);
    assert!(err.contains("no passages found"), "{err}");

    std::fs::write(empty.join("data.txt"), [0u8, 159, 146, 150, 0, 1, 2]).unwrap();
    let (_, err) = fails(&["index", s(&empty), "--index", s(&index)]);
    assert!(
        err.contains("data.txt") && err.contains("binary") && err.contains("no passages found"),
        "{err}"
    );

    let (_, err) = fails(&[
        "index",
        s(&data_dir()),
        "--index",
        s(&index),
        "--model",
        s(&tmp.path().join("no-model")),
    ]);
    assert!(err.contains("scripts/fetch-model.sh"), "{err}");

    let (code, err) = fails(&["index", s(&data_dir()), "--index", s(&index), "--dims", "300"]);
    assert_eq!(code, 2);
    assert!(err.contains("768"), "{err}");

    let (code, err) = fails(&["search", "x", "--no-such-flag"]);
    assert_eq!(code, 2);
    assert!(err.contains("--no-such-flag"), "{err}");

    assert_eq!(snapshot(&index), before, "a failed command changed the index");
    ok(&["search", "关税", "-k", "1", "--index", s(&index)]);

    let (_, err) = fails(&["search", "关税", "--index", s(&tmp.path().join("nowhere"))]);
    assert!(err.contains("no index at") && err.contains("themap index"), "{err}");

    // A truncated manifest or data file is reported by name, with the fix.
    let manifest = index.join("manifest.json");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, &text[..text.len() / 2]).unwrap();
    let (_, err) = fails(&["search", "关税", "--index", s(&index)]);
    assert!(
        err.contains("manifest.json") && err.contains("damaged") && err.contains("--rebuild"),
        "{err}"
    );
    std::fs::write(&manifest, &text).unwrap();
    let vectors = std::fs::read_dir(&index)
        .unwrap()
        .map(|f| f.unwrap().path())
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("vectors-") && !name.contains("clustering")
        })
        .unwrap();
    let bytes = std::fs::read(&vectors).unwrap();
    std::fs::write(&vectors, &bytes[..bytes.len() - 100]).unwrap();
    let (_, err) = fails(&["search", "关税", "--index", s(&index)]);
    assert!(err.contains(".npy") && err.contains("damaged"), "{err}");

    // The fix the message names works on the damaged index.
    let small = tmp.path().join("small");
    std::fs::create_dir(&small).unwrap();
    std::fs::copy(data_dir().join("002_e81e739ff95e68b4.txt"), small.join("002.txt")).unwrap();
    ok(&["index", "--rebuild", s(&small), "--index", s(&index), "-q"]);
    ok(&["search", "关税", "-k", "1", "--index", s(&index)]);
}

fn themes_json(extra: &[&str]) -> Value {
    let mut args = vec!["themes", "--json", "--index", s(sample_index())];
    args.extend_from_slice(extra);
    serde_json::from_str(&ok(&args)).unwrap()
}

fn keywords(theme: &Value) -> Vec<String> {
    theme["keywords"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["word"].as_str().unwrap().to_string())
        .collect()
}

/// The index of the first theme whose keywords contain one of `any`, and of `all_of` too.
fn theme_with(themes: &[Value], any: &[&str], also: &[&str]) -> Option<usize> {
    themes.iter().position(|t| {
        let words = keywords(t);
        any.iter().any(|w| words.iter().any(|k| k == w)) && also.iter().all(|w| words.iter().any(|k| k == w))
    })
}

#[test]
fn themes_separate_tariffs_dollar_and_ai_and_repeat_exactly() {
    let map = themes_json(&[]);
    let themes = map["themes"].as_array().unwrap();
    let top = themes.iter().filter(|t| t["level"] == 1).count();
    assert!((3..=20).contains(&top), "{top} top-level themes");
    let all: Vec<Vec<String>> = themes.iter().map(keywords).collect();
    let tariffs = theme_with(themes, &["关税", "關稅"], &[]).unwrap_or_else(|| panic!("no tariff theme: {all:?}"));
    let dollar = theme_with(themes, &["霸权", "霸權", "金砖", "秩序", "多极", "美債"], &["美元"])
        .unwrap_or_else(|| panic!("no dollar theme: {all:?}"));
    let ai = theme_with(themes, &["算力", "AI", "資本", "资本", "泡沫"], &[])
        .unwrap_or_else(|| panic!("no AI theme: {all:?}"));
    assert!(tariffs != dollar && dollar != ai && ai != tariffs, "{all:?}");
    // No two themes of a level share a label.
    let mut labels: Vec<(u64, &str)> = themes
        .iter()
        .map(|t| (t["level"].as_u64().unwrap(), t["label"].as_str().unwrap()))
        .collect();
    labels.sort_unstable();
    assert!(labels.windows(2).all(|w| w[0] != w[1]), "{labels:?}");
    // Every passage has a theme; outliers are flagged, not dropped.
    let tmp = TempDir::new().unwrap();
    let assignments = tmp.path().join("assignments.tsv");
    ok(&[
        "themes",
        "--index",
        s(sample_index()),
        "--assignments",
        s(&assignments),
        "-q",
    ]);
    let lines: Vec<String> = std::fs::read_to_string(&assignments)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(lines[0], "id\ttheme\tpath\tconfidence\toutlier\tshort\ttheme_id");
    assert_eq!(lines.len() - 1, map["passages"].as_u64().unwrap() as usize);
    let paths: Vec<&str> = themes.iter().map(|t| t["path"].as_str().unwrap()).collect();
    assert!(lines[1..].iter().all(|l| {
        let fields: Vec<&str> = l.split('\t').collect();
        let theme: usize = fields[1].parse().unwrap();
        (1..=top).contains(&theme) && paths.contains(&fields[2]) && fields[2].split('.').next() == Some(fields[1])
    }));
    // Every passage counted once at the top level: in a theme's size, or as a short line.
    let top_level = themes.iter().filter(|t| t["level"] == 1);
    assert_eq!(
        top_level
            .map(|t| t["size"].as_u64().unwrap() + t["short"].as_u64().unwrap())
            .sum::<u64>(),
        map["passages"].as_u64().unwrap()
    );
    assert_eq!(themes_json(&[]), map, "the same command gave different themes");
}

#[test]
fn english_theme_names_find_chinese_passages() {
    let map = themes_json(&[
        "--theme",
        "AI bubble",
        "--theme",
        "dollar hegemony",
        "--theme",
        "tariffs",
    ]);
    let all = map["themes"].as_array().unwrap();
    // Named themes lead the top level (their sub-themes follow each in the list).
    let themes: Vec<&Value> = all.iter().filter(|t| t["level"] == 1).collect();
    assert!(themes.len() > 3, "passages that fit no named theme form further themes");
    // A named theme's keywords say its name in the documents' words, and the passages shown
    // for it are those that answer the name best: most of them say it too.
    let check = |i: usize, name: &str, words: &[&str]| {
        assert_eq!(themes[i]["label"], name);
        let keywords = keywords(themes[i]);
        assert!(
            words.iter().any(|w| keywords.iter().any(|k| k == w)),
            "{name}: {keywords:?}"
        );
        let shown: Vec<&str> = themes[i]["representatives"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["text"].as_str().unwrap())
            .collect();
        let saying = shown
            .iter()
            .filter(|text| words.iter().any(|w| text.contains(w)))
            .count();
        assert!(saying * 2 > shown.len(), "{name}: {shown:?}");
    };
    check(0, "AI bubble", &["AI", "算力", "人工智能", "科技"]);
    check(1, "dollar hegemony", &["美元", "霸权", "霸權"]);
    check(2, "tariffs", &["关税", "關稅"]);
}

#[test]
fn report_writes_its_files() {
    let tmp = TempDir::new().unwrap();
    let out = tmp.path().join("report");
    let stdout = ok(&["report", "--out", s(&out), "--index", s(sample_index())]);
    assert!(stdout.contains("index.html"));
    let json: Value = serde_json::from_str(&std::fs::read_to_string(out.join("themes.json")).unwrap()).unwrap();
    let md = std::fs::read_to_string(out.join("themes.md")).unwrap();
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    for theme in json["themes"].as_array().unwrap() {
        let label = theme["label"].as_str().unwrap();
        assert!(md.contains(label), "{label} missing from themes.md");
    }
    let passages = json["passages"].as_u64().unwrap() as usize;
    assert!(html.contains(r#"<script id="map-meta" type="application/json">{"columns":"#));
    assert!(
        html.contains(&format!(r#""n":{passages},"#)),
        "the map holds every passage"
    );
    // Every passage's theme and place on the map, for other tools.
    let tsv = std::fs::read_to_string(out.join("assignments.tsv")).unwrap();
    let mut lines = tsv.lines();
    assert_eq!(
        lines.next(),
        Some("id\ttheme\tpath\tconfidence\toutlier\tshort\ttheme_id\tx\ty")
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows.len(), passages);
    for row in &rows {
        let x: f32 = row[7].parse().unwrap();
        assert!(row.len() == 9 && (-1.0..=1.0).contains(&x), "{row:?}");
    }
    assert!(
        !out.join(themap::report::html::DATA_FILE).exists(),
        "a small map stays inside the page"
    );
}

/// Ids of `themap search QUERY ARGS... --json` on the sample index.
fn search_ids(query: &str, args: &[&str]) -> Vec<(String, String)> {
    let mut all = vec!["search", query, "--index", s(sample_index()), "--json"];
    all.extend_from_slice(args);
    let json: Value = serde_json::from_str(&ok(&all)).unwrap();
    json["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["id"].as_str().unwrap().to_string(),
                h["doc_id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn graph_search_agrees_with_exact_search() {
    // The sample is small enough to be scanned by default; --ef forces the graph.
    for query in ["美国关税与最高法院", "AI bubble", "美元霸權"] {
        let exact = search_ids(query, &["-k", "8", "--per-doc", "0", "--exact"]);
        let graph = search_ids(query, &["-k", "8", "--per-doc", "0", "--ef", "128"]);
        assert_eq!(graph, exact, "{query}");
    }
    let (code, err) = fails(&["search", "x", "--ef", "0", "--index", s(sample_index())]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn filters_by_document_date_and_tag() {
    for method in [&["--exact"][..], &["--ef", "64"][..]] {
        let only = |extra: &[&str]| {
            let mut args = vec!["-k", "6"];
            args.extend_from_slice(method);
            args.extend_from_slice(extra);
            search_ids("关税与贸易战", &args)
        };
        let hits = only(&["--doc", "000_141982620089a88c"]);
        assert_eq!(hits.len(), 3, "per-doc cap of 3 applies within the filter: {hits:?}");
        assert!(hits.iter().all(|(_, doc)| doc == "000_141982620089a88c"), "{hits:?}");
        // By file name too, and --per-doc 0 lifts the cap.
        let hits = only(&["--doc", "000_141982620089a88c.txt", "--per-doc", "0"]);
        assert_eq!(hits.len(), 6);
        // 002 is dated 2026-01-21, 000 2025-11-03; 003 and 004 have no date.
        let hits = only(&["--since", "2026"]);
        assert!(
            !hits.is_empty() && hits.iter().all(|(_, doc)| doc.starts_with("002")),
            "{hits:?}"
        );
        let hits = only(&["--until", "2025-11"]);
        assert!(
            hits.iter()
                .all(|(_, doc)| doc.starts_with("000") || doc.starts_with("001")),
            "{hits:?}"
        );
        let hits = only(&["--tag", "semiconductor-industry"]);
        assert!(
            !hits.is_empty() && hits.iter().all(|(_, doc)| doc.starts_with("002")),
            "{hits:?}"
        );
    }
    // An unknown tag is a mistake to report, as an unknown document is, not "no results".
    let (code, err) = fails(&["search", "x", "--tag", "no-such-tag", "--index", s(sample_index())]);
    assert_eq!(code, 2);
    assert!(err.contains("no document tagged \"no-such-tag\""), "{err}");
    let (code, err) = fails(&["search", "x", "--doc", "nope", "--index", s(sample_index())]);
    assert_eq!(code, 2);
    assert!(err.contains("no document \"nope\""), "{err}");
    let (code, err) = fails(&["search", "x", "--since", "2025/11", "--index", s(sample_index())]);
    assert_eq!(code, 2);
    assert!(err.contains("YYYY-MM-DD"), "{err}");
}

#[test]
fn similar_by_graph_and_with_filters() {
    let id = "001_3e4df89d6a5f2c88#18";
    let run = |extra: &[&str]| -> Vec<String> {
        let mut args = vec!["similar", id, "-k", "5", "--index", s(sample_index()), "--json"];
        args.extend_from_slice(extra);
        let json: Value = serde_json::from_str(&ok(&args)).unwrap();
        json["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["id"].as_str().unwrap().to_string())
            .collect()
    };
    let exact = run(&["--exact", "--other-docs"]);
    assert_eq!(run(&["--ef", "128", "--other-docs"]), exact);
    assert!(exact.iter().all(|h| !h.starts_with("001_")));
    let in_004 = run(&["--doc", "004_cf369c94da936a8a"]);
    assert!(
        !in_004.is_empty() && in_004.iter().all(|h| h.starts_with("004_")),
        "{in_004:?}"
    );
}

#[test]
fn a_damaged_graph_is_reported_and_compaction_repairs_it() {
    let tmp = TempDir::new().unwrap();
    let docs = tmp.path().join("docs");
    std::fs::create_dir(&docs).unwrap();
    std::fs::copy(data_dir().join("002_e81e739ff95e68b4.txt"), docs.join("a.txt")).unwrap();
    let index = tmp.path().join("index");
    let built: Value = serde_json::from_str(&ok(&["index", s(&docs), "--index", s(&index), "--json", "-q"])).unwrap();
    assert_eq!(built["graph_added"], built["passages"]);

    // Removing the document's file empties nothing yet: add a second, then drop the first.
    std::fs::copy(data_dir().join("000_141982620089a88c.txt"), docs.join("b.txt")).unwrap();
    std::fs::remove_file(docs.join("a.txt")).unwrap();
    let updated: Value = serde_json::from_str(&ok(&["index", "--index", s(&index), "--json", "-q"])).unwrap();
    assert_eq!(updated["embedded"], updated["passages"]);
    let hits = ok(&[
        "search",
        "半导体",
        "--ef",
        "64",
        "-k",
        "20",
        "--per-doc",
        "0",
        "--index",
        s(&index),
        "--json",
    ]);
    assert!(
        !hits.contains("\"a#") && hits.contains("\"b#"),
        "removed passages must not appear: {hits}"
    );

    // Damage the graph file: search names it and the fix; --compact repairs it.
    let manifest: Value = serde_json::from_str(&std::fs::read_to_string(index.join("manifest.json")).unwrap()).unwrap();
    let graph = index.join(manifest["graph"]["file"]["name"].as_str().unwrap());
    let mut bytes = std::fs::read(&graph).unwrap();
    bytes[0] ^= 0xff;
    std::fs::write(&graph, &bytes).unwrap();
    let (code, err) = fails(&["search", "半导体", "--index", s(&index)]);
    assert_eq!(code, 1);
    assert!(
        err.contains("search graph") && err.contains("themap index --compact"),
        "{err}"
    );
    let repaired: Value =
        serde_json::from_str(&ok(&["index", "--compact", "--index", s(&index), "--json", "-q"])).unwrap();
    assert_eq!(repaired["embedded"], 0);
    assert_eq!(repaired["graph_added"], repaired["passages"]);
    ok(&["search", "半导体", "--ef", "32", "--index", s(&index)]);
}

/// `themap themes --json` on `index` with `extra` arguments.
fn themes_of(index: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["themes", "--json", "-q", "--index", s(index)];
    args.extend_from_slice(extra);
    serde_json::from_str(&ok(&args)).unwrap()
}

/// `themes --json` with every passage's deepest theme id (from `--assignments`).
fn themes_with_ids(index: &Path, file: &Path) -> (Value, std::collections::HashMap<String, String>) {
    let map = themes_of(index, &["--assignments", s(file)]);
    let ids = std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0].to_string(), f[6].to_string())
        })
        .collect();
    (map, ids)
}

#[test]
fn themes_keep_their_ids_as_documents_arrive_and_a_refit_says_how_they_map() {
    let tmp = TempDir::new().unwrap();
    // The sample index without its theme model, holding three of the five documents first.
    let index = copy_of_sample_index(&tmp);
    let manifest = index.join("manifest.json");
    let mut m: Value = serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    m["files"].as_object_mut().unwrap().remove("themes");
    std::fs::write(&manifest, serde_json::to_string_pretty(&m).unwrap()).unwrap();
    let names: Vec<PathBuf> = std::fs::read_dir(data_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let mut names = names;
    names.sort();
    let first: Vec<&str> = names[..3].iter().map(|p| s(p)).collect();
    let all: Vec<&str> = names.iter().map(|p| s(p)).collect();
    let mut args = vec!["index", "-q", "--index", s(&index)];
    args.extend(&first);
    ok(&args);
    let (before, old) = themes_with_ids(&index, &tmp.path().join("before.tsv"));
    assert_eq!(before["fit"]["kind"], "first");
    let old_max = before["themes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["stable_id"].as_u64().unwrap())
        .max()
        .unwrap();

    // Two documents arrive: passages already fitted keep their theme, ids of new themes are new.
    let mut args = vec!["index", "-q", "--index", s(&index)];
    args.extend(&all);
    ok(&args);
    let (after, now) = themes_with_ids(&index, &tmp.path().join("after.tsv"));
    assert_eq!(after["fit"]["kind"], "update");
    let added = after["passages"].as_u64().unwrap() - before["passages"].as_u64().unwrap();
    assert_eq!(after["fit"]["new_passages"].as_u64().unwrap(), added);
    for (passage, id) in &old {
        assert_eq!(&now[passage], id, "{passage} changed theme");
    }
    let themes = after["themes"].as_array().unwrap();
    let new: Vec<&Value> = themes
        .iter()
        .filter(|t| t["stable_id"].as_u64().unwrap() > old_max)
        .collect();
    for t in &new {
        assert_eq!(t["new"], true, "{t}");
        assert_eq!(t["first_seen"]["update"], 2);
    }
    let changes = after["changes"].as_array().unwrap();
    assert_eq!(changes.len(), new.len(), "{changes:?}");
    // Nothing new: the same themes again, the kept model untouched.
    let model_files = || {
        snapshot(&index)
            .into_iter()
            .filter(|(n, _)| n.starts_with("theme"))
            .collect::<Vec<_>>()
    };
    let kept = model_files();
    let mut again = themes_of(&index, &[]);
    assert_eq!(again["fit"]["new_passages"], 0);
    again["fit"]["new_passages"] = after["fit"]["new_passages"].clone();
    assert_eq!(again, after);
    assert_eq!(model_files(), kept);
    // Exploring with other settings leaves the kept model as it is.
    let other = themes_of(&index, &["--k", "3"]);
    assert_eq!(other["fit"]["kind"], "refit");
    assert_eq!(model_files(), kept);
    // --since marks the themes first dated on or after it.
    let since = themes_of(&index, &["--since", "2026-01"]);
    for t in since["themes"].as_array().unwrap() {
        let dated_after = t["first_seen"]["date"].as_str().is_some_and(|d| d >= "2026-01");
        assert_eq!(t["new"].as_bool().unwrap(), dated_after, "{t}");
    }
    // A refit from scratch keeps matching themes' ids and records what became of the others.
    let refit = themes_of(&index, &["--refit"]);
    assert_eq!(refit["fit"]["kind"], "refit");
    let kept_ids: std::collections::HashSet<u64> = themes.iter().map(|t| t["stable_id"].as_u64().unwrap()).collect();
    let next = kept_ids.iter().max().unwrap();
    for t in refit["themes"].as_array().unwrap() {
        let id = t["stable_id"].as_u64().unwrap();
        assert!(kept_ids.contains(&id) || id > *next, "id {id} reused");
    }
    assert_ne!(model_files(), kept, "a refit is kept");
    let text = ok(&["themes", "--index", s(&index), "--depth", "1"]);
    assert!(
        text.contains("Theme model: update 3 of the kept themes, 0 new passages placed"),
        "{text}"
    );
}
