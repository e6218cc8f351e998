//! The host table's writer: buffers one segment of `/proc` readings (`record --pid`) and
//! writes `host-NNNNNN.parquet` at each rotation, atomically like every other table.

use super::{first_free_segment, pq_err, sync_dir, write_segment, WrittenFile};
use crate::recording::schema::Table;
use crate::recording::{HostSample, RecordingError};
use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray, UInt32Array, UInt64Array};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Buffers host readings; writes `host-NNNNNN.parquet` at each rotation.
pub struct HostWriter {
    dir: PathBuf,
    next_segment: u64,
    rows: Vec<HostSample>,
}

impl HostWriter {
    /// A writer into `dir` (which must exist), after any host segment already there.
    pub fn new(dir: &Path) -> Result<Self, RecordingError> {
        Ok(HostWriter {
            dir: dir.to_path_buf(),
            next_segment: first_free_segment(dir, &[Table::Host])?,
            rows: Vec::new(),
        })
    }

    /// Adds the reading of one process.
    pub fn push(&mut self, row: HostSample) {
        self.rows.push(row);
    }

    /// Writes the buffered segment (if it holds anything) and starts the next one. On error
    /// the segment is dropped, so memory stays bounded when the disk is full.
    pub fn rotate(&mut self) -> Result<Vec<WrittenFile>, RecordingError> {
        if self.rows.is_empty() {
            return Ok(Vec::new());
        }
        let rows = std::mem::take(&mut self.rows);
        let n = self.next_segment;
        self.next_segment += 1;
        let path = self.dir.join(Table::Host.file_name(n));
        let batch = host_batch(&rows).map_err(|e| pq_err(&path, e))?;
        let written = write_segment(&self.dir, Table::Host, n, &batch)?;
        sync_dir(&self.dir);
        Ok(vec![written])
    }

    /// Writes what is buffered and closes the writer.
    pub fn finish(mut self) -> Result<Vec<WrittenFile>, RecordingError> {
        self.rotate()
    }
}

fn host_batch(p: &[HostSample]) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let i64s = |f: fn(&HostSample) -> i64| -> ArrayRef {
        Arc::new(Int64Array::from_iter_values(p.iter().map(f)))
    };
    let u64s = |f: fn(&crate::host::ProcReading) -> Option<u64>| -> ArrayRef {
        Arc::new(
            p.iter()
                .map(|h| h.reading.as_ref().and_then(f))
                .collect::<UInt64Array>(),
        )
    };
    let u32s = |f: fn(&crate::host::ProcReading) -> Option<u32>| -> ArrayRef {
        Arc::new(
            p.iter()
                .map(|h| h.reading.as_ref().and_then(f))
                .collect::<UInt32Array>(),
        )
    };
    let strs = |f: fn(&crate::host::ProcReading) -> &str| -> ArrayRef {
        Arc::new(
            p.iter()
                .map(|h| h.reading.as_ref().map(f))
                .collect::<StringArray>(),
        )
    };
    let cols: Vec<ArrayRef> = vec![
        Arc::new(UInt64Array::from_iter_values(p.iter().map(|h| h.seq))),
        i64s(|h| h.requested_at.0),
        i64s(|h| h.completed_at.0),
        i64s(|h| h.requested_mono.0),
        i64s(|h| h.completed_mono.0),
        Arc::new(UInt32Array::from_iter_values(p.iter().map(|h| h.pid))),
        u32s(|r| Some(r.ppid)),
        Arc::new(StringArray::from_iter_values(
            p.iter().map(|h| h.status.as_str()),
        )),
        Arc::new(
            p.iter()
                .map(|h| h.error.as_deref())
                .collect::<StringArray>(),
        ),
        strs(|r| r.comm.as_str()),
        strs(|r| r.state.as_str()),
        u64s(|r| Some(r.start_ticks)),
        u64s(|r| Some(r.utime_ticks)),
        u64s(|r| Some(r.stime_ticks)),
        u64s(|r| r.rss_bytes),
        u32s(|r| r.threads),
    ];
    RecordBatch::try_new(Table::Host.schema(), cols)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::ProcReading;
    use crate::recording::writer::{testutil, write_manifest};
    use crate::recording::HostStatus;
    use crate::units::{MonoNs, WallNs};

    fn row(seq: u64, pid: u32, reading: Option<ProcReading>) -> HostSample {
        let t = seq as i64 * 250_000_000;
        HostSample {
            seq,
            requested_at: WallNs(1_700_000_000_000_000_000 + t),
            completed_at: WallNs(1_700_000_000_000_000_000 + t + 10_000),
            requested_mono: MonoNs(t),
            completed_mono: MonoNs(t + 10_000),
            pid,
            status: if reading.is_some() {
                HostStatus::Ok
            } else {
                HostStatus::Exited
            },
            error: None,
            reading,
        }
    }

    fn reading(pid: u32, ticks: u64) -> ProcReading {
        ProcReading {
            pid,
            ppid: 1,
            comm: "python3 (x)".to_string(),
            state: "R".to_string(),
            start_ticks: 777,
            utime_ticks: ticks,
            stime_ticks: ticks / 10,
            rss_bytes: (pid % 2 == 0).then_some(12 << 20),
            threads: Some(3),
        }
    }

    /// Host rows round-trip through rotation bit for bit, nulls included; a recording of the
    /// older format with no host file reads with no host rows.
    #[test]
    fn host_rows_round_trip_across_rotations() {
        let dir = tempfile::tempdir().unwrap();
        write_manifest(dir.path(), &testutil::manifest()).unwrap();
        let mut w = HostWriter::new(dir.path()).unwrap();
        let mut want = Vec::new();
        for seq in 0..6u64 {
            for pid in [40, 41] {
                let r = row(seq, pid, (seq < 5).then(|| reading(pid, seq * 7)));
                want.push(r.clone());
                w.push(r);
            }
            if seq == 2 {
                assert_eq!(w.rotate().unwrap().len(), 1);
            }
        }
        w.finish().unwrap();
        let rec = crate::recording::open(dir.path()).unwrap();
        assert!(rec.problems().next().is_none(), "{:?}", rec.files);
        assert_eq!(rec.host_samples, want);
        assert!(dir.path().join("host-000001.parquet").exists());

        let old = tempfile::tempdir().unwrap();
        let mut m = testutil::manifest();
        m.format_version = "1.2".to_string();
        write_manifest(old.path(), &m).unwrap();
        let rec = crate::recording::open(old.path()).unwrap();
        assert!(rec.manifest.host.is_none() && rec.host_samples.is_empty());
    }
}
