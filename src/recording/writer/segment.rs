//! One segment of scrapes and samples held in memory until rotation.
//!
//! `push` runs every 250 ms on the recorder's hot path, so it does no Arrow work at all: each
//! sample is matched to a series id through a hash of its raw (unsorted, unescaped) labels,
//! and only a series never seen in this segment pays for building its canonical label string.
//! Rows are appended to plain vectors; the Arrow arrays, the series-major reordering and the
//! dictionaries are built when the rows are written out: at rotation, or earlier, as one row
//! group of the segment's file, once the buffered rows reach the writer's row-group size
//! ([`ScrapeSegment::clear_rows`] then empties the row buffers while the series, families and
//! dictionaries of the segment stay, so later row groups share their ids).

use crate::promtext::Exposition;
use crate::recording::schema::{self, Table};
use crate::recording::ScrapeMeta;
use arrow_array::{
    ArrayRef, DictionaryArray, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
    UInt16Array, UInt64Array,
};
use arrow_schema::ArrowError;
use std::collections::HashMap;
use std::sync::Arc;

/// Strings of one dictionary column, each stored once; ids are positions.
#[derive(Default)]
struct Interner {
    ids: HashMap<Box<str>, i32>,
    values: Vec<Box<str>>,
}

impl Interner {
    fn id(&mut self, s: &str) -> i32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        // A segment never holds 2^31 distinct strings (it holds at most a few minutes of
        // scrapes), so the conversion cannot saturate in practice.
        let id = i32::try_from(self.values.len()).unwrap_or(i32::MAX);
        self.values.push(s.into());
        self.ids.insert(s.into(), id);
        id
    }

    fn array(&self) -> ArrayRef {
        Arc::new(StringArray::from_iter_values(self.values.iter()))
    }
}

/// A family as declared in one body: name, type and help together.
struct FamilyEntry {
    name: i32,
    family_type: i32,
    help: Option<i32>,
}

/// A distinct series of the segment.
struct SeriesEntry {
    family: u32,
    name: i32,
    labels: i32,
    le: Option<f64>,
}

/// The buffered rows of one scrapes/samples segment.
#[derive(Default)]
pub(super) struct ScrapeSegment {
    scrapes: Vec<ScrapeMeta>,
    family_names: Interner,
    family_types: Interner,
    helps: Interner,
    names: Interner,
    labels: Interner,
    /// Raw family key (name, type, help) -> index into `families`.
    family_ids: HashMap<Box<[u8]>, u32>,
    families: Vec<FamilyEntry>,
    /// Raw series key (family id, name, labels as written) -> series id.
    raw_series: HashMap<Box<[u8]>, u32>,
    /// Canonical series key -> series id, so that label orders which differ between scrapes
    /// still land on one series.
    canonical_series: HashMap<(u32, i32, i32, Option<u64>), u32>,
    series: Vec<SeriesEntry>,
    row_series: Vec<u32>,
    row_seq: Vec<u64>,
    row_value: Vec<f64>,
    row_ts: Vec<Option<i64>>,
    /// Whether rows arrived in non-decreasing `seq` order (the recorder's order), which lets
    /// the rotation skip a sort.
    out_of_order: bool,
    scratch: Vec<u8>,
}

/// The separator inside raw keys: 0xFF never occurs in UTF-8, so keys cannot collide.
const SEP: u8 = 0xFF;

impl ScrapeSegment {
    pub(super) fn is_empty(&self) -> bool {
        self.scrapes.is_empty()
    }

    pub(super) fn push(&mut self, meta: &ScrapeMeta, exposition: Option<&Exposition<'_>>) {
        if self.scrapes.last().is_some_and(|last| last.seq > meta.seq) {
            self.out_of_order = true;
        }
        self.scrapes.push(meta.clone());
        let Some(exposition) = exposition else {
            return;
        };
        let n = exposition.sample_count();
        self.row_series.reserve(n);
        self.row_seq.reserve(n);
        self.row_value.reserve(n);
        self.row_ts.reserve(n);
        for family in &exposition.families {
            let fam = self.family_id(family);
            for sample in &family.samples {
                let key = &mut self.scratch;
                key.clear();
                key.extend_from_slice(&fam.to_le_bytes());
                key.extend_from_slice(sample.name.as_bytes());
                for l in &sample.labels {
                    key.push(SEP);
                    key.extend_from_slice(l.name.as_bytes());
                    key.push(SEP);
                    key.extend_from_slice(l.value.as_bytes());
                }
                let series = match self.raw_series.get(key.as_slice()) {
                    Some(&id) => id,
                    None => {
                        let raw: Box<[u8]> = key.as_slice().into();
                        let (labels, le) = schema::series_labels(family, sample);
                        let name = self.names.id(sample.name);
                        let labels = self.labels.id(&labels);
                        let canonical = (fam, name, labels, le.map(f64::to_bits));
                        let next = u32::try_from(self.series.len()).unwrap_or(u32::MAX);
                        let id = *self.canonical_series.entry(canonical).or_insert(next);
                        if id == next {
                            self.series.push(SeriesEntry {
                                family: fam,
                                name,
                                labels,
                                le,
                            });
                        }
                        self.raw_series.insert(raw, id);
                        id
                    }
                };
                self.row_series.push(series);
                self.row_seq.push(meta.seq);
                self.row_value.push(sample.value);
                self.row_ts.push(sample.timestamp_ms);
            }
        }
    }

    fn family_id(&mut self, family: &crate::promtext::Family<'_>) -> u32 {
        let key = &mut self.scratch;
        key.clear();
        key.extend_from_slice(family.name.as_bytes());
        key.push(SEP);
        key.extend_from_slice(family.metric_type.as_str().as_bytes());
        if let Some(help) = &family.help {
            key.push(SEP);
            key.extend_from_slice(help.as_bytes());
        }
        if let Some(&id) = self.family_ids.get(key.as_slice()) {
            return id;
        }
        let raw: Box<[u8]> = key.as_slice().into();
        let entry = FamilyEntry {
            name: self.family_names.id(family.name),
            family_type: self.family_types.id(family.metric_type.as_str()),
            help: family.help.as_deref().map(|h| self.helps.id(h)),
        };
        let id = u32::try_from(self.families.len()).unwrap_or(u32::MAX);
        self.families.push(entry);
        self.family_ids.insert(raw, id);
        id
    }

    /// Number of sample rows buffered.
    pub(super) fn sample_rows(&self) -> usize {
        self.row_value.len()
    }

    /// Drops the buffered sample rows (after they were written as a row group), keeping the
    /// scrapes, the series and the dictionaries of the segment, and the buffers' capacity.
    pub(super) fn clear_rows(&mut self) {
        self.row_series.clear();
        self.row_seq.clear();
        self.row_value.clear();
        self.row_ts.clear();
        self.out_of_order = false;
    }

    /// The `scrapes` batch of the segment.
    pub(super) fn scrapes_batch(&self) -> Result<RecordBatch, ArrowError> {
        let s = &self.scrapes;
        let mut statuses = Interner::default();
        let status_keys =
            Int32Array::from_iter_values(s.iter().map(|m| statuses.id(m.status.as_str())));
        let cols: Vec<ArrayRef> = vec![
            Arc::new(UInt64Array::from_iter_values(s.iter().map(|m| m.seq))),
            Arc::new(Int64Array::from_iter_values(
                s.iter().map(|m| m.requested_at.0),
            )),
            Arc::new(Int64Array::from_iter_values(
                s.iter().map(|m| m.completed_at.0),
            )),
            Arc::new(Int64Array::from_iter_values(
                s.iter().map(|m| m.requested_mono.0),
            )),
            Arc::new(Int64Array::from_iter_values(
                s.iter().map(|m| m.completed_mono.0),
            )),
            Arc::new(DictionaryArray::try_new(status_keys, statuses.array())?),
            Arc::new(s.iter().map(|m| m.http_status).collect::<UInt16Array>()),
            Arc::new(
                s.iter()
                    .map(|m| m.error.as_deref())
                    .collect::<StringArray>(),
            ),
            Arc::new(s.iter().map(|m| m.body_bytes).collect::<UInt64Array>()),
            Arc::new(s.iter().map(|m| m.sample_count).collect::<UInt64Array>()),
        ];
        RecordBatch::try_new(Table::Scrapes.schema(), cols)
    }

    /// Row indices in series-major order: series by first appearance, and within a series by
    /// `seq` (push order, which the recorder keeps equal to `seq` order).
    fn series_major_order(&self) -> Vec<u32> {
        let mut start = vec![0u32; self.series.len() + 1];
        for &s in &self.row_series {
            start[s as usize + 1] += 1;
        }
        for i in 1..start.len() {
            start[i] += start[i - 1];
        }
        let mut order = vec![0u32; self.row_series.len()];
        let mut next = start.clone();
        for (row, &s) in self.row_series.iter().enumerate() {
            let slot = &mut next[s as usize];
            order[*slot as usize] = row as u32;
            *slot += 1;
        }
        if self.out_of_order {
            for w in start.windows(2) {
                order[w[0] as usize..w[1] as usize].sort_by_key(|&r| self.row_seq[r as usize]);
            }
        }
        order
    }

    /// The `samples` batch of the segment, rows in series-major order.
    pub(super) fn samples_batch(&self) -> Result<RecordBatch, ArrowError> {
        let order = self.series_major_order();
        let series_of = |r: &u32| &self.series[self.row_series[*r as usize] as usize];
        let family_of = |r: &u32| &self.families[series_of(r).family as usize];
        let dict = |keys: Int32Array, values: &Interner| -> Result<ArrayRef, ArrowError> {
            Ok(Arc::new(DictionaryArray::try_new(keys, values.array())?))
        };
        let cols: Vec<ArrayRef> = vec![
            Arc::new(UInt64Array::from_iter_values(
                order.iter().map(|&r| self.row_seq[r as usize]),
            )),
            dict(
                Int32Array::from_iter_values(order.iter().map(|r| family_of(r).name)),
                &self.family_names,
            )?,
            dict(
                Int32Array::from_iter_values(order.iter().map(|r| family_of(r).family_type)),
                &self.family_types,
            )?,
            dict(
                order.iter().map(|r| family_of(r).help).collect(),
                &self.helps,
            )?,
            dict(
                Int32Array::from_iter_values(order.iter().map(|r| series_of(r).name)),
                &self.names,
            )?,
            dict(
                Int32Array::from_iter_values(order.iter().map(|r| series_of(r).labels)),
                &self.labels,
            )?,
            Arc::new(
                order
                    .iter()
                    .map(|r| series_of(r).le)
                    .collect::<Float64Array>(),
            ),
            Arc::new(Float64Array::from_iter_values(
                order.iter().map(|&r| self.row_value[r as usize]),
            )),
            Arc::new(
                order
                    .iter()
                    .map(|&r| self.row_ts[r as usize])
                    .collect::<Int64Array>(),
            ),
        ];
        RecordBatch::try_new(Table::Samples.schema(), cols)
    }
}
