#!/usr/bin/env bash
# Builds a libfuse that has kernel passthrough (3.17 or later) into DIR,
# for the passthrough build of mailbagfs (-Dpassthrough=enabled): from
# Debian 13's source package, fetched with apt into DIR alone (the
# system's apt setup, and its libfuse 3.14, are not touched). Nothing of
# it is copied into this tree.
#
#   bash tests/build-libfuse.sh DIR
#
# Prints the pkg-config folder to build against. Once built, a second run
# only prints it. Exits 2 when the source cannot be fetched (no route to
# Debian's archive), 1 on any other failure; DIR/*.log say why.
set -euo pipefail

dir=$(realpath -m "${1:?usage: build-libfuse.sh DIR}")
prefix=$dir/prefix
pkgconfig=$prefix/lib/pkgconfig
if [ -f "$dir/built" ]; then
        echo "$pkgconfig"
        exit 0
fi
rm -rf "$dir"
mkdir -p "$dir/apt/lists/partial" "$dir/apt/cache/archives/partial" "$dir/src"
printf 'deb-src http://deb.debian.org/debian trixie main\n' >"$dir/apt/sources.list"
apt_options=(
        -o "Dir::Etc::sourcelist=$dir/apt/sources.list"
        -o Dir::Etc::sourceparts=-
        -o "Dir::State::Lists=$dir/apt/lists"
        -o "Dir::Cache=$dir/apt/cache"
        -o APT::Sandbox::User=root
)
if ! apt-get "${apt_options[@]}" update >"$dir/fetch.log" 2>&1 ||
        ! (cd "$dir/src" && apt-get "${apt_options[@]}" source --download-only fuse3) \
                >>"$dir/fetch.log" 2>&1; then
        echo "build-libfuse: cannot fetch Debian 13's fuse3 source (see $dir/fetch.log)" >&2
        exit 2
fi
tarball=$(find "$dir/src" -maxdepth 1 -name 'fuse3_*.orig.tar.*' ! -name '*.asc' | head -n 1)
tar -xf "$tarball" -C "$dir/src"
source_dir=$(find "$dir/src" -mindepth 1 -maxdepth 1 -type d -name 'fuse-3.*' | head -n 1)
# Its own fusermount3 too: the library calls the one of its prefix, and
# Debian 12's does not know the options 3.17 passes (auto_unmount would
# fail). Installed without set-user-ID: the tests run as root.
if ! meson setup "$dir/build" "$source_dir" --prefix="$prefix" --libdir=lib \
        -Dexamples=false -Dtests=false -Duseroot=false -Dinitscriptdir= \
        -Dudevrulesdir="$prefix/udev" >"$dir/build.log" 2>&1 ||
        ! meson compile -C "$dir/build" >>"$dir/build.log" 2>&1 ||
        ! meson install -C "$dir/build" >>"$dir/build.log" 2>&1; then
        echo "build-libfuse: building $(basename "$source_dir") failed (see $dir/build.log)" >&2
        exit 1
fi
version=$(PKG_CONFIG_PATH=$pkgconfig pkg-config --modversion fuse3)
if ! PKG_CONFIG_PATH=$pkgconfig pkg-config --atleast-version=3.17 fuse3; then
        echo "build-libfuse: Debian 13 has libfuse $version, without passthrough" >&2
        exit 1
fi
touch "$dir/built"
echo "$pkgconfig"
