use super::*;
use crate::recording::writer::testutil::{self, failed_meta, gpu_poll, hostile, ok_meta, Synth};
use crate::recording::writer::{write_manifest, GpuWriter, ScrapeWriter};
use crate::recording::ScrapeStatus;

fn new_recording() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_manifest(dir.path(), &testutil::manifest()).unwrap();
    dir
}

/// Writes `segments` segments of 3 scrapes each (the middle one failed) and 2 GPUs.
fn write_hostile(dir: &Path, segments: u64) {
    let mut w = ScrapeWriter::new(dir).unwrap();
    let mut g = GpuWriter::new(dir).unwrap();
    for seg in 0..segments {
        for i in 0..3 {
            let seq = seg * 3 + i;
            if i == 1 {
                w.push(&failed_meta(seq, ScrapeStatus::HttpStatus), None)
                    .unwrap();
            } else {
                let e = hostile(seq);
                w.push(&ok_meta(seq, e.sample_count()), Some(&e)).unwrap();
            }
            for gpu in [1, 0] {
                g.push(&gpu_poll(seq, gpu, seq % 2 == 1)).unwrap();
            }
        }
        w.rotate().unwrap();
        g.rotate().unwrap();
    }
    w.finish().unwrap();
    g.finish().unwrap();
}

#[test]
fn round_trip_is_bit_exact_across_rotations() {
    let dir = new_recording();
    write_hostile(dir.path(), 3);
    let rec = open(dir.path()).unwrap();
    assert_eq!(rec.manifest, testutil::manifest());
    assert_eq!(rec.files.len(), 3 * 3);
    assert!(rec.problems().next().is_none(), "{:?}", rec.files);
    assert_eq!(rec.scrapes.len(), 9);
    for (seq, scrape) in (0..).zip(&rec.scrapes) {
        if seq % 3 == 1 {
            assert_eq!(scrape.meta, failed_meta(seq, ScrapeStatus::HttpStatus));
            assert!(scrape.samples.is_empty());
            continue;
        }
        let e = hostile(seq);
        let meta = ok_meta(seq, e.sample_count());
        assert_eq!(scrape.meta, meta);
        assert_eq!(
            rec.sample_rows(scrape),
            schema::sample_rows(&meta, Some(&e))
        );
    }
    // Series are shared across files, not repeated per file.
    assert_eq!(rec.series.len(), hostile(0).sample_count());
    let want_gpu: Vec<GpuPoll> = (0..9)
        .flat_map(|s| [gpu_poll(s, 0, s % 2 == 1), gpu_poll(s, 1, s % 2 == 1)])
        .collect();
    assert_eq!(rec.gpu_polls, want_gpu);
    assert_eq!(rec.gpu_polls[3].metrics.temperature_c, None);
}

#[test]
fn open_filtered_drops_only_the_samples_of_other_series() {
    let dir = new_recording();
    write_hostile(dir.path(), 3);
    let full = open(dir.path()).unwrap();
    let keep = |s: &SeriesInfo| s.name.ends_with("_bucket") || &*s.family == "special";
    let part = open_filtered(dir.path(), &keep).unwrap();
    assert_eq!(part.series, full.series);
    assert_eq!(part.files, full.files);
    assert_eq!(part.gpu_polls, full.gpu_polls);
    assert_eq!(part.scrapes.len(), full.scrapes.len());
    let mut kept = 0;
    for (p, f) in part.scrapes.iter().zip(&full.scrapes) {
        assert_eq!(p.meta, f.meta);
        // Bit for bit: NaN payloads are among these values; timestamps follow their
        // samples through the filter.
        let want: Vec<(u32, u64, Option<i64>)> = f
            .samples
            .iter()
            .enumerate()
            .filter(|(_, s)| keep(&full.series[s.series as usize]))
            .map(|(i, s)| (s.series, s.value.to_bits(), f.timestamp_ms(i)))
            .collect();
        let got: Vec<(u32, u64, Option<i64>)> = p
            .samples
            .iter()
            .enumerate()
            .map(|(i, s)| (s.series, s.value.to_bits(), p.timestamp_ms(i)))
            .collect();
        assert_eq!(got, want);
        kept += want.len();
    }
    assert!(kept > 0 && kept < full.scrapes.iter().map(|s| s.samples.len()).sum());
}

/// Samples files whose scrapes overlap (a segment copied under another number) are
/// attached one after the other, not in parallel, and each scrape gets both copies in
/// file-name order; a file whose rows all lack their scrape counts them all as orphans.
#[test]
fn overlapping_and_orphan_samples_files() {
    let dir = new_recording();
    write_hostile(dir.path(), 3);
    let p = |name: &str| dir.path().join(name);
    let once = open(dir.path()).unwrap();
    fs::copy(p("samples-000001.parquet"), p("samples-000007.parquet")).unwrap();
    fs::remove_file(p("scrapes-000002.parquet")).unwrap();
    let rec = open(dir.path()).unwrap();
    let n = hostile(3).sample_count();
    assert_eq!(rec.scrapes.len(), 6);
    let bits = |v: &[StoredSample]| -> Vec<(u32, u64)> {
        v.iter().map(|s| (s.series, s.value.to_bits())).collect()
    };
    assert_eq!(
        bits(&rec.scrapes[2].samples),
        bits(&once.scrapes[2].samples)
    );
    let seg1 = &rec.scrapes[3];
    assert_eq!(seg1.meta.seq, 3);
    assert_eq!(seg1.samples.len(), 2 * n);
    assert_eq!(bits(&seg1.samples[..n]), bits(&seg1.samples[n..]));
    assert_eq!(bits(&seg1.samples[..n]), bits(&once.scrapes[3].samples));
    let note = |name: &str| {
        rec.files
            .iter()
            .find(|f| f.path.ends_with(name))
            .and_then(|f| f.problem.clone())
    };
    assert_eq!(note("samples-000007.parquet"), None);
    let orphans = note("samples-000002.parquet").unwrap();
    let lost = hostile(6).sample_count() + hostile(8).sample_count();
    assert!(
        orphans.starts_with(&format!("{lost} rows belong")),
        "{orphans}"
    );
}

/// Rewrites a samples file as another tool would: each field through `field` and each
/// column of each batch through `column` (given its original field), keeping the
/// recording's version and table metadata.
fn rewrite_samples(
    path: &Path,
    field: impl Fn(&arrow_schema::Field) -> arrow_schema::Field,
    column: impl Fn(&arrow_schema::Field, &arrow_array::ArrayRef) -> arrow_array::ArrayRef,
) {
    use arrow_array::RecordBatch;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let reader = ParquetRecordBatchReaderBuilder::try_new(fs::File::open(path).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
    let original = batches[0].schema();
    let fields: Vec<_> = original.fields().iter().map(|f| field(f)).collect();
    let rewritten = Arc::new(arrow_schema::Schema::new(fields));
    let props = parquet::file::properties::WriterProperties::builder()
        .set_key_value_metadata(Some(
            [
                (schema::VERSION_KEY, schema::FORMAT_VERSION),
                (schema::TABLE_KEY, "samples"),
            ]
            .map(|(k, v)| parquet::file::metadata::KeyValue::new(k.into(), v.to_string()))
            .to_vec(),
        ))
        .build();
    let file = fs::File::create(path).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, rewritten.clone(), Some(props)).unwrap();
    for b in &batches {
        let cols = original
            .fields()
            .iter()
            .zip(b.columns())
            .map(|(f, c)| column(f, c))
            .collect();
        w.write(&RecordBatch::try_new(rewritten.clone(), cols).unwrap())
            .unwrap();
    }
    w.close().unwrap();
}

/// A samples file whose string columns a foreign tool rewrote as plain strings (no
/// dictionary) reads back the same.
#[test]
fn plain_string_columns_read_like_dictionaries() {
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int32Type;
    use arrow_array::{Array, ArrayRef, StringArray};
    use arrow_schema::{DataType, Field};
    let dir = new_recording();
    write_hostile(dir.path(), 2);
    let want = open(dir.path()).unwrap();
    rewrite_samples(
        &dir.path().join("samples-000001.parquet"),
        |f| match f.data_type() {
            DataType::Dictionary(..) => Field::new(f.name(), DataType::Utf8, true),
            _ => f.clone(),
        },
        |_, c| match c.as_dictionary_opt::<Int32Type>() {
            Some(d) => {
                let v = d.values().as_string::<i32>();
                let s: StringArray = (0..d.len())
                    .map(|i| d.is_valid(i).then(|| v.value(d.keys().value(i) as usize)))
                    .collect();
                Arc::new(s) as ArrayRef
            }
            None => c.clone(),
        },
    );
    let got = open(dir.path()).unwrap();
    assert!(got.problems().next().is_none(), "{:?}", got.files);
    assert_eq!(got.series, want.series);
    for (g, w) in got.scrapes.iter().zip(&want.scrapes) {
        assert_eq!(got.sample_rows(g), want.sample_rows(w));
    }
}

/// A second segment of the same series in the same rows decodes only its scrape column,
/// and the recording reads back as if each file had been decoded whole (the round trip
/// above reads such segments).
#[test]
fn a_file_of_a_known_layout_decodes_only_its_scrapes() {
    let dir = new_recording();
    write_hostile(dir.path(), 2);
    let path = |n: u64| dir.path().join(Table::Samples.file_name(n));
    let Ok(first) = tables::read_sample_keys(&path(0), &|_| false) else {
        panic!("segment 0 unreadable");
    };
    assert!(first.rows.series.is_some());
    let layout = first.rows.layout.clone();
    let Ok(second) = tables::read_sample_keys(&path(1), &|l| l == layout.as_slice()) else {
        panic!("segment 1 unreadable");
    };
    assert!(second.rows.series.is_none());
    assert_eq!(second.rows.layout, layout);
    assert_eq!(second.row_count, first.row_count);
}

/// A samples file whose series read but whose values do not (a null in `value`) is found
/// out by the second pass: it is reported, and its scrapes count as having lost their
/// rows, so analysis sees them as failed rather than empty.
#[test]
fn values_that_cannot_be_read_lose_their_scrapes_rows() {
    use arrow_array::{Array, ArrayRef, Float64Array};
    use arrow_schema::{DataType, Field};
    let dir = new_recording();
    write_hostile(dir.path(), 2);
    let path = dir.path().join("samples-000001.parquet");
    let is_value = |f: &Field| f.name() == schema::col::VALUE;
    rewrite_samples(
        &path,
        |f| match is_value(f) {
            true => Field::new(f.name(), DataType::Float64, true),
            false => f.clone(),
        },
        |f, c| match is_value(f) {
            true => {
                let values: Float64Array = (0..c.len()).map(|k| (k > 0).then_some(1.0)).collect();
                Arc::new(values) as ArrayRef
            }
            false => c.clone(),
        },
    );
    let rec = open(dir.path()).unwrap();
    let problem = rec
        .files
        .iter()
        .find(|f| f.path == path)
        .and_then(|f| f.problem.clone())
        .unwrap();
    assert!(problem.contains("holds nulls"), "{problem}");
    for s in &rec.scrapes[..3] {
        assert_eq!(s.rows_lost(), None);
    }
    for s in rec.scrapes[3..]
        .iter()
        .filter(|s| s.meta.status == ScrapeStatus::Ok)
    {
        assert_eq!(s.rows_lost(), s.meta.sample_count);
        assert!(s.samples.is_empty() && !s.is_usable());
    }
}

#[test]
fn special_values_and_labels_survive() {
    let dir = new_recording();
    write_hostile(dir.path(), 1);
    let rec = open(dir.path()).unwrap();
    let bits: Vec<u64> = rec
        .series_by_family("special")
        .map(|(id, _)| {
            let s = rec.scrapes[0]
                .samples
                .iter()
                .find(|s| s.series == id)
                .unwrap();
            s.value.to_bits()
        })
        .collect();
    let want = [
        f64::NAN,
        f64::from_bits(0x7ff8_0000_dead_beef),
        f64::INFINITY,
    ]
    .into_iter()
    .chain([f64::NEG_INFINITY, -0.0, 0.0])
    .map(f64::to_bits)
    .collect::<Vec<_>>();
    assert_eq!(bits, want);
    let buckets: Vec<(Option<f64>, String)> = rec
        .series_by_name("lat_seconds_bucket")
        .map(|(_, s)| (s.le, s.labels.to_string()))
        .collect();
    let m = "model_name=\"m\"".to_string();
    assert_eq!(
        buckets,
        vec![
            (Some(0.005), m.clone()),
            (Some(0.1), m.clone()),
            (Some(1e6), m.clone()),
            (Some(f64::INFINITY), m.clone()),
            (None, format!("le=\"bogus\",{m}")),
        ]
    );
    let (_, odd) = rec.series_by_family("odd_gauge").next().unwrap();
    assert_eq!((odd.le, &*odd.labels), (None, "le=\"1\""));
    let (_, weird) = rec
        .series_by_name("vllm:prompt_tokens_total")
        .nth(1)
        .unwrap();
    assert_eq!(
        weird.label_pairs().unwrap(),
        vec![
            ("engine".to_string(), "1".to_string()),
            (
                "model_name".to_string(),
                "we\\ird \"name\"\nline2, a=b".to_string()
            ),
        ]
    );
    assert_eq!(
        weird.help.as_deref(),
        Some("Prompt tokens.\nWith \\ backslash and \"quotes\"")
    );
    assert_eq!(rec.scrapes[0].timestamp_ms(1), Some(1_795_424_462_123));
    assert_eq!(rec.scrapes[0].timestamp_ms(0), None);
    assert_eq!(std::mem::size_of::<StoredSample>(), 16);
}

#[test]
fn label_order_does_not_split_series() {
    let dir = new_recording();
    let mut w = ScrapeWriter::new(dir.path()).unwrap();
    let mut a = hostile(0);
    let mut b = hostile(1);
    b.families[0].samples[0].labels.reverse();
    // The same series twice in one body is stored twice, adjacent.
    let dup = a.families[4].samples[0].clone();
    a.families[4].samples.push(dup);
    w.push(&ok_meta(0, a.sample_count()), Some(&a)).unwrap();
    w.push(&ok_meta(1, b.sample_count()), Some(&b)).unwrap();
    w.finish().unwrap();
    let rec = open(dir.path()).unwrap();
    assert_eq!(rec.series.len(), b.sample_count());
    assert_eq!(rec.scrapes[0].samples.len(), a.sample_count());
    assert_eq!(rec.scrapes[1].samples.len(), b.sample_count());
    let first = &rec.scrapes[0].samples;
    assert_eq!(first[first.len() - 1], first[first.len() - 2]);
}

#[test]
fn synthetic_rotations_read_back_complete() {
    let dir = new_recording();
    let mut w = ScrapeWriter::new(dir.path()).unwrap();
    let mut synth = Synth::new(1);
    let mut want = Vec::new();
    for seq in 0..50 {
        synth.step(seq % 3 != 0);
        let e = synth.exposition();
        let meta = ok_meta(seq, e.sample_count());
        want.push(schema::sample_rows(&meta, Some(&e)));
        w.push(&meta, Some(&e)).unwrap();
        if seq % 7 == 6 {
            w.rotate().unwrap();
        }
    }
    w.finish().unwrap();
    let rec = open(dir.path()).unwrap();
    assert_eq!(rec.files.len(), 2 * 8);
    let got: Vec<Vec<SampleRow>> = rec.scrapes.iter().map(|s| rec.sample_rows(s)).collect();
    assert_eq!(got, want);
    assert_eq!(rec.series.len(), 425);
}

/// Found by fuzzing (docs/fuzzing.md): one byte of a real scrapes file changed made the
/// Parquet decoder panic inside `open`; the file must be reported damaged instead.
#[test]
fn a_file_that_makes_the_parquet_decoder_panic_is_reported_damaged() {
    let real = Path::new(env!("CARGO_MANIFEST_DIR")).join("recordings/vllm-cpu-0.32-kv-pressure");
    let dir = tempfile::tempdir().unwrap();
    for e in fs::read_dir(&real).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
    }
    let victim = dir.path().join("scrapes-000001.parquet");
    let mut bytes = fs::read(&victim).unwrap();
    assert_eq!(
        bytes[1967], 0xcc,
        "the shipped recording changed; find a new byte"
    );
    bytes[1967] = 0x35;
    fs::write(&victim, bytes).unwrap();
    let rec = open(dir.path()).unwrap();
    let victim = rec
        .files
        .iter()
        .find(|f| f.path.ends_with("scrapes-000001.parquet"))
        .unwrap();
    let why = victim.problem.as_deref().unwrap_or_default();
    assert!(why.contains("the Parquet decoder failed"), "{why}");
    // The other segment is still read.
    assert!(!rec.scrapes.is_empty());
}

#[test]
fn damaged_files_are_reported_by_name_and_skipped() {
    let dir = new_recording();
    write_hostile(dir.path(), 3);
    let p = |name: &str| dir.path().join(name);
    let truncated = fs::read(p("samples-000001.parquet")).unwrap();
    fs::write(
        p("samples-000001.parquet"),
        &truncated[..truncated.len() / 2],
    )
    .unwrap();
    fs::write(p("scrapes-000002.parquet"), b"not parquet at all").unwrap();
    fs::write(p("gpu-000000.parquet"), b"PAR1garbagePAR1").unwrap();
    fs::write(p(".samples-000003.parquet.tmp"), b"PAR1 half").unwrap();
    fs::write(p("notes.txt"), b"ignored").unwrap();
    let rec = open(dir.path()).unwrap();
    let problems: Vec<String> = rec
        .problems()
        .map(|f| f.path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        problems,
        vec![
            ".samples-000003.parquet.tmp",
            "gpu-000000.parquet",
            "samples-000001.parquet",
            "samples-000002.parquet",
            "scrapes-000002.parquet",
        ]
    );
    let orphan = rec
        .files
        .iter()
        .find(|f| f.path.ends_with("samples-000002.parquet"));
    assert!(orphan
        .unwrap()
        .problem
        .as_deref()
        .unwrap()
        .contains("found in no scrapes file"));
    // Segment 0 whole, segment 1's scrapes without samples, segment 2 gone.
    let seqs: Vec<u64> = rec.scrapes.iter().map(|s| s.meta.seq).collect();
    assert_eq!(seqs, vec![0, 1, 2, 3, 4, 5]);
    assert_eq!(rec.scrapes[0].samples.len(), hostile(0).sample_count());
    assert!(rec.scrapes[3].samples.is_empty());
    assert_eq!(rec.gpu_polls.first().map(|g| g.seq), Some(3));
    assert_eq!(rec.gpu_polls.len(), 12);
}

#[test]
fn manifest_problems_fail_the_read() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        open(dir.path()),
        Err(RecordingError::NotARecording(_))
    ));
    write_hostile(dir.path(), 1);
    let path = dir.path().join("manifest.json");
    match open(dir.path()) {
        Err(RecordingError::Manifest { path: p, .. }) => assert_eq!(p, path),
        other => panic!("{other:?}"),
    }
    fs::write(&path, "{\"format_version\": ").unwrap();
    assert!(matches!(
        open(dir.path()),
        Err(RecordingError::Manifest { .. })
    ));
    let mut m = testutil::manifest();
    m.format_version = "2.0".to_string();
    write_manifest(dir.path(), &m).unwrap();
    match open(dir.path()) {
        Err(RecordingError::UnsupportedVersion {
            path: p,
            found,
            supported,
        }) => {
            assert_eq!((p, found.as_str(), supported), (path, "2.0", 1));
        }
        other => panic!("{other:?}"),
    }
    // A newer minor of the same major is read.
    m.format_version = "1.7".to_string();
    write_manifest(dir.path(), &m).unwrap();
    assert_eq!(open(dir.path()).unwrap().scrapes.len(), 3);
}

/// Writes a small recording for checking the files with DuckDB/pandas/polars by hand:
/// `RECFMT_OUT=/tmp/rec cargo test --lib write_example -- --ignored`.
#[test]
#[ignore = "writes into $RECFMT_OUT for a manual check"]
fn write_example_recording() {
    let out = PathBuf::from(std::env::var("RECFMT_OUT").unwrap());
    fs::create_dir_all(&out).unwrap();
    write_manifest(&out, &testutil::manifest()).unwrap();
    write_hostile(&out, 2);
    let mut w = ScrapeWriter::new(&out).unwrap();
    let mut synth = Synth::new(3);
    for seq in 100..340 {
        synth.step(seq > 200);
        let e = synth.exposition();
        w.push(&ok_meta(seq, e.sample_count()), Some(&e)).unwrap();
    }
    w.finish().unwrap();
    assert!(open(&out).unwrap().problems().next().is_none());
}

#[test]
fn unknown_major_in_a_file_is_refused() {
    use arrow_array::{Int32Array, RecordBatch};
    use arrow_schema::{DataType, Field, Schema};
    let dir = new_recording();
    write_hostile(dir.path(), 1);
    let path = dir.path().join("gpu-000001.parquet");
    let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int32, false)]));
    let batch =
        RecordBatch::try_new(schema.clone(), vec![Arc::new(Int32Array::from(vec![1]))]).unwrap();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_key_value_metadata(Some(vec![parquet::file::metadata::KeyValue::new(
            schema::VERSION_KEY.to_string(),
            "2.0".to_string(),
        )]))
        .build();
    let file = fs::File::create(&path).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, schema, Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    match open(dir.path()) {
        Err(RecordingError::UnsupportedVersion { path: p, found, .. }) => {
            assert_eq!((p, found.as_str()), (path, "2.0"));
        }
        other => panic!("{other:?}"),
    }
}

/// A `gpu` file of format 1.4 has no GPM columns: its polls read as they were written,
/// with the three GPM fields `None`, not 0.
#[test]
fn a_gpu_file_from_before_gpm_reads_with_the_gpm_fields_none() {
    use arrow_array::RecordBatch;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let dir = new_recording();
    write_hostile(dir.path(), 1);
    let want: Vec<GpuPoll> = open(dir.path()).unwrap().gpu_polls;
    assert!(want.iter().all(|p| p.metrics.sm_active_pct.is_some()));
    let path = dir.path().join("gpu-000000.parquet");
    let reader = ParquetRecordBatchReaderBuilder::try_new(fs::File::open(&path).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
    let gpm = [
        schema::col::SM_ACTIVE_PCT,
        schema::col::SM_OCCUPANCY_PCT,
        schema::col::DRAM_BW_UTIL_PCT,
    ];
    let keep: Vec<usize> = (0..batches[0].num_columns())
        .filter(|&i| !gpm.contains(&batches[0].schema().field(i).name().as_str()))
        .collect();
    assert_eq!(keep.len(), batches[0].num_columns() - 3);
    let old_schema = Arc::new(batches[0].schema().project(&keep).unwrap());
    let props = parquet::file::properties::WriterProperties::builder()
        .set_key_value_metadata(Some(
            [(schema::VERSION_KEY, "1.4"), (schema::TABLE_KEY, "gpu")]
                .map(|(k, v)| parquet::file::metadata::KeyValue::new(k.to_string(), v.to_string()))
                .to_vec(),
        ))
        .build();
    let file = fs::File::create(&path).unwrap();
    let mut w =
        parquet::arrow::ArrowWriter::try_new(file, old_schema.clone(), Some(props)).unwrap();
    for b in &batches {
        w.write(&b.project(&keep).unwrap()).unwrap();
    }
    w.close().unwrap();

    let got = open(dir.path()).unwrap();
    assert!(got.problems().next().is_none(), "{:?}", got.files);
    let expected: Vec<GpuPoll> = want
        .into_iter()
        .map(|mut p| {
            p.metrics.sm_active_pct = None;
            p.metrics.sm_occupancy_pct = None;
            p.metrics.dram_bw_util_pct = None;
            p
        })
        .collect();
    assert_eq!(got.gpu_polls, expected);
    assert!(got.gpu_polls[0].metrics.util_pct.is_some());
}
