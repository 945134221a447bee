//! The NumPy `.npy` format for 2-D little-endian f32 and f16 arrays: vectors that Python reads
//! directly. f16 is read into f32.

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

    /// Appends the values in `bytes` (whole elements, little-endian) to `out` as f32.
    fn decode(self, bytes: &[u8], out: &mut Vec<f32>) {
        match self {
            Self::F32 => out.extend(
                bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            ),
            Self::F16 => out.extend(
                bytes
                    .chunks_exact(2)
                    .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()),
            ),
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

/// Reads a 2-D little-endian f32 or f16 `.npy` as f32; `Err` says what is wrong with it.
/// Memory: the values once, plus a small buffer.
pub fn read_f32(input: &mut impl Read) -> Result<(Vec<f32>, usize, usize), String> {
    let mut data = Vec::new();
    let (rows, cols) = read_f32_into(input, &mut data)?;
    Ok((data, rows, cols))
}

/// [`read_f32`] appending the values to `data` (several files into one array, with no copy);
/// returns the shape. On an error, `data` may hold part of the file.
pub fn read_f32_into(input: &mut impl Read, data: &mut Vec<f32>) -> Result<(usize, usize), String> {
    let (element, rows, cols) = read_header(input)?;
    let expected = rows
        .checked_mul(cols)
        .and_then(|n| n.checked_mul(element.size()))
        .ok_or("shape too large")?;
    data.reserve(rows * cols);
    let mut buffer = vec![0u8; (1 << 20) * element.size()];
    let mut read = 0usize;
    loop {
        let n = fill(input, &mut buffer).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        read += n;
        if read > expected {
            break;
        }
        element.decode(&buffer[..n], data);
    }
    if read != expected {
        return Err(format!(
            "holds {}{read} bytes of data, its header promises {expected}",
            if read > expected { "more than " } else { "" },
        ));
    }
    Ok((rows, cols))
}

/// Reads until `buffer` is full or the input ends, so that only the last read can be partial
/// (and elements are never split between reads).
fn fill(input: &mut impl Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match input.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The element type and shape of a 2-D `.npy`, leaving `input` at the data.
pub fn read_header(input: &mut impl Read) -> Result<(Element, usize, usize), String> {
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
    let element = [Element::F32, Element::F16]
        .into_iter()
        .find(|e| dict.contains(&format!("'descr': '{}'", e.descr())))
        .ok_or("values are not little-endian f32 or f16")?;
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
    Ok((element, rows, cols))
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
    fn f16_is_read_as_f32() {
        let mut file = header(Element::F16, 1, 3);
        Element::F16.encode([0.5f32, -2.0, 1.0].into_iter(), &mut file);
        assert_eq!(read_f32(&mut file.as_slice()).unwrap(), (vec![0.5, -2.0, 1.0], 1, 3));
    }

    #[test]
    fn truncated_data_is_refused() {
        let mut file = Vec::new();
        write_f32(&mut file, &[1.0; 8], 2, 4).unwrap();
        file.truncate(file.len() - 3);
        assert!(read_f32(&mut file.as_slice()).unwrap_err().contains("promises"));
    }
}
