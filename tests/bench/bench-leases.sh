#!/usr/bin/env bash
# What a lease costs, locally and over GlusterFS: uncontended session
# open/close and KEY write section per second (tests/bench/bench-leases.c),
# for the daemon of this tree and, if given, another build's daemon (to
# compare with a commit before a change). Needs root and /dev/fuse; the
# GlusterFS rows need glusterd (tools/install-deps.sh test) and are skipped,
# with the reason, where it cannot run.
#
#   bash tests/bench/bench-leases.sh [BUILD_DIR] [SECONDS] [OTHER_MAILBAGFS]
set -euo pipefail
cd "$(dirname "$0")/../.."

build=${1:-build}
seconds=${2:-3}
other=${3:-}

[ -f "$build/build.ninja" ] || meson setup "$build" >/dev/null
meson compile -C "$build" fs/mailbagfs >/dev/null

work=$(mktemp -d /tmp/mailbagfs-bench-leases-XXXXXX)
trap 'rm -rf "$work"' EXIT INT TERM
# Built here rather than by meson: it is run by hand, never by meson test.
gcc -std=gnu17 -D_GNU_SOURCE -O2 -Wall -Wextra -Wno-unused-parameter -Itests/harness tests/bench/bench-leases.c \
        tests/harness/mount-harness.c tests/harness/gluster-fixture.c \
        $(pkg-config --cflags --libs glib-2.0) -o "$work/bench-leases"

run() {
        echo "== $1"
        MAILBAGFS=$2 "$work/bench-leases" "$seconds"
}
run "this tree: $(git rev-parse --short HEAD)" "$(realpath "$build/fs/mailbagfs")"
if [ -n "$other" ]; then
        run "other daemon: $other" "$(realpath "$other")"
fi
