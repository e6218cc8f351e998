#!/usr/bin/env python3
"""Cross-check `profile analyze` window figures against Prometheus' own PromQL via promtool.

Usage: promtool_crosscheck.py REC ANALYZE_JSON WORKDIR

Reads the recording's Parquet files (pyarrow), rebuilds our 2 s windows the way
src/window/mod.rs does (anchored on the first good scrape, boundary scrape shared), checks that
the rebuild matches the analyzer's JSON rows, writes a `promtool test rules` file whose
`exp_samples` are OUR values, runs promtool, and reads Prometheus' values back from the
"exp: ... got: ..." failure lines. Prints one table per expression and a summary.

Why the p99 "ours" column is re-derived here: `windows.rows` in the JSON does not carry the
per-window TTFT p99 (only the run-wide `metrics.ttft.p99_ms`). The script rebuilds the
per-window delta buckets from the same scrapes and applies the same quantile rule, and
validates that rebuild against the JSON's run-wide p99 (merged delta buckets of the active
windows). Stdlib + pyarrow only.
"""
import glob
import json
import math
import os
import re
import subprocess
import sys

import pyarrow.parquet as pq

TICK_MS = 250
WINDOW_NS = 2_000_000_000
GEN = "vllm:generation_tokens_total"
TTFT = "vllm:time_to_first_token_seconds_bucket"


def load(rec):
    """Good scrapes {seq: completed_mono_ns}, all seqs, and series {(name, labels, le): {seq: v}}."""
    scrapes, status = {}, {}
    for f in sorted(glob.glob(os.path.join(rec, "scrapes-*.parquet"))):
        t = pq.read_table(f, columns=["seq", "completed_mono_ns", "status"]).to_pydict()
        for seq, mono, st in zip(t["seq"], t["completed_mono_ns"], t["status"]):
            status[seq] = (st, mono)
            if st == "ok":
                scrapes[seq] = mono
    series = {}
    for f in sorted(glob.glob(os.path.join(rec, "samples-*.parquet"))):
        t = pq.read_table(f, columns=["scrape_seq", "name", "labels", "le", "value"]).to_pydict()
        for seq, name, labels, le, v in zip(t["scrape_seq"], t["name"], t["labels"], t["le"], t["value"]):
            if name in (GEN, TTFT) and seq in scrapes:
                series.setdefault((name, labels, le), {})[seq] = v
    return scrapes, status, series


def windows(scrapes, status):
    """Our windows: list of lists of good-scrape seqs (boundary shared), as src/window/mod.rs."""
    good = sorted(scrapes)
    anchor = scrapes[good[0]]
    out, boundary, k_prev, failed = [], None, 0, []
    for seq in sorted(status):
        st, mono = status[seq]
        # Failed scrapes move the window index too (Rust keeps it non-decreasing over all).
        k_prev = max(k_prev, max(0, (mono - anchor) // WINDOW_NS))
        while len(out) <= k_prev:
            out.append([])
        if st != "ok":
            continue
        w = out[k_prev]
        if not w and boundary is not None:
            w.append(boundary)
        w.append(seq)
        boundary = seq
    return out


def quantile(q, buckets):
    """Prometheus bucketQuantile (classic buckets): buckets [(le, cumulative count)]."""
    merged = {}
    for le, c in buckets:
        merged[le] = merged.get(le, 0.0) + c
    b = sorted(merged.items())
    if len(b) < 2 or not math.isinf(b[-1][0]):
        return math.nan
    for i in range(1, len(b)):  # ensureMonotonic
        if b[i][1] < b[i - 1][1]:
            b[i] = (b[i][0], b[i - 1][1])
    total = b[-1][1]
    if total == 0:
        return math.nan
    rank = q * total
    i = next(i for i, (_, c) in enumerate(b[:-1] + [b[-1]]) if c >= rank)
    if i == len(b) - 1:
        return b[-2][0]
    if i == 0 and b[0][0] <= 0:
        return b[0][0]
    start, count_prev = (0.0, 0.0) if i == 0 else (b[i - 1][0], b[i - 1][1])
    end, count = b[i]
    return start + (end - start) * (rank - count_prev) / (count - count_prev)


def delta_buckets(series, first, last):
    out = []
    for (name, _labels, le), vals in series.items():
        if name == TTFT and first in vals and last in vals:
            out.append((le, vals[last] - vals[first]))
    return out


def fmt_le(le):
    return "+Inf" if math.isinf(le) else repr(le)


def series_line(name, labels, le, vals, max_seq):
    lab = labels + ("," if labels and le is not None else "")
    if le is not None:
        lab += 'le="%s"' % fmt_le(le)
    toks = [repr(vals[s]) if s in vals else "_" for s in range(max_seq + 1)]
    return "      - series: '%s{%s}'\n        values: '%s'\n" % (name, lab, " ".join(toks))


def go_ms(t):
    """A Go model.Duration as promtool prints it (e.g. 1m2s250ms) to ms."""
    unit = {"h": 3600000, "m": 60000, "s": 1000, "ms": 1}
    return sum(int(n) * unit[u] for n, u in re.findall(r"(\d+)(ms|h|m|s)", t))


def fnum(x):
    return "nan" if x is None or math.isnan(x) else "%.6g" % x


def main():
    rec, analyze_json, work = sys.argv[1:4]
    rep = json.load(open(analyze_json))
    rows = rep["windows"]["rows"]
    scrapes, status, series = load(rec)
    wins = windows(scrapes, status)
    max_seq = max(status)

    # 1. Our rebuild must reproduce the analyzer's windows, else the comparison means nothing.
    anchor = scrapes[min(scrapes)]
    mismatch = 0
    for r, w in zip(rows, wins):
        d = (scrapes[w[-1]] - scrapes[w[0]]) / 1e9 if len(w) >= 2 else None
        if r["scrapes_ok"] != len(w) or (d is not None and abs(d - (r["duration_s"] or -1)) > 1e-9):
            mismatch += 1
    print("windows: analyzer %d, rebuilt %d, rebuild mismatches %d" % (len(rows), len(wins), mismatch))
    if mismatch or len(rows) != len(wins):
        print("rebuild does not match the analyzer; stopping", file=sys.stderr)
        return 2

    # 2. Tests: evaluate at each window's last scrape tick (seq x 250 ms).
    gen_key = [k for k in series if k[0] == GEN]
    tests, cases = [], []
    for r, w in zip(rows, wins):
        if len(w) < 2 or r["generation_tokens_per_s"] is None:
            continue
        t_ms = w[-1] * TICK_MS
        ours_inc = r["generation_tokens_per_s"] * r["duration_s"]
        cases.append(("gen", r["index"], t_ms, ours_inc, r, w))
        p = quantile(0.99, delta_buckets(series, w[0], w[-1]))
        if not math.isnan(p):
            cases.append(("ttft", r["index"], t_ms, p, r, w))
    exprs = {
        "gen": "increase(%s[2s])" % GEN,
        "ttft": "histogram_quantile(0.99, sum by (le) (increase(%s[2s])))" % TTFT,
    }
    with open(os.path.join(work, "crosscheck.test.yml"), "w") as f:
        f.write("# generated by scripts/promtool_crosscheck.py from %s\n" % rec)
        f.write("tests:\n  - interval: %dms\n    input_series:\n" % TICK_MS)
        for (name, labels, le), vals in sorted(series.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] or 0)):
            f.write(series_line(name, labels, le, vals, max_seq))
        f.write("    promql_expr_test:\n")
        gen_labels = "{%s}" % gen_key[0][1] if gen_key else "{}"
        for kind, _i, t_ms, ours, _r, _w in cases:
            f.write("      - expr: '%s'\n        eval_time: %dms\n        exp_samples:\n"
                    "          - labels: '%s'\n            value: %r\n"
                    % (exprs[kind], t_ms, gen_labels if kind == "gen" else "{}", ours))
        f.write("    # rule_files: none\n")
    open(os.path.join(work, "empty.rules.yml"), "w").write("groups: []\n")
    # promtool needs rule_files; point it at an empty group file.
    txt = open(os.path.join(work, "crosscheck.test.yml")).read().replace(
        "tests:", "rule_files:\n  - empty.rules.yml\nevaluation_interval: 250ms\ntests:", 1)
    open(os.path.join(work, "crosscheck.test.yml"), "w").write(txt)
    res = subprocess.run(["promtool", "test", "rules", "crosscheck.test.yml"], cwd=work,
                         capture_output=True, text=True)
    out = res.stdout + res.stderr
    open(os.path.join(work, "promtool.out"), "w").write(out)

    # 3. Parse failures: expr, time, exp, got.
    got = {}
    pat = re.compile(r'expr: "(.*?)", time: (\S+),\s*exp: ?(.*?)\n\s*got: ?(.*?)\n', re.S)
    for m in pat.finditer(out):
        expr, t, _exp, g = m.group(1), m.group(2), m.group(3), m.group(4)
        vals = re.findall(r"=> ?([-+0-9.eE]+|NaN|[+-]?Inf)", g) or re.findall(r"\} ?([-+0-9.eE]+|NaN|[+-]?Inf)", g)
        got[(expr.replace('\\"', '"'), go_ms(t))] = float(vals[0]) if vals else None
    print("promtool exit %d, %d expressions, %d reported as differing (promtool's own tolerance)"
          % (res.returncode, len(cases), len(got)))


    summary = {}
    for kind in ("gen", "ttft"):
        print("\n== %s ==" % exprs[kind])
        print("%4s %8s %6s %6s %14s %14s %12s %10s" % ("win", "eval_s", "ours_n", "prom_n", "ours", "prometheus",
                                                        "diff", "rel"))
        agree, maxrel, n = 0, 0.0, 0
        for k, idx, t_ms, ours, r, w in cases:
            if k != kind:
                continue
            n += 1
            prom = got.get((exprs[kind], t_ms), ours)  # no failure line: agreed within 1e-6
            prom_n = sum(1 for s in range(w[-1] - 8, w[-1] + 1) if s in scrapes)  # samples in [t-2s, t]
            diff = (prom - ours) if prom is not None else math.nan
            rel = abs(diff) / abs(ours) if ours else (0.0 if diff == 0 else math.inf)
            if abs(diff) <= 1e-9 or (ours and rel <= 1e-9):
                agree += 1
            elif not math.isnan(rel):
                maxrel = max(maxrel, rel)
            print("%4d %8.2f %6d %6d %14s %14s %12s %10s" % (idx, t_ms / 1000, len(w), prom_n, fnum(ours),
                                                             fnum(prom), fnum(diff), fnum(rel)))
        summary[kind] = (n, agree, maxrel)
        print("summary %s: %d windows, %d agree within 1e-9, max relative difference %s"
              % (kind, n, agree, fnum(maxrel)))

    # 4. Run-wide TTFT p99: rebuilt merged active-window buckets vs the JSON's figure.
    merged = []
    for r, w in zip(rows, wins):
        if r["gate"].startswith("active") and len(w) >= 2:
            merged += delta_buckets(series, w[0], w[-1])
    ours_run = quantile(0.99, merged) * 1000
    print("\nrun-wide TTFT p99: JSON metrics.ttft.p99_ms %s, rebuilt from active windows %s"
          % (fnum(rep["metrics"]["ttft"]["p99_ms"]), fnum(ours_run)))
    print("rate note: our tok/s = delta / measured duration; Prometheus rate() = increase / 2 s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
