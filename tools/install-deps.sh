#!/usr/bin/env bash
# Installs the Debian packages mailbagfs needs to build and test, only those
# that are missing. Needs root (or sudo). Usage: tools/install-deps.sh [build|test]
set -euo pipefail

build_packages=(meson ninja-build pkg-config gcc libc6-dev libfuse3-dev fuse3
                libglib2.0-dev libjson-glib-dev libcriterion-dev attr python3 scdoc)
# The test suite also runs the fuzzers (clang) and real clients: smbd with
# smbtorture and an impacket SMB client, and Win32 programs under wine,
# cross-compiled with mingw-w64; DOS programs (built with nasm) under
# DOSBox; a private GlusterFS volume (glusterd, the gluster CLI, the
# glusterfs client; unshare and ip start it in namespaces of its own). The
# operator suite checks the service units (systemd-analyze), the metrics
# (promtool, from prometheus) and the manual pages (man-db). The benchmarks
# add smbclient (tests/bench/bench-smb.sh) and strace.
test_packages=(clang libclang-rt-14-dev samba samba-testsuite smbclient strace python3-impacket
               wine wine64 gcc-mingw-w64-x86-64 dosbox nasm glusterfs-server
               glusterfs-client util-linux iproute2 systemd prometheus man-db)

# Installed where the distribution has them, skipped with their reason by
# the suites where not: DOSBox-X (Debian 13 ships it, Debian 12 does not).
optional_test_packages=(dosbox-x)

wanted=("${build_packages[@]}")
if [ "${1:-build}" = test ]; then
        wanted+=("${test_packages[@]}")
fi

# The optional packages this system's package lists offer and that are
# not installed yet.
optional_missing() {
        [ "${1:-build}" = test ] || return 0
        for package in "${optional_test_packages[@]}"; do
                if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' &&
                   apt-cache show --no-all-versions "$package" >/dev/null 2>&1; then
                        echo "$package"
                fi
        done
}

missing=()
for package in "${wanted[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed'; then
                missing+=("$package")
        fi
done
mapfile -t optional < <(optional_missing "${1:-build}")
missing+=("${optional[@]}")
if [ "${#missing[@]}" -eq 0 ]; then
        exit 0
fi

as_root=()
if [ "$(id -u)" -ne 0 ]; then
        if ! command -v sudo >/dev/null; then
                echo "install-deps: missing packages ${missing[*]}; run as root to install them" >&2
                exit 1
        fi
        as_root=(sudo)
fi
echo "install-deps: installing ${missing[*]}" >&2
"${as_root[@]}" apt-get update -qq
# Lists just read may offer an optional package they did not before.
mapfile -t optional < <(optional_missing "${1:-build}")
for package in "${optional[@]}"; do
        [[ " ${missing[*]} " == *" $package "* ]] || missing+=("$package")
done
DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
