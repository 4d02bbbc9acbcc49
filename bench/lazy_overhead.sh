#!/usr/bin/env bash
# What allocation=lazy costs in its steady state (every chunk of the span
# mapped by the prefill): bench/ab_overhead.sh with allocation=eager (A)
# and allocation=lazy (B).  Target: B/A at least 0.95.
#
#   bench/lazy_overhead.sh OUTDIR
# Env as for ab_overhead.sh, plus LAZY_ARGS (extra plugin arguments for
# the lazy run, e.g. lazy-chunk=2M).
set -euo pipefail
out=${1:?usage: bench/lazy_overhead.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
exec bash "$here/ab_overhead.sh" "$out" eager "" "allocation=eager" \
  lazy "" "allocation=lazy ${LAZY_ARGS:-}"
