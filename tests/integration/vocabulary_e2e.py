#!/usr/bin/python3
"""A policy's own vocabulary end to end (issue 13), with the sixth vendor written only
as data (policies/nordlicht.yaml).

rmad runs with a site time zone far from the machine's (Pacific/Kiritimati, UTC+14)
and one TCP scanner. A Nordlicht display comes back with burn-in: FIND-PANEL_BURN_IN,
a finding only that policy declares, is accepted and decides the unit (not covered:
back to the customer). The same barcode on an EverFocus unit is refused (its policy
does not declare it), and an unknown FIND- word is refused as before. The independent
ZeroMQ subscriber checks inspection.completed: the finding in the checklist, the
policy's SHA-256 and version, the site's zone and the date there; `rmactl receipts
--policy-version` finds the receipt by the version.

usage: vocabulary_e2e.py BUILD_DIR      (run from the repository root; exit 0 = passed)
"""
import datetime
import hashlib
import json
import os
import signal
import sys
import tempfile
import time
import zoneinfo

import zmq

import e2e
from e2e import *  # noqa: F401,F403

ZONE = "Pacific/Kiritimati"

RMAS = """number,issued,kind,vendor,line,model,family,quantity,expected_serials,shipped
RMA-8001,{recent},warranty,Nordlicht Displays,1,NL-2710,Monitors,1,NL-SN-1,{older}
RMA-8002,{recent},warranty,EverFocus,1,EPN4208,Monitors,1,EF-SN-2,{older}
"""


def main():
    tmp = tempfile.mkdtemp(prefix="rmad-vocab-e2e-")
    ports = {k: free_port() for k in ("pub", "replay", "s1")}
    pub = "tcp://127.0.0.1:%d" % ports["pub"]
    e2e.CONF = os.path.join(tmp, "rmad.conf")
    with open(e2e.CONF, "w") as f:
        f.write("""[daemon]
database = {tmp}/rmad.db
policies = {root}/policies
pub = {pub}
replay = tcp://127.0.0.1:{rep}
control = ipc://{tmp}/rmad.ctl
double_read_ms = 0
timezone = {zone}

[station dock1]
scanner = tcp:127.0.0.1:{s1}
""".format(tmp=tmp, root=os.getcwd(), pub=pub, rep=ports["replay"], s1=ports["s1"], zone=ZONE))
    csv = os.path.join(tmp, "rmas.csv")
    dd = dates()
    with open(csv, "w") as f:
        f.write(RMAS.format(**dd))
    ctx = zmq.Context()
    d = Daemon(tmp, e2e.CONF)
    d.start()
    r = rmactl("rma", "import", csv)
    check(r.stdout == "imported: 2 new, 0 updated, 0 unchanged\n", "rma import: " + r.stdout + r.stderr)
    sub = Subscriber(ctx, pub)
    time.sleep(0.3)
    sc = Scanner(ports["s1"])

    # An unknown word stays an unknown finding.
    reply = sc.ask("FIND-BANANA")
    check(reply.startswith("REJECT unknown finding \"BANANA\""), "FIND-BANANA refused: " + reply)

    # EverFocus does not declare burn-in: refused at the scan, not dropped at CMD-DONE.
    sc.ask("RMA-8002")
    sc.ask("EF-SN-2")
    reply = sc.ask("FIND-PANEL_BURN_IN")
    check(reply.startswith("REJECT finding panel_burn_in is not one of EverFocus's"),
          "another vendor's finding refused: " + reply)
    sc.ask("CMD-CANCEL")

    # The Nordlicht display: its own finding decides it (clause 3: burn-in not covered).
    check("RMA-8001" in sc.ask("RMA-8001"), "RMA-8001 opened")
    sc.ask("NL-SN-1")
    reply = sc.ask("FIND-PANEL_BURN_IN")
    check(reply.startswith("OK FIND-PANEL_BURN_IN recorded"), "own finding accepted: " + reply)
    for a in ("PKG-ORIGINAL", "SEAL-INTACT", "FAULT-CONFIRMED"):
        sc.ask(a)
    before = datetime.datetime.now(zoneinfo.ZoneInfo(ZONE)).date().isoformat()
    reply = sc.ask("CMD-DONE")
    after = datetime.datetime.now(zoneinfo.ZoneInfo(ZONE)).date().isoformat()
    check("completed: return_to_customer" in reply, "burn-in: back to the customer: " + reply)

    ok = sub.pump(lambda ev: count(ev, "inspection.completed") >= 1)
    check(ok, "inspection.completed arrived")
    done = [e for e in sub.events if e["type"] == "inspection.completed"]
    ic = done[-1] if done else {}
    check(ic.get("checklist", {}).get("findings") == ["panel_burn_in"],
          "the event's checklist holds the finding: %r" % ic.get("checklist"))
    check(ic.get("warranty", {}).get("status") == "excluded", "warranty excluded: %r" % ic.get("warranty"))
    check(ic.get("reasons", [{}])[0].get("rule") in ("burn-in-not-covered", "rmad-default"),
          "reasons: %r" % ic.get("reasons"))
    with open("policies/nordlicht.yaml", "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    pol = ic.get("policy") or {}
    check(pol.get("sha256") == sha and pol.get("version") == "2026.1",
          "the event names the policy file's hash and version: %r" % pol)
    check(ic.get("timezone") == ZONE, "the site's zone: %r" % ic.get("timezone"))
    check(ic.get("decided_on") in (before, after),
          "decided on the site's date %s: %r" % (before, ic.get("decided_on")))

    r = rmactl("receipts", "--policy-version", "2026.1", "--json")
    check(r.returncode == 0, "receipts --policy-version: " + r.stderr)
    rows = json.loads(r.stdout or "{}").get("receipts", [])
    check([(x.get("rma"), x.get("policy_sha256")) for x in rows] == [("RMA-8001", sha)],
          "receipts --policy-version lists the Nordlicht receipt: %r" % rows)
    r = rmactl("receipts", "--policy-version", "2025.9", "--json")
    check(json.loads(r.stdout or "{}").get("receipts") == [], "another version lists nothing")

    check(d.kill(signal.SIGTERM) == 0, "SIGTERM exits cleanly")
    sc.close()
    ctx.destroy(linger=0)
    return finish("vocabulary", d, tmp)


if __name__ == "__main__":
    sys.exit(main())
