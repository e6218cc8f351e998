#!/usr/bin/env bash
# Recorder memory and stop latency under high cardinality (not in CI; takes ~1.5 minutes).
#
# Serves a body of SERIES gauge series (default 100,000, ~4.6 MB) from scripts/metrics_server.py
# on 127.0.0.1 and records it at 250 ms:
#   1. with --duration DURATION (default 60s): peak RSS (/usr/bin/time -v) and how long after
#      the end of the duration the process exited (manifest stopped_at_ns -> process exit);
#   2. without a duration, SIGINT after SIGNAL_AFTER seconds (default 30): how long after the
#      signal the process exited, and its stored stop reason.
# Targets (issue "Nothing counted that was not measured"): peak RSS < 300 MB, exit < 1 s.
#
# Usage: scripts/cardinality.sh     Env: SERIES, DURATION (seconds), SIGNAL_AFTER (seconds)
# Needs: cargo, python3, GNU time (/usr/bin/time), Linux.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
SERIES=${SERIES:-100000}
DURATION=${DURATION:-60}
SIGNAL_AFTER=${SIGNAL_AFTER:-30}
cargo build --release --locked --bin profile >&2
BIN=$ROOT/target/release/profile
WORK=$(mktemp -d)
trap 'kill "$SERVER" 2>/dev/null || true; rm -rf "$WORK"' EXIT

python3 scripts/metrics_server.py --series "$SERIES" --port-file "$WORK/port" &
SERVER=$!
for _ in $(seq 100); do [ -s "$WORK/port" ] && break; sleep 0.1; done
URL="http://127.0.0.1:$(cat "$WORK/port")/metrics"

now_ns() { date +%s%N; }
field() { python3 -c "import json,sys; m=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }
rss_mb() { awk -F: '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$1"; }

echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(git rev-parse --short HEAD) $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); $SERIES series"

# 1. --duration
/usr/bin/time -v -o "$WORK/time1" "$BIN" record --url "$URL" --gpus none \
    --duration "${DURATION}s" --out "$WORK/rec1" >/dev/null 2>"$WORK/err1" || true
END=$(now_ns)
STOP=$(field "$WORK/rec1/manifest.json" 'm["stopped_at_ns"]')
echo "duration run: peak RSS $(rss_mb "$WORK/time1") MB (target < 300);" \
     "exited $(( (END - STOP) / 1000000 )) ms after --duration (target < 1000);" \
     "$(field "$WORK/rec1/manifest.json" '"%d scrapes, %d failed, %d samples" % (m["totals"]["scrapes"], m["totals"]["scrapes_failed"], m["totals"]["samples"])');" \
     "CPU $(awk -F: '/User time/ {u=$2} /System time/ {s=$2} END {printf "%.1f", u+s}' "$WORK/time1") s"

# 2. SIGINT
/usr/bin/time -v -o "$WORK/time2" "$BIN" record --url "$URL" --gpus none \
    --out "$WORK/rec2" >/dev/null 2>"$WORK/err2" &
TIMEPID=$!
sleep "$SIGNAL_AFTER"
SENT=$(now_ns)
kill -INT "$(pgrep -P "$TIMEPID")"
wait "$TIMEPID" || true
END=$(now_ns)
echo "signal run: SIGINT after ${SIGNAL_AFTER}s, exited $(( (END - SENT) / 1000000 )) ms after it" \
     "(target < 1000); peak RSS $(rss_mb "$WORK/time2") MB;" \
     "stop reason $(field "$WORK/rec2/manifest.json" 'm["stop_reason"]')"
