#!/bin/bash
# Elastic VRAM (allocation=lazy): the VRAM the plugin holds rises with swap
# use and falls again when the kernel discards freed swap, and only then.
#
# One boot, one export (the guest's only swap), two rounds:
#   d (discard): mkswap; swapon --discard=pages; lazy_hog.py dirties the
#     RAM available plus VMTEST_SWAP_TARGET_MIB and holds it, so about
#     that much goes to swap.  While it holds, VRAM held must cover the
#     swap in use and exceed it by no more than the kernel's striping of
#     swap over 64 MiB address spaces explains (see below).  Then the
#     hog reads a sample of its pages back (checking them) and exits; the
#     kernel discards the swap clusters it left free, the discards reach
#     the plugin as trims, and held must fall.
#   c (control): the same with a plain swapon (no discard) and a smaller
#     hog: held stays up after the hog exits, so it is the discards that
#     give VRAM back.
# Round d ends with swapoff (which discards nothing: held must not change)
# and blkdiscard of the whole device (every chunk released); round c with
# swapoff, and what it still holds is released when nbdkit exits.  Before
# the rounds a ballast process locks 192 MiB of RAM away, so the hogs
# (sized from the RAM available) and the run are smaller.
# VRAM held ("held" below) means the chunks mapped into the export: the
# plugin also keeps a few spare chunks created ahead of need (lazy-spare=,
# a constant 8 MiB at 2 MiB chunks), counted apart.  It is read from the
# plugin's status-file= (held= minus spare=, rewritten within a second of a
# change) and, independently, from the test driver's map file (chunks
# mapped minus unmapped); the totals with the spares (held=; bytes created
# minus released) must agree too, whenever they settle.
# tests/vm/test_lazy_swap.py explains the bounds.
#
# VMTEST_SWAP_SIZE            export size (768M)
# VMTEST_LAZY_CHUNK           lazy-chunk= (2M)
# VMTEST_SWAP_TARGET_MIB      how far past available RAM the hog goes (192)
# VMTEST_VERIFY_STRIDE        the hog checks every Nth page before it exits (64)
# VMTEST_SLACK_CHUNKS         chunks allowed beyond the striped bound (1)
# VMTEST_EXIT_PERCENT         held after exit at most this % of the peak (25)
# VMTEST_CONTROL              1 (default): run the control round
# VMTEST_CONTROL_TARGET_MIB   the control's hog, past available RAM (160)
. /mnt/repo/tests/vm/guest/lib.sh

size=${VMTEST_SWAP_SIZE:-768M}
chunk_arg=${VMTEST_LAZY_CHUNK:-2M}
STATUS=$RUNDIR/vram.status
HOG=/mnt/repo/tests/vm/guest/lazy_hog.py
KiB=1024

# The helpers below run in polling loops while the guest is short of RAM
# and CPU (TCG): they use bash builtins only, no fork.  nap SECONDS sleeps
# by reading a FIFO nobody writes.
mkfifo $RUNDIR/nap.fifo
exec 9<>$RUNDIR/nap.fifo
nap() { read -rt "$1" -u 9; }
usec() { local t=${EPOCHREALTIME/./}; echo $((10#$t)); }

# VRAM held according to the plugin, from the status file (-1 if none):
# in the export (STATUS_HELD), spare (STATUS_SPARE), both (STATUS_TOTAL).
read_status_held() {
  local k v
  STATUS_HELD=-1 STATUS_SPARE=-1 STATUS_TOTAL=-1
  [[ -r $STATUS ]] || return 0
  while IFS='=' read -r k v; do
    case $k in held) STATUS_TOTAL=$v ;; spare) STATUS_SPARE=$v ;; esac
  done <$STATUS
  if ((STATUS_TOTAL >= 0 && STATUS_SPARE >= 0)); then
    STATUS_HELD=$((STATUS_TOTAL - STATUS_SPARE))
  fi
}
# ... and according to the driver, from its map file: the chunks mapped
# into the export now (MAP_HELD, bytes; MAP_CHUNKS, their indices), and
# each create's size minus the size of each handle released (MAP_TOTAL,
# bytes, spares included).  Also the number of creates and releases so far
# (MAP_CREATES, MAP_RELEASES).  The reservation is the test driver's
# first, at 0x600000000000.
read_map_held() {
  local kind rest f h s
  local -A csize=() mapped=()
  MAP_HELD=0 MAP_TOTAL=0 MAP_CREATES=0 MAP_RELEASES=0
  while read -r kind rest; do
    case $kind in
      create)
        h='' s=0
        for f in $rest; do
          case $f in handle=*) h=${f#handle=} ;; size=*) s=${f#size=} ;; esac
        done
        csize[$h]=$s; ((MAP_TOTAL += s, ++MAP_CREATES)) ;;
      release)
        f=${rest%% *}; h=${f#handle=}
        ((MAP_TOTAL -= ${csize[$h]:-0}, ++MAP_RELEASES)) ;;
      map | unmap)
        f=${rest%% *}; h=$(((${f#dptr=} - 0x600000000000) / chunk))
        if [[ $kind == map ]]; then mapped[$h]=1; else unset "mapped[$h]"; fi ;;
    esac
  done <$MAP_FILE
  MAP_HELD=$((${#mapped[@]} * chunk))
  # As ranges: "0-14 32-46 64".
  local start=-1
  MAP_CHUNKS=
  for ((h = 0; h <= nchunks; h++)); do
    if ((h < nchunks)) && [[ -n ${mapped[$h]:-} ]]; then
      ((start < 0)) && start=$h
    elif ((start >= 0)); then
      if ((h - 1 > start)); then MAP_CHUNKS+="$start-$((h - 1)) "; else MAP_CHUNKS+="$start "; fi
      start=-1
    fi
  done
  MAP_CHUNKS=${MAP_CHUNKS% }
}
read_swap_used() {
  local dev _type _size used rest
  SWAP_USED_KB=0
  while read -r dev _type _size used rest; do
    [[ $dev == "$NBD" ]] && SWAP_USED_KB=$used
  done </proc/swaps
}
mib() { echo $(($1 / 1024 / 1024)); }
# "NAME:PID:KB ..." for each process with pages in swap (VmSwap).
swapped_out_by_process() {
  local d k v name out=''
  for d in /proc/[0-9]*; do
    name='' v=0
    while read -r k v _; do
      case $k in Name:) name=$v ;; VmSwap:) break ;; esac
    done 2>/dev/null <"$d/status"
    [[ $k == VmSwap: && $v -gt 0 ]] && out+="$name:${d#/proc/}:${v} "
  done
  echo "${out:-none}"
}

# settle [MAX_SECONDS]: waits until the status file and the map file agree
# (held, and the totals with spares) and neither has changed for 1.5 s (the
# plugin rewrites the status file within a second of a change); sets HELD
# and SPARE (bytes).  Returns 1 if that does not happen within MAX_SECONDS.
settle() {
  local max=${1:-20} t0 last=x same=0 now
  t0=$(usec)
  while :; do
    read_status_held; read_map_held
    now="$STATUS_HELD $STATUS_TOTAL"
    if [[ $STATUS_HELD == "$MAP_HELD" && $STATUS_TOTAL == "$MAP_TOTAL" && $now == "$last" ]]
    then
      ((++same >= 3)) && { HELD=$STATUS_HELD SPARE=$STATUS_SPARE; return 0; }
    else
      same=0
    fi
    last=$now
    if (($(usec) - t0 > max * 1000000)); then
      HELD=$STATUS_HELD SPARE=$STATUS_SPARE
      log "held did not settle in ${max}s: status file $STATUS_HELD ($STATUS_TOTAL with" \
          "spares), map file $MAP_HELD ($MAP_TOTAL)"
      return 1
    fi
    nap 0.5
  done
}

# Background sampler: peak swap used and peak VRAM held (the map file's,
# which does not lag) while a hog runs, until $RUNDIR/sampler.stop exists
# (not killed: a kill between the truncation and the write of the peak
# file once left it empty).
sampler() {
  local peak_used=0 peak_held=0
  while [[ ! -e $RUNDIR/sampler.stop ]]; do
    read_swap_used; read_map_held
    ((SWAP_USED_KB > peak_used)) && peak_used=$SWAP_USED_KB
    ((MAP_HELD > peak_held)) && peak_held=$MAP_HELD
    echo "$peak_used $peak_held" >$RUNDIR/peak
    nap 0.5
  done
}

start_nbdkit "$size" require allocation=lazy lazy-chunk="$chunk_arg" status-file=$STATUS ||
  { fail "nbdkit did not start"; exit 1; }
grep -q "swap protections: io-flusher on, mlockall on" $NBDKIT_LOG
check $? "nbdkit reports io-flusher and mlockall in force"
chunk='' alloc='' export_size=''
while IFS='=' read -r k v; do
  case $k in lazy_chunk) chunk=$v ;; allocation) alloc=$v ;; size) export_size=$v ;; esac
done <$STATUS
[[ $alloc == lazy && $chunk -gt 0 && $export_size -gt 0 ]]
check $? "status file: allocation=$alloc, lazy_chunk=$chunk, size=$export_size" ||
  { finish; exit 1; }
nchunks=$(((export_size + chunk - 1) / chunk))
figure chunk_bytes "$chunk"
zswap=$(cat /sys/module/zswap/parameters/enabled 2>/dev/null || echo absent)
[[ $zswap != Y ]]
check $? "zswap is off ($zswap): every page swapped out goes to the device"

attach 2 -swap || { fail "nbd-client -C 2 -swap"; exit 1; }
wait_size
t0=$(now)
warm_up $NBD
check $? "warm-up reads ($(cat /sys/block/nbd0/queue/max_sectors_kb) KiB, O_DIRECT)"
figure warm_up_seconds "$(elapsed_since "$t0")"
settle 10
check $? "status file and map file agree after the warm-up"
((HELD == 0))
check $? "reads map no VRAM: $HELD bytes held after the warm-up"
# lazy-spare='s default: 8 MiB worth of chunks, at least one.
((SPARE > 0 && SPARE <= (chunk > 8 * 1024 * 1024 ? chunk : 8 * 1024 * 1024)))
check $? "spare chunks are ready before swap starts ($SPARE bytes)"
figure spare_bytes "$SPARE"

# Linux (6.1) does not fill a solid-state swap device from the start: its
# free-cluster list takes one 1 MiB cluster from each 64 MiB "swap address
# space" in turn (SWAP_CLUSTER_COLS in mm/swapfile.c), so U MiB in use is
# about U/T MiB at the start of each of the T address spaces.  A chunk is
# held if any cluster in it was written, so held is about T times the swap
# in use per address space rounded up to whole chunks.  Upper bound: per
# address space, the even share rounded up plus one cluster, plus one more
# for the CPUs' partly used current clusters (and the header in cluster
# 0), rounded up to chunks; plus VMTEST_SLACK_CHUNKS for clusters written,
# freed and not yet reused.  Never more than the export.
TRUNK=$((64 * 1024 * 1024)) MiB=$((1024 * 1024))
SLACK_CHUNKS=${VMTEST_SLACK_CHUNKS:-1}
striped_bound() {  # USED_KB -> bytes
  local trunks=$(((export_size + TRUNK - 1) / TRUNK)) per max
  per=$((($1 * KiB + trunks * MiB - 1) / (trunks * MiB) + 2))  # MiB per address space
  per=$(((per * MiB + chunk - 1) / chunk * chunk))
  ((per > TRUNK && chunk <= TRUNK)) && per=$TRUNK
  max=$((trunks * per + SLACK_CHUNKS * chunk))
  local all=$((nchunks * chunk))
  echo $((max < all ? max : all))
}
# Which 64 MiB address spaces hold a mapped chunk (from MAP_CHUNKS).
trunks_touched() {
  local r c; local -A seen=()
  for r in $MAP_CHUNKS; do
    for ((c = ${r%-*}; c <= ${r#*-}; c++)); do seen[$((c * chunk / TRUNK))]=1; done
  done
  echo ${#seen[@]}
}

# round NAME TARGET_MIB VERIFY_STRIDE TAIL [SWAPON_OPTION...]: mkswap,
# swapon, the hog (RAM available + TARGET_MIB), swapoff, and with TAIL
# "full" the checks after swapoff and blkdiscard ("short": none).  Figures
# are prefixed NAME_; sets PEAK_HELD, HELD_AT_HOLD and HELD_AFTER_EXIT.
round() {
  local r=$1 target=$2 stride=$3 tail=$4; shift 4
  local t_round t0 avail_kb hog_mib hog_pid hog_rc sampler_pid i used cached
  local peak_used_kb=0 peak_held=0 need_chunks bound
  t_round=$(now)
  log "---- round $r: mkswap; swapon $* -p 100; the hog goes $target MiB past available RAM"
  t0=$(now)
  mkswap $NBD >/dev/null
  check $? "$r: mkswap ($(elapsed_since "$t0")s)" || return 1
  # swapon --discard=pages discards nothing at swapon (only freed
  # clusters later), so one settle covers both.
  swapon "$@" -p 100 $NBD
  check $? "$r: swapon $* -p 100" || return 1
  log "$r: $(dmesg | grep 'swap on /dev/nbd0' | tail -n 1)"
  settle 10
  check $? "$r: held settles after mkswap and swapon"
  ((HELD <= chunk))
  check $? "$r: after mkswap and swapon at most one chunk is held ($HELD bytes: the header is in chunk 0)"
  figure "${r}_held_before_pressure" "$HELD"

  avail_kb=$(meminfo_kb MemAvailable)
  hog_mib=$((avail_kb / KiB + target))
  log "$r: $avail_kb kB available; the hog dirties $hog_mib MiB"
  figure "${r}_hog_mib" "$hog_mib"
  rm -f $RUNDIR/hog.stop $RUNDIR/peak $RUNDIR/sampler.stop
  : >$RUNDIR/hog-$r.log
  sampler &
  sampler_pid=$!
  t0=$(now)
  $PY $HOG "$hog_mib" $RUNDIR/hog.stop $((RANDOM + 1)) "$stride" >$RUNDIR/hog-$r.log 2>&1 &
  hog_pid=$!
  for ((i = 0; i < 2400; i++)); do
    [[ $(<$RUNDIR/hog-$r.log) == *"hog: dirtied"* ]] && break
    kill -0 $hog_pid 2>/dev/null || break
    nap 0.5
  done
  sed "s/^/$r: /" $RUNDIR/hog-$r.log
  grep -q "^hog: dirtied" $RUNDIR/hog-$r.log
  check $? "$r: the hog dirtied $hog_mib MiB" || { kill $sampler_pid; return 1; }
  figure "${r}_dirty_seconds" "$(elapsed_since "$t0")"

  # The hog holds still: compare swap used with VRAM held.
  settle 20
  check $? "$r: held settles while the hog holds its memory"
  for ((i = 0; i < 3; i++)); do
    ((i)) && nap 0.5
    read_swap_used; used=$SWAP_USED_KB; cached=$(meminfo_kb SwapCached)
    read_status_held; read_map_held
    log "$r: holding: swap used $used kB, SwapCached $cached kB; held $STATUS_HELD" \
        "($(mib "$STATUS_HELD") MiB, $((STATUS_HELD / chunk)) chunks: $MAP_CHUNKS)"
  done
  HELD_AT_HOLD=$STATUS_HELD
  figure "${r}_used_hold_kb" "$used"
  figure "${r}_swapcached_hold_kb" "$cached"
  figure "${r}_held_hold" "$HELD_AT_HOLD"
  # Lower bound, exact: a page that is only in swap (used minus
  # SwapCached) was written to its slot, so its slot's chunk is mapped,
  # and that many slots fill at least this many chunks.
  need_chunks=$((((used - cached) * KiB + chunk - 1) / chunk))
  ((HELD_AT_HOLD >= need_chunks * chunk))
  check $? "$r: held $HELD_AT_HOLD bytes covers the $((used - cached)) kB only in swap ($need_chunks chunks)"
  bound=$(striped_bound "$used")
  ((HELD_AT_HOLD <= bound))
  check $? "$r: held $HELD_AT_HOLD bytes is at most $bound, swap used $used kB spread over the kernel's 64 MiB swap address spaces, in chunks"
  figure "${r}_held_hold_bound" "$bound"
  figure "${r}_address_spaces_held" "$(trunks_touched)"
  log "$r: the held chunks lie in $(trunks_touched) of the export's $(((export_size + TRUNK - 1) / TRUNK)) 64 MiB swap address spaces"

  t0=$(now)
  touch $RUNDIR/hog.stop
  wait $hog_pid; hog_rc=$?
  touch $RUNDIR/sampler.stop; wait $sampler_pid
  read -r peak_used_kb peak_held <$RUNDIR/peak
  tail -n +2 $RUNDIR/hog-$r.log | sed "s/^/$r: /"
  check $hog_rc "$r: the hog read its pages back right and exited (status $hog_rc)"
  figure "${r}_verify_exit_seconds" "$(elapsed_since "$t0")"
  figure "${r}_peak_used_kb" "$peak_used_kb"
  figure "${r}_peak_held" "$peak_held"
  PEAK_HELD=$peak_held

  # The hog is gone and its swap free.
  t0=$(now)
  settle 30
  check $? "$r: held settles after the hog exits"
  figure "${r}_settle_after_exit_seconds" "$(elapsed_since "$t0")"
  read_swap_used; read_map_held
  log "$r: after exit: swap used $SWAP_USED_KB kB; held $HELD bytes ($(mib "$HELD") MiB," \
      "chunks $MAP_CHUNKS); $MAP_CREATES chunks mapped and $MAP_RELEASES released so far"
  figure "${r}_used_after_exit_kb" "$SWAP_USED_KB"
  log "$r: after exit: SwapCached $(meminfo_kb SwapCached) kB; swapped out:" \
      "$(swapped_out_by_process)"
  figure "${r}_held_after_exit" "$HELD"
  HELD_AFTER_EXIT=$HELD

  t0=$(now)
  swapoff $NBD
  check $? "$r: swapoff ($(elapsed_since "$t0")s)"
  if [[ $tail == short ]]; then
    figure "${r}_round_seconds" "$(elapsed_since "$t_round")"
    return 0
  fi
  settle 10
  check $? "$r: held settles after swapoff"
  log "$r: after swapoff: held $HELD bytes ($(mib "$HELD") MiB)"
  figure "${r}_held_after_swapoff" "$HELD"
  ((HELD <= HELD_AFTER_EXIT))
  check $? "$r: swapoff maps no VRAM ($HELD_AFTER_EXIT -> $HELD bytes)"

  blkdiscard -f $NBD
  check $? "$r: blkdiscard -f of the whole device"
  settle 10
  check $? "$r: held settles after blkdiscard"
  ((HELD == 0))
  check $? "$r: after blkdiscard no VRAM is held ($HELD bytes; map file $MAP_HELD)"
  figure "${r}_held_after_blkdiscard" "$HELD"
  figure "${r}_round_seconds" "$(elapsed_since "$t_round")"
}

PEAK_HELD=0 HELD_AFTER_EXIT=0
# A ballast keeps the RAM available, and so the hogs and the run, small.
ballast 192 || { finish; exit 1; }
round d "${VMTEST_SWAP_TARGET_MIB:-192}" "${VMTEST_VERIFY_STRIDE:-64}" full --discard=pages
d_peak=$PEAK_HELD d_hold=$HELD_AT_HOLD d_exit=$HELD_AFTER_EXIT
# What the kernel gives back: every swap cluster (1 MiB) that the exit
# left wholly free is discarded; a chunk stays held while any slot in it
# is still in use: pages of the processes that live on (this shell, its
# tmpfs files) and freed slots waiting in the kernel's per-CPU swap slot
# caches, scattered over the address spaces like everything else.
((d_exit * 100 <= d_peak * ${VMTEST_EXIT_PERCENT:-25}))
check $? "d: the discards gave VRAM back: held $(mib "$d_exit") MiB after the hog exited, at most ${VMTEST_EXIT_PERCENT:-25}% of the peak $(mib "$d_peak") MiB"

if [[ ${VMTEST_CONTROL:-1} == 1 ]]; then
  # What swapoff and blkdiscard do, round d checked; here only the exit.
  round c "${VMTEST_CONTROL_TARGET_MIB:-160}" 0 short
  c_peak=$PEAK_HELD c_exit=$HELD_AFTER_EXIT
  ((c_exit * 100 >= c_peak * 90))
  check $? "c: without discard the VRAM stays held: $(mib "$c_exit") MiB after the hog exited, at least 90% of the peak $(mib "$c_peak") MiB"
fi
drop_ballast

detach
check $? "nbd-client -d"
stop_nbdkit
check $? "nbdkit exits cleanly"
read_map_held
((MAP_TOTAL == 0))
check $? "every chunk created was released by the end ($MAP_TOTAL bytes left; $MAP_CREATES created, $MAP_RELEASES released)"
figure chunks_created "$MAP_CREATES"
[[ ! -e $STATUS ]]
check $? "the status file is removed at exit"
cp $MAP_FILE $OUT/fakecuda.map
grep "VRAM held" $NBDKIT_LOG | sed 's/^/nbdkit: /'
finish "d: held $(mib "$d_hold") MiB holding, $(mib "$d_exit") MiB after exit; c: $(mib "${c_peak:-0}") MiB peak, $(mib "${c_exit:-0}") MiB after exit"
