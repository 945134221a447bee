//! `themap embed`'s output: vectors as `.npy` (f32 or f16), their ids one per line, and what made
//! them (`<stem>.meta.json`, [`VectorsMeta`]), written so that an interrupted run resumes where
//! it stopped.
//!
//! While a run goes on, everything lives in `<out>.partial/`: `vectors.npy` (its header's row
//! count is fixed at the end), `ids.txt` and `state.json`. After each window both data files are
//! flushed to disk, and only then does `state.json` (replaced atomically) record how far they go;
//! anything past that point was not finished and is cut off on resume. At the end the vectors
//! header and `meta.json` are completed, `state.json` records that the files are final, and the
//! files are renamed to `<out stem>.ids.txt`, `<out stem>.meta.json` and, last, `<out>`; then the
//! folder is removed. A run stopped among those renames is completed by the next one, which
//! embeds nothing.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

use super::stream::{digest, Resume, VectorSink};
use super::{Dtype, Prompt};
use crate::corpus::Record;
use crate::error::{Error, Result};
use crate::hash::{from_hex, hex};
use crate::npy::{self, Element};

/// Everything that decides the output's bytes: a run resumes only with the same settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputSettings {
    /// sha256 of the model weights.
    pub model: String,
    pub dims: usize,
    pub prompt: Prompt,
    /// The device kind (`cpu` or `cuda`) and number format the model computed in.
    pub device: String,
    pub dtype: Dtype,
    pub element: Element,
    /// Texts per window: windows decide the batches, and so the last bits of the vectors.
    pub window: usize,
    /// The passage budget, where documents are split (files and folders as input).
    pub max_tokens: Option<usize>,
    /// Passages below this size joined a neighbour, where documents are split.
    #[serde(default)]
    pub min_tokens: Option<usize>,
}

/// What `themap embed` records beside its vectors, so that wherever they are used they can be
/// checked against their texts: which model and prompt made them, how documents were split, and
/// a digest of every (id, text) embedded, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VectorsMeta {
    /// Always [`VectorsMeta::FORMAT`].
    pub format: String,
    pub version: u32,
    /// The model directory's name (its identity is the weights checksum in `settings.model`).
    pub model_name: String,
    #[serde(flatten)]
    pub settings: OutputSettings,
    pub rows: u64,
    /// [`digest`] of the records embedded, a window at a time, hex.
    pub digest: String,
}

impl VectorsMeta {
    pub const FORMAT: &str = "themap-vectors";
    pub const VERSION: u32 = 1;
}

#[derive(Debug, Serialize, Deserialize)]
struct State {
    version: u32,
    settings: OutputSettings,
    /// Rows written and flushed: the vectors file holds at least this many, the ids file at
    /// least `ids_bytes` bytes.
    records: u64,
    ids_bytes: u64,
    /// [`digest`] of the records written, hex.
    digest: String,
    /// The files are complete and only have to be moved into place.
    #[serde(default)]
    finished: bool,
}

const STATE_VERSION: u32 = 1;

/// File names inside `<out>.partial/`.
const VECTORS: &str = "vectors.npy";
const IDS: &str = "ids.txt";
const META: &str = "meta.json";
const STATE: &str = "state.json";

/// Where the finished files are.
#[derive(Debug, Clone, Serialize)]
pub struct Written {
    pub vectors: PathBuf,
    pub ids: PathBuf,
    pub meta: PathBuf,
    pub rows: u64,
    pub dims: usize,
    pub element: Element,
}

/// Writes vectors and ids a window at a time; see the module documentation.
pub struct VectorWriter {
    out: PathBuf,
    model_name: String,
    partial: PathBuf,
    vectors: File,
    ids: File,
    state: State,
    digest: [u8; 32],
    buffer: Vec<u8>,
    /// Held while writing: two runs on one output never write over each other.
    _lock: File,
}

/// What [`VectorWriter::open`] found.
pub enum Opened {
    /// A writer, new or resuming an interrupted run ([`VectorWriter::resume`]).
    Writer(VectorWriter),
    /// An earlier run with the same settings had finished and was stopped while moving its
    /// files into place; they are in place now.
    Done(Written),
}

impl VectorWriter {
    /// Opens `out` for writing. A partial run with the same settings is resumed ([`Self::resume`]
    /// says from where), or completed if it had finished, unless `restart`; an existing `out` is
    /// replaced only with `overwrite`. `model_name` goes into the metadata file.
    pub fn open(
        out: &Path,
        settings: OutputSettings,
        model_name: &str,
        overwrite: bool,
        restart: bool,
    ) -> Result<Opened> {
        let lock = lock_output(out)?;
        let partial = partial_dir(out);
        if partial.exists() && !restart {
            if let Some(written) = complete_finished(out, &partial, &settings)? {
                return Ok(Opened::Done(written));
            }
        }
        if out.exists() && !overwrite {
            return Err(Error::OutputExists {
                path: out.to_path_buf(),
            });
        }
        if partial.exists() && !restart {
            return Self::reopen(out, model_name, partial, settings, lock).map(Opened::Writer);
        }
        if partial.exists() {
            std::fs::remove_dir_all(&partial).map_err(Error::io(&partial))?;
        }
        std::fs::create_dir_all(&partial).map_err(Error::io(&partial))?;
        let vectors_path = partial.join(VECTORS);
        let mut vectors = File::create(&vectors_path).map_err(Error::io(&vectors_path))?;
        vectors
            .write_all(&npy::header(settings.element, 0, settings.dims))
            .map_err(Error::io(&vectors_path))?;
        let ids_path = partial.join(IDS);
        let ids = File::create(&ids_path).map_err(Error::io(&ids_path))?;
        let writer = Self {
            out: out.to_path_buf(),
            model_name: model_name.to_string(),
            partial,
            vectors,
            ids,
            state: State {
                version: STATE_VERSION,
                settings,
                records: 0,
                ids_bytes: 0,
                digest: hex(&[0; 32]),
                finished: false,
            },
            digest: [0; 32],
            buffer: Vec::new(),
            _lock: lock,
        };
        writer.save_state()?;
        Ok(Opened::Writer(writer))
    }

    /// Removes the unfinished output: for a run that wrote nothing worth resuming.
    pub fn discard(self) -> Result<()> {
        std::fs::remove_dir_all(&self.partial).map_err(Error::io(&self.partial))
    }

    /// Where unfinished output is kept.
    pub fn partial_dir(&self) -> &Path {
        &self.partial
    }

    fn reopen(out: &Path, model_name: &str, partial: PathBuf, settings: OutputSettings, lock: File) -> Result<Self> {
        let state_path = partial.join(STATE);
        let damaged = |reason: String| {
            Error::ResumeMismatch(format!(
                "the unfinished output in {} is damaged ({reason})",
                partial.display()
            ))
        };
        let text = std::fs::read_to_string(&state_path).map_err(|e| damaged(e.to_string()))?;
        let state: State = serde_json::from_str(&text).map_err(|e| damaged(e.to_string()))?;
        if state.version != STATE_VERSION {
            return Err(damaged(format!("state version {}", state.version)));
        }
        if state.settings != settings {
            return Err(Error::ResumeMismatch(format!(
                "{} was started with other settings ({}), not ({})",
                out.display(),
                describe(&state.settings),
                describe(&settings)
            )));
        }
        let digest = from_hex(&state.digest).ok_or_else(|| damaged("bad digest".into()))?;
        let row_bytes = (settings.dims * settings.element.size()) as u64;
        let open = |name: &str, keep: u64| -> Result<File> {
            let path = partial.join(name);
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(|e| damaged(format!("{name}: {e}")))?;
            let len = file.metadata().map_err(Error::io(&path))?.len();
            if len < keep {
                return Err(damaged(format!("{name} is shorter than its recorded length")));
            }
            // Cut off what the interrupted run wrote after its last recorded window.
            file.set_len(keep).map_err(Error::io(&path))?;
            file.seek(SeekFrom::End(0)).map_err(Error::io(&path))?;
            Ok(file)
        };
        let vectors = open(VECTORS, npy::HEADER_LEN as u64 + state.records * row_bytes)?;
        let ids = open(IDS, state.ids_bytes)?;
        Ok(Self {
            out: out.to_path_buf(),
            model_name: model_name.to_string(),
            partial,
            vectors,
            ids,
            state,
            digest,
            buffer: Vec::new(),
            _lock: lock,
        })
    }

    /// Where an interrupted run stopped, if this one resumes it.
    pub fn resume(&self) -> Option<Resume> {
        (self.state.records > 0).then_some(Resume {
            records: self.state.records,
            digest: self.digest,
        })
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.state.records
    }

    /// Completes the files: the header gets its row count, and both files move to their names.
    pub fn finish(mut self) -> Result<Written> {
        self.seal()?;
        move_into_place(&self.out, &self.partial)
    }

    /// Completes the files in the partial folder and records that they are final.
    fn seal(&mut self) -> Result<()> {
        let vectors_path = self.partial.join(VECTORS);
        let (element, dims) = (self.state.settings.element, self.state.settings.dims);
        let header = npy::header(element, self.state.records as usize, dims);
        (|| {
            self.vectors.seek(SeekFrom::Start(0))?;
            self.vectors.write_all(&header)?;
            self.vectors.sync_all()
        })()
        .map_err(Error::io(&vectors_path))?;
        let meta = VectorsMeta {
            format: VectorsMeta::FORMAT.into(),
            version: VectorsMeta::VERSION,
            model_name: self.model_name.clone(),
            settings: self.state.settings.clone(),
            rows: self.state.records,
            digest: self.state.digest.clone(),
        };
        let meta_path = self.partial.join(META);
        crate::fsutil::write_atomic(&meta_path, |w| {
            serde_json::to_writer_pretty(&mut *w, &meta)?;
            w.write_all(b"\n")
        })?;
        // From here on a stopped run is completed by the next, not redone.
        self.state.finished = true;
        self.save_state()
    }

    fn save_state(&self) -> Result<()> {
        let path = self.partial.join(STATE);
        crate::fsutil::write_atomic(&path, |w| {
            serde_json::to_writer_pretty(&mut *w, &self.state)?;
            Ok(())
        })
    }
}

impl VectorSink for VectorWriter {
    fn write(&mut self, records: &[Record], vectors: ArrayView2<f32>) -> Result<()> {
        self.buffer.clear();
        self.state
            .settings
            .element
            .encode(vectors.iter().copied(), &mut self.buffer);
        append(&mut self.vectors, &self.buffer, &self.partial.join(VECTORS))?;
        self.buffer.clear();
        for record in records {
            self.buffer.extend(record.id.as_bytes());
            self.buffer.push(b'\n');
        }
        append(&mut self.ids, &self.buffer, &self.partial.join(IDS))?;
        self.digest = digest(self.digest, records);
        self.state.records += records.len() as u64;
        self.state.ids_bytes += self.buffer.len() as u64;
        self.state.digest = hex(&self.digest);
        self.save_state()
    }
}

/// Completes the output in `partial` if its run had finished (see the module docs): returns
/// what is now in place, or `None` if there is no finished run there.
fn complete_finished(out: &Path, partial: &Path, settings: &OutputSettings) -> Result<Option<Written>> {
    let state: Option<State> = std::fs::read_to_string(partial.join(STATE))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok());
    match state {
        Some(state) if state.finished && &state.settings == settings => move_into_place(out, partial).map(Some),
        _ => Ok(None),
    }
}

/// Moves the finished files from `partial` to their names, the vectors last (once they are
/// there, so are their ids and metadata), skipping those already moved; then removes `partial`.
fn move_into_place(out: &Path, partial: &Path) -> Result<Written> {
    let meta_out = meta_path_for(out);
    let moves = [
        (IDS, ids_path(out)),
        (META, meta_out.clone()),
        (VECTORS, out.to_path_buf()),
    ];
    for (name, to) in &moves {
        let from = partial.join(name);
        if from.exists() {
            std::fs::rename(&from, to).map_err(Error::io(to))?;
        }
    }
    std::fs::remove_dir_all(partial).map_err(Error::io(partial))?;
    let meta: VectorsMeta = serde_json::from_str(&std::fs::read_to_string(&meta_out).map_err(Error::io(&meta_out))?)
        .map_err(|source| Error::Json {
            path: meta_out.clone(),
            source,
        })?;
    Ok(Written {
        vectors: out.to_path_buf(),
        ids: ids_path(out),
        meta: meta_out,
        rows: meta.rows,
        dims: meta.settings.dims,
        element: meta.settings.element,
    })
}

/// Appends `bytes` and flushes them to disk before the state may record them.
fn append(file: &mut File, bytes: &[u8], path: &Path) -> Result<()> {
    file.write_all(bytes)
        .and_then(|()| file.sync_data())
        .map_err(Error::io(path))
}

/// `vectors.npy` → `vectors.ids.txt`.
pub fn ids_path(out: &Path) -> PathBuf {
    beside(out, "ids.txt")
}

/// `vectors.npy` → `vectors.meta.json`.
pub fn meta_path_for(out: &Path) -> PathBuf {
    beside(out, "meta.json")
}

/// `vectors.npy` → `vectors.<suffix>`.
fn beside(out: &Path, suffix: &str) -> PathBuf {
    let stem = out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    out.with_file_name(format!("{stem}.{suffix}"))
}

/// Takes the lock of `out`: the hidden file `.vectors.npy.lock` beside it.
fn lock_output(out: &Path) -> Result<File> {
    let name = out
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    crate::fsutil::lock_file(&out.with_file_name(format!(".{name}.lock")), false)?.ok_or_else(|| Error::OutputBusy {
        path: out.to_path_buf(),
    })
}

/// `vectors.npy` → `vectors.npy.partial/`.
pub fn partial_dir(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    out.with_file_name(format!("{name}.partial"))
}

fn describe(s: &OutputSettings) -> String {
    format!(
        "{} dims, {:?} prompt, {} {}, {:?} output, window {}, {}, model {}",
        s.dims,
        s.prompt,
        s.device,
        s.dtype.name(),
        s.element,
        s.window,
        match s.max_tokens {
            Some(n) => format!("documents split into passages of {n} tokens"),
            None => "records embedded whole".to_string(),
        },
        &s.model[..s.model.len().min(12)]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embed::stream::{embed_stream, BatchLimits, StreamOptions};
    use crate::embed::Embedder;
    use ndarray::Array2;

    /// Vectors that depend on every token, so a misplaced row shows.
    struct Fake;

    impl Embedder for Fake {
        fn dim(&self) -> usize {
            4
        }
        fn tokenize(&self, texts: &[&str], _: Prompt) -> Result<Vec<Vec<u32>>> {
            Ok(texts.iter().map(|t| t.chars().map(|c| c as u32).collect()).collect())
        }
        fn embed_tokens(&self, rows: &[&[u32]]) -> Result<Array2<f32>> {
            let mut out = Array2::zeros((rows.len(), 4));
            for (i, row) in rows.iter().enumerate() {
                for (j, &t) in row.iter().enumerate() {
                    out[[i, j % 4]] += (t % 97) as f32 + j as f32;
                }
            }
            Ok(out)
        }
        fn batch_limits(&self) -> BatchLimits {
            BatchLimits {
                max_texts: 3,
                max_tokens: 40,
            }
        }
    }

    fn settings() -> OutputSettings {
        OutputSettings {
            model: "fake".into(),
            dims: 4,
            prompt: Prompt::Document,
            device: "cpu".into(),
            dtype: Dtype::F32,
            element: Element::F32,
            window: 5,
            max_tokens: None,
            min_tokens: None,
        }
    }

    fn records(n: usize, fail_at: Option<usize>) -> impl Iterator<Item = Result<Record>> + Send {
        (0..n).map(move |i| {
            if Some(i) == fail_at {
                return Err(Error::InvalidArgument("simulated crash".into()));
            }
            Ok(Record {
                id: format!("id{i}"),
                text: "x".repeat(1 + i * 7 % 13),
            })
        })
    }

    #[test]
    fn two_writers_never_share_an_output() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("v.npy");
        let first = VectorWriter::open(&out, settings(), "fake", false, false).unwrap();
        assert!(matches!(
            VectorWriter::open(&out, settings(), "fake", false, true),
            Err(Error::OutputBusy { .. })
        ));
        assert!(matches!(run(&out, 7, None, false), Err(Error::OutputBusy { .. })));
        drop(first);
        assert_eq!(run(&out, 7, None, false).unwrap().unwrap().rows, 7);
    }

    fn run(out: &Path, n: usize, fail_at: Option<usize>, restart: bool) -> Result<Option<Written>> {
        let Opened::Writer(mut writer) = VectorWriter::open(out, settings(), "fake", false, restart)? else {
            panic!("nothing to complete in these tests")
        };
        let options = StreamOptions {
            window: 5,
            resume: writer.resume(),
            ..StreamOptions::new(Prompt::Document)
        };
        embed_stream(&Fake, records(n, fail_at), &options, &mut writer, &crate::Silent)?;
        writer.finish().map(Some)
    }

    #[test]
    fn an_interrupted_run_resumes_to_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let whole = dir.path().join("whole.npy");
        run(&whole, 23, None, false).unwrap();

        let resumed = dir.path().join("resumed.npy");
        assert!(run(&resumed, 23, Some(12), false).is_err());
        assert!(!resumed.exists());
        // A crash between writing a window and recording it leaves bytes the state does not cover.
        let partial = partial_dir(&resumed).join(VECTORS);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&partial)
            .unwrap()
            .write_all(&[7; 10])
            .unwrap();
        let state: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(partial_dir(&resumed).join(STATE)).unwrap()).unwrap();
        assert_eq!(state["records"], 10, "two full windows before the failure");

        let written = run(&resumed, 23, None, false).unwrap().unwrap();
        assert_eq!(written.rows, 23);
        assert_eq!(std::fs::read(&resumed).unwrap(), std::fs::read(&whole).unwrap());
        assert_eq!(
            std::fs::read(ids_path(&resumed)).unwrap(),
            std::fs::read(ids_path(&whole)).unwrap()
        );
    }

    #[test]
    fn resuming_refuses_other_input_or_settings() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("v.npy");
        assert!(run(&out, 23, Some(12), false).is_err());
        // Fewer records than were embedded: the input changed.
        let err = run(&out, 7, None, false).unwrap_err();
        assert!(matches!(err, Error::ResumeMismatch(_)), "{err}");
        let other = OutputSettings {
            element: Element::F16,
            ..settings()
        };
        let Err(err) = VectorWriter::open(&out, other, "fake", false, false) else {
            panic!("other settings must be refused")
        };
        assert!(err.to_string().contains("other settings"), "{err}");
        // --restart starts over.
        assert_eq!(run(&out, 23, None, true).unwrap().unwrap().rows, 23);
        assert!(matches!(run(&out, 23, None, false), Err(Error::OutputExists { .. })));
        // Even with a partial run beside it, a finished file is replaced only with --overwrite.
        std::fs::create_dir_all(partial_dir(&out)).unwrap();
        assert!(matches!(run(&out, 23, None, true), Err(Error::OutputExists { .. })));
    }

    /// `--overwrite` stopped among its final renames: the next run completes them, embedding
    /// nothing, and the three files agree (not new ids beside old vectors).
    #[test]
    fn a_run_stopped_while_moving_its_files_is_completed() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("v.npy");
        run(&out, 7, None, false).unwrap();
        let Opened::Writer(mut writer) = VectorWriter::open(&out, settings(), "fake", true, false).unwrap() else {
            panic!("a new run")
        };
        let options = StreamOptions {
            window: 5,
            ..StreamOptions::new(Prompt::Document)
        };
        embed_stream(&Fake, records(23, None), &options, &mut writer, &crate::Silent).unwrap();
        writer.seal().unwrap();
        // Stopped after the first rename: new ids beside the old vectors.
        std::fs::rename(partial_dir(&out).join(IDS), ids_path(&out)).unwrap();
        drop(writer); // the process stops, and its lock goes with it

        let Opened::Done(written) = VectorWriter::open(&out, settings(), "fake", false, false).unwrap() else {
            panic!("the finished run must be completed, not redone")
        };
        assert_eq!(written.rows, 23);
        assert!(!partial_dir(&out).exists());
        let vectors = npy::read_array(&mut File::open(&out).unwrap()).unwrap();
        let ids = std::fs::read_to_string(ids_path(&out)).unwrap();
        assert_eq!((vectors.nrows(), ids.lines().count()), (23, 23));

        // Stopped after all renames, before the folder was removed: also complete.
        std::fs::create_dir_all(partial_dir(&out)).unwrap();
        let state = State {
            version: STATE_VERSION,
            settings: settings(),
            records: 23,
            ids_bytes: 0,
            digest: hex(&[0; 32]),
            finished: true,
        };
        std::fs::write(partial_dir(&out).join(STATE), serde_json::to_string(&state).unwrap()).unwrap();
        let Opened::Done(written) = VectorWriter::open(&out, settings(), "fake", false, false).unwrap() else {
            panic!("nothing left to do but remove the folder")
        };
        assert_eq!(written.rows, 23);
        assert!(!partial_dir(&out).exists());
    }
}
