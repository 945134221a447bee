//! The report as a person sees it: headless Chromium (Debian's `chromium`) opens index.html,
//! driven over the DevTools protocol (`--remote-debugging-pipe`) so that the page runs in real
//! time and its own timings mean something: opened as `index.html#selftest`, the page times
//! hover, highlight, search and filters through its own handlers and writes the figures into
//! itself. scripts/test.sh installs Chromium and CJK fonts; without them the tests are skipped
//! locally and fail in CI.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use tempfile::TempDir;
use themap::index::ModelInfo;
use themap::report::html;
use themap::themes::{ThemeMap, ThemeOptions, ThemeVectors};

use crate::common::synthetic;

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

/// Chromium, or `None` (with a note) where a local machine has none; CI must have it.
fn browser_or_skip() -> Option<PathBuf> {
    let found = chromium();
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have Chromium: scripts/test.sh installs it"
        );
        eprintln!("skipped: no chromium on PATH (scripts/test.sh installs it)");
    }
    found
}

/// Headless Chromium with one page, spoken to over its DevTools pipe.
struct Browser {
    child: Child,
    commands: std::io::PipeWriter,
    messages: mpsc::Receiver<Value>,
    next_id: u64,
    session: String,
    /// Exceptions and console errors the page reported.
    problems: Vec<String>,
}

impl Browser {
    /// Starts Chromium with a `width` × `height` page, ready to navigate.
    fn launch(binary: &Path, profile: &Path, width: u32, height: u32) -> Browser {
        let (command_reader, commands) = std::io::pipe().unwrap();
        let (replies, reply_writer) = std::io::pipe().unwrap();
        let (from, to) = (command_reader.as_raw_fd(), reply_writer.as_raw_fd());
        let mut command = Command::new(binary);
        command
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"])
            .args([
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ])
            .args(["--hide-scrollbars", "--remote-debugging-pipe"])
            .arg(format!("--user-data-dir={}", profile.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: only async-signal-safe calls between fork and exec. The pipe ends move above
        // descriptor 10 first, so that neither is closed by the other's dup2.
        unsafe {
            command.pre_exec(move || {
                let (a, b) = (libc::fcntl(from, libc::F_DUPFD, 10), libc::fcntl(to, libc::F_DUPFD, 10));
                if a < 0 || b < 0 || libc::dup2(a, 3) < 0 || libc::dup2(b, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().expect("chromium starts");
        drop((command_reader, reply_writer));
        let (sender, messages) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(replies);
            let mut message = Vec::new();
            while reader.read_until(0, &mut message).unwrap_or(0) > 0 {
                message.pop();
                if let Ok(value) = serde_json::from_slice(&message) {
                    if sender.send(value).is_err() {
                        break;
                    }
                }
                message.clear();
            }
        });
        let mut browser = Browser {
            child,
            commands,
            messages,
            next_id: 0,
            session: String::new(),
            problems: Vec::new(),
        };
        let target = browser.call("Target.createTarget", json!({"url": "about:blank"}));
        let attached = browser.call(
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        );
        browser.session = attached["sessionId"].as_str().unwrap().to_string();
        browser.call("Runtime.enable", json!({}));
        browser.call("Page.enable", json!({}));
        browser.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}),
        );
        browser
    }

    /// Sends a command to the page (browser-wide ones before a page is attached) and waits for
    /// its answer, noting the page's exceptions and console errors on the way.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let mut message = json!({"id": self.next_id, "method": method, "params": params});
        if !self.session.is_empty() {
            message["sessionId"] = json!(self.session);
        }
        let mut bytes = serde_json::to_vec(&message).unwrap();
        bytes.push(0);
        self.commands.write_all(&bytes).unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let reply = self
                .messages
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no answer from Chromium to {method}"));
            match reply["method"].as_str() {
                Some("Runtime.exceptionThrown") => self.problems.push(reply["params"]["exceptionDetails"].to_string()),
                Some("Runtime.consoleAPICalled")
                    if matches!(reply["params"]["type"].as_str(), Some("error" | "warning" | "assert")) =>
                {
                    self.problems.push(reply["params"]["args"].to_string())
                }
                _ => {}
            }
            if reply["id"] == self.next_id {
                assert!(reply.get("error").is_none(), "{method}: {}", reply["error"]);
                return reply["result"].clone();
            }
        }
    }

    fn navigate(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url}));
    }

    /// The value of a JavaScript expression in the page.
    fn eval(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true}),
        );
        result["result"]["value"].clone()
    }

    /// Polls `expression` until it is neither null nor undefined.
    fn wait_for(&mut self, expression: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let value = self.eval(expression);
            if !value.is_null() {
                return value;
            }
            assert!(Instant::now() < deadline, "waited {timeout:?} for {expression}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Opens `page`, waits for the map's first draw and keeps a PNG of the element matching
    /// `selector` (the whole page for "body") as the test artefact `name`; returns its size.
    fn screenshot_drawn(&mut self, page: &Path, selector: &str, name: &str) -> u64 {
        self.navigate(&format!("file://{}", page.display()));
        self.wait_for("window.themapTimings?.first_draw_at_ms", Duration::from_secs(30));
        let shot = artefact(name);
        self.screenshot(selector, &shot);
        std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0)
    }

    /// A PNG of the element matching `selector`.
    fn screenshot(&mut self, selector: &str, path: &Path) {
        let rect = self.eval(&format!(
            "(() => {{ const r = document.querySelector('{selector}').getBoundingClientRect(); \
             return {{x: r.left + scrollX, y: r.top + scrollY, width: r.width, height: r.height, scale: 1}}; }})()"
        ));
        let shot = self.call(
            "Page.captureScreenshot",
            json!({"format": "png", "clip": rect, "captureBeyondViewport": true}),
        );
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        std::fs::write(path, png).unwrap();
    }

    /// The page's own figures (`#selftest`): load, hover, highlight, find and filter times.
    fn selftest(&mut self, page: &Path) -> Value {
        self.navigate(&format!("file://{}#selftest", page.display()));
        let text = self.wait_for(
            "document.getElementById('selftest')?.textContent",
            Duration::from_secs(60),
        );
        serde_json::from_str(text.as_str().unwrap()).unwrap()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn artefact(name: &str) -> PathBuf {
    let artefacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&artefacts).unwrap();
    let path = artefacts.join(name);
    let _ = std::fs::remove_file(&path);
    path
}

/// What every page must show: its figures within the targets, no console errors.
/// `purity`: the least share of the passages nearest each top-level label (50, or a quarter of
/// its theme where smaller) that belong to the label's theme.
fn check_interaction(figures: &Value, browser: &Browser, load_limit_ms: f64, purity: f64) {
    assert!(browser.problems.is_empty(), "console: {:#?}", browser.problems);
    let ms = |name: &str| figures[name].as_f64().unwrap_or_else(|| panic!("{name} in {figures}"));
    assert!(
        ms("loaded_ms") <= load_limit_ms,
        "loaded and drawn in {} ms: {figures}",
        ms("loaded_ms")
    );
    for name in ["hover_ms", "highlight_ms", "sub_highlight_ms", "find_ms", "filter_ms"] {
        assert!(ms(name) <= 100.0, "{name} {} ms: {figures}", ms(name));
    }
    assert_eq!(figures["hover_found"], true, "hover found no point: {figures}");
    assert!(!figures["hover_text"].as_str().unwrap().is_empty());
    assert!(figures["highlighted"].as_u64().unwrap() > 0);
    // Every top-level label sits where its theme is: most passages nearest it are its own.
    for (path, share) in figures["label_purity"].as_object().unwrap() {
        assert!(
            share.as_f64().unwrap() >= purity,
            "label {path}: {share} of the passages nearest it are its own"
        );
    }
    assert!(
        figures["found"].as_u64().unwrap() > 0,
        "the passage's own words found nothing"
    );
    assert_eq!(
        figures["documents_kept"], 1,
        "filtering by a document's id keeps that one"
    );
}

#[test]
fn report_loads_in_chromium_with_every_point_and_theme() {
    let Some(binary) = browser_or_skip() else { return };
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
    let map: Value = serde_json::from_str(&std::fs::read_to_string(out.join("themes.json")).unwrap()).unwrap();

    let mut browser = Browser::launch(&binary, &tmp.path().join("profile"), 1300, 900);
    let figures = browser.selftest(&page);
    check_interaction(&figures, &browser, 3000.0, 0.5);
    assert_eq!(figures["passages"], map["passages"], "one point per passage");
    // Top-level themes show; sub-themes are in the legend and cards' sections that open.
    let shown = browser.eval("document.body.innerText").as_str().unwrap().to_string();
    let all = browser.eval("document.body.textContent").as_str().unwrap().to_string();
    for theme in map["themes"].as_array().unwrap() {
        let label = theme["label"].as_str().unwrap();
        let text = if theme["level"] == 1 { &shown } else { &all };
        assert!(
            text.matches(label).count() >= 2,
            "theme name {label:?} not in the legend and its card"
        );
    }
    // Drilling down: opening a theme's sub-themes in the legend shows their buttons.
    let opened = browser.eval(
        "(() => { const d = document.querySelector('.legend details'); if (!d) return -1; d.open = true; \
         return [...d.querySelectorAll('button')].filter(b => b.offsetParent !== null).length; })()",
    );
    let first_with_children = map["themes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| !t["children"].as_array().unwrap().is_empty());
    if let Some(theme) = first_with_children {
        assert!(
            opened.as_i64().unwrap() >= theme["children"].as_array().unwrap().len() as i64,
            "opening {} shows its sub-themes: {opened}",
            theme["path"]
        );
    }

    // A screenshot of the whole page, kept as a test artefact.
    let size = browser.screenshot_drawn(&page, "body", "report.png");
    assert!(size > 50_000, "screenshot report.png is {size} bytes");
}

/// A map of 20,000 passages (about what CI affords to lay out) loads and draws within 3 s and
/// answers hover, highlight, search and filters within 100 ms; its screenshot is kept.
#[test]
fn a_large_map_loads_fast_and_answers_within_100_ms() {
    let Some(binary) = browser_or_skip() else { return };
    const PASSAGES: usize = 20_000;
    let mut shape = synthetic::Clustered::new(64, 11);
    shape.clusters = 30;
    let model = ModelInfo {
        name: "synthetic".into(),
        checksum: "0".into(),
        dims: 64,
        prompt: themap::embed::Prompt::Document,
        dtypes: Vec::new(),
    };
    let (index, _) = synthetic::index(&shape, PASSAGES, model);
    let options = ThemeOptions {
        counts: vec![Some(30), None],
        vectors: ThemeVectors::Document,
        ..ThemeOptions::default()
    };
    let map = ThemeMap::build(index, None, &options, &themap::Silent).unwrap();
    let tmp = TempDir::new().unwrap();
    let page = tmp.path().join("index.html");
    html::write(
        &map,
        &mut std::io::BufWriter::new(std::fs::File::create(&page).unwrap()),
    )
    .unwrap();
    let bytes = std::fs::metadata(&page).unwrap().len();
    eprintln!("{PASSAGES} passages: index.html {:.1} MB", bytes as f64 / 1e6);

    let mut browser = Browser::launch(&binary, &tmp.path().join("profile"), 1300, 900);
    let figures = browser.selftest(&page);
    eprintln!("{figures}");
    check_interaction(&figures, &browser, 3000.0, 0.5);
    assert_eq!(figures["passages"], PASSAGES);
    let theme = map.top_themes().nth(map.assignments[0].theme - 1).unwrap();
    assert_eq!(
        figures["highlighted"],
        theme.size + theme.short,
        "the hovered point's top-level theme is lit, all of it"
    );
    let deepest = &map.themes[map.points[0].node];
    assert_eq!(
        figures["sub_highlighted"],
        deepest.size + deepest.short,
        "its sub-theme alone, drilling down"
    );
    assert_eq!(
        figures["labels_zoomed_level"],
        2.min(map.themes.iter().map(|t| t.level).max().unwrap())
    );

    // A split page whose map-data.js went missing says so, and the rest of it still shows.
    let split = tmp.path().join("split");
    std::fs::create_dir(&split).unwrap();
    let mut page_only = Vec::new();
    html::write_split(&map, &mut page_only, &mut std::io::sink()).unwrap();
    std::fs::write(split.join("index.html"), page_only).unwrap();
    browser.navigate(&format!("file://{}", split.join("index.html").display()));
    let status = browser.wait_for(
        "(t => t.includes('missing') ? t : null)(document.getElementById('map-status').textContent)",
        Duration::from_secs(30),
    );
    assert!(status.as_str().unwrap().contains(html::DATA_FILE), "{status}");
    assert!(
        browser
            .eval("document.querySelectorAll('.card').length")
            .as_u64()
            .unwrap()
            == map.themes.len() as u64
    );

    let size = browser.screenshot_drawn(&page, "#map", "report-20k-map.png");
    assert!(size > 30_000, "screenshot report-20k-map.png is {size} bytes");
}

/// The figures of a report made elsewhere (`THEMAP_REPORT_PAGE=.../index.html`), for
/// benches/README.md: `cargo test --release --test integration -- --ignored report_page_figures`.
#[test]
#[ignore = "needs THEMAP_REPORT_PAGE"]
fn report_page_figures() {
    let page = PathBuf::from(std::env::var_os("THEMAP_REPORT_PAGE").expect("THEMAP_REPORT_PAGE"));
    let page = page.canonicalize().unwrap();
    let binary = chromium().expect("chromium on PATH");
    let tmp = TempDir::new().unwrap();
    let mut browser = Browser::launch(&binary, &tmp.path().join("profile"), 1300, 900);
    let figures = browser.selftest(&page);
    println!("{figures}");
    browser.screenshot_drawn(&page, "#map", &format!("report-{}-map.png", figures["passages"]));
    check_interaction(&figures, &browser, 3000.0, 0.8);
}
