"""The pressure test can fail: the same run with the plugin's swap
protections off (swap-safety=off: no PR_SET_IO_FLUSHER, no mlockall)
deadlocks the guest, and the harness must say so, early, because the
guest's hung-task detector fired, not because the clock ran out.
"""
from settings import HANG_REPORTED_WITHIN, HUNG_TASK_TIMEOUT, PRESSURE_BOUND


def test_without_swap_protections_the_guest_hangs_and_is_caught(vm_run):
    r = vm_run("pressure.sh", params={"SAFETY": "off"}, timeout=PRESSURE_BOUND,
               hung_task_timeout=HUNG_TASK_TIMEOUT)
    assert r.verdict == "hang", f"expected a reported hang, got {r.verdict}: {r.reason}"
    caught = r.first("hang")
    assert caught is not None and caught < HANG_REPORTED_WITHIN, \
        f"hang reported at {caught}s; must be within {HANG_REPORTED_WITHIN}s"
    # By the guest's hung-task detector (before the nbd driver's 30 s
    # request timeout would turn the deadlock into I/O errors).
    assert "blocked for more than" in r.first_line("hang"), r.first_line("hang")
    # Stopped a few seconds after the report, not at the wall-clock bound.
    assert r.elapsed < caught + 15
    assert r.first("timeout") is None
