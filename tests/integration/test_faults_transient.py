"""A CUDA error that leaves the GPU usable fails only the request it hit,
with EIO; the requests after it succeed and nbdkit keeps serving."""
import errno
import random
import threading

import nbd
import pytest

from .helpers import MiB, assert_same, wait_for, wait_until


def expect_eio(call, *args):
    with pytest.raises(nbd.Error) as failure:
        call(*args)
    assert failure.value.errnum == errno.EIO, failure.value
    return failure.value


def test_failed_write_fails_alone(vram, connect):
    # Copies are counted from 1 over the whole process: 1 write, 1 read,
    # then the third copy (a write) fails.
    server = vram("size=64M", env={"FAKECUDA_FAIL_COPY": "3", "FAKECUDA_FAIL_MODE": "transient"})
    h = connect(server)
    h.pwrite(b"A" * 4096, 0)
    assert h.pread(4096, 0) == b"A" * 4096
    expect_eio(h.pwrite, b"B" * 4096, 8192)
    assert h.pread(4096, 0) == b"A" * 4096
    h.pwrite(b"C" * 4096, 8192)
    assert h.pread(4096, 8192) == b"C" * 4096
    h.flush()
    assert server.alive()
    log = server.log_text()
    assert ("write of 4096 bytes at offset 8192 failed: CUDA_ERROR_OUT_OF_MEMORY" in log), log
    assert "out of service" not in log


def test_failed_read_in_the_middle_of_a_pipelined_request(vram, connect):
    """The write of 1M is copies 1-4 (256K chunks); the read's second chunk
    (copy 6) fails while its neighbours are in flight."""
    server = vram("size=64M", env={"FAKECUDA_FAIL_COPY": "6", "FAKECUDA_LATENCY_US": "300"})
    h = connect(server)
    data = random.Random(1).randbytes(1 * MiB)
    h.pwrite(data, 5 * MiB)
    expect_eio(h.pread, len(data), 5 * MiB)
    # Every lane (and its staging buffer) is fine afterwards: more requests
    # than lanes, in parallel, all correct.
    handles = [connect(server) for _ in range(4)]
    for _ in range(3):
        buffers = [nbd.Buffer(len(data)) for _ in handles]
        cookies = [x.aio_pread(buf, 5 * MiB) for x, buf in zip(handles, buffers)]
        for x, cookie in zip(handles, cookies):
            wait_for(x, [cookie])
        for buf in buffers:
            assert_same(buf.to_bytearray(), data, "read after a failed read")
    assert "read of 1048576 bytes at offset 5242880 failed" in server.log_text()


def test_trigger_file_fails_exactly_one_request_mid_run(vram, connect, tmp_path):
    trigger = tmp_path / "trigger"
    server = vram("size=64M", "piece-size=64K", env={"FAKECUDA_TRIGGER_FILE": str(trigger)})
    data = random.Random(2).randbytes(8 * MiB)
    connect(server).pwrite(data, 0)

    stop = threading.Event()
    failures, reads, problems = [], [], []

    def reader(index):
        h = nbd.NBD()
        h.connect_uri(server.uri)
        rng = random.Random(index)
        while not stop.is_set():
            offset = rng.randrange(0, len(data) - 1 * MiB)
            size = rng.randrange(1, 1 * MiB)
            try:
                got = h.pread(size, offset)
            except nbd.Error as e:
                failures.append(e.errnum)
                continue
            reads.append(size)
            if got != data[offset:offset + size]:
                problems.append(f"wrong data at {offset:#x}+{size}")
        h.shutdown()

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: len(reads) > 20, what="readers to get going")
        trigger.write_text("transient\n")
        wait_until(lambda: not trigger.exists(), what="the fake to consume the trigger")
        count = len(reads)
        wait_until(lambda: len(reads) > count + 20, what="reads after the failure")
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert failures == [errno.EIO]
    assert not problems, problems
    assert server.alive()
    assert "out of service" not in server.log_text()
