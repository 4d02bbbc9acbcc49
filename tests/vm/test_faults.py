"""A GPU that fails for good mid-run, seen from the kernel
(tests/vm/guest/faults.sh): the test driver turns sticky while a checker
writes and reads back blocks through /dev/nbd0.  The kernel gets I/O
errors, never wrong data and never a hang, and the guest carries on.
"""
from settings import BLOCK_BOUND


def test_sticky_gpu_failure_gives_io_errors_not_wrong_data(vm_run):
    r = vm_run("faults.sh", timeout=BLOCK_BOUND, expect_io_errors=True)
    assert r.verdict == "pass", r.reason
    assert r.first("io-error-expected") is not None, "the kernel logged no I/O error"
    f = r.figures
    assert f["mismatches"] == 0, f
    assert f["eio_reads"] > 0 and f["eio_writes"] > 0, f
    assert f["ok_reads"] > 0 and f["ok_writes"] > 0, f
    assert f["ok_after_first_error"] == 0, f
