//! A comparison as text (comfy-table) or JSON. Floats are formatted here at a fixed precision
//! per unit; colour is the caller's decision, as for the report.

use super::{ChangeKind, Comparison, DeltaUnit, Direction, FindingChange, Goal, MetricDelta, Side};
use crate::report::format::{num, signed_opt as signed};
use crate::report::html::{self, esc};
use crate::report::Report;
use crate::report::{Render, RenderError, Text};
use comfy_table::{
    presets::UTF8_FULL_CONDENSED, Attribute, Cell, Color, ContentArrangement, Table,
};
use std::fmt::Write;

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
        DeltaUnit::RequestsPerSecond
        | DeltaUnit::Requests
        | DeltaUnit::UsdPerMillionTokens
        | DeltaUnit::UsdPerHour => 2,
        DeltaUnit::PerSecond => 3,
        DeltaUnit::Count => 0,
    }
}

fn unit_text(u: DeltaUnit) -> &'static str {
    match u {
        DeltaUnit::TokensPerSecond => "tok/s",
        DeltaUnit::RequestsPerSecond => "req/s",
        DeltaUnit::Percent => "%",
        DeltaUnit::Milliseconds => "ms",
        DeltaUnit::UsdPerMillionTokens => "USD",
        DeltaUnit::UsdPerHour => "USD/h",
        DeltaUnit::Requests => "",
        DeltaUnit::PerSecond => "/s",
        DeltaUnit::Count => "",
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

/// The interval column: of the change in percent, or in points for a percentage; empty
/// without one.
fn interval_cell(m: &MetricDelta) -> String {
    let (iv, unit) = if m.unit == DeltaUnit::Percent {
        (m.delta_interval, " pp")
    } else {
        (m.delta_pct_interval, "%")
    };
    match iv {
        Some(i) => format!(
            "{}{unit} .. {}{unit}",
            signed(Some(i.lo), 1),
            signed(Some(i.hi), 1)
        ),
        None => String::new(),
    }
}

/// The noise line: how the intervals were made, or why there are none.
fn noise_line(c: &Comparison) -> String {
    match (&c.noise.bootstrap, &c.noise.unavailable) {
        (Some(b), _) => format!(
            "noise: {}% intervals, {} ({} replicates, blocks of {} and {} windows over {} and              {} active windows, seed {:#x})",
            num(Some(b.confidence_pct), 0),
            b.method,
            b.replicates,
            b.before.block_windows,
            b.after.block_windows,
            b.before.windows,
            b.after.windows,
            b.seed
        ),
        (None, Some(why)) => format!("noise: no interval ({why})"),
        (None, None) => "noise: no interval".to_string(),
    }
}

/// One row of the delta table as text: name, before, after, change, change %. A row that is
/// already a percentage changes in points only (its relative change would read as a
/// nonsense "+1969%" for 3 -> 65 %).
fn row_text(m: &MetricDelta) -> [String; 5] {
    let prec = precision(m.unit);
    let unit = unit_text(m.unit);
    let value = |v: Option<f64>| match v {
        Some(_) if unit.is_empty() => num(v, prec),
        Some(_) => format!("{} {unit}", num(v, prec)),
        None => "-".to_string(),
    };
    let delta = match m.delta {
        Some(_) if m.unit == DeltaUnit::Percent => format!("{} pp", signed(m.delta, prec)),
        Some(_) if unit.is_empty() => signed(m.delta, prec),
        Some(_) => format!("{} {unit}", signed(m.delta, prec)),
        None => "-".to_string(),
    };
    let pct = match m.delta_pct {
        _ if m.unit == DeltaUnit::Percent => String::new(),
        Some(_) => format!("{}%", signed(m.delta_pct, 1)),
        None => "-".to_string(),
    };
    let name = if m.estimated {
        format!("{} (est)", m.name)
    } else {
        m.name.clone()
    };
    [name, value(m.before), value(m.after), delta, pct]
}

fn decided_by(c: &Comparison) -> String {
    let by = match c.verdict.decided_by {
        super::DecidedBy::Efficiency => "efficiency",
        super::DecidedBy::Throughput => "throughput fallback",
        super::DecidedBy::Nothing => "no signal",
    };
    if c.verdict.within_noise {
        format!("{by}, within noise")
    } else {
        by.to_string()
    }
}

/// The diagnosis diff as lines (`resolved: ...`, `new: ...`, `next: ...`).
fn diagnosis_lines(c: &Comparison) -> Vec<String> {
    let mut out = Vec::new();
    // Availability first: it decides what the figures on either side are worth.
    for a in &c.availability {
        let word = match a.change {
            ChangeKind::Resolved => "resolved",
            ChangeKind::New => "new",
            ChangeKind::Persisting => "persisting",
        };
        out.push(format!("{word}: {} ({})", a.kind.title(), a.summary));
    }
    match &c.diagnosis {
        None => out.push("diagnosis: not compared (a report without rule findings)".to_string()),
        Some(d) => {
            let groups: [(&str, ChangeKind, &Vec<FindingChange>); 3] = [
                ("resolved", ChangeKind::Resolved, &d.resolved),
                ("new", ChangeKind::New, &d.new),
                ("persisting", ChangeKind::Persisting, &d.persisting),
            ];
            if groups.iter().all(|(_, _, l)| l.is_empty()) {
                out.push("diagnosis: no significant finding on either side".to_string());
            }
            for (word, _, list) in groups {
                for f in list {
                    out.push(format!("{word}: {}", finding_text(f)));
                }
            }
            if let Some(n) = &d.next {
                out.push(format!("next: {:?} {}: {}", n.rule, n.title, n.fix));
            }
        }
    }
    out
}

/// Renders a comparison as text: the verdict first, then the two recordings, the figures side
/// by side, the diagnosis diff and the notes. `color` adds ANSI styling (only on a terminal).
/// Lines wrap at 100 columns.
pub fn render_text(c: &Comparison, color: bool) -> String {
    let mut out = String::new();
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
    out.push_str(&wrap(&format!(
        "direction: {word} ({}): {}",
        decided_by(c),
        v.reason
    )));
    out.push_str(&wrap(&noise_line(c)));
    out.push_str(&wrap(&format!("before: {}", side_line(&c.before))));
    out.push_str(&wrap(&format!("after:  {}", side_line(&c.after))));

    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.force_no_tty();
    t.set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(WIDTH as u16);
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
    t.set_header(
        [
            "metric",
            "before",
            "after",
            "change",
            "change %",
            "95% interval",
        ]
        .map(head),
    );
    for m in &c.metrics {
        let [name, before, after, delta, pct] = row_text(m);
        let iv = interval_cell(m);
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
            Cell::new(before),
            Cell::new(after),
            change,
            change_pct,
            Cell::new(iv),
        ]);
    }
    out.push_str(&t.to_string());
    out.push('\n');
    for l in diagnosis_lines(c) {
        out.push_str(&wrap(&l));
    }
    for n in &c.notes {
        out.push_str(&wrap(&format!("note: {n}")));
    }
    out
}

/// Two fleets compared, as text: the fleet's direction first, the totals, one line per target,
/// then each matched target's own comparison exactly as `compare` of the two alone prints it.
pub fn render_fleet_text(c: &super::fleet::FleetComparison, color: bool) -> String {
    use super::fleet::Presence;
    let mut out = String::new();
    let (better, plateau, worse) = c.counts;
    out.push_str(&wrap(&format!(
        "fleet direction: {} ({better} better, {plateau} plateau, {worse} worse of {} targets \
         compared; any target WORSE makes the fleet WORSE)",
        c.direction.label(),
        better + plateau + worse
    )));
    out.push_str(&wrap(&format!("before: {}", c.before)));
    out.push_str(&wrap(&format!("after:  {}", c.after)));
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.force_no_tty();
    t.set_header(["fleet total", "before", "after", "change", "change %"]);
    for m in &c.totals {
        t.add_row(row_text(m).to_vec());
    }
    out.push_str(&t.to_string());
    out.push('\n');
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.force_no_tty();
    t.set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(WIDTH as u16);
    t.set_header(["target", "direction", "throughput", "TTFT p99", "why"]);
    for tc in &c.targets {
        let pct = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |p| format!("{p:+.1}%"));
        let row = match (&tc.present, &tc.comparison, &tc.refused) {
            (Presence::BeforeOnly, ..) => [
                "gone".to_string(),
                "-".into(),
                "-".into(),
                "in the baseline only".into(),
            ],
            (Presence::AfterOnly, ..) => [
                "new".to_string(),
                "-".into(),
                "-".into(),
                "in the later fleet only".into(),
            ],
            (_, Some(cmp), _) => [
                cmp.verdict.direction.label().to_string(),
                pct(cmp.throughput_delta_pct),
                pct(cmp.ttft_p99_delta_pct),
                cmp.verdict.reason.clone(),
            ],
            (_, None, refused) => [
                "refused".to_string(),
                "-".into(),
                "-".into(),
                refused.clone().unwrap_or_default(),
            ],
        };
        let [d, tp, ttft, why] = row;
        t.add_row([tc.name.clone(), d, tp, ttft, why]);
    }
    out.push_str(&t.to_string());
    out.push('\n');
    for tc in &c.targets {
        if let Some(cmp) = &tc.comparison {
            out.push_str(&format!("\n=== target {} ===\n", tc.name));
            out.push_str(&render_text(cmp, color));
        }
    }
    out
}

/// Width lines wrap to.
const WIDTH: usize = 100;

/// Wraps a line at [`WIDTH`] with a two-space hanging indent; ends in a newline.
fn wrap(text: &str) -> String {
    let mut s = String::new();
    let mut col = 0;
    for (i, word) in text.split(' ').filter(|w| !w.is_empty()).enumerate() {
        let len = word.chars().count();
        if i == 0 {
        } else if col + 1 + len > WIDTH && col > 2 {
            s.push_str("\n  ");
            col = 2;
        } else {
            s.push(' ');
            col += 1;
        }
        s.push_str(word);
        col += len;
    }
    s.push('\n');
    s
}

/// Renders a comparison as one self-contained HTML file: the verdict, both recordings'
/// timelines overlaid (aligned on their first active window), the delta table and the
/// diagnosis diff. `before` and `after` are the reports compared, with their window rows.
pub fn render_html(c: &Comparison, before: &Report, after: &Report) -> String {
    let mut b = String::new();
    let class = match c.verdict.direction {
        Direction::Better => "better",
        Direction::Plateau => "plateau",
        Direction::Worse => "worse",
    };
    let _ = writeln!(
        b,
        "<h1>compare {} &rarr; {}</h1>",
        esc(&c.before.label),
        esc(&c.after.label)
    );
    let _ = writeln!(
        b,
        "<p class=\"direction {class}\">{} ({}): {}</p>",
        esc(c.verdict.direction.label()),
        decided_by(c),
        esc(&c.verdict.reason)
    );
    let _ = writeln!(b, "<p>{}</p>", esc(&noise_line(c)));
    let _ = writeln!(
        b,
        "<table class=\"kv\"><tr><th>before</th><td>{}</td></tr><tr><th>after</th><td>{}</td></tr></table>",
        esc(&side_line(&c.before)),
        esc(&side_line(&c.after))
    );
    b.push_str("<h2>Changes</h2>\n<table class=\"delta\"><tr><th>metric</th><th>before</th><th>after</th><th>change</th><th>change %</th><th>95% interval</th></tr>\n");
    for m in &c.metrics {
        let cells = row_text(m);
        let cls = match improved(m) {
            Some(true) => " class=\"good\"",
            Some(false) => " class=\"bad\"",
            None => "",
        };
        let _ = writeln!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td{cls}>{}</td><td{cls}>{}</td><td>{}</td></tr>",
            esc(&cells[0]),
            esc(&cells[1]),
            esc(&cells[2]),
            esc(&cells[3]),
            esc(&cells[4]),
            esc(&interval_cell(m))
        );
    }
    b.push_str("</table>\n<h2>Diagnosis</h2>\n<ul>\n");
    for l in diagnosis_lines(c) {
        let _ = writeln!(b, "<li>{}</li>", esc(&l));
    }
    for n in &c.notes {
        let _ = writeln!(b, "<li>note: {}</li>", esc(n));
    }
    b.push_str("</ul>\n<h2>Timelines (aligned on the first active window)</h2>\n");
    let charts = html::chart_specs(before, &[before, after]);
    html::chart_divs(&mut b, &charts);
    b.push_str("<h2>Before</h2>\n");
    html::verdict(&mut b, before);
    b.push_str("<h2>After</h2>\n");
    html::verdict(&mut b, after);
    let tls = [
        html::timeline(before, "before", html::first_active_s(before)),
        html::timeline(after, "after", html::first_active_s(after)),
    ];
    let data = html::data_json(&charts, &tls, "s since the first active window");
    html::page(
        &format!("profile compare: {} vs {}", c.before.label, c.after.label),
        &b,
        &data,
    )
}
