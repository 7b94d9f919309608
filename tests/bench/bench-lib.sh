# bench-lib.sh - what the benchmark scripts share; sourced, never run.

# libfuse's own examples, the peers mailbagfs is measured against: compiled
# at run time from Debian's libfuse3-dev, never copied into the tree.
bench_examples=/usr/share/doc/libfuse3-dev/examples

# Compiles passthrough_ll, and with "fh" passthrough_fh too, into DIR.
bench_compile_passthroughs() {
        local dir=$1 with_fh=${2:-}
        # shellcheck disable=SC2046 # pkg-config's words are split on purpose
        gcc -O2 -Wall "$bench_examples/passthrough_ll.c" $(pkg-config fuse3 --cflags --libs) \
                -o "$dir/passthrough_ll"
        [ "$with_fh" = fh ] || return 0
        # shellcheck disable=SC2046
        gcc -O2 -Wall -I"$bench_examples" "$bench_examples/passthrough_fh.c" \
                $(pkg-config fuse3 --cflags --libs) -lulockmgr -o "$dir/passthrough_fh" 2>/dev/null ||
                gcc -O2 -Wall -I"$bench_examples" "$bench_examples/passthrough_fh.c" \
                        $(pkg-config fuse3 --cflags --libs) -o "$dir/passthrough_fh"
}

# Waits up to 10 s for a FUSE mount on MOUNTPOINT; WHO names the script in
# the message when it does not come.
bench_wait_mounted() {
        local mnt=$1 who=$2
        for _ in $(seq 1 200); do
                grep -q " $mnt fuse" /proc/mounts && return 0
                sleep 0.05
        done
        echo "$who: $mnt did not mount" >&2
        return 1
}

# Unmounts every mountpoint named in the caller's array `mounted` and ends
# every process in its array `daemons` (an unmount ends a daemon; one that
# hangs on is ended here).
bench_stop_mounts() {
        local m pid
        for m in "${mounted[@]}"; do
                fusermount3 -u -z "$m" 2>/dev/null || true
        done
        for pid in "${daemons[@]}"; do
                kill "$pid" 2>/dev/null || true
                wait "$pid" 2>/dev/null || true
        done
}

# The caller's `$work` gets a tmpfs of its own at $work/tmpfs, so that the
# disk does not set the pace and nothing is left behind.
bench_mount_tmpfs() {
        mkdir "$work/tmpfs"
        mount -t tmpfs -o size=2g,mode=0700 mailbagfs-bench "$work/tmpfs"
        tmpfs_mounted=yes
}

# Removes `$work`, and its tmpfs if bench_mount_tmpfs made one.
bench_remove_work() {
        if [ "${tmpfs_mounted:-no}" = yes ]; then
                umount -l "$work/tmpfs" 2>/dev/null || true
        fi
        rm -rf "$work"
}
