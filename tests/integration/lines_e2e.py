#!/usr/bin/python3
"""RMAs with lines end to end (issue 11): several units on one RMA.

rmad runs on a temporary config with one TCP scanner. The CSV holds an EverFocus RMA
of two lines, three cameras with listed serials and one recorder without, and a
second RMA. The dock receives: two cameras, the recorder, a camera serial scanned a
second time (rejected), a serial of the other RMA (quarantined), the last camera,
and a fourth camera (refused: all received). Every event is read by an independent
ZeroMQ subscriber; `rmactl rma show` must list every unit with its receipt, `rma list`
the progress, and `rma close` close the other RMA, whose scan is then refused.

usage: lines_e2e.py BUILD_DIR      (run from the repository root; exit 0 = passed)
"""
import json
import os
import signal
import sys
import tempfile
import time

import zmq

import e2e
from e2e import *  # noqa: F401,F403

RMAS = """number,issued,kind,vendor,line,model,family,quantity,expected_serials,shipped,warranty_months
RMA-7001,{recent},warranty,EverFocus,1,EZN268,IP Cameras,3,CAM-1|CAM-2|CAM-3,{older},36
RMA-7001,{recent},warranty,EverFocus,2,ENVR8304D,Recorders,1,,{older},24
RMA-7002,{recent},warranty,EverFocus,1,EZN268,IP Cameras,1,OTHER-9,{older},36
RMA-7003,{stale},warranty,EverFocus,1,EZN268,IP Cameras,2,,{older},36
"""

ANSWERS = ("PKG-ORIGINAL", "SEAL-INTACT", "ACC-ALL", "FAULT-CONFIRMED")


def unit(sc, rma, serial):
    """One unit through; returns the reply to CMD-DONE."""
    sc.ask(rma)
    sc.ask(serial)
    for a in ANSWERS:
        sc.ask(a)
    return sc.ask("CMD-DONE")


def big_import(tmp, dd):
    """A file of several parts (rmactl sends CONTROL_IMPORT_CHUNK = 256 KiB a request and
    rmad spools them): bad rows after the first part are reported by their line, nothing
    is applied; fixed, every row is imported. Multibyte text straddles the cuts."""
    rows = 12000   # about 1.1 MB: five parts
    bad = {3001: "2025-02-30", 9500: "not-a-date"}   # file lines (the header is line 1)
    path = os.path.join(tmp, "big.csv")

    def write(with_errors):
        with open(path, "w", encoding="utf-8") as f:
            f.write("number,issued,kind,vendor,model,family,expected_serial\n")
            for i in range(rows):
                line = i + 2
                issued = bad[line] if with_errors and line in bad else dd["recent"]
                f.write("RMA-B%06d,%s,warranty,EverFocus,Überwachungskamera ÄÖÜ,"
                        "Kameras — Zubehör für Außen,SB%06d\n" % (i, issued, i))
    write(True)
    check(os.path.getsize(path) > 4 * 256 * 1024, "the big file takes several parts")
    r = rmactl("rma", "import", path)
    check(r.returncode != 0, "a big file with bad rows is refused")
    lines = [l for l in r.stderr.splitlines() if l.startswith(path + ":")]
    check([l.split(":")[1] for l in lines] == ["3001", "9500"],
          "its errors name their lines, across the parts:\n" + r.stderr)
    check(rmactl("rma", "show", "RMA-B000000").returncode != 0, "nothing of it was applied")
    write(False)
    r = rmactl("rma", "import", path)
    check(r.stdout == "imported: %d new, 0 updated, 0 unchanged\n" % rows,
          "the fixed big file is imported whole: " + r.stdout + r.stderr)
    r = rmactl("rma", "show", "RMA-B011999", "--json")
    check("Kameras — Zubehör für Außen" in r.stdout, "its last row, text intact: " + r.stdout[:300])


def main():
    tmp = tempfile.mkdtemp(prefix="rmad-lines-e2e-")
    ports = {k: free_port() for k in ("pub", "replay", "s1")}
    pub = "tcp://127.0.0.1:%d" % ports["pub"]
    e2e.CONF = os.path.join(tmp, "rmad.conf")
    with open(e2e.CONF, "w") as f:
        f.write("""[daemon]
database = {tmp}/rmad.db
policies = {root}/policies
pub = {pub}
replay = tcp://127.0.0.1:{rep}
control = ipc://{tmp}/rmad.ctl
double_read_ms = 0

[station dock1]
scanner = tcp:127.0.0.1:{s1}
""".format(tmp=tmp, root=os.getcwd(), pub=pub, rep=ports["replay"], s1=ports["s1"]))
    csv = os.path.join(tmp, "rmas.csv")
    dd = dates()
    dd["older"] = time.strftime("%Y-%m-%d", time.localtime(time.time() - 60 * 86400))
    with open(csv, "w") as f:
        f.write(RMAS.format(**dd))
    ctx = zmq.Context()
    d = Daemon(tmp, e2e.CONF)
    d.start()
    r = rmactl("rma", "import", csv)
    check(r.stdout == "imported: 3 new, 0 updated, 0 unchanged\n", "rma import: " + r.stdout + r.stderr)
    r = rmactl("rma", "import", csv)
    check(r.stdout == "imported: 0 new, 0 updated, 3 unchanged\n", "re-import is idempotent")
    sub = Subscriber(ctx, pub)
    time.sleep(0.3)
    sc = Scanner(ports["s1"])

    check("completed" in unit(sc, "RMA-7001", "CAM-1"), "camera 1 completed")
    check("completed" in unit(sc, "RMA-7001", "CAM-2"), "camera 2 completed")
    check("completed" in unit(sc, "RMA-7001", "NVR-55"), "recorder completed")
    sc.ask("RMA-7001")
    reply = sc.ask("CAM-2")
    check(reply.startswith("REJECT double receipt: serial CAM-2"), "second CAM-2 rejected: " + reply)
    sc.ask("CMD-CANCEL")
    reply = unit(sc, "RMA-7001", "OTHER-9")
    check("completed: quarantine" in reply, "a serial of another RMA is quarantined: " + reply)
    check("completed" in unit(sc, "RMA-7001", "CAM-3"), "last camera completed")
    reply = sc.ask("RMA-7001")
    check("all 4 units of RMA-7001 received" in reply, "a 4th camera is refused: " + reply)

    ok = sub.pump(lambda ev: count(ev, "receipt.refused") >= 1 and count(ev, "inspection.completed") >= 5)
    check(ok, "events arrived")
    done = [e for e in sub.events if e["type"] == "inspection.completed"]
    got = [(e.get("serial"), e.get("line"), e.get("progress", {}).get("received"),
            e.get("progress", {}).get("authorised"), e.get("disposition") == "quarantine") for e in done]
    want = [("CAM-1", 1, 1, 4, False), ("CAM-2", 1, 2, 4, False), ("NVR-55", 2, 3, 4, False),
            ("OTHER-9", 1, 3, 4, True), ("CAM-3", 1, 4, 4, False)]
    check(got == want, "line and progress of each unit: %r" % got)
    check(count(sub.events, "rma.received", rma="RMA-7001") == 1, "rma.received published once")
    refused = [e for e in sub.events if e["type"] == "receipt.refused"][-1]
    check(refused.get("line") is None and refused.get("progress") == {"received": 4, "authorised": 4},
          "receipt.refused carries the progress: %r" % refused)
    double = [e for e in sub.events if e["type"] == "scan.rejected" and e.get("text") == "CAM-2"]
    check(len(double) == 1, "the double receipt is a rejected scan")

    r = rmactl("rma", "show", "RMA-7001", "--json")
    check(r.returncode == 0, "rma show: " + r.stderr)
    rma = json.loads(r.stdout or "{}").get("rma", {})
    check(rma.get("state") == "received" and rma.get("received") == 4, "RMA-7001 received: %r" % rma.get("state"))
    units = [(u["id"], u["line"], u["serial"], u["state"], u["disposition"]) for u in rma.get("receipts", [])]
    check(len(units) == 7 and [u[3] for u in units] ==
          ["completed", "completed", "completed", "cancelled", "completed", "completed", "refused"],
          "rma show lists every unit with its receipt: %r" % units)
    lines = {l["line"]: l for l in rma.get("lines", [])}
    check(lines.get(1, {}).get("received_serials") == ["CAM-1", "CAM-2", "CAM-3"], "line 1 serials in")
    check(lines.get(2, {}).get("received_serials") == ["NVR-55"], "line 2 serial in")
    r = rmactl("rma", "show", "RMA-7001")
    check("received: 4 of 4 units received" in r.stdout and "OTHER-9" in r.stdout, "rma show text:\n" + r.stdout)

    r = rmactl("rma", "list", "--state", "open")
    check("RMA-7002" in r.stdout and "RMA-7001" not in r.stdout, "rma list --state open:\n" + r.stdout)
    r = rmactl("rma", "close", "RMA-7002", "--reason", "customer keeps the camera")
    check(r.returncode == 0, "rma close: " + r.stderr)
    reply = sc.ask("RMA-7002")
    check("RMA closed: customer keeps the camera" in reply, "a closed RMA is refused with its reason: " + reply)
    r = rmactl("rma", "list", "--vendor", "everfocus", "--json")
    states = {x["number"]: x["state"] for x in json.loads(r.stdout or "{}").get("rmas", [])}
    check(states == {"RMA-7001": "received", "RMA-7002": "closed", "RMA-7003": "expired"},
          "rma list states (EverFocus: an RMA is valid 30 days): %r" % states)
    r = rmactl("rma", "list", "--state", "expired")
    check("RMA-7003" in r.stdout and "RMA-7001" not in r.stdout, "rma list --state expired:\n" + r.stdout)

    big_import(tmp, dd)

    check(d.kill(signal.SIGTERM) == 0, "SIGTERM exits cleanly")
    sc.close()
    ctx.destroy(linger=0)
    return finish("lines", d, tmp)


if __name__ == "__main__":
    sys.exit(main())
