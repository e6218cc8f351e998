//! Row hashes for compaction: a series key to order samples by, and an order-independent
//! digest that proves a merged file holds exactly the rows of the files it replaces.

use super::{file_err, CompactError};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int32Type, Int64Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::RecordBatch;
use arrow_schema::DataType;
use std::path::Path;

/// An order-independent digest of a set of rows: their count, and two sums of per-row hashes
/// over every column. Equal digests mean (but for a 128-bit collision) the same rows.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Digest {
    rows: u64,
    sum: u64,
    sum_mixed: u64,
}

impl Digest {
    pub(super) fn of(batches: &[&RecordBatch], path: &Path) -> Result<Digest, CompactError> {
        let mut d = Digest {
            rows: 0,
            sum: 0,
            sum_mixed: 0,
        };
        for b in batches {
            let all: Vec<usize> = (0..b.num_columns()).collect();
            for h in row_hashes(b, &all, path)? {
                d.rows += 1;
                d.sum = d.sum.wrapping_add(h);
                d.sum_mixed = d.sum_mixed.wrapping_add(mix(h ^ 0x9e37_79b9_7f4a_7c15));
            }
        }
        Ok(d)
    }
}

/// splitmix64's finalizer.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn hash_str(s: &str) -> u64 {
    // FNV-1a, then mixed: deterministic across runs and builds.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.as_bytes() {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
    }
    mix(h ^ s.len() as u64)
}

/// Hashes of each row over `columns` (every value, nulls included, by column position).
pub(super) fn row_hashes(
    b: &RecordBatch,
    columns: &[usize],
    path: &Path,
) -> Result<Vec<u64>, CompactError> {
    const NULL: u64 = 0x5bd1_e995_5bd1_e995;
    let mut out = vec![0u64; b.num_rows()];
    for &c in columns {
        let a = b.column(c);
        let salt = mix(c as u64 + 1);
        let mut fold = |row: usize, v: u64| {
            out[row] = mix(out[row] ^ salt ^ v.rotate_left(17)).wrapping_add(v);
        };
        macro_rules! prim {
            ($t:ty, $f:expr) => {{
                let p = a.as_primitive::<$t>();
                for (row, v) in p.iter().enumerate() {
                    fold(row, v.map_or(NULL, $f));
                }
            }};
        }
        match a.data_type() {
            DataType::UInt64 => prim!(UInt64Type, |v: u64| v),
            DataType::Int64 => prim!(Int64Type, |v: i64| v as u64),
            DataType::UInt32 => prim!(UInt32Type, |v: u32| u64::from(v)),
            DataType::Int32 => prim!(Int32Type, |v: i32| v as u64),
            DataType::UInt16 => prim!(UInt16Type, |v: u16| u64::from(v)),
            DataType::Float64 => prim!(Float64Type, |v: f64| v.to_bits()),
            DataType::Float32 => prim!(Float32Type, |v: f32| u64::from(v.to_bits())),
            DataType::Boolean => {
                for (row, v) in a.as_boolean().iter().enumerate() {
                    fold(row, v.map_or(NULL, u64::from));
                }
            }
            DataType::Utf8 => {
                for (row, v) in a.as_string::<i32>().iter().enumerate() {
                    fold(row, v.map_or(NULL, hash_str));
                }
            }
            DataType::Dictionary(k, v) if **k == DataType::Int32 && **v == DataType::Utf8 => {
                let d = a.as_dictionary::<Int32Type>();
                let values = d.values().as_string::<i32>();
                let hashed: Vec<u64> = values.iter().map(|s| s.map_or(NULL, hash_str)).collect();
                for (row, key) in d.keys().iter().enumerate() {
                    let h = key
                        .and_then(|k| usize::try_from(k).ok())
                        .and_then(|k| hashed.get(k).copied())
                        .unwrap_or(NULL);
                    fold(row, h);
                }
            }
            other => {
                return Err(file_err(
                    path,
                    format!(
                    "column {} has type {other}, which compact does not know; nothing was changed",
                    b.schema().field(c).name()
                ),
                ))
            }
        }
    }
    Ok(out)
}
