//! Progress on stderr: a bar on a terminal, log lines otherwise (pipes, CI, files).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use themap::Progress;

pub struct CliProgress {
    bar: Option<ProgressBar>,
    state: Mutex<Option<Work>>,
    tokens: AtomicU64,
    done: AtomicU64,
    /// Without a bar, when the last log line went out: long runs log every [`LOG_EVERY`].
    last_log: Mutex<Instant>,
}

/// What is being counted.
struct Work {
    label: String,
    unit: String,
    started: Instant,
    total: u64,
}

const LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

impl CliProgress {
    pub fn new(quiet: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| ProgressBar::hidden());
        Self {
            bar,
            state: Mutex::new(None),
            tokens: AtomicU64::new(0),
            done: AtomicU64::new(0),
            last_log: Mutex::new(Instant::now()),
        }
    }
}

impl Progress for CliProgress {
    fn start(&self, label: &str, total: u64, unit: &str) {
        *self.state.lock().expect("progress lock") = Some(Work {
            label: label.to_string(),
            unit: unit.to_string(),
            started: Instant::now(),
            total,
        });
        self.tokens.store(0, Ordering::Relaxed);
        self.done.store(0, Ordering::Relaxed);
        *self.last_log.lock().expect("progress lock") = Instant::now();
        match &self.bar {
            Some(bar) => {
                // A total of 0 means unknown (a stream): count without a bar or ETA.
                let template = if total == 0 {
                    format!("{{msg:>10}} {{spinner}} {{pos}} {unit} · {{prefix}}")
                } else {
                    format!("{{msg:>10}} [{{bar:30}}] {{pos}}/{{len}} {unit} · {{prefix}} · ETA {{eta}}")
                };
                bar.set_style(
                    ProgressStyle::with_template(&template)
                        .expect("valid template")
                        .progress_chars("=> "),
                );
                bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                bar.set_length(total);
                bar.set_position(0);
                bar.set_message(label.to_string());
                bar.reset_eta();
            }
            None if total == 0 => tracing::info!("{label}…"),
            None => tracing::info!("{label}: {total} {unit}"),
        }
    }

    fn advance(&self, units: u64, tokens: u64) {
        self.tokens.fetch_add(tokens, Ordering::Relaxed);
        self.done.fetch_add(units, Ordering::Relaxed);
        let state = self.state.lock().expect("progress lock");
        let Some(work) = &*state else {
            return;
        };
        let seconds = work.started.elapsed().as_secs_f64().max(1e-9);
        let (done, tokens) = (self.done.load(Ordering::Relaxed), self.tokens.load(Ordering::Relaxed));
        match &self.bar {
            Some(bar) => {
                bar.inc(units);
                bar.set_prefix(rates(done, &work.unit, tokens, seconds));
            }
            None => {
                let mut last = self.last_log.lock().expect("progress lock");
                if last.elapsed() >= LOG_EVERY {
                    *last = Instant::now();
                    let of = if work.total > 0 {
                        format!("/{}", work.total)
                    } else {
                        String::new()
                    };
                    let rate = rates(done, &work.unit, tokens, seconds);
                    tracing::info!("{}: {done}{of} {} ({rate})", work.label, work.unit);
                }
            }
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if let Some(work) = self.state.lock().expect("progress lock").take() {
            let seconds = work.started.elapsed().as_secs_f64().max(1e-9);
            let done = self.done.load(Ordering::Relaxed);
            let tokens = self.tokens.load(Ordering::Relaxed);
            tracing::info!(
                "{}: {done} {} in {seconds:.1} s ({})",
                work.label,
                work.unit,
                rates(done, &work.unit, tokens, seconds)
            );
        }
    }
}

/// "3.3 passages/s · 557 tokens/s"; the token rate only for work that counts tokens.
fn rates(done: u64, unit: &str, tokens: u64, seconds: f64) -> String {
    let passages = format!("{:.1} {unit}/s", done as f64 / seconds);
    if tokens == 0 {
        passages
    } else {
        format!("{passages} · {:.0} tokens/s, {tokens} tokens", tokens as f64 / seconds)
    }
}
