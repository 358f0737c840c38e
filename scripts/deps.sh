#!/bin/sh
# Install the Debian packages rmad needs to build and test, when they are missing.
# As root this installs them; otherwise it prints the exact apt-get line and fails,
# so a developer never has to guess which -dev package is absent.
set -eu

BUILD_PKGS="build-essential pkg-config libyaml-dev libjansson-dev libsqlite3-dev
libzmq3-dev libusb-1.0-0-dev libserialport-dev libcups2-dev libcairo2-dev libzint-dev
libfontconfig-dev fonts-dejavu-core"
CHECK_PKGS="libcunit1-dev sqlite3 python3 python3-zmq netcat-openbsd umockdev
libumockdev-dev cups cups-client cups-bsd zbar-tools dmtx-utils poppler-utils valgrind"

want="$BUILD_PKGS"
[ "${1:-}" = "--check" ] && want="$BUILD_PKGS $CHECK_PKGS"

missing=""
for p in $want; do
    st=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
    case "$st" in ii*) ;; *) missing="$missing $p" ;; esac
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "rmad: missing Debian packages:$missing" >&2
    echo "rmad: install them with: sudo apt-get install -y --no-install-recommends$missing" >&2
    exit 1
fi
echo "rmad: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >&2
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing >&2
