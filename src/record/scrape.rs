//! One HTTP GET of the metrics endpoint, and its outcome sorted into a `ScrapeStatus`.
//!
//! The client is one ureq `Agent` (keep-alive pool) configured so that every failure comes
//! back as something we can classify: HTTP error statuses are ordinary responses
//! (`http_status_as_error(false)`), redirects are not followed (one GET per tick, never more),
//! and a whole-request timeout below the interval bounds each attempt. No `Accept` header is
//! sent, so vLLM answers in Prometheus text 0.0.4.
//!
//! ureq resolves the host before every request, and with a timeout set it does so on a new
//! thread each time (`DefaultResolver::resolve_async`): at 4 Hz that was four thread spawns a
//! second, most of the recorder's system time. An IP-literal host (the usual
//! `127.0.0.1:8000` sidecar) needs no resolution at all, so [`IpLiteralFirst`] answers it
//! directly and leaves names to ureq. The resolver hook is ureq's `unversioned` API, pinned by
//! Cargo.lock.

use crate::recording::ScrapeStatus;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};
use ureq::Agent;

/// The most of an error response's body that is read, to quote its start in the error text.
const ERROR_BODY_CAP: u64 = 64 * 1024;
/// The most of an error response's body quoted in the error text, in characters.
const ERROR_QUOTE_CHARS: usize = 200;
/// The cap on the `/version` answer.
const VERSION_BODY_CAP: u64 = 64 * 1024;

/// The outcome of one attempt, before its body is parsed.
#[derive(Debug)]
pub(crate) struct Fetched {
    /// `Ok` when a 200 arrived with a body within the cap; the failure class otherwise.
    pub status: ScrapeStatus,
    /// The HTTP status code, when a response arrived.
    pub http_status: Option<u16>,
    /// The error text of a failed attempt.
    pub error: Option<String>,
    /// The body of a 200 answer.
    pub body: Option<Vec<u8>>,
}

impl Fetched {
    fn failed(status: ScrapeStatus, http_status: Option<u16>, error: String) -> Fetched {
        Fetched {
            status,
            http_status,
            error: Some(error),
            body: None,
        }
    }
}

/// The scrape client: one agent, one URL.
pub(crate) struct Scraper {
    agent: Agent,
    url: String,
    authorization: Option<String>,
    max_body: u64,
    timeout: Duration,
}

impl Scraper {
    /// A client for `url` whose attempts each end within `timeout`.
    pub(crate) fn new(
        url: &str,
        bearer_token: Option<&str>,
        max_body: u64,
        timeout: Duration,
    ) -> Scraper {
        let config = Agent::config_builder()
            .http_status_as_error(false)
            // A redirect would be a second GET in the same tick; record the 3xx instead.
            .max_redirects(0)
            .max_redirects_will_error(false)
            // No Accept header: vLLM then answers text 0.0.4 rather than OpenMetrics.
            .accept("")
            .user_agent(concat!("profile/", env!("CARGO_PKG_VERSION")))
            .timeout_global(Some(timeout))
            .timeout_connect(Some(timeout))
            .build();
        Scraper {
            agent: Agent::with_parts(
                config,
                DefaultConnector::default(),
                IpLiteralFirst::default(),
            ),
            url: url.to_string(),
            authorization: bearer_token.map(|t| format!("Bearer {t}")),
            max_body,
            timeout,
        }
    }

    /// Performs exactly one GET of the metrics URL. Never retries.
    pub(crate) fn fetch(&self) -> Fetched {
        let mut request = self.agent.get(&self.url);
        if let Some(auth) = &self.authorization {
            request = request.header("Authorization", auth);
        }
        let mut response = match request.call() {
            Ok(r) => r,
            Err(e) => {
                let (status, text) = classify(&e, self.timeout);
                return Fetched::failed(status, None, text);
            }
        };
        let code = response.status().as_u16();
        if code != 200 {
            let quoted = response
                .body_mut()
                .with_config()
                .limit(ERROR_BODY_CAP)
                .lossy_utf8(true)
                .read_to_string()
                .ok()
                .map(|b| quote(&b))
                .filter(|q| !q.is_empty());
            let reason = response.status().canonical_reason().unwrap_or("");
            let text = match quoted {
                Some(q) => format!("HTTP {code} {reason}: {q}"),
                None => format!("HTTP {code} {reason}"),
            };
            return Fetched::failed(
                ScrapeStatus::HttpStatus,
                Some(code),
                text.trim().to_string(),
            );
        }
        match response
            .body_mut()
            .with_config()
            .limit(self.max_body)
            .read_to_vec()
        {
            Ok(body) => Fetched {
                status: ScrapeStatus::Ok,
                http_status: Some(code),
                error: None,
                body: Some(body),
            },
            Err(e) => {
                let (status, text) = classify(&e, self.timeout);
                Fetched::failed(status, Some(code), text)
            }
        }
    }

    /// Asks `<base>/version` once (vLLM answers `{"version": "..."}`), best effort: any
    /// failure gives `None`.
    pub(crate) fn fetch_version(&self, timeout: Duration) -> Option<String> {
        #[derive(serde::Deserialize)]
        struct Version {
            version: String,
        }
        let url = format!("{}/version", base_url(&self.url)?);
        let mut request = self
            .agent
            .get(&url)
            .config()
            .timeout_global(Some(timeout))
            .build();
        if let Some(auth) = &self.authorization {
            request = request.header("Authorization", auth);
        }
        let mut response = request.call().ok()?;
        if response.status().as_u16() != 200 {
            return None;
        }
        let body = response
            .body_mut()
            .with_config()
            .limit(VERSION_BODY_CAP)
            .read_to_vec()
            .ok()?;
        let v: Version = serde_json::from_slice(&body).ok()?;
        let v = v.version.trim().to_string();
        (!v.is_empty()).then_some(v)
    }
}

/// ureq's resolver, except that an IP-literal host is answered without resolving (and so
/// without ureq's per-request resolver thread).
#[derive(Debug, Default)]
struct IpLiteralFirst(DefaultResolver);

impl Resolver for IpLiteralFirst {
    fn resolve(
        &self,
        uri: &Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        match ip_literal(uri) {
            Some(addr) => {
                let mut addrs = self.empty();
                addrs.push(addr);
                Ok(addrs)
            }
            None => self.0.resolve(uri, config, timeout),
        }
    }
}

/// The socket address of a URL whose host is an IP address (`127.0.0.1`, `[::1]`), with the
/// scheme's default port when none is given; `None` for a host name.
fn ip_literal(uri: &Uri) -> Option<SocketAddr> {
    let host = uri.host()?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let ip: IpAddr = host.parse().ok()?;
    let port = match (uri.port_u16(), uri.scheme_str()) {
        (Some(p), _) => p,
        (None, Some("https")) => 443,
        (None, Some("http")) => 80,
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Checks that `url` is an absolute `http`/`https` URL with a host; returns why not.
pub(crate) fn check_url(url: &str) -> Result<(), String> {
    let uri: Uri = url
        .parse()
        .map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        Some(other) => return Err(format!("{url:?}: scheme {other:?} is not http or https")),
        None => {
            return Err(format!(
                "{url:?}: no scheme (expected e.g. http://127.0.0.1:8000/metrics)"
            ))
        }
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("{url:?}: no host"));
    }
    Ok(())
}

/// `scheme://authority` of a URL, e.g. `http://127.0.0.1:8000` for `.../metrics`.
pub(crate) fn base_url(url: &str) -> Option<String> {
    let uri: Uri = url.parse().ok()?;
    Some(format!("{}://{}", uri.scheme_str()?, uri.authority()?))
}

/// Sorts a ureq error into a scrape status, with a text for the error column.
pub(crate) fn classify(e: &ureq::Error, timeout: Duration) -> (ScrapeStatus, String) {
    use ureq::Error as E;
    let status = match e {
        E::Timeout(_) => ScrapeStatus::Timeout,
        E::HostNotFound | E::ConnectionFailed => ScrapeStatus::Connect,
        E::BodyExceedsLimit(_) => ScrapeStatus::Oversize,
        E::Io(io) => classify_io(io),
        _ => ScrapeStatus::Other,
    };
    let text = match (e, status) {
        (E::Timeout(which), _) => format!("timed out ({which}) after {} ms", timeout.as_millis()),
        (E::BodyExceedsLimit(n), _) => format!("body exceeds the cap of {n} bytes (--max-body)"),
        (E::Io(io), _) if io.kind() == io::ErrorKind::UnexpectedEof => {
            "connection closed before the answer was complete".to_string()
        }
        (E::Io(io), _) => io.to_string(),
        (other, _) => other.to_string(),
    };
    (status, text)
}

fn classify_io(e: &io::Error) -> ScrapeStatus {
    use io::ErrorKind as K;
    match e.kind() {
        K::TimedOut | K::WouldBlock => ScrapeStatus::Timeout,
        K::ConnectionRefused
        | K::ConnectionReset
        | K::ConnectionAborted
        | K::NotConnected
        | K::AddrNotAvailable
        | K::BrokenPipe
        | K::UnexpectedEof
        | K::HostUnreachable
        | K::NetworkUnreachable => ScrapeStatus::Connect,
        _ => ScrapeStatus::Other,
    }
}

/// The start of an error body, on one line, for the error column.
fn quote(body: &str) -> String {
    let one_line: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut q: String = one_line.chars().take(ERROR_QUOTE_CHARS).collect();
    if one_line.chars().nth(ERROR_QUOTE_CHARS).is_some() {
        q.push_str("...");
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_drops_the_path() {
        assert_eq!(
            base_url("http://127.0.0.1:8000/metrics").as_deref(),
            Some("http://127.0.0.1:8000")
        );
        assert_eq!(
            base_url("https://h.example/a/b?c=d").as_deref(),
            Some("https://h.example")
        );
        assert_eq!(base_url("/metrics"), None);
    }

    #[test]
    fn ip_literal_hosts_need_no_resolver() {
        let at = |u: &str| ip_literal(&u.parse().unwrap());
        assert_eq!(
            at("http://127.0.0.1:8000/metrics"),
            Some("127.0.0.1:8000".parse().unwrap())
        );
        assert_eq!(
            at("http://[::1]:9/metrics"),
            Some("[::1]:9".parse().unwrap())
        );
        assert_eq!(
            at("https://10.0.0.2/m"),
            Some("10.0.0.2:443".parse().unwrap())
        );
        assert_eq!(
            at("http://10.0.0.2/m"),
            Some("10.0.0.2:80".parse().unwrap())
        );
        assert_eq!(at("http://localhost:8000/metrics"), None);
        assert_eq!(at("http://vllm.svc:8000/metrics"), None);
    }

    #[test]
    fn check_url_wants_scheme_and_host() {
        assert!(check_url("http://127.0.0.1:8000/metrics").is_ok());
        assert!(check_url("localhost:8000/metrics").is_err());
        assert!(check_url("ftp://h/metrics").unwrap_err().contains("ftp"));
        assert!(check_url("not a url").is_err());
    }

    #[test]
    fn classifies_errors() {
        let t = Duration::from_millis(80);
        let refused = ureq::Error::Io(io::Error::from(io::ErrorKind::ConnectionRefused));
        assert_eq!(classify(&refused, t).0, ScrapeStatus::Connect);
        assert!(classify(&refused, t).1.contains("refused"));
        let timeout = ureq::Error::Timeout(ureq::Timeout::Global);
        assert_eq!(classify(&timeout, t).0, ScrapeStatus::Timeout);
        assert!(classify(&timeout, t).1.contains("80 ms"));
        assert_eq!(
            classify(&ureq::Error::BodyExceedsLimit(10), t).0,
            ScrapeStatus::Oversize
        );
        assert_eq!(
            classify(&ureq::Error::HostNotFound, t).0,
            ScrapeStatus::Connect
        );
        assert_eq!(
            classify(&ureq::Error::BadUri("x".into()), t).0,
            ScrapeStatus::Other
        );
    }

    #[test]
    fn quote_is_one_short_line() {
        assert_eq!(quote("a\n  b\tc"), "a b c");
        let long = "x".repeat(500);
        assert_eq!(quote(&long).len(), ERROR_QUOTE_CHARS + 3);
    }
}
