#!/usr/bin/env bash
# The postoffice cycle (tests/bench/bench-cycle.c: per message a P1 and a
# .MAI written, a record appended to INQUEUE3.MBG under an fcntl lock on
# INQUEUE3.KEY; then a consumer reads and removes them all and empties the
# MBG) on a raw tmpfs directory, through mailbagfs (every lease enforced)
# and through libfuse's passthrough_ll and passthrough_fh (compiled here
# from Debian's libfuse3-dev, never copied into the tree), and through
# passthrough_ll mounted with default_permissions (passthrough_ll_perm):
# the kernel then checks permissions as it does for mailbagfs, which costs
# requests of its own. Every target has
# its own fresh postoffice (mkpo --users 20 --messages 0) on a private
# tmpfs; the repeats are interleaved (raw, mailbagfs, passthrough_ll,
# passthrough_fh, then again) and the median is printed as messages per
# second, with ratios to the raw directory and to passthrough_ll, and the
# memory (VmRSS) and descriptors the mailbagfs and passthrough_ll daemons
# hold at the end. Needs root and /dev/fuse.
#
#   bash tests/bench/bench-cycle.sh [BUILD_DIR] [MESSAGES] [REPEATS]
#
# MESSAGES defaults to 3000, REPEATS to 3.
#
# MAILBAGFS_OPTS adds options to the mailbagfs command line (for example
# MAILBAGFS_OPTS='-o cache_timeout=0'), to compare modes.
#
# MAILBAGFS_BEFORE=PATH adds another mailbagfs daemon (the build of an
# earlier commit, say) as a fifth target, "before", in the same
# interleaved runs, to measure a change. MAILBAGFS_BEFORE_OPTS gives it
# options of its own instead of MAILBAGFS_OPTS: the same daemon with and
# without a feature (MAILBAGFS_BEFORE=build/fs/mailbagfs
# MAILBAGFS_BEFORE_OPTS='-o trail=0' measures what the trail costs).
#
# BENCH_STRACE=1 adds two more mailbagfs runs of MESSAGES messages, each on
# a fresh mount of its own: one with strace -f -c attached to the daemon,
# one with the daemon started with -d so that libfuse logs every request
# ("unique: N, opcode: NAME (n), ..."). Prints the daemon's system calls
# and the FUSE requests per opcode, both per message. These runs are
# slowed by strace and by the logging, so their times are not reported.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=tests/bench/bench-lib.sh
. tests/bench/bench-lib.sh

build=${1:-build}
messages=${2:-3000}
repeats=${3:-3}
mailbagfs_opts=${MAILBAGFS_OPTS:-}
before=${MAILBAGFS_BEFORE:-}
before_opts=${MAILBAGFS_BEFORE_OPTS-$mailbagfs_opts}

bash tools/install-deps.sh >/dev/null
[ -f "$build/build.ninja" ] || meson setup "$build" >/dev/null
meson compile -C "$build" fs/mailbagfs tests/bench/bench-cycle tools/mkpo >/dev/null
cycle="$build/tests/bench/bench-cycle"
if [ "${BENCH_STRACE:-0}" = 1 ] && ! command -v strace >/dev/null; then
        echo "bench-cycle: BENCH_STRACE=1 needs strace (Debian package strace)" >&2
        exit 1
fi

work=$(mktemp -d /tmp/mailbagfs-bench-cycle-XXXXXX)
mounted=()
daemons=()
tmpfs_mounted=no
cleanup() {
        bench_stop_mounts
        bench_remove_work
}
# A signal ends the script, and the exit cleans up.
trap cleanup EXIT
trap "exit 1" INT TERM

bench_mount_tmpfs

bench_compile_passthroughs "$work" fh

declare -A daemon_pid
# Each target gets its own fresh copy of the same postoffice.
setup_target() {
        local name=$1 data="$work/tmpfs/data-$1" mnt="$work/mnt-$1"
        mkdir -p "$mnt"
        "$build/tools/mkpo" "$data" --users 20 --messages 0 --seed 7 >/dev/null
        case $name in
        raw) return 0 ;;
        mailbagfs|mailbagfs-strace|mailbagfs-debug|before)
                local debug=() program="$build/fs/mailbagfs" opts=$mailbagfs_opts
                [ "$name" = mailbagfs-debug ] && debug=(-d)
                [ "$name" = before ] && program=$before && opts=$before_opts
                # shellcheck disable=SC2086 # the options are split on purpose
                "$program" "$data" "$mnt" -f "${debug[@]}" $opts 2>"$work/$name.log" & ;;
        passthrough_ll)
                # It keeps a descriptor per inode it has seen: give it all
                # the kernel allows, as mailbagfs takes for itself.
                (ulimit -n "$(ulimit -Hn)"; exec "$work/passthrough_ll" -o source="$data" -f "$mnt") \
                        2>"$work/$name.log" & ;;
        passthrough_ll_perm)
                (ulimit -n "$(ulimit -Hn)"
                 exec "$work/passthrough_ll" -o source="$data" -o default_permissions -f "$mnt") \
                        2>"$work/$name.log" & ;;
        passthrough_fh)
                (ulimit -n "$(ulimit -Hn)"; exec "$work/passthrough_fh" -f "$mnt") 2>"$work/$name.log" & ;;
        esac
        daemon_pid[$name]=$!
        daemons+=("$!")
        bench_wait_mounted "$mnt" bench-cycle
        mounted+=("$mnt")
}

target_dir() {
        case $1 in
        raw) echo "$work/tmpfs/data-raw" ;;
        # passthrough_fh serves /: the backing directory is found under it.
        passthrough_fh) echo "$work/mnt-passthrough_fh$work/tmpfs/data-passthrough_fh" ;;
        *) echo "$work/mnt-$1" ;;
        esac
}

median() {
        sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}

targets=(raw mailbagfs passthrough_ll passthrough_ll_perm passthrough_fh)
[ -n "$before" ] && targets+=(before)
for t in "${targets[@]}"; do setup_target "$t"; done

declare -A times
for _ in $(seq 1 "$repeats"); do
        for t in "${targets[@]}"; do
                times[$t]+="$("$cycle" "$(target_dir "$t")" "$messages") "
        done
done

declare -A rate
for t in "${targets[@]}"; do
        s=$(echo "${times[$t]}" | tr ' ' '\n' | grep . | median)
        rate[$t]=$(awk -v n="$messages" -v s="$s" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }')
done

printf '\nmedian of %s runs, messages per second; %s messages per run; %s\n' \
        "$repeats" "$messages" "$(uname -r)"
[ -n "$mailbagfs_opts" ] && printf 'mailbagfs options: %s\n' "$mailbagfs_opts"
printf '\n%-20s %12s %10s %12s\n' target "messages/s" "rate/raw" "seconds"
for t in "${targets[@]}"; do
        s=$(echo "${times[$t]}" | tr ' ' '\n' | grep . | median)
        awk -v t="$t" -v m="${rate[$t]}" -v r="${rate[raw]}" -v s="$s" \
                'BEGIN { printf "%-20s %12s %10.2f %12.3f\n", t, m, (r > 0 ? m / r : 0), s }'
done
awk -v m="${rate[mailbagfs]}" -v p="${rate[passthrough_ll]}" -v q="${rate[passthrough_ll_perm]}" \
        'BEGIN { printf "messages/s, mailbagfs / passthrough_ll: %.2f, / passthrough_ll_perm: %.2f\n",
                 (p > 0 ? m / p : 0), (q > 0 ? m / q : 0) }'
if [ -n "$before" ]; then
        awk -v m="${rate[mailbagfs]}" -v b="${rate[before]}" \
                'BEGIN { printf "messages/s, mailbagfs / before: %.2f\n", (b > 0 ? m / b : 0) }'
fi
printf 'all runs, seconds:\n'
for t in "${targets[@]}"; do printf '  %-20s %s\n' "$t" "${times[$t]}"; done

printf '\ndaemons at the end (after %s cycles):\n' "$repeats"
for t in mailbagfs passthrough_ll; do
        pid=${daemon_pid[$t]}
        printf '  %-20s pid %s, %s, %s descriptors\n' "$t" "$pid" \
                "$(awk '/^VmRSS:/ { print "VmRSS " $2 " " $3 }' /proc/"$pid"/status)" \
                "$(ls /proc/"$pid"/fd | wc -l)"
done

if [ "${BENCH_STRACE:-0}" = 1 ]; then
        # Two more runs, each on a fresh mount: strace on a daemon started
        # as above, and the request log of one started with -d (whose own
        # writes to the log would swell the system call counts).
        setup_target mailbagfs-strace
        pid=${daemon_pid[mailbagfs-strace]}
        strace -f -c -p "$pid" -o "$work/strace.txt" 2>"$work/strace.err" &
        strace_pid=$!
        daemons+=("$strace_pid")
        # strace says "Process N attached" once it has taken the threads.
        for _ in $(seq 1 100); do
                grep -q attached "$work/strace.err" 2>/dev/null && break
                sleep 0.05
        done
        "$cycle" "$(target_dir mailbagfs-strace)" "$messages" >/dev/null
        kill -INT "$strace_pid"
        wait "$strace_pid" || true

        setup_target mailbagfs-debug
        log="$work/mailbagfs-debug.log"
        # Only the requests of the run itself, not those of the mount.
        skip=$(wc -l <"$log")
        "$cycle" "$(target_dir mailbagfs-debug)" "$messages" >/dev/null

        printf '\nFUSE requests per message, one mailbagfs -d run of %s messages:\n' "$messages"
        printf '  %-20s %8s %8s\n' opcode "/message" total
        tail -n +"$((skip + 1))" "$log" |
                awk -v n="$messages" '/^unique: [0-9]+, opcode: / { sub(/,$/, "", $4); count[$4]++; total++ }
                        END {
                                for (op in count) printf "  %-20s %8.2f %8d\n", op, count[op] / n, count[op]
                                printf "  %-20s %8.2f %8d\n", "(all)", total / n, total
                        }' | sort -k2 -g -r
        printf '\ndaemon system calls per message, one mailbagfs run under strace -f -c:\n'
        printf '  %-20s %8s %8s\n' syscall "/message" total
        awk -v n="$messages" '$1 ~ /^[0-9.]+$/ && NF >= 5 {
                        name = ($NF == "total" ? "(all)" : $NF)
                        printf "  %-20s %8.2f %8d\n", name, $4 / n, $4
                }' "$work/strace.txt" | sort -k2 -g -r
fi
