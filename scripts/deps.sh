#!/bin/sh
# Install the Debian packages rmad needs to build and test, when they are missing.
# As root this installs them; otherwise it prints the exact apt-get line and fails,
# so a developer never has to guess which -dev package is absent.
#
# --check (make check, CI) also brings every listed package that is installed to
# Debian's current candidate version: the tests must run against what a fresh machine
# gets today (a cupsd security update once crashed on rmad's jobs while an older
# cupsd left on a developer's machine passed).
set -eu

BUILD_PKGS="build-essential pkg-config libyaml-dev libjansson-dev libsqlite3-dev
libzmq3-dev libusb-1.0-0-dev libserialport-dev libcups2-dev libcairo2-dev libzint-dev
libfontconfig-dev fonts-dejavu-core libmicrohttpd-dev libxkbcommon-dev xkb-data
libsystemd-dev libnats-dev"
CHECK_PKGS="libcunit1-dev sqlite3 python3 python3-zmq netcat-openbsd umockdev
libumockdev-dev cups cups-daemon cups-client cups-bsd libcups2 zbar-tools dmtx-utils
poppler-utils valgrind chromium chromium-driver python3-selenium
systemd man-db groff-base nats-server"

# make fuzz: clang with its libFuzzer and sanitizer runtimes.
FUZZ_PKGS="clang libclang-rt-dev"

check=no
want="$BUILD_PKGS"
case "${1:-}" in
--check) check=yes; want="$BUILD_PKGS $CHECK_PKGS" ;;
--fuzz) want="$BUILD_PKGS $FUZZ_PKGS" ;;
esac

installed_version() {
    dpkg-query -W -f='${db:Status-Abbrev} ${Version}' "$1" 2>/dev/null || true
}

missing=""
for p in $want; do
    case "$(installed_version "$p")" in ii*) ;; *) missing="$missing $p" ;; esac
done

if [ "$(id -u)" -ne 0 ]; then
    if [ -n "$missing" ]; then
        echo "rmad: missing Debian packages:$missing" >&2
        echo "rmad: install them with: sudo apt-get install -y --no-install-recommends$missing" >&2
        exit 1
    fi
    [ $check = yes ] && echo "rmad: not root: packages are not brought to Debian's current versions" >&2
    exit 0
fi
[ -z "$missing" ] && [ $check = no ] && exit 0

export DEBIAN_FRONTEND=noninteractive
apt-get update -q >&2
stale=""
if [ $check = yes ]; then
    # The listed packages and the libraries they pull in (cups-daemon's libsystemd0,
    # say): a library left at an older version changes what the tests run against.
    # shellcheck disable=SC2086
    deps=$(apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks \
               --no-replaces --no-enhances $want 2>/dev/null |
           sed -n 's/^ *\(Pre\)\{0,1\}Depends: \([a-z0-9][a-z0-9.+-]*\).*/\2/p' | sort -u)
    # One apt-cache call for all of them (one per package took minutes): a package is
    # stale when it is installed and its candidate is another version.
    # shellcheck disable=SC2086
    stale=$(apt-cache policy $want $deps 2>/dev/null | awk '
        /^[^ ].*:$/       { p = substr($0, 1, length($0) - 1); have = ""; next }
        /^  Installed: /  { have = $2; next }
        /^  Candidate: /  { if (have != "" && have != "(none)" && $2 != "(none)" &&
                                $2 != have && !seen[p]++) printf " %s", p }')
fi
[ -z "$missing$stale" ] && exit 0
[ -n "$missing" ] && echo "rmad: installing:$missing" >&2
[ -n "$stale" ] && echo "rmad: upgrading to Debian's current versions:$stale" >&2
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing $stale >&2
