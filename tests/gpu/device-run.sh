#!/usr/bin/env bash
# Runs on the GPU machine, from the repository root, with .carry/ made by
# make-carry.sh: the GPU test suite, then the memory-vs-vram comparison.
# Logs go to $OUT (the device tool's output folder) or ./device-out.
#
#   bash tests/gpu/device-run.sh [tests|bench|lanes|integrity|crc|lazy|lazy-ab|threads|requests|compress|idle|all]
#
# bench: bench/compare.sh (vram vs memory plugin) and bench/core-bench;
# lanes: the quick comparison at lanes=16, 32 and 64;
# integrity: bench/integrity_overhead.sh (the integrity filter's cost);
# crc: the integrity filter's CRC32C against ISA-L's (integrity-crc-bench);
# lazy: the allocation=lazy GPU tests and bench/lazy_overhead.sh;
# lazy-ab: lazy's steady-state cost by chunk size and spares;
# threads: bench/nbdkit_threads.sh (nbdkit's default threads against
# --threads=1, which vram-swap uses on nbdkit 1.32.4-1.33.9, at several
# requests in flight per connection);
# requests: what requests-file= (which vram-swap always sets) costs,
# bench/ab_overhead.sh without and with it;
# reqtime: bench/request_time.sh (a 4 KiB request's time in the plugin and
# outside it, both plugins, both thread settings);
# fio: bench/crosscheck_fio.sh with the fio that make-carry.sh packed
# (WITH_FIO=1);
# contention: bench/contention.sh plugin (quiet against beside another
# process's GPU work), this build and, where make-carry.sh packed one
# (OLD_PLUGIN=), an earlier build in the same run;
# CONTENTION_EXTRA="NAME=PARAM[+PARAM...] ..." adds this build with other
# settings (e.g. "yes=share-gpu=yes"); CONTENTION_PROBE=1 adds
# bench/contention.sh probe (one GPU operation of each kind);
# compress: the compress= GPU tests, then compress=lz4 and zstd each
# against compress=none on mixed pages (bench/ab_overhead.sh, DATA=mixed),
# and against the fastest eager export on random pages;
# idle: the idle-release= GPU tests, bench/idle_release.py (power and
# clocks with no export, an awake one and a resting one; wake latency over
# IDLE_CYCLES rests, 100; IDLE_BUSY wakes under four connections, 300),
# and what the gate costs an awake export (ab_overhead.sh: idle-release=off
# against idle-release=1h, which never rests in the run);
# ab: bench/compare.sh for this build and the earlier one, alternating,
# twice each, and the ratios of every figure (quiet).
set -uo pipefail
what=${1:-all}
top=$PWD
out=${OUT:-$top/device-out}
mkdir -p "$out"
c=$top/.carry
export LD_LIBRARY_PATH=$c/root/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export PATH=$c/root/usr/bin:$c/root/usr/sbin:$PATH
export VRAM_BUILD_DIR=$c/build
export VRAM_NBDKIT=$c/root/usr/bin/nbdkit
export VRAM_NBDKIT_FILTERDIR=$c/root/usr/lib/x86_64-linux-gnu/nbdkit/filters
memory_plugin=$c/root/usr/lib/x86_64-linux-gnu/nbdkit/plugins/nbdkit-memory-plugin.so
python3 -c 'import pytest' 2>/dev/null || export PYTHONPATH=$c/root/usr/lib/python3/dist-packages

{
  date -u; uname -a; nvidia-smi; nproc; free -g
  "$VRAM_NBDKIT" --version
  "$VRAM_NBDKIT" --dump-plugin "$VRAM_BUILD_DIR/plugin/nbdkit-vram-plugin.so" | grep ^vram_
} >"$out/machine.txt" 2>&1
cat "$out/machine.txt"

rc=0
if [[ $what == tests || $what == all ]]; then
  PYTHONUNBUFFERED=1 python3 -m pytest -v -rs -p no:cacheprovider tests/gpu 2>&1 | tee "$out/gpu-tests.log"
  rc=${PIPESTATUS[0]}
  # What the swap protections cost in RAM with the real driver: the
  # startup log and the memory locked, eager and lazy.
  for alloc in eager lazy; do
    sock=$(mktemp -u /tmp/vram-locked.XXXXXX.sock)
    "$VRAM_NBDKIT" -f -U "$sock" "$VRAM_BUILD_DIR/plugin/nbdkit-vram-plugin.so" size=4G \
      allocation=$alloc >"$out/locked-$alloc.log" 2>&1 &
    server=$!
    for _ in $(seq 100); do [[ -S $sock ]] && break; sleep 0.1; done
    sleep 2
    { echo "--- allocation=$alloc"; grep -E "VmLck|VmRSS" "/proc/$server/status"
      grep -E "^(Rss|Locked)" "/proc/$server/smaps_rollup"; } >>"$out/locked-$alloc.log"
    kill "$server"; wait "$server" 2>/dev/null
    cat "$out/locked-$alloc.log"
  done
fi
if [[ $what == bench || $what == all ]]; then
  export NBDKIT=$VRAM_NBDKIT MEMORY_PLUGIN=$memory_plugin
  bash bench/compare.sh "$out/bench" 2>&1 | tee "$out/bench.log"
  cp "$out/bench/results.jsonl" "$out/compare.jsonl" 2>/dev/null
  "$VRAM_BUILD_DIR/bench/core-bench" --threads 1,2,4,8,16,32 --duration 2 | tee "$out/core-bench.jsonl"
fi
if [[ $what == integrity ]]; then
  NBDKIT=$VRAM_NBDKIT bash bench/integrity_overhead.sh "$out/integrity" 2>&1 | tee "$out/integrity.log"
fi
if [[ $what == crc ]]; then
  "$VRAM_BUILD_DIR/filters/integrity/integrity-crc-bench" 1 2>&1 | tee "$out/crc-bench.jsonl"
fi
if [[ $what == lazy ]]; then
  PYTHONUNBUFFERED=1 python3 -m pytest -v -s -rs -p no:cacheprovider tests/gpu -k "lazy or semantics" \
    2>&1 | tee "$out/gpu-tests.log"
  rc=${PIPESTATUS[0]}
  NBDKIT=$VRAM_NBDKIT bash bench/lazy_overhead.sh "$out/lazy" 2>&1 | tee "$out/lazy.log"
  # Eager; lazy at 2M chunks without spares (cuMemCreate in the write)
  # and with the default spares; lazy at 64M chunks.
  for args in "--allocation eager" "--allocation lazy --lazy-chunk 2M --lazy-spare 0" \
              "--allocation lazy --lazy-chunk 2M" "--allocation lazy --lazy-chunk 64M"; do
    echo "{\"args\": \"$args\"}"
    # shellcheck disable=SC2086
    "$VRAM_BUILD_DIR/bench/core-bench" $args --size 4G --threads 1,16 --duration 2
  done 2>&1 | tee "$out/core-bench-lazy.jsonl"
fi
if [[ $what == lazy-ab ]]; then
  # allocation=lazy's steady-state cost by chunk size and spares, each
  # variant against eager in its own alternating A/B run, and the core
  # alone (no nbdkit) over the same 1 GiB span.
  for v in "lazy-chunk=2M lazy-spare=0" "lazy-chunk=64M lazy-spare=0" "lazy-chunk=2M"; do
    echo "--- allocation=lazy $v"
    NBDKIT=$VRAM_NBDKIT LAZY_ARGS="$v" bash bench/lazy_overhead.sh "$out/ab-${v// /_}" | tail -2
  done 2>&1 | tee "$out/lazy-ab.log"
  for args in "--allocation eager" "--allocation lazy --lazy-chunk 2M --lazy-spare 0" \
              "--allocation lazy --lazy-chunk 64M --lazy-spare 0"; do
    echo "{\"args\": \"$args\"}"
    # shellcheck disable=SC2086
    "$VRAM_BUILD_DIR/bench/core-bench" $args --size 1G --threads 1,16 --duration 4 | grep -v lazy-
  done 2>&1 | tee "$out/core-bench-lazy-ab.jsonl"
fi
if [[ $what == lanes ]]; then
  for lanes in 16 32 64; do
    echo "--- lanes=$lanes"
    NBDKIT=$VRAM_NBDKIT MEMORY_PLUGIN=$memory_plugin \
      VRAM_ARGS="lanes=$lanes" bash bench/compare.sh --quick "$out/lanes-$lanes" | tail -6
  done 2>&1 | tee "$out/lanes.log"
fi
if [[ $what == threads ]]; then
  NBDKIT=$VRAM_NBDKIT bash bench/nbdkit_threads.sh "$out/threads" 2>&1 | tee "$out/threads.log"
fi
if [[ $what == requests ]]; then
  NBDKIT=$VRAM_NBDKIT bash bench/ab_overhead.sh "$out/requests" plain "" "" \
    requests-file "" "requests-file=/tmp/vram-bench.requests" 2>&1 | tee "$out/requests.log"
fi
if [[ $what == reqtime ]]; then
  NBDKIT=$VRAM_NBDKIT MEMORY_PLUGIN=$memory_plugin \
    FILTER_DIR=$VRAM_NBDKIT_FILTERDIR bash bench/request_time.sh "$out/reqtime" 2>&1 | tee "$out/reqtime.log"
fi
if [[ $what == fio ]]; then
  mkdir -p /tmp/fio && tar -C /tmp -xJf "$c/fio.tar.xz"
  # Only fio gets the carried libraries that the machine may also have.
  mkdir -p /tmp/fio/bin
  cat >/tmp/fio/bin/fio <<'SH'
#!/bin/sh
LD_LIBRARY_PATH=/tmp/fio/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} exec /tmp/fio/fio "$@"
SH
  chmod +x /tmp/fio/bin/fio
  PATH=/tmp/fio/bin:$PATH NBDKIT=$VRAM_NBDKIT FILTER_DIR=$VRAM_NBDKIT_FILTERDIR \
    MEMORY_PLUGIN=$memory_plugin \
    bash bench/crosscheck_fio.sh "$out/fio" 2>&1 | tee "$out/fio.log"
fi
if [[ $what == idle ]]; then
  PYTHONUNBUFFERED=1 python3 -m pytest -v -s -rs -p no:cacheprovider tests/gpu -k idle_release \
    2>&1 | tee "$out/gpu-tests.log"
  rc=${PIPESTATUS[0]}
  NBDKIT=$VRAM_NBDKIT PYTHONUNBUFFERED=1 python3 bench/idle_release.py "$out/idle" \
    --cycles "${IDLE_CYCLES:-100}" --busy-cycles "${IDLE_BUSY:-300}" 2>&1 | tee "$out/idle.log"
  NBDKIT=$VRAM_NBDKIT bash bench/ab_overhead.sh "$out/idle-gate" off "" \
    "allocation=lazy idle-release=off" gate "" "allocation=lazy idle-release=1h" 2>&1 |
    tail -4 | tee -a "$out/idle.log"
fi
if [[ $what == compress ]]; then
  PYTHONUNBUFFERED=1 python3 -m pytest -v -s -rs -p no:cacheprovider tests/gpu -k compress \
    2>&1 | tee "$out/gpu-tests.log"
  rc=${PIPESTATUS[0]}
  points="read-c1:--connections 1 --read-pct 100;rw-c1:--connections 1 --read-pct 50"
  points+=";rw-c16:--connections 16 --read-pct 50;read-c16:--connections 16 --read-pct 100"
  for codec in lz4 zstd; do
    echo "--- compress=$codec against compress=none, mixed pages"
    NBDKIT=$VRAM_NBDKIT DATA=mixed POINTS=$points bash bench/ab_overhead.sh \
      "$out/compress-$codec" none "" "compress=none" "$codec" "" "compress=$codec" | tail -4
  done 2>&1 | tee "$out/compress.log"
  echo "--- compress=lz4 against compress=none, random pages (stored whole)"
  NBDKIT=$VRAM_NBDKIT DATA=random POINTS=$points bash bench/ab_overhead.sh \
    "$out/compress-random" none "" "compress=none" lz4 "" "compress=lz4" 2>&1 | tail -4 |
    tee -a "$out/compress.log"
fi
old_plugin=$c/old/nbdkit-vram-plugin.so
if [[ $what == contention ]]; then
  plugins="new=$VRAM_BUILD_DIR/plugin/nbdkit-vram-plugin.so"
  for v in ${CONTENTION_EXTRA:-}; do plugins+=" ${v%%=*}=$VRAM_BUILD_DIR/plugin/nbdkit-vram-plugin.so+${v#*=}"; done
  [[ -f $old_plugin ]] && plugins+=" old=$old_plugin"
  NBDKIT=$VRAM_NBDKIT PLUGINS=$plugins bash bench/contention.sh plugin "$out/contention" 2>&1 |
    tee "$out/contention.log"
  rc=${PIPESTATUS[0]}
  if [[ ${CONTENTION_PROBE:-} == 1 ]]; then
    bash bench/contention.sh probe "$out/probe" 2>&1 | tee "$out/probe.log"
  fi
fi
if [[ $what == ab ]]; then
  [[ -f $old_plugin ]] || { echo "device-run.sh ab: no earlier build (make-carry.sh with OLD_PLUGIN=)"; exit 1; }
  for round in 1 2; do
    for v in new old; do
      plugin=$VRAM_BUILD_DIR/plugin/nbdkit-vram-plugin.so
      [[ $v == old ]] && plugin=$old_plugin
      echo "--- $v (round $round)"
      NBDKIT=$VRAM_NBDKIT MEMORY_PLUGIN=$memory_plugin VRAM_PLUGIN=$plugin \
        bash bench/compare.sh "$out/ab-$v-$round" | tail -12
    done
  done 2>&1 | tee "$out/ab.log"
  python3 - "$out" <<'PY' | tee -a "$out/ab.log"
import json, sys
from pathlib import Path
def load(v):
    rows = {}
    for f in sorted(Path(sys.argv[1]).glob(f"ab-{v}-*/results.jsonl")):
        for l in open(f):
            r = json.loads(l)
            if r["label"].startswith("vram/") and "ops_per_s" in r:
                rows.setdefault(r["label"][5:], []).append(r)
    return rows
new, old = load("new"), load("old")
mean = lambda rs, k: sum(r[k] for r in rs) / len(rs)
print(f"{'workload':<20}{'new ops/s':>12}{'old ops/s':>12}{'new/old':>9}{'new p50':>9}{'old p50':>9}")
for w in new:
    if w in old:
        a, b = mean(new[w], "ops_per_s"), mean(old[w], "ops_per_s")
        print(f"{w:<20}{a:>12.0f}{b:>12.0f}{a / b:>9.3f}{mean(new[w], 'lat_us_p50'):>9.1f}"
              f"{mean(old[w], 'lat_us_p50'):>9.1f}")
PY
fi
exit "$rc"
