//! Quantiles from classic histogram buckets, computed the way Prometheus'
//! `histogram_quantile` does (`promql/quantile.go`, `bucketQuantile`), so our p99 agrees with a
//! dashboard's `histogram_quantile(0.99, sum by (le)(increase(x_bucket[w])))` on the same deltas.

use serde::{Serialize, Serializer};

/// The quantile the spec reports ("Per-window collection": histogram p99, q = 0.99).
pub const P99: f64 = 0.99;

/// Relative tolerance under which two bucket counts are treated as equal: Prometheus'
/// `smallDeltaTolerance` (float noise from subtracting cumulative counts).
const SMALL_DELTA_TOLERANCE: f64 = 1e-12;

/// One cumulative bucket: observations `<= le`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Bucket {
    /// Upper bound; `+Inf` for the last bucket (serialized as the string `"+Inf"`).
    #[serde(serialize_with = "serialize_le")]
    pub le: f64,
    /// Cumulative count (a delta over a window, here).
    pub count: f64,
}

fn serialize_le<S: Serializer>(le: &f64, s: S) -> Result<S::Ok, S::Error> {
    if le.is_finite() {
        s.serialize_f64(*le)
    } else if *le > 0.0 {
        s.serialize_str("+Inf")
    } else {
        s.serialize_str("-Inf")
    }
}

/// Prometheus' `almost.Equal`.
fn almost_equal(a: f64, b: f64, epsilon: f64) -> bool {
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < f64::MIN_POSITIVE {
        return diff < epsilon * f64::MIN_POSITIVE;
    }
    diff / abs_sum.min(f64::MAX) < epsilon
}

/// Sorts by `le` and merges equal bounds by adding their counts (Prometheus
/// `coalesceBuckets`). NaN bounds are dropped.
fn sorted_coalesced(buckets: &[Bucket]) -> Vec<Bucket> {
    let mut v: Vec<Bucket> = buckets.iter().copied().filter(|b| !b.le.is_nan()).collect();
    v.sort_by(|a, b| a.le.total_cmp(&b.le));
    let mut out: Vec<Bucket> = Vec::with_capacity(v.len());
    for b in v {
        match out.last_mut() {
            Some(last) if last.le == b.le => last.count += b.count,
            _ => out.push(b),
        }
    }
    out
}

/// The `q` quantile of cumulative buckets, by linear interpolation inside the bucket where the
/// rank falls. `None` where Prometheus gives NaN: fewer than two buckets, no `+Inf` bucket, no
/// observations, or `q` outside `[0, 1]` (Prometheus gives ±Inf there; no caller asks for it).
///
/// Details as in Prometheus: the lowest bucket starts at 0 (or is returned as is when its bound
/// is <= 0); a rank landing in the `+Inf` bucket returns the largest finite bound; counts that
/// decrease are raised to the running maximum, and differences below a relative 1e-12 are
/// treated as float noise.
pub fn histogram_quantile(q: f64, buckets: &[Bucket]) -> Option<f64> {
    if !(0.0..=1.0).contains(&q) {
        return None;
    }
    let mut b = sorted_coalesced(buckets);
    if b.len() < 2 || b.last()?.le != f64::INFINITY {
        return None;
    }
    // ensureMonotonicAndIgnoreSmallDeltas
    let mut prev = b[0].count;
    for x in b.iter_mut().skip(1) {
        let curr = x.count;
        if curr == prev {
            continue;
        }
        if almost_equal(prev, curr, SMALL_DELTA_TOLERANCE) || curr < prev {
            x.count = prev;
            continue;
        }
        prev = curr;
    }
    let n = b.len();
    let observations = b[n - 1].count;
    if observations.is_nan() || observations <= 0.0 {
        return None;
    }
    let mut rank = q * observations;
    // The first bucket, the +Inf one excluded, whose count reaches the rank.
    let i = b[..n - 1]
        .iter()
        .position(|x| x.count >= rank)
        .unwrap_or(n - 1);
    if i == n - 1 {
        return Some(b[n - 2].le);
    }
    if i == 0 && b[0].le <= 0.0 {
        return Some(b[0].le);
    }
    let (mut start, end, mut count) = (0.0, b[i].le, b[i].count);
    if i > 0 {
        start = b[i - 1].le;
        count -= b[i - 1].count;
        rank -= b[i - 1].count;
    }
    Some(start + (end - start) * (rank / count))
}

/// Adds `add` into `acc`, summing counts at matching bounds; bounds present on one side only
/// are kept (Prometheus' `sum by (le)` over series with different layouts does the same).
pub fn merge_buckets(acc: &mut Vec<Bucket>, add: &[Bucket]) {
    let same_bounds = acc.len() == add.len() && acc.iter().zip(add).all(|(a, b)| a.le == b.le);
    if same_bounds {
        for (a, b) in acc.iter_mut().zip(add) {
            a.count += b.count;
        }
    } else {
        acc.extend_from_slice(add);
        *acc = sorted_coalesced(acc);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bk(v: &[(f64, f64)]) -> Vec<Bucket> {
        v.iter().map(|&(le, count)| Bucket { le, count }).collect()
    }

    const INF: f64 = f64::INFINITY;

    #[test]
    fn interpolates_inside_a_bucket() {
        // 100 observations: 50 <= 0.1, 90 <= 0.5, 100 <= 1.
        let b = bk(&[(0.1, 50.0), (0.5, 90.0), (1.0, 100.0), (INF, 100.0)]);
        // rank 99 lies in (0.5, 1]: 0.5 + 0.5 * (99 - 90) / (100 - 90) = 0.95
        assert!((histogram_quantile(P99, &b).unwrap() - 0.95).abs() < 1e-12);
        // rank 25 in the first bucket, which starts at 0: 0.1 * 25/50 = 0.05
        assert!((histogram_quantile(0.25, &b).unwrap() - 0.05).abs() < 1e-12);
        // Unsorted input gives the same answer.
        let mut r = b.clone();
        r.reverse();
        assert_eq!(histogram_quantile(P99, &r), histogram_quantile(P99, &b));
    }

    #[test]
    fn rank_in_inf_bucket_returns_largest_finite_bound() {
        let b = bk(&[(0.1, 10.0), (0.5, 50.0), (INF, 100.0)]);
        assert_eq!(histogram_quantile(P99, &b), Some(0.5));
    }

    #[test]
    fn no_observations_or_bad_layouts_give_none() {
        assert_eq!(
            histogram_quantile(P99, &bk(&[(0.1, 0.0), (INF, 0.0)])),
            None
        );
        assert_eq!(histogram_quantile(P99, &bk(&[(INF, 5.0)])), None);
        assert_eq!(
            histogram_quantile(P99, &bk(&[(0.1, 5.0), (1.0, 5.0)])),
            None
        );
        assert_eq!(histogram_quantile(P99, &[]), None);
        assert_eq!(
            histogram_quantile(1.5, &bk(&[(0.1, 5.0), (INF, 5.0)])),
            None
        );
    }

    #[test]
    fn first_bucket_with_non_positive_bound_is_returned_as_is() {
        let b = bk(&[(-1.0, 100.0), (0.5, 100.0), (INF, 100.0)]);
        assert_eq!(histogram_quantile(P99, &b), Some(-1.0));
    }

    #[test]
    fn non_monotonic_counts_are_raised() {
        // The 0.5 bucket dips below 0.1's: treated as 60, so rank 99 falls in (1, +Inf).
        let b = bk(&[(0.1, 60.0), (0.5, 40.0), (1.0, 95.0), (INF, 100.0)]);
        assert_eq!(histogram_quantile(P99, &b), Some(1.0));
        // rank 50 of 100 lands in the first bucket: 0.1 * 50/60.
        assert!((histogram_quantile(0.5, &b).unwrap() - 0.1 * 50.0 / 60.0).abs() < 1e-12);
    }

    #[test]
    fn equal_bounds_coalesce_and_merge_sums_counts() {
        let b = bk(&[(1.0, 5.0), (1.0, 5.0), (INF, 10.0)]);
        // 10 at <= 1 and 10 total: p99 = 0 + 1 * 9.9/10
        assert!((histogram_quantile(P99, &b).unwrap() - 0.99).abs() < 1e-12);
        let mut acc = bk(&[(0.5, 1.0), (INF, 2.0)]);
        merge_buckets(&mut acc, &bk(&[(0.5, 3.0), (INF, 4.0)]));
        assert_eq!(acc, bk(&[(0.5, 4.0), (INF, 6.0)]));
        merge_buckets(&mut acc, &bk(&[(0.25, 1.0), (INF, 1.0)]));
        assert_eq!(acc, bk(&[(0.25, 1.0), (0.5, 4.0), (INF, 7.0)]));
    }

    #[test]
    fn inf_bound_serializes_as_string() {
        let j = serde_json::to_string(&bk(&[(0.5, 1.0), (INF, 2.0)])).unwrap();
        assert_eq!(j, r#"[{"le":0.5,"count":1.0},{"le":"+Inf","count":2.0}]"#);
    }
}
