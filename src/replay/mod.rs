//! Replay: a recording served back as a live Prometheus endpoint, in its recorded rhythm, so
//! that `profile record`, a Prometheus server or any other scraper can be pointed at a past
//! run as if the vLLM server were still there (tests, demos, reproducing a report).
//!
//! The schedule: scrape `k` of the recording (successful or not) is what `/metrics` answers
//! from `(requested_mono_k - requested_mono_0) / speed` after the replay started until the
//! next scrape's moment. The recorded request time is used (not the completion time) because
//! that is when the original server was asked: a scraper on the recorded schedule sees the
//! same sequence. With `looped`, the recording starts over one recorded interval after its
//! last scrape. Failed scrapes are served as failures; [`Answer`] documents the mapping.

mod render;
mod server;

pub use render::{go_float, render_scrape};
pub use server::ReplayServer;

use crate::recording::{Recording, ScrapeStatus};
use std::time::Duration;

/// How to replay.
#[derive(Debug, Clone)]
pub struct ReplayConfig {
    /// Playback speed: 2.0 serves a 10-minute recording in 5 minutes. Must be positive.
    pub speed: f64,
    /// Start over after the last scrape instead of finishing.
    pub looped: bool,
    /// How long a recorded `timeout` holds the request before closing the connection
    /// unanswered. Longer than any sane scrape timeout (vLLM scrapers use 0.2-10 s).
    pub stall: Duration,
    /// The largest body served for a recorded `oversize` scrape.
    pub oversize_cap: u64,
}

impl Default for ReplayConfig {
    /// Real time, once, 15 s stalls, bodies of up to 64 MiB.
    fn default() -> Self {
        ReplayConfig {
            speed: 1.0,
            looped: false,
            stall: Duration::from_secs(15),
            oversize_cap: 64 << 20,
        }
    }
}

/// What `/metrics` answers while a scrape's turn lasts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// `ok`: 200 and the scrape rendered as text 0.0.4.
    Metrics,
    /// `http_status`: the recorded status code (500 when none was recorded), short body.
    /// `other` is answered 500 the same way.
    Status(u16),
    /// `parse`: 200 with a body that is not Prometheus text.
    Garbage,
    /// `timeout`: hold the request for [`ReplayConfig::stall`], then close unanswered.
    Stall,
    /// `connect`: close the connection without answering (a listening socket cannot refuse
    /// one connection and accept the next, so this is the nearest a server can get).
    Close,
    /// `oversize`: 200 with a body of this many bytes of `#` comment lines: one byte over
    /// the recorded size, or over the recorder's default 16 MiB cap when none was recorded,
    /// capped at [`ReplayConfig::oversize_cap`].
    Oversize(u64),
}

/// The body served for a recorded `parse` failure. The project's parser refuses it (the
/// round trip test checks), as do Prometheus and promtool.
pub const GARBAGE_BODY: &str = "this is not Prometheus text {\n";

/// The recorder's default body cap, used to size an `oversize` answer without a recorded size.
const DEFAULT_BODY_CAP: u64 = 16 << 20;

/// A recording prepared for replay: the schedule and what each turn answers.
#[derive(Debug)]
pub struct Replay {
    rec: Recording,
    config: ReplayConfig,
    /// Start of each scrape's turn, ns after the replay started (already divided by speed).
    starts_ns: Vec<u64>,
    /// Length of one pass, ns (scaled): the last turn lasts one recorded interval.
    pass_ns: u64,
}

/// Errors preparing a replay.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The speed is not a positive finite number.
    #[error("speed must be a positive number, got {0}")]
    BadSpeed(f64),
    /// The recording holds no scrape.
    #[error("the recording holds no scrape to replay")]
    Empty,
    /// The server could not be started.
    #[error("replay server: {0}")]
    Io(#[from] std::io::Error),
}

impl Replay {
    /// Prepares `rec` for replay.
    pub fn new(rec: Recording, config: ReplayConfig) -> Result<Replay, ReplayError> {
        if !(config.speed.is_finite() && config.speed > 0.0) {
            return Err(ReplayError::BadSpeed(config.speed));
        }
        let first = rec.scrapes.first().ok_or(ReplayError::Empty)?;
        let t0 = first.meta.requested_mono.0;
        let scale = |ns: i64| -> u64 { (ns.max(0) as f64 / config.speed) as u64 };
        let starts_ns: Vec<u64> = rec
            .scrapes
            .iter()
            .map(|s| scale(s.meta.requested_mono.0 - t0))
            // A clock that stepped back would break the binary search; keep it monotonic.
            .scan(0u64, |max, s| {
                *max = (*max).max(s);
                Some(*max)
            })
            .collect();
        let interval_ns = i64::try_from(rec.manifest.interval_ms)
            .unwrap_or(i64::MAX / 1_000_000)
            .saturating_mul(1_000_000);
        let last = starts_ns.last().copied().unwrap_or(0);
        let pass_ns = last.saturating_add(scale(interval_ns).max(1));
        Ok(Replay {
            rec,
            config,
            starts_ns,
            pass_ns,
        })
    }

    /// The recording.
    pub fn recording(&self) -> &Recording {
        &self.rec
    }

    /// The config.
    pub fn config(&self) -> &ReplayConfig {
        &self.config
    }

    /// How long one pass takes at this speed.
    pub fn pass_duration(&self) -> Duration {
        Duration::from_nanos(self.pass_ns)
    }

    /// The scrape whose turn it is `elapsed` after the start, and whether the replay is over
    /// (never with `looped`). After the end, the last scrape stays current.
    pub fn turn_at(&self, elapsed: Duration) -> (usize, bool) {
        let mut t = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let done = !self.config.looped && t >= self.pass_ns;
        if self.config.looped {
            t %= self.pass_ns.max(1);
        }
        let k = self
            .starts_ns
            .partition_point(|&s| s <= t)
            .saturating_sub(1);
        (k, done)
    }

    /// What scrape `k` answers.
    pub fn answer(&self, k: usize) -> Answer {
        let Some(s) = self.rec.scrapes.get(k) else {
            return Answer::Status(500);
        };
        let m = &s.meta;
        match m.status {
            // An `empty` scrape has no samples, so its rendered body is empty: 200 and
            // nothing, as recorded.
            ScrapeStatus::Ok | ScrapeStatus::Empty => Answer::Metrics,
            ScrapeStatus::HttpStatus => Answer::Status(
                m.http_status
                    .filter(|c| (100..=599).contains(c) && *c != 200)
                    .unwrap_or(500),
            ),
            ScrapeStatus::Other => Answer::Status(500),
            ScrapeStatus::Parse => Answer::Garbage,
            ScrapeStatus::Timeout => Answer::Stall,
            ScrapeStatus::Connect => Answer::Close,
            ScrapeStatus::Oversize => {
                let want = m
                    .body_bytes
                    .map_or(DEFAULT_BODY_CAP, |b| b.max(DEFAULT_BODY_CAP))
                    .saturating_add(1);
                Answer::Oversize(want.min(self.config.oversize_cap))
            }
        }
    }

    /// The text body of scrape `k` (empty for a failed one).
    pub fn body(&self, k: usize) -> String {
        self.rec
            .scrapes
            .get(k)
            .map(|s| render_scrape(&self.rec, s))
            .unwrap_or_default()
    }

    /// The `/version` answer, when the recording knows the vLLM version.
    pub fn version_body(&self) -> Option<String> {
        let v = self.rec.manifest.vllm_version.as_deref()?;
        Some(serde_json::json!({ "version": v }).to_string())
    }
}
