"""A CUDA error that leaves the GPU context unusable (illegal address,
ECC error, GPU fallen off the bus, or any error not known to be harmless)
takes the export out of service: every later request fails with EIO, the
reason is logged once, and nbdkit stays up so that the failure is seen by
clients instead of hanging them."""
import errno
import random
import threading
import time

import nbd
import pytest

from .helpers import MiB, wait_until

REASON = "The GPU context is unusable; every further request fails with EIO"


def expect_eio(call, *args):
    with pytest.raises(nbd.Error) as failure:
        call(*args)
    assert failure.value.errnum == errno.EIO, failure.value


def check_out_of_service(server, connect, h):
    """Every kind of request fails, on old and new connections alike."""
    for handle in (h, connect(server)):
        expect_eio(handle.pread, 4096, 0)
        expect_eio(handle.pread, 1, 12345)
        expect_eio(handle.pwrite, b"x" * 4096, 0)
        expect_eio(handle.pwrite, b"x" * 4096, 0, nbd.CMD_FLAG_FUA)
        expect_eio(handle.zero, 4096, 0)
        expect_eio(handle.trim, 4096, 0)
        expect_eio(handle.flush)
    assert server.alive()
    assert connect(server).get_size() == 64 * MiB  # still answers


def test_sticky_error_from_a_copy(vram, connect):
    server = vram("size=64M", env={"FAKECUDA_FAIL_COPY": "3", "FAKECUDA_FAIL_MODE": "sticky"})
    h = connect(server)
    h.pwrite(b"A" * 4096, 0)
    assert h.pread(4096, 0) == b"A" * 4096
    expect_eio(h.pwrite, b"B" * 4096, 8192)
    check_out_of_service(server, connect, h)
    check_out_of_service(server, connect, h)

    log = server.log_text()
    assert log.count(REASON) == 1, log
    reason_line = next(line for line in log.splitlines() if REASON in line)
    assert ("write of 4096 bytes at offset 8192 failed: CUDA_ERROR_ILLEGAL_ADDRESS"
            in reason_line)
    # Later failures point back at it.
    assert "is out of service after an earlier GPU error" in log
    assert "restart nbdkit to serve again" in log


def test_exit_after_a_sticky_error_says_vram_was_not_zeroed(vram, connect):
    """VRAM cannot be zeroed at exit any more; nbdkit still exits cleanly,
    and the log says that the data was not wiped."""
    server = vram("size=64M", env={"FAKECUDA_FAIL_COPY": "2", "FAKECUDA_FAIL_MODE": "sticky"})
    h = connect(server)
    h.pwrite(b"secret" * 100, 0)
    expect_eio(h.pread, 600, 0)
    connect.close_all()
    assert server.stop() == 0
    assert "VRAM not zeroed at shutdown (the GPU failed earlier)" in server.log_text()


def test_error_not_known_to_be_harmless_is_treated_as_fatal(vram, connect, tmp_path):
    """The fake fails one copy with CUDA_ERROR_LAUNCH_FAILED and would work
    again after it; the plugin cannot know that and must stop serving."""
    trigger = tmp_path / "trigger"
    server = vram("size=64M", env={"FAKECUDA_TRIGGER_FILE": str(trigger)})
    h = connect(server)
    h.pwrite(b"A" * 4096, 0)
    trigger.write_text("transient CUDA_ERROR_LAUNCH_FAILED\n")
    expect_eio(h.pread, 4096, 0)
    assert not trigger.exists()
    check_out_of_service(server, connect, h)
    log = server.log_text()
    assert log.count(REASON) == 1, log
    assert "read of 4096 bytes at offset 0 failed: CUDA_ERROR_LAUNCH_FAILED" in log


def test_sticky_error_mid_run_under_load_is_logged_once(vram, connect, tmp_path):
    """Many requests from several connections hit the failure at the same
    time; the reason is still logged exactly once."""
    trigger = tmp_path / "trigger"
    server = vram("size=64M", "piece-size=32K",
                  env={"FAKECUDA_TRIGGER_FILE": str(trigger), "FAKECUDA_LATENCY_US": "100"})
    data = random.Random(1).randbytes(4 * MiB)
    connect(server).pwrite(data, 0)

    stop = threading.Event()
    ok, failed, wrong = [], [], []

    def client(index):
        h = nbd.NBD()
        h.connect_uri(server.uri)
        rng = random.Random(index)
        while not stop.is_set():
            offset, size = rng.randrange(0, 2 * MiB), rng.randrange(1, 2 * MiB)
            try:
                if index % 2:
                    h.pwrite(data[offset:offset + size], offset)
                    ok.append(1)
                elif h.pread(size, offset) == data[offset:offset + size]:
                    ok.append(1)
                else:
                    wrong.append((offset, size))
            except nbd.Error as e:
                failed.append(e.errnum)
        h.shutdown()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
    started = time.monotonic()
    for t in threads:
        t.start()
    try:
        wait_until(lambda: len(ok) > 20, what="clients to get going")
        trigger.write_text("sticky CUDA_ERROR_ECC_UNCORRECTABLE\n")
        wait_until(lambda: len(failed) > 40, what="clients to see the failure")
        done = len(ok)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert set(failed) == {errno.EIO}
    assert not wrong, wrong  # no read ever returned data it could not vouch for
    assert len(ok) <= done + len(threads)  # nothing succeeds after the failure...

    h = connect(server)
    check_out_of_service(server, connect, h)
    log = server.log_text()
    assert log.count(REASON) == 1, log
    assert "CUDA_ERROR_ECC_UNCORRECTABLE" in next(l for l in log.splitlines() if REASON in l)
    # Later failures are rate-limited: one line per 10 s, not one per request.
    repeats = log.count("is out of service after an earlier GPU error")
    assert 1 <= repeats <= 2 + (time.monotonic() - started) // 10, log
    assert len(failed) > 40 > repeats
