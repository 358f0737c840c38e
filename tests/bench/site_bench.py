#!/usr/bin/python3
"""Site-scale benchmark (issue 17): rmad against its floor, measured, never asserted.

The floor (build/bench_floor, tests/bench/floor.c) is the same wire (one TCP port per
station in, ZeroMQ PUB out, one answer line per scan) and one durable SQLite commit per
scan with rmad's pragmas. Both run here, one after the other, on the same machine in
the same run, so every rmad number is also printed as a ratio to the floor's.

For each of 1, 16 and 64 stations:
  open loop   every station scans once a second (phases spread over the second)
  closed loop every station sends its next scan as soon as the previous one is answered
Latency is scan-to-event: from the scan's bytes leaving the "scanner" to its
scan.accepted/scan.rejected event arriving on a SUB socket. scans/s counts events.

The scans are complete receipts (RMA, serial, packaging, fault, finding, CMD-DONE) of
RMAs generated in bulk straight into the database, which also holds 10,000 stored
receipts (1,000,000 for the "1M" rows: generated in SQL, not through the daemon).

Also: WAL pages and fsyncs per scan (strace -f -y on a 1-station closed-loop run: the
4096-byte pwrite64s to the -wal file, and fdatasync/fsync), peak RSS (VmHWM) with 64
stations, 1M receipts and a 100,000-row RMA import, and idle wakeups (context switches
of all the daemon's threads) over 10 s with 64 stations connected and silent.

usage: site_bench.py BUILD_DIR [--readme README.md]
Env: BENCH_OPEN_SECONDS (20), BENCH_CLOSED_SECONDS (10), BENCH_BIG (1000000).
Bounded: every wait has a deadline; the whole run takes about 6-8 minutes on 2 cores.
"""
import os
import platform
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

import zmq

BUILD = sys.argv[1]
README = sys.argv[sys.argv.index("--readme") + 1] if "--readme" in sys.argv else None
OPEN_S = float(os.environ.get("BENCH_OPEN_SECONDS", "20"))
CLOSED_S = float(os.environ.get("BENCH_CLOSED_SECONDS", "10"))
BIG = int(os.environ.get("BENCH_BIG", "1000000"))
SMALL = 10000
MAX_STATIONS = 64
RMAS_PER_STATION = 2500
STRACE_SCANS = 600
ROOT = os.getcwd()
TMP = tempfile.mkdtemp(prefix="rmad-site-bench-")
TODAY = time.strftime("%Y-%m-%d")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


# ---- the database: schema by rmad itself, rows in bulk --------------------------------

def rmad_config(path, db, ports, pub, rep):
    with open(path, "w") as f:
        f.write("[daemon]\ndatabase = %s\npolicies = %s/policies\npub = tcp://127.0.0.1:%d\n"
                "replay = tcp://127.0.0.1:%d\ncontrol = ipc://%s.ctl\nlog_level = warning\n"
                % (db, ROOT, pub, rep, path))
        for i, p in enumerate(ports):
            # rate=0: no scan budget (docs/limits.md); a burst is what is measured
            f.write("[station s%d]\nscanner = tcp:127.0.0.1:%d,rate=0\n" % (i, p))


def wait_control(conf, proc, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit("rmad exited early (status %s)" % proc.returncode)
        if subprocess.run([os.path.join(BUILD, "rmactl"), "--config", conf, "status"],
                          capture_output=True).returncode == 0:
            return
        time.sleep(0.1)
    raise SystemExit("rmad did not answer on its control socket")


def make_template(path, stored):
    """A database with rmad's schema, `stored` closed receipts and the runs' open RMAs."""
    t0 = time.time()
    conf = path + ".conf"
    pub, rep, sp = free_ports(3)
    rmad_config(conf, path, [sp], pub, rep)
    d = subprocess.Popen([os.path.join(BUILD, "rmad"), "--config", conf],
                         stderr=subprocess.DEVNULL)
    wait_control(conf, d)
    d.send_signal(signal.SIGTERM)
    d.wait(timeout=30)
    c = sqlite3.connect(path)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("PRAGMA synchronous=OFF")
    c.execute("BEGIN")
    # The stored history: RMAs, their one line, a completed receipt, its CMD-DONE scan
    # and its inspection.completed event.
    c.execute("""WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
                 INSERT INTO rmas (number, issued, kind, vendor, status)
                 SELECT printf('RMA-H%07d', i), '2025-01-02', 'warranty', 'V7', 'received' FROM n""",
              (stored,))
    c.execute("""INSERT INTO rma_lines (rma, line, model, family, purchased, quantity, serials)
                 SELECT number, 1, 'SSD-512', 'Solid State Drives', '2024-06-01', 1,
                        'H' || substr(number, 6) FROM rmas""")
    c.execute("""INSERT INTO rma_serials (rma, line, serial, key)
                 SELECT rma, 1, serials, serials FROM rma_lines""")
    c.execute("""INSERT INTO receipts (station, rma, state, opened_at, closed_at, serial,
                                       checklist, result, disposition, line)
                 SELECT 's' || (rowid % 64), number, 'completed',
                        strftime('%Y-%m-%dT%H:%M:%fZ', '2025-01-02', '+' || (rowid % 86400) || ' seconds'),
                        strftime('%Y-%m-%dT%H:%M:%fZ', '2025-01-02', '+' || (rowid % 86400 + 60) || ' seconds'),
                        'H' || substr(number, 6), '{}', '{"disposition":"repair"}', 'repair', 1
                 FROM rmas""")
    c.execute("""INSERT INTO scans (at, station, scanner, raw, text, kind, accepted, receipt_id)
                 SELECT closed_at, station, 'tcp', CAST('CMD-DONE' AS BLOB), 'CMD-DONE', 'command', 1, id
                 FROM receipts""")
    c.execute("""INSERT INTO outbox (seq, topic, body, created_at)
                 SELECT b + id, 'inspection.completed',
                        json_object('v', 1, 'seq', b + id, 'type', 'inspection.completed',
                                    'time', closed_at, 'station', station, 'receipt', id),
                        closed_at
                 FROM receipts, (SELECT coalesce(max(seq), 0) AS b FROM outbox) ORDER BY id""")
    # A daemon that stored these events had also published them: its PUB cursor says so
    # (daemon/dispatch.h). Without it every run would start by publishing the history.
    c.execute("""INSERT INTO forward_marks (sink, seq, updated_ms)
                 SELECT 'pub', coalesce(max(seq), 0), 1 FROM outbox WHERE true
                 ON CONFLICT (sink) DO UPDATE SET seq = excluded.seq""")
    # The runs' RMAs: RMA-S<station>K<k>, open, one line with the expected serial.
    c.execute("""WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?1 - 1)
                 INSERT INTO rmas (number, issued, kind, vendor)
                 SELECT printf('RMA-S%02dK%05d', i / ?2, i % ?2), ?3, 'warranty', 'V7' FROM n""",
              (MAX_STATIONS * RMAS_PER_STATION, RMAS_PER_STATION, TODAY))
    c.execute("""INSERT INTO rma_lines (rma, line, model, family, purchased, quantity, serials)
                 SELECT number, 1, 'SSD-512', 'Solid State Drives', '2025-06-01', 1,
                        'SN' || substr(number, 6) FROM rmas WHERE number GLOB 'RMA-S*'""")
    c.execute("""INSERT INTO rma_serials (rma, line, serial, key)
                 SELECT rma, 1, serials, serials FROM rma_lines WHERE rma GLOB 'RMA-S*'""")
    c.execute("COMMIT")
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.close()
    os.sync()
    log("template %s: %d stored receipts in %.1f s" % (os.path.basename(path), stored, time.time() - t0))


def scan_lines(station, k):
    # The default rma_pattern (^RMA-?[0-9A-Z]{4,20}$) has no second dash.
    tag = "%02dK%05d" % (station, k)
    return ["RMA-S" + tag, "SN" + tag, "PKG-ORIGINAL", "FAULT-CONFIRMED",
            "FIND-COSMETIC_DAMAGE", "CMD-DONE"]


# ---- one program under load --------------------------------------------------------

def start(kind, n, template=None, strace=None):
    """A Program; started again on fresh ports when its ports were taken meanwhile
    (free_ports closes its probes, and another process on a busy machine may bind one)."""
    for attempt in range(3):
        try:
            return Program(kind, n, template, strace)
        except SystemExit as e:
            log("%s with %d stations did not start (%s): again on fresh ports" % (kind, n, e))
            if attempt == 2:
                raise


class Program:
    """rmad or the floor, started on a copy of a database with n station ports."""

    def __init__(self, kind, n, template=None, strace=None):
        self.kind, self.n = kind, n
        self.dir = tempfile.mkdtemp(dir=TMP, prefix="%s-%d-" % (kind, n))
        self.ports = free_ports(n)
        self.pub, self.rep = free_ports(2)
        db = os.path.join(self.dir, "rmad.db")
        self.db = db
        if kind == "rmad":
            shutil.copy(template, db)
            # The copy is dirty in the page cache (up to a gigabyte for the 1M
            # template): written back now, not behind the first fdatasyncs measured.
            os.sync()
            self.conf = os.path.join(self.dir, "rmad.conf")
            rmad_config(self.conf, db, self.ports, self.pub, self.rep)
            argv = [os.path.join(BUILD, "rmad"), "--config", self.conf]
        else:
            argv = [os.path.join(BUILD, "bench_floor"), db, "tcp://127.0.0.1:%d" % self.pub] + \
                   [str(p) for p in self.ports]
        self.strace_out = None
        if strace:
            self.strace_out = os.path.join(self.dir, "strace")
            # -s 4 -x: a WAL frame header's first 4 bytes are its page number.
            argv = ["strace", "-f", "-y", "-qq", "-s", "4", "-x", "-o", self.strace_out,
                    "-e", "trace=pwrite64,fdatasync,fsync"] + argv
        self.proc = subprocess.Popen(argv, stderr=open(os.path.join(self.dir, "log"), "w"))
        self.pid = self.proc.pid
        if kind == "rmad":
            wait_control(self.conf, self.proc, 120)
            if strace:
                self.pid = self.traced_pid()
        else:
            self.wait_ports()
            if strace:
                self.pid = self.traced_pid()

    def traced_pid(self):
        for _ in range(100):
            kids = open("/proc/%d/task/%d/children" % (self.proc.pid, self.proc.pid)).read().split()
            if kids:
                return int(kids[0])
            time.sleep(0.05)
        return self.proc.pid

    def wait_ports(self):
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit("%s exited early (status %s)" % (self.kind, self.proc.returncode))
            try:
                socket.create_connection(("127.0.0.1", self.ports[-1]), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("%s did not listen" % self.kind)

    def status(self, key):
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        return 0

    def switches(self):
        total = 0
        for t in os.listdir("/proc/%d/task" % self.pid):
            try:
                with open("/proc/%d/task/%s/status" % (self.pid, t)) as f:
                    for line in f:
                        if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                            total += int(line.split()[1])
            except OSError:
                pass
        return total

    def stop(self):
        # the program itself, not strace in front of it (strace detaches on SIGTERM)
        os.kill(self.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Load:
    """n scanner connections and one SUB socket on a Program."""

    def __init__(self, prog):
        self.prog = prog
        self.ctx = zmq.Context()
        self.sub = self.ctx.socket(zmq.SUB)
        self.sub.setsockopt(zmq.SUBSCRIBE, b"scan.")
        self.sub.setsockopt(zmq.RCVHWM, 0)
        self.sub.connect("tcp://127.0.0.1:%d" % prog.pub)
        self.socks = []
        for p in prog.ports:
            s = socket.create_connection(("127.0.0.1", p))
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.setblocking(False)
            self.socks.append(s)
        self.fd_station = {s.fileno(): i for i, s in enumerate(self.socks)}
        self.next_k = [0] * prog.n
        self.queue = [[] for _ in range(prog.n)]     # lines not yet sent this receipt
        self.sent = [[] for _ in range(prog.n)]      # send times waiting for their event
        self.rbuf = [b""] * prog.n
        self.replies_due = [0] * prog.n
        self.lat = []
        self.last_event = None
        time.sleep(0.5)   # the SUB joins before the first event (slow joiner)

    def next_line(self, i):
        if not self.queue[i]:
            if self.next_k[i] >= RMAS_PER_STATION:
                return None
            self.queue[i] = scan_lines(i, self.next_k[i])
            self.next_k[i] += 1
        return self.queue[i].pop(0)

    def send(self, i, now):
        line = self.next_line(i)
        if line is None:
            return False
        self.socks[i].sendall((line + "\n").encode())
        self.sent[i].append(now)
        self.replies_due[i] += 1
        return True

    def take_event(self, now):
        topic, body = self.sub.recv_multipart()
        m = re.search(rb'"station":"s(\d+)"', body)
        if not m:
            return
        i = int(m.group(1))
        if i < self.prog.n and self.sent[i]:
            self.lat.append(now - self.sent[i].pop(0))
            self.last_event = now

    def read_replies(self, fd):
        i = self.fd_station[fd]
        try:
            data = self.socks[i].recv(65536)
        except BlockingIOError:
            return i, 0
        self.rbuf[i] += data
        n = self.rbuf[i].count(b"\n")
        self.rbuf[i] = self.rbuf[i][self.rbuf[i].rfind(b"\n") + 1:]
        self.replies_due[i] -= n
        return i, n

    def run(self, closed, seconds, limit=None):
        poller = zmq.Poller()
        poller.register(self.sub, zmq.POLLIN)
        for s in self.socks:
            poller.register(s.fileno(), zmq.POLLIN)
        n = self.prog.n
        t0 = time.monotonic()
        end = t0 + seconds
        sent = 0
        if closed:
            for i in range(n):
                sent += self.send(i, time.monotonic())
        else:
            due = [t0 + (i + 0.5) / n for i in range(n)]
        got = 0
        while True:
            now = time.monotonic()
            if now >= end or (limit and got >= limit):
                break
            timeout = (end - now) * 1000
            if not closed:
                timeout = max(0, min(timeout, (min(due) - now) * 1000))
            for sock, ev in poller.poll(timeout):
                now = time.monotonic()
                if sock is self.sub:
                    while self.sub.getsockopt(zmq.EVENTS) & zmq.POLLIN:
                        self.take_event(now)
                        got += 1
                else:
                    i, k = self.read_replies(sock)
                    if closed and k and now < end and (not limit or sent < limit):
                        for _ in range(k):
                            sent += self.send(i, now)
            if not closed:
                now = time.monotonic()
                for i in range(n):
                    if due[i] <= now and now < end:
                        sent += self.send(i, now)
                        due[i] += 1.0
        # the events of scans still in flight at the end
        drain = time.monotonic() + 10
        while any(self.sent) and time.monotonic() < drain:
            if self.sub.poll(200):
                self.take_event(time.monotonic())
                got += 1
        # scans/s over the span that had scans to send (a station runs out of RMAs)
        elapsed = (self.last_event or time.monotonic()) - t0
        lost = sum(len(x) for x in self.sent)
        return elapsed, got, lost

    def close(self):
        for s in self.socks:
            s.close()
        self.sub.close()
        self.ctx.term()


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def measure(kind, n, closed, template):
    prog = start(kind, n, template)
    load = Load(prog)
    elapsed, got, lost = load.run(closed, CLOSED_S if closed else OPEN_S)
    lat = load.lat
    row = {"kind": kind, "n": n, "closed": closed, "rate": len(lat) / elapsed, "count": len(lat),
           "p50": pct(lat, 50) * 1000, "p99": pct(lat, 99) * 1000, "max": max(lat) * 1000 if lat else 0,
           "lost": lost, "rss": prog.status("VmHWM")}
    load.close()
    prog.stop()
    log("%-5s %2d stations %-6s: %5d scans %7.0f/s p50 %.1f p99 %.1f max %.1f ms lost %d" % (
        kind, n, "closed" if closed else "open", row["count"], row["rate"], row["p50"], row["p99"],
        row["max"], lost))
    return row


FRAME_HDR = re.compile(r'pwrite64\(\d+<[^>]*-wal>, "((?:\\x[0-9a-f]{2}){4})"\.*, 24, ')


def btree_names(db):
    """page number -> table or index name (dbstat), of the database as it ends."""
    try:
        con = sqlite3.connect(db)
        pages = dict(con.execute("SELECT pageno, name FROM dbstat"))
        con.close()
        return pages
    except sqlite3.Error:
        return {}


def io_per_scan(kind, template, n=1):
    """WAL pages and fsyncs per scan, n stations closed loop under strace; the pages by b-tree."""
    prog = start(kind, n, template, strace=True)
    load = Load(prog)
    load.run(True, 120, limit=STRACE_SCANS)
    scans = len(load.lat)
    load.close()
    prog.stop()
    wal = db = syncs = 0
    frames = {}
    for line in open(prog.strace_out):
        if "pwrite64(" in line and ", 4096, " in line:
            if "-wal>" in line:
                wal += 1
            elif ".db>" in line:
                db += 1
        elif "fdatasync(" in line or "fsync(" in line:
            syncs += 1
        m = FRAME_HDR.search(line)
        if m:
            pg = int(m.group(1).replace("\\x", ""), 16)
            frames[pg] = frames.get(pg, 0) + 1
    names = btree_names(prog.db)
    by = {}
    for pg, k in frames.items():
        name = names.get(pg, "other" if pg > 1 else "header")
        by[name] = by.get(name, 0) + k
    top = sorted(by.items(), key=lambda kv: -kv[1])[:8]
    where = ", ".join("%s %.2f" % (name, k / max(scans, 1)) for name, k in top)
    return scans, wal / max(scans, 1), db / max(scans, 1), syncs / max(scans, 1), where


def idle_wakeups(template):
    prog = start("rmad", 64, template)
    load = Load(prog)
    load.run(False, 3)   # a little traffic first: timers armed by it must go quiet
    time.sleep(2)
    a = prog.switches()
    time.sleep(10)
    b = prog.switches()
    load.close()
    prog.stop()
    return b - a


def peak_rss_import(template):
    prog = start("rmad", 64, template)
    csv = os.path.join(prog.dir, "import.csv")
    with open(csv, "w") as f:
        f.write("number,issued,kind,vendor,model,family,expected_serial,purchased\n")
        for i in range(100000):
            f.write("RMA-I%06d,%s,warranty,V7,SSD-512,Solid State Drives,SI%06d,2025-06-01\n" % (i, TODAY, i))
    load = Load(prog)
    load.run(False, 3)
    before = prog.status("VmHWM")
    t0 = time.time()
    r = subprocess.run([os.path.join(BUILD, "rmactl"), "--config", prog.conf, "rma", "import", csv],
                       capture_output=True, text=True, timeout=600)
    took = time.time() - t0
    load.run(True, 3)
    after = prog.status("VmHWM")
    load.close()
    prog.stop()
    return before, after, took, (r.stdout + r.stderr).strip()


def main():
    t_start = time.time()
    small = os.path.join(TMP, "small.db")
    big = os.path.join(TMP, "big.db")
    make_template(small, SMALL)
    rows = []
    for n in (1, 16, 64):
        for closed in (False, True):
            for kind in ("floor", "rmad"):
                rows.append(measure(kind, n, closed, small))
    make_template(big, BIG)
    big_rows = [measure("rmad", 1, closed, big) for closed in (False, True)]
    io = {(k, n): io_per_scan(k, small, n) for k in ("floor", "rmad") for n in (1, MAX_STATIONS)}
    wake = idle_wakeups(small)
    rss_before, rss_after, import_s, import_out = peak_rss_import(big)

    floor = {(r["n"], r["closed"]): r for r in rows if r["kind"] == "floor"}
    out = []
    out.append("rmad site bench, %s, %s (%d cores, %s), SQLite %s" % (
        time.strftime("%Y-%m-%d %H:%M"), platform.node(), os.cpu_count(), cpu_model(),
        sqlite3.sqlite_version))
    out.append("")
    out.append("| run | stations | load | scans | scans/s | p50 ms | p99 ms | max ms | "
               "scans/s / floor | p50 / floor | p99 / floor | max / floor |")
    out.append("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows + big_rows:
        f = floor[(r["n"], r["closed"])]
        name = r["kind"] if r not in big_rows else "rmad, 1M receipts"
        ratio = "" if r["kind"] == "floor" else "| %.2fx | %.2fx | %.2fx | %.2fx " % (
            r["rate"] / f["rate"], r["p50"] / f["p50"], r["p99"] / f["p99"], r["max"] / f["max"])
        if not ratio:
            ratio = "| | | | "
        out.append("| %s | %d | %s | %d | %.0f | %.1f | %.1f | %.1f %s|" % (
            name, r["n"], "closed" if r["closed"] else "open 1/s", r["count"], r["rate"], r["p50"],
            r["p99"], r["max"], ratio))
    out.append("")
    small1 = {r["closed"]: r for r in rows if r["kind"] == "rmad" and r["n"] == 1}
    for r in big_rows:
        s = small1[r["closed"]]
        out.append("- 1M vs 10k stored receipts, 1 station %s: scans/s %.2fx, p50 %.2fx, p99 %.2fx" % (
            "closed" if r["closed"] else "open", r["rate"] / s["rate"], r["p50"] / s["p50"],
            r["p99"] / s["p99"]))
    for (k, n), (scans, wal, db, syncs, where) in sorted(io.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        out.append("- %s, per scan (%d scans, %d station%s closed loop, strace): %.2f WAL pages written, "
                   "%.2f database pages checkpointed, %.2f fsync/fdatasync; WAL pages by b-tree: %s" % (
                       k, scans, n, "" if n == 1 else "s", wal, db, syncs, where))
    rss64 = max(r["rss"] for r in rows if r["kind"] == "rmad")
    out.append("- rmad peak RSS (VmHWM): %.1f MB over the 10k-receipt runs (64 stations included); "
               "%.1f MB with 64 stations on 1M receipts, %.1f MB after a 100,000-row RMA import "
               "(%.1f s: %s)" % (rss64 / 1024, rss_before / 1024, rss_after / 1024, import_s,
                                 import_out.splitlines()[-1] if import_out else "?"))
    out.append("- idle: %d context switches of rmad's threads in 10 s with 64 stations connected" % wake)
    lost = sum(r["lost"] for r in rows + big_rows)
    out.append("- scans without their event by the end: %d; bench wall time %.0f s" % (
        lost, time.time() - t_start))
    text = "\n".join(out)
    print(text)
    if README:
        update_readme(README, text)
    shutil.rmtree(TMP, ignore_errors=True)


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def update_readme(path, text):
    begin, end = "<!-- site-bench begin -->", "<!-- site-bench end -->"
    s = open(path).read()
    if begin in s and end in s:
        s = s[:s.index(begin) + len(begin)] + "\n" + text + "\n" + s[s.index(end):]
        open(path, "w").write(s)


if __name__ == "__main__":
    main()
