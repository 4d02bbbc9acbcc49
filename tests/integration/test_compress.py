"""compress=: each 4 KiB page kept compressed in VRAM (whole when it does
not compress, no VRAM at all when same-filled), VRAM held as the pages need
it, size= the logical size.  Through a real nbdkit over the test driver,
whose map file shows every chunk of VRAM created, mapped and released."""
import errno
import random

import nbd
import pytest

from support.nbdkit import BUILD

from .helpers import (MiB, assert_same, assert_zero, mapped_held, parse_map_file,
                      read_export, read_file_at, run_concurrently, wait_until)
from .test_lazy import read_status

PAGE = 4096
CHUNK = 2 * MiB
INTEGRITY = str(BUILD / "filters" / "integrity" / "nbdkit-integrity-filter.so")


def page_of_kind(rng, kind):
    """A page of each kind swap sees: random (stored whole), text-like,
    same-filled, zero, half random."""
    kind %= 5
    if kind == 0:
        return rng.randbytes(PAGE)
    if kind == 1:
        words = b"some swapped text that repeats, more or less; "
        page = bytearray((words * (PAGE // len(words) + 1))[:PAGE])
        for i in range(0, PAGE, 97):
            page[i] = rng.randrange(256)
        return bytes(page)
    if kind == 2:
        return rng.randbytes(8) * (PAGE // 8)
    if kind == 3:
        return bytes(PAGE)
    return rng.randbytes(PAGE // 2) + bytes(PAGE // 2)


def mixed(rng, length):
    data = b"".join(page_of_kind(rng, rng.randrange(5)) for _ in range(length // PAGE + 1))
    return data[:length]


class Compressed:
    """A compressed server with its status file."""

    def __init__(self, vram, tmp_path, *params, codec="lz4", size="64M", gpus="total=512M",
                 spare=0, filters=(), env=None):
        self.status_file = tmp_path / "compressed.status"
        self.server = vram(f"size={size}", f"compress={codec}", f"lazy-spare={spare}",
                           f"status-file={self.status_file}", *params, gpus=gpus,
                           filters=filters, env=env)

    def status(self):
        return read_status(self.status_file) or {}

    def mapped_by_driver(self):
        return mapped_held(parse_map_file(self.server.map_file))

    def wait_status(self, **want):
        want = {k: str(v) for k, v in want.items()}
        wait_until(lambda: {k: self.status().get(k) for k in want} == want, timeout=10,
                   what=f"status file to say {want} (it says {self.status()})")


@pytest.mark.parametrize("codec", ["lz4", "zstd", "zstd:3"])
def test_every_kind_of_page_round_trips_over_several_connections(vram, connect, tmp_path,
                                                                 codec):
    """Four connections at once, each writing, zeroing, trimming and
    reading its own quarter at every alignment against a model."""
    c = Compressed(vram, tmp_path, "piece-size=64K", codec=codec)
    size = 64 * MiB
    quarter = size // 4
    handles = [connect(c.server) for _ in range(4)]
    models = [bytearray(quarter) for _ in range(4)]
    failures = []

    def work(n):
        try:
            h, model, base = handles[n], models[n], n * quarter
            rng = random.Random(n)
            for _ in range(300):
                offset = rng.randrange(0, quarter)
                length = min(quarter - offset, rng.choice([1, 512, 4096, 5000, 65536, 300000]))
                op = rng.random()
                if op < 0.5:
                    data = mixed(rng, length)
                    h.pwrite(data, base + offset)
                    model[offset:offset + length] = data
                elif op < 0.65:
                    (h.trim if op < 0.6 else h.zero)(length, base + offset)
                    model[offset:offset + length] = bytes(length)
                else:
                    assert_same(h.pread(length, base + offset),
                                bytes(model[offset:offset + length]), base=base + offset)
        except Exception as e:  # reported below, with the connection
            failures.append((n, e))

    run_concurrently(work, 4)
    assert not failures, failures
    for n in range(4):
        assert_same(read_export(handles[0], n * quarter, quarter), bytes(models[n]),
                    base=n * quarter)
    st = c.status()
    assert st["compress"] == (codec if codec != "zstd" else "zstd:1")
    assert int(st["same_pages"]) > 0 and int(st["whole_pages"]) > 0
    assert int(st["compressed_bytes"]) < int(st["original_bytes"])
    assert st["state"] == "serving"


def test_same_filled_pages_take_no_vram(vram, connect, tmp_path):
    c = Compressed(vram, tmp_path)
    h = connect(c.server)
    rng = random.Random(1)
    data = b"".join(rng.randbytes(8) * (PAGE // 8) if i % 2 else bytes(PAGE)
                    for i in range(2048))
    h.pwrite(data, 16 * MiB)
    assert h.pread(len(data), 16 * MiB) == data
    c.wait_status(held=0, same_pages=2048, stored_pages=0, original_bytes=len(data))
    assert c.mapped_by_driver() == 0
    assert not [e for e in parse_map_file(c.server.map_file) if e["op"] == "create"]


def test_size_is_logical_and_the_log_says_what_may_be_held(vram, connect, tmp_path):
    c = Compressed(vram, tmp_path, size="1G", gpus="total=256M")
    h = connect(c.server)
    assert h.get_size() == 1024 * MiB
    st = c.status()
    assert st["size"] == str(1024 * MiB) and st["vram_limit"] == str(256 * MiB)
    assert st["allocation"] == "lazy"
    assert f"serving 1.0 GiB ({1024 * MiB} bytes) of compressed pages in VRAM on GPU 0" \
        in c.server.log_text()
    assert ("compress=lz4: each 4 KiB page is kept compressed in VRAM (whole when it does not "
            "compress, none when same-filled); the 1.0 GiB export may hold up to 256.0 MiB of "
            "VRAM, in chunks of 2.0 MiB taken as pages need them; its page table and slot maps "
            "take ") in c.server.log_text()
    # The far end of the logical export works like the rest.
    h.pwrite(b"end" * 1000, 1024 * MiB - 3000)
    assert h.pread(3000, 1024 * MiB - 3000) == b"end" * 1000
    with pytest.raises(nbd.Error) as past:
        h.pread(4096, 1024 * MiB - 2048)
    assert past.value.errnum in (errno.EINVAL, errno.EIO)


def test_trim_gives_the_vram_back_zeroed(vram, connect, tmp_path):
    c = Compressed(vram, tmp_path)
    h = connect(c.server)
    rng = random.Random(2)
    data = mixed(rng, 24 * MiB)
    h.pwrite(data[:16 * MiB], 0)
    h.pwrite(data[16 * MiB:], 40 * MiB)
    held = int(c.status().get("held", 0))
    wait_until(lambda: int(c.status().get("held", 0)) > 0, timeout=10, what="VRAM held")
    assert c.mapped_by_driver() > 0
    created = [e for e in parse_map_file(c.server.map_file) if e["op"] == "create"]
    h.trim(16 * MiB, 0)
    h.zero(8 * MiB, 40 * MiB)
    c.wait_status(held=0, original_bytes=0, stored_pages=0, same_pages=0)
    assert c.mapped_by_driver() == 0
    assert_zero(read_export(h, 0, 64 * MiB), "everything trimmed")
    # Nothing of ours is left in VRAM given back.
    for e in created:
        assert_zero(read_file_at(c.server.memory_file, e["file_offset"], e["size"]),
                    f"released chunk at file offset {e['file_offset']}")
    assert held >= 0


def test_full_vram_is_enospc_and_writes_work_again_once_freed(vram, connect, tmp_path):
    """32 MiB of VRAM under a 128 MiB export of random (incompressible)
    pages: the write that finds no VRAM fails with ENOSPC, is logged with
    the figures, and changes nothing; a trim frees VRAM for it."""
    c = Compressed(vram, tmp_path, size="128M", gpus="total=32M")
    h = connect(c.server)
    rng = random.Random(3)
    model = bytearray(128 * MiB)
    failed_at = None
    for offset in range(0, 128 * MiB, MiB):
        data = rng.randbytes(MiB)
        try:
            h.pwrite(data, offset)
        except nbd.Error as e:
            assert e.errnum == errno.ENOSPC, e
            failed_at = offset
            break
        model[offset:offset + MiB] = data
    assert failed_at == 32 * MiB
    log = c.server.log_text()
    assert (f"write of 1048576 bytes at offset {failed_at} failed with ENOSPC: GPU 0") in log
    assert "Data already stored is unaffected" in log
    assert_same(read_export(h, 0, 128 * MiB), bytes(model))
    h.trim(4 * MiB, 0)
    model[0:4 * MiB] = bytes(4 * MiB)
    data = rng.randbytes(MiB)
    h.pwrite(data, failed_at)
    model[failed_at:failed_at + MiB] = data
    assert_same(read_export(h, 0, 128 * MiB), bytes(model))
    assert c.status()["state"] == "serving"


def test_the_integrity_filter_works_above_it(vram, connect, tmp_path):
    c = Compressed(vram, tmp_path, codec="zstd", filters=[INTEGRITY])
    h = connect(c.server)
    rng = random.Random(4)
    data = mixed(rng, 8 * MiB)
    h.pwrite(data, 3 * MiB)
    h.trim(MiB, 5 * MiB)
    expected = data[:2 * MiB] + bytes(MiB) + data[3 * MiB:]
    assert_same(h.pread(8 * MiB, 3 * MiB), expected, base=3 * MiB)
    h.flush()
