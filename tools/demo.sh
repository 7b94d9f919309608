#!/usr/bin/env bash
# The demo: the mail collisions of KB Q103960 on a raw postoffice, and none
# through mailbagfs. Installs what is missing, builds, makes a sample
# postoffice with mkpo, copies it so both runs start from the same bytes,
# runs po-sim on the raw copy, mounts mailbagfs over a share holding the
# other copy in a subfolder (PO1, as sites keep several postoffices on one
# share), runs the same po-sim on MOUNT/PO1 while taking a mailbag-stat snapshot,
# prints both results side by side and unmounts. Exits 0 when the mounted
# run is clean and the raw run shows collisions.
#
# Usage: bash tools/demo.sh    (as root, or a user with sudo and /dev/fuse)
# Environment: DEMO_MESSAGES (default 3000) messages the producers add to
# the 1000 already queued; DEMO_BUILD (default build) the build directory.
set -euo pipefail
cd "$(dirname "$0")/.."

messages=${DEMO_MESSAGES:-3000}
build=${DEMO_BUILD:-build}
consumers=external=2,v20=2,gateway=2
producers=2
started=$SECONDS

step() { printf '\n==> %s\n' "$*"; }
fail() { printf '\ndemo: %s\n' "$*" >&2; exit 1; }

work=
daemon_pid=
sim_pid=
mnt=
cleanup() {
        local status=$?
        trap - EXIT INT TERM
        [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null && wait "$sim_pid" 2>/dev/null
        if [ -n "$mnt" ] && mountpoint -q "$mnt" 2>/dev/null; then
                fusermount3 -u "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
        fi
        if [ -n "$daemon_pid" ]; then
                kill "$daemon_pid" 2>/dev/null || true
                wait "$daemon_pid" 2>/dev/null || true
        fi
        [ -n "$work" ] && rm -rf "$work"
        exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "Installing missing packages"
bash tools/install-deps.sh build

step "Building in $build/"
if [ ! -f "$build/build.ninja" ]; then
        meson setup "$build" >/dev/null
fi
meson compile -C "$build" >/dev/null
for tool in tools/mkpo tools/po-sim fs/mailbagfs; do
        [ -x "$build/$tool" ] || fail "$build/$tool was not built"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/mailbagfs-demo-XXXXXX")
step "Making a sample postoffice (40 users, 1000 messages queued in INQUEUE3)"
"$build/tools/mkpo" "$work/postoffice" --users 40 --messages 1000 --queue-max 1000
cp -a "$work/postoffice" "$work/raw"
mkdir "$work/share"
cp -a "$work/postoffice" "$work/share/PO1"
mkdir "$work/mnt"

sim_args=(--messages "$messages" --consumers "$consumers" --producers "$producers" --json)
echo "po-sim: consumers $consumers, $producers producers adding $messages messages"

step "po-sim on the RAW postoffice: each protocol only excludes its own kind"
"$build/tools/po-sim" "$work/raw" "${sim_args[@]}" >"$work/raw.json" ||
        fail "po-sim on the raw postoffice failed"

step "Mounting mailbagfs over a share holding a copy of the same postoffice as PO1"
mkfifo "$work/ready"
exec 4<>"$work/ready"
"$build/fs/mailbagfs" "$work/share" "$work/mnt" -f \
        -o ready_fd=4,allow_other 2>"$work/daemon.log" &
daemon_pid=$!
ready=
read -r -t 30 -n 1 -u 4 ready || true
exec 4<&-
[ "$ready" = R ] || { cat "$work/daemon.log" >&2; fail "mailbagfs did not come up"; }
mnt=$work/mnt
echo "mounted $work/share at $mnt; the postoffice is $mnt/PO1"

step "po-sim THROUGH mailbagfs: every protocol excludes every other"
"$build/tools/po-sim" "$mnt/PO1" "${sim_args[@]}" >"$work/mount.json" &
sim_pid=$!
# The snapshot is taken while a worker holds a mailbag, i.e. during the run
# (the workers are named po-sim-ext-1, po-sim-v20-1, ...).
snapshot=$work/snapshot.txt
for _ in $(seq 200); do
        kill -0 "$sim_pid" 2>/dev/null || break
        if [ -x "$build/tools/mailbag-stat" ]; then
                "$build/tools/mailbag-stat" "$mnt" >"$snapshot" 2>&1 || true
        else
                getfattr -n user.mailbag.locks "$mnt" >"$snapshot" 2>&1 || true
        fi
        grep -q 'po-sim-' "$snapshot" && break
        sleep 0.02
done
sim_status=0
wait "$sim_pid" || sim_status=$?
sim_pid=
[ "$sim_status" -eq 0 ] || fail "po-sim through mailbagfs failed (status $sim_status)"

step "mailbag-stat during the mounted run"
sed 's/^/    /' "$snapshot"

step "Results"
python3 - "$work/raw.json" "$work/mount.json" <<'PY'
import json, sys
raw, mnt = (json.load(open(path)) for path in sys.argv[1:3])
rows = [
    ("queued", "queued"),
    ("delivered exactly once", "delivered"),
    ("duplicates", "duplicates"),
    ("lost", "lost"),
    ("missing routing [021]", "missing_routing"),
    ("contention failures [008]", "contention_failures"),
    ("mailbags at 4096 records", "full_mailbags"),
    ("wall time (s)", "seconds"),
    ("messages/s", "messages_per_second"),
]
print(f"    {'':28}{'raw directory':>16}{'mailbagfs':>16}")
for label, key in rows:
    fmt = (lambda v: f"{v:.2f}") if key == "seconds" else (lambda v: f"{v:.0f}")
    print(f"    {label:28}{fmt(raw[key]):>16}{fmt(mnt[key]):>16}")
PY

fusermount3 -u "$mnt"
mnt=
wait "$daemon_pid" || true
daemon_pid=

verdict=$(python3 - "$work/raw.json" "$work/mount.json" <<'PY'
import json, sys
raw, mnt = (json.load(open(path)) for path in sys.argv[1:3])
problems = []
for key in ("duplicates", "lost", "missing_routing", "contention_failures"):
    if mnt[key]:
        problems.append(f"the mounted run has {mnt[key]} {key}")
if mnt["delivered"] != mnt["queued"]:
    problems.append("the mounted run did not deliver every message exactly once")
if raw["duplicates"] + raw["missing_routing"] == 0:
    problems.append("the raw run shows no collision: po-sim is not modelling the problem")
print("; ".join(problems))
PY
)
echo
echo "demo: finished in $((SECONDS - started)) s"
[ -z "$verdict" ] || fail "$verdict"
echo "demo: raw directory: collisions as in KB Q103960; through mailbagfs: none"
