#!/usr/bin/python3
"""End-to-end test of keyboard-wedge layouts and Alt mode through the daemon (issue 16).

rmad runs under umockdev with an emulated keyboard-wedge scanner (usb:0c2e:0b61 on
port 1-1), once per recording: fr, gb, ch(de), es (dead keys) and Alt mode (layout
fr, alt=yes). (One rmad with five replayed devices would be quicker, but umockdev
0.17's ioctl replay asserts when several replayed devices are read at once.)
umockdev replays the recordings checked in under tests/fixtures/usb/wedge/
(written by gen_wedge.py from the layouts' key charts): each types a whole receipt,
an RMA, a GS1 string with GS, a serial with the layout's punctuation and the
checklist. An independent ZeroMQ client replays the stored events: every station
completed its receipt with the serial typed, and every scan is the text typed.

usage: wedge_e2e.py BUILD_DIR     (from the repository root; exit 0 = passed)
"""
import csv
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import zmq

import e2e
from e2e import RMAD, WAIT, check, count, dates, failures, free_port, replay, rmactl

sys.path.insert(0, os.path.join("tests", "fixtures", "usb", "wedge"))
import gen_wedge  # noqa: E402  (the recordings' scans, the one list)

FIX = os.path.join("tests", "fixtures", "usb")


def recording(tmp, name, devnode):
    """The checked-in recording, addressed to this device node."""
    text = open(os.path.join(FIX, "wedge", name + ".ioctl")).read()
    path = os.path.join(tmp, name + ".ioctl")
    with open(path, "w") as f:
        f.write(text.replace("@DEV /dev/bus/usb/001/005", "@DEV " + devnode, 1))
    return path


def run(build, name):
    """One rmad with the scanner of recording `name` at its station: the receipt."""
    layout, alt, _, scans = gen_wedge.RECORDINGS[name]
    tmp = tempfile.mkdtemp(prefix="rmad-wedge-")
    ports = {k: free_port() for k in ("pub", "replay", "tcp")}
    pub, rep = "tcp://127.0.0.1:%d" % ports["pub"], "tcp://127.0.0.1:%d" % ports["replay"]
    daemon_part = """[daemon]
database = {tmp}/rmad.db
policies = {cwd}/policies
pub = {pub}
replay = {rep}
control = ipc://{tmp}/rmad.ctl
""".format(tmp=tmp, cwd=os.getcwd(), pub=pub, rep=rep)

    # The RMA goes in first, through a daemon with a TCP scanner only: the emulated
    # scanner types as soon as the daemon opens it.
    setup = os.path.join(tmp, "setup.conf")
    with open(setup, "w") as f:
        f.write(daemon_part + "[station dock1]\nscanner = tcp:127.0.0.1:%d\n" % ports["tcp"])
    e2e.CONF = setup
    d = dates()
    rmas = os.path.join(tmp, "rmas.csv")
    with open(rmas, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["number", "issued", "kind", "vendor", "model", "family",
                    "expected_serial", "purchased"])
        w.writerow([scans[0], d["recent"], "warranty", "V7", "SSD-512", "Solid State Drives",
                    scans[2], d["older"]])
    setup_daemon = e2e.Daemon(tmp, setup)
    setup_daemon.start()
    r = rmactl("rma", "import", rmas)
    check(r.returncode == 0, "%s: RMA imported: %s %s" % (name, r.stdout, r.stderr))
    check(setup_daemon.kill(signal.SIGTERM) == 0, "setup daemon stopped")

    conf = os.path.join(tmp, "rmad.conf")
    spec = "usb:0c2e:0b61,layout=%s%s,detach=no" % (layout, ",alt=yes" if alt else "")
    with open(conf, "w") as f:
        f.write(daemon_part + "\n[station dock-%s]\nscanner = %s\n" % (name, spec))
    e2e.CONF = conf
    node = "/dev/bus/usb/001/005"
    ctx = zmq.Context()
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0").lstrip(":")
    log = os.path.join(tmp, "rmad.log")
    proc = subprocess.Popen(
        ["umockdev-run", "-d", os.path.join(FIX, "hub.umockdev"),
         "-d", os.path.join(FIX, "kbd-scanner.umockdev"),
         "-i", "%s=%s" % (node, recording(tmp, name, node)), "--", RMAD, "--config", conf],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(log, "wb"))

    st = "dock-" + name
    events, last = [], 0
    deadline = time.time() + WAIT
    while time.time() < deadline:
        try:
            events, last = replay(ctx, rep, 1)
        except RuntimeError:  # not bound yet
            events = []
        if count(events, "inspection.completed") >= 1:
            break
        time.sleep(0.3)
    completed = [e for e in events if e["type"] == "inspection.completed"]
    check(len(completed) >= 1, "%s: a receipt completed" % st)
    e = completed[0] if completed else {}
    check(e.get("station") == st and e.get("rma") == scans[0] and e.get("serial") == scans[2]
          and e.get("serial_match") is True and e.get("disposition") == "warranty_exchange",
          "%s: %s with serial %r: %s" % (st, scans[0], scans[2], e))
    got = [x for x in events if x["type"] in ("scan.accepted", "scan.rejected")][:len(scans)]
    check([x["text"] for x in got] == scans and all(x["type"] == "scan.accepted" for x in got),
          "%s read and accepted %r: %r" % (st, scans, [(x["text"], x.get("reason")) for x in got]))
    check([x["seq"] for x in events] == list(range(1, last + 1)), "%s: replay gapless" % st)

    # rmactl scanners shows the wedge's layout.
    r = rmactl("scanners")
    want = "layout %s%s" % (layout, ", Alt mode" if alt else "")
    check(want in r.stdout, "%s: rmactl scanners shows %r: %s" % (st, want, r.stdout))

    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(timeout=WAIT)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = proc.wait()
    check(rc == 0, "%s: rmad stopped with SIGTERM (rc %s)" % (st, rc))
    ctx.term()
    if failures:
        print(open(log, errors="replace").read()[-3000:])
    else:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    for name in gen_wedge.RECORDINGS:
        run(build, name)
    if failures:
        print("%d checks failed" % len(failures))
        return 1
    print("wedge e2e: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
