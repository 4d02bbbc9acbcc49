#!/usr/bin/env bash
# Cross-checks nbd-loadgen against fio's nbd engine: the same workload on
# the same server (nbdkit-memory-plugin), one after the other, and the
# ratio of their ops/s.  Run on a machine with fio (Debian: apt-get install
# fio); see docs/benchmarks.md.
#
#   bench/crosscheck_fio.sh [OUTDIR]
set -euo pipefail
out=${1:-$(mktemp -d)}
mkdir -p "$out"
here=$(cd "$(dirname "$0")" && pwd)
LOADGEN=${LOADGEN:-${VRAM_BUILD_DIR:-$here/../build}/bench/nbd-loadgen}
DURATION=${DURATION:-5}
sock=$(mktemp -u /tmp/crosscheck.XXXXXX.sock)
nbdkit -f -U "$sock" -P "$sock.pid" memory 2G &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -f "$sock.pid"' EXIT
for _ in $(seq 100); do [[ -s $sock.pid ]] && break; sleep 0.1; done
uri="nbd+unix:///?socket=$sock"
"$LOADGEN" "$uri" --span 1G --duration 0 --prefill >/dev/null

printf '%-28s %12s %12s %8s\n' workload fio loadgen ratio
for spec in "4k-randrw 1 1 4k" "4k-randrw 4 1 4k" "4k-randrw 1 8 4k" "1m-read 1 1 1m"; do
  read -r name jobs qd bs <<<"$spec"
  if [[ $name == 1m-read ]]; then rw=(--rw=read); lg=(--pattern seq --read-pct 100); else
    rw=(--rw=randrw --rwmixread=50); lg=(--read-pct 50); fi
  fio --name=x --ioengine=nbd --uri="$uri" "${rw[@]}" --bs="$bs" --iodepth="$qd" \
      --numjobs="$jobs" --size=1G --time_based --runtime="$DURATION" --group_reporting \
      --output-format=json >"$out/fio-$name-$jobs-$qd.json" 2>/dev/null
  # fio's nbd engine prints a line before the JSON.
  fio_iops=$(python3 -c 'import json,sys; t=open(sys.argv[1]).read(); j=json.loads(t[t.index("{"):])["jobs"][0]; print(round(j["read"]["iops"]+j["write"]["iops"]))' \
             "$out/fio-$name-$jobs-$qd.json")
  "$LOADGEN" "$uri" --connections "$jobs" --qd "$qd" --bs "$bs" --span 1G --duration "$DURATION" \
      "${lg[@]}" >"$out/loadgen-$name-$jobs-$qd.json"
  lg_iops=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ops_per_s"])' \
            "$out/loadgen-$name-$jobs-$qd.json")
  python3 -c 'import sys; n,f,l=sys.argv[1],float(sys.argv[2]),float(sys.argv[3]); print(f"{n:<28} {f:>12.0f} {l:>12.0f} {l/f:>8.3f}")' \
    "$name jobs=$jobs qd=$qd" "$fio_iops" "$lg_iops"
done | tee "$out/crosscheck.txt"
