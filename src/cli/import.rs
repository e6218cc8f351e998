//! `profile import prometheus --url URL --from T --to T`: flags and environment into an
//! [`ImportConfig`], a progress line on a terminal, and the summary. The engine is
//! `profile::import`; credentials are read here, from the environment only (argv shows in
//! `ps`), and passed in.

use super::inputs::InputArgs;
use super::record::parse_duration;
use anyhow::{bail, Context};
use profile::import::{self, Auth, HttpApi, ImportConfig, Progress};
use profile::units::WallNs;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Bearer token for the Prometheus server.
const ENV_TOKEN: &str = "PROFILE_PROMETHEUS_TOKEN";
/// Basic-auth user for the Prometheus server.
const ENV_USER: &str = "PROFILE_PROMETHEUS_USER";
/// Basic-auth password for the Prometheus server.
const ENV_PASSWORD: &str = "PROFILE_PROMETHEUS_PASSWORD";

/// Arguments of `profile import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    #[command(subcommand)]
    source: Source,
}

#[derive(Debug, clap::Subcommand)]
enum Source {
    /// Import a time range of a vLLM server's series from a Prometheus server (or one that
    /// serves the same HTTP API: VictoriaMetrics, Thanos, Mimir).
    Prometheus(PrometheusArgs),
}

/// Arguments of `profile import prometheus`.
#[derive(Debug, clap::Args)]
pub struct PrometheusArgs {
    /// The server's base URL, e.g. http://prometheus:9090. Credentials come from
    /// PROFILE_PROMETHEUS_TOKEN (bearer) or PROFILE_PROMETHEUS_USER and
    /// PROFILE_PROMETHEUS_PASSWORD (basic), never from the URL.
    #[arg(long)]
    url: String,
    /// Start: an RFC 3339 time (2026-11-23T09:00:00Z), Unix seconds, or now-DURATION (now-2h).
    #[arg(long, value_parser = parse_time)]
    from: TimeArg,
    /// End, in the same forms (default: now).
    #[arg(long, value_parser = parse_time, default_value = "now")]
    to: TimeArg,
    /// Label matchers for the vLLM series, in braces: '{job="vllm",namespace="prod"}'.
    #[arg(long = "match", value_name = "SELECTOR")]
    selector: Option<String>,
    /// The instance to import, when several match.
    #[arg(long)]
    instance: Option<String>,
    /// Label matchers in braces for the DCGM exporter's GPU series (default: the exporter on
    /// the vLLM instance's host, or serving its pod).
    #[arg(long = "gpu-match", value_name = "SELECTOR")]
    gpu_selector: Option<String>,
    /// Query step: one scrape row per step. Use the scrape interval of the job.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    step: Duration,
    /// Output recording directory (default: recordings/prometheus-<instance>-<start time>).
    #[arg(short, long = "out", value_name = "DIR")]
    out: Option<PathBuf>,
    /// Wait this long for each answer of the server.
    #[arg(long, default_value = "2m", value_parser = parse_duration)]
    timeout: Duration,
    /// At most this many points (series x steps) per query, for a server with a lower limit
    /// than Prometheus's defaults.
    #[arg(long, default_value_t = import::MAX_POINTS_PER_QUERY)]
    max_points_per_query: u64,
    /// Stored in the recording, as `profile record` stores them.
    #[command(flatten)]
    inputs: InputArgs,
}

/// A time as given: absolute, or relative to now (read once, here).
#[derive(Debug, Clone, Copy)]
pub enum TimeArg {
    /// An absolute time.
    At(WallNs),
    /// `now` minus this many ns.
    NowMinus(i64),
}

fn parse_time(text: &str) -> Result<TimeArg, String> {
    let t = text.trim();
    if let Some(rest) = t.strip_prefix("now") {
        if rest.is_empty() {
            return Ok(TimeArg::NowMinus(0));
        }
        let d = rest
            .strip_prefix('-')
            .ok_or_else(|| format!("{t:?}: expected now or now-DURATION (now-2h)"))?;
        let ns = parse_duration(d)?.as_nanos();
        return i64::try_from(ns)
            .map(TimeArg::NowMinus)
            .map_err(|_| format!("{t:?}: too long"));
    }
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let secs: f64 = t.parse().map_err(|_| format!("{t:?}: bad Unix time"))?;
        return Ok(TimeArg::At(WallNs((secs * 1e9).round() as i64)));
    }
    super::analyze::parse_rfc3339(t).map(TimeArg::At)
}

/// Now, for `now-2h`. The import reads the clock once, to resolve the range it was given.
#[allow(clippy::disallowed_methods)]
fn now() -> WallNs {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    WallNs(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

fn resolve(t: TimeArg, now: WallNs) -> WallNs {
    match t {
        TimeArg::At(w) => w,
        TimeArg::NowMinus(ns) => WallNs(now.0.saturating_sub(ns)),
    }
}

/// Credentials from the environment.
fn auth_from_env() -> anyhow::Result<Auth> {
    let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
    match (var(ENV_TOKEN), var(ENV_USER), var(ENV_PASSWORD)) {
        (Some(_), Some(_), _) => bail!("set {ENV_TOKEN} or {ENV_USER}, not both"),
        (Some(t), None, _) => Ok(Auth::Bearer(t)),
        (None, Some(user), password) => Ok(Auth::Basic {
            user,
            password: password.unwrap_or_default(),
        }),
        (None, None, Some(_)) => bail!("{ENV_PASSWORD} is set but {ENV_USER} is not"),
        (None, None, None) => Ok(Auth::None),
    }
}

/// The URL, checked: http(s), no credentials in it.
fn check_url(url: &str) -> anyhow::Result<String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .with_context(|| format!("--url {url:?}: expected http://HOST:PORT or https://..."))?;
    let authority = rest.split('/').next().unwrap_or(rest);
    if authority.contains('@') {
        bail!(
            "--url: credentials in the URL would show in `ps` and in the recording; set \
             {ENV_USER}/{ENV_PASSWORD} or {ENV_TOKEN} instead"
        );
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// A directory name from an instance label (`10.0.0.5:8000` -> `10.0.0.5_8000`).
fn dir_name(instance: &str) -> String {
    instance
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

pub fn run(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let Source::Prometheus(args) = args.source;
    let url = check_url(&args.url)?;
    let auth = auth_from_env()?;
    let now = now();
    let step_ms = u64::try_from(args.step.as_millis()).unwrap_or(u64::MAX);
    if step_ms == 0 {
        bail!("--step must be at least 1ms");
    }
    let config = ImportConfig {
        url: url.clone(),
        from: resolve(args.from, now),
        to: resolve(args.to, now),
        step_ms,
        selector: args.selector,
        instance: args.instance,
        gpu_selector: args.gpu_selector,
        analysis_inputs: args.inputs.to_recorded(),
        max_points_per_query: args.max_points_per_query,
    };
    let api = HttpApi::new(&url, &auth, args.timeout);
    let plan = import::discover(&api, &config)?;
    let out = args.out.unwrap_or_else(|| {
        let who = plan
            .instance
            .as_deref()
            .map_or_else(|| "server".into(), dir_name);
        PathBuf::from("recordings").join(format!("prometheus-{who}-{}", plan.from.to_compact_utc()))
    });
    let mut err = std::io::stderr();
    eprintln!(
        "profile: importing {} series of {} from {} ({} to {}, step {} ms: {} steps in {} \
         chunk(s)) into {}",
        plan.series,
        plan.instance.as_deref().unwrap_or("(no instance label)"),
        url,
        plan.from.to_rfc3339_millis(),
        plan.last_step().to_rfc3339_millis(),
        plan.step_ms,
        plan.steps,
        plan.chunks(),
        out.display()
    );
    let tty = err.is_terminal();
    let mut show = |p: Progress| {
        if tty {
            let pct = p.steps_done as f64 * 100.0 / p.steps.max(1) as f64;
            let _ = write!(
                err,
                "\rprofile: chunk {}/{}, {pct:.0}% of the range",
                p.chunks_done, p.chunks
            );
            let _ = err.flush();
        }
    };
    let result = import::run(&api, &plan, &out, &mut show);
    if tty {
        eprintln!();
    }
    let summary = result?;
    eprintln!(
        "profile: imported {} steps ({} without samples), {} samples, {} GPU poll rounds into {}",
        summary.scrapes,
        summary.scrapes_failed,
        summary.samples,
        summary.gpu_polls,
        summary.dir.display()
    );
    if !summary.inferred_types.is_empty() {
        eprintln!(
            "profile: no metadata for {} famil(ies); types inferred from names (listed in the \
             manifest)",
            summary.inferred_types.len()
        );
    }
    eprintln!(
        "profile: analyse it with: profile analyze {}",
        summary.dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_urls() {
        let now = WallNs(10_000_000_000_000);
        assert_eq!(resolve(parse_time("now").unwrap(), now), now);
        assert_eq!(
            resolve(parse_time("now-2h").unwrap(), now),
            WallNs(now.0 - 7_200_000_000_000)
        );
        assert_eq!(
            resolve(parse_time("1700000000.5").unwrap(), now),
            WallNs(1_700_000_000_500_000_000)
        );
        assert!(matches!(
            parse_time("2026-11-23T09:01:02Z"),
            Ok(TimeArg::At(WallNs(1_795_424_462_000_000_000)))
        ));
        assert!(parse_time("now+1h").is_err());
        assert!(parse_time("yesterday").is_err());
        assert_eq!(check_url("http://p:9090/").unwrap(), "http://p:9090");
        assert!(check_url("https://u:pw@p:9090").is_err());
        assert!(check_url("p:9090").is_err());
        assert_eq!(dir_name("10.0.0.5:8000"), "10.0.0.5_8000");
    }
}
