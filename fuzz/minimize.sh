#!/usr/bin/env bash
# Rebuilds the committed corpus fuzz/corpus/TARGET from the directories given (a run's work
# corpus, the old committed corpus, the seeds), small enough to commit and to replay in
# `cargo test` (see docs/fuzzing.md, "Corpus").
#
# The whole real seeds and fuzz/regressions/TARGET come first (a packed real recording reaches
# the analysis); then libFuzzer's merge adds, in passes of growing -max_len (inputs longer than
# that are cut to it), the inputs that add coverage edges the corpus does not have yet. Edge
# coverage only (-use_counters=0): hit-count buckets would keep hundreds of near-identical
# inputs.
# Usage: fuzz/minimize.sh TARGET MAX_LEN DIR...
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: fuzz/minimize.sh TARGET MAX_LEN DIR...}
max_len=${2:?usage: fuzz/minimize.sh TARGET MAX_LEN DIR...}
shift 2
bin=fuzz/target/x86_64-unknown-linux-gnu/release/$target
[ -x "$bin" ] || { echo "build it first: cargo fuzz build --sanitizer none $target" >&2; exit 1; }
new=$(mktemp -d)
trap 'rm -rf "$new"' EXIT
case $target in
  recording) cp fuzz/seeds/recording/*-all "$new/" ;;
  *) cp fuzz/seeds/"$target"/* "$new/" ;;
esac
# Inputs that once crashed a target stay in its corpus.
if [ -d "fuzz/regressions/$target" ]; then cp fuzz/regressions/"$target"/* "$new/"; fi
export TMPDIR=${TMPDIR:-/dev/shm} RAYON_NUM_THREADS=1 RUST_BACKTRACE=0
for len in 1024 4096 "$max_len"; do
  "$bin" -merge=1 -use_counters=0 -max_len="$len" "$new" "$@" 2>&1 | grep 'MERGE-OUTER: .* new files'
done
rm -rf "fuzz/corpus/$target"
mkdir -p fuzz/corpus
cp -r "$new" "fuzz/corpus/$target"
echo "fuzz/corpus/$target: $(ls "fuzz/corpus/$target" | wc -l) files, $(du -sb "fuzz/corpus/$target" | cut -f1) bytes"
