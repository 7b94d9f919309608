#!/usr/bin/env bash
# What mailbagfs costs behind Samba: one private smbd on 127.0.0.1 serves
# three shares of the same postoffice (mkpo --users 20 --messages 0), each
# its own copy on a private tmpfs: [raw] the directory itself, [mbfs] a
# mailbagfs mount of it, [ptll] a passthrough_ll mount of it (libfuse's
# example, compiled here from Debian's libfuse3-dev, never copied into the
# tree). All three shares use the share options the interop tests use
# (samba_postoffice_share_options in tests/interop/samba-fixture.c). With
# smbclient, FILES files of 4 KiB are put into MAI/MA0, got back and
# deleted, one smbclient session per phase, each checked afterwards; the
# repeats are interleaved (raw, mbfs, ptll, then again) and the median
# seconds of each phase and of the whole are printed with the ratio to
# [raw], then the line the project tracks: the whole through mailbagfs and
# through passthrough_ll against [raw], with the goal that mailbagfs take
# at most 1.5 times as long as [raw]. MAI/MA0 holds plain message files,
# on which mailbagfs takes no lease. Needs root, /dev/fuse, smbd and
# smbpasswd (Debian samba: tools/install-deps.sh test, which installs
# smbclient too).
#
#   bash tests/bench/bench-smb.sh [BUILD_DIR] [FILES] [REPEATS]
#
# FILES defaults to 500, REPEATS to 3. smbd listens on 127.0.0.1 only, on
# port BENCH_SMB_PORT (default 4455), with its configuration, passdb,
# state, locks, pid and logs in the benchmark's temporary directory; the
# login is root with a random password in that private passdb.
# MAILBAGFS_OPTS adds options to the mailbagfs command line.
# MAILBAGFS_BEFORE=PATH adds a fourth share, [before], served by another
# mailbagfs daemon (an earlier build, or one built against another
# libfuse), in the same interleaved runs.
# BENCH_SMB_GLOBAL adds a line to smbd's [global] section, to measure a
# site's Samba setting (BENCH_SMB_GLOBAL='store dos attributes = no': no
# user.DOSATTRIB read and written for each file).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=tests/bench/bench-lib.sh
. tests/bench/bench-lib.sh

build=${1:-build}
files=${2:-500}
repeats=${3:-3}
port=${BENCH_SMB_PORT:-4455}
mailbagfs_opts=${MAILBAGFS_OPTS:-}
before=${MAILBAGFS_BEFORE:-}

bash tools/install-deps.sh test >/dev/null
for tool in smbd smbpasswd smbclient; do
        if ! command -v "$tool" >/dev/null && ! [ -x "/usr/sbin/$tool" ]; then
                echo "bench-smb: $tool not found (Debian packages samba, smbclient)" >&2
                exit 1
        fi
done
smbd=$(command -v smbd || echo /usr/sbin/smbd)
if ss -Hltn "sport = :$port" | grep -q .; then
        echo "bench-smb: port $port is in use; choose another with BENCH_SMB_PORT" >&2
        exit 1
fi
[ -f "$build/build.ninja" ] || meson setup "$build" >/dev/null
meson compile -C "$build" fs/mailbagfs tools/mkpo >/dev/null

work=$(mktemp -d /tmp/mailbagfs-bench-smb-XXXXXX)
mounted=()
daemons=()
smbd_pid=
tmpfs_mounted=no
cleanup() {
        if [ -n "$smbd_pid" ]; then
                # smbd leads a process group of its own, with the children
                # that serve the connections: the group is ended together.
                kill -- "-$smbd_pid" 2>/dev/null || true
                wait "$smbd_pid" 2>/dev/null || true
        fi
        bench_stop_mounts
        bench_remove_work
}
# A signal ends the script, and the exit cleans up.
trap cleanup EXIT
trap "exit 1" INT TERM

bench_mount_tmpfs

bench_compile_passthroughs "$work"

# share name, and the directory smbd serves for it
declare -A share_path=([raw]="$work/tmpfs/data-raw" [mbfs]="$work/mnt-mbfs" [ptll]="$work/mnt-ptll")
declare -A backing=([raw]="$work/tmpfs/data-raw" [mbfs]="$work/tmpfs/data-mbfs" [ptll]="$work/tmpfs/data-ptll")
shares=(raw mbfs ptll)
if [ -n "$before" ]; then
        share_path[before]="$work/mnt-before"
        backing[before]="$work/tmpfs/data-before"
        shares+=(before)
fi
for s in "${shares[@]}"; do
        "$build/tools/mkpo" "${backing[$s]}" --users 20 --messages 0 --seed 7 >/dev/null
done
# smbd serves the clients' users, not the one that mounted: allow_other,
# as README-interop.md recommends.
mkdir "$work/mnt-mbfs" "$work/mnt-ptll"
# shellcheck disable=SC2086 # MAILBAGFS_OPTS is split on purpose
"$build/fs/mailbagfs" "${backing[mbfs]}" "$work/mnt-mbfs" -f -o allow_other $mailbagfs_opts \
        2>"$work/mailbagfs.log" &
daemons+=("$!"); bench_wait_mounted "$work/mnt-mbfs" bench-smb; mounted+=("$work/mnt-mbfs")
(ulimit -n "$(ulimit -Hn)"; exec "$work/passthrough_ll" -o source="${backing[ptll]}",allow_other -f "$work/mnt-ptll") \
        2>"$work/passthrough_ll.log" &
daemons+=("$!"); bench_wait_mounted "$work/mnt-ptll" bench-smb; mounted+=("$work/mnt-ptll")
if [ -n "$before" ]; then
        mkdir "$work/mnt-before"
        # shellcheck disable=SC2086 # MAILBAGFS_OPTS is split on purpose
        "$before" "${backing[before]}" "$work/mnt-before" -f -o allow_other $mailbagfs_opts \
                2>"$work/before.log" &
        daemons+=("$!"); bench_wait_mounted "$work/mnt-before" bench-smb
        mounted+=("$work/mnt-before")
fi

# The same global section and share options as the interop tests' private
# smbd (tests/interop/samba-fixture.c), where each line is explained.
smb="$work/smb"
mkdir -p "$smb"/{private,lock,state,cache,pid,ncalrpc,binddns}
conf="$smb/smb.conf"
{
        cat <<EOF
[global]
	server role = standalone server
	interfaces = 127.0.0.1
	bind interfaces only = yes
	smb ports = $port
	disable netbios = yes
	private dir = $smb/private
	lock directory = $smb/lock
	state directory = $smb/state
	cache directory = $smb/cache
	pid directory = $smb/pid
	ncalrpc dir = $smb/ncalrpc
	binddns dir = $smb/binddns
	log file = $smb/log.%m
	passdb backend = tdbsam:$smb/private/passdb.tdb
	map to guest = never
	usershare path =
	load printers = no
	printing = bsd
	printcap name = /dev/null
	disable spoolss = yes
EOF
        [ -z "${BENCH_SMB_GLOBAL:-}" ] || printf '\t%s\n' "$BENCH_SMB_GLOBAL"
        for s in "${shares[@]}"; do
                cat <<EOF

[$s]
	path = ${share_path[$s]}
	read only = no
	oplocks = no
	level2 oplocks = no
	kernel oplocks = no
	kernel share modes = no
	posix locking = yes
	strict locking = yes
	case sensitive = yes
	default case = upper
	preserve case = no
	short preserve case = no
	mangled names = no
EOF
        done
} >"$conf"

password="Pw-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
printf '%s\n%s\n' "$password" "$password" | smbpasswd -c "$conf" -a -s root >"$smb/smbpasswd.log" 2>&1 || {
        echo "bench-smb: smbpasswd could not add root to the private passdb:" >&2
        cat "$smb/smbpasswd.log" >&2
        exit 1
}
# Without --no-process-group smbd makes a process group of its own: on
# exit it signals its whole group, which must not be this script's.
"$smbd" --foreground --debug-stdout -d 1 -s "$conf" >"$smb/smbd.log" 2>&1 &
smbd_pid=$!
for _ in $(seq 1 200); do
        ss -Hltn "sport = :$port" | grep -q 127.0.0.1 && break
        if ! kill -0 "$smbd_pid" 2>/dev/null; then
                echo "bench-smb: smbd exited:" >&2
                tail -20 "$smb/smbd.log" >&2
                exit 1
        fi
        sleep 0.05
done
ss -Hltn "sport = :$port" | grep -q 127.0.0.1 || { echo "bench-smb: smbd is not listening on 127.0.0.1:$port" >&2; exit 1; }

# The files to put, and where the gets land: on the tmpfs too.
mkdir "$work/tmpfs/put" "$work/tmpfs/got"
names=()
for i in $(seq 1 "$files"); do
        names+=("$(printf 'F%07X.MAI' "$i")")
done
head -c 4096 /dev/urandom | (cd "$work/tmpfs/put" && tee "${names[@]}" >/dev/null)
commands() {
        printf 'prompt off\ncd MAI\\MA0\nlcd %s\n' "$2"
        for n in "${names[@]}"; do printf '%s %s\n' "$1" "$n"; done
}
commands put "$work/tmpfs/put" >"$work/put.cmd"
commands get "$work/tmpfs/got" >"$work/get.cmd"
commands del "$work/tmpfs/got" >"$work/del.cmd"

now() { date +%s.%N; }
# One smbclient session running a command list; prints its seconds.
session() {
        local share=$1 phase=$2 start end
        start=$(now)
        smbclient "//127.0.0.1/$share" -p "$port" -U "root%$password" -s "$conf" \
                <"$work/$phase.cmd" >"$work/$share.$phase.out" 2>&1 || {
                echo "bench-smb: smbclient $phase on [$share] failed:" >&2
                tail -20 "$work/$share.$phase.out" >&2
                exit 1
        }
        end=$(now)
        awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }'
}
# smbclient reading commands from its input goes on after a failed one:
# every phase is checked on the backing directory, outside the timing.
check() {
        local share=$1 phase=$2 count folder="${backing[$1]}/MAI/MA0"
        case $phase in
        put) count=$(find "$folder" -name 'F*.MAI' -size 4096c | wc -l) ;;
        get) count=$(find "$work/tmpfs/got" -name 'F*.MAI' -size 4096c | wc -l) ;;
        del) count=$((files - $(find "$folder" -name 'F*.MAI' | wc -l))) ;;
        esac
        if [ "$count" -ne "$files" ]; then
                echo "bench-smb: $phase on [$share]: $count of $files files done; smbclient said:" >&2
                grep -v '^smb:' "$work/$share.$phase.out" | tail -20 >&2
                exit 1
        fi
}

phases=(put get del)
declare -A times
for _ in $(seq 1 "$repeats"); do
        for s in "${shares[@]}"; do
                total=0
                for p in "${phases[@]}"; do
                        t=$(session "$s" "$p")
                        check "$s" "$p"
                        times[$s,$p]+="$t "
                        total=$(awk -v a="$total" -v b="$t" 'BEGIN { printf "%.3f", a + b }')
                done
                times[$s,total]+="$total "
                rm -f "$work/tmpfs/got"/F*.MAI
        done
done

median() {
        tr ' ' '\n' | grep . | sort -g |
                awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}

printf '\nmedian of %s runs, seconds; %s files of 4 KiB over SMB (%s, smbclient %s); %s\n' \
        "$repeats" "$files" "$("$smbd" --version)" "$(smbclient --version | awk '{ print $2 }')" "$(uname -r)"
[ -n "$mailbagfs_opts" ] && printf 'mailbagfs options: %s\n' "$mailbagfs_opts"
[ -n "${BENCH_SMB_GLOBAL:-}" ] && printf 'smbd [global] also: %s\n' "$BENCH_SMB_GLOBAL"
printf '\n%-6s %9s %9s %9s %9s %9s\n' share put get delete total "time/raw"
declare -A med
for s in "${shares[@]}"; do
        for p in "${phases[@]}" total; do
                med[$s,$p]=$(echo "${times[$s,$p]}" | median)
        done
done
for s in "${shares[@]}"; do
        awk -v s="$s" -v a="${med[$s,put]}" -v b="${med[$s,get]}" -v c="${med[$s,del]}" \
                -v t="${med[$s,total]}" -v r="${med[raw,total]}" \
                'BEGIN { printf "%-6s %9.3f %9.3f %9.3f %9.3f %9.2f\n", s, a, b, c, t, (r > 0 ? t / r : 0) }'
done
awk -v m="${med[mbfs,total]}" -v p="${med[ptll,total]}" \
        'BEGIN { printf "total seconds, mbfs / ptll: %.2f\n", (p > 0 ? m / p : 0) }'
if [ -n "$before" ]; then
        awk -v m="${med[mbfs,total]}" -v b="${med[before,total]}" -v r="${med[raw,total]}" \
                'BEGIN { printf "total seconds, mbfs / before: %.2f (before: %.2f x raw)\n", (b > 0 ? m / b : 0), (r > 0 ? b / r : 0) }'
fi
# The goal the project tracks: what Samba over mailbagfs costs against
# Samba over the directory itself.
awk -v n="$files" -v r="${med[raw,total]}" -v m="${med[mbfs,total]}" -v p="${med[ptll,total]}" \
        'BEGIN {
                printf "put+get+delete of %d x 4 KiB: raw %.3f s, mailbagfs %.3f s (%.2f x raw), passthrough_ll %.3f s (%.2f x raw); goal: mailbagfs <= 1.5x raw\n",
                        n, r, m, (r > 0 ? m / r : 0), p, (r > 0 ? p / r : 0)
        }'
printf 'all runs, total seconds:\n'
for s in "${shares[@]}"; do printf '  %-6s %s\n' "$s" "${times[$s,total]}"; done
