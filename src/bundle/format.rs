//! The bundle file layout, byte for byte: CRC-32, the writer, the strict reader (index first,
//! every checksum checked) and the salvaging scanner (entry by entry from the front, keeping
//! what is intact). `docs/bundles-and-redaction.md` documents the layout.
//!
//! All integers are little-endian. Layout:
//!
//! ```text
//! header   "PROFBNDL" | major u16 | minor u16 | reserved u32 (0)            16 bytes
//! entry*   "ENTR" | name_len u16 | name | data_len u64 | data_crc u32 | header_crc u32 | data
//! index    "INDX" | count u32 | (offset u64 | data_len u64 | data_crc u32 | name_len u16 | name)*
//!          | index_crc u32
//! trailer  index_offset u64 | index_len u64 | "PROFBEND"                    24 bytes
//! ```

use super::BundleError;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// First 8 bytes of every bundle.
pub const MAGIC: &[u8; 8] = b"PROFBNDL";
/// Last 8 bytes of a complete bundle.
pub const END_MAGIC: &[u8; 8] = b"PROFBEND";
/// Bundle layout major version this build reads and writes.
pub const VERSION_MAJOR: u16 = 1;
/// Bundle layout minor version this build writes.
pub const VERSION_MINOR: u16 = 0;
const ENTRY_MAGIC: &[u8; 4] = b"ENTR";
const INDEX_MAGIC: &[u8; 4] = b"INDX";
const HEADER_LEN: u64 = 16;
const TRAILER_LEN: u64 = 24;
/// Entry names are short file names; anything longer is damage, not a name.
const MAX_NAME: usize = 255;

/// CRC-32 (IEEE 802.3, the zlib/PNG polynomial), table-driven. Written here rather than
/// pulled in as a crate: it is 20 lines, and a new dependency would touch Cargo.lock, which
/// other work edits in parallel. It detects damage (bit flips, truncation), not tampering.
#[derive(Debug, Clone, Copy)]
pub struct Crc32(u32);

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

impl Crc32 {
    /// A fresh checksum.
    pub fn new() -> Crc32 {
        Crc32(0xFFFF_FFFF)
    }

    /// Feeds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        let mut c = self.0;
        for &b in bytes {
            c = CRC_TABLE[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8);
        }
        self.0 = c;
    }

    /// The checksum of what was fed.
    pub fn finish(self) -> u32 {
        self.0 ^ 0xFFFF_FFFF
    }

    /// The checksum of one slice.
    pub fn of(bytes: &[u8]) -> u32 {
        let mut c = Crc32::new();
        c.update(bytes);
        c.finish()
    }
}

impl Default for Crc32 {
    fn default() -> Self {
        Crc32::new()
    }
}

/// One entry as the index (or a scanned entry header) describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryInfo {
    /// File name inside the recording.
    pub name: String,
    /// Offset of the entry's `ENTR` magic in the bundle.
    pub offset: u64,
    /// Bytes of data.
    pub data_len: u64,
    /// CRC-32 of the data.
    pub data_crc: u32,
}

impl EntryInfo {
    fn header_bytes(&self) -> Vec<u8> {
        let mut h = Vec::with_capacity(4 + 2 + self.name.len() + 12);
        h.extend_from_slice(ENTRY_MAGIC);
        h.extend_from_slice(&(self.name.len() as u16).to_le_bytes());
        h.extend_from_slice(self.name.as_bytes());
        h.extend_from_slice(&self.data_len.to_le_bytes());
        h.extend_from_slice(&self.data_crc.to_le_bytes());
        h
    }

    /// Where the entry's data starts.
    fn data_offset(&self) -> u64 {
        self.offset + 4 + 2 + self.name.len() as u64 + 8 + 4 + 4
    }
}

fn io_err(path: &Path) -> impl Fn(io::Error) -> BundleError + '_ {
    move |source| BundleError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `files` (name, path on disk) as a bundle into `out`, in the given order. Each file
/// is read twice (checksum, then copy) so that memory stays flat whatever the file size;
/// returns the entries written.
pub(super) fn write(
    out: &mut impl Write,
    out_path: &Path,
    files: &[(String, PathBuf)],
) -> Result<Vec<EntryInfo>, BundleError> {
    let werr = io_err(out_path);
    let mut w = CountingWriter { inner: out, at: 0 };
    w.write_all(MAGIC).map_err(&werr)?;
    w.write_all(&VERSION_MAJOR.to_le_bytes()).map_err(&werr)?;
    w.write_all(&VERSION_MINOR.to_le_bytes()).map_err(&werr)?;
    w.write_all(&0u32.to_le_bytes()).map_err(&werr)?;
    let mut entries = Vec::with_capacity(files.len());
    for (name, path) in files {
        if name.len() > MAX_NAME {
            return Err(BundleError::BadEntryName {
                path: path.clone(),
                name: name.clone(),
            });
        }
        let rerr = io_err(path);
        let (data_len, data_crc) = checksum_file(path)?;
        let info = EntryInfo {
            name: name.clone(),
            offset: w.at,
            data_len,
            data_crc,
        };
        let header = info.header_bytes();
        w.write_all(&header).map_err(&werr)?;
        w.write_all(&Crc32::of(&header).to_le_bytes())
            .map_err(&werr)?;
        let mut f = File::open(path).map_err(&rerr)?;
        let copied = io::copy(&mut (&mut f).take(data_len), &mut w).map_err(&werr)?;
        if copied != data_len {
            // The file shrank between the checksum and the copy: another process writes it.
            return Err(BundleError::Changed(path.clone()));
        }
        entries.push(info);
    }
    let index_offset = w.at;
    let index = index_bytes(&entries);
    w.write_all(&index).map_err(&werr)?;
    let mut trailer = Vec::with_capacity(TRAILER_LEN as usize);
    trailer.extend_from_slice(&index_offset.to_le_bytes());
    trailer.extend_from_slice(&(index.len() as u64).to_le_bytes());
    trailer.extend_from_slice(END_MAGIC);
    w.write_all(&trailer).map_err(&werr)?;
    w.flush().map_err(&werr)?;
    Ok(entries)
}

/// The index, its CRC included.
fn index_bytes(entries: &[EntryInfo]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(INDEX_MAGIC);
    b.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for e in entries {
        b.extend_from_slice(&e.offset.to_le_bytes());
        b.extend_from_slice(&e.data_len.to_le_bytes());
        b.extend_from_slice(&e.data_crc.to_le_bytes());
        b.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
        b.extend_from_slice(e.name.as_bytes());
    }
    let crc = Crc32::of(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

fn checksum_file(path: &Path) -> Result<(u64, u32), BundleError> {
    let rerr = io_err(path);
    let mut f = BufReader::with_capacity(1 << 16, File::open(path).map_err(&rerr)?);
    let mut crc = Crc32::new();
    let mut len = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(&rerr)?;
        if n == 0 {
            return Ok((len, crc.finish()));
        }
        crc.update(&buf[..n]);
        len += n as u64;
    }
}

struct CountingWriter<'a, W: Write> {
    inner: &'a mut W,
    at: u64,
}

impl<W: Write> Write for CountingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.at += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn hex(bytes: &[u8]) -> String {
    let printable = bytes.iter().all(|b| b.is_ascii_graphic() || *b == b' ');
    if printable {
        format!("{:?}", String::from_utf8_lossy(bytes))
    } else {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// An opened bundle whose header, trailer and index were checked (entry data not yet).
pub(super) struct Bundle {
    path: PathBuf,
    file: File,
    /// Entries in file order.
    pub entries: Vec<EntryInfo>,
}

fn read_exact_at(file: &mut File, path: &Path, at: u64, buf: &mut [u8]) -> Result<(), BundleError> {
    file.seek(SeekFrom::Start(at)).map_err(io_err(path))?;
    file.read_exact(buf).map_err(io_err(path))
}

/// Checks the 16-byte header: magic and major version.
fn check_header(path: &Path, file: &mut File, len: u64) -> Result<(), BundleError> {
    if len < 8 {
        let mut b = vec![0u8; len as usize];
        read_exact_at(file, path, 0, &mut b)?;
        return Err(BundleError::NotABundle {
            path: path.to_path_buf(),
            found: hex(&b),
        });
    }
    let mut h = [0u8; HEADER_LEN as usize];
    let n = HEADER_LEN.min(len) as usize;
    read_exact_at(file, path, 0, &mut h[..n])?;
    if &h[..8] != MAGIC {
        return Err(BundleError::NotABundle {
            path: path.to_path_buf(),
            found: hex(&h[..8]),
        });
    }
    if len < HEADER_LEN {
        return Err(BundleError::Truncated {
            path: path.to_path_buf(),
            what: format!("the file is {len} bytes, shorter than the {HEADER_LEN}-byte header"),
        });
    }
    let major = u16::from_le_bytes([h[8], h[9]]);
    let minor = u16::from_le_bytes([h[10], h[11]]);
    if major != VERSION_MAJOR {
        return Err(BundleError::UnsupportedVersion {
            path: path.to_path_buf(),
            found: format!("{major}.{minor}"),
        });
    }
    Ok(())
}

impl Bundle {
    /// Opens a bundle and checks its header, trailer and index. Any damage there is an error
    /// that says what is wrong; `--salvage` exists for the rest.
    pub(super) fn open(path: &Path) -> Result<Bundle, BundleError> {
        let mut file = File::open(path).map_err(io_err(path))?;
        let len = file.metadata().map_err(io_err(path))?.len();
        check_header(path, &mut file, len)?;
        let truncated = |what: String| BundleError::Truncated {
            path: path.to_path_buf(),
            what,
        };
        if len < HEADER_LEN + TRAILER_LEN {
            return Err(truncated(format!(
                "the file is {len} bytes: header but no end marker"
            )));
        }
        let mut t = [0u8; TRAILER_LEN as usize];
        read_exact_at(&mut file, path, len - TRAILER_LEN, &mut t)?;
        if &t[16..] != END_MAGIC {
            return Err(truncated(format!(
                "no end marker: expected {} in the last 8 bytes, found {}",
                hex(END_MAGIC),
                hex(&t[16..])
            )));
        }
        let index_offset = u64::from_le_bytes(t[0..8].try_into().unwrap_or_default());
        let index_len = u64::from_le_bytes(t[8..16].try_into().unwrap_or_default());
        let corrupt = |message: String| BundleError::Corrupt {
            path: path.to_path_buf(),
            message,
        };
        if index_offset < HEADER_LEN
            || index_offset.checked_add(index_len) != Some(len - TRAILER_LEN)
            || index_len < 12
        {
            return Err(corrupt(format!(
                "the trailer points at an index at byte {index_offset} of {index_len} bytes, \
                 which does not end where the trailer starts (byte {})",
                len - TRAILER_LEN
            )));
        }
        let mut index = vec![0u8; index_len as usize];
        read_exact_at(&mut file, path, index_offset, &mut index)?;
        let (body, crc) = index.split_at(index.len() - 4);
        let stored = u32::from_le_bytes(crc.try_into().unwrap_or_default());
        let found = Crc32::of(body);
        if stored != found {
            return Err(BundleError::Checksum {
                path: path.to_path_buf(),
                entry: "(index)".to_string(),
                expected: stored,
                found,
            });
        }
        let entries = parse_index(body).map_err(corrupt)?;
        Ok(Bundle {
            path: path.to_path_buf(),
            file,
            entries,
        })
    }

    /// Streams entry `e`'s data into `out` and checks its header and checksum. `out` has
    /// received the bytes even when the check fails; callers discard it then.
    pub(super) fn copy_entry(
        &mut self,
        e: &EntryInfo,
        out: &mut impl Write,
    ) -> Result<(), BundleError> {
        let header = e.header_bytes();
        let mut stored = vec![0u8; header.len() + 4];
        read_exact_at(&mut self.file, &self.path, e.offset, &mut stored)
            .map_err(|_| self.damaged(e, "its header is cut off"))?;
        if stored[..header.len()] != header[..] {
            return Err(self.damaged(e, "its header does not match the index"));
        }
        let data = stream_crc(&mut self.file, &self.path, e.data_len, out)?;
        if data != e.data_crc {
            return Err(BundleError::Checksum {
                path: self.path.clone(),
                entry: e.name.clone(),
                expected: e.data_crc,
                found: data,
            });
        }
        Ok(())
    }

    fn damaged(&self, e: &EntryInfo, why: &str) -> BundleError {
        BundleError::Corrupt {
            path: self.path.clone(),
            message: format!("entry `{}` at byte {}: {why}", e.name, e.offset),
        }
    }
}

/// Reads `len` bytes at the current position into `out`, returning their CRC.
fn stream_crc(
    file: &mut File,
    path: &Path,
    len: u64,
    out: &mut impl Write,
) -> Result<u32, BundleError> {
    let mut crc = Crc32::new();
    let mut left = len;
    let mut buf = vec![0u8; 1 << 16];
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = file.read(&mut buf[..want]).map_err(io_err(path))?;
        if n == 0 {
            return Err(BundleError::Truncated {
                path: path.to_path_buf(),
                what: format!("an entry's data ends {left} bytes early"),
            });
        }
        crc.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(io_err(path))?;
        left -= n as u64;
    }
    Ok(crc.finish())
}

fn parse_index(b: &[u8]) -> Result<Vec<EntryInfo>, String> {
    let mut r = Cursor { b, at: 0 };
    if r.take(4)? != INDEX_MAGIC {
        return Err("the index does not start with INDX".to_string());
    }
    let count = r.u32()?;
    let mut out = Vec::new();
    for _ in 0..count {
        let offset = r.u64()?;
        let data_len = r.u64()?;
        let data_crc = r.u32()?;
        let name_len = r.u16()? as usize;
        let name = std::str::from_utf8(r.take(name_len)?)
            .map_err(|_| "an index name is not UTF-8".to_string())?
            .to_string();
        out.push(EntryInfo {
            name,
            offset,
            data_len,
            data_crc,
        });
    }
    if r.at != b.len() {
        return Err(format!("{} stray bytes after the index", b.len() - r.at));
    }
    Ok(out)
}

struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.b.len());
        let end = end.ok_or_else(|| format!("the index ends early at byte {}", self.at))?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u16(&mut self) -> Result<u16, String> {
        Ok(u16::from_le_bytes(
            self.take(2)?.try_into().unwrap_or_default(),
        ))
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().unwrap_or_default(),
        ))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().unwrap_or_default(),
        ))
    }
}

/// What a salvage scan found: intact entries (with their data) and what it had to skip.
pub(super) struct Scan {
    /// Intact entries in file order, with their bytes.
    pub intact: Vec<(EntryInfo, Vec<u8>)>,
    /// What was damaged, one line each.
    pub damaged: Vec<String>,
}

/// Scans a bundle from the front without trusting its index: every entry whose header and
/// data checksums hold is kept. After a damaged header the scan looks for the next `ENTR`
/// whose header checksum holds, so one bad entry does not hide the ones behind it. Reads the
/// whole file into memory: salvage is a rescue path, not the everyday one.
pub(super) fn salvage_scan(path: &Path) -> Result<Scan, BundleError> {
    let mut file = File::open(path).map_err(io_err(path))?;
    let len = file.metadata().map_err(io_err(path))?.len();
    check_header(path, &mut file, len)?;
    let mut b = Vec::new();
    file.seek(SeekFrom::Start(0)).map_err(io_err(path))?;
    file.read_to_end(&mut b).map_err(io_err(path))?;
    let mut scan = Scan {
        intact: Vec::new(),
        damaged: Vec::new(),
    };
    let mut at = HEADER_LEN as usize;
    let mut lost_from: Option<usize> = None;
    let mut found_index = false;
    while at < b.len() {
        if b[at..].starts_with(INDEX_MAGIC) && lost_from.is_none() {
            found_index = true;
            break;
        }
        match entry_at(&b, at) {
            Some((info, data_at)) => {
                if let Some(from) = lost_from.take() {
                    scan.damaged
                        .push(format!("bytes {from}..{at}: unreadable, skipped"));
                }
                let end = data_at.checked_add(info.data_len as usize);
                match end.filter(|&e| e <= b.len()) {
                    None => {
                        scan.damaged.push(format!(
                            "entry `{}`: truncated ({} of {} bytes present)",
                            info.name,
                            b.len() - data_at,
                            info.data_len
                        ));
                        return Ok(scan);
                    }
                    Some(end) => {
                        let data = &b[data_at..end];
                        let found = Crc32::of(data);
                        if found == info.data_crc {
                            scan.intact.push((info, data.to_vec()));
                        } else {
                            scan.damaged.push(format!(
                                "entry `{}`: checksum mismatch (expected crc32 {:08x}, found \
                                 {found:08x})",
                                info.name, info.data_crc
                            ));
                        }
                        at = end;
                    }
                }
            }
            None => {
                lost_from.get_or_insert(at);
                // Resynchronise on the next plausible entry header.
                at = match b[at + 1..].windows(4).position(|w| w == ENTRY_MAGIC) {
                    Some(p) => at + 1 + p,
                    None => b.len(),
                };
            }
        }
    }
    if let Some(from) = lost_from {
        scan.damaged
            .push(format!("bytes {from}..{}: unreadable, skipped", b.len()));
    }
    // Entries may all be whole while the tail is not: still a damaged bundle.
    if !found_index {
        scan.damaged
            .push("the index and end marker are missing (truncated)".to_string());
    } else if !b.ends_with(END_MAGIC) {
        scan.damaged
            .push("the end marker is missing (truncated)".to_string());
    }
    Ok(scan)
}

/// Parses an entry header at `at` if it is whole and its checksum holds; returns the entry
/// and where its data starts.
fn entry_at(b: &[u8], at: usize) -> Option<(EntryInfo, usize)> {
    let mut r = Cursor { b, at };
    if r.take(4).ok()? != ENTRY_MAGIC {
        return None;
    }
    let name_len = r.u16().ok()? as usize;
    if name_len == 0 || name_len > MAX_NAME {
        return None;
    }
    let name = std::str::from_utf8(r.take(name_len).ok()?)
        .ok()?
        .to_string();
    let data_len = r.u64().ok()?;
    let data_crc = r.u32().ok()?;
    let header_end = r.at;
    let stored = r.u32().ok()?;
    if Crc32::of(&b[at..header_end]) != stored {
        return None;
    }
    let info = EntryInfo {
        name,
        offset: at as u64,
        data_len,
        data_crc,
    };
    let data_at = info.data_offset() as usize;
    Some((info, data_at))
}

/// Opens `path` for writing through a buffered writer.
pub(super) fn create(path: &Path) -> Result<BufWriter<File>, BundleError> {
    Ok(BufWriter::with_capacity(
        1 << 16,
        File::create(path).map_err(io_err(path))?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(Crc32::of(b"123456789"), 0xCBF4_3926);
        assert_eq!(Crc32::of(b""), 0);
        let mut c = Crc32::new();
        c.update(b"1234");
        c.update(b"56789");
        assert_eq!(c.finish(), 0xCBF4_3926);
    }

    #[test]
    fn index_round_trips() {
        let e = vec![
            EntryInfo {
                name: "manifest.json".into(),
                offset: 16,
                data_len: 3,
                data_crc: 7,
            },
            EntryInfo {
                name: "gpu-000000.parquet".into(),
                offset: 60,
                data_len: 1 << 40,
                data_crc: u32::MAX,
            },
        ];
        let b = index_bytes(&e);
        assert_eq!(parse_index(&b[..b.len() - 4]).unwrap(), e);
        assert!(parse_index(&b[..b.len() - 6]).is_err());
    }
}
