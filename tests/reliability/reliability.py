#!/usr/bin/python3
"""make reliability: the crash harness and the fault runs, one table, into the README.

Runs tests/reliability/crash_harness.py (RELIABILITY_KILLS SIGKILLs, default 50) and
tests/reliability/faults.py (every fault run, full length), prints one table of the
figures and, with --readme FILE, writes it with the date between the README's
`<!-- reliability:begin -->` and `<!-- reliability:end -->` markers. Bounded: a few
minutes on 2 cores (the harness ~2-3 min, the fault runs ~3 min).

usage: reliability.py BUILD_DIR [--readme README.md]   (exit 0 = 0 lost, every check passed)
"""
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import crash_harness  # noqa: E402


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    readme = sys.argv[sys.argv.index("--readme") + 1] if "--readme" in sys.argv else None
    t0 = time.time()
    rc, h = crash_harness.harness_run(build)
    out = tempfile.mktemp(prefix="rmad-faults-", suffix=".json")
    r = subprocess.run(["/usr/bin/python3", os.path.join(HERE, "faults.py"), build, "--json", out])
    faults = json.load(open(out)) if os.path.exists(out) else []
    if os.path.exists(out):
        os.remove(out)
    head = "| run | scans sent | stored | rejected with reason | lost | duplicated | recover s | checks |"
    rule = "|---|---|---|---|---|---|---|---|"
    rows = [head, rule]
    if h:
        rows.append("| SIGKILL x%d while 3 stations scan and print%s | %d | %d/%d receipts | - | %d | %d "
                    "| - | labels printed once %d/%d, twice %d, not printed %d; seq gaps %d, dup "
                    "seqs %d; crashes %d; %.0f s |" % (
                        h["kills"], "" if h["ok"] else " **FAILED**", h["sent"], h["stored"],
                        h["acked"], h["lost"], h["duplicated"], h["printed_once"], h["completed"],
                        h["printed_twice"], h["unprinted"], h["gaps"], h["dup_seqs"],
                        h["crashes"], h["seconds"]))
    for f in faults:
        rows.append("| %s%s | %d | %d | %d | %d | - | %s | %s |" % (
            f["run"], "" if f["ok"] else " **FAILED**", f["sent"], f["stored"], f["rejected"],
            f["lost"], "-" if f["recover"] is None else "%.2f" % f["recover"], f["checks"]))
    ok = rc == 0 and r.returncode == 0 and bool(faults)
    text = ("Measured %s by `make reliability` in %.0f s:\n\n" % (time.strftime("%Y-%m-%d"),
                                                                time.time() - t0)
            + "\n".join(rows))
    print(text)
    if readme:
        crash_harness.update_readme(readme, text)
    print("reliability: %s" % ("0 lost, 0 duplicated, 0 crashes, every fault run passed" if ok
                               else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
