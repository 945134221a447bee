//! Texts to embed as they are, one per line: JSONL (`{"id", "text"}`) or TSV (`id<TAB>text`).
//!
//! Read a line at a time, so a file of any size streams through in bounded memory.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

/// One text to embed, with the id its vector is written under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub id: String,
    pub text: String,
}

/// How a records file is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RecordFormat {
    /// One JSON object per line with `id` (string or number) and `text`.
    Jsonl,
    /// `id<TAB>text` per line; `\t`, `\n` and `\\` in the text stand for tab, newline, backslash.
    Tsv,
}

impl RecordFormat {
    /// The format a file's extension names, if it names one.
    pub fn from_path(path: &Path) -> Option<Self> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "jsonl" | "ndjson" => Some(Self::Jsonl),
            "tsv" => Some(Self::Tsv),
            _ => None,
        }
    }
}

/// Streams the records of `input`. `name` is how errors refer to it (a path, or "standard input").
pub fn read_records(
    input: impl BufRead + Send,
    name: PathBuf,
    format: RecordFormat,
) -> impl Iterator<Item = Result<Record>> + Send {
    let mut lines = input.split(b'\n').enumerate();
    std::iter::from_fn(move || loop {
        let (n, line) = lines.next()?;
        let line = match line {
            Ok(line) => line,
            Err(source) => {
                return Some(Err(Error::Io {
                    path: name.clone(),
                    source,
                }))
            }
        };
        let bad = |reason: String| Error::BadRecord {
            path: name.clone(),
            line: n + 1,
            reason,
        };
        let line = match String::from_utf8(line) {
            Ok(line) => line,
            Err(_) => {
                return Some(Err(bad(
                    "not UTF-8; convert the file first (e.g. iconv -f GB18030 -t UTF-8)".into(),
                )))
            }
        };
        let line = line.strip_suffix('\r').unwrap_or(&line);
        let line = if n == 0 {
            line.trim_start_matches('\u{feff}')
        } else {
            line
        };
        if line.trim().is_empty() {
            continue;
        }
        let record = match format {
            RecordFormat::Jsonl => parse_json(line),
            RecordFormat::Tsv => parse_tsv(line),
        };
        return Some(record.map_err(bad).and_then(|record| {
            if record.id.contains(['\n', '\r']) {
                Err(bad("the id holds a line break; ids are written one per line".into()))
            } else {
                Ok(record)
            }
        }));
    })
}

fn parse_json(line: &str) -> std::result::Result<Record, String> {
    #[derive(Deserialize)]
    struct Line {
        id: serde_json::Value,
        text: String,
    }
    let line: Line = serde_json::from_str(line).map_err(|e| format!("not a {{\"id\", \"text\"}} JSON object: {e}"))?;
    Ok(Record {
        id: record_id(line.id)?,
        text: line.text,
    })
}

/// A JSONL record's id: a string, or a number written as text. `index` and `embed` read ids
/// alike, so vectors computed by one match passages read by the other.
pub(crate) fn record_id(id: serde_json::Value) -> std::result::Result<String, String> {
    match id {
        serde_json::Value::String(s) if !s.trim().is_empty() => Ok(s),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        other => Err(format!("the id must be a non-empty string or a number, not {other}")),
    }
}

fn parse_tsv(line: &str) -> std::result::Result<Record, String> {
    let (id, text) = line.split_once('\t').ok_or("no tab: expected id<TAB>text")?;
    let mut unescaped = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            unescaped.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => unescaped.push('\t'),
            Some('n') => unescaped.push('\n'),
            Some('\\') => unescaped.push('\\'),
            Some(other) => unescaped.extend(['\\', other]),
            None => unescaped.push('\\'),
        }
    }
    Ok(Record {
        id: id.to_string(),
        text: unescaped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, format: RecordFormat) -> Vec<Result<Record>> {
        read_records(text.as_bytes(), PathBuf::from("in"), format).collect()
    }

    #[test]
    fn jsonl_and_tsv_records() {
        let jsonl = "{\"id\": \"a\", \"text\": \"关税\"}\n\n{\"id\": 7, \"text\": \"tariffs\", \"date\": \"2025\"}\r\n";
        let got: Vec<Record> = read(jsonl, RecordFormat::Jsonl)
            .into_iter()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(got[0].id, "a");
        assert_eq!(got[1].id, "7");
        assert_eq!(got[1].text, "tariffs");
        let tsv = "x1\tline one\\nline two\\tend\\\\\n";
        let got = read(tsv, RecordFormat::Tsv).remove(0).unwrap();
        assert_eq!(got.text, "line one\nline two\tend\\");
    }

    #[test]
    fn bad_lines_name_their_line() {
        let err = read("{\"id\":1,\"text\":\"ok\"}\nnot json\n", RecordFormat::Jsonl)
            .remove(1)
            .unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
        let err = read("no tab here\n", RecordFormat::Tsv).remove(0).unwrap_err();
        assert!(err.to_string().contains("no tab"), "{err}");
        let bytes: &[u8] = b"a\t\xb9\xd8\xcb\xb0\n";
        let err = read_records(bytes, PathBuf::from("in"), RecordFormat::Tsv)
            .next()
            .unwrap()
            .unwrap_err();
        assert!(err.to_string().contains("UTF-8"), "{err}");
    }
}
