#!/usr/bin/env bash
# Sharing the GPU: the vram plugin quiet against the same plugin beside
# another process's work on the GPU (bench/gpu_load.py), in one run,
# printing ratios.  See docs/benchmarks.md, "Beside other GPU work".
#
#   bench/contention.sh probe OUTDIR   one GPU operation of each kind,
#                                      quiet and beside each load (copy-probe)
#
# Environment: LOADS (default "matmul:8192 matmul:2048 game"), PYTHON
# (one with PyTorch, default python3), VRAM_BUILD_DIR.
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
echo "contention.sh: unknown mode $mode" >&2
exit 2
