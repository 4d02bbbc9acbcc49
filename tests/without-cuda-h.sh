#!/usr/bin/env bash
# Runs a command where no NVIDIA cuda.h can be seen, the way a Debian
# machine without a CUDA toolkit looks: in a private mount namespace, an
# empty read-only tmpfs over every directory that holds one.  tests/run.sh
# builds the plain build this way, so CI proves the project needs nothing
# from NVIDIA to build (common/cuda_abi.hpp declares what it uses).
#
#   bash tests/without-cuda-h.sh COMMAND [ARG...]
#
# Needs root (unshare -m); the host's mounts are not touched.
set -euo pipefail

if [[ ${1:-} == --inside ]]; then
  shift
  hidden=()
  # An NVIDIA cuda.h, not the kernel's <linux/cuda.h> (Apple's) or boost's.
  while IFS= read -r -d '' h; do
    grep -q "cuGetProcAddress" "$h" 2>/dev/null || continue
    d=$(dirname "$(readlink -f "$h")")
    mountpoint -q "$d" && [[ " ${hidden[*]} " == *" $d "* ]] && continue
    mount -t tmpfs -o ro,size=4k,mode=755 tmpfs "$d"
    hidden+=("$d")
  done < <(find /usr /opt ${CUDA_HOME:+"$CUDA_HOME"} -name cuda.h -print0 2>/dev/null)
  if printf '#include <cuda.h>\n' | g++ -E -x c++ -I/usr/local/cuda/include - >/dev/null 2>&1; then
    echo "without-cuda-h: a cuda.h is still visible" >&2
    exit 1
  fi
  echo "without-cuda-h: hidden: ${hidden[*]:-(none were installed)}"
  exec "$@"
fi

(($#)) || { echo "usage: $0 COMMAND [ARG...]" >&2; exit 2; }
if [[ $(id -u) -ne 0 ]]; then
  echo "without-cuda-h: needs root for a private mount namespace (unshare -m)" >&2
  exit 1
fi
exec unshare --mount --propagation private "$0" --inside "$@"
