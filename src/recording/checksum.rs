//! A checksum of each data file's pages, written in its own footer and checked by the reader.
//!
//! Why: the Parquet files hold no page checksum (parquet 60 writes none) and zstd frames as
//! parquet writes them carry none either, so a changed byte inside a compressed page (a disk
//! or copy fault) decodes, more often than not, into other values without any error: a figure
//! built on them would be wrong and say nothing. Since format 1.6 the writer hashes every byte
//! it writes up to the footer (the magic and every row group) with XXH64 and stores
//! `LEN:HASH` under [`CHECKSUM_KEY`]; the reader hashes the same bytes and refuses the file as
//! damaged when they differ. A file without the key (older than 1.6, or written by another
//! tool) is read as before. The footer itself is not covered: damage there fails to parse or
//! is caught by the page walk (`reader/pages.rs`).

use parquet::arrow::ArrowWriter;
use parquet::errors::ParquetError;
use parquet::file::metadata::KeyValue;
use std::hash::Hasher;
use std::io::Write;
use twox_hash::XxHash64;

/// Parquet key-value metadata key of the checksum: `LEN:HASH`, the number of bytes hashed from
/// the start of the file and their XXH64 (seed 0) in 16 lowercase hex digits.
pub const CHECKSUM_KEY: &str = "profile.data_xxh64";

/// A writer that hashes everything written through it.
pub struct Hashing<W> {
    inner: W,
    hasher: XxHash64,
    len: u64,
}

impl<W: Write> Hashing<W> {
    /// Wraps `inner`, nothing hashed yet.
    pub fn new(inner: W) -> Hashing<W> {
        Hashing {
            inner,
            hasher: XxHash64::with_seed(0),
            len: 0,
        }
    }

    /// The writer inside.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// The checksum of what went through so far, as its footer entry.
    fn key_value(&self) -> KeyValue {
        KeyValue::new(
            CHECKSUM_KEY.to_string(),
            format!("{}:{:016x}", self.len, self.hasher.finish()),
        )
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.write(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Writes the last row group and the checksum of everything before the footer into it; call
/// just before `close()`.
pub fn seal<W: Write + Send>(w: &mut ArrowWriter<Hashing<W>>) -> Result<(), ParquetError> {
    w.flush()?;
    // The row groups sit in parquet's buffer until it is flushed into ours.
    w.sync()?;
    let kv = w.inner().key_value();
    w.append_key_value_metadata(kv);
    Ok(())
}

/// Checks `bytes` (a whole file) against the checksum among its footer's key-value metadata
/// `kv`; `Ok` when it matches or the file has none (written before 1.6).
pub fn verify_file(bytes: &[u8], kv: Option<&Vec<KeyValue>>) -> Result<(), String> {
    let value = kv
        .and_then(|kv| kv.iter().find(|e| e.key == CHECKSUM_KEY))
        .and_then(|e| e.value.as_deref());
    value.map_or(Ok(()), |v| verify(bytes, v))
}

/// Checks `bytes` (a whole file) against the checksum its footer holds under [`CHECKSUM_KEY`]
/// (`value`); `Ok` when it matches. A value that does not parse, or counts more bytes than
/// the file has, is damage too.
fn verify(bytes: &[u8], value: &str) -> Result<(), String> {
    let parsed = value.split_once(':').and_then(|(len, hash)| {
        Some((
            len.parse::<usize>().ok()?,
            u64::from_str_radix(hash, 16).ok()?,
        ))
    });
    let Some((len, want)) = parsed else {
        return Err(format!("its checksum entry `{value}` does not parse"));
    };
    let Some(covered) = bytes.get(..len) else {
        return Err(format!(
            "its checksum covers {len} bytes, and the file has {}",
            bytes.len()
        ));
    };
    let got = XxHash64::oneshot(0, covered);
    if got != want {
        return Err(format!(
            "its pages do not match the checksum written with them ({got:016x}, written \
             {want:016x}): a byte changed after the file was written"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_written_while_writing_matches_one_computed_after() {
        let mut w = Hashing::new(Vec::new());
        w.write_all(b"PAR1").unwrap();
        w.write_all(&[7u8; 10_000]).unwrap();
        let kv = w.key_value();
        let value = kv.value.unwrap();
        assert!(value.starts_with("10004:"), "{value}");
        assert_eq!(verify(&w.inner, &value), Ok(()));
        let mut changed = w.inner.clone();
        changed[5000] ^= 1;
        assert!(verify(&changed, &value)
            .unwrap_err()
            .contains("a byte changed"));
        assert!(verify(&w.inner[..100], &value)
            .unwrap_err()
            .contains("covers 10004"));
        assert!(verify(&w.inner, "12:zz")
            .unwrap_err()
            .contains("does not parse"));
    }
}
