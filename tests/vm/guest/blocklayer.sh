#!/bin/bash
# The kernel's block layer on /dev/nbd0, four connections (-C 4): O_DIRECT
# pattern writes and read-backs at 4 KiB and 1 MiB, data written through
# one connection read back through another, blkdiscard reaching the
# plugin's trim, and the fake VRAM checked from the host side (the ivshmem
# file in /dev/shm) while nbdkit serves and after it has exited.
#
# Layout of the 256 MiB export (each region has its own pattern seed):
#   A   0M +  2M  4 KiB writes, seed 1
#   B  16M + 64M  1 MiB writes, seed 2
#   C  96M + 32M  four writers, one per CPU (so one per connection), seed 3
#   D 160M + 32M  1 MiB writes, seed 4, then 168M + 8M discarded
#   E 200M +  2M  random bytes with dd oflag=direct, read back with iflag=direct
. /mnt/repo/tests/vm/guest/lib.sh

M=$((1 << 20))
REQLOG=$RUNDIR/requests.log
bc() { $PY $CHECKER "$@"; }

start_nbdkit 256M require --filter=log logfile=$REQLOG || { fail "nbdkit did not start"; exit 1; }
attach 4 || { fail "nbd-client -C 4"; exit 1; }
wait_size
check $? "the kernel sees the export's size"
log "$(nproc) CPUs; /dev/nbd0: $(cat /sys/block/nbd0/size) sectors," \
    "$(ls /sys/block/nbd0/mq | wc -l) hardware queues," \
    "discard_max_bytes $(cat /sys/block/nbd0/queue/discard_max_bytes)"

t0=$(now)
# A and B: pattern writes, read back at the same and at the other size.
bc write $NBD 0 2M 4K 1;        check $? "A: O_DIRECT 4 KiB writes"
bc verify $NBD 0 2M 4K 1;       check $? "A: 4 KiB read-back"
bc verify $NBD 0 2M 1M 1;       check $? "A: 1 MiB read-back of 4 KiB writes"
bc write $NBD 16M 64M 1M 2;     check $? "B: O_DIRECT 1 MiB writes"
bc verify $NBD 16M 64M 1M 2;    check $? "B: 1 MiB read-back"
bc verify $NBD 16M 1M 4K 2;     check $? "B: 4 KiB read-back of 1 MiB writes"
figure direct_io_seconds "$(elapsed_since "$t0")"

# C: the nbd driver picks the connection by hardware queue, and the queue
# by CPU: a writer pinned to CPU i writes through connection i, and a
# reader pinned to CPU i+1 reads its quarter back through another one.
cpus=$(nproc)
quarter=$((32 * M / cpus))
pids=()
for ((i = 0; i < cpus; i++)); do
  bc write $NBD $((96 * M + i * quarter)) $quarter 64K 3 --cpu $i & pids+=($!)
done
rc=0; for p in "${pids[@]}"; do wait "$p" || rc=1; done
check $rc "C: $cpus concurrent writers, one per CPU"
pids=()
for ((i = 0; i < cpus; i++)); do
  bc verify $NBD $((96 * M + i * quarter)) $quarter 64K 3 --cpu $(((i + 1) % cpus)) & pids+=($!)
done
rc=0; for p in "${pids[@]}"; do wait "$p" || rc=1; done
check $rc "C: each quarter read back from another CPU's connection"

# D: discard the middle of a written region.
bc write $NBD 160M 32M 1M 4;    check $? "D: 1 MiB writes"
blkdiscard -o $((168 * M)) -l $((8 * M)) $NBD
check $? "D: blkdiscard 8 MiB"
bc zeroes $NBD 168M 8M 1M;      check $? "D: the discarded range reads back as zeroes"
bc verify $NBD 160M 8M 1M 4;    check $? "D: data before the discarded range intact"
bc verify $NBD 176M 16M 1M 4;   check $? "D: data after the discarded range intact"

# E: plain dd, as a second kind of O_DIRECT user.
head -c $((2 * M)) /dev/urandom >$RUNDIR/random
dd if=$RUNDIR/random of=$NBD bs=4K seek=$((200 * 256)) oflag=direct status=none
check $? "E: dd oflag=direct bs=4K"
dd if=$NBD of=$RUNDIR/back bs=1M skip=200 count=2 iflag=direct status=none
check $? "E: dd iflag=direct bs=1M"
cmp $RUNDIR/random $RUNDIR/back
check $? "E: cmp: dd read back what it wrote"

# What reached the plugin, per connection (the log filter's records).
sync
for c in $(grep -o " connection=[0-9]* Connect " $REQLOG | grep -o "[0-9]*"); do
  r=$(grep -c " connection=$c Read id=" $REQLOG)
  w=$(grep -c " connection=$c Write id=" $REQLOG)
  t=$(grep -c " connection=$c Trim id=" $REQLOG)
  log "connection $c: $r reads, $w writes, $t trims"
done
conns=$(grep -c " Connect export=" $REQLOG)
figure nbd_connections "$conns"
((conns >= 5))   # nbdinfo's probe, then nbd-client's four
check $? "nbd-client made 4 connections ($conns including the start-up probe)"
used=$(grep -E " (Read|Write) id=" $REQLOG | grep -o "connection=[0-9]*" | sort -u | wc -l)
figure connections_with_io "$used"
((used >= (cpus < 4 ? cpus : 4)))
check $? "I/O went through $used connections"
trims=$(grep -c " Trim id=" $REQLOG)
figure trims "$trims"
((trims > 0))
check $? "blkdiscard reached the plugin as $trims trim requests"
! grep -q "return=-1" $REQLOG
check $? "no request failed in the plugin"

# The host reads the fake VRAM behind the export, at the offset of the
# plugin's allocation in the BAR (the fake driver's map file says where).
base=$(alloc_offset)
check $? "the fake driver's map file gives the allocation's place in the BAR ($base)"
hostcheck layout base=$base 1:0:2M 0:2M:14M 2:16M:64M 3:96M:32M 4:160M:8M 0:168M:8M 4:176M:16M
check $? "host side: the fake VRAM holds each region's pattern and zeroes where discarded"

detach;      check $? "nbd-client -d"
stop_nbdkit; check $? "nbdkit exits cleanly"
hostcheck zeroed base=$base 0:0:256M
check $? "host side: nbdkit zeroed the VRAM when it exited"
finish
