#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each briefly
# (FUZZ_SECONDS, default 15) from the shipped profile as seed. A finding
# (crash, leak, timeout) fails the run; the reproducer is left in the
# build directory.
set -euo pipefail
cd "$(dirname "$0")/../../.."

seconds=${FUZZ_SECONDS:-15}
build=build-fuzz
if ! command -v clang >/dev/null; then
        echo "run-fuzzers: clang is not installed (tools/install-deps.sh test)" >&2
        exit 1
fi
if [ ! -f "$build/build.ninja" ]; then
        CC=clang meson setup "$build" -Dfuzzers=true >/dev/null
fi
meson compile -C "$build" >/dev/null

for target in profile classify mailbag glb status-line; do
        corpus="$build/corpus-$target"
        mkdir -p "$corpus"
        if [ "$target" = profile ]; then
                cp formats/profiles/msmail3.profile "$corpus/"
        fi
        if [ "$target" = status-line ]; then
                # The line shapes of status-line.h.
                printf '%s\n' \
                        'session INQUEUE3 held postoffice=HUB/PO2 pid=18252 program=my%20prog protocol=0LK since=2026-11-23T02:18:22Z refs=1 waiters=1 waiting=18255' \
                        'key-write INQUEUE3 free postoffice=.' \
                        'postoffice HUB/PO2 queues=INQUEUE3,INQUEUE,SYSTEM' \
                        'stats * acquisitions=2 waits=1 timeouts=0 deadlocks=0 stale_reclaimed=0 breaks=0 cancellations=0 mixed_protocol=0' \
                        'records INQUEUE3 corrupt postoffice=PO1 message=KEY%2FX:%20offset' \
                        >"$corpus/seed-lines"
        fi
        echo "fuzz-$target: ${seconds} s" >&2
        (cd "$build" && "./tests/formats/fuzz/fuzz-$target" -max_total_time="$seconds" \
                -print_final_stats=0 "corpus-$target" 2>"fuzz-$target.log") || {
                echo "fuzz-$target found a problem; see $build/fuzz-$target.log" >&2
                tail -30 "$build/fuzz-$target.log" >&2
                exit 1
        }
done
