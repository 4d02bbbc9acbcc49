#!/usr/bin/env bash
# The vram plugin against nbdkit's memory plugin, same nbdkit flags, same
# client (nbd-loadgen), same run: the memory plugin is the NBD transport's
# ceiling on this machine.  Prints one JSON line per measurement and a
# table of ratios.
#
#   bench/compare.sh [--quick] OUTDIR
#
# Environment: NBDKIT (nbdkit binary), MEMORY_PLUGIN (path or name),
# VRAM_PLUGIN, LOADGEN, SIZE (export size, default 4G), SPAN (region the
# load touches, default 1G), DURATION (seconds per point, default 5),
# NBDKIT_ARGS (extra nbdkit flags, given to both servers), VRAM_ARGS
# (extra vram plugin parameters, e.g. "wait=spin lanes=32").
set -euo pipefail
quick=
if [[ ${1:-} == --quick ]]; then quick=1; shift; fi
out=${1:?usage: bench/compare.sh [--quick] OUTDIR}
mkdir -p "$out"
here=$(cd "$(dirname "$0")" && pwd)
build=${VRAM_BUILD_DIR:-$here/../build}
NBDKIT=${NBDKIT:-nbdkit}
MEMORY_PLUGIN=${MEMORY_PLUGIN:-memory}
VRAM_PLUGIN=${VRAM_PLUGIN:-$build/plugin/nbdkit-vram-plugin.so}
LOADGEN=${LOADGEN:-$build/bench/nbd-loadgen}
SIZE=${SIZE:-4G}
SPAN=${SPAN:-1G}
DURATION=${DURATION:-5}
[[ -n $quick ]] && DURATION=${DURATION_QUICK:-3}

sock=$(mktemp -u /tmp/vram-bench.XXXXXX.sock)
results=$out/results.jsonl
: >"$results"

serve() { # name plugin args...
  local name=$1; shift
  rm -f "$sock" "$sock.pid"
  # shellcheck disable=SC2086 # NBDKIT_ARGS is a list of flags
  "$NBDKIT" -f -U "$sock" -P "$sock.pid" ${NBDKIT_ARGS:-} "$@" >"$out/$name-server.log" 2>&1 &
  server=$!
  for _ in $(seq 300); do [[ -s $sock.pid ]] && return 0; kill -0 $server 2>/dev/null || break; sleep 0.1; done
  echo "compare.sh: $name server did not start:" >&2; cat "$out/$name-server.log" >&2; exit 1
}
stop() { kill "$server"; wait "$server" 2>/dev/null || true; }

measure() { # name label loadgen-args...
  local name=$1 label=$2; shift 2
  "$LOADGEN" "nbd+unix:///?socket=$sock" --label "$name/$label" --span "$SPAN" \
    --duration "$DURATION" "$@" | tee -a "$results"
}

matrix() { # name
  local n=$1
  "$LOADGEN" "nbd+unix:///?socket=$sock" --span "$SPAN" --duration 0 --prefill >/dev/null
  measure "$n" sporadic-4k-read --connections 1 --read-pct 100 --sporadic-ms 1
  for c in 1 4 16; do
    measure "$n" "4k-randrw-c$c" --connections "$c" --read-pct 50
  done
  if [[ -z $quick ]]; then
    for c in 1 4; do
      measure "$n" "1m-seqread-c$c" --connections "$c" --bs 1M --pattern seq --read-pct 100
      measure "$n" "1m-seqwrite-c$c" --connections "$c" --bs 1M --pattern seq --read-pct 0
    done
  fi
}

# Same nbdkit flags for both: default threads, unix socket, foreground.
serve memory "$MEMORY_PLUGIN" "size=$SIZE"
matrix memory
stop
# shellcheck disable=SC2086 # VRAM_ARGS is a list of parameters
serve vram "$VRAM_PLUGIN" "size=$SIZE" ${VRAM_ARGS:-}
matrix vram
stop

python3 - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
by = {r["label"]: r for r in rows}
labels = [r["label"].split("/", 1)[1] for r in rows if r["label"].startswith("memory/")]
print(f"{'workload':<20}{'memory ops/s':>14}{'vram ops/s':>12}{'ratio':>8}"
      f"{'mem p50 us':>12}{'vram p50 us':>13}{'mem MB/s':>10}{'vram MB/s':>11}")
for l in labels:
    m, v = by[f"memory/{l}"], by.get(f"vram/{l}")
    if not v:
        continue
    ratio = v["ops_per_s"] / m["ops_per_s"] if m["ops_per_s"] else 0
    print(f"{l:<20}{m['ops_per_s']:>14.0f}{v['ops_per_s']:>12.0f}{ratio:>8.3f}"
          f"{m['lat_us_p50']:>12.1f}{v['lat_us_p50']:>13.1f}{m['mb_per_s']:>10.0f}{v['mb_per_s']:>11.0f}")
PY
