#!/usr/bin/python3
"""Forwarding to NATS JetStream end to end (docs/forward.md), with a real
`nats-server -js` on a loopback port and an independent NATS client (natsproto.py:
the protocol over a socket, no libnats) reading the stream back.

- Two rmad instances, sites berlin and hamburg, forward into one stream RMAD created by
  `rmactl forward init`: each site's events are in the stream exactly once, in seq
  order, subject rmad.SITE.TYPE, payload byte for byte the outbox body, headers
  Nats-Msg-Id SITE:SEQ, Rmad-Seq, Rmad-Site. rmactl status shows forwarding, the
  forwarded-up-to seq and the backlog; the log shows forward.connected.
- Before the stream exists, rmad keeps scanning and says so (stream error, logged).
- Kills: while berlin's scanner scans without pause, rmad is SIGKILLed at random
  moments (FORWARD_KILLS, default 10) and restarted; in the middle nats-server itself
  is stopped (the dock keeps scanning, forward.disconnected in the log, a backlog in
  status) and restarted. At the end the stream holds every seq of berlin exactly once,
  in order, nothing missing.
- A mark older than half the duplicate window: rmad asks the stream for the site's
  last Rmad-Seq and resumes after it (nothing is published twice even then). A mark
  beyond the database's last event (a restored backup) is refused with why.

usage: forward_e2e.py BUILD_DIR      (run from the repository root; exit 0 = passed)
"""
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

import e2e
import natsproto
from e2e import Daemon, check, dates, failures, free_port, rmactl, wait_log

DAEMONS = []  # every rmad started, killed at the end whatever happened
KILLS = int(os.environ.get("FORWARD_KILLS", "10"))
RMAS = "number,issued,kind,vendor,model,family,expected_serial,purchased\n" + "".join(
    "RMA-80%02d,{recent},warranty,V7,SSD-512,Solid State Drives,SN-80%02d,{older}\n" % (n, n)
    for n in range(1, 60))


class Nats:
    """nats-server -js on a free loopback port, its store in tmp (kept across restarts)."""

    def __init__(self, tmp):
        self.port = free_port()
        self.store = os.path.join(tmp, "js")
        self.log = os.path.join(tmp, "nats.log")
        self.proc = None

    def start(self):
        exe = shutil.which("nats-server")
        if not exe:
            raise RuntimeError("nats-server is not installed: scripts/deps.sh --check installs it "
                               "(Debian package nats-server)")
        self.proc = subprocess.Popen([exe, "-a", "127.0.0.1", "-p", str(self.port), "-js",
                                      "-sd", self.store], stdout=subprocess.DEVNULL,
                                     stderr=open(self.log, "ab"))
        deadline = time.time() + e2e.WAIT
        while time.time() < deadline:
            try:
                c = natsproto.Conn(self.port, timeout=2)
                c.close()
                return
            except (OSError, natsproto.NatsError):
                time.sleep(0.1)
        raise RuntimeError("nats-server did not start: " + open(self.log).read()[-2000:])

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=e2e.WAIT)


def write_conf(tmp, name, site, nats_port, extra=""):
    ports = {k: free_port() for k in ("pub", "rep", "s1")}
    d = os.path.join(tmp, name)
    os.makedirs(d, exist_ok=True)
    conf = os.path.join(d, "rmad.conf")
    with open(conf, "w") as f:
        f.write("""[daemon]
database = {d}/rmad.db
policies = {cwd}/policies
pub = tcp://127.0.0.1:{pub}
replay = tcp://127.0.0.1:{rep}
control = ipc://{d}/rmad.ctl

[forward]
nats = nats://127.0.0.1:{np}
site = {site}
{extra}
[station dock1]
scanner = tcp:127.0.0.1:{s1}
""".format(d=d, cwd=os.getcwd(), np=nats_port, site=site, extra=extra, **ports))
    return conf, d, ports


def use(conf):
    e2e.CONF = conf


def status(conf):
    use(conf)
    r = rmactl("status", "--json")
    if r.returncode != 0:
        return None
    return json.loads(r.stdout)


def wait_forwarded(conf, timeout=60):
    """Until rmad says the backlog is 0 with everything stored forwarded."""
    deadline = time.time() + timeout
    st = None
    while time.time() < deadline:
        st = status(conf)
        fw = st and st.get("forward")
        if fw and fw["state"] == "forwarding" and fw["backlog"] == 0 and \
                fw["forwarded_seq"] == st["last_seq"]:
            return st
        time.sleep(0.2)
    check(False, "forwarder caught up (last status: %s)" % json.dumps(st))
    return st


def outbox(dbpath):
    db = sqlite3.connect(dbpath)
    rows = db.execute("SELECT seq, topic, body FROM outbox ORDER BY seq").fetchall()
    db.close()
    return rows


def verify_site(msgs, site, dbpath, what):
    """The stream holds the site's events exactly once, in seq order, as stored."""
    rows = outbox(dbpath)
    mine = [m for m in msgs if m["headers"].get("Rmad-Site") == site]
    seqs = [int(m["headers"]["Rmad-Seq"]) for m in mine]
    check(len(rows) > 0, "%s: events stored" % what)
    check(seqs == [r[0] for r in rows],
          "%s: the stream holds seqs 1..%d of %s exactly once, in order (got %d messages; "
          "dups %d, missing %d, out of order %s)" %
          (what, len(rows), site, len(seqs), len(seqs) - len(set(seqs)),
           len(set(r[0] for r in rows) - set(seqs)), seqs != sorted(seqs)))
    by_seq = {int(m["headers"]["Rmad-Seq"]): m for m in mine}
    bad = 0
    for seq, topic, body in rows:
        m = by_seq.get(seq)
        if not m:
            continue
        ok = (m["subject"] == "rmad.%s.%s" % (site, topic) and m["data"] == body.encode() and
              m["headers"].get("Nats-Msg-Id") == "%s:%d" % (site, seq))
        bad += not ok
    check(bad == 0, "%s: subject, payload (byte for byte) and Nats-Msg-Id of every %s event "
          "(%d differ)" % (what, site, bad))
    return len(rows)


def read_stream(nats):
    c = natsproto.Conn(nats.port)
    try:
        return natsproto.stream_messages(c, "RMAD")
    finally:
        c.close()


class Scanning(threading.Thread):
    """A scanner that switches between RMAs without pause (each scan is an event or
    three), reconnecting whenever rmad is down."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.stop, self.answered = port, False, 0

    def run(self):
        n = 0
        while not self.stop:
            try:
                s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
                f = s.makefile("rb")
                while not self.stop:
                    n += 1
                    s.sendall(("RMA-80%02d\r\n" % (n % 59 + 1)).encode())
                    if not f.readline():
                        break
                    self.answered += 1
                    time.sleep(0.01)
                s.close()
            except OSError:
                time.sleep(0.05)


def two_sites(tmp, nats):
    conf_b, dir_b, ports_b = write_conf(tmp, "berlin", "berlin", nats.port)
    conf_h, dir_h, ports_h = write_conf(tmp, "hamburg", "hamburg", nats.port)

    # --check-config takes the section and refuses a bad site.
    r = subprocess.run([e2e.RMAD, "--check-config", conf_b], capture_output=True, text=True)
    check(r.returncode == 0, "--check-config accepts [forward]: " + r.stderr)
    bad = os.path.join(tmp, "bad.conf")
    open(bad, "w").write(open(conf_b).read().replace("site = berlin", "site = ber.lin"))
    r = subprocess.run([e2e.RMAD, "--check-config", bad], capture_output=True, text=True)
    check(r.returncode == 2 and "bad site" in r.stderr, "--check-config refuses site ber.lin: "
          + r.stderr)

    # Berlin starts before the stream exists: it scans on and says why it waits.
    b = Daemon(dir_b, conf_b)
    DAEMONS.append(b)
    use(conf_b)
    b.start()
    wait_log(b, "stream RMAD does not exist: create it with rmactl forward init")
    st = status(conf_b)
    check(st and st["forward"]["state"] == "stream error", "status: stream error before init")
    csv = os.path.join(tmp, "rmas.csv")
    open(csv, "w").write(RMAS.format(**dates()))
    check(rmactl("rma", "import", csv).returncode == 0, "berlin: import")
    sc = e2e.Scanner(ports_b["s1"])
    for rma, sn in (("RMA-8001", "SN-8001"), ("RMA-8002", "SN-8002")):
        for line in (rma, sn, "CMD-CANCEL"):
            check(sc.ask(line).split(" ")[0] in ("OK", "REJECT"),
                  "berlin answers %s while the stream is missing" % line)

    r = rmactl("forward", "init")
    check(r.returncode == 0 and "stream RMAD created" in r.stdout and "duplicate window 600s"
          in r.stdout, "rmactl forward init creates the stream: " + r.stdout + r.stderr)
    r = rmactl("forward", "init")
    check(r.returncode == 0 and "exists and fits" in r.stdout, "forward init again: " + r.stdout)

    h = Daemon(dir_h, conf_h)
    DAEMONS.append(h)
    use(conf_h)
    h.start()
    check(rmactl("rma", "import", csv).returncode == 0, "hamburg: import")
    sh = e2e.Scanner(ports_h["s1"])
    for i in range(3, 8):
        for line in ("RMA-80%02d" % i, "SN-80%02d" % i, "CMD-CANCEL"):
            sh.ask(line)
        for line in ("RMA-80%02d" % (i + 10), "SN-80%02d" % (i + 10), "CMD-CANCEL"):
            sc.ask(line)
    sc.close()
    sh.close()

    st_b = wait_forwarded(conf_b)
    st_h = wait_forwarded(conf_h)
    wait_log(b, "forward.connected: nats://127.0.0.1:%d, stream RMAD, site berlin" % nats.port)
    wait_log(h, "forward.connected: nats://127.0.0.1:%d, stream RMAD, site hamburg" % nats.port)
    use(conf_b)
    text = rmactl("status").stdout
    check("forward: forwarding (stream RMAD, site berlin" in text and
          "forwarded up to seq %d, backlog 0 events" % st_b["last_seq"] in text,
          "rmactl status shows the forwarder: " + text)
    msgs, info = read_stream(nats)
    nb = verify_site(msgs, "berlin", os.path.join(dir_b, "rmad.db"), "two sites")
    nh = verify_site(msgs, "hamburg", os.path.join(dir_h, "rmad.db"), "two sites")
    check(len(msgs) == nb + nh, "the stream holds the two sites' events and nothing else "
          "(%d = %d + %d)" % (len(msgs), nb, nh))
    check(st_h["forward"]["duplicates"] == 0, "no duplicate publish without a crash")
    # Forwarder events are log lines, not events (they would need forwarding).
    check(not any(r[1].startswith("forward") for r in outbox(os.path.join(dir_b, "rmad.db"))),
          "no forward.* events in the outbox")
    h.kill(signal.SIGTERM)
    return b, conf_b, dir_b, ports_b


def kills(nats, b, conf_b, dir_b, ports_b):
    scan = Scanning(ports_b["s1"])
    scan.start()
    rng = random.Random(int(os.environ.get("FORWARD_SEED", str(int(time.time())))))
    behind = 0  # kills while rmad had events not yet acknowledged by the stream
    for k in range(KILLS):
        time.sleep(rng.uniform(0.2, 1.2))
        st = status(conf_b)
        behind += bool(st and st["forward"]["backlog"] > 0)
        b.proc.send_signal(signal.SIGKILL)
        b.proc.wait(timeout=e2e.WAIT)
        if k == KILLS // 2:
            # The central system goes away: the dock keeps scanning, events wait.
            nats.stop()
            before = scan.answered
            b.start()
            time.sleep(1.5)
            wait_log(b, "forward.disconnected")
            st = status(conf_b)
            check(scan.answered > before, "scans answered while nats-server is down")
            check(st and st["forward"]["state"] in ("disconnected", "connecting") and
                  st["forward"]["backlog"] > 0,
                  "status while nats-server is down: %s" % (st and st["forward"]))
            nats.start()
            continue
        b.start()
    time.sleep(0.5)
    scan.stop = True
    scan.join(timeout=e2e.WAIT)
    st = wait_forwarded(conf_b, timeout=90)
    msgs, _ = read_stream(nats)
    n = verify_site(msgs, "berlin", os.path.join(dir_b, "rmad.db"),
                    "after %d SIGKILLs and a nats-server restart" % KILLS)
    print("forward e2e: %d kills (%d with a backlog), %d berlin events in the stream, "
          "%d scans answered" % (KILLS, behind, n, scan.answered), flush=True)
    return st


def old_mark(nats, b, conf_b, dir_b):
    """The mark far behind and old: rmad asks the stream and publishes nothing twice."""
    b.kill(signal.SIGTERM)
    msgs_before, info_before = read_stream(nats)
    db = sqlite3.connect(os.path.join(dir_b, "rmad.db"))
    # As if the mark had stuck an hour ago at 3 (a database restored from backup would
    # look the same): only the trigger's rule is lifted for this edit.
    db.execute("DROP TRIGGER forward_marks_only_forward")
    db.execute("UPDATE forward_marks SET seq = 3, updated_ms = updated_ms - 3600000")
    db.commit()
    db.close()
    b.start()
    wait_log(b, "already holds site berlin up to seq")
    wait_forwarded(conf_b)
    msgs, info = read_stream(nats)
    new = [m for m in msgs if m["seq"] > info_before["state"]["last_seq"]]
    check(all(m["headers"].get("Rmad-Site") == "berlin" for m in new) and
          all(int(m["headers"]["Rmad-Seq"]) > int(msgs_before[-1]["headers"]["Rmad-Seq"])
              if msgs_before else True for m in new),
          "an old mark re-sends nothing the stream holds")
    verify_site(msgs, "berlin", os.path.join(dir_b, "rmad.db"), "after an old mark")
    b.kill(signal.SIGTERM)

    # A mark beyond the database (restored from an older backup): refused, not forwarded
    # under seqs the stream already has; the dock still starts and scans.
    db = sqlite3.connect(os.path.join(dir_b, "rmad.db"))
    db.execute("UPDATE forward_marks SET seq = seq + 1000000")
    db.commit()
    db.close()
    b.start()
    wait_log(b, "a restored or replaced database needs a new site name")
    st = status(conf_b)
    check(st and st["forward"]["state"] == "stream error", "a mark beyond the database: "
          "stream error (%s)" % (st and st["forward"]))
    b.kill(signal.SIGTERM)


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    e2e.RMAD = os.path.join(build, "rmad")
    e2e.RMACTL = os.path.join(build, "rmactl")
    tmp = tempfile.mkdtemp(prefix="rmad-forward-")
    nats = Nats(tmp)
    try:
        nats.start()
        b, conf_b, dir_b, ports_b = two_sites(tmp, nats)
        kills(nats, b, conf_b, dir_b, ports_b)
        old_mark(nats, b, conf_b, dir_b)
    except Exception as e:  # a failure to set up is a failure, with its reason
        check(False, "forward e2e: %s: %s" % (type(e).__name__, e))
    finally:
        for d in DAEMONS:
            if d.proc and d.proc.poll() is None:
                d.proc.kill()
        nats.stop()
        if not failures:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print("kept", tmp, flush=True)
    if failures:
        print("forward e2e: %d checks failed" % len(failures))
        return 1
    print("forward e2e: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
