#!/usr/bin/python3
"""End-to-end test of disposition labels: rmad prints through a real private cupsd.

A private cupsd (tests/cupsd/cupsd-harness) has two raw queues whose capture backend
writes every job's bytes to a file: `zebra` (station dock1, ZPL) and `office` (station
dock2, PDF). rmad runs with CUPS_SERVER pointing at it; scans come over TCP; an
independent ZeroMQ client (python3-zmq) watches the events. Checked:

- a completed receipt prints one ZPL job whose bytes are exactly the label
  `rmactl label` renders, with one ^XA...^XZ block; label.printed carries the job id;
- a refused RMA prints a refusal label; the PDF station prints a PDF whose Code 128
  decodes (zbarimg) to the receipt id;
- a serial carrying ZPL commands shows up literally and cannot inject commands;
- cupsdisable: labels stay queued, label.failed is published, a daemon restart in
  between changes nothing, and cupsenable prints each label exactly once;
- a job CUPS already has when rmad is killed is followed after the restart, never
  submitted twice;
- CMD-REPRINT and rmactl reprint print again; an operator's cancel is final.

usage: labels_e2e.py BUILD_DIR     (from the repository root; exit 0 = passed)
"""
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import zmq

import e2e
from e2e import (WAIT, Daemon, Scanner, Subscriber, check, count, dates, failures,
                 free_port, replay, rmactl)

from e2e import cups, harness  # noqa: E402




def jobs_in(capdir):
    """{cups job id: bytes} of every finished job the capture backend wrote."""
    out = {}
    for path in glob.glob(os.path.join(capdir, "job-*.prn")):
        out[int(re.search(r"job-(\d+)\.prn$", path).group(1))] = open(path, "rb").read()
    return out


def wait_for(cond, what):
    deadline = time.time() + WAIT
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return check(False, what)


def unescape_zpl(field):
    """A ^FH field's text: _XX is the byte 0xXX (the escape labels/zpl.c uses)."""
    return re.sub(rb"_([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), field)


def zpl_texts(zpl):
    return [unescape_zpl(m) for m in re.findall(rb"\^FD(.*?)\^FS", zpl, re.S)]


def printed(sub, receipt):
    return [e for e in sub.events if e["type"] == "label.printed" and e.get("receipt") == receipt]


def flow(sc, *scans):
    for s in scans:
        sc.send(s)


def main():
    tmp = tempfile.mkdtemp(prefix="rmad-lbl-")
    os.chmod(tmp, 0o755)  # cupsd runs backends as lp: it must reach the capture dirs
    root = os.path.join(tmp, "cups")
    harness("start", root, "--owner", str(os.getpid()))
    try:
        run(tmp, root)
    finally:
        harness("stop", root)
    if failures:
        print("%d checks failed" % len(failures))
        return 1
    if os.environ.get("RMAD_KEEP_TMP"): print("kept", tmp)
    else: shutil.rmtree(tmp, ignore_errors=True)
    print("labels e2e: all checks passed")
    return 0


def run(tmp, root):
    zebra, office = os.path.join(root, "capture", "zebra"), os.path.join(root, "capture", "office")
    harness("add-queue", root, "zebra")
    harness("add-queue", root, "office")
    os.environ["CUPS_SERVER"] = os.path.join(root, "sock")  # rmad and rmactl inherit it

    ports = {k: free_port() for k in ("pub", "replay", "s1", "s2")}
    pub, rep = "tcp://127.0.0.1:%d" % ports["pub"], "tcp://127.0.0.1:%d" % ports["replay"]
    conf = e2e.CONF = os.path.join(tmp, "rmad.conf")
    with open(conf, "w") as f:
        f.write("""[daemon]
database = {tmp}/rmad.db
policies = {cwd}/policies
pub = {pub}
replay = {rep}
control = ipc://{tmp}/rmad.ctl
print_retry_ms = 200
print_retry_max_ms = 800

[station dock1]
scanner = tcp:127.0.0.1:{s1}
printer = zebra
label_format = zpl

[station dock2]
scanner = tcp:127.0.0.1:{s2}
printer = office
label_format = pdf
""".format(tmp=tmp, cwd=os.getcwd(), pub=pub, rep=rep, s1=ports["s1"], s2=ports["s2"]))
    d = dates()
    csv = os.path.join(tmp, "rmas.csv")
    with open(csv, "w") as f:
        f.write("number,issued,kind,vendor,model,family,expected_serial,purchased\n")
        for n in range(1, 10):
            f.write("RMA-000%d,%s,warranty,V7,SSD-512,Solid State Drives,SN-000%d,%s\n"
                    % (n, d["recent"], n, d["older"]))
    daemon = Daemon(tmp, conf)
    daemon.start()
    check(rmactl("rma", "import", csv).returncode == 0, "RMAs imported")
    ctx = zmq.Context()
    sub = Subscriber(ctx, pub)
    time.sleep(0.3)  # the SUB connects; anything missed is checked through replay below
    s1, s2 = Scanner(ports["s1"]), Scanner(ports["s2"])

    # A completed receipt: one ZPL job, the bytes rmactl label renders.
    flow(s1, "RMA-0001", "SN-0001", "PKG-ORIGINAL", "FAULT-CONFIRMED", "CMD-DONE")
    sub.pump(lambda ev: count(ev, "label.printed", printer="zebra") >= 1)
    done = [e for e in sub.events if e["type"] == "inspection.completed"]
    check(len(done) == 1, "inspection.completed")
    r1 = done[0]["receipt"] if done else -1
    ev = printed(sub, r1)
    if check(len(ev) == 1, "label.printed for receipt %d" % r1):
        job = ev[0]["job"]
        check(ev[0]["printer"] == "zebra" and ev[0]["why"] == "disposition", "label.printed fields")
        wait_for(lambda: job in jobs_in(zebra), "capture file of CUPS job %d" % job)
        zpl = jobs_in(zebra).get(job, b"")
        check(zpl.count(b"^XA") == 1 and zpl.count(b"^XZ") == 1, "one ^XA...^XZ block")
        check(zpl.lstrip().startswith(b"^XA") and zpl.rstrip().endswith(b"^XZ"), "ZPL framing")
        check(b"^BC" in zpl and b"^BX" in zpl, "Code 128 and DataMatrix in the ZPL")
        texts = zpl_texts(zpl)
        check(any(b"RMA-0001" in t for t in texts) and any(b"SN-0001" in t for t in texts),
              "RMA and serial printed")
        out = os.path.join(tmp, "r1.zpl")
        r = rmactl("label", str(r1), "--format", "zpl", "-o", out)
        check(r.returncode == 0, "rmactl label --format zpl: " + r.stderr)
        check(os.path.exists(out) and open(out, "rb").read() == zpl,
              "printed bytes are exactly rmactl label's")

    # A refused RMA prints a refusal label.
    flow(s1, "RMA-9999")
    sub.pump(lambda ev: count(ev, "receipt.refused") >= 1 and
             len(printed(sub, next(e["receipt"] for e in ev if e["type"] == "receipt.refused"))) >= 1)
    refused = [e for e in sub.events if e["type"] == "receipt.refused"]
    if check(refused and len(printed(sub, refused[0]["receipt"])) == 1, "refusal label printed"):
        ev = printed(sub, refused[0]["receipt"])[0]
        check(ev["why"] == "refusal", "why = refusal")
        wait_for(lambda: ev["job"] in jobs_in(zebra), "refusal label captured")
        check(any(b"unknown rma" in t.lower() for t in zpl_texts(jobs_in(zebra).get(ev["job"], b""))),
              "refusal label shows the reason")

    # The PDF station: a PDF job whose Code 128 decodes to the receipt id.
    flow(s2, "RMA-0002", "SN-0002", "PKG-ORIGINAL", "FAULT-CONFIRMED", "CMD-DONE")
    sub.pump(lambda ev: count(ev, "label.printed", printer="office") >= 1)
    ev = [e for e in sub.events if e["type"] == "label.printed" and e["printer"] == "office"]
    if check(len(ev) == 1, "label.printed on office"):
        wait_for(lambda: ev[0]["job"] in jobs_in(office), "PDF job captured")
        pdf = jobs_in(office).get(ev[0]["job"], b"")
        check(pdf.startswith(b"%PDF-"), "the office queue got a PDF")
        path = os.path.join(tmp, "office.pdf")
        open(path, "wb").write(pdf)
        subprocess.run(["pdftoppm", "-r", "300", "-png", path, os.path.join(tmp, "office")],
                       check=True, timeout=WAIT)
        pngs = sorted(glob.glob(os.path.join(tmp, "office*.png")))
        z = subprocess.run(["zbarimg", "--raw", "-q", "-Scode128.enable"] + pngs,
                           capture_output=True, text=True, timeout=WAIT)
        check("RCPT-%06d" % ev[0]["receipt"] in z.stdout.split(), "PDF Code 128 scans to the receipt id: "
              + z.stdout.strip())

    # A serial carrying ZPL commands: printed literally, nothing injected.
    nasty = "SN^XZ^XA^FO0,0^FDPWNED~JR"
    flow(s1, "RMA-0003", nasty, "CMD-DONE")
    sub.pump(lambda ev: count(ev, "label.printed", printer="zebra") >= 3)
    r3 = [e for e in sub.events if e["type"] == "inspection.completed" and e.get("rma") == "RMA-0003"]
    ev = printed(sub, r3[0]["receipt"]) if r3 else []
    if check(len(ev) == 1, "label for the receipt with a ZPL-laden serial"):
        wait_for(lambda: ev[0]["job"] in jobs_in(zebra), "its job captured")
        zpl = jobs_in(zebra).get(ev[0]["job"], b"")
        check(zpl.count(b"^XA") == 1 and zpl.count(b"^XZ") == 1 and b"~JR" not in zpl,
              "one ^XA...^XZ block, no ~ command")
        check(any(nasty.encode() in t for t in zpl_texts(zpl)), "the serial shows literally")

    # A stopped printer: labels stay queued, label.failed is published, a restart
    # changes nothing, re-enabling prints each exactly once.
    check(cups(root, "cupsdisable", "zebra").returncode == 0, "cupsdisable zebra")
    before = set(jobs_in(zebra))
    flow(s1, "RMA-0004", "SN-0004", "FAULT-CONFIRMED", "CMD-DONE", "RMA-0005", "SN-0005",
         "FAULT-CONFIRMED", "CMD-DONE")
    # One label.failed for the printer's fault, not one per label or per attempt.
    sub.pump(lambda ev: count(ev, "label.failed", printer="zebra") >= 1)
    sub.pump(lambda ev: False, timeout=3)
    failed = [e for e in sub.events if e["type"] == "label.failed"]
    check(len(failed) == 1 and all(not e["final"] for e in failed),
          "one label.failed, will retry: %d" % len(failed))
    check(failed and "stop" in failed[0]["error"].lower(), "error says the printer is stopped: "
          + (failed[0]["error"] if failed else ""))
    st = rmactl("status", "--json")
    check('"queued": 2' in st.stdout.replace('"queued":2', '"queued": 2'),
          "status: 2 labels queued: " + st.stdout)
    n_failed = count(replay(ctx, rep, 1)[0], "label.failed")
    check(daemon.kill(signal.SIGTERM) == 0, "SIGTERM with labels queued")
    s1.close()
    s2.close()
    daemon.start()
    s1 = Scanner(ports["s1"])
    # A fresh daemon says it once more; read through replay: a live subscriber that
    # reconnects after the restart may not yet be connected when that one goes out.
    wait_for(lambda: count(replay(ctx, rep, 1)[0], "label.failed") > n_failed,
             "still failing after the restart")
    check(set(jobs_in(zebra)) == before, "nothing printed while stopped")
    check(cups(root, "cupsenable", "zebra").returncode == 0, "cupsenable zebra")
    r45 = [e["receipt"] for e in sub.events if e["type"] == "inspection.completed"
           and e.get("rma") in ("RMA-0004", "RMA-0005")]
    sub.pump(lambda ev: all(len(printed(sub, r)) >= 1 for r in r45))
    for r in r45:
        check(len(printed(sub, r)) == 1, "receipt %d printed once after re-enabling" % r)
    wait_for(lambda: len(set(jobs_in(zebra)) - before) >= 2, "two new jobs")
    new = [jobs_in(zebra)[j] for j in set(jobs_in(zebra)) - before]
    for rma in (b"RMA-0004", b"RMA-0005"):
        check(sum(1 for z in new if any(rma in t for t in zpl_texts(z))) == 1,
              "%s printed exactly once" % rma.decode())

    # A job CUPS has when rmad dies is followed after the restart, not submitted again.
    open(os.path.join(zebra, "hold"), "w").close()
    before = set(jobs_in(zebra))
    flow(s1, "RMA-0006", "SN-0006", "FAULT-CONFIRMED", "CMD-DONE")
    started = lambda: glob.glob(os.path.join(zebra, "job-*.started"))
    n_started = len(started())
    sub.pump(lambda ev: any(e.get("rma") == "RMA-0006" for e in ev
                            if e["type"] == "inspection.completed"))
    wait_for(lambda: len(started()) > n_started, "the held job reached the backend")
    check(daemon.kill(signal.SIGKILL) == -signal.SIGKILL, "SIGKILL with a job at the printer")
    s1.close()
    os.remove(os.path.join(zebra, "hold"))
    daemon.start()
    s1 = Scanner(ports["s1"])
    r6 = [e["receipt"] for e in sub.events if e["type"] == "inspection.completed"
          and e.get("rma") == "RMA-0006"]
    events, _ = replay(ctx, rep, 1)
    wait_for(lambda: any(e["type"] == "label.printed" and e.get("receipt") in r6
                         for e in replay(ctx, rep, 1)[0]), "the held job's label.printed")
    events, _ = replay(ctx, rep, 1)
    check(sum(1 for e in events if e["type"] == "label.printed" and e.get("receipt") in r6) == 1,
          "held job printed once")
    check(len(set(jobs_in(zebra)) - before) == 1, "one CUPS job for it, not two")

    # An operator cancels a job in CUPS: label.failed, final, not retried.
    open(os.path.join(zebra, "hold"), "w").close()
    n_started = len(started())
    flow(s1, "RMA-0007", "SN-0007", "FAULT-CONFIRMED", "CMD-DONE")
    wait_for(lambda: len(started()) > n_started, "the job to cancel reached the backend")
    held = [int(re.search(r"job-(\d+)\.started$", p).group(1)) for p in started()]
    check(cups(root, "cancel", str(max(held))).returncode == 0, "cancel the CUPS job")
    sub.pump(lambda ev: any(e["type"] == "label.failed" and e.get("final") for e in ev))
    final = [e for e in sub.events if e["type"] == "label.failed" and e.get("final")]
    check(len(final) == 1 and final[0].get("job") == max(held), "cancel is a final label.failed")
    os.remove(os.path.join(zebra, "hold"))

    # Reprints: CMD-REPRINT (the station's last label) and rmactl reprint.
    n = count(sub.events, "label.printed")
    flow(s1, "CMD-REPRINT")
    r = rmactl("reprint", str(r1))
    check(r.returncode == 0 and "queued" in r.stdout, "rmactl reprint: " + r.stdout + r.stderr)
    sub.pump(lambda ev: count(ev, "label.printed") >= n + 2)
    reprints = [e for e in sub.events if e["type"] == "label.printed" and e["why"] == "reprint"]
    check(len(reprints) == 2, "two reprints printed")
    r = rmactl("reprint", "999999")
    check(r.returncode != 0 and "no receipt 999999" in r.stderr, "reprint of an unknown receipt")

    # Everything published is in the outbox, gapless, label events included.
    events, last = replay(ctx, rep, 1)
    check([e["seq"] for e in events] == list(range(1, last + 1)), "replay gapless")
    check(daemon.kill(signal.SIGTERM) == 0, "SIGTERM")
    s1.close()
    sub.sock.close()
    ctx.term()


if __name__ == "__main__":
    sys.exit(main())
