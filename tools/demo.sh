#!/usr/bin/env bash
# The demo, in the order a site would follow: observe first, then enforce,
# then the comparison with the raw share. Installs what is missing,
# builds, makes a sample postoffice with mkpo and copies it, so every run
# starts from the same bytes. Mounts mailbagfs in observe mode over a share
# holding the copies in subfolders (as sites keep several postoffices on
# one share) and runs po-sim's programs on one (OBS): they collide as on
# the share today (KB Q103960), and mailbag-stat and po-trail name the
# collisions and the programs behind them. Switches the mount to enforce
# without unmounting and runs the same po-sim on another copy (PO1): no
# collision. Then the same for [008] (KB Q237695) with one protocol only:
# two deliverers of one kind on one user mailbag (a one-user postoffice,
# PO2). Last, the same runs on raw copies, side by side. Unmounts, and
# exits 0 when the observed run shows collisions and counts them, the
# enforced runs are clean and the raw runs show both failures.
#
# Usage: bash tools/demo.sh    (as root, or a user with sudo and /dev/fuse)
# Environment: DEMO_MESSAGES (default 3000) messages the producers add to
# the 1000 already queued; DEMO_DIRECT (default 2000) messages deliverers
# deliver straight into the same user mailbags; DEMO_BUILD (default build)
# the build directory.
set -euo pipefail
cd "$(dirname "$0")/.."

messages=${DEMO_MESSAGES:-3000}
direct=${DEMO_DIRECT:-2000}
build=${DEMO_BUILD:-build}
consumers=external=2,v20=2,gateway=2
producers=2
deliverers=2
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
for tool in tools/mkpo tools/po-sim tools/po-trail tools/mailbag-stat fs/mailbagfs; do
        [ -x "$build/$tool" ] || fail "$build/$tool was not built"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/mailbagfs-demo-XXXXXX")
step "Making a sample postoffice (40 users, 1000 messages queued in INQUEUE3)"
"$build/tools/mkpo" "$work/postoffice" --users 40 --messages 1000 --queue-max 1000
cp -a "$work/postoffice" "$work/raw"
mkdir "$work/share"
cp -a "$work/postoffice" "$work/share/PO1"
cp -a "$work/postoffice" "$work/share/OBS"
# One user, nothing queued: the mailbag two deliverers of one kind share.
"$build/tools/mkpo" "$work/one-user" --users 1 --messages 0 >/dev/null
cp -a "$work/one-user" "$work/raw-one"
cp -a "$work/one-user" "$work/share/PO2"
mkdir "$work/mnt"

sim_args=(--messages "$messages" --consumers "$consumers" --producers "$producers"
          --direct-messages "$direct" --deliverers "$deliverers" --json)
one_args=(--messages 0 --consumers external=1 --direct-messages 1000 --deliverers 2 --json)
echo "po-sim: consumers $consumers, $producers producers adding $messages messages," \
        "$deliverers deliverers delivering $direct straight into the same user mailbags"

step "Mounting mailbagfs in OBSERVE mode over a share holding copies (OBS, PO1, PO2)"
mkfifo "$work/ready"
exec 4<>"$work/ready"
"$build/fs/mailbagfs" "$work/share" "$work/mnt" -f \
        -o ready_fd=4,allow_other,mode=observe 2>"$work/daemon.log" &
daemon_pid=$!
ready=
read -r -t 30 -n 1 -u 4 ready || true
exec 4<&-
[ "$ready" = R ] || { cat "$work/daemon.log" >&2; fail "mailbagfs did not come up"; }
mnt=$work/mnt
echo "mounted $work/share at $mnt, observing: nothing waits, nothing is refused"

step "po-sim THROUGH mailbagfs, OBSERVING, on OBS: the programs collide as on the share today"
"$build/tools/po-sim" "$mnt/OBS" "${sim_args[@]}" >"$work/observe.json" ||
        fail "po-sim through the observing mount failed"

step "mailbag-stat names the overlaps: opens enforcing would have stopped, by protocols"
"$build/tools/mailbag-stat" "$mnt/OBS" | sed -n '/^Overlaps/,$p' | sed 's/^/    /'

step "po-trail names the messages two consumers read, and the programs"
"$build/tools/po-trail" "$mnt/OBS" --duplicates >"$work/duplicates.txt" ||
        fail "po-trail --duplicates failed"
tail -n 1 "$work/duplicates.txt" | sed 's/^/    /'
first=$(awk '/^message / { print $2; exit }' "$work/duplicates.txt")
if [ -n "$first" ]; then
        echo "    for example, po-trail $mnt/OBS $first:"
        "$build/tools/po-trail" "$mnt/OBS" "$first" | tail -n 3 | sed 's/^/      /'
fi

step "Switching the mount to ENFORCE, without unmounting"
setfattr -n user.mailbag.mode -v enforce "$mnt"
echo "    user.mailbag.mode: $(getfattr --absolute-names --only-values -n user.mailbag.mode "$mnt")"

step "po-sim THROUGH mailbagfs, ENFORCING, on PO1: every protocol excludes every other"
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

step "po-sim THROUGH mailbagfs on PO2: both deliverers' KEY opens wait in line"
"$build/tools/po-sim" "$mnt/PO2" "${one_args[@]}" >"$work/mount-one.json" ||
        fail "po-sim through mailbagfs on PO2 failed"

step "mailbag-stat during the enforced run"
sed 's/^/    /' "$snapshot"

step "po-sim on the RAW postoffice: each protocol only excludes its own kind"
"$build/tools/po-sim" "$work/raw" "${sim_args[@]}" >"$work/raw.json" ||
        fail "po-sim on the raw postoffice failed"

step "po-sim on a RAW one-user postoffice: two deliverers of one kind, one mailbag"
"$build/tools/po-sim" "$work/raw-one" "${one_args[@]}" >"$work/raw-one.json" ||
        fail "po-sim on the raw one-user postoffice failed"


step "Results"
python3 - "$work"/raw.json "$work"/mount.json "$work"/raw-one.json "$work"/mount-one.json \
        "$work"/observe.json <<'PY'
import json, sys
raw, mnt, raw_one, mnt_one, observed = (json.load(open(path)) for path in sys.argv[1:6])
rows = [
    ("queued", "queued"),
    ("delivered exactly once", "delivered"),
    ("duplicates", "duplicates"),
    ("lost", "lost"),
    ("missing routing [021]", "missing_routing"),
    ("delivered straight", "direct"),
    ("  exactly once", "direct_delivered"),
    ("  returned with [008]", "direct_returned"),
    ("contention failures [008]", "contention_failures"),
    ("  at user mailbags", "contention_delivery"),
    ("sharing violations", "delivery_refusals"),
    ("mailbags at 4096 records", "full_mailbags"),
    ("wall time (s)", "seconds"),
]
def table(title, columns):
    print(f"    {title:28}" + "".join(f"{name:>16}" for name, _ in columns))
    for label, key in rows:
        fmt = (lambda v: f"{v:.2f}") if key == "seconds" else (lambda v: f"{v:.0f}")
        print(f"    {label:28}" + "".join(f"{fmt(run[key]):>16}" for _, run in columns))
table("all programs (OBS, PO1)",
      [("raw directory", raw), ("observed", observed), ("enforced", mnt)])
print()
table("one kind, one mailbag (PO2)", [("raw directory", raw_one), ("enforced", mnt_one)])
PY
overlaps=$(getfattr --absolute-names --only-values -n user.mailbag.stats "$mnt/OBS" |
           sed -n 's/^stats .* overlaps=\([0-9]*\).*/\1/p')
echo "    overlaps the observing daemon counted on OBS: ${overlaps:-0}" \
        "(po-sim's programs saw $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["cross_protocol_overlaps"])' "$work/observe.json"))"

fusermount3 -u "$mnt"
mnt=
wait "$daemon_pid" || true
daemon_pid=

verdict=$(python3 - "$work"/raw.json "$work"/mount.json "$work"/raw-one.json "$work"/mount-one.json \
        "$work"/observe.json "${overlaps:-0}" <<'PY'
import json, sys
raw, mnt, raw_one, mnt_one, observed = (json.load(open(path)) for path in sys.argv[1:6])
overlaps = int(sys.argv[6])
problems = []
if observed["duplicates"] + observed["missing_routing"] == 0:
    problems.append("the observed run shows no collision: observe mode enforced something")
if overlaps < observed["cross_protocol_overlaps"] or overlaps == 0:
    problems.append(f"the daemon counted {overlaps} overlaps, the programs saw "
                    f"{observed['cross_protocol_overlaps']}")
for name, run in (("mounted", mnt), ("mounted one-user", mnt_one)):
    for key in ("duplicates", "lost", "missing_routing", "contention_failures",
                "direct_duplicates", "direct_lost"):
        if run[key]:
            problems.append(f"the {name} run has {run[key]} {key}")
    if run["delivered"] != run["queued"] or run["direct_delivered"] != run["direct"]:
        problems.append(f"the {name} run did not deliver every message exactly once")
if raw["duplicates"] + raw["missing_routing"] == 0:
    problems.append("the raw run shows no collision: po-sim is not modelling KB Q103960")
for name, run in (("raw", raw), ("raw one-user", raw_one)):
    if run["contention_delivery"] == 0:
        problems.append(f"the {name} run shows no [008]: po-sim is not modelling KB Q237695")
print("; ".join(problems))
PY
)
echo
echo "demo: finished in $((SECONDS - started)) s"
[ -z "$verdict" ] || fail "$verdict"
echo "demo: observing, mailbagfs counted the collisions as in KB Q103960 and named" \
        "the programs; enforcing: none; raw directory: collisions and [008] as in KB Q237695"
