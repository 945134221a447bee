//! `themap embed`: texts in, vectors out, as a resumable stream.

use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::Serialize;
use themap::corpus::{self, read_records, Record, RecordFormat};
use themap::embed::output::{Opened, OutputSettings, VectorWriter, Written};
use themap::embed::{embed_stream, Dtype, EmbedStats, Embedder, EmbeddingModel, Kernel, Prompt, StreamOptions};
use themap::npy::Element;
use themap::Progress;

use super::progress::CliProgress;
use super::{load_model, read_options, split_options, Compute, Reading};

#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// What to embed. `.jsonl` files (`{"id": ..., "text": ...}` per line) and `.tsv` files
    /// (`id<TAB>text`) are embedded a line at a time, as they are; `-` reads JSONL from standard
    /// input. Folders and other files are read as documents and split into passages, as
    /// `themap index` does (ids `<document>#<n>`).
    #[arg(required_unless_present = "jobs", value_name = "INPUT")]
    inputs: Vec<PathBuf>,

    /// Output file; the ids go beside it, one per line, as `<name>.ids.txt`.
    #[arg(short, long, value_name = "FILE.npy", required_unless_present = "jobs")]
    out: Option<PathBuf>,

    /// Embed many inputs with one model load: read jobs from FILE (`-`: standard input), one JSON
    /// object per line, `{"inputs": [...], "out": "FILE.npy"}`, each embedded as `themap embed
    /// INPUTS -o OUT` with this command's options would, and answered on standard output with
    /// one line of JSON as soon as it is done (the `--json` summary, or `{"out", "error"}`),
    /// after a first line `{"ready": true, ...}` once the model has loaded. For drivers such as
    /// scripts/ray/embed.py.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["inputs", "out"])]
    jobs: Option<PathBuf>,

    /// Number type of the output file.
    #[arg(long, value_enum, default_value = "f32", value_name = "TYPE")]
    out_type: Element,

    /// Instruction prefix: `document` for passages to search, `query` for queries,
    /// `clustering` for texts to group, `none` for none.
    #[arg(long, value_enum, default_value = "document")]
    prompt: Prompt,

    /// Vector size: 768, or 512/256/128 (Matryoshka truncation).
    #[arg(long, value_name = "N")]
    dims: Option<usize>,

    /// Read `.jsonl` inputs as documents with metadata and split them into passages, instead of
    /// embedding each line as it is.
    #[arg(long)]
    split: bool,

    /// Format of records read from standard input or from a file without a .jsonl/.tsv name.
    #[arg(long, value_enum, value_name = "FORMAT")]
    format: Option<RecordFormat>,

    /// Texts read, tokenized and sorted by length together; batches are cut from each window.
    #[arg(long, default_value_t = themap::embed::stream::DEFAULT_WINDOW, value_name = "N")]
    window: usize,

    /// Replace an existing output file.
    #[arg(long)]
    overwrite: bool,

    /// Throw away an interrupted run's output instead of resuming it.
    #[arg(long)]
    restart: bool,

    /// Print throughput figures at the end (passages/s, tokens/s, batch fill).
    #[arg(long)]
    stats: bool,

    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,

    /// Model directory. Default as for `themap index`.
    #[arg(long, env = "THEMAP_MODEL", value_name = "DIR")]
    model: Option<PathBuf>,

    #[command(flatten)]
    compute: Compute,

    #[command(flatten)]
    reading: Reading,
}

/// How the inputs are read.
enum Source {
    Records(RecordFormat),
    Documents,
}

pub fn embed(args: EmbedArgs, quiet: bool) -> Result<()> {
    let Some(jobs) = &args.jobs else {
        let out = args.out.as_deref().expect("clap requires --out without --jobs");
        let source = source(&args.inputs, &args)?;
        let model = load_model(args.model.as_deref(), args.dims, &args.compute)?;
        let (written, stats, resumed_after) = embed_one(&model, &args.inputs, out, source, &args, quiet)?;
        return print_summary(&written, &stats, resumed_after, &model, &args);
    };
    let model = load_model(args.model.as_deref(), args.dims, &args.compute)?;
    // A driver learns here that the model loaded (or, from the exit status, that it did not).
    let ready = serde_json::json!({"ready": true, "device": args.compute.device.to_string(), "dtype": model.dtype(), "kernel": model.kernel()});
    writeln!(std::io::stdout().lock(), "{ready}")?;
    let reader: Box<dyn BufRead> = if jobs == Path::new("-") {
        Box::new(BufReader::new(std::io::stdin()))
    } else {
        let file = std::fs::File::open(jobs).with_context(|| format!("cannot open {}", jobs.display()))?;
        Box::new(BufReader::new(file))
    };
    let (mut done, mut failed) = (0, 0);
    for line in reader.lines() {
        let line = line.with_context(|| format!("cannot read the jobs from {}", jobs.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let answer = match run_job(&model, &line, &args) {
            Ok(summary) => {
                done += 1;
                summary
            }
            Err(error) => {
                failed += 1;
                let out = serde_json::from_str::<Job>(&line).map(|job| job.out).ok();
                serde_json::json!({"out": out, "error": format!("{error:#}")})
            }
        };
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{answer}")?;
        stdout.flush()?;
    }
    if failed > 0 {
        bail!(
            "{failed} of {} jobs failed (each is answered on standard output)",
            done + failed
        );
    }
    Ok(())
}

/// One line of `--jobs`.
#[derive(serde::Deserialize)]
struct Job {
    inputs: Vec<PathBuf>,
    out: PathBuf,
}

fn run_job(model: &EmbeddingModel, line: &str, args: &EmbedArgs) -> Result<serde_json::Value> {
    let job: Job =
        serde_json::from_str(line).context("a job is a JSON object {\"inputs\": [...], \"out\": \"FILE.npy\"}")?;
    if job.inputs.is_empty() || job.inputs.iter().any(|p| p == Path::new("-")) {
        bail!("a job needs input files (standard input carries the jobs)");
    }
    let source = source(&job.inputs, args)?;
    let (written, stats, resumed_after) = embed_one(model, &job.inputs, &job.out, source, args, true)?;
    Ok(summary(&written, &stats, resumed_after, model, args))
}

/// Embeds `inputs` into `out`, resuming an interrupted run; returns what was written, the
/// throughput figures, and how many texts an earlier run had already embedded.
fn embed_one(
    model: &EmbeddingModel,
    inputs: &[PathBuf],
    out: &Path,
    source: Source,
    args: &EmbedArgs,
    quiet: bool,
) -> Result<(Written, EmbedStats, u64)> {
    let split = split_options(&args.reading, model.tokenizer());
    let settings = OutputSettings {
        model: model.checksum().to_string(),
        dims: model.dim(),
        prompt: args.prompt,
        device: args.compute.device_kind().into(),
        dtype: model.dtype(),
        element: args.out_type,
        window: args.window,
        max_tokens: matches!(source, Source::Documents).then_some(split.max_tokens),
        min_tokens: matches!(source, Source::Documents).then_some(split.min_tokens),
    };
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let mut writer = match VectorWriter::open(out, settings, &model.name(), args.overwrite, args.restart)? {
        Opened::Writer(writer) => writer,
        Opened::Done(written) => {
            tracing::info!("the previous run had finished; its files are now in place, nothing to embed");
            let rows = written.rows;
            return Ok((written, EmbedStats::default(), rows));
        }
    };
    let resume = writer.resume();
    if let Some(resume) = resume {
        tracing::info!("resuming {}: {} texts already embedded", out.display(), resume.records);
    }

    let count_tokens = |text: &str| model.count_tokens(text);
    // The total is known for records files (their lines), not for documents until split.
    let (records, total): (RecordStream<'_>, _) = match source {
        Source::Records(format) => (
            records(inputs, format)?,
            count_lines(inputs).map(|n| n.saturating_sub(writer.rows())),
        ),
        Source::Documents => (
            Box::new(corpus::stream_passages(
                inputs,
                read_options(&args.reading)?,
                &split,
                &count_tokens,
            )?),
            None,
        ),
    };

    let progress = CliProgress::new(quiet);
    progress.start("embedding", total.unwrap_or(0), "passages");
    let options = StreamOptions {
        prompt: args.prompt,
        window: args.window,
        resume,
    };
    let stats = embed_stream(model, records, &options, &mut writer, &progress);
    progress.finish();
    if writer.rows() == 0 {
        // Nothing to resume: leave no trace.
        writer.discard()?;
        stats?;
        bail!("no texts in {}: nothing written", corpus::list_paths(inputs));
    }
    let stats = stats.with_context(|| {
        format!(
            "the {} texts embedded so far are kept in {}: run the same command again to continue",
            writer.rows(),
            writer.partial_dir().display()
        )
    })?;
    let written = writer.finish()?;
    Ok((written, stats, resume.map_or(0, |r| r.records)))
}

/// Records in input order, from whichever source; `Send` so the engine reads on its own thread.
type RecordStream<'a> = Box<dyn Iterator<Item = themap::Result<Record>> + Send + 'a>;

/// Records files, or documents to split: decided by the inputs' names unless told.
fn source(inputs: &[PathBuf], args: &EmbedArgs) -> Result<Source> {
    let format_of = |path: &Path| {
        if path == Path::new("-") {
            Some(args.format.unwrap_or(RecordFormat::Jsonl))
        } else if path.is_dir() || args.split {
            None
        } else {
            RecordFormat::from_path(path).or(args.format)
        }
    };
    let formats: Vec<Option<RecordFormat>> = inputs.iter().map(|p| format_of(p)).collect();
    if formats.iter().all(Option::is_none) {
        return Ok(Source::Documents);
    }
    let first = formats[0];
    if formats.iter().any(|f| *f != first) {
        bail!(
            "give either records files (.jsonl, .tsv, or - for standard input) or documents \
             (folders, .txt, .md), and records of one format; run `themap embed` once for each"
        );
    }
    Ok(Source::Records(first.expect("all the same and not all none")))
}

fn records(inputs: &[PathBuf], format: RecordFormat) -> Result<RecordStream<'static>> {
    let mut streams: Vec<RecordStream<'static>> = Vec::new();
    for input in inputs {
        if input == Path::new("-") {
            if std::io::stdin().is_terminal() {
                bail!("`-` reads records from standard input, but it is a terminal: pipe a file in");
            }
            let stdin = BufReader::new(std::io::stdin());
            streams.push(Box::new(read_records(stdin, "standard input".into(), format)));
        } else {
            let file = std::fs::File::open(input).with_context(|| format!("cannot open {}", input.display()))?;
            streams.push(Box::new(read_records(BufReader::new(file), input.clone(), format)));
        }
    }
    // A bad line is passed over and named, as `themap index` does with JSONL documents.
    Ok(Box::new(streams.into_iter().flatten().filter(|record| match record {
        Err(error @ themap::Error::BadRecord { .. }) => {
            tracing::warn!("passed over: {error}");
            false
        }
        _ => true,
    })))
}

/// Non-empty lines of the input files, for the progress bar; `None` for standard input.
fn count_lines(inputs: &[PathBuf]) -> Option<u64> {
    let mut total = 0;
    for input in inputs {
        if input == Path::new("-") {
            return None;
        }
        let reader = BufReader::new(std::fs::File::open(input).ok()?);
        total += reader
            .split(b'\n')
            .filter(|l| l.as_ref().is_ok_and(|l| !l.trim_ascii().is_empty()))
            .count() as u64;
    }
    Some(total)
}

/// The `--json` summary (and a `--jobs` answer).
fn summary(
    written: &Written,
    stats: &EmbedStats,
    resumed_after: u64,
    model: &EmbeddingModel,
    args: &EmbedArgs,
) -> serde_json::Value {
    #[derive(Serialize)]
    struct Summary<'a> {
        #[serde(flatten)]
        written: &'a Written,
        resumed_after: u64,
        device: String,
        dtype: Dtype,
        /// What ran the arithmetic: candle, cpu-f32 or cpu-bf16.
        kernel: Kernel,
        #[serde(flatten)]
        stats: &'a EmbedStats,
        passages_per_second: f64,
        tokens_per_second: f64,
    }
    serde_json::to_value(Summary {
        written,
        resumed_after,
        device: args.compute.device.to_string(),
        dtype: model.dtype(),
        kernel: model.kernel(),
        stats,
        passages_per_second: stats.passages_per_second(),
        tokens_per_second: stats.tokens_per_second(),
    })
    .expect("plain data serializes")
}

fn print_summary(
    written: &Written,
    stats: &EmbedStats,
    resumed_after: u64,
    model: &EmbeddingModel,
    args: &EmbedArgs,
) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &summary(written, stats, resumed_after, model, args))?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(
        out,
        "Wrote {} vectors ({} × {:?}) to {}, ids to {}, what made them to {}",
        written.rows,
        written.dims,
        written.element,
        written.vectors.display(),
        written.ids.display(),
        written.meta.display()
    )?;
    if resumed_after > 0 {
        writeln!(
            out,
            "Resumed after {resumed_after}; this run embedded {}",
            stats.passages
        )?;
    }
    if args.stats {
        writeln!(out, "passages      {:>12}", stats.passages)?;
        writeln!(out, "tokens        {:>12}", stats.tokens)?;
        writeln!(out, "batches       {:>12}", stats.batches)?;
        writeln!(
            out,
            "batch fill    {:>11.1}%  (real tokens / computed tokens)",
            100.0 * stats.tokens as f64 / stats.padded_tokens.max(1) as f64
        )?;
        writeln!(out, "seconds       {:>12.2}", stats.seconds)?;
        writeln!(out, "passages/s    {:>12.2}", stats.passages_per_second())?;
        writeln!(out, "tokens/s      {:>12.1}", stats.tokens_per_second())?;
    }
    Ok(())
}
