//! Before anything is written: which instance, which series, which GPU series, and how the
//! range is cut into chunks that stay under the server's limits.

use super::{
    dcgm, ImportConfig, ImportError, PromApi, MAX_POINTS_PER_QUERY, MAX_POINTS_PER_SERIES,
    MAX_SERIES,
};
use crate::units::WallNs;
use std::collections::{BTreeMap, BTreeSet};

/// The name matcher of vLLM's series.
const VLLM_NAMES: &str = "vllm:.+";
/// The name matcher of the process collector's series (`process_cpu_seconds_total`, ...).
const PROCESS_NAMES: &str = "process_.+";

/// What an import will fetch, found by [`discover`].
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The server's base URL.
    pub url: String,
    /// The selector the vLLM series were found with.
    pub selector: String,
    /// The imported instance's `job` label.
    pub job: Option<String>,
    /// The imported instance's `instance` label.
    pub instance: Option<String>,
    /// The queries of the instance's series (vLLM, then process), pinned to job and instance.
    pub queries: Vec<String>,
    /// The queries of the GPU series (one per DCGM exporter matched).
    pub gpu_queries: Vec<String>,
    /// Series found, all queries together.
    pub series: usize,
    /// The served model name, from a `model_name` label.
    pub model_name: Option<String>,
    /// The GPUs found: (index, labels of one of its series).
    pub gpus: Vec<(u32, BTreeMap<String, String>)>,
    /// First step.
    pub from: WallNs,
    /// Step, ms.
    pub step_ms: u64,
    /// Number of steps in the range.
    pub steps: u64,
    /// Steps per chunk.
    pub chunk_steps: u64,
    /// The analysis inputs to store.
    pub analysis_inputs: crate::recording::AnalysisInputs,
}

impl Plan {
    /// The time of step `k`.
    pub fn step_at(&self, k: u64) -> WallNs {
        let ms = i64::try_from(self.step_ms).unwrap_or(i64::MAX);
        WallNs(self.from.0 + i64::try_from(k).unwrap_or(i64::MAX) * ms * 1_000_000)
    }

    /// The last step of the range.
    pub fn last_step(&self) -> WallNs {
        self.step_at(self.steps.saturating_sub(1))
    }

    /// Number of chunks.
    pub fn chunks(&self) -> u64 {
        self.steps.div_ceil(self.chunk_steps)
    }
}

/// A label value as a PromQL string literal.
pub fn quote(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    out.push('"');
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The matchers inside the braces of a `--match` selector ("" for none).
fn inner(flag: &'static str, selector: Option<&str>) -> Result<String, ImportError> {
    let Some(s) = selector.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(String::new());
    };
    match s.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
        Some(body) => Ok(body.trim().trim_end_matches(',').to_string()),
        None => Err(ImportError::BadSelector {
            flag,
            given: s.to_string(),
        }),
    }
}

/// `{__name__=~"NAMES",<matchers>...}`.
fn selector(names: &str, matchers: &[&str]) -> String {
    let mut parts = vec![format!("__name__=~{}", quote(names))];
    parts.extend(
        matchers
            .iter()
            .filter(|m| !m.is_empty())
            .map(|m| m.to_string()),
    );
    format!("{{{}}}", parts.join(","))
}

/// The host part of an `instance` label (`10.0.0.5:8000` -> `10.0.0.5`, `[::1]:80` -> `::1`).
fn host_of(instance: &str) -> &str {
    if let Some(rest) = instance.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match instance.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => instance,
    }
}

fn rfc(t: WallNs) -> String {
    t.to_rfc3339_millis()
}

/// Finds the instance, its series and its GPUs' series, and cuts the range into chunks.
pub fn discover(api: &dyn PromApi, config: &ImportConfig) -> Result<Plan, ImportError> {
    if config.step_ms == 0 {
        return Err(ImportError::BadRange(
            "the step must be longer than 0".into(),
        ));
    }
    if config.to.0 <= config.from.0 {
        return Err(ImportError::BadRange(format!(
            "--to {} is not after --from {}",
            rfc(config.to),
            rfc(config.from)
        )));
    }
    // Whole milliseconds: the API's time resolution.
    let from = WallNs(config.from.0.div_euclid(1_000_000) * 1_000_000);
    let step_ns = i64::try_from(config.step_ms)
        .ok()
        .and_then(|s| s.checked_mul(1_000_000))
        .ok_or_else(|| ImportError::BadRange("step too long".into()))?;
    let steps = u64::try_from((config.to.0 - from.0) / step_ns).unwrap_or(0) + 1;

    let url = api.url().to_string();
    let user = inner("--match", config.selector.as_deref())?;
    let vllm = selector(VLLM_NAMES, &[&user]);
    let found = api.series(&vllm, from, config.to)?;
    if found.is_empty() {
        return Err(ImportError::NoSeries {
            url,
            selector: vllm,
            from: rfc(from),
            to: rfc(config.to),
        });
    }
    // Instances, each with its job, in label order.
    let mut instances: BTreeMap<(Option<String>, Option<String>), usize> = BTreeMap::new();
    for labels in &found {
        let key = (labels.get("instance").cloned(), labels.get("job").cloned());
        *instances.entry(key).or_default() += 1;
    }
    let describe = |(i, j): &(Option<String>, Option<String>), n: &usize| {
        format!(
            "{} (job {}, {n} series)",
            i.as_deref().unwrap_or("(no instance label)"),
            j.as_deref().unwrap_or("-")
        )
    };
    let listed = || {
        instances
            .iter()
            .map(|(k, n)| describe(k, n))
            .collect::<Vec<_>>()
    };
    let chosen: Vec<_> = match &config.instance {
        Some(want) => instances
            .keys()
            .filter(|(i, _)| i.as_deref() == Some(want.as_str()))
            .cloned()
            .collect(),
        None => instances.keys().cloned().collect(),
    };
    let (instance, job) = match chosen.as_slice() {
        [one] => one.clone(),
        [] => {
            return Err(ImportError::NoSuchInstance {
                url,
                selector: vllm,
                instance: config.instance.clone().unwrap_or_default(),
                found: listed(),
            })
        }
        _ => {
            return Err(ImportError::SeveralInstances {
                url,
                selector: vllm,
                instances: listed(),
            })
        }
    };
    let pin: Vec<String> = [("job", &job), ("instance", &instance)]
        .into_iter()
        .filter_map(|(n, v)| v.as_ref().map(|v| format!("{n}={}", quote(v))))
        .collect();
    let pin: Vec<&str> = pin.iter().map(String::as_str).collect();
    let mut vllm_pinned = vec![user.as_str()];
    vllm_pinned.extend(&pin);
    let mut queries = vec![selector(VLLM_NAMES, &vllm_pinned)];
    // The process collector's series of the same target only: unpinned, it is every job's.
    if !pin.is_empty() {
        queries.push(selector(PROCESS_NAMES, &pin));
    }
    let mine: Vec<&BTreeMap<String, String>> = found
        .iter()
        .filter(|l| l.get("instance") == instance.as_ref() && l.get("job") == job.as_ref())
        .collect();
    let model_name = mine.iter().find_map(|l| l.get("model_name").cloned());
    let pods: BTreeSet<&String> = mine.iter().filter_map(|l| l.get("pod")).collect();
    let mut series = mine.len();
    if let Some(process) = queries.get(1) {
        series += api.series(process, from, config.to)?.len();
    }

    // GPUs: the DCGM exporter on the same host (or serving the same pod), unless told.
    let fields = dcgm::FIELDS.join("|");
    let gpu_series = match &config.gpu_selector {
        Some(s) => {
            let m = inner("--gpu-match", Some(s))?;
            api.series(&selector(&fields, &[&m]), from, config.to)?
        }
        None => {
            let host = instance.as_deref().map(host_of);
            api.series(&selector(&fields, &[]), from, config.to)?
                .into_iter()
                .filter(|l| {
                    let by_pod = l.get("pod").is_some_and(|p| pods.contains(p));
                    let by_host = host.is_some_and(|h| {
                        l.get("instance").map(|i| host_of(i)) == Some(h)
                            || l.get("Hostname").map(String::as_str) == Some(h)
                    });
                    // With pods on both sides, only the pod's own GPUs are its.
                    if !pods.is_empty() && l.contains_key("pod") {
                        by_pod
                    } else {
                        by_host
                    }
                })
                .collect()
        }
    };
    let mut exporters: BTreeSet<Vec<String>> = BTreeSet::new();
    let mut gpus: BTreeMap<(u32, String), BTreeMap<String, String>> = BTreeMap::new();
    for l in &gpu_series {
        let mut m: Vec<String> = ["job", "instance"]
            .iter()
            .filter_map(|n| l.get(*n).map(|v| format!("{n}={}", quote(v))))
            .collect();
        if config.gpu_selector.is_none() && !pods.is_empty() {
            if let Some(p) = l.get("pod") {
                m.push(format!("pod={}", quote(p)));
            }
        }
        exporters.insert(m);
        if let Some(key) = dcgm::gpu_key(l) {
            gpus.entry(key).or_insert_with(|| l.clone());
        }
    }
    let gpu_queries: Vec<String> = match &config.gpu_selector {
        Some(s) => vec![selector(&fields, &[&inner("--gpu-match", Some(s))?])],
        None => exporters
            .iter()
            .map(|m| selector(&fields, &m.iter().map(String::as_str).collect::<Vec<_>>()))
            .collect(),
    };
    series += gpu_series.len();
    if series > MAX_SERIES {
        return Err(ImportError::TooManySeries {
            url,
            selector: vllm,
            count: series,
            max: MAX_SERIES,
        });
    }
    // GPU indices: the `gpu` labels when they are distinct, else positions.
    let labelled: BTreeSet<u32> = gpus.keys().map(|(i, _)| *i).collect();
    let distinct = labelled.len() == gpus.len() && !labelled.contains(&u32::MAX);
    let gpus = gpus
        .into_iter()
        .enumerate()
        .map(|(pos, ((i, _), l))| (if distinct { i } else { pos as u32 }, l))
        .collect();
    let budget = config.max_points_per_query.clamp(1, MAX_POINTS_PER_QUERY);
    let chunk_steps = (budget / series.max(1) as u64).clamp(1, MAX_POINTS_PER_SERIES);
    Ok(Plan {
        url,
        selector: vllm,
        job,
        instance,
        queries,
        gpu_queries,
        series,
        model_name,
        gpus,
        from,
        step_ms: config.step_ms,
        steps,
        chunk_steps,
        analysis_inputs: config.analysis_inputs.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_are_built_from_matchers_in_braces() {
        assert_eq!(inner("--match", None).unwrap(), "");
        assert_eq!(
            inner("--match", Some(" {job=\"vllm\", } ")).unwrap(),
            "job=\"vllm\""
        );
        assert!(matches!(
            inner("--match", Some("job=\"vllm\"")),
            Err(ImportError::BadSelector {
                flag: "--match",
                ..
            })
        ));
        assert_eq!(
            selector(VLLM_NAMES, &["", "job=\"a\\\"b\""]),
            "{__name__=~\"vllm:.+\",job=\"a\\\"b\"}"
        );
        assert_eq!(quote("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
        assert_eq!(host_of("10.0.0.5:8000"), "10.0.0.5");
        assert_eq!(host_of("[::1]:9400"), "::1");
        assert_eq!(host_of("gpu-node-3"), "gpu-node-3");
    }
}
