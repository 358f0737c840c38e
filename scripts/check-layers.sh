#!/bin/sh
# The folders are layers: each may include headers from itself and the layers listed
# for it, never from above (docs/architecture.md). Run by `make check`; prints every
# include that breaks the order and exits 1.
set -u
cd "$(dirname "$0")/.." || exit 1

allowed() {
    case "$1" in
    core)    echo "core" ;;
    policy)  echo "core policy" ;;
    db)      echo "core db" ;;
    drivers) echo "core drivers" ;;
    proto)   echo "core policy db proto" ;;
    labels)  echo "core policy db proto labels" ;;
    daemon)  echo "core policy db drivers proto labels daemon" ;;
    esac
}

bad=0
for dir in core policy db drivers proto labels daemon; do
    ok=$(allowed "$dir")
    for f in "$dir"/*.c "$dir"/*.h; do
        [ -e "$f" ] || continue
        grep -n '^#include "[a-z_]*/' "$f" | while IFS= read -r line; do
            used=$(printf '%s\n' "$line" | sed 's/^[0-9]*:#include "\([a-z_]*\)\/.*/\1/')
            case " $ok " in
            *" $used "*) ;;
            *) echo "$f:${line%%:*}: $dir/ may not include $used/ (${line#*:})" ;;
            esac
        done
    done
done | { out=$(cat); [ -z "$out" ] || { printf '%s\n' "$out" >&2; exit 1; }; }
bad=$?
[ "$bad" -eq 0 ] && echo "layers: every include goes down: core; policy, db, drivers; proto; labels; daemon"
exit "$bad"
