#!/usr/bin/env bash
# Cross-checks `profile analyze`'s per-window generation-token increase and TTFT p99 against
# Prometheus' own increase() and histogram_quantile(), run by `promtool test rules`.
# See docs/promtool-crosscheck.md for what the differences mean.
#
#   scripts/promtool-crosscheck.sh REC [WORKDIR]
#
# Needs promtool (Debian package `prometheus`; installed here when missing and we are root,
# else: apt-get update && apt-get install -y prometheus) and python3 with pyarrow
# (pip install pyarrow). Leaves the generated test file and promtool's output in WORKDIR.
set -euo pipefail
rec=${1:?usage: $0 REC [WORKDIR]}
work=${2:-$(mktemp -d)}
root=$(cd "$(dirname "$0")/.." && pwd)
if ! command -v promtool >/dev/null; then
  if [ "$(id -u)" = 0 ]; then apt-get update && apt-get install -y prometheus
  else echo "promtool not found: sudo apt-get update && sudo apt-get install -y prometheus" >&2; exit 2; fi
fi
python3 -c 'import pyarrow' 2>/dev/null || { echo "pyarrow missing: pip install pyarrow" >&2; exit 2; }
(cd "$root" && cargo build --release --quiet)
mkdir -p "$work"
"$root/target/release/profile" analyze -v --json "$rec" > "$work/analyze.json"
python3 "$root/scripts/promtool_crosscheck.py" "$rec" "$work/analyze.json" "$work"
echo "test file and promtool output: $work"
