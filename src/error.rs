//! The library's error type: one enum, structured fields, sources kept.

use std::path::PathBuf;

/// Everything that can go wrong in themap's library code.
///
/// Each variant names the file involved and, where there is one, the fix, so that the binary
/// can print it as a single line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("cannot read or write {path} ({})", io_fix(source))]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "model directory {dir} has no {file}; fetch the model with `scripts/fetch-model.sh` (or pass --model DIR)"
    )]
    ModelFileMissing { dir: PathBuf, file: String },

    #[error("model file {path} is invalid: {reason}")]
    ModelInvalid { path: PathBuf, reason: String },

    #[error("cannot parse {path}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    #[error("cannot load tokenizer {path}: {source}")]
    Tokenizer {
        path: PathBuf,
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    #[error("tokenization failed: {0}")]
    Tokenize(Box<dyn std::error::Error + Send + Sync>),

    #[error("model computation failed")]
    Candle(#[from] candle_core::Error),

    #[error("unsupported embedding size {dims}; choose one of {allowed:?}")]
    InvalidDims { dims: usize, allowed: Vec<usize> },

    #[error("invalid setting: {0}")]
    InvalidArgument(String),

    #[error("no passages found in {paths}{skipped}: give files or folders holding .txt, .md or .jsonl text")]
    EmptyInput {
        paths: String,
        /// The files passed over and why, already formatted (`" (skipped a.txt: binary file)"`).
        skipped: String,
    },

    #[error("no index at {dir}; build one with `themap index PATH...` (or pass --index DIR)")]
    IndexMissing { dir: PathBuf },

    #[error("index file {path} is damaged ({reason}); rebuild it with `themap index --rebuild` (same sources) or `themap index --rebuild PATH...`")]
    IndexCorrupt { path: PathBuf, reason: String },

    #[error("another themap command is writing the index in {dir} (it holds {dir}/writer.lock); wait for it to finish, or pass --wait to queue behind it")]
    IndexBusy { dir: PathBuf },

    #[error("the index in {dir} changed while this command ran (it read generation {read}, generation {now} is current); run the command again")]
    IndexChanged { dir: PathBuf, read: u64, now: u64 },

    #[error("theme model file {path} is damaged ({reason}); start a new theme model with `themap themes --refit` (theme ids start afresh)")]
    ThemeModelCorrupt { path: PathBuf, reason: String },

    #[error("search graph {path} is damaged ({reason}); rebuild it with `themap index --compact`")]
    GraphCorrupt { path: PathBuf, reason: String },

    #[error("index {path} has format version {found}, this themap reads version {expected}; rebuild it with `themap index --rebuild PATH...`")]
    IndexVersion { path: PathBuf, found: u32, expected: u32 },

    #[error("index {path} was built with model {found}, but the loaded model is {expected}; rebuild it with `themap index --rebuild PATH...` or load the model it was built with")]
    IndexModelMismatch {
        path: PathBuf,
        found: String,
        expected: String,
    },

    #[error("vectors {path} do not fit this index: {reason}")]
    VectorsMismatch { path: PathBuf, reason: String },

    #[error("no passage with id {id} in the index")]
    UnknownPassage { id: String },

    #[error("{path}, line {line}: {reason}")]
    BadRecord { path: PathBuf, line: usize, reason: String },

    #[error("cannot resume: {0}; start afresh with --restart")]
    ResumeMismatch(String),

    #[error("{path} already exists; pass --overwrite to replace it")]
    OutputExists { path: PathBuf },

    #[error("another themap embed is writing {path}; wait for it to finish, or write to another file")]
    OutputBusy { path: PathBuf },

    #[error("{0}")]
    DeviceUnavailable(String),
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What to do about an I/O error, by its kind; the system's own message follows in the chain.
fn io_fix(error: &std::io::Error) -> &'static str {
    use std::io::ErrorKind::*;
    match error.kind() {
        NotFound => "check that the path exists",
        PermissionDenied | ReadOnlyFilesystem => "check the permissions, or choose another path",
        StorageFull | QuotaExceeded => "free some disk space and run the command again",
        IsADirectory => "it is a folder; name a file",
        NotADirectory => "a part of the path is a file, not a folder",
        _ => "check the path, the permissions and the disk",
    }
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}
