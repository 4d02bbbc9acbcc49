"""allocation=lazy: VRAM is held only for the chunks of the export that
hold data.  A chunk is mapped on the first write into it and released when
all of it has been trimmed or zeroed; what was never written reads as
zeroes without touching the GPU; when another program has the VRAM, a write
that needs a new chunk fails with ENOSPC and nothing stored is affected.
A few spare chunks (lazy-spare=) are created ahead of need by a thread of
the plugin's own, so that a write into a new chunk does not wait for the
driver to create VRAM.

The fake driver logs every physical allocation (create/release) and
mapping in its map file, so "VRAM held" is checked from the driver's side
as well as from the plugin's status file."""
import errno
import random
import time

import nbd
import pytest

from .helpers import (MiB, KiB, assert_same, assert_zero, mapped_held, parse_map_file,
                      physical_held, read_export, read_file_at, wait_until)

CHUNK = 2 * MiB
SIZE = 32 * MiB
LAZY = ("allocation=lazy", f"lazy-chunk={CHUNK // MiB}M")
DEFAULT_SPARE = 4  # lazy-spare= at 2 MiB chunks: 8 MiB worth


def read_status(path):
    if not path.exists():
        return None
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


class Lazy:
    """A lazy server with its status file, and the driver's view of it."""

    def __init__(self, vram, tmp_path, *params, spare=None, env=None, gpus="total=256M",
                 name=None):
        self.status_file = tmp_path / f"{name or 'lazy'}.status"
        self.spare = DEFAULT_SPARE if spare is None else spare
        if spare is not None:
            params = (f"lazy-spare={spare}",) + params
        self.server = vram(f"size={SIZE // MiB}M", *LAZY, f"status-file={self.status_file}",
                           *params, env=env, gpus=gpus, name=name)

    def status(self):
        return read_status(self.status_file)

    def held_by_driver(self):
        return physical_held(parse_map_file(self.server.map_file))

    def mapped_by_driver(self):
        return mapped_held(parse_map_file(self.server.map_file))

    def wait_held(self, mapped, spare=None):
        """`mapped` bytes of the export hold VRAM (at once: a write maps
        before it is acknowledged), and, once the spares' thread has caught
        up, `spare` chunks more (default: all the spares); the driver and
        the status file (refreshed once a second) agree."""
        spare = self.spare if spare is None else spare
        assert self.mapped_by_driver() == mapped
        held = mapped + spare * CHUNK
        wait_until(lambda: self.held_by_driver() == held, timeout=10,
                   what=f"the driver to hold {held} bytes (it holds {self.held_by_driver()})")
        want = {"held": str(held), "spare": str(spare * CHUNK)}
        wait_until(lambda: {k: (self.status() or {}).get(k) for k in want} == want, timeout=10,
                   what=f"status file to say {want} (it says {self.status()})")
        assert self.mapped_by_driver() == mapped


def test_nothing_is_held_until_written(vram, connect, tmp_path):
    lazy = Lazy(vram, tmp_path)
    st = lazy.status()
    assert st["allocation"] == "lazy" and st["size"] == str(SIZE) and st["state"] == "serving"
    assert st["lazy_chunk"] == str(CHUNK)
    lazy.wait_held(0)
    assert "allocation=lazy: VRAM is held in chunks of 2.0 MiB while they hold data, plus 4 " \
           "spare chunks created ahead of need (lazy-spare=)" in lazy.server.log_text()

    h = connect(lazy.server)
    assert h.get_size() == SIZE
    assert_zero(read_export(h, 0, SIZE), "a fresh lazy export")
    lazy.wait_held(0)  # reads map nothing
    assert not [e for e in parse_map_file(lazy.server.map_file) if e["op"] == "map"]

    h.pwrite(b"A" * 4096, 5 * MiB)
    lazy.wait_held(CHUNK)
    # Across a chunk boundary: both sides are mapped.
    h.pwrite(b"B" * 200, 8 * MiB - 100)
    lazy.wait_held(3 * CHUNK)
    assert h.pread(4096, 5 * MiB) == b"A" * 4096
    assert h.pread(200, 8 * MiB - 100) == b"B" * 200
    assert_zero(h.pread(4 * MiB, 0)[:5 * MiB - 4 * MiB] + h.pread(MiB, 4 * MiB), "around")
    assert_zero(h.pread(MiB, 5 * MiB + 4096), "after the write, same chunk")
    assert_zero(read_export(h, 10 * MiB, SIZE - 10 * MiB), "chunks never written")


def test_trim_and_zero_give_the_vram_back(vram, connect, tmp_path):
    lazy = Lazy(vram, tmp_path)
    h = connect(lazy.server)
    data = random.Random(3).randbytes(CHUNK)
    h.pwrite(data, 4 * MiB)          # chunk 2, all of it
    h.pwrite(b"x" * 8192, 12 * MiB)  # chunk 6
    lazy.wait_held(2 * CHUNK)
    physical = {e["handle"]: e for e in parse_map_file(lazy.server.map_file)
                if e["op"] == "create"}

    # A trim that leaves one block holding data keeps the chunk.
    h.trim(CHUNK - 4096, 4 * MiB)
    lazy.wait_held(2 * CHUNK)
    assert_zero(h.pread(CHUNK - 4096, 4 * MiB))
    assert h.pread(4096, 6 * MiB - 4096) == data[-4096:]
    # A request that covers a block only in part keeps the block.
    h.zero(4000, 6 * MiB - 4096)
    lazy.wait_held(2 * CHUNK)
    assert h.pread(4096, 6 * MiB - 4096) == bytes(4000) + data[-96:]
    # The last block: the chunk goes.
    h.trim(4096, 6 * MiB - 4096)
    lazy.wait_held(CHUNK)
    # Zero (not only trim) releases too.
    h.zero(8192, 12 * MiB)
    lazy.wait_held(0)
    assert_zero(read_export(h, 0, SIZE), "everything trimmed")

    # What was given back was zero: nothing of ours is left for the next owner.
    for e in physical.values():
        assert_zero(read_file_at(lazy.server.memory_file, e["file_offset"], e["size"]),
                    f"released chunk at file offset {e['file_offset']}")

    # And it comes back on the next write.
    h.pwrite(b"again", 4 * MiB + 10)
    lazy.wait_held(CHUNK)
    assert h.pread(5, 4 * MiB + 10) == b"again"


def test_a_chunk_whose_vram_could_not_be_released_leaves_the_export_sound(vram, connect,
                                                                           tmp_path):
    """The driver unmaps a trimmed chunk but fails to release its VRAM: the
    trim fails, the chunk is out of the export (its VRAM stays with the
    driver until exit), and the next write maps it afresh."""
    lazy = Lazy(vram, tmp_path, spare=0, env={"FAKECUDA_FAIL_CALL": "cuMemRelease:1"})
    h = connect(lazy.server)
    h.pwrite(b"first" * 800, 4 * MiB)
    lazy.wait_held(CHUNK, spare=0)
    with pytest.raises(nbd.Error) as failure:
        h.trim(CHUNK, 4 * MiB)
    assert failure.value.errnum == errno.EIO
    assert "injected failure of cuMemRelease call 1" in lazy.server.log_text()
    assert lazy.mapped_by_driver() == 0
    assert_zero(h.pread(CHUNK, 4 * MiB))
    h.pwrite(b"again" * 800, 4 * MiB)
    assert h.pread(4000, 4 * MiB) == b"again" * 800
    assert lazy.mapped_by_driver() == CHUNK
    h.pwrite(b"other", 20 * MiB)
    assert h.pread(5, 20 * MiB) == b"other"
    assert lazy.status()["state"] == "serving"


def test_a_chunk_that_could_not_be_unmapped_stays_until_a_later_trim(vram, connect, tmp_path):
    """cuMemUnmap fails: the trim fails, the chunk stays mapped (zeroed, as
    the trim asked), keeps serving, and the next trim gives it back."""
    lazy = Lazy(vram, tmp_path, spare=0, env={"FAKECUDA_FAIL_CALL": "cuMemUnmap:1"})
    h = connect(lazy.server)
    h.pwrite(b"first" * 800, 4 * MiB)
    with pytest.raises(nbd.Error) as failure:
        h.trim(CHUNK, 4 * MiB)
    assert failure.value.errnum == errno.EIO
    assert lazy.mapped_by_driver() == CHUNK
    assert_zero(h.pread(CHUNK, 4 * MiB))
    h.pwrite(b"kept", 4 * MiB + 4096)
    assert h.pread(4, 4 * MiB + 4096) == b"kept"
    h.trim(CHUNK, 4 * MiB)
    lazy.wait_held(0, spare=0)
    assert lazy.mapped_by_driver() == 0
    assert_zero(h.pread(CHUNK, 4 * MiB))
    assert lazy.status()["state"] == "serving"


def test_random_requests_match_a_model(vram, connect, tmp_path):
    """Writes, zeroes, trims and reads of every size and alignment, over
    several connections, against an in-memory model of the export."""
    lazy = Lazy(vram, tmp_path, "piece-size=64K")
    hs = [connect(lazy.server) for _ in range(3)]
    model = bytearray(SIZE)
    rng = random.Random(7)
    for i in range(1500):
        h = hs[i % len(hs)]
        offset = rng.randrange(0, SIZE)
        length = min(SIZE - offset, rng.choice([1, 512, 4096, 5000, 65536, 300000, 3 * MiB]))
        op = rng.random()
        if op < 0.4:
            data = rng.randbytes(length)
            h.pwrite(data, offset)
            model[offset:offset + length] = data
        elif op < 0.6:
            (h.trim if op < 0.5 else h.zero)(length, offset)
            model[offset:offset + length] = bytes(length)
        else:
            assert_same(h.pread(length, offset), bytes(model[offset:offset + length]),
                        f"request {i}", offset)
    assert_same(read_export(hs[0], 0, SIZE), bytes(model), "the whole export")
    # Chunks held are at most those with data in them.
    with_data = sum(1 for c in range(0, SIZE, CHUNK) if any(model[c:c + CHUNK]))
    assert lazy.held_by_driver() >= with_data * CHUNK
    hs[0].trim(SIZE, 0)
    lazy.wait_held(0)


def test_enospc_when_another_program_has_the_vram(vram, connect, tmp_path):
    free_file = tmp_path / "free"

    def others_leave(size):
        tmp = tmp_path / "free.tmp"
        tmp.write_text(size)
        tmp.rename(free_file)

    lazy = Lazy(vram, tmp_path, spare=0, env={"FAKECUDA_FREE_FILE": str(free_file)})
    h = connect(lazy.server)
    h.pwrite(b"kept" * 1024, 0)
    lazy.wait_held(CHUNK)

    others_leave("3M")  # 2 MiB is ours: 1 MiB free, not enough for a chunk
    for i in range(20):
        with pytest.raises(nbd.Error) as failure:
            h.pwrite(b"new" * 1000, 10 * MiB + i * 4096)
        assert failure.value.errnum == errno.ENOSPC
    # Chunks already held still take writes; what is stored is untouched.
    h.pwrite(b"more" * 1024, 4096)
    assert h.pread(8192, 0) == b"kept" * 1024 + b"more" * 1024
    assert_zero(h.pread(4096, 10 * MiB))
    lazy.wait_held(CHUNK)
    log = lazy.server.log_text()
    assert log.count("failed with ENOSPC") == 1, log  # rate-limited
    line = next(line for line in log.splitlines() if "failed with ENOSPC" in line)
    assert "has no VRAM for another 2.0 MiB chunk (1.0 MiB of VRAM free" in line
    assert "Data already stored is unaffected" in line

    others_leave("256M")
    h.pwrite(b"new" * 1000, 10 * MiB)
    assert h.pread(3000, 10 * MiB) == b"new" * 1000
    lazy.wait_held(2 * CHUNK)


def test_writes_map_spares_created_ahead(vram, connect, tmp_path):
    """A write into a new chunk maps a spare the thread created before the
    write came; the thread then makes another, and a trim hands the chunk
    back as a spare rather than to the driver while the spares are short."""
    lazy = Lazy(vram, tmp_path, spare=2)
    h = connect(lazy.server)
    for i, offset in enumerate((6 * MiB, 20 * MiB)):
        lazy.wait_held(i * CHUNK)
        events = parse_map_file(lazy.server.map_file)
        created_before = {e["handle"] for e in events if e["op"] == "create"}
        h.pwrite(b"s" * 4096, offset)
        events = parse_map_file(lazy.server.map_file)
        maps = [e for e in events if e["op"] == "map"]
        assert len(maps) == i + 1 and maps[-1]["handle"] in created_before
    lazy.wait_held(2 * CHUNK)  # and two new spares
    assert len([e for e in parse_map_file(lazy.server.map_file) if e["op"] == "create"]) == 4

    # Trimmed chunks come back as spares; beyond the target they go back
    # to the driver, released by the thread, and nothing is created anew.
    h.trim(4096, 6 * MiB)
    h.trim(4096, 20 * MiB)
    lazy.wait_held(0)
    events = parse_map_file(lazy.server.map_file)
    assert len([e for e in events if e["op"] == "create"]) == 4
    assert len([e for e in events if e["op"] == "release"]) == 2
    assert h.pread(4096, 6 * MiB) == bytes(4096)


def test_spares_carry_writes_through_a_shortage(vram, connect, tmp_path):
    """With no VRAM left to create, the spares still take writes into new
    chunks; then ENOSPC; and when VRAM is free again the thread makes new
    spares on its own."""
    free_file = tmp_path / "free"
    lazy = Lazy(vram, tmp_path, spare=2, env={"FAKECUDA_FREE_FILE": str(free_file)})
    h = connect(lazy.server)
    h.pwrite(b"0" * 4096, 0)
    lazy.wait_held(CHUNK)  # 1 in use, 2 spare
    free_file.write_text("6M")  # exactly what we hold: none free
    h.pwrite(b"1" * 4096, 10 * MiB)
    h.pwrite(b"2" * 4096, 20 * MiB)
    with pytest.raises(nbd.Error) as failure:
        h.pwrite(b"3" * 4096, 30 * MiB)
    assert failure.value.errnum == errno.ENOSPC
    lazy.wait_held(3 * CHUNK, spare=0)
    assert [h.pread(1, o) for o in (0, 10 * MiB, 20 * MiB, 30 * MiB)] == \
        [b"0", b"1", b"2", b"\0"]
    free_file.write_text("256M")
    lazy.wait_held(3 * CHUNK)  # the thread retries on its own (once a second)
    h.pwrite(b"3" * 4096, 30 * MiB)
    assert h.pread(1, 30 * MiB) == b"3"


def test_reserve_keeps_vram_free_for_other_programs(vram, connect, tmp_path):
    """total 96M, 32 MiB of it another program's, reserve=40M: a chunk is
    mapped only if 40 MiB stay free after it, i.e. 12 chunks of 2 MiB
    (24 MiB), of the export's 16 (which would all fit once the other
    program leaves)."""
    free_file = tmp_path / "free"
    free_file.write_text("64M")
    lazy = Lazy(vram, tmp_path, "reserve=40M", gpus="total=96M",
                env={"FAKECUDA_FREE_FILE": str(free_file)})
    h = connect(lazy.server)
    results = []
    for offset in range(0, SIZE, CHUNK):
        try:
            h.pwrite(b"z" * 4096, offset)
            results.append(True)
        except nbd.Error as e:
            assert e.errnum == errno.ENOSPC
            results.append(False)
    assert results == [True] * 12 + [False] * (SIZE // CHUNK - 12)
    lazy.wait_held(12 * CHUNK, spare=0)  # the spares went into the export
    assert "(40.0 MiB of VRAM free, and reserve= keeps 40.0 MiB of it for other programs" \
        in lazy.server.log_text()


def test_falls_back_to_eager_without_virtual_memory_management(vram, connect, tmp_path):
    lazy = Lazy(vram, tmp_path, gpus="total=256M,vmm=0")
    log = lazy.server.log_text()
    assert "allocation=lazy is not available (the GPU or driver does not support CUDA " \
           "virtual memory management); falling back to allocation=eager" in log
    st = lazy.status()
    assert st["allocation"] == "eager" and st["held"] == str(SIZE)
    assert lazy.server.export_allocation()["size"] == SIZE
    h = connect(lazy.server)
    h.pwrite(b"eager", 7)
    assert h.pread(5, 7) == b"eager"


def test_exit_zeroes_and_releases_every_chunk(vram, connect, tmp_path):
    lazy = Lazy(vram, tmp_path)
    h = connect(lazy.server)
    secret = b"secret!!" * 512
    for offset in (0, 7 * MiB, 20 * MiB + 4096):
        h.pwrite(secret, offset)
    lazy.wait_held(3 * CHUNK)
    connect.close_all()
    assert lazy.server.stop() == 0
    events = parse_map_file(lazy.server.map_file)
    assert physical_held(events) == 0
    assert len([e for e in events if e["op"] == "unmap"]) == 3
    for e in (e for e in events if e["op"] == "create"):
        assert_zero(read_file_at(lazy.server.memory_file, e["file_offset"], e["size"]),
                    "chunk after exit")
    assert not lazy.status_file.exists()
    log = lazy.server.log_text()
    assert "VRAM held: 14.0 MiB (3 chunks of 2.0 MiB, and 4 spare) for a 32.0 MiB export" in log


def test_held_vram_is_logged_when_it_changes(vram, connect, tmp_path):
    lazy = Lazy(vram, tmp_path, spare=0)
    h = connect(lazy.server)
    h.pwrite(b"1" * 4096, 0)
    # The first change is logged at once.
    wait_until(lambda: "VRAM held: 2.0 MiB (1 chunk of" in lazy.server.log_text(), timeout=5,
               what="the held VRAM in the log")
    started = time.monotonic()
    for i in range(1, 6):
        h.pwrite(b"1" * 4096, i * CHUNK)
    # Rate-limited: the next line comes no sooner than 10 s after the first.
    wait_until(lambda: "VRAM held: 12.0 MiB (6 chunks" in lazy.server.log_text(), timeout=20,
               what="the next held-VRAM line")
    assert lazy.server.log_text().count("VRAM held:") == 2
    assert time.monotonic() - started > 5


def test_sticky_failure_in_lazy_mode(vram, connect, tmp_path):
    # Each write into a new chunk is three copies (share-gpu=yes): the
    # chunk zeroed from the 1 MiB of pinned zeroes twice, then the data.
    # The second write's data is copy 6.
    lazy = Lazy(vram, tmp_path, "share-gpu=yes",
                env={"FAKECUDA_FAIL_COPY": "6", "FAKECUDA_FAIL_MODE": "sticky"})
    h = connect(lazy.server)
    h.pwrite(b"a" * 4096, 0)
    with pytest.raises(nbd.Error) as failure:
        h.pwrite(b"b" * 4096, 9 * MiB)
    assert failure.value.errnum == errno.EIO
    with pytest.raises(nbd.Error):
        h.pread(4096, 0)
    wait_until(lambda: (lazy.status() or {}).get("state") == "failed", timeout=10,
               what="the status file to say failed")
    connect.close_all()
    assert lazy.server.stop() == 0
    assert physical_held(parse_map_file(lazy.server.map_file)) == 0


def test_eager_status_file(vram, connect, tmp_path):
    status_file = tmp_path / "eager.status"
    server = vram("size=64M", f"status-file={status_file}")
    st = read_status(status_file)
    assert st["allocation"] == "eager" and st["held"] == str(64 * MiB) and st["spare"] == "0"
    assert st["size"] == str(64 * MiB) and st["lazy_chunk"] == "0"
    assert int(st["pid"]) > 0 and st["gpu"].startswith("GPU 0 (Fake GPU 0")
    connect(server).pwrite(b"x", 0)
    connect.close_all()
    assert server.stop() == 0
    assert not status_file.exists()
