//! Vectors computed elsewhere (`themap embed` on a GPU machine or a cluster), checked before an
//! index takes them instead of embedding: the same model, prompt, size and passage split as the
//! index, one row per passage in the index's order, made from the very texts the index holds
//! (the digest `themap embed` records), and unit length.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use ndarray::Array2;

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
pub fn read_meta(vectors: &Path) -> Result<VectorsMeta> {
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

/// Reads `vectors` after checking them and `meta` against `expected`: one unit row per passage.
pub fn read_checked(vectors: &Path, meta: &VectorsMeta, expected: &Expected) -> Result<Array2<f32>> {
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
    match (settings.max_tokens, settings.min_tokens) {
        (None, _) => {
            return Err(mismatch(
                "embedded from records as they are, but the index splits documents into passages: \
                 embed the same input with `themap embed --split` (or give it the folder)"
                    .into(),
            ))
        }
        (Some(max), min) if max != expected.max_tokens || min.is_some_and(|m| m != expected.min_tokens) => {
            return Err(mismatch(format!(
                "split into passages of at most {max} tokens, the index splits at {}: index with \
                 `--max-tokens {max}`, or embed with `--max-tokens {}`",
                expected.max_tokens, expected.max_tokens
            )))
        }
        _ => {}
    }
    let passages = expected.passages;
    if meta.rows != passages.len() as u64 {
        return Err(mismatch(format!(
            "{} vectors for {} passages: they were made from other input",
            meta.rows,
            passages.len()
        )));
    }
    check_texts(vectors, meta, passages)?;
    read_rows(vectors, meta, passages)
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
    Err(mismatch(vectors, reason))
}

/// The rows, each checked to be finite and of unit length (within the rounding of its type).
fn read_rows(vectors: &Path, meta: &VectorsMeta, passages: &[Passage]) -> Result<Array2<f32>> {
    let file = File::open(vectors).map_err(Error::io(vectors))?;
    let (data, rows, cols) =
        crate::npy::read_f32(&mut BufReader::new(file)).map_err(|e| mismatch(vectors, format!("unreadable: {e}")))?;
    if (rows, cols) != (meta.rows as usize, meta.settings.dims) {
        return Err(mismatch(
            vectors,
            format!(
                "holds {rows} × {cols} values, its metadata says {} × {}: the file is damaged",
                meta.rows, meta.settings.dims
            ),
        ));
    }
    let array = Array2::from_shape_vec((rows, cols), data).expect("read_f32 checked the size");
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
    Ok(array)
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
