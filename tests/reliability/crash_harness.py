#!/usr/bin/python3
"""Crash harness: rmad SIGKILLed at random moments while stations scan and labels print.

Several stations scan receipts over TCP, reading every reply line, while rmad is
killed (SIGKILL) at random moments and restarted, many times. A receipt counts as
acknowledged once its CMD-DONE was answered `OK receipt N completed`. At the end, with
rmad running until its print queue has drained:

- every acknowledged receipt is stored, completed, exactly once (one completed receipt
  per RMA, never two);
- the events, read through the replay endpoint with python3-zmq, have seqs 1..N with
  no gap and no duplicate;
- every completed receipt's label printed exactly once through a private cupsd
  (tests/cupsd/cupsd-harness, capture backend: one job file per job, with its name);
- rmad never exited but by the SIGKILLs (no crash).

Prints one table row of figures. Bounded: RELIABILITY_KILLS kills (default 50), each
after 0.2-1.5 s of scanning.

usage: crash_harness.py BUILD_DIR [--readme README.md]   (exit 0 = 0 lost, 0 duplicated)
"""
import glob
import os
import random
import re
import signal
import socket
import sqlite3
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import zmq  # noqa: E402

import e2e  # noqa: E402
from e2e import Daemon, dates, free_port, replay, rmactl  # noqa: E402

from e2e import harness  # noqa: E402
STATIONS = 3
KILLS = int(os.environ.get("RELIABILITY_KILLS", "50"))
DONE = re.compile(r"^OK receipt (\d+) completed")



class Worker(threading.Thread):
    """One station's worker: receipt after receipt, one reply line per scan."""

    def __init__(self, port, rmas):
        super().__init__(daemon=True)
        self.port, self.rmas = port, rmas
        self.acked = {}          # receipt id -> RMA, for CMD-DONE answered OK completed
        self.sent = 0
        self.stop = threading.Event()

    def scan(self, f, sock, text):
        sock.sendall(text.encode() + b"\r\n")
        self.sent += 1
        line = f.readline()
        if not line:
            raise ConnectionError("closed")
        return line.decode(errors="replace").rstrip("\n")

    def run(self):
        while not self.stop.is_set() and self.rmas:
            try:
                sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            except OSError:
                time.sleep(0.05)
                continue
            try:
                f = sock.makefile("rb")
                # Whatever a kill left open at this station is given up first.
                self.scan(f, sock, "CMD-CANCEL")
                while not self.stop.is_set() and self.rmas:
                    rma, serial = self.rmas[0]
                    self.scan(f, sock, rma)
                    self.scan(f, sock, serial)
                    self.scan(f, sock, "FAULT-CONFIRMED")
                    reply = self.scan(f, sock, "CMD-DONE")
                    self.rmas.pop(0)   # used up either way: a retry takes the next RMA
                    m = DONE.match(reply)
                    if m:
                        self.acked[int(m.group(1))] = rma
            except (OSError, ConnectionError):
                # Killed mid-receipt: an unacknowledged CMD-DONE may still have committed,
                # so this RMA is not scanned again.
                if self.rmas:
                    self.rmas.pop(0)
            finally:
                sock.close()


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    readme = sys.argv[sys.argv.index("--readme") + 1] if "--readme" in sys.argv else None
    return harness_run(build, readme)[0]


FIGURES = {}   # the last run's figures, for reliability.py's one table


def harness_run(build, readme=None):
    """Run the harness; (exit code, figures)."""
    tmp = tempfile.mkdtemp(prefix="rmad-crash-")
    os.chmod(tmp, 0o755)
    root = os.path.join(tmp, "cups")
    harness("start", root, "--owner", str(os.getpid()))
    try:
        return run(build, tmp, root, readme), FIGURES
    finally:
        harness("stop", root)


def run(build, tmp, root, readme):
    harness("add-queue", root, "zebra")
    cap = os.path.join(root, "capture", "zebra")
    os.environ["CUPS_SERVER"] = os.path.join(root, "sock")
    ports = {k: free_port() for k in ["pub", "replay"] + ["s%d" % i for i in range(STATIONS)]}
    rep = "tcp://127.0.0.1:%d" % ports["replay"]
    conf = e2e.CONF = os.path.join(tmp, "rmad.conf")
    stations = "".join("""
[station dock{i}]
scanner = tcp:127.0.0.1:{port},rate=0
printer = zebra
""".format(i=i, port=ports["s%d" % i]) for i in range(STATIONS))
    with open(conf, "w") as f:
        f.write("""[daemon]
database = {tmp}/rmad.db
policies = {cwd}/policies
pub = tcp://127.0.0.1:{pub}
replay = {rep}
control = ipc://{tmp}/rmad.ctl
print_retry_ms = 200
print_retry_max_ms = 1000
""".format(tmp=tmp, cwd=os.getcwd(), pub=ports["pub"], rep=rep) + stations)
    d = dates()
    n_rmas = 40 * KILLS
    with open(os.path.join(tmp, "rmas.csv"), "w") as f:
        f.write("number,issued,kind,vendor,model,family,expected_serial,purchased\n")
        for n in range(n_rmas):
            f.write("RMA-%06d,%s,warranty,V7,SSD-512,Solid State Drives,SN-%06d,%s\n"
                    % (n, d["recent"], n, d["older"]))
    daemon = Daemon(tmp, conf)
    daemon.start()
    r = rmactl("rma", "import", os.path.join(tmp, "rmas.csv"))
    if r.returncode != 0:
        raise RuntimeError("import: " + r.stderr)

    per = n_rmas // STATIONS
    workers = [Worker(ports["s%d" % i], [("RMA-%06d" % n, "SN-%06d" % n)
                                          for n in range(i * per, (i + 1) * per)])
               for i in range(STATIONS)]
    for w in workers:
        w.start()
    crashes = 0
    rng = random.Random(int(os.environ.get("RELIABILITY_SEED", "1")))
    t0 = time.time()
    for _ in range(KILLS):
        time.sleep(rng.uniform(0.2, 1.5))
        if daemon.proc.poll() is not None:
            crashes += 1                     # it died by itself: a crash
        else:
            daemon.kill(signal.SIGKILL)
        daemon.start()
    for w in workers:
        w.stop.set()
    for w in workers:
        w.join(timeout=30)

    # Let the spooler print what is queued, then look.
    deadline = time.time() + 120
    db = os.path.join(tmp, "rmad.db")
    while time.time() < deadline:
        with sqlite3.connect(db) as c:
            left = c.execute("SELECT count(*) FROM print_jobs WHERE state IN "
                             "('queued', 'submitting', 'submitted')").fetchone()[0]
        if left == 0:
            break
        time.sleep(0.5)
    if daemon.proc.poll() is not None:
        crashes += 1
    else:
        daemon.kill(signal.SIGTERM)
    elapsed = time.time() - t0

    acked = {}
    for w in workers:
        acked.update(w.acked)
    with sqlite3.connect(db) as c:
        rows = {rid: (rma, state) for rid, rma, state in
                c.execute("SELECT id, rma, state FROM receipts")}
        per_rma = dict(c.execute("SELECT rma, count(*) FROM receipts WHERE state = 'completed' "
                                 "GROUP BY rma"))
        completed = [rid for rid, (_, st) in rows.items() if st == "completed"]
        labels = dict(c.execute("SELECT id, receipt_id FROM print_jobs WHERE why = 'disposition'"))
        unprinted = c.execute("SELECT count(*) FROM print_jobs WHERE state != 'printed'").fetchone()[0]
    lost = sum(1 for rid, rma in acked.items() if rows.get(rid) != (rma, "completed"))
    duplicated = sum(n - 1 for n in per_rma.values() if n > 1)

    # Events: gapless, no duplicate (a fresh rmad serves the replay).
    daemon.start()
    ctx = zmq.Context()
    evs, last = replay(ctx, rep, 1)
    ctx.destroy(linger=0)
    daemon.kill(signal.SIGTERM)
    seqs = [e["seq"] for e in evs]
    gaps = 0 if seqs == list(range(1, last + 1)) else 1
    dup_seqs = len(seqs) - len(set(seqs))

    # Labels: one CUPS job per completed receipt's label, named rmad-label-<label>-*.
    jobs = {}
    for t in glob.glob(os.path.join(cap, "job-*.title")):
        m = re.match(r"rmad-label-(\d+)-\d+$", open(t).read().strip())
        if m:
            jobs[int(m.group(1))] = jobs.get(int(m.group(1)), 0) + 1
    label_of = {rid: lid for lid, rid in labels.items()}
    printed_once = sum(1 for rid in completed if jobs.get(label_of.get(rid), 0) == 1)
    printed_twice = sum(1 for n in jobs.values() if n > 1)
    sent = sum(w.sent for w in workers)

    head = ("| date | kills | scans sent | receipts acknowledged | stored | lost | duplicated "
            "| labels printed once | printed twice | not printed | seq gaps | dup seqs | crashes | s |")
    rule = "|" + "---|" * 14
    row = "| %s | %d | %d | %d | %d | %d | %d | %d/%d | %d | %d | %d | %d | %d | %.0f |" % (
        time.strftime("%Y-%m-%d"), KILLS, sent, len(acked), len(acked) - lost, lost, duplicated,
        printed_once, len(completed), printed_twice, unprinted, gaps, dup_seqs, crashes, elapsed)
    print(head)
    print(rule)
    print(row)
    ok = (lost == 0 and duplicated == 0 and printed_twice == 0 and unprinted == 0 and
          printed_once == len(completed) and gaps == 0 and dup_seqs == 0 and crashes == 0)
    FIGURES.update(kills=KILLS, sent=sent, acked=len(acked), stored=len(acked) - lost, lost=lost,
                   duplicated=duplicated, printed_once=printed_once, completed=len(completed),
                   printed_twice=printed_twice, unprinted=unprinted, gaps=gaps, dup_seqs=dup_seqs,
                   crashes=crashes, seconds=elapsed, ok=ok)
    if readme:
        update_readme(readme, "\n".join([head, rule, row]))
    if not ok:
        print("crash harness: FAILED (files in %s)" % tmp)
        return 1
    print("crash harness: 0 lost, 0 duplicated, 0 crashes")
    return 0


def update_readme(path, table):
    """Replace the table between the reliability markers of the README."""
    begin, end = "<!-- reliability:begin -->", "<!-- reliability:end -->"
    text = open(path).read()
    if begin not in text or end not in text:
        return
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    open(path, "w").write(head + begin + "\n" + table + "\n" + end + tail)


if __name__ == "__main__":
    sys.exit(main())
