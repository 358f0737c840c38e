#!/usr/bin/python3
"""The RMA feed end to end (docs/forward.md, "RMAs from the stream"), with a real
`nats-server -js` on loopback and the independent client natsproto.py publishing.

- rma_feed = yes: rmad pulls rmad.SITE.rma.upsert through its durable consumer
  (rmad-SITE). An upsert (the `rmactl rma import` CSV) published to the subject is
  applied: scanning the RMA at a station opens a receipt.
- The same upsert published twice is applied once (the second changes nothing).
- A malformed upsert (one good row, one with a bad date) is refused as a whole:
  rmad's log names the error and the message's stream seq, the good row's RMA is
  unknown to rmactl rma show, and the consumer terminated it (nothing pending, no
  redelivery); the message is still in the stream for a person.
- A database busy beyond the import's wait: the upsert is nak'd, redelivered, applied.
- The forwarder's "site's last Rmad-Seq" lookup is not confused by upserts (they are
  the site's last messages in the stream): an old mark resumes after the last event.
- Upserts published while rmad is down are applied when it is back (durable).

usage: rma_feed_e2e.py BUILD_DIR      (run from the repository root; exit 0 = passed)
"""
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

import e2e
import natsproto
from e2e import Daemon, check, dates, failures, rmactl, wait_log
from forward_e2e import Nats, read_stream, status, use, wait_forwarded, write_conf

HEADER = "number,issued,kind,vendor,model,family,expected_serial,purchased\n"
ROW = "{n},{recent},warranty,V7,SSD-512,Solid State Drives,SN-{n},{older}\n"


def publish(nats, subject, text):
    """Publish through JetStream (the request gets the stream's ack): the stream seq."""
    c = natsproto.Conn(nats.port)
    try:
        _, data = c.request(subject, text.encode())
    finally:
        c.close()
    ack = json.loads(data)
    check("seq" in ack and ack.get("stream") == "RMAD", "the stream stored the upsert: %s" % ack)
    return ack.get("seq", 0)


def consumer(nats, name):
    c = natsproto.Conn(nats.port)
    try:
        return c.js("CONSUMER.INFO.RMAD." + name)
    finally:
        c.close()


def wait_settled(nats, name, seq):
    """Until the consumer's ack floor reaches stream seq (every message up to it settled)."""
    deadline = time.time() + e2e.WAIT
    info = None
    while time.time() < deadline:
        info = consumer(nats, name)
        if info.get("ack_floor", {}).get("stream_seq", 0) >= seq and \
                info.get("num_ack_pending", 1) == 0:
            return info
        time.sleep(0.1)
    check(False, "consumer %s settled up to stream seq %d (last: %s)" % (name, seq, info))
    return info


def known(number):
    r = rmactl("rma", "show", number)
    return r.returncode == 0, r.stdout + r.stderr


def run(tmp, nats):
    d = dates()
    conf, dirp, ports = write_conf(tmp, "berlin", "berlin", nats.port, extra="rma_feed = yes\n")
    use(conf)
    r = subprocess.run([e2e.RMAD, "--check-config", conf], capture_output=True, text=True)
    check(r.returncode == 0, "--check-config accepts rma_feed = yes: " + r.stderr)
    bad = os.path.join(tmp, "bad.conf")
    open(bad, "w").write(open(conf).read().replace("rma_feed = yes", "rma_feed = maybe"))
    r = subprocess.run([e2e.RMAD, "--check-config", bad], capture_output=True, text=True)
    check(r.returncode == 2 and "bad rma_feed 'maybe'" in r.stderr,
          "--check-config refuses rma_feed = maybe: " + r.stderr)
    r = rmactl("forward", "init")
    check(r.returncode == 0 and "stream RMAD created" in r.stdout, "forward init: " + r.stdout
          + r.stderr)

    b = Daemon(dirp, conf)
    b.start()
    try:
        return scenario(nats, b, conf, dirp, ports, d)
    finally:
        if b.proc and b.proc.poll() is None:
            b.proc.kill()


def scenario(nats, b, conf, dirp, ports, d):
    subject = "rmad.berlin.rma.upsert"
    wait_log(b, "forward.rma_feed: pulling rmad.berlin.rma.upsert from nats://127.0.0.1:%d "
             "(consumer rmad-berlin)" % nats.port)
    ok, text = known("RMA-9001")
    check(not ok, "RMA-9001 unknown before the feed: " + text)

    # An upsert: applied, committed, acked; a station opens it.
    good = HEADER + ROW.format(n="RMA-9001", **d)
    s1 = publish(nats, subject, good)
    wait_log(b, "forward.rma_feed: stream RMAD seq %d applied: 1 row: 1 RMA inserted, "
             "0 updated, 0 unchanged" % s1)
    ok, text = known("RMA-9001")
    check(ok and "RMA-9001" in text, "rma show knows RMA-9001 from the feed: " + text)
    sc = e2e.Scanner(ports["s1"])
    reply = sc.ask("RMA-9001")
    check(reply.startswith("OK ") and "receipt 1 opened for RMA-9001" in reply,
          "a station opens the fed RMA: " + reply)
    st = status(conf)
    check(st is not None and "receipt 1" in rmactl("status").stdout,
          "rmactl status shows receipt 1 open: " + rmactl("status").stdout)
    check(sc.ask("CMD-CANCEL").startswith("OK "), "cancel the receipt")
    sc.close()

    # The same upsert again: nothing changes (idempotent), still acked.
    before = sqlite3.connect(os.path.join(dirp, "rmad.db")).execute(
        "SELECT count(*) FROM rmas").fetchone()[0]
    s2 = publish(nats, subject, good)
    wait_log(b, "forward.rma_feed: stream RMAD seq %d applied: 1 row: 0 RMAs inserted, "
             "0 updated, 1 unchanged" % s2)
    after = sqlite3.connect(os.path.join(dirp, "rmad.db")).execute(
        "SELECT count(*) FROM rmas").fetchone()[0]
    check(before == after == 1, "the same upsert twice: one RMA (%d, %d)" % (before, after))

    # A malformed upsert: all or nothing, terminated, logged with its stream seq.
    malformed = HEADER + ROW.format(n="RMA-9002", **d) + \
        ROW.format(n="RMA-9003", **d).replace(d["recent"], "2026-02-30", 1)
    s3 = publish(nats, subject, malformed)
    wait_log(b, "forward.rma_feed: stream RMAD seq %d refused, nothing applied (terminated, "
             "kept in the stream): line 3: issued: expected YYYY-MM-DD" % s3)
    for n in ("RMA-9002", "RMA-9003"):
        ok, text = known(n)
        check(not ok, "%s of the refused upsert is unknown: %s" % (n, text))
    # Not even a CSV: refused too.
    s4 = publish(nats, subject, "this is not a CSV file\n")
    wait_log(b, "forward.rma_feed: stream RMAD seq %d refused" % s4)
    info = wait_settled(nats, "rmad-berlin", s4)
    check(info.get("num_ack_pending") == 0 and info.get("num_redelivered") == 0 and
          info.get("num_pending") == 0 and info["delivered"]["stream_seq"] == s4,
          "consumer: every upsert settled once, none pending or redelivered: %s" %
          json.dumps({k: info.get(k) for k in ("num_ack_pending", "num_redelivered",
                                                "num_pending", "delivered", "ack_floor")}))
    st = status(conf)
    feed = st and st["forward"].get("rma_feed")
    check(feed == {"consumer": "rmad-berlin", "connected": True, "applied": 2, "refused": 2,
                   "last_refused_seq": s4}, "status shows the feed: %s" % feed)
    text = rmactl("status").stdout
    check("rma feed: pulling (consumer rmad-berlin), 2 applied, 2 refused (last: stream seq %d)"
          % s4 in text, "rmactl status shows the feed: " + text)
    time.sleep(1.5)
    log = open(b.log).read()
    check(log.count("seq %d refused" % s3) == 1, "the refused upsert is logged once")
    c = natsproto.Conn(nats.port)
    kept = c.js("STREAM.MSG.GET.RMAD", {"seq": s3})
    c.close()
    check("message" in kept and kept["message"]["subject"] == subject,
          "the refused upsert is still in the stream at seq %d for a person" % s3)

    # The database held by another writer beyond the import's busy wait: the upsert is
    # nak'd with a delay and redelivered, then applied (not terminated).
    lock = sqlite3.connect(os.path.join(dirp, "rmad.db"), timeout=30, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    s6 = publish(nats, subject, HEADER + ROW.format(n="RMA-9005", **d))
    wait_log(b, "forward.rma_feed: stream seq %d not applied now: " % s6)
    lock.execute("ROLLBACK")
    lock.close()
    wait_log(b, "forward.rma_feed: stream RMAD seq %d applied: 1 row: 1 RMA inserted" % s6)
    info = wait_settled(nats, "rmad-berlin", s6)
    check(info.get("num_redelivered", 0) == 0 and info.get("num_ack_pending") == 0 and
          "seq %d refused" % s6 not in open(b.log).read(),
          "a busy database delays an upsert, never refuses it: %s" % json.dumps(info.get("ack_floor")))
    ok, text = known("RMA-9005")
    check(ok, "the delayed upsert is applied: " + text)

    # The site's last messages are upserts: an old mark still resumes after the last
    # event (the lookup skips the upserts instead of calling them another writer's).
    wait_forwarded(conf)
    b.kill(signal.SIGTERM)
    # What the stream holds of the site (stopping may commit and forward one more).
    msgs, _ = read_stream(nats)
    last_event = max(int(m["headers"]["Rmad-Seq"]) for m in msgs
                     if m["headers"].get("Rmad-Site") == "berlin")
    db = sqlite3.connect(os.path.join(dirp, "rmad.db"))
    db.execute("DROP TRIGGER forward_marks_only_forward")
    db.execute("UPDATE forward_marks SET seq = 1, updated_ms = updated_ms - 3600000")
    db.commit()
    db.close()
    # Published while rmad is down: the durable consumer keeps it for rmad.
    s5 = publish(nats, subject, HEADER + ROW.format(n="RMA-9004", **d))
    msgs, _ = read_stream(nats)
    check(msgs[-1]["subject"] == subject and msgs[-1]["seq"] == s5,
          "the site's last message in the stream is an upsert")
    b.start()
    wait_log(b, "already holds site berlin up to seq %d" % last_event)
    wait_log(b, "forward.rma_feed: stream RMAD seq %d applied: 1 row: 1 RMA inserted" % s5)
    check("no Rmad-Seq header" not in open(b.log).read(), "no 'another writer' error")
    wait_forwarded(conf)
    msgs, _ = read_stream(nats)
    seqs = [int(m["headers"]["Rmad-Seq"]) for m in msgs if m["headers"].get("Rmad-Site") == "berlin"]
    check(seqs == list(range(1, len(seqs) + 1)) and len(seqs) == status(conf)["last_seq"],
          "the site's events still in the stream exactly once: %s" % seqs)
    ok, text = known("RMA-9004")
    check(ok, "an upsert published while rmad was down is applied: " + text)
    b.kill(signal.SIGTERM)


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    e2e.RMAD = os.path.join(build, "rmad")
    e2e.RMACTL = os.path.join(build, "rmactl")
    tmp = tempfile.mkdtemp(prefix="rmad-rmafeed-")
    nats = Nats(tmp)
    try:
        nats.start()
        run(tmp, nats)
    except Exception as e:  # a failure to set up is a failure, with its reason
        check(False, "rma feed e2e: %s: %s" % (type(e).__name__, e))
    finally:
        nats.stop()
        if not failures:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print("kept", tmp, flush=True)
    if failures:
        print("rma feed e2e: %d checks failed" % len(failures))
        return 1
    print("rma feed e2e: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
