//! The report as one self-contained HTML file: header, verdict and findings, timelines per
//! window (uPlot, embedded), roofline, economics and the `not available` list.
//!
//! The file makes no request: uPlot, the page's script and its styles are inline, and a
//! Content-Security-Policy meta tag (`default-src 'none'`) blocks anything that would leave
//! it. The same report gives the same bytes: the page holds no time of writing, and every
//! number goes through [`super::format`]. Long recordings are reduced to at most
//! [`MAX_COLUMNS`] columns per chart, each keeping its bucket's minimum and maximum, so no
//! peak is lost and a 24 h recording stays small.

use super::format::{est, num, opt_str, with_unit, MISSING};
use super::model::*;
use super::render::{Render, RenderError};
use super::text::{ceiling_line, fix_flags, gpu_note, served_line};
use std::fmt::Write;

const UPLOT_JS: &str = include_str!("html/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("html/uPlot.min.css");
const UPLOT_LICENSE: &str = include_str!("html/uPlot.LICENSE");
const REPORT_JS: &str = include_str!("html/report.js");
const REPORT_CSS: &str = include_str!("html/report.css");

/// Most columns a timeline keeps; each holds a bucket's min and max, so a chart has at most
/// twice as many points.
pub const MAX_COLUMNS: usize = 1500;

/// The HTML renderer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Html;

impl Render<Report> for Html {
    fn render(&self, r: &Report) -> Result<String, RenderError> {
        let mut body = String::new();
        header(&mut body, r);
        verdict(&mut body, r);
        body.push_str("<h2>Timeline</h2>\n");
        let charts = chart_specs(r, &[r]);
        chart_divs(&mut body, &charts);
        roofline(&mut body, r);
        economics(&mut body, r);
        unavailable(&mut body, r);
        let data = data_json(
            &charts,
            &[timeline(r, "recording", None)],
            "s since first scrape",
        );
        Ok(page(
            &format!("profile: {}", r.recording.label),
            &body,
            &data,
        ))
    }
}

/// Escapes text for HTML.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

/// A whole page around `body`, with the timeline data `data` (JSON) and the charting code.
pub fn page(title: &str, body: &str, data: &str) -> String {
    let mut s = String::new();
    s.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    s.push_str(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:\">\n",
    );
    let _ = writeln!(s, "<title>{}</title>", esc(title));
    let _ = writeln!(
        s,
        "<style>\n{UPLOT_CSS}\n{REPORT_CSS}</style>\n</head>\n<body>"
    );
    s.push_str(
        "<div id=\"profile-status\" data-errors=\"0\" data-drawn=\"0\" data-charts=\"0\" \
         hidden></div>\n<ul id=\"profile-errors\"></ul>\n",
    );
    s.push_str(body);
    // `</` never appears inside the JSON or the scripts' text as a closing tag.
    let _ = writeln!(
        s,
        "<script type=\"application/json\" id=\"profile-data\">{}</script>",
        data.replace("</", "<\\/")
    );
    let _ = writeln!(
        s,
        "<script>\n/* uPlot, MIT licence:\n{}*/\n{}\n</script>",
        UPLOT_LICENSE.replace("*/", "* /"),
        UPLOT_JS.replace("</script", "<\\/script")
    );
    let _ = writeln!(s, "<script>\n{REPORT_JS}</script>\n</body>\n</html>");
    s
}

fn header(b: &mut String, r: &Report) {
    let f = &r.recording;
    let gpus = if f.gpus.is_empty() {
        match &f.gpu_note {
            Some(n) => format!("none recorded: {}", gpu_note(n, true)),
            None => "none recorded".to_string(),
        }
    } else {
        f.gpus
            .iter()
            .map(|g| format!("{}: {}", g.index, opt_str(g.name.as_deref())))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(b, "<h1>{}</h1>", esc(&f.label));
    b.push_str("<table class=\"kv\">\n");
    for (k, v) in [
        ("model", opt_str(f.model_name.as_deref())),
        ("GPU", gpus),
        ("vLLM version", opt_str(f.vllm_version.as_deref())),
        ("started", f.started_at.clone()),
        ("span", with_unit(f.span_s, 1, "s")),
        (
            "scrapes",
            format!(
                "{} ok, {} failed of {}",
                f.scrapes_ok, f.scrapes_failed, f.scrapes_total
            ),
        ),
        (
            "windows",
            format!(
                "{} total, {} evaluable, {} active ({} s each)",
                r.windows.total,
                r.windows.evaluable,
                r.windows.active,
                num(Some(r.windows.window_s), 1)
            ),
        ),
        (
            "missing",
            if r.unavailable.is_empty() {
                "nothing".to_string()
            } else {
                r.unavailable
                    .iter()
                    .map(|u| u.what.clone())
                    .collect::<Vec<_>>()
                    .join("; ")
                    + " (why: see Not available)"
            },
        ),
    ] {
        let _ = writeln!(b, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(&v));
    }
    b.push_str("</table>\n");
}

/// The verdict and the findings with their fix flags.
pub fn verdict(b: &mut String, r: &Report) {
    b.push_str("<h2>Verdict</h2>\n<div class=\"verdict\">\n");
    let _ = writeln!(b, "<p><b>served</b> {}</p>", esc(&served_line(r)));
    let _ = writeln!(b, "<p><b>ceiling</b> {}</p>", esc(&ceiling_line(r)));
    for w in &r.recording.data_warnings {
        let _ = writeln!(b, "<p class=\"warn\"><b>data</b> {}</p>", esc(w));
    }
    for a in &r.availability {
        let _ = writeln!(
            b,
            "<p class=\"warn\"><b>{}</b> {}</p>",
            esc(a.kind.title()),
            esc(&a.summary)
        );
    }
    match &r.diagnosis {
        None => b.push_str("<p>rules not run</p>\n"),
        Some(d) if d.groups.is_empty() => {
            let _ = writeln!(
                b,
                "<p class=\"ok\">No bottleneck found over {} evaluable windows ({} active).</p>",
                d.windows_evaluable, d.windows_active
            );
        }
        Some(d) => {
            b.push_str("<ol class=\"findings\">\n");
            for g in &d.groups {
                let Some(p) = d.finding(g.primary) else {
                    continue;
                };
                let windows = p.windows.as_ref().map_or(String::new(), |w| {
                    format!(
                        ", fired in {} of {} evaluable windows",
                        w.fired, w.evaluable
                    )
                });
                let _ = writeln!(
                    b,
                    "<li><b>{}</b>: {:?} {} (confidence {}{})<br><code>{}</code>",
                    esc(&g.title),
                    p.rule,
                    esc(&p.title),
                    num(Some(p.confidence), 2),
                    windows,
                    esc(&fix_flags(p))
                );
                b.push_str("<ul>");
                for m in &p.measures {
                    let _ = write!(b, "<li>{}</li>", esc(&m.describe()));
                }
                for s in &g.supporting {
                    if let Some(f) = d.finding(*s) {
                        let _ = write!(b, "<li>supporting: {:?} {}</li>", f.rule, esc(&f.title));
                    }
                }
                b.push_str("</ul></li>\n");
            }
            b.push_str("</ol>\n");
        }
    }
    b.push_str("</div>\n");
}

fn roofline(b: &mut String, r: &Report) {
    let c = &r.ceiling;
    b.push_str("<h2>Roofline</h2>\n");
    let measured = r.metrics.generation_tokens_per_s;
    if c.aggregate_ceiling_tps.is_none() {
        let _ = writeln!(
            b,
            "<p class=\"warn\">No ceiling to measure against: {}</p>",
            esc(&super::text::no_ceiling_why(r))
        );
    }
    if let (Some(ceil), Some(m)) = (c.aggregate_ceiling_tps, measured) {
        let pct = if ceil > 0.0 {
            (m / ceil * 100.0).clamp(0.0, 100.0)
        } else {
            0.0
        };
        let _ = writeln!(
            b,
            "<div class=\"bar\"><div style=\"width:{}%\"></div></div>\
             <p>measured {} of {} aggregate ceiling</p>",
            num(Some(pct), 1),
            esc(&with_unit(Some(m), 1, "tok/s")),
            esc(&est(with_unit(Some(ceil), 1, "tok/s")))
        );
    }
    let rows = [
        (
            "measured generation",
            with_unit(r.metrics.generation_tokens_per_s, 1, "tok/s"),
        ),
        (
            "decode ceiling / request",
            c.decode_tps.as_ref().map_or(MISSING.to_string(), |d| {
                est(format!(
                    "{} tok/s ({} .. {})",
                    num(Some(d.expected), 1),
                    num(Some(d.lower), 1),
                    num(Some(d.upper), 1)
                ))
            }),
        ),
        (
            "aggregate ceiling",
            est(with_unit(c.aggregate_ceiling_tps, 1, "tok/s")),
        ),
        (
            "efficiency",
            c.efficiency.pct().map_or(MISSING.to_string(), |p| {
                est(format!("{} %", num(Some(p), 1)))
            }),
        ),
        ("running (mean)", num(r.metrics.running_mean, 2)),
        ("ridge batch size", est(num(c.ridge_batch_size, 1))),
        ("TPOT floor", est(with_unit(c.tpot_floor_ms, 2, "ms"))),
        (
            "measured compute per GPU (vLLM est)",
            with_unit(c.measured_tflops_per_gpu, 2, "TFLOP/s"),
        ),
        (
            "measured bandwidth use (vLLM est)",
            with_unit(c.measured_mbu_pct, 1, "% of catalog bandwidth"),
        ),
        (
            "measured DRAM bandwidth use (GPM)",
            super::text::dram_bw_text(c.measured_dram_bw_util_pct),
        ),
    ];
    kv_present(b, &rows, &super::text::no_ceiling_why(r));
}

fn economics(b: &mut String, r: &Report) {
    let e = &r.economics;
    b.push_str("<h2>Economics</h2>\n");
    let money = |m: Option<&Money>, p: usize, u: &str| {
        m.map_or(MISSING.to_string(), |m| super::text::money_text(m, p, u))
    };
    let rows = [
        ("tokens per joule", num(e.tokens_per_watt, 3)),
        ("joules per token", num(e.joules_per_token, 3)),
        (
            "cost",
            e.cost_per_hour.as_ref().map_or(MISSING.to_string(), |c| {
                format!("${}/h ({})", num(Some(c.usd_per_hour), 2), c.source_label)
            }),
        ),
        (
            "per 1M tokens",
            money(e.usd_per_million_tokens.as_ref(), 3, ""),
        ),
        (
            "recoverable",
            money(e.recoverable_usd_per_hour.as_ref(), 2, "/h"),
        ),
    ];
    let why = super::text::unavailable_why(r, "cost per hour")
        .unwrap_or_else(|| "no cost and no power reading".to_string());
    kv_present(b, &rows, &why);
}

/// The rows that hold a value, or one line saying why there is none.
fn kv_present(b: &mut String, rows: &[(&str, String)], why: &str) {
    let present: Vec<_> = rows.iter().filter(|(_, v)| v != MISSING).collect();
    if present.len() <= 1 {
        let _ = writeln!(b, "<p class=\"none\">not available: {}</p>", esc(why));
    }
    if present.is_empty() {
        return;
    }
    b.push_str("<table class=\"kv\">\n");
    for (k, v) in present {
        let _ = writeln!(b, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(v));
    }
    b.push_str("</table>\n");
}

fn unavailable(b: &mut String, r: &Report) {
    b.push_str("<h2>Not available</h2>\n");
    if r.unavailable.is_empty() {
        b.push_str("<p>Everything could be computed.</p>\n");
        return;
    }
    b.push_str("<table class=\"kv\">\n");
    for u in &r.unavailable {
        let _ = writeln!(
            b,
            "<tr><th>{}</th><td>{}</td></tr>",
            esc(&u.what),
            esc(&u.why)
        );
    }
    b.push_str("</table>\n");
}

// ---------------------------------------------------------------------------------------------
// Timelines
// ---------------------------------------------------------------------------------------------

/// One series of a chart: the key into a timeline's `series`, its legend and colour.
pub struct SeriesSpec {
    key: &'static str,
    label: &'static str,
    color: &'static str,
    prec: usize,
}

/// One chart: its series and horizontal reference lines.
pub struct ChartSpec {
    id: &'static str,
    title: &'static str,
    unit: &'static str,
    series: Vec<SeriesSpec>,
    lines: Vec<(String, f64, &'static str)>,
    min_max: f64,
}

type Pick = fn(&WindowRow) -> Option<f64>;

/// Every series a timeline may carry, with how to read it from a window row.
const SERIES: &[(&str, Pick)] = &[
    ("gen", |w| w.generation_tokens_per_s),
    ("running", |w| w.running_mean.or(w.running)),
    ("waiting", |w| w.waiting_mean.or(w.waiting)),
    ("cap", |w| w.max_num_seqs),
    ("kv_mean", |w| w.kv_cache_pct_mean.or(w.kv_cache_pct)),
    ("kv_peak", |w| w.kv_cache_peak_pct),
    ("preempt", |w| w.preemptions),
    ("ttft", |w| w.ttft_p99_ms),
    ("tpot", |w| w.tpot_p99_ms),
    ("prefix", |w| w.prefix_cache_hit_pct),
    ("gpu_util", |w| w.gpu_util_pct),
    ("power", |w| w.power_w),
    ("vram", |w| w.vram_used_mib),
    ("host_cpu", |w| w.host_cpu_cores),
];

/// Series a timeline carries only when some window has them: the GPM figures, which most GPUs
/// lack, so that a timeline without them is the same bytes as before they existed.
const SPARSE_SERIES: &[(&str, Pick)] = &[
    ("sm_active", |w| w.gpu_sm_active_pct),
    ("sm_occupancy", |w| w.gpu_sm_occupancy_pct),
    ("dram_bw", |w| w.gpu_dram_bw_util_pct),
];

/// Whether any window of these reports has a GPM figure.
fn has_gpm(all: &[&Report]) -> bool {
    all.iter().any(|r| {
        r.windows
            .rows
            .iter()
            .any(|w| SPARSE_SERIES.iter().any(|(_, pick)| pick(w).is_some()))
    })
}

fn s(key: &'static str, label: &'static str, color: &'static str, prec: usize) -> SeriesSpec {
    SeriesSpec {
        key,
        label,
        color,
        prec,
    }
}

/// The charts for these reports: the GPU charts only where some report has GPU data, the
/// ceiling and cap lines from the first report.
pub fn chart_specs(r: &Report, all: &[&Report]) -> Vec<ChartSpec> {
    let mut v = Vec::new();
    let mut gen_lines = Vec::new();
    if let Some(c) = r.ceiling.aggregate_ceiling_tps {
        gen_lines.push(("aggregate ceiling (est)".to_string(), c, "#b35900"));
    }
    v.push(ChartSpec {
        id: "gen",
        title: "Generation throughput",
        unit: "tok/s",
        series: vec![s("gen", "generation tok/s", "#1f77b4", 1)],
        lines: gen_lines,
        min_max: 1.0,
    });
    let has_cap_series = all
        .iter()
        .any(|r| r.windows.rows.iter().any(|w| w.max_num_seqs.is_some()));
    let mut run_series = vec![
        s("running", "running", "#2ca02c", 2),
        s("waiting", "waiting", "#d62728", 2),
    ];
    let mut run_lines = Vec::new();
    if has_cap_series {
        run_series.push(s("cap", "max_num_seqs", "#7f7f7f", 0));
    } else if let Some(c) = &r.inputs.max_num_seqs {
        run_lines.push((
            format!("max_num_seqs {}", num(Some(c.value), 0)),
            c.value,
            "#7f7f7f",
        ));
    }
    v.push(ChartSpec {
        id: "running",
        title: "Requests running and waiting",
        unit: "requests",
        series: run_series,
        lines: run_lines,
        min_max: 1.0,
    });
    v.push(ChartSpec {
        id: "kv",
        title: "KV cache usage",
        unit: "%",
        series: vec![
            s("kv_mean", "KV mean %", "#9467bd", 1),
            s("kv_peak", "KV peak %", "#e377c2", 1),
        ],
        lines: vec![
            ("88 %".to_string(), 88.0, "#b35900"),
            ("95 %".to_string(), 95.0, "#d62728"),
        ],
        min_max: 100.0,
    });
    v.push(ChartSpec {
        id: "preempt",
        title: "Preemptions per window",
        unit: "preemptions",
        series: vec![s("preempt", "preemptions", "#d62728", 0)],
        lines: vec![],
        min_max: 1.0,
    });
    v.push(ChartSpec {
        id: "ttft",
        title: "TTFT p99",
        unit: "ms",
        series: vec![s("ttft", "TTFT p99 ms", "#ff7f0e", 1)],
        lines: vec![],
        min_max: 1.0,
    });
    v.push(ChartSpec {
        id: "tpot",
        title: "TPOT p99",
        unit: "ms",
        series: vec![s("tpot", "TPOT p99 ms", "#17becf", 1)],
        lines: vec![],
        min_max: 1.0,
    });
    v.push(ChartSpec {
        id: "prefix",
        title: "Prefix-cache hit rate",
        unit: "%",
        series: vec![s("prefix", "prefix hits %", "#8c564b", 1)],
        lines: vec![],
        min_max: 100.0,
    });
    if all.iter().any(|r| r.windows.has_gpu_data) {
        v.push(ChartSpec {
            id: "gpu_util",
            title: "GPU utilisation",
            unit: "%",
            series: gpu_util_series(has_gpm(all)),
            lines: vec![],
            min_max: 100.0,
        });
        v.push(ChartSpec {
            id: "power",
            title: "GPU power (all GPUs)",
            unit: "W",
            series: vec![s("power", "power W", "#ff7f0e", 1)],
            lines: vec![],
            min_max: 1.0,
        });
        let vram_lines = r
            .metrics
            .vram_total_mib
            .map(|t| vec![("VRAM total".to_string(), t, "#7f7f7f")])
            .unwrap_or_default();
        v.push(ChartSpec {
            id: "vram",
            title: "VRAM used (fullest GPU)",
            unit: "MiB",
            series: vec![s("vram", "VRAM MiB", "#2ca02c", 0)],
            lines: vram_lines,
            min_max: 1.0,
        });
    }
    if all
        .iter()
        .any(|r| r.windows.rows.iter().any(|w| w.host_cpu_cores.is_some()))
    {
        v.push(ChartSpec {
            id: "host_cpu",
            title: "CPU of the sampled process (record --pid)",
            unit: "cores",
            series: vec![s("host_cpu", "PID CPU cores", "#17becf", 2)],
            lines: vec![("one core".to_string(), 1.0, "#d62728")],
            min_max: 1.0,
        });
    }
    v
}

/// The utilisation chart's series: NVML's kernel-running figure, and beside it the GPM
/// figures that say how much of the SMs and of the DRAM bandwidth was in use.
fn gpu_util_series(gpm: bool) -> Vec<SeriesSpec> {
    let mut v = vec![s("gpu_util", "GPU util %", "#1f77b4", 1)];
    if gpm {
        v.extend([
            s("sm_active", "SM active % (GPM)", "#2ca02c", 1),
            s("sm_occupancy", "SM occupancy % (GPM)", "#9467bd", 1),
            s("dram_bw", "DRAM bandwidth % of peak (GPM)", "#d62728", 1),
        ]);
    }
    v
}

/// The chart containers, with a legend of what the shading means.
pub fn chart_divs(b: &mut String, charts: &[ChartSpec]) {
    b.push_str(
        "<p class=\"legend\">Grey background: idle (not active) windows. Red marks along the \
         bottom: windows with failed scrapes. Tinted bands with a coloured strip along the top: \
         the windows each finding fired in (orange the first, purple the second). Drag across a chart to zoom into a time range \
         (all charts follow); hover to read a window's values. \
         <button id=\"profile-reset\" type=\"button\">reset zoom</button></p>\n",
    );
    for c in charts {
        let _ = writeln!(
            b,
            "<div class=\"chart\" id=\"chart-{}\" data-drawn=\"0\"></div>",
            c.id
        );
    }
}

/// One timeline as JSON: x (seconds, shifted by `-x0`), the gate, failed scrapes and every
/// series, reduced to at most [`MAX_COLUMNS`] buckets of min and max.
pub fn timeline(r: &Report, label: &str, x0: Option<f64>) -> String {
    let rows = &r.windows.rows;
    let x0 = x0.unwrap_or(0.0);
    let buckets = reduce(rows.len(), MAX_COLUMNS);
    let mut x = Vec::new();
    let mut active = Vec::new();
    let mut failed = Vec::new();
    let all_series: Vec<&(&str, Pick)> = SERIES.iter().chain(SPARSE_SERIES).collect();
    let mut series: Vec<Vec<Option<f64>>> = vec![Vec::new(); all_series.len()];
    for (a, z) in buckets {
        let bucket = &rows[a..z];
        let first = &bucket[0];
        let last = &bucket[bucket.len() - 1];
        let two = bucket.len() > 1;
        let act = bucket.iter().any(|w| w.gate.is_active());
        let fl: u32 = bucket.iter().map(|w| w.scrapes_failed).sum();
        x.push(Some(first.start_s - x0));
        active.push(Some(f64::from(u8::from(act))));
        failed.push(Some(f64::from(fl)));
        if two {
            x.push(Some(last.start_s - x0));
            active.push(Some(f64::from(u8::from(act))));
            failed.push(Some(0.0));
        }
        for (i, (_, pick)) in all_series.iter().enumerate() {
            let vals: Vec<(usize, f64)> = bucket
                .iter()
                .enumerate()
                .filter_map(|(j, w)| pick(w).map(|v| (j, v)))
                .collect();
            let lo = vals.iter().copied().min_by(|p, q| p.1.total_cmp(&q.1));
            let hi = vals.iter().copied().max_by(|p, q| p.1.total_cmp(&q.1));
            if !two {
                series[i].push(lo.map(|p| p.1));
                continue;
            }
            // Min and max in the order they happened, so the line's shape survives.
            let (p1, p2) = match (lo, hi) {
                (Some(l), Some(h)) if l.0 <= h.0 => (Some(l.1), Some(h.1)),
                (Some(l), Some(h)) => (Some(h.1), Some(l.1)),
                _ => (None, None),
            };
            series[i].push(p1);
            series[i].push(p2);
        }
    }
    let mut o = String::new();
    let _ = write!(o, "{{\"label\":{},\"x\":{}", json_str(label), arr(&x, 3));
    let _ = write!(
        o,
        ",\"active\":{},\"failed\":{}",
        arr(&active, 0),
        arr(&failed, 0)
    );
    o.push_str(",\"findings\":[");
    for (i, (label, spans)) in finding_spans(r, x0).iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        let spans: Vec<String> = spans
            .iter()
            .map(|(a, b)| format!("[{},{}]", num(Some(*a), 3), num(Some(*b), 3)))
            .collect();
        let _ = write!(
            o,
            "{{\"label\":{},\"spans\":[{}]}}",
            json_str(label),
            spans.join(",")
        );
    }
    o.push(']');
    o.push_str(",\"series\":{");
    for (i, (key, _)) in all_series.iter().enumerate() {
        if i >= SERIES.len() && series[i].iter().all(Option::is_none) {
            continue;
        }
        if i > 0 {
            o.push(',');
        }
        let _ = write!(o, "\"{key}\":{}", arr(&series[i], 3));
    }
    o.push_str("}}");
    o
}

/// Each significant finding's windows as time spans `(start, end)` on the timeline's x axis,
/// labelled with the rule, in rank order: what the timelines shade.
fn finding_spans(r: &Report, x0: f64) -> Vec<(String, Vec<(f64, f64)>)> {
    let Some(d) = &r.diagnosis else {
        return Vec::new();
    };
    let start_of = |i: u32| {
        r.windows
            .rows
            .iter()
            .find(|w| w.index == i)
            .map(|w| w.start_s - x0)
    };
    d.recommendations()
        .filter_map(|f| {
            let runs = &f.windows.as_ref()?.fired_runs;
            let spans: Vec<(f64, f64)> = runs
                .iter()
                .filter_map(|[a, b]| Some((start_of(*a)?, start_of(*b)? + r.windows.window_s)))
                .collect();
            (!spans.is_empty()).then(|| (format!("{:?} {}", f.rule, f.title), spans))
        })
        .collect()
}

/// Start of the first active window, seconds, for aligning two timelines.
pub fn first_active_s(r: &Report) -> Option<f64> {
    r.windows
        .rows
        .iter()
        .find(|w| w.gate.is_active())
        .map(|w| w.start_s)
}

/// `n` items cut into at most `max` contiguous buckets, as `[start, end)` ranges.
fn reduce(n: usize, max: usize) -> Vec<(usize, usize)> {
    if n == 0 {
        return Vec::new();
    }
    let per = n.div_ceil(max).max(1);
    (0..n).step_by(per).map(|a| (a, (a + per).min(n))).collect()
}

fn arr(v: &[Option<f64>], prec: usize) -> String {
    let items: Vec<String> = v
        .iter()
        .map(|x| {
            let s = num(*x, prec);
            if s == MISSING {
                "null".to_string()
            } else {
                s
            }
        })
        .collect();
    format!("[{}]", items.join(","))
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

/// The page's data: the charts to draw and the timelines.
pub fn data_json(charts: &[ChartSpec], timelines: &[String], x_label: &str) -> String {
    let mut o = String::new();
    let _ = write!(o, "{{\"x_label\":{},\"charts\":[", json_str(x_label));
    for (i, c) in charts.iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        let _ = write!(
            o,
            "{{\"id\":\"{}\",\"title\":{},\"unit\":{},\"min_max\":{},\"series\":[",
            c.id,
            json_str(c.title),
            json_str(c.unit),
            num(Some(c.min_max), 1)
        );
        for (j, sp) in c.series.iter().enumerate() {
            if j > 0 {
                o.push(',');
            }
            let _ = write!(
                o,
                "{{\"key\":\"{}\",\"label\":{},\"color\":\"{}\",\"prec\":{}}}",
                sp.key,
                json_str(sp.label),
                sp.color,
                sp.prec
            );
        }
        o.push_str("],\"lines\":[");
        for (j, (label, value, color)) in c.lines.iter().enumerate() {
            if j > 0 {
                o.push(',');
            }
            let _ = write!(
                o,
                "{{\"label\":{},\"value\":{},\"color\":\"{color}\"}}",
                json_str(label),
                num(Some(*value), 3)
            );
        }
        o.push_str("]}");
    }
    o.push_str("],\"timelines\":[");
    o.push_str(&timelines.join(","));
    o.push_str("]}");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_item_once() {
        assert!(reduce(0, 10).is_empty());
        assert_eq!(reduce(3, 10), vec![(0, 1), (1, 2), (2, 3)]);
        let b = reduce(43_200, MAX_COLUMNS);
        assert!(b.len() <= MAX_COLUMNS);
        assert_eq!(b[0].0, 0);
        assert_eq!(b.last().unwrap().1, 43_200);
        assert!(b.windows(2).all(|p| p[0].1 == p[1].0));
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
