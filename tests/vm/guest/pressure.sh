#!/bin/bash
# Swap at zero free RAM: the plugin, on the ivshmem fake VRAM, is the
# guest's only swap, and stress-ng pushes the guest well into it, checking
# every byte it wrote.
#
# VMTEST_SAFETY      the plugin's swap-safety= (require; off for the
#                    negative control)
# VMTEST_WARMUP      1 (default): warm nbdkit's threads up before swapon
#                    (warm_up in systemd/vram-swap); 0: none
# VMTEST_SWAP_SIZE   export size (320M)
# VMTEST_VM_WORKERS  stress-ng --vm workers (2)
# VMTEST_OVERCOMMIT  percent of the swap device the workers' memory must
#                    spill into beyond the RAM available at the start (55)
# VMTEST_PASSES      write-and-verify passes each worker must complete (1)
# VMTEST_STRESS_MAX  stress-ng --timeout: a bound for a slow or busy machine,
#                    not the plan (420s; about 75 s on an idle 2-core machine,
#                    over 240 s with another test suite running beside it)
# VMTEST_MIN_FREE_KB vm.min_free_kbytes for the run (default: the kernel's),
#                    set after the load is sized, so the load is the same
#                    size whatever the reserve
# VMTEST_WBT_LAT_USEC /dev/nbd0's writeback throttling target
#                    (queue/wbt_lat_usec; 0 turns it off; default: the
#                    kernel's)
# VMTEST_COMPRESS    the plugin's compress= (default: none); the figures
#                    then include what the swapped pages took (its status
#                    file, read after the load, before swapoff)
# VMTEST_IDLE_RELEASE the plugin's idle-release= (default: off): the GPU
#                    must be resting when the load starts, and wake for
#                    it; the test driver's context then costs 32 MiB of
#                    host memory and 100 ms to create, so each wake
#                    allocates at whatever free RAM there is
# VMTEST_BALLAST_MB  RAM locked away by a helper process before the load is
#                    sized (192): keeps the load and the run time what they
#                    were while nbdkit itself locked 192 MiB it never used
#                    (docs/dev/vm-tests.md, finding 3); 0 for none
. /mnt/repo/tests/vm/guest/lib.sh

safety=${VMTEST_SAFETY:-require}
size=${VMTEST_SWAP_SIZE:-320M}
workers=${VMTEST_VM_WORKERS:-2}
overcommit=${VMTEST_OVERCOMMIT:-55}
passes=${VMTEST_PASSES:-1}
stress_max=${VMTEST_STRESS_MAX:-420s}

compress=${VMTEST_COMPRESS:-none}
idle_release=${VMTEST_IDLE_RELEASE:-off}
status_file=$RUNDIR/vram.status
extra=()
[[ $compress == none ]] || extra+=(compress="$compress")
[[ $idle_release == off ]] ||
  extra+=(idle-release="$idle_release" FAKECUDA_CTX_CREATE_US=100000 FAKECUDA_CTX_HOST_BYTES=32M)
[[ $compress == none && $idle_release == off ]] || extra+=(status-file="$status_file")
status_value() { awk -F= -v k="$1" '$1 == k { print $2 }' "$status_file"; }
start_nbdkit "$size" "$safety" "${extra[@]}" || { fail "nbdkit did not start"; exit 1; }
if [[ $safety != off ]]; then
  grep "swap protections: io-flusher on, mlockall on" $NBDKIT_LOG
  check $? "nbdkit reports io-flusher and mlockall in force"
fi

attach 2 -swap || { fail "nbd-client -C 2 -swap"; exit 1; }
wait_size
if [[ ${VMTEST_WARMUP:-1} == 1 ]]; then
  t0=$(now)
  warm_up $NBD
  check $? "warm-up reads ($(cat /sys/block/nbd0/queue/max_sectors_kb) KiB, O_DIRECT)"
  figure warm_up_seconds "$(elapsed_since "$t0")"
fi
if [[ -n ${VMTEST_WBT_LAT_USEC:-} ]]; then
  echo "$VMTEST_WBT_LAT_USEC" >/sys/block/nbd0/queue/wbt_lat_usec
  log "nbd0 wbt_lat_usec = $(cat /sys/block/nbd0/queue/wbt_lat_usec)"
fi
ballast_mb=${VMTEST_BALLAST_MB:-192}
if ((ballast_mb > 0)); then
  ballast "$ballast_mb" || { finish; exit 1; }
fi
mkswap $NBD >/dev/null || { fail "mkswap"; exit 1; }
swapon -p 100 $NBD || { fail "swapon"; exit 1; }
swap_kb=$(awk '$1 == "/dev/nbd0" { print $3 }' /proc/swaps)
avail_kb=$(meminfo_kb MemAvailable)
log "swap on $NBD: $swap_kb kB; RAM: $(meminfo_kb MemTotal) kB total," \
    "$(meminfo_kb MemFree) kB free, $avail_kb kB available;" \
    "nbdkit has $(awk '/^VmLck/ { print $2 }' /proc/$NBDKIT_PID/status) kB locked"

if [[ $idle_release != off ]]; then
  # The GPU rests before the load: the first swap-outs (or the pressure
  # trigger before them) wake it, with RAM running out.
  t0=$(now)
  for ((i = 0; i < 300; i++)); do
    [[ $(status_value gpu_state) == resting ]] && break
    sleep 0.1
  done
  [[ $(status_value gpu_state) == resting ]]
  check $? "the GPU rests before the load (idle-release=$idle_release)"
  figure rest_wait_seconds "$(elapsed_since "$t0")"
  rests0=$(status_value rests) wakes0=$(status_value wakes)
fi

# stress-ng's --vm-bytes is the total over its workers; rand-set writes
# every 8 bytes with a random value, then reads everything back and
# compares.  Its bogo-op counter counts 32 KiB (4096 chunks of 8 bytes),
# so --vm-ops buys whole passes: `passes` each, plus one op so the last
# pass's verification runs before the counter stops the worker.
per_worker_kb=$(((avail_kb + swap_kb * overcommit / 100) / workers / 32 * 32))
ops_per_pass=$((per_worker_kb / 32))
vm_ops=$((workers * (passes * ops_per_pass + 1)))
figure stress_total_kb $((per_worker_kb * workers))
if [[ -n ${VMTEST_MIN_FREE_KB:-} ]]; then
  echo "$VMTEST_MIN_FREE_KB" >/proc/sys/vm/min_free_kbytes
  log "vm.min_free_kbytes = $(cat /proc/sys/vm/min_free_kbytes)"
fi

# Sample peak swap use (and how much of it only the swap device holds:
# Used minus SwapCached) and the least free RAM while stress-ng runs.
sampler() {
  local peak=0 peak_only=0 minfree='' used cached free
  while :; do
    used=$(awk '$1 == "/dev/nbd0" { print $4 }' /proc/swaps)
    cached=$(meminfo_kb SwapCached)
    free=$(meminfo_kb MemFree)
    ((${used:-0} > peak)) && peak=$used
    ((${used:-0} - ${cached:-0} > peak_only)) && peak_only=$((used - cached))
    [[ -z $minfree || ${free:-0} -lt $minfree ]] && minfree=$free
    echo "$peak $peak_only $minfree" >$RUNDIR/sample.tmp && mv $RUNDIR/sample.tmp $RUNDIR/sample
    sleep 0.5
  done
}
sampler &
sampler_pid=$!

pswpin0=$(vmstat pswpin); pswpout0=$(vmstat pswpout)
t0=$(now)
cmd=(stress-ng --vm "$workers" --vm-bytes "$((per_worker_kb * workers))k" --vm-keep
     --vm-method rand-set --verify --vm-ops "$vm_ops" --timeout "$stress_max" --metrics-brief)
log "${cmd[*]}"
"${cmd[@]}" 2>&1 | tee $RUNDIR/stress.log
stress_rc=${PIPESTATUS[0]}
stress_s=$(elapsed_since "$t0")
kill $sampler_pid; wait $sampler_pid 2>/dev/null
drop_ballast
read -r peak_kb peak_only_kb min_free_kb <$RUNDIR/sample
pswpin=$(($(vmstat pswpin) - pswpin0)); pswpout=$(($(vmstat pswpout) - pswpout0))
done_ops=$(awk '$4 == "vm" { print $5 }' $RUNDIR/stress.log)

if [[ $compress != none ]]; then
  # What the pages in swap now take, as the plugin counts them.
  status_kb() { awk -F= -v k="$1" '$1 == k { print int($2 / 1024) }' "$status_file"; }
  sleep 1.5 # the status file is written once a second
  for k in original_bytes compressed_bytes held same_pages whole_pages stored_pages; do
    v=$(awk -F= -v k="$k" '$1 == k { print $2 }' "$status_file")
    case $k in *_bytes | held) figure "compress_${k%_bytes}_kb" $((v / 1024)) ;; *) figure "compress_$k" "$v" ;; esac
  done
  log "compressed: $(status_kb original_bytes) kB of pages in $(status_kb compressed_bytes) kB," \
      "$(status_kb held) kB of VRAM held"
  (($(status_kb original_bytes) > 0 && $(status_kb held) * 2 <= $(status_kb original_bytes) * 3))
  check $? "the swapped pages were stored compressed, in less VRAM than their size and a half"
fi
if [[ $idle_release != off ]]; then
  sleep 1.5 # the status file is written once a second
  figure rest_rests $(($(status_value rests) - rests0))
  figure rest_wakes $(($(status_value wakes) - wakes0))
  figure rest_failed_wakes "$(status_value failed_wakes)"
  figure rest_worst_wake_ms "$(status_value worst_wake_ms)"
  (($(status_value wakes) > wakes0))
  check $? "the GPU woke for the load"
  (($(status_value failed_wakes) == 0))
  check $? "no wake failed"
  log "idle-release: $(grep -c 'resting: no request' $NBDKIT_LOG) rests and" \
      "$(grep -c 'awake again' $NBDKIT_LOG) wakes logged; the longest wake took" \
      "$(status_value worst_wake_ms) ms"
fi
figure swap_kb "$swap_kb"
figure peak_swap_used_kb "$peak_kb"
figure peak_swap_only_kb "$peak_only_kb"
figure min_mem_free_kb "$min_free_kb"
figure pswpin "$pswpin"
figure pswpout "$pswpout"
figure stress_seconds "$stress_s"
figure stress_bogo_ops "${done_ops:-0}"
check "$stress_rc" "stress-ng exited with status $stress_rc"
! grep -Eq "fail:|memory error|bit error" $RUNDIR/stress.log
check $? "stress-ng reports no failed verification"
# All of vm_ops: the last op is counted only after the last verification.
((${done_ops:-0} == vm_ops))
check $? "each worker wrote and verified its $per_worker_kb kB $passes times (${done_ops:-0} of $vm_ops ops)"
((peak_kb * 2 >= swap_kb))
check $? "peak swap use $peak_kb kB is at least half of $swap_kb kB"
((pswpout * 4 * 2 >= swap_kb))
check $? "pages swapped out ($pswpout) add up to at least half the device"

t0=$(now)
swapoff $NBD
check $? "swapoff"
figure swapoff_seconds "$(elapsed_since "$t0")"
detach
check $? "nbd-client -d"
stop_nbdkit
check $? "nbdkit exits cleanly"
finish "peak swap $peak_kb of $swap_kb kB, pswpout $pswpout, pswpin $pswpin, stress ${stress_s}s"
