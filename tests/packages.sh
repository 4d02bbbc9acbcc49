#!/usr/bin/env bash
# The Debian packages, as a user would meet them: builds them from a clean
# copy of this tree (dpkg-buildpackage -b -uc -us, with every NVIDIA
# cuda.h out of sight), runs lintian (no errors allowed), installs them
# with apt, checks what they installed works (nbdkit finds the plugin and
# the filter, the man pages, the helper, the units), then purges them and
# checks that nothing of theirs is left.  Run by tests/run.sh; needs root.
#
#   bash tests/packages.sh [OUT_DIR]     # keeps the .debs in OUT_DIR
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
[[ $(id -u) -eq 0 ]] || { echo "packages.sh: needs root (apt, dpkg)" >&2; exit 1; }

work=$(mktemp -d /tmp/vram-packages.XXXXXX)
trap 'rm -rf "$work"' EXIT
out=${1:-$work}
mkdir -p "$out"
fail() { echo "packages.sh: FAIL: $*" >&2; exit 1; }
step() { printf '\n--- %s\n' "$*"; }

step "a clean copy of the tree (what git tracks, and new files it does not ignore)"
mkdir "$work/src"
git -C "$top" ls-files -co --exclude-standard -z |
  (cd "$top" && tar --null -T - -cf -) | tar -C "$work/src" -xf -

step "dpkg-buildpackage -b -uc -us (nocheck: tests/run.sh ran the tests)"
(cd "$work/src" &&
  DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" bash "$top/tests/without-cuda-h.sh" \
    dpkg-buildpackage -b -uc -us >"$work/build.log" 2>&1) ||
  { tail -n 40 "$work/build.log"; fail "dpkg-buildpackage"; }
mapfile -t debs < <(find "$work" -maxdepth 1 -name '*.deb' ! -name '*-dbgsym_*' | sort)
printf '%s\n' "${debs[@]##*/}"
((${#debs[@]} == 2)) || fail "expected 2 packages, got ${#debs[@]}"
cp "${debs[@]}" "$out/" 2>/dev/null || true

step "lintian"
lintian --allow-root --fail-on error --info "$work"/*.changes || fail "lintian reports errors"

step "install with apt"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends "${debs[@]}" >/dev/null ||
  fail "apt-get install of the packages"
files=$(dpkg -L nbdkit-plugin-vram vram-swap)

step "what they installed works"
dump=$(nbdkit --dump-plugin vram) || fail "nbdkit --dump-plugin vram"
grep -E '^(name|vram_version|vram_cuda_api|vram_gpu_count)=' <<<"$dump"
grep -q '^name=vram$' <<<"$dump" || fail "nbdkit does not find the vram plugin by name"
nbdkit --filter=integrity null --dump-plugin >/dev/null ||
  fail "nbdkit --filter=integrity null --dump-plugin"
# The filter is loaded: a bad setting of its own is refused by name.
if nbdkit --filter=integrity null integrity-block-size=3 --run true 2>"$work/filter.err"; then
  fail "the integrity filter accepted integrity-block-size=3"
fi
grep -q "integrity" "$work/filter.err" || { cat "$work/filter.err"; fail "the filter's error"; }
for page in nbdkit-vram-plugin nbdkit-integrity-filter vram-swap; do
  man -w "$page" || fail "man -w $page"
done
vram-swap --help | grep -q "vram-swap uninstall" || fail "vram-swap --help"
systemd-analyze verify vram-swap@0.service vram-swap-sleep.service ||
  fail "systemd-analyze verify of the installed units"
[[ -f /etc/vram-swap/default.conf ]] || fail "no /etc/vram-swap/default.conf"
dpkg-query -W -f='${Conffiles}\n' vram-swap | grep -q /etc/vram-swap/default.conf ||
  fail "/etc/vram-swap/default.conf is not a conffile"

step "purge, and nothing of theirs is left"
apt-get purge -y -qq nbdkit-plugin-vram vram-swap >/dev/null || fail "apt-get purge"
left=()
while IFS= read -r f; do
  # Files and links of ours; the directories dpkg lists are shared
  # (/lib is a link to /usr/lib here).
  if [[ ( -f $f || -L $f ) && ! -d $f ]]; then left+=("$f"); fi
done <<<"$files"
[[ -e /etc/vram-swap ]] && left+=(/etc/vram-swap)
((${#left[@]} == 0)) || fail "left after purge: ${left[*]}"
if dpkg-query -W nbdkit-plugin-vram vram-swap 2>/dev/null | grep -q .; then
  fail "dpkg still knows the packages"
fi
echo "packages: built, lintian clean, installed, checked, purged"
