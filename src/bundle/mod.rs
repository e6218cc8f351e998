//! One-file recordings: a bundle holds a recording's `manifest.json` and every segment file,
//! each with its own CRC-32, so a recording can be mailed, attached to an issue or copied
//! without losing a file on the way, and damage in transit is caught and named on arrival.
//!
//! Reading a bundle extracts it into a private scratch directory, checking every checksum on
//! the way, hands that directory to [`crate::recording::open`] (so bundles and directories go
//! through one reader), and removes the scratch directory again: the reader holds everything
//! in memory afterwards. The layout is in [`mod@format`] and `docs/bundles-and-redaction.md`.

pub mod format;

use crate::recording::schema::{Table, MANIFEST_FILE};
use crate::recording::{self, Recording, RecordingError};
use format::{Bundle, EntryInfo};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Errors writing, checking or reading a bundle.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// A filesystem operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file does not start with the bundle magic.
    #[error("{path}: not a profile bundle (expected \"PROFBNDL\" at byte 0, found {found})")]
    NotABundle {
        /// The file.
        path: PathBuf,
        /// The first bytes found, as text or hex.
        found: String,
    },
    /// The bundle was written by an unknown major version of the layout.
    #[error("{path}: bundle layout {found} is not supported (this build reads 1.x)")]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version found.
        found: String,
    },
    /// The bundle ends early (an interrupted copy or download).
    #[error(
        "{path}: truncated bundle: {what} (`profile unbundle --salvage` extracts what is intact)"
    )]
    Truncated {
        /// The file.
        path: PathBuf,
        /// What is missing.
        what: String,
    },
    /// An entry's (or the index's) bytes do not match their checksum.
    #[error(
        "{path}: entry `{entry}` is damaged: checksum mismatch (expected crc32 {expected:08x}, \
         found {found:08x}) (`profile unbundle --salvage` extracts what is intact)"
    )]
    Checksum {
        /// The file.
        path: PathBuf,
        /// The entry's name, or `(index)`.
        entry: String,
        /// The stored checksum.
        expected: u32,
        /// The checksum of the bytes found.
        found: u32,
    },
    /// The bundle's structure is inconsistent.
    #[error(
        "{path}: damaged bundle: {message} (`profile unbundle --salvage` extracts what is intact)"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is inconsistent.
        message: String,
    },
    /// An entry name that is not a recording file (a bundle never holds one; refusing it also
    /// keeps a crafted bundle from writing outside the target directory).
    #[error("{path}: entry name {name:?} is not a recording file name")]
    BadEntryName {
        /// The bundle (or, when writing, the file).
        path: PathBuf,
        /// The name.
        name: String,
    },
    /// A file changed size while it was being bundled.
    #[error("{0}: changed while it was being bundled (is the recorder still writing?)")]
    Changed(PathBuf),
    /// The output already exists.
    #[error("{0}: already exists and is not an empty directory; refusing to overwrite")]
    OutputExists(PathBuf),
    /// The extracted recording could not be read.
    #[error(transparent)]
    Recording(#[from] RecordingError),
}

/// What `bundle_dir` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleSummary {
    /// The entries, in file order.
    pub entries: Vec<EntryInfo>,
    /// Size of the bundle, bytes.
    pub bytes: u64,
    /// Files of the directory left out (not a recording file: `.tmp` leftovers, notes).
    pub skipped: Vec<String>,
}

/// Whether `name` is a file a bundle may hold: the manifest or a segment file.
pub fn is_recording_file(name: &str) -> bool {
    name == MANIFEST_FILE || Table::parse_file_name(name).is_some()
}

/// The recording files of `dir`, manifest first, then segment files by name; and the names
/// of everything else.
/// Files to bundle (name, path) and the names left out.
type Listing = (Vec<(String, PathBuf)>, Vec<String>);

fn recording_files(dir: &Path) -> Result<Listing, BundleError> {
    let io = |source| BundleError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    for e in fs::read_dir(dir).map_err(io)? {
        let e = e.map_err(io)?;
        let name = e.file_name().to_string_lossy().into_owned();
        if is_recording_file(&name) && e.file_type().map_err(io)?.is_file() {
            files.push((name, e.path()));
        } else {
            skipped.push(name);
        }
    }
    if !files.iter().any(|(n, _)| n == MANIFEST_FILE) {
        return Err(RecordingError::NotARecording(dir.to_path_buf()).into());
    }
    // Manifest first, so that a reader of a truncated bundle always gets it.
    files.sort_by(|a, b| (a.0 != MANIFEST_FILE, &a.0).cmp(&(b.0 != MANIFEST_FILE, &b.0)));
    skipped.sort();
    Ok((files, skipped))
}

/// Writes the recording directory `dir` as one bundle file `out`, atomically (a temporary
/// name next to it, then a rename), refusing to overwrite an existing file.
pub fn bundle_dir(dir: &Path, out: &Path) -> Result<BundleSummary, BundleError> {
    if out.exists() {
        return Err(BundleError::OutputExists(out.to_path_buf()));
    }
    let (files, skipped) = recording_files(dir)?;
    let tmp = temp_sibling(out);
    let result = (|| {
        let mut w = format::create(&tmp)?;
        let entries = format::write(&mut w, out, &files)?;
        let file = w.into_inner().map_err(|e| BundleError::Io {
            path: tmp.clone(),
            source: e.into_error(),
        })?;
        let io = |source| BundleError::Io {
            path: tmp.clone(),
            source,
        };
        file.sync_all().map_err(io)?;
        let bytes = file.metadata().map_err(io)?.len();
        fs::rename(&tmp, out).map_err(|source| BundleError::Io {
            path: out.to_path_buf(),
            source,
        })?;
        Ok(BundleSummary {
            entries,
            bytes,
            skipped,
        })
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn temp_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "bundle".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.tmp"))
}

/// Creates `out` (or accepts it empty) for extraction; returns whether it was created.
fn prepare_out(out: &Path) -> Result<bool, BundleError> {
    let io = |source| BundleError::Io {
        path: out.to_path_buf(),
        source,
    };
    match fs::read_dir(out) {
        Ok(mut it) => {
            if it.next().is_some() {
                return Err(BundleError::OutputExists(out.to_path_buf()));
            }
            Ok(false)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(out).map_err(io)?;
            Ok(true)
        }
        Err(_) if out.exists() => Err(BundleError::OutputExists(out.to_path_buf())),
        Err(e) => Err(io(e)),
    }
}

/// Checks every checksum of a bundle without writing anything; returns its entries.
pub fn verify(bundle: &Path) -> Result<Vec<EntryInfo>, BundleError> {
    let mut b = Bundle::open(bundle)?;
    let entries = b.entries.clone();
    for e in &entries {
        check_name(bundle, &e.name)?;
        b.copy_entry(e, &mut std::io::sink())?;
    }
    Ok(entries)
}

fn check_name(bundle: &Path, name: &str) -> Result<(), BundleError> {
    if is_recording_file(name) {
        Ok(())
    } else {
        Err(BundleError::BadEntryName {
            path: bundle.to_path_buf(),
            name: name.to_string(),
        })
    }
}

/// Extracts a bundle into `out` (created if missing; must be empty otherwise). Every entry is
/// checked; on any damage nothing is left behind (files are written under temporary names
/// and renamed only once all checks passed) and the error names the damaged entry.
pub fn unbundle(bundle: &Path, out: &Path) -> Result<Vec<EntryInfo>, BundleError> {
    let mut b = Bundle::open(bundle)?;
    for e in &b.entries {
        check_name(bundle, &e.name)?;
    }
    let created = prepare_out(out)?;
    let entries = b.entries.clone();
    let mut written: Vec<(PathBuf, PathBuf)> = Vec::new();
    let result = (|| {
        for e in &entries {
            let tmp = out.join(format!(".{}.tmp", e.name));
            written.push((tmp.clone(), out.join(&e.name)));
            let mut w = format::create(&tmp)?;
            b.copy_entry(e, &mut w)?;
            w.flush()
                .map_err(|source| BundleError::Io { path: tmp, source })?;
        }
        for (tmp, real) in &written {
            fs::rename(tmp, real).map_err(|source| BundleError::Io {
                path: real.clone(),
                source,
            })?;
        }
        Ok(entries.clone())
    })();
    if result.is_err() {
        for (tmp, _) in &written {
            let _ = fs::remove_file(tmp);
        }
        if created {
            let _ = fs::remove_dir(out);
        }
    }
    result
}

/// What a salvage extracted and what it could not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SalvageReport {
    /// Entries extracted whole, in file order.
    pub extracted: Vec<String>,
    /// One line per damaged entry or unreadable stretch.
    pub damaged: Vec<String>,
}

/// Extracts every intact entry of a possibly damaged bundle into `out`, ignoring the index
/// (which a truncation removes). An entry is written only when its checksum holds, so what
/// lands on disk is exactly what was bundled; the recording reader then copes with the gaps
/// as it does with a recording that lost files.
pub fn salvage(bundle: &Path, out: &Path) -> Result<SalvageReport, BundleError> {
    let scan = format::salvage_scan(bundle)?;
    prepare_out(out)?;
    let mut report = SalvageReport {
        extracted: Vec::new(),
        damaged: scan.damaged,
    };
    for (e, data) in scan.intact {
        if !is_recording_file(&e.name) {
            report.damaged.push(format!(
                "entry {:?}: not a recording file name; skipped",
                e.name
            ));
            continue;
        }
        let path = out.join(&e.name);
        if path.exists() {
            report
                .damaged
                .push(format!("entry `{}`: appears twice; kept the first", e.name));
            continue;
        }
        fs::write(&path, &data).map_err(|source| BundleError::Io { path, source })?;
        report.extracted.push(e.name);
    }
    Ok(report)
}

/// Whether `path` is a bundle file (by its first bytes), as opposed to a directory.
pub fn is_bundle(path: &Path) -> bool {
    let mut magic = [0u8; 8];
    fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .is_ok()
        && &magic == format::MAGIC
}

/// Opens a recording given as a directory or as a bundle file. A bundle is checked entry by
/// entry (a damaged one is refused, naming the entry) and extracted to a scratch directory
/// that is removed before this returns; `Recording::dir` and the `files` paths then name the
/// bundle (`rec.bundle/samples-000000.parquet`), not the scratch directory.
pub fn open_any(path: &Path) -> Result<Recording, BundleError> {
    open_any_filtered(path, &|_| true)
}

/// [`open_any`], keeping the samples of only the series `keep` accepts (see
/// [`recording::open_filtered`]): analysis reads only what it can use.
pub fn open_any_filtered(
    path: &Path,
    keep: &(dyn Fn(&crate::recording::SeriesInfo) -> bool + Sync),
) -> Result<Recording, BundleError> {
    open_any_filtered_progress(path, keep, &|_| {})
}

/// [`open_any_filtered`], reporting how far the read has come.
pub fn open_any_filtered_progress(
    path: &Path,
    keep: &(dyn Fn(&crate::recording::SeriesInfo) -> bool + Sync),
    progress: &(dyn Fn(crate::recording::ReadProgress) + Sync),
) -> Result<Recording, BundleError> {
    if path.is_dir() {
        return Ok(recording::open_filtered_progress(path, keep, progress)?);
    }
    let scratch = ScratchDir::new("open")?;
    unbundle(path, scratch.path())?;
    let mut rec = recording::open_filtered_progress(scratch.path(), keep, progress)?;
    rec.dir = path.to_path_buf();
    for f in &mut rec.files {
        if let Some(name) = f.path.file_name() {
            f.path = path.join(name);
        }
    }
    Ok(rec)
}

/// A recording directory or bundle, for [`crate::analyze::analyze_deferred`]: a directory's
/// samples are left to be read as the analysis goes; a bundle is unpacked to a scratch
/// directory and read whole there (with the series `keep` accepts), since the scratch
/// directory is gone when this returns.
pub fn open_any_deferred(
    path: &Path,
    keep: &(dyn Fn(&crate::recording::SeriesInfo) -> bool + Sync),
    progress: &(dyn Fn(crate::recording::ReadProgress) + Sync),
) -> Result<recording::Deferred, BundleError> {
    if path.is_dir() {
        return Ok(recording::open_deferred_progress(path, progress)?);
    }
    open_any_filtered_progress(path, keep, progress).map(recording::Deferred::loaded)
}

/// A private directory under the system temp dir, removed (with its contents) on drop. Named
/// by process id and a counter; creation fails over to the next name if one exists, so two
/// processes never share one.
#[derive(Debug)]
pub struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    /// Creates a fresh scratch directory; `purpose` goes into its name.
    pub fn new(purpose: &str) -> Result<ScratchDir, BundleError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let base = std::env::temp_dir();
        loop {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = base.join(format!("profile-{purpose}-{}-{n}", std::process::id()));
            match fs::create_dir(&path) {
                Ok(()) => return Ok(ScratchDir { path }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(source) => return Err(BundleError::Io { path, source }),
            }
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}
