//! `profile compact REC [--span 1h]`: merges a recording's minute segments into larger ones.

use anyhow::Context;
use profile::recording::compact::{self, CompactSummary};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Arguments of `profile compact`.
#[derive(Debug, clap::Args)]
pub struct CompactArgs {
    /// The recording directory (a bundle must be unbundled first).
    recording: PathBuf,
    /// Time span of one merged segment, e.g. 10m, 1h, 24h
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = super::record::parse_duration)]
    span: Duration,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: CompactArgs) -> anyhow::Result<ExitCode> {
    if profile::bundle::is_bundle(&args.recording) {
        anyhow::bail!(
            "{} is a bundle: compact works on a recording directory (profile unbundle it first)",
            args.recording.display()
        );
    }
    // A fleet recording is a recording per target: each is compacted on its own.
    let targets = profile::recording::fleet::targets(&args.recording)
        .with_context(|| format!("reading {}", args.recording.display()))?;
    let mut summaries = Vec::new();
    for t in &targets {
        let summary = compact::compact(&t.dir, args.span)
            .with_context(|| format!("compacting {}", t.dir.display()))?;
        summaries.push((t.name.clone(), summary));
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        match summaries.as_slice() {
            [(_, one)] if targets.len() == 1 && targets[0].dir == args.recording => {
                serde_json::to_writer_pretty(&mut out, one)?
            }
            _ => serde_json::to_writer_pretty(
                &mut out,
                &summaries
                    .iter()
                    .map(|(name, s)| serde_json::json!({"target": name, "compaction": s}))
                    .collect::<Vec<_>>(),
            )?,
        }
        writeln!(out)?;
    } else {
        let fleet = targets.len() > 1 || targets.first().is_some_and(|t| t.dir != args.recording);
        for (name, s) in &summaries {
            if fleet {
                writeln!(out, "target {name}:")?;
            }
            write!(out, "{}", render(s))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn render(s: &CompactSummary) -> String {
    let mut out = String::new();
    if s.recovered {
        out.push_str("finished an interrupted compaction first\n");
    }
    for m in &s.merges {
        let first = m.sources.first().map_or("", String::as_str);
        let last = m.sources.last().map_or("", String::as_str);
        out.push_str(&format!(
            "{} <- {} files ({first} .. {last}), {} rows, {} bytes\n",
            m.target,
            m.sources.len(),
            m.rows,
            m.bytes
        ));
    }
    if s.merges.is_empty() {
        out.push_str("nothing to merge: every segment already spans its time bucket\n");
    }
    for (file, why) in &s.left_alone {
        out.push_str(&format!("left alone: {file}: {why}\n"));
    }
    out.push_str(&format!(
        "segment files {} -> {}, bytes {} -> {}\n",
        s.files_before, s.files_after, s.bytes_before, s.bytes_after
    ));
    out
}
