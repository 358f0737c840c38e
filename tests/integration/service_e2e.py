"""rmad under a service manager, with the protocol's other end played here:

- sd_notify: the test binds NOTIFY_SOCKET (a datagram socket) and sets WATCHDOG_USEC;
  rmad must send READY=1 exactly once, only when its control socket and scanner port
  already answer, with STATUS= naming stations and receipts; WATCHDOG=1 at half the
  interval (never a gap of a whole interval); a new STATUS= when a receipt is
  decided; STOPPING=1 at SIGTERM. With WATCHDOG_PID naming another process, no
  WATCHDOG=1 at all.
- rmactl status of a running daemon: "started <time>" and an open receipt "since
  <time>", never "since ?" (the daemon's field names are the ones rmactl reads).
- local_policies: a file there replaces the shipped policy of the same name.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import e2e  # noqa: E402
from e2e import RMAD, WAIT, Scanner, check, dates, failures, free_port, rmactl, RMAS_CSV  # noqa: E402

WATCHDOG_S = 2.0   # WATCHDOG_USEC: rmad pings every 1 s


def write_conf(tmp, extra=""):
    ports = {k: free_port() for k in ("pub", "replay", "s1")}
    conf = os.path.join(tmp, "rmad.conf")
    with open(conf, "w") as f:
        f.write("""[daemon]
database = {tmp}/rmad.db
policies = {tmp}/policies
local_policies = {tmp}/local
pub = tcp://127.0.0.1:{pub}
replay = tcp://127.0.0.1:{replay}
control = ipc://{tmp}/rmad.ctl
{extra}
[station dock1]
scanner = tcp:127.0.0.1:{s1}

[station dock2]
scanner = tcp:127.0.0.1:{s2}
""".format(tmp=tmp, extra=extra, s2=free_port(), **ports))
    return conf, ports


class Manager:
    """The service manager's end of NOTIFY_SOCKET: every datagram, with its time."""

    def __init__(self, tmp):
        self.path = os.path.join(tmp, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.msgs = []

    def pump(self, until, timeout=WAIT):
        deadline = time.time() + timeout
        while not until() and time.time() < deadline:
            self.sock.settimeout(max(0.01, min(0.2, deadline - time.time())))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            fields = dict(l.split("=", 1) for l in data.decode().split("\n") if "=" in l)
            self.msgs.append((time.monotonic(), fields))
        return until()

    def count(self, key):
        return sum(1 for _, m in self.msgs if key in m)


def start(conf, tmp, env_extra):
    env = dict(os.environ, **env_extra)
    log = open(os.path.join(tmp, "rmad.log"), "ab")
    return subprocess.Popen([RMAD, "--config", conf], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=log, env=env)


def test_notify(tmp):
    conf, ports = write_conf(tmp)
    e2e.CONF = conf
    mgr = Manager(tmp)
    proc = start(conf, tmp, {"NOTIFY_SOCKET": mgr.path,
                             "WATCHDOG_USEC": str(int(WATCHDOG_S * 1e6))})
    ready = mgr.pump(lambda: mgr.count("READY"))
    if not check(ready, "READY=1 received: " + open(os.path.join(tmp, "rmad.log")).read()):
        proc.kill()
        return
    # Once READY=1 is out, the sockets answer: nothing is announced before it is up.
    r = rmactl("status")
    check(r.returncode == 0, "rmactl status answers right after READY=1: " + r.stderr)
    try:
        Scanner(ports["s1"]).close()
        check(True, "")
    except OSError as e:
        check(False, "the scanner port accepts right after READY=1: %s" % e)
    first = [m for _, m in mgr.msgs if "READY" in m][0]
    check(first.get("STATUS", "").startswith("2 stations, 2 of 2 scanners up, 0 receipts open"),
          "STATUS= with READY=1 names stations and receipts: %r" % first)

    # Watchdog pings for a few intervals.
    t0 = time.monotonic()
    mgr.pump(lambda: time.monotonic() - t0 > 3 * WATCHDOG_S, timeout=3 * WATCHDOG_S + 1)
    pings = [t for t, m in mgr.msgs if "WATCHDOG" in m]
    check(len(pings) >= 3, "WATCHDOG=1 every half interval: %d pings in %.0f s"
          % (len(pings), 3 * WATCHDOG_S))
    gaps = [b - a for a, b in zip(pings, pings[1:])]
    check(gaps and max(gaps) < WATCHDOG_S, "no gap of a whole WatchdogSec between pings: %s"
          % ["%.2f" % g for g in gaps])
    check(gaps and min(gaps) > WATCHDOG_S / 4, "pings are paced, not flooded: %s"
          % ["%.2f" % g for g in gaps])

    # A decided receipt shows in the next STATUS=.
    with open(os.path.join(tmp, "rmas.csv"), "w") as f:
        f.write(RMAS_CSV.format(**dates()))
    r = rmactl("rma", "import", os.path.join(tmp, "rmas.csv"))
    check(r.returncode == 0, "rma import: " + r.stderr)
    sc = Scanner(ports["s1"])
    check(sc.ask("RMA-0001").startswith("OK"), "RMA scanned")
    check(sc.ask("SN-0001").startswith("OK"), "serial scanned")

    # rmactl status shows when the receipt was opened and when rmad started.
    r = rmactl("status")
    check("since ?" not in r.stdout and "since 20" in r.stdout,
          "rmactl status: the open receipt's time: " + r.stdout)
    check(", started 20" in r.stdout, "rmactl status: the start time: " + r.stdout)
    j = json.loads(rmactl("status", "--json").stdout or "{}")
    check(j.get("started_at", "").startswith("20") and
          j["stations"][0]["receipt"]["opened_at"].startswith("20"),
          "status JSON: started_at and receipt.opened_at (docs/control.md)")
    mgr.pump(lambda: any("1 receipt open" in m.get("STATUS", "") for _, m in mgr.msgs))
    check(any("1 receipt open" in m.get("STATUS", "") for _, m in mgr.msgs),
          "STATUS= follows an opened receipt")
    for line in ("FAULT-CONFIRMED", "CMD-DONE"):
        sc.ask(line)
    mgr.pump(lambda: any("1 decided" in m.get("STATUS", "") for _, m in mgr.msgs))
    check(any("0 receipts open, 1 decided since start" in m.get("STATUS", "")
              for _, m in mgr.msgs), "STATUS= counts the decided receipt: %s"
          % [m.get("STATUS") for _, m in mgr.msgs if "STATUS" in m])
    sc.close()

    proc.send_signal(signal.SIGTERM)
    check(proc.wait(timeout=WAIT) == 0, "rmad stops cleanly at SIGTERM")
    mgr.pump(lambda: mgr.count("STOPPING"), timeout=2)
    check(mgr.count("STOPPING") == 1, "STOPPING=1 at SIGTERM")
    check(mgr.count("READY") == 1, "READY=1 exactly once: %d" % mgr.count("READY"))
    mgr.sock.close()

    # Another process's watchdog (WATCHDOG_PID) is not rmad's: it stays quiet.
    os.unlink(mgr.path)
    mgr = Manager(tmp)
    proc = start(conf, tmp, {"NOTIFY_SOCKET": mgr.path, "WATCHDOG_USEC": "400000",
                             "WATCHDOG_PID": "1"})
    check(mgr.pump(lambda: mgr.count("READY")), "READY=1 with WATCHDOG_PID of another process")
    mgr.pump(lambda: False, timeout=1.5)
    check(mgr.count("WATCHDOG") == 0, "no WATCHDOG=1 for another process's watchdog")
    proc.send_signal(signal.SIGTERM)
    check(proc.wait(timeout=WAIT) == 0, "stops cleanly")
    mgr.sock.close()


def test_local_policies(tmp):
    """A local file replaces the shipped one of the same name; a broken one is named."""
    conf, ports = write_conf(tmp)
    local = os.path.join(tmp, "local")
    text = open(os.path.join(tmp, "policies", "v7.yaml")).read()
    r = subprocess.run([RMAD, "--check-config", conf], capture_output=True, text=True)
    check(r.returncode == 0, "check-config with an empty local directory: " + r.stderr)
    shutil.rmtree(local)
    r = subprocess.run([RMAD, "--check-config", conf], capture_output=True, text=True)
    check(r.returncode == 0, "check-config without the local directory: " + r.stderr)
    os.makedirs(local)
    with open(os.path.join(local, "v7.yaml"), "w") as f:
        f.write(text + "\n  broken: [\n")
    r = subprocess.run([RMAD, "--check-config", conf], capture_output=True, text=True)
    check(r.returncode == 2 and os.path.join(local, "v7.yaml") in r.stderr,
          "a broken local override is reported with its path: " + r.stderr)
    # A local v7.yaml of another vendor name: the shipped V7 is gone, the new one in.
    with open(os.path.join(local, "v7.yaml"), "w") as f:
        f.write(text.replace("vendor: V7", "vendor: V7 Local", 1))
    r = subprocess.run([RMAD, "--check-config", conf], capture_output=True, text=True)
    check(r.returncode == 0, "a local override replaces the shipped file: " + r.stderr)
    e2e.CONF = conf
    d = e2e.Daemon(tmp, conf)
    d.start()
    with open(os.path.join(tmp, "rmas2.csv"), "w") as f:
        f.write("number,issued,kind,vendor,model,family,expected_serial,purchased\n"
                "RMA-8001,{recent},warranty,V7 Local,SSD-512,Solid State Drives,SN-81,{older}\n"
                "RMA-8002,{recent},warranty,V7,SSD-512,Solid State Drives,SN-82,{older}\n"
                .format(**dates()))
    rmactl("rma", "import", os.path.join(tmp, "rmas2.csv"))
    sc = Scanner(ports["s1"])
    # Completed with only the serial: decided by the local policy (its fault question
    # still open refuses CMD-DONE), while V7, whose file was replaced, has none.
    for rma, serial in (("RMA-8001", "SN-81"), ("RMA-8002", "SN-82")):
        check(sc.ask(rma).startswith("OK"), rma + " opens")
        check(sc.ask(serial).startswith("OK"), serial + " recorded")
        a = sc.ask("CMD-DONE")
        if rma == "RMA-8001":
            check(a.startswith("REJECT not finished: the fault test"),
                  "the local policy (vendor V7 Local) decides RMA-8001: " + a)
            sc.ask("FAULT-CONFIRMED")
            a = sc.ask("CMD-DONE")
            check(a.startswith("OK receipt") and "completed" in a, "RMA-8001 completed: " + a)
        else:
            # With the shipped V7 file CMD-DONE would ask for the fault test first.
            check(a.startswith("OK receipt") and "completed: quarantine" in a,
                  "the shipped V7 policy is replaced: RMA-8002 is held (no policy): " + a)
    sc.close()
    check(d.kill(signal.SIGTERM) == 0, "stops cleanly")


def main():
    tmp = tempfile.mkdtemp(prefix="rmad-service-")
    shutil.copytree("policies", os.path.join(tmp, "policies"))
    os.makedirs(os.path.join(tmp, "local"))
    os.environ["CUPS_SERVER"] = os.path.join(tmp, "no-cupsd.sock")
    test_notify(tmp)
    tmp2 = tempfile.mkdtemp(prefix="rmad-service-")
    shutil.copytree("policies", os.path.join(tmp2, "policies"))
    os.makedirs(os.path.join(tmp2, "local"))
    test_local_policies(tmp2)
    if failures:
        print("service e2e: %d failures" % len(failures))
        sys.exit(1)
    shutil.rmtree(tmp)
    shutil.rmtree(tmp2)
    print("service e2e: all checks passed")


if __name__ == "__main__":
    main()
