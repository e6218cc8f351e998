//! The importer against a fake API: chunking, the mapping to rows, instance choice, and a
//! failure mid-way.

use super::client::{MetricMeta, RangeSeries};
use super::*;
use crate::promtext::MetricType;
use std::cell::Cell;
use std::collections::BTreeMap;

const T0: i64 = 1_700_000_000_000_000_000;
const STEP_MS: u64 = 15_000;

/// Series with a value at every step from T0; `query_range` call `fail_at` (from 0) fails.
struct Fake {
    series: Vec<BTreeMap<String, String>>,
    fail_at: Option<usize>,
    calls: Cell<usize>,
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn vllm(instance: &str) -> Vec<BTreeMap<String, String>> {
    let base = [("job", "vllm"), ("instance", instance), ("model_name", "m")];
    let with = |name: &str, extra: &[(&str, &str)]| {
        let mut l = labels(&base);
        l.insert("__name__".into(), name.into());
        l.extend(labels(extra));
        l
    };
    vec![
        with("vllm:num_requests_running", &[]),
        with("vllm:generation_tokens_total", &[]),
        with("vllm:e2e_request_latency_seconds_bucket", &[("le", "1.0")]),
        with("vllm:e2e_request_latency_seconds_bucket", &[("le", "+Inf")]),
        with("vllm:e2e_request_latency_seconds_sum", &[]),
        with("vllm:e2e_request_latency_seconds_count", &[]),
    ]
}

/// Matches `{__name__=~"vllm:.+",...instance="I"}` crudely: by name prefix and instance.
fn matches(sel: &str, l: &BTreeMap<String, String>) -> bool {
    let name = &l["__name__"];
    let by_name = (sel.contains("vllm:") && name.starts_with("vllm:"))
        || (sel.contains("process_") && name.starts_with("process_"))
        || (sel.contains("DCGM") && name.starts_with("DCGM"));
    let by_instance = match sel.split("instance=\"").nth(1) {
        Some(rest) => rest.split('"').next() == l.get("instance").map(String::as_str),
        None => true,
    };
    by_name && by_instance
}

/// The value of series `i` at step time `t_ms`: a counter-like ramp.
fn value(i: usize, t_ms: i64) -> f64 {
    (i as f64 + 1.0) * ((t_ms - T0 / 1_000_000) / 1000) as f64
}

impl PromApi for Fake {
    fn url(&self) -> &str {
        "http://fake:9090"
    }
    fn series(
        &self,
        selector: &str,
        _: WallNs,
        _: WallNs,
    ) -> Result<Vec<BTreeMap<String, String>>, ImportError> {
        Ok(self
            .series
            .iter()
            .filter(|l| matches(selector, l))
            .cloned()
            .collect())
    }
    fn metadata(&self) -> Result<BTreeMap<String, MetricMeta>, ImportError> {
        let m = |t: &str| MetricMeta {
            metric_type: t.into(),
            help: String::new(),
        };
        Ok([
            ("vllm:num_requests_running".to_string(), m("gauge")),
            ("vllm:generation_tokens_total".to_string(), m("counter")),
            (
                "vllm:e2e_request_latency_seconds".to_string(),
                m("histogram"),
            ),
        ]
        .into())
    }
    fn query_range(
        &self,
        query: &str,
        start: WallNs,
        end: WallNs,
        step_ms: u64,
    ) -> Result<Vec<RangeSeries>, ImportError> {
        let call = self.calls.get();
        self.calls.set(call + 1);
        if Some(call) == self.fail_at {
            return Err(ImportError::Api {
                url: "http://fake:9090/api/v1/query_range".into(),
                query: query.into(),
                failure: ApiFailure::Status {
                    status: 503,
                    message: "unavailable: shutting down".into(),
                },
            });
        }
        let steps = (end.0 - start.0) / (step_ms as i64 * 1_000_000) + 1;
        assert!(
            steps as u64 <= MAX_POINTS_PER_SERIES,
            "{steps} steps in one query"
        );
        Ok(self
            .series
            .iter()
            .enumerate()
            .filter(|(_, l)| matches(query, l))
            .map(|(i, l)| RangeSeries {
                labels: l.clone(),
                points: (0..steps)
                    .map(|k| {
                        let t = start.0 / 1_000_000 + k * step_ms as i64;
                        (t, value(i, t))
                    })
                    .collect(),
            })
            .collect())
    }
}

fn config(hours: i64) -> ImportConfig {
    ImportConfig {
        url: "http://fake:9090".into(),
        from: WallNs(T0),
        to: WallNs(T0 + hours * 3_600_000_000_000),
        step_ms: STEP_MS,
        selector: None,
        instance: None,
        gpu_selector: None,
        analysis_inputs: Default::default(),
        max_points_per_query: 6 * 1000,
    }
}

#[test]
fn a_day_is_cut_into_chunks_that_read_back_as_one_recording() {
    let fake = Fake {
        series: vllm("a:8000"),
        fail_at: None,
        calls: Cell::new(0),
    };
    let plan = discover(&fake, &config(24)).unwrap();
    assert_eq!(plan.steps, 24 * 240 + 1);
    assert_eq!((plan.series, plan.chunk_steps), (6, 1000));
    let dir = tempfile::tempdir().unwrap();
    let mut seen = Vec::new();
    let summary = run(&fake, &plan, dir.path(), &mut |p| seen.push(p.steps_done)).unwrap();
    assert_eq!(summary.chunks, 6);
    assert_eq!(seen, vec![1000, 2000, 3000, 4000, 5000, 5761]);
    let rec = crate::recording::open(dir.path()).unwrap();
    assert!(rec.problems().next().is_none());
    assert_eq!(rec.scrapes.len(), 5761);
    assert!(rec
        .scrapes
        .iter()
        .all(|s| s.is_usable() && s.samples.len() == 6));
    // Series as the recorder stores them: family and type from metadata, `le` a column, job
    // and instance gone from the labels.
    let bucket = rec
        .series
        .iter()
        .find(|s| s.name.as_ref() == "vllm:e2e_request_latency_seconds_bucket")
        .unwrap();
    assert_eq!(bucket.family.as_ref(), "vllm:e2e_request_latency_seconds");
    assert_eq!(bucket.metric_type, MetricType::Histogram);
    assert_eq!(bucket.labels.as_ref(), "model_name=\"m\"");
    assert!(bucket.le.is_some());
    // Raw values at the right step: the counter of the last step is untouched.
    let last = rec.scrapes.last().unwrap();
    assert_eq!(last.meta.completed_at, WallNs(T0 + 24 * 3_600_000_000_000));
    assert_eq!(last.meta.completed_mono.0, 24 * 3_600_000_000_000);
    let counter = rec
        .series
        .iter()
        .position(|s| s.name.as_ref() == "vllm:generation_tokens_total")
        .unwrap() as u32;
    let v = last
        .samples
        .iter()
        .find(|s| s.series == counter)
        .unwrap()
        .value;
    assert_eq!(v, 2.0 * 86_400.0);
    let imp = rec.manifest.import.as_ref().unwrap();
    assert_eq!(
        (imp.step_ms, imp.instance.as_deref()),
        (STEP_MS, Some("a:8000"))
    );
    assert_eq!(rec.manifest.model_name.as_deref(), Some("m"));
}

#[test]
fn a_failure_mid_way_keeps_the_chunks_written_and_names_the_missing_range() {
    // Two queries per chunk (vLLM, process): call 5 is chunk 2's first.
    let fake = Fake {
        series: vllm("a:8000"),
        fail_at: Some(4),
        calls: Cell::new(0),
    };
    let plan = discover(&fake, &config(24)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let err = run(&fake, &plan, dir.path(), &mut |_| {}).unwrap_err();
    let text = format!("{err:#}");
    assert!(
        matches!(&err, ImportError::Incomplete { missing_from, .. }
            if *missing_from == plan.step_at(2000).to_rfc3339_millis()),
        "{text}"
    );
    assert!(
        text.contains("imported 2023-11-14T22:13:20.000Z to"),
        "{text}"
    );
    let cause = std::error::Error::source(&err).unwrap().to_string();
    assert!(
        cause.contains("HTTP 503: unavailable: shutting down"),
        "{cause}"
    );
    assert!(
        cause.contains("http://fake:9090/api/v1/query_range"),
        "{cause}"
    );
    let rec = crate::recording::open(dir.path()).unwrap();
    assert!(rec.problems().next().is_none());
    assert_eq!(rec.scrapes.len(), 2000);
    let imp = rec.manifest.import.unwrap();
    assert!(imp.incomplete.unwrap().contains("HTTP 503"));
}

#[test]
fn several_instances_are_listed_and_one_is_picked() {
    let mut series = vllm("a:8000");
    series.extend(vllm("b:8000"));
    let fake = Fake {
        series,
        fail_at: None,
        calls: Cell::new(0),
    };
    let err = discover(&fake, &config(1)).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, ImportError::SeveralInstances { .. }),
        "{text}"
    );
    assert!(
        text.contains("a:8000 (job vllm, 6 series), b:8000 (job vllm, 6 series)"),
        "{text}"
    );
    assert!(text.contains("--instance"), "{text}");
    let mut c = config(1);
    c.instance = Some("b:8000".into());
    let plan = discover(&fake, &c).unwrap();
    assert_eq!((plan.instance.as_deref(), plan.series), (Some("b:8000"), 6));
    c.instance = Some("c:8000".into());
    assert!(matches!(
        discover(&fake, &c),
        Err(ImportError::NoSuchInstance { .. })
    ));
    let none = Fake {
        series: Vec::new(),
        fail_at: None,
        calls: Cell::new(0),
    };
    let err = discover(&none, &config(1)).unwrap_err();
    assert!(err
        .to_string()
        .starts_with("http://fake:9090: no series match {__name__=~\"vllm:.+\"}"));
}

#[test]
fn an_existing_recording_is_never_mixed_into() {
    let fake = Fake {
        series: vllm("a:8000"),
        fail_at: None,
        calls: Cell::new(0),
    };
    let plan = discover(&fake, &config(1)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    run(&fake, &plan, dir.path(), &mut |_| {}).unwrap();
    let again = run(&fake, &plan, dir.path(), &mut |_| {});
    assert!(matches!(again, Err(ImportError::OutputExists(_))));
}
