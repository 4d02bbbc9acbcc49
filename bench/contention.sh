#!/usr/bin/env bash
# Sharing the GPU: the vram plugin quiet against the same plugin beside
# another process's work on the GPU (bench/gpu_load.py), in one run,
# printing ratios.  See docs/benchmarks.md, "Beside other GPU work".
#
#   bench/contention.sh plugin OUTDIR  the plugin through nbdkit, quiet and
#                                      beside each load: 4 KiB writes, reads
#                                      and 50/50 at 1 and 16 connections,
#                                      4 KiB zeroes and trims, 1 MiB 50/50
#                                      at 4 connections
#   bench/contention.sh probe OUTDIR   one GPU operation of each kind,
#                                      quiet and beside each load (copy-probe)
#
# Environment: LOADS (default "matmul:8192 matmul:2048 game"), PYTHON
# (one with PyTorch, default python3), VRAM_BUILD_DIR, NBDKIT, LOADGEN,
# PLUGINS ("NAME=PATH[+PARAM...] ...", default "vram=$VRAM_PLUGIN":
# several builds or settings compared in the same run, each beside the
# same load, e.g. "auto=$P yes=$P+share-gpu=yes"), SIZE (4G), SPAN (1G),
# DURATION (seconds a point, 3), MATRIX (full, or quick: 4 KiB writes at
# 1 and 16 connections, 50/50 at 16, zeroes).  Each server keeps a status
# file; before it stops, its shared_gpu_detections (how often share-gpu=auto
# saw another program) goes into the results, as {"label": NAME/LOAD/status}.
set -euo pipefail
mode=${1:?usage: bench/contention.sh probe|plugin OUTDIR}
out=${2:?usage: bench/contention.sh probe|plugin OUTDIR}
mkdir -p "$out"
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/defaults.sh
. "$here/defaults.sh"
PYTHON=${PYTHON:-python3}
LOADS=${LOADS:-matmul:8192 matmul:2048 game}

load_pid=
# start_load NAME: starts gpu_load.py (matmul:N or game) and waits until
# it runs; its output goes to $out/load-NAME.log.
start_load() {
  local name=$1 log=$out/load-${1//:/-}.log
  # shellcheck disable=SC2086 # matmul:N becomes two arguments
  "$PYTHON" -u "$here/gpu_load.py" ${name//:/ } >"$log" 2>&1 &
  load_pid=$!
  for _ in $(seq 600); do
    grep -q '^ready' "$log" && { sleep 1; return 0; }
    kill -0 "$load_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "contention.sh: the load $name did not start:" >&2; cat "$log" >&2; exit 1
}
stop_load() {
  [[ -n $load_pid ]] || return 0
  kill -TERM "$load_pid" 2>/dev/null || true
  wait "$load_pid" 2>/dev/null || true
  load_pid=
}
trap stop_load EXIT

if [[ $mode == probe ]]; then
  probe=$build/bench/copy-probe
  results=$out/probe.jsonl
  "$probe" --label quiet | tee "$results"
  for load in $LOADS; do
    start_load "$load"
    "$probe" --label "$load" | tee -a "$results"
    stop_load
    tail -1 "$out/load-${load//:/-}.log"
  done
  "$PYTHON" - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
loads = list(dict.fromkeys(r["load"] for r in rows))
by = {(r["load"], r["op"], r["bytes"]): r for r in rows}
ops = list(dict.fromkeys((r["op"], r["bytes"]) for r in rows))
print(f"{'operation':<44}{'bytes':>10}" + "".join(f"{l:>14}" for l in loads) + "  ok")
for op, n in ops:
    cells = [by.get((l, op, n)) for l in loads]
    ok = all(c and c["ok"] for c in cells)
    print(f"{op:<44}{n:>10}" + "".join(f"{c['p50_us']:>12.1f}us" if c else f"{'-':>14}" for c in cells)
          + ("  ok" if ok else "  BAD DATA"))
PY
  exit 0
fi
[[ $mode == plugin ]] || { echo "contention.sh: unknown mode $mode (plugin or probe)" >&2; exit 2; }

PLUGINS=${PLUGINS:-vram=$VRAM_PLUGIN}
SIZE=${SIZE:-4G}
SPAN=${SPAN:-1G}
DURATION=${DURATION:-3}
sock=$(mktemp -u /tmp/vram-contention.XXXXXX.sock)
results=$out/results.jsonl
: >"$results"
server=
status=$sock.status
serve() { # name plugin[+param...]
  local params
  IFS=+ read -ra params <<<"$2"
  rm -f "$sock" "$sock.pid" "$status"
  "$NBDKIT" -f -U "$sock" -P "$sock.pid" "${params[0]}" "size=$SIZE" "status-file=$status" \
    "${params[@]:1}" >>"$out/$1-server.log" 2>&1 &
  server=$!
  for _ in $(seq 300); do [[ -s $sock.pid ]] && return 0; kill -0 $server 2>/dev/null || break; sleep 0.1; done
  echo "contention.sh: $1 did not start:" >&2; cat "$out/$1-server.log" >&2; exit 1
}
stop_server() { kill "$server"; wait "$server" 2>/dev/null || true; }
# record_status LABEL: the server's detections so far (the status file is
# rewritten within a second of a change; the plugin removes it at exit).
record_status() {
  sleep 1.2
  local d
  d=$(sed -n 's/^shared_gpu_detections=//p' "$status" 2>/dev/null)
  echo "{\"label\": \"$1/status\", \"detections\": ${d:-null}}" | tee -a "$results"
}
measure() { # label loadgen-args...
  local label=$1; shift
  "$LOADGEN" "nbd+unix:///?socket=$sock" --label "$label" --span "$SPAN" --duration "$DURATION" "$@" |
    tee -a "$results"
}
matrix() { # prefix
  local p=$1 c
  if [[ ${MATRIX:-full} == quick ]]; then
    measure "$p/4k-write-c1" --connections 1 --read-pct 0
    measure "$p/4k-write-c16" --connections 16 --read-pct 0
    measure "$p/4k-randrw-c16" --connections 16 --read-pct 50
    measure "$p/4k-zero-c1" --connections 1 --read-pct 0 --write-as zero
    return
  fi
  for c in 1 16; do
    measure "$p/4k-write-c$c" --connections $c --read-pct 0
    measure "$p/4k-read-c$c" --connections $c --read-pct 100
    measure "$p/4k-randrw-c$c" --connections $c --read-pct 50
  done
  measure "$p/4k-zero-c1" --connections 1 --read-pct 0 --write-as zero
  measure "$p/4k-trim-c1" --connections 1 --read-pct 0 --write-as trim
  measure "$p/1m-randrw-c4" --connections 4 --read-pct 50 --bs 1M
}

# Each load once; every build measured beside it in turn.
for load in quiet $LOADS; do
  [[ $load == quiet ]] || start_load "$load"
  for entry in $PLUGINS; do
    name=${entry%%=*}
    serve "$name" "${entry#*=}"
    matrix "$name/$load"
    record_status "$name/$load"
    stop_server
  done
  if [[ $load != quiet ]]; then stop_load; tail -1 "$out/load-${load//:/-}.log"; fi
done

"$PYTHON" - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
status = {r["label"][:-len("/status")]: r["detections"] for r in rows if r["label"].endswith("/status")}
rows = [r for r in rows if not r["label"].endswith("/status")]
by = {r["label"]: r for r in rows}
names = list(dict.fromkeys(r["label"].split("/")[0] for r in rows))
loads = [l for l in dict.fromkeys(r["label"].split("/")[1] for r in rows) if l != "quiet"]
work = list(dict.fromkeys(r["label"].split("/")[2] for r in rows))
for load in loads:
    print(f"\nbeside {load}: ops/s (p50 us), and the ratio to quiet")
    print(f"{'workload':<16}" + "".join(f"{n + ' quiet':>22}{n + ' beside':>22}{'ratio':>7}" for n in names))
    for w in work:
        line = f"{w:<16}"
        for n in names:
            q, b = by.get(f"{n}/quiet/{w}"), by.get(f"{n}/{load}/{w}")
            if not q or not b:
                line += f"{'-':>51}"
                continue
            line += (f"{q['ops_per_s']:>12.0f} ({q['lat_us_p50']:>6.1f}){b['ops_per_s']:>12.0f} "
                     f"({b['lat_us_p50']:>6.1f}){b['ops_per_s'] / q['ops_per_s']:>7.3f}")
        print(line)
print("\nshared_gpu_detections by the end of each load's points (share-gpu=auto's; '-': not reported)")
print(f"{'build':<10}" + "".join(f"{l:>14}" for l in ["quiet"] + loads))
for n in names:
    print(f"{n:<10}" + "".join(f"{'-' if status.get(f'{n}/{l}') is None else status[f'{n}/{l}']:>14}"
                               for l in ["quiet"] + loads))
# The issue's targets, for the first build named (the one under test).
n = names[0]
def r(load, w, key):
    a, q = by.get(f"{n}/{load}/{w}"), by.get(f"{n}/quiet/{w}")
    return a[key] / q[key] if a and q else float("nan")
print(f"\ntargets for {n}:")
for load in loads:
    checks = [("4k-write-c1 p50", r(load, "4k-write-c1", "lat_us_p50"), "<=", 1.5),
              ("4k-randrw-c1 ops", r(load, "4k-randrw-c1", "ops_per_s"), ">=", 0.7),
              ("4k-randrw-c16 ops", r(load, "4k-randrw-c16", "ops_per_s"), ">=", 0.7),
              ("4k-zero-c1 p50", r(load, "4k-zero-c1", "lat_us_p50"), "<=", 1.5),
              ("4k-trim-c1 p50", r(load, "4k-trim-c1", "lat_us_p50"), "<=", 1.5)]
    for what, v, op, bound in checks:
        if v != v:  # not measured (MATRIX=quick)
            continue
        ok = v <= bound if op == "<=" else v >= bound
        print(f"  beside {load:<12} {what:<18} {v:6.3f} (target {op} {bound}) {'met' if ok else 'MISSED'}")
if len(names) > 1:
    print(f"\nquiet, {names[0]} against {names[1]} (ops/s ratio):")
    for w in work:
        a, b = by.get(f"{names[0]}/quiet/{w}"), by.get(f"{names[1]}/quiet/{w}")
        if a and b:
            print(f"  {w:<16}{a['ops_per_s'] / b['ops_per_s']:>7.3f}")
PY
