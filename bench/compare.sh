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
# shellcheck source=bench/defaults.sh
. "$here/defaults.sh"
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

gpu_used_mib() { # whole-GPU memory in use, or nothing without nvidia-smi
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0
}

# What the server holds after the matrix: resident host memory, and for the
# vram plugin the VRAM it took (GPU memory used, minus before it started).
footprint() { # name requested_bytes gpu_used_before_mib
  local rss
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$server/status")
  local now=${3:+$(gpu_used_mib)}
  python3 - "$1" "$rss" "$2" "${3:-}" "${now:-}" >>"$results" <<'PY'
import json, sys
name, rss, requested, before, now = sys.argv[1:6]
row = {"label": f"{name}/footprint", "rss_kib": int(rss), "requested_bytes": int(requested)}
if before and now:
    row["vram_held_bytes"] = (int(now) - int(before)) * 1048576
print(json.dumps(row))
PY
  tail -1 "$results"
}

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

size_bytes=$(numfmt --from=iec "$SIZE")
# Same nbdkit flags for both: default threads, unix socket, foreground.
serve memory "$MEMORY_PLUGIN" "size=$SIZE"
matrix memory
footprint memory "$size_bytes"
stop
before=$(gpu_used_mib || true)
# shellcheck disable=SC2086 # VRAM_ARGS is a list of parameters
serve vram "$VRAM_PLUGIN" "size=$SIZE" ${VRAM_ARGS:-}
matrix vram
footprint vram "$size_bytes" "$before"
stop

python3 - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
by = {r["label"]: r for r in rows}
rows = [r for r in rows if "ops_per_s" in r]
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
for name in ("memory", "vram"):
    f = by.get(f"{name}/footprint")
    if f:
        held = f" VRAM held {f['vram_held_bytes'] / 2**30:.2f} GiB of {f['requested_bytes'] / 2**30:.2f} requested" \
            if "vram_held_bytes" in f else ""
        print(f"{name}: server RSS {f['rss_kib'] / 1024:.0f} MiB{held}")
PY
