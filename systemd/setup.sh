#!/usr/bin/env bash
# Sets VRAM swap up on this machine from the source tree: checks for a
# usable NVIDIA GPU before it installs anything, installs the build and
# run-time dependencies it lacks (apt), builds, installs nbdkit-vram (the
# plugin, the integrity filter, the vram-swap helper, its systemd units,
# man pages and /etc/vram-swap), and starts serving GPU DEVICE's VRAM as
# swap with vram-swap@DEVICE.service (vram-swap up DEVICE without systemd):
# nbdkit and the vram plugin on a root-only unix socket, nbd-client,
# mkswap, swapon above disk swap.  What it installed is recorded, and
# `vram-swap uninstall` (or setup.sh --uninstall) removes exactly that.
#
#   sudo bash systemd/setup.sh                 # size=auto on GPU 0
#   sudo SIZE=7G DEVICE=1 PRIORITY=100 CONNECTIONS=4 bash systemd/setup.sh
#   sudo bash systemd/setup.sh --uninstall     # after stopping VRAM swap
#
# PREFIX (default /usr/local): where the helper, units and man pages go;
# the plugin and filter go where nbdkit looks for them.  From the Debian
# packages instead: docs/operations.md, "Install from the Debian packages".
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

usage() {
  cat <<'USAGE'
Sets VRAM swap up on this machine from the source tree (as root):

  bash systemd/setup.sh                 size=auto on GPU 0
  SIZE=7G DEVICE=1 PRIORITY=100 CONNECTIONS=4 bash systemd/setup.sh
  bash systemd/setup.sh --uninstall     remove what it installed (stop VRAM swap first)

It looks for a usable NVIDIA GPU before it installs anything; then it
installs the packages it lacks (apt), builds, installs nbdkit-vram under
PREFIX (default /usr/local; the plugin and filter where nbdkit finds
them), records what it installed, and starts vram-swap@DEVICE.
USAGE
}
case ${1:-} in
  -h|--help) usage; exit 0 ;;
  --uninstall|"") ;;
  *) usage >&2; exit 2 ;;
esac

SIZE_SET=${SIZE:-} PRIORITY_SET=${PRIORITY:-} CONNECTIONS_SET=${CONNECTIONS:-}
SIZE=${SIZE:-auto}
DEVICE=${DEVICE:-0}
PRIORITY=${PRIORITY:-100}
CONNECTIONS=${CONNECTIONS:-4}
PREFIX=${PREFIX:-/usr/local}
manifest=$PREFIX/share/nbdkit-vram/installed-files

die() { printf 'vram-swap setup: %s\n' "$*" >&2; exit 1; }
say() { printf '\n=== %s\n' "$*"; }

[[ $(id -u) -eq 0 ]] || die "run as root (sudo): swap and /dev/nbd* need it"

if [[ ${1:-} == --uninstall ]]; then
  helper=$PREFIX/sbin/vram-swap
  [[ -x $helper ]] || helper=$top/systemd/vram-swap
  VRAM_SWAP_MANIFEST=$manifest exec "$helper" uninstall
fi

# Before anything is installed: is there an NVIDIA driver with a GPU?
# (The plugin's own look, through the CUDA driver, follows the build.)
say "looking for an NVIDIA GPU"
if command -v nvidia-smi >/dev/null; then
  if ! gpus=$(nvidia-smi -L 2>&1) || ! grep -q '^GPU ' <<<"$gpus"; then
    die "no usable NVIDIA GPU: nvidia-smi -L says: ${gpus:-nothing}. Nothing was installed."
  fi
  printf '%s\n' "$gpus"
elif ! ldconfig -p 2>/dev/null | grep -q 'libcuda\.so\.1 '; then
  die "no NVIDIA driver: neither nvidia-smi nor libcuda.so.1 is installed (Debian: apt-get install nvidia-driver nvidia-smi, from non-free). Nothing was installed."
elif [[ ! -e /proc/driver/nvidia/version ]] && command -v modprobe >/dev/null &&
     ! modprobe -q -n nvidia; then
  die "libcuda.so.1 is installed but not the NVIDIA kernel driver (no nvidia module): install the driver that matches it. Nothing was installed."
fi

say "installing build and run-time dependencies"
packages=(build-essential cmake pkg-config perl libisal-dev liblz4-dev libzstd-dev nbdkit nbdkit-plugin-dev nbd-client libnbd-bin kmod)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "installed with apt: ${missing[*]}"
else
  echo "all there already"
fi

say "building"
build=$top/build-release
cmake -S "$top" -B "$build" -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_INSTALL_PREFIX="$PREFIX" >/dev/null
cmake --build "$build" -j"$(nproc)"

say "checking the GPU through the plugin"
dump=$(nbdkit --dump-plugin "$build/plugin/nbdkit-vram-plugin.so" 2>&1) ||
  die "nbdkit cannot load the plugin just built: $dump. nbdkit-vram was not installed."
count=$(sed -n 's/^vram_gpu_count=//p' <<<"$dump")
if [[ ${count:-0} -eq 0 ]]; then
  why=$(sed -n 's/^vram_error=//p' <<<"$dump")
  die "no usable NVIDIA GPU: ${why:-the driver reports none}. nbdkit-vram was not installed${missing:+ (apt installed ${missing[*]}; apt-get remove them if unwanted)}."
fi
grep '^vram_gpu' <<<"$dump"

say "installing nbdkit-vram"
cmake --install "$build" >/dev/null
nbdkit vram --version >/dev/null 2>&1 || die "nbdkit cannot load the installed plugin"
hash -r
conf=/etc/vram-swap/$DEVICE.conf
wrote_conf=
if [[ -n ${SIZE_SET:-}${PRIORITY_SET:-}${CONNECTIONS_SET:-} || ! -e $conf ]]; then
  printf '# written by systemd/setup.sh\nSIZE=%s\nPRIORITY=%s\nCONNECTIONS=%s\n' \
    "$SIZE" "$PRIORITY" "$CONNECTIONS" >"$conf"
  wrote_conf=$conf
fi
# The record vram-swap uninstall works from: what this run installed, and
# what an earlier run had (a file under /etc with its checksum as
# installed, so one the user changed since is kept).
mkdir -p "$(dirname "$manifest")"
{
  [[ -r $manifest ]] && cat "$manifest"
  { cat "$build/install_manifest.txt"; echo; [[ -n $wrote_conf ]] && echo "$wrote_conf"; } |
    while IFS= read -r f; do
      [[ -n $f ]] || continue
      if [[ $f == /etc/* ]]; then echo "config $(sha256sum "$f" | cut -d' ' -f1) $f"
      else echo "file - $f"; fi
    done
} | awk '{ path = $0; sub(/^[^ ]+ [^ ]+ /, "", path) } !seen[path]++' >"$manifest.new"
mv "$manifest.new" "$manifest"
echo "installed (recorded in $manifest):"
sed 's/^[^ ]* [^ ]* /  /' "$manifest"

say "starting VRAM swap on GPU $DEVICE"
if [[ -d /run/systemd/system ]]; then
  systemctl daemon-reload
  systemctl enable --now "vram-swap@$DEVICE.service" vram-swap-sleep.service
  vram-swap status
  echo
  echo "VRAM swap is on (GPU $DEVICE). Stop it with: systemctl stop vram-swap@$DEVICE"
else
  vram-swap up "$DEVICE"
  vram-swap status
  echo
  echo "VRAM swap is on (GPU $DEVICE). Stop it with: vram-swap down $DEVICE"
fi
echo "Remove nbdkit-vram (after stopping it) with: vram-swap uninstall, or bash systemd/setup.sh --uninstall"
