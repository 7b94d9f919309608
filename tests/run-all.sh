#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what is missing, builds
# with -Werror, AddressSanitizer and UBSan, runs every suite (unit, mount,
# interop, cluster: all but unit need root and /dev/fuse), runs each fuzzer
# briefly, and ends with one line "N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")/.."

bash tools/install-deps.sh test || exit 1

build=build-test
if [ ! -f "$build/build.ninja" ]; then
        meson setup "$build" -Dwerror=true -Db_sanitize=address,undefined \
                -Db_lundef=false >/dev/null || exit 1
fi
meson compile -C "$build" || exit 1

# Leaks in short-lived tools and forked test children are not what these
# runs look for; memory errors are.
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

# No --suite: every suite's tests (tests/meson.build says which is which).
meson test -C "$build" --print-errorlogs --no-rebuild
meson_status=$?

# A test that crashed could not unmount a daemon it started detached (the
# daemon and mount harness modes): clear what a build's daemon left.
clear_leftovers() {
        local daemon pid mnt
        daemon=$(realpath "$1/fs/mailbagfs")
        for pid in $(pgrep -x mailbagfs || true); do
                [ "$(realpath "/proc/$pid/exe" 2>/dev/null)" = "$daemon" ] || continue
                mnt=$(tr '\0' '\n' <"/proc/$pid/cmdline" | grep -m1 '/mailbagfs-test-[^/]*/mnt$' || true)
                [ -n "$mnt" ] || continue
                echo "run-all: a test left $mnt mounted (daemon $pid): unmounting" >&2
                fusermount3 -u -z "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
                kill "$pid" 2>/dev/null || true
        done
}
clear_leftovers "$build"

# Kernel passthrough of files is built only against libfuse 3.17 or later,
# which Debian 12 lacks: the suites that read and write files through the
# mount run again against a daemon built with it, from Debian 13's libfuse
# source (tests/build-libfuse.sh). Where that source cannot be fetched the
# phase is skipped, and the summary says so.
passthrough_build=build-test-passthrough
passthrough_status=0
passthrough_skipped=0
passthrough_suites=(message-files passthrough security mailbag-locks races byterange po-sim samba)
if pkgconfig=$(bash tests/build-libfuse.sh build-libfuse); then
        if { [ -f "$passthrough_build/build.ninja" ] ||
                PKG_CONFIG_PATH=$pkgconfig meson setup "$passthrough_build" -Dwerror=true \
                        -Db_sanitize=address,undefined -Db_lundef=false \
                        -Dpassthrough=enabled >/dev/null; } &&
                meson compile -C "$passthrough_build" >/dev/null; then
                MAILBAGFS_EXPECT_PASSTHROUGH=1 meson test -C "$passthrough_build" \
                        --print-errorlogs --no-rebuild "${passthrough_suites[@]}"
                passthrough_status=$?
                clear_leftovers "$passthrough_build"
        else
                echo "run-all: the passthrough build failed" >&2
                passthrough_status=1
        fi
else
        echo "run-all: passthrough suites skipped: no libfuse 3.17 to build against" >&2
        passthrough_skipped=1
fi

fuzz_status=0
if [ -x tests/formats/fuzz/run-fuzzers.sh ]; then
        bash tests/formats/fuzz/run-fuzzers.sh || fuzz_status=1
fi

# Criterion prints one synthesis line per test program; add them up, and
# count a program that died before printing one as a failure.
# The passthrough build's log counts too, when it ran; a skipped phase is
# one skip.
logs=("$build/meson-logs/testlog.txt")
[ "$passthrough_skipped" -eq 1 ] || logs+=("$passthrough_build/meson-logs/testlog.txt")
python3 - "$fuzz_status" "$passthrough_status" "$passthrough_skipped" "${logs[@]}" <<'PY'
import re, sys
log = "".join(open(path, errors="replace").read() for path in sys.argv[4:])
passed = failed = skipped = 0
skipped += int(sys.argv[3])
for block in re.split(r"\n=+ \d+/\d+ =+\n", log)[1:]:
    m = re.search(r"Synthesis: Tested: (\d+) \| Passing: (\d+) \| Failing: (\d+) \| Crashing: (\d+)", block)
    skipped += len(re.findall(r"\[SKIP\]", block))
    if m:
        passed += int(m.group(2))
        failed += int(m.group(3)) + int(m.group(4))
    elif re.search(r"^result:\s+exit status 0", block, re.M):
        passed += 1
    else:
        failed += 1
failed += int(sys.argv[1])
print(f"{passed} passed, {failed} failed, {skipped} skipped")
PY
[ "$meson_status" -eq 0 ] && [ "$fuzz_status" -eq 0 ] && [ "$passthrough_status" -eq 0 ]
