#!/usr/bin/env bash
# What the integrity filter costs: 4 KiB random 50/50 at 1 and 16
# connections through the vram plugin with and without
# --filter=integrity, alternating (plain, filtered, plain, filtered) so
# drift on a noisy machine hits both.  Prints JSON lines and the ratios.
#
#   bench/integrity_overhead.sh OUTDIR
# Env as for compare.sh, plus INTEGRITY_FILTER (path or name, default the
# build's), ROUNDS (2).
set -euo pipefail
out=${1:?usage: bench/integrity_overhead.sh OUTDIR}
mkdir -p "$out"
here=$(cd "$(dirname "$0")" && pwd)
build=${VRAM_BUILD_DIR:-$here/../build}
NBDKIT=${NBDKIT:-nbdkit}
VRAM_PLUGIN=${VRAM_PLUGIN:-$build/plugin/nbdkit-vram-plugin.so}
FILTER=${INTEGRITY_FILTER:-$build/filters/integrity/nbdkit-integrity-filter.so}
LOADGEN=${LOADGEN:-$build/bench/nbd-loadgen}
SIZE=${SIZE:-4G} SPAN=${SPAN:-1G} DURATION=${DURATION:-5} ROUNDS=${ROUNDS:-2}
sock=$(mktemp -u /tmp/vram-integrity.XXXXXX.sock)
results=$out/integrity.jsonl
: >"$results"

run() { # label, nbdkit filter args...
  local label=$1; shift
  rm -f "$sock" "$sock.pid"
  "$NBDKIT" -f -U "$sock" -P "$sock.pid" "$@" "$VRAM_PLUGIN" "size=$SIZE" >"$out/$label.log" 2>&1 &
  local server=$!
  for _ in $(seq 600); do
    nbdinfo --size "nbd+unix:///?socket=$sock" >/dev/null 2>&1 && break
    kill -0 $server 2>/dev/null || { cat "$out/$label.log" >&2; exit 1; }
    sleep 0.1
  done
  "$LOADGEN" "nbd+unix:///?socket=$sock" --span "$SPAN" --duration 0 --prefill >/dev/null
  for c in 1 16; do
    "$LOADGEN" "nbd+unix:///?socket=$sock" --label "$label/c$c" --connections "$c" \
      --span "$SPAN" --duration "$DURATION" | tee -a "$results"
  done
  kill $server; wait $server 2>/dev/null || true
}

for ((r = 0; r < ROUNDS; r++)); do
  run plain
  run integrity "--filter=$FILTER"
done

python3 - "$results" <<'PY'
import json, sys
from collections import defaultdict
ops = defaultdict(list)
lat = defaultdict(list)
for line in open(sys.argv[1]):
    r = json.loads(line)
    ops[r["label"]].append(r["ops_per_s"])
    lat[r["label"]].append(r["lat_us_p50"])
for c in ("c1", "c16"):
    p, i = ops[f"plain/{c}"], ops[f"integrity/{c}"]
    pm, im = sum(p) / len(p), sum(i) / len(i)
    print(f"{c:>4}: plain {pm:10.0f} ops/s, with integrity {im:10.0f} ops/s, ratio {im / pm:.3f}; "
          f"p50 {sum(lat[f'plain/{c}']) / len(p):.1f} -> {sum(lat[f'integrity/{c}']) / len(i):.1f} us")
PY
