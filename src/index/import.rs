//! Vectors computed elsewhere (`themap embed` on a GPU machine or a cluster), checked before an
//! index takes them instead of embedding: the same model, prompt, size and passage split as the
//! index, one row per passage in the index's order, made from the very texts the index holds
//! (the digest `themap embed` records), and unit length. The vectors come as one file or as a
//! folder of parts (the shards of a cluster run), each part checked against its range of passages.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use ndarray::{Array2, ArrayView2};

use super::ModelInfo;
use crate::corpus::Passage;
use crate::embed::output::{ids_path, meta_path_for, VectorsMeta};
use crate::embed::stream::digest_pairs;
use crate::embed::Prompt;
use crate::error::{Error, Result};
use crate::hash::hex;
use crate::npy::Element;

/// What the vectors must match.
pub struct Expected<'a> {
    /// The model that answers the index's queries, and the vector size.
    pub model: &'a ModelInfo,
    /// The prompt these vectors are for (search vectors: `document`; themes: `clustering`).
    pub prompt: Prompt,
    /// The index's passage budget and minimum, in tokens.
    pub max_tokens: usize,
    pub min_tokens: usize,
    /// The passages, in index order.
    pub passages: &'a [Passage],
}

/// The metadata `themap embed` wrote beside `vectors` (`<stem>.meta.json`).
fn read_meta(vectors: &Path) -> Result<VectorsMeta> {
    let path = meta_path_for(vectors);
    let mismatch = |reason: String| mismatch(vectors, reason);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        mismatch(format!(
            "cannot read {} ({e}); vectors for an index must come from `themap embed`, which writes it \
             beside them with the model, prompt and passage split they were made with",
            path.display()
        ))
    })?;
    let meta: VectorsMeta = serde_json::from_str(&text)
        .map_err(|e| mismatch(format!("{} is not themap vectors metadata ({e})", path.display())))?;
    if meta.format != VectorsMeta::FORMAT {
        return Err(mismatch(format!("{} is not themap vectors metadata", path.display())));
    }
    if meta.version > VectorsMeta::VERSION {
        return Err(mismatch(format!(
            "{} has version {}; this themap reads version {} (update themap)",
            path.display(),
            meta.version,
            VectorsMeta::VERSION
        )));
    }
    Ok(meta)
}

/// Vectors given to `themap index`: one `.npy` file from `themap embed`, or a folder of such
/// files (its `.npy` files in name order, e.g. the shards of `scripts/ray/embed.py`), made with
/// the same settings, whose rows follow one another.
pub struct Given {
    path: PathBuf,
    /// Each part and its metadata, in row order.
    parts: Vec<(PathBuf, VectorsMeta)>,
}

impl Given {
    /// Lists the parts of `path` and reads their metadata; parts made with other settings than
    /// the first are refused.
    pub fn open(path: &Path) -> Result<Self> {
        let files = if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(Error::io(path))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "npy") && p.is_file())
                .collect();
            files.sort();
            if files.is_empty() {
                return Err(mismatch(
                    path,
                    "the folder holds no .npy files from `themap embed`".into(),
                ));
            }
            files
        } else {
            vec![path.to_path_buf()]
        };
        let parts = files
            .into_iter()
            .map(|file| read_meta(&file).map(|meta| (file, meta)))
            .collect::<Result<Vec<_>>>()?;
        let (first_path, first) = &parts[0];
        if let Some((other, _)) = parts.iter().find(|(_, meta)| meta.settings != first.settings) {
            return Err(mismatch(
                other,
                format!(
                    "made with other settings than {} (model, prompt, size, device, number format, \
                     window or split): embed every part with the same command",
                    first_path.display()
                ),
            ));
        }
        Ok(Self {
            path: path.to_path_buf(),
            parts,
        })
    }

    /// The settings every part was made with.
    pub fn meta(&self) -> &VectorsMeta {
        &self.parts[0].1
    }

    /// Reads the vectors after checking them against `expected`: one unit row per passage.
    pub fn read_checked(&self, expected: &Expected) -> Result<Array2<f32>> {
        let first = &self.parts[0];
        check_settings(&first.0, &first.1, expected)?;
        let passages = expected.passages;
        let rows: u64 = self.parts.iter().map(|(_, meta)| meta.rows).sum();
        if rows != passages.len() as u64 {
            return Err(mismatch(
                &self.path,
                format!(
                    "{rows} vectors for {} passages: they were made from other input",
                    passages.len()
                ),
            ));
        }
        // One buffer for all the parts: the index's array, with no copy of any part.
        let mut data = Vec::with_capacity(passages.len() * first.1.settings.dims);
        let mut start = 0;
        for (path, meta) in &self.parts {
            let range = start..start + meta.rows as usize;
            check_texts(path, meta, &passages[range.clone()])?;
            read_rows(path, meta, &passages[range.clone()], &mut data)?;
            start = range.end;
        }
        Ok(Array2::from_shape_vec((passages.len(), first.1.settings.dims), data)
            .expect("every part's shape was checked"))
    }
}

/// Model, prompt, size and passage split against what the index expects.
fn check_settings(vectors: &Path, meta: &VectorsMeta, expected: &Expected) -> Result<()> {
    let mismatch = |reason: String| mismatch(vectors, reason);
    let settings = &meta.settings;
    let model = expected.model;
    if settings.model != model.checksum {
        return Err(mismatch(format!(
            "made by model {} (weights {}), the index uses {} (weights {}); embed with the index's model",
            meta.model_name,
            short(&settings.model),
            model.name,
            short(&model.checksum)
        )));
    }
    if settings.prompt != expected.prompt {
        return Err(mismatch(format!(
            "embedded with the {} prompt, these must be {}: run `themap embed --prompt {}`",
            settings.prompt.name(),
            expected.prompt.name(),
            expected.prompt.name()
        )));
    }
    if settings.dims != model.dims {
        return Err(mismatch(format!(
            "{} dimensions, the index has {} (embed with `--dims {}`)",
            settings.dims, model.dims, model.dims
        )));
    }
    // Records embedded as they are may be the passages themselves (`themap passages --json`,
    // sharded by a cluster driver); their texts are checked next.
    match (settings.max_tokens, settings.min_tokens) {
        (Some(max), min) if max != expected.max_tokens || min.is_some_and(|m| m != expected.min_tokens) => {
            Err(mismatch(format!(
                "split into passages of at most {max} tokens, the index splits at {}: index with \
                 `--max-tokens {max}`, or embed with `--max-tokens {}`",
                expected.max_tokens, expected.max_tokens
            )))
        }
        _ => Ok(()),
    }
}

/// Recomputes the digest of the passages' ids and texts as `themap embed` did (a window at a
/// time); on a difference, finds the first row whose id differs, if one does.
fn check_texts(vectors: &Path, meta: &VectorsMeta, passages: &[Passage]) -> Result<()> {
    let mut running = [0u8; 32];
    for window in passages.chunks(meta.settings.window.max(1)) {
        running = digest_pairs(running, window.iter().map(|p| (p.id.as_str(), p.text.as_str())));
    }
    if hex(&running) == meta.digest {
        return Ok(());
    }
    let ids = ids_path(vectors);
    let reason = match File::open(&ids) {
        // Without the ids, the digest cannot say what differs.
        Err(_) => "the passages' ids or texts differ from those embedded: the vectors were made from \
                   other input; embed it again"
            .to_string(),
        Ok(file) => {
            let first_difference = BufReader::new(file)
                .lines()
                .zip(passages)
                .enumerate()
                .find(|(_, (line, p))| line.as_ref().map_or(true, |l| *l != p.id));
            match first_difference {
                Some((row, (line, p))) => format!(
                    "row {} is {:?} in {}, but passage {} of the input is {:?}: the vectors were made \
                     from other input or another split",
                    row + 1,
                    line.unwrap_or_default(),
                    ids.display(),
                    row + 1,
                    p.id
                ),
                None => "the passages' texts differ from the texts embedded: the input changed since \
                         `themap embed` ran; embed it again"
                    .into(),
            }
        }
    };
    let hint = if meta.settings.max_tokens.is_none() {
        " (they were embedded from records as they are; for documents embed with `--split` or give \
         the folder, as the index reads them)"
    } else {
        ""
    };
    Err(mismatch(vectors, format!("{reason}{hint}")))
}

/// Appends the rows of `vectors` to `data`, each checked to be finite and of unit length
/// (within the rounding of its type).
fn read_rows(vectors: &Path, meta: &VectorsMeta, passages: &[Passage], data: &mut Vec<f32>) -> Result<()> {
    let file = File::open(vectors).map_err(Error::io(vectors))?;
    let first = data.len();
    let (rows, cols) = crate::npy::read_f32_into(&mut BufReader::new(file), data)
        .map_err(|e| mismatch(vectors, format!("unreadable: {e}")))?;
    if (rows, cols) != (meta.rows as usize, meta.settings.dims) {
        return Err(mismatch(
            vectors,
            format!(
                "holds {rows} × {cols} values, its metadata says {} × {}: the file is damaged",
                meta.rows, meta.settings.dims
            ),
        ));
    }
    let array = ArrayView2::from_shape((rows, cols), &data[first..]).expect("read_f32_into checked the size");
    let tolerance = match meta.settings.element {
        Element::F32 => 1e-3,
        Element::F16 => 1e-2,
    };
    for (row, (vector, passage)) in array.outer_iter().zip(passages).enumerate() {
        let norm = vector.dot(&vector).sqrt();
        if !((norm - 1.0).abs() <= tolerance) {
            return Err(mismatch(
                vectors,
                format!(
                    "row {} ({}) has length {norm}, not 1: the file is damaged; embed again",
                    row + 1,
                    passage.id
                ),
            ));
        }
    }
    Ok(())
}

fn mismatch(path: &Path, reason: String) -> Error {
    Error::VectorsMismatch {
        path: PathBuf::from(path),
        reason,
    }
}

fn short(checksum: &str) -> &str {
    &checksum[..checksum.len().min(12)]
}
