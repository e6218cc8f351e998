//! Availability: whether the endpoint answered at all, before any question of how well the
//! server used its GPUs. A server that died, restarted or could not answer its scrapes in time
//! makes every later figure partial, so these findings rank above R1-R5 and lead the report.
//!
//! Three findings, each from the scrape attempts themselves (no window, no rule gate):
//! - **down**: a run of consecutive failed attempts (refused, timed out, an HTTP error, an empty
//!   or unparseable body) lasting at least [`DOWN_MIN_S`], with its start, its length, the
//!   failures by kind and whether the endpoint came back;
//! - **restarted**: the server's counters fell (a counter reset, seen by the windows);
//! - **struggling**: the endpoint answered, but slowly: the p99 of fetch time above
//!   [`STRUGGLING_FETCH_P99_SHARE`] of the interval, or at least [`STRUGGLING_MIN_TIMEOUTS`]
//!   timeouts making up [`STRUGGLING_MIN_TIMEOUT_SHARE`] of the attempts.
//!
//! Thresholds are ours (the spec has none): each says why next to it.

use crate::recording::{Scrape, ScrapeMeta, ScrapeStatus};
use crate::units::MonoNs;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Shortest outage reported as "down", seconds: one default 2 s window. Shorter runs of
/// failures are already counted as failed scrapes; a whole window without an answer is an
/// outage a reader must hear about first.
pub const DOWN_MIN_S: f64 = 2.0;

/// "Struggling" when fetch time p99 exceeds this share of the interval: past half the interval
/// a scrape is a real share of the server's attention and the next tick is at risk.
pub const STRUGGLING_FETCH_P99_SHARE: f64 = 0.5;

/// Fewest timeouts that make an endpoint "struggling": one or two are noise on a busy host.
pub const STRUGGLING_MIN_TIMEOUTS: u64 = 3;

/// Least share of attempts that timed out for "struggling" (1%): below that the figures are
/// barely touched.
pub const STRUGGLING_MIN_TIMEOUT_SHARE: f64 = 0.01;

/// Which availability problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AvailabilityKind {
    /// The endpoint stopped answering.
    Down,
    /// The server restarted (its counters reset).
    Restarted,
    /// The endpoint answered late or timed out.
    Struggling,
}

impl AvailabilityKind {
    /// A short title for output.
    pub fn title(self) -> &'static str {
        match self {
            AvailabilityKind::Down => "Endpoint down",
            AvailabilityKind::Restarted => "Server restarted",
            AvailabilityKind::Struggling => "Endpoint struggling",
        }
    }
}

/// One availability finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AvailabilityFinding {
    /// What happened.
    pub kind: AvailabilityKind,
    /// When it started, seconds after the first scrape analysed (monotonic).
    pub at_s: f64,
    /// How long it lasted, seconds (down: first to last failed attempt of the run).
    pub duration_s: Option<f64>,
    /// Whether the endpoint answered again afterwards (down only).
    pub recovered: Option<bool>,
    /// Attempts involved, by failure kind (`timeout`, `connect`, ...).
    pub by_kind: BTreeMap<String, u64>,
    /// One sentence saying what happened, with the figures.
    pub summary: String,
}

/// Whether an attempt failed on the endpoint's side (our own lost rows are not the server's
/// fault and are reported as data loss instead).
fn endpoint_failed(m: &ScrapeMeta) -> bool {
    m.status != ScrapeStatus::Ok || is_empty_body(m)
}

fn is_empty_body(m: &ScrapeMeta) -> bool {
    m.status == ScrapeStatus::Ok && m.sample_count == Some(0)
}

fn failure_kind(m: &ScrapeMeta) -> &'static str {
    if is_empty_body(m) {
        ScrapeStatus::Empty.as_str()
    } else {
        m.status.as_str()
    }
}

fn secs(ns: i64) -> f64 {
    ns as f64 / 1e9
}

fn kinds_text(by: &BTreeMap<String, u64>) -> String {
    by.iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A run of consecutive endpoint failures: from the first one's request to the last one's
/// completion, and its attempts by failure kind.
struct FailedRun {
    first: MonoNs,
    last: MonoNs,
    attempts: u64,
    by_kind: BTreeMap<&'static str, u64>,
}

/// The availability findings, folded from the attempts analysed one at a time in time order,
/// so that a long recording's attempts need not all be held: a week at 4 Hz is 2.4 M of
/// them. What it keeps grows only with the outages and with the successful fetch times
/// (8 bytes each), which the p99 needs.
#[derive(Default)]
pub struct AvailabilityFold {
    attempts: u64,
    first_completed: Option<MonoNs>,
    /// Runs of failures at least [`DOWN_MIN_S`] long, each with whether an attempt followed.
    down: Vec<(FailedRun, bool)>,
    run: Option<FailedRun>,
    timeouts: u64,
    first_timeout: Option<MonoNs>,
    fetch_ms: Vec<f64>,
}

impl AvailabilityFold {
    /// Folds the next attempt analysed.
    pub fn add(&mut self, m: &ScrapeMeta) {
        self.attempts += 1;
        self.first_completed.get_or_insert(m.completed_mono);
        if endpoint_failed(m) {
            let run = self.run.get_or_insert_with(|| FailedRun {
                first: m.requested_mono,
                last: m.completed_mono,
                attempts: 0,
                by_kind: BTreeMap::new(),
            });
            run.last = m.completed_mono;
            run.attempts += 1;
            *run.by_kind.entry(failure_kind(m)).or_insert(0) += 1;
        } else {
            self.close_run(true);
        }
        if m.status == ScrapeStatus::Timeout {
            self.timeouts += 1;
            self.first_timeout.get_or_insert(m.requested_mono);
        }
        if m.status == ScrapeStatus::Ok {
            self.fetch_ms
                .push(secs(m.completed_mono.0 - m.requested_mono.0) * 1000.0);
        }
    }

    /// Ends the run of failures, if any; `recovered` when an attempt followed it.
    fn close_run(&mut self, recovered: bool) {
        if let Some(run) = self.run.take() {
            if secs(run.last.0 - run.first.0) >= DOWN_MIN_S {
                self.down.push((run, recovered));
            }
        }
    }

    /// The findings, given the recording's interval and the times the windows saw a counter
    /// reset. `anchor` is where the times count from (the first analysed attempt's completion
    /// when `None`).
    pub fn finish(
        mut self,
        interval_ms: u64,
        resets: &[MonoNs],
        anchor: Option<MonoNs>,
    ) -> Vec<AvailabilityFinding> {
        self.close_run(false);
        let mut out = Vec::new();
        let Some(anchor) = anchor.or(self.first_completed) else {
            return out;
        };
        let at = |t: MonoNs| secs(t.0 - anchor.0);

        // Down: runs of consecutive endpoint failures.
        for (run, recovered) in &self.down {
            let span = secs(run.last.0 - run.first.0);
            let by_kind: BTreeMap<String, u64> = run
                .by_kind
                .iter()
                .map(|(k, n)| (k.to_string(), *n))
                .collect();
            let summary = format!(
                "the endpoint stopped answering at +{:.1} s for {:.1} s ({} attempts: {}){}",
                at(run.first),
                span,
                run.attempts,
                kinds_text(&by_kind),
                if *recovered {
                    " and then answered again"
                } else {
                    " and did not come back before the recording ended"
                }
            );
            out.push(AvailabilityFinding {
                kind: AvailabilityKind::Down,
                at_s: at(run.first),
                duration_s: Some(span),
                recovered: Some(*recovered),
                by_kind,
                summary,
            });
        }

        // Restarted: counter resets seen by the windows.
        if let Some(first) = resets.iter().min() {
            let summary = format!(
                "the server's counters reset {} time(s), first at +{:.1} s: it restarted, and \
                 the figures before and after describe two runs of it",
                resets.len(),
                at(*first)
            );
            out.push(AvailabilityFinding {
                kind: AvailabilityKind::Restarted,
                at_s: at(*first),
                duration_s: None,
                recovered: None,
                by_kind: BTreeMap::new(),
                summary,
            });
        }

        // Struggling: slow answers or timeouts.
        let fetch_ms = &mut self.fetch_ms;
        fetch_ms.sort_by(f64::total_cmp);
        let p99 = (!fetch_ms.is_empty()).then(|| {
            let rank = ((fetch_ms.len() as f64) * 0.99).ceil() as usize;
            fetch_ms[rank.clamp(1, fetch_ms.len()) - 1]
        });
        let interval = interval_ms as f64;
        let slow = p99.is_some_and(|p| interval > 0.0 && p > STRUGGLING_FETCH_P99_SHARE * interval);
        let n_timeouts = self.timeouts;
        let many_timeouts = n_timeouts >= STRUGGLING_MIN_TIMEOUTS
            && self.attempts > 0
            && n_timeouts as f64 / self.attempts as f64 >= STRUGGLING_MIN_TIMEOUT_SHARE;
        if slow || many_timeouts {
            let first = self.first_timeout.unwrap_or(anchor);
            let mut by_kind = BTreeMap::new();
            if n_timeouts > 0 {
                by_kind.insert(ScrapeStatus::Timeout.as_str().to_string(), n_timeouts);
            }
            let summary = format!(
                "fetch time p99 {} ms of a {interval_ms} ms interval, {n_timeouts} of {} \
                 attempts timed out (a busy API server; gaps in the figures)",
                p99.map_or("-".to_string(), |p| format!("{p:.0}")),
                self.attempts
            );
            out.push(AvailabilityFinding {
                kind: AvailabilityKind::Struggling,
                at_s: at(first),
                duration_s: None,
                recovered: None,
                by_kind,
                summary,
            });
        }
        out
    }
}

/// The availability findings of the attempts analysed (in time order), given the recording's
/// interval and the times the windows saw a counter reset. `anchor` is the first analysed
/// scrape's completion time. [`AvailabilityFold`] over `scrapes`.
pub fn assess(
    scrapes: &[&Scrape],
    interval_ms: u64,
    resets: &[MonoNs],
    anchor: Option<MonoNs>,
) -> Vec<AvailabilityFinding> {
    let mut fold = AvailabilityFold::default();
    for s in scrapes {
        fold.add(&s.meta);
    }
    fold.finish(interval_ms, resets, anchor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vllm::testutil::RecBuilder;

    fn run(b: &RecBuilder, resets: &[MonoNs]) -> Vec<AvailabilityFinding> {
        let rec = b.build();
        let scrapes: Vec<&Scrape> = rec.scrapes.iter().collect();
        assess(&scrapes, 250, resets, None)
    }

    #[test]
    fn a_dead_endpoint_is_down_and_says_it_did_not_come_back() {
        let mut b = RecBuilder::new();
        let g = b.gauge(crate::vllm::names::NUM_REQUESTS_RUNNING, "");
        for i in 0..20 {
            b.scrape(i * 250, &[(g, 1.0)]);
        }
        for i in 20..60 {
            b.failed(i * 250);
        }
        let f = run(&b, &[]);
        let down = f.iter().find(|f| f.kind == AvailabilityKind::Down).unwrap();
        assert_eq!(down.recovered, Some(false));
        assert_eq!(down.by_kind.get("timeout"), Some(&40));
        assert!((down.at_s - 4.999).abs() < 0.01, "{}", down.at_s);
        assert!(
            down.summary.contains("did not come back"),
            "{}",
            down.summary
        );
        // 40 timeouts of 60 attempts: struggling too.
        assert!(f.iter().any(|f| f.kind == AvailabilityKind::Struggling));
    }

    #[test]
    fn a_short_run_of_failures_is_not_an_outage_and_two_timeouts_are_noise() {
        let mut b = RecBuilder::new();
        let g = b.gauge(crate::vllm::names::NUM_REQUESTS_RUNNING, "");
        for i in 0..400 {
            if i == 100 || i == 101 {
                b.failed(i * 250);
            } else {
                b.scrape(i * 250, &[(g, 1.0)]);
            }
        }
        assert!(run(&b, &[]).is_empty());
    }

    #[test]
    fn resets_are_a_restart() {
        let mut b = RecBuilder::new();
        let g = b.gauge(crate::vllm::names::NUM_REQUESTS_RUNNING, "");
        for i in 0..10 {
            b.scrape(i * 250, &[(g, 1.0)]);
        }
        let f = run(&b, &[MonoNs(1_500_000_000)]);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].kind, AvailabilityKind::Restarted);
        assert!((f[0].at_s - 1.5).abs() < 1e-9);
    }
}
