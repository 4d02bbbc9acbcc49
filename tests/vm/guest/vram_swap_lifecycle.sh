#!/bin/bash
# The vram-swap helper's life cycle in a real kernel: up -> pressure ->
# status -> down, a second up refused, and down refusing (server left
# running, swap intact) while swapoff cannot take the pages back.
. /mnt/repo/tests/vm/guest/lib.sh

H=/mnt/repo/systemd/vram-swap
dev=$(ivshmem_dev) || { fail "no ivshmem device"; exit 1; }
bar=$(stat -c %s "$dev/resource2")
export VRAM_SWAP_CONFIG_DIR=$RUNDIR/conf VRAM_SWAP_RUN_DIR=/run/vram-swap \
       VRAM_SWAP_PLUGIN=$BUILD/plugin/nbdkit-vram-plugin.so \
       NBDKIT_VRAM_LIBCUDA=$BUILD/tests/fakecuda/libcuda.so.1 \
       FAKECUDA_MEMORY_FILE="$dev/resource2" FAKECUDA_GPUS="name=ivshmem BAR,total=$bar"
mkdir -p $VRAM_SWAP_CONFIG_DIR
printf 'SIZE=384M\nPRIORITY=77\nCONNECTIONS=2\nSWAP_SAFETY=require\n' >$VRAM_SWAP_CONFIG_DIR/0.conf

# up
min_free0=$(cat /proc/sys/vm/min_free_kbytes)
$H up 0 >$RUNDIR/up.log 2>&1
rc=$?; sed 's/^/up: /' $RUNDIR/up.log
check $rc "vram-swap up 0"
nbd=$(cat /run/vram-swap/0.dev 2>/dev/null)
awk -v d="$nbd" '$1 == d && $5 == 77 { f = 1 } END { exit !f }' /proc/swaps
check $? "$nbd is swap at priority 77"
[[ $(stat -c %a /run/vram-swap/0.sock) == 600 && $(stat -c %a /run/vram-swap) == 700 ]]
check $? "the socket is 0600 in a 0700 directory"
pid=$(cat /run/vram-swap/0.pid)
start_hangdump "$pid" /run/vram-swap/0.requests
want=$((min_free0 > 65536 ? min_free0 : 65536))
[[ $(cat /proc/sys/vm/min_free_kbytes) == "$want" ]]
check $? "vm.min_free_kbytes is $want while VRAM swap is on (was $min_free0)"
[[ $(cat /proc/$pid/oom_score_adj) == -1000 ]]
check $? "the server is exempt from the OOM killer"

# a second up on the same GPU
$H up 0 >$RUNDIR/up2.log 2>&1
rc=$?; sed 's/^/up again: /' $RUNDIR/up2.log
[[ $rc -ne 0 ]] && grep -q "already running" $RUNDIR/up2.log
check $? "a second up on GPU 0 is refused"
kill -0 "$pid"
check $? "the first server is untouched"

# pressure: a process dirties 64 MiB more than the RAM available and holds
# it, so at least half of that is on the device while `vram-swap status`
# reports it; then it reads every 64th page back, checking each.  A
# ballast takes 192 MiB away first, which keeps the load and its run time
# small; test_pressure.py is the test of swap at zero free RAM.  (A fixed
# stress-ng pass once swapped out 27 pages on a busy host: its two workers
# need not hold their memory at the same time.)
ballast 192 || { finish; exit 1; }
hog_mib=$(($(meminfo_kb MemAvailable) / 1024 + 64))
pswpout0=$(vmstat pswpout)
rm -f $RUNDIR/hog.stop
$PY /mnt/repo/tests/vm/guest/lazy_hog.py "$hog_mib" $RUNDIR/hog.stop $((RANDOM + 1)) 64 \
  >$RUNDIR/hog.log 2>&1 &
hog_pid=$!
for ((i = 0; i < 480; i++)); do
  grep -q "^hog: dirtied" $RUNDIR/hog.log && break
  kill -0 $hog_pid 2>/dev/null || break
  sleep 0.5
done
sed 's/^/pressure: /' $RUNDIR/hog.log
grep -q "^hog: dirtied" $RUNDIR/hog.log
check $? "a process dirtied $hog_mib MiB, 64 MiB more than the RAM available"
used=$(awk -v d="$nbd" '$1 == d { print $4 }' /proc/swaps)
figure swap_used_under_pressure_kb "${used:-0}"
((${used:-0} >= 32 * 1024))
check $? "${used:-0} kB of it is on $nbd (at least 32 MiB)"
$H status >$RUNDIR/status.log 2>&1
check $? "vram-swap status"
sed 's/^/status: /' $RUNDIR/status.log
awk -v p="$pid" -v d="$nbd" '$1 == 0 && $2 == p && $3 == d && $4 ~ /^[0-9]+M$/ &&
  $5 ~ /^[0-9]+M$/ && $5 + 0 >= 32 && $6 == 77 { f = 1 } END { exit !f }' $RUNDIR/status.log
check $? "status shows GPU 0, the server, the device, its size, the swap in use (32 MiB or more) and the priority"
touch $RUNDIR/hog.stop
wait $hog_pid
check $? "the process read its pages back right: $(tail -n 1 $RUNDIR/hog.log)"
figure pswpout_during_pressure "$(($(vmstat pswpout) - pswpout0))"
drop_ballast

# suspend and resume (what vram-swap-sleep.service runs around sleep)
$H suspend >$RUNDIR/suspend.log 2>&1
rc=$?; sed 's/^/suspend: /' $RUNDIR/suspend.log
check $rc "vram-swap suspend"
! awk -v d="$nbd" '$1 == d { f = 1 } END { exit !f }' /proc/swaps && ! kill -0 "$pid" 2>/dev/null
check $? "before sleep: $nbd is no longer swap and the server (its VRAM) is gone"
grep -qx 0 /run/vram-swap/suspended
check $? "GPU 0 is remembered for resume"
$H resume >$RUNDIR/resume.log 2>&1
rc=$?; sed 's/^/resume: /' $RUNDIR/resume.log
check $rc "vram-swap resume"
nbd=$(cat /run/vram-swap/0.dev 2>/dev/null)
pid=$(cat /run/vram-swap/0.pid 2>/dev/null)
awk -v d="$nbd" '$1 == d && $5 == 77 { f = 1 } END { exit !f }' /proc/swaps && kill -0 "$pid"
check $? "after resume: a new server, and $nbd is swap again at priority 77"

# down while swapoff cannot succeed: tmpfs pages charged to a memory cgroup
# that cannot take them back.  The kernel fails swapoff with ENOMEM.
mkdir -p /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup 2>/dev/null
echo +memory >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null
mkdir -p /sys/fs/cgroup/hog
mkdir -p $RUNDIR/tmpfs && mount -t tmpfs -o size=400M tmpfs $RUNDIR/tmpfs
bash -c "echo \$\$ >/sys/fs/cgroup/hog/cgroup.procs; echo 48M >/sys/fs/cgroup/hog/memory.max;
         dd if=/dev/urandom of=$RUNDIR/tmpfs/hog bs=1M count=200 status=none"
check $? "200 MiB of tmpfs pushed to swap by a 48 MiB cgroup"
used=$(awk -v d="$nbd" '$1 == d { print $4 }' /proc/swaps)
log "swap used with the hog: ${used} kB"
$H down 0 >$RUNDIR/down1.log 2>&1
rc=$?; sed 's/^/down (must refuse): /' $RUNDIR/down1.log
[[ $rc -ne 0 ]] && grep -q "STAYS UP" $RUNDIR/down1.log
check $? "down fails loudly when swapoff cannot succeed"
kill -0 "$pid" && awk -v d="$nbd" '$1 == d { f = 1 } END { exit !f }' /proc/swaps
check $? "the server keeps running and $nbd stays swap"
dd if=$RUNDIR/tmpfs/hog of=/dev/null bs=1M count=16 status=none
check $? "the swapped pages are still readable"

# free the pages, then down succeeds
rm -f $RUNDIR/tmpfs/hog; umount $RUNDIR/tmpfs
$H down 0 >$RUNDIR/down2.log 2>&1
rc=$?; sed 's/^/down: /' $RUNDIR/down2.log
check $rc "vram-swap down 0"
! awk -v d="$nbd" '$1 == d { f = 1 } END { exit !f }' /proc/swaps
check $? "$nbd is no longer swap"
! kill -0 "$pid" 2>/dev/null
check $? "the server has stopped"
[[ $(cat /sys/block/${nbd#/dev/}/size) == 0 ]]
check $? "$nbd is detached"
[[ $(cat /proc/sys/vm/min_free_kbytes) == "$min_free0" ]]
check $? "vm.min_free_kbytes is back to $min_free0"
finish
