#!/usr/bin/env bash
# Builds and installs nbdkit-vram, then starts serving this machine's VRAM
# as swap: nbdkit + the vram plugin on a root-only unix socket, nbd-client,
# mkswap, swapon at a priority above disk swap.
#
#   sudo bash systemd/setup.sh                 # size=auto on GPU 0
#   sudo SIZE=7G DEVICE=1 PRIORITY=100 CONNECTIONS=4 bash systemd/setup.sh
#
# To stop (swapoff first: detaching a live swap device can crash the kernel):
#   swapoff /dev/nbdN && nbd-client -d /dev/nbdN && kill "$(cat /run/vram-swap/DEVICE.pid)"
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

SIZE=${SIZE:-auto}
DEVICE=${DEVICE:-0}
PRIORITY=${PRIORITY:-100}
CONNECTIONS=${CONNECTIONS:-4}

die() { printf 'vram-swap setup: %s\n' "$*" >&2; exit 1; }
say() { printf '\n=== %s\n' "$*"; }

[[ $(id -u) -eq 0 ]] || die "run as root (sudo): swap and /dev/nbd* need it"

say "installing build and run-time dependencies"
packages=(build-essential cmake pkg-config perl nbdkit nbdkit-plugin-dev nbd-client libnbd-bin)
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

say "looking for an NVIDIA GPU"
dump=$(nbdkit --dump-plugin vram)
count=$(sed -n 's/^vram_gpu_count=//p' <<<"$dump")
if [[ ${count:-0} -eq 0 ]]; then
  why=$(sed -n 's/^vram_error=//p' <<<"$dump")
  die "no usable NVIDIA GPU on this machine: ${why:-the driver reports none}. Nothing was started."
fi
grep '^vram_gpu' <<<"$dump"

say "attaching VRAM as swap"
modprobe nbd 2>/dev/null || [[ -e /dev/nbd0 ]] ||
  die "the kernel has no nbd driver (modprobe nbd failed); install your distribution's kernel modules"
nbd=
for dev in /sys/block/nbd*; do
  [[ -e $dev/pid ]] && continue          # in use
  nbd=/dev/$(basename "$dev"); break
done
[[ -n $nbd ]] || die "no free /dev/nbd* device"

run=/run/vram-swap
install -d -m 0700 "$run"
sock=$run/$DEVICE.sock
[[ -e $run/$DEVICE.pid ]] && kill -0 "$(cat "$run/$DEVICE.pid")" 2>/dev/null &&
  die "VRAM swap for device $DEVICE is already running (pid $(cat "$run/$DEVICE.pid"))"
rm -f "$sock"
nbdkit -U "$sock" -P "$run/$DEVICE.pid" vram "size=$SIZE" "device=$DEVICE" swap-safety=require
for _ in $(seq 100); do nbdinfo --size "nbd+unix:///?socket=$sock" >/dev/null 2>&1 && break; sleep 0.1; done
nbdinfo --size "nbd+unix:///?socket=$sock" >/dev/null || die "nbdkit did not come up; see: journalctl -t nbdkit"
nbd-client -unix "$sock" "$nbd" -C "$CONNECTIONS" -b 4096 -swap
mkswap "$nbd" >/dev/null
swapon -p "$PRIORITY" "$nbd"
swapon --show
echo
echo "VRAM swap is on: $nbd (GPU $DEVICE, priority $PRIORITY)."
echo "Stop it with: swapoff $nbd && nbd-client -d $nbd && kill \$(cat $run/$DEVICE.pid)"
