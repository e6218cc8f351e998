//! `profile replay REC --listen ADDR [--speed X] [--loop]`: serve a recording back as a live
//! Prometheus endpoint in its recorded rhythm.

use super::record::parse_duration;
use anyhow::Context;
use profile::replay::{Replay, ReplayConfig, ReplayServer};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Arguments of `profile replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// The recording: a directory or a bundle.
    recording: PathBuf,
    /// Address to serve on. Loopback by default; give 0.0.0.0:PORT to serve other machines.
    #[arg(long, default_value = "127.0.0.1:9400")]
    listen: String,
    /// Playback speed (2 = twice as fast).
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// Start over at the end instead of exiting.
    #[arg(long = "loop")]
    looped: bool,
    /// How long a recorded timeout holds the request before closing it unanswered.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    stall: Duration,
}

pub fn run(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let rec = profile::bundle::open_any(&args.recording)
        .with_context(|| format!("reading recording {}", args.recording.display()))?;
    let config = ReplayConfig {
        speed: args.speed,
        looped: args.looped,
        stall: args.stall,
        ..ReplayConfig::default()
    };
    let scrapes = rec.scrapes.len();
    let replay = Replay::new(rec, config)?;
    let pass = replay.pass_duration();
    let listener =
        TcpListener::bind(&args.listen).with_context(|| format!("listening on {}", args.listen))?;
    let server = ReplayServer::start(listener, replay)?;
    let stop = Arc::new(AtomicBool::new(false));
    let s = Arc::clone(&stop);
    super::signals::on_stop_signals(move |_| s.store(true, Ordering::SeqCst))?;
    eprintln!(
        "profile: replaying {} scrapes of {} on http://{}/metrics ({:.1} s per pass{}; Ctrl-C to stop)",
        scrapes,
        args.recording.display(),
        server.addr(),
        pass.as_secs_f64(),
        if args.looped { ", looping" } else { "" }
    );
    while !stop.load(Ordering::SeqCst) && !server.turn().1 {
        std::thread::sleep(Duration::from_millis(50));
    }
    let served = server.metrics_requests();
    server.stop();
    eprintln!("profile: replay ended; {served} /metrics requests served");
    Ok(ExitCode::SUCCESS)
}
