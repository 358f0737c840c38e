#!/usr/bin/python3
"""Fault runs: the machine and other processes misbehave while stations scan.

Each run starts rmad on a temporary config, scans over TCP reading every reply line,
injects one fault, takes it away, and counts from outside:

- sent: scan lines written; stored: rows the run added to the scans table;
- rejected: replies "REJECT not stored: <cause>" (the worker scans it again later) or,
  for a scanner over its budget, "REJECT not stored: over the scan budget ...";
- lost: scans answered as stored (any reply but "not stored") that are not in the
  database, plus scans never answered. Must be 0;
- recover s: how long after the fault went away the dock was whole again (what that
  means is said per run).

Runs (--short: the quick versions `make check` runs, see tests/test_daemon_e2e.c):

  locked      another process holds BEGIN EXCLUSIVE for 10 s (short: 3 s) while two
              stations scan receipts and a third pours 100 scans; rmactl status must
              answer within 1 s throughout; the receipts complete after the release
  full        the database's filesystem fills up (a small tmpfs; where mounting is
              not allowed, the fault shim's ENOSPC) and frees again
  readonly    the database's disk turns read-only under the running daemon (the fault
              shim's EROFS: Linux will not remount a filesystem read-only under an
              open database) and back
  cupsd       cupsd SIGKILLed while labels print and restarted: every label printed
              exactly once
  subscriber  a SUB and a replay client that never read while 3 stations scan; a
              reading subscriber keeps up, a replay afterwards is gapless
  flood       one connection pours 20,000 distinct lines (short: 2,000) while another
              station scans receipts: the flood gets its budget, the rest REJECT
  idle        16 idle TCP connections, then a 17th scanner scans a receipt; 1,000
              empty connect/close cycles (short: 200) store a handful of events
  import      rmactl rma import of 100,000 rows (short: 20,000) while a station
              scans: scans and rmactl status keep being answered
  control     more rmactl peers than CONTROL_PEERS_MAX: the extra ones are closed,
              rmactl keeps working; an unknown argument is refused for every command

Prints one table; with --readme FILE the rows are also kept for crash_harness.py to
write (see reliability.py). Exit 0 when every run lost nothing and passed its checks.

usage: faults.py BUILD_DIR [--short] [--only RUN,...] [--json OUT]
"""
import json
import os
import resource
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import zmq  # noqa: E402

import e2e  # noqa: E402
from e2e import dates, free_port, harness, replay, rmactl  # noqa: E402

SHORT = "--short" in sys.argv
BUILD = sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("--") else "build"
e2e.BUILD, e2e.RMAD, e2e.RMACTL = BUILD, os.path.join(BUILD, "rmad"), os.path.join(BUILD, "rmactl")
SHIM = os.path.abspath(os.path.join(BUILD, "fault-shim.so"))
NOT_STORED = "REJECT not stored:"


def rmas_csv(path, prefix, n):
    d = dates()
    with open(path, "w") as f:
        f.write("number,issued,kind,vendor,model,family,expected_serial,purchased\n")
        for i in range(n):
            f.write("RMA-%s%05d,%s,warranty,V7,SSD-512,Solid State Drives,SN-%s%05d,%s\n"
                    % (prefix, i, d["recent"], prefix, i, d["older"]))


class Dock:
    """rmad on a temp config: `stations` stations, each one TCP scanner."""

    def __init__(self, tmp, stations=1, dbdir=None, printer=None, opts="", env=None,
                 extra=""):
        self.tmp = tmp
        self.dbdir = dbdir or tmp
        self.db = os.path.join(self.dbdir, "rmad.db")
        self.ports = {k: free_port() for k in ["pub", "rep"] + ["s%d" % i for i in range(stations)]}
        self.pub = "tcp://127.0.0.1:%d" % self.ports["pub"]
        self.rep = "tcp://127.0.0.1:%d" % self.ports["rep"]
        self.conf = os.path.join(tmp, "rmad.conf")
        with open(self.conf, "w") as f:
            f.write("[daemon]\ndatabase = %s\npolicies = %s/policies\npub = %s\nreplay = %s\n"
                    "control = ipc://%s/rmad.ctl\nprint_retry_ms = 200\nprint_retry_max_ms = 1000\n"
                    "heartbeat_ms = 500\n%s" % (self.db, os.getcwd(), self.pub, self.rep, tmp, extra))
            for i in range(stations):
                f.write("\n[station dock%d]\nscanner = tcp:127.0.0.1:%d%s\n%s"
                        % (i, self.ports["s%d" % i], opts, "printer = %s\n" % printer if printer else ""))
        e2e.CONF = self.conf
        self.env = env
        self.proc = None
        self.log = os.path.join(tmp, "rmad.log")

    def start(self):
        env = dict(os.environ, **(self.env or {}))
        self.proc = subprocess.Popen([e2e.RMAD, "--config", self.conf], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=open(self.log, "ab"),
                                     env=env)
        deadline = time.time() + e2e.WAIT
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("rmad exited at start: " + open(self.log).read()[-2000:])
            if rmactl("status").returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError("rmad did not answer rmactl status")

    def stop(self):
        e2e.CONF = self.conf
        crashed = self.proc.poll() is not None
        if not crashed:
            self.proc.terminate()
            self.proc.wait(timeout=e2e.WAIT)
        return crashed

    def port(self, i=0):
        return self.ports["s%d" % i]

    def import_rmas(self, prefix, n):
        csv = os.path.join(self.tmp, "rmas-%s.csv" % prefix)
        rmas_csv(csv, prefix, n)
        r = rmactl("rma", "import", csv)
        if r.returncode != 0:
            raise RuntimeError("import: " + r.stderr[-500:])

    def sql(self, q, *args):
        with sqlite3.connect("file:%s?mode=ro" % self.db, uri=True, timeout=30) as c:
            return c.execute(q, args).fetchall()

    def last_scan_id(self):
        return self.sql("SELECT coalesce(max(id), 0) FROM scans")[0][0]

    def last_seq(self):
        return self.sql("SELECT coalesce(max(seq), 0) FROM outbox")[0][0]


class Conn:
    """One scanner connection that reads the reply to every line it sends."""

    def __init__(self, port, timeout=60):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.f = self.sock.makefile("rb")
        self.sent, self.replies = 0, []

    def scan(self, text):
        self.sock.sendall(text.encode() + b"\r\n")
        self.sent += 1
        line = self.f.readline()
        if not line:
            raise ConnectionError("closed before the reply")
        r = line.decode(errors="replace").rstrip("\n")
        self.replies.append(r)
        return r

    def close(self):
        self.f.close()          # the socket closes only when its file is closed too
        self.sock.close()


class Tally:
    """What a run sent and was answered, against what the database holds."""

    def __init__(self, dock):
        self.dock, self.first = dock, dock.last_scan_id()
        self.sent, self.replies = 0, []

    def add(self, conn):
        self.sent += conn.sent
        self.replies += conn.replies

    def row(self, name, recover, checks, extra_ok=True, unanswered_ok=False):
        stored = self.dock.sql("SELECT count(*) FROM scans WHERE id > ?", self.first)[0][0]
        rejected = sum(1 for r in self.replies if r.startswith(NOT_STORED))
        # A double read is answered but, by design, stored once (the first read).
        doubles = sum(1 for r in self.replies if r.startswith("DOUBLE "))
        acked = len(self.replies) - rejected - doubles
        unanswered = self.sent - len(self.replies)
        lost = max(0, acked - stored)    # answered as stored, not in the database
        extra = stored - acked           # stored but answered "not stored" or not at all
        # Where replies may be dropped (a client that does not keep up reading), a
        # stored read may be one whose OK was dropped: never acknowledged, not lost.
        dropped_ok = min(max(extra, 0), unanswered) if unanswered_ok else 0
        extra -= dropped_ok
        ok = lost == 0 and extra == 0 and extra_ok and (unanswered == 0 or unanswered_ok)
        if doubles:
            checks.append("%d double reads" % doubles)
        if dropped_ok:
            checks.append("%d stored whose OK was dropped unread" % dropped_ok)
        if extra:
            checks.append("%d stored although answered not stored or not at all" % extra)
        if unanswered:
            checks.append("%d not answered%s" % (
                unanswered, " (the client did not read: replies dropped; %d of those "
                "reads stored, the rest not)" % dropped_ok if unanswered_ok else ""))
        return {"run": name, "sent": self.sent, "stored": stored, "rejected": rejected,
                "lost": lost, "recover": recover, "checks": "; ".join(checks), "ok": ok}


def receipts(conn, prefix, start, n, stop=None, pace=0.0):
    """Scan receipts prefix start.. until n are done or stop is set; returns completed."""
    done = 0
    for i in range(start, start + n):
        if stop is not None and stop.is_set():
            break
        time.sleep(pace)
        for s in ("RMA-%s%05d" % (prefix, i), "SN-%s%05d" % (prefix, i), "FAULT-CONFIRMED"):
            conn.scan(s)
        if "completed" in conn.scan("CMD-DONE"):
            done += 1
        else:
            conn.scan("CMD-CANCEL")
    return done


def status_latency(stop, out):
    """rmactl status, every 0.25 s until stop: the slowest answer (s) and failures."""
    while not stop.is_set():
        t0 = time.time()
        ok = rmactl("status").returncode == 0
        out["max"] = max(out.get("max", 0.0), time.time() - t0)
        out["failed"] = out.get("failed", 0) + (not ok)
        time.sleep(0.25)


# ---- the runs ---------------------------------------------------------------------------

def run_locked(tmp):
    hold = 3 if SHORT else 10
    dock = Dock(tmp, stations=3)
    dock.start()
    dock.import_rmas("L", 200)
    t = Tally(dock)
    workers = [Conn(dock.port(0)), Conn(dock.port(1))]
    pour = Conn(dock.port(2))
    lock = sqlite3.connect(dock.db, timeout=10, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    t_lock = time.time()
    stop, lat = threading.Event(), {}
    mon = threading.Thread(target=status_latency, args=(stop, lat))
    mon.start()
    done = [0, 0]

    def work(k):
        done[k] = receipts(workers[k], "L", k * 50, 3)
    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for th in threads:
        th.start()
    # The third station pours 100 scans without waiting: they wait (up to SCANQ_MAX).
    pour.sock.sendall(b"".join(b"NOISE-%03d\r\n" % i for i in range(100)))
    pour.sent = 100
    time.sleep(max(0, hold - (time.time() - t_lock)))
    answered_in_lock = sum(len(w.replies) for w in workers)
    lock.execute("COMMIT")
    lock.close()
    t_free = time.time()
    for th in threads:
        th.join(timeout=120)
    while len(pour.replies) < 100:
        line = pour.f.readline()
        if not line:
            break
        pour.replies.append(line.decode().rstrip("\n"))
    recover = time.time() - t_free
    stop.set()
    mon.join()
    for c in workers + [pour]:
        t.add(c)
        c.close()
    completed = dock.sql("SELECT count(*) FROM receipts WHERE state = 'completed'")[0][0]
    crashed = dock.stop()
    checks = ["lock %d s" % hold, "rmactl status slowest %.2f s, %d failed" % (lat.get("max", 0),
                                                                           lat.get("failed", 0)),
              "receipts completed %d/6" % completed,
              "answered while locked %d" % answered_in_lock]
    ok = (lat.get("max", 9) < 1.0 and not lat.get("failed") and completed == 6 and
          answered_in_lock == 0 and not crashed)
    return t.row("locked database", recover, checks, ok)


def fill(path):
    # Unbuffered: a buffered file flushes what the full disk refused once more when it
    # is closed, and that raises ENOSPC out of the harness itself.
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError:
            pass


def scanning_run(dock, name, fault_on, fault_off, prefix, seconds=(2, 3, 2)):
    """Receipts scanned before, during and after a fault; the dock's figures."""
    dock.start()
    dock.import_rmas(prefix, 2000)
    t = Tally(dock)
    conn = Conn(dock.port(0))
    stop = threading.Event()
    res = {}
    th = threading.Thread(target=lambda: res.update(done=receipts(conn, prefix, 0, 2000, stop,
                                                                  pace=0.02)))
    th.start()
    time.sleep(seconds[0])
    fault_on()
    time.sleep(seconds[1])
    n_fault = len(conn.replies)
    fault_off()
    t_off = time.time()
    # Recovered: the first scan stored after the fault went away.
    recover = None
    while time.time() - t_off < 30 and recover is None:
        tail = conn.replies[n_fault:]
        if any(not r.startswith(NOT_STORED) for r in tail[1:]):
            recover = time.time() - t_off
        time.sleep(0.02)
    time.sleep(seconds[2])
    stop.set()
    th.join(timeout=60)
    conn.scan("CMD-CANCEL")
    t.add(conn)
    conn.close()
    refused = [r for r in conn.replies if r.startswith(NOT_STORED)]
    crashed = dock.stop()
    with open(os.path.join(dock.tmp, "replies.txt"), "w") as f:   # for a failed run
        f.write("\n".join(conn.replies))
    checks = ["%d receipts completed" % res.get("done", 0),
              "causes: %s" % (", ".join(sorted({r.split(":", 1)[1].split(";")[0].strip()
                                                for r in refused})) or "none")]
    ok = recover is not None and bool(refused) and not crashed
    return t.row(name, recover, checks, ok)


def run_full(tmp):
    mnt = os.path.join(tmp, "small")
    os.mkdir(mnt)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", mnt],
                       capture_output=True, text=True)
    if r.returncode == 0:
        try:
            dock = Dock(tmp, dbdir=mnt, opts=",rate=0")
            filler = os.path.join(mnt, "filler")
            row = scanning_run(dock, "full filesystem (tmpfs)", lambda: fill(filler),
                               lambda: os.remove(filler), "F")
        finally:
            if not locals().get("row", {}).get("ok"):
                for f in os.listdir(mnt):
                    if f.startswith("rmad.db"):
                        shutil.copy(os.path.join(mnt, f), tmp)
            subprocess.run(["umount", "-l", mnt], capture_output=True)
        return row
    # No mount here: the same fault through the shim, as ENOSPC.
    return shim_run(tmp, "full filesystem (ENOSPC shim)", "ENOSPC", "F")


def shim_run(tmp, name, errno_name, prefix):
    dbdir = os.path.join(tmp, "db-" + prefix)
    os.mkdir(dbdir)
    flag = os.path.join(tmp, "fault-" + prefix)
    env = {"LD_PRELOAD": SHIM, "RMAD_FAULT_FILE": flag, "RMAD_FAULT_DIR": dbdir,
           "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"}
    dock = Dock(tmp, dbdir=dbdir, env=env, opts=",rate=0")
    return scanning_run(dock, name, lambda: open(flag, "w").write(errno_name),
                        lambda: os.remove(flag), prefix)


def run_readonly(tmp):
    row = shim_run(tmp, "read-only database (EROFS)", "EROFS", "R")
    # And a filesystem that is read-only from the start: refused at start, with the cause.
    mnt = os.path.join(tmp, "ro")
    os.mkdir(mnt)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", mnt],
                      capture_output=True).returncode == 0:
        try:
            dock = Dock(tmp, dbdir=mnt)
            r = subprocess.run([e2e.RMAD, "--config", dock.conf], capture_output=True,
                               text=True, timeout=20)
            said = r.returncode != 0 and "read-only" in r.stderr
            row["checks"] += "; ro at start: %s" % ("refused, says read-only" if said else
                                                    "NOT refused: " + r.stderr[-200:])
            row["ok"] = row["ok"] and said
        finally:
            subprocess.run(["umount", "-l", mnt], capture_output=True)
    return row


def run_cupsd(tmp):
    root = os.path.join(tmp, "cups")
    harness("start", root, "--owner", str(os.getpid()))
    try:
        harness("add-queue", root, "zebra")
        os.environ["CUPS_SERVER"] = os.path.join(root, "sock")
        cap = os.path.join(root, "capture", "zebra")
        dock = Dock(tmp, printer="zebra", opts=",rate=0")
        dock.start()
        dock.import_rmas("C", 100)
        t = Tally(dock)
        conn = Conn(dock.port(0))
        n = 6 if SHORT else 12
        done = receipts(conn, "C", 0, n // 2)
        # The labels printing when cupsd dies are held at the printer (the capture
        # backend keeps them processing), so they are lost unprinted with cupsd's state,
        # as in printing_e2e.py. (A job the printer finished but a killed cupsd forgot is
        # ambiguous to anyone asking CUPS; rmad prints it again.)
        hold = os.path.join(cap, "hold")
        open(hold, "w").close()
        done += receipts(conn, "C", n // 2, 2)
        time.sleep(0.5)
        pid = int(open(os.path.join(root, "harness.pid")).read())
        os.kill(pid, 9)
        done += receipts(conn, "C", n // 2 + 2, n - n // 2 - 2)   # labels queue meanwhile
        time.sleep(1)
        import glob as _g
        for f in _g.glob(os.path.join(root, "spool", "[cd]0*")) + \
                _g.glob(os.path.join(root, "cache", "job.cache*")):
            os.remove(f)
        os.remove(hold)
        if os.path.exists(os.path.join(root, "sock")):
            os.remove(os.path.join(root, "sock"))
        harness("start", root, "--owner", str(os.getpid()))
        # As after a real crash: the queue may be lost with cupsd's state; set it up again.
        if "zebra" not in e2e.cups(root, "lpstat", "-p").stdout:
            harness("add-queue", root, "zebra")
        e2e.cups(root, "cupsenable", "zebra")
        t_up = time.time()
        deadline = t_up + 120
        recover = None
        while time.time() < deadline:
            left = dock.sql("SELECT count(*) FROM print_jobs WHERE state != 'printed'")[0][0]
            if left == 0:
                recover = time.time() - t_up
                break
            time.sleep(0.2)
        t.add(conn)
        conn.close()
        titles = {}
        import glob
        import re
        for f in glob.glob(os.path.join(cap, "job-*.title")):
            m = re.match(r"rmad-label-(\d+)-\d+$", open(f).read().strip())
            if m:
                titles[int(m.group(1))] = titles.get(int(m.group(1)), 0) + 1
        labels = [r[0] for r in dock.sql("SELECT id FROM print_jobs")]
        once = sum(1 for l in labels if titles.get(l) == 1)
        twice = sum(1 for v in titles.values() if v > 1)
        crashed = dock.stop()
        checks = ["%d receipts" % done, "labels printed once %d/%d, twice %d" % (once, len(labels), twice)]
        ok = recover is not None and once == len(labels) == done and twice == 0 and not crashed
        return t.row("cupsd killed, restarted", recover, checks, ok)
    finally:
        os.environ["CUPS_SERVER"] = os.path.join(tmp, "no-cupsd.sock")
        harness("stop", root)


def run_subscriber(tmp):
    dock = Dock(tmp, stations=3, opts=",rate=0")
    dock.start()
    dock.import_rmas("S", 600)
    ctx = zmq.Context()
    stuck = ctx.socket(zmq.SUB)
    stuck.setsockopt(zmq.RCVHWM, 10)
    stuck.setsockopt(zmq.RCVBUF, 4096)
    stuck.setsockopt(zmq.SUBSCRIBE, b"")
    stuck.connect(dock.pub)
    stuck_replay = ctx.socket(zmq.DEALER)
    stuck_replay.setsockopt(zmq.RCVHWM, 10)
    stuck_replay.connect(dock.rep)
    stuck_replay.send(json.dumps({"replay_from": 1}).encode())
    live = e2e.Subscriber(ctx, dock.pub)
    time.sleep(0.3)
    t = Tally(dock)
    conns = [Conn(dock.port(i)) for i in range(3)]
    per = 10 if SHORT else 60
    done = [0] * 3

    def work(k):
        done[k] = receipts(conns[k], "S", k * 200, per)
    threads = [threading.Thread(target=work, args=(k,)) for k in range(3)]
    stop, lat = threading.Event(), {}
    mon = threading.Thread(target=status_latency, args=(stop, lat))
    mon.start()
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=300)
    stop.set()
    mon.join()
    last = dock.last_seq()
    got_all = live.pump(lambda evs: bool(evs) and evs[-1]["seq"] >= last)
    beat = live.pump(lambda evs: any(h["last_seq"] == last for h in live.heartbeats), timeout=5)
    t0 = time.time()
    evs, end = replay(ctx, dock.rep, 1)
    recover = time.time() - t0
    gapless = [e["seq"] for e in evs] == list(range(1, end + 1))
    for c in conns:
        t.add(c)
        c.close()
    ctx.destroy(linger=0)
    crashed = dock.stop()
    checks = ["%d receipts" % sum(done), "live subscriber %s" % ("kept up" if got_all else "FELL BEHIND"),
              "heartbeat last_seq %s" % ("seen" if beat else "NOT seen"),
              "replay 1..%d %s" % (end, "gapless" if gapless else "GAPS"),
              "rmactl status slowest %.2f s" % lat.get("max", 0)]
    ok = got_all and beat and gapless and sum(done) == 3 * per and lat.get("max", 9) < 1.0 and not crashed
    return t.row("subscriber never reads", recover, checks, ok)


def run_flood(tmp):
    n = 2000 if SHORT else 20000
    dock = Dock(tmp, stations=2)
    dock.start()
    dock.import_rmas("D", 100)
    t = Tally(dock)
    flood = Conn(dock.port(0))
    worker = Conn(dock.port(1))
    reader_done = threading.Event()

    def read_all():
        # Replies that did not fit its unread queue are dropped: stop after 3 s of none.
        flood.sock.settimeout(3)
        try:
            while len(flood.replies) < n:
                line = flood.f.readline()
                if not line:
                    break
                flood.replies.append(line.decode(errors="replace").rstrip("\n"))
        except (socket.timeout, OSError):
            pass
        reader_done.set()
    rd = threading.Thread(target=read_all)
    rd.start()
    t0 = time.time()
    lines = b"".join(b"FLOOD-%06d\r\n" % i for i in range(n))
    for k in range(0, len(lines), 65536):
        flood.sock.sendall(lines[k:k + 65536])
    flood.sent = n
    # Meanwhile the other station scans receipts; its slowest answer is the figure.
    slowest = 0.0
    done = 0
    for i in range(5):
        for s in ("RMA-D%05d" % i, "SN-D%05d" % i, "FAULT-CONFIRMED", "CMD-DONE"):
            a = time.time()
            r = worker.scan(s)
            slowest = max(slowest, time.time() - a)
        done += "completed" in r
    rd.join(timeout=120)
    elapsed = time.time() - t0
    t.add(flood)
    t.add(worker)
    flood.close()
    worker.close()
    over = sum(1 for r in flood.replies if "over the scan budget" in r)
    stored_flood = dock.sql("SELECT count(*) FROM scans WHERE id > ? AND text LIKE 'FLOOD-%'",
                            t.first)[0][0]
    time.sleep(0.5)
    events = dock.sql("SELECT count(*) FROM outbox WHERE topic = 'scanner.over_budget'")[0][0]
    log = open(dock.log).read()
    crashed = dock.stop()
    budget = 200 + 20 * (elapsed + 1)
    checks = ["flood stored %d (budget 200 + 20/s over %.1f s)" % (stored_flood, elapsed),
              "%d answered over budget" % over, "other station %d/5 receipts, slowest reply %.2f s"
              % (done, slowest), "%d over_budget event(s)" % events,
              "log lines %d" % log.count("over the scan budget")]
    ok = (stored_flood <= budget and done == 5 and
          events == 1 and log.count("over the scan budget") == 2 and not crashed)
    return t.row("flooding scanner (%d lines)" % n, slowest, checks, ok, unanswered_ok=True)


def run_idle(tmp):
    cycles = 200 if SHORT else 1000
    dock = Dock(tmp)
    dock.start()
    dock.import_rmas("I", 20)
    t = Tally(dock)
    idle = [socket.create_connection(("127.0.0.1", dock.port())) for _ in range(16)]
    time.sleep(5.5)         # TCP_EVICT_MIN_IDLE_MS: idle long enough to give way
    t0 = time.time()
    c = Conn(dock.port(), timeout=20)
    done = receipts(c, "I", 0, 1)
    recover = time.time() - t0
    t.add(c)
    c.close()
    for s in idle:
        s.close()
    time.sleep(0.5)
    before = dock.last_seq()
    for _ in range(cycles):
        s = socket.create_connection(("127.0.0.1", dock.port()))
        s.close()
    time.sleep(11)          # CONNSUM_EVERY_MS: the last summary is stored
    added = dock.last_seq() - before
    st = json.loads(rmactl("status", "--json").stdout or "{}")
    crashed = dock.stop()
    checks = ["17th scanner: %d/1 receipt" % done,
              "%d connect/close cycles stored %d event(s)" % (cycles, added),
              "status: %s connections" % (st.get("stations", [{}])[0].get("scanners", [{}])[0]
                                          .get("connections", "?") if st else "?")]
    ok = done == 1 and added <= 4 and not crashed
    return t.row("16 idle connections + %d cycles" % cycles, recover, checks, ok)


def run_import(tmp):
    rows = 20000 if SHORT else 100000
    dock = Dock(tmp)
    dock.start()
    dock.import_rmas("M", 50)
    csv = os.path.join(tmp, "big.csv")
    rmas_csv(csv, "B", rows)
    t = Tally(dock)
    conn = Conn(dock.port())
    res = {}

    def imp():
        a = time.time()
        r = rmactl("rma", "import", csv)
        res.update(rc=r.returncode, s=time.time() - a, err=r.stderr[-300:])
    th = threading.Thread(target=imp)
    stop, lat = threading.Event(), {}
    mon = threading.Thread(target=status_latency, args=(stop, lat))
    th.start()
    mon.start()
    slowest, done, i = 0.0, 0, 0
    while th.is_alive() or i == 0:
        for s in ("RMA-M%05d" % i, "SN-M%05d" % i, "FAULT-CONFIRMED", "CMD-DONE"):
            a = time.time()
            r = conn.scan(s)
            slowest = max(slowest, time.time() - a)
        done += "completed" in r
        i += 1
        if i >= 50:
            break
    th.join(timeout=300)
    stop.set()
    mon.join()
    t.add(conn)
    conn.close()
    imported = dock.sql("SELECT count(*) FROM rmas WHERE number LIKE 'RMA-B%'")[0][0] \
        if dock.sql("SELECT name FROM sqlite_master WHERE name = 'rmas'") else -1
    crashed = dock.stop()
    checks = ["import %d rows: rc %s in %.1f s, %d stored" % (rows, res.get("rc"), res.get("s", 0), imported),
              "scans during it: %d receipts, slowest reply %.2f s" % (done, slowest),
              "rmactl status slowest %.2f s" % lat.get("max", 0)]
    ok = (res.get("rc") == 0 and done == i and lat.get("max", 9) < 1.0 and not crashed)
    return t.row("rma import %d rows" % rows, slowest, checks, ok)


def run_control(tmp):
    dock = Dock(tmp)
    dock.start()
    ctx = zmq.Context()
    ep = "ipc://%s/rmad.ctl" % tmp
    peers = []
    for _ in range(12):
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.RECONNECT_IVL, 60000)     # a closed one stays closed
        s.connect(ep)
        peers.append(s)
    time.sleep(1)
    for s in peers:
        s.send(b'{"cmd":"status"}')
    answered = sum(1 for s in peers if s.poll(2000) and s.recv())
    busy = rmactl("status").returncode          # all slots taken by idle peers: refused
    ctx.destroy(linger=0)
    time.sleep(0.5)
    free_again = rmactl("status").returncode == 0
    refused_args = []
    for cmd, args in (("status", {}), ("receipts", {}), ("labels", {}), ("reprint", {"receipt": 1}),
                      ("labels_cancel", {"label": 1}), ("rma.list", {}), ("rma.show", {"number": "X"}),
                      ("rma.close", {"number": "X"}), ("rma.put", {"rma": {}}),
                      ("rma.import", {"csv": ""})):
        req = dict(args, cmd=cmd, bogus=1)
        c2 = zmq.Context()
        s = c2.socket(zmq.DEALER)
        s.connect(ep)
        s.send(json.dumps(req).encode())
        r = json.loads(s.recv()) if s.poll(5000) else {}
        c2.destroy(linger=0)
        if r.get("ok") is False and "unknown field \"bogus\"" in r.get("error", ""):
            refused_args.append(cmd)
    crashed = dock.stop()
    checks = ["12 peers: %d answered (CONTROL_PEERS_MAX 8)" % answered,
              "rmactl while full: %s" % ("refused" if busy else "answered"),
              "rmactl after: %s" % ("answered" if free_again else "NOT answered"),
              "unknown argument refused by %d/10 commands" % len(refused_args)]
    ok = answered == 8 and free_again and len(refused_args) == 10 and not crashed
    row = {"run": "control: 12 peers, unknown args", "sent": 0, "stored": 0, "rejected": 0,
           "lost": 0, "recover": None, "checks": "; ".join(checks), "ok": ok}
    return row


RUNS = [("locked", run_locked), ("full", run_full), ("readonly", run_readonly),
        ("cupsd", run_cupsd), ("subscriber", run_subscriber), ("flood", run_flood),
        ("idle", run_idle), ("import", run_import), ("control", run_control)]
SHORT_RUNS = ["readonly", "subscriber", "flood", "idle", "import", "control"]


def table(rows):
    head = "| run | scans sent | stored | rejected with reason | lost | recover s | checks |"
    rule = "|---|---|---|---|---|---|---|"
    out = [head, rule]
    for r in rows:
        out.append("| %s | %d | %d | %d | %d | %s | %s |" % (
            r["run"] + ("" if r["ok"] else " **FAILED**"), r["sent"], r["stored"], r["rejected"],
            r["lost"], "-" if r["recover"] is None else "%.2f" % r["recover"], r["checks"]))
    return "\n".join(out)


def main():
    only = None
    if "--only" in sys.argv:
        only = sys.argv[sys.argv.index("--only") + 1].split(",")
    jout = sys.argv[sys.argv.index("--json") + 1] if "--json" in sys.argv else None
    names = only or (SHORT_RUNS if SHORT else [n for n, _ in RUNS])
    # An idle client slot of every run is 16 fds; the flood needs no more than the default.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4096)), hard))
    rows = []
    for name, fn in RUNS:
        if name not in names:
            continue
        tmp = tempfile.mkdtemp(prefix="rmad-fault-%s-" % name)
        os.chmod(tmp, 0o755)      # cupsd's user lp must reach the private cupsd's files
        os.environ["CUPS_SERVER"] = os.path.join(tmp, "no-cupsd.sock")
        t0 = time.time()
        try:
            row = fn(tmp)
        except Exception as e:          # a run that breaks is a failed row, not a crash
            row = {"run": name, "sent": 0, "stored": 0, "rejected": 0, "lost": 0,
                   "recover": None, "checks": "error: %s" % e, "ok": False}
        row["seconds"] = time.time() - t0
        print("fault %s: %s (%.0f s)" % (name, "ok" if row["ok"] else "FAILED (files in %s)" % tmp,
                                         row["seconds"]), flush=True)
        if row["ok"]:
            shutil.rmtree(tmp, ignore_errors=True)
        rows.append(row)
    print(table(rows))
    if jout:
        with open(jout, "w") as f:
            json.dump(rows, f)
    bad = [r for r in rows if not r["ok"] or r["lost"]]
    if bad:
        print("fault runs: %d FAILED" % len(bad))
        return 1
    print("fault runs: all passed, 0 lost")
    return 0


if __name__ == "__main__":
    sys.exit(main())
