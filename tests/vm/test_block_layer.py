"""The kernel's block layer on /dev/nbd0 with four connections, one boot
for all of it (tests/vm/guest/blocklayer.sh): O_DIRECT pattern writes and
read-backs at 4 KiB and 1 MiB, data written through one connection read
back through another, blkdiscard reaching the plugin's trim, and the fake
VRAM itself (the ivshmem file in /dev/shm) read from the host: it holds
what the guest wrote, zeroes where it discarded, and nothing at all once
nbdkit has exited.
"""
import harness
import pytest

from settings import BLOCK_BOUND


@pytest.fixture(scope="module")
def run(vm_run_once):
    # 4 vCPUs: the nbd driver maps one hardware queue (one connection) per
    # CPU, so four CPUs put I/O on all four connections.
    return vm_run_once("blocklayer.sh", "block_layer", smp=4, timeout=BLOCK_BOUND,
                       hostcheck=harness.check_vram_ranges)


def checks(run, prefix):
    found = [c for c in run.result.get("checks", []) if c["what"].startswith(prefix)]
    assert found, f"the guest ran no check starting {prefix!r}: {run.reason}"
    return found


def assert_checks(run, prefix):
    failed = [c["what"] for c in checks(run, prefix) if not c["ok"]]
    assert not failed, failed


def test_guest_ran_clean(run):
    assert run.verdict == "pass", run.reason


def test_direct_io_4k_pattern_reads_back(run):
    assert_checks(run, "A:")


def test_direct_io_1m_pattern_reads_back(run):
    assert_checks(run, "B:")


def test_dd_direct_and_cmp(run):
    assert_checks(run, "E:")


def test_four_connections_each_read_back_through_another(run):
    assert_checks(run, "C:")
    assert_checks(run, "nbd-client made 4 connections")
    assert run.figures["connections_with_io"] >= 4, run.figures


def test_blkdiscard_reaches_trim_and_reads_back_zeroes(run):
    assert_checks(run, "D:")
    assert_checks(run, "blkdiscard reached the plugin")
    assert run.figures["trims"] > 0


def test_host_sees_the_data_and_the_discarded_zeroes_in_vram(run):
    ok, detail = run.hostchecks.get("layout", (False, "the guest never asked"))
    assert ok, detail


def test_vram_is_zeroed_when_nbdkit_exits(run):
    ok, detail = run.hostchecks.get("zeroed", (False, "the guest never asked"))
    assert ok, detail
