//! The NumPy `.npy` format for 2-D little-endian f32 (and, written only, f16) arrays: vectors
//! that Python reads directly.

use std::io::{Read, Write};

/// Writes `rows × cols` f32 values (row-major) as `.npy` version 1.0.
pub fn write_f32(out: &mut impl Write, data: &[f32], rows: usize, cols: usize) -> std::io::Result<()> {
    debug_assert_eq!(data.len(), rows * cols);
    out.write_all(&header(Element::F32, rows, cols))?;
    let mut bytes = Vec::with_capacity(data.len().min(1 << 20) * 4);
    for chunk in data.chunks(1 << 20) {
        bytes.clear();
        Element::F32.encode(chunk.iter().copied(), &mut bytes);
        out.write_all(&bytes)?;
    }
    Ok(())
}

/// Writes a 2-D array as `.npy` (row-major whatever its memory layout).
pub fn write_array(out: &mut impl Write, array: &ndarray::Array2<f32>) -> std::io::Result<()> {
    let (rows, cols) = array.dim();
    let data = array.as_standard_layout();
    write_f32(out, data.as_slice().expect("standard layout is contiguous"), rows, cols)
}

/// Reads a 2-D little-endian f32 `.npy` into an array; `Err` says what is wrong with it.
pub fn read_array(input: &mut impl Read) -> Result<ndarray::Array2<f32>, String> {
    let (data, rows, cols) = read_f32(input)?;
    Ok(ndarray::Array2::from_shape_vec((rows, cols), data).expect("read_f32 checked the size"))
}

/// The element types themap writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Element {
    F32,
    F16,
}

impl Element {
    pub fn size(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::F16 => 2,
        }
    }

    /// Appends `values` in this type, little-endian.
    pub fn encode(self, values: impl Iterator<Item = f32>, out: &mut Vec<u8>) {
        match self {
            Self::F32 => values.for_each(|v| out.extend(v.to_le_bytes())),
            Self::F16 => values.for_each(|v| out.extend(half::f16::from_f32(v).to_le_bytes())),
        }
    }

    fn descr(self) -> &'static str {
        match self {
            Self::F32 => "<f4",
            Self::F16 => "<f2",
        }
    }
}

/// Length of every header [`header`] makes, whatever the shape: a file written before its row
/// count is known can have its header rewritten in place.
pub const HEADER_LEN: usize = 128;

/// The header for a `rows × cols` array, padded to [`HEADER_LEN`] bytes (a 64-byte boundary).
pub fn header(element: Element, rows: usize, cols: usize) -> Vec<u8> {
    let descr = element.descr();
    let mut dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    let unpadded = 10 + dict.len() + 1;
    dict.push_str(&" ".repeat(HEADER_LEN - unpadded));
    dict.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((dict.len() as u16).to_le_bytes());
    out.extend(dict.as_bytes());
    out
}

/// Reads a 2-D little-endian f32 `.npy`; `Err` says what is wrong with it.
pub fn read_f32(input: &mut impl Read) -> Result<(Vec<f32>, usize, usize), String> {
    let mut magic = [0u8; 10];
    input
        .read_exact(&mut magic)
        .map_err(|_| "shorter than an .npy header".to_string())?;
    if &magic[..6] != b"\x93NUMPY" {
        return Err("not an .npy file".into());
    }
    let header_len = match magic[6] {
        1 => u16::from_le_bytes([magic[8], magic[9]]) as usize,
        2 | 3 => {
            let mut rest = [0u8; 2];
            input
                .read_exact(&mut rest)
                .map_err(|_| "truncated header".to_string())?;
            u32::from_le_bytes([magic[8], magic[9], rest[0], rest[1]]) as usize
        }
        v => return Err(format!("unsupported .npy version {v}")),
    };
    let mut dict = vec![0u8; header_len];
    input
        .read_exact(&mut dict)
        .map_err(|_| "truncated header".to_string())?;
    let dict = String::from_utf8_lossy(&dict);
    if !dict.contains("'descr': '<f4'") {
        return Err("values are not little-endian f32".into());
    }
    if dict.contains("'fortran_order': True") {
        return Err("Fortran order is not supported".into());
    }
    let shape = dict
        .split("'shape':")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .map(|s| {
            s.trim()
                .trim_start_matches('(')
                .split(',')
                .filter_map(|d| d.trim().parse::<usize>().ok())
                .collect::<Vec<_>>()
        })
        .ok_or("no shape in header")?;
    let [rows, cols] = shape[..] else {
        return Err(format!("expected a 2-D array, found shape {shape:?}"));
    };
    let mut bytes = Vec::with_capacity(rows * cols * 4);
    input.read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    if bytes.len() != rows * cols * 4 {
        return Err(format!(
            "holds {} bytes of data, its header promises {}",
            bytes.len(),
            rows * cols * 4
        ));
    }
    let data = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Ok((data, rows, cols))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_alignment() {
        let data: Vec<f32> = (0..12).map(|i| i as f32 * 0.5).collect();
        let mut file = Vec::new();
        write_f32(&mut file, &data, 3, 4).unwrap();
        assert_eq!(header(Element::F32, 3, 4).len(), HEADER_LEN);
        assert_eq!(header(Element::F16, usize::MAX, usize::MAX).len(), HEADER_LEN);
        assert_eq!(read_f32(&mut file.as_slice()).unwrap(), (data, 3, 4));
    }

    #[test]
    fn truncated_data_is_refused() {
        let mut file = Vec::new();
        write_f32(&mut file, &[1.0; 8], 2, 4).unwrap();
        file.truncate(file.len() - 3);
        assert!(read_f32(&mut file.as_slice()).unwrap_err().contains("promises"));
    }
}
