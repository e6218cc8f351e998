use super::*;
use crate::recording::reader::open;
use crate::recording::writer::testutil::{self, failed_meta, gpu_poll, ok_meta, Synth};
use crate::recording::writer::{write_manifest, GpuWriter, ScrapeWriter};
use crate::recording::{Recording, ScrapeStatus};
use arrow_array::types::{Float64Type, Int32Type, UInt64Type};

/// A recording of `segments` segments of 20 scrapes (5 s at 4 Hz; every 7th failed, a few
/// idle) and one GPU polled with each scrape, rotated together.
fn synthetic(segments: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_manifest(dir.path(), &testutil::manifest()).unwrap();
    let mut w = ScrapeWriter::new(dir.path()).unwrap();
    let mut g = GpuWriter::new(dir.path()).unwrap();
    let mut synth = Synth::new(5);
    for seq in 0..segments * 20 {
        synth.step(seq % 11 > 2);
        if seq % 7 == 3 {
            w.push(&failed_meta(seq, ScrapeStatus::Timeout), None)
                .unwrap();
        } else {
            let e = synth.exposition();
            w.push(&ok_meta(seq, e.sample_count()), Some(&e)).unwrap();
        }
        g.push(&gpu_poll(seq, 0, seq % 2 == 0)).unwrap();
        if seq % 20 == 19 {
            w.rotate().unwrap();
            g.rotate().unwrap();
        }
    }
    w.finish().unwrap();
    g.finish().unwrap();
    dir
}

/// What the analysis sees of a recording: every scrape with its rows, every GPU poll.
fn content(rec: &Recording) -> (Vec<String>, Vec<String>) {
    let scrapes = rec
        .scrapes
        .iter()
        .map(|s| format!("{:?} {:?}", s.meta, rec.sample_rows(s)))
        .collect();
    let gpu = rec.gpu_polls.iter().map(|p| format!("{p:?}")).collect();
    (scrapes, gpu)
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn merging_keeps_every_row_and_the_first_segment_number() {
    let dir = synthetic(6);
    let before = content(&open(dir.path()).unwrap());
    // 6 segments of 5 s each; a 15 s span makes two groups of three.
    let s = compact(dir.path(), Duration::from_secs(15)).unwrap();
    assert!(!s.recovered);
    assert_eq!(s.files_before, 18);
    assert_eq!(s.files_after, 6);
    let targets: Vec<&str> = s.merges.iter().map(|m| m.target.as_str()).collect();
    assert_eq!(
        targets,
        [
            "samples-000000.parquet",
            "scrapes-000000.parquet",
            "samples-000003.parquet",
            "scrapes-000003.parquet",
            "gpu-000000.parquet",
            "gpu-000003.parquet",
        ]
    );
    assert_eq!(
        names(dir.path()),
        [
            "gpu-000000.parquet",
            "gpu-000003.parquet",
            "manifest.json",
            "samples-000000.parquet",
            "samples-000003.parquet",
            "scrapes-000000.parquet",
            "scrapes-000003.parquet",
        ]
    );
    let rec = open(dir.path()).unwrap();
    assert!(rec.problems().next().is_none(), "{:?}", rec.files);
    assert_eq!(content(&rec), before);
    // Bigger files of the same rows are smaller in all.
    assert!(s.bytes_after < s.bytes_before, "{s:?}");
}

#[test]
fn a_second_run_with_the_same_span_changes_nothing() {
    let dir = synthetic(4);
    compact(dir.path(), DEFAULT_SPAN).unwrap();
    let files = names(dir.path());
    let bytes: Vec<u64> = files
        .iter()
        .map(|n| fs::metadata(dir.path().join(n)).unwrap().len())
        .collect();
    let again = compact(dir.path(), DEFAULT_SPAN).unwrap();
    assert!(again.merges.is_empty());
    assert_eq!(names(dir.path()), files);
    let bytes_again: Vec<u64> = files
        .iter()
        .map(|n| fs::metadata(dir.path().join(n)).unwrap().len())
        .collect();
    assert_eq!(bytes_again, bytes);
    // ... and a longer span merges the compacted segments further, listing every original.
    let dir = synthetic(4);
    compact(dir.path(), Duration::from_secs(10)).unwrap();
    compact(dir.path(), Duration::from_secs(20)).unwrap();
    let f = read(&dir.path().join("samples-000000.parquet")).unwrap();
    let from = f
        .metadata
        .iter()
        .find(|kv| kv.key == COMPACTED_FROM_KEY)
        .and_then(|kv| kv.value.clone());
    assert_eq!(
        from.as_deref(),
        Some(
            "samples-000000.parquet,samples-000001.parquet,samples-000002.parquet,\
             samples-000003.parquet"
        )
    );
}

#[test]
fn samples_are_series_major_across_the_merged_segments() {
    let dir = synthetic(3);
    compact(dir.path(), DEFAULT_SPAN).unwrap();
    let f = read(&dir.path().join("samples-000000.parquet")).unwrap();
    let mut seen: Vec<(String, String, Option<u64>)> = Vec::new();
    let mut last_seq = 0;
    for b in &f.batches {
        let name = arrow_cast_dict(b.column_by_name(col::NAME).unwrap());
        let labels = arrow_cast_dict(b.column_by_name(col::LABELS).unwrap());
        let le = b
            .column_by_name(col::LE)
            .unwrap()
            .as_primitive::<Float64Type>();
        let seq = b
            .column_by_name(col::SCRAPE_SEQ)
            .unwrap()
            .as_primitive::<UInt64Type>();
        for i in 0..b.num_rows() {
            let key = (
                name[i].clone(),
                labels[i].clone(),
                le.is_valid(i).then(|| le.value(i).to_bits()),
            );
            if seen.last() != Some(&key) {
                // A series starts once, and its rows run in scrape order.
                assert!(!seen.contains(&key), "{key:?} appears in two runs");
                seen.push(key);
            } else {
                assert!(seq.value(i) >= last_seq);
            }
            last_seq = seq.value(i);
        }
    }
    assert_eq!(seen.len(), 425);
}

fn arrow_cast_dict(a: &ArrayRef) -> Vec<String> {
    let d = a.as_dictionary::<Int32Type>();
    let v = d.values().as_string::<i32>();
    d.keys()
        .iter()
        .map(|k| v.value(k.unwrap() as usize).to_string())
        .collect()
}

#[test]
fn a_damaged_segment_is_left_alone_and_splits_the_run() {
    let dir = synthetic(5);
    let damaged = dir.path().join("samples-000002.parquet");
    let mut bytes = fs::read(&damaged).unwrap();
    bytes.truncate(bytes.len() / 2);
    fs::write(&damaged, &bytes).unwrap();
    let before = content(&open(dir.path()).unwrap());
    let s = compact(dir.path(), DEFAULT_SPAN).unwrap();
    assert_eq!(
        fs::read(&damaged).unwrap(),
        bytes,
        "the damaged file changed"
    );
    assert!(dir.path().join("scrapes-000002.parquet").exists());
    assert!(s
        .left_alone
        .iter()
        .any(|(f, _)| f == "samples-000002.parquet"));
    // 0-1 and 3-4 merged around it; the GPU files, intact, merged whole.
    let targets: Vec<&str> = s.merges.iter().map(|m| m.target.as_str()).collect();
    assert_eq!(
        targets,
        [
            "samples-000000.parquet",
            "scrapes-000000.parquet",
            "samples-000003.parquet",
            "scrapes-000003.parquet",
            "gpu-000000.parquet",
        ]
    );
    let rec = open(dir.path()).unwrap();
    assert_eq!(content(&rec), before);
    assert_eq!(rec.problems().count(), 1);
}

#[test]
fn a_samples_file_gone_leaves_its_segment_alone() {
    let dir = synthetic(3);
    fs::remove_file(dir.path().join("samples-000001.parquet")).unwrap();
    let s = compact(dir.path(), DEFAULT_SPAN).unwrap();
    // Nothing adjacent to merge once segment 1 is out: 0 and 2 are not consecutive.
    assert!(
        s.merges.iter().all(|m| m.target.starts_with("gpu-")),
        "{s:?}"
    );
    assert!(dir.path().join("scrapes-000001.parquet").exists());
    assert!(open(dir.path()).unwrap().problems().any(|f| f
        .problem
        .as_deref()
        .unwrap_or("")
        .starts_with("missing")));
}

#[test]
fn an_interrupted_compaction_is_named_by_the_reader_and_finished_by_a_rerun() {
    for stop in [Interrupt::AfterJournal, Interrupt::AfterFirstRename] {
        let want = synthetic(4);
        let before = content(&open(want.path()).unwrap());
        compact(want.path(), DEFAULT_SPAN).unwrap();

        let dir = synthetic(4);
        INTERRUPT.with(|i| i.set(Some(stop)));
        let err = compact(dir.path(), DEFAULT_SPAN).unwrap_err();
        INTERRUPT.with(|i| i.set(None));
        assert!(err.to_string().contains("interrupted"), "{err}");
        let rec = open(dir.path()).unwrap();
        let journal: Vec<&FileReport> = rec.problems().collect();
        assert_eq!(journal.len(), 1, "{stop:?}: {:?}", rec.files);
        assert!(journal[0]
            .problem
            .as_deref()
            .unwrap()
            .contains("profile compact"));

        let s = compact(dir.path(), DEFAULT_SPAN).unwrap();
        assert!(s.recovered);
        assert_eq!(names(dir.path()), names(want.path()), "{stop:?}");
        let rec = open(dir.path()).unwrap();
        assert!(rec.problems().next().is_none(), "{stop:?}: {:?}", rec.files);
        assert_eq!(content(&rec), before, "{stop:?}");
    }
}

#[test]
fn temporary_files_of_a_compaction_stopped_before_its_journal_are_removed() {
    let dir = synthetic(2);
    let stray = dir.path().join(".compact-samples-000000.parquet.tmp");
    fs::write(&stray, b"half a file").unwrap();
    // The reader does not see it ...
    assert!(open(dir.path()).unwrap().problems().next().is_none());
    // ... and a compaction removes it.
    compact(dir.path(), DEFAULT_SPAN).unwrap();
    assert!(!stray.exists());
}

#[test]
fn a_zero_span_is_refused() {
    let dir = synthetic(1);
    assert!(matches!(
        compact(dir.path(), Duration::ZERO),
        Err(CompactError::ZeroSpan)
    ));
}

#[test]
fn the_digest_tells_a_changed_row_from_a_moved_one() {
    let a = arrow_array::UInt64Array::from(vec![1u64, 2, 3]);
    let moved = arrow_array::UInt64Array::from(vec![3u64, 1, 2]);
    let changed = arrow_array::UInt64Array::from(vec![1u64, 2, 4]);
    let batch = |x: arrow_array::UInt64Array| {
        RecordBatch::try_from_iter([("seq", Arc::new(x) as ArrayRef)]).unwrap()
    };
    let p = Path::new("x");
    let d = |x| Digest::of(&[&batch(x)], p).unwrap();
    assert_eq!(d(a.clone()), d(moved));
    assert_ne!(d(a), d(changed));
}

#[test]
fn a_first_segment_without_samples_takes_the_merged_samples_under_its_number() {
    // Segment 0: every scrape failed (a scrapes file, no samples file); segment 1: good.
    let dir = tempfile::tempdir().unwrap();
    write_manifest(dir.path(), &testutil::manifest()).unwrap();
    let mut w = ScrapeWriter::new(dir.path()).unwrap();
    let mut synth = Synth::new(9);
    for seq in 0..40 {
        if seq < 20 {
            w.push(&failed_meta(seq, ScrapeStatus::Connect), None)
                .unwrap();
        } else {
            synth.step(true);
            let e = synth.exposition();
            w.push(&ok_meta(seq, e.sample_count()), Some(&e)).unwrap();
        }
        if seq == 19 {
            w.rotate().unwrap();
        }
    }
    w.finish().unwrap();
    assert!(!dir.path().join("samples-000000.parquet").exists());
    let before = content(&open(dir.path()).unwrap());
    compact(dir.path(), DEFAULT_SPAN).unwrap();
    assert_eq!(
        names(dir.path()),
        [
            "manifest.json",
            "samples-000000.parquet",
            "scrapes-000000.parquet"
        ]
    );
    let rec = open(dir.path()).unwrap();
    assert!(rec.problems().next().is_none(), "{:?}", rec.files);
    assert_eq!(content(&rec), before);
}
