"""The integrity filter as the kernel sees it (tests/vm/guest/integrity_swap.sh,
swapvictim.py): a process's pages go out to swap on the plugin through
the filter, one bit of one swapped page flips in (fake) VRAM, and the
process touches it.  The kernel must get an I/O error for that page
(`Read-error on swap-device`), the process must die of SIGBUS rather than
read the flipped bit, the filter must log the block once, by its offset,
and every other page must read back right.  No hang, oops or OOM.

Two victims per boot: one with swap readahead off (vm.page-cluster=0),
where exactly one page is lost, and one with the kernel's default
readahead (page-cluster=3), where the bad block's request also carries
its neighbours and the kernel fails all of them: still no wrong data, and
every lost page is one the kernel reported.

The negative control boots the same script without the filter: the
process reads the flipped bit back, silently.  That proves the test can
see corruption at all.
"""
import re

import pytest

from scenarios import INTEGRITY_SWAP, run_args
from settings import INTEGRITY_SWAP_BOUND

CORRUPTION = re.compile(r'error: integrity: data corruption in export "" at offset (\d+) ')


@pytest.fixture(scope="module")
def filtered(vm_run_once):
    script, kw = run_args(INTEGRITY_SWAP)
    return vm_run_once(script, "integrity_swap", **kw)


@pytest.fixture(scope="module")
def unfiltered(vm_run_once):
    # No I/O error is expected: the harness fails the run on the first one.
    return vm_run_once("integrity_swap.sh", "integrity_swap_no_filter",
                       params={"FILTER": 0}, timeout=INTEGRITY_SWAP_BOUND)


def failed_checks(run, prefix=""):
    checks = [c for c in run.result.get("checks", []) if c["what"].startswith(prefix)]
    assert checks, f"the guest ran no check starting {prefix!r}: {run.reason}"
    return [c["what"] for c in checks if not c["ok"]]


def figures(run, *keys):
    """The named figures, for an assertion's message."""
    return {k: run.figures.get(k) for k in keys}


def read_errors(run):
    """Sectors named by the kernel's Read-error on swap-device lines."""
    return [int(m[1]) for _, kind, line in run.events if kind.startswith("io-error")
            for m in [re.search(r"Read-error on swap-device \(\d+:\d+:(\d+)\)", line)] if m]


def test_filtered_guest_ran_clean(filtered):
    assert filtered.verdict == "pass", filtered.reason
    assert filtered.first("oom") is None, filtered.first_line("oom")
    assert not failed_checks(filtered)


@pytest.mark.parametrize("victim", ["single", "readahead"])
def test_the_page_was_really_in_swap_and_is_where_the_bit_flipped(filtered, victim):
    f = filtered.figures
    assert f[f"{victim}_pages_swap_cached"] == 0, figures(filtered, f"{victim}_pages_swap_cached")
    assert not failed_checks(filtered, f"{victim}: all ")
    assert not failed_checks(filtered, f"{victim}: page ")
    assert not failed_checks(filtered, f"{victim}: one bit flipped")
    where = f"{victim}_bar_offset", "alloc_file_offset", f"{victim}_export_offset"
    assert f[where[0]] - f[where[1]] - f[where[2]] in range(4096), figures(filtered, *where)


@pytest.mark.parametrize("victim", ["single", "readahead"])
def test_touching_the_flipped_page_is_sigbus_not_data(filtered, victim):
    f = filtered.figures
    assert f[f"{victim}_child"] == "signal SIGBUS", figures(filtered, f"{victim}_child")
    assert f[f"{victim}_parent_read_bad_page"] == "Input/output error", \
        figures(filtered, f"{victim}_parent_read_bad_page")


@pytest.mark.parametrize("victim", ["single", "readahead"])
def test_the_kernel_reports_a_read_error_for_that_page(filtered, victim):
    sector = filtered.figures[f"{victim}_swap_offset"] * 8
    assert sector in read_errors(filtered), \
        f"no Read-error on swap-device for sector {sector}; seen: {read_errors(filtered)}"


def test_the_filter_logs_each_bad_block_once_by_its_offset(filtered):
    log = (filtered.outdir / "nbdkit.log").read_text()
    f = filtered.figures
    reported = [int(o) for o in CORRUPTION.findall(log)]
    flipped = [f["single_export_offset"], f["readahead_export_offset"]]
    assert reported == flipped, f"the filter reported {reported}, the bits flipped at {flipped}"


def test_without_readahead_every_other_page_reads_back_right(filtered):
    f = filtered.figures
    keys = ("single_pages", "single_other_pages_right", "single_other_pages_wrong",
            "single_other_pages_unreadable", "single_kernel_read_error_lines")
    assert f["single_other_pages_wrong"] == 0, figures(filtered, *keys)
    assert f["single_other_pages_unreadable"] == 0, figures(filtered, *keys)
    assert f["single_other_pages_right"] == f["single_pages"] - 1, figures(filtered, *keys)
    # The one page, read once: one request failed.
    assert f["single_kernel_read_error_lines"] == 1, figures(filtered, *keys)


def test_with_readahead_the_neighbours_fail_too_but_never_read_wrong(filtered):
    f = filtered.figures
    keys = ("readahead_pages", "readahead_other_pages_right", "readahead_other_pages_wrong",
            "readahead_other_pages_unreadable", "readahead_kernel_read_error_lines")
    assert f["readahead_other_pages_wrong"] == 0, figures(filtered, *keys)
    lost = f["readahead_other_pages_unreadable"]
    # Each page the victim lost is one the kernel reported failing to read,
    # and readahead reads at most 2^page-cluster = 8 pages.
    assert lost == f["readahead_kernel_read_error_lines"] - 1, figures(filtered, *keys)
    assert lost < 8, figures(filtered, *keys)
    assert f["readahead_other_pages_right"] == f["readahead_pages"] - 1 - lost, \
        figures(filtered, *keys)


def test_without_the_filter_the_flip_is_read_silently(unfiltered):
    """The negative control."""
    assert unfiltered.verdict == "pass", unfiltered.reason
    assert not [e for e in unfiltered.events if e[1].startswith("io-error")], unfiltered.events
    assert not failed_checks(unfiltered)
    f = unfiltered.figures
    for victim in ("single", "readahead"):
        keys = [f"{victim}_{k}" for k in ("child", "parent_read_bad_page", "pages",
                                          "other_pages_right", "kernel_read_error_lines")]
        # The child read the page and saw a difference (exit status 3) ...
        assert f[f"{victim}_child"] == "exit 3", figures(unfiltered, *keys)
        # ... of exactly the flipped bit.
        assert not failed_checks(unfiltered, f"{victim}: what it read differs")
        assert f[f"{victim}_parent_read_bad_page"] == "wrong", figures(unfiltered, *keys)
        assert f[f"{victim}_other_pages_right"] == f[f"{victim}_pages"] - 1, \
            figures(unfiltered, *keys)
        assert f[f"{victim}_kernel_read_error_lines"] == 0, figures(unfiltered, *keys)
    assert f["filter_corruption_lines"] == 0, figures(unfiltered, "filter_corruption_lines")
