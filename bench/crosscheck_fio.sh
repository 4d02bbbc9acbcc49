#!/usr/bin/env bash
# Cross-checks nbd-loadgen against fio's nbd engine: the same workload on
# the same server (nbdkit-memory-plugin), taking turns, and the ratio of
# their ops/s.  Run on a machine with fio (Debian: apt-get install
# fio); see docs/dev/benchmark-log.md.
#
#   bench/crosscheck_fio.sh [OUTDIR]
#
# NBDKIT, MEMORY_PLUGIN (path or name) and FILTER_DIR (where nbdkit's
# filters are, if not where nbdkit looks) for a machine where nbdkit is
# carried, not installed.
set -euo pipefail
out=${1:-$(mktemp -d)}
mkdir -p "$out"
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/defaults.sh
. "$here/defaults.sh"
DURATION=${DURATION:-3}
ROUNDS=${ROUNDS:-5}
delay_filter=$(nbdkit_filter delay)
sock=$(mktemp -u /tmp/crosscheck.XXXXXX.sock)
# Server and client on CPUs of their own (the upper and the lower half):
# sharing them, a single point varies by 10% or more on a 2-core machine.
ncpu=$(nproc)
server_cpus=() client_cpus=()
if ((ncpu >= 2)); then
  server_cpus=(taskset -c "$((ncpu / 2))-$((ncpu - 1))")
  client_cpus=(taskset -c "0-$((ncpu / 2 - 1))")
fi
# Two servers: the memory plugin as it is, and behind nbdkit's delay filter
# (1 ms per request), where the server, not either client's own cost per
# request, sets the pace (docs/dev/benchmark-log.md says what that row showed).
"${server_cpus[@]}" "$NBDKIT" -f -U "$sock" -P "$sock.pid" "$MEMORY_PLUGIN" 2G &
server=$!
"${server_cpus[@]}" "$NBDKIT" -f -U "$sock.slow" -P "$sock.slow.pid" --filter="$delay_filter" "$MEMORY_PLUGIN" 2G \
  delay-read=1ms delay-write=1ms &
slow=$!
trap 'kill $server $slow 2>/dev/null; wait $server $slow 2>/dev/null; rm -f "$sock.pid" "$sock.slow.pid"' EXIT
for _ in $(seq 100); do [[ -s $sock.pid && -s $sock.slow.pid ]] && break; sleep 0.1; done
"$LOADGEN" "nbd+unix:///?socket=$sock" --span 1G --duration 0 --prefill >/dev/null

# Each workload ROUNDS times, fio and nbd-loadgen taking turns; the ratio
# is of the medians (a single point on a 2-core machine varies by 10-20%).
median() { python3 -c 'import statistics,sys; print(round(statistics.median(map(float, sys.argv[1:]))))' "$@"; }
printf '%-28s %12s %12s %8s\n' workload fio loadgen ratio
for spec in "4k-randrw 1 1 4k" "4k-randrw 4 1 4k" "4k-randrw 1 8 4k" "1m-read 1 1 1m" \
            "4k-randrw-1ms 1 8 4k"; do
  read -r name jobs qd bs <<<"$spec"
  uri="nbd+unix:///?socket=$sock"
  [[ $name == *-1ms ]] && uri="nbd+unix:///?socket=$sock.slow"
  if [[ $name == 1m-read ]]; then rw=(--rw=read); lg=(--pattern seq --read-pct 100); else
    rw=(--rw=randrw --rwmixread=50); lg=(--read-pct 50); fi
  fio_runs=() lg_runs=()
  for ((r = 1; r <= ROUNDS; r++)); do
    tag=$name-$jobs-$qd-$r
    # fio's own per-request costs off (threads, not processes; no latency
    # timestamps; no random map): one request at a time on 2 cores they
    # cost fio up to a third of its ops/s, and ops/s is what is compared.
    "${client_cpus[@]}" fio --name=x --ioengine=nbd --uri="$uri" "${rw[@]}" --bs="$bs" --iodepth="$qd" \
        --numjobs="$jobs" --size=1G --time_based --runtime="$DURATION" --group_reporting \
        --thread --gtod_reduce=1 --norandommap --randrepeat=0 \
        --output-format=json >"$out/fio-$tag.json" 2>/dev/null
    # fio's nbd engine prints a line before the JSON.
    fio_runs+=("$(python3 -c 'import json,sys; t=open(sys.argv[1]).read(); j=json.loads(t[t.index("{"):])["jobs"][0]; print(round(j["read"]["iops"]+j["write"]["iops"]))' \
                  "$out/fio-$tag.json")")
    "${client_cpus[@]}" "$LOADGEN" "$uri" --connections "$jobs" --qd "$qd" --bs "$bs" --span 1G --duration "$DURATION" \
        "${lg[@]}" >"$out/loadgen-$tag.json"
    lg_runs+=("$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ops_per_s"])' \
                "$out/loadgen-$tag.json")")
  done
  python3 -c 'import sys; n,f,l=sys.argv[1],float(sys.argv[2]),float(sys.argv[3]); print(f"{n:<28} {f:>12.0f} {l:>12.0f} {l/f:>8.3f}")' \
    "$name jobs=$jobs qd=$qd" "$(median "${fio_runs[@]}")" "$(median "${lg_runs[@]}")"
done | tee "$out/crosscheck.txt"
