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
# passthrough_fh, then again, each round starting one target further on)
# and the median is printed as messages per
# second, with ratios to the raw directory and to passthrough_ll, and the
# memory (VmRSS) and descriptors the mailbagfs and passthrough_ll daemons
# hold at the end, and each daemon's CPU time per message over all rounds
# (user and system, from /proc/PID/stat: steadier than the rates when the
# host's speed drifts). Needs root and /dev/fuse.
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
# BENCH_STRACE=1 adds, for each FUSE target that a goal names (mailbagfs,
# passthrough_ll, passthrough_ll_perm), two more runs of MESSAGES
# messages, each on a fresh mount of its own: one with strace -f -y
# attached to the daemon, writing every system call to a file, and one
# with the daemon started with -d, so that libfuse logs every request
# ("unique: N, opcode: NAME (n), ..."; both daemons use libfuse's
# low-level loop, so the lines are alike). The -y names each descriptor,
# which tells the reads of requests and the writes of replies on
# /dev/fuse (read, readv, write, writev, splice) from the daemon's own
# system calls: its work on the backing store, its locks, its threads.
# Prints one row per target: FUSE requests, all system calls and own
# system calls per message, and own system calls per request (own calls of
# the strace run over requests of the -d run), with a line comparing
# mailbagfs' own calls per request to the peers'; then the requests per
# opcode and the system calls by name, per message, side by side. These
# runs are slowed by strace and by the logging, so their times are not
# reported. Where perf is installed (Debian package linux-perf), a third
# run counts the daemon's system calls with perf stat (the kernel's
# raw_syscalls:sys_enter, read and writev tracepoints), which slows it far
# less than strace: what the daemon does by the clock (a name read again
# only after a millisecond, caller.c) shows as it does unobserved. Its own
# calls there are all calls but read and writev (a daemon's other reads,
# of /proc files, are rare). Where the kernel has FUSE tracepoints
# (perf list 'fuse:*'), a fourth run records them, with every read()
# that returns, under perf record -a, and splits each request's time in
# two, per opcode: its wait (from the client's request until a daemon
# thread returns from the read that takes it: the transport and the
# wake-up) and its work (from there until the reply reaches the kernel).
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
        # NAME-strace, NAME-debug, NAME-perf and NAME-phase are the extra
        # runs of BENCH_STRACE=1:
        # the same daemon with the same options, and -d for the debug one.
        local debug=()
        case $name in *-debug) debug=(-d) ;; esac
        case $name in
        raw) return 0 ;;
        mailbagfs|mailbagfs-strace|mailbagfs-debug|mailbagfs-perf|mailbagfs-phase|before)
                local program="$build/fs/mailbagfs" opts=$mailbagfs_opts
                [ "$name" = before ] && program=$before && opts=$before_opts
                # shellcheck disable=SC2086 # the options are split on purpose
                "$program" "$data" "$mnt" -f "${debug[@]}" $opts 2>"$work/$name.log" & ;;
        passthrough_ll|passthrough_ll-strace|passthrough_ll-debug|passthrough_ll-perf|passthrough_ll-phase)
                # It keeps a descriptor per inode it has seen: give it all
                # the kernel allows, as mailbagfs takes for itself.
                (ulimit -n "$(ulimit -Hn)"
                 exec "$work/passthrough_ll" -o source="$data" -f "${debug[@]}" "$mnt") \
                        2>"$work/$name.log" & ;;
        passthrough_ll_perm|passthrough_ll_perm-strace|passthrough_ll_perm-debug|passthrough_ll_perm-perf|passthrough_ll_perm-phase)
                (ulimit -n "$(ulimit -Hn)"
                 exec "$work/passthrough_ll" -o source="$data" -o default_permissions -f "${debug[@]}" "$mnt") \
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
# Each round starts one target further on: on this kind of host the run
# that follows another often goes a few per cent faster than the one
# before it, and a fixed order would hand that to the same target every
# round. The times are kept per target, in round order.
for round in $(seq 0 $((repeats - 1))); do
        for i in $(seq 0 $((${#targets[@]} - 1))); do
                t=${targets[$(((i + round) % ${#targets[@]}))]}
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
# The goal the project tracks: mailbagfs at least as fast as the peer
# whose kernel checks permissions as it does for mailbagfs, and within 10%
# of the one without those checks.
awk -v m="${rate[mailbagfs]}" -v p="${rate[passthrough_ll]}" -v q="${rate[passthrough_ll_perm]}" \
        'BEGIN { printf "goal: mailbagfs / passthrough_ll_perm >= 1.00 (now %.2f), / passthrough_ll >= 0.90 (now %.2f)\n",
                 (q > 0 ? m / q : 0), (p > 0 ? m / p : 0) }'
if [ -n "$before" ]; then
        awk -v m="${rate[mailbagfs]}" -v b="${rate[before]}" \
                'BEGIN { printf "messages/s, mailbagfs / before: %.2f\n", (b > 0 ? m / b : 0) }'
fi
# A machine whose speed drifts during the run (a shared or throttled
# host) moves every target of a round alike: the ratio within each round,
# then its median, is steadier than the ratio of the medians.
round_ratio() {
        paste <(echo "${times[$2]}" | tr ' ' '\n' | grep .) <(echo "${times[mailbagfs]}" | tr ' ' '\n' | grep .) |
                awk '{ print ($2 > 0 ? $1 / $2 : 0) }' | median
}
printf 'median of the ratios within each round, mailbagfs rate over:'
for t in passthrough_ll_perm passthrough_ll ${before:+before}; do
        printf ' %s %.2f' "$t" "$(round_ratio mailbagfs "$t")"
done
printf '\n'
printf 'all runs, seconds:\n'
for t in "${targets[@]}"; do printf '  %-20s %s\n' "$t" "${times[$t]}"; done

# The CPU time each daemon used over all its rounds (utime and stime,
# /proc/PID/stat fields 14 and 15, in clock ticks), per message: steadier
# than the rates on a host whose speed drifts, as the daemons' share of a
# message's time, not the client's or the scheduler's.
ticks=$(getconf CLK_TCK)
printf '\ndaemon CPU time per message, all rounds (user + system, microseconds):\n'
for t in "${targets[@]}"; do
        [ "$t" = raw ] && continue
        pid=${daemon_pid[$t]}
        read -r user system < <(awk '{ print $14, $15 }' /proc/"$pid"/stat)
        awk -v t="$t" -v u="$user" -v s="$system" -v hz="$ticks" -v n=$((messages * repeats)) \
                'BEGIN { printf "  %-20s %6.0f (%.0f + %.0f)\n", t, (u + s) * 1e6 / hz / n,
                         u * 1e6 / hz / n, s * 1e6 / hz / n }'
done

printf '\ndaemons at the end (after %s cycles):\n' "$repeats"
for t in mailbagfs passthrough_ll; do
        pid=${daemon_pid[$t]}
        printf '  %-20s pid %s, %s, %s descriptors\n' "$t" "$pid" \
                "$(awk '/^VmRSS:/ { print "VmRSS " $2 " " $3 }' /proc/"$pid"/status)" \
                "$(find /proc/"$pid"/fd -mindepth 1 | wc -l)"
done

if [ "${BENCH_STRACE:-0}" = 1 ]; then
        # Waits until the daemon PID has made no read or write for 0.2 s
        # (at most 10 s): the kernel sends some requests, a RELEASE after
        # the last close for one, after the cycle has returned.
        settle() {
                local earlier later
                later=$(cat /proc/"$1"/io)
                for _ in $(seq 1 50); do
                        sleep 0.2
                        earlier=$later
                        later=$(cat /proc/"$1"/io)
                        [ "$later" = "$earlier" ] && return 0
                done
        }
        # Reads strace -f -y output; prints each system call's name and how
        # many times it was made. A call that another thread interrupted is
        # split into an "<unfinished ...>" line and a "<... NAME resumed>"
        # line: it is counted once, with the first half, the one that names
        # the descriptor. The reads of requests and writes of replies, the
        # calls on /dev/fuse, are counted apart as "NAME /dev/fuse".
        count_syscalls() {
                awk '{
                        line = $0
                        sub(/^[0-9]+ +/, "", line)
                        # Signals, exits and resumed halves are no new call.
                        if (line !~ /^[a-z_0-9]+\(/)
                                next
                        name = line
                        sub(/\(.*/, "", name)
                        if (name ~ /^(read|readv|write|writev|splice)$/ && line ~ /<\/dev\/fuse>/)
                                name = name " /dev/fuse"
                        count[name]++
                }
                END { for (name in count) print name "\t" count[name] }'
        }
        # Reads a -d log; prints each opcode and how many requests had it.
        count_requests() {
                awk '/^unique: [0-9]+, opcode: / { sub(/,$/, "", $4); count[$4]++ }
                        END { for (op in count) print op "\t" count[op] }'
        }
        # Reads perf script output (pid/tid, time, event, fields) of the
        # kernel's fuse_request_send and fuse_request_end tracepoints and of
        # every read() that returned; prints, per opcode, the requests
        # answered and the seconds they spent waiting (from the client's
        # request until a thread of daemon PID returned from the read that
        # took it) and being worked on (from there until the reply reached
        # the kernel). A request is matched to the last read of the thread
        # that answered it: no matching by order, which FORGET (no reply)
        # and requests answered out of turn would upset.
        request_phases() {
                awk -v daemon="$1" '
                        { split($1, id, "/"); at = $2 + 0 }
                        $3 == "syscalls:sys_exit_read:" { if (id[1] == daemon) last[id[2]] = at; next }
                        $3 == "fuse:fuse_request_send:" {
                                key = $5 " " $7
                                sent[key] = at
                                op[key] = $10
                                gsub(/[()]|FUSE_/, "", op[key])
                                next
                        }
                        $3 == "fuse:fuse_request_end:" {
                                key = $5 " " $7
                                if ((key in sent) && (id[2] in last) && last[id[2]] >= sent[key]) {
                                        o = op[key]
                                        n[o]++
                                        waited[o] += last[id[2]] - sent[key]
                                        worked[o] += at - last[id[2]]
                                }
                                delete sent[key]
                                delete op[key]
                        }
                        END { for (o in n) printf "%s\t%d\t%.9f\t%.9f\n", o, n[o], waited[o], worked[o] }'
        }
        # Runs the cycle on a fresh mount of target NAME while perf watches,
        # with the arguments given (DAEMON among them stands for the
        # daemon's pid); its messages go to $work/NAME.perf.err.
        cycle_under_perf() {
                local name=$1 args=() arg pid perf_pid
                shift
                setup_target "$name"
                pid=${daemon_pid[$name]}
                for arg in "$@"; do args+=("${arg/#DAEMON/$pid}"); done
                perf "${args[@]}" 2>"$work/$name.perf.err" &
                perf_pid=$!
                daemons+=("$perf_pid")
                sleep 0.5
                "$cycle" "$(target_dir "$name")" "$messages" >/dev/null
                settle "$pid"
                kill -INT "$perf_pid"
                wait "$perf_pid" || true
        }
        # The kernel has tracepoints for FUSE requests (6.x): the time of
        # each request is split into its wait and its work.
        phases=no
        if command -v perf >/dev/null && perf list 'fuse:*' 2>/dev/null | grep -q fuse_request_send; then
                phases=yes
        fi

        # Two more runs of each FUSE target, each on a fresh mount: strace on
        # a daemon started as above, and the request log of one started with
        # -d (whose own writes to the log would swell the system call
        # counts).
        traced=(mailbagfs passthrough_ll passthrough_ll_perm)
        for t in "${traced[@]}"; do
                setup_target "$t-strace"
                pid=${daemon_pid[$t-strace]}
                strace -f -y -p "$pid" -o "$work/$t.strace" 2>"$work/$t.strace.err" &
                strace_pid=$!
                daemons+=("$strace_pid")
                # strace says "Process N attached" once it has taken the threads.
                for _ in $(seq 1 100); do
                        grep -q attached "$work/$t.strace.err" 2>/dev/null && break
                        sleep 0.05
                done
                "$cycle" "$(target_dir "$t-strace")" "$messages" >/dev/null
                settle "$pid"
                kill -INT "$strace_pid"
                wait "$strace_pid" || true
                count_syscalls <"$work/$t.strace" >"$work/$t.syscalls"

                setup_target "$t-debug"
                log="$work/$t-debug.log"
                # Only the requests of the run itself, not those of the mount.
                skip=$(wc -l <"$log")
                "$cycle" "$(target_dir "$t-debug")" "$messages" >/dev/null
                settle "${daemon_pid[$t-debug]}"
                tail -n +"$((skip + 1))" "$log" | count_requests >"$work/$t.requests"

                if command -v perf >/dev/null; then
                        cycle_under_perf "$t-perf" stat -x , \
                                -e raw_syscalls:sys_enter,syscalls:sys_enter_read,syscalls:sys_enter_writev \
                                -p DAEMON -o "$work/$t.perf"
                fi

                if [ "$phases" = yes ]; then
                        cycle_under_perf "$t-phase" record -a -q -o "$work/$t.phase.data" \
                                -e fuse:fuse_request_send,fuse:fuse_request_end,syscalls:sys_exit_read
                        perf script -i "$work/$t.phase.data" -F pid,tid,time,event,trace 2>/dev/null |
                                request_phases "${daemon_pid[$t-phase]}" >"$work/$t.phases"
                        rm -f "$work/$t.phase.data"
                fi
        done

        # An awk function: the largest of a[KEY, 1..F], the targets' values
        # for one row, by which the side-by-side tables are sorted.
        largest_of='function largest_of(a, key, f,    i, top) {
                top = 0
                for (i = 1; i <= f; i++)
                        if (a[key, i] > top)
                                top = a[key, i]
                return top
        }'
        # Prints the counts in each target's file $work/TARGET.SUFFIX side by
        # side, per message, the largest first (by the largest of the
        # targets' counts), and their sums last.
        side_by_side() {
                local label=$1 suffix=$2 files=() t
                for t in "${traced[@]}"; do files+=("$work/$t.$suffix"); done
                printf '  %-22s' "$label"
                printf ' %20s' "${traced[@]}"
                printf '\n'
                awk -F '\t' -v n="$messages" "$largest_of"'
                        FNR == 1 { f++ }
                        { v[$1, f] = $2; names[$1] = 1; sum[f] += $2 }
                        END {
                                for (name in names) {
                                        printf "%d\t  %-22s", largest_of(v, name, f), name
                                        for (i = 1; i <= f; i++)
                                                printf " %20.2f", v[name, i] / n
                                        printf "\n"
                                }
                                printf "-1\t  %-22s", "(all)"
                                for (i = 1; i <= f; i++)
                                        printf " %20.2f", sum[i] / n
                                printf "\n"
                        }' "${files[@]}" | sort -t "$(printf '\t')" -k1,1gr -k2 | cut -f2-
        }

        printf '\nFUSE requests (from a -d run) and daemon system calls (from a run under\n'
        printf 'strace -f), per message; %s messages per run; own calls are those not on\n' "$messages"
        printf '/dev/fuse, that is besides reading requests and writing replies:\n'
        printf '  %-20s %10s %10s %10s %12s\n' target requests "sys calls" "own calls" "own/request"
        declare -A own_per_request
        for t in "${traced[@]}"; do
                requests=$(awk -F '\t' '{ s += $2 } END { print s + 0 }' "$work/$t.requests")
                calls=$(awk -F '\t' '{ s += $2 } END { print s + 0 }' "$work/$t.syscalls")
                own=$(awk -F '\t' '$1 !~ / \/dev\/fuse$/ { s += $2 } END { print s + 0 }' "$work/$t.syscalls")
                own_per_request[$t]=$(awk -v o="$own" -v r="$requests" 'BEGIN { printf "%.2f", (r > 0 ? o / r : 0) }')
                awk -v t="$t" -v n="$messages" -v r="$requests" -v c="$calls" -v o="$own" -v p="${own_per_request[$t]}" \
                        'BEGIN { printf "  %-20s %10.2f %10.2f %10.2f %12s\n", t, r / n, c / n, o / n, p }'
        done
        printf 'own system calls per request: mailbagfs %s, passthrough_ll %s, passthrough_ll_perm %s\n' \
                "${own_per_request[mailbagfs]}" "${own_per_request[passthrough_ll]}" \
                "${own_per_request[passthrough_ll_perm]}"

        if command -v perf >/dev/null; then
                printf '\ndaemon system calls counted by perf stat (no strace), per message; own\n'
                printf 'calls: all but read and writev; per request: over the -d run'"'"'s requests:\n'
                printf '  %-20s %10s %10s %12s\n' target "sys calls" "own calls" "own/request"
                for t in "${traced[@]}"; do
                        requests=$(awk -F '\t' '{ s += $2 } END { print s + 0 }' "$work/$t.requests")
                        awk -F , -v t="$t" -v n="$messages" -v r="$requests" '
                                $3 == "raw_syscalls:sys_enter" { all = $1 }
                                $3 == "syscalls:sys_enter_read" || $3 == "syscalls:sys_enter_writev" { fuse += $1 }
                                END { printf "  %-20s %10.2f %10.2f %12.2f\n", t, all / n, (all - fuse) / n,
                                             (r > 0 ? (all - fuse) / r : 0) }' "$work/$t.perf"
                done
        else
                printf '\n(perf not found, Debian package linux-perf: no count without strace)\n'
        fi

        printf '\nFUSE requests per message, by opcode:\n'
        side_by_side opcode requests
        printf '\ndaemon system calls per message, by name (NAME /dev/fuse: requests and replies):\n'
        side_by_side "system call" syscalls

        if [ "$phases" = yes ]; then
                printf '\nwhere the requests'"'"' time goes (a run under perf record of the kernel'"'"'s FUSE\n'
                printf 'tracepoints and the daemons'"'"' reads, which slows every target alike): per\n'
                printf 'opcode, requests answered a message, then microseconds each waited for a\n'
                printf 'daemon thread to take it and was worked on until its reply; last, each\n'
                printf 'target'"'"'s sums over a message:\n'
                printf '  %-12s' opcode
                for t in "${traced[@]}"; do printf ' %26s' "$t"; done
                printf '\n  %-12s' ''
                for t in "${traced[@]}"; do printf ' %8s %8s %8s' n wait work; done
                printf '\n'
                files=()
                for t in "${traced[@]}"; do files+=("$work/$t.phases"); done
                awk -F '\t' -v n="$messages" "$largest_of"'
                        FNR == 1 { f++ }
                        {
                                c[$1, f] = $2; w[$1, f] = $3; k[$1, f] = $4; ops[$1] = 1
                                sn[f] += $2; sw[f] += $3; sk[f] += $4
                        }
                        END {
                                for (o in ops) {
                                        printf "%d\t  %-12s", largest_of(c, o, f), o
                                        for (i = 1; i <= f; i++)
                                                if (c[o, i] > 0)
                                                        printf " %8.2f %8.1f %8.1f", c[o, i] / n,
                                                               w[o, i] / c[o, i] * 1e6, k[o, i] / c[o, i] * 1e6
                                                else
                                                        printf " %8s %8s %8s", "-", "-", "-"
                                        printf "\n"
                                }
                                printf "-1\t  %-12s", "(message)"
                                for (i = 1; i <= f; i++)
                                        printf " %8.2f %8.1f %8.1f", sn[i] / n, sw[i] / n * 1e6, sk[i] / n * 1e6
                                printf "\n"
                        }' "${files[@]}" | sort -t "$(printf '\t')" -k1,1gr -k2 | cut -f2-
        else
                printf '\n(no FUSE tracepoints in perf list '"'"'fuse:*'"'"': no split of request time)\n'
        fi
fi
