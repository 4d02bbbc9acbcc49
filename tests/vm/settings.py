"""Bounds shared by the VM tests (seconds of wall-clock time on the host).

Measured on a 2-core Debian 12 machine under TCG (docs/dev/vm-tests.md has the
figures): a pressure run takes about 90 s, a hang is reported 30 to 55 s
after boot.  The bounds leave room for a slower machine without letting a
stuck guest hold CI for long.
"""
# One pressure run (boot, nbdkit, warm-up, stress-ng, swapoff, teardown):
# about 90 s on an idle machine, 300 s beside another copy of the suite;
# stress-ng's own bound is 420 s.
PRESSURE_BOUND = 480
# A task in D state this long is a hang (the guest's hung_task_timeout_secs).
# Long enough that no healthy swap I/O under TCG waits this long, short
# enough that a deadlock is reported within a minute.
HUNG_TASK_TIMEOUT = 10
# The negative control must be reported as a hang by this time: well before
# PRESSURE_BOUND, so it is the kernel's hang report (hung task, or nbd's
# 30 s request timeout) that stops it, not the clock.
HANG_REPORTED_WITHIN = 120
# Block-layer, filesystem and fault runs.
BLOCK_BOUND = 300
# The integrity filter's swap test, one boot with the filter and one
# without: 25 to 45 s each, up to 100 s on a machine busy with other work.
INTEGRITY_SWAP_BOUND = 300
