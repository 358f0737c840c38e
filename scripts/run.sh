#!/bin/sh
# `make run`: start rmad in the foreground on the built-in default config
# (`rmad --print-default-config` shows it): database under state/, policies/, one
# station "dock1" whose scanner is a TCP port on loopback (type scans with
# `nc 127.0.0.1 7790`). Ctrl-C stops it cleanly.
set -eu
B=${1:-build}
mkdir -p state
"$B/rmactl" policy check policies/*.yaml
echo "rmad: starting on the default config; scan by typing into: nc 127.0.0.1 7790" >&2
echo "rmad: watch events with: $B/rmactl watch --from 1" >&2
echo "rmad: station screen: http://127.0.0.1:7780/station/dock1  supervisor: http://127.0.0.1:7780/" >&2
exec "$B/rmad" --default-config
