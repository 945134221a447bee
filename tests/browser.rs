//! The report as a person sees it: headless Chromium (Debian's `chromium`) loads index.html.
//! scripts/test.sh installs Chromium and CJK fonts; without them the test is skipped locally
//! and fails in CI.

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            std::env::var_os("PATH")?
                .to_str()?
                .split(':')
                .map(|dir| Path::new(dir).join(name))
                .find(|p| p.is_file())
        })
}

/// Runs headless Chromium on `page` with `args`; returns (stdout, stderr).
fn headless(browser: &Path, page: &Path, profile: &Path, args: &[&str]) -> (String, String) {
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
        ])
        .args([
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn report_loads_in_chromium_with_every_point_and_theme() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have Chromium: scripts/test.sh installs it"
        );
        eprintln!("skipped: no chromium on PATH (scripts/test.sh installs it)");
        return;
    };
    let tmp = TempDir::new().unwrap();
    let out = tmp.path().join("report");
    let index = crate::cli::sample_index_path();
    let status = Command::new(env!("CARGO_BIN_EXE_themap"))
        .args([
            "report",
            "-q",
            "--out",
            out.to_str().unwrap(),
            "--index",
            index.to_str().unwrap(),
        ])
        .env("THEMAP_MODEL", crate::common::model_dir())
        .status()
        .unwrap();
    assert!(status.success());
    let page = out.join("index.html");
    let map: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("themes.json")).unwrap()).unwrap();

    // The DOM after the page's script has run.
    let (dom, log) = headless(
        &browser,
        &page,
        &tmp.path().join("profile-dom"),
        &["--virtual-time-budget=5000", "--dump-dom"],
    );
    let console: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("CONSOLE") || l.contains("Uncaught"))
        .collect();
    assert!(console.is_empty(), "console messages: {console:#?}");
    assert_eq!(
        dom.matches("class=\"pt\"").count(),
        map["passages"].as_u64().unwrap() as usize,
        "one point per passage"
    );
    for theme in map["themes"].as_array().unwrap() {
        let label = theme["label"].as_str().unwrap();
        let escaped = label.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
        assert!(
            dom.matches(&escaped).count() >= 2,
            "theme name {label:?} not shown in the legend and its card"
        );
    }

    // A screenshot kept as a test artefact.
    let artefacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&artefacts).unwrap();
    let shot = artefacts.join("report.png");
    let _ = std::fs::remove_file(&shot);
    headless(
        &browser,
        &page,
        &tmp.path().join("profile-shot"),
        &["--window-size=1300,2400", &format!("--screenshot={}", shot.display())],
    );
    let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
    assert!(size > 50_000, "screenshot {} is {size} bytes", shot.display());
}
