# shellcheck shell=bash
# Shared by the guest test scripts (sourced; bash).  They run in the
# guest, chrooted into the host's root (read-only), with:
#   /mnt/repo   this repository      /mnt/build  the build (VRAM_BUILD_DIR)
#   /mnt/out    results, read by the harness on the host
#   /run, /tmp  guest tmpfs
#   /run/ram    guest ramfs, never swapped (see SERVER_FILES)
# and VMTEST_* variables from the harness (out/vmtest.env).
#
# A script reports with check/figure/finish: `finish` writes
# /mnt/out/result.json and prints "VMTEST RESULT pass|fail ...".  A script
# that exits without calling finish fails.

OUT=/mnt/out
BUILD=/mnt/build
RUNDIR=/run/vmtest
SOCK=$RUNDIR/nbdkit.sock
# SERVER_FILES: what the test's own instrumentation writes from inside the
# server while it serves: the test driver's map file (a line per cuMemMap,
# written in the calling thread under the driver's lock) and nbdkit's
# stderr.  They live on ramfs.  On tmpfs their pages are swap-backed: once
# the last page of the file was swapped out to the device under test, the
# next line needs a swap-in only the writing server can serve, and the
# guest deadlocks (docs/dev/vm-tests.md, finding 12).  Nothing of the kind
# exists in production: the real driver writes no file, and nbdkit's
# stderr goes to journald over a socket.  The plugin's own files (the
# requests file, mapped and locked; the status file, replaced whole by a
# thread that serves no request) stay on tmpfs, as in production.
SERVER_FILES=/run/ram
NBDKIT_LOG=$SERVER_FILES/nbdkit.log
MAP_FILE=$SERVER_FILES/fakecuda.map
REQUESTS_FILE=$RUNDIR/nbdkit.requests
NBD=/dev/nbd0
# shellcheck disable=SC2034  # for the scripts that source this
PY=/usr/bin/python3
# shellcheck disable=SC2034
CHECKER=/mnt/repo/tests/vm/guest/blockcheck.py
mkdir -p $RUNDIR

T0=$(cut -d' ' -f1 /proc/uptime)
failures=()
checks=()
figures=()
finished=

log() { echo "vmtest: $*"; }

# uptime in seconds with centiseconds, as a decimal string
now() { cut -d' ' -f1 /proc/uptime; }
elapsed_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# check STATUS DESCRIPTION: records a failure unless STATUS is 0; returns
# STATUS.
check() {
  local status=$1; shift
  if [[ $status -eq 0 ]]; then
    log "ok: $*"
    checks+=("{\"ok\": true, \"what\": $(json_string "$*")}")
  else
    log "FAILED: $*"
    failures+=("$*")
    checks+=("{\"ok\": false, \"what\": $(json_string "$*")}")
  fi
  return "$status"
}
fail() { check 1 "$@"; }

# figure NAME VALUE: a number (or a JSON literal) for result.json.
figure() {
  log "figure $1 = ${2:-null}"
  figures+=("\"$1\": ${2:-null}")
}

json_string() {
  local s=${1//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\t'/ }
  printf '"%s"' "${s//$'\n'/ }"
}

finish() {
  [[ -n $finished ]] && return
  finished=1
  local status=pass detail=${1:-}
  if ((${#failures[@]})); then
    status=fail
    detail=$(IFS=';'; echo "${failures[*]}")
  fi
  figure guest_script_seconds "$(elapsed_since "$T0")"
  local f joined="" checklist=""
  for f in "${figures[@]}"; do joined+="${joined:+, }$f"; done
  for f in "${checks[@]}"; do checklist+="${checklist:+, }$f"; done
  printf '{"status": "%s", "detail": %s, "figures": {%s}, "checks": [%s]}\n' \
    "$status" "$(json_string "$detail")" "$joined" "$checklist" >$OUT/.result.json
  mv $OUT/.result.json $OUT/result.json
  echo "VMTEST FIGURES {$joined}"
  echo "VMTEST RESULT $status $detail"
}
pass() { finish "$@"; }

on_exit() {
  local rc=$?
  if [[ -z $finished ]]; then
    fail "script ended before finishing (exit status $rc)"
    finish
  fi
  if [[ -s $NBDKIT_LOG ]]; then
    cp $NBDKIT_LOG $OUT/nbdkit.log 2>/dev/null
  fi
}
trap on_exit EXIT

# The ivshmem device (1af4:1110): its BAR 2 is the fake VRAM.
ivshmem_dev() {
  local d
  for d in /sys/bus/pci/devices/*; do
    if [[ $(<"$d/vendor") == 0x1af4 && $(<"$d/device") == 0x1110 ]]; then
      echo 1 >"$d/enable"
      echo "$d"
      return 0
    fi
  done
  echo "no ivshmem device (1af4:1110) in the guest" >&2
  return 1
}

# start_nbdkit SIZE SWAP_SAFETY [ARG...]: nbdkit on the fake driver, whose
# memory is the ivshmem BAR (the BAR's size is the GPU's total); waits until
# it answers.  ARGs: plugin parameters (lanes=4), nbdkit options
# (--filter=log) or the fake driver's settings (FAKECUDA_X=Y).
start_nbdkit() {
  local size=$1 safety=$2; shift 2
  local dev bar params=() envs=() opts=() a
  dev=$(ivshmem_dev) || return 1
  bar=$(stat -c %s "$dev/resource2")
  for a in "$@"; do
    case $a in
      FAKECUDA_*) envs+=("$a") ;;
      --*) opts+=("$a") ;;
      *) params+=("$a") ;;
    esac
  done
  rm -f $SOCK $MAP_FILE
  env NBDKIT_VRAM_LIBCUDA=$BUILD/tests/fakecuda/libcuda.so.1 \
      FAKECUDA_MEMORY_FILE="$dev/resource2" FAKECUDA_MAP_FILE=$MAP_FILE \
      FAKECUDA_GPUS="name=ivshmem BAR,total=$bar" \
      "${envs[@]}" \
    nbdkit -f -U $SOCK "${opts[@]}" $BUILD/plugin/nbdkit-vram-plugin.so \
      size="$size" swap-safety="$safety" requests-file=$REQUESTS_FILE "${params[@]}" \
      >$NBDKIT_LOG 2>&1 &
  NBDKIT_PID=$!
  local t0 i
  t0=$(now)
  for ((i = 0; i < 600; i++)); do
    if nbdinfo --size "nbd+unix:///?socket=$SOCK" >/dev/null 2>&1; then
      log "nbdkit serving $size on a $bar-byte BAR after $(elapsed_since "$t0")s (pid $NBDKIT_PID)"
      sed 's/^/nbdkit: /' $NBDKIT_LOG
      start_hangdump $NBDKIT_PID $REQUESTS_FILE
      return 0
    fi
    if ! kill -0 $NBDKIT_PID 2>/dev/null; then
      log "nbdkit exited:"; sed 's/^/nbdkit: /' $NBDKIT_LOG
      return 1
    fi
    sleep 0.2
  done
  log "nbdkit not serving after 120s:"; sed 's/^/nbdkit: /' $NBDKIT_LOG
  return 1
}

# start_hangdump PID REQUESTS_FILE: vm-hangdump (tests/vm/hangdump.cpp)
# watches nbdkit PID from now on, locked in RAM, and dumps what each of
# its threads and the plugin are doing when the harness sees a hang and
# writes to ttyS1 (docs/dev/vm-tests.md, "Reading a hang capture").
start_hangdump() {
  local tool=$BUILD/tests/vm/vm-hangdump
  if [[ ! -x $tool ]]; then
    log "no $tool: a hang will not show nbdkit's threads (rebuild)"
    return 0
  fi
  "$tool" --pid "$1" --requests "$2" --trigger /dev/ttyS1 &
}

# Where the plugin's VRAM allocation lies in the BAR file (bytes), from the
# test driver's map file: "alloc gpu=0 dptr=... file_offset=N size=..."
alloc_offset() {
  local off
  off=$(awk '$1 == "alloc" { for (i = 2; i <= NF; i++) if ($i ~ /^file_offset=/) { sub(/.*=/, "", $i); print $i; exit } }' $MAP_FILE)
  [[ -n $off ]] && echo "$off"
}

stop_nbdkit() {
  [[ -n ${NBDKIT_PID:-} ]] || return 0
  kill -TERM $NBDKIT_PID 2>/dev/null
  local rc=0
  wait $NBDKIT_PID || rc=$?
  NBDKIT_PID=
  sed 's/^/nbdkit: /' $NBDKIT_LOG | tail -n 20
  return $rc
}

# The helper's own functions, sourced from systemd/vram-swap (which runs
# nothing when sourced), so the tests run the shipped code: nbd_attach
# with its check and retries, nbd_receivers_ready, wait_detached and
# warm_up.  Sourcing it turns on set -euo pipefail, which these scripts do
# not use: their options are put back after.
_lib_opts=$(set +o)
# shellcheck source=systemd/vram-swap
source /mnt/repo/systemd/vram-swap
eval "$_lib_opts"
unset _lib_opts
for f in nbd_attach nbd_receivers_ready wait_detached warm_up; do
  declare -F $f >/dev/null ||
    { echo "lib.sh: $f not found in systemd/vram-swap" >&2; exit 1; }
done

# attach CONNECTIONS [nbd-client options]: nbd-client, and with several
# connections the helper's check after it.  It attaches again (up to three
# times) while the kernel does not read each connection with a worker of
# its own: under TCG the kernel is often too slow to start one per
# connection, the workqueue's rescuer then runs their receive work one
# after another, and the connections behind the first are never read
# (their first request waits 30 s; docs/dev/vm-tests.md, finding 9).  Its
# warnings go to the log.
warn() { log "attach: $*"; }
attach() {
  local conns=$1; shift
  nbd_attach $NBD "$conns" -unix $SOCK $NBD -C "$conns" -b 4096 "$@"
}

# (The helper's detach takes an instance; the tests detach the device.)
detach() { nbd-client -d $NBD; }

# nbd-client returns before the kernel has the size; wait for it.
wait_size() {
  local i
  for ((i = 0; i < 100; i++)); do
    [[ $(cat /sys/block/nbd0/size) != 0 ]] && return 0
    sleep 0.1
  done
  return 1
}

# ballast MiB: locks MiB of RAM away in a helper process (an anonymous
# mapping, MAP_POPULATE|MAP_LOCKED), so a load sized from the RAM available
# is smaller and the run shorter; drop_ballast ends it.
BALLAST_PID=
ballast() {
  python3 -c 'import mmap, sys, time
m = mmap.mmap(-1, int(sys.argv[1]) << 20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | 0x8000 | 0x2000)
print("ready", flush=True)
time.sleep(86400)' "$1" >$RUNDIR/ballast.out 2>&1 &
  BALLAST_PID=$!
  for _ in $(seq 100); do grep -q ready $RUNDIR/ballast.out 2>/dev/null && break; sleep 0.1; done
  grep -q ready $RUNDIR/ballast.out
  check $? "$1 MiB of RAM locked away by a ballast process"
}
drop_ballast() {
  [[ -n $BALLAST_PID ]] || return 0
  kill "$BALLAST_PID"; wait "$BALLAST_PID" 2>/dev/null; BALLAST_PID=
}

vmstat() { awk -v k="$1" '$1 == k { print $2 }' /proc/vmstat; }
meminfo_kb() { awk -v k="$1:" '$1 == k { print $2 }' /proc/meminfo; }

# hostcheck NAME ARGS...: asks the harness to check something from the
# host side (the /dev/shm file behind the BAR) and waits for the answer.
# Returns 0 if the host says ok; the host's detail goes to the log.
hostcheck() {
  local name=$1; shift
  local answer=$OUT/hostcheck-$name i
  rm -f "$answer"
  for ((i = 0; i < 600; i++)); do
    if ((i % 25 == 0)); then echo "VMTEST HOSTCHECK $name $*"; fi
    if [[ -s $answer ]]; then
      log "host check $name: $(<"$answer")"
      [[ $(<"$answer") == ok* ]]
      return
    fi
    sleep 0.2
  done
  log "host check $name: no answer in 120s"
  return 1
}
