#!/bin/sh
# After `make install` into the live system (no DESTDIR): what a package's postinst
# does. Creates the rmad user and group, rmad's directories, and makes udev and
# systemd read the new files. Each step runs only where its tool works (a container
# without systemd as PID 1 has no systemctl to reload) and says what it did; none is
# fatal, since the files are installed either way.
# usage: scripts/post-install.sh SYSUSERS_FILE TMPFILES_FILE
set -u
sysusers=$1
tmpfiles=$2
if [ "$(id -u)" -ne 0 ]; then
    echo "install: not root: run systemd-sysusers, systemd-tmpfiles --create and" \
         "systemctl daemon-reload as root before starting rmad" >&2
    exit 0
fi
step() {
    if command -v "$1" >/dev/null 2>&1; then
        echo "install: $*"
        "$@" || echo "install: '$*' failed (exit $?); run it again before starting rmad" >&2
    fi
}
step systemd-sysusers "$sysusers"
step systemd-tmpfiles --create "$tmpfiles"
if [ -d /run/udev ]; then
    step udevadm control --reload
    step udevadm trigger --subsystem-match=usb --subsystem-match=tty --action=change
fi
if [ -d /run/systemd/system ]; then
    step systemctl daemon-reload
    echo "install: start rmad with: systemctl enable --now rmad"
fi
exit 0
