//! Rewriting the files of a recording through a [`Redactor`]: the manifest field by field,
//! and each Parquet segment column by column. Only string columns change; every other column
//! is written back as read, so numbers, order and segment boundaries are untouched. Files are
//! written fresh (new footer, statistics and key-value metadata), so no original string can
//! survive in a page, a dictionary or the footer's min/max statistics.

use super::{RedactError, Redactor};
use crate::recording::checksum::{self, Hashing};
use crate::recording::schema::{self, col, Table};
use crate::recording::{writer, Manifest};
use arrow_array::cast::AsArray;
use arrow_array::types::Int32Type;
use arrow_array::{Array, ArrayRef, DictionaryArray, RecordBatch, StringArray};
use arrow_schema::{DataType, Schema};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use std::fs::{self, File};
use std::path::Path;
use std::sync::Arc;

fn file_err(path: &Path, e: impl std::fmt::Display) -> RedactError {
    RedactError::File {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Creates `out`, or accepts it if it exists and is empty.
pub(super) fn prepare_out(out: &Path) -> Result<(), RedactError> {
    match fs::read_dir(out) {
        Ok(mut it) => match it.next() {
            Some(_) => Err(RedactError::OutputExists(out.to_path_buf())),
            None => Ok(()),
        },
        Err(_) if out.exists() => Err(RedactError::OutputExists(out.to_path_buf())),
        Err(_) => fs::create_dir_all(out).map_err(|e| file_err(out, e)),
    }
}

/// The manifest with every identifying field replaced: `target_url`, `recorder_host`,
/// `model_name`, GPU `uuid` and `serial`; `gpu_note` as free text. Versions, GPU names,
/// times, intervals, analysis inputs and totals are kept.
pub(super) fn redact_manifest(m: &Manifest, r: &mut Redactor) -> Manifest {
    let mut out = m.clone();
    out.target_url = r.url(&m.target_url);
    out.recorder_host = m.recorder_host.as_deref().map(|h| r.host(h));
    out.model_name = m.model_name.as_deref().map(|n| r.model(n));
    for g in &mut out.gpus {
        g.uuid = g.uuid.as_deref().map(|u| r.gpu_uuid(u));
        g.serial = g.serial.as_deref().map(|s| r.gpu_serial(s));
    }
    if let (Some(imp), Some(orig)) = (&mut out.import, &m.import) {
        imp.server_url = r.url(&orig.server_url);
    }
    for (t, orig) in out.targets.iter_mut().zip(&m.targets) {
        t.url = r.url(&orig.url);
    }
    // Notes are written last so that they see every original registered above.
    out.gpu_note = m.gpu_note.as_deref().map(|n| r.text(n));
    if let (Some(imp), Some(orig)) = (&mut out.import, &m.import) {
        imp.instance = orig.instance.as_deref().map(|i| r.text(i));
        imp.selector = r.text(&orig.selector);
        imp.gpu_selectors = orig.gpu_selectors.iter().map(|g| r.text(g)).collect();
        imp.incomplete = orig.incomplete.as_deref().map(|t| r.text(t));
    }
    out
}

/// A canonical label string with each value redacted (names kept), re-canonicalised. A
/// string that is not canonical (a foreign file) is treated as free text.
pub(super) fn redact_labels(labels: &str, r: &mut Redactor) -> String {
    match schema::parse_canonical_labels(labels) {
        Ok(pairs) => {
            let redacted: Vec<(String, String)> = pairs
                .iter()
                .map(|(n, v)| (n.clone(), r.label_value(n, v)))
                .collect();
            let refs: Vec<(&str, &str)> = redacted
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            schema::canonical_labels(&refs)
        }
        Err(_) => r.text(labels),
    }
}

/// How one string column is rewritten.
#[derive(Clone, Copy)]
enum Rule {
    Keep,
    Labels,
    Text,
}

fn rule(table: Table, column: &str) -> Rule {
    match (table, column) {
        // Metric names and fixed vocabularies: what analysis matches on.
        (Table::Samples, col::FAMILY | col::FAMILY_TYPE | col::NAME) => Rule::Keep,
        (Table::Scrapes, col::STATUS) => Rule::Keep,
        (Table::Samples, col::LABELS) => Rule::Labels,
        // Help and error texts, and any string column a later format minor adds.
        _ => Rule::Text,
    }
}

fn map_strings(values: &StringArray, f: &mut impl FnMut(&str) -> String) -> StringArray {
    values.iter().map(|v| v.map(&mut *f)).collect()
}

fn redact_column(a: &ArrayRef, rule: Rule, r: &mut Redactor) -> Result<ArrayRef, String> {
    let mut f = |s: &str| match rule {
        Rule::Keep => s.to_string(),
        Rule::Labels => redact_labels(s, r),
        Rule::Text => r.text(s),
    };
    if let Some(d) = a.as_dictionary_opt::<Int32Type>() {
        if let Some(values) = d.values().as_string_opt::<i32>() {
            let mapped = map_strings(values, &mut f);
            let out = DictionaryArray::<Int32Type>::try_new(d.keys().clone(), Arc::new(mapped))
                .map_err(|e| e.to_string())?;
            return Ok(Arc::new(out));
        }
    }
    if let Some(s) = a.as_string_opt::<i32>() {
        return Ok(Arc::new(map_strings(s, &mut f)));
    }
    match a.data_type() {
        DataType::Utf8View | DataType::LargeUtf8 => Err(format!(
            "string column of type {} is not handled",
            a.data_type()
        )),
        _ => Ok(Arc::clone(a)),
    }
}

/// Rewrites one segment file into `out` with its string columns redacted, through a
/// temporary name and a rename. The schema is rebuilt without the source's metadata, and
/// the writer settings are the format's own (`schema::writer_properties`).
pub(super) fn redact_segment(
    src: &Path,
    out: &Path,
    table: Table,
    r: &mut Redactor,
) -> Result<(), RedactError> {
    let bytes = bytes::Bytes::from(fs::read(src).map_err(|e| file_err(src, e))?);
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(bytes.clone()).map_err(|e| file_err(src, e))?;
    // A source whose pages changed since it was written is refused rather than rewritten
    // under a new, valid checksum.
    let kv = builder.metadata().file_metadata().key_value_metadata();
    checksum::verify_file(&bytes, kv).map_err(|e| file_err(src, e))?;
    let reader = builder
        .with_batch_size(64 * 1024)
        .build()
        .map_err(|e| file_err(src, e))?;
    let mut batches = Vec::new();
    for b in reader {
        batches.push(b.map_err(|e| file_err(src, e))?);
    }
    let Some(first) = batches.first() else {
        return Err(file_err(src, "holds no record batch"));
    };
    let fields = first.schema().fields().clone();
    let schema = Arc::new(Schema::new(fields.clone()));
    let tmp = out.with_file_name(format!(
        ".{}.tmp",
        out.file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    ));
    let result = (|| {
        let mut f = File::create(&tmp).map_err(|e| file_err(&tmp, e))?;
        let props = schema::writer_properties(table);
        let mut w = ArrowWriter::try_new(Hashing::new(&mut f), Arc::clone(&schema), Some(props))
            .map_err(|e| file_err(&tmp, e))?;
        for b in &batches {
            let cols = b
                .columns()
                .iter()
                .zip(fields.iter())
                .map(|(a, field)| redact_column(a, rule(table, field.name()), r))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| file_err(src, e))?;
            let batch =
                RecordBatch::try_new(Arc::clone(&schema), cols).map_err(|e| file_err(src, e))?;
            w.write(&batch).map_err(|e| file_err(&tmp, e))?;
        }
        checksum::seal(&mut w).map_err(|e| file_err(&tmp, e))?;
        w.close().map_err(|e| file_err(&tmp, e))?;
        f.sync_all().map_err(|e| file_err(&tmp, e))?;
        fs::rename(&tmp, out).map_err(|e| file_err(out, e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Writes the redacted manifest atomically.
pub(super) fn write_manifest(out: &Path, m: &Manifest) -> Result<(), RedactError> {
    writer::write_manifest(out, m).map_err(RedactError::Recording)
}
