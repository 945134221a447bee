//! The `themap` binary used carelessly or with hostile input: concurrent writers, damaged index
//! files, huge lines, bad bytes, bad arguments. Each case once lost data or gave a wrong answer
//! with exit 0; each must now either work or say why, and leave the index as it was.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use tempfile::TempDir;

use crate::cli::{copy_of_sample_index, data_dir, fails, ok, s, sample_index_path, snapshot, themap};
use crate::common::model_dir;

/// Runs a command that must succeed; returns (stdout, stderr).
fn ok_with_log(args: &[&str]) -> (String, String) {
    let out = themap(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "themap {args:?} failed:\n{stderr}");
    (String::from_utf8(out.stdout).expect("utf-8 output"), stderr)
}

fn data_file(name: &str) -> PathBuf {
    data_dir().join(name)
}

fn manifest(index: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(index.join("manifest.json")).unwrap()).unwrap()
}

fn document_ids(index: &Path) -> Vec<String> {
    let name = manifest(index)["files"]["documents"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let documents: Value = serde_json::from_str(&std::fs::read_to_string(index.join(name)).unwrap()).unwrap();
    let mut ids: Vec<String> = documents
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

/// Two `themap index` runs at a time on one index, each adding a file of its own, started a
/// random moment apart in a random order, round after round (THEMAP_STRESS_ROUNDS, 8 by
/// default; 50 for the figure in the notes). One waits for the lock, the other does not: it
/// either commits or says the index is busy. After every round the index holds every file
/// added so far and searches.
#[test]
fn concurrent_index_runs_lose_no_update() {
    use rand::{Rng, SeedableRng};
    let rounds: usize = std::env::var("THEMAP_STRESS_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(8);
    let tmp = TempDir::new().unwrap();
    let index = tmp.path().join("index");
    // A folder of copies of one sample file: after the first run, nothing new to embed.
    let docs = tmp.path().join("docs");
    std::fs::create_dir(&docs).unwrap();
    let source = data_file("002_e81e739ff95e68b4.txt");
    std::fs::copy(&source, docs.join("base.txt")).unwrap();
    ok(&["index", s(&docs), "--index", s(&index), "-q"]);
    let mut rng = rand::rngs::StdRng::seed_from_u64(13);
    let (mut busy, mut committed) = (0, 0);
    for round in 0..rounds {
        // A run takes about 1.5 s: the second starts while the first runs, or after it ended.
        let delay = std::time::Duration::from_millis(rng.gen_range(0..2500));
        let waiting_first: bool = rng.gen();
        let (a, b) = (docs.join(format!("a{round}.txt")), docs.join(format!("b{round}.txt")));
        let index_run = |file: &Path, wait: bool| {
            std::fs::copy(&source, file).unwrap();
            let mut args = vec!["index", "--index", s(&index), "-q"];
            if wait {
                args.push("--wait");
            }
            themap(&args)
        };
        let (waiting, not_waiting) = std::thread::scope(|scope| {
            let (early, late) = if waiting_first {
                ((&a, true), (&b, false))
            } else {
                ((&b, false), (&a, true))
            };
            let early = scope.spawn(move || index_run(early.0, early.1));
            std::thread::sleep(delay);
            let late = scope.spawn(move || index_run(late.0, late.1));
            let (early, late) = (early.join().unwrap(), late.join().unwrap());
            if waiting_first {
                (early, late)
            } else {
                (late, early)
            }
        });
        assert!(waiting.status.success(), "{}", String::from_utf8_lossy(&waiting.stderr));
        committed += 1;
        if not_waiting.status.success() {
            committed += 1;
        } else {
            let err = String::from_utf8_lossy(&not_waiting.stderr);
            assert!(
                err.contains("writer.lock") && err.contains("--wait"),
                "round {round}: {err}"
            );
            busy += 1;
            // A file added while a run read the folder is picked up by the next run.
            ok(&["index", "--index", s(&index), "-q", "--wait"]);
        }
        let ids = document_ids(&index);
        for added in [&a, &b] {
            let id = added.file_stem().unwrap().to_string_lossy().into_owned();
            assert!(ids.contains(&id), "round {round}: {id} lost; index holds {ids:?}");
        }
        ok(&["search", "半导体", "-k", "1", "--index", s(&index)]);
    }
    eprintln!("{rounds} rounds: {committed} runs committed, {busy} told the index was busy");
}

/// A damaged vector, graph table or passages file is an error naming the file and the fix; no
/// command carries the damage forward; the fix named works.
#[test]
fn damaged_index_files_never_give_a_wrong_answer() {
    let tmp = TempDir::new().unwrap();
    let index = tmp.path().join("index");
    ok(&[
        "index",
        s(&data_file("002_e81e739ff95e68b4.txt")),
        "--index",
        s(&index),
        "-q",
    ]);
    let files = manifest(&index)["files"].clone();
    let vectors = index.join(files["vectors"]["name"].as_str().unwrap());
    let original = std::fs::read(&vectors).unwrap();
    // 64 bytes changed in place, same size: one vector's components.
    let mut bytes = original.clone();
    bytes[3000..3064].fill(0x42);
    std::fs::write(&vectors, &bytes).unwrap();
    for args in [
        vec!["search", "关税", "--index", s(&index)],
        vec!["index", "--index", s(&index), "-q"],
        vec!["index", "--compact", "--index", s(&index), "-q"],
    ] {
        let (code, err) = fails(&args);
        assert_eq!(code, 1);
        assert!(
            err.contains(vectors.file_name().unwrap().to_str().unwrap())
                && err.contains("checksum")
                && err.contains("themap index --rebuild"),
            "{args:?}: {err}"
        );
    }
    std::fs::write(&vectors, &original).unwrap();

    // Four bytes of the graph's node → passage table.
    let graph = index.join(manifest(&index)["graph"]["file"]["name"].as_str().unwrap());
    let original_graph = std::fs::read(&graph).unwrap();
    let mut bytes = original_graph.clone();
    let at = bytes.len() - 8;
    bytes[at..at + 4].copy_from_slice(&1u32.to_le_bytes());
    std::fs::write(&graph, &bytes).unwrap();
    let (_, err) = fails(&["search", "关税", "--ef", "32", "--index", s(&index)]);
    assert!(err.contains("search graph") && err.contains("--compact"), "{err}");
    std::fs::write(&graph, &original_graph).unwrap();

    // Two passages swapped.
    let passages = index.join(files["passages"]["name"].as_str().unwrap());
    let text = std::fs::read_to_string(&passages).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.swap(3, 4);
    std::fs::write(&passages, lines.join("\n") + "\n").unwrap();
    let (_, err) = fails(&["similar", "002_e81e739ff95e68b4#4", "--index", s(&index)]);
    assert!(err.contains("passages-") && err.contains("checksum"), "{err}");
    let (_, err) = fails(&["index", "--index", s(&index), "-q"]);
    assert!(err.contains("passages-") && err.contains("checksum"), "{err}");

    // The fix named: a rebuild from the index's own sources, reading nothing else of it.
    std::fs::write(&vectors, bytes_of_zero_vector(&original)).unwrap();
    let rebuilt: Value =
        serde_json::from_str(&ok(&["index", "--rebuild", "--index", s(&index), "--json", "-q"])).unwrap();
    assert_eq!(rebuilt["embedded"], rebuilt["passages"]);
    ok(&["similar", "002_e81e739ff95e68b4#3", "-k", "1", "--index", s(&index)]);
}

/// The vectors file with its first vector zeroed: damaged, same size.
fn bytes_of_zero_vector(original: &[u8]) -> Vec<u8> {
    let mut bytes = original.to_vec();
    bytes[128..128 + 768 * 4].fill(0);
    bytes
}

/// Commands that cannot write their result say so before the work, and change nothing.
#[test]
fn impossible_outputs_fail_before_the_work() {
    let tmp = TempDir::new().unwrap();
    let index = copy_of_sample_index(&tmp);
    let before = snapshot(&index);
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "not a folder").unwrap();

    let (code, err) = fails(&["report", "--index", s(&index), "--out", s(&file)]);
    assert_eq!(code, 2);
    assert!(err.contains("a-file") && err.contains("is a file"), "{err}");
    let (code, err) = fails(&[
        "themes",
        "--index",
        s(&index),
        "--assignments",
        s(&tmp.path().join("no/such/dir.tsv")),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("does not exist"), "{err}");
    let (code, err) = fails(&["index", s(&data_file("002_e81e739ff95e68b4.txt")), "--index", s(&file)]);
    assert_eq!(code, 2);
    assert!(err.contains("is a file") && err.contains("--index"), "{err}");
    assert_eq!(snapshot(&index), before, "a failed command changed the index");
}

/// A 5 MB line (a scraped page) is split with the memory of the same text in lines: run under
/// an address-space limit that tokenizing it whole (7 GB for 2 MB) cannot fit in.
#[test]
fn a_five_megabyte_line_is_split_in_bounded_memory() {
    let tmp = TempDir::new().unwrap();
    // The sample's characters without spaces or Markdown, so passages give back exactly the line.
    let text: String = std::fs::read_to_string(data_file("002_e81e739ff95e68b4.txt"))
        .unwrap()
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '*' | '#' | '_'))
        .collect();
    let line = text.repeat(5 * 1024 * 1024 / text.len() + 1);
    let file = tmp.path().join("page.txt");
    std::fs::write(&file, &line).unwrap();
    let script = format!(
        "ulimit -v 1500000 && exec {} passages --json -q {}",
        env!("CARGO_BIN_EXE_themap"),
        s(&file)
    );
    let out = Command::new("bash")
        .args(["-c", &script])
        .env("THEMAP_MODEL", model_dir())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let passages: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let joined: String = passages.iter().map(|p| p["text"].as_str().unwrap()).collect();
    assert!(joined == line, "something lost or repeated");
    assert!(passages.len() > 1000);
}

/// Bad bytes: one invalid byte keeps a UTF-8 file UTF-8 (noted); NULs after the first 8 KiB
/// make it binary; a named UTF-16 encoding reads a file without BOM; control bytes never reach
/// the terminal.
#[test]
fn bad_bytes_are_named_not_indexed_as_mojibake() {
    let tmp = TempDir::new().unwrap();
    let text = std::fs::read_to_string(data_file("002_e81e739ff95e68b4.txt")).unwrap();
    let mut bytes = text.clone().into_bytes();
    let at = bytes.len() / 2;
    let at = (at..).find(|&i| bytes[i] < 0x80).unwrap();
    bytes.insert(at, 0xFF);
    let damaged = tmp.path().join("damaged.txt");
    std::fs::write(&damaged, &bytes).unwrap();
    let (out, err) = ok_with_log(&["passages", "--json", s(&damaged)]);
    assert!(
        err.contains("damaged.txt") && err.contains("not UTF-8 replaced by U+FFFD"),
        "{err}"
    );
    assert!(out.contains("算力") && out.contains('\u{FFFD}'), "decoded as UTF-8");

    let mut binary = text.repeat(4).into_bytes();
    binary.extend([0u8; 64]);
    std::fs::write(tmp.path().join("nul.txt"), &binary).unwrap();
    let (_, err) = fails(&["passages", s(&tmp.path().join("nul.txt"))]);
    assert!(err.contains("nul.txt: binary"), "{err}");

    let utf16: Vec<u8> = text.encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
    let utf16_file = tmp.path().join("utf16.txt");
    std::fs::write(&utf16_file, utf16).unwrap();
    let out = ok(&["passages", "--json", "--encoding", "utf-16le", s(&utf16_file)]);
    assert!(out.contains("算力"), "{out}");

    std::fs::write(
        tmp.path().join("escapes.txt"),
        format!("\u{1b}[2J\u{1b}[31m{text}\u{7}"),
    )
    .unwrap();
    let out = ok(&["passages", s(&tmp.path().join("escapes.txt"))]);
    assert!(
        !out.chars().any(|c| c.is_control() && c != '\n'),
        "control characters printed"
    );
}

/// JSONL read alike by `index` and `embed`: a bad line or id is passed over and named, the rest
/// kept; duplicate document ids are renamed and said so.
#[test]
fn bad_jsonl_lines_are_passed_over_alike_by_index_and_embed() {
    let tmp = TempDir::new().unwrap();
    let lines = [
        r#"{"id": "a", "text": "美国对中国商品加征关税，贸易战升级，市场正在等待判决。"}"#,
        r#"{"id": [1, 2], "text": "数组不是编号。"}"#,
        r#"{"id": null, "text": "空编号。"}"#,
        "not json at all",
        r#"{"id": 7, "text": "美元霸权与全球储备货币的未来。"}"#,
    ];
    let input = tmp.path().join("in.jsonl");
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let (out, err) = ok_with_log(&["passages", "--json", s(&input)]);
    let ids: Vec<String> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["doc_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ids, ["a", "7"]);
    for line in ["line 2", "line 3", "line 4"] {
        assert!(err.contains(line), "{line}: {err}");
    }
    let vectors = tmp.path().join("v.npy");
    let (_, err) = ok_with_log(&["embed", s(&input), "-o", s(&vectors), "-q"]);
    assert!(err.contains("line 2") && err.contains("line 4"), "{err}");
    assert_eq!(std::fs::read_to_string(tmp.path().join("v.ids.txt")).unwrap(), "a\n7\n");

    let dup = tmp.path().join("dup");
    std::fs::create_dir(&dup).unwrap();
    std::fs::write(dup.join("x.txt"), "第一篇文章的内容，讲的是关税。").unwrap();
    std::fs::write(dup.join("x.md"), "第二篇文章的内容，讲的是美元。").unwrap();
    let (_, err) = ok_with_log(&["passages", s(&dup)]);
    assert!(err.contains("already has id \"x\"") && err.contains("x~2"), "{err}");
}

/// Arguments that used to pass silently: impossible dates, an empty query, `-k 0`, an unknown
/// tag, a query longer than the model reads, and paths that replace the index's sources.
#[test]
fn questionable_arguments_are_refused_or_explained() {
    let index = sample_index_path();
    for date in ["2025-13-45", "2025-02-30", "2025-00"] {
        let (code, err) = fails(&["search", "关税", "--since", date, "--index", s(index)]);
        assert_eq!(code, 2);
        assert!(err.contains("not a date"), "{date}: {err}");
    }
    ok(&[
        "search",
        "关税",
        "--since",
        "2024-02-29",
        "-k",
        "1",
        "--index",
        s(index),
    ]);
    let (code, err) = fails(&["search", " ", "--index", s(index)]);
    assert_eq!(code, 2);
    assert!(err.contains("query is empty"), "{err}");
    let (code, _) = fails(&["search", "关税", "-k", "0", "--index", s(index)]);
    assert_eq!(code, 2);
    let (code, err) = fails(&["search", "关税", "--tag", "no-such-tag", "--index", s(index)]);
    assert_eq!(code, 2);
    assert!(
        err.contains("no document tagged") && err.contains("us-tariffs"),
        "{err}"
    );

    let long = "关税战争与贸易。".repeat(1200);
    let (_, err) = ok_with_log(&["search", &long, "-k", "1", "--index", s(index)]);
    assert!(err.contains("longer than the model reads"), "{err}");

    let tmp = TempDir::new().unwrap();
    let copy = copy_of_sample_index(&tmp);
    let (_, err) = ok_with_log(&[
        "index",
        s(&data_file("002_e81e739ff95e68b4.txt")),
        "--index",
        s(&copy),
        "-q",
    ]);
    assert!(err.contains("leave it") && err.contains("data"), "{err}");
    assert_eq!(document_ids(&copy), ["002_e81e739ff95e68b4"]);
}

/// `themap themes | head`: the closed pipe ends the command quietly.
#[test]
fn a_closed_pipe_is_not_an_error() {
    let script = format!(
        "set -o pipefail; {} themes --index {} -q | head -c 10 >/dev/null; echo \"exit ${{PIPESTATUS[0]}}\"",
        env!("CARGO_BIN_EXE_themap"),
        s(sample_index_path())
    );
    let out = Command::new("bash")
        .args(["-c", &script])
        .env("THEMAP_MODEL", model_dir())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("error"), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "exit 0");
}

/// The theme model's files in `index`, by name.
fn theme_files(index: &Path) -> Vec<(String, Vec<u8>)> {
    snapshot(index)
        .into_iter()
        .filter(|(name, _)| name.starts_with("theme"))
        .collect()
}

/// The kept theme model, damaged, interrupted or raced: named with its fix, never half-kept.
#[test]
fn a_damaged_killed_or_raced_theme_model_loses_nothing() {
    let tmp = TempDir::new().unwrap();
    let index = copy_of_sample_index(&tmp);
    let themes = |extra: &[&str]| {
        let mut args = vec!["themes", "--json", "-q", "--index", s(&index)];
        args.extend_from_slice(extra);
        serde_json::from_str::<Value>(&ok(&args)).unwrap()
    };
    themes(&[]);
    let model = manifest(&index)["files"]["themes"].clone();
    let members = index.join(model["members"]["name"].as_str().unwrap());

    // Another writer holds the lock: the refit prints its themes and keeps nothing.
    let held = themap::index::store::lock(&index, false).unwrap();
    let kept = theme_files(&index);
    let (_, log) = ok_with_log(&["themes", "--refit", "--index", s(&index)]);
    assert!(log.contains("not kept"), "{log}");
    assert_eq!(theme_files(&index), kept);
    drop(held);

    // A refit killed part way: the manifest names the old model or the new one, never a part.
    let mut child = Command::new(env!("CARGO_BIN_EXE_themap"))
        .args([
            "themes",
            "--refit",
            "-q",
            "--index",
            s(&index),
            "--model",
            s(&model_dir()),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let _ = child.kill();
    let _ = child.wait();
    let after = themes(&[]);
    assert_eq!(after["fit"]["kind"], "update", "the kept model still reads");

    // A damaged members file: one message naming it and the fix; the index still updates.
    let members = if manifest(&index)["files"]["themes"] == model {
        members
    } else {
        index.join(manifest(&index)["files"]["themes"]["members"]["name"].as_str().unwrap())
    };
    let mut bytes = std::fs::read(&members).unwrap();
    bytes[5] ^= 1;
    std::fs::write(&members, &bytes).unwrap();
    let (code, err) = fails(&["themes", "--index", s(&index)]);
    assert_eq!(code, 1);
    assert!(
        err.contains(members.file_name().unwrap().to_str().unwrap()) && err.contains("--refit"),
        "{err}"
    );
    let (_, log) = ok_with_log(&["index", "--index", s(&index)]);
    assert!(log.contains("theme model file"), "{log}");
    // The fix: a refit starts a new model; later runs update it.
    let refit = themes(&["--refit"]);
    assert_eq!(refit["fit"]["kind"], "first");
    assert_eq!(themes(&[])["fit"]["kind"], "update");
}
