#!/usr/bin/env bash
# Builds and installs nbdkit-vram (plugin, vram-swap helper, systemd
# units), then starts serving this machine's VRAM as swap with
# vram-swap@DEVICE.service (or `vram-swap up` without systemd): nbdkit and
# the vram plugin on a root-only unix socket, nbd-client, mkswap, swapon at
# a priority above disk swap.  Settings land in /etc/vram-swap/DEVICE.conf.
#
#   sudo bash systemd/setup.sh                 # size=auto on GPU 0
#   sudo SIZE=7G DEVICE=1 PRIORITY=100 CONNECTIONS=4 bash systemd/setup.sh
#
# To stop: systemctl stop vram-swap@DEVICE (or vram-swap down DEVICE).
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

SIZE_SET=${SIZE:-} PRIORITY_SET=${PRIORITY:-} CONNECTIONS_SET=${CONNECTIONS:-}
SIZE=${SIZE:-auto}
DEVICE=${DEVICE:-0}
PRIORITY=${PRIORITY:-100}
CONNECTIONS=${CONNECTIONS:-4}

die() { printf 'vram-swap setup: %s\n' "$*" >&2; exit 1; }
say() { printf '\n=== %s\n' "$*"; }

[[ $(id -u) -eq 0 ]] || die "run as root (sudo): swap and /dev/nbd* need it"

say "installing build and run-time dependencies"
packages=(build-essential cmake pkg-config perl nbdkit nbdkit-plugin-dev nbd-client libnbd-bin kmod)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

say "building and installing the plugin"
cmake -S "$top" -B "$top/build-release" -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$top/build-release" -j"$(nproc)"
cmake --install "$top/build-release" >/dev/null
nbdkit vram --version >/dev/null 2>&1 || die "nbdkit cannot load the installed plugin"
hash -r

say "looking for an NVIDIA GPU"
dump=$(nbdkit --dump-plugin vram)
count=$(sed -n 's/^vram_gpu_count=//p' <<<"$dump")
if [[ ${count:-0} -eq 0 ]]; then
  why=$(sed -n 's/^vram_error=//p' <<<"$dump")
  die "no usable NVIDIA GPU on this machine: ${why:-the driver reports none}. Nothing was started."
fi
grep '^vram_gpu' <<<"$dump"

say "starting VRAM swap on GPU $DEVICE"
conf=/etc/vram-swap/$DEVICE.conf
if [[ -n ${SIZE_SET:-}${PRIORITY_SET:-}${CONNECTIONS_SET:-} || ! -e $conf ]]; then
  printf '# written by systemd/setup.sh\nSIZE=%s\nPRIORITY=%s\nCONNECTIONS=%s\n' \
    "$SIZE" "$PRIORITY" "$CONNECTIONS" >"$conf"
fi
if [[ -d /run/systemd/system ]]; then
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
