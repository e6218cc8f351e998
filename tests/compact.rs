//! `profile compact` on the shipped recordings: fewer files, fewer bytes, the same analysis
//! byte for byte, and a second run that changes nothing.

use crate::support::profile;
use std::fs;
use std::path::{Path, PathBuf};

fn shipped() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("recordings");
    let mut v: Vec<PathBuf> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("manifest.json").exists())
        .collect();
    v.sort();
    assert!(v.len() >= 4, "{v:?}");
    v
}

fn copy(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).unwrap();
    for e in fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
}

fn stdout(args: &[&str]) -> String {
    let out = profile().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn segment_files(dir: &Path) -> usize {
    fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            let n = e.as_ref().unwrap().file_name();
            n.to_string_lossy().ends_with(".parquet")
        })
        .count()
}

#[test]
fn compacting_a_shipped_recording_leaves_its_analysis_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    for src in shipped() {
        let dir = tmp.path().join(src.file_name().unwrap());
        copy(&src, &dir);
        let d = dir.to_str().unwrap();
        let json = stdout(&["analyze", "--json", d]);
        let text = stdout(&["analyze", d]);
        let files = segment_files(&dir);

        let said = stdout(&["compact", d]);
        assert!(said.contains("<- "), "{}: {said}", src.display());
        assert!(segment_files(&dir) < files, "{}", src.display());
        assert_eq!(stdout(&["analyze", "--json", d]), json, "{}", src.display());
        assert_eq!(stdout(&["analyze", d]), text, "{}", src.display());
        profile().args(["inspect", d]).assert().success();

        let again = stdout(&["compact", d]);
        assert!(again.contains("nothing to merge"), "{again}");
    }
}

#[test]
fn compact_refuses_a_bundle_and_a_missing_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("recordings/vllm-cpu-0.32-light");
    let bundle = tmp.path().join("light.profile");
    profile()
        .args([
            "bundle",
            src.to_str().unwrap(),
            "-o",
            bundle.to_str().unwrap(),
        ])
        .assert()
        .success();
    let out = profile()
        .args(["compact", bundle.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unbundle"));
    let missing = tmp.path().join("nope");
    let out = profile()
        .args(["compact", missing.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope"));
}
