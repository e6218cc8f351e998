//! `profile record` of several targets (`--url` more than once, or `--targets FILE`): the
//! targets file parsed into the engine's `FleetConfig`, Ctrl-C, and one summary line per
//! target at the end. The recording itself is the library's `FleetRecorder`.

use super::record::{human_bytes, to_config, RecordArgs};
use super::signals;
use anyhow::Context;
use profile::record::fleet::{FleetConfig, FleetRecorder, TargetConfig};
use profile::recording::{AnalysisInputs, Sourced};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

/// Parses a targets file: one target a line (`URL [NAME] [FLAG VALUE]...`), `#` comments and
/// blank lines allowed. A bad line is an error naming the file and the line.
pub(super) fn parse_targets(path: &Path, text: &str) -> anyhow::Result<Vec<TargetConfig>> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let at = || format!("{}:{}", path.display(), i + 1);
        let target = parse_line(line).map_err(|why| anyhow::anyhow!("{}: {why}", at()))?;
        out.push(target);
    }
    anyhow::ensure!(!out.is_empty(), "{}: no target in the file", path.display());
    Ok(out)
}

fn parse_line(line: &str) -> Result<TargetConfig, String> {
    let mut words = line.split_whitespace();
    let url = words.next().ok_or("empty line")?.to_string();
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!("{url:?} is not an http:// or https:// URL"));
    }
    let mut name = None;
    let mut inputs = AnalysisInputs::default();
    let source = |flag: &str| format!("{flag} (targets file)");
    while let Some(word) = words.next() {
        if !word.starts_with('-') {
            if name.is_some() {
                return Err(format!(
                    "{word:?}: a target has one name; flags start with -"
                ));
            }
            name = Some(word.to_string());
            continue;
        }
        let value = words.next().ok_or(format!("{word} needs a value"))?;
        let positive = || -> Result<u32, String> {
            value
                .parse::<u32>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or(format!("{word} {value:?}: not a positive integer"))
        };
        let number = || -> Result<f64, String> {
            value
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or(format!("{word} {value:?}: not a non-negative number"))
        };
        match word {
            "-m" | "--max-num-seqs" => {
                inputs.max_num_seqs = Some(Sourced {
                    value: positive()?,
                    source: source("--max-num-seqs"),
                })
            }
            "--tensor-parallel-size" => {
                inputs.tensor_parallel_size = Some(Sourced {
                    value: positive()?,
                    source: source(word),
                })
            }
            "--dtype" => {
                inputs.dtype = Some(Sourced {
                    value: value.to_string(),
                    source: source(word),
                })
            }
            "--cost-per-hour" => {
                inputs.cost_per_hour = Some(Sourced {
                    value: number()?,
                    source: source(word),
                })
            }
            "--gpu-memory-utilization" => {
                let v = number()?;
                if v <= 0.0 || v > 1.0 {
                    return Err(format!(
                        "{word} {value:?}: not a fraction above 0, at most 1"
                    ));
                }
                inputs.gpu_memory_utilization = Some(Sourced {
                    value: v,
                    source: source(word),
                })
            }
            _ => return Err(format!("{word}: unknown flag for a target")),
        }
    }
    Ok(TargetConfig {
        name,
        url,
        analysis_inputs: inputs,
    })
}

pub(super) fn run(args: RecordArgs) -> anyhow::Result<ExitCode> {
    let env = |name: &str| std::env::var(name).ok();
    let mut targets: Vec<TargetConfig> = args
        .url
        .iter()
        .map(|u| TargetConfig {
            name: None,
            url: u.clone(),
            analysis_inputs: AnalysisInputs::default(),
        })
        .collect();
    if let Some(path) = &args.targets {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading targets file {}", path.display()))?;
        targets.extend(parse_targets(path, &text)?);
    }
    let gpus_off = matches!(args.gpus, super::record::GpuChoice::None);
    let base = to_config(args, env).context("nothing was recorded")?;
    if !gpus_off {
        eprintln!("profile: {}", profile::record::fleet::FLEET_GPU_NOTE);
    }
    let recorder =
        FleetRecorder::start(FleetConfig { base, targets }).context("nothing was recorded")?;
    let dir = recorder.dir().to_path_buf();
    let stop = recorder.stop_handle();
    signals::stop_on_signals(stop)?;
    let result = recorder.wait();
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", dir.display())?;
    let summary = result.with_context(|| format!("recording {}", dir.display()))?;
    let mut all_down = true;
    for (name, s) in &summary.targets {
        let t = &s.totals;
        let down = t.scrapes > 0 && t.scrapes_failed == t.scrapes;
        all_down &= down;
        eprintln!(
            "profile: {name}: {} scrapes ({} failed), {} samples, {} written{}",
            t.scrapes,
            t.scrapes_failed,
            t.samples,
            human_bytes(t.bytes_written),
            if down {
                "  DOWN: no scrape succeeded"
            } else {
                ""
            }
        );
    }
    Ok(if all_down {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_file_lines() {
        let text = "# the fleet\n\nhttp://a:1/metrics  a -m 8   # first\n\
                    http://b:1/metrics --tensor-parallel-size 2 --cost-per-hour 2.5\n";
        let t = parse_targets(Path::new("f.txt"), text).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].name.as_deref(), Some("a"));
        assert_eq!(
            t[0].analysis_inputs.max_num_seqs.as_ref().map(|s| s.value),
            Some(8)
        );
        assert_eq!(t[1].name, None);
        assert_eq!(
            t[1].analysis_inputs
                .tensor_parallel_size
                .as_ref()
                .map(|s| s.value),
            Some(2)
        );
        assert_eq!(
            t[1].analysis_inputs.cost_per_hour.as_ref().map(|s| s.value),
            Some(2.5)
        );
    }

    #[test]
    fn a_bad_line_names_file_and_line() {
        let cases = [
            ("http://a:1/m\nnot-a-url\n", "f.txt:2:"),
            ("http://a:1/m -m\n", "f.txt:1: -m needs a value"),
            ("# c\nhttp://a:1/m -m zero\n", "f.txt:2: -m \"zero\""),
            (
                "http://a:1/m a b\n",
                "f.txt:1: \"b\": a target has one name",
            ),
            (
                "http://a:1/m --max-batch 3\n",
                "f.txt:1: --max-batch: unknown flag",
            ),
            (
                "http://a:1/m --gpu-memory-utilization 1.5\n",
                "f.txt:1: --gpu-memory",
            ),
            ("# only a comment\n", "f.txt: no target"),
        ];
        for (text, want) in cases {
            let e = parse_targets(Path::new("f.txt"), text)
                .unwrap_err()
                .to_string();
            assert!(e.starts_with(want), "{text:?}: {e}");
        }
    }
}
