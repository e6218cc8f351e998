//! Lost data is a gap, never a zero: damaged copies of a shipped recording analyze to the
//! intact recording's throughput (within 5%), and the report says at the top what was lost.
//! See: the issue "Nothing counted that was not measured".

use crate::support::{profile, stdout_of};
use std::path::{Path, PathBuf};

const LOAD: &str = "recordings/vllm-cpu-0.32-load";

fn copy_of_load() -> (tempfile::TempDir, PathBuf) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(LOAD);
    assert!(src.join("manifest.json").is_file(), "{LOAD} is missing");
    let tmp = tempfile::tempdir().unwrap();
    let dst = tmp.path().join("rec");
    std::fs::create_dir(&dst).unwrap();
    for e in std::fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dst.join(p.file_name().unwrap())).unwrap();
    }
    (tmp, dst)
}

fn analyze_json(dir: &Path) -> serde_json::Value {
    let out = profile()
        .args(["analyze", "--json"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn tps(r: &serde_json::Value) -> f64 {
    r["metrics"]["generation_tokens_per_s"].as_f64().unwrap()
}

fn warnings(r: &serde_json::Value) -> Vec<String> {
    r["recording"]["data_warnings"]
        .as_array()
        .map(|a| a.iter().map(|w| w.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

fn intact_tps() -> f64 {
    let (_t, dir) = copy_of_load();
    let r = analyze_json(&dir);
    assert!(warnings(&r).is_empty(), "{:?}", warnings(&r));
    tps(&r)
}

fn assert_close_to_intact(damaged: f64) {
    let intact = intact_tps();
    let off = (damaged - intact).abs() / intact;
    assert!(
        off < 0.05,
        "damaged {damaged:.1} tok/s vs intact {intact:.1} ({:.1}% off)",
        off * 100.0
    );
}

#[test]
fn a_truncated_samples_file_is_a_gap_and_is_named() {
    let (_t, dir) = copy_of_load();
    let f = dir.join("samples-000000.parquet");
    let len = std::fs::metadata(&f).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&f).unwrap();
    file.set_len(len / 2).unwrap();
    let r = analyze_json(&dir);
    let w = warnings(&r);
    assert!(
        w.iter()
            .any(|w| w.starts_with("file samples-000000.parquet")),
        "{w:?}"
    );
    assert!(
        w.iter()
            .any(|w| w.contains("lost some or all of their samples")),
        "{w:?}"
    );
    assert_close_to_intact(tps(&r));
}

/// A few bytes changed inside the compressed values of a samples file written with its
/// checksum (format 1.6; `redact` rewrites every file so): the file fails its checksum, is
/// named as damaged, and its scrapes are a gap, not other values. Without the checksum the
/// same bytes decode into other values and nothing says so.
#[test]
fn changed_bytes_inside_a_compressed_page_are_caught_by_the_checksum() {
    let (t, src) = copy_of_load();
    let dir = t.path().join("sealed");
    let path = |p: &Path| p.to_str().unwrap().to_string();
    stdout_of(&["redact", "--output", &path(&dir), &path(&src)]);
    let intact = analyze_json(&dir);
    assert!(warnings(&intact).is_empty(), "{:?}", warnings(&intact));

    let f = dir.join("samples-000000.parquet");
    let reader =
        parquet::file::reader::SerializedFileReader::new(std::fs::File::open(&f).unwrap()).unwrap();
    let meta = parquet::file::reader::FileReader::metadata(&reader).clone();
    let value = meta
        .row_group(0)
        .columns()
        .iter()
        .find(|c| c.column_path().string() == "value")
        .unwrap()
        .byte_range();
    let mut bytes = std::fs::read(&f).unwrap();
    let at = usize::try_from(value.0 + value.1 / 2).unwrap();
    for b in &mut bytes[at..at + 8] {
        *b ^= 0x5a;
    }
    std::fs::write(&f, bytes).unwrap();

    let r = analyze_json(&dir);
    let w = warnings(&r);
    assert!(
        w.iter()
            .any(|w| w.starts_with("file samples-000000.parquet")
                && w.contains("do not match the checksum")),
        "{w:?}"
    );
    assert!(
        w.iter()
            .any(|w| w.contains("lost some or all of their samples")),
        "{w:?}"
    );
    let off = (tps(&r) - tps(&intact)).abs() / tps(&intact);
    assert!(off < 0.05, "{:.1} vs {:.1} tok/s", tps(&r), tps(&intact));
}

#[test]
fn a_deleted_samples_file_is_named_by_inspect_and_analyze() {
    let (_t, dir) = copy_of_load();
    std::fs::remove_file(dir.join("samples-000000.parquet")).unwrap();
    let r = analyze_json(&dir);
    let w = warnings(&r);
    assert!(
        w.iter()
            .any(|w| w.starts_with("file samples-000000.parquet: missing")),
        "{w:?}"
    );
    assert_close_to_intact(tps(&r));
    let out = profile().arg("inspect").arg(&dir).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "inspect must fail on a missing file"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("missing"));
}

#[test]
fn the_text_report_leads_with_what_was_lost() {
    let (_t, dir) = copy_of_load();
    std::fs::remove_file(dir.join("samples-000000.parquet")).unwrap();
    let out = profile().arg("analyze").arg(&dir).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("DATA: file samples-000000.parquet: missing"),
        "{text}"
    );
}

/// Unmounts the tmpfs when the test ends, passing or not.
struct Tmpfs(PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// The disk fills while recording (a 64 KiB tmpfs; the test needs root to mount it, as CI
/// has): `record` exits 2 naming the file and the OS error once, and every file it finished
/// before is kept and reads back.
#[test]
fn a_full_disk_stops_the_recorder_and_keeps_what_it_finished() {
    use crate::support::http::{HttpServer, Response};
    use crate::support::process::{profile_cmd, Process};
    const BODY: &str = include_str!("fixtures/metrics/vllm-0.32-cpu-load.txt");
    let server = HttpServer::start(|_| Response::new(200, BODY));
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(mounted.success(), "mounting a tmpfs needs root");
    let _guard = Tmpfs(mnt.clone());
    let dir = mnt.join("rec");
    let out = Process::start(
        profile_cmd()
            .args(["record", "--url", &server.url("/metrics"), "--gpus", "none"])
            .args(["--interval", "100ms", "--rotate", "1s", "--duration", "60s"])
            .arg("--out")
            .arg(&dir),
    )
    .finish();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr.matches("No space left on device").count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains(&*dir.to_string_lossy()), "{stderr}");
    let rec = profile::recording::open(&dir).unwrap();
    assert!(
        rec.scrapes.len() >= 10,
        "{} scrapes kept",
        rec.scrapes.len()
    );
    // Allowed: a `.tmp` leftover of the write that failed, and the samples of the segment
    // whose scrapes file could not be written (samples are renamed first, by design), which
    // the reader names and skips. No finished file is damaged.
    for f in rec.problems() {
        let name = f.path.file_name().unwrap().to_string_lossy().into_owned();
        let orphan = name.starts_with("samples-")
            && f.problem
                .as_deref()
                .unwrap_or("")
                .contains("found in no scrapes file")
            && !dir.join(name.replace("samples-", "scrapes-")).exists();
        assert!(
            name.starts_with('.') || orphan,
            "a finished file is damaged: {f:?}\n{stderr}"
        );
    }
}
