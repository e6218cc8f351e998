#!/usr/bin/env bash
# Run the performance benchmarks and print each figure with its ratio to its target:
#   record:       CPU per scrape, parse + ScrapeWriter::push + amortized rotation (<= 1.25 ms)
#   bytes/sample: bytes on disk per stored sample, an hour of replayed real scrapes (<= 0.5)
#   analyze:      samples per second, recording::open + analyze + text report (>= 50 M/s),
#                 on 1 h and 24 h replayed recordings, with peak memory
# Each run reports the best of several repetitions and the spread (the machine may be shared).
# The long recordings are generated once into big-benchmark-fixtures/ (gitignored; the 24 h
# one takes about 2 minutes and 50 MB).
#
# Usage: scripts/bench.sh
# Env knobs (defaults in brackets):
#   HOURS     recordings to analyse, comma-separated hours [1,24]
#   CRITERION 1 to also run the criterion timings of the parts (wall clock) [0]
# Needs: cargo; /proc (Linux) for CPU and memory figures.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
HOURS=${HOURS:-1,24}
SUMMARY=1
[ "${CRITERION:-0}" = 1 ] && SUMMARY=0

echo "building benchmarks (release)..." >&2
cargo bench --bench record --bench analyze --no-run >&2

echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ)  $(git rev-parse --short HEAD)  $(nproc) CPUs  load $(cut -d' ' -f1-3 /proc/loadavg)"
BENCH_SUMMARY_ONLY=$SUMMARY cargo bench -q --bench record
BENCH_SUMMARY_ONLY=$SUMMARY BENCH_ANALYZE_HOURS=$HOURS cargo bench -q --bench analyze
echo "# done; load $(cut -d' ' -f1-3 /proc/loadavg)"
