#!/bin/sh
# `make bench`: speed and memory, measured and printed, never asserted (the machines
# are shared and noisy). Loopback only; every run is bounded.
set -eu
B=${1:-build}
cases=$(ls tests/cases/*/*.json | wc -l)
echo "== policy evaluation: rmactl policy test over $cases case files, 20 runs"
start=$(date +%s.%N)
i=0
while [ $i -lt 20 ]; do "$B/rmactl" policy test tests/cases/*/*.json > /dev/null; i=$((i + 1)); done
end=$(date +%s.%N)
echo "$cases $start $end" | awk '{ t = $3 - $2; printf "%d evaluations (load + eval + check) in %.2f s: %.0f/s\n", $1 * 20, t, $1 * 20 / t }'
if command -v valgrind > /dev/null; then
    echo "== instructions for one policy test run (callgrind: repeatable on a noisy machine)"
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$B/rmactl" policy test tests/cases/*/*.json 2>&1 \
        | awk '/Collected/ { print "instructions: " $4 }'
fi
echo "== daemon: complete receipts through the TCP scanner port"
/usr/bin/python3 tests/bench/daemon_bench.py "$B" "${BENCH_RECEIPTS:-2000}"
echo "== site scale: rmad against its floor, 1/16/64 stations (issue 17; about 6-8 min)"
/usr/bin/python3 tests/bench/site_bench.py "$B" --readme README.md
