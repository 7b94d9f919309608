#!/usr/bin/env bash
# tests/soak/soak.sh - a long mixed-protocol run through a mailbagfs mount
# that must lose nothing, with consumers killed at random and the daemon
# itself killed and restarted once.
#
#   bash tests/soak/soak.sh [--messages N] [--kill-consumers-every MS]
#        [--restart-at PERCENT] [--consumers SPEC] [--producers K] [--seed S]
#        [--timeout SEC] [--work DIR] [--json]
#
# A sample postoffice (mkpo) is mounted with mailbagfs -f in the
# background, without auto_unmount, as fstab and systemd mounts run it.
# po-sim runs External, -V20 and gateway consumers and Connector producers
# through the mount, with --kill-consumers-every (a random consumer gets
# SIGKILL and is started again) and --restart-workers (a program cut off
# by the dead mount is started again, as its supervisor would). Once the
# producers have taken PERCENT of the message numbers, the daemon gets
# SIGKILL; the next start is refused on the dead mount with a one-line
# message naming the command to run, which is run, and the daemon is
# started again on the same mountpoint. po-sim then finishes and the tally
# is printed.
#
# Passes (exit 0) when the daemon was restarted, po-sim completed, no
# message was lost, no [021] and no duplicate came from anything but a
# consumer that died with the message in hand (delivered, queue record not
# yet removed: the order of Q136379). Exit 1 otherwise, 2 on bad arguments.
#
# Programs come from MAILBAGFS, PO_SIM and MKPO, or from build/ of this
# tree. --work DIR keeps everything in DIR (made if needed; the caller
# removes it), with daemon.pid and po-sim.pid for a caller that must clean
# up after this script was killed; otherwise a temporary directory is used
# and removed.
set -euo pipefail

messages=100000
kill_every=300
restart_at=40
consumers="external=2,v20=2,gateway=2"
producers=2
seed=1
timeout=3600
work=""
json=0

usage() {
        echo "usage: soak.sh [--messages N] [--kill-consumers-every MS] [--restart-at PERCENT]" \
             "[--consumers SPEC] [--producers K] [--seed S] [--timeout SEC] [--work DIR]" \
             "[--json]" >&2
        exit 2
}

number() {
        [[ "$2" =~ ^[0-9]+$ ]] || { echo "soak.sh: $1 needs a number" >&2; usage; }
}

while (($#)); do
        case "$1" in
        --messages) number "$1" "${2-}"; messages=$2; shift 2 ;;
        --kill-consumers-every) number "$1" "${2-}"; kill_every=$2; shift 2 ;;
        --restart-at) number "$1" "${2-}"; restart_at=$2; shift 2 ;;
        --consumers) consumers=${2?}; shift 2 ;;
        --producers) number "$1" "${2-}"; producers=$2; shift 2 ;;
        --seed) number "$1" "${2-}"; seed=$2; shift 2 ;;
        --timeout) number "$1" "${2-}"; timeout=$2; shift 2 ;;
        --work) work=${2?}; shift 2 ;;
        --json) json=1; shift ;;
        *) usage ;;
        esac
done
((restart_at >= 1 && restart_at <= 90)) || { echo "soak.sh: --restart-at is 1..90" >&2; usage; }
((messages >= 100)) || { echo "soak.sh: --messages is at least 100" >&2; usage; }

tree=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MAILBAGFS=${MAILBAGFS:-$tree/build/fs/mailbagfs}
PO_SIM=${PO_SIM:-$tree/build/tools/po-sim}
MKPO=${MKPO:-$tree/build/tools/mkpo}
for program in "$MAILBAGFS" "$PO_SIM" "$MKPO"; do
        [[ -x "$program" ]] || { echo "soak.sh: $program is not built" >&2; exit 2; }
done

remove_work=0
if [[ -z "$work" ]]; then
        work=$(mktemp -d "${TMPDIR:-/tmp}/mailbagfs-soak.XXXXXX")
        remove_work=1
fi
mkdir -p "$work"
work=$(cd "$work" && pwd)
backing=$work/backing
mnt=$work/mnt
log=$work/daemon.log
daemon=""
sim=""

cleanup() {
        local status=$?
        set +e # everything below is tried, whatever fails
        [[ -n "$sim" ]] && kill -KILL "$sim" 2>/dev/null && wait "$sim" 2>/dev/null
        [[ -n "$daemon" ]] && kill -TERM "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null
        fusermount3 -u -z "$mnt" 2>/dev/null || true
        rm -f "$work/daemon.pid" "$work/po-sim.pid"
        ((remove_work)) && rm -rf "$work"
        exit "$status"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

mkdir -p "$backing" "$mnt"
# Enough users that no mailbag reaches its 4096-record limit.
users=$((messages / 2000 + 20))
"$MKPO" "$backing" --users "$users" --messages 100 --queue-max 100 --seed "$seed" >/dev/null

# Starts the daemon in the foreground, in the background; 0 once it
# signals readiness, 1 when it exits first (its log says why).
start_daemon() {
        local fifo=$work/ready byte=""
        rm -f "$fifo"
        mkfifo "$fifo"
        exec 3<>"$fifo"
        rm -f "$fifo"
        "$MAILBAGFS" -f "$backing" "$mnt" -o ready_fd=3 2>>"$log" &
        daemon=$!
        echo "$daemon" >"$work/daemon.pid"
        while kill -0 "$daemon" 2>/dev/null; do
                if read -r -t 1 -n 1 -u 3 byte && [[ "$byte" == R ]]; then
                        exec 3<&-
                        return 0
                fi
        done
        exec 3<&-
        wait "$daemon" || true
        daemon=""
        return 1
}

# Starts the daemon again over the mount its predecessor left, following
# the one-line refusal of each start: it names the fusermount3 command to
# run (only "fusermount3 -u [-z] MNT" is accepted from it). Each refusal is
# kept in $refusals for the report.
refusals=()
restart_daemon() {
        local line command
        for _ in 1 2 3 4 5 6 7 8 9 10; do
                local lines_before
                lines_before=$(wc -l <"$log")
                start_daemon && return 0
                line=$(tail -n +"$((lines_before + 1))" "$log" | grep "^mailbagfs: mountpoint" |
                       tail -n 1 || true)
                [[ -n "$line" ]] || { echo "soak.sh: mailbagfs did not restart:" >&2;
                                      tail -n 5 "$log" >&2; exit 1; }
                refusals+=("$line")
                command=$(sed -n "s/.*'\(fusermount3 -u\( -z\)\? [^']*\)'.*/\1/p" <<<"$line")
                case "$command" in
                "fusermount3 -u -z $mnt") fusermount3 -u -z "$mnt" ;;
                "fusermount3 -u $mnt") fusermount3 -u "$mnt" || sleep 0.2 ;;
                *) echo "soak.sh: unexpected refusal: $line" >&2; exit 1 ;;
                esac
        done
        echo "soak.sh: mailbagfs did not restart after 10 attempts" >&2
        exit 1
}

# The next message number, from the backing store's GLB/CONTROL.GLB
# (little-endian at offset 4).
next_message() {
        od -An -tu4 -j4 -N4 "$backing/GLB/CONTROL.GLB" | tr -d ' '
}

start_daemon || { echo "soak.sh: mailbagfs did not start:" >&2; cat "$log" >&2; exit 1; }
first=$(next_message)

start=$(date +%s%N)
"$PO_SIM" "$mnt" --messages "$messages" --consumers "$consumers" --producers "$producers" \
        --seed "$seed" --kill-consumers-every "$kill_every" --restart-workers \
        --timeout "$timeout" --json >"$work/po-sim.json" 2>"$work/po-sim.err" &
sim=$!
echo "$sim" >"$work/po-sim.pid"

# The daemon dies once the producers are PERCENT of the way.
target=$((first + messages * restart_at / 100))
restarted=0
while kill -0 "$sim" 2>/dev/null; do
        if (($(next_message) >= target)); then
                kill -KILL "$daemon"
                wait "$daemon" 2>/dev/null || true
                daemon=""
                # The dead mount refuses the next start with one line naming
                # the command that clears it: follow it, and start again.
                restart_daemon
                restarted=1
                break
        fi
        sleep 0.1
done
set +e
wait "$sim"
sim_status=$?
set -e
sim=""
rm -f "$work/po-sim.pid"
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
seconds=$((elapsed_ms / 1000)).$(printf %03d $((elapsed_ms % 1000)))
result=$(cat "$work/po-sim.json")

field() {
        local value
        value=$(grep -o "\"$1\": [a-z0-9.]*" <<<"$result" | head -n 1 | sed 's/.*: //')
        echo "${value:-missing}"
}

verdict=ok
why=()
[[ -n "$result" ]] || { verdict=FAILED; why+=("po-sim printed no result"); }
((sim_status == 0)) || { verdict=FAILED; why+=("po-sim exited with $sim_status"); }
((restarted)) || { verdict=FAILED; why+=("po-sim finished before the daemon was killed"); }
[[ "$(field lost)" == 0 ]] || { verdict=FAILED; why+=("messages were lost"); }
[[ "$(field missing_routing_other)" == 0 ]] || { verdict=FAILED; why+=("[021] not after a death"); }
[[ "$(field duplicates_unexplained)" == 0 ]] || { verdict=FAILED; why+=("unexplained duplicates"); }
[[ "$(field still_queued)" == 0 ]] || { verdict=FAILED; why+=("the queue was not drained"); }

if ((json)); then
        printf '{"daemon_restarts": %d, "daemon_refusals": %d, "soak_seconds": %s, ' \
               "$restarted" "${#refusals[@]}" "$seconds"
        printf '"verdict": "%s", "po_sim": %s}\n' "$verdict" "${result:-null}"
else
        cat <<EOF
soak: $messages messages, consumers $consumers, $producers producers, seed $seed
  queued                       $(field queued)
  delivered exactly once       $(field delivered)
  lost                         $(field lost)
  duplicates                   $(field duplicates)
    in hand when killed        $(field duplicates_explained)
    unexplained                $(field duplicates_unexplained)
  [021]                        $(field missing_routing)  ($(field missing_routing_other) not after a death)
  [008]                        $(field contention_failures)
  consumers killed             $(field kills)  ($(field kills_in_hand) with a message in hand)
  I/O failures restarted       $(field io_exits)  ($(field io_in_hand) with a message in hand)
  worker restarts              $(field restarts)
  interrupted while queued     $(field interrupted)
  daemon killed and restarted  $restarted
$(for line in "${refusals[@]}"; do echo "    refused: ${line#mailbagfs: }"; done)
  wall time                    $seconds s
soak: $verdict${why:+: ${why[*]}}
EOF
fi
if [[ "$verdict" != ok ]]; then
        echo "soak.sh: po-sim's errors (last lines):" >&2
        tail -n 20 "$work/po-sim.err" >&2
        exit 1
fi
