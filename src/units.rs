//! Units carried in types, so a nanosecond is never mistaken for a millisecond.

use serde::{Deserialize, Serialize};

/// Bytes per MiB: NVML reports memory in bytes, and the window figures are MiB.
pub const BYTES_PER_MIB: f64 = 1024.0 * 1024.0;

/// Bytes per GB. The spec uses decimal GB throughout (`weight_gb = params × bytes / 1e9`).
pub const BYTES_PER_GB: f64 = 1e9;

/// Milliseconds per second: vLLM's latency histograms are in seconds, the report in ms.
pub const MS_PER_SECOND: f64 = 1000.0;

/// Converts MiB (the window figures) to decimal GB (the spec's ceilings and R4).
pub fn mib_to_gb(mib: f64) -> f64 {
    mib * BYTES_PER_MIB / BYTES_PER_GB
}

/// Converts a byte count (as NVML reports memory) to decimal GB.
pub fn bytes_to_gb(bytes: u64) -> f64 {
    bytes as f64 / BYTES_PER_GB
}

/// Wall-clock time, nanoseconds since the Unix epoch (UTC). For humans and for joining with
/// other systems; never used for durations, since the wall clock can step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct WallNs(pub i64);

/// Monotonic time, nanoseconds since the recording started. Durations and rates use this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MonoNs(pub i64);

impl MonoNs {
    /// Seconds as a float, for rates.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }
}

impl WallNs {
    /// Formats as RFC 3339 UTC with millisecond precision, e.g. `2026-11-23T09:01:02.345Z`.
    pub fn to_rfc3339_millis(self) -> String {
        let secs = self.0.div_euclid(1_000_000_000);
        let millis = self.0.rem_euclid(1_000_000_000) / 1_000_000;
        let (y, mo, d, h, mi, s) = civil_from_unix(secs);
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{millis:03}Z")
    }

    /// Formats as a compact UTC stamp usable in a directory name, e.g. `20261123T090102Z`.
    pub fn to_compact_utc(self) -> String {
        let (y, mo, d, h, mi, s) = civil_from_unix(self.0.div_euclid(1_000_000_000));
        format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z")
    }
}

/// Splits Unix seconds into a UTC civil date and time (proleptic Gregorian calendar).
/// The day algorithm is Howard Hinnant's `civil_from_days`.
fn civil_from_unix(secs: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (sod / 3600) as u32,
        ((sod % 3600) / 60) as u32,
        (sod % 60) as u32,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc() {
        // 2026-11-23T09:01:02.345Z
        let t = WallNs(1_795_424_462_345_000_000);
        assert_eq!(t.to_rfc3339_millis(), "2026-11-23T09:01:02.345Z");
        assert_eq!(t.to_compact_utc(), "20261123T090102Z");
        assert_eq!(WallNs(0).to_rfc3339_millis(), "1970-01-01T00:00:00.000Z");
        assert_eq!(WallNs(-1).to_rfc3339_millis(), "1969-12-31T23:59:59.999Z");
    }
}
