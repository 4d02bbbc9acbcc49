#!/usr/bin/env bash
# Unpacks the kernel that Debian's linux-image-amd64 points at into a cache
# directory, for the VM tests.  `apt-get download` + `dpkg -x` rather than
# installing it: the host's /boot, bootloader and initramfs hooks are left
# alone, and no root is needed once the package is in the cache.
#
#   bash tests/vm/fetch-kernel.sh          # prints the unpacked tree
#
# The tree is $VRAM_VM_KERNEL_CACHE (default ~/.cache/nbdkit-vram/vm-kernel)
# /<package>_<version>, with a `current` link to it that the harness
# (tests/vm/harness.py) uses.
set -euo pipefail

cache=${VRAM_VM_KERNEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nbdkit-vram/vm-kernel}

pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
      awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9].*-amd64$/ { print $2; exit }')
if [[ -z $pkg ]]; then
  echo "fetch-kernel.sh: apt-cache knows no linux-image-amd64 (apt-get update?)" >&2
  exit 1
fi
version=$(apt-cache show --no-all-versions "$pkg" | awk '$1 == "Version:" { print $2; exit }')
tree=$cache/${pkg}_$version

if [[ ! -e $tree/.complete ]]; then
  mkdir -p "$cache"
  work=$(mktemp -d "$cache/.fetch.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  # apt-get download writes into the current directory; as root it warns
  # that the _apt user cannot write there, which is harmless.
  (cd "$work" && apt-get download -q "$pkg=$version" 2>&1 | grep -v "couldn't be accessed by user '_apt'" >&2 || true)
  deb=$(ls "$work"/*.deb 2>/dev/null | head -n 1)
  if [[ -z $deb ]]; then
    echo "fetch-kernel.sh: could not download $pkg $version" >&2
    exit 1
  fi
  mkdir "$work/root"
  dpkg -x "$deb" "$work/root"
  touch "$work/root/.complete"
  # Atomic; if a concurrent run got there first, keep its tree (a VM may
  # be booting from it) and drop ours.
  mv -T "$work/root" "$tree" 2>/dev/null || [[ -e $tree/.complete ]]
fi
ln -sfn "$(basename "$tree")" "$cache/current"
echo "$tree"
