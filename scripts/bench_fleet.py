#!/usr/bin/env python3
"""The fleet recorder's own cost, in real time (not for CI; driven by scripts/bench-fleet.sh).

Two modes:

  bench_fleet.py serve --body FILE --ports N --port-file F
      One process, one asyncio loop, N listening sockets on 127.0.0.1 (ports chosen by the
      kernel, written one per line to F once all listen). Each answers GET /metrics with the
      same real capture, and GET /version with a vLLM-like JSON, on keep-alive connections
      with Nagle off. One lightweight process rather than N `profile replay`s, so that the
      servers take as little of the machine as possible from the recorder being measured.
      On SIGTERM it prints how many /metrics requests each port answered.

  bench_fleet.py measure --bin PROFILE --body FILE --targets N --duration S --out DIR
      Starts the server above, writes a targets file, runs
      `PROFILE record --targets FILE --interval 250ms --duration Ss --gpus none`, and measures
      that process only: CPU from os.wait4's rusage (user + system of every thread), wall time
      from its start to its exit, peak RSS (the kernel's high-water mark: wait4's when it is
      the recorder's own, else /proc/PID/status VmHWM read until the exit), RSS and CPU
      sampled from /proc every second, and CPU per thread name from
      /proc/PID/task/*/stat shortly before the stop. Then reads each target's recording with
      `profile inspect --json` for scrapes ok / failed / ticks skipped, and prints the figures
      against the targets of issue 13: at most 5% of one core, at most 100 MB RSS.
"""
import argparse
import asyncio
import collections
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time

CPU_TARGET = 0.05  # share of one core
RSS_TARGET_MB = 100.0  # 10^6 bytes
TICK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------- serve


def serve(args):
    with open(args.body, "rb") as f:
        body = f.read()

    def answer(status, ctype, payload):
        head = ("HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n"
                % (status, ctype, len(payload))).encode()
        return head + payload

    metrics = answer("200 OK", "text/plain; version=0.0.4; charset=utf-8", body)
    version = answer("200 OK", "application/json", b'{"version": "bench"}')
    missing = answer("404 Not Found", "text/plain", b"not found\n")
    counts = [0] * args.ports

    async def handle(i, reader, writer):
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                parts = head.split(b"\r\n", 1)[0].split()
                path = parts[1] if len(parts) > 1 else b""
                if path == b"/metrics":
                    counts[i] += 1
                    writer.write(metrics)
                elif path == b"/version":
                    writer.write(version)
                else:
                    writer.write(missing)
                await writer.drain()
                if b"connection: close" in head.lower():
                    break
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()

    async def main():
        servers = []
        for i in range(args.ports):
            srv = await asyncio.start_server(
                lambda r, w, i=i: handle(i, r, w), "127.0.0.1", 0, backlog=16)
            servers.append(srv)
        ports = [s.sockets[0].getsockname()[1] for s in servers]
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("".join("%d\n" % p for p in ports))
        os.rename(tmp, args.port_file)
        sys.stderr.write("fleet server: %d ports, body %d bytes\n" % (len(ports), len(body)))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        await stop.wait()
        print(json.dumps({"ports": ports, "metrics_requests": counts}), flush=True)

    asyncio.run(main())


# ---------------------------------------------------------------------------- measure


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def stat_cpu_s(path):
    """utime + stime of a /proc stat file, seconds (clock-tick resolution)."""
    text = read(path)
    if text is None:
        return None, None
    # The name is in parentheses and may hold spaces: split after the last ')'.
    name = text[text.index("(") + 1:text.rindex(")")]
    fields = text[text.rindex(")") + 2:].split()
    return name, (int(fields[11]) + int(fields[12])) / TICK


def status_kb(pid, key):
    text = read("/proc/%d/status" % pid)
    if text is None:
        return None
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return None


def loadavg():
    text = read("/proc/loadavg")
    return float(text.split()[0]) if text else None


def threads_by_name(pid):
    """CPU seconds per thread name (summed over threads of that name) and thread counts."""
    cpu = collections.Counter()
    n = collections.Counter()
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return cpu, n
    for tid in tids:
        name, s = stat_cpu_s("/proc/%d/task/%s/stat" % (pid, tid))
        if name is None:
            continue
        cpu[name] += s
        n[name] += 1
    return cpu, n


def mb(kb):
    return None if kb is None else kb * 1024 / 1e6


def fmt(v, spec=".1f"):
    return "-" if v is None else format(v, spec)


def measure(args):
    os.makedirs(args.out, exist_ok=True)
    port_file = os.path.join(args.out, "ports")
    server = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "serve", "--body", args.body,
         "--ports", str(args.targets), "--port-file", port_file],
        stdout=subprocess.PIPE, text=True)
    try:
        for _ in range(200):
            if os.path.exists(port_file):
                break
            if server.poll() is not None:
                sys.exit("the fleet server exited early")
            time.sleep(0.05)
        with open(port_file) as f:
            ports = [int(p) for p in f.read().split()]
        targets_file = os.path.join(args.out, "targets.txt")
        with open(targets_file, "w") as f:
            for i, p in enumerate(ports):
                f.write("http://127.0.0.1:%d/metrics t%02d\n" % (p, i))
        rec_dir = os.path.join(args.out, "rec")
        cmd = [args.bin, "record", "--targets", targets_file, "--interval", "250ms",
               "--duration", "%ds" % args.duration, "--gpus", "none", "--out", rec_dir]
        cmd += args.extra.split()
        result = run_recorder(cmd, args, server.pid)
    finally:
        server.send_signal(signal.SIGTERM)
        served, _ = server.communicate(timeout=30)
    result["served"] = json.loads(served.strip().splitlines()[-1]) if served.strip() else None
    result["targets"] = inspect_targets(args.bin, rec_dir, len(ports))
    result["cmd"] = cmd
    report(result, args)


def run_recorder(cmd, args, server_pid):
    err_path = os.path.join(args.out, "record.stderr")
    load0 = loadavg()
    _, server_cpu0 = stat_cpu_s("/proc/%d/stat" % server_pid)
    # The child's rusage maxrss starts from this process's own high-water mark (the kernel
    # carries the forking process's over the exec), so it is the recorder's only when above it.
    parent_maxrss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.monotonic()
    with open(err_path, "w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
    samples = []  # (t, cpu_s, rss_kb, threads, load1), once a second
    state = {"per_thread": None, "hwm_kb": None}
    done = threading.Event()

    def sampler():
        next_t = 0.0
        while not done.is_set():
            t = time.monotonic() - t0
            # VmHWM is the kernel's high-water mark of the recorder's own memory; read until
            # the exit (50 times a second near the stop, where the final rotation peaks).
            hwm = status_kb(proc.pid, "VmHWM")
            if hwm is not None:
                state["hwm_kb"] = hwm
            if t >= next_t:
                next_t += 1.0
                _, cpu = stat_cpu_s("/proc/%d/stat" % proc.pid)
                rss = status_kb(proc.pid, "VmRSS")
                if rss is not None:
                    samples.append((t, cpu, rss, status_kb(proc.pid, "Threads"), loadavg()))
                # The per-thread split a little before the stop, while every scrape thread
                # lives (so the final rotation is not in it; the totals are).
                if state["per_thread"] is None and t >= args.duration - 3:
                    state["per_thread"] = (t, cpu) + threads_by_name(proc.pid)
            done.wait(0.02 if t >= args.duration - 0.5 else 0.2)

    th = threading.Thread(target=sampler, daemon=True)
    th.start()
    # wait4 reaps exactly this child and gives its own rusage (every thread's user + system).
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.monotonic() - t0
    done.set()
    th.join()
    _, server_cpu1 = stat_cpu_s("/proc/%d/stat" % server_pid)
    return {
        "exit": os.waitstatus_to_exitcode(status),
        "wall_s": wall,
        "cpu_s": ru.ru_utime + ru.ru_stime,
        "user_s": ru.ru_utime,
        "sys_s": ru.ru_stime,
        "ru_maxrss_kb": ru.ru_maxrss,
        "parent_maxrss_kb": parent_maxrss_kb,
        "hwm_kb": state["hwm_kb"],
        "samples": samples,
        "per_thread": state["per_thread"],
        "load0": load0,
        "load1": loadavg(),
        "server_cpu_s": (None if server_cpu0 is None or server_cpu1 is None
                         else server_cpu1 - server_cpu0),
        "stderr_tail": (read(err_path) or "").splitlines()[-3:],
    }


def inspect_targets(binary, rec_dir, n):
    rows = []
    for i in range(n):
        d = os.path.join(rec_dir, "targets", "%03d" % i)
        out = subprocess.run([binary, "inspect", "--json", d], capture_output=True, text=True)
        if out.returncode != 0 or not out.stdout.strip():
            rows.append({"dir": d, "error": out.stderr.strip()[-200:]})
            continue
        j = json.loads(out.stdout)
        rows.append({
            "dir": d,
            "total": j["scrapes_total"],
            "ok": j["scrapes_ok"],
            "failed": sum(j["scrapes_failed"].values()),
            "failed_kinds": j["scrapes_failed"],
            "skipped": j["ticks_skipped"],
            "longest_gap_s": j["longest_gap_s"],
        })
    return rows


def sample_near(samples, t):
    """The sample closest to time t, or None."""
    good = [s for s in samples if s[2] is not None]
    return min(good, key=lambda s: abs(s[0] - t)) if good else None


def report(r, args):
    d = args.duration
    expected = d * 4
    print("command: %s" % " ".join(r["cmd"]))
    print("machine: %d CPUs, load average %s at start -> %s at end, mean %s while recording"
          % (os.cpu_count(), fmt(r["load0"], ".2f"), fmt(r["load1"], ".2f"),
             fmt(mean([s[4] for s in r["samples"] if s[4] is not None]), ".2f")))
    print("recorder: exit %d, wall %.2f s, CPU %.3f s (user %.3f, sys %.3f)"
          % (r["exit"], r["wall_s"], r["cpu_s"], r["user_s"], r["sys_s"]))
    share = r["cpu_s"] / r["wall_s"]
    # wait4's figure is exact when it is the recorder's own; else the last VmHWM read, at
    # most 20 ms before the exit.
    exact = r["ru_maxrss_kb"] > r["parent_maxrss_kb"]
    peak_mb = mb(max(r["ru_maxrss_kb"], r["hwm_kb"] or 0) if exact else r["hwm_kb"])
    print("  CPU share of one core: %.2f%% (target %.0f%%: %.2fx)"
          % (share * 100, CPU_TARGET * 100, share / CPU_TARGET))
    scrapes_ok = sum(t.get("ok", 0) for t in r["targets"])
    if scrapes_ok:
        print("  CPU per good scrape: %.3f ms (%d good scrapes)"
              % (r["cpu_s"] / scrapes_ok * 1e3, scrapes_ok))
    print("  peak RSS: %.1f MB (target %.0f MB: %.2fx); VmHWM last read %s MB, wait4's"
          " ru_maxrss %.1f MB (%s)"
          % (peak_mb, RSS_TARGET_MB, peak_mb / RSS_TARGET_MB, fmt(mb(r["hwm_kb"])),
             mb(r["ru_maxrss_kb"]),
             "the recorder's own" if exact else
             "no more than this harness's own %.1f MB, so not the recorder's"
             % mb(r["parent_maxrss_kb"])))
    s = r["samples"]
    # Every 10 s, so that each rotation (every 60 s by default) shows as a step.
    marks = [2] + list(range(10, int(d) - 1, 10)) + [d - 2]
    rss = []
    for t in sorted(set(marks)):
        x = sample_near(s, t)
        if x is not None:
            rss.append("%.0fs %.0f" % (x[0], mb(x[2])))
    print("  RSS over time, MB: " + ", ".join(rss))
    threads = [x[3] for x in s if x[3] is not None]
    print("  threads: %s" % (max(threads) if threads else "-"))
    # Steady state: from 5 s to a little before the stop (no start, no final rotation).
    a, b = sample_near(s, 5), sample_near(s, d - 2)
    if a and b and a[1] is not None and b[1] is not None and b[0] > a[0]:
        print("  between %.0f s and %.0f s (no start, no final rotation): %.2f%% of a core"
              % (a[0], b[0], (b[1] - a[1]) / (b[0] - a[0]) * 100))
    if r["server_cpu_s"] is not None:
        print("  (the fleet server itself: %.2f s CPU in the same time, %.1f%% of a core)"
              % (r["server_cpu_s"], r["server_cpu_s"] / r["wall_s"] * 100))
    pt = r["per_thread"]
    if pt:
        t, total, cpu, n = pt
        print("  CPU by thread name at %.0f s (of %.2f s in all by then):" % (t, total or 0))
        for name, c in cpu.most_common():
            print("    %-16s x%-3d %.2f s" % (name, n[name], c))
    rows = r["targets"]
    bad = [t for t in rows if "error" in t]
    good = [t for t in rows if "error" not in t]
    print("scrapes: %d targets, %d ticks each expected (%d s at 250 ms)"
          % (len(rows), expected, d))
    if good:
        tot = [t["total"] for t in good]
        ok = [t["ok"] for t in good]
        print("  attempts per target %d..%d, good %d..%d, failed %d in all, ticks skipped %d"
              " in all; longest gap between good scrapes %s s"
              % (min(tot), max(tot), min(ok), max(ok), sum(t["failed"] for t in good),
                 sum(t["skipped"] for t in good),
                 fmt(max((t["longest_gap_s"] or 0) for t in good), ".2f")))
        kinds = collections.Counter()
        for t in good:
            kinds.update(t["failed_kinds"])
        if kinds:
            print("  failures by kind: %s" % dict(kinds))
        for t in good:
            if t["failed"] or t["skipped"]:
                print("  %s: %d attempts, %d good, %d failed %s, %d skipped"
                      % (t["dir"], t["total"], t["ok"], t["failed"], t["failed_kinds"],
                         t["skipped"]))
    for t in bad:
        print("  %s: inspect failed: %s" % (t["dir"], t["error"]))
    if r["served"]:
        c = r["served"]["metrics_requests"]
        print("  the server answered %d..%d /metrics requests per port, %d in all"
              % (min(c), max(c), sum(c)))
    if r["stderr_tail"]:
        print("  recorder's last line: %s" % r["stderr_tail"][-1])
    met_cpu = share <= CPU_TARGET
    met_rss = peak_mb <= RSS_TARGET_MB
    ok_all = sum(t["ok"] for t in good)
    skipped = sum(t["skipped"] for t in good)
    honest = good and not bad and min(t["ok"] for t in good) >= 0.95 * expected
    print("RESULT cpu %.2f%% of a core (%s), peak RSS %.1f MB (%s), %d of %d ticks scraped"
          " well, %d skipped (%s)"
          % (share * 100, "met" if met_cpu else "MISSED", peak_mb,
             "met" if met_rss else "MISSED", ok_all, expected * len(rows), skipped,
             "on schedule" if honest else "NOT all on schedule: the figures flatter it"))


def mean(xs):
    return sum(xs) / len(xs) if xs else None


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--body", required=True)
    s.add_argument("--ports", type=int, default=64)
    s.add_argument("--port-file", required=True)
    m = sub.add_parser("measure")
    m.add_argument("--bin", required=True)
    m.add_argument("--body", required=True)
    m.add_argument("--targets", type=int, default=64)
    m.add_argument("--duration", type=int, default=60)
    m.add_argument("--out", required=True)
    m.add_argument("--extra", default="", help="more `record` flags, e.g. '--rotate 10s'")
    args = ap.parse_args()
    if args.mode == "serve":
        serve(args)
    else:
        measure(args)


if __name__ == "__main__":
    main()
