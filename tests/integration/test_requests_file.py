"""requests-file=: where each nbdkit thread is in its request, readable
while the request is stuck (what a hang dump shows).  The fake driver's
FAKECUDA_LATENCY_US holds every copy long enough to look."""
import os
import threading
import time

import nbd
import pytest

from .helpers import MiB, wait_until

# Column offsets (request_board.cpp); the header's second line names them.
COLUMNS = ("tid", "op", "offset", "length", "started", "phase", "since", "lane", "chunk")


def board(path):
    """(header lines, [row dict for each used slot])."""
    text = path.read_text()
    lines = text.split("\n")[:-1]
    assert all(len(line) == 127 for line in lines), "every line is 128 bytes"
    head, rows = lines[:2], []
    for line in lines[2:]:
        if line.strip():
            rows.append(dict(zip(COLUMNS, line.split())))
    return head, rows


def in_flight(path):
    return [r for r in board(path)[1] if r["phase"] != "idle"]


def monotonic_now():
    return time.clock_gettime(time.CLOCK_MONOTONIC)


def test_a_request_in_flight_shows_its_lane_and_age(vram, connect, tmp_path):
    path = tmp_path / "requests"
    server = vram("size=16M", "lanes=2", f"requests-file={path}",
                  env={"FAKECUDA_LATENCY_US": "300000"})
    head, rows = board(path)
    assert head[0].startswith(f"# nbdkit-vram requests-file: pid {server.proc.pid}, 2 lanes")
    assert head[1].split()[1:] == list(COLUMNS)
    assert os.stat(path).st_mode & 0o777 == 0o600
    h = connect(server)
    t0 = monotonic_now()
    h.aio_pwrite(b"\x01" * 8192, 3 * MiB)
    wait_until(lambda: in_flight(path), what="the write to show")
    (r,) = in_flight(path)
    assert (r["op"], int(r["offset"], 16), r["length"]) == ("write", 3 * MiB, "8192")
    assert r["phase"] == "lane" and r["lane"] in ("0", "1") and r["chunk"] == "-"
    assert abs(float(r["started"]) - t0) < 5, (r, t0)
    wait_until(lambda: not in_flight(path), what="the write to finish")
    (done,) = board(path)[1]
    assert done["tid"] == r["tid"] and done["op"] == "write" and done["lane"] == "-"
    assert float(done["since"]) >= float(done["started"]) + 0.25  # its copy took 300 ms


def test_a_request_waiting_for_a_lane_says_so(vram, connect, tmp_path):
    path = tmp_path / "requests"
    server = vram("size=16M", "lanes=1", f"requests-file={path}",
                  env={"FAKECUDA_LATENCY_US": "300000"})
    handles = [connect(server) for _ in range(3)]
    for i, h in enumerate(handles):
        h.aio_pread(nbd.Buffer(4096), i * MiB)
    # A request is on the board ("started") a moment before it asks for a
    # lane: wait for all three to have got that far (the first holds the
    # only lane for 300 ms), not just to show.  Seen in CI under ASan: the
    # third still "started" when three first showed.
    def phases():
        return sorted(r["phase"] for r in in_flight(path))
    wait_until(lambda: phases() == ["lane", "lane-wait", "lane-wait"],
               what="one read on the lane and two waiting for it")
    wait_until(lambda: not in_flight(path), timeout=20, what="the reads to finish")


def test_lazy_mapping_shows_the_chunk(vram, connect, tmp_path):
    """A write into a chunk that holds no VRAM maps it (zeroing it is a
    slow copy here) with the chunk's lock held; a read of the same chunk
    waits for that lock."""
    path = tmp_path / "requests"
    server = vram("size=16M", "allocation=lazy", "lazy-chunk=2M", "lazy-spare=0",
                  f"requests-file={path}", env={"FAKECUDA_LATENCY_US": "300000"})
    writer, reader = connect(server), connect(server)
    writer.aio_pwrite(b"\x02" * 4096, 5 * MiB)  # chunk 2
    wait_until(lambda: any(r["phase"] == "map" for r in in_flight(path)),
               what="the write to map its chunk")
    reader.aio_pread(nbd.Buffer(4096), 4 * MiB + 8192)  # chunk 2 too
    wait_until(lambda: any(r["phase"] == "chunk-wait" for r in in_flight(path)),
               what="the read to wait for the chunk")
    rows = {r["op"]: r for r in in_flight(path)}
    assert rows["write"]["chunk"] == "2" and rows["read"]["chunk"] == "2", rows
    assert rows["write"]["lane"] != "-" and rows["read"]["lane"] != "-"
    wait_until(lambda: not in_flight(path), timeout=20, what="both to finish")


def test_every_thread_of_many_connections_gets_a_slot(vram, connect, tmp_path):
    """Threads of connections that closed give their slots back."""
    path = tmp_path / "requests"
    server = vram("size=16M", f"requests-file={path}")
    for _ in range(40):  # 40 connections x up to 16 threads > 512 slots
        h = connect(server)
        for i in range(16):
            h.aio_pwrite(b"\x03" * 4096, i * 4096)
        while h.aio_in_flight() > 0:
            h.poll(-1)
        h.shutdown()
    wait_until(lambda: len(board(path)[1]) <= 16, what="the closed connections' slots")
    h = connect(server)
    h.pwrite(b"\x04" * 4096, 0)
    assert any(r["op"] == "write" for r in board(path)[1])


def test_the_file_goes_at_exit(vram, tmp_path):
    path = tmp_path / "requests"
    server = vram("size=16M", f"requests-file={path}")
    assert path.exists()
    assert server.stop() == 0
    assert not path.exists()


@pytest.mark.parametrize("value", ["relative/path", ""])
def test_requests_file_must_be_absolute(start_fails, value):
    out = start_fails("size=16M", f"requests-file={value}")
    assert out.returncode != 0
    assert f"requests-file={value}: expected an absolute path" in out.output


def test_requests_file_that_cannot_be_made_is_named(start_fails, tmp_path):
    out = start_fails("size=16M", f"requests-file={tmp_path}/no/such/dir/requests")
    assert out.returncode != 0
    assert f"requests-file={tmp_path}/no/such/dir/requests: cannot create it" in out.output
