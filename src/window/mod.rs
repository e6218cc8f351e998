//! Windows rebuilt from a recording's raw scrapes: ~2 s each, anchored on the first successful
//! scrape's monotonic time and computed in integer nanoseconds.
//!
//! Consecutive windows share their boundary scrape: a window's first scrape is the previous
//! window's last good one, so every counter delta telescopes and the sum of the windows'
//! deltas equals the whole recording's delta. A stretch without good scrapes (server down) is
//! therefore absorbed by the next window that has one, whose duration shows the gap. Failed
//! scrapes are counted and skipped. GPU polls join the window whose nominal span
//! `[start, end)` holds their completion time.
//!
//! Windows are computed in parallel (rayon); each is a pure function of its own scrapes, and
//! they are collected in order, so the result does not depend on the thread count.

mod build;
mod compute;
mod host;
pub mod quantile;

pub use compute::{
    counter_rate, skew_s, time_weighted_mean, EngineWindow, GpuWindow, HistWindow, Window,
};

use crate::recording::{Deferred, ReadProgress, Recording, Scrape};
use crate::units::{MonoNs, WallNs};
use crate::vllm::{resolve, Resolved, VllmMapping};
#[cfg(test)]
use compute::WindowInput;
use serde::Serialize;

/// Default window length: the spec's "Per-window collection (~2s)".
pub const DEFAULT_WINDOW_NS: i64 = 2_000_000_000;

/// Largest gap between the last scrape and the last GPU poll of a window for rules that
/// cross-reference both sources (spec "Data", Cadence: "more than 1 second apart" → skipped).
pub const MAX_SOURCE_SKEW_NS: i64 = 1_000_000_000;

/// A bound is refused beyond this many windows (a corrupt timestamp must not allocate
/// without limit): 10 M windows of 2 s is over seven months.
const MAX_WINDOWS: i64 = 10_000_000;

/// One end of the `--from`/`--to` range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeBound {
    /// Offset from the recording's start (monotonic).
    Offset(MonoNs),
    /// Absolute wall-clock time (UTC).
    Wall(WallNs),
}

/// How windows are built.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowOptions {
    /// Window length, ns (default 2 s).
    pub window_ns: i64,
    /// Consider only scrapes and polls completed at or after this.
    pub from: Option<TimeBound>,
    /// Consider only scrapes and polls completed at or before this.
    pub to: Option<TimeBound>,
}

impl Default for WindowOptions {
    fn default() -> Self {
        WindowOptions {
            window_ns: DEFAULT_WINDOW_NS,
            from: None,
            to: None,
        }
    }
}

/// Why windows could not be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum WindowError {
    /// The window length is zero or negative.
    #[error("window length must be positive, got {0} ns")]
    BadLength(i64),
    /// The recording spans more windows than can be held.
    #[error("the recording spans {windows} windows of {window_ns} ns (at most {MAX_WINDOWS})")]
    TooManyWindows {
        /// Windows it would take.
        windows: i64,
        /// The window length.
        window_ns: i64,
    },
    /// `--from` is after `--to`.
    #[error("--from is after --to; {0}")]
    InvertedRange(RecordingSpan),
    /// The range holds no scrape attempt.
    #[error("--from/--to select no scrape; {0}")]
    EmptyRange(RecordingSpan),
}

/// The span of a recording's scrape attempts, for range errors.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingSpan {
    /// First attempt's completion, seconds after the recording started.
    pub first_s: f64,
    /// Last attempt's completion, seconds after the recording started.
    pub last_s: f64,
    /// The same on the wall clock of the start anchor.
    pub first_at: String,
    /// The same on the wall clock of the start anchor.
    pub last_at: String,
}

impl std::fmt::Display for RecordingSpan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the recording's scrapes run from {:.3} s ({}) to {:.3} s ({})",
            self.first_s, self.first_at, self.last_s, self.last_at
        )
    }
}

/// A recording cut into windows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowSet {
    /// Window length, ns.
    pub window_ns: i64,
    /// Where window 0 starts: the first successful scrape in range (the first attempt when
    /// none succeeded); `None` when no scrape is in range.
    pub anchor_mono: Option<MonoNs>,
    /// Scrape attempts in range.
    pub scrapes_in_range: u64,
    /// Successful scrapes in range whose whole body was read: the ones analysis uses.
    pub scrapes_ok: u64,
    /// Scrapes answered 200 with no sample at all, counted as failed.
    pub scrapes_empty: u64,
    /// Successful scrapes whose sample rows were partly or wholly lost (a truncated, damaged
    /// or missing samples file), counted as failed.
    pub scrapes_rows_lost: u64,
    /// Whether the recording holds any GPU reading at all (any poll with any field). Without
    /// one, the aggregate's no-GPU activity fallback applies.
    pub has_gpu_data: bool,
    /// GPU polls in the recording, in range or not.
    pub gpu_polls: u64,
    /// GPU polls that reached the window builder after their window was computed, and so are
    /// in no window: only a GPU file whose rows complete earlier than its clock column's
    /// minimum says, which a reader that loads GPU files by time cannot place.
    pub gpu_polls_late: u64,
    /// Which vLLM metrics served which quantity, and the cache configuration.
    pub mapping: VllmMapping,
    /// The first good scrape the windows used.
    pub first_scrape: Option<ScrapeMark>,
    /// The last good scrape the windows used.
    pub last_scrape: Option<ScrapeMark>,
    /// Every window in time order, empty ones included, unless they were handed over and not
    /// kept (see [`build_windows_streaming`]).
    pub windows: Vec<Window>,
}

/// Which scrape, and when it completed on both clocks: what the report says of the first and
/// the last scrape analysed, kept so that the scrapes themselves need not be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ScrapeMark {
    /// [`crate::recording::ScrapeMeta::seq`].
    pub seq: u64,
    /// [`crate::recording::ScrapeMeta::completed_mono`].
    pub completed_mono: MonoNs,
    /// [`crate::recording::ScrapeMeta::completed_at`].
    pub completed_at: WallNs,
}

/// A bound on the monotonic clock. An RFC 3339 time is mapped through the recording's start
/// anchor (the wall clock read beside monotonic 0), never compared with each scrape's own wall
/// clock: a clock step during the recording must not move the range.
pub fn bound_mono(b: &TimeBound, start_wall: WallNs) -> MonoNs {
    match b {
        TimeBound::Offset(m) => *m,
        TimeBound::Wall(w) => MonoNs(w.0.saturating_sub(start_wall.0)),
    }
}

/// Whether a reading completed at `mono` lies inside `--from/--to`.
pub fn in_range(opts: &WindowOptions, start_wall: WallNs, mono: MonoNs) -> bool {
    let after = |b: &TimeBound| mono >= bound_mono(b, start_wall);
    let before = |b: &TimeBound| mono <= bound_mono(b, start_wall);
    opts.from.as_ref().is_none_or(after) && opts.to.as_ref().is_none_or(before)
}

/// What the window stage plans its windows from, before any sample is read: one pass over
/// every scrape attempt's completion time and whether it looks usable (in `seq` order).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Plan {
    /// The first and the last attempt, in range or not.
    first: Option<MonoNs>,
    last: Option<MonoNs>,
    /// The first attempt in range that looks usable, else the first in range.
    pub(crate) anchor: Option<i64>,
    /// The latest completion of an attempt in range.
    pub(crate) last_attempt: Option<i64>,
}

impl Plan {
    pub(crate) fn of(
        attempts: impl Iterator<Item = (MonoNs, bool)>,
        opts: &WindowOptions,
        start_wall: WallNs,
    ) -> Plan {
        let mut p = Plan::default();
        let (mut first_usable, mut first_in_range) = (None, None);
        for (t, usable) in attempts {
            p.first.get_or_insert(t);
            p.last = Some(t);
            if in_range(opts, start_wall, t) {
                first_in_range.get_or_insert(t.0);
                if usable {
                    first_usable.get_or_insert(t.0);
                }
                p.last_attempt = Some(p.last_attempt.map_or(t.0, |l: i64| l.max(t.0)));
            }
        }
        p.anchor = first_usable.or(first_in_range);
        p
    }
}

/// Refuses a selection that selects nothing: `--from` after `--to`, or a range that holds no
/// scrape attempt of a recording that has some. The error names the recording's span.
pub(crate) fn check_range(
    plan: &Plan,
    opts: &WindowOptions,
    start: WallNs,
) -> Result<(), WindowError> {
    let (Some(first), Some(last)) = (plan.first, plan.last) else {
        return Ok(());
    };
    let span = || RecordingSpan {
        first_s: first.as_secs_f64(),
        last_s: last.as_secs_f64(),
        first_at: WallNs(start.0 + first.0).to_rfc3339_millis(),
        last_at: WallNs(start.0 + last.0).to_rfc3339_millis(),
    };
    if let (Some(f), Some(t)) = (&opts.from, &opts.to) {
        if bound_mono(f, start) > bound_mono(t, start) {
            return Err(WindowError::InvertedRange(span()));
        }
    }
    if (opts.from.is_some() || opts.to.is_some()) && plan.last_attempt.is_none() {
        return Err(WindowError::EmptyRange(span()));
    }
    Ok(())
}

/// Resolves the recording's series and builds its windows.
pub fn build_windows(rec: &Recording, opts: &WindowOptions) -> Result<WindowSet, WindowError> {
    let resolved = resolve(&rec.series);
    build_windows_resolved(rec, &resolved, opts)
}

/// Builds windows with series already resolved (lets a caller reuse one resolution).
pub fn build_windows_resolved(
    rec: &Recording,
    resolved: &Resolved,
    opts: &WindowOptions,
) -> Result<WindowSet, WindowError> {
    let attempts = rec
        .scrapes
        .iter()
        .map(|s| (s.meta.completed_mono, s.is_usable()));
    let mut b = build::Builder::new(rec, attempts, resolved, opts, true)?;
    b.feed_polls(rec.gpu_polls.iter().cloned());
    b.feed(&rec.scrapes, 0, rec.scrapes.len(), &mut |_| {});
    Ok(b.finish(&rec.scrapes, 0, &mut |_| {}))
}

/// Builds windows from a recording whose samples are read as the windows need them: a few
/// segments at a time, keeping the series `resolved` gives a role, each batch dropped once no
/// window still open needs it; GPU polls too, each held only until its window is computed;
/// and the scrapes themselves, each released (with its packed metadata) once no open window
/// needs it. Memory then holds what the caller keeps of the windows and of the scrapes, not
/// the recording. The windows are [`build_windows_resolved`]'s, each handed to `on_window`
/// in index order as soon as it is computed (a caller may fold it and then drop what it
/// holds); the set keeps them only with `keep_full`. Every scrape is handed to `on_scrape`
/// once, in `seq` order, with its final `rows_read`, before it goes. `deferred.recording`
/// comes back with no scrapes and no GPU polls.
pub fn build_windows_streaming(
    deferred: &mut Deferred,
    resolved: &Resolved,
    opts: &WindowOptions,
    keep_full: bool,
    progress: &dyn Fn(ReadProgress),
    on_scrape: &mut dyn FnMut(&Scrape),
    on_window: &mut dyn FnMut(&mut Window),
) -> Result<WindowSet, WindowError> {
    let keep = resolved.read_mask();
    // Every sample the builder reads, it reads through `Scrape::each_sample`.
    deferred.samples_in_place();
    let mut b = build::Builder::new(
        &deferred.recording,
        deferred.attempts(),
        resolved,
        opts,
        keep_full,
    )?;
    loop {
        let complete = deferred.load_next(&keep, progress);
        // The polls loaded with these samples: the window builder keeps them until their
        // window is computed, so they are not held twice.
        b.feed_polls(std::mem::take(&mut deferred.recording.gpu_polls));
        let (scrapes, base) = (&deferred.recording.scrapes, deferred.base());
        b.feed(scrapes, base, complete, on_scrape);
        b.hand_over_new(on_window);
        deferred.release_below(b.needed_from());
        if deferred.is_done() {
            break;
        }
    }
    let (scrapes, base) = (&deferred.recording.scrapes, deferred.base());
    b.feed(scrapes, base, deferred.scrape_count(), on_scrape);
    let set = b.finish(scrapes, base, on_window);
    deferred.release_below(deferred.scrape_count());
    Ok(set)
}

/// A window set around hand-made windows (for tests elsewhere): 2 s windows anchored at 0,
/// no metric mapping.
#[cfg(test)]
pub(crate) fn set_of(windows: Vec<Window>, has_gpu_data: bool) -> WindowSet {
    WindowSet {
        window_ns: DEFAULT_WINDOW_NS,
        anchor_mono: Some(MonoNs(0)),
        scrapes_in_range: 0,
        scrapes_ok: 0,
        scrapes_empty: 0,
        scrapes_rows_lost: 0,
        has_gpu_data,
        gpu_polls: 0,
        gpu_polls_late: 0,
        mapping: VllmMapping {
            quantities: Vec::new(),
            cache_config: Default::default(),
            engines: Vec::new(),
        },
        first_scrape: None,
        last_scrape: None,
        windows,
    }
}

/// A window with no scrape and no poll: every value `None` (for tests elsewhere).
#[cfg(test)]
pub(crate) fn blank_window(index: u32) -> Window {
    let start = i64::from(index) * DEFAULT_WINDOW_NS;
    let inp = WindowInput {
        index,
        start: MonoNs(start),
        end: MonoNs(start + DEFAULT_WINDOW_NS),
        scrapes: Vec::new(),
        failed: 0,
        polls: Vec::new(),
    };
    compute::compute(&inp, &resolve(&[]), &[], &[])
}

#[cfg(test)]
mod tests;
