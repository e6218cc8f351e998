//! A comparison as text (comfy-table) or JSON. Floats are formatted here at a fixed precision
//! per unit; colour is the caller's decision, as for the report.

use super::{ChangeKind, Comparison, DeltaUnit, Direction, FindingChange, Goal, MetricDelta, Side};
use crate::report::format::{num, signed_opt as signed};
use crate::report::{Render, RenderError, Text};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Attribute, Cell, Color, Table};

/// Renders a comparison as pretty JSON ending in a newline.
pub fn render_json(c: &Comparison) -> Result<String, RenderError> {
    crate::report::Json.render(c)
}

impl Render<Comparison> for Text {
    fn render(&self, c: &Comparison) -> Result<String, RenderError> {
        Ok(render_text(c, self.0.color))
    }
}

/// Decimals per unit.
fn precision(u: DeltaUnit) -> usize {
    match u {
        DeltaUnit::TokensPerSecond | DeltaUnit::Percent | DeltaUnit::Milliseconds => 1,
        DeltaUnit::RequestsPerSecond | DeltaUnit::Requests | DeltaUnit::UsdPerMillionTokens => 2,
        DeltaUnit::PerSecond => 3,
    }
}

fn unit_text(u: DeltaUnit) -> &'static str {
    match u {
        DeltaUnit::TokensPerSecond => "tok/s",
        DeltaUnit::RequestsPerSecond => "req/s",
        DeltaUnit::Percent => "%",
        DeltaUnit::Milliseconds => "ms",
        DeltaUnit::UsdPerMillionTokens => "USD",
        DeltaUnit::Requests => "",
        DeltaUnit::PerSecond => "/s",
    }
}

/// Whether a delta moved the way its goal wants (`Some(true)`), the other way (`Some(false)`),
/// or neither (no goal, no delta, or no change at the shown precision).
fn improved(m: &MetricDelta) -> Option<bool> {
    let d = m.delta?;
    if num(Some(d), precision(m.unit)).trim_start_matches('-') == num(Some(0.0), precision(m.unit))
    {
        return None;
    }
    match m.goal {
        Goal::Higher => Some(d > 0.0),
        Goal::Lower => Some(d < 0.0),
        Goal::Neutral => None,
    }
}

fn side_line(s: &Side) -> String {
    let gpus = if s.gpus.is_empty() {
        "no GPU data".to_string()
    } else {
        s.gpus.join(", ")
    };
    format!(
        "{} (started {}, model {}, {gpus}, {} active windows)",
        s.label,
        s.started_at,
        s.model_name.as_deref().unwrap_or("-"),
        s.active_windows
    )
}

fn finding_text(f: &FindingChange) -> String {
    let path = match f.r2_path {
        Some(p) => format!(
            " ({})",
            serde_json::to_value(p)
                .ok()
                .and_then(|v| v.as_str().map(|s| s.replace('_', " ")))
                .unwrap_or_default()
        ),
        None => String::new(),
    };
    let score = match (f.score_before, f.score_after) {
        (Some(b), Some(a)) => format!("score {} -> {}", num(Some(b), 2), num(Some(a), 2)),
        (Some(b), None) => format!("score {} before", num(Some(b), 2)),
        (None, Some(a)) => format!("score {}", num(Some(a), 2)),
        (None, None) => String::new(),
    };
    format!("{:?} {}{path}, {score}", f.rule, f.title)
}

/// Renders a comparison as text: the two recordings, the figures side by side, the verdict,
/// the diagnosis diff and the notes. `color` adds ANSI styling (only on a terminal).
pub fn render_text(c: &Comparison, color: bool) -> String {
    let mut out = String::new();
    out.push_str(&format!("before: {}\n", side_line(&c.before)));
    out.push_str(&format!("after:  {}\n", side_line(&c.after)));

    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.force_no_tty();
    if color {
        t.enforce_styling();
    }
    let head = |h: &str| {
        let cell = Cell::new(h);
        if color {
            cell.add_attribute(Attribute::Bold).fg(Color::Cyan)
        } else {
            cell
        }
    };
    t.set_header(["metric", "before", "after", "change", "change %"].map(head));
    for m in &c.metrics {
        let prec = precision(m.unit);
        let unit = unit_text(m.unit);
        let value = |v: Option<f64>| match v {
            Some(_) if unit.is_empty() => num(v, prec),
            Some(_) => format!("{} {unit}", num(v, prec)),
            None => "-".to_string(),
        };
        let delta_unit = if m.unit == DeltaUnit::Percent {
            " pp"
        } else if unit.is_empty() {
            ""
        } else {
            unit
        };
        let delta = match m.delta {
            Some(_) if delta_unit.is_empty() => signed(m.delta, prec),
            Some(_) if delta_unit == " pp" => format!("{}{delta_unit}", signed(m.delta, prec)),
            Some(_) => format!("{} {delta_unit}", signed(m.delta, prec)),
            None => "-".to_string(),
        };
        let pct = match m.delta_pct {
            Some(_) => format!("{}%", signed(m.delta_pct, 1)),
            None => "-".to_string(),
        };
        let name = if m.estimated {
            format!("{} (est)", m.name)
        } else {
            m.name.clone()
        };
        let mut change = Cell::new(delta);
        let mut change_pct = Cell::new(pct);
        if color {
            if let Some(good) = improved(m) {
                let fg = if good { Color::Green } else { Color::Red };
                change = change.fg(fg);
                change_pct = change_pct.fg(fg);
            }
        }
        t.add_row(vec![
            Cell::new(name),
            Cell::new(value(m.before)),
            Cell::new(value(m.after)),
            change,
            change_pct,
        ]);
    }
    out.push_str(&t.to_string());
    out.push('\n');

    let v = &c.verdict;
    let word = if color {
        let code = match v.direction {
            Direction::Better => "32",
            Direction::Plateau => "33",
            Direction::Worse => "31",
        };
        format!("\x1b[1;{code}m{}\x1b[0m", v.direction.label())
    } else {
        v.direction.label().to_string()
    };
    let path = match v.decided_by {
        super::DecidedBy::Efficiency => "efficiency",
        super::DecidedBy::Throughput => "throughput fallback",
        super::DecidedBy::Nothing => "no signal",
    };
    out.push_str(&format!("direction: {word} ({path}): {}\n", v.reason));

    match &c.diagnosis {
        None => out.push_str("diagnosis: not compared (a report without rule findings)\n"),
        Some(d) => {
            let groups: [(&str, ChangeKind, &Vec<FindingChange>); 3] = [
                ("resolved", ChangeKind::Resolved, &d.resolved),
                ("new", ChangeKind::New, &d.new),
                ("persisting", ChangeKind::Persisting, &d.persisting),
            ];
            if groups.iter().all(|(_, _, l)| l.is_empty()) {
                out.push_str("diagnosis: no significant finding on either side\n");
            }
            for (word, _, list) in groups {
                for f in list {
                    out.push_str(&format!("{word}: {}\n", finding_text(f)));
                }
            }
            if let Some(n) = &d.next {
                out.push_str(&format!("next: {:?} {}: {}\n", n.rule, n.title, n.fix));
            }
        }
    }
    for n in &c.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    out
}
