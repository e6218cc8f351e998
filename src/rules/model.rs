//! The serializable result of the rules: findings, their root-cause groups, and why each rule
//! that did not surface stayed silent. Numbers are stored raw (f64/u64); only the `describe`
//! helpers and the report's renderers turn them into text.

use serde::{Deserialize, Serialize};

/// The five rules of the spec ("Rules"). Ordered by id, which breaks ranking ties.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RuleId {
    /// Under-batching: the scheduler runs far below its cap with no backlog.
    R1,
    /// KV-cache pressure: the KV pool is nearly full or preempting.
    R2,
    /// Low prefix reuse: prompts share too little cached prefix.
    R3,
    /// OOM risk: the weights do not fit the GPUs at this tensor-parallel degree.
    R4,
    /// Concurrency saturation: running pinned at `max_num_seqs` with a queue.
    R5,
    /// Prefill-bound: long prompts, short outputs, the windows spent in prefill.
    R6,
    /// Right-sizing: the GPUs idle at low power and memory; a cheaper GPU would carry the load.
    R7,
    /// Frontend-bound: the API server's one Python core is full while the engine has room.
    R8,
    /// Engine imbalance: one data-parallel rank queues or preempts while another idles.
    R9,
}

impl RuleId {
    /// Every rule, in id order.
    pub const ALL: [RuleId; 9] = [
        RuleId::R1,
        RuleId::R2,
        RuleId::R3,
        RuleId::R4,
        RuleId::R5,
        RuleId::R6,
        RuleId::R7,
        RuleId::R8,
        RuleId::R9,
    ];

    /// The rule's name as the spec's table gives it.
    pub fn title(self) -> &'static str {
        match self {
            RuleId::R1 => "Under-batching",
            RuleId::R2 => "KV cache pressure",
            RuleId::R3 => "Low prefix reuse",
            RuleId::R4 => "OOM risk",
            RuleId::R5 => "Concurrency saturation",
            RuleId::R6 => "Prefill-bound",
            RuleId::R7 => "Oversized GPU",
            RuleId::R8 => "Frontend-bound",
            RuleId::R9 => "Engine imbalance",
        }
    }
}

/// Which of R2's two paths a finding comes from (spec "R2: KV cache pressure").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum R2Path {
    /// KV peak >= 88% or preemptions.
    Main,
    /// Queue held back for lack of free KV blocks, below the 88% line.
    AdmissionBacklog,
}

/// How a measured value is compared with its threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cmp {
    /// value < threshold.
    Lt,
    /// value <= threshold.
    Le,
    /// value > threshold.
    Gt,
    /// value >= threshold.
    Ge,
}

impl Cmp {
    /// The comparison as text (`<`, `>=`, ...).
    pub fn symbol(self) -> &'static str {
        match self {
            Cmp::Lt => "<",
            Cmp::Le => "<=",
            Cmp::Gt => ">",
            Cmp::Ge => ">=",
        }
    }

    /// Whether `value <op> threshold` holds.
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Cmp::Lt => value < threshold,
            Cmp::Le => value <= threshold,
            Cmp::Gt => value > threshold,
            Cmp::Ge => value >= threshold,
        }
    }
}

/// The unit of a measured value, so a renderer can format it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Percent, 0-100.
    Percent,
    /// A number of requests (may be a time-weighted mean, so fractional).
    Requests,
    /// Requests per second.
    RequestsPerSecond,
    /// Seconds.
    Seconds,
    /// Milliseconds.
    Milliseconds,
    /// Tokens.
    Tokens,
    /// Decimal gigabytes.
    Gigabytes,
    /// A plain count (windows, preemptions).
    Count,
    /// CPU cores (CPU seconds per second).
    Cores,
    /// US dollars per hour.
    UsdPerHour,
    /// Tokens per second.
    TokensPerSecond,
}

impl Unit {
    fn suffix(self) -> &'static str {
        match self {
            Unit::Percent => "%",
            Unit::Requests => "",
            Unit::RequestsPerSecond => " req/s",
            Unit::Seconds => " s",
            Unit::Milliseconds => " ms",
            Unit::Tokens => " tokens",
            Unit::Gigabytes => " GB",
            Unit::Count => "",
            Unit::Cores => " cores",
            Unit::UsdPerHour => " $/h",
            Unit::TokensPerSecond => " tok/s",
        }
    }
}

/// What a measure is for in a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MeasureRole {
    /// One of the rule's conditions.
    Condition,
    /// Shown as support but not required (R2's VRAM >= 78%).
    Corroborating,
    /// Background for the reader (the cap, TTFT, ...), with no threshold.
    Context,
}

/// A measured value against its threshold, e.g. KV peak 97.2 >= 88 (percent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measure {
    /// What was measured, e.g. `KV cache peak`.
    pub name: String,
    /// The value.
    pub value: f64,
    /// Its unit.
    pub unit: Unit,
    /// The comparison the rule makes; `None` for context.
    pub cmp: Option<Cmp>,
    /// The threshold; `None` for context.
    pub threshold: Option<f64>,
    /// Whether the comparison holds (true for context).
    pub met: bool,
    /// Condition, corroboration or context.
    pub role: MeasureRole,
}

impl Measure {
    /// A rule condition: `value <cmp> threshold`.
    pub fn condition(name: &str, value: f64, unit: Unit, cmp: Cmp, threshold: f64) -> Measure {
        Measure {
            name: name.to_string(),
            value,
            unit,
            cmp: Some(cmp),
            threshold: Some(threshold),
            met: cmp.holds(value, threshold),
            role: MeasureRole::Condition,
        }
    }

    /// Corroborating evidence: compared, but not required.
    pub fn corroborating(name: &str, value: f64, unit: Unit, cmp: Cmp, threshold: f64) -> Measure {
        Measure {
            role: MeasureRole::Corroborating,
            ..Measure::condition(name, value, unit, cmp, threshold)
        }
    }

    /// A value shown for context.
    pub fn context(name: &str, value: f64, unit: Unit) -> Measure {
        Measure {
            name: name.to_string(),
            value,
            unit,
            cmp: None,
            threshold: None,
            met: true,
            role: MeasureRole::Context,
        }
    }

    /// Plain text at one decimal, e.g. `KV cache peak 97.2% >= 88.0%`.
    pub fn describe(&self) -> String {
        let s = self.unit.suffix();
        match (self.cmp, self.threshold) {
            (Some(c), Some(t)) => format!(
                "{} {:.1}{s} {} {:.1}{s}",
                self.name,
                self.value,
                c.symbol(),
                t
            ),
            _ => format!("{} {:.1}{s}", self.name, self.value),
        }
    }
}

/// A flag value in a fix: a count (`--max-num-seqs 32`), a fraction
/// (`--gpu-memory-utilization 0.95`) or a word (`--kv-cache-dtype fp8`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FlagValue {
    /// A whole number.
    Count(u64),
    /// A fraction or other real number.
    Real(f64),
    /// A word.
    Text(String),
}

/// One concrete step of a fix: a sentence, and where it sets a vLLM flag, the flag, the value
/// proposed and the value in effect now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FixStep {
    /// What to do, in words.
    pub text: String,
    /// The vLLM flag to set (`--max-num-seqs`), when the step is a flag.
    pub flag: Option<String>,
    /// The value to set it to; `None` for a switch or when no number can be computed.
    pub value: Option<FlagValue>,
    /// The value in effect now, when known.
    pub current: Option<FlagValue>,
}

impl FixStep {
    /// A step in words only.
    pub fn text(text: &str) -> FixStep {
        FixStep {
            text: text.to_string(),
            flag: None,
            value: None,
            current: None,
        }
    }

    /// A step that sets a flag.
    pub fn flag(
        text: &str,
        flag: &str,
        value: Option<FlagValue>,
        current: Option<FlagValue>,
    ) -> FixStep {
        FixStep {
            text: text.to_string(),
            flag: Some(flag.to_string()),
            value,
            current,
        }
    }

    /// The command-line form, e.g. `--tensor-parallel-size 2`; `None` for a text-only step.
    pub fn command_line(&self) -> Option<String> {
        let flag = self.flag.as_ref()?;
        Some(match &self.value {
            Some(FlagValue::Count(n)) => format!("{flag} {n}"),
            Some(FlagValue::Real(x)) => format!("{flag} {x:.2}"),
            Some(FlagValue::Text(t)) => format!("{flag} {t}"),
            None => flag.clone(),
        })
    }
}

/// The remedy of a finding: a one-line summary and its steps. Whether the steps are
/// alternatives or a sequence is said in `summary`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fix {
    /// One line, e.g. `Raise --max-num-seqs`.
    pub summary: String,
    /// The concrete steps.
    pub steps: Vec<FixStep>,
}

/// Why a finding is significant (spec "Rule significance gate").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Significance {
    /// fired >= 3 and fired / evaluable >= 25%.
    Standard,
    /// R2 main path: a window with preemptions (significant at 1).
    Preemptions,
    /// R2 main path: KV >= 95% in at least 2 windows.
    KvCritical,
    /// R4: a configuration fact, independent of windows.
    Configuration,
    /// Fired, but below every gate that applies.
    BelowGate,
}

impl Significance {
    /// Whether the finding surfaces as a recommendation.
    pub fn is_significant(self) -> bool {
        self != Significance::BelowGate
    }
}

/// Window counts behind a finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowCounts {
    /// Windows in which the rule (or the reported R2 path) fired.
    pub fired: u64,
    /// Evaluable windows: the significance gate's denominator.
    pub evaluable: u64,
    /// Evaluable windows the rule had to skip (R2: sources > 1 s apart; R5: running above
    /// the cap). They count as not fired.
    pub skipped: u64,
    /// Which windows fired, as runs of consecutive window indices `[first, last]`, in order:
    /// what a timeline shades. Runs keep a day-long recording's report small.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fired_runs: Vec<[u32; 2]>,
}

impl WindowCounts {
    /// The counts for the windows a rule fired in (in window order).
    pub fn of(
        fired: &[&crate::aggregate::KeptWindow],
        evaluable: u64,
        skipped: u64,
    ) -> WindowCounts {
        let mut runs: Vec<[u32; 2]> = Vec::new();
        for w in fired {
            match runs.last_mut() {
                Some(r) if w.index == r[1] + 1 => r[1] = w.index,
                _ => runs.push([w.index, w.index]),
            }
        }
        WindowCounts {
            fired: fired.len() as u64,
            evaluable,
            skipped,
            fired_runs: runs,
        }
    }
}

/// Root causes under which findings are grouped; each group surfaces one recommendation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RootCause {
    /// Too little offered load (R1).
    OfferedLoad,
    /// The KV pool and the concurrency cap are mis-sized for each other (R2, R5).
    KvCapacity,
    /// Prompts share too little prefix (R3).
    PrefixReuse,
    /// The weights do not fit the GPUs (R4).
    MemoryFit,
    /// Prompt processing dominates (R6).
    PrefillBound,
    /// More GPU than the load needs (R7).
    RightSizing,
    /// The API server, not the engine, limits throughput (R8).
    Frontend,
    /// The data-parallel ranks carry unequal load (R9).
    EngineBalance,
}

impl RootCause {
    /// A heading for the group.
    pub fn title(self) -> &'static str {
        match self {
            RootCause::OfferedLoad => "Not enough offered load",
            RootCause::KvCapacity => "KV-cache capacity vs concurrency cap",
            RootCause::PrefixReuse => "Prompts reuse little cached prefix",
            RootCause::MemoryFit => "Model weights do not fit GPU memory",
            RootCause::PrefillBound => "Prompt processing dominates",
            RootCause::RightSizing => "More GPU than the load needs",
            RootCause::Frontend => "The API server limits throughput",
            RootCause::EngineBalance => "Data-parallel ranks carry unequal load",
        }
    }
}

/// One rule that fired, with what it measured and what to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The rule.
    pub rule: RuleId,
    /// R2's path; `None` for the other rules.
    pub r2_path: Option<R2Path>,
    /// Heading, e.g. `KV cache pressure`.
    pub title: String,
    /// Per the spec's Confidence table, 0-1.
    pub confidence: f64,
    /// The Confidence table row that applied, e.g. `preemptions active`.
    pub confidence_basis: String,
    /// Impact 1-5 (see `rank`).
    pub impact: u8,
    /// impact × confidence.
    pub score: f64,
    /// Window counts; `None` for R4, a configuration fact.
    pub windows: Option<WindowCounts>,
    /// Whether it passed the significance gate.
    pub significant: bool,
    /// Which gate it passed, or `BelowGate`.
    pub significance: Significance,
    /// Measured values against their thresholds.
    pub measures: Vec<Measure>,
    /// The remedy.
    pub fix: Fix,
    /// Its root-cause group; `None` when not significant.
    pub group: Option<RootCause>,
}

/// Findings that share a root cause: one primary recommendation, the rest supporting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IssueGroup {
    /// The shared root cause.
    pub root_cause: RootCause,
    /// Heading for the group.
    pub title: String,
    /// The finding whose fix is the group's recommendation (highest score).
    pub primary: RuleId,
    /// The other findings of the group, by score.
    pub supporting: Vec<RuleId>,
    /// The primary's score, by which groups are ordered.
    pub score: f64,
}

/// A rule that surfaced no recommendation, and why (for `-v`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotFired {
    /// The rule.
    pub rule: RuleId,
    /// Why, e.g. `not triggered (prefill saturated at 55.0%)` or `no max_num_seqs: pass -m`.
    pub reason: String,
}

/// Everything the rules concluded about one recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diagnosis {
    /// Windows in the recording.
    pub windows_total: u64,
    /// Windows passing tier 1 of the gate (the significance denominator).
    pub windows_evaluable: u64,
    /// Windows passing tier 2.
    pub windows_active: u64,
    /// Every rule that fired, significant first, then by score (highest first), then id.
    pub findings: Vec<Finding>,
    /// Groups of significant findings, by their primary's score.
    pub groups: Vec<IssueGroup>,
    /// Rules with no significant finding, by id, with the reason.
    pub not_fired: Vec<NotFired>,
}

impl Diagnosis {
    /// The finding of one rule, if it fired.
    pub fn finding(&self, rule: RuleId) -> Option<&Finding> {
        self.findings.iter().find(|f| f.rule == rule)
    }

    /// The significant findings, in rank order.
    pub fn recommendations(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.significant)
    }
}
