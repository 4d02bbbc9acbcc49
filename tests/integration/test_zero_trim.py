"""Swap discards pages and zeroes ranges: a zeroed or trimmed range reads
back as zeros (never the old data), its neighbours keep theirs, and the
change is in VRAM by the time the request is acknowledged."""
import random

import nbd
import pytest

from .helpers import KiB, MiB, assert_same, assert_zero, read_export

AREA = 8 * MiB


def fill(h, seed=1):
    data = bytearray(random.Random(seed).randbytes(AREA))
    # No zero bytes, so that a stray zero anywhere shows.
    data = data.replace(b"\0", b"\1")
    h.pwrite(bytes(data), 0)
    return data


# (offset, length): aligned, unaligned at both ends, larger than a chunk,
# a single byte, the whole area.
RANGES = [(4096, 4096), (1000, 3000), (300 * KiB + 7, 700 * KiB + 5), (5 * MiB + 1, 1),
          (0, AREA)]

OPERATIONS = {
    "zero": lambda h, n, off: h.zero(n, off),
    "zero-fast": lambda h, n, off: h.zero(n, off, nbd.CMD_FLAG_FAST_ZERO),
    "zero-no-hole": lambda h, n, off: h.zero(n, off, nbd.CMD_FLAG_NO_HOLE),
    "zero-fua": lambda h, n, off: h.zero(n, off, nbd.CMD_FLAG_FUA),
    "trim": lambda h, n, off: h.trim(n, off),
    "trim-fua": lambda h, n, off: h.trim(n, off, nbd.CMD_FLAG_FUA),
}


@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_range_reads_as_zeros_and_neighbours_are_intact(vram, connect, operation):
    server = vram("size=16M")
    h = connect(server)
    expected = fill(h)
    for offset, length in RANGES[:-1]:
        OPERATIONS[operation](h, length, offset)
        expected[offset:offset + length] = bytes(length)
        # Acknowledged means done on the GPU: no flush needed to see it.
        assert_zero(server.vram_read(offset, length), f"VRAM after {operation}", offset)
        assert_same(read_export(h, 0, AREA), expected, f"export after {operation}")
    assert_same(server.vram_read(0, AREA), expected, "fake VRAM file")

    offset, length = RANGES[-1]
    OPERATIONS[operation](h, length, offset)
    assert_zero(read_export(connect(server), 0, AREA), f"whole area after {operation}")


def test_trimmed_data_is_gone_from_vram_not_just_hidden(vram, connect):
    server = vram("size=16M")
    h = connect(server)
    secret = b"swapped-out secret page " * 200
    h.pwrite(secret, 3 * MiB)
    assert server.vram_read(3 * MiB, len(secret)) == secret
    h.trim(len(secret), 3 * MiB)
    assert_zero(server.vram_read(3 * MiB, len(secret)), "VRAM after trim")


def test_fua_write_is_in_vram_when_acknowledged(vram, connect):
    server = vram("size=16M")
    h = connect(server)
    for i, (offset, size) in enumerate([(0, 4096), (12345, 1), (1 * MiB + 3, 1 * MiB + 5)]):
        data = random.Random(i).randbytes(size)
        h.pwrite(data, offset, nbd.CMD_FLAG_FUA)
        assert_same(server.vram_read(offset, size), data, "VRAM after FUA write", offset)
        assert_same(h.pread(size, offset), data, "read after FUA write", offset)


def test_flush_succeeds_and_keeps_data(vram, connect):
    server = vram("size=16M")
    h = connect(server)
    data = random.Random(3).randbytes(2 * MiB)
    h.pwrite(data, 4 * MiB + 17)
    h.flush()
    assert_same(connect(server).pread(len(data), 4 * MiB + 17), data, "after flush")
    assert_same(server.vram_read(4 * MiB + 17, len(data)), data, "VRAM after flush")
