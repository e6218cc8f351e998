//! `profile inspect REC`: a table (or JSON) of what a recording holds.

use anyhow::Context;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use profile::inspect::{inspect, Inspection};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `profile inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The recording: a directory or a bundle file.
    recording: PathBuf,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
}

pub fn run(args: InspectArgs) -> anyhow::Result<ExitCode> {
    let rec = profile::bundle::open_any(&args.recording)
        .with_context(|| format!("reading recording {}", args.recording.display()))?;
    let report = inspect(&rec, &args.recording.display().to_string());
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        write!(out, "{}", render(&report))?;
    }
    // A damaged file is reported, not fatal: the rest was read. Say so in the exit code.
    let damaged = report.files.iter().any(|f| f.problem.is_some());
    Ok(if damaged {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref()
        .map_or_else(|| "-".to_string(), |v| v.to_string())
}

fn table() -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t
}

/// Renders the inspection as text tables.
fn render(r: &Inspection) -> String {
    let mut s = String::new();
    let mut t = table();
    t.set_header(vec!["recording", &r.path]);
    let failed: u64 = r.scrapes_failed.values().sum();
    let failed_kinds = r
        .scrapes_failed
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let rows: Vec<(&str, String)> = vec![
        ("format", r.format_version.clone()),
        ("target", r.target_url.clone()),
        ("first scrape", opt(&r.first_scrape_at)),
        ("last scrape", opt(&r.last_scrape_at)),
        ("span", r.span_s.map_or("-".into(), |s| format!("{s:.1} s"))),
        (
            "stopped",
            if r.clean_stop {
                format!("cleanly ({})", opt(&r.stop_reason))
            } else {
                "not cleanly (killed, or still recording)".into()
            },
        ),
        ("interval", format!("{} ms", r.interval_ms)),
        (
            "scrapes",
            format!(
                "{} ok, {} failed{}",
                r.scrapes_ok,
                failed,
                if failed > 0 {
                    format!(" ({failed_kinds})")
                } else {
                    String::new()
                }
            ),
        ),
        ("ticks skipped", r.ticks_skipped.to_string()),
        (
            "longest gap",
            match (&r.longest_gap_s, &r.longest_gap_at) {
                (Some(g), Some(at)) => format!("{g:.3} s after {at}"),
                _ => "-".into(),
            },
        ),
        ("samples", r.samples.to_string()),
        (
            "series",
            format!("{} in {} families", r.series_total, r.families.len()),
        ),
        ("bytes on disk", r.bytes_on_disk.to_string()),
        (
            "bytes per sample",
            r.bytes_per_sample.map_or("-".into(), |b| format!("{b:.3}")),
        ),
        ("vLLM version", opt(&r.vllm_version)),
        (
            "model",
            if r.model_names.is_empty() {
                "-".into()
            } else {
                r.model_names.join(", ")
            },
        ),
        ("GPU polls", r.gpu_polls.to_string()),
        (
            "duplicate series",
            format!(
                "{} scrape(s) sent a series twice",
                r.scrapes_with_duplicates
            ),
        ),
    ];
    for (k, v) in rows {
        t.add_row(vec![k.to_string(), v]);
    }
    if let Some(note) = &r.gpu_note {
        t.add_row(vec!["GPU note".to_string(), note.clone()]);
    }
    for a in &r.availability {
        t.add_row(vec![a.kind.title().to_string(), a.summary.clone()]);
    }
    s.push_str(&format!("{t}\n"));

    if !r.gpus.is_empty() {
        let mut t = table();
        t.set_header(vec![
            "gpu",
            "name",
            "uuid",
            "memory",
            "power limit",
            "polls",
        ]);
        for g in &r.gpus {
            t.add_row(vec![
                g.info.index.to_string(),
                opt(&g.info.name),
                opt(&g.info.uuid),
                g.info.vram_total_bytes.map_or("-".into(), |b| {
                    format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64)
                }),
                g.info
                    .power_limit_w
                    .map_or("-".into(), |w| format!("{w:.0} W")),
                g.polls.to_string(),
            ]);
        }
        s.push_str(&format!("{t}\n"));
    }

    let mut t = table();
    t.set_header(vec!["file", "bytes", "rows", "problem"]);
    for f in &r.files {
        t.add_row(vec![
            f.name.clone(),
            f.bytes.to_string(),
            f.rows.to_string(),
            opt(&f.problem),
        ]);
    }
    s.push_str(&format!("{t}\n"));

    let mut t = table();
    t.set_header(vec!["family", "type", "series"]);
    for f in &r.families {
        t.add_row(vec![
            f.name.clone(),
            f.metric_type.clone(),
            f.series.to_string(),
        ]);
    }
    s.push_str(&format!("{t}\n"));
    s
}
