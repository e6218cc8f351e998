//! Recordings that travel: bundles (round trip, damage detection, salvage), redaction (no
//! original string survives anywhere, analysis data unchanged), and replay (valid exposition,
//! recorded rhythm, speed, loop, failures), including a record -> replay -> record round trip.

use crate::support::profile;
mod fixture;

use arrow_array::cast::AsArray;
use arrow_array::types::Int32Type;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use profile::bundle::{self, BundleError};
use profile::catalog::Catalog;
use profile::recording::{self, Recording, ScrapeStatus};
use profile::redact::{self, Keep, RedactConfig};
use profile::replay::{Answer, Replay, ReplayConfig, ReplayServer};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

const MS: Duration = Duration::from_millis(1);

fn fixture(scrapes: u64) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("rec");
    fixture::write(&dir, scrapes);
    (tmp, dir)
}

/// Everything analysis sees of a recording, in order, with names as stored.
fn rows(rec: &Recording) -> Vec<Vec<profile::recording::schema::SampleRow>> {
    rec.scrapes.iter().map(|s| rec.sample_rows(s)).collect()
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

// ---------------------------------------------------------------------------------------
// Bundles

#[test]
fn bundle_round_trips_and_opens_directly() {
    let (tmp, dir) = fixture(12);
    std::fs::write(dir.join("notes.txt"), "left out").unwrap();
    let file = tmp.path().join("rec.bundle");
    let summary = bundle::bundle_dir(&dir, &file).unwrap();
    assert_eq!(summary.entries[0].name, "manifest.json");
    assert_eq!(summary.skipped, vec!["notes.txt"]);
    assert_eq!(summary.bytes, std::fs::metadata(&file).unwrap().len());
    // Refuses to overwrite.
    assert!(matches!(
        bundle::bundle_dir(&dir, &file),
        Err(BundleError::OutputExists(_))
    ));

    let direct = recording::open(&dir).unwrap();
    let via = bundle::open_any(&file).unwrap();
    assert_eq!(via.manifest, direct.manifest);
    assert_eq!(via.series, direct.series);
    assert_eq!(rows(&via), rows(&direct));
    assert_eq!(via.gpu_polls, direct.gpu_polls);
    assert_eq!(via.dir, file);
    assert!(via.files.iter().all(|f| f.path.starts_with(&file)));

    let out = tmp.path().join("out");
    bundle::unbundle(&file, &out).unwrap();
    let mut want = files_in(&dir);
    want.retain(|n| n != "notes.txt");
    assert_eq!(files_in(&out), want);
    for name in &want {
        assert_eq!(
            std::fs::read(out.join(name)).unwrap(),
            std::fs::read(dir.join(name)).unwrap(),
            "{name}"
        );
    }
    // Into a non-empty directory: refused.
    assert!(matches!(
        bundle::unbundle(&file, &out),
        Err(BundleError::OutputExists(_))
    ));
}

/// Where entry `name`'s data starts in the bundle.
fn data_offset(file: &Path, name: &str) -> (u64, u64) {
    let e = bundle::verify(file)
        .unwrap()
        .into_iter()
        .find(|e| e.name == name)
        .unwrap();
    (
        e.offset + 4 + 2 + e.name.len() as u64 + 8 + 4 + 4,
        e.data_len,
    )
}

#[test]
fn a_flipped_bit_is_refused_naming_the_entry_and_salvage_keeps_the_rest() {
    let (tmp, dir) = fixture(12);
    let file = tmp.path().join("rec.bundle");
    bundle::bundle_dir(&dir, &file).unwrap();
    let (at, len) = data_offset(&file, "samples-000001.parquet");
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[(at + len / 2) as usize] ^= 0x10;
    std::fs::write(&file, &bytes).unwrap();

    let err = bundle::open_any(&file).unwrap_err();
    match &err {
        BundleError::Checksum {
            entry,
            expected,
            found,
            ..
        } => {
            assert_eq!(entry, "samples-000001.parquet");
            assert_ne!(expected, found);
        }
        other => panic!("{other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("samples-000001.parquet") && msg.contains("expected crc32"),
        "{msg}"
    );
    // Strict extraction leaves nothing behind.
    let out = tmp.path().join("strict");
    assert!(bundle::unbundle(&file, &out).is_err());
    assert!(!out.exists());

    let salvaged = tmp.path().join("salvaged");
    let report = bundle::salvage(&file, &salvaged).unwrap();
    assert_eq!(report.damaged.len(), 1, "{:?}", report.damaged);
    assert!(report.damaged[0].contains("samples-000001.parquet"));
    assert!(!report
        .extracted
        .contains(&"samples-000001.parquet".to_string()));
    assert_eq!(report.extracted.len(), files_in(&dir).len() - 1);
    // What was salvaged reads: segment 1's scrapes are there without their samples.
    let rec = recording::open(&salvaged).unwrap();
    assert_eq!(rec.scrapes.len(), 12);
    assert!(rec.scrapes[5].samples.is_empty() && !rec.scrapes[10].samples.is_empty());
}

#[test]
fn a_truncated_bundle_is_refused_and_salvage_extracts_the_intact_head() {
    let (tmp, dir) = fixture(12);
    let file = tmp.path().join("rec.bundle");
    bundle::bundle_dir(&dir, &file).unwrap();
    let full = std::fs::read(&file).unwrap();
    let (at, len) = data_offset(&file, "samples-000001.parquet");

    // Lost tail (the index and trailer) only.
    std::fs::write(&file, &full[..full.len() - 10]).unwrap();
    let err = bundle::open_any(&file).unwrap_err();
    assert!(matches!(err, BundleError::Truncated { .. }), "{err:?}");
    assert!(err.to_string().contains("end marker"), "{err}");
    let out = tmp.path().join("tail");
    let report = bundle::salvage(&file, &out).unwrap();
    assert_eq!(report.extracted.len(), files_in(&dir).len());
    assert_eq!(
        report.damaged,
        vec!["the end marker is missing (truncated)"]
    );

    // Cut inside an entry.
    std::fs::write(&file, &full[..(at + len / 3) as usize]).unwrap();
    assert!(matches!(
        bundle::open_any(&file),
        Err(BundleError::Truncated { .. })
    ));
    let out = tmp.path().join("mid");
    let report = bundle::salvage(&file, &out).unwrap();
    assert!(
        report.damaged[0].contains("samples-000001.parquet")
            && report.damaged[0].contains("truncated")
    );
    assert_eq!(report.damaged.len(), 1, "{:?}", report.damaged);
    assert_eq!(
        report.extracted,
        vec![
            "manifest.json",
            "gpu-000000.parquet",
            "gpu-000001.parquet",
            "gpu-000002.parquet",
            "samples-000000.parquet"
        ]
    );
    let rec = recording::open(&out).unwrap();
    assert!(rec.scrapes.is_empty() && rec.gpu_polls.len() == 24);
}

#[test]
fn wrong_magic_version_and_index_damage_are_named() {
    let (tmp, dir) = fixture(6);
    let file = tmp.path().join("rec.bundle");
    bundle::bundle_dir(&dir, &file).unwrap();
    let full = std::fs::read(&file).unwrap();

    let other = tmp.path().join("other");
    std::fs::write(&other, b"PAR1 this is parquet, not a bundle").unwrap();
    let err = bundle::open_any(&other).unwrap_err();
    assert!(matches!(err, BundleError::NotABundle { .. }), "{err:?}");
    assert!(err.to_string().contains("\"PAR1 th"), "{err}");
    assert!(matches!(
        bundle::salvage(&other, &tmp.path().join("x")),
        Err(BundleError::NotABundle { .. })
    ));

    let mut v2 = full.clone();
    v2[8] = 2;
    std::fs::write(&file, &v2).unwrap();
    let err = bundle::open_any(&file).unwrap_err();
    assert!(err.to_string().contains("bundle layout 2.0"), "{err}");

    // A flipped bit in the index (just before the 24-byte trailer and 4-byte CRC).
    let mut idx = full.clone();
    let n = idx.len();
    idx[n - 24 - 8] ^= 1;
    std::fs::write(&file, &idx).unwrap();
    match bundle::open_any(&file) {
        Err(BundleError::Checksum { entry, .. }) => assert_eq!(entry, "(index)"),
        other => panic!("{other:?}"),
    }
    // Entries are all intact, so salvage recovers all of them.
    let report = bundle::salvage(&file, &tmp.path().join("s")).unwrap();
    assert!(report.damaged.is_empty(), "{:?}", report.damaged);
}

#[test]
fn cli_bundle_inspect_unbundle() {
    let (tmp, dir) = fixture(6);
    let file = tmp.path().join("rec.bundle");
    let bin = || profile();
    bin()
        .args(["bundle"])
        .arg(&dir)
        .arg("-o")
        .arg(&file)
        .assert()
        .success();
    let out = bin()
        .arg("inspect")
        .arg(&file)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["target_url"].as_str(), Some(fixture::URL), "{json}");
    let mut bytes = std::fs::read(&file).unwrap();
    let n = bytes.len();
    bytes.truncate(n - 100);
    std::fs::write(&file, &bytes).unwrap();
    let out = bin().arg("inspect").arg(&file).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("truncated bundle"), "{err}");
    let salvaged = tmp.path().join("s");
    bin()
        .arg("unbundle")
        .arg(&file)
        .arg("-o")
        .arg(&salvaged)
        .arg("--salvage")
        .assert()
        .code(1);
    assert!(salvaged.join("manifest.json").exists());
}

// ---------------------------------------------------------------------------------------
// Redaction

fn config(keep: Keep) -> RedactConfig {
    RedactConfig::new(keep, &Catalog::embedded().unwrap())
}

/// Every string value of every string column of a Parquet file, decoded (dictionary values
/// included, used or not), plus its key-value metadata.
fn decoded_strings(path: &Path) -> Vec<String> {
    let b = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).unwrap()).unwrap();
    let mut out: Vec<String> = b
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .into_iter()
        .flatten()
        .flat_map(|kv| [kv.key.clone(), kv.value.clone().unwrap_or_default()])
        .collect();
    for batch in b.build().unwrap() {
        let batch = batch.unwrap();
        for col in batch.columns() {
            let strings = if let Some(d) = col.as_dictionary_opt::<Int32Type>() {
                d.values().as_string_opt::<i32>().cloned()
            } else {
                col.as_string_opt::<i32>().cloned()
            };
            if let Some(s) = strings {
                out.extend(s.iter().flatten().map(str::to_string));
            }
        }
    }
    out
}

fn assert_no_secret(dir: &Path) {
    for name in files_in(dir) {
        let path = dir.join(&name);
        let raw = std::fs::read(&path).unwrap();
        let mut haystacks = vec![String::from_utf8_lossy(&raw).into_owned()];
        if name.ends_with(".parquet") {
            haystacks.extend(decoded_strings(&path));
        }
        for h in &haystacks {
            for s in fixture::secrets() {
                assert!(!h.contains(s), "{name}: {s:?} survives in {h:?}");
            }
        }
    }
}

#[test]
fn redaction_leaves_no_original_and_keeps_the_analysis_data() {
    let (tmp, dir) = fixture(12);
    let original = recording::open(&dir).unwrap();
    // The check must be able to fail: the originals are there before redaction.
    let before = decoded_strings(&dir.join("samples-000000.parquet")).join("\n");
    assert!(before.contains(fixture::MODEL) && before.contains(fixture::HOST));

    let out = tmp.path().join("red");
    let summary = redact::redact(&dir, &out, &config(Keep::default())).unwrap();
    assert_eq!(summary.written.len(), files_in(&dir).len());
    assert_no_secret(&out);

    let red = recording::open(&out).unwrap();
    assert!(red.problems().next().is_none());
    let m = &red.manifest;
    assert_eq!(m.target_url, "url-1");
    assert_eq!(m.recorder_host.as_deref(), Some("host-2"));
    assert_eq!(m.model_name.as_deref(), Some("model1-llama-3-1-70b"));
    assert_eq!(m.gpus[1].uuid.as_deref(), Some("gpu-uuid-2"));
    assert_eq!(m.gpus[0].serial.as_deref(), Some("gpu-serial-1"));
    assert_eq!(m.gpus[0].name.as_deref(), Some(fixture::GPU_NAME));
    assert_eq!(m.gpu_note.as_deref(), Some("polled on host-1"));
    assert_eq!(m.vllm_version, original.manifest.vllm_version);
    assert_eq!(m.analysis_inputs, original.manifest.analysis_inputs);

    // The catalog sees the same model and the same GPU.
    let cat = Catalog::embedded().unwrap();
    let id = |n: &str| cat.match_model(n).map(|m| m.id.clone());
    assert_eq!(id(m.model_name.as_deref().unwrap()), id(fixture::MODEL));
    assert!(id(fixture::MODEL).is_some());

    // Same scrapes, series, names, label names and values, in the same order.
    assert_eq!(red.series.len(), original.series.len());
    assert_eq!(red.scrapes.len(), original.scrapes.len());
    for (a, b) in red.series.iter().zip(&original.series) {
        assert_eq!(
            (&a.family, &a.name, a.metric_type, a.le),
            (&b.family, &b.name, b.metric_type, b.le)
        );
        let names = |s: &profile::recording::SeriesInfo| -> Vec<String> {
            s.label_pairs()
                .unwrap()
                .into_iter()
                .map(|(n, _)| n)
                .collect()
        };
        assert_eq!(names(a), names(b));
    }
    for (a, b) in red.scrapes.iter().zip(&original.scrapes) {
        assert_eq!(a.samples, b.samples);
        assert_eq!(
            (
                a.meta.seq,
                a.meta.status,
                a.meta.completed_mono,
                a.meta.http_status
            ),
            (
                b.meta.seq,
                b.meta.status,
                b.meta.completed_mono,
                b.meta.http_status
            )
        );
    }
    assert_eq!(red.gpu_polls.len(), original.gpu_polls.len());
    let power = |r: &Recording| {
        r.gpu_polls
            .iter()
            .map(|p| p.metrics.power_w)
            .collect::<Vec<_>>()
    };
    assert_eq!(power(&red), power(&original));
    let lora = red
        .series_by_family("vllm:lora_requests_info")
        .next()
        .unwrap()
        .1;
    assert_eq!(
        lora.label_pairs().unwrap(),
        vec![
            ("max_lora".into(), "1".into()),
            // A backslash makes a value a path, whatever else it holds.
            ("note".into(), "path-1".into()),
            ("owner".into(), "user-1".into()),
            ("peer".into(), "host-3".into()),
            ("running_lora_adapters".into(), "path-2".into()),
        ]
    );
    let err = red.scrapes[9].meta.error.as_deref().unwrap();
    assert_eq!(err, "io: url-1: connection reset by peer (host-3:port-1)");
    let help = red
        .series_by_family("vllm:num_requests_running")
        .next()
        .unwrap()
        .1;
    assert!(help
        .help
        .as_deref()
        .unwrap()
        .ends_with("(served by host-1)."));

    // Stable: the same input gives byte-identical output.
    let again = tmp.path().join("again");
    redact::redact(&dir, &again, &config(Keep::default())).unwrap();
    for name in files_in(&out) {
        assert_eq!(
            std::fs::read(out.join(&name)).unwrap(),
            std::fs::read(again.join(&name)).unwrap(),
            "{name}"
        );
    }
}

#[test]
fn keep_keeps_what_it_names() {
    let (tmp, dir) = fixture(6);
    let out = tmp.path().join("red");
    redact::redact(&dir, &out, &config(Keep::parse("model,gpu-uuid").unwrap())).unwrap();
    let red = recording::open(&out).unwrap();
    assert_eq!(red.manifest.model_name.as_deref(), Some(fixture::MODEL));
    assert_eq!(
        red.manifest.gpus[0].uuid.as_deref(),
        Some(fixture::UUIDS[0])
    );
    assert_eq!(red.manifest.target_url, "url-1");
    let all: String = files_in(&out)
        .iter()
        .filter(|n| n.starts_with("samples"))
        .flat_map(|n| decoded_strings(&out.join(n)))
        .collect();
    assert!(all.contains(fixture::MODEL) && !all.contains(fixture::HOST));
}

#[test]
fn cli_bundle_redact_leaves_no_original_in_the_bundle() {
    let (tmp, dir) = fixture(12);
    let file = tmp.path().join("red.bundle");
    profile()
        .arg("bundle")
        .arg(&dir)
        .arg("-o")
        .arg(&file)
        .arg("--redact")
        .assert()
        .success();
    let raw = String::from_utf8_lossy(&std::fs::read(&file).unwrap()).into_owned();
    for s in fixture::secrets() {
        assert!(!raw.contains(s), "{s}");
    }
    let out = tmp.path().join("x");
    bundle::unbundle(&file, &out).unwrap();
    assert_no_secret(&out);
    // Redacting a bundle works too, and gives what redacting the directory gives.
    let plain = tmp.path().join("plain.bundle");
    bundle::bundle_dir(&dir, &plain).unwrap();
    let out2 = tmp.path().join("y");
    profile()
        .arg("redact")
        .arg(&plain)
        .arg("-o")
        .arg(&out2)
        .assert()
        .success();
    assert_eq!(
        recording::open(&out2).unwrap().manifest,
        recording::open(&out).unwrap().manifest
    );
}

// ---------------------------------------------------------------------------------------
// Replay

#[test]
fn rendered_scrapes_parse_back_to_the_stored_samples() {
    let (_tmp, dir) = fixture(12);
    let rec = recording::open(&dir).unwrap();
    for s in rec
        .scrapes
        .iter()
        .filter(|s| s.meta.status == ScrapeStatus::Ok)
    {
        let text = profile::replay::render_scrape(&rec, s);
        let e = profile::promtext::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let got = profile::recording::schema::sample_rows(&s.meta, Some(&e));
        let mut want = rec.sample_rows(s);
        let mut got_sorted = got.clone();
        let key = |r: &profile::recording::schema::SampleRow| {
            (r.name.clone(), r.labels.clone(), r.le.map(f64::to_bits))
        };
        got_sorted.sort_by_key(key);
        want.sort_by_key(key);
        assert_eq!(got_sorted, want, "{text}");
    }
    let text = profile::replay::render_scrape(&rec, &rec.scrapes[1]);
    let hist: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("vllm:e2e_request_latency_seconds"))
        .map(|l| l.split_once('{').unwrap().0)
        .collect();
    assert_eq!(hist.len(), 6);
    assert!(hist[..4].iter().all(|n| n.ends_with("_bucket")));
    assert_eq!(
        &hist[4..],
        [
            "vllm:e2e_request_latency_seconds_count",
            "vllm:e2e_request_latency_seconds_sum"
        ]
    );
    assert!(
        text.contains("le=\"0.1\"}")
            && text.contains("le=\"1.0\"}")
            && text.contains("le=\"2.5e+06\"}")
            && text.contains("le=\"+Inf\"}"),
        "{text}"
    );
    assert!(text.contains("# HELP vllm:num_requests_running Number of requests"));
    assert!(
        text.contains("note=\"quote \\\" back\\\\slash\\nnewline\""),
        "{text}"
    );
}

fn http_get(addr: std::net::SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let code = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line: {text:?}")))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((code, body))
}

#[test]
fn turns_follow_speed_and_loop() {
    let (_tmp, dir) = fixture(12);
    let rec = recording::open(&dir).unwrap();
    let once = Replay::new(
        rec.clone(),
        ReplayConfig {
            speed: 4.0,
            ..ReplayConfig::default()
        },
    )
    .unwrap();
    // Scrapes are 1 s apart: at 4x, 250 ms apart; the pass ends one interval after the last.
    assert_eq!(once.turn_at(Duration::ZERO), (0, false));
    assert_eq!(once.turn_at(249 * MS), (0, false));
    assert_eq!(once.turn_at(250 * MS), (1, false));
    assert_eq!(once.turn_at(2800 * MS), (11, false));
    assert_eq!(once.pass_duration(), 3000 * MS);
    assert_eq!(once.turn_at(3000 * MS), (11, true));
    let looped = Replay::new(
        rec,
        ReplayConfig {
            speed: 4.0,
            looped: true,
            ..ReplayConfig::default()
        },
    )
    .unwrap();
    assert_eq!(looped.turn_at(3000 * MS), (0, false));
    assert_eq!(looped.turn_at(3260 * MS), (1, false));
    assert_eq!(looped.answer(4), Answer::Status(503));
    assert_eq!(looped.answer(7), Answer::Garbage);
    assert_eq!(looped.answer(9), Answer::Status(500));
    assert!(Replay::new(
        looped.recording().clone(),
        ReplayConfig {
            speed: 0.0,
            ..ReplayConfig::default()
        }
    )
    .is_err());
}

#[test]
fn live_server_serves_turns_failures_version_and_loops() {
    let (_tmp, dir) = fixture(6);
    let mut rec = recording::open(&dir).unwrap();
    // Make scrape 2 a timeout, 3 a refused connection and 5 oversize.
    rec.scrapes[2].meta.status = ScrapeStatus::Timeout;
    rec.scrapes[3].meta.status = ScrapeStatus::Connect;
    rec.scrapes[5].meta.status = ScrapeStatus::Oversize;
    rec.scrapes[5].meta.body_bytes = None;
    let config = ReplayConfig {
        speed: 5.0,
        looped: true,
        stall: 300 * MS,
        oversize_cap: 1 << 20,
    };
    let replay = Replay::new(rec.clone(), config).unwrap();
    let server = ReplayServer::start(TcpListener::bind("127.0.0.1:0").unwrap(), replay).unwrap();
    let addr = server.addr();
    let (code, v) = http_get(addr, "/version").unwrap();
    assert_eq!((code, v.as_str()), (200, "{\"version\":\"0.32.0\"}"));
    assert_eq!(http_get(addr, "/nope").unwrap().0, 404);
    // Turns are 200 ms: probe the middle of each, over two passes.
    let mut seen = Vec::new();
    for k in 0..14u32 {
        let due = Duration::from_millis(100 + 200 * u64::from(k));
        while server.elapsed() < due {
            std::thread::sleep(MS);
        }
        let (turn, _) = server.turn();
        let res = http_get(addr, "/metrics");
        seen.push((
            turn,
            res.as_ref()
                .map(|(c, b)| (*c, b.len()))
                .map_err(|e| e.kind()),
        ));
        match (turn % 7, res) {
            (0 | 1, Ok((200, body))) => {
                let e = profile::promtext::parse(&body).unwrap();
                let want = rec.scrapes[turn].samples.len();
                assert_eq!(e.sample_count(), want);
            }
            (2, Err(_)) => {} // stalled, then closed unanswered
            (3, Err(_)) => {} // closed at once
            (4, Ok((503, _))) => {}
            (5, Ok((200, body))) => assert_eq!(body.len(), 1 << 20),
            (6, Ok(_)) => {} // the loop gap: one interval of the last scrape
            other => panic!("turn {turn}: {other:?}"),
        }
    }
    assert!(
        seen.iter().any(|(t, _)| *t == 0) && seen.len() == 14,
        "{seen:?}"
    );
    server.stop();
    // Stopped: nothing answers on the port any more.
    assert!(http_get(addr, "/metrics").is_err());
}

/// Record (with the project's recorder) a replay of the fixture at 5x, and get the same
/// scrapes back: same statuses, same samples, same order, in the recorded rhythm.
#[test]
fn record_of_a_replay_gives_the_same_samples() {
    use profile::record::{record, RecordConfig};
    let (tmp, dir) = fixture(12);
    let rec = recording::open(&dir).unwrap();
    let speed = 5.0;
    let replay = Replay::new(
        rec.clone(),
        ReplayConfig {
            speed,
            ..ReplayConfig::default()
        },
    )
    .unwrap();
    let pass = replay.pass_duration();
    let server = ReplayServer::start(TcpListener::bind("127.0.0.1:0").unwrap(), replay).unwrap();
    let out = tmp.path().join("again");
    let mut c = RecordConfig::new(format!("http://{}/metrics", server.addr()));
    c.out_dir = Some(out.clone());
    c.interval = 50 * MS;
    c.timeout = 40 * MS;
    c.duration = Some(pass - 100 * MS);
    record(c, None).unwrap();
    server.stop();
    let again = recording::open(&out).unwrap();
    assert_eq!(again.manifest.vllm_version.as_deref(), Some("0.32.0"));
    assert_eq!(again.manifest.model_name.as_deref(), Some(fixture::MODEL));

    // Collapse runs of identical answers: each is one turn of the replay.
    type Turn = (ScrapeStatus, Vec<(String, String, Option<u64>, u64)>);
    let key = |r: &Recording, s: &profile::recording::Scrape| -> Turn {
        let mut rows: Vec<_> = r
            .sample_rows(s)
            .into_iter()
            .map(|x| (x.name, x.labels, x.le.map(f64::to_bits), x.value.to_bits()))
            .collect();
        rows.sort();
        (s.meta.status, rows)
    };
    let mut turns: Vec<(Turn, i64)> = Vec::new();
    for s in &again.scrapes {
        let k = key(&again, s);
        if turns.last().map(|(t, _)| t) != Some(&k) {
            turns.push((k, s.meta.requested_mono.0));
        }
    }
    // `other` failures are served as HTTP 500, so they come back as `http_status`.
    let want: Vec<Turn> = rec
        .scrapes
        .iter()
        .map(|s| match key(&rec, s) {
            (ScrapeStatus::Other, rows) => (ScrapeStatus::HttpStatus, rows),
            k => k,
        })
        .collect();
    let got: Vec<&Turn> = turns.iter().map(|(t, _)| t).collect();
    assert_eq!(
        got.len(),
        want.len(),
        "statuses: {:?}",
        got.iter().map(|t| t.0).collect::<Vec<_>>()
    );
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(*g, w);
    }
    // Rhythm: turn k was first seen about offset_k / speed after turn 0 (within a scrape
    // interval plus scheduling jitter).
    let t0 = turns[0].1;
    for (k, (_, at)) in turns.iter().enumerate() {
        let want_ms = (rec.scrapes[k].meta.requested_mono.0 - rec.scrapes[0].meta.requested_mono.0)
            as f64
            / 1e6
            / speed;
        let got_ms = (at - t0) as f64 / 1e6;
        assert!(
            (got_ms - want_ms).abs() < 120.0,
            "turn {k}: seen at {got_ms:.0} ms, due at {want_ms:.0} ms"
        );
    }
}

/// Writes the fixture for `scripts/replay-promtool.sh`:
/// `TRAVEL_OUT=/tmp/rec cargo test --test tests write_travel_fixture -- --ignored`.
#[test]
#[ignore = "writes into $TRAVEL_OUT for a manual check"]
fn write_travel_fixture() {
    let out = PathBuf::from(std::env::var("TRAVEL_OUT").unwrap());
    fixture::write(&out, 12);
}

/// A redacted bundle of a real recording analyses to the same report as the original,
/// apart from the replaced names and the recording's label.
#[test]
fn a_redacted_bundle_analyzes_like_the_original() {
    let rec = Path::new(env!("CARGO_MANIFEST_DIR")).join("recordings/vllm-cpu-0.32-load");
    assert!(
        rec.join("manifest.json").exists(),
        "{} is missing from this checkout",
        rec.display()
    );
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("load.bundle");
    let bin = || profile();
    bin()
        .arg("bundle")
        .arg(&rec)
        .arg("-o")
        .arg(&file)
        .arg("--redact")
        .assert()
        .success();
    let analyze = |p: &Path| {
        let out = bin().arg("analyze").arg(p).arg("--json").output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["recording"]["label"] = serde_json::Value::Null;
        v.to_string()
    };
    let original = recording::open(&rec).unwrap().manifest;
    let redacted = bundle::open_any(&file).unwrap().manifest;
    assert_ne!(original.model_name, redacted.model_name);
    let mut want = analyze(&rec);
    for (a, b) in [
        (original.target_url.clone(), redacted.target_url.clone()),
        (
            original.model_name.clone().unwrap(),
            redacted.model_name.clone().unwrap(),
        ),
    ] {
        want = want.replace(&format!("\"{a}\""), &format!("\"{b}\""));
        want = want.replace(&format!("\\\"{a}\\\""), &format!("\\\"{b}\\\""));
    }
    assert_eq!(analyze(&file), want);
}
