#!/bin/bash
# A GPU that fails for good in the middle of I/O: the test CUDA driver's
# trigger file turns it sticky while a checker writes and reads back
# blocks through /dev/nbd0.  The kernel must see I/O errors (never wrong
# data, never a hang), and the guest must carry on: detach, stop nbdkit,
# report.
. /mnt/repo/tests/vm/guest/lib.sh

TRIGGER=$RUNDIR/trigger
STOP=$RUNDIR/stop-checker
bc() { $PY $CHECKER "$@"; }

start_nbdkit 256M require FAKECUDA_TRIGGER_FILE=$TRIGGER || { fail "nbdkit did not start"; exit 1; }
attach 2 || { fail "nbd-client -C 2"; exit 1; }
wait_size

bc write $NBD 0 16M 64K 7 >/dev/null
check $? "16 MiB written before the fault"

rm -f $STOP
bc faults $NBD 0 16M 64K 7 120 $STOP >$RUNDIR/faults.out 2>&1 &
checker=$!
sleep 2
kill -0 $checker 2>/dev/null
check $? "the checker is doing I/O when the fault is injected"
# Atomically: the fake ignores an empty trigger file.
echo sticky >$TRIGGER.tmp && mv $TRIGGER.tmp $TRIGGER
t_fault=$(now)
log "sticky GPU fault injected"

# Let the checker run into the failure and a while past it.
for ((i = 0; i < 150; i++)); do
  grep -q "first error" $RUNDIR/faults.out && break
  sleep 0.2
done
check $? "the checker saw an error $(elapsed_since "$t_fault")s after the fault"
sleep 2
touch $STOP
wait $checker
checker_rc=$?
cat $RUNDIR/faults.out
# The checker's last line is a JSON object of counts: make them variables.
eval "$(tail -n 1 $RUNDIR/faults.out | $PY -c '
import json, sys
for k, v in json.load(sys.stdin).items():
    if isinstance(v, int) and not isinstance(v, bool):
        print(f"{k}={v}")')"
for k in ok_writes ok_reads eio_writes eio_reads mismatches ok_after_first_error other_errors; do
  figure "$k" "${!k:-null}"
done
check $checker_rc "checker: no wrong data, no error other than EIO"
((${mismatches:-1} == 0));                      check $? "no block read back wrong"
((${ok_reads:-0} > 0 && ${ok_writes:-0} > 0));  check $? "I/O succeeded before the fault"
((${eio_reads:-0} > 0 && ${eio_writes:-0} > 0)); check $? "reads and writes fail with EIO after it"
((${ok_after_first_error:-1} == 0));            check $? "nothing succeeds after the first error"

# A fresh reader gets an error too, not data.
! dd if=$NBD of=/dev/null bs=4K count=1 iflag=direct status=none 2>/dev/null
check $? "a new O_DIRECT read fails"
# (Thousands of them: the ring buffer may keep only nbd's own lines.)
ioerrs=$(dmesg | grep -cE "I/O error, dev nbd0|nbd0: Other side returned error")
figure kernel_io_error_lines "$ioerrs"
((ioerrs > 0)); check $? "the kernel logged I/O errors on nbd0"
said=$(grep -c "The GPU context is unusable; every further request fails with EIO" $NBDKIT_LOG)
((said == 1))
check $? "nbdkit's log says once why the GPU is out of service (said $said times)"
figure nbdkit_error_lines "$(grep -c "error:" $NBDKIT_LOG)"

detach;      check $? "nbd-client -d after the failure"
stop_nbdkit
log "nbdkit exit status $?"
uptime
check $? "the guest is still up"
finish
