#!/usr/bin/env bash
# What nbdkit --threads=1 costs, the setting vram-swap uses on nbdkit
# releases that can abort when a connection dies with requests in flight
# (1.32.4 to 1.33.9; docs/operations.md).  bench/ab_overhead.sh with
# nbdkit's default threads (A) and --threads=1 (B), at the kernel's kind
# of load: 4 connections (vram-swap's default CONNECTIONS) with several
# requests in flight on each, as the kernel's nbd driver keeps them, 4 KiB
# 50/50 and 128 KiB writes (swap-out clusters).
#
#   bench/nbdkit_threads.sh OUTDIR
# Env as for ab_overhead.sh.
set -euo pipefail
out=${1:?usage: bench/nbdkit_threads.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
POINTS=${POINTS:-"4k-c4-qd1:--connections 4 --qd 1 --read-pct 50;\
4k-c4-qd8:--connections 4 --qd 8 --read-pct 50;\
4k-c4-qd32:--connections 4 --qd 32 --read-pct 50;\
4k-c16-qd8:--connections 16 --qd 8 --read-pct 50;\
128k-c4-qd8-write:--connections 4 --qd 8 --bs 128K --read-pct 0"}
export POINTS
exec bash "$here/ab_overhead.sh" "$out" default "" "" threads-1 "--threads=1" ""
