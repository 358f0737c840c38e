#!/usr/bin/python3
"""Benchmark: rmad's scan throughput and memory, measured, never asserted.

Starts rmad on a temp config (one TCP station, loopback only), imports N RMAs and
pushes N complete receipts (6 scans each) through the scanner port, then waits for
the last inspection.completed on PUB. Prints scans/s, receipts/s, and the daemon's
peak RSS (VmHWM). Bounded: N receipts (default 2000), a 300 s ceiling.

usage: daemon_bench.py BUILD_DIR [N]
"""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

import zmq

build = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 2000


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


tmp = tempfile.mkdtemp(prefix="rmad-bench-")
pub, rep, sp = free_port(), free_port(), free_port()
conf = os.path.join(tmp, "rmad.conf")
with open(conf, "w") as f:
    f.write("[daemon]\ndatabase = %s/rmad.db\npolicies = %s/policies\npub = tcp://127.0.0.1:%d\n"
            "replay = tcp://127.0.0.1:%d\ncontrol = ipc://%s/rmad.ctl\nlog_level = warning\n"
            "[station bench]\nscanner = tcp:127.0.0.1:%d,rate=0\n" % (tmp, os.getcwd(), pub, rep, tmp, sp))
today = time.strftime("%Y-%m-%d")
with open(os.path.join(tmp, "rmas.csv"), "w") as f:
    f.write("number,issued,kind,vendor,model,family,expected_serial,purchased\n")
    for i in range(n):
        f.write("RMA-B%06d,%s,warranty,V7,SSD-512,Solid State Drives,SN%06d,2025-06-01\n" % (i, today, i))

d = subprocess.Popen([os.path.join(build, "rmad"), "--config", conf], stderr=open(os.path.join(tmp, "log"), "w"))
rmactl = [os.path.join(build, "rmactl"), "--config", conf]
for _ in range(100):
    if subprocess.run(rmactl + ["status"], capture_output=True).returncode == 0:
        break
    time.sleep(0.1)
t0 = time.time()
subprocess.run(rmactl + ["rma", "import", os.path.join(tmp, "rmas.csv")], check=True, capture_output=True)
t_import = time.time() - t0

ctx = zmq.Context()
sub = ctx.socket(zmq.SUB)
sub.setsockopt(zmq.SUBSCRIBE, b"inspection.completed")
sub.connect("tcp://127.0.0.1:%d" % pub)
time.sleep(0.3)
sock = socket.create_connection(("127.0.0.1", sp))
payload = "".join("RMA-B%06d\nSN%06d\nPKG-ORIGINAL\nFAULT-CONFIRMED\nFIND-COSMETIC_DAMAGE\nCMD-DONE\n" % (i, i)
                  for i in range(n)).encode()
t0 = time.time()
sock.sendall(payload)
done, deadline = 0, time.time() + 300
while done < n and time.time() < deadline:
    if sub.poll(1000):
        sub.recv_multipart()
        done += 1
elapsed = time.time() - t0
hwm = "?"
with open("/proc/%d/status" % d.pid) as f:
    for line in f:
        if line.startswith("VmHWM"):
            hwm = line.split(":", 1)[1].strip()
d.send_signal(signal.SIGTERM)
d.wait(timeout=30)
sock.close()
ctx.destroy(linger=0)
print("rma import: %d RMAs in %.2f s" % (n, t_import))
print("receipts: %d of %d completed in %.2f s: %.0f receipts/s, %.0f scans/s (each scan its own "
      "durable transaction)" % (done, n, elapsed, done / elapsed, done * 6 / elapsed))
print("rmad peak RSS (VmHWM): %s" % hwm)
