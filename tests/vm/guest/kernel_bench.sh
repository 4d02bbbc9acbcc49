#!/bin/bash
# bench/kernel_device.sh on a real /dev/nbd0 in the guest: the original
# project's methodology (ioping sporadic 4 KiB reads, fio libaio 4 KiB
# random with 16 jobs and 1, dd O_DIRECT 1 MiB) through the kernel's nbd
# driver to the plugin.  Run by hand, not in CI:
#
#   python3 tests/vm/harness.py kernel_bench.sh [RUNTIME=3] [MB=128] [SMP=2]
#
# Under qemu's TCG the figures say whether the script works on an nbd
# device, not how fast anything is (every instruction is emulated).
. /mnt/repo/tests/vm/guest/lib.sh

start_nbdkit 256M require || { fail "nbdkit did not start"; exit 1; }
attach 2 || { fail "nbd-client -C 2"; exit 1; }
wait_size
check $? "the kernel sees the export's size"
out=/mnt/out/kernel-bench
RUNTIME=${VMTEST_RUNTIME:-3} MB=${VMTEST_MB:-128} \
  bash /mnt/repo/bench/kernel_device.sh --destroy-data $NBD $out
check $? "bench/kernel_device.sh ran to the end on $NBD"
[[ -s $out/kernel-device.jsonl ]]
check $? "it wrote its JSON lines"
detach
check $? "nbd-client -d"
stop_nbdkit
check $? "nbdkit exited cleanly"
pass
