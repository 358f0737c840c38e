"""Shared pieces of the end-to-end tests (tests/integration/*_e2e.py): the daemon
under test, rmactl, TCP scanners, an independent ZeroMQ subscriber (Debian's
python3-zmq) and replay client, and bounded waits. Nothing here asserts on time.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import time

import zmq

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
RMAD = os.path.join(BUILD, "rmad")
RMACTL = os.path.join(BUILD, "rmactl")
WAIT = 20.0  # seconds: generous, shared machines are slow
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)
    return cond


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


RMAS_CSV = """number,issued,kind,vendor,model,family,expected_serial,purchased,shipped,invoiced
RMA-0001,{recent},warranty,V7,SSD-512,Solid State Drives,SN-0001,{older},,
RMA-0002,{recent},credit,EverFocus,EZN268,IP Cameras,EF-2222,{month},{month},
RMA-0003,{recent},warranty,QCT,D52B-1U,,QCT-3333,,,{older}
RMA-0004,{recent},warranty,V7,MON-27,Monitors,SN-0004,{older},,
RMA-0005,{recent},warranty,V7,MON-27,Monitors,SN-0005,{older},,
RMA-0006,{recent},warranty,V7,MON-27,Monitors,SN-0006,{older},,
RMA-0007,{stale},warranty,EverFocus,EPN4208,Monitors,EF-7777,{older},{older},
"""


def dates():
    t = time.time()
    fmt = lambda days: time.strftime("%Y-%m-%d", time.localtime(t - days * 86400))
    return {"recent": fmt(3), "month": fmt(20), "older": fmt(300), "stale": fmt(60)}


class Daemon:
    def __init__(self, tmp, conf):
        self.tmp, self.conf, self.proc = tmp, conf, None
        self.log = os.path.join(tmp, "rmad.log")

    def start(self):
        self.proc = subprocess.Popen([RMAD, "--config", self.conf], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=open(self.log, "ab"))
        deadline = time.time() + WAIT
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("rmad exited at start: " + open(self.log).read())
            r = rmactl("status")
            if r.returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError("rmad did not answer rmactl status")

    def kill(self, sig):
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=WAIT)


CONF = None  # the config rmactl uses: set by the test (e2e.CONF = path)


def rmactl(*args, input=None):
    return subprocess.run([RMACTL, "--config", CONF] + list(args), input=input,
                          capture_output=True, text=True, timeout=WAIT)


class Scanner:
    """One TCP scanner: a connection that types lines."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode() + b"\r\n")

    def reply(self):
        """The next reply line rmad sent (docs/station.md, "Replies"), without its LF."""
        if not hasattr(self, "buf"):
            self.buf = b""
        while b"\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise RuntimeError("connection closed before a reply")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()

    def ask(self, line):
        """Scan one line and return rmad's answer to it."""
        self.send(line)
        return self.reply()

    def close(self):
        self.sock.close()


class Subscriber:
    def __init__(self, ctx, pub):
        self.sock = ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.SUBSCRIBE, b"")
        self.sock.connect(pub)
        self.events = []
        self.heartbeats = []

    def pump(self, until, timeout=WAIT):
        """Receive until until(events) holds or the timeout passes."""
        deadline = time.time() + timeout
        while not until(self.events) and time.time() < deadline:
            if self.sock.poll(100):
                topic, body = self.sock.recv_multipart()
                ev = json.loads(body)
                check(ev["type"] == topic.decode(), "topic frame equals type field")
                if topic == b"bus.heartbeat":  # not an event: {"last_seq": N}
                    self.heartbeats.append(ev)
                else:
                    self.events.append(ev)
        return until(self.events)


def replay(ctx, ep, start):
    d = ctx.socket(zmq.DEALER)
    d.setsockopt(zmq.LINGER, 0)
    d.connect(ep)
    d.send(json.dumps({"replay_from": start}).encode())
    out = []
    deadline = time.time() + WAIT
    while time.time() < deadline:
        if not d.poll(500):
            continue
        frames = d.recv_multipart()
        topic, body = frames[-2], frames[-1]
        if topic == b"replay.end":
            d.close()
            return out, json.loads(body)["last_seq"]
        out.append(json.loads(body))
    d.close()
    raise RuntimeError("replay did not end")


def wait_log(d, text):
    deadline = time.time() + WAIT
    while time.time() < deadline:
        if text in open(d.log).read():
            return True
        time.sleep(0.1)
    return check(False, "log shows: " + text)


def finish(name, d, tmp=None):
    """A script's end: on failure the daemon log's tail and 1; else tmp removed and 0."""
    if failures:
        print("daemon log:\n" + open(d.log).read()[-4000:])
        print("%d checks failed" % len(failures))
        return 1
    if tmp:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%s e2e: all checks passed" % name)
    return 0


def count(events, topic, **fields):
    return sum(1 for e in events if e["type"] == topic and all(e.get(k) == v for k, v in fields.items()))


def receipt_flow(sc, rma, serial, extra=(), done="CMD-DONE"):
    sc.send(rma)
    sc.send(serial)
    for x in extra:
        sc.send(x)
    sc.send(done)


# The private cupsd of the printing tests (tests/cupsd/cupsd-harness).
HARNESS = os.path.abspath("tests/cupsd/cupsd-harness")


def harness(*args):
    r = subprocess.run([HARNESS] + list(args), capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError("cupsd-harness %s: %s" % (args[0], r.stderr))


def cups(root, *args):
    """A CUPS tool (lp, cupsdisable, ...) on the private cupsd at root."""
    env = dict(os.environ, CUPS_SERVER=os.path.join(root, "sock"))
    return subprocess.run(list(args), env=env, capture_output=True, text=True, timeout=WAIT)

