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
# daemon and mount harness modes): clear what this build's daemon left.
daemon=$(realpath "$build/fs/mailbagfs")
for pid in $(pgrep -x mailbagfs || true); do
        [ "$(realpath "/proc/$pid/exe" 2>/dev/null)" = "$daemon" ] || continue
        mnt=$(tr '\0' '\n' <"/proc/$pid/cmdline" | grep -m1 '/mailbagfs-test-[^/]*/mnt$' || true)
        [ -n "$mnt" ] || continue
        echo "run-all: a test left $mnt mounted (daemon $pid): unmounting" >&2
        fusermount3 -u -z "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
        kill "$pid" 2>/dev/null || true
done

fuzz_status=0
if [ -x tests/formats/fuzz/run-fuzzers.sh ]; then
        bash tests/formats/fuzz/run-fuzzers.sh || fuzz_status=1
fi

# Criterion prints one synthesis line per test program; add them up, and
# count a program that died before printing one as a failure.
log="$build/meson-logs/testlog.txt"
python3 - "$log" "$fuzz_status" <<'PY'
import re, sys
log = open(sys.argv[1], errors="replace").read()
passed = failed = skipped = 0
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
failed += int(sys.argv[2])
print(f"{passed} passed, {failed} failed, {skipped} skipped")
PY
[ "$meson_status" -eq 0 ] && [ "$fuzz_status" -eq 0 ]
