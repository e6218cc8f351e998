#!/usr/bin/env bash
# Builds the seed corpora in fuzz/seeds/{promtext,recording,bundle} from the repository's real
# captures: the fixture bodies, the shipped recordings' files, and bundles of those recordings.
# Usage: fuzz/seed.sh PROFILE_BIN   (a built `profile` binary, for `profile bundle`)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:?usage: fuzz/seed.sh PROFILE_BIN}
out=fuzz/seeds
rm -rf "$out"
mkdir -p "$out"/{promtext,recording,bundle}

cp tests/fixtures/metrics/*.txt "$out/promtext/"

# The recording harness's input: entries `name: u8, len: u32 LE, bytes` (src/fuzz_support.rs),
# names indexed as in RECORDING_NAMES.
python3 - "$out/recording" recordings/*/ <<'PY'
import os, struct, sys
names = ["manifest.json", "scrapes-000000.parquet", "scrapes-000001.parquet",
         "samples-000000.parquet", "samples-000001.parquet", "samples-000002.parquet",
         "gpu-000000.parquet", ".samples-000003.parquet.tmp"]
out = sys.argv[1]
def join(entries):
    return b"".join(bytes([i]) + struct.pack("<I", len(b)) + b for i, b in entries)
for d in sys.argv[2:]:
    tag = os.path.basename(d.rstrip("/"))
    files = [(names.index(n), open(os.path.join(d, n), "rb").read())
             for n in sorted(os.listdir(d)) if n in names]
    open(os.path.join(out, tag + "-all"), "wb").write(join(files))
    man = [f for f in files if f[0] == 0]
    for i, b in files:
        if i != 0:  # the manifest and one table file
            open(os.path.join(out, "%s-%s" % (tag, names[i])), "wb").write(join(man + [(i, b)]))
PY

for d in recordings/*/; do
  tag=$(basename "$d")
  "$bin" bundle "$d" -o "$out/bundle/$tag.profile" >/dev/null
done
ls -l "$out"/*
