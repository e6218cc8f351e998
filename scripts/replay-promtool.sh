#!/usr/bin/env bash
# Replays a recording (directory or bundle) and checks what the replay serves with
# `promtool check metrics` (Debian package `prometheus`), one /metrics body per turn for
# the first N turns. Exits non-zero if promtool rejects any body.
#
#   scripts/replay-promtool.sh REC [TURNS]     (default 8 turns)
#
# Uses target/debug/profile (built if missing), port 19400+$$%500, speed so that each turn
# lasts ~0.25 s. Note: promtool's lint also flags naming conventions (e.g. counters without
# `_total`); those are reported, but only "error" lines fail the check.
set -euo pipefail
rec=${1:?usage: $0 REC [TURNS]}
turns=${2:-8}
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/target/debug/profile"
[ -x "$bin" ] || (cd "$root" && cargo build --quiet)
command -v promtool >/dev/null || { echo "promtool not found: apt-get install -y prometheus" >&2; exit 2; }
port=$((19400 + $$ % 500))
interval_ms=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["interval_ms"])' "$rec/manifest.json" 2>/dev/null || echo 250)
speed=$(python3 -c "print(max(1.0, $interval_ms / 250))")
"$bin" replay "$rec" --listen "127.0.0.1:$port" --speed "$speed" --loop &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -fs -o /dev/null "http://127.0.0.1:$port/version" 2>/dev/null && break; \
  curl -s -o /dev/null "http://127.0.0.1:$port/metrics" 2>/dev/null && break; sleep 0.1; done
fail=0 checked=0 skipped=0
for i in $(seq "$turns"); do
  body=$(mktemp)
  code=$(curl -s -m 2 -o "$body" -w '%{http_code}' "http://127.0.0.1:$port/metrics" || echo 000)
  if [ "$code" != 200 ]; then
    echo "turn $i: HTTP $code (a replayed failed scrape); not checked"; skipped=$((skipped + 1))
  else
    out=$(promtool check metrics < "$body" 2>&1) && rc=0 || rc=$?
    lines=$(wc -l < "$body")
    if [ $rc -ne 0 ] && echo "$out" | grep -qi 'error'; then
      echo "turn $i: $lines lines: promtool REJECTS:"; echo "$out" | head -20; fail=1
    else
      echo "turn $i: $lines lines: promtool ok${out:+ (lint: $(echo "$out" | wc -l) notes)}"
      if [ -n "$out" ]; then echo "$out" | grep -v "should not contain .:." | sort -u | head -5 | sed "s/^/    /" || true; fi
    fi
    checked=$((checked + 1))
  fi
  rm -f "$body"
  sleep 0.25
done
echo "checked $checked bodies, skipped $skipped failures: $([ $fail = 0 ] && echo PASS || echo FAIL)"
exit $fail
