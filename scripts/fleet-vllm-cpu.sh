#!/usr/bin/env bash
# Two real vLLM CPU servers of the same model recorded as one fleet: one gets many clients
# (it queues at its cap), the other a trickle (free slots). Then:
#   - the fleet table names both, and the replica-imbalance finding names the busy one;
#   - each target's report inside the fleet equals `analyze --target NAME` of it.
# Not run in CI (it installs vLLM and needs ~3 minutes of a 2-core machine); prints PASS/FAIL
# per check and exits non-zero on a failure.
#
# Usage: scripts/fleet-vllm-cpu.sh OUT_DIR
# Env knobs (defaults in brackets):
#   SHARED  the shared tools folder [../shared next to the repository]
#   VENV    vLLM venv [/tmp/vllmcpu/venv]; installed with vLLM 0.32.0 if missing
#   MODEL   model dir [/tmp/vllmcpu/small-llama]; made if missing (hidden 512, 8 layers)
#   PORTS   two ports ["8000 8001"]     MAX_NUM_SEQS [8]
#   BUSY    clients on the first server [24]   CALM  clients on the second [1]
#   LOAD_S  load duration [40]   LOAD_ARGS ["--min-tokens 64 --max-tokens 192 --prefix-words 200"]
#   INTERVAL scrape interval [1s]; TIMEOUT [900ms]: on a 2-core host running both servers and
#            the clients, the busy API server often took longer than 200 ms (the default
#            250 ms interval's timeout) to answer /metrics, and a replica that does not answer
#            under load cannot be compared with its neighbour (it shows as down instead)
#   PROFILE_BIN a built `profile` [build target/release/profile]
# Needs: cargo, python3, curl. Sends traffic to 127.0.0.1 only; stops by itself.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:?usage: fleet-vllm-cpu.sh OUT_DIR}
SHARED=${SHARED:-$ROOT/../shared}
TOOLS=$SHARED/tools/vllm-cpu
VENV=${VENV:-/tmp/vllmcpu/venv}
MODEL=${MODEL:-/tmp/vllmcpu/small-llama}
read -r -a PORT <<< "${PORTS:-8000 8001}"
MAX_NUM_SEQS=${MAX_NUM_SEQS:-8}
BUSY=${BUSY:-24}
CALM=${CALM:-1}
LOAD_S=${LOAD_S:-40}
LOAD_ARGS=${LOAD_ARGS:---min-tokens 64 --max-tokens 192 --prefix-words 200}
INTERVAL=${INTERVAL:-1s}
TIMEOUT=${TIMEOUT:-900ms}
RUN=$(mktemp -d /tmp/profile-fleet.XXXXXX)

[ -d "$TOOLS" ] || { echo "missing $TOOLS (the shared vLLM CPU tools)"; exit 1; }
[ -e "$OUT" ] && { echo "refusing: $OUT exists"; exit 1; }
if [ ! -x "$VENV/bin/python" ]; then
  echo "== installing vLLM (CPU) into $VENV"
  "$TOOLS/install.sh" "$VENV" 0.32.0
fi
if [ ! -f "$MODEL/config.json" ]; then
  "$VENV/bin/python" "$TOOLS/make_tiny_model.py" "$MODEL" --hidden 512 --layers 8 --heads 8 --kv-heads 8
fi
if [ -n "${PROFILE_BIN:-}" ]; then
  PROFILE=$PROFILE_BIN
else
  (cd "$ROOT" && cargo build --release --locked -q)
  PROFILE=$ROOT/target/release/profile
fi

stop_servers() {
  for i in 0 1; do
    local pid
    pid=$(cat "$RUN/server$i/server.pid" 2>/dev/null) || continue
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "$pid" 2>/dev/null || true
    for p in $(ps -o pid= -s "$pid" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
  done
}
trap stop_servers EXIT

for i in 0 1; do
  echo "== starting vLLM $i on 127.0.0.1:${PORT[$i]}"
  VENV=$VENV MAX_NUM_SEQS=$MAX_NUM_SEQS "$TOOLS/start_server.sh" "${PORT[$i]}" "$MODEL" "$RUN/server$i"
done

printf 'http://127.0.0.1:%s/metrics busy\nhttp://127.0.0.1:%s/metrics calm\n' "${PORT[0]}" "${PORT[1]}" \
  > "$RUN/targets.txt"
echo "== recording the fleet into $OUT"
"$PROFILE" record --targets "$RUN/targets.txt" --out "$OUT" -m "$MAX_NUM_SEQS" --dtype bfloat16 \
  --interval "$INTERVAL" --timeout "$TIMEOUT" &
REC=$!
sleep 5
# shellcheck disable=SC2086
python3 "$TOOLS/load_gen.py" --port "${PORT[0]}" --concurrency "$BUSY" --duration "$LOAD_S" $LOAD_ARGS \
  > "$RUN/load-busy.txt" 2>&1 &
L0=$!
# shellcheck disable=SC2086
python3 "$TOOLS/load_gen.py" --port "${PORT[1]}" --concurrency "$CALM" --duration "$LOAD_S" $LOAD_ARGS \
  > "$RUN/load-calm.txt" 2>&1 &
L1=$!
wait "$L0" "$L1" || true
sleep 5
kill -INT "$REC"
wait "$REC"
stop_servers
trap - EXIT

{
  echo "two vLLM 0.32.0 CPU servers of $MODEL, --max-num-seqs $MAX_NUM_SEQS, on one 2-core host"
  echo "busy: load_gen.py --concurrency $BUSY --duration $LOAD_S $LOAD_ARGS"
  echo "calm: load_gen.py --concurrency $CALM --duration $LOAD_S $LOAD_ARGS"
  echo "record: profile record --targets targets.txt -m $MAX_NUM_SEQS --dtype bfloat16 --interval $INTERVAL --timeout $TIMEOUT"
} > "$OUT/HOW.txt"

"$PROFILE" analyze "$OUT" --color never > "$RUN/fleet.txt"
sed -n 1,12p "$RUN/fleet.txt"
"$PROFILE" analyze "$OUT" --json > "$RUN/fleet.json"
fail=0
check() { if eval "$2"; then echo "PASS: $1"; else echo "FAIL: $1"; fail=1; fi; }
check "the fleet table names both targets" \
  "grep -q '^│ busy' '$RUN/fleet.txt' && grep -q '^│ calm' '$RUN/fleet.txt'"
check "replica imbalance names busy as the queueing replica" \
  "python3 -c 'import json,sys; f=json.load(open(\"$RUN/fleet.json\"))[\"replica_imbalance\"][\"findings\"]; sys.exit(0 if f and f[0][\"busy\"]==\"busy\" and f[0][\"idle\"]==\"calm\" else 1)'"
for t in busy calm; do
  "$PROFILE" analyze "$OUT" --target "$t" --json > "$RUN/$t.json"
  check "$t's report in the fleet equals --target $t" \
    "python3 -c 'import json,sys; f=json.load(open(\"$RUN/fleet.json\")); one=json.load(open(\"$RUN/$t.json\")); sys.exit(0 if [x[\"report\"] for x in f[\"targets\"] if x[\"name\"]==\"$t\"][0]==one else 1)'"
done
rm -rf "$RUN"
exit "$fail"
