#!/usr/bin/python3
"""Station feedback end to end (issue 10): every scan answered on the TCP connection.

rmad runs on a temporary config with one station whose scanner is a loopback TCP port.
The test scans like a dock worker holding only a scanner and reads every reply line:
the mix-up of the issue (RMA-5001, CMD-DONE, RMA-5002, SN-2, CMD-DONE), a double read,
rmad's own label barcodes scanned during an open receipt, a second RMA after the serial,
and a sealed EverFocus camera whose accessories must be answered. The final state is
read from the SQLite file and the events from an independent ZeroMQ client.

usage: station_e2e.py BUILD_DIR      (run from the repository root; exit 0 = passed)
"""
import os
import re
import signal
import sqlite3
import sys
import tempfile
import time

import zmq

import e2e
from e2e import *  # noqa: F401,F403

RMAS = """number,issued,kind,vendor,model,family,expected_serial,purchased,shipped
RMA-5001,{recent},warranty,V7,SSD-512,Solid State Drives,SN-1,{older},
RMA-5002,{recent},warranty,V7,SSD-512,Solid State Drives,SN-2,{older},
RMA-5003,{recent},credit,EverFocus,EZN268,IP Cameras,EF-3,{month},{month}
"""

# The reply format: STATUS, what happened, [the receipt open after the scan], next.
REPLY = re.compile(r"^(OK|REJECT|DOUBLE) (.+) \[(receipt (\d+) (\S+)|no receipt open)\]: (.+)$")


def expect(reply, status, what, receipt, next_part=""):
    """Check one reply line: its status, words in it, the receipt it names (0: none)."""
    m = REPLY.match(reply)
    if not check(m is not None, "reply has the documented form: %r" % reply):
        return
    check(m.group(1) == status, "%s expected: %r" % (status, reply))
    check(what in m.group(2), "%r says %r" % (reply, what))
    named = int(m.group(4)) if m.group(4) else 0
    check(named == receipt, "%r names receipt %d" % (reply, receipt))
    check(next_part in m.group(6), "%r: next says %r" % (reply, next_part))


def main():
    tmp = tempfile.mkdtemp(prefix="rmad-station-e2e-")
    ports = {k: free_port() for k in ("pub", "replay", "s1")}
    pub = "tcp://127.0.0.1:%d" % ports["pub"]
    e2e.CONF = os.path.join(tmp, "rmad.conf")
    os.environ["CUPS_SERVER"] = os.path.join(tmp, "no-cupsd.sock")   # labels only queue
    with open(e2e.CONF, "w") as f:
        f.write("""[daemon]
database = {tmp}/rmad.db
policies = {root}/policies
pub = {pub}
replay = tcp://127.0.0.1:{rep}
control = ipc://{tmp}/rmad.ctl

[station dock1]
scanner = tcp:127.0.0.1:{s1}
printer = dock1-labels
""".format(tmp=tmp, root=os.getcwd(), pub=pub, rep=ports["replay"], s1=ports["s1"]))
    csv = os.path.join(tmp, "rmas.csv")
    with open(csv, "w") as f:
        f.write(RMAS.format(**dates()))
    ctx = zmq.Context()
    d = Daemon(tmp, e2e.CONF)
    d.start()
    r = rmactl("rma", "import", csv)
    check(r.returncode == 0, "rma import: " + r.stdout + r.stderr)
    sub = Subscriber(ctx, pub)
    time.sleep(0.3)
    sc = Scanner(ports["s1"])

    # The scenario, one reply per scan.
    expect(sc.ask("RMA-5001"), "OK", "receipt 1 opened for RMA-5001", 1, "scan the unit's serial")
    expect(sc.ask("CMD-DONE"), "REJECT", "scan the serial first", 1, "serial")
    expect(sc.ask("RMA-5002"), "OK",
           "receipt 1 (RMA-5001) cancelled, switched to RMA-5002: receipt 2 opened", 2, "serial")
    sc.send(b"SN-2\r\nSN-2\r\n")                           # the scanner read it twice at once
    expect(sc.reply(), "OK", "serial SN-2 recorded, matches the RMA", 2, "answer the fault test")
    expect(sc.reply(), "DOUBLE", "double read", 2, "answer the fault test")
    expect(sc.ask("CMD-DONE"), "REJECT", "not finished: the fault test not answered", 2,
           "FAULT-CONFIRMED, FAULT-NFF, FAULT-DOA or FAULT-UNTESTED")
    # rmad's own label barcodes, during an open receipt: never the unit's.
    expect(sc.ask("RCPT-000001"), "REJECT", "rmad label", 2)
    expect(sc.ask("RMAD RCPT-000001 RMA:RMA-5001 SN:SN-1"), "REJECT", "rmad label", 2)
    expect(sc.ask("RMA:RMA-5001 SN:SN-1"), "REJECT", "rmad label (older form)", 2)
    expect(sc.ask("FAULT-CONFIRMED"), "OK", "FAULT-CONFIRMED recorded", 2, "CMD-DONE")
    expect(sc.ask("CMD-DONE"), "OK", "receipt 2 completed: warranty_exchange", 0, "scan an RMA")
    # With nothing open, a label is looked up.
    expect(sc.ask("RCPT-000002"), "OK", "rmad label of receipt 2: RMA-5002, completed warranty_exchange",
           0, "scan an RMA")
    expect(sc.ask("CMD-REPRINT"), "OK", "label of receipt 2 queued again", 0)

    # A second RMA once the receipt has more than its RMA: rejected, the way out named.
    expect(sc.ask("RMA-5003"), "OK", "receipt 3 opened for RMA-5003 (EverFocus EZN268)", 3)
    expect(sc.ask("EF-3"), "OK", "serial EF-3 recorded", 3, "answer the accessories")
    expect(sc.ask("RMA-5001"), "REJECT", "a receipt is open (RMA-5003)", 3,
           "cancel it (CMD-CANCEL), then scan RMA-5001 again")
    # The sealed camera in its original box: what changes the credit must be answered.
    expect(sc.ask("PKG-ORIGINAL"), "OK", "PKG-ORIGINAL recorded", 3, "answer the accessories")
    expect(sc.ask("SEAL-INTACT"), "OK", "SEAL-INTACT recorded", 3,
           "answer the accessories (power-adapter, mounting-kit, quick-guide): ACC-ALL, ACC-NONE")
    expect(sc.ask("CMD-DONE"), "REJECT",
           "not finished: the accessories (power-adapter, mounting-kit, quick-guide) not answered", 3,
           "ACC-ALL, ACC-NONE, or ACC-<name> for each one there")
    expect(sc.ask("ACC-ALL"), "OK", "accessories present: power-adapter, mounting-kit, quick-guide",
           3, "CMD-DONE")
    expect(sc.ask("CMD-DONE"), "OK", "receipt 3 completed: restock", 0)
    expect(sc.ask("CMD-CANCEL"), "REJECT", "no open receipt", 0, "scan an RMA")

    # The final state is what the replies said.
    db = sqlite3.connect("file:%s/rmad.db?mode=ro" % tmp, uri=True)
    rows = {i: (rma, state, serial, disp) for i, rma, state, serial, disp in
            db.execute("select id, rma, state, serial, disposition from receipts")}
    check(rows.get(1) == ("RMA-5001", "cancelled", None, None), "receipt 1 cancelled: %r" % (rows.get(1),))
    check(rows.get(2) == ("RMA-5002", "completed", "SN-2", "warranty_exchange"),
          "receipt 2 completed with SN-2: %r" % (rows.get(2),))
    check(rows.get(3) == ("RMA-5003", "completed", "EF-3", "restock"), "receipt 3: %r" % (rows.get(3),))
    status = dict(db.execute("select number, status from rmas"))
    check(status.get("RMA-5001") == "open", "RMA-5001 can still be received: %s" % status)
    check(status.get("RMA-5002") == "received", "RMA-5002 received")
    check(db.execute("select count(*) from scans where text = 'SN-2' and receipt_id = 1").fetchone()[0] == 0,
          "SN-2 never filed under receipt 1")
    result = db.execute("select result from receipts where id = 3").fetchone()[0]
    check('"restocking_fee_pct":0' in result.replace(" ", ""), "sealed and complete: no fee: " + result)
    db.close()

    ok = sub.pump(lambda ev: count(ev, "inspection.completed") >= 2)
    check(ok, "events arrived")
    acc = [e for e in sub.events if e["type"] == "scan.accepted"]
    rej = [e for e in sub.events if e["type"] == "scan.rejected"]
    check(all("next" in e and "message" in e for e in acc), "scan.accepted carries message and next")
    check(all("next" in e and "reason" in e for e in rej), "scan.rejected carries reason and next")
    switched = [e for e in sub.events if e["type"] == "receipt.cancelled" and e.get("receipt") == 1]
    check(len(switched) == 1 and switched[0].get("switched_to") == "RMA-5002", "switch event")

    for line in ("receipt 1 (RMA-5001) opened", "receipt 1 (RMA-5001) cancelled: switched to RMA-5002",
                 "receipt 2 (RMA-5002) opened", "receipt 2 (RMA-5002) completed: warranty_exchange",
                 "receipt 3 (RMA-5003) completed: restock"):
        wait_log(d, line)

    check(d.kill(signal.SIGTERM) == 0, "SIGTERM exits cleanly")
    sc.close()
    ctx.destroy(linger=0)
    return finish("station", d, tmp)


if __name__ == "__main__":
    sys.exit(main())
