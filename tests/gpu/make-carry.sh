#!/usr/bin/env bash
# Prepares .carry/ for the GPU machine (device tool): that machine has no
# package registry and no nbdkit or libnbd, so we bring Debian's, unpacked,
# plus our build.  .carry/ is git-ignored and named in the tool's `carry`.
#
#   bash tests/gpu/make-carry.sh [BUILD_DIR]
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build}
carry=$top/.carry
rm -rf "$carry"
mkdir -p "$carry/debs" "$carry/root" "$carry/build/plugin" "$carry/build/tests/gpu" "$carry/build/bench"
(cd "$carry/debs" && apt-get download -q nbdkit libnbd0 libnbd-bin libunistring2 \
   python3-pytest python3-pluggy python3-iniconfig python3-packaging python3-py >/dev/null)
for d in "$carry"/debs/*.deb; do dpkg -x "$d" "$carry/root"; done
rm -rf "$carry/debs" "$carry/root/usr/share/doc" "$carry/root/usr/share/man"
cp "$build/plugin/nbdkit-vram-plugin.so" "$carry/build/plugin/"
cp "$build/tests/gpu/nbd-verify" "$carry/build/tests/gpu/"
cp "$build/bench/nbd-loadgen" "$build/bench/core-bench" "$carry/build/bench/"
mkdir -p "$carry/build/filters/integrity"
cp "$build/filters/integrity/nbdkit-integrity-filter.so" "$carry/build/filters/integrity/"
du -sh "$carry"
