//! Per-scrape extraction: one pass over a scrape's samples, dispatching on the role resolved
//! once per recording. No strings, no allocation once the buffer exists.

use super::resolve::{CounterKind, HistKind, Layout, Resolved, Role};
use crate::recording::StoredSample;

/// The values one scrape gave, combined across engines and other labels.
#[derive(Debug, Clone, PartialEq)]
pub struct ScrapeValues {
    /// Requests running, summed over engines.
    pub running: Option<f64>,
    /// Requests waiting, summed over engines.
    pub waiting: Option<f64>,
    /// Requests swapped, summed over engines.
    pub swapped: Option<f64>,
    /// KV-cache usage as vLLM reports it (fraction 0-1), max over engines.
    pub kv_usage: Option<f64>,
    /// The concurrency cap, summed over engines (comparable with summed `running`).
    pub max_num_seqs: Option<f64>,
    /// Requests waiting for a reason other than capacity, summed over engines.
    pub waiting_deferred: Option<f64>,
    /// 1 when every engine is awake, 0 when one sleeps (min over engines).
    pub engine_awake: Option<f64>,
    /// Cumulative values by slot (counters, histogram sums, counts and buckets).
    slots: Vec<f64>,
    /// How many series (finite samples) each slot received.
    present: Vec<u32>,
    /// Per counter series (`Resolved::counters`): its finite value in this scrape, `NaN` when
    /// the scrape had none.
    counter_values: Vec<f64>,
    /// Per series: the extraction (`epoch`) that last saw it, to take only the first of a
    /// series sent twice in one body.
    seen: Vec<u32>,
    epoch: u32,
    /// Samples of this scrape skipped as repeats of a series already seen in it.
    pub duplicates: u32,
    /// The same gauges per data-parallel engine, in the order of `mapping.engines`; empty with
    /// fewer than two engines (per-engine counters come from the per-series values).
    pub per_engine: Vec<EngineValues>,
}

/// One engine's share of a scrape.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EngineValues {
    /// Requests running on this engine.
    pub running: Option<f64>,
    /// Requests waiting on this engine.
    pub waiting: Option<f64>,
    /// This engine's KV-cache usage (fraction 0-1).
    pub kv_usage: Option<f64>,
}

impl ScrapeValues {
    /// An empty buffer sized for a recording's layout.
    pub fn new(resolved: &Resolved) -> ScrapeValues {
        let n = resolved.layout.n_slots;
        ScrapeValues {
            running: None,
            waiting: None,
            swapped: None,
            kv_usage: None,
            max_num_seqs: None,
            waiting_deferred: None,
            engine_awake: None,
            slots: vec![0.0; n],
            present: vec![0; n],
            counter_values: vec![f64::NAN; resolved.counters.len()],
            seen: vec![0; resolved.roles.len()],
            epoch: 0,
            duplicates: 0,
            per_engine: vec![EngineValues::default(); resolved.n_engines_tracked()],
        }
    }

    fn clear(&mut self) {
        self.running = None;
        self.waiting = None;
        self.swapped = None;
        self.kv_usage = None;
        self.max_num_seqs = None;
        self.waiting_deferred = None;
        self.engine_awake = None;
        self.slots.fill(0.0);
        self.present.fill(0);
        self.counter_values.fill(f64::NAN);
        self.duplicates = 0;
        self.per_engine.fill(EngineValues::default());
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            // Wrapped: forget every stamp so none reads as seen.
            self.seen.fill(0);
            self.epoch = 1;
        }
    }

    /// The cumulative value of a slot, `None` when no sample fed it.
    pub(crate) fn slot(&self, i: usize) -> Option<f64> {
        (*self.present.get(i)? > 0).then(|| self.slots[i])
    }

    /// A counter's cumulative value, summed over its series.
    pub fn counter(&self, c: CounterKind) -> Option<f64> {
        self.slot(Layout::counter_slot(c))
    }

    /// One counter series' value in this scrape, by its position in `Resolved::counters`;
    /// `None` when the scrape had no finite value for it.
    pub(crate) fn counter_series_value(&self, pos: usize) -> Option<f64> {
        self.counter_values
            .get(pos)
            .copied()
            .filter(|v| v.is_finite())
    }

    /// A histogram's cumulative `(sum, count)`.
    pub fn hist_sum_count(&self, resolved: &Resolved, h: HistKind) -> (Option<f64>, Option<f64>) {
        match resolved.layout.hist(h) {
            Some(l) => (self.slot(l.sum), self.slot(l.count)),
            None => (None, None),
        }
    }
}

fn add(o: &mut Option<f64>, v: f64) {
    *o = Some(o.unwrap_or(0.0) + v);
}

impl Resolved {
    /// Engines tracked one by one: all of them when there are two or more, else none.
    pub fn n_engines_tracked(&self) -> usize {
        if self.mapping.engines.len() >= 2 {
            self.mapping.engines.len()
        } else {
            0
        }
    }

    /// Extracts one scrape into `out` (cleared first). Non-finite values (`NaN`, `±Inf`) are
    /// skipped: they stand for "no value", and one would poison a sum.
    pub fn extract(&self, samples: impl IntoIterator<Item = StoredSample>, out: &mut ScrapeValues) {
        out.clear();
        for s in samples {
            let Some(Some(role)) = self.roles.get(s.series as usize) else {
                continue;
            };
            // A series sent twice in one body (raw is raw: the recording keeps both): the
            // first counts, the repeat is counted as a duplicate and skipped.
            if let Some(stamp) = out.seen.get_mut(s.series as usize) {
                if *stamp == out.epoch {
                    out.duplicates += 1;
                    continue;
                }
                *stamp = out.epoch;
            }
            let v = s.value;
            if !v.is_finite() {
                continue;
            }
            if let Some(e) = self
                .engine_of
                .get(s.series as usize)
                .copied()
                .flatten()
                .and_then(|e| out.per_engine.get_mut(usize::from(e)))
            {
                match *role {
                    Role::Running => add(&mut e.running, v),
                    Role::Waiting => add(&mut e.waiting, v),
                    Role::KvUsage => e.kv_usage = Some(e.kv_usage.map_or(v, |k| k.max(v))),
                    _ => {}
                }
            }
            match *role {
                Role::Slot(i) => {
                    if let Some(pos) = self.counter_of.get(s.series as usize).copied().flatten() {
                        if let Some(c) = out.counter_values.get_mut(pos as usize) {
                            *c = v;
                        }
                    }
                    let i = i as usize;
                    if let (Some(slot), Some(p)) = (out.slots.get_mut(i), out.present.get_mut(i)) {
                        *slot += v;
                        *p += 1;
                    }
                }
                Role::Running => add(&mut out.running, v),
                Role::Waiting => add(&mut out.waiting, v),
                Role::Swapped => add(&mut out.swapped, v),
                Role::MaxNumSeqs => add(&mut out.max_num_seqs, v),
                Role::WaitingDeferred => add(&mut out.waiting_deferred, v),
                Role::EngineAwake => {
                    out.engine_awake = Some(out.engine_awake.map_or(v, |a| a.min(v)))
                }
                Role::KvUsage => out.kv_usage = Some(out.kv_usage.map_or(v, |k| k.max(v))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::promtext::MetricType;
    use crate::vllm::names::*;
    use crate::vllm::resolve;
    use crate::vllm::testutil::{sample, series};

    #[test]
    fn two_engines_sum_counters_and_running_but_max_kv() {
        let s = vec![
            series(
                NUM_REQUESTS_RUNNING,
                MetricType::Gauge,
                NUM_REQUESTS_RUNNING,
                r#"engine="0""#,
                None,
            ),
            series(
                NUM_REQUESTS_RUNNING,
                MetricType::Gauge,
                NUM_REQUESTS_RUNNING,
                r#"engine="1""#,
                None,
            ),
            series(
                KV_CACHE_USAGE_PERC,
                MetricType::Gauge,
                KV_CACHE_USAGE_PERC,
                r#"engine="0""#,
                None,
            ),
            series(
                KV_CACHE_USAGE_PERC,
                MetricType::Gauge,
                KV_CACHE_USAGE_PERC,
                r#"engine="1""#,
                None,
            ),
            series(
                REQUEST_SUCCESS_TOTAL,
                MetricType::Counter,
                REQUEST_SUCCESS_TOTAL,
                r#"engine="0",finished_reason="stop",model_name="m""#,
                None,
            ),
            series(
                REQUEST_SUCCESS_TOTAL,
                MetricType::Counter,
                REQUEST_SUCCESS_TOTAL,
                r#"engine="0",finished_reason="length",model_name="m""#,
                None,
            ),
            series(
                REQUEST_SUCCESS_TOTAL,
                MetricType::Counter,
                REQUEST_SUCCESS_TOTAL,
                r#"engine="1",finished_reason="stop",model_name="m""#,
                None,
            ),
            series(
                "http_requests_total",
                MetricType::Counter,
                "http_requests_total",
                "",
                None,
            ),
        ];
        let r = resolve(&s);
        let mut out = ScrapeValues::new(&r);
        let samples = vec![
            sample(0, 3.0),
            sample(1, 4.0),
            sample(2, 0.25),
            sample(3, 0.75),
            sample(4, 10.0),
            sample(5, 2.0),
            sample(6, 5.0),
            sample(7, 99.0),
            sample(2, f64::NAN),
        ];
        r.extract(samples.iter().copied(), &mut out);
        assert_eq!(out.running, Some(7.0));
        assert_eq!(out.kv_usage, Some(0.75));
        assert_eq!(out.counter(CounterKind::RequestSuccess), Some(17.0));
        assert_eq!(out.counter(CounterKind::GenerationTokens), None);
        assert_eq!(out.waiting, None);
        // The buffer is reused: a second, empty scrape leaves nothing behind.
        r.extract(std::iter::empty(), &mut out);
        assert_eq!(out.running, None);
        assert_eq!(out.counter(CounterKind::RequestSuccess), None);
    }
}
