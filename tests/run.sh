#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what a fresh Debian 12
# machine lacks, checks the C++ formatting, builds the plugin three times
# (plain, ASan/UBSan and ThreadSanitizer), runs the unit tests (ctest) and
# the integration tests (pytest, real nbdkit, test CUDA driver) against
# each build, and the VM tests (Debian's kernel under qemu swapping to the
# plugin: tests/vm, docs/dev/vm-tests.md) against the plain build, then
# builds the Debian packages, installs, checks and purges them
# (tests/packages.sh).  GPU tests run only where a GPU is.
#
#   bash tests/run.sh            # everything
#   SKIP_ASAN=1 bash tests/run.sh
#   SKIP_TSAN=1 bash tests/run.sh
#   SKIP_VM=1 bash tests/run.sh
#   SKIP_PACKAGES=1 bash tests/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

log() { printf '\n=== %s\n' "$*"; }

packages=(build-essential cmake pkg-config perl libgtest-dev libisal-dev liblz4-dev libzstd-dev
          nbdkit nbdkit-plugin-dev libnbd-dev libnbd-bin python3-libnbd python3-pytest
          nbd-client shellcheck clang-format systemd
          qemu-system-x86 busybox-static stress-ng e2fsprogs util-linux
          debhelper lintian fakeroot man-db)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing: ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then
    echo "tests/run.sh: missing packages (${missing[*]}); run as root or install them" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

jobs=$(nproc)
build() { # dir, extra cmake args...
  local dir=$1; shift
  $in cmake -S "$top" -B "$dir" -DVRAM_WERROR=ON "$@" >/dev/null
  $in cmake --build "$dir" -j"$jobs"
}

py=/usr/bin/python3   # Debian's: python3-libnbd is installed for it
run_suite() { # build dir, label, [preload]
  local dir=$1 label=$2
  log "unit tests ($label)"
  (cd "$dir" && ctest -L unit --output-on-failure -j"$jobs")
  log "integration tests ($label)"
  # tests/systemd checks the shell helper, not the C++ code: plain build only.
  local extra=()
  [[ $label == plain ]] && extra=(tests/systemd)
  VRAM_BUILD_DIR="$dir" "$py" -m pytest -q -p no:cacheprovider tests/integration "${extra[@]}" tests/gpu
}

log "style: clang-format (.clang-format)"
# The C++ sources as clang-format writes them; `clang-format -i FILE` mends.
if git -C "$top" rev-parse --git-dir >/dev/null 2>&1; then
  git -C "$top" ls-files -z '*.cpp' '*.hpp' | (cd "$top" && xargs -0 clang-format --dry-run --Werror)
else
  echo "skipped: not a git checkout"
fi

log "build (no cuda.h in sight)"
# As on a Debian machine with no CUDA toolkit: the plain build, which the
# integration and VM tests use, is made with every NVIDIA cuda.h hidden.
# The sanitized build below sees one where installed, and checks
# common/cuda_abi.hpp against it (tests/unit/cuda_abi_check.cpp).
in=""
[[ $(id -u) -eq 0 ]] && in="bash $top/tests/without-cuda-h.sh"
build build -DVRAM_CUDA_ABI_CHECK=OFF
in=""
run_suite build plain

if [[ -z ${SKIP_VM:-} ]]; then
  log "VM tests (plain build)"
  # The guest's kernel, unpacked from Debian's linux-image package into a
  # cache rather than installed: the host's /boot stays as it is.
  if ! bash tests/vm/fetch-kernel.sh >/dev/null; then
    [[ $(id -u) -eq 0 ]] && apt-get update -qq
    bash tests/vm/fetch-kernel.sh >/dev/null
  fi
  VRAM_BUILD_DIR="$top/build" "$py" -m pytest -q -p no:cacheprovider tests/vm
fi

if [[ -z ${SKIP_ASAN:-} ]]; then
  log "build with ASan + UBSan"
  build build-asan -DVRAM_SANITIZE=ON
  # nbdkit itself is not instrumented: preload the runtime into it.
  export VRAM_NBDKIT_PRELOAD
  VRAM_NBDKIT_PRELOAD="$(g++ -print-file-name=libasan.so):$(g++ -print-file-name=libubsan.so)"
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  run_suite build-asan sanitized
  unset VRAM_NBDKIT_PRELOAD UBSAN_OPTIONS
fi
if [[ -z ${SKIP_TSAN:-} ]]; then
  log "build with ThreadSanitizer"
  build build-tsan -DVRAM_TSAN=ON
  # As above: nbdkit is not instrumented, its locks are seen through the
  # preloaded runtime's interceptors, so the plugin's, the filter's and
  # the test driver's threads are checked against them.  A report fails
  # the test it happened in (BUG_PATTERNS in tests/integration/helpers.py).
  export VRAM_NBDKIT_PRELOAD
  VRAM_NBDKIT_PRELOAD="$(g++ -print-file-name=libtsan.so)"
  # Its lock-order checker follows at most 64 locks held by one thread;
  # the integrity filter's striped locks hold one per 4 KiB block of a
  # request (256 for 1 MiB), so it is off.  Races are still reported.
  export TSAN_OPTIONS="detect_deadlocks=0"
  run_suite build-tsan tsan
  unset VRAM_NBDKIT_PRELOAD TSAN_OPTIONS
fi
if [[ -z ${SKIP_PACKAGES:-} ]]; then
  log "Debian packages: build, lintian, install, check, purge"
  if [[ $(id -u) -eq 0 ]]; then
    bash tests/packages.sh
  else
    echo "skipped: tests/packages.sh installs packages, and needs root"
  fi
fi
log "all tests passed"
