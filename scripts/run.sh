#!/bin/sh
# `make run`: start the daemon on the embedded default config. Until the daemon lands
# (issue "The daemon"), show what is real today: the policy engine deciding the
# shipped example returns, through the same rmactl a dock supervisor uses.
set -eu
B=${1:-build}
if [ -x "$B/rmad" ]; then
    mkdir -p state
    exec "$B/rmad" --default-config
fi
echo "rmad: the daemon is not built yet; evaluating the example returns with rmactl:" >&2
"$B/rmactl" policy check policies/*.yaml
exec "$B/rmactl" policy test tests/cases/examples/*.json
