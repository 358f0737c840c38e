#!/usr/bin/python3
"""End-to-end test of the USB and serial scanner drivers through the daemon.

rmad runs under umockdev with two emulated scanners, each bound to its own station:
dock1 a USB keyboard-wedge scanner (libusb; usb:0c2e:0b61, its HID reports replayed
from an ioctl file written here from the scans), dock2 a USB-serial scanner
(libserialport; serial:usb=0403:6001, its bytes from a umockdev script). Each
scanner types a whole receipt. An independent ZeroMQ client (python3-zmq) subscribes
before the daemon starts and replays the stored events afterwards: both receipts
complete, and every scan came from the driver it was typed on.

usage: scanners_e2e.py BUILD_DIR     (from the repository root; exit 0 = passed)
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import zmq

import e2e
from e2e import (RMAD, WAIT, Subscriber, check, count, dates, failures, free_port,
                 replay, rmactl)

FIX = "tests/fixtures"
USB_DEV = "/dev/bus/usb/001/005"

# HID usage ids of the US layout for the characters the scans use.
KEYS = {c: 0x04 + i for i, c in enumerate("abcdefghijklmnopqrstuvwxyz")}
KEYS.update({c: 0x1e + i for i, c in enumerate("123456789")})
KEYS.update({"0": 0x27, "-": 0x2d, "\n": 0x28})


def hid_reports(text):
    """Boot-keyboard reports typing text: each key pressed, then all keys released."""
    out = []
    for c in text:
        shift = c.isupper()
        key = KEYS[c.lower()]
        out.append(bytes([0x02 if shift else 0, 0, key, 0, 0, 0, 0, 0]))
        out.append(bytes(8))
    return out


def write_ioctl(path, scans):
    """umockdev's replay of the device: SET_PROTOCOL(boot) answered, then the reports.
    umockdev replays the file round and round, so the scanner types the scans again
    and again; the test reads the first round."""
    with open(path, "w") as f:
        f.write("@DEV %s\n" % USB_DEV)
        f.write("USBDEVFS_REAPURBNDELAY 0 2 0 0 0 8 0 0 210B000000000000\n")
        for r in hid_reports("".join(s + "\n" for s in scans)):
            f.write("USBDEVFS_REAPURBNDELAY 0 1 129 0 0 8 8 0 %s\n" % r.hex().upper())


def write_script(path, scans, first_ms):
    with open(path, "w") as f:
        for i, s in enumerate(scans):
            f.write("r %d %s^M^J\n" % (first_ms if i == 0 else 50, s))


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    tmp = tempfile.mkdtemp(prefix="rmad-scn-")
    ports = {k: free_port() for k in ("pub", "replay", "tcp")}
    pub, rep = "tcp://127.0.0.1:%d" % ports["pub"], "tcp://127.0.0.1:%d" % ports["replay"]
    daemon_part = """[daemon]
database = {tmp}/rmad.db
policies = {cwd}/policies
pub = {pub}
replay = {rep}
control = ipc://{tmp}/rmad.ctl
""".format(tmp=tmp, cwd=os.getcwd(), pub=pub, rep=rep)

    # The RMAs go in first, through a daemon with a TCP scanner only: the emulated
    # scanners type as soon as the daemon opens them.
    setup = os.path.join(tmp, "setup.conf")
    with open(setup, "w") as f:
        f.write(daemon_part + "[station dock1]\nscanner = tcp:127.0.0.1:%d\n" % ports["tcp"])
    e2e.CONF = setup
    d = dates()
    csv = os.path.join(tmp, "rmas.csv")
    with open(csv, "w") as f:
        f.write("number,issued,kind,vendor,model,family,expected_serial,purchased\n")
        f.write("RMA-0001,%s,warranty,V7,SSD-512,Solid State Drives,SN-0001,%s\n"
                % (d["recent"], d["older"]))
        f.write("RMA-0002,%s,warranty,V7,SSD-512,Solid State Drives,SN-0002,%s\n"
                % (d["recent"], d["older"]))
    setup_daemon = e2e.Daemon(tmp, setup)
    setup_daemon.start()
    check(rmactl("rma", "import", csv).returncode == 0, "RMAs imported")
    check(setup_daemon.kill(signal.SIGTERM) == 0, "setup daemon stopped")

    conf = os.path.join(tmp, "rmad.conf")
    with open(conf, "w") as f:
        f.write(daemon_part + """
[station dock1]
scanner = usb:0c2e:0b61,detach=no

[station dock2]
scanner = serial:usb=0403:6001,baud=9600
""")
    e2e.CONF = conf
    usb_scans = ["RMA-0001", "SN-0001", "PKG-ORIGINAL", "FAULT-CONFIRMED", "CMD-DONE"]
    serial_scans = ["RMA-0002", "SN-0002", "PKG-ORIGINAL", "FAULT-CONFIRMED", "CMD-DONE"]
    ioctl = os.path.join(tmp, "usb.ioctl")
    script = os.path.join(tmp, "serial.script")
    write_ioctl(ioctl, usb_scans)
    write_script(script, serial_scans, 1500)

    ctx = zmq.Context()
    sub = Subscriber(ctx, pub)  # connects once rmad binds
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0").lstrip(":")
    shim = os.path.abspath(os.path.join(build, "tiocm-shim.so"))
    log = os.path.join(tmp, "rmad.log")
    proc = subprocess.Popen(
        ["umockdev-run",
         "-d", os.path.join(FIX, "usb", "hub.umockdev"),
         "-d", os.path.join(FIX, "usb", "kbd-scanner.umockdev"),
         "-d", os.path.join(FIX, "serial", "serial-scanner.umockdev"),
         "-i", "%s=%s" % (USB_DEV, ioctl),
         "-s", "/dev/ttyUSB0=%s" % script,
         "--", "env", "LD_PRELOAD=%s libumockdev-preload.so.0" % shim,
         RMAD, "--config", conf],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(log, "wb"))

    done = lambda ev: count(ev, "inspection.completed") >= 2
    sub.pump(done)
    events, last = [], 0
    deadline = time.time() + WAIT
    while time.time() < deadline:
        events, last = replay(ctx, rep, 1)
        if done(events):
            break
        time.sleep(0.2)
    completed = {}
    for e in events:
        if e["type"] == "inspection.completed":
            completed.setdefault(e["station"], e)
    check(count(events, "inspection.completed", station="dock1") == 1 and
          count(events, "inspection.completed", station="dock2") == 1,
          "one receipt per station")
    check(set(completed) == {"dock1", "dock2"}, "both stations completed a receipt: %s"
          % sorted(completed))
    for st, rma, serial in (("dock1", "RMA-0001", "SN-0001"), ("dock2", "RMA-0002", "SN-0002")):
        e = completed.get(st, {})
        check(e.get("rma") == rma and e.get("serial") == serial and e.get("serial_match") is True,
              "%s: %s with serial %s: %s" % (st, rma, serial, e))
        check(e.get("disposition") == "warranty_exchange", "%s: disposition %s"
              % (st, e.get("disposition")))
    scans = [e for e in events if e["type"] in ("scan.accepted", "scan.rejected")]
    for st, prefix, want in (("dock1", "usb:0c2e:0b61@1-1", usb_scans),
                             ("dock2", "serial:/dev/ttyUSB0", serial_scans)):
        first = [e for e in scans if e["station"] == st][:len(want)]
        check([e["text"] for e in first] == want and
              all(e["type"] == "scan.accepted" for e in first),
              "%s read and accepted %s: %s" % (st, want, [(e["text"], e.get("reason"))
                                                          for e in first]))
        check(all(e["scanner"] == prefix for e in scans if e["station"] == st),
              "%s's scans came from %s" % (st, prefix))
    # The replayed USB recording starts over: the same RMA again is refused, received.
    again = [e for e in events if e["type"] == "receipt.refused" and e["station"] == "dock1"]
    check(all(e.get("reason") == "RMA already received" for e in again),
          "a second round of the same scans changes nothing")
    connected = [e for e in events if e["type"] == "scanner.connected"]
    check(any(e["station"] == "dock1" for e in connected) and
          any(e["station"] == "dock2" for e in connected), "scanner.connected for both")
    check([e["seq"] for e in events] == list(range(1, last + 1)), "replay gapless")
    check(count(sub.events, "inspection.completed", station="dock2") == 1,
          "the live subscriber saw the serial station complete")
    live = [e["seq"] for e in sub.events]
    check(live == sorted(live) and all(e in events for e in sub.events),
          "live events are the stored ones, in order")

    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(timeout=WAIT)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = proc.wait()
    check(rc == 0, "rmad stopped with SIGTERM (rc %s)" % rc)
    sub.sock.close()
    ctx.term()
    if failures:
        print(open(log, errors="replace").read()[-3000:])
        print("%d checks failed" % len(failures))
        return 1
    shutil.rmtree(tmp, ignore_errors=True)
    print("scanners e2e: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
