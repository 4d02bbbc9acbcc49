#!/usr/bin/env bash
# What a setting costs: 4 KiB random 50/50 at 1 and 16 connections (or
# the points POINTS names) through the vram plugin in two configurations,
# A (the reference) and B,
# alternating (A, B, A, B) so drift on a noisy machine hits both.  The
# span is prefilled first, so B is measured in its steady state.  Prints
# JSON lines and the B/A ratios.
#
#   bench/ab_overhead.sh OUTDIR NAME_A 'NBDKIT_ARGS_A' 'PLUGIN_ARGS_A' \
#                               NAME_B 'NBDKIT_ARGS_B' 'PLUGIN_ARGS_B'
# (arguments are split on spaces).  Env: NBDKIT, VRAM_BUILD_DIR,
# VRAM_PLUGIN, LOADGEN, SIZE (4G), SPAN (1G), DURATION (5), ROUNDS (2),
# DATA (nbd-loadgen --data for the prefill and every point: fixed,
# random or mixed; default fixed),
# POINTS ("NAME:LOADGEN ARGS;..."; default
# "c1:--connections 1;c16:--connections 16").
set -euo pipefail
out=${1:?usage: bench/ab_overhead.sh OUTDIR NAME_A NBDKIT_ARGS_A PLUGIN_ARGS_A NAME_B ...}
[[ $# -eq 7 ]] || { echo "usage: bench/ab_overhead.sh OUTDIR NAME_A NBDKIT_ARGS_A PLUGIN_ARGS_A NAME_B NBDKIT_ARGS_B PLUGIN_ARGS_B" >&2; exit 2; }
name_a=$2 nbdkit_a=$3 plugin_a=$4 name_b=$5 nbdkit_b=$6 plugin_b=$7
mkdir -p "$out"
here=$(cd "$(dirname "$0")" && pwd)
build=${VRAM_BUILD_DIR:-$here/../build}
NBDKIT=${NBDKIT:-nbdkit}
VRAM_PLUGIN=${VRAM_PLUGIN:-$build/plugin/nbdkit-vram-plugin.so}
LOADGEN=${LOADGEN:-$build/bench/nbd-loadgen}
SIZE=${SIZE:-4G} SPAN=${SPAN:-1G} DURATION=${DURATION:-5} ROUNDS=${ROUNDS:-2} DATA=${DATA:-fixed}
POINTS=${POINTS:-c1:--connections 1;c16:--connections 16}
IFS=';' read -ra points <<<"$POINTS"
sock=$(mktemp -u /tmp/vram-ab.XXXXXX.sock)
results=$out/results.jsonl
: >"$results"

run() { # label, nbdkit args, plugin args
  local label=$1 nbdkit_args plugin_args
  read -ra nbdkit_args <<<"$2"
  read -ra plugin_args <<<"$3"
  rm -f "$sock" "$sock.pid"
  "$NBDKIT" -f -U "$sock" -P "$sock.pid" "${nbdkit_args[@]}" "$VRAM_PLUGIN" "size=$SIZE" \
    "${plugin_args[@]}" >"$out/$label.log" 2>&1 &
  local server=$!
  for _ in $(seq 600); do
    nbdinfo --size "nbd+unix:///?socket=$sock" >/dev/null 2>&1 && break
    kill -0 $server 2>/dev/null || { cat "$out/$label.log" >&2; exit 1; }
    sleep 0.1
  done
  "$LOADGEN" "nbd+unix:///?socket=$sock" --span "$SPAN" --duration 0 --prefill --data "$DATA" >/dev/null
  local p args
  for p in "${points[@]}"; do
    read -ra args <<<"${p#*:}"
    "$LOADGEN" "nbd+unix:///?socket=$sock" --label "$label/${p%%:*}" "${args[@]}" \
      --span "$SPAN" --duration "$DURATION" --data "$DATA" | tee -a "$results"
  done
  kill $server; wait $server 2>/dev/null || true
}

for ((r = 0; r < ROUNDS; r++)); do
  run "$name_a" "$nbdkit_a" "$plugin_a"
  run "$name_b" "$nbdkit_b" "$plugin_b"
done

python3 - "$results" "$name_a" "$name_b" "${points[@]%%:*}" <<'PY'
import json, sys
from collections import defaultdict
path, a, b, *points = sys.argv[1:]
ops = defaultdict(list)
lat = defaultdict(list)
for line in open(path):
    r = json.loads(line)
    ops[r["label"]].append(r["ops_per_s"])
    lat[r["label"]].append(r["lat_us_p50"])
mean = lambda v: sum(v) / len(v)
for c in points:
    oa, ob = mean(ops[f"{a}/{c}"]), mean(ops[f"{b}/{c}"])
    print(f"{c:>12}: {a} {oa:10.0f} ops/s, {b} {ob:10.0f} ops/s, ratio {ob / oa:.3f}; "
          f"p50 {mean(lat[f'{a}/{c}']):.1f} -> {mean(lat[f'{b}/{c}']):.1f} us")
PY
