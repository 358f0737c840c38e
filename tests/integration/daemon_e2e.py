#!/usr/bin/python3
"""End-to-end test of rmad with real parts only.

rmad runs on a temporary config with two stations on loopback TCP scanner ports and a
real SQLite file; RMAs are imported with rmactl; an independent ZeroMQ client
(Debian's python3-zmq) subscribes to the PUB endpoint and replays from the ROUTER
endpoint. Scenarios: two stations driven concurrently through complete receipts
(accept, refuse, quarantine on serial mismatch, cancel), garbage on a scanner input,
a late subscriber served by replay, SIGKILL in the middle of a run and restart, and
SIGTERM.

usage: daemon_e2e.py BUILD_DIR      (run from the repository root; exit 0 = passed)
Every wait is bounded; nothing asserts on elapsed time.
"""
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

import zmq

import e2e
from e2e import *  # noqa: F401,F403  (check, Daemon, rmactl, Subscriber, ...)


def main():
    global CONF
    tmp = tempfile.mkdtemp(prefix="rmad-e2e-")
    ports = {k: free_port() for k in ("pub", "replay", "s1", "s2")}
    pub, rep = "tcp://127.0.0.1:%d" % ports["pub"], "tcp://127.0.0.1:%d" % ports["replay"]
    CONF = e2e.CONF = os.path.join(tmp, "rmad.conf")
    # dock1 has a printer: its labels must never reach a cupsd of this machine.
    os.environ["CUPS_SERVER"] = os.path.join(tmp, "no-cupsd.sock")
    with open(CONF, "w") as f:
        f.write("""[daemon]
database = {tmp}/rmad.db
policies = {tmp}/policies
pub = {pub}
replay = {rep}
control = ipc://{tmp}/rmad.ctl
heartbeat_ms = 300

[station dock1]
scanner = tcp:127.0.0.1:{s1}
printer = dock1-labels

[station dock2]
scanner = tcp:127.0.0.1:{s2}
""".format(tmp=tmp, root=os.getcwd(), pub=pub, rep=rep, s1=ports["s1"], s2=ports["s2"]))
    shutil.copytree("policies", os.path.join(tmp, "policies"))
    r = subprocess.run([RMAD, "--check-config", CONF], capture_output=True, text=True)
    check(r.returncode == 0 and r.stderr == "", "--check-config accepts the config: " + r.stderr)
    bad = os.path.join(tmp, "bad.conf")
    with open(bad, "w") as f:
        f.write(open(CONF).read().replace("pub =", "pubb ="))
    r = subprocess.run([RMAD, "--check-config", bad], capture_output=True, text=True)
    check(r.returncode == 2 and r.stderr.startswith("rmad: %s:4: " % bad) and "pubb" in r.stderr,
          "--check-config reports FILE:LINE: " + r.stderr)
    csv = os.path.join(tmp, "rmas.csv")
    with open(csv, "w") as f:
        f.write(RMAS_CSV.format(**dates()))

    ctx = zmq.Context()
    d = Daemon(tmp, CONF)
    d.start()
    r = rmactl("rma", "import", csv)
    check(r.returncode == 0, "rma import: " + r.stdout + r.stderr)
    r = rmactl("rma", "import", csv)
    check(r.returncode == 0 and "7 unchanged" in r.stdout, "re-import is idempotent: " + r.stdout)

    sub = Subscriber(ctx, pub)
    time.sleep(0.3)  # PUB/SUB joins asynchronously; what it misses, replay gives
    s1, s2 = Scanner(ports["s1"]), Scanner(ports["s2"])

    # Two stations, interleaved line by line.
    s1.send("RMA-0001")
    s2.send("RMA-9999")                      # unknown: refused
    s1.send("SN-0001")
    s2.send("RMA-0002")
    s1.send("PKG-ORIGINAL")
    s2.send("EF-9999")                       # serial mismatch: quarantine
    s1.send("FAULT-CONFIRMED")
    s2.send("CMD-DONE")
    s1.send("CMD-DONE")
    s1.send("RMA-0003")
    s1.send("CMD-CANCEL")
    ok = sub.pump(lambda ev: count(ev, "inspection.completed") >= 2 and count(ev, "receipt.cancelled") >= 1
                  and count(ev, "receipt.refused") >= 1)
    check(ok, "live events for both stations arrived")
    done = {e["station"]: e for e in sub.events if e["type"] == "inspection.completed"}
    check(done.get("dock1", {}).get("disposition") == "warranty_exchange", "dock1 accepted under warranty")
    check(done.get("dock2", {}).get("disposition") == "quarantine", "dock2 serial mismatch quarantined")
    check(done.get("dock2", {}).get("serial_match") is False, "serial_match false on mismatch")
    check(count(sub.events, "receipt.refused", station="dock2") == 1, "unknown RMA refused")

    # Garbage on dock2's input: binary, NUL, a 10 kB line, a half line then a vanished client.
    g = Scanner(ports["s2"])
    g.send(b"\x00\x01\x02binary\xff\xfe\r\n")
    g.send(b"A" * 10000 + b"\r\n")
    g.send(b"RMA-00")
    g.close()
    v = Scanner(ports["s2"])
    v.close()
    # ... and the station keeps working.
    receipt_flow(s2, "RMA-0004", "SN-0004", ["FAULT-CONFIRMED"])
    ok = sub.pump(lambda ev: count(ev, "inspection.completed", station="dock2") >= 2)
    check(ok, "station works after garbage")
    # The garbage connection is served independently: its events may come later.
    # TCP clients' comings and goings are summed (daemon/connsum.h), not stored each.
    ok = sub.pump(lambda ev: count(ev, "scan.rejected", station="dock2") >= 3
                  and sum(e.get("disconnected", 0) for e in ev
                          if e["type"] == "scanner.clients" and e["station"] == "dock2") >= 2)
    check(ok, "garbage recorded as rejected scans, vanished clients in a clients summary")

    # An expired RMA is refused at the dock, by the vendor's own clause (EverFocus: 30 days).
    s1.send("RMA-0007")
    ok = sub.pump(lambda ev: count(ev, "receipt.refused", rma="RMA-0007") == 1)
    refused = [e for e in sub.events if e["type"] == "receipt.refused" and e.get("rma") == "RMA-0007"]
    check(ok and "rma-valid-30-days" in refused[0]["reason"], "expired RMA refused with its clause")

    # SIGHUP with a broken policy keeps the old set and keeps serving; fixed, it reloads.
    broken = os.path.join(tmp, "policies", "zz-broken.yaml")
    with open(broken, "w") as f:
        f.write("vendor: Broken\nwarranty: {basis: never}\nrules: []\n")
    d.proc.send_signal(signal.SIGHUP)
    wait_log(d, "policies not reloaded")
    check("zz-broken.yaml:2:" in open(d.log).read(), "reload error names FILE:LINE")
    check(rmactl("status").returncode == 0, "still serving after a bad reload")
    os.unlink(broken)
    d.proc.send_signal(signal.SIGHUP)
    wait_log(d, "policies reloaded")

    # Seqs seen live are consecutive (PUB may miss the first ones: replay has them).
    seqs = [e["seq"] for e in sub.events]
    check(seqs == list(range(seqs[0], seqs[0] + len(seqs))), "live seq consecutive: %s" % seqs)

    # A subscriber that starts late gets everything from the replay endpoint.
    all_ev, last = replay(ctx, rep, 1)
    sub.pump(lambda ev: ev and ev[-1]["seq"] >= last)
    seqs = [e["seq"] for e in sub.events]
    check([e["seq"] for e in all_ev] == list(range(1, last + 1)), "replay from 1 is gapless")
    check(last == seqs[-1], "replay ends at the last live seq")
    check(all_ev[0]["type"] == "daemon.started", "first event is daemon.started")
    tail, last2 = replay(ctx, rep, last - 2)
    check([e["seq"] for e in tail] == [last - 2, last - 1, last], "replay from N starts at N")
    # Control requests with an argument the command does not take are errors.
    c = ctx.socket(zmq.DEALER)
    c.setsockopt(zmq.LINGER, 0)
    c.connect("ipc://%s/rmad.ctl" % tmp)
    for req, bad in (({"cmd": "status", "x": 1}, "x"),
                     ({"cmd": "reprint", "receipt": 1, "reciept": 2}, "reciept"),
                     ({"cmd": "labels", "limit": 5, "color": "red"}, "color")):
        c.send(json.dumps(req).encode())
        ans = json.loads(c.recv()) if c.poll(5000) else {}
        check(ans.get("ok") is False and ("'%s'" % bad in ans.get("error", "") or
                                          '"%s"' % bad in ans.get("error", "")),
              "unknown argument refused: %s -> %s" % (req, ans))
    c.close()
    # A quiet dock still says how far it is: bus.heartbeat carries the last seq, so a
    # subscriber that lost the tail notices within one interval.
    n_beats = len(sub.heartbeats)
    sub.pump(lambda ev: len(sub.heartbeats) > n_beats)
    beat = sub.heartbeats[-1] if len(sub.heartbeats) > n_beats else {}
    check(beat.get("last_seq") == last and "seq" not in beat,
          "bus.heartbeat says the last seq (%s, want %d)" % (beat.get("last_seq"), last))

    # The SQLite file holds every scan, raw bytes included.
    db = sqlite3.connect("file:%s/rmad.db?mode=ro" % tmp, uri=True)
    n_scans = db.execute("select count(*) from scans").fetchone()[0]
    scan_events = count(all_ev, "scan.accepted") + count(all_ev, "scan.rejected")
    check(n_scans == scan_events, "one scan row per scan event (%d rows, %d events)" % (n_scans, scan_events))
    check(db.execute("select count(*) from scans where instr(raw, cast('binary' as blob)) > 0 and accepted = 0").fetchone()[0] == 1,
          "the binary garbage is kept raw")
    db.close()

    # SIGKILL in the middle of a receipt, restart: nothing committed is lost, no seq repeats.
    s1.send("RMA-0005")
    s1.send("SN-0005")
    sub.pump(lambda ev: count(ev, "scan.accepted", station="dock1") >= 9)
    before, last_before = replay(ctx, rep, 1)
    d.kill(signal.SIGKILL)
    s1.close()
    s2.close()
    d.start()
    s1 = Scanner(ports["s1"])
    s1.send("FAULT-CONFIRMED")               # the open receipt resumes after the restart
    s1.send("CMD-DONE")
    s1.send("RMA-0006")
    s1.send("CMD-CANCEL")
    deadline = time.time() + WAIT
    while time.time() < deadline:
        after, last_after = replay(ctx, rep, 1)
        if count(after, "receipt.cancelled") >= 2:
            break
        time.sleep(0.2)
    check([e["seq"] for e in after] == list(range(1, last_after + 1)), "gapless across SIGKILL")
    check(after[:len(before)] == before, "events before the kill unchanged")
    check(count(after, "inspection.completed", rma="RMA-0005") == 1, "receipt open at the kill completes")
    check(count(after, "daemon.started") == 2, "second daemon.started after restart")

    r = rmactl("receipts")
    check(r.returncode == 0 and "RMA-0005" in r.stdout, "rmactl receipts lists the receipt")
    r = rmactl("status")
    check(r.returncode == 0 and "dock1" in r.stdout and "dock2" in r.stdout, "rmactl status")

    check(d.kill(signal.SIGTERM) == 0, "SIGTERM exits cleanly with status 0")
    s1.close()
    ctx.destroy(linger=0)
    return finish("daemon", d)


if __name__ == "__main__":
    sys.exit(main())
