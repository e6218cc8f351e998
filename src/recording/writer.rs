//! Writers for the scrape/sample files and the GPU files. (Stub: to be written.)
//!
//! Each writer buffers one segment in memory and writes it as one Parquet file per table when
//! it rotates, through a temporary name and a rename, so a crash never leaves a half file under
//! a real name.

use super::{GpuPoll, Manifest, RecordingError, ScrapeMeta};
use crate::promtext::Exposition;
use std::path::{Path, PathBuf};

/// A file that a rotation wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    /// Its path.
    pub path: PathBuf,
    /// Its size on disk.
    pub bytes: u64,
}

/// Writes `manifest.json` atomically (temporary file + rename).
pub fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<(), RecordingError> {
    let _ = (dir, manifest);
    todo!()
}

/// Buffers scrape attempts and their samples; writes `scrapes-NNNNNN.parquet` and
/// `samples-NNNNNN.parquet` at each rotation.
pub struct ScrapeWriter {
    _dir: PathBuf,
}

impl ScrapeWriter {
    /// A writer into `dir` (which must exist), starting at segment 0.
    pub fn new(dir: &Path) -> Result<Self, RecordingError> {
        Ok(ScrapeWriter {
            _dir: dir.to_path_buf(),
        })
    }

    /// Adds one attempt. `exposition` is the parsed body of a successful scrape, `None` for a
    /// failed one.
    pub fn push(
        &mut self,
        meta: &ScrapeMeta,
        exposition: Option<&Exposition<'_>>,
    ) -> Result<(), RecordingError> {
        let _ = (meta, exposition);
        todo!()
    }

    /// Writes the buffered segment (if it holds anything) and starts the next one.
    pub fn rotate(&mut self) -> Result<Vec<WrittenFile>, RecordingError> {
        todo!()
    }

    /// Writes what is buffered and closes the writer.
    pub fn finish(self) -> Result<Vec<WrittenFile>, RecordingError> {
        todo!()
    }
}

/// Buffers GPU polls; writes `gpu-NNNNNN.parquet` at each rotation.
pub struct GpuWriter {
    _dir: PathBuf,
}

impl GpuWriter {
    /// A writer into `dir` (which must exist), starting at segment 0.
    pub fn new(dir: &Path) -> Result<Self, RecordingError> {
        Ok(GpuWriter {
            _dir: dir.to_path_buf(),
        })
    }

    /// Adds one poll of one GPU.
    pub fn push(&mut self, poll: &GpuPoll) -> Result<(), RecordingError> {
        let _ = poll;
        todo!()
    }

    /// Writes the buffered segment (if it holds anything) and starts the next one.
    pub fn rotate(&mut self) -> Result<Vec<WrittenFile>, RecordingError> {
        todo!()
    }

    /// Writes what is buffered and closes the writer.
    pub fn finish(self) -> Result<Vec<WrittenFile>, RecordingError> {
        todo!()
    }
}
