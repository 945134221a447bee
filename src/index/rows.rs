//! The row table: where each passage's line starts in `passages-<gen>.jsonl`, which document it
//! belongs to, and checksums of its line and of its vector.
//!
//! It is what lets a lookup open a large index without reading it ([`super::mapped`]): a search
//! reads the line of each passage it returns and the vector of each passage it scores, and checks
//! exactly those against the table. The table itself is memory-mapped; a damaged entry fails the
//! check of the row it describes.
//!
//! ```text
//! "THMROWS1"  u64 rows
//! per row:    u64 line offset   u64 xxh3 of the line (no newline)   u64 xxh3 of the vector's bytes
//!             u32 document number   u32 zero
//! ```

use std::io::Write;

use hnsw_rs::frozen::SharedBytes;
use xxhash_rust::xxh3::xxh3_64;

const MAGIC: &[u8; 8] = b"THMROWS1";
const HEAD: usize = 16;
const ENTRY: usize = 32;

/// One passage's entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowEntry {
    pub line_offset: u64,
    pub line_xxh3: u64,
    pub vector_xxh3: u64,
    pub document: u32,
}

impl RowEntry {
    /// The entry for a passage whose line (without its newline) is `line`, at `line_offset`.
    pub fn new(line_offset: u64, line: &[u8], vector: &[f32], document: u32) -> Self {
        Self {
            line_offset,
            line_xxh3: xxh3_64(line),
            vector_xxh3: vector_digest(vector),
            document,
        }
    }
}

/// The xxh3 of a vector's bytes as the `.npy` file holds them (little-endian f32).
pub fn vector_digest(vector: &[f32]) -> u64 {
    if cfg!(target_endian = "little") {
        // SAFETY: f32 has no padding and any f32 is 4 readable bytes.
        xxh3_64(unsafe { std::slice::from_raw_parts(vector.as_ptr() as *const u8, 4 * vector.len()) })
    } else {
        let bytes: Vec<u8> = vector.iter().flat_map(|v| v.to_le_bytes()).collect();
        xxh3_64(&bytes)
    }
}

/// Writes the table for `entries` (one per passage, in row order).
pub fn write(w: &mut impl Write, entries: &[RowEntry]) -> std::io::Result<()> {
    w.write_all(MAGIC)?;
    w.write_all(&(entries.len() as u64).to_le_bytes())?;
    for e in entries {
        let mut bytes = [0u8; ENTRY];
        bytes[..8].copy_from_slice(&e.line_offset.to_le_bytes());
        bytes[8..16].copy_from_slice(&e.line_xxh3.to_le_bytes());
        bytes[16..24].copy_from_slice(&e.vector_xxh3.to_le_bytes());
        bytes[24..28].copy_from_slice(&e.document.to_le_bytes());
        w.write_all(&bytes)?;
    }
    Ok(())
}

/// A row table viewed in place.
#[derive(Clone)]
pub struct RowTable {
    bytes: SharedBytes,
    rows: usize,
}

impl RowTable {
    /// The table in `bytes`, which must describe `rows` passages. Checks its size only.
    pub fn view(bytes: SharedBytes, rows: usize) -> Result<Self, String> {
        let all = (*bytes).as_ref();
        if all.len() < HEAD || &all[..8] != MAGIC {
            return Err("not a row table (bad magic)".into());
        }
        let count = u64::from_le_bytes(all[8..16].try_into().expect("8 bytes"));
        if count != rows as u64 || all.len() != HEAD + ENTRY * rows {
            return Err(format!(
                "it describes {count} rows in {} bytes, the index has {rows}",
                all.len()
            ));
        }
        Ok(Self { bytes, rows })
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The entry of `row` (below [`RowTable::len`]).
    pub fn entry(&self, row: usize) -> RowEntry {
        let at = HEAD + ENTRY * row;
        let bytes = &(*self.bytes).as_ref()[at..at + ENTRY];
        let word = |i: usize| u64::from_le_bytes(bytes[8 * i..8 * i + 8].try_into().expect("8 bytes"));
        RowEntry {
            line_offset: word(0),
            line_xxh3: word(1),
            vector_xxh3: word(2),
            document: u32::from_le_bytes(bytes[24..28].try_into().expect("4 bytes")),
        }
    }

    /// Where `row`'s line ends: the next line's offset less its newline, or the file's end.
    pub fn line_end(&self, row: usize, file_bytes: u64) -> u64 {
        match row + 1 < self.rows {
            true => self.entry(row + 1).line_offset.saturating_sub(1),
            false => file_bytes.saturating_sub(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn entries_round_trip_and_sizes_are_checked() {
        let entries = vec![
            RowEntry::new(0, b"{\"a\":1}", &[0.6, 0.8], 0),
            RowEntry::new(8, b"{\"a\":2}", &[1.0, 0.0], 3),
        ];
        let mut bytes = Vec::new();
        write(&mut bytes, &entries).unwrap();
        let shared: SharedBytes = Arc::new(bytes.clone());
        let table = RowTable::view(shared.clone(), 2).unwrap();
        assert_eq!((table.entry(0), table.entry(1)), (entries[0], entries[1]));
        assert_eq!(table.line_end(0, 16), 7);
        assert_eq!(table.line_end(1, 16), 15);
        assert!(RowTable::view(shared, 3).is_err());
        let short: SharedBytes = Arc::new(bytes[..bytes.len() - 1].to_vec());
        assert!(RowTable::view(short, 2).is_err());
    }
}
