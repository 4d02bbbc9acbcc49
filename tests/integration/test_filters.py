"""The plugin works under nbdkit's filters, as a user would stack them:
log (see the requests), delay (simulate a slow device), error (inject
failures above the plugin) and stats (measure the traffic)."""
import errno
import random
import re

import nbd
import pytest

from .helpers import MiB, assert_same


def round_trip(server, connect, seed=1):
    """Writes, reads back, zeroes, trims and flushes through the stack."""
    h = connect(server)
    data = random.Random(seed).randbytes(1 * MiB + 123)
    h.pwrite(data, 3 * MiB + 5)
    assert_same(h.pread(len(data), 3 * MiB + 5), data, "read through the filter")
    h.zero(4096, 3 * MiB + 5)
    h.trim(4096, 4 * MiB)
    h.flush()
    expected = bytearray(data)
    expected[:4096] = bytes(4096)  # the zero
    trimmed = 4 * MiB - (3 * MiB + 5)
    expected[trimmed:] = bytes(len(data) - trimmed)  # the trim covers the tail
    assert_same(connect(server).pread(len(data), 3 * MiB + 5), expected, "second connection")
    assert_same(server.vram_read(3 * MiB + 5, len(data)), expected, "fake VRAM file")
    return h


def test_log_filter_shows_the_requests(vram, connect, tmp_path):
    logfile = tmp_path / "requests.log"
    server = vram("size=64M", f"logfile={logfile}", filters=["log"])
    round_trip(server, connect)
    connect.close_all()
    log = logfile.read_text()
    assert re.search(r"Connect .*size=0x4000000 .*fua=2 .*fast_zero=1", log), log
    assert f"Write id=1 offset={3 * MiB + 5:#x} count={MiB + 123:#x}" in log, log
    assert re.search(r"\.\.\.Write id=1 return=0", log)
    assert f"Read id=2 offset={3 * MiB + 5:#x} count={MiB + 123:#x}" in log
    assert re.search(r"Zero id=\d+ offset=0x300005 count=0x1000", log)
    assert re.search(r"Trim id=\d+ offset=0x400000 count=0x1000", log)
    assert re.search(r"Flush id=\d+", log)


def test_delay_filter_slows_but_keeps_data(vram, connect):
    server = vram("size=64M", "rdelay=20ms", "wdelay=20ms", filters=["delay"])
    round_trip(server, connect)


def test_error_filter_fails_requests_then_lets_them_through(vram, connect, tmp_path):
    switch = tmp_path / "errors-on"
    server = vram("size=64M", "error-pread=EIO", "error-pread-rate=100%",
                  f"error-pread-file={switch}", filters=["error"])
    h = round_trip(server, connect)
    switch.touch()
    for _ in range(3):
        with pytest.raises(nbd.Error) as failure:
            h.pread(4096, 0)
        assert failure.value.errnum == errno.EIO
    h.pwrite(b"writes still work", 0)  # only reads are failed
    switch.unlink()
    assert h.pread(17, 0) == b"writes still work"
    assert server.alive()
    round_trip(server, connect, seed=2)


def test_error_filter_at_a_rate(vram, connect):
    server = vram("size=64M", "error=EIO", "error-rate=50%", filters=["error"])
    h = connect(server)
    outcomes = []
    for i in range(60):
        try:
            h.pwrite(bytes([i]) * 512, i * 4096)
            outcomes.append(h.pread(512, i * 4096) == bytes([i]) * 512)
        except nbd.Error as e:
            assert e.errnum == errno.EIO
            outcomes.append(None)
    assert None in outcomes and True in outcomes
    assert False not in outcomes  # a request that succeeded returned the right data
    assert server.alive()


def test_stats_filter_counts_bytes(vram, connect, tmp_path):
    statsfile = tmp_path / "stats.txt"
    server = vram("size=64M", f"statsfile={statsfile}", filters=["stats"])
    h = connect(server)
    for i in range(3):
        h.pwrite(bytes([i + 1]) * MiB, i * MiB)
    assert h.pread(2 * MiB, 0) == b"\1" * MiB + b"\2" * MiB
    connect.close_all()
    assert server.stop() == 0  # the stats are written when nbdkit exits
    stats = statsfile.read_text()
    assert re.search(r"^write: 3 ops, [\d.]+ s, 3\.00 MiB", stats, re.M), stats
    assert re.search(r"^read: 1 ops, [\d.]+ s, 2\.00 MiB", stats, re.M), stats


def test_several_filters_stacked(vram, connect, tmp_path):
    logfile = tmp_path / "requests.log"
    server = vram("size=64M", f"logfile={logfile}", "wdelay=5ms", "error-rate=0",
                  filters=["log", "delay", "error"])
    round_trip(server, connect)
    connect.close_all()
    assert "Write id=1" in logfile.read_text()
