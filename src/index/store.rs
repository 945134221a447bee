//! The index directory on disk.
//!
//! ```text
//! themap-index/
//!   manifest.json          format version, model, settings, and the data files below
//!   documents-<gen>.json   document records
//!   passages-<gen>.jsonl   one passage per line, in vector order
//!   vectors-<gen>.npy      f32 unit vectors, one row per passage (NumPy format)
//!   graph-<gen>.bin        the HNSW search graph: links, 8-bit codes, node → passage row
//!   vectors-clustering-<gen>.npy    optional: every passage under the clustering prompt
//!   clustering-sample-<gen>.npy     optional: some passages under the clustering prompt,
//!   clustering-sample-<gen>.txt       and their text hashes, one per line
//! ```
//!
//! A save writes a new generation of data files, then replaces `manifest.json` by rename: the
//! rename is the commit. A save interrupted at any point leaves the previous manifest pointing
//! at the previous, complete files. Files of older generations are removed after the commit.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use super::{
    BuildSettings, ClusteringSample, DocumentRecord, HnswParams, Index, ModelInfo, PassageRecord, SearchGraph,
};
use crate::error::{Error, Result};

/// Version of the on-disk layout. Bump it when a change makes old indexes unreadable.
pub const FORMAT_VERSION: u32 = 1;

const MANIFEST: &str = "manifest.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Manifest {
    format_version: u32,
    generation: u64,
    themap_version: String,
    model: ModelInfo,
    settings: BuildSettings,
    documents: usize,
    passages: usize,
    files: Files,
    /// Added without a format bump: older indexes have no graph and are searched exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    graph: Option<GraphEntry>,
}

/// The search graph file and how the graph was built.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct GraphEntry {
    file: FileEntry,
    params: HnswParams,
    nodes: usize,
    live: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Files {
    documents: FileEntry,
    passages: FileEntry,
    vectors: FileEntry,
    /// Added without a format bump: older indexes simply have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    clustering_vectors: Option<FileEntry>,
    /// Added without a format bump, likewise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    clustering_sample: Option<SampleFiles>,
}

/// The clustering sample's vectors and passage hashes.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SampleFiles {
    vectors: FileEntry,
    hashes: FileEntry,
}

/// A data file and its exact size, so truncation is caught before parsing.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct FileEntry {
    name: String,
    bytes: u64,
}

/// Whether `dir` holds an index (a manifest).
pub fn exists(dir: &Path) -> bool {
    dir.join(MANIFEST).is_file()
}

/// Writes `index` into `dir` atomically (see the module docs).
pub fn save(index: &Index, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
    let previous = read_manifest(dir).ok();
    let generation = previous.as_ref().map_or(1, |m| m.generation + 1);

    let documents = write_file(dir, &format!("documents-{generation}.json"), |w| {
        serde_json::to_writer_pretty(&mut *w, &index.documents).map_err(std::io::Error::other)?;
        w.write_all(b"\n")
    })?;
    let passages = write_file(dir, &format!("passages-{generation}.jsonl"), |w| {
        for record in &index.passages {
            serde_json::to_writer(&mut *w, record).map_err(std::io::Error::other)?;
            w.write_all(b"\n")?;
        }
        Ok(())
    })?;
    let vectors = write_vectors(dir, &format!("vectors-{generation}.npy"), &index.vectors)?;
    let (clustering_vectors, clustering_sample) = write_clustering(index, dir, generation)?;

    let graph = match &index.graph {
        Some(graph) => Some(GraphEntry {
            file: write_file(dir, &format!("graph-{generation}.bin"), |w| graph.write_to(w))?,
            params: *graph.params(),
            nodes: graph.nodes(),
            live: graph.live(),
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
            clustering_vectors,
            clustering_sample,
        },
        graph,
    };
    commit(dir, &manifest, previous.as_ref())
}

/// Adds `index`'s clustering vectors and clustering sample to the index in `dir`, keeping every
/// other file of its current generation as it is. For an index loaded without some parts
/// ([`load_parts`]), which [`save`] would lose, and so that adding a 2,000-row sample does not
/// rewrite a million passages and their vectors.
pub fn save_clustering(index: &Index, dir: &Path) -> Result<()> {
    let previous = read_manifest(dir)?;
    if previous.passages != index.passages.len() {
        return Err(Error::InvalidArgument(format!(
            "the index in {} changed while it was being read ({} passages now, {} read); run the command again",
            dir.display(),
            previous.passages,
            index.passages.len()
        )));
    }
    let generation = previous.generation + 1;
    let (clustering_vectors, clustering_sample) = write_clustering(index, dir, generation)?;
    let mut manifest = previous.clone();
    manifest.generation = generation;
    manifest.files.clustering_vectors = clustering_vectors.or(previous.files.clustering_vectors.clone());
    manifest.files.clustering_sample = clustering_sample.or(previous.files.clustering_sample.clone());
    commit(dir, &manifest, Some(&previous))
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
    let manifest_path = dir.join(MANIFEST);
    if !manifest_path.is_file() {
        return Err(Error::IndexMissing { dir: dir.to_path_buf() });
    }
    let manifest = read_manifest(dir)?;
    let path_of = |entry: &FileEntry| -> Result<PathBuf> {
        let path = dir.join(&entry.name);
        let bytes = std::fs::metadata(&path).map_err(Error::io(&path))?.len();
        if bytes != entry.bytes {
            return Err(corrupt(
                &path,
                format!("it is {bytes} bytes, the manifest expects {}", entry.bytes),
            ));
        }
        Ok(path)
    };

    let path = path_of(&manifest.files.documents)?;
    let documents: Vec<DocumentRecord> =
        serde_json::from_reader(BufReader::new(File::open(&path).map_err(Error::io(&path))?))
            .map_err(|e| corrupt(&path, e.to_string()))?;

    let path = path_of(&manifest.files.passages)?;
    let reader = BufReader::new(File::open(&path).map_err(Error::io(&path))?);
    let passages = reader
        .lines()
        .enumerate()
        .map(|(n, line)| {
            let line = line.map_err(|e| corrupt(&path, format!("line {}: {e}", n + 1)))?;
            serde_json::from_str::<PassageRecord>(&line).map_err(|e| corrupt(&path, format!("line {}: {e}", n + 1)))
        })
        .collect::<Result<Vec<_>>>()?;

    if documents.len() != manifest.documents {
        let path = dir.join(&manifest.files.documents.name);
        return Err(corrupt(
            &path,
            format!(
                "{} documents, the manifest says {}",
                documents.len(),
                manifest.documents
            ),
        ));
    }
    let vectors = read_vectors(&path_of(&manifest.files.vectors)?, passages.len(), manifest.model.dims)?;
    let clustering_vectors = match manifest
        .files
        .clustering_vectors
        .as_ref()
        .filter(|_| parts.clustering_vectors)
    {
        Some(entry) => Some(read_vectors(&path_of(entry)?, passages.len(), manifest.model.dims)?),
        None => None,
    };
    let clustering_sample = match &manifest.files.clustering_sample {
        Some(files) => {
            let path = path_of(&files.hashes)?;
            let hashes: Vec<String> = std::fs::read_to_string(&path)
                .map_err(Error::io(&path))?
                .lines()
                .map(str::to_string)
                .collect();
            let vectors = read_vectors(&path_of(&files.vectors)?, hashes.len(), manifest.model.dims)?;
            Some(ClusteringSample { hashes, vectors })
        }
        None => None,
    };
    let graph = match manifest.graph.as_ref().filter(|_| parts.graph) {
        Some(entry) => Some(read_graph(dir, entry, passages.len())?),
        None => None,
    };
    Ok(Index {
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

fn read_graph(dir: &Path, entry: &GraphEntry, passages: usize) -> Result<SearchGraph> {
    let path = dir.join(&entry.file.name);
    let damaged = |reason: String| Error::GraphCorrupt {
        path: path.clone(),
        reason,
    };
    let file = File::open(&path).map_err(|e| damaged(e.to_string()))?;
    let bytes = file.metadata().map_err(Error::io(&path))?.len();
    if bytes != entry.file.bytes {
        return Err(damaged(format!(
            "it is {bytes} bytes, the manifest expects {}",
            entry.file.bytes
        )));
    }
    let graph = SearchGraph::read_from(&mut BufReader::new(file), entry.params, passages)
        .map_err(|e| damaged(e.to_string()))?;
    if graph.nodes() != entry.nodes {
        return Err(damaged(format!(
            "{} nodes, the manifest says {}",
            graph.nodes(),
            entry.nodes
        )));
    }
    Ok(graph)
}

fn write_vectors(dir: &Path, name: &str, vectors: &Array2<f32>) -> Result<FileEntry> {
    write_file(dir, name, |w| crate::npy::write_array(w, vectors))
}

/// Reads a vector file and checks it has one row of `dims` per passage.
fn read_vectors(path: &Path, passages: usize, dims: usize) -> Result<Array2<f32>> {
    let file = File::open(path).map_err(Error::io(path))?;
    let vectors = crate::npy::read_array(&mut BufReader::new(file)).map_err(|e| corrupt(path, e))?;
    let (rows, cols) = vectors.dim();
    if rows != passages || cols != dims {
        return Err(corrupt(
            path,
            format!("{rows}×{cols} vectors for {passages} passages of {dims} dimensions"),
        ));
    }
    Ok(vectors)
}

fn read_manifest(dir: &Path) -> Result<Manifest> {
    let path = dir.join(MANIFEST);
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

/// Writes `name` in `dir` atomically and records its size.
fn write_file(
    dir: &Path,
    name: &str,
    fill: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<FileEntry> {
    let path = dir.join(name);
    crate::fsutil::write_atomic(&path, fill)?;
    let bytes = std::fs::metadata(&path).map_err(Error::io(&path))?.len();
    Ok(FileEntry {
        name: name.to_string(),
        bytes,
    })
}

/// Removes data files of older generations and temporary files left by interrupted saves.
/// The previous generation stays: a reader that read the old manifest just before the commit
/// can still open its files. Best effort: a file left behind costs disk space, not correctness.
fn remove_stale(dir: &Path, manifest: &Manifest, previous: Option<&Manifest>) {
    let names = |m: &Manifest| -> Vec<String> {
        let f = &m.files;
        [&f.documents, &f.passages, &f.vectors]
            .into_iter()
            .chain(&f.clustering_vectors)
            .chain(f.clustering_sample.iter().flat_map(|s| [&s.vectors, &s.hashes]))
            .chain(m.graph.as_ref().map(|g| &g.file))
            .map(|e| e.name.clone())
            .collect()
    };
    let mut current = names(manifest);
    current.extend(previous.map(names).unwrap_or_default());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let ours = [
            "documents-",
            "passages-",
            "vectors-",
            "graph-",
            ".graph-",
            "clustering-sample-",
            ".clustering-sample-",
            ".documents-",
            ".passages-",
            ".vectors-",
            ".manifest.json.tmp",
        ]
        .iter()
        .any(|prefix| name.starts_with(prefix));
        if ours && !current.contains(&name) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn corrupt(path: &Path, reason: String) -> Error {
    Error::IndexCorrupt {
        path: path.to_path_buf(),
        reason,
    }
}

/// Checks that the index was built by `model`, so its vectors and a query's are comparable.
pub fn check_model(index: &Index, model: &ModelInfo, dir: &Path) -> Result<()> {
    if index.model.checksum != model.checksum || index.model.dims != model.dims {
        return Err(Error::IndexModelMismatch {
            path: dir.join(MANIFEST),
            found: format!(
                "{} ({} dims, weights {})",
                index.model.name,
                index.model.dims,
                short(&index.model.checksum)
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
