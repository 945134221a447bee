//! An index opened for lookups: memory-mapped, so opening reads the manifest, the documents and
//! a few headers, and a search reads only the pages it touches.
//!
//! Reading a million-passage index whole takes seconds (gigabytes of vectors and passage text)
//! for a lookup that uses a few kilobytes of it. Here the vectors, the search graph, the passage
//! lines and the row table ([`super::rows`]) stay in the page cache, shared by every process that
//! looks them up. What a result is made of is still checked: each passage line returned and each
//! vector scored is compared with its checksum in the row table, and the graph's node → passage
//! table with its own, so damage there is an error naming the file, never a wrong answer. The
//! graph's links and codes only guide the walk: damage there can cost recall, never a
//! wrong score or a panic. `themap index` (and every command that reads the index whole) checks
//! every byte.
//!
//! Indexes from before the row table are read whole, as [`super::store::load`] does.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hnsw_rs::frozen::{Array, SharedBytes};
use ndarray::{ArrayView1, ArrayView2};

use super::rows::{vector_digest, RowTable};
use super::store::{self, corrupt, FileEntry, Parts};
use super::{DocumentRecord, Filter, Hit, Limits, ModelInfo, PassageRecord, Ranking, SearchGraph};
use crate::error::{Error, Result};

/// A search result with its passage, ready to show.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub score: f32,
    pub passage: PassageRecord,
    /// Position of the passage's document in [`MappedIndex::documents`].
    pub document: Option<usize>,
}

/// An index opened for lookups. See the module docs.
pub struct MappedIndex {
    pub model: ModelInfo,
    pub documents: Vec<DocumentRecord>,
    document_numbers: HashMap<String, usize>,
    dims: usize,
    vectors: Array<f32>,
    graph: Option<SearchGraph>,
    passages: Passages,
}

enum Passages {
    /// Lines found through the row table.
    Mapped {
        table: RowTable,
        lines: SharedBytes,
        lines_path: PathBuf,
        vectors_path: PathBuf,
        table_path: PathBuf,
    },
    /// An index without a row table, read and checked whole.
    Loaded(Vec<PassageRecord>),
}

impl MappedIndex {
    /// Opens the index in `dir` for lookups.
    pub fn open(dir: &Path) -> Result<Self> {
        let manifest = store::read_manifest(dir)?;
        let Some(rows_entry) = manifest.files.rows.clone() else {
            tracing::info!(
                "{} has no row table (an index from an older themap): reading it whole; `themap index` adds one",
                dir.display()
            );
            return Ok(Self::loaded(store::load_parts(
                dir,
                Parts {
                    graph: true,
                    clustering_vectors: false,
                },
            )?));
        };
        let documents = store::read_documents(dir, &manifest)?;
        let (dims, passages) = (manifest.model.dims, manifest.passages);

        let vectors_path = dir.join(&manifest.files.vectors.name);
        let vector_bytes = map(dir, &manifest.files.vectors)?;
        let vectors = view_vectors(&vector_bytes, passages, dims).map_err(|reason| corrupt(&vectors_path, reason))?;
        let table = RowTable::view(map(dir, &rows_entry)?, passages)
            .map_err(|reason| corrupt(&dir.join(&rows_entry.name), reason))?;
        let lines = map(dir, &manifest.files.passages)?;
        let graph = match &manifest.graph {
            Some(entry) if entry.layout >= 2 => {
                let damaged = |reason: String| Error::GraphCorrupt {
                    path: dir.join(&entry.file.name),
                    reason,
                };
                let bytes = map(dir, &entry.file).map_err(|e| match e {
                    Error::IndexCorrupt { reason, .. } => damaged(reason),
                    other => other,
                })?;
                Some(SearchGraph::view(&bytes, entry.params, passages).map_err(|e| damaged(e.to_string()))?)
            }
            Some(entry) => Some(store::read_graph(dir, entry, passages)?),
            None => None,
        };
        Ok(Self {
            model: manifest.model,
            document_numbers: numbers(&documents),
            documents,
            dims,
            vectors,
            graph,
            passages: Passages::Mapped {
                table,
                lines,
                lines_path: dir.join(&manifest.files.passages.name),
                vectors_path,
                table_path: dir.join(&rows_entry.name),
            },
        })
    }

    fn loaded(index: super::Index) -> Self {
        let dims = index.model.dims;
        let (vectors, _) = index.vectors.into_raw_vec_and_offset();
        Self {
            model: index.model,
            document_numbers: numbers(&index.documents),
            documents: index.documents,
            dims,
            vectors: Array::Owned(vectors),
            graph: index.graph,
            passages: Passages::Loaded(index.passages),
        }
    }

    /// Number of passages.
    pub fn len(&self) -> usize {
        self.vectors.len() / self.dims.max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn vectors(&self) -> ArrayView2<'_, f32> {
        ArrayView2::from_shape((self.len(), self.dims), &self.vectors).expect("rows × dims values")
    }

    /// The `k` passages most similar to the unit vector `query` among those `filter` accepts,
    /// best first.
    pub fn search(&self, query: ArrayView1<f32>, limits: &Limits, filter: &Filter) -> Result<Vec<Found>> {
        let hits = self
            .ranking()
            .ranked(query, limits, filter, |_| true, |hits| self.check_vectors(hits))?;
        self.found(&hits)
    }

    /// The `k` passages nearest to passage `id`, itself excluded; with `other_docs`, only
    /// passages from other documents.
    pub fn similar(&self, id: &str, limits: &Limits, other_docs: bool, filter: &Filter) -> Result<Vec<Found>> {
        let row = self
            .position(id)?
            .ok_or_else(|| Error::UnknownPassage { id: id.to_string() })?;
        self.check_vectors(&[Hit { row, score: 0.0 }])?;
        let document = self.document_of(row);
        let vectors = self.vectors();
        let query = vectors.row(row);
        let hits = self.ranking().ranked(
            query,
            limits,
            filter,
            |i| i != row && !(other_docs && self.document_of(i) == document),
            |hits| self.check_vectors(hits),
        )?;
        self.found(&hits)
    }

    /// Refuses a filter naming a document or tag the index does not have.
    pub fn check_filter(&self, filter: &Filter) -> Result<()> {
        super::check_filter(&self.documents, filter)
    }

    fn ranking(&self) -> Ranking<'_> {
        Ranking {
            documents: &self.documents,
            vectors: self.vectors(),
            graph: self.graph.as_ref(),
            document_of: Box::new(|row| self.document_of(row)),
        }
    }

    /// Position in `documents` of the document of passage `row` (`usize::MAX` if unknown).
    fn document_of(&self, row: usize) -> usize {
        match &self.passages {
            Passages::Mapped { table, .. } => table.entry(row).document as usize,
            Passages::Loaded(records) => self
                .document_numbers
                .get(records[row].passage.doc_id.as_str())
                .copied()
                .unwrap_or(usize::MAX),
        }
    }

    /// Checks the vectors of `hits` (every vector a search scored) against the row table.
    fn check_vectors(&self, hits: &[Hit]) -> Result<()> {
        let Passages::Mapped {
            table, vectors_path, ..
        } = &self.passages
        else {
            return Ok(());
        };
        let vectors = self.vectors();
        for hit in hits {
            let vector = vectors.row(hit.row);
            if vector_digest(vector.as_slice().expect("rows are contiguous")) != table.entry(hit.row).vector_xxh3 {
                return Err(corrupt(
                    vectors_path,
                    format!("the vector of passage row {} does not match its checksum in the row table: the file was changed after it was written", hit.row),
                ));
            }
        }
        Ok(())
    }

    /// The passage at `row`, checked against the row table.
    pub fn passage(&self, row: usize) -> Result<PassageRecord> {
        let (table, lines, path) = match &self.passages {
            Passages::Loaded(records) => return Ok(records[row].clone()),
            Passages::Mapped {
                table,
                lines,
                lines_path,
                ..
            } => (table, (**lines).as_ref(), lines_path),
        };
        let entry = table.entry(row);
        let end = table.line_end(row, lines.len() as u64);
        let line = usize::try_from(entry.line_offset)
            .ok()
            .zip(usize::try_from(end).ok())
            .and_then(|(start, end)| lines.get(start..end))
            .filter(|line| xxhash_rust::xxh3::xxh3_64(line) == entry.line_xxh3)
            .ok_or_else(|| {
                corrupt(
                    path,
                    format!("the line of passage row {row} does not match its checksum in the row table: the file was changed after it was written"),
                )
            })?;
        serde_json::from_slice(line).map_err(|e| corrupt(path, format!("passage row {row}: {e}")))
    }

    /// Row of the passage with this id. Passages are stored document by document, so the id's
    /// document and number point at the row; an index in another order is searched.
    pub fn position(&self, id: &str) -> Result<Option<usize>> {
        if let Passages::Loaded(records) = &self.passages {
            return Ok(records.iter().position(|p| p.passage.id == id));
        }
        let Some((doc_id, number)) = id.rsplit_once('#') else {
            return Ok(None);
        };
        let (Some(&document), Ok(number)) = (self.document_numbers.get(doc_id), number.parse::<usize>()) else {
            return Ok(None);
        };
        let first_row: usize = self.documents[..document].iter().map(|d| d.passages).sum();
        let guess = (first_row + number)
            .checked_sub(1)
            .filter(|&row| number > 0 && row < self.len());
        if let Some(row) = guess {
            if self.passage(row)?.passage.id == id {
                return Ok(Some(row));
            }
        }
        for row in (0..self.len()).filter(|&row| self.document_of(row) == document) {
            if self.passage(row)?.passage.id == id {
                return Ok(Some(row));
            }
        }
        Ok(None)
    }

    /// `hits` with their passages.
    fn found(&self, hits: &[Hit]) -> Result<Vec<Found>> {
        hits.iter()
            .map(|hit| {
                let passage = self.passage(hit.row)?;
                let document = self.document_numbers.get(passage.passage.doc_id.as_str()).copied();
                // The filter chose this row by the table's document number: it must be the
                // passage's own, or a damaged table entry let a passage through a filter.
                if let Passages::Mapped { table_path, .. } = &self.passages {
                    if document != Some(self.document_of(hit.row)) {
                        return Err(corrupt(
                            table_path,
                            format!("the document of passage row {} does not match its line", hit.row),
                        ));
                    }
                }
                Ok(Found {
                    score: hit.score,
                    document,
                    passage,
                })
            })
            .collect()
    }
}

fn numbers(documents: &[DocumentRecord]) -> HashMap<String, usize> {
    documents.iter().enumerate().map(|(i, d)| (d.id.clone(), i)).collect()
}

/// Maps a data file, checking its size against the manifest.
fn map(dir: &Path, entry: &FileEntry) -> Result<SharedBytes> {
    let path = dir.join(&entry.name);
    let file = File::open(&path).map_err(Error::io(&path))?;
    let bytes = file.metadata().map_err(Error::io(&path))?.len();
    if bytes != entry.bytes {
        return Err(corrupt(
            &path,
            format!("it is {bytes} bytes, the manifest expects {}", entry.bytes),
        ));
    }
    // SAFETY: themap writes a data file once, under a new name, and never changes it in place
    // (see `store`); a file changed by something else while mapped gives bytes that the checks
    // report, as a read would.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(Error::io(&path))?;
    #[cfg(unix)]
    {
        // Lookups jump around the file: read-ahead would load pages nobody asked for.
        let _ = map.advise(memmap2::Advice::Random);
    }
    Ok(Arc::new(map))
}

/// The f32 values of a mapped `.npy` of `rows × dims`.
fn view_vectors(bytes: &SharedBytes, rows: usize, dims: usize) -> std::result::Result<Array<f32>, String> {
    let all = (**bytes).as_ref();
    let mut reader = all;
    let (element, found_rows, found_dims) = crate::npy::read_header(&mut reader)?;
    if element != crate::npy::Element::F32 || (found_rows, found_dims) != (rows, dims) {
        return Err(format!(
            "{found_rows}×{found_dims} {element:?} vectors for {rows} passages of {dims} dimensions"
        ));
    }
    let start = all.len() - reader.len();
    if reader.len() != 4 * rows * dims {
        return Err(format!(
            "{} bytes of vectors, {rows}×{dims} need {}",
            reader.len(),
            4 * rows * dims
        ));
    }
    Array::view(bytes, start, rows * dims).ok_or_else(|| "truncated".to_string())
}
