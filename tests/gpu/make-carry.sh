#!/usr/bin/env bash
# Prepares .carry/ for the GPU machine (device tool): that machine has no
# package registry and no nbdkit or libnbd, so we bring Debian's, unpacked,
# plus our build.  .carry/ is git-ignored and named in the tool's `carry`.
#
#   bash tests/gpu/make-carry.sh [BUILD_DIR]
#
# WITH_FIO=1 adds this machine's fio and the libraries it links (not the C
# and C++ runtimes, which the GPU machine has), packed as .carry/fio.tar.xz
# (80 MB unpacked; the tool carries 64 MiB at most), for
# `device-run.sh fio`: the load generator's cross-check on a machine with
# more than 2 cores.
#
# OLD_PLUGIN=PATH packs an earlier build of the plugin as
# .carry/old/nbdkit-vram-plugin.so, for `device-run.sh ab` and
# `contention` (this build against that one, in the same run).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build}
carry=$top/.carry
rm -rf "$carry"
mkdir -p "$carry/debs" "$carry/root" "$carry/build/plugin" "$carry/build/tests/gpu" "$carry/build/bench"
(cd "$carry/debs" && apt-get download -q nbdkit libnbd0 libnbd-bin libunistring2 libisal2 \
   python3-pytest python3-pluggy python3-iniconfig python3-packaging python3-py >/dev/null)
for d in "$carry"/debs/*.deb; do dpkg -x "$d" "$carry/root"; done
rm -rf "$carry/debs" "$carry/root/usr/share/doc" "$carry/root/usr/share/man"
cp "$build/plugin/nbdkit-vram-plugin.so" "$carry/build/plugin/"
cp "$build/tests/gpu/nbd-verify" "$carry/build/tests/gpu/"
cp "$build/bench/nbd-loadgen" "$build/bench/core-bench" "$build/bench/copy-probe" "$carry/build/bench/"
if [[ -n ${OLD_PLUGIN:-} ]]; then
  mkdir -p "$carry/old"
  cp "$OLD_PLUGIN" "$carry/old/nbdkit-vram-plugin.so"
fi
mkdir -p "$carry/build/filters/integrity"
cp "$build/filters/integrity/nbdkit-integrity-filter.so" "$carry/build/filters/integrity/"
cp "$build/filters/integrity/integrity-crc-bench" "$carry/build/filters/integrity/"
if [[ ${WITH_FIO:-} == 1 ]]; then
  command -v fio >/dev/null || { echo "make-carry.sh: WITH_FIO=1 needs fio (apt-get install fio)" >&2; exit 1; }
  mkdir -p "$carry/fio/lib"
  cp "$(command -v fio)" "$carry/fio/"
  ldd "$(command -v fio)" | awk '$3 ~ /^\// { print $3 }' |
    grep -vE '/(libc|libm|libstdc\+\+|libgcc_s|ld-linux-x86-64)\.so' | xargs cp -L -t "$carry/fio/lib"
  tar -C "$carry" -cf - fio | xz -T0 -6 >"$carry/fio.tar.xz"
  rm -rf "$carry/fio"
fi
du -sh "$carry"
