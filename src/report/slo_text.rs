//! The SLO capacity section as text: the answer first (where the SLO breaks, with the
//! evidence windows), goodput, then one row per load level. Used by `analyze --slo` (as a
//! section of the report) and by `profile capacity` (alone).

use super::format::{num, MISSING};
use super::render::{Render, RenderError};
use super::text::{wrap, Text, WIDTH};
use crate::capacity::{Capacity, LoadLevel, SloAssessment, SloTarget, WindowRef};
use comfy_table::{
    presets::UTF8_FULL_CONDENSED, Attribute, Cell, Color, ContentArrangement, Table,
};

impl Render<SloAssessment> for Text {
    fn render(&self, a: &SloAssessment) -> Result<String, RenderError> {
        Ok(render_slo(a, self.0.color))
    }
}

/// A bound or a quantile in ms (latency SLOs are read in ms).
fn ms(v: Option<f64>) -> String {
    match v {
        Some(s) => format!("{} ms", num(Some(s * 1e3), 1)),
        None => MISSING.to_string(),
    }
}

fn pct(v: Option<f64>) -> String {
    match v {
        Some(x) => format!("{}%", num(Some(x * 100.0), 1)),
        None => MISSING.to_string(),
    }
}

fn target_text(t: &SloTarget) -> String {
    format!("{} <= {}", t.name(), ms(Some(t.bound_s)))
}

/// `12-17, 20` (one recording) or `A: 3-5; B: 1` (several), in order.
fn windows_text(a: &SloAssessment, w: &[WindowRef]) -> String {
    let mut parts: Vec<String> = Vec::new();
    for (s, label) in a.sources.iter().enumerate() {
        let idx: Vec<u32> = w
            .iter()
            .filter(|r| r.source as usize == s)
            .map(|r| r.index)
            .collect();
        if idx.is_empty() {
            continue;
        }
        let mut runs: Vec<String> = Vec::new();
        let mut i = 0;
        while i < idx.len() {
            let mut j = i;
            while j + 1 < idx.len() && idx[j + 1] == idx[j] + 1 {
                j += 1;
            }
            runs.push(if j > i {
                format!("{}-{}", idx[i], idx[j])
            } else {
                idx[i].to_string()
            });
            i = j + 1;
        }
        let runs = runs.join(", ");
        parts.push(if a.sources.len() > 1 {
            format!("{label}: {runs}")
        } else {
            runs
        });
    }
    parts.join("; ")
}

fn load_text(l: &LoadLevel) -> String {
    format!(
        "{} requests in the server ({} req/s, {} tok/s)",
        num(Some(l.in_system), 1),
        num(l.requests_per_s, 2),
        num(l.generation_tokens_per_s, 1)
    )
}

/// What the level missed, e.g. `ttft-p99 3400.0 ms > 2000.0 ms`.
fn misses(a: &SloAssessment, l: &LoadLevel) -> String {
    a.targets
        .iter()
        .zip(&l.targets)
        .filter(|(_, r)| r.meets == Some(false))
        .map(|(t, r)| format!("{} {} > {}", t.name(), ms(r.value_s), ms(Some(t.bound_s))))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The answer in words, one or two lines.
pub fn answer(a: &SloAssessment) -> Vec<String> {
    let lv = |i: usize| &a.levels[i];
    match &a.capacity {
        Capacity::BreaksAt {
            holds,
            breaks,
            crossing_in_system,
            missed_below,
            met_above,
            ..
        } => {
            let (h, b) = (lv(*holds), lv(*breaks));
            let mut out = vec![format!(
                "holds up to {} (windows {}); breaks at {} requests in the server ({} running, \
                 {} waiting; {}; windows {})",
                load_text(h),
                windows_text(a, &h.windows),
                num(Some(b.in_system), 1),
                num(b.running_mean, 1),
                num(b.waiting_mean, 1),
                misses(a, b),
                windows_text(a, &b.windows)
            )];
            if let Some(x) = crossing_in_system {
                out.push(format!(
                    "the bound is crossed near {} requests in the server (interpolated between \
                     the two levels)",
                    num(Some(*x), 1)
                ));
            }
            let loads = |v: &[usize]| -> String {
                v.iter()
                    .map(|&i| num(Some(lv(i).in_system), 1))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            if !missed_below.is_empty() || !met_above.is_empty() {
                let mut parts = Vec::new();
                if !missed_below.is_empty() {
                    parts.push(format!("missed below the break at {}", loads(missed_below)));
                }
                if !met_above.is_empty() {
                    parts.push(format!("met above it at {}", loads(met_above)));
                }
                out.push(format!(
                    "not monotone ({}): the break is the split with the least time on the \
                     wrong side",
                    parts.join("; ")
                ));
            }
            out
        }
        Capacity::NotReached { highest } => vec![format!(
            "not reached: met at every load seen, up to {} (windows {}); the break lies higher",
            load_text(lv(*highest)),
            windows_text(a, &lv(*highest).windows)
        )],
        Capacity::BrokenAtLowest { lowest, .. } => vec![format!(
            "already broken at the lowest load seen: {} ({}; windows {}); the break lies lower",
            load_text(lv(*lowest)),
            misses(a, lv(*lowest)),
            windows_text(a, &lv(*lowest).windows)
        )],
        Capacity::Unknown { why } => vec![format!("cannot tell: {why}")],
    }
}

fn goodput_line(a: &SloAssessment) -> String {
    let g = &a.goodput;
    let mut parts: Vec<String> = a
        .targets
        .iter()
        .zip(&g.shares)
        .map(|(t, s)| {
            format!(
                "{} of {} within {}",
                pct(*s),
                t.latency.title(),
                ms(Some(t.bound_s))
            )
        })
        .collect();
    if a.targets.len() > 1 {
        parts.push(format!(
            "all targets {}..{} (the histograms do not say which request missed which)",
            pct(g.all_low),
            pct(g.all_high)
        ));
    }
    format!("goodput: {}", parts.join("; "))
}

/// Renders the assessment: the answer, goodput, the levels.
pub fn render_slo(a: &SloAssessment, color: bool) -> String {
    let mut out = String::new();
    let targets: Vec<String> = a.targets.iter().map(target_text).collect();
    out.push_str(&wrap(
        0,
        &format!(
            "SLO capacity ({}) over {} active window(s) of {}; load = requests in the server \
             (running + waiting)",
            targets.join(", "),
            a.windows_used,
            a.sources.join(", ")
        ),
    ));
    for l in answer(a) {
        out.push_str(&wrap(2, &format!("  {l}")));
    }
    out.push_str(&wrap(2, &format!("  {}", goodput_line(a))));
    for n in &a.notes {
        out.push_str(&wrap(2, &format!("  note: {n}")));
    }
    if a.levels.is_empty() {
        return out;
    }
    out.push_str(&wrap(
        2,
        "  levels by load (requests in the server); ms: the target's quantile from the \
         level's merged buckets; ok: share of observations within the bound",
    ));
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.force_no_tty();
    if color {
        t.enforce_styling();
    }
    t.set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(WIDTH as u16);
    let mut head: Vec<String> = ["load", "running", "waiting", "req/s", "tok/s"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for tg in &a.targets {
        head.push(format!("{} ms", tg.name()));
        head.push(format!("{} ok", tg.latency.title()));
    }
    head.push("SLO".to_string());
    head.push("windows".to_string());
    t.set_header(head.iter().map(|h| {
        let c = Cell::new(h);
        if color {
            c.add_attribute(Attribute::Bold).fg(Color::Cyan)
        } else {
            c
        }
    }));
    for l in &a.levels {
        let mut row = vec![
            num(Some(l.in_system), 1),
            num(l.running_mean, 1),
            num(l.waiting_mean, 1),
            num(l.requests_per_s, 2),
            num(l.generation_tokens_per_s, 1),
        ];
        for r in &l.targets {
            row.push(num(r.value_s.map(|v| v * 1e3), 1));
            row.push(pct(r.share));
        }
        row.push(
            match l.meets {
                Some(true) => "met",
                Some(false) => "missed",
                None => MISSING,
            }
            .to_string(),
        );
        row.push(l.windows.len().to_string());
        t.add_row(row);
    }
    out.push_str(&t.to_string());
    out.push('\n');
    out
}
