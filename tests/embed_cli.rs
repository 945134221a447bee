//! `themap embed` end to end: streaming output, resuming after a kill, and its errors.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::common::model_dir;

fn themap() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_themap"));
    command.env("THEMAP_MODEL", model_dir()).env_remove("THEMAP_DEVICE");
    command
}

fn run(args: &[&str]) -> (i32, String, String) {
    output(themap().args(args))
}

/// Exit code, stdout and stderr of a finished command.
fn output(command: &mut Command) -> (i32, String, String) {
    let out = command.output().expect("themap runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// Short texts of varied length, so windows sort and batch differently.
fn write_records(path: &Path, n: usize) {
    let topics = [
        "美国加征关税，贸易战升级。",
        "美元霸权与全球储备货币。",
        "AI 泡沫和半导体投资热潮。",
    ];
    let lines: Vec<String> = (0..n)
        .map(|i| {
            let text = topics[i % 3].repeat(1 + i % 4);
            serde_json::json!({"id": format!("r{i}"), "text": format!("{i}: {text}")}).to_string()
        })
        .collect();
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

#[test]
fn a_killed_run_resumes_to_the_same_file() {
    let tmp = TempDir::new().unwrap();
    let input = tmp.path().join("in.jsonl");
    write_records(&input, 96);
    let whole = tmp.path().join("whole.npy");
    let (code, _, err) = run(&["embed", s(&input), "-o", s(&whole), "--window", "4", "-q"]);
    assert_eq!(code, 0, "{err}");

    // Interrupt a second run once it has finished a few windows.
    let resumed = tmp.path().join("resumed.npy");
    let state = tmp.path().join("resumed.npy.partial/state.json");
    let mut child = themap()
        .args(["embed", s(&input), "-o", s(&resumed), "--window", "4", "-q"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        let done = std::fs::read_to_string(&state)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v["records"].as_u64())
            .unwrap_or(0);
        if done >= 8 {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be interrupted"
        );
        assert!(started.elapsed() < Duration::from_secs(120), "no progress recorded");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !resumed.exists(),
        "an interrupted run must not leave a finished-looking file"
    );

    let (code, out, err) = run(&["embed", s(&input), "-o", s(&resumed), "--window", "4", "--json"]);
    assert_eq!(code, 0, "{err}");
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    let after = summary["resumed_after"].as_u64().unwrap();
    assert!(after >= 8 && after < 96 && after % 4 == 0, "{summary}");
    assert_eq!(summary["rows"], 96);
    assert_eq!(summary["passages"].as_u64().unwrap(), 96 - after);
    assert_eq!(std::fs::read(&resumed).unwrap(), std::fs::read(&whole).unwrap());
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("resumed.ids.txt")).unwrap(),
        std::fs::read_to_string(tmp.path().join("whole.ids.txt")).unwrap()
    );
    assert!(!tmp.path().join("resumed.npy.partial").exists());
}

#[test]
fn documents_are_split_like_index_and_f16_is_written() {
    let tmp = TempDir::new().unwrap();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/004_cf369c94da936a8a.txt");
    let out = tmp.path().join("v.npy");
    let (code, stdout, err) = run(&["embed", s(&data), "-o", s(&out), "--out-type", "f16", "--stats"]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("tokens/s"), "{stdout}");
    let ids = std::fs::read_to_string(tmp.path().join("v.ids.txt")).unwrap();
    let (_, passages, _) = run(&["passages", s(&data), "--json"]);
    let expected: Vec<String> = passages
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ids.lines().collect::<Vec<_>>(), expected);
    let bytes = std::fs::read(&out).unwrap();
    let header = String::from_utf8_lossy(&bytes[..128]);
    assert!(header.contains(&format!(
        "'descr': '<f2', 'fortran_order': False, 'shape': ({}, 768)",
        expected.len()
    )));
    assert_eq!(bytes.len(), 128 + expected.len() * 768 * 2);
}

#[test]
fn embed_errors_are_clear_and_lose_nothing() {
    let tmp = TempDir::new().unwrap();
    let input = tmp.path().join("in.tsv");
    std::fs::write(&input, "a\t关税\nb\t美元\n").unwrap();
    let out = tmp.path().join("v.npy");
    assert_eq!(run(&["embed", s(&input), "-o", s(&out), "-q"]).0, 0);
    let before = std::fs::read(&out).unwrap();

    let (code, _, err) = run(&["embed", s(&input), "-o", s(&out)]);
    assert_eq!(code, 2);
    assert!(err.contains("already exists") && err.contains("--overwrite"), "{err}");

    let (code, _, err) = run(&["embed", s(&input), "-o", s(&out), "--device", "cuda", "--overwrite"]);
    if !cfg!(feature = "cuda") {
        assert_eq!(code, 2);
        assert!(err.contains("--features cuda"), "{err}");
    } else if code != 0 {
        // A `cuda` build where the driver or a CUDA library is missing: exit 2 and one line
        // naming what to install, never a loader failure or a panic.
        assert_eq!(code, 2, "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(
            err.contains("cannot load") || err.contains("cannot open CUDA device"),
            "{err}"
        );
    }

    // A bad line is passed over and named; the rest is embedded.
    let bad = tmp.path().join("bad.tsv");
    std::fs::write(&bad, "a\tok\nno tab on this line\n").unwrap();
    let partly = tmp.path().join("partly.npy");
    let (code, _, err) = run(&["embed", s(&bad), "-o", s(&partly)]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("bad.tsv, line 2") && err.contains("no tab"), "{err}");
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("partly.ids.txt")).unwrap(),
        "a\n"
    );

    // Nothing to embed: an error, and no unfinished output left behind.
    let empty = tmp.path().join("empty.jsonl");
    std::fs::write(&empty, "\n").unwrap();
    let (code, _, err) = run(&["embed", s(&empty), "-o", s(&out), "--overwrite", "--restart"]);
    assert_eq!(code, 1);
    assert!(err.contains("no texts"), "{err}");
    assert!(!tmp.path().join("v.npy.partial").exists());
    assert_eq!(
        std::fs::read(&out).unwrap(),
        before,
        "failed runs must leave the old output alone"
    );
}

/// Without AVX-512 (here hidden with THEMAP_NO_AVX512) the CPU default is f32 with nothing to
/// time, and asking for bf16 is refused with the fix.
#[test]
fn without_avx512_the_cpu_format_is_f32() {
    let tmp = TempDir::new().unwrap();
    let input = tmp.path().join("in.tsv");
    std::fs::write(&input, "a\t关税\nb\t美元\n").unwrap();
    let out = tmp.path().join("v.npy");
    let no_avx512 = |args: &[&str]| {
        output(
            themap()
                .env("THEMAP_NO_AVX512", "1")
                .env("THEMAP_CACHE", tmp.path().join("cache"))
                .args(args),
        )
    };
    let (code, stdout, err) = no_avx512(&["embed", s(&input), "-o", s(&out), "--json", "-v", "--overwrite"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(dtype_of(&stdout), "f32");
    assert!(
        !err.contains("timed the CPU kernels"),
        "one kernel, nothing to time: {err}"
    );
    let (code, _, err) = no_avx512(&["embed", s(&input), "-o", s(&out), "--dtype", "bf16", "--overwrite"]);
    assert_eq!(code, 2);
    assert!(err.contains("avx512_bf16") && err.contains("--dtype f32"), "{err}");
    let (code, _, err) = no_avx512(&[
        "embed",
        s(&input),
        "-o",
        s(&out),
        "--cpu-kernel",
        "cpu-f32",
        "--overwrite",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("cpu-f32 kernel needs AVX-512"), "{err}");
}

fn dtype_of(stdout: &str) -> String {
    serde_json::from_str::<serde_json::Value>(stdout).unwrap()["dtype"]
        .as_str()
        .unwrap()
        .to_string()
}

/// On a CPU with more than one kernel, the default is the fastest as timed on first use: the
/// timings are kept (one file per CPU under THEMAP_CACHE/cpu) and read by later runs; a fake
/// record decides the default; a damaged record or one from another CPU is timed again.
#[test]
fn the_cpu_format_is_the_fastest_as_timed() {
    let kernels = themap::embed::probe::available_kernels();
    if kernels.len() < 2 {
        eprintln!("skipped: this CPU runs one kernel only ({kernels:?}), so nothing is timed");
        return;
    }
    let tmp = TempDir::new().unwrap();
    let input = tmp.path().join("in.tsv");
    std::fs::write(&input, "a\t关税\nb\t美元\n").unwrap();
    let out = tmp.path().join("v.npy");
    let cache = tmp.path().join("cache");
    let embed = || {
        let (code, stdout, err) = output(themap().env("THEMAP_CACHE", &cache).args([
            "embed",
            s(&input),
            "-o",
            s(&out),
            "--json",
            "-v",
            "--overwrite",
        ]));
        assert_eq!(code, 0, "{err}");
        (dtype_of(&stdout), err)
    };
    let timed = |err: &str| err.contains("timed the CPU kernels");

    let (_, err) = embed();
    assert!(timed(&err), "first use times the kernels: {err}");
    let records: Vec<_> = std::fs::read_dir(cache.join("cpu"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(records.len(), 1, "{records:?}");
    let file = &records[0];
    let (_, err) = embed();
    assert!(
        !timed(&err) && err.contains("CPU kernel timings from"),
        "later runs read them: {err}"
    );

    // Fake timings decide: whichever format is faster is the default.
    let record: serde_json::Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    let with_timings = |timings: &[(&str, f64)]| {
        let mut record = record.clone();
        for (kernel, seconds) in timings {
            record["seconds"][*kernel] = serde_json::json!(seconds);
        }
        std::fs::write(file, serde_json::to_vec(&record).unwrap()).unwrap();
    };
    with_timings(&[("candle", 0.03), ("cpu-f32", 0.02), ("cpu-bf16", 0.04)]);
    let (dtype, err) = embed();
    assert_eq!(dtype, "f32");
    assert!(err.contains("kernel=cpu-f32"), "{err}");
    with_timings(&[("candle", 0.01), ("cpu-f32", 0.02), ("cpu-bf16", 0.04)]);
    let (dtype, err) = embed();
    assert_eq!(dtype, "f32");
    assert!(err.contains("kernel=candle"), "{err}");
    if kernels.contains(&themap::embed::Kernel::CpuBf16) {
        with_timings(&[("candle", 0.03), ("cpu-f32", 0.02), ("cpu-bf16", 0.01)]);
        assert_eq!(embed().0, "bf16");
    }

    // Damaged, or written for another CPU: timed again, and the file made whole.
    std::fs::write(file, &b"{\"key\": {\"cpu\": {\"vendor\": \"Authen"[..]).unwrap();
    let (_, err) = embed();
    assert!(timed(&err) && err.contains("is damaged"), "{err}");
    let mut foreign: serde_json::Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    foreign["key"]["cpu"]["name"] = serde_json::json!("Intel(R) Xeon(R) Platinum 8580");
    foreign["key"]["cpu"]["family"] = serde_json::json!(6);
    foreign["key"]["cpu"]["model"] = serde_json::json!(207);
    std::fs::write(file, serde_json::to_vec(&foreign).unwrap()).unwrap();
    let (_, err) = embed();
    assert!(timed(&err) && err.contains("another CPU"), "{err}");
    let kept: serde_json::Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    assert_eq!(kept["key"], record["key"]);
}
