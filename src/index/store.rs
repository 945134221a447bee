//! The index directory on disk.
//!
//! ```text
//! themap-index/
//!   manifest.json          format version, model, settings, and the data files below
//!   documents-<gen>.json   document records
//!   passages-<gen>.jsonl   one passage per line, in vector order
//!   vectors-<gen>.npy      f32 unit vectors, one row per passage (NumPy format)
//!   rows-<gen>.bin         per passage: its line's offset and checksum, its vector's checksum,
//!                            its document ([`super::rows`]), so lookups read only what they use
//!   graph-<gen>.bin        the HNSW search graph: links, 4- or 8-bit codes, node → passage row
//!   vectors-clustering-<gen>.npy    optional: every passage under the clustering prompt
//!   clustering-sample-<gen>.npy     optional: some passages under the clustering prompt,
//!   clustering-sample-<gen>.txt       and their text hashes, one per line
//!   themes-<gen>.json               optional: the kept theme model ([`super::kept`]),
//!   theme-centroids-<gen>.npy         its themes' centroids,
//!   theme-members-<gen>.tsv           and each passage's theme, by text hash
//! ```
//!
//! A save writes a new generation of data files, then replaces `manifest.json` by rename: the
//! rename is the commit. A save interrupted at any point leaves the previous manifest pointing
//! at the previous, complete files. Files of older generations are removed after the commit.
//!
//! Writers take `writer.lock` ([`lock`]), so two commands never commit over each other, and a
//! save checks that the index is still the generation its data was read from: a command that
//! read generation 3 never commits over a generation 4 that another wrote meanwhile.
//!
//! The manifest records each data file's size and xxh3 checksum; reading a file checks both, as
//! the bytes stream past, so a damaged file is an error naming it, never a wrong answer.
//! Lookups ([`super::mapped`]) read a large index in place instead, and check each passage line
//! and vector they use against the row table.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use super::{
    kept::KeptThemes, rows, BuildSettings, ClusteringSample, DocumentRecord, HnswParams, Index, ModelInfo,
    PassageRecord, SearchGraph,
};
use crate::error::{Error, Result};
use crate::hash::Hashing;

/// Version of the on-disk layout. Bump it when a change makes old indexes unreadable.
pub const FORMAT_VERSION: u32 = 1;

const MANIFEST: &str = "manifest.json";
const LOCK: &str = "writer.lock";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Manifest {
    format_version: u32,
    pub(super) generation: u64,
    themap_version: String,
    pub(super) model: ModelInfo,
    settings: BuildSettings,
    pub(super) documents: usize,
    pub(super) passages: usize,
    pub(super) files: Files,
    /// Added without a format bump: older indexes have no graph and are searched exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) graph: Option<GraphEntry>,
}

/// The search graph file and how the graph was built.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct GraphEntry {
    pub(super) file: FileEntry,
    pub(super) params: HnswParams,
    nodes: usize,
    live: usize,
    /// [`graph::LAYOUT`](super::graph::LAYOUT) of the file; absent in indexes from before there was more than one.
    #[serde(default = "first_layout")]
    pub(super) layout: u32,
}

fn first_layout() -> u32 {
    1
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Files {
    pub(super) documents: FileEntry,
    pub(super) passages: FileEntry,
    pub(super) vectors: FileEntry,
    /// Added without a format bump: older indexes are read whole by lookups too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) rows: Option<FileEntry>,
    /// Added without a format bump: older indexes simply have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    clustering_vectors: Option<FileEntry>,
    /// Added without a format bump, likewise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    clustering_sample: Option<SampleFiles>,
    /// Added without a format bump, likewise: the kept theme model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    themes: Option<ThemeFiles>,
}

/// The kept theme model's files.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ThemeFiles {
    model: FileEntry,
    centroids: FileEntry,
    members: FileEntry,
}

/// The clustering sample's vectors and passage hashes.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SampleFiles {
    vectors: FileEntry,
    hashes: FileEntry,
}

/// A data file, its exact size (so truncation is caught before parsing) and its checksum.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct FileEntry {
    pub(super) name: String,
    pub(super) bytes: u64,
    /// xxh3-64 of the file, 16 hex digits. Added without a format bump: older indexes have none
    /// and get a cheaper check of their vectors instead (unit length).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    xxh3: Option<String>,
}

/// Whether `dir` holds an index (a manifest).
pub fn exists(dir: &Path) -> bool {
    dir.join(MANIFEST).is_file()
}

/// The right to commit to an index: an exclusive advisory lock on `writer.lock` in its
/// directory, held until dropped. The system releases it when the process dies, however it dies.
#[derive(Debug)]
pub struct WriteLock {
    dir: PathBuf,
    _file: File,
}

impl WriteLock {
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Takes the writer lock of the index in `dir` (creating the directory if needed). With `wait`,
/// queues behind the command holding it; without, fails at once with [`Error::IndexBusy`].
pub fn lock(dir: &Path, wait: bool) -> Result<WriteLock> {
    if dir.exists() && !dir.is_dir() {
        return Err(Error::InvalidArgument(format!(
            "{} is a file, not an index directory; pass --index with a directory (new or holding an index)",
            dir.display()
        )));
    }
    std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
    let file =
        crate::fsutil::lock_file(&dir.join(LOCK), wait)?.ok_or_else(|| Error::IndexBusy { dir: dir.to_path_buf() })?;
    Ok(WriteLock {
        dir: dir.to_path_buf(),
        _file: file,
    })
}

/// How the index in `dir` was built (its sources among them), read from the manifest alone.
pub fn settings(dir: &Path) -> Result<BuildSettings> {
    Ok(read_manifest(dir)?.settings)
}

/// Refuses to commit `index` if it was read from (or built on) a generation that is no longer
/// the current one: committing would drop what the newer generation added.
fn check_unchanged(index: &Index, current: Option<&Manifest>, dir: &Path) -> Result<()> {
    match (index.generation, current.map(|m| m.generation)) {
        (Some(read), now) if now != Some(read) => Err(Error::IndexChanged {
            dir: dir.to_path_buf(),
            read,
            now: now.unwrap_or(0),
        }),
        _ => Ok(()),
    }
}

/// Writes `index` into the locked directory atomically (see the module docs). A kept theme
/// model stays as it is (its passages are known by their text, so it stays valid).
pub fn save(index: &Index, lock: &WriteLock) -> Result<()> {
    save_with_themes(index, None, lock)
}

/// [`save`], with `themes` replacing the kept theme model where given.
pub fn save_with_themes(index: &Index, themes: Option<&KeptThemes>, lock: &WriteLock) -> Result<()> {
    let dir = lock.dir();
    let previous = read_manifest(dir).ok();
    check_unchanged(index, previous.as_ref(), dir)?;
    let generation = next_generation(dir, previous.as_ref());

    let documents = write_file(dir, &format!("documents-{generation}.json"), |w| {
        serde_json::to_writer_pretty(&mut *w, &index.documents).map_err(std::io::Error::other)?;
        w.write_all(b"\n")
    })?;
    let document_numbers = index.document_numbers();
    let mut row_entries = Vec::with_capacity(index.passages.len());
    let passages = write_file(dir, &format!("passages-{generation}.jsonl"), |w| {
        let (mut offset, mut line) = (0u64, Vec::new());
        for (record, vector) in index.passages.iter().zip(index.vectors.outer_iter()) {
            line.clear();
            serde_json::to_writer(&mut line, record).map_err(std::io::Error::other)?;
            let document = document_numbers
                .get(record.passage.doc_id.as_str())
                .map_or(u32::MAX, |&d| d as u32);
            let vector = vector
                .as_slice()
                .map_or_else(|| vector.to_vec().into(), std::borrow::Cow::from);
            row_entries.push(rows::RowEntry::new(offset, &line, &vector, document));
            line.push(b'\n');
            w.write_all(&line)?;
            offset += line.len() as u64;
        }
        Ok(())
    })?;
    let vectors = write_vectors(dir, &format!("vectors-{generation}.npy"), &index.vectors)?;
    let rows = write_file(dir, &format!("rows-{generation}.bin"), |w| rows::write(w, &row_entries))?;
    let (clustering_vectors, clustering_sample) = write_clustering(index, dir, generation)?;

    let graph = match &index.graph {
        Some(graph) => Some(GraphEntry {
            file: write_file(dir, &format!("graph-{generation}.bin"), |w| graph.write_to(w))?,
            params: *graph.params(),
            nodes: graph.nodes(),
            live: graph.live(),
            layout: super::graph::LAYOUT,
        }),
        None => None,
    };
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        generation,
        themap_version: env!("CARGO_PKG_VERSION").to_string(),
        model: index.model.clone(),
        settings: index.settings.clone(),
        documents: index.documents.len(),
        passages: index.passages.len(),
        files: Files {
            documents,
            passages,
            vectors,
            rows: Some(rows),
            clustering_vectors,
            clustering_sample,
            themes: match themes {
                Some(themes) => Some(write_themes(themes, dir, generation)?),
                None => previous.as_ref().and_then(|m| m.files.themes.clone()),
            },
        },
        graph,
    };
    commit(dir, &manifest, previous.as_ref())
}

/// Replaces the kept theme model of the locked index, keeping every other file as it is.
/// `read` is the generation the model was fitted on: a newer index is not committed over.
pub fn save_themes(themes: &KeptThemes, read: Option<u64>, lock: &WriteLock) -> Result<()> {
    let dir = lock.dir();
    let previous = read_manifest(dir)?;
    if read.is_some_and(|read| read != previous.generation) {
        return Err(Error::IndexChanged {
            dir: dir.to_path_buf(),
            read: read.unwrap_or(0),
            now: previous.generation,
        });
    }
    let generation = next_generation(dir, Some(&previous));
    let mut manifest = previous.clone();
    manifest.generation = generation;
    manifest.files.themes = Some(write_themes(themes, dir, generation)?);
    commit(dir, &manifest, Some(&previous))
}

fn write_themes(themes: &KeptThemes, dir: &Path, generation: u64) -> Result<ThemeFiles> {
    Ok(ThemeFiles {
        model: write_file(dir, &format!("themes-{generation}.json"), |w| {
            serde_json::to_writer_pretty(&mut *w, &themes.model).map_err(std::io::Error::other)?;
            w.write_all(b"\n")
        })?,
        centroids: write_vectors(dir, &format!("theme-centroids-{generation}.npy"), &themes.centroids)?,
        members: write_file(dir, &format!("theme-members-{generation}.tsv"), |w| {
            themes.write_members(w)
        })?,
    })
}

/// The kept theme model of the index in `dir`, if it has one.
pub fn load_themes(dir: &Path) -> Result<Option<KeptThemes>> {
    let manifest = read_manifest(dir)?;
    let Some(files) = &manifest.files.themes else {
        return Ok(None);
    };
    let damaged = |entry: &FileEntry| {
        let path = dir.join(&entry.name);
        move |reason| Error::ThemeModelCorrupt { path, reason }
    };
    let model: super::kept::ThemeModel = read_data(dir, &files.model, |r| {
        serde_json::from_reader(r).map_err(|e| e.to_string())
    })
    .map_err(damaged(&files.model))?;
    let centroids = read_data(dir, &files.centroids, |r| {
        let centroids = crate::npy::read_array(&mut { r })?;
        match centroids.nrows() == model.centroid_ids.len() {
            true => Ok(centroids),
            false => Err(format!(
                "{} centroids for {} themes",
                centroids.nrows(),
                model.centroid_ids.len()
            )),
        }
    })
    .map_err(damaged(&files.centroids))?;
    let members = read_data(dir, &files.members, |r| KeptThemes::read_members(r)).map_err(damaged(&files.members))?;
    Ok(Some(KeptThemes {
        model,
        centroids,
        members,
    }))
}

/// Adds `index`'s clustering vectors and clustering sample to the locked index, keeping every
/// other file of its current generation as it is. For an index loaded without some parts
/// ([`load_parts`]), which [`save`] would lose, and so that adding a 2,000-row sample does not
/// rewrite a million passages and their vectors. Returns the generation it committed.
pub fn save_clustering(index: &Index, lock: &WriteLock) -> Result<u64> {
    let dir = lock.dir();
    let previous = read_manifest(dir)?;
    check_unchanged(index, Some(&previous), dir)?;
    let generation = next_generation(dir, Some(&previous));
    let (clustering_vectors, clustering_sample) = write_clustering(index, dir, generation)?;
    let mut manifest = previous.clone();
    manifest.generation = generation;
    manifest.files.clustering_vectors = clustering_vectors.or(previous.files.clustering_vectors.clone());
    manifest.files.clustering_sample = clustering_sample.or(previous.files.clustering_sample.clone());
    commit(dir, &manifest, Some(&previous))?;
    Ok(generation)
}

/// Writes the clustering vectors and sample that `index` holds, as files of `generation`.
fn write_clustering(index: &Index, dir: &Path, generation: u64) -> Result<(Option<FileEntry>, Option<SampleFiles>)> {
    let vectors = match &index.clustering_vectors {
        Some(v) => Some(write_vectors(dir, &format!("vectors-clustering-{generation}.npy"), v)?),
        None => None,
    };
    let sample = match &index.clustering_sample {
        Some(sample) => Some(SampleFiles {
            vectors: write_vectors(dir, &format!("clustering-sample-{generation}.npy"), &sample.vectors)?,
            hashes: write_file(dir, &format!("clustering-sample-{generation}.txt"), |w| {
                sample.hashes.iter().try_for_each(|h| writeln!(w, "{h}"))
            })?,
        }),
        None => None,
    };
    Ok((vectors, sample))
}

/// Makes `manifest` the index's (an atomic rename), then removes what no longer belongs to it.
fn commit(dir: &Path, manifest: &Manifest, previous: Option<&Manifest>) -> Result<()> {
    write_file(dir, MANIFEST, |w| {
        serde_json::to_writer_pretty(&mut *w, manifest).map_err(std::io::Error::other)?;
        w.write_all(b"\n")
    })?;
    remove_stale(dir, manifest, previous);
    Ok(())
}

/// Reads the index in `dir`, checking its format version and the size of every file.
pub fn load(dir: &Path) -> Result<Index> {
    load_parts(dir, Parts::default())
}

/// Like [`load`] but leaves the search graph out (`graph: None`), so an index whose graph file
/// is damaged can still be re-indexed and given a fresh graph.
pub fn load_without_graph(dir: &Path) -> Result<Index> {
    load_parts(
        dir,
        Parts {
            graph: false,
            ..Parts::default()
        },
    )
}

/// Which optional parts [`load_parts`] reads: work that does not need them saves their memory
/// (at a million passages the graph and the clustering vectors are gigabytes). An index loaded
/// without a part must not be saved back with [`save`]: the part would be lost
/// ([`save_clustering`] keeps it).
#[derive(Debug, Clone, Copy)]
pub struct Parts {
    pub graph: bool,
    pub clustering_vectors: bool,
}

impl Default for Parts {
    fn default() -> Self {
        Self {
            graph: true,
            clustering_vectors: true,
        }
    }
}

/// Reads the index in `dir` with the optional parts `parts` names (the others are `None`).
pub fn load_parts(dir: &Path, parts: Parts) -> Result<Index> {
    let started = std::time::Instant::now();
    let index = read_parts(dir, parts)?;
    let seconds = started.elapsed().as_secs_f64();
    // Large indexes take seconds to read: say so, since nothing else moves meanwhile.
    if seconds >= 1.0 {
        tracing::info!(
            "read {} passages from {} in {seconds:.1} s",
            index.passages.len(),
            dir.display()
        );
    }
    Ok(index)
}

fn read_parts(dir: &Path, parts: Parts) -> Result<Index> {
    let manifest = read_manifest(dir)?;
    let dims = manifest.model.dims;
    let files = &manifest.files;

    let documents = read_documents(dir, &manifest)?;
    let passages: Vec<PassageRecord> = read_index_file(dir, &files.passages, |r| {
        r.lines()
            .enumerate()
            .map(|(n, line)| {
                let line = line.map_err(|e| format!("line {}: {e}", n + 1))?;
                serde_json::from_str(&line).map_err(|e| format!("line {}: {e}", n + 1))
            })
            .collect()
    })?;
    let vectors_of = |entry: &FileEntry, rows: usize| {
        read_index_file(dir, entry, |r| read_vectors(r, rows, dims, entry.xxh3.is_none()))
    };
    let vectors = vectors_of(&files.vectors, passages.len())?;
    let clustering_vectors = match files.clustering_vectors.as_ref().filter(|_| parts.clustering_vectors) {
        Some(entry) => Some(vectors_of(entry, passages.len())?),
        None => None,
    };
    let clustering_sample = match &files.clustering_sample {
        Some(sample) => {
            let hashes: Vec<String> = read_index_file(dir, &sample.hashes, |r| {
                r.lines().collect::<std::io::Result<_>>().map_err(|e| e.to_string())
            })?;
            let vectors = vectors_of(&sample.vectors, hashes.len())?;
            Some(ClusteringSample { hashes, vectors })
        }
        None => None,
    };
    let graph = match manifest.graph.as_ref().filter(|_| parts.graph) {
        Some(entry) => Some(read_graph(dir, entry, passages.len())?),
        None => None,
    };
    Ok(Index {
        generation: Some(manifest.generation),
        graph,
        model: manifest.model,
        settings: manifest.settings,
        documents,
        passages,
        vectors,
        clustering_vectors,
        clustering_sample,
    })
}

/// The document records, checked against the manifest.
pub(super) fn read_documents(dir: &Path, manifest: &Manifest) -> Result<Vec<DocumentRecord>> {
    read_index_file(dir, &manifest.files.documents, |r| {
        let documents: Vec<DocumentRecord> = serde_json::from_reader(r).map_err(|e| e.to_string())?;
        match documents.len() == manifest.documents {
            true => Ok(documents),
            false => Err(format!(
                "{} documents, the manifest says {}",
                documents.len(),
                manifest.documents
            )),
        }
    })
}

pub(super) fn read_graph(dir: &Path, entry: &GraphEntry, passages: usize) -> Result<SearchGraph> {
    read_data(dir, &entry.file, |r| {
        let graph =
            SearchGraph::read_from(&mut { r }, entry.params, passages, entry.layout).map_err(|e| e.to_string())?;
        match graph.nodes() == entry.nodes {
            true => Ok(graph),
            false => Err(format!("{} nodes, the manifest says {}", graph.nodes(), entry.nodes)),
        }
    })
    .map_err(|reason| Error::GraphCorrupt {
        path: dir.join(&entry.file.name),
        reason,
    })
}

/// [`read_data`], with a damaged file reported as [`Error::IndexCorrupt`].
pub(super) fn read_index_file<T>(
    dir: &Path,
    entry: &FileEntry,
    parse: impl FnOnce(&mut dyn BufRead) -> Result<T, String>,
) -> Result<T> {
    read_data(dir, entry, parse).map_err(|reason| corrupt(&dir.join(&entry.name), reason))
}

/// Reads a data file through `parse`, checking its size first and, where the manifest recorded
/// one, its checksum over every byte (what the parser left unread included). `Err` says what is
/// wrong with the file.
fn read_data<T>(
    dir: &Path,
    entry: &FileEntry,
    parse: impl FnOnce(&mut dyn BufRead) -> Result<T, String>,
) -> Result<T, String> {
    let file = File::open(dir.join(&entry.name)).map_err(|e| e.to_string())?;
    let bytes = file.metadata().map_err(|e| e.to_string())?.len();
    if bytes != entry.bytes {
        return Err(format!("it is {bytes} bytes, the manifest expects {}", entry.bytes));
    }
    let mut reader = BufReader::with_capacity(1 << 20, Hashing::new(file));
    let parsed = parse(&mut reader);
    std::io::copy(&mut reader, &mut std::io::sink()).map_err(|e| e.to_string())?;
    // A checksum mismatch is the cause when both fail: the parser saw damaged bytes.
    if let Some(expected) = &entry.xxh3 {
        let found = reader.get_ref().digest();
        if &found != expected {
            return Err(format!(
                "its checksum is {found}, the manifest recorded {expected}: the file was changed after it was written"
            ));
        }
    }
    parsed
}

fn write_vectors(dir: &Path, name: &str, vectors: &Array2<f32>) -> Result<FileEntry> {
    write_file(dir, name, |w| crate::npy::write_array(w, vectors))
}

/// Reads a vector file and checks it has one row of `dims` per passage; with `check_norms` (a
/// file without checksum), also that every row is a unit vector, which damage rarely leaves.
fn read_vectors(r: &mut dyn Read, passages: usize, dims: usize, check_norms: bool) -> Result<Array2<f32>, String> {
    let vectors = crate::npy::read_array(&mut { r })?;
    let (rows, cols) = vectors.dim();
    if rows != passages || cols != dims {
        return Err(format!(
            "{rows}×{cols} vectors for {passages} passages of {dims} dimensions"
        ));
    }
    if check_norms {
        if let Some(row) = vectors.outer_iter().position(|v| (v.dot(&v) - 1.0).abs() > 1e-3) {
            return Err(format!("row {row} is not a unit vector"));
        }
    }
    Ok(vectors)
}

pub(super) fn read_manifest(dir: &Path) -> Result<Manifest> {
    let path = dir.join(MANIFEST);
    if !path.is_file() {
        return Err(Error::IndexMissing { dir: dir.to_path_buf() });
    }
    let bytes = std::fs::read(&path).map_err(Error::io(&path))?;
    // Read the version first, so a future format gets a version error, not a parse error.
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| corrupt(&path, e.to_string()))?;
    let found = value
        .get("format_version")
        .and_then(|v| v.as_u64())
        .ok_or_else(|| corrupt(&path, "no format_version".into()))?;
    if found != FORMAT_VERSION as u64 {
        return Err(Error::IndexVersion {
            path,
            found: found as u32,
            expected: FORMAT_VERSION,
        });
    }
    serde_json::from_value(value).map_err(|e| corrupt(&path, e.to_string()))
}

/// Writes `name` in `dir` atomically and records its size and checksum.
fn write_file(
    dir: &Path,
    name: &str,
    fill: impl FnOnce(&mut Hashing<&mut BufWriter<File>>) -> std::io::Result<()>,
) -> Result<FileEntry> {
    let path = dir.join(name);
    let mut digest = String::new();
    crate::fsutil::write_atomic(&path, |w| {
        let mut hashing = Hashing::new(w);
        fill(&mut hashing)?;
        digest = hashing.digest();
        Ok(())
    })?;
    let bytes = std::fs::metadata(&path).map_err(Error::io(&path))?.len();
    Ok(FileEntry {
        name: name.to_string(),
        bytes,
        xxh3: Some(digest),
    })
}

/// Removes data files of older generations and temporary files left by interrupted saves.
/// The previous generation stays: a reader that read the old manifest just before the commit
/// can still open its files. Files of a generation above `manifest`'s are never touched. Best
/// effort: a file left behind costs disk space, not correctness.
fn remove_stale(dir: &Path, manifest: &Manifest, previous: Option<&Manifest>) {
    let mut keep = file_names(manifest);
    keep.extend(previous.map(file_names).unwrap_or_default());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        // Temporary files: this writer holds the lock, so no other save is writing one.
        let temporary = name.starts_with('.') && name.contains(".tmp-");
        let older = data_generation(&name).is_some_and(|g| g < manifest.generation);
        if temporary || (older && !keep.contains(&name)) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The data files `manifest` refers to.
fn file_names(manifest: &Manifest) -> Vec<String> {
    let f = &manifest.files;
    [&f.documents, &f.passages, &f.vectors]
        .into_iter()
        .chain(&f.rows)
        .chain(&f.clustering_vectors)
        .chain(f.clustering_sample.iter().flat_map(|s| [&s.vectors, &s.hashes]))
        .chain(f.themes.iter().flat_map(|t| [&t.model, &t.centroids, &t.members]))
        .chain(manifest.graph.as_ref().map(|g| &g.file))
        .map(|e| e.name.clone())
        .collect()
}

/// The generation in a data file's name (`vectors-clustering-3.npy` → 3), if it is one.
fn data_generation(name: &str) -> Option<u64> {
    let (stem, generation) = name.split('.').next()?.rsplit_once('-')?;
    let kinds = [
        "documents",
        "passages",
        "vectors",
        "rows",
        "vectors-clustering",
        "graph",
        "clustering-sample",
        "themes",
        "theme-centroids",
        "theme-members",
    ];
    kinds.contains(&stem).then(|| generation.parse().ok()).flatten()
}

/// The generation a save writes: above the current one and above any data file in the directory,
/// so it never overwrites a file that a manifest (perhaps a damaged one) may refer to.
fn next_generation(dir: &Path, current: Option<&Manifest>) -> u64 {
    let on_disk = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| data_generation(&e.file_name().to_string_lossy()))
        .max();
    current.map(|m| m.generation).max(on_disk).unwrap_or(0) + 1
}

pub(super) fn corrupt(path: &Path, reason: String) -> Error {
    Error::IndexCorrupt {
        path: path.to_path_buf(),
        reason,
    }
}

/// Checks that the index (whose model is `index`) was built by `model`, so its vectors and a
/// query's are comparable.
pub fn check_model(index: &ModelInfo, model: &ModelInfo, dir: &Path) -> Result<()> {
    if index.checksum != model.checksum || index.dims != model.dims {
        return Err(Error::IndexModelMismatch {
            path: dir.join(MANIFEST),
            found: format!(
                "{} ({} dims, weights {})",
                index.name,
                index.dims,
                short(&index.checksum)
            ),
            expected: format!(
                "{} ({} dims, weights {})",
                model.name,
                model.dims,
                short(&model.checksum)
            ),
        });
    }
    Ok(())
}

fn short(checksum: &str) -> &str {
    &checksum[..checksum.len().min(12)]
}
