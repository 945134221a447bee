//! Reading documents from disk: folders walked recursively, encodings detected, front matter parsed.

use std::path::{Path, PathBuf};

use encoding_rs::Encoding;
use serde::Deserialize;

use super::Document;
use crate::error::{Error, Result};

/// How files are read.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadOptions {
    /// Decode non-UTF-8 files with this encoding instead of guessing.
    pub encoding: Option<&'static Encoding>,
}

/// A file that was passed over, and why. Callers decide how to show it.
#[derive(Debug, Clone)]
pub struct Skipped {
    pub path: PathBuf,
    pub reason: String,
}

/// Extensions read when walking a folder. A file named explicitly is read whatever its extension.
const TEXT_EXTENSIONS: [&str; 4] = ["txt", "md", "markdown", "jsonl"];

/// Reads every document under `paths`. A path that does not exist is an error; a file that
/// cannot be read as text is skipped and reported.
pub fn read_paths(paths: &[PathBuf], options: ReadOptions) -> Result<(Vec<Document>, Vec<Skipped>)> {
    let mut documents = Vec::new();
    let mut skipped = Vec::new();
    for (file, id) in list_files(paths)? {
        match read_file(&file, &id, options) {
            Ok(mut docs) => documents.append(&mut docs),
            Err(reason) => skipped.push(Skipped { path: file, reason }),
        }
    }
    Ok((documents, skipped))
}

/// The files under `paths` with their document ids: the path below the folder given, without
/// extension, or the file name for a file given directly. A path that does not exist is an error.
pub fn list_files(paths: &[PathBuf]) -> Result<Vec<(PathBuf, String)>> {
    let mut out = Vec::new();
    for root in paths {
        let meta = std::fs::metadata(root).map_err(Error::io(root))?;
        let files = if meta.is_dir() {
            let mut files = Vec::new();
            walk(root, &mut files)?;
            files
        } else {
            vec![root.clone()]
        };
        for file in files {
            let id_base = if meta.is_dir() {
                file.strip_prefix(root).unwrap_or(&file)
            } else {
                Path::new(file.file_name().unwrap_or_default())
            };
            let id = id_base.with_extension("").to_string_lossy().replace('\\', "/");
            out.push((file, id));
        }
    }
    Ok(out)
}

/// Collects text files below `dir` in a stable (sorted) order, skipping hidden entries.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(Error::io(dir))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, out)?;
        } else if path
            .extension()
            .is_some_and(|e| TEXT_EXTENSIONS.contains(&e.to_string_lossy().to_lowercase().as_str()))
        {
            out.push(path);
        }
    }
    Ok(())
}

/// Reads one file into documents (one, or one per line for JSONL). `Err` is the reason to skip it.
pub fn read_file(path: &Path, id: &str, options: ReadOptions) -> std::result::Result<Vec<Document>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let (text, encoding) = decode(&bytes, options.encoding)?;
    if text.trim().is_empty() {
        return Err("empty file".into());
    }
    let is_jsonl = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("jsonl"));
    if is_jsonl {
        return read_jsonl(path, &text, encoding);
    }
    Ok(vec![Document::from_text(id, path, text, encoding)])
}

/// Decodes file bytes: UTF-8 (with or without BOM), UTF-16 with BOM, the named encoding, or a
/// detected one (GB18030, Big5, ...). Binary data and text that does not decode cleanly are refused.
pub fn decode(bytes: &[u8], named: Option<&'static Encoding>) -> std::result::Result<(String, &'static str), String> {
    if looks_binary(bytes) {
        return Err("binary file (not text)".into());
    }
    if let Some((encoding, bom_len)) = Encoding::for_bom(bytes) {
        return decode_with(encoding, &bytes[bom_len..]);
    }
    if let Some(encoding) = named {
        return decode_with(encoding, bytes);
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Ok((text.to_string(), "UTF-8"));
    }
    let mut detector = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
    detector.feed(bytes, true);
    let guess = detector.guess(None, chardetng::Utf8Detection::Deny);
    decode_with(guess, bytes).map_err(|e| format!("{e} (not UTF-8; name the encoding with --encoding)"))
}

fn decode_with(encoding: &'static Encoding, bytes: &[u8]) -> std::result::Result<(String, &'static str), String> {
    let (text, had_errors) = encoding.decode_without_bom_handling(bytes);
    if had_errors {
        return Err(format!("cannot be decoded as {}", encoding.name()));
    }
    Ok((text.into_owned(), encoding.name()))
}

/// NUL bytes, or many control characters, in the first 8 KiB mean binary data.
fn looks_binary(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(8192)];
    // UTF-16 text has NULs; let the BOM check take it.
    if Encoding::for_bom(head).is_some_and(|(e, _)| e != encoding_rs::UTF_8) {
        return false;
    }
    if head.contains(&0) {
        return true;
    }
    let control = head
        .iter()
        .filter(|&&b| b < 0x20 && !matches!(b, b'\n' | b'\r' | b'\t' | 0x0c))
        .count();
    control * 20 > head.len().max(1)
}

/// One JSON object per line, `{"id": ..., "text": ..., "title"?, "date"?, "tags"?, ...}`.
fn read_jsonl(path: &Path, text: &str, encoding: &'static str) -> std::result::Result<Vec<Document>, String> {
    #[derive(Deserialize)]
    struct Record {
        id: serde_json::Value,
        text: String,
        #[serde(flatten)]
        meta: super::Metadata,
    }
    let mut documents = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let record: Record = serde_json::from_str(line)
            .map_err(|e| format!("line {}: not a {{\"id\", \"text\"}} JSON object: {e}", n + 1))?;
        let id = match record.id {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        };
        let mut doc = Document::from_text(&id, path, record.text, encoding);
        doc.meta.merge(record.meta);
        documents.push(doc);
    }
    if documents.is_empty() {
        return Err("no records".into());
    }
    Ok(documents)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "美國對中國商品加徵關稅，貿易戰升級。川普的關稅政策面臨最高法院的挑戰，市場正在等待判決。";

    #[test]
    fn gb18030_and_big5_are_detected() {
        for encoding in [encoding_rs::GB18030, encoding_rs::BIG5] {
            let (bytes, _, unmappable) = encoding.encode(TEXT);
            assert!(!unmappable);
            let (text, found) = decode(&bytes, None).unwrap();
            assert_eq!(text, TEXT, "decoded as {found}");
        }
    }

    #[test]
    fn named_encoding_wins_and_bad_bytes_are_refused() {
        let (bytes, _, _) = encoding_rs::BIG5.encode(TEXT);
        assert_eq!(decode(&bytes, Some(encoding_rs::BIG5)).unwrap().0, TEXT);
        let err = decode(&bytes, Some(encoding_rs::UTF_8)).unwrap_err();
        assert!(err.contains("UTF-8"), "{err}");
    }

    #[test]
    fn binary_is_refused_and_bom_is_honoured() {
        assert!(decode(&[0x89, b'P', b'N', b'G', 0, 0, 0, 13], None)
            .unwrap_err()
            .contains("binary"));
        let mut utf16 = vec![0xFF, 0xFE];
        utf16.extend("关税".encode_utf16().flat_map(|u| u.to_le_bytes()));
        assert_eq!(decode(&utf16, None).unwrap().0, "关税");
    }
}
