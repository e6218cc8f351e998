//! From a Prometheus series to the recording's family, type, help and sample name, so that an
//! imported sample row is the row `profile record` would have stored from the same server's
//! `/metrics` body.
//!
//! Prometheus keeps a sample's name and labels; the `# TYPE` and `# HELP` of its family are
//! in `/api/v1/metadata`, keyed by the family name as the target declared it (a text-0.0.4
//! counter `vllm:generation_tokens_total`, a histogram `vllm:e2e_request_latency_seconds`
//! whose samples are `_bucket`, `_sum` and `_count`). Metadata exists only for targets that
//! are still scraped (and not at all on some compatible servers), so when it is missing the
//! type is inferred from the names, and the manifest lists the families inferred.

use super::client::MetricMeta;
use crate::promtext::{MetricType, Suffix};
use std::collections::{BTreeMap, BTreeSet};

/// Labels Prometheus attaches to every series of a target (and the name label); the
/// recording keeps the target's own labels, and the manifest records `job` and `instance`.
pub const TARGET_LABELS: [&str; 3] = ["__name__", "job", "instance"];

/// The family a sample name belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct FamilyOf {
    /// Family name, as `# TYPE` would declare it.
    pub family: String,
    /// The family's type.
    pub metric_type: MetricType,
    /// The `# HELP` text, when the metadata had one.
    pub help: Option<String>,
    /// What the sample name adds to the family name.
    pub suffix: Suffix,
    /// Whether the type was inferred from names rather than read from the metadata.
    pub inferred: bool,
}

fn declared(
    meta: &BTreeMap<String, MetricMeta>,
    name: &str,
) -> Option<(MetricType, Option<String>)> {
    let m = meta.get(name)?;
    let t = MetricType::from_keyword(m.metric_type.as_str())?;
    let help = (!m.help.is_empty()).then(|| m.help.clone());
    Some((t, help))
}

/// The family of sample `name`. `names` holds every sample name of the import (to pair a
/// `_sum` with its `_bucket`s), `has_le` whether this series carries an `le` label.
pub fn family_of(
    name: &str,
    has_le: bool,
    meta: &BTreeMap<String, MetricMeta>,
    names: &BTreeSet<String>,
) -> FamilyOf {
    let of = |family: &str, (metric_type, help): (MetricType, Option<String>), suffix| FamilyOf {
        family: family.to_string(),
        metric_type,
        help,
        suffix,
        inferred: false,
    };
    if let Some(d) = declared(meta, name) {
        if !matches!(
            d.0,
            MetricType::Histogram | MetricType::GaugeHistogram | MetricType::Summary
        ) {
            return of(name, d, Suffix::None);
        }
    }
    for (ending, suffix) in [
        ("_bucket", Suffix::Bucket),
        ("_sum", Suffix::Sum),
        ("_count", Suffix::Count),
        ("_created", Suffix::Created),
        ("_total", Suffix::Total),
    ] {
        let Some(stem) = name.strip_suffix(ending) else {
            continue;
        };
        if let Some(d) = declared(meta, stem) {
            let fits = match suffix {
                Suffix::Total => d.0 == MetricType::Counter,
                Suffix::Bucket => matches!(d.0, MetricType::Histogram | MetricType::GaugeHistogram),
                _ => matches!(
                    d.0,
                    MetricType::Histogram | MetricType::GaugeHistogram | MetricType::Summary
                ),
            };
            if fits {
                return of(stem, d, suffix);
            }
        }
    }
    infer(name, has_le, names)
}

/// A type from the names alone: `_bucket` with `le` (and its `_sum`/`_count` when a
/// `_bucket` sibling exists) is a histogram, `_total` a counter, anything else a gauge.
fn infer(name: &str, has_le: bool, names: &BTreeSet<String>) -> FamilyOf {
    let inferred = |family: &str, metric_type, suffix| FamilyOf {
        family: family.to_string(),
        metric_type,
        help: None,
        suffix,
        inferred: true,
    };
    if let Some(stem) = name.strip_suffix("_bucket") {
        if has_le {
            return inferred(stem, MetricType::Histogram, Suffix::Bucket);
        }
    }
    for (ending, suffix) in [("_sum", Suffix::Sum), ("_count", Suffix::Count)] {
        if let Some(stem) = name.strip_suffix(ending) {
            if names.contains(&format!("{stem}_bucket")) {
                return inferred(stem, MetricType::Histogram, suffix);
            }
        }
    }
    if name.ends_with("_total") {
        return inferred(name, MetricType::Counter, Suffix::None);
    }
    inferred(name, MetricType::Gauge, Suffix::None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(entries: &[(&str, &str)]) -> BTreeMap<String, MetricMeta> {
        entries
            .iter()
            .map(|(n, t)| {
                (
                    n.to_string(),
                    MetricMeta {
                        metric_type: t.to_string(),
                        help: format!("help of {n}"),
                    },
                )
            })
            .collect()
    }

    #[test]
    fn declared_types_give_the_recorders_families() {
        let m = meta(&[
            ("vllm:generation_tokens_total", "counter"),
            ("vllm:e2e_request_latency_seconds", "histogram"),
            ("vllm:iteration_tokens_total", "histogram"),
            ("vllm:num_requests_running", "gauge"),
        ]);
        let names = BTreeSet::new();
        let f = family_of("vllm:generation_tokens_total", false, &m, &names);
        assert_eq!(
            (f.family.as_str(), f.metric_type, f.suffix, f.inferred),
            (
                "vllm:generation_tokens_total",
                MetricType::Counter,
                Suffix::None,
                false
            )
        );
        assert_eq!(
            f.help.as_deref(),
            Some("help of vllm:generation_tokens_total")
        );
        let b = family_of("vllm:e2e_request_latency_seconds_bucket", true, &m, &names);
        assert_eq!(
            (b.family.as_str(), b.metric_type, b.suffix),
            (
                "vllm:e2e_request_latency_seconds",
                MetricType::Histogram,
                Suffix::Bucket
            )
        );
        // A histogram named `_total`: its `_total_sum` is the histogram's, not a counter.
        let s = family_of("vllm:iteration_tokens_total_sum", false, &m, &names);
        assert_eq!(
            (s.family.as_str(), s.suffix),
            ("vllm:iteration_tokens_total", Suffix::Sum)
        );
    }

    #[test]
    fn without_metadata_types_are_inferred_from_names() {
        let m = BTreeMap::new();
        let names: BTreeSet<String> = ["x_bucket", "x_sum", "x_count", "y_count"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let t = |n: &str, le| {
            let f = family_of(n, le, &m, &names);
            assert!(f.inferred);
            (f.family, f.metric_type, f.suffix)
        };
        assert_eq!(
            t("x_bucket", true),
            ("x".into(), MetricType::Histogram, Suffix::Bucket)
        );
        assert_eq!(
            t("x_sum", false),
            ("x".into(), MetricType::Histogram, Suffix::Sum)
        );
        assert_eq!(
            t("y_count", false),
            ("y_count".into(), MetricType::Gauge, Suffix::None)
        );
        assert_eq!(
            t("a_total", false),
            ("a_total".into(), MetricType::Counter, Suffix::None)
        );
        assert_eq!(
            t("z_bucket", false),
            ("z_bucket".into(), MetricType::Gauge, Suffix::None)
        );
    }
}
