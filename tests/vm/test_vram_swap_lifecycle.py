"""The vram-swap helper in a real kernel (tests/vm/guest/vram_swap_lifecycle.sh):
up -> pressure (a process holding 64 MiB more than the RAM available, then
checking a sample of its pages) -> status -> suspend/resume (what
vram-swap-sleep.service runs) -> down, a second `up` on the same GPU
refused, and `down` refusing, loudly, with the server left running and the
swap intact, while swapoff cannot take the swapped pages back into RAM.
"""
from scenarios import LIFECYCLE, run_args


def test_up_pressure_status_down_and_a_refused_down(vm_run):
    script, kw = run_args(LIFECYCLE)
    r = vm_run(script, **kw)
    assert r.verdict == "pass", r.reason
    # The refused down provokes the hog cgroup's own OOM (that is why
    # swapoff fails).  Under pressure at least 32 MiB was on the device.
    assert r.figures["swap_used_under_pressure_kb"] >= 32 * 1024, r.figures
    assert r.figures["pswpout_during_pressure"] * 4 >= 32 * 1024, r.figures
