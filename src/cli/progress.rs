//! Progress on stderr: a bar on a terminal, log lines otherwise (pipes, CI, files).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use themap::Progress;

pub struct CliProgress {
    bar: Option<ProgressBar>,
    state: Mutex<Option<(String, Instant, u64)>>,
    tokens: AtomicU64,
    done: AtomicU64,
}

impl CliProgress {
    pub fn new(quiet: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::hidden();
            bar.set_style(
                ProgressStyle::with_template("{msg:>10} [{bar:30}] {pos}/{len} passages · {prefix} · ETA {eta}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar
        });
        Self {
            bar,
            state: Mutex::new(None),
            tokens: AtomicU64::new(0),
            done: AtomicU64::new(0),
        }
    }
}

impl Progress for CliProgress {
    fn start(&self, label: &str, total: u64) {
        *self.state.lock().expect("progress lock") = Some((label.to_string(), Instant::now(), total));
        self.tokens.store(0, Ordering::Relaxed);
        self.done.store(0, Ordering::Relaxed);
        match &self.bar {
            Some(bar) => {
                bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                bar.set_length(total);
                bar.set_position(0);
                bar.set_message(label.to_string());
                bar.reset_eta();
            }
            None => tracing::info!("{label}: {total} passages"),
        }
    }

    fn advance(&self, units: u64, tokens: u64) {
        self.tokens.fetch_add(tokens, Ordering::Relaxed);
        self.done.fetch_add(units, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.inc(units);
            if let Some((_, started, _)) = &*self.state.lock().expect("progress lock") {
                let seconds = started.elapsed().as_secs_f64().max(1e-9);
                let (done, tokens) = (self.done.load(Ordering::Relaxed), self.tokens.load(Ordering::Relaxed));
                bar.set_prefix(rates(done, tokens, seconds));
            }
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if let Some((label, started, _)) = self.state.lock().expect("progress lock").take() {
            let seconds = started.elapsed().as_secs_f64().max(1e-9);
            let done = self.done.load(Ordering::Relaxed);
            let tokens = self.tokens.load(Ordering::Relaxed);
            tracing::info!(
                "{label}: {done} passages in {seconds:.1} s ({})",
                rates(done, tokens, seconds)
            );
        }
    }
}

/// "3.3 passages/s · 557 tokens/s"; the token rate only for work that counts tokens.
fn rates(done: u64, tokens: u64, seconds: f64) -> String {
    let passages = format!("{:.1} passages/s", done as f64 / seconds);
    if tokens == 0 {
        passages
    } else {
        format!("{passages} · {:.0} tokens/s, {tokens} tokens", tokens as f64 / seconds)
    }
}
