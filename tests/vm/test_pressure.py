"""The plugin's one job: be the swap device of a Linux machine that has run
out of RAM.  A guest with 512 MiB of RAM swaps to 320 MiB of (fake) VRAM
through the kernel's nbd driver, while stress-ng writes more memory than
RAM holds and checks every byte it wrote.  It must finish, without a hung
task, an oops, an I/O error or the OOM killer, with at least half of the
swap device in use at the peak, and swapoff and nbd-client -d must work
afterwards.
"""
from scenarios import PRESSURE, run_args


def test_swap_at_zero_free_ram_every_page_verified(vm_run):
    script, kw = run_args(PRESSURE)
    r = vm_run(script, **kw)
    assert r.verdict == "pass", r.reason
    assert r.first("oom") is None, "the OOM killer ran: the test sized stress-ng wrong"
    f = r.figures
    assert f["peak_swap_used_kb"] * 2 >= f["swap_kb"], f
    assert f["peak_swap_only_kb"] * 2 >= f["swap_kb"], \
        f"half the swap device must hold pages RAM does not: {f}"
    # Free RAM went down to the kernel's own reserve (min watermark).
    assert f["min_mem_free_kb"] < 16 * 1024, f
    assert f["pswpout"] > 0 and f["pswpin"] > 0, f

