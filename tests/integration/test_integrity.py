"""The integrity filter in front of the plugin on the fake driver: a user
swaps through it, and a byte that changes in (fake) VRAM behind the
plugin's back never comes back as data.  Every read that covers it fails
with EIO, the log names the block once, and everything else keeps working.
"""
import collections
import errno
import os
import random
import re
from concurrent.futures import ThreadPoolExecutor

import nbd
import pytest

from support.nbdkit import BUILD, Server

from .helpers import KiB, MiB, PRELOAD_EXIT_HANG, SANITIZED, assert_same, assert_zero, \
    bug_lines, read_export

FILTER = str(BUILD / "filters" / "integrity" / "nbdkit-integrity-filter.so")
BLOCK = 4 * KiB
EXPORT = 64 * MiB
CORRUPTION = re.compile(r'error: integrity: data corruption in export "([^"]*)" at offset (\d+) '
                        r'\(0x[0-9a-f]+\), block (\d+) of ')


def integrity(vram, *params, filters=None, **kwargs):
    """The plugin (64 MiB) behind the integrity filter."""
    return vram("size=64M", *params, filters=filters or [FILTER], **kwargs)


def corruption_reports(server):
    """Block offsets named by the filter's corruption messages, in order."""
    return [int(m[2]) for m in CORRUPTION.finditer(server.log_text())]


def expect_eio(h, length, offset):
    with pytest.raises(nbd.Error) as failure:
        h.pread(length, offset)
    assert failure.value.errnum == errno.EIO, failure.value


def write_export(h, data, offset=0, step=4 * MiB):
    for start in range(0, len(data), step):
        h.pwrite(data[start:start + step], offset + start)


class FakeVram:
    """The export's bytes in the fake driver's memory file, to corrupt."""

    def __init__(self, server):
        self.base = server.export_allocation()["file_offset"]
        self.fd = os.open(server.memory_file, os.O_RDWR)

    def read(self, offset, length):
        return os.pread(self.fd, length, self.base + offset)

    def write(self, offset, data):
        os.pwrite(self.fd, data, self.base + offset)

    def corrupt(self, offset, rng, bit_flip=True):
        """Flips one bit, or replaces the byte with a different value."""
        old = self.read(offset, 1)[0]
        new = old ^ (1 << rng.randrange(8)) if bit_flip else \
            rng.choice([v for v in range(256) if v != old])
        self.write(offset, bytes([new]))

    def close(self):
        os.close(self.fd)


def test_never_written_blocks_read_as_zeroes(vram, connect):
    server = integrity(vram)
    h = connect(server)
    assert_zero(read_export(h, 0, EXPORT), "fresh export")
    assert_zero(h.pread(100, 3 * MiB + 7), "unaligned read of a fresh block")
    assert corruption_reports(server) == []


def test_concurrent_round_trips_without_false_alarms(vram, connect):
    """Three connections write random sizes at random alignments into
    their own regions while a fourth reads anywhere; every read succeeds,
    and everything reads back exactly from yet another connection."""
    server = integrity(vram)
    seed = random.randrange(1 << 30)
    print(f"seed {seed}")
    region = 8 * MiB
    shadow = bytearray(3 * region)
    done = False

    def writer(index):
        rng = random.Random(seed + index)
        h = connect(server, f"writer{index}")
        base = index * region
        for _ in range(600):
            size = min(region, int(2 ** rng.uniform(0, 18)))
            off = base + rng.randrange(region - size + 1)
            data = rng.randbytes(size)
            h.pwrite(data, off)
            shadow[off:off + size] = data
            r_size = min(region, int(2 ** rng.uniform(0, 18)))
            r_off = base + rng.randrange(region - r_size + 1)
            assert_same(h.pread(r_size, r_off), shadow[r_off:r_off + r_size],
                        f"writer {index}: read back", r_off)

    def reader():
        rng = random.Random(seed - 1)
        h = connect(server, "reader")
        reads = 0
        while not done or reads < 100:
            size = int(2 ** rng.uniform(0, 18))
            h.pread(size, rng.randrange(len(shadow) - size))  # raises on EIO
            reads += 1
        return reads

    with ThreadPoolExecutor(4) as pool:
        racing = pool.submit(reader)
        for f in [pool.submit(writer, i) for i in range(3)]:
            f.result()
        done = True
        assert racing.result() >= 100
    assert_same(read_export(connect(server), 0, len(shadow)), shadow, "read back")
    assert corruption_reports(server) == []


def test_thousands_of_injected_flips_are_all_caught(vram, connect):
    """2000 single bits and bytes changed in VRAM, each read at a random
    alignment: every one fails with EIO and is logged once with its
    block's offset; rewriting the block heals it; clean blocks never
    fail."""
    server = integrity(vram)
    h = connect(server)
    seed = random.randrange(1 << 30)
    print(f"seed {seed}")
    rng = random.Random(seed)
    span = 8 * MiB
    data = bytearray(rng.randbytes(span))
    write_export(h, data)
    vram_file = FakeVram(server)
    injected = []
    try:
        for i in range(2000):
            at = rng.randrange(span)
            vram_file.corrupt(at, rng, bit_flip=i % 2 == 0)
            block = at - at % BLOCK
            injected.append(block)
            # Any read that covers the byte: from within three blocks before
            # to three after, at byte granularity.
            start = rng.randrange(max(0, at - 3 * BLOCK), at + 1)
            end = rng.randrange(at + 1, min(span, at + 3 * BLOCK) + 1)
            expect_eio(h, end - start, start)
            if i % 50 == 0:
                expect_eio(h, 1, at)  # again: still refused, not logged again
            # A clean neighbour still reads.
            if block + BLOCK < span:
                assert h.pread(BLOCK, block + BLOCK) == data[block + BLOCK:block + 2 * BLOCK]
            fresh = rng.randbytes(BLOCK)
            h.pwrite(fresh, block)
            data[block:block + BLOCK] = fresh
            assert h.pread(BLOCK, block) == fresh
    finally:
        vram_file.close()
    assert_same(read_export(h, 0, span), data, "everything after healing")
    reports = corruption_reports(server)
    assert collections.Counter(reports) == collections.Counter(injected)
    assert reports == injected


def test_unaligned_and_multi_block_requests_around_a_corrupt_block(vram, connect):
    server = integrity(vram)
    h = connect(server)
    rng = random.Random(3)
    data = bytearray(rng.randbytes(MiB))
    h.pwrite(data, 0)
    bad = 100 * BLOCK
    vram_file = FakeVram(server)
    vram_file.corrupt(bad + 1234, rng)
    vram_file.close()

    for length, offset in [(BLOCK, bad), (1, bad + 1234), (1, bad), (200, bad - 100),
                           (200, bad + BLOCK - 100), (10 * BLOCK + 3, bad - 5 * BLOCK - 1),
                           (MiB, 0)]:
        expect_eio(h, length, offset)
    for length, offset in [(BLOCK - 5, bad - BLOCK + 5), (1, bad - 1), (1, bad + BLOCK),
                           (8 * BLOCK + 1, bad + BLOCK), (BLOCK, bad - BLOCK),
                           (bad - 7, 7)]:
        assert_same(h.pread(length, offset), data[offset:offset + length],
                    f"read of {length} beside the bad block", offset)
    # A write into part of the bad block cannot make it good: the rest of
    # it is still wrong.
    with pytest.raises(nbd.Error) as failure:
        h.pwrite(b"x" * 10, bad + 10)
    assert failure.value.errnum == errno.EIO
    expect_eio(h, BLOCK, bad)
    # A write of the whole block (here as part of an unaligned one) does.
    fresh = rng.randbytes(3 * BLOCK)
    h.pwrite(fresh, bad - BLOCK + 5)
    data[bad - BLOCK + 5:bad + 2 * BLOCK + 5] = fresh
    assert_same(h.pread(MiB, 0), data, "after rewriting")
    assert corruption_reports(server) == [bad]


def test_a_block_corrupted_before_it_was_ever_written_is_caught(vram, connect):
    server = integrity(vram)
    h = connect(server)
    vram_file = FakeVram(server)
    vram_file.write(5 * MiB + 3, b"\x01")
    vram_file.close()
    expect_eio(h, BLOCK, 5 * MiB)
    expect_eio(h, 2 * MiB, 4 * MiB)
    assert_zero(h.pread(BLOCK, 5 * MiB - BLOCK), "the block before")
    assert corruption_reports(server) == [5 * MiB]


def test_a_block_left_unknown_by_transient_gpu_errors_is_not_called_corrupt(vram, connect):
    """Every 4th GPU copy fails: a 12 KiB write fails part way, and reading
    its blocks back to learn what they hold fails too for one of them.  No
    block is corrupt, and none may be reported so: the next good read takes
    what VRAM holds (issue 15's reproduction)."""
    server = integrity(vram, "piece-size=4K", "lanes=1", env={"FAKECUDA_FAIL_EVERY": "4"})
    h = connect(server)
    h.pwrite(b"a" * 8192, 0)  # copies 1 and 2
    with pytest.raises(nbd.Error):
        h.pwrite(b"b" * 12288, 0)  # copy 4 fails; the read-back's copy 8 too
    got = None
    for _ in range(8):  # reads fail now and then, as every 4th copy does
        try:
            got = h.pread(12288, 0)
            break
        except nbd.Error as e:
            assert e.errnum == errno.EIO
    assert got is not None, server.log_text()
    assert all(c in b"ab\0" for c in got)  # old data, new data, or zeroes: nothing else
    assert corruption_reports(server) == [], server.log_text()


def test_zero_and_trim_leave_clean_blocks(vram, connect):
    server = integrity(vram)
    h = connect(server)
    rng = random.Random(5)
    size = 4 * MiB
    data = bytearray(rng.randbytes(size))
    h.pwrite(data, 0)
    for op, length, offset, flags in [
            ("zero", BLOCK, 0, 0),
            ("zero", 3 * BLOCK + 100, 10 * BLOCK - 50, 0),
            ("zero", 64 * KiB, 128 * KiB, nbd.CMD_FLAG_NO_HOLE),
            ("zero", 10, 300 * KiB + 7, nbd.CMD_FLAG_FUA),
            ("trim", 4 * BLOCK, 40 * BLOCK, 0),
            ("trim", 2 * BLOCK + 1, 60 * BLOCK + 4095, 0),
            ("trim", 1, 2 * MiB + 1, nbd.CMD_FLAG_FUA),
            ("trim", MiB, 3 * MiB, 0)]:
        if op == "zero":
            h.zero(length, offset, flags)
        else:
            h.trim(length, offset, flags)
        data[offset:offset + length] = bytes(length)
    if h.can_fast_zero():
        h.zero(BLOCK, 500 * KiB, nbd.CMD_FLAG_FAST_ZERO)
        data[500 * KiB:500 * KiB + BLOCK] = bytes(BLOCK)
    h.flush()
    assert_same(h.pread(size, 0), data, "after zero and trim")
    assert_same(connect(server).pread(size, 0), data, "from another connection")
    assert_same(server.vram_read(0, size), data, "fake VRAM file")
    assert corruption_reports(server) == []


def test_zeroing_a_corrupt_block_heals_it(vram, connect):
    server = integrity(vram)
    h = connect(server)
    h.pwrite(b"\xAA" * (4 * BLOCK), 0)
    vram_file = FakeVram(server)
    vram_file.write(BLOCK + 9, b"\x00")
    vram_file.close()
    expect_eio(h, BLOCK, BLOCK)
    h.trim(BLOCK, BLOCK)
    assert h.pread(4 * BLOCK, 0) == b"\xAA" * BLOCK + bytes(BLOCK) + b"\xAA" * (2 * BLOCK)


def test_larger_blocks(vram, connect):
    """integrity-block-size=64K: fewer checksums; a flip fails reads of
    its whole 64 KiB block."""
    server = integrity(vram, "integrity-block-size=64K")
    h = connect(server)
    assert "in 65536-byte blocks" in server.log_text()
    assert h.get_block_size(nbd.SIZE_PREFERRED) == 64 * KiB
    data = random.Random(8).randbytes(MiB)
    h.pwrite(data, 0)
    vram_file = FakeVram(server)
    vram_file.write(200 * KiB, bytes([data[200 * KiB] ^ 0x10]))
    vram_file.close()
    expect_eio(h, 1, 192 * KiB)
    expect_eio(h, 1, 256 * KiB - 1)
    assert h.pread(10, 256 * KiB) == data[256 * KiB:256 * KiB + 10]
    assert h.pread(10, 192 * KiB - 10) == data[192 * KiB - 10:192 * KiB]
    assert corruption_reports(server) == [192 * KiB]


def test_with_nbdkits_log_and_stats_filters(vram, connect, tmp_path):
    logfile = tmp_path / "requests.log"
    statsfile = tmp_path / "stats.txt"
    server = integrity(vram, f"logfile={logfile}", f"statsfile={statsfile}",
                       filters=["log", FILTER, "stats"])
    h = connect(server)
    data = random.Random(2).randbytes(MiB + 3)
    h.pwrite(data, 5)
    assert_same(h.pread(len(data), 5), data, "through log, integrity and stats")
    h.zero(BLOCK, 2 * BLOCK)
    h.trim(BLOCK, 4 * BLOCK)
    vram_file = FakeVram(server)
    vram_file.write(8 * BLOCK, b"\xff")
    vram_file.close()
    expect_eio(h, 100, 8 * BLOCK + 100)
    connect.close_all()
    assert server.stop() == 0  # stats are written at exit
    log = logfile.read_text()
    assert re.search(r"Write id=1 offset=0x5 count=0x100003", log), log
    assert re.search(r"Read id=\d+ offset=0x8064 count=0x64 \.\.\.", log), log
    assert re.search(r"\.\.\.Read id=\d+ return=-1 error=EIO", log), log
    # stats is below the filter: it sees the plugin's traffic, including
    # the whole-block reads behind unaligned requests.
    stats = statsfile.read_text()
    assert re.search(r"^write: 1 ops", stats, re.M), stats
    assert re.search(r"^read: \d+ ops", stats, re.M), stats
    assert corruption_reports(server) == [8 * BLOCK]


def stop_plain_server(server):
    rc = server.stop(timeout=10 if SANITIZED else 30)
    text = server.log()
    assert not bug_lines(text), text
    if SANITIZED and rc == -9:
        pytest.skip(PRELOAD_EXIT_HANG)  # everything before the exit passed
    assert rc == 0, text
    return text


def test_in_front_of_nbdkits_memory_plugin(tmp_path, connect):
    """Not just our plugin: the filter works in front of any plugin whose
    export starts zeroed."""
    server = Server(tmp_path, ["size=64M"], filters=[FILTER], plugin="memory",
                    name="memory").wait_ready()
    try:
        rng = random.Random(4)
        shadow = bytearray(8 * MiB)
        handles = [connect(server) for _ in range(3)]
        for i in range(400):
            h = handles[i % 3]
            size = int(2 ** rng.uniform(0, 17))
            off = rng.randrange(len(shadow) - size)
            op = rng.randrange(10)
            if op < 6:
                data = rng.randbytes(size)
                h.pwrite(data, off)
                shadow[off:off + size] = data
            elif op < 8:
                h.zero(size, off)
                shadow[off:off + size] = bytes(size)
            else:
                h.trim(size, off)
                shadow[off:off + size] = bytes(size)
            r_size = int(2 ** rng.uniform(0, 17))
            r_off = rng.randrange(len(shadow) - r_size)
            assert_same(handles[(i + 1) % 3].pread(r_size, r_off),
                        shadow[r_off:r_off + r_size], "read", r_off)
        assert_same(read_export(handles[0], 0, len(shadow)), shadow, "read back")
        assert_zero(handles[1].pread(MiB, 32 * MiB), "never written")
    finally:
        connect.close_all()
        text = stop_plain_server(server)
    assert 'checking export "" (64.0 MiB) in 4096-byte blocks' in text
    assert "data corruption" not in text


def test_an_export_that_ends_inside_a_block(tmp_path, connect):
    """10001 bytes: the last block is 1809 bytes long, and checked too."""
    server = Server(tmp_path, ["size=10001"], filters=[FILTER], plugin="memory",
                    name="odd").wait_ready()
    try:
        h = connect(server)
        assert h.get_size() == 10001
        data = random.Random(6).randbytes(10001)
        h.pwrite(data[:5000], 0)
        h.pwrite(data[5000:], 5000)
        assert h.pread(10001, 0) == data
        assert h.pread(3, 9998) == data[9998:]
        h.zero(10, 9991)
        h.trim(10001 - 8192, 8192)
        expected = data[:8192] + bytes(10001 - 8192)
        assert connect(server).pread(10001, 0) == expected
    finally:
        connect.close_all()
        text = stop_plain_server(server)
    assert "checksum table 24 bytes for 3 blocks" in text, text
    assert "data corruption" not in text


def test_a_table_per_export_name_up_to_a_limit(tmp_path, connect):
    """Tables are per export name (the default's is made at start); a
    client cannot make nbdkit allocate them without end.  (The memory
    plugin takes any name; the vram plugin takes none: test_export_name.py.)"""
    server = Server(tmp_path, ["size=64M"], filters=[FILTER], plugin="memory",
                    name="names").wait_ready()

    def uri(name):
        return f"nbd+unix:///{name}?socket={server.socket}"

    try:
        for i in range(15):  # with the default export's: 16
            h = nbd.NBD()
            h.connect_uri(uri(f"name{i}"))
            try:
                assert h.pread(1, 0) == b"\0"
            finally:
                h.shutdown()
        h = nbd.NBD()
        with pytest.raises(nbd.Error):
            h.connect_uri(uri("one-too-many"))
        del h  # closes the socket
        h = connect(server)  # the default export is unaffected
        h.pwrite(b"x", 0)
        assert h.pread(1, 0) == b"x"
    finally:
        connect.close_all()
        log = stop_plain_server(server)
    assert 'checking export "name14"' in log, log
    assert ('error: integrity: export "one-too-many": the filter already keeps checksums for 16 '
            'export names') in log
