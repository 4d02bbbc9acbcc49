#!/bin/bash
# The harness works: the guest booted, has the ivshmem BAR, the build and
# the host's tools, and its result reaches the host.
. /mnt/repo/tests/vm/guest/lib.sh
dev=$(ivshmem_dev)
check $? "ivshmem device found"
figure bar_bytes "$(stat -c %s "$dev/resource2" 2>/dev/null)"
[[ -r $BUILD/plugin/nbdkit-vram-plugin.so && -r $BUILD/tests/fakecuda/libcuda.so.1 ]]
check $? "the build is visible at $BUILD"
for t in nbdkit nbd-client nbdinfo stress-ng mkfs.ext4 blkdiscard $PY; do
  command -v "$t" >/dev/null
  check $? "$t is available"
done
[[ -e /dev/nbd0 ]]
check $? "the nbd module is loaded (/dev/nbd0)"
[[ $(cat /proc/sys/kernel/hung_task_timeout_secs) == "$VMTEST_HUNG_TASK_TIMEOUT" ]]
check $? "hung_task_timeout_secs is $VMTEST_HUNG_TASK_TIMEOUT"
finish
