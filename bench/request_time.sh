#!/usr/bin/env bash
# Where a 4 KiB request's time goes at one connection, one request in
# flight: the time the client waits per request (1 / ops per second), and
# the part of it spent below nbdkit's stats filter, in the plugin.  The
# rest is the transport: the client, the socket, nbdkit's request
# handling and its hand-off to a worker thread.  For the memory plugin and
# the vram plugin, with nbdkit's default threads and with --threads=1 (the
# connection's own thread serves each request), two rounds each.
#
#   bench/request_time.sh OUTDIR      (environment as for compare.sh;
#                                      FILTER_DIR: where nbdkit's filters
#                                      are, if not where nbdkit looks)
#
# Prints one JSON line per run and a table.  The stats filter's own cost
# (two clock reads and a lock per request) is in the plugin's share, the
# same for both plugins.
set -euo pipefail
out=${1:?usage: bench/request_time.sh OUTDIR}
mkdir -p "$out"
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/defaults.sh
. "$here/defaults.sh"
DURATION=${DURATION:-5}
SPAN=${SPAN:-16M}
ROUNDS=${ROUNDS:-2}
stats_filter=$(nbdkit_filter stats)

sock=$(mktemp -u /tmp/vram-reqtime.XXXXXX.sock)
results=$out/results.jsonl
: >"$results"
server=
trap '[[ -n $server ]] && kill "$server" 2>/dev/null; rm -f "$sock" "$sock.pid"' EXIT

run() { # name plugin threads round
  local name=$1 plugin=$2 threads=$3 round=$4 flags=() stats client
  [[ $threads == 1 ]] && flags=(--threads=1)
  stats=$out/$name-threads-$threads-$round.stats
  client=$out/$name-threads-$threads-$round.json
  rm -f "$sock" "$sock.pid" "$stats"
  "$NBDKIT" -f -U "$sock" -P "$sock.pid" "${flags[@]}" --filter="$stats_filter" "$plugin" size=4G \
    statsfile="$stats" >"$out/$name-threads-$threads-$round.log" 2>&1 &
  server=$!
  for _ in $(seq 300); do [[ -s $sock.pid ]] && break; sleep 0.1; done
  [[ -s $sock.pid ]] || { echo "request_time.sh: $name did not start" >&2; cat "$out/$name-threads-$threads-$round.log" >&2; exit 1; }
  # --prefill writes the span once in 4 KiB requests: the stats filter
  # counts those too (4,096 of them, against some 100,000 measured), the
  # same kind of request, except that the memory plugin allocates its
  # pages on those first writes: a small span keeps that under 0.2 us per
  # measured request.
  "$LOADGEN" "nbd+unix:///?socket=$sock" --label "$name" --span "$SPAN" --prefill \
    --duration "$DURATION" --connections 1 --read-pct 50 >"$client"
  kill "$server"; wait "$server" 2>/dev/null || true
  server=
  python3 - "$name" "$threads" "$round" "$client" "$stats" >>"$results" <<'PY'
import json, re, sys
name, threads, rnd, client, stats = sys.argv[1:6]
c = json.loads(open(client).read())
text = open(stats).read()
ops = secs = 0
for op in ("read", "write"):
    m = re.search(rf"^{op}: (\d+) ops, ([0-9.]+) s", text, re.M)
    if not m:
        sys.exit(f"request_time.sh: no '{op}:' line in {stats}")
    ops += int(m.group(1)); secs += float(m.group(2))
wait_us = 1e6 / c["ops_per_s"]
plugin_us = secs / ops * 1e6
print(json.dumps({"plugin": name, "threads": threads, "round": int(rnd),
                  "ops_per_s": c["ops_per_s"], "lat_us_p50": c["lat_us_p50"],
                  "client_us_per_request": round(wait_us, 2),
                  "plugin_us_per_request": round(plugin_us, 2),
                  "outside_us_per_request": round(wait_us - plugin_us, 2)}))
PY
  tail -1 "$results"
}

for round in $(seq "$ROUNDS"); do
  for threads in default 1; do
    run memory "$MEMORY_PLUGIN" "$threads" "$round"
    run vram "$VRAM_PLUGIN" "$threads" "$round"
  done
done

python3 - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"{'plugin':<8}{'threads':>8}{'round':>6}{'ops/s':>9}{'client us':>11}"
      f"{'in plugin':>11}{'outside':>9}")
for r in rows:
    print(f"{r['plugin']:<8}{r['threads']:>8}{r['round']:>6}{r['ops_per_s']:>9.0f}"
          f"{r['client_us_per_request']:>11.2f}{r['plugin_us_per_request']:>11.2f}"
          f"{r['outside_us_per_request']:>9.2f}")
PY
