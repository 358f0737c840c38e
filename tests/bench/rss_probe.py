#!/usr/bin/python3
"""rmad's peak RSS in minutes, not the site bench's 6-8 (issue 17: under 16 MB).

Starts rmad with 64 TCP stations on a database of 1,000,000 stored receipts (the site
bench's template, tests/bench/site_bench.py), drives them closed loop, then runs a
100,000-row `rmactl rma import` while the stations keep scanning, and prints VmHWM
(peak RSS) after each step with where the resident memory is (anonymous or file
backed, the largest mappings), from /proc/PID/status and /proc/PID/smaps.

usage: rss_probe.py BUILD_DIR [--template FILE]
  --template FILE  keep the 1M-receipt database there and reuse it on the next run
                   (making it takes a minute)
Env: BENCH_BIG (1000000), PROBE_CLOSED_SECONDS (10), PROBE_ROWS (100000).
Measures, never asserts: the numbers are for docs/limits.md and the lead's bench.
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import site_bench as sb  # noqa: E402  (reads BUILD_DIR from sys.argv[1])

CLOSED_S = float(os.environ.get("PROBE_CLOSED_SECONDS", "10"))
ROWS = int(os.environ.get("PROBE_ROWS", "100000"))


def mb(kb):
    return "%.1f MB" % (kb / 1024.0)


def smaps_top(pid, n=8):
    """The n mappings with the most resident memory: (rss kB, anon kB, name)."""
    maps, cur = [], None
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            parts = line.split()
            if "-" in parts[0] and not parts[0].endswith(":"):
                name = parts[5] if len(parts) > 5 else "[anon]"
                cur = [0, 0, name]
                maps.append(cur)
            elif parts[0] == "Rss:":
                cur[0] += int(parts[1])
            elif parts[0] == "Anonymous:":
                cur[1] += int(parts[1])
    # one line per file (a library has several mappings), anonymous ones separately
    merged = {}
    for rss, anon, name in maps:
        key = name if name != "[anon]" else "[anon %d]" % len(merged)
        m = merged.setdefault(key, [0, 0])
        m[0] += rss
        m[1] += anon
    return sorted(((v[0], v[1], k) for k, v in merged.items()), reverse=True)[:n]


def report(prog, what):
    st = {}
    with open("/proc/%d/status" % prog.pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmHWM", "VmRSS", "RssAnon", "RssFile", "RssShmem", "Threads"):
                st[k] = int(v.split()[0])
    print("%-34s VmHWM %s  VmRSS %s (anon %s, file %s)  threads %d" % (
        what, mb(st["VmHWM"]), mb(st["VmRSS"]), mb(st["RssAnon"]), mb(st["RssFile"]),
        st["Threads"]), flush=True)
    for rss, anon, name in smaps_top(prog.pid):
        print("    %8s rss %8s anon  %s" % (mb(rss), mb(anon), os.path.basename(name) or name))
    return st["VmHWM"]


def main():
    template = sys.argv[sys.argv.index("--template") + 1] if "--template" in sys.argv else None
    if not template:
        template = os.path.join(sb.TMP, "big.db")
    if not os.path.exists(template):
        sb.make_template(template, sb.BIG)
    prog = sb.Program("rmad", sb.MAX_STATIONS, template)
    try:
        report(prog, "started, 64 stations, %dk receipts" % (sb.BIG // 1000))
        load = sb.Load(prog)
        elapsed, got, lost = load.run(True, CLOSED_S)
        print("closed loop: %d scans in %.1f s (%d without their event)" % (got, elapsed, lost))
        before = report(prog, "after closed loop")

        csv = os.path.join(prog.dir, "import.csv")
        with open(csv, "w") as f:
            f.write("number,issued,kind,vendor,model,family,expected_serial,purchased\n")
            for i in range(ROWS):
                f.write("RMA-I%06d,%s,warranty,V7,SSD-512,Solid State Drives,SI%06d,2025-06-01\n"
                        % (i, sb.TODAY, i))
        t0 = time.time()
        imp = subprocess.Popen([os.path.join(sb.BUILD, "rmactl"), "--config", prog.conf, "rma",
                                "import", csv], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
        # scans go on during the import (it runs on a job thread)
        load.run(True, 2)
        out, _ = imp.communicate(timeout=600)
        took = time.time() - t0
        print("import of %d rows: rc %d in %.1f s: %s" % (ROWS, imp.returncode, took,
                                                          out.strip().splitlines()[-1:]))
        load.run(True, 3)
        after = report(prog, "after the import")
        load.close()
        print("VmHWM: %s after 64-station closed loop, %s after the %d-row import" % (
            mb(before), mb(after), ROWS))
    finally:
        prog.stop()
        import shutil
        shutil.rmtree(sb.TMP, ignore_errors=True)


if __name__ == "__main__":
    main()
