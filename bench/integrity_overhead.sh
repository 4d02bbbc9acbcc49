#!/usr/bin/env bash
# What the integrity filter costs: bench/ab_overhead.sh with the vram
# plugin plain (A) and behind --filter=integrity (B).
#
#   bench/integrity_overhead.sh OUTDIR
# Env as for ab_overhead.sh, plus INTEGRITY_FILTER (path or name, default
# the build's).
set -euo pipefail
out=${1:?usage: bench/integrity_overhead.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
build=${VRAM_BUILD_DIR:-$here/../build}
FILTER=${INTEGRITY_FILTER:-$build/filters/integrity/nbdkit-integrity-filter.so}
exec bash "$here/ab_overhead.sh" "$out" plain "" "" integrity "--filter=$FILTER" ""
