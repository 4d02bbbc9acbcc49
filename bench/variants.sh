#!/usr/bin/env bash
# Looks for where small-request time goes, on a GPU machine: the core
# against the driver floor for each wait mode, then the quick NBD
# comparison with plugin/nbdkit variants.  Writes under OUTDIR.
#
#   bench/variants.sh OUTDIR      (env as for compare.sh)
set -uo pipefail
out=${1:?usage: bench/variants.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
build=${VRAM_BUILD_DIR:-$here/../build}
mkdir -p "$out"
for w in auto spin yield block; do
  "$build/bench/core-bench" --threads 1,4,16,32 --duration 2 --wait "$w"
done | tee "$out/core-bench.jsonl"
variant() { # name, then env assignments
  local name=$1; shift
  echo "--- $name"
  env "$@" bash "$here/compare.sh" --quick "$out/$name" | tail -5
}
variant baseline
variant wait-spin VRAM_ARGS="wait=spin"
variant lanes-64 VRAM_ARGS="lanes=64"
variant threads-4 NBDKIT_ARGS="--threads=4"
