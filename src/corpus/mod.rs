//! Stages 1–2: documents in, clean passages out.
//!
//! [`read`] finds and decodes files, [`clean`] drops page furniture (menus, navigation,
//! footers) and finds paragraphs, [`split`] cuts paragraphs into passages under a token budget.

pub mod clean;
pub mod html;
pub mod read;
pub mod records;
pub mod split;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use read::{ReadOptions, Skipped};
pub use records::{read_records, Record, RecordFormat};
pub use split::SplitOptions;

use crate::error::{Error, Result};

/// What a document says about itself (YAML front matter, JSONL fields, or found in the page).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::string"
    )]
    pub date: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "lenient::list")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "lenient::list")]
    pub people: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Who wrote it (a web page's byline or author metadata, a feed entry's author).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::string"
    )]
    pub author: Option<String>,
}

impl Metadata {
    /// Fills fields that are still empty from `other`.
    pub fn merge(&mut self, other: Metadata) {
        self.title = self.title.take().or(other.title);
        self.date = self.date.take().or(other.date);
        self.source = self.source.take().or(other.source);
        self.author = self.author.take().or(other.author);
        if self.tags.is_empty() {
            self.tags = other.tags;
        }
        if self.people.is_empty() {
            self.people = other.people;
        }
    }
}

/// Front matter is written by hand: accept a date or number where a string is expected, and a
/// single value where a list is expected, rather than lose the whole block.
mod lenient {
    use serde::{Deserialize, Deserializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        S(String),
        I(i64),
        F(f64),
        B(bool),
    }

    impl Scalar {
        fn into_string(self) -> String {
            match self {
                Scalar::S(s) => s,
                Scalar::I(i) => i.to_string(),
                Scalar::F(f) => f.to_string(),
                Scalar::B(b) => b.to_string(),
            }
        }
    }

    pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(Option::<Scalar>::deserialize(d)?
            .map(Scalar::into_string)
            .filter(|s| !s.is_empty()))
    }

    pub fn list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            Many(Vec<Option<Scalar>>),
            One(Scalar),
        }
        Ok(match Option::<OneOrMany>::deserialize(d)? {
            None => Vec::new(),
            Some(OneOrMany::One(s)) => vec![s.into_string()],
            Some(OneOrMany::Many(v)) => v.into_iter().flatten().map(Scalar::into_string).collect(),
        }
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect())
    }
}

/// One input document, decoded.
#[derive(Debug, Clone)]
pub struct Document {
    /// Stable id: the path below the folder given (without extension), or the JSONL record id.
    pub id: String,
    pub path: PathBuf,
    pub encoding: &'static str,
    pub meta: Metadata,
    /// The whole decoded text, front matter included, so offsets match the file.
    pub text: String,
    /// Byte offset where the body starts (after any front matter).
    pub body_start: usize,
    /// What reading passed over or repaired (front matter ignored, bad bytes replaced, JSONL
    /// lines skipped), for the caller to show.
    pub notes: Vec<String>,
}

impl Document {
    /// Builds a document from decoded text, reading YAML front matter (`---` ... `---`) if present.
    pub fn from_text(id: &str, path: &Path, text: String, encoding: &'static str) -> Self {
        let mut doc = Document {
            id: id.to_string(),
            path: path.to_path_buf(),
            encoding,
            meta: Metadata::default(),
            text,
            body_start: 0,
            notes: Vec::new(),
        };
        if let Some((yaml, body_start)) = front_matter(&doc.text) {
            match serde_yaml_ng::from_str::<Option<Metadata>>(yaml) {
                Ok(meta) => doc.meta = meta.unwrap_or_default(),
                Err(e) => doc.notes.push(format!("front matter ignored: {e}")),
            }
            doc.body_start = body_start;
        }
        doc
    }
}

/// Splits `---\n<yaml>\n---\n` off the start of `text`: returns the YAML and where the body starts.
fn front_matter(text: &str) -> Option<(&str, usize)> {
    let rest = text.strip_prefix("---\n").or_else(|| text.strip_prefix("---\r\n"))?;
    let open = text.len() - rest.len();
    let mut offset = 0;
    for line in rest.split_inclusive('\n') {
        if line.trim_end() == "---" {
            return Some((&rest[..offset], open + offset + line.len()));
        }
        offset += line.len();
    }
    None
}

/// The start of a passage's text on one line, at most `max_chars` characters (then "…").
pub fn snippet(text: &str, max_chars: usize) -> String {
    let flat = text.replace('\n', " ");
    let mut cut: String = flat.chars().take(max_chars).collect();
    if cut.len() < flat.len() {
        cut.push('…');
    }
    cut
}

/// A piece of a document small enough to embed: the unit of search and clustering.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Passage {
    /// `<document id>#<n>`, n counting from 1 in document order.
    pub id: String,
    pub doc_id: String,
    pub ordinal: u32,
    /// The heading this passage falls under, if the document has headings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section: Option<String>,
    /// Character (not byte) offsets of the passage in the decoded file, front matter included.
    pub char_start: usize,
    pub char_end: usize,
    /// 1-based line where the passage starts.
    pub line: usize,
    pub text: String,
}

/// Documents and their passages, plus the files that were passed over.
#[derive(Debug, Default)]
pub struct Corpus {
    pub documents: Vec<Document>,
    pub passages: Vec<Passage>,
    pub skipped: Vec<Skipped>,
}

/// Cleans and splits one document (filling in metadata found in the page).
fn passages_of(doc: &mut Document, split: &SplitOptions, count_tokens: &dyn Fn(&str) -> usize) -> Vec<Passage> {
    let cleaned = clean::clean(&doc.text, doc.body_start);
    doc.meta.merge(cleaned.found);
    split::split(doc, &cleaned.paragraphs, split, count_tokens)
}

/// The passages of one file's bytes, read, cleaned and split as [`load`] does a file on disk
/// (`Err`: why the file would be skipped). The whole path from bytes to passages in one call,
/// for the fuzz target and tests.
pub fn passages_of_bytes(
    path: &Path,
    bytes: &[u8],
    read: ReadOptions,
    split: &SplitOptions,
    count_tokens: &dyn Fn(&str) -> usize,
) -> std::result::Result<Vec<Passage>, String> {
    split.check().map_err(|e| e.to_string())?;
    let mut ids = UniqueIds::default();
    let mut passages = Vec::new();
    for mut doc in read::read_bytes(path, "doc", bytes, read)? {
        ids.assign(&mut doc);
        passages.extend(passages_of(&mut doc, split, count_tokens));
    }
    Ok(passages)
}

/// Keeps document ids unique: two inputs named alike (a.txt and a.md, or the same file twice)
/// must not share one, so later ones get `~2`, `~3`, ...
#[derive(Default)]
struct UniqueIds(std::collections::HashSet<String>);

impl UniqueIds {
    fn assign(&mut self, doc: &mut Document) {
        let base = doc.id.clone();
        let mut n = 2;
        while !self.0.insert(doc.id.clone()) {
            doc.id = format!("{base}~{n}");
            n += 1;
        }
        if doc.id != base {
            doc.notes.push(format!(
                "another document already has id {base:?}; this one is {:?}",
                doc.id
            ));
        }
    }
}

/// The passages of the documents under `paths` as records to embed, read a file at a time so
/// memory stays bounded by the largest file. Files that cannot be read are logged and passed over.
pub fn stream_passages<'a>(
    paths: &[PathBuf],
    read: ReadOptions,
    split: &'a SplitOptions,
    count_tokens: &'a (dyn Fn(&str) -> usize + Sync),
) -> Result<impl Iterator<Item = Result<Record>> + Send + 'a> {
    split.check()?;
    let files = read::list_files(paths)?;
    let mut ids = UniqueIds::default();
    Ok(files.into_iter().flat_map(move |(file, id)| {
        let documents = read::read_file(&file, &id, read).unwrap_or_else(|reason| {
            tracing::warn!("skipped {}: {reason}", file.display());
            Vec::new()
        });
        let mut records = Vec::new();
        for mut doc in documents {
            ids.assign(&mut doc);
            for note in &doc.notes {
                tracing::warn!("{}: {note}", file.display());
            }
            records.extend(
                passages_of(&mut doc, split, count_tokens)
                    .into_iter()
                    .map(|p| Ok(Record { id: p.id, text: p.text })),
            );
        }
        records
    }))
}

/// Reads `paths`, cleans and splits every document. `count_tokens` measures text against the
/// passage budget (the model's tokenizer in practice).
pub fn load(
    paths: &[PathBuf],
    read: ReadOptions,
    split: &SplitOptions,
    count_tokens: &dyn Fn(&str) -> usize,
) -> Result<Corpus> {
    split.check()?;
    let (mut documents, skipped) = read::read_paths(paths, read)?;
    let mut ids = UniqueIds::default();
    for doc in &mut documents {
        ids.assign(doc);
    }
    let mut passages = Vec::new();
    for doc in &mut documents {
        passages.extend(passages_of(doc, split, count_tokens));
    }
    if passages.is_empty() {
        // Say why: when every file was skipped, the reasons are the answer.
        let reasons: Vec<String> = skipped
            .iter()
            .take(5)
            .map(|s| format!("{}: {}", s.path.display(), s.reason))
            .collect();
        let skipped = match skipped.len() - reasons.len() {
            _ if reasons.is_empty() => String::new(),
            0 => format!(" (skipped {})", reasons.join("; ")),
            more => format!(" (skipped {}; and {more} more)", reasons.join("; ")),
        };
        return Err(Error::EmptyInput {
            paths: list_paths(paths),
            skipped,
        });
    }
    Ok(Corpus {
        documents,
        passages,
        skipped,
    })
}

/// The inputs as one line for messages: `a.txt, notes/`.
pub fn list_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
