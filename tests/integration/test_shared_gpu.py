"""A GPU shared with a game or a training job: swap must not wait for them.

On the real driver, small one-dimensional host-to-device copies, memsets
and device-to-device copies wait for the time slice of any other program
running kernels (2.5 ms each beside large matrix products on an H200),
while larger copies, device-to-host copies and two-row copies run on a copy
engine and do not.  The fake driver names every operation the real one
would make wait in FAKECUDA_TIMESLICE_FILE, and with FAKECUDA_TIMESLICE_US
makes each wait that long.

With share-gpu=yes, through writes, reads, zeroes and trims of every size
and alignment, over several connections, eager and lazy, the plugin must
issue none, and every byte must read back right.  With share-gpu=auto (the
default) it uses the faster one-row copies and memsets until they keep
waiting, and then none for a while.
"""
import random

import pytest

from .helpers import KiB, MiB, assert_same, read_export, run_concurrently, wait_until

SIZE = 32 * MiB
CONNECTIONS = 4
REGION = SIZE // CONNECTIONS

# Lengths around every boundary the data path has: the two-row shape (odd
# and even, 2 and 3 bytes), the 32 KiB one-row threshold, the 1 MiB source
# of zeroes, the 256 KiB pipelining piece and, lazy, the 2 MiB chunk.
LENGTHS = [2, 3, 511, 512, 1000, 4095, 4096, 4097, 8192, 28 * KiB, 32 * KiB - 1, 32 * KiB,
           32 * KiB + 1, 256 * KiB - 3, 256 * KiB + 4096, 1 * MiB, 1 * MiB + 7, 2 * MiB + 4096 + 3]

MODES = {
    "eager": ("allocation=eager", "share-gpu=yes"),
    "eager-small-pieces": ("allocation=eager", "piece-size=4K", "share-gpu=yes"),
    "lazy": ("allocation=lazy", "lazy-chunk=2M", "share-gpu=yes"),
}


def timesliced(path):
    return path.read_text().splitlines() if path.exists() else []


def exercise(h, base, model, seed):
    """Random writes, zeroes and trims inside [base, base + REGION), then
    random reads checked against `model` (this connection's bytes)."""
    rng = random.Random(seed)
    for _ in range(120):
        n = rng.choice(LENGTHS)
        off = rng.randrange(0, REGION - n)
        what = rng.choice(("write", "write", "zero", "trim"))
        if what == "write":
            data = rng.randbytes(n).replace(b"\0", b"\1")
            h.pwrite(data, base + off)
            model[off:off + n] = data
        else:
            (h.zero if what == "zero" else h.trim)(n, base + off)
            model[off:off + n] = bytes(n)
        if rng.random() < 0.3:
            n = rng.choice(LENGTHS)
            off = rng.randrange(0, REGION - n)
            assert_same(h.pread(n, base + off), model[off:off + n], "read back", base + off)


@pytest.mark.parametrize("mode", list(MODES))
def test_no_operation_waits_for_other_programs_and_data_is_exact(vram, connect, tmp_path, mode):
    ts = tmp_path / "timesliced"
    server = vram(f"size={SIZE // MiB}M", *MODES[mode], env={"FAKECUDA_TIMESLICE_FILE": str(ts)},
                  gpus="total=256M")
    # Zeroing an eager allocation at start is one memset (a time slice at
    # most, once, before serving); nothing after it may wait.
    at_start = timesliced(ts)
    assert len(at_start) <= 1, at_start
    handles = [connect(server) for _ in range(CONNECTIONS)]
    models = [bytearray(REGION) for _ in range(CONNECTIONS)]
    errors = []

    def run(i):
        try:
            exercise(handles[i], i * REGION, models[i], seed=100 + i)
        except Exception as e:  # reported below, with the others
            errors.append(f"connection {i}: {e!r}")

    run_concurrently(run, CONNECTIONS)
    assert not errors, errors
    expected = b"".join(models)
    assert_same(read_export(connect(server), 0, SIZE), expected, "whole export")
    if mode.startswith("eager"):
        assert_same(server.vram_read(0, SIZE), expected, "fake VRAM file")
    during = timesliced(ts)[len(at_start):]
    assert during == [], (f"{len(during)} operations the real driver would queue behind other "
                          f"programs' kernels, e.g. {during[:5]}")


def test_a_one_byte_write_is_the_one_exception(vram, connect, tmp_path):
    """No two-row shape holds one byte; the kernel never writes one (the
    minimum block size is 512).  The fake sees it: the check above can fail."""
    ts = tmp_path / "timesliced"
    server = vram("size=16M", "allocation=lazy", "share-gpu=yes",
                  env={"FAKECUDA_TIMESLICE_FILE": str(ts)})
    h = connect(server)
    h.pwrite(b"\x01" * 4096, 0)  # maps the chunk
    before = timesliced(ts)
    h.pwrite(b"\x07", 100)
    assert timesliced(ts)[len(before):] == ["cuMemcpyHtoDAsync_v2 bytes=1"]
    assert h.pread(3, 99) == b"\x01\x07\x01"


def read_status(path):
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def test_auto_takes_the_fast_path_alone(vram, connect, tmp_path):
    """The first request of each kind on a quiet GPU: a one-row copy, a
    memset (later ones too, unless this machine stalls the plugin's threads
    for 5 ms over three operations in a row)."""
    for first in ("write", "zero"):
        ts = tmp_path / f"timesliced-{first}"
        status = tmp_path / f"status-{first}"
        server = vram("size=16M", "share-gpu=auto", f"status-file={status}", name=first,
                      env={"FAKECUDA_TIMESLICE_FILE": str(ts)})
        h = connect(server)
        before = timesliced(ts)
        if first == "write":
            h.pwrite(b"\x05" * 4096, 0)
            assert timesliced(ts)[len(before):] == ["cuMemcpyHtoDAsync_v2 bytes=4096"]
            assert h.pread(4096, 0) == b"\x05" * 4096
        else:
            h.zero(4096, 8192)
            assert timesliced(ts)[len(before):] == ["cuMemsetD8Async bytes=4096"]
        assert read_status(status)["share_gpu"] == "auto"


def test_share_gpu_auto_is_the_default(vram, connect, tmp_path):
    """Quiet: the fast path, as share-gpu=auto takes it."""
    ts = tmp_path / "timesliced"
    status = tmp_path / "status"
    server = vram("size=16M", f"status-file={status}", env={"FAKECUDA_TIMESLICE_FILE": str(ts)})
    st = read_status(status)
    assert st["share_gpu"] == "auto" and st["sharing_now"] == "no"
    h = connect(server)
    before = timesliced(ts)
    h.pwrite(b"\x05" * 4096, 0)
    assert timesliced(ts)[len(before):] == ["cuMemcpyHtoDAsync_v2 bytes=4096"]


@pytest.mark.parametrize("mode", ["eager", "lazy"])
def test_auto_keeps_off_the_time_sliced_path_once_another_program_is_seen(vram, connect, tmp_path,
                                                                         mode):
    """Each fast-path operation waits 50 ms (another program's time slice,
    as the fake models it).  Three in a row: for the next second at least,
    nothing the plugin does may wait, and the status file says another
    program was seen."""
    ts = tmp_path / "timesliced"
    status = tmp_path / "status"
    server = vram("size=16M", "share-gpu=auto", f"allocation={mode}", f"status-file={status}",
                  env={"FAKECUDA_TIMESLICE_FILE": str(ts), "FAKECUDA_TIMESLICE_US": "50000"})
    h = connect(server)
    before = timesliced(ts)
    # Eager: three writes.  Lazy: the first maps its chunk, zeroing it with
    # a memset, then writes: two; the second makes three.
    h.pwrite(b"\x07" * 4096, 4096)
    h.pwrite(b"\x08" * 4096, 12288)
    h.pwrite(b"\x09" * 4096, 20480)
    assert len(timesliced(ts)[len(before):]) == 3, timesliced(ts)[len(before):]
    seen = timesliced(ts)
    for i in range(5):
        h.pwrite(bytes([i + 1]) * 512, 65536 + i * 512)
        h.zero(4097, 131072 + i * 8192)
        h.trim(4096, 1 * MiB + i * 4096)
        h.pwrite(bytes([i + 1]) * 4096, 3 * MiB + i * 4096)  # lazy: a new chunk
    assert timesliced(ts) == seen
    assert h.pread(512, 65536 + 4 * 512) == b"\x05" * 512
    assert h.pread(8192, 4096) == b"\x07" * 4096 + b"\x00" * 4096
    assert h.pread(4096, 3 * MiB + 4096) == b"\x02" * 4096

    def detected():
        st = read_status(status) if status.exists() else {}
        return int(st.get("shared_gpu_detections", "0")) >= 1
    wait_until(detected, timeout=10, what="the status file to count the detection")
