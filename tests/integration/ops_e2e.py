#!/usr/bin/python3
"""Operations end to end (issue 15): access control, CURVE, allow=, backup, retention,
doctor.

rmad runs on temporary configs. Independent clients are Debian's python3-zmq (CURVE
clients with keys from `rmactl keygen`), plain TCP sockets as scanners (also from a
second loopback address, 127.0.0.2), and Python's sqlite3 on the database and on the
backups. Every "gets nothing" check waits a few seconds while events are produced.

usage: ops_e2e.py BUILD_DIR      (run from the repository root; exit 0 = passed)
"""
import grp
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import tempfile
import threading
import time

import zmq

import e2e
from e2e import *  # noqa: F401,F403

QUIET = 3.0  # seconds a refused client is watched for anything arriving

V7 = "RMA-{n},{recent},warranty,V7,SSD-512,Solid State Drives,SN-{n},{older},\n"


def rmas_csv(tmp, first, count):
    path = os.path.join(tmp, "rmas-%d.csv" % first)
    with open(path, "w") as f:
        f.write("number,issued,kind,vendor,model,family,expected_serial,purchased,shipped\n")
        for n in range(first, first + count):
            f.write(V7.format(n=n, **dates()))
    return path


def write_conf(path, tmp, ports, extra_daemon="", scanner=None, station_extra=""):
    with open(path, "w") as f:
        f.write("""[daemon]
database = {tmp}/rmad.db
policies = {root}/policies
pub = tcp://127.0.0.1:{pub}
replay = tcp://127.0.0.1:{rep}
control = ipc://{tmp}/rmad.ctl
{extra}
[station dock1]
scanner = {scanner}
{station_extra}
""".format(tmp=tmp, root=os.getcwd(), pub=ports["pub"], rep=ports["replay"], extra=extra_daemon,
           scanner=scanner or "tcp:127.0.0.1:%d" % ports["s1"], station_extra=station_extra))


def grp_exists(name):
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def key(path):
    return open(path).read().strip().encode()


def curve_socket(ctx, kind, server_pub, client):
    """A SUB or DEALER with the client's key pair (None: no CURVE at all)."""
    s = ctx.socket(kind)
    s.setsockopt(zmq.LINGER, 0)
    if client is not None:
        s.curve_serverkey = server_pub
        s.curve_publickey = key(client + ".pub")
        s.curve_secretkey = key(client + ".key")
    if kind == zmq.SUB:
        s.setsockopt(zmq.SUBSCRIBE, b"")
    return s


def receipt(sc, n):
    """One V7 receipt start to end; returns its id once CMD-DONE was answered OK."""
    sc.ask("RMA-%d" % n)
    sc.ask("SN-%d" % n)
    sc.ask("FAULT-CONFIRMED")
    r = sc.ask("CMD-DONE")
    m = re.match(r"^OK receipt (\d+) completed", r)
    check(m is not None, "receipt of RMA-%d completed: %r" % (n, r))
    return int(m.group(1)) if m else None


def replay_all(sock, start=1):
    """A replay on an already connected DEALER: (events, last_seq), or None on silence."""
    sock.send(json.dumps({"replay_from": start}).encode())
    out = []
    deadline = time.time() + WAIT
    while time.time() < deadline:
        if not sock.poll(int(QUIET * 1000)):
            return None
        frames = sock.recv_multipart()
        topic, body = frames[-2], frames[-1]
        if topic == b"replay.end":
            return out, json.loads(body)["last_seq"]
        out.append(json.loads(body))
    return None


def silent(sock, what):
    """Nothing at all arrives on sock within QUIET seconds."""
    check(not sock.poll(int(QUIET * 1000)), what)


# ---- CURVE, the control socket, allow= --------------------------------------------------

def test_access(tmp, ctx):
    keys = os.path.join(tmp, "keys")
    allowed = os.path.join(tmp, "clients")
    os.mkdir(keys)
    os.mkdir(allowed)
    for name in ("server", "erp", "stranger"):
        r = subprocess.run([e2e.RMACTL, "keygen", os.path.join(keys, name)], capture_output=True,
                           text=True)
        check(r.returncode == 0 and "wrote" in r.stdout, "keygen %s: %s%s" % (name, r.stdout, r.stderr))
    mode = stat.S_IMODE(os.stat(os.path.join(keys, "server.key")).st_mode)
    check(mode == 0o600, "NAME.key is mode 0600 (got %o)" % mode)
    check(len(key(os.path.join(keys, "server.pub"))) == 40, "NAME.pub is one Z85 key line")
    r = subprocess.run([e2e.RMACTL, "keygen", os.path.join(keys, "erp")], capture_output=True, text=True)
    check(r.returncode == 2 and "exists, not overwritten" in r.stderr, "keygen never overwrites: " + r.stderr)
    shutil.copy(os.path.join(keys, "erp.pub"), allowed)

    ports = {k: free_port() for k in ("pub", "replay", "s1")}
    e2e.CONF = os.path.join(tmp, "rmad.conf")
    # control_group: a group that exists everywhere Debian runs, and not root's own.
    group = "nogroup" if grp_exists("nogroup") else None
    write_conf(e2e.CONF, tmp, ports, scanner="tcp:127.0.0.1:%d,allow=127.0.0.2/32" % ports["s1"],
               extra_daemon="curve_secret_key = keys/server.key\n"
                            "curve_allowed_clients = clients\n"
                            "retain_subscribers = erp\n" +
                            ("control_group = %s\n" % group if group else ""))
    d = Daemon(tmp, e2e.CONF)
    d.start()
    check(wait_log(d, "CURVE on tcp://127.0.0.1:%d" % ports["pub"]), "CURVE announced in the log")
    ctl = os.path.join(tmp, "rmad.ctl")
    mode = stat.S_IMODE(os.stat(ctl).st_mode)
    check(stat.S_ISSOCK(os.stat(ctl).st_mode) and mode == 0o660,
          "control socket is mode 0660 (got %o)" % mode)
    if group:
        check(os.stat(ctl).st_gid == grp.getgrnam(group).gr_gid,
              "control socket belongs to control_group %s" % group)
    else:
        print("skipped: control_group (no group nogroup here)")
    r = rmactl("rma", "import", rmas_csv(tmp, 7000, 10))
    check(r.returncode == 0, "rma import: " + r.stdout + r.stderr)

    pub = "tcp://127.0.0.1:%d" % ports["pub"]
    rep = "tcp://127.0.0.1:%d" % ports["replay"]
    server_pub = key(os.path.join(keys, "server.pub"))
    subs = {}
    for who in ("erp", "stranger", None):
        s = curve_socket(ctx, zmq.SUB, server_pub, os.path.join(keys, who) if who else None)
        s.connect(pub)
        subs[who] = s
    time.sleep(0.5)

    # allow=: 127.0.0.1 is refused at accept, 127.0.0.2 scans.
    out = socket.create_connection(("127.0.0.1", ports["s1"]), timeout=WAIT)
    out.settimeout(WAIT)
    try:
        check(out.recv(100) == b"", "a peer outside allow= is closed at once")
    except ConnectionResetError:
        pass
    out.close()
    check(wait_log(d, "refused 1 connection from outside allow="), "the refusal is logged with a count")
    sc = e2e.Scanner.__new__(e2e.Scanner)
    sc.sock = socket.create_connection(("127.0.0.1", ports["s1"]), timeout=WAIT,
                                       source_address=("127.0.0.2", 0))
    rid = receipt(sc, 7000)
    check(rid == 1, "a peer inside allow= completes a receipt")

    # The allowed key receives the live events; an unknown key and no key get nothing.
    ev = []
    deadline = time.time() + WAIT
    while time.time() < deadline and not any(e.get("type") == "inspection.completed" for e in ev):
        if subs["erp"].poll(200):
            topic, body = subs["erp"].recv_multipart()
            if topic != b"bus.heartbeat":
                ev.append(json.loads(body))
    check(any(e.get("type") == "inspection.completed" for e in ev), "the allowed key receives events")
    silent(subs["stranger"], "an unknown key receives no event")
    silent(subs[None], "a client without CURVE receives no event")
    check(wait_log(d, "CURVE: refused client key " + key(os.path.join(keys, "stranger.pub")).decode()),
          "the unknown key is logged")
    con = sqlite3.connect(os.path.join(tmp, "rmad.db"))
    check(con.execute("SELECT count(*) FROM outbox WHERE json_extract(body, '$.peer') "
                      "LIKE '127.0.0.1:%'").fetchone()[0] == 0,
          "a refused peer is not stored as an event")
    con.close()

    # Replays: the allowed key gets them, the others nothing.
    dealer = curve_socket(ctx, zmq.DEALER, server_pub, os.path.join(keys, "erp"))
    dealer.connect(rep)
    got = replay_all(dealer)
    check(got is not None and got[1] >= 1 and len(got[0]) == got[1],
          "the allowed key replays every event")
    last = got[1] if got else 0
    for who in ("stranger", None):
        s = curve_socket(ctx, zmq.DEALER, server_pub, os.path.join(keys, who) if who else None)
        s.connect(rep)
        check(replay_all(s) is None, "%s gets no replay" % (who or "no key"))
        s.close()

    # Acknowledgements (retain_subscribers = erp), on the replay socket.
    dealer.send(json.dumps({"subscriber": "erp", "ack_seq": last}).encode())
    check(dealer.poll(int(WAIT * 1000)), "ack answered")
    frames = dealer.recv_multipart()
    check(frames[-2] == b"ack" and json.loads(frames[-1]) == {"subscriber": "erp", "ack_seq": last},
          "ack echoed: %r" % frames)
    dealer.send(json.dumps({"subscriber": "bi", "ack_seq": 1}).encode())
    check(dealer.poll(int(WAIT * 1000)), "unknown subscriber answered")
    frames = dealer.recv_multipart()
    check(frames[-2] == b"error" and b"not in retain_subscribers" in frames[-1],
          "ack of an unknown subscriber refused: %r" % frames)
    dealer.close()

    # rmactl watch: with the keys it replays; without them it says what is needed.
    r = rmactl("watch", "--from", "1", "--count", "2", "--key", os.path.join(keys, "erp.key"),
               "--server-key", os.path.join(keys, "server.pub"))
    lines = r.stdout.splitlines()
    check(r.returncode == 0 and len(lines) == 2 and lines[0].startswith("1 "),
          "rmactl watch --key --server-key replays: %r %s" % (r.stdout, r.stderr))
    r = rmactl("watch", "--from", "1", "--count", "1")
    check(r.returncode == 2 and "--key NAME.key --server-key SERVER.pub" in r.stderr,
          "rmactl watch without keys says what it needs: " + r.stderr)
    env = dict(os.environ, RMACTL_TIMEOUT_MS="3000")
    r = subprocess.run([e2e.RMACTL, "--config", e2e.CONF, "watch", "--from", "1", "--count", "1",
                        "--key", os.path.join(keys, "stranger.key"), "--server-key",
                        os.path.join(keys, "server.pub")], capture_output=True, text=True,
                       timeout=WAIT, env=env)
    check(r.returncode == 1 and r.stdout == "", "rmactl watch with an unknown key gets nothing: "
          + r.stdout + r.stderr)

    # SIGHUP reloads the allowed directory: the stranger is let in.
    shutil.copy(os.path.join(keys, "stranger.pub"), allowed)
    d.proc.send_signal(signal.SIGHUP)
    check(wait_log(d, "SIGHUP: 2 client keys allowed"), "SIGHUP reloads the client keys")
    s = curve_socket(ctx, zmq.DEALER, server_pub, os.path.join(keys, "stranger"))
    s.connect(rep)
    got = replay_all(s)
    check(got is not None and got[1] >= last, "a key added and reloaded replays")
    s.close()
    for s in subs.values():
        s.close()
    sc.close()
    check(d.kill(signal.SIGTERM) == 0, "rmad stops cleanly")


def test_refusals(tmp):
    """Off loopback without protection: refused at --check-config and at start."""
    ports = {k: free_port() for k in ("pub", "replay", "s1")}
    conf = os.path.join(tmp, "open.conf")
    cases = [
        ({"extra_daemon": ""}, "pub = tcp://0.0.0.0:%d" % ports["pub"],
         "is not a loopback address: set curve_secret_key and curve_allowed_clients"),
        ({"scanner": "tcp:0.0.0.0:%d" % ports["s1"]}, None,
         "listens off loopback: add ,allow=CIDR[;CIDR...]"),
    ]
    for kw, pub_line, want in cases:
        write_conf(conf, tmp, ports, **kw)
        if pub_line:
            text = open(conf).read().replace("pub = tcp://127.0.0.1:%d" % ports["pub"], pub_line)
            open(conf, "w").write(text)
        for mode in ("--check-config", "--config"):
            r = subprocess.run([e2e.RMAD, mode, conf], capture_output=True, text=True, timeout=WAIT)
            check(r.returncode == 2 and want in r.stderr,
                  "rmad %s refuses: %r (exit %d)" % (mode, r.stderr, r.returncode))
    # With allow= the same scanner is fine.
    write_conf(conf, tmp, ports, scanner="tcp:0.0.0.0:%d,allow=10.0.0.0/8" % ports["s1"])
    r = subprocess.run([e2e.RMAD, "--check-config", conf], capture_output=True, text=True, timeout=WAIT)
    check(r.returncode == 0, "allow= makes an off-loopback scanner acceptable: " + r.stderr)


# ---- backup during a receipt flow ---------------------------------------------------------

def test_backup(tmp):
    ports = {k: free_port() for k in ("pub", "replay", "s1")}
    e2e.CONF = os.path.join(tmp, "rmad.conf")
    # The worker scans as fast as the daemon answers, far past a person's pace: no
    # scan budget (rate=0), as in the crash harness, so every receipt is a real one.
    write_conf(e2e.CONF, tmp, ports, scanner="tcp:127.0.0.1:%d,rate=0" % ports["s1"])
    d = Daemon(tmp, e2e.CONF)
    d.start()
    r = rmactl("rma", "import", rmas_csv(tmp, 8000, 400))
    check(r.returncode == 0, "rma import: " + r.stdout + r.stderr)

    acked = []            # receipts whose CMD-DONE was answered OK, in order
    lock = threading.Lock()
    stop = threading.Event()

    def worker():
        sc = Scanner(ports["s1"])
        n = 8000
        while not stop.is_set() and n < 8400:
            rid = receipt(sc, n)
            if rid:
                with lock:
                    acked.append(rid)
            n += 1
        sc.close()

    t = threading.Thread(target=worker)
    t.start()
    backups = 0
    deadline = time.time() + 60
    while time.time() < deadline and backups < 5:
        time.sleep(0.4)
        with lock:
            before = list(acked)
        path = os.path.join(tmp, "backup-%d.db" % backups)
        r = rmactl("backup", path)
        if not check(r.returncode == 0 and "quick_check ok" in r.stdout,
                     "rmactl backup while scanning: " + r.stdout + r.stderr):
            break
        con = sqlite3.connect(path)
        check(con.execute("PRAGMA integrity_check").fetchone()[0] == "ok", "backup passes integrity_check")
        have = {row[0] for row in con.execute("SELECT id FROM receipts WHERE state = 'completed'")}
        missing = [i for i in before if i not in have]
        check(not missing, "backup %d holds every acknowledged receipt (missing %r)" % (backups, missing))
        seqs = [row[0] for row in con.execute("SELECT seq FROM outbox ORDER BY seq")]
        check(seqs == list(range(1, len(seqs) + 1)), "backup's events are gapless")
        con.close()
        check(not [f for f in os.listdir(tmp) if ".tmp-" in f], "no temporary file left")
        backups += 1
    stop.set()
    t.join(timeout=WAIT)
    check(backups == 5 and len(acked) > 0, "5 backups during %d receipts" % len(acked))

    # Restore, as README says: stop rmad, copy the backup in place, start it.
    check(d.kill(signal.SIGTERM) == 0, "rmad stops")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(os.path.join(tmp, "rmad.db" + suffix)):
            os.remove(os.path.join(tmp, "rmad.db" + suffix))
    shutil.copy(os.path.join(tmp, "backup-4.db"), os.path.join(tmp, "rmad.db"))
    d.start()
    con = sqlite3.connect(os.path.join(tmp, "backup-4.db"))
    want = con.execute("SELECT count(*) FROM receipts WHERE state = 'completed'").fetchone()[0]
    con.close()
    r = rmactl("receipts", "--limit", "1000")
    check(r.returncode == 0 and r.stdout.count(" completed ") == want,
          "the restored database serves its %d completed receipts: %s" % (want, r.stdout[-300:]))
    check(d.kill(signal.SIGTERM) == 0, "rmad stops after the restore")
    r = rmactl("backup", "/nonexistent-dir/x.db")
    check(r.returncode == 1 and "backup:" in r.stderr, "a backup that cannot be written says so: " + r.stderr)


# ---- retention ------------------------------------------------------------------------------

def test_retention(tmp):
    ports = {k: free_port() for k in ("pub", "replay", "s1")}
    e2e.CONF = os.path.join(tmp, "rmad.conf")
    write_conf(e2e.CONF, tmp, ports)
    d = Daemon(tmp, e2e.CONF)
    d.start()                             # creates the schema
    check(d.kill(signal.SIGTERM) == 0, "rmad stops")
    db = os.path.join(tmp, "rmad.db")
    con = sqlite3.connect(db)
    con.execute("INSERT INTO receipts (id, station, rma, state, opened_at, closed_at, disposition) "
                "VALUES (100, 'dock1', 'RMA-OLD', 'completed', '2020-01-01T08:00:00.000Z', "
                "'2020-01-01T08:05:00.000Z', 'scrap')")
    con.executemany("INSERT INTO scans (at, station, scanner, raw, text, kind, accepted, receipt_id) "
                    "VALUES ('2020-01-01T08:00:00.000Z', 'dock1', 'tcp:x#1', x'41', 'A', 'rma', 1, 100)",
                    [()] * 1200)
    # And one of today, as a dock in use has: the newest scan always stays (so a scan id
    # is never used twice), and it must not be one of the old ones.
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    con.execute("INSERT INTO scans (at, station, scanner, raw, text, kind, accepted) "
                "VALUES (?, 'dock1', 'tcp:x#2', x'42', 'B', 'rma', 1)", (now,))
    start = con.execute("SELECT max(seq) FROM outbox").fetchone()[0]
    for i in range(1, 701):
        seq = start + i
        con.execute("INSERT INTO outbox (seq, topic, body, created_at) VALUES (?, 't', ?, ?)",
                    (seq, json.dumps({"seq": seq, "type": "t"}), "2020-01-01T08:00:00.000Z"))
    con.commit()
    old_last = start + 700
    # erp acknowledged up to start + 600: the 100 old events after it stay.
    con.execute("INSERT INTO subscriber_acks VALUES ('erp', ?, '2020-01-01T08:00:00.000Z')",
                (start + 600,))
    con.commit()
    con.close()
    write_conf(e2e.CONF, tmp, ports, extra_daemon="retain_days = 30\nretain_subscribers = erp\n")
    d.start()
    check(wait_log(d, "retention: deleted 1200 scans and 600 events older than 30 days"),
          "retention deletes old scans and events in batches, once logged")
    con = sqlite3.connect(db)
    check(con.execute("SELECT count(*) FROM scans WHERE at < '2021'").fetchone()[0] == 0, "old scans gone")
    check(con.execute("SELECT disposition FROM receipts WHERE id = 100").fetchone()[0] == "scrap",
          "the receipt and its decision stay")
    check(con.execute("SELECT count(*) FROM outbox WHERE seq BETWEEN ? AND ?",
                      (start + 1, start + 600)).fetchone()[0] == 0, "old acknowledged events gone")
    check(con.execute("SELECT count(*) FROM outbox WHERE seq BETWEEN ? AND ?",
                      (start + 601, start + 700)).fetchone()[0] == 100,
          "old events after erp's acknowledgement stay")
    check(con.execute("SELECT count(*) FROM outbox WHERE seq <= ?", (start,)).fetchone()[0] == start,
          "recent events stay")
    check(con.execute("SELECT max(seq) FROM outbox").fetchone()[0] > old_last, "new events stay")
    check(con.execute("PRAGMA integrity_check").fetchone()[0] == "ok", "integrity_check ok after retention")
    try:
        con.execute("DELETE FROM outbox WHERE seq = ?", (start + 650,))
        check(False, "outside retention, events are never deleted")
    except sqlite3.IntegrityError:
        pass
    con.close()
    # The daemon still numbers on from the newest event.
    sc = Scanner(ports["s1"])
    sc.ask("RMA-NONE-1")
    sc.close()
    got, last_seq = replay(zmq.Context.instance(), "tcp://127.0.0.1:%d" % ports["replay"], 0)
    seqs = [e["seq"] for e in got]
    check(seqs == list(range(1, start + 1)) + list(range(start + 601, last_seq + 1)),
          "replay sends what is kept, in order, up to the newest")
    check(d.kill(signal.SIGTERM) == 0, "rmad stops")


# ---- doctor ---------------------------------------------------------------------------------

def doctor(conf, *args, env=None):
    return subprocess.run([e2e.RMACTL, "--config", conf, "doctor"] + list(args), capture_output=True,
                          text=True, timeout=60, env=env)


def test_doctor(tmp):
    keys = os.path.join(tmp, "keys")
    allowed = os.path.join(tmp, "clients")
    os.mkdir(keys)
    os.mkdir(allowed)
    for name in ("server", "erp"):
        subprocess.run([e2e.RMACTL, "keygen", os.path.join(keys, name)], capture_output=True)
    shutil.copy(os.path.join(keys, "erp.pub"), allowed)
    ports = {k: free_port() for k in ("pub", "replay", "s1")}
    conf = os.path.join(tmp, "rmad.conf")
    e2e.CONF = conf
    curve = "curve_secret_key = keys/server.key\ncurve_allowed_clients = clients\n"
    write_conf(conf, tmp, ports, extra_daemon=curve)
    d = Daemon(tmp, conf)
    d.start()
    r = doctor(conf)
    check(r.returncode == 0 and "all checks passed" in r.stdout and "PROBLEM" not in r.stdout,
          "doctor on a healthy dock: exit 0: " + r.stdout + r.stderr)
    for word in ("config", "policies", "database", "disk", "rmad", "scanner", "keys"):
        check(re.search(r"^ok +%s " % word, r.stdout, re.M), "doctor checks %s: %s" % (word, r.stdout))

    def broken(what, out, code=1):
        check(out.returncode == code and "PROBLEM" in out.stdout and what in out.stdout,
              "doctor reports %r (exit %d): %s%s" % (what, out.returncode, out.stdout, out.stderr))

    broken("only ", doctor(conf, "--min-free-mb", "100000000000"))
    os.chmod(os.path.join(keys, "server.key"), 0o644)
    broken("is readable by others (mode 0644): chmod 600 it", doctor(conf))
    os.chmod(os.path.join(keys, "server.key"), 0o600)
    os.remove(os.path.join(allowed, "erp.pub"))
    broken("has no *.pub keys: no client can subscribe or replay", doctor(conf))
    shutil.copy(os.path.join(keys, "erp.pub"), allowed)
    check(d.kill(signal.SIGTERM) == 0, "rmad stops")
    broken("rmad is not running", doctor(conf))

    # A printer CUPS does not know (a private, empty cupsd would say the same words).
    env = dict(os.environ, CUPS_SERVER=os.path.join(tmp, "no-cupsd.sock"))
    write_conf(conf, tmp, ports, extra_daemon=curve, station_extra="printer = dock1-labels\n")
    broken("dock1-labels (station dock1): CUPS does not answer", doctor(conf, env=env))
    # A scanner that is not there.
    write_conf(conf, tmp, ports, extra_daemon=curve, scanner="serial:/dev/rmad-scanner-missing")
    broken("serial:/dev/rmad-scanner-missing: /dev/rmad-scanner-missing not present", doctor(conf))
    # Broken policies.
    pol = os.path.join(tmp, "policies")
    shutil.copytree("policies", pol)
    with open(os.path.join(pol, "v7.yaml"), "a") as f:
        f.write("\n  : [unbalanced\n")
    write_conf(conf, tmp, ports, extra_daemon=curve)
    text = open(conf).read().replace("policies = %s/policies" % os.getcwd(), "policies = " + pol)
    open(conf, "w").write(text)
    broken("v7.yaml", doctor(conf))
    # A damaged database.
    write_conf(conf, tmp, ports, extra_daemon=curve)
    db = os.path.join(tmp, "rmad.db")
    size = os.path.getsize(db)
    with open(db, "r+b") as f:
        for off in range(4096, size - 512, 4096):
            f.seek(off + 100)
            f.write(b"\x5a" * 512)
    broken("the database is damaged", doctor(conf))
    # A config that does not parse.
    with open(conf, "a") as f:
        f.write("bogus line\n")
    broken("config", doctor(conf))


def main():
    tmp = tempfile.mkdtemp(prefix="rmad-ops-e2e-")
    ctx = zmq.Context()
    os.environ["CUPS_SERVER"] = os.path.join(tmp, "no-cupsd.sock")
    try:
        for name, fn in (("access", lambda t: test_access(t, ctx)), ("refusals", test_refusals),
                         ("backup", test_backup), ("retention", test_retention),
                         ("doctor", test_doctor)):
            sub = os.path.join(tmp, name)
            os.mkdir(sub)
            print("--", name, flush=True)
            fn(sub)
    finally:
        ctx.destroy(linger=0)
    if failures:
        print("ops e2e: %d checks failed (logs in %s)" % (len(failures), tmp))
        sys.exit(1)
    shutil.rmtree(tmp, ignore_errors=True)
    print("ops e2e: all checks passed")


if __name__ == "__main__":
    main()
