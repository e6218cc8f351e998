//! The three calls of the Prometheus HTTP API the importer makes (`/api/v1/series`,
//! `/api/v1/metadata`, `/api/v1/query_range`), behind the [`PromApi`] trait so that the
//! chunking and mapping are tested against a fake, and over ureq with rustls for real.
//!
//! Every error names the server URL and the query (`ImportError::Api`), and a 4xx/5xx keeps
//! Prometheus's own `error` text, which says what it refused (`exceeded maximum resolution of
//! 11,000 points per timeseries`, `query processing would load too many samples`, a parse
//! error in the selector) better than any paraphrase of ours.

use super::{ApiFailure, Auth, ImportError};
use crate::units::WallNs;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;
use ureq::Agent;

/// A response body larger than this is refused. Ours: a query is sized to at most
/// `MAX_POINTS_PER_QUERY` (1,000,000) points, about 30-40 bytes of JSON each, and
/// `/api/v1/metadata` of a large server is a few MB; 512 MiB leaves room for long label sets
/// while bounding memory.
pub const MAX_RESPONSE_BYTES: u64 = 512 << 20;

/// How much of an error body is quoted when it is not Prometheus's JSON. Ours: enough for an
/// HTML error page's title or a proxy's one-line reason.
const ERROR_BODY_QUOTE: usize = 300;

/// One series of a `query_range` result: its labels (with `__name__`) and its points, as
/// (ms since the epoch, value). Values are Prometheus's, unchanged: `NaN` and `±Inf` kept.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeSeries {
    /// Every label, `__name__` included.
    pub labels: BTreeMap<String, String>,
    /// (timestamp ms, value), in time order.
    pub points: Vec<(i64, f64)>,
}

/// What `/api/v1/metadata` says of one metric name.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MetricMeta {
    /// `counter`, `gauge`, `histogram`, `summary`, `unknown`, ...
    #[serde(rename = "type")]
    pub metric_type: String,
    /// The `# HELP` text.
    #[serde(default)]
    pub help: String,
}

/// The Prometheus HTTP API, as the importer uses it.
pub trait PromApi {
    /// The server's base URL, for messages.
    fn url(&self) -> &str;
    /// `GET /api/v1/series`: the label sets of every series matching `selector` in the range.
    fn series(
        &self,
        selector: &str,
        start: WallNs,
        end: WallNs,
    ) -> Result<Vec<BTreeMap<String, String>>, ImportError>;
    /// `GET /api/v1/metadata`: type and help per metric name (first entry of each kept). A
    /// server without metadata (VictoriaMetrics, a target no longer scraped) answers empty.
    fn metadata(&self) -> Result<BTreeMap<String, MetricMeta>, ImportError>;
    /// `GET /api/v1/query_range` of `query` from `start` to `end` (both steps) every `step_ms`.
    fn query_range(
        &self,
        query: &str,
        start: WallNs,
        end: WallNs,
        step_ms: u64,
    ) -> Result<Vec<RangeSeries>, ImportError>;
}

/// The real API over HTTP(S).
pub struct HttpApi {
    agent: Agent,
    base: String,
    authorization: Option<String>,
    timeout: Duration,
}

impl HttpApi {
    /// A client of the server at `base` (`http://host:9090`, maybe with a path prefix), each
    /// request bounded by `timeout`.
    pub fn new(base: &str, auth: &Auth, timeout: Duration) -> HttpApi {
        let config = Agent::config_builder()
            .http_status_as_error(false)
            .user_agent(concat!("profile/", env!("CARGO_PKG_VERSION")))
            .timeout_global(Some(timeout))
            .build();
        HttpApi {
            agent: Agent::new_with_config(config),
            base: base.trim_end_matches('/').to_string(),
            authorization: auth.header(),
            timeout,
        }
    }

    /// GET `path` with `params`; the body of a 200, or the error naming `query`.
    fn get(
        &self,
        path: &str,
        params: &[(&str, &str)],
        query: &str,
    ) -> Result<Vec<u8>, ImportError> {
        let url = format!("{}{path}", self.base);
        let fail = |failure| ImportError::Api {
            url: url.clone(),
            query: query.to_string(),
            failure,
        };
        let mut request = self.agent.get(&url);
        for (k, v) in params {
            request = request.query(*k, *v);
        }
        if let Some(auth) = &self.authorization {
            request = request.header("Authorization", auth);
        }
        let mut response = request
            .call()
            .map_err(|e| fail(classify(&e, self.timeout)))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_vec()
            .map_err(|e| fail(classify(&e, self.timeout)))?;
        if status != 200 {
            return Err(fail(ApiFailure::Status {
                status,
                message: error_text(&body),
            }));
        }
        Ok(body)
    }

    /// Parses a 200's `{"status": "success", "data": ...}` envelope.
    fn data<T: for<'de> Deserialize<'de>>(
        &self,
        path: &str,
        body: &[u8],
        query: &str,
    ) -> Result<T, ImportError> {
        #[derive(Deserialize)]
        struct Envelope<T> {
            status: String,
            data: Option<T>,
            error: Option<String>,
        }
        let bad = |message: String| ImportError::Api {
            url: format!("{}{path}", self.base),
            query: query.to_string(),
            failure: ApiFailure::BadResponse(message),
        };
        let env: Envelope<T> = serde_json::from_slice(body)
            .map_err(|e| bad(format!("not a Prometheus API answer ({e})")))?;
        if env.status != "success" {
            return Err(bad(env
                .error
                .unwrap_or_else(|| format!("status {}", env.status))));
        }
        env.data.ok_or_else(|| bad("no data".to_string()))
    }
}

impl PromApi for HttpApi {
    fn url(&self) -> &str {
        &self.base
    }

    fn series(
        &self,
        selector: &str,
        start: WallNs,
        end: WallNs,
    ) -> Result<Vec<BTreeMap<String, String>>, ImportError> {
        let path = "/api/v1/series";
        let (s, e) = (api_time(start), api_time(end));
        let params = [("match[]", selector), ("start", &s), ("end", &e)];
        let body = self.get(path, &params, selector)?;
        self.data(path, &body, selector)
    }

    fn metadata(&self) -> Result<BTreeMap<String, MetricMeta>, ImportError> {
        let path = "/api/v1/metadata";
        let body = self.get(path, &[], "metadata")?;
        let all: BTreeMap<String, Vec<MetricMeta>> = self.data(path, &body, "metadata")?;
        Ok(all
            .into_iter()
            .filter_map(|(name, mut v)| (!v.is_empty()).then(|| (name, v.swap_remove(0))))
            .collect())
    }

    fn query_range(
        &self,
        query: &str,
        start: WallNs,
        end: WallNs,
        step_ms: u64,
    ) -> Result<Vec<RangeSeries>, ImportError> {
        #[derive(Deserialize)]
        struct Matrix {
            #[serde(rename = "resultType")]
            result_type: String,
            result: Vec<Row>,
        }
        #[derive(Deserialize)]
        struct Row {
            metric: BTreeMap<String, String>,
            #[serde(default)]
            values: Vec<(f64, String)>,
        }
        let path = "/api/v1/query_range";
        let (s, e, st) = (api_time(start), api_time(end), api_step(step_ms));
        let params = [("query", query), ("start", &s), ("end", &e), ("step", &st)];
        let body = self.get(path, &params, query)?;
        let m: Matrix = self.data(path, &body, query)?;
        let bad = |message: String| ImportError::Api {
            url: format!("{}{path}", self.base),
            query: query.to_string(),
            failure: ApiFailure::BadResponse(message),
        };
        if m.result_type != "matrix" {
            return Err(bad(format!("result type {}, not a matrix", m.result_type)));
        }
        let mut out = Vec::with_capacity(m.result.len());
        for row in m.result {
            let mut points = Vec::with_capacity(row.values.len());
            for (t, v) in row.values {
                let value = parse_value(&v).ok_or_else(|| bad(format!("bad value {v:?}")))?;
                let ms = (t * 1000.0).round();
                if !ms.is_finite() || ms.abs() > 9.0e15 {
                    return Err(bad(format!("bad timestamp {t}")));
                }
                points.push((ms as i64, value));
            }
            out.push(RangeSeries {
                labels: row.metric,
                points,
            });
        }
        Ok(out)
    }
}

/// A sample value as the API writes it: a decimal string, `NaN`, `+Inf` or `-Inf`.
pub fn parse_value(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

/// A time for the API: Unix seconds with millisecond precision (`1700000000.250`).
pub fn api_time(t: WallNs) -> String {
    let ms = t.0.div_euclid(1_000_000);
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

/// A step for the API, in seconds (`15`, `0.5`).
pub fn api_step(step_ms: u64) -> String {
    if step_ms % 1000 == 0 {
        (step_ms / 1000).to_string()
    } else {
        format!("{}.{:03}", step_ms / 1000, step_ms % 1000)
    }
}

/// Prometheus's own error text from an error body (`{"status":"error","error":"..."}`), or
/// the start of the body when it is something else (a proxy's page).
fn error_text(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct ErrorBody {
        error: Option<String>,
        #[serde(rename = "errorType")]
        error_type: Option<String>,
    }
    if let Ok(ErrorBody {
        error: Some(e),
        error_type,
    }) = serde_json::from_slice::<ErrorBody>(body)
    {
        return match error_type {
            Some(t) if !t.is_empty() => format!("{t}: {e}"),
            _ => e,
        };
    }
    let text = String::from_utf8_lossy(body);
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    one_line.chars().take(ERROR_BODY_QUOTE).collect()
}

fn classify(e: &ureq::Error, timeout: Duration) -> ApiFailure {
    match e {
        ureq::Error::Timeout(_) => ApiFailure::Timeout {
            secs: timeout.as_secs_f64(),
        },
        ureq::Error::BodyExceedsLimit(_) => ApiFailure::TooLarge {
            limit: MAX_RESPONSE_BYTES,
        },
        other => ApiFailure::Transport(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_times_and_steps_in_the_api_forms() {
        assert!(parse_value("NaN").is_some_and(f64::is_nan));
        assert_eq!(parse_value("+Inf"), Some(f64::INFINITY));
        assert_eq!(parse_value("-Inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_value("1e+06"), Some(1e6));
        assert_eq!(parse_value("x"), None);
        assert_eq!(
            api_time(WallNs(1_700_000_000_250_000_000)),
            "1700000000.250"
        );
        assert_eq!(api_step(15_000), "15");
        assert_eq!(api_step(500), "0.500");
    }

    #[test]
    fn error_text_keeps_prometheus_words() {
        let body = br#"{"status":"error","errorType":"bad_data","error":"exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"}"#;
        assert_eq!(
            error_text(body),
            "bad_data: exceeded maximum resolution of 11,000 points per timeseries. Try \
             decreasing the query resolution (?step=XX)"
        );
        assert_eq!(
            error_text(b"<html>\n  502 Bad   Gateway</html>"),
            "<html> 502 Bad Gateway</html>"
        );
    }
}
