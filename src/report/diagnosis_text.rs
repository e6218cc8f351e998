//! The text report's diagnosis section: what the rules R1-R8 found, grouped by root cause.
//!
//! Each group leads with its primary recommendation (rule, confidence, how many windows it
//! fired in, the measured values against their thresholds, and the fix as concrete flags),
//! followed by the group's other findings as supporting evidence: the spec surfaces one
//! recommendation per root cause. Findings below the significance gate and the reasons the
//! silent rules stayed silent are shown only with `verbose`; without it, the silent rules are
//! one line of ids. Plain indented lines rather than tables: the fix text is prose, and tables
//! would wrap it unreadably. Lines are wrapped at a fixed width so output depends on the
//! report alone.

use crate::rules::{
    Diagnosis, Finding, FixStep, FlagValue, MeasureRole, R2Path, RuleId, Significance,
};
use std::fmt::Write;

/// Width prose is wrapped to (fixed, never the terminal's).
const WIDTH: usize = 100;

const BOLD: &str = "\u{1b}[1m";
const RED: &str = "\u{1b}[1;31m";
const RESET: &str = "\u{1b}[0m";

struct Out {
    color: bool,
    s: String,
}

impl Out {
    /// A line at `indent` spaces, wrapped at [`WIDTH`]; continuation lines indent two more.
    fn line(&mut self, indent: usize, text: &str) {
        let mut col = 0;
        let mut first = true;
        for word in text.split(' ').filter(|w| !w.is_empty()) {
            let len = word.chars().count();
            if first {
                self.s.push_str(&" ".repeat(indent));
                col = indent;
            } else if col + 1 + len > WIDTH && col > indent + 2 {
                self.s.push('\n');
                self.s.push_str(&" ".repeat(indent + 2));
                col = indent + 2;
            } else {
                self.s.push(' ');
                col += 1;
            }
            self.s.push_str(word);
            col += len;
            first = false;
        }
        self.s.push('\n');
    }

    fn styled(&self, style: &str, text: &str) -> String {
        if self.color {
            format!("{style}{text}{RESET}")
        } else {
            text.to_string()
        }
    }
}

/// A rule's heading, e.g. `R2 KV cache pressure (admission backlog)`.
fn heading(f: &Finding) -> String {
    let path = match f.r2_path {
        Some(R2Path::AdmissionBacklog) => " (admission backlog)",
        Some(R2Path::Main) | None => "",
    };
    format!("{:?} {}{path}", f.rule, f.title)
}

/// `fired in 12 of 40 evaluable windows`, or R4's configuration note.
fn windows_text(f: &Finding) -> String {
    let mut s = match &f.windows {
        Some(w) => {
            let mut s = format!("fired in {} of {} evaluable windows", w.fired, w.evaluable);
            if w.skipped > 0 {
                let _ = write!(s, " ({} skipped)", w.skipped);
            }
            s
        }
        None => "configuration fact (no window count)".to_string(),
    };
    match f.significance {
        Significance::Preemptions => s.push_str("; significant: preemptions in a window"),
        Significance::KvCritical => s.push_str("; significant: KV cache >= 95% in 2+ windows"),
        _ => {}
    }
    s
}

pub(super) fn flag_value(v: &FlagValue) -> String {
    match v {
        FlagValue::Count(n) => n.to_string(),
        FlagValue::Real(x) => format!("{x:.2}"),
        FlagValue::Text(t) => t.clone(),
    }
}

fn step(o: &mut Out, indent: usize, st: &FixStep) {
    o.line(indent, &format!("- {}", st.text));
    if let Some(cmd) = st.command_line() {
        let now = st
            .current
            .as_ref()
            .map_or(String::new(), |c| format!(" (now {})", flag_value(c)));
        let cmd = o.styled(BOLD, &cmd);
        o.line(indent + 4, &format!("{cmd}{now}"));
    }
}

/// One finding: heading line, measures, fix. `fix_label` names the fix (`fix`, or
/// `its own fix` for supporting evidence whose fix is not the recommendation).
fn finding(o: &mut Out, indent: usize, f: &Finding, fix_label: &str) {
    let head = o.styled(BOLD, &heading(f));
    o.line(indent, &head);
    o.line(
        indent + 2,
        &format!(
            "confidence {:.2} ({}); {}",
            f.confidence,
            f.confidence_basis,
            windows_text(f)
        ),
    );
    o.line(indent + 2, "measured:");
    for m in &f.measures {
        let note = match m.role {
            MeasureRole::Condition if !m.met => " (not met)",
            MeasureRole::Corroborating if m.met => " (corroborating)",
            MeasureRole::Corroborating => " (corroborating, not met)",
            _ => "",
        };
        o.line(indent + 4, &format!("{}{note}", m.describe()));
    }
    o.line(indent + 2, &format!("{fix_label}: {}", f.fix.summary));
    for st in &f.fix.steps {
        step(o, indent + 4, st);
    }
}

/// The "nothing surfaced" line, saying over how much data.
fn no_bottleneck(d: &Diagnosis) -> String {
    if d.windows_evaluable == 0 {
        return format!(
            "No bottleneck found, but no window of {} was evaluable: the traffic rules (R1, R2, \
             R3, R5) had nothing to judge.",
            d.windows_total
        );
    }
    let mut s = format!(
        "No bottleneck found over {} evaluable windows ({} active).",
        d.windows_evaluable, d.windows_active
    );
    if d.windows_active == 0 {
        s.push_str(" The server was idle throughout, so R1, R3 and R5 had no load to judge.");
    }
    s
}

fn ids(rules: &[RuleId]) -> String {
    rules
        .iter()
        .map(|r| format!("{r:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Renders the diagnosis section. `None` (a report written without the rules) says so.
pub(super) fn render(d: Option<&Diagnosis>, color: bool, verbose: bool) -> String {
    let mut o = Out {
        color,
        s: String::new(),
    };
    let title = o.styled(BOLD, "diagnosis (rules R1-R8)");
    o.line(0, &title);
    let Some(d) = d else {
        o.line(2, "not run: this report carries no diagnosis");
        return o.s;
    };
    let n = d.groups.len();
    if n == 0 {
        o.line(2, &no_bottleneck(d));
    } else {
        o.line(
            2,
            &format!(
                "{n} recommendation{} over {} evaluable windows ({} active), most important \
                 first:",
                if n == 1 { "" } else { "s" },
                d.windows_evaluable,
                d.windows_active
            ),
        );
    }
    for (i, g) in d.groups.iter().enumerate() {
        o.s.push('\n');
        let mark = o.styled(RED, "[!]");
        o.line(2, &format!("{mark} {}. {}", i + 1, g.title));
        if let Some(p) = d.finding(g.primary) {
            finding(&mut o, 4, p, "fix");
        }
        if !g.supporting.is_empty() {
            o.line(
                4,
                "supporting evidence (same root cause; the fix above comes first):",
            );
            for r in &g.supporting {
                if let Some(f) = d.finding(*r) {
                    finding(&mut o, 6, f, "its own fix");
                }
            }
        }
    }
    let below: Vec<&Finding> = d.findings.iter().filter(|f| !f.significant).collect();
    let below_ids: Vec<RuleId> = below.iter().map(|f| f.rule).collect();
    let silent: Vec<_> = d
        .not_fired
        .iter()
        .filter(|n| !below_ids.contains(&n.rule))
        .collect();
    o.s.push('\n');
    if verbose {
        if !below.is_empty() {
            o.line(
                2,
                "fired, but below the significance gate (>= 3 windows and >= 25% of evaluable \
                 windows); not recommendations:",
            );
            for f in &below {
                finding(&mut o, 4, f, "fix if it persists");
            }
        }
        if !silent.is_empty() {
            o.line(2, "rules that did not fire, and why:");
        }
        for nf in &silent {
            o.line(
                4,
                &format!("{:?} {}: {}", nf.rule, nf.rule.title(), nf.reason),
            );
        }
    } else {
        let silent_ids: Vec<RuleId> = silent.iter().map(|n| n.rule).collect();
        if !silent_ids.is_empty() {
            o.line(2, &format!("not triggered: {}", ids(&silent_ids)));
        }
        if !below_ids.is_empty() {
            o.line(
                2,
                &format!("below the significance gate: {}", ids(&below_ids)),
            );
        }
        if !silent_ids.is_empty() || !below_ids.is_empty() {
            o.line(2, "(-v says why)");
        }
    }
    o.s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{Cmp, Fix, IssueGroup, Measure, NotFired, RootCause, Unit, WindowCounts};

    fn finding(rule: RuleId, fired: u64, significant: bool, steps: Vec<FixStep>) -> Finding {
        Finding {
            rule,
            r2_path: None,
            title: rule.title().to_string(),
            confidence: 0.9,
            confidence_basis: "TTFT and KV cache both present".into(),
            impact: 4,
            score: 3.6,
            windows: Some(WindowCounts {
                fired,
                evaluable: 40,
                skipped: 0,
                fired_runs: Vec::new(),
            }),
            significant,
            significance: if significant {
                Significance::Standard
            } else {
                Significance::BelowGate
            },
            measures: vec![
                Measure::condition("queue ratio", 64.5, Unit::Percent, Cmp::Ge, 30.0),
                Measure::condition("KV cache peak", 5.9, Unit::Percent, Cmp::Lt, 80.0),
                Measure::context("max_num_seqs", 8.0, Unit::Requests),
            ],
            fix: Fix {
                summary: "Raise --max-num-seqs".into(),
                steps,
            },
            group: significant.then_some(RootCause::KvCapacity),
        }
    }

    fn raise_cap() -> FixStep {
        FixStep::flag(
            "Raise --max-num-seqs: KV peaked at 5.9%, room for more sequences",
            "--max-num-seqs",
            Some(FlagValue::Count(16)),
            Some(FlagValue::Count(8)),
        )
    }

    fn diagnosis() -> Diagnosis {
        let mut r2 = finding(RuleId::R2, 12, true, vec![FixStep::text("Add KV memory")]);
        r2.r2_path = Some(R2Path::AdmissionBacklog);
        r2.title = "KV cache pressure".into();
        Diagnosis {
            windows_total: 44,
            windows_evaluable: 40,
            windows_active: 30,
            findings: vec![
                finding(RuleId::R5, 24, true, vec![raise_cap()]),
                r2,
                finding(
                    RuleId::R1,
                    1,
                    false,
                    vec![FixStep::text("Raise client load")],
                ),
            ],
            groups: vec![IssueGroup {
                root_cause: RootCause::KvCapacity,
                title: RootCause::KvCapacity.title().into(),
                primary: RuleId::R5,
                supporting: vec![RuleId::R2],
                score: 3.6,
            }],
            not_fired: vec![
                NotFired {
                    rule: RuleId::R1,
                    reason: "fired in 1 of 40 evaluable windows: below the significance gate"
                        .into(),
                },
                NotFired {
                    rule: RuleId::R3,
                    reason: "not triggered (prefix hit rate 71.8% >= 35%)".into(),
                },
                NotFired {
                    rule: RuleId::R4,
                    reason: "not evaluated (model not in the catalog: weight size unknown)".into(),
                },
            ],
        }
    }

    #[test]
    fn primary_first_with_measures_and_fix_flags_then_supporting_evidence() {
        let text = render(Some(&diagnosis()), false, false);
        let at = |n: &str| {
            text.find(n)
                .unwrap_or_else(|| panic!("no {n:?} in\n{text}"))
        };
        assert!(text.contains("1 recommendation over 40 evaluable windows (30 active)"));
        assert!(at("[!] 1. KV-cache capacity vs concurrency cap") < at("R5 Concurrency"));
        assert!(
            text.contains("fired in 24 of 40 evaluable windows"),
            "{text}"
        );
        assert!(text.contains("confidence 0.90 (TTFT and KV cache both present)"));
        assert!(text.contains("queue ratio 64.5% >= 30.0%"));
        assert!(text.contains("KV cache peak 5.9% < 80.0%"));
        assert!(text.contains("--max-num-seqs 16 (now 8)"), "{text}");
        assert!(at("R5 Concurrency") < at("supporting evidence"));
        assert!(at("supporting evidence") < at("R2 KV cache pressure (admission backlog)"));
        assert!(text.contains("its own fix: Raise --max-num-seqs"));
        // Without -v: silent rules as ids only, the below-gate R1 named but not detailed.
        assert!(text.contains("not triggered: R3, R4\n"), "{text}");
        assert!(text.contains("below the significance gate: R1\n"), "{text}");
        assert!(!text.contains("prefix hit rate"), "no reasons without -v");
        assert!(
            !text.contains("R1 Under-batching"),
            "below-gate details need -v"
        );
        assert!(!text.contains('\u{1b}'));
        assert!(render(Some(&diagnosis()), true, false).contains('\u{1b}'));
    }

    #[test]
    fn verbose_details_below_gate_findings_and_says_why_rules_stayed_silent() {
        let text = render(Some(&diagnosis()), false, true);
        assert!(
            text.contains("below the significance gate (>= 3 windows"),
            "{text}"
        );
        assert!(text.contains("R1 Under-batching"), "{text}");
        assert!(text.contains("fired in 1 of 40 evaluable windows"));
        assert!(text.contains("fix if it persists: Raise --max-num-seqs"));
        assert!(text.contains("R3 Low prefix reuse: not triggered (prefix hit rate 71.8% >= 35%)"));
        assert!(text.contains("R4 OOM risk: not evaluated (model not in the catalog"));
        // R1 is detailed above, not repeated as a silent rule.
        assert!(!text.contains("R1 Under-batching: fired in"), "{text}");
        assert!(
            !text.contains("not triggered: R3"),
            "-v lists reasons, not ids"
        );
    }

    #[test]
    fn nothing_significant_says_no_bottleneck_and_over_what() {
        let mut d = diagnosis();
        d.findings.retain(|f| !f.significant);
        d.groups.clear();
        let text = render(Some(&d), false, false);
        assert!(
            text.contains("No bottleneck found over 40 evaluable windows (30 active)."),
            "{text}"
        );
        assert!(!text.contains("[!]"));
        d.windows_active = 0;
        let text = render(Some(&d), false, false);
        assert!(text.contains("The server was idle throughout"), "{text}");
        d.windows_evaluable = 0;
        let text = render(Some(&d), false, false);
        assert!(text.contains("no window of 44 was evaluable"), "{text}");
        assert!(render(None, false, false).contains("not run"));
    }

    #[test]
    fn long_lines_wrap_at_a_fixed_width_with_a_hanging_indent() {
        let mut o = Out {
            color: false,
            s: String::new(),
        };
        let words = vec!["word"; 60].join(" ");
        o.line(4, &words);
        let lines: Vec<&str> = o.s.lines().collect();
        assert!(lines.len() > 1);
        assert!(lines.iter().all(|l| l.chars().count() <= WIDTH), "{}", o.s);
        assert!(lines[0].starts_with("    word") && lines[1].starts_with("      word"));
        assert_eq!(o.s.split_whitespace().count(), 60, "no word lost");
    }
}
