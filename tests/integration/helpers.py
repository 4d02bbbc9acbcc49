"""Helpers shared by the integration tests (the fixtures are in conftest.py).

VramServer is one nbdkit process running the plugin on the fake CUDA
driver, with a private FAKECUDA_MEMORY_FILE (the fake GPUs' memory) and
FAKECUDA_MAP_FILE (where the fake logs each allocation's place in that
file), so a test can look at and poke the "VRAM" behind the export.
"""
import os
import re
import threading
import time
from pathlib import Path

from support.nbd_raw import RawNbdClient  # noqa: F401 (the tests import it from here)
from support.nbdkit import Server

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

# Set when a sanitizer runtime is preloaded into an uninstrumented nbdkit
# (tests/run.sh's ASan and TSan stages).
SANITIZED = bool(os.environ.get("VRAM_NBDKIT_PRELOAD"))

# On Debian 12, a process with libasan preloaded (not linked) and
# libp11-kit loaded (nbdkit, through GnuTLS) that has called strerror() or
# dlerror() deadlocks at exit, in p11-kit's destructor (freelocale waits on
# glibc's setlocale lock).  The plugin is not involved: a 5-line C program
# linked with -lgnutls does the same.  Tests that need such an nbdkit to
# exit are skipped in that configuration.  Seen with libtsan preloaded too.
PRELOAD_EXIT_HANG = ("nbdkit with a sanitizer runtime preloaded hangs at exit after "
                     "strerror()/dlerror() "
                     "(p11-kit destructor deadlock; not the plugin)")

# The plugin's default pipelining piece (piece-size=).
DEFAULT_PIECE = 256 * KiB

# Lines in nbdkit's output that mean a bug, whatever the test checks:
# sanitizer reports, and the fake driver's complaints about misuse of the
# CUDA API (out-of-bounds copies, leaked or double-freed resources).
BUG_PATTERNS = (
    "ERROR: AddressSanitizer",
    "ERROR: LeakSanitizer",
    "WARNING: ThreadSanitizer",
    "FATAL: ThreadSanitizer",
    "runtime error:",
    "fakecuda: out-of-bounds",
    "were live; freed them",
    "without a matching retain",
    "not the start of a live allocation",
    "not a live cuMemHostAlloc buffer",
)


def bug_lines(text):
    return [line for line in text.splitlines() if any(p in line for p in BUG_PATTERNS)]


def first_difference(actual, expected):
    """Offset of the first byte that differs (or where one ends), or None."""
    if actual == expected:
        return None
    n = min(len(actual), len(expected))
    mv_a, mv_e = memoryview(actual), memoryview(expected)
    step = 64 * KiB
    for start in range(0, n, step):
        end = min(start + step, n)
        if mv_a[start:end] != mv_e[start:end]:
            for i in range(start, end):
                if actual[i] != expected[i]:
                    return i
    return n


def assert_same(actual, expected, what="data", base=0):
    """Byte-exact comparison with a readable message (no giant diff)."""
    at = first_difference(actual, expected)
    if at is None:
        return
    if len(actual) != len(expected) and at == min(len(actual), len(expected)):
        raise AssertionError(f"{what}: length {len(actual)}, expected {len(expected)}")
    lo = max(0, at - 8)
    raise AssertionError(
        f"{what}: first difference at offset {base + at:#x} (of {len(expected)} bytes): "
        f"got {bytes(actual[lo:at + 8]).hex()} expected {bytes(expected[lo:at + 8]).hex()} "
        f"(from offset {base + lo:#x})")


def assert_zero(data, what="data", base=0):
    assert_same(data, bytes(len(data)), what, base)


def read_export(h, offset, length, step=4 * MiB):
    """Reads a range of any length in requests of at most `step` bytes."""
    out = bytearray()
    while length > 0:
        n = min(step, length)
        out += h.pread(n, offset)
        offset += n
        length -= n
    return bytes(out)


def run_concurrently(fn, count):
    """fn(0) ... fn(count - 1), each on a thread of its own, all at once;
    returns when every one has."""
    threads = [threading.Thread(target=fn, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def wait_until(predicate, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


_MAP_LINE = re.compile(r"^(alloc|free) gpu=(\d+) dptr=(0x[0-9a-f]+)"
                       r"(?: file_offset=(\d+) size=(\d+))?$")
# Virtual memory management (allocation=lazy): physical allocations and
# their mappings into reserved address space.
_VMM_LINE = re.compile(r"^(create|release|map|unmap) (.*)$")


def _fields(text):
    out = {}
    for item in text.split():
        key, sep, value = item.partition("=")
        if sep:
            out[key] = int(value, 0)
        else:
            out[key] = True  # a flag, e.g. "deferred"
    return out


def parse_map_file(path):
    """Events of FAKECUDA_MAP_FILE: dicts with op and the line's fields
    (alloc/free: gpu, dptr[, file_offset, size]; create: gpu, handle,
    file_offset, size; release: handle; map: dptr, size, handle, offset,
    file_offset; unmap: dptr, size)."""
    path = Path(path)
    if not path.exists():
        return []
    events = []
    for line in path.read_text().splitlines():
        m = _MAP_LINE.match(line)
        if m:
            e = {"op": m[1], "gpu": int(m[2]), "dptr": int(m[3], 16)}
            if m[1] == "alloc":
                e["file_offset"] = int(m[4])
                e["size"] = int(m[5])
            events.append(e)
            continue
        m = _VMM_LINE.match(line)
        assert m, f"unexpected line in {path}: {line!r}"
        events.append({"op": m[1], **_fields(m[2])})
    return events


def _live_bytes(events, add, remove, key):
    """Sum of the sizes of `add` events not yet undone by a `remove` event
    with the same `key`."""
    live = {}
    for e in events:
        if e["op"] == add:
            live[e[key]] = e["size"]
        elif e["op"] == remove:
            live.pop(e[key], None)
    return sum(live.values())


def physical_held(events):
    """Bytes of physical VRAM created and not yet released (VMM)."""
    return _live_bytes(events, "create", "release", "handle")


def mapped_held(events):
    """Bytes of VMM address space mapped now (map/unmap lines)."""
    return _live_bytes(events, "map", "unmap", "dptr")


class VramServer(Server):
    """nbdkit + the plugin + the fake driver, with handles on the fake VRAM."""

    def __init__(self, tmp_path, args, env, filters, name, memory_file, map_file, options=()):
        self.memory_file = Path(memory_file)
        self.map_file = Path(map_file)
        super().__init__(tmp_path, args, env=env, filters=filters, name=name, options=options)

    def log_text(self):
        """Everything nbdkit printed so far (also after stop())."""
        return self.logfile.read_text(errors="replace")

    def allocations(self):
        """The device allocations the plugin made, in order."""
        return [e for e in parse_map_file(self.map_file) if e["op"] == "alloc"]

    def export_allocation(self):
        """The one allocation that backs the export."""
        allocs = self.allocations()
        assert len(allocs) == 1, f"expected one VRAM allocation, the map file has {allocs}"
        return allocs[0]

    def vram_read(self, offset, length):
        """Bytes at `offset` of the export, read from the fake VRAM file."""
        base = self.export_allocation()["file_offset"]
        with open(self.memory_file, "rb") as f:
            f.seek(base + offset)
            return f.read(length)

    def vram_poke(self, offset, data):
        """Writes behind the plugin's back, straight into the fake VRAM."""
        base = self.export_allocation()["file_offset"]
        with open(self.memory_file, "r+b") as f:
            f.seek(base + offset)
            f.write(data)


def read_file_at(path, offset, length):
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(length)


def wait_for(h, cookies):
    """Waits for asynchronous commands; raises nbd.Error if one failed."""
    pending = list(cookies)
    while True:
        pending = [c for c in pending if not h.aio_command_completed(c)]
        if not pending:
            return
        h.poll(-1)
