#!/usr/bin/python3
"""End-to-end test of printing exactly once, against a real private cupsd.

rmad prints through tests/cupsd/cupsd-harness (a raw queue `zebra` whose capture
backend writes each job's bytes and job name); scans come over TCP; the events are
read back through the replay endpoint with python3-zmq. Checked:

- the window between CUPS taking a job and rmad recording it (the printer worker held
  there with RMAD_TEST_PRINT_HOLD): SIGKILL and SIGTERM in it, and a failed write of
  "submitted" (the database locked by another process): one CUPS job, one label;
- cupsd killed (SIGKILL) with jobs in flight and restarted, then `lp` jobs that take
  the lost jobs' ids: every label prints exactly once, no label.printed names a job
  that is not rmad's;
- a backend that reports media-empty: the reason in rmactl status, in label.failed and
  in a printer.state event; once the printer has labels again, the waiting labels
  print once each;
- rmactl labels (by state, by station) and rmactl labels cancel.

usage: printing_e2e.py BUILD_DIR     (from the repository root; exit 0 = passed)
"""
import glob
import json
import os
import re
import shutil
import signal
import sqlite3
import sys
import tempfile
import time

import zmq

import e2e
from e2e import WAIT, Daemon, Scanner, check, failures, free_port, replay, rmactl

from e2e import cups, harness  # noqa: E402




def wait_for(cond, what, timeout=WAIT):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return check(False, what)


def captures(capdir):
    """[(job name, bytes)] of every job the capture backend finished, reused ids too."""
    out = []
    for prn in glob.glob(os.path.join(capdir, "job-*.prn")):
        title = prn[:-4] + ".title"
        name = open(title).read().strip() if os.path.exists(title) else ""
        out.append((name, open(prn, "rb").read()))
    return out


def jobs_named(capdir, label):
    return [b for n, b in captures(capdir) if n.startswith("rmad-label-%d-" % label)]


def events(ctx, rep):
    return replay(ctx, rep, 1)[0]


def printed(evs, label):
    return [e for e in evs if e["type"] == "label.printed" and e.get("label") == label]


def last_label(db):
    with sqlite3.connect(db) as c:
        return c.execute("SELECT max(id) FROM print_jobs").fetchone()[0] or 0


def label_state(db, label):
    with sqlite3.connect(db) as c:
        r = c.execute("SELECT state FROM print_jobs WHERE id = ?", (label,)).fetchone()
    return r[0] if r else None


class Dock:
    """rmad on a temp config with one station dock1 printing ZPL to zebra."""

    def __init__(self, tmp, root):
        self.tmp, self.root = tmp, root
        self.cap = os.path.join(root, "capture", "zebra")
        self.ports = {k: free_port() for k in ("pub", "replay", "s1")}
        self.rep = "tcp://127.0.0.1:%d" % self.ports["replay"]
        self.db = os.path.join(tmp, "rmad.db")
        self.conf = e2e.CONF = os.path.join(tmp, "rmad.conf")
        with open(self.conf, "w") as f:
            f.write("""[daemon]
database = {tmp}/rmad.db
policies = {cwd}/policies
pub = tcp://127.0.0.1:{pub}
replay = {rep}
control = ipc://{tmp}/rmad.ctl
print_retry_ms = 200
print_retry_max_ms = 800

[station dock1]
scanner = tcp:127.0.0.1:{s1}
printer = zebra
label_format = zpl
""".format(tmp=tmp, cwd=os.getcwd(), pub=self.ports["pub"], rep=self.rep,
                       s1=self.ports["s1"]))
        self.daemon = Daemon(tmp, self.conf)
        self.scanner = None
        self.n = 0

    def start(self, hold=None):
        if hold:
            os.environ["RMAD_TEST_PRINT_HOLD"] = hold
        try:
            self.daemon.start()
        finally:
            os.environ.pop("RMAD_TEST_PRINT_HOLD", None)
        self.scanner = Scanner(self.ports["s1"])

    def stop(self, sig):
        self.scanner.close()
        return self.daemon.kill(sig)

    def refusal(self):
        """Scan an unknown RMA: a refusal label is queued at once. Returns its label id."""
        before = last_label(self.db)
        self.n += 1
        self.scanner.send("RMA-9%04d" % self.n)
        wait_for(lambda: last_label(self.db) > before, "a label queued for the refusal")
        return last_label(self.db)


def hold_window(ctx, dock, sig):
    """The daemon stops (sig) after CUPS took the job, before it recorded it."""
    hold = os.path.join(dock.tmp, "hold-after-submit")
    open(hold, "w").close()
    dock.start(hold=hold)
    label = dock.refusal()
    wait_for(lambda: len(jobs_named(dock.cap, label)) == 1, "the held label reached CUPS")
    check(label_state(dock.db, label) == "submitting",
          "%s: the row says submitting while the worker holds" % sig.name)
    dock.stop(sig)
    os.remove(hold)
    dock.start()
    wait_for(lambda: printed(events(ctx, dock.rep), label), "%s: label.printed" % sig.name)
    time.sleep(1)
    check(len(jobs_named(dock.cap, label)) == 1,
          "%s between submit and record: one CUPS job, not %d"
          % (sig.name, len(jobs_named(dock.cap, label))))
    check(len(printed(events(ctx, dock.rep), label)) == 1, "%s: one label.printed" % sig.name)
    check(label_state(dock.db, label) == "printed", "%s: the row is printed" % sig.name)
    dock.stop(signal.SIGTERM)


def failed_submitted_write(ctx, dock):
    """Recording "submitted" fails (database locked): nothing is sent twice."""
    hold = os.path.join(dock.tmp, "hold-after-submit")
    open(hold, "w").close()
    dock.start(hold=hold)
    label = dock.refusal()
    wait_for(lambda: len(jobs_named(dock.cap, label)) == 1, "the held label reached CUPS")
    lock = sqlite3.connect(dock.db, timeout=10, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    os.remove(hold)
    e2e.wait_log(dock.daemon, "recording a submitted label")
    lock.execute("COMMIT")
    lock.close()
    wait_for(lambda: printed(events(ctx, dock.rep), label), "label.printed after the lock")
    time.sleep(1)
    check(len(jobs_named(dock.cap, label)) == 1,
          "failed submitted write: one CUPS job, not %d" % len(jobs_named(dock.cap, label)))
    check(len(printed(events(ctx, dock.rep), label)) == 1, "failed submitted write: one label")
    dock.stop(signal.SIGTERM)


def cupsd_crash(ctx, dock):
    """cupsd dies with jobs in flight; after its restart ids are reused by lp jobs."""
    harness_hold = os.path.join(dock.cap, "hold")
    open(harness_hold, "w").close()   # the backend keeps each job "processing"
    dock.start()
    labels = [dock.refusal(), dock.refusal()]
    wait_for(lambda: all(label_state(dock.db, l) == "submitted" for l in labels),
             "both labels at the printer")
    pid = int(open(os.path.join(dock.root, "harness.pid")).read())
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not os.path.exists("/proc/%d/cmdline" % pid) or
             open("/proc/%d/stat" % pid).read().split()[2] == "Z", "cupsd gone")
    # The lost jobs' files go with it (a crash that lost them), as on a real crash
    # that never wrote them out; the queue survives in printers.conf.
    for f in glob.glob(os.path.join(dock.root, "spool", "[cd]0*")):
        os.remove(f)
    for f in glob.glob(os.path.join(dock.root, "cache", "job.cache*")):
        os.remove(f)
    if os.path.exists(os.path.join(dock.root, "sock")):
        os.remove(os.path.join(dock.root, "sock"))
    os.remove(harness_hold)
    harness("start", dock.root, "--owner", str(os.getpid()))
    if "zebra" not in cups(dock.root, "lpstat", "-p").stdout:
        harness("add-queue", dock.root, "zebra")
    cups(dock.root, "cupsenable", "zebra")
    for i in range(3):
        r = cups(dock.root, "lp", "-d", "zebra", "-t", "other-user-%d" % i, "/etc/hostname")
        check(r.returncode == 0, "lp to the same queue: " + r.stderr)
    wait_for(lambda: all(printed(events(ctx, dock.rep), l) for l in labels),
             "every label printed after the cupsd crash", timeout=3 * WAIT)
    time.sleep(1)
    evs = events(ctx, dock.rep)
    for l in labels:
        check(len(jobs_named(dock.cap, l)) == 1,
              "label %d printed exactly once after the crash, not %d"
              % (l, len(jobs_named(dock.cap, l))))
        check(len(printed(evs, l)) == 1, "label %d: one label.printed" % l)
    names = {}
    for prn in glob.glob(os.path.join(dock.cap, "job-*.prn")):
        m = re.search(r"job-(\d+)(-reused-\d+)?\.prn$", prn)
        names.setdefault(int(m.group(1)), []).append(open(prn[:-4] + ".title").read().strip())
    for e in evs:
        if e["type"] == "label.printed" and e.get("label") in labels:
            # The job id it names printed an rmad label of that id, last (ids reused).
            check(any(n.startswith("rmad-label-%d-" % e["label"]) for n in names.get(e["job"], [])),
                  "label.printed job %d is rmad's label %d: %s"
                  % (e["job"], e["label"], names.get(e["job"])))
    reused = [p for p in glob.glob(os.path.join(dock.cap, "job-*-reused-*.prn"))]
    print("cupsd crash: %d job ids were handed out again" % len(reused))
    dock.stop(signal.SIGTERM)


def media_empty(ctx, dock):
    """A backend out of media: the reason is shown everywhere; recovery prints once."""
    flag = os.path.join(dock.cap, "media-empty")
    open(flag, "w").close()
    dock.start()
    first = dock.refusal()
    wait_for(lambda: any(e["type"] == "printer.state" and "media empty" in e.get("reasons", "")
                         for e in events(ctx, dock.rep)), "printer.state says media empty")
    second = dock.refusal()
    wait_for(lambda: any(e["type"] == "label.failed" and e.get("label") == second
                         for e in events(ctx, dock.rep)), "label.failed for the second label")
    fail = [e for e in events(ctx, dock.rep) if e["type"] == "label.failed" and e.get("label") == second]
    if fail:
        check("media empty" in fail[0].get("reasons", "") and "media empty" in fail[0]["error"],
              "label.failed names media empty: %s" % json.dumps(fail[0]))
    st = rmactl("status")
    check("printer zebra: needs attention: media empty" in st.stdout,
          "rmactl status shows media empty: " + st.stdout)
    stj = json.loads(rmactl("status", "--json").stdout)
    check(stj["stations"][0]["printer_state"]["reasons"] == "media empty", "status --json reasons")
    lst = rmactl("labels", "--state", "failed")
    check(lst.returncode == 0 and str(second) in lst.stdout and "media empty" in lst.stdout,
          "rmactl labels --state failed lists it: " + lst.stdout + lst.stderr)
    os.remove(flag)
    wait_for(lambda: printed(events(ctx, dock.rep), first) and printed(events(ctx, dock.rep), second),
             "both labels printed once the printer has media", timeout=3 * WAIT)
    time.sleep(1)
    for l in (first, second):
        check(len(jobs_named(dock.cap, l)) == 1, "label %d printed once after media-empty" % l)
    check(any(e["type"] == "printer.state" and e["state"] == "ready" for e in events(ctx, dock.rep)
              if e["seq"] > fail[0]["seq"]) if fail else False, "printer.state ready again")
    st = rmactl("status")
    check("printer zebra: ready" in st.stdout, "rmactl status: ready again: " + st.stdout)
    dock.stop(signal.SIGTERM)


def labels_commands(ctx, dock):
    """rmactl labels and rmactl labels cancel."""
    check(cups(dock.root, "cupsdisable", "zebra").returncode == 0, "cupsdisable zebra")
    dock.start()
    waiting = dock.refusal()
    wait_for(lambda: "stopped" in rmactl("labels", "--state", "queued").stdout,
             "rmactl labels --state queued shows the waiting label's error")
    out = rmactl("labels", "--state", "queued").stdout
    check(re.search(r"^%d\s+\d+\s+dock1\s+zebra\s+queued\s+\d+\s+-\s+CUPS queue 'zebra' is stopped"
                    % waiting, out, re.M) is not None, "labels row: " + out)
    js = json.loads(rmactl("labels", "--station", "dock1", "--json").stdout)
    check(js["labels"][0]["label"] == waiting and js["labels"][0]["state"] == "queued",
          "labels --station --json, newest first")
    check(json.loads(rmactl("labels", "--station", "nosuch", "--json").stdout)["labels"] == [],
          "labels of another station: none")
    r = rmactl("labels", "cancel", str(waiting))
    check(r.returncode == 0 and "cancelled" in r.stdout, "labels cancel: " + r.stdout + r.stderr)
    check(label_state(dock.db, waiting) == "cancelled", "the row is cancelled")
    wait_for(lambda: any(e["type"] == "label.cancelled" and e.get("label") == waiting
                         for e in events(ctx, dock.rep)), "label.cancelled published")
    check(str(waiting) in rmactl("labels", "--state", "cancelled").stdout, "labels --state cancelled")
    r = rmactl("labels", "cancel", str(waiting))
    check(r.returncode != 0 and "is cancelled" in r.stderr, "cancel twice: " + r.stderr)
    r = rmactl("labels", "cancel", "999999")
    check(r.returncode != 0 and "no label 999999" in r.stderr, "cancel unknown: " + r.stderr)
    r = rmactl("labels", "--state", "bogus")
    check(r.returncode == 2 and "--state" in r.stderr, "bad --state: exit 2: " + r.stderr)
    printed_one = [e["label"] for e in events(ctx, dock.rep) if e["type"] == "label.printed"][0]
    r = rmactl("labels", "cancel", str(printed_one))
    check(r.returncode != 0 and "is printed" in r.stderr, "cancel a printed label: " + r.stderr)
    cups(dock.root, "cupsenable", "zebra")
    time.sleep(1.5)
    check(not jobs_named(dock.cap, waiting), "a cancelled label never prints")
    dock.stop(signal.SIGTERM)


def main():
    tmp = tempfile.mkdtemp(prefix="rmad-prt-")
    os.chmod(tmp, 0o755)  # cupsd runs backends as lp: it must reach the capture dirs
    root = os.path.join(tmp, "cups")
    harness("start", root, "--owner", str(os.getpid()))
    ctx = zmq.Context()
    try:
        harness("add-queue", root, "zebra")
        os.environ["CUPS_SERVER"] = os.path.join(root, "sock")  # rmad and rmactl inherit it
        dock = Dock(tmp, root)
        hold_window(ctx, dock, signal.SIGKILL)
        hold_window(ctx, dock, signal.SIGTERM)
        failed_submitted_write(ctx, dock)
        cupsd_crash(ctx, dock)
        media_empty(ctx, dock)
        labels_commands(ctx, dock)
    finally:
        ctx.destroy(linger=0)
        harness("stop", root)
    if failures:
        print("%d checks failed (files in %s)" % (len(failures), tmp))
        return 1
    shutil.rmtree(tmp, ignore_errors=True)
    print("printing e2e: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
