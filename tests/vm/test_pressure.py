"""The plugin's one job: be the swap device of a Linux machine that has run
out of RAM.  A guest with 512 MiB of RAM swaps to 320 MiB of (fake) VRAM
through the kernel's nbd driver, while stress-ng writes more memory than
RAM holds and checks every byte it wrote.  It must finish, without a hung
task, an oops, an I/O error or the OOM killer, with at least half of the
swap device in use at the peak, and swapoff and nbd-client -d must work
afterwards.
"""
from scenarios import PRESSURE, PRESSURE_COMPRESS_RESERVE, VRAM_SWAP_MIN_FREE_KB, run_args


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



def test_compressed_swap_at_vram_swaps_reserve_every_page_verified(vm_run):
    """The same with compress=lz4, at the reserve of free RAM vram-swap
    keeps (64 MiB): stress-ng's pages kept compressed in the (fake) VRAM,
    every byte verified, and what they took reported.  At the kernel's own
    reserve this is finding 2's deadlock (docs/dev/vm-tests.md, finding
    14), which the soak boots as pressure-compress."""
    script, kw = run_args(PRESSURE_COMPRESS_RESERVE)
    r = vm_run(script, **kw)
    assert r.verdict == "pass", r.reason
    assert r.first("oom") is None, "the OOM killer ran: the test sized stress-ng wrong"
    f = r.figures
    assert f["peak_swap_used_kb"] * 2 >= f["swap_kb"], f
    # Free RAM went down to the reserve.
    assert f["min_mem_free_kb"] < VRAM_SWAP_MIN_FREE_KB + 16 * 1024, f
    assert f["pswpout"] > 0 and f["pswpin"] > 0, f
    # Pages were stored compressed, and held less VRAM than their size.
    assert f["compress_stored_pages"] > 0, f
    assert f["compress_held_kb"] < f["compress_original_kb"], f
    print(f"compressed: {f['compress_original_kb']} kB of pages in "
          f"{f['compress_compressed_kb']} kB, {f['compress_held_kb']} kB of VRAM held")
