//! Reading documents from disk: folders walked recursively, encodings detected, front matter parsed.

use std::path::{Path, PathBuf};

use encoding_rs::Encoding;
use serde::Deserialize;

use super::{html, Document};
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
const TEXT_EXTENSIONS: [&str; 10] = [
    "txt", "md", "markdown", "jsonl", "html", "htm", "xhtml", "rss", "atom", "xml",
];

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
/// What was repaired or passed over inside the file is in the documents' `notes`.
pub fn read_file(path: &Path, id: &str, options: ReadOptions) -> std::result::Result<Vec<Document>, String> {
    // A huge page or feed is refused before it is read: memory stays bounded.
    let size = std::fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?.len();
    if let Some(reason) = html::too_large(path, size) {
        return Err(reason);
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    read_bytes(path, id, &bytes, options)
}

/// [`read_file`] on bytes already read; `path` names the file (its extension says whether it
/// is JSONL).
pub fn read_bytes(
    path: &Path,
    id: &str,
    bytes: &[u8],
    options: ReadOptions,
) -> std::result::Result<Vec<Document>, String> {
    if html::is_feed(path) {
        return html::read_feed(path, id, bytes);
    }
    let page = html::is_page(path);
    let decoded = match page {
        true => html::decode_page(bytes, options)?,
        false => decode(bytes, options.encoding)?,
    };
    if decoded.text.trim().is_empty() {
        return Err("empty file".into());
    }
    if page || html::looks_like_html(&decoded.text) {
        return Ok(vec![html::page_document(path, id, decoded)?]);
    }
    let is_jsonl = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("jsonl"));
    let mut documents = if is_jsonl {
        read_jsonl(path, &decoded.text, decoded.encoding)?
    } else {
        vec![Document::from_text(id, path, decoded.text, decoded.encoding)]
    };
    if let Some(note) = decoded.note {
        documents[0].notes.insert(0, note);
    }
    Ok(documents)
}

/// Decoded text, the encoding's name, and what was repaired on the way.
#[derive(Debug)]
pub struct Decoded {
    pub text: String,
    pub encoding: &'static str,
    pub note: Option<String>,
}

/// Decodes file bytes: UTF-8 (with or without BOM), UTF-16 with BOM, the named encoding, or a
/// detected one (GB18030, Big5, ...). UTF-8 with a few bad bytes (a damaged or truncated file)
/// stays UTF-8, the bad bytes replaced by U+FFFD and noted. Binary data and text that does not
/// decode cleanly are refused.
pub fn decode(bytes: &[u8], named: Option<&'static Encoding>) -> std::result::Result<Decoded, String> {
    let bom = Encoding::for_bom(bytes);
    let utf16 = |e: &'static Encoding| e == encoding_rs::UTF_16LE || e == encoding_rs::UTF_16BE;
    // UTF-16 text is full of NULs: only other text is checked for binary data.
    if !bom.is_some_and(|(e, _)| utf16(e)) && !named.is_some_and(utf16) && looks_binary(bytes) {
        return Err("binary file (not text)".into());
    }
    if let Some((encoding, bom_len)) = bom {
        return decode_with(encoding, &bytes[bom_len..]);
    }
    if let Some(encoding) = named {
        return decode_with(encoding, bytes);
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Ok(Decoded {
            text: text.to_string(),
            encoding: "UTF-8",
            note: None,
        });
    }
    if let Some(decoded) = mostly_utf8(bytes) {
        return Ok(decoded);
    }
    let mut detector = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
    detector.feed(bytes, true);
    let guess = detector.guess(None, chardetng::Utf8Detection::Deny);
    decode_with(guess, bytes).map_err(|e| format!("{e} (not UTF-8; name the encoding with --encoding)"))
}

/// UTF-8 text with a few invalid bytes: at most one per 50 valid multi-byte characters. Text
/// in a legacy encoding (GBK, Big5) is invalid as UTF-8 almost everywhere, so it never passes.
fn mostly_utf8(bytes: &[u8]) -> Option<Decoded> {
    let (mut multibyte, mut invalid) = (0usize, 0usize);
    for chunk in bytes.utf8_chunks() {
        multibyte += chunk.valid().chars().filter(|c| !c.is_ascii()).count();
        invalid += chunk.invalid().len();
    }
    if multibyte < 50 * invalid {
        return None;
    }
    Some(Decoded {
        text: String::from_utf8_lossy(bytes).into_owned(),
        encoding: "UTF-8",
        note: Some(format!(
            "{invalid} byte{} that {} not UTF-8 replaced by U+FFFD (the file is damaged or was cut mid-character)",
            if invalid == 1 { "" } else { "s" },
            if invalid == 1 { "is" } else { "are" }
        )),
    })
}

fn decode_with(encoding: &'static Encoding, bytes: &[u8]) -> std::result::Result<Decoded, String> {
    let (text, had_errors) = encoding.decode_without_bom_handling(bytes);
    if had_errors {
        return Err(format!("cannot be decoded as {}", encoding.name()));
    }
    Ok(Decoded {
        text: text.into_owned(),
        encoding: encoding.name(),
        note: None,
    })
}

/// NUL bytes anywhere, or many control characters in any 8 KiB block, mean binary data.
fn looks_binary(bytes: &[u8]) -> bool {
    bytes.contains(&0)
        || bytes.chunks(8192).any(|block| {
            let control = block
                .iter()
                .filter(|&&b| b < 0x20 && !matches!(b, b'\n' | b'\r' | b'\t' | 0x0c | 0x1b))
                .count();
            control * 20 > block.len()
        })
}

/// One JSON object per line, `{"id": ..., "text": ..., "title"?, "date"?, "tags"?, ...}`. A line
/// that is not one is passed over and noted, as `themap embed` does; a file with none is refused.
fn read_jsonl(path: &Path, text: &str, encoding: &'static str) -> std::result::Result<Vec<Document>, String> {
    #[derive(Deserialize)]
    struct Record {
        id: serde_json::Value,
        text: String,
        #[serde(flatten)]
        meta: super::Metadata,
    }
    let mut documents = Vec::new();
    let mut passed_over = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parsed = serde_json::from_str::<Record>(line)
            .map_err(|e| format!("not a {{\"id\", \"text\"}} JSON object: {e}"))
            .and_then(|record| Ok((super::records::record_id(record.id)?, record.text, record.meta)));
        match parsed {
            Ok((id, text, meta)) => {
                let mut doc = Document::from_text(&id, path, text, encoding);
                doc.meta.merge(meta);
                documents.push(doc);
            }
            Err(reason) => passed_over.push(format!("line {} passed over: {reason}", n + 1)),
        }
    }
    match documents.first_mut() {
        Some(first) => first.notes.splice(0..0, passed_over).for_each(drop),
        None if passed_over.is_empty() => return Err("no records".into()),
        None => return Err(format!("no valid records ({})", passed_over[0])),
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
            let decoded = decode(&bytes, None).unwrap();
            assert_eq!(decoded.text, TEXT, "decoded as {}", decoded.encoding);
        }
    }

    #[test]
    fn named_encoding_wins_and_bad_bytes_are_refused() {
        let (bytes, _, _) = encoding_rs::BIG5.encode(TEXT);
        assert_eq!(decode(&bytes, Some(encoding_rs::BIG5)).unwrap().text, TEXT);
        let err = decode(&bytes, Some(encoding_rs::UTF_8)).unwrap_err();
        assert!(err.contains("UTF-8"), "{err}");
    }

    #[test]
    fn a_bad_byte_in_utf8_is_replaced_not_decoded_as_another_encoding() {
        let mut bytes = TEXT.repeat(3).into_bytes();
        bytes.insert(30, 0xFF);
        let decoded = decode(&bytes, None).unwrap();
        assert_eq!(decoded.encoding, "UTF-8");
        assert!(
            decoded.text.contains('\u{FFFD}') && decoded.text.contains("最高法院"),
            "{}",
            decoded.text
        );
        assert!(decoded.note.unwrap().contains("1 byte that is not UTF-8"));
        // Legacy encodings are still detected, not taken for damaged UTF-8.
        let text = TEXT.repeat(3);
        let (gbk, _, _) = encoding_rs::GB18030.encode(&text);
        assert_eq!(decode(&gbk, None).unwrap().text, text);
    }

    #[test]
    fn binary_anywhere_is_refused_and_named_utf16_needs_no_bom() {
        let mut bytes = "关税 tariffs\n".repeat(2000).into_bytes();
        assert!(bytes.len() > 8192);
        bytes.extend([0, 0, 0, 1, 2, 3]);
        assert!(decode(&bytes, None).unwrap_err().contains("binary"));
        let utf16: Vec<u8> = "关税 tariffs".encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
        assert!(decode(&utf16, None).is_err());
        assert_eq!(
            decode(&utf16, Some(encoding_rs::UTF_16LE)).unwrap().text,
            "关税 tariffs"
        );
    }

    #[test]
    fn bad_jsonl_lines_are_passed_over_and_named() {
        let text = "{\"id\": \"a\", \"text\": \"关税\"}\nnot json\n{\"id\": [1, 2], \"text\": \"x\"}\n{\"id\": null, \"text\": \"y\"}\n{\"id\": 7, \"text\": \"美元\"}\n";
        let docs = read_jsonl(Path::new("in.jsonl"), text, "UTF-8").unwrap();
        let ids: Vec<&str> = docs.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["a", "7"]);
        let notes = docs[0].notes.join("; ");
        assert!(
            notes.contains("line 2") && notes.contains("line 3") && notes.contains("line 4"),
            "{notes}"
        );
        assert!(read_jsonl(Path::new("in.jsonl"), "not json\n", "UTF-8")
            .unwrap_err()
            .contains("line 1"));
    }

    #[test]
    fn binary_is_refused_and_bom_is_honoured() {
        assert!(decode(&[0x89, b'P', b'N', b'G', 0, 0, 0, 13], None)
            .unwrap_err()
            .contains("binary"));
        let mut utf16 = vec![0xFF, 0xFE];
        utf16.extend("关税".encode_utf16().flat_map(|u| u.to_le_bytes()));
        assert_eq!(decode(&utf16, None).unwrap().text, "关税");
    }
}
