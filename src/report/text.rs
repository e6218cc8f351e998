//! The report as text tables (comfy-table).
//!
//! Floats are formatted here, and only here, at a fixed precision per unit. Every figure that
//! rests on the catalog is marked `(est)`; every missing value is `-`, and the `unavailable`
//! table at the end says why. Colour is the caller's decision (`color`): the renderer never
//! looks at the terminal, so the same report and flag always give the same bytes.

use super::format::{est, num, opt_str, with_unit, MISSING};
use super::model::*;
use super::render::{Render, RenderError};
use comfy_table::{
    presets::UTF8_FULL_CONDENSED, Attribute, Cell, Color, ContentArrangement, Table,
};

/// Width every table and line wraps to. Fixed, not the terminal's, so that the output depends
/// on the report alone; 100 columns fit a split terminal and a code review.
pub(super) const WIDTH: usize = 100;

struct Tables {
    color: bool,
    out: String,
}

impl Tables {
    fn table(&self, header: &[&str]) -> Table {
        let mut t = Table::new();
        t.load_preset(UTF8_FULL_CONDENSED);
        // Never consult the terminal (width, styling): output depends on the inputs only.
        t.force_no_tty();
        if self.color {
            t.enforce_styling();
        }
        t.set_content_arrangement(ContentArrangement::Dynamic)
            .set_width(WIDTH as u16);
        t.set_header(header.iter().map(|h| self.head(h)));
        t
    }

    fn head(&self, h: &str) -> Cell {
        let c = Cell::new(h);
        if self.color {
            c.add_attribute(Attribute::Bold).fg(Color::Cyan)
        } else {
            c
        }
    }

    /// A two-column key/value table.
    fn kv(&mut self, title: &str, rows: Vec<(&str, String)>) {
        let mut t = self.table(&[title, ""]);
        for (k, v) in rows {
            t.add_row(vec![k.to_string(), v]);
        }
        self.push(t);
    }

    /// A key/value table of the rows that hold a value. A section with none is one line
    /// saying why (`why`), not a table of dashes; the rows left out are in the `not available`
    /// list at the end.
    fn kv_present(&mut self, title: &str, rows: Vec<(&str, String)>, why: &str) {
        let rows: Vec<_> = rows.into_iter().filter(|(_, v)| v != MISSING).collect();
        if rows.is_empty() {
            let line = format!("{title}: no data ({why})");
            self.out.push_str(&wrap(0, &line));
        } else {
            self.kv(title, rows);
        }
    }

    fn push(&mut self, t: Table) {
        self.out.push_str(&t.to_string());
        self.out.push('\n');
    }
}

/// How to render text: the caller's decisions, never the terminal's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TextOptions {
    /// Add ANSI styling (pass `true` only when stdout is a terminal).
    pub color: bool,
    /// `-v`: also list findings below the significance gate and why each silent rule stayed
    /// silent (the per-window table is driven by the report's `rows`, filled at analysis).
    pub verbose: bool,
}

/// The text renderer, with its options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Text(pub TextOptions);

impl Render<Report> for Text {
    fn render(&self, report: &Report) -> Result<String, RenderError> {
        Ok(render_text_with(report, self.0))
    }
}

/// Renders the report as text tables, without the verbose diagnosis. `color` adds ANSI
/// styling (pass `true` only when stdout is a terminal).
pub fn render_text(r: &Report, color: bool) -> String {
    render_text_with(
        r,
        TextOptions {
            color,
            verbose: false,
        },
    )
}

/// Renders the report as text tables, then the diagnosis.
pub fn render_text_with(r: &Report, opts: TextOptions) -> String {
    let color = opts.color;
    let mut t = Tables {
        color,
        out: String::new(),
    };
    // Lost or repaired data first: every figure below rests on what is left.
    for w in &r.recording.data_warnings {
        t.out.push_str(&wrap(0, &format!("DATA: {w}")));
    }
    if !r.recording.data_warnings.is_empty() {
        t.out.push('\n');
    }
    t.out.push_str(&verdict(r, opts));
    t.out.push('\n');
    recording(&mut t, r, opts.verbose);
    windows(&mut t, r);
    load(&mut t, r);
    latency(&mut t, r);
    engines(&mut t, r);
    gpu(&mut t, r);
    host(&mut t, r);
    ceiling(&mut t, r);
    economics(&mut t, r);
    t.out.push_str(&super::diagnosis_text::render(
        r.diagnosis.as_ref(),
        color,
        opts.verbose,
    ));
    if let Some(a) = &r.slo {
        t.out.push_str(&super::slo_text::render_slo(a, color));
    }
    if opts.verbose && !r.windows.rows.is_empty() {
        window_rows(&mut t, &r.windows.rows);
    }
    unavailable(&mut t, r, opts.verbose);
    t.out
}

fn recording(t: &mut Tables, r: &Report, verbose: bool) {
    let f = &r.recording;
    let range = match (&f.range_from, &f.range_to) {
        (None, None) => "whole recording".to_string(),
        (a, b) => format!(
            "from {} to {}",
            a.as_deref().unwrap_or("start"),
            b.as_deref().unwrap_or("end")
        ),
    };
    let gpus = if f.gpus.is_empty() {
        MISSING.to_string()
    } else {
        let names: Vec<String> = f
            .gpus
            .iter()
            .map(|g| format!("{}: {}", g.index, opt_str(g.name.as_deref())))
            .collect();
        format!("{} ({})", f.gpu_count, names.join(", "))
    };
    let mut rows = vec![
        ("target", f.target_url.clone()),
        ("vLLM version", opt_str(f.vllm_version.as_deref())),
        ("model", opt_str(f.model_name.as_deref())),
        ("started", f.started_at.clone()),
        ("range", range),
        ("first scrape", opt_str(f.first_scrape_at.as_deref())),
        ("last scrape", opt_str(f.last_scrape_at.as_deref())),
        ("span", with_unit(f.span_s, 1, "s")),
        (
            "scrapes",
            format!(
                "{} ok, {} failed of {}",
                f.scrapes_ok, f.scrapes_failed, f.scrapes_total
            ),
        ),
        ("GPUs", gpus),
    ];
    if let Some(note) = &f.gpu_note {
        rows.push(("GPU note", gpu_note(note, verbose)));
    }
    // One engine is the ordinary case, not a data-parallel deployment: say nothing.
    if f.engines.len() > 1 {
        rows.push((
            "engines (DP ranks)",
            format!("{} ({})", f.engines.len(), f.engines.join(", ")),
        ));
    }
    for d in &f.damaged_files {
        rows.push(("damaged file", format!("{}: {}", d.name, d.problem)));
    }
    let title = format!("recording {}", f.label);
    t.kv(&title, rows);
}

fn windows(t: &mut Tables, r: &Report) {
    let w = &r.windows;
    let mut rows = vec![
        ("window length", with_unit(Some(w.window_s), 3, "s")),
        (
            "windows",
            format!(
                "{} total, {} evaluable, {} active",
                w.total, w.evaluable, w.active
            ),
        ),
        ("active time", with_unit(w.active_duration_s, 1, "s")),
        ("evaluable time", with_unit(w.evaluable_duration_s, 1, "s")),
        ("GPU data", if w.has_gpu_data { "yes" } else { "no" }.into()),
    ];
    if let Some(note) = &w.no_gpu_fallback_note {
        rows.push(("no-GPU fallback", note.clone()));
    }
    if w.all_non_evaluable {
        let last = w.last_raw_window.as_ref().map_or(MISSING.to_string(), |l| {
            format!(
                "window {} (not evaluable): running {}, waiting {}, KV {} %, {} tok/s",
                l.index,
                num(l.running, 1),
                num(l.waiting, 1),
                num(l.kv_cache_pct, 1),
                num(l.generation_tokens_per_s, 1)
            )
        });
        rows.push(("last raw window", last));
    }
    t.kv("windows", rows);
}

fn load(t: &mut Tables, r: &Report) {
    let m = &r.metrics;
    let cap = r
        .inputs
        .max_num_seqs
        .as_ref()
        .map_or(MISSING.to_string(), |s| {
            format!("{} ({})", num(Some(s.value), 0), s.source)
        });
    let rows = vec![
        (
            "generation",
            with_unit(m.generation_tokens_per_s, 1, "tok/s"),
        ),
        ("prompt", with_unit(m.prompt_tokens_per_s, 1, "tok/s")),
        (
            "prompt computed",
            with_unit(m.prompt_tokens_computed_per_s, 1, "tok/s"),
        ),
        ("requests finished", with_unit(m.requests_per_s, 2, "req/s")),
        ("running (mean)", num(m.running_mean, 2)),
        ("waiting (mean)", num(m.waiting_mean, 2)),
        ("max_num_seqs", cap),
        (
            "prompt length (mean)",
            with_unit(m.prompt_tokens_mean, 1, "tokens"),
        ),
        ("KV cache (mean)", with_unit(m.kv_cache_pct_mean, 1, "%")),
        ("KV cache (peak)", with_unit(m.kv_cache_peak_pct, 1, "%")),
        (
            "prefix-cache hits",
            with_unit(m.prefix_cache_hit_pct, 1, "%"),
        ),
        (
            "prompt from cache",
            with_unit(m.prompt_tokens_cached_pct, 1, "%"),
        ),
        ("preemptions", with_unit(m.preemptions_per_s, 3, "/s")),
        ("total generated", num(m.totals.generation_tokens, 0)),
        ("total prompt", num(m.totals.prompt_tokens, 0)),
        ("total requests", num(m.totals.requests, 0)),
        ("total preemptions", num(m.totals.preemptions, 0)),
    ];
    t.kv("throughput and load", rows);
}

/// One row per data-parallel engine, when there are two or more.
fn engines(t: &mut Tables, r: &Report) {
    if r.metrics.per_engine.is_empty() {
        return;
    }
    let mut tab = t.table(&["engine", "running", "waiting", "KV peak %", "preemptions"]);
    for e in &r.metrics.per_engine {
        tab.add_row(vec![
            e.engine.clone(),
            num(e.running_mean, 2),
            num(e.waiting_mean, 2),
            num(e.kv_cache_peak_pct, 1),
            num(e.preemptions, 0),
        ]);
    }
    t.push(tab);
}

fn latency(t: &mut Tables, r: &Report) {
    let m = &r.metrics;
    let mut tab = t.table(&["latency", "mean ms", "p99 ms", "observations", "metric"]);
    for (name, l) in [
        ("TTFT", &m.ttft),
        ("TPOT", &m.tpot),
        ("inter-token", &m.itl),
        ("prefill", &m.prefill),
        ("queue", &m.queue),
        ("end-to-end", &m.e2e),
    ] {
        let mean = if l.mean_is_cumulative && l.mean_ms.is_some() {
            format!("{} (cumulative)", num(l.mean_ms, 1))
        } else {
            num(l.mean_ms, 1)
        };
        tab.add_row(vec![
            name.to_string(),
            mean,
            num(l.p99_ms, 1),
            num(l.observations, 0),
            opt_str(l.metric.as_deref()),
        ]);
    }
    t.push(tab);
}

fn gpu(t: &mut Tables, r: &Report) {
    let m = &r.metrics;
    let rows = vec![
        ("utilisation", with_unit(m.gpu_util_pct, 1, "%")),
        ("memory controller", with_unit(m.gpu_mem_util_pct, 1, "%")),
        ("SM active (GPM)", with_unit(m.gpu_sm_active_pct, 1, "%")),
        (
            "SM occupancy (GPM)",
            with_unit(m.gpu_sm_occupancy_pct, 1, "%"),
        ),
        (
            "DRAM bandwidth (GPM)",
            with_unit(m.gpu_dram_bw_util_pct, 1, "% of peak"),
        ),
        ("power (all GPUs)", with_unit(m.power_w, 1, "W")),
        ("VRAM used", with_unit(m.vram_used_mib, 0, "MiB")),
        ("VRAM peak", with_unit(m.vram_peak_mib, 0, "MiB")),
        ("VRAM total", with_unit(m.vram_total_mib, 0, "MiB")),
        ("temperature", with_unit(m.temperature_c, 0, "°C")),
        ("temperature peak", with_unit(m.temperature_peak_c, 0, "°C")),
        ("SM clock", with_unit(m.sm_clock_mhz, 0, "MHz")),
    ];
    let why = if r.windows.has_gpu_data {
        "no GPU reading in the evaluable windows".to_string()
    } else {
        match &r.recording.gpu_note {
            Some(n) => format!("the recording holds no GPU reading: {}", gpu_note(n, false)),
            None => "the recording holds no GPU reading".to_string(),
        }
    };
    t.kv_present("GPU", rows, &why);
}

/// The `record --pid` process; nothing for a recording without host sampling.
fn host(t: &mut Tables, r: &Report) {
    let Some(h) = &r.host else {
        return;
    };
    let count = |v: Option<u32>| v.map_or(MISSING.to_string(), |n| n.to_string());
    let rows = vec![
        ("process", format!("PID {} ({})", h.pid, h.comm)),
        ("CPU, with children", with_unit(h.cpu_cores, 2, "cores")),
        (
            "CPU, the PID alone",
            with_unit(h.target_cpu_cores, 2, "cores"),
        ),
        ("RSS mean", with_unit(h.rss_mib_mean, 0, "MiB")),
        ("RSS peak", with_unit(h.rss_mib_peak, 0, "MiB")),
        ("threads peak", count(h.threads_peak)),
        ("processes below it (most at once)", count(h.children_max)),
        ("exited after", with_unit(h.exited_after_s, 1, "s")),
    ];
    t.kv_present(
        "host process (record --pid)",
        rows,
        "no reading of the process",
    );
    if let Some(w) = &h.wrapper_warning {
        t.out.push_str(&wrap(0, &format!("WARNING: {w}")));
        t.out.push('\n');
    }
}

fn range_text(r: Option<&CeilingEstimate>, prec: usize, unit: &str) -> String {
    match r {
        Some(r) => est(format!(
            "{} {unit} ({} .. {})",
            num(Some(r.expected), prec),
            num(Some(r.lower), prec),
            num(Some(r.upper), prec)
        )),
        None => MISSING.to_string(),
    }
}

/// The GPUs' measured DRAM bandwidth share, set against the decode ceiling's assumption.
pub(super) fn dram_bw_text(pct: Option<f64>) -> String {
    match pct {
        Some(_) => format!(
            "{} % of peak (NVML GPM; the decode ceiling assumes 100 %)",
            num(pct, 1)
        ),
        None => MISSING.to_string(),
    }
}

fn ceiling(t: &mut Tables, r: &Report) {
    let c = &r.ceiling;
    let gpu = match (&c.gpu, &c.gpu_name) {
        (Some(g), _) => format!(
            "{} ({}; {} GB/s, {} TFLOPs FP32)",
            g.name,
            g.id,
            num(g.mem_bw_gbps, 0),
            num(g.fp32_tflops, 1)
        ),
        (None, Some(n)) => format!("{n:?} not in catalog"),
        (None, None) => MISSING.to_string(),
    };
    let model = match (&c.model, &c.model_name) {
        (Some(m), _) => format!(
            "{} ({}; {} B total, {} B active{})",
            m.name,
            m.id,
            num(m.total_params_b, 0),
            num(m.active_params_b.or(m.total_params_b), 0),
            if m.moe { ", MoE" } else { "" }
        ),
        (None, Some(n)) => format!("{n:?} not in catalog"),
        (None, None) => MISSING.to_string(),
    };
    let b = &c.bytes_per_param;
    let efficiency = match c.efficiency.pct() {
        Some(p) => est(format!("{} %", num(Some(p), 1))),
        None if c.decode_tps.is_some() => {
            format!("not shown: {}", c.efficiency.reason().unwrap_or_default())
        }
        None => MISSING.to_string(),
    };
    let prefill_floor = if c.prefill_floor_suppressed {
        "suppressed (running >= ridge batch size)".to_string()
    } else {
        est(with_unit(c.prefill_floor_ms, 2, "ms"))
    };
    let rows = vec![
        ("catalog", c.catalog.clone()),
        ("GPU", gpu),
        ("model", model),
        (
            "bytes per parameter",
            format!(
                "{} ({}{})",
                num(Some(b.value), 0),
                b.source_label,
                b.dtype.as_ref().map_or(String::new(), |d| format!(": {d}"))
            ),
        ),
        (
            "tensor parallel",
            format!(
                "{} ({})",
                c.tensor_parallel.value, c.tensor_parallel.source_label
            ),
        ),
        (
            "decode ceiling / request",
            range_text(c.decode_tps.as_ref(), 1, "tok/s"),
        ),
        (
            "aggregate ceiling",
            est(with_unit(c.aggregate_ceiling_tps, 1, "tok/s")),
        ),
        ("efficiency", efficiency),
        ("headroom", est(with_unit(c.headroom_pct, 1, "%"))),
        (
            "prefill ceiling",
            range_text(c.prefill_per_s.as_ref(), 2, "prompts/s"),
        ),
        (
            "prefill seq_len",
            c.seq_len.as_ref().map_or(MISSING.to_string(), |s| {
                format!("{} tokens ({})", s.tokens, s.source)
            }),
        ),
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
            dram_bw_text(c.measured_dram_bw_util_pct),
        ),
        ("prefill floor", prefill_floor),
        ("weights", est(with_unit(c.weight_gb, 1, "GB"))),
        (
            "VRAM per GPU",
            c.vram_total_gb.as_ref().map_or(MISSING.to_string(), |v| {
                format!("{} GB ({})", num(Some(v.value), 1), v.source)
            }),
        ),
        (
            "KV headroom per GPU",
            est(with_unit(c.kv_headroom_gb, 1, "GB")),
        ),
        (
            "usable VRAM per GPU",
            est(with_unit(c.usable_vram_gb, 1, "GB")),
        ),
        (
            "min tensor parallel",
            est(c.min_tp.map_or(MISSING.to_string(), |n| n.to_string())),
        ),
    ];
    t.kv_present("ceiling", rows, "no catalog entry matched");
}

fn money(m: Option<&Money>, prec: usize, unit: &str) -> String {
    match m {
        Some(m) => {
            let s = format!("${}{unit}", num(Some(m.usd), prec));
            if m.estimated {
                est(s)
            } else {
                s
            }
        }
        None => MISSING.to_string(),
    }
}

fn economics(t: &mut Tables, r: &Report) {
    let e = &r.economics;
    let cost = e.cost_per_hour.as_ref().map_or(MISSING.to_string(), |c| {
        let s = format!("${}/h ({})", num(Some(c.usd_per_hour), 2), c.source_label);
        if c.estimated {
            est(s)
        } else {
            s
        }
    });
    let rows = vec![
        ("tokens per joule", num(e.tokens_per_watt, 3)),
        ("joules per token", num(e.joules_per_token, 3)),
        ("cost", cost),
        (
            "per 1M tokens",
            money(e.usd_per_million_tokens.as_ref(), 3, ""),
        ),
        (
            "recoverable",
            money(e.recoverable_usd_per_hour.as_ref(), 2, "/h"),
        ),
    ];
    let why = unavailable_why(r, "cost per hour")
        .unwrap_or_else(|| "no cost and no power reading".to_string());
    t.kv_present("economics", rows, &why);
}

fn window_rows(t: &mut Tables, rows: &[WindowRow]) {
    // The sampled process's CPU only where `record --pid` recorded it, so that the table of
    // every other recording stays as it was.
    let host = rows.iter().any(|w| w.host_cpu_cores.is_some());
    let mut head = vec![
        "window", "start s", "dur s", "gate", "scrapes", "running", "waiting", "KV %", "tok/s",
        "GPU %",
    ];
    if host {
        head.push("PID CPU");
    }
    let mut tab = t.table(&head);
    for w in rows {
        let mut row = vec![
            w.index.to_string(),
            num(Some(w.start_s), 1),
            num(w.duration_s, 2),
            w.gate.label().to_string(),
            format!("{}+{} failed", w.scrapes_ok, w.scrapes_failed),
            num(w.running, 1),
            num(w.waiting, 1),
            num(w.kv_cache_pct, 1),
            num(w.generation_tokens_per_s, 1),
            num(w.gpu_util_pct, 1),
        ];
        if host {
            row.push(num(w.host_cpu_cores, 2));
        }
        tab.add_row(row);
    }
    t.push(tab);
}

fn unavailable(t: &mut Tables, r: &Report, verbose: bool) {
    if r.unavailable.is_empty() {
        return;
    }
    let mut tab = t.table(&["not available", "why"]);
    for u in &r.unavailable {
        tab.add_row(vec![u.what.clone(), reason(r, &u.why, verbose)]);
    }
    t.push(tab);
}

/// Wraps `text` at [`WIDTH`], starting at `indent` spaces; continuation lines indent two
/// more. Ends in a newline.
pub(super) fn wrap(indent: usize, text: &str) -> String {
    let mut s = String::new();
    let mut col = 0;
    let mut first = true;
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let len = word.chars().count();
        if first {
            s.push_str(&" ".repeat(indent));
            col = indent;
        } else if col + 1 + len > WIDTH && col > indent + 2 {
            s.push('\n');
            s.push_str(&" ".repeat(indent + 2));
            col = indent + 2;
        } else {
            s.push(' ');
            col += 1;
        }
        s.push_str(word);
        col += len;
        first = false;
    }
    s.push('\n');
    s
}

/// The recorder's note on why no GPU was recorded, as a reader wants it: a missing NVML
/// library is "no NVIDIA driver on this host"; the loader's own words only with `verbose`.
pub(super) fn gpu_note(note: &str, verbose: bool) -> String {
    let no_driver = note.contains("libnvidia-ml") || note.contains("libloading");
    match (no_driver, verbose) {
        (true, false) => "no NVIDIA driver on this host (-v for the loader's error)".to_string(),
        (true, true) => format!("no NVIDIA driver on this host ({note})"),
        (false, _) => note.to_string(),
    }
}

/// A `not available` reason with the recorder's raw GPU note replaced by [`gpu_note`].
fn reason(r: &Report, why: &str, verbose: bool) -> String {
    match &r.recording.gpu_note {
        Some(n) if !verbose && why.contains(n.as_str()) => {
            why.replace(n.as_str(), &gpu_note(n, false))
        }
        _ => why.to_string(),
    }
}

/// The reason of the first `not available` entry whose name starts with `what`.
pub(super) fn unavailable_why(r: &Report, what: &str) -> Option<String> {
    r.unavailable
        .iter()
        .find(|u| u.what.starts_with(what))
        .map(|u| reason(r, &u.why, false))
}

/// Why no efficiency figure is shown, in a few words.
pub(super) fn no_ceiling_why(r: &Report) -> String {
    let c = &r.ceiling;
    if c.decode_tps.is_some() {
        return c.efficiency.reason().unwrap_or_default().to_string();
    }
    unavailable_why(r, "model catalog entry")
        .or_else(|| unavailable_why(r, "GPU catalog entry"))
        .or_else(|| unavailable_why(r, "decode"))
        .unwrap_or_else(|| "no decode ceiling".to_string())
}

/// `$1.23/h (est)`.
pub(super) fn money_text(m: &Money, prec: usize, unit: &str) -> String {
    money(Some(m), prec, unit)
}

/// What the server did, in one line: throughput, requests, running of the cap, KV peak and
/// TTFT p99.
pub(super) fn served_line(r: &Report) -> String {
    let m = &r.metrics;
    let cap = r.inputs.max_num_seqs.as_ref().map_or(String::new(), |s| {
        format!(" of max_num_seqs {}", num(Some(s.value), 0))
    });
    format!(
        "{}, {}; running {}{cap}, waiting {}; KV peak {}; TTFT p99 {}",
        with_unit(m.generation_tokens_per_s, 1, "tok/s"),
        with_unit(m.requests_per_s, 2, "req/s"),
        num(m.running_mean, 2),
        num(m.waiting_mean, 2),
        with_unit(m.kv_cache_peak_pct, 1, "%"),
        with_unit(m.ttft.p99_ms, 1, "ms"),
    )
}

/// Efficiency against the ceiling and the recoverable $/h, or why there is none.
pub(super) fn ceiling_line(r: &Report) -> String {
    let c = &r.ceiling;
    match c.efficiency.pct() {
        Some(p) => {
            let mut s = format!(
                "efficiency {} of the {} ceiling",
                est(format!("{} %", num(Some(p), 1))),
                with_unit(c.aggregate_ceiling_tps, 1, "tok/s")
            );
            if let Some(m) = &r.economics.recoverable_usd_per_hour {
                s.push_str(&format!("; recoverable {}", money_text(m, 2, "/h")));
            }
            s
        }
        None => format!("no efficiency figure: {}", no_ceiling_why(r)),
    }
}

/// The fix of a finding as flags: `--max-num-seqs 16 (now 8)`, or its summary when no step
/// sets a flag.
pub(super) fn fix_flags(f: &crate::rules::Finding) -> String {
    let flags: Vec<String> = f
        .fix
        .steps
        .iter()
        .filter_map(|st| {
            st.command_line().map(|cmd| match &st.current {
                Some(c) => format!("{cmd} (now {})", super::diagnosis_text::flag_value(c)),
                None => cmd,
            })
        })
        .collect();
    if flags.is_empty() {
        f.fix.summary.clone()
    } else {
        format!("{}: {}", f.fix.summary, flags.join("; "))
    }
}

/// The verdict: the first lines of the report. What was analysed, what the server did, the
/// ceiling, and the primary recommendation of each root-cause group with its fix.
fn verdict(r: &Report, opts: TextOptions) -> String {
    let f = &r.recording;
    let bold = |s: &str| {
        if opts.color {
            format!("\u{1b}[1m{s}\u{1b}[0m")
        } else {
            s.to_string()
        }
    };
    let gpu = if f.gpus.is_empty() {
        "no GPU data".to_string()
    } else {
        let name = f.gpus[0].name.as_deref().unwrap_or("GPU");
        format!("{}x {name}", f.gpu_count)
    };
    let mut s = wrap(
        0,
        &format!(
            "{} {} ({}, vLLM {}, {}, {})",
            bold("profile analyze"),
            f.label,
            opt_str(f.model_name.as_deref()),
            opt_str(f.vllm_version.as_deref()),
            with_unit(f.span_s, 1, "s"),
            gpu
        ),
    );
    s.push_str(&wrap(2, &format!("served: {}", served_line(r))));
    s.push_str(&wrap(2, &format!("ceiling: {}", ceiling_line(r))));
    // Availability first: every figure below rests on the scrapes that succeeded.
    for a in &r.availability {
        let mark = if opts.color {
            "\u{1b}[1;31m[!]\u{1b}[0m"
        } else {
            "[!]"
        };
        s.push_str(&wrap(
            2,
            &format!("{mark} {}: {}", a.kind.title(), a.summary),
        ));
    }
    match &r.diagnosis {
        None => s.push_str(&wrap(2, "verdict: rules not run")),
        Some(d) if d.groups.is_empty() => s.push_str(&wrap(
            2,
            &format!(
                "verdict: no bottleneck found over {} evaluable windows ({} active)",
                d.windows_evaluable, d.windows_active
            ),
        )),
        Some(d) => {
            for (i, g) in d.groups.iter().enumerate() {
                let Some(p) = d.finding(g.primary) else {
                    continue;
                };
                let mark = if opts.color {
                    "\u{1b}[1;31m[!]\u{1b}[0m"
                } else {
                    "[!]"
                };
                s.push_str(&wrap(
                    2,
                    &format!(
                        "{mark} {}. {}: {:?} {} (confidence {})",
                        i + 1,
                        g.title,
                        p.rule,
                        p.title,
                        num(Some(p.confidence), 2)
                    ),
                ));
                s.push_str(&wrap(6, &format!("fix: {}", bold(&fix_flags(p)))));
            }
        }
    }
    s
}
