//! The window builder, fed scrapes in `seq` order as their samples arrive: a whole recording
//! at once ([`super::build_windows_resolved`]) or a few segments at a time
//! ([`super::build_windows_streaming`]). Either way each window is computed once its last
//! scrape has been fed, from that window's scrapes alone, so both give the same windows; and
//! a streamed recording's samples can be dropped as soon as no open window needs them.

use super::compute::{self, WindowInput};
use super::Window;
use super::{
    check_range, in_range, Plan, ScrapeMark, WindowError, WindowOptions, WindowSet, MAX_WINDOWS,
};
use crate::recording::{GpuPoll, Recording, Scrape, StoredSample};
use crate::units::{MonoNs, WallNs};
use crate::vllm::Resolved;
use rayon::prelude::*;
use std::collections::{BTreeMap, VecDeque};

/// Windows ahead of the next to close whose polls [`Builder`] keeps in a ring (the rest in
/// a map). Ours: a GPU file is a minute, 30 windows of 2 s, so polls land within a few dozen
/// windows of the one closing; a ring that long costs nothing, and a poll stamped far ahead
/// (a damaged clock) does not make it grow.
const NEAR_WINDOWS: usize = 1024;

/// A window being filled: the indices (into `Recording::scrapes`) of its good scrapes, the
/// previous window's last good one first when there is one.
struct Open {
    k: i64,
    good: Vec<usize>,
    failed: u32,
}

/// A window whose scrapes are all fed, waiting to be computed.
struct Ready {
    k: i64,
    good: Vec<usize>,
    failed: u32,
    polls: Vec<GpuPoll>,
}

pub(super) struct Builder<'r> {
    resolved: &'r Resolved,
    opts: WindowOptions,
    start_wall: WallNs,
    len: i64,
    /// Scrapes fed so far: `scrapes[..fed]`.
    fed: usize,
    /// The first good scrape in range: where window 0 starts.
    anchor: Option<i64>,
    /// The first attempt in range, and the failed attempts before the anchor (window 0's).
    first_attempt: Option<i64>,
    failed_before_anchor: u32,
    k_prev: i64,
    open: Option<Open>,
    boundary: Option<usize>,
    /// GPU polls fed before the anchor was known, in the order fed.
    unplaced: Vec<GpuPoll>,
    /// GPU polls from the anchor on, in range, in the order fed, for the windows not closed
    /// yet: `near[i]` is window `closed_below + i`'s, for the next [`NEAR_WINDOWS`]; `far`
    /// holds those of later windows (fed before their window came near).
    near: VecDeque<Vec<GpuPoll>>,
    far: BTreeMap<i64, Vec<GpuPoll>>,
    /// The last attempt in range: polls after its window join none.
    last_attempt: Option<i64>,
    /// Polls fed after their window had closed (only if a GPU file's polls came later than
    /// its earliest completion said): not in any window.
    late_polls: u64,
    /// Whether any poll fed held a reading (see [`WindowSet::has_gpu_data`]).
    has_gpu_data: bool,
    /// Polls fed.
    gpu_polls: u64,
    /// The next window to close: polls of earlier windows come too late.
    closed_below: i64,
    /// [`compute::first_seen`], learnt scrape by scrape: final for every scrape fed.
    born: Vec<u64>,
    /// The series a window reads in every scrape ([`Resolved::every_scrape_mask`]).
    every_scrape: Vec<bool>,
    unborn: usize,
    ready: Vec<Ready>,
    windows: Vec<Window>,
    /// Whether `windows` keeps every window once handed over (else each goes once handed).
    keep_full: bool,
    host: super::host::HostCpu,
    /// The first and the last good scrape the windows computed so far used.
    first_scrape: Option<ScrapeMark>,
    last_scrape: Option<ScrapeMark>,
    /// Windows handed to the caller so far: `windows[..handed]`.
    handed: usize,
    /// The attempts fed in range, as [`WindowSet`] counts them.
    counts: Counts,
    /// The completion times of the attempts in range fed while no scrape was good: the
    /// windows of a recording none of whose scrapes is good count them from the first.
    unanchored: Vec<i64>,
}

/// Attempts in range by how they went (see [`WindowSet`]).
#[derive(Default)]
struct Counts {
    in_range: u64,
    ok: u64,
    empty: u64,
    rows_lost: u64,
}

impl<'r> Builder<'r> {
    /// A builder for `rec`, whose every scrape's completion time and whether it looks usable
    /// now are `attempts`, in `seq` order (its scrapes and samples come later, through
    /// [`Builder::feed`]). Refuses a bad length, a range that selects nothing and a span of
    /// too many windows before any sample is needed.
    pub fn new(
        rec: &Recording,
        attempts: impl Iterator<Item = (MonoNs, bool)>,
        resolved: &'r Resolved,
        opts: &WindowOptions,
        keep_full: bool,
    ) -> Result<Builder<'r>, WindowError> {
        let len = opts.window_ns;
        if len <= 0 {
            return Err(WindowError::BadLength(len));
        }
        let start_wall = WallNs(rec.manifest.started_at_ns);
        let plan = Plan::of(attempts, opts, start_wall);
        check_range(&plan, opts, start_wall)?;
        // Windows from the first scrape that looks good now (a later read can only make the
        // real anchor later and the count smaller) to the last attempt.
        let (anchor, last_attempt) = (plan.anchor, plan.last_attempt);
        let mut expected = 0;
        if let (Some(a), Some(last)) = (anchor, last_attempt) {
            let n = last.saturating_sub(a).div_euclid(len).max(0) + 1;
            if n > MAX_WINDOWS {
                return Err(WindowError::TooManyWindows {
                    windows: n,
                    window_ns: len,
                });
            }
            expected = usize::try_from(n).unwrap_or(0);
        }
        Ok(Builder {
            resolved,
            opts: opts.clone(),
            start_wall,
            len,
            fed: 0,
            anchor: None,
            first_attempt: None,
            failed_before_anchor: 0,
            k_prev: 0,
            open: None,
            boundary: None,
            unplaced: Vec::new(),
            near: VecDeque::new(),
            far: BTreeMap::new(),
            last_attempt,
            late_polls: 0,
            has_gpu_data: false,
            gpu_polls: 0,
            closed_below: 0,
            born: vec![u64::MAX; resolved.counters.len()],
            every_scrape: resolved.every_scrape_mask(),
            unborn: resolved.counters.len(),
            ready: Vec::new(),
            // At most this many (the real anchor can only be later): reserved once, so that
            // a long recording's windows are not copied as the vector grows, which at the
            // last doubling holds them twice.
            windows: Vec::with_capacity(if keep_full { expected } else { 0 }),
            keep_full,
            host: super::host::HostCpu::new(rec),
            first_scrape: None,
            last_scrape: None,
            handed: 0,
            counts: Counts::default(),
            unanchored: Vec::new(),
        })
    }

    fn index_of(&self, anchor: i64, t: i64) -> i64 {
        t.saturating_sub(anchor).div_euclid(self.len).max(0)
    }

    /// Sets the anchor and puts the polls fed so far into their windows.
    fn anchor_at(&mut self, anchor: i64) {
        self.anchor = Some(anchor);
        for p in std::mem::take(&mut self.unplaced) {
            self.place(anchor, p);
        }
    }

    /// Feeds GPU polls, in any order and as many at a time as come: each joins the window its
    /// completion falls in (from the anchor on, in range). A window's polls must all be fed
    /// before a scrape of a later window is.
    pub fn feed_polls(&mut self, polls: impl IntoIterator<Item = GpuPoll>) {
        for p in polls {
            self.gpu_polls += 1;
            self.has_gpu_data |= holds_a_reading(&p);
            match self.anchor {
                Some(anchor) => self.place(anchor, p),
                None => self.unplaced.push(p),
            }
        }
    }

    fn place(&mut self, anchor: i64, p: GpuPoll) {
        if p.completed_mono.0 < anchor || !in_range(&self.opts, self.start_wall, p.completed_mono) {
            return;
        }
        let k = self.index_of(anchor, p.completed_mono.0);
        if k < self.closed_below {
            self.late_polls += 1;
            return;
        }
        // After the last attempt's window: no window will take it.
        if self
            .last_attempt
            .is_some_and(|t| k > self.index_of(anchor, t))
        {
            return;
        }
        match usize::try_from(k - self.closed_below) {
            Ok(i) if i < NEAR_WINDOWS => {
                if self.near.len() <= i {
                    self.near.resize_with(i + 1, Vec::new);
                }
                self.near[i].push(p);
            }
            _ => self.far.entry(k).or_default().push(p),
        }
    }

    /// Closes the open window and opens the empty ones up to `k`.
    fn close_until(&mut self, k: i64) {
        while let Some(open) = self.open.take() {
            if open.k >= k {
                self.open = Some(open);
                return;
            }
            // Fed earlier ones first: a window's far polls came before its near ones.
            let mut polls = self.far.remove(&open.k).unwrap_or_default();
            polls.extend(self.near.pop_front().unwrap_or_default());
            // Stable: a window's polls in (seq, gpu) order, whatever order they were fed in.
            polls.sort_by_key(|p| (p.seq, p.gpu_index));
            self.closed_below = open.k + 1;
            self.ready.push(Ready {
                k: open.k,
                good: open.good,
                failed: open.failed,
                polls,
            });
            self.open = Some(Open {
                k: open.k + 1,
                good: Vec::new(),
                failed: 0,
            });
        }
    }

    /// The first scrape that a later window may still read: scrapes below it may drop their
    /// samples.
    pub fn needed_from(&self) -> usize {
        let open = self.open.as_ref().and_then(|o| o.good.first().copied());
        [open, self.boundary, Some(self.fed)]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(self.fed)
    }

    /// Feeds the scrapes from the next not fed up to index `upto` (every one holding all its
    /// samples), each handed to `on_scrape` in order too, and computes the windows they
    /// complete. `scrapes` holds the recording's scrapes from index `base` on, at least up to
    /// `upto` and from [`Builder::needed_from`].
    pub fn feed(
        &mut self,
        scrapes: &[Scrape],
        base: usize,
        upto: usize,
        on_scrape: &mut dyn FnMut(&Scrape),
    ) {
        let upto = upto.min(base + scrapes.len());
        for j in self.fed.max(base)..upto {
            let s = &scrapes[j - base];
            on_scrape(s);
            let usable = s.is_usable();
            if usable && self.unborn > 0 {
                self.learn_births(s);
            }
            let t = s.meta.completed_mono.0;
            if !in_range(&self.opts, self.start_wall, s.meta.completed_mono) {
                continue;
            }
            self.counts.in_range += 1;
            self.counts.ok += u64::from(usable);
            self.counts.empty += u64::from(s.is_empty_body());
            self.counts.rows_lost += u64::from(s.rows_lost().is_some());
            self.first_attempt.get_or_insert(t);
            let anchor = match self.anchor {
                Some(a) => a,
                None if !usable => {
                    self.failed_before_anchor += 1;
                    self.unanchored.push(t);
                    continue;
                }
                None => {
                    self.unanchored = Vec::new();
                    self.anchor_at(t);
                    self.open = Some(Open {
                        k: 0,
                        good: Vec::new(),
                        failed: self.failed_before_anchor,
                    });
                    t
                }
            };
            // Kept non-decreasing, so that windows are contiguous runs of the scrapes even if
            // a completion time ever stepped back.
            self.k_prev = self.k_prev.max(self.index_of(anchor, t));
            self.close_until(self.k_prev);
            let boundary = self.boundary;
            let Some(open) = self.open.as_mut() else {
                continue;
            };
            if !usable {
                open.failed += 1;
                continue;
            }
            if open.good.is_empty() {
                open.good.extend(boundary);
            }
            open.good.push(j);
            self.boundary = Some(j);
        }
        self.fed = self.fed.max(upto);
        self.compute_ready(scrapes, base);
    }

    fn learn_births(&mut self, s: &Scrape) {
        let (counter_of, born, unborn) =
            (&self.resolved.counter_of, &mut self.born, &mut self.unborn);
        let mut learn = |smp: StoredSample| {
            let pos = counter_of.get(smp.series as usize);
            if let Some(pos) = pos.copied().flatten() {
                if let Some(f) = born.get_mut(pos as usize).filter(|f| **f == u64::MAX) {
                    *f = s.meta.seq;
                    *unborn -= 1;
                }
            }
        };
        // Counters are among the series read in every scrape.
        match s.samples_among(&self.every_scrape) {
            Some(some) => some.for_each(&mut learn),
            None => s.each_sample().for_each(&mut learn),
        }
    }

    /// Computes the windows waiting, in parallel, in order (`scrapes` from index `base`).
    fn compute_ready(&mut self, scrapes: &[Scrape], base: usize) {
        let Some(anchor) = self.anchor else {
            return;
        };
        let mark = |i: usize| {
            let s = &scrapes[i - base];
            ScrapeMark {
                seq: s.meta.seq,
                completed_mono: s.meta.completed_mono,
                completed_at: s.meta.completed_at,
            }
        };
        for r in &self.ready {
            if let (Some(&a), Some(&b)) = (r.good.first(), r.good.last()) {
                self.first_scrape.get_or_insert_with(|| mark(a));
                self.last_scrape = Some(mark(b));
            }
        }
        let len = self.len;
        let (resolved, born, every) = (self.resolved, &self.born, &self.every_scrape);
        let done: Vec<_> = self
            .ready
            .par_iter()
            .map(|r| {
                let start = anchor.saturating_add(r.k.saturating_mul(len));
                let inp = WindowInput {
                    index: r.k as u32,
                    start: MonoNs(start),
                    end: MonoNs(start.saturating_add(len)),
                    scrapes: r.good.iter().map(|&i| &scrapes[i - base]).collect(),
                    failed: r.failed,
                    polls: r.polls.iter().collect(),
                };
                compute::compute(&inp, resolved, born, every)
            })
            .collect();
        self.windows.extend(done);
        self.ready.clear();
    }

    /// Hands each window computed since the last call to `f`, in index order; without
    /// `keep_full`, the window then goes.
    pub fn hand_over_new(&mut self, f: &mut dyn FnMut(&mut Window)) {
        for w in self.windows.get_mut(self.handed..).unwrap_or_default() {
            self.host.fill(w);
            f(w);
        }
        if self.keep_full {
            self.handed = self.windows.len();
        } else {
            self.windows.clear();
            self.handed = 0;
        }
    }

    /// The windows, once every scrape has been fed; those not handed over yet go to `f`.
    /// `scrapes` (from index `base`) holds those the windows not computed yet read.
    pub fn finish(
        mut self,
        scrapes: &[Scrape],
        base: usize,
        f: &mut dyn FnMut(&mut Window),
    ) -> WindowSet {
        if self.anchor.is_none() {
            // No good scrape in range: the windows of the failed attempts, from the first.
            if let Some(first) = self.first_attempt {
                self.anchor_at(first);
                self.open = Some(Open {
                    k: 0,
                    good: Vec::new(),
                    failed: 0,
                });
                for t in std::mem::take(&mut self.unanchored) {
                    let k = self.index_of(first, t);
                    self.k_prev = self.k_prev.max(k);
                    self.close_until(self.k_prev);
                    if let Some(open) = self.open.as_mut() {
                        open.failed += 1;
                    }
                }
            }
        }
        if let Some(k) = self.open.as_ref().map(|o| o.k) {
            self.close_until(k + 1);
            self.open = None;
        }
        self.compute_ready(scrapes, base);
        self.hand_over_new(f);
        WindowSet {
            window_ns: self.len,
            anchor_mono: self.anchor.map(MonoNs),
            scrapes_in_range: self.counts.in_range,
            scrapes_ok: self.counts.ok,
            scrapes_empty: self.counts.empty,
            scrapes_rows_lost: self.counts.rows_lost,
            has_gpu_data: self.has_gpu_data,
            gpu_polls: self.gpu_polls,
            gpu_polls_late: self.late_polls,
            mapping: self.resolved.mapping.clone(),
            first_scrape: self.first_scrape,
            last_scrape: self.last_scrape,
            windows: self.windows,
        }
    }
}

/// Whether a poll holds any reading at all (a poll whose every query failed holds none).
fn holds_a_reading(p: &GpuPoll) -> bool {
    let m = &p.metrics;
    m.util_pct.is_some()
        || m.mem_util_pct.is_some()
        || m.power_w.is_some()
        || m.vram_used_bytes.is_some()
        || m.vram_total_bytes.is_some()
        || m.temperature_c.is_some()
        || m.sm_clock_mhz.is_some()
        || m.sm_active_pct.is_some()
        || m.sm_occupancy_pct.is_some()
        || m.dram_bw_util_pct.is_some()
}
