"""A user writes to the export from several connections at once, with
requests of every size from 1 byte to 4 MiB at any offset, and reads back
exactly what was written, from any connection; the bytes are really in
(fake) VRAM."""
import random
from concurrent.futures import ThreadPoolExecutor

import nbd
import pytest

from .helpers import DEFAULT_PIECE, KiB, MiB, assert_same, read_export, wait_for

EXPORT = 64 * MiB
WRITERS = 4
REGION = EXPORT // WRITERS  # each writer owns one region: no write-write races

VARIANTS = {
    "defaults": ([], {}, DEFAULT_PIECE),
    # Small chunks and a slow fake GPU: a 4 MiB request is 256 pipelined
    # chunks, with copies still in flight while the next chunk is staged.
    "piece-16k-slow-gpu": (["piece-size=16K"], {"FAKECUDA_LATENCY_US": "150"}, 16 * KiB),
    # Fewer lanes than connections: requests queue for a lane.
    "one-lane": (["lanes=1", "piece-size=64K"], {"FAKECUDA_LATENCY_US": "20"}, 64 * KiB),
}


def edge_cases(chunk):
    """(offset, length) pairs, relative to a region, that are easy to get
    wrong: tiny, unaligned, one either side of each chunk multiple, odd
    chunk counts (staging-slot reuse), the largest request."""
    sizes = [1, 2, 511, 512, 513, 4095, 4096, 4097,
             chunk - 1, chunk, chunk + 1, 2 * chunk - 1, 2 * chunk + 1, 3 * chunk,
             3 * chunk + 7, 4 * MiB - 1, 4 * MiB]
    cases, offset = [], 3
    for size in sizes:
        cases.append((offset, size))
        offset = (offset + size + 4093) % (REGION - 4 * MiB)
    cases.append((REGION - 4 * MiB, 4 * MiB))  # right up to the region's end
    cases.append((REGION - 1, 1))
    return cases


def random_case(rng):
    size = min(4 * MiB, int(2 ** rng.uniform(0, 22.01)))
    return rng.randrange(0, REGION - size + 1), size


def writer(server_uri, index, seed, shadow, chunk, writes):
    rng = random.Random(seed)
    h = nbd.NBD()
    h.set_handle_name(f"writer{index}")
    h.connect_uri(server_uri)
    base = index * REGION
    try:
        cases = edge_cases(chunk) + [random_case(rng) for _ in range(writes)]
        rng.shuffle(cases)
        for offset, size in cases:
            data = rng.randbytes(size)
            h.pwrite(data, base + offset)
            shadow[base + offset:base + offset + size] = data
            # Read back part of the region (any size, any alignment) on
            # this connection too.
            r_off, r_size = random_case(rng)
            got = h.pread(r_size, base + r_off)
            assert_same(got, shadow[base + r_off:base + r_off + r_size],
                        f"writer {index}: read of {r_size} bytes", base + r_off)
    finally:
        h.shutdown()


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_concurrent_random_writes_read_back_byte_exact(vram, connect, variant):
    params, env, chunk = VARIANTS[variant]
    server = vram("size=64M", *params, env=env)
    seed = random.randrange(1 << 30)
    print(f"seed {seed}")
    shadow = bytearray(EXPORT)  # the export starts zeroed

    with ThreadPoolExecutor(WRITERS) as pool:
        futures = [pool.submit(writer, server.uri, i, seed + i, shadow, chunk, 25)
                   for i in range(WRITERS)]
        for f in futures:
            f.result()

    reader = connect(server, "reader")
    assert_same(read_export(reader, 0, EXPORT), shadow, "export read back by another connection")
    assert_same(server.vram_read(0, EXPORT), shadow, "fake VRAM file")


def test_many_requests_in_flight_on_one_connection(vram, connect):
    """More requests in flight than lanes: each one still lands whole."""
    server = vram("size=64M", "lanes=2", "piece-size=32K", env={"FAKECUDA_LATENCY_US": "50"})
    h = connect(server)
    rng = random.Random(7)
    pieces = []
    offset = 5
    while offset + 3 * MiB < EXPORT:
        size = rng.randrange(1, 3 * MiB)
        pieces.append((offset, rng.randbytes(size)))
        offset += size + rng.randrange(0, 8 * KiB)
    wait_for(h, [h.aio_pwrite(data, off) for off, data in pieces])

    buffers = [(off, nbd.Buffer(len(data))) for off, data in pieces]
    wait_for(h, [h.aio_pread(buf, off) for off, buf in buffers])
    for (off, data), (_, buf) in zip(pieces, buffers):
        assert_same(buf.to_bytearray(), data, f"aio read of {len(data)} bytes", off)
        assert_same(server.vram_read(off, len(data)), data, "fake VRAM file", off)
