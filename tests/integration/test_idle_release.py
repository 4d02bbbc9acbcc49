"""idle-release=: after a spell with no request the plugin gives the GPU's
CUDA context back, keeping every byte of VRAM, and the next request wakes
it.  Through a real nbdkit over the test driver, whose context takes time
and host memory to create and takes its streams and registrations with it
when it goes."""
import random
import time

import nbd
import pytest

from .helpers import MiB, assert_same, read_export, run_concurrently, wait_until
from .test_lazy import read_status

# A context that costs what makes a wake visible: 30 ms and 32 MiB.
CONTEXT_COST = {"FAKECUDA_CTX_CREATE_US": "30000", "FAKECUDA_CTX_HOST_BYTES": "32M"}


class Resting:
    """A server with idle-release= and its status file."""

    def __init__(self, vram, tmp_path, *params, idle="300ms", size="64M"):
        self.status_file = tmp_path / "resting.status"
        self.server = vram(f"size={size}", f"idle-release={idle}",
                           f"status-file={self.status_file}", *params, env=CONTEXT_COST)

    def status(self):
        return read_status(self.status_file) or {}

    def wait_state(self, state, timeout=20):
        wait_until(lambda: self.status().get("gpu_state") == state, timeout=timeout,
                   what=f"gpu_state={state} (status: {self.status()})")


@pytest.mark.parametrize("codec", ["none", "lz4"])
def test_the_gpu_rests_keeps_every_byte_and_wakes_for_the_next_request(vram, connect,
                                                                       tmp_path, codec):
    r = Resting(vram, tmp_path, f"compress={codec}")
    h = connect(r.server)
    rng = random.Random(17)
    data = rng.randbytes(6 * MiB)
    h.pwrite(data, 5 * MiB + 4096)
    r.wait_state("resting")
    s = r.status()
    assert int(s["rests"]) >= 1, s
    assert s["idle_release"] == "0.300", s
    # (On a loaded machine it may have rested before the write, too.)
    wakes = int(s["wakes"])
    wait_until(lambda: "resting: no request for" in r.server.log_text(), what="the rest's log line")

    assert_same(read_export(h, 5 * MiB + 4096, len(data)), data)
    # (It may rest again soon after: wait for the wake's figures, not a state.)
    wait_until(lambda: int(r.status().get("wakes", 0)) == wakes + 1,
               what=f"wakes={wakes + 1} (status: {r.status()})")
    s = r.status()
    assert s["failed_wakes"] == "0", s
    # The request waited for the context's creation, at least.
    assert float(s["last_wake_ms"]) >= 30, s
    wait_until(lambda: "awake again: the wake took" in r.server.log_text(),
               what="the wake's log line")


def test_requests_from_many_connections_across_many_rests_lose_nothing(vram, connect,
                                                                      tmp_path):
    """Four connections write and read back their own quarter with quiet
    spells between, so the GPU rests and wakes over and over under them."""
    r = Resting(vram, tmp_path, idle="100ms")
    quarter = 16 * MiB
    failures = []

    def worker(i):
        h = connect(r.server)
        rng = random.Random(i)
        model = bytearray(quarter)
        try:
            for n in range(60):
                length = 4096 * rng.randrange(1, 65)
                at = 4096 * rng.randrange((quarter - length) // 4096)
                data = rng.randbytes(length)
                h.pwrite(data, i * quarter + at)
                model[at:at + length] = data
                if n % 5 == 4:
                    time.sleep(rng.uniform(0.15, 0.4))
                at = 4096 * rng.randrange((quarter - 64 * 4096) // 4096)
                got = h.pread(64 * 4096, i * quarter + at)
                if got != model[at:at + 64 * 4096]:
                    failures.append(f"connection {i}: wrong data at {i * quarter + at}")
                    return
        except nbd.Error as e:
            failures.append(f"connection {i}: {e}")

    run_concurrently(worker, 4)
    assert not failures, failures
    s = r.status()
    assert int(s["rests"]) >= 3, s
    assert s["failed_wakes"] == "0", s


def test_bad_idle_release_is_refused_with_the_forms_it_takes(start_fails):
    out = start_fails("size=64M", "idle-release=soon").output
    assert "idle-release=soon: expected 'off' (default) or a time such as 30s" in out, out
    out = start_fails("size=64M", "idle-release=30s", "allocation=eager").output
    assert "idle-release= with allocation=eager" in out, out


def test_off_keeps_the_context(vram, connect, tmp_path):
    status_file = tmp_path / "awake.status"
    server = vram("size=64M", "allocation=lazy", f"status-file={status_file}")
    h = connect(server)
    h.pwrite(b"x" * 4096, 0)
    wait_until(lambda: (read_status(status_file) or {}).get("idle_release") == "off",
               what="idle_release=off in the status file")
    assert "gpu_state" not in read_status(status_file)
