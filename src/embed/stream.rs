//! The embedding engine: texts stream in, unit vectors stream out in input order.
//!
//! Input is taken a window at a time. A second thread reads and tokenizes the next window while
//! the model runs on this one; inside a window rows are sorted by length and grouped into forward
//! passes under a token budget, so padding stays small. Memory is bounded by the window, whatever
//! the input size. `themap embed` and `themap index` both go through [`embed_stream`].

use ndarray::{Array2, ArrayView2};
use sha2::{Digest, Sha256};

use super::{Embedder, Prompt};
use crate::corpus::Record;
use crate::error::{Error, Result};
use crate::progress::Progress;

/// How texts are grouped into forward passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Most texts in one forward pass.
    pub max_texts: usize,
    /// Most tokens in one forward pass, counting padding where the model pads.
    pub max_tokens: usize,
}

impl Default for BatchLimits {
    fn default() -> Self {
        // Past a few thousand tokens a CPU batch gains nothing and attention memory grows.
        Self {
            max_texts: 64,
            max_tokens: 4096,
        }
    }
}

/// Options of one streaming run.
#[derive(Debug, Clone)]
pub struct StreamOptions {
    pub prompt: Prompt,
    /// Texts read, tokenized and sorted together. Larger windows pad less; memory grows with it.
    pub window: usize,
    /// Records already embedded by an interrupted run: they are read, checked and passed over.
    pub resume: Option<Resume>,
}

impl StreamOptions {
    pub fn new(prompt: Prompt) -> Self {
        Self {
            prompt,
            window: DEFAULT_WINDOW,
            resume: None,
        }
    }
}

/// Texts per window unless told otherwise: enough to sort into well-filled batches.
pub const DEFAULT_WINDOW: usize = 1024;

/// Where an interrupted run stopped: how many records it finished and their [`digest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resume {
    pub records: u64,
    pub digest: [u8; 32],
}

/// Receives each window's vectors, in input order.
pub trait VectorSink {
    fn write(&mut self, records: &[Record], vectors: ArrayView2<f32>) -> Result<()>;
}

/// What a run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct EmbedStats {
    /// Texts embedded in this run (not counting those passed over on resume).
    pub passages: u64,
    /// Model tokens of those texts, prompt and special tokens included.
    pub tokens: u64,
    /// Tokens the model computed, padding included (none on themap's CPU encoder):
    /// `tokens / padded_tokens` is the batch fill.
    pub padded_tokens: u64,
    pub batches: u64,
    pub seconds: f64,
}

impl EmbedStats {
    pub fn passages_per_second(&self) -> f64 {
        self.passages as f64 / self.seconds.max(1e-9)
    }

    pub fn tokens_per_second(&self) -> f64 {
        self.tokens as f64 / self.seconds.max(1e-9)
    }
}

/// A window, tokenized and planned, on its way from the reading thread to the model.
struct Window {
    records: Vec<Record>,
    tokens: Vec<Vec<u32>>,
    batches: Vec<Vec<usize>>,
}

/// Embeds every record of `records` and hands the vectors to `sink` a window at a time.
pub fn embed_stream<E, I>(
    model: &E,
    records: I,
    options: &StreamOptions,
    sink: &mut dyn VectorSink,
    progress: &dyn Progress,
) -> Result<EmbedStats>
where
    E: Embedder + ?Sized,
    I: Iterator<Item = Result<Record>> + Send,
{
    if options.window == 0 {
        return Err(Error::InvalidArgument("the window must hold at least one text".into()));
    }
    let limits = model.batch_limits();
    let pads = model.pads()?;
    let started = std::time::Instant::now();
    let mut stats = EmbedStats::default();
    std::thread::scope(|scope| -> Result<()> {
        // One window in flight: the next is tokenized while this one runs, and no more is read.
        let (sender, receiver) = std::sync::mpsc::sync_channel::<Result<Window>>(1);
        scope.spawn(move || {
            let mut records = records;
            if let Some(resume) = options.resume {
                if let Err(e) = pass_over(&mut records, resume, options.window) {
                    let _ = sender.send(Err(e));
                    return;
                }
            }
            loop {
                let window = match records.by_ref().take(options.window).collect::<Result<Vec<_>>>() {
                    Ok(window) if window.is_empty() => return,
                    Ok(window) => window,
                    Err(e) => {
                        let _ = sender.send(Err(e));
                        return;
                    }
                };
                let texts: Vec<&str> = window.iter().map(|r| r.text.as_str()).collect();
                let planned = model.tokenize(&texts, options.prompt).map(|tokens| Window {
                    batches: plan_batches(&tokens, limits, pads),
                    tokens,
                    records: window,
                });
                // A closed channel means the model side stopped on an error: stop reading.
                if sender.send(planned).is_err() {
                    return;
                }
            }
        });
        for window in receiver {
            let window = window?;
            let mut vectors = Array2::<f32>::zeros((window.records.len(), model.dim()));
            for batch in &window.batches {
                let rows: Vec<&[u32]> = batch.iter().map(|&i| window.tokens[i].as_slice()).collect();
                let embedded = model.embed_tokens(&rows)?;
                for (row, &i) in embedded.outer_iter().zip(batch) {
                    vectors.row_mut(i).assign(&row);
                }
                let tokens: u64 = rows.iter().map(|r| r.len() as u64).sum();
                let longest = rows.iter().map(|r| r.len()).max().unwrap_or(0);
                stats.tokens += tokens;
                stats.padded_tokens += if pads { (longest * rows.len()) as u64 } else { tokens };
                stats.batches += 1;
                progress.advance(batch.len() as u64, tokens);
            }
            sink.write(&window.records, vectors.view())?;
            stats.passages += window.records.len() as u64;
        }
        Ok(())
    })?;
    stats.seconds = started.elapsed().as_secs_f64();
    Ok(stats)
}

/// Embeds texts held in memory: one unit row per text, in input order.
pub fn embed_texts<E: Embedder + ?Sized>(
    model: &E,
    texts: &[&str],
    prompt: Prompt,
    progress: &dyn Progress,
) -> Result<Array2<f32>> {
    struct Rows(Vec<f32>);
    impl VectorSink for Rows {
        fn write(&mut self, _: &[Record], vectors: ArrayView2<f32>) -> Result<()> {
            self.0.extend(vectors.iter());
            Ok(())
        }
    }
    let records = texts.iter().enumerate().map(|(i, text)| {
        Ok(Record {
            id: i.to_string(),
            text: text.to_string(),
        })
    });
    let mut rows = Rows(Vec::with_capacity(texts.len() * model.dim()));
    progress.start("embedding", texts.len() as u64, "passages");
    let stats = embed_stream(model, records, &StreamOptions::new(prompt), &mut rows, progress)?;
    progress.finish();
    tracing::debug!(?stats, "embedded");
    Ok(Array2::from_shape_vec((texts.len(), model.dim()), rows.0).expect("one row per text"))
}

/// Groups row indices into forward passes: rows sorted by length, each batch within `limits`
/// (a row longer than the token budget goes alone). Where the model `pads` every row to its
/// batch's longest, the budget counts that padding, and a batch that is already a quarter of
/// the budget also ends where the next row is much shorter than its longest, rather than pad
/// that row and all after it. Where it does not (themap's CPU encoder), batches fill up.
pub fn plan_batches(tokens: &[Vec<u32>], limits: BatchLimits, pads: bool) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..tokens.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(tokens[i].len()));
    let mut batches = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut current_tokens = 0;
    for i in order {
        let len = tokens[i].len();
        // Sorted longest first, so the batch's first row sets its padded length.
        let longest = current.first().map_or(len, |&f| tokens[f].len());
        let cut = if pads {
            let full = longest * (current.len() + 1) > limits.max_tokens;
            let big_enough = longest * current.len() * 4 >= limits.max_tokens;
            let much_shorter = len * 5 < longest * 4;
            full || (big_enough && much_shorter)
        } else {
            current_tokens + len > limits.max_tokens
        };
        if !current.is_empty() && (cut || current.len() == limits.max_texts) {
            batches.push(std::mem::take(&mut current));
            current_tokens = 0;
        }
        current.push(i);
        current_tokens += len;
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

/// Folds a window of records into a running digest, so a resumed run can check that the records
/// it passes over are the ones the interrupted run embedded.
pub fn digest(previous: [u8; 32], records: &[Record]) -> [u8; 32] {
    digest_pairs(previous, records.iter().map(|r| (r.id.as_str(), r.text.as_str())))
}

/// [`digest`] of `(id, text)` pairs.
pub fn digest_pairs<'a>(previous: [u8; 32], records: impl IntoIterator<Item = (&'a str, &'a str)>) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(previous);
    for (id, text) in records {
        for part in [id, text] {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
    }
    hasher.finalize().into()
}

/// Reads the first `resume.records` records, a window at a time as the interrupted run did, and
/// checks their digest.
fn pass_over(records: &mut impl Iterator<Item = Result<Record>>, resume: Resume, window: usize) -> Result<()> {
    let mut left = resume.records;
    let mut running = [0u8; 32];
    while left > 0 {
        let chunk = records
            .by_ref()
            .take(window.min(left as usize))
            .collect::<Result<Vec<_>>>()?;
        if chunk.is_empty() {
            return Err(Error::ResumeMismatch(format!(
                "the input now ends before the {} texts already embedded",
                resume.records
            )));
        }
        left -= chunk.len() as u64;
        running = digest(running, &chunk);
    }
    if running != resume.digest {
        return Err(Error::ResumeMismatch(format!(
            "the first {} texts of the input differ from those already embedded",
            resume.records
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_respect_limits_and_cover_every_row_once() {
        let lengths = [5usize, 300, 12, 40, 41, 7, 2000, 3];
        let tokens: Vec<Vec<u32>> = lengths.iter().map(|&n| vec![1; n]).collect();
        let limits = BatchLimits {
            max_texts: 3,
            max_tokens: 100,
        };
        for pads in [true, false] {
            let batches = plan_batches(&tokens, limits, pads);
            let mut seen: Vec<usize> = batches.iter().flatten().copied().collect();
            seen.sort();
            assert_eq!(seen, (0..lengths.len()).collect::<Vec<_>>());
            for batch in &batches {
                let longest = batch.iter().map(|&i| lengths[i]).max().unwrap();
                let cost = if pads {
                    longest * batch.len()
                } else {
                    batch.iter().map(|&i| lengths[i]).sum()
                };
                assert!(batch.len() <= 3);
                assert!(batch.len() == 1 || cost <= 100, "{batch:?}");
            }
        }
    }

    #[test]
    fn batches_end_before_much_shorter_rows() {
        // 4 rows of 100 tokens fill a quarter of the budget: rows of 50 start a new batch.
        let lengths = [100usize, 100, 100, 100, 50, 50, 50, 50];
        let tokens: Vec<Vec<u32>> = lengths.iter().map(|&n| vec![1; n]).collect();
        let limits = BatchLimits {
            max_texts: 64,
            max_tokens: 1600,
        };
        let batches = plan_batches(&tokens, limits, true);
        assert_eq!(batches, vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7]]);
        // Without padding, shorter rows cost nothing extra: one batch.
        assert_eq!(plan_batches(&tokens, limits, false), vec![(0..8).collect::<Vec<_>>()]);
    }
}
