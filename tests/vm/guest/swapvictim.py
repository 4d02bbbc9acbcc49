#!/usr/bin/python3
"""A process whose swapped-out memory goes bad (tests/vm/guest/integrity_swap.sh).

  swapvictim.py --bar BAR --base BYTES [--size 64M] [--seed N] [--cgroup DIR]
                [--device /dev/nbd0] [--json FILE]

1. Fills SIZE of anonymous memory (no transparent huge pages) with a
   pattern that differs on every page: (magic ^ seed, page index), repeated.
2. Sends all of it to swap: madvise(MADV_PAGEOUT), repeated until
   /proc/self/pagemap shows every page swapped (bit 62) and mincore() shows
   none of them still in the swap cache.  MADV_PAGEOUT writes the pages out
   and unmaps them, but each stays in the swap cache (a clean copy in RAM)
   until reclaim frees it; a fault on such a page is served from RAM and
   never reaches the device.  Once the pages are unmapped, MADV_PAGEOUT no
   longer sees them, so the copies are freed by proactive reclaim of the
   memory cgroup this process joins (`memory.reclaim`, --cgroup).
   mincore() on a swapped-out anonymous page says whether its swap-cache
   copy exists (and is up to date).
3. Takes one page's swap entry from pagemap (type: bits 0-4, offset: bits
   5-54, in pages) and checks the layout against the device: page 0 of
   DEVICE is the swap header (SWAPSPACE2 at byte 4086) and DEVICE's byte
   offset*4096 holds exactly that page's pattern (an O_DIRECT read, so
   through nbdkit and the filter, before the flip).
4. Flips one bit of that page in the fake VRAM: BAR (the ivshmem BAR's
   sysfs resource2, mapped read-write) at BASE (the allocation's file
   offset, from the test driver's map file) + offset*4096 + byte.
5. A forked child reads the page (an ordinary memory access) and reports
   what it saw through a pipe, or dies; the parent records how it ended.
6. The parent reads every other page back through /proc/self/mem, which
   turns a page that cannot be swapped in into EIO for read() instead of
   SIGBUS, and counts the pages that read back right, wrong or not at all.

The last line of stdout is a JSON object with the results (also written
to --json).  The script in the shell makes the checks.
"""
import argparse
import ctypes
import errno
import json
import mmap
import os
import random
import resource
import signal
import struct
import sys
import time

PAGE = 4096
MAGIC = 0x5357415056494354  # "SWAPVICT"
MADV_PAGEOUT = 21           # Linux 5.4; Debian 12's Python lacks the constant
PM_SWAP = 1 << 62
PM_PRESENT = 1 << 63
SWP_TYPE_BITS = 5
SWP_OFFSET_MASK = (1 << 55) - 1

libc = ctypes.CDLL(None, use_errno=True)
libc.mincore.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p)


def say(*args):
    print("swapvictim:", *args, flush=True)


def size(text):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    if text[-1:].upper() in units:
        return int(text[:-1]) * units[text[-1:].upper()]
    return int(text)


def pattern(seed, page):
    return struct.pack("<QQ", MAGIC ^ seed, page) * (PAGE // 16)


class Victim:
    def __init__(self, nbytes, seed):
        self.seed = seed
        self.npages = nbytes // PAGE
        self.buf = mmap.mmap(-1, self.npages * PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        # Huge pages would go out and come back as 2 MiB units (or be split
        # on the way): keep it to one 4 KiB page per swap slot.
        self.buf.madvise(mmap.MADV_NOHUGEPAGE)
        self.addr = ctypes.addressof(ctypes.c_char.from_buffer(self.buf))
        for i in range(self.npages):
            self.buf[i * PAGE:(i + 1) * PAGE] = pattern(seed, i)

    def pagemap(self):
        with open("/proc/self/pagemap", "rb") as f:
            raw = os.pread(f.fileno(), 8 * self.npages, (self.addr // PAGE) * 8)
        return struct.unpack(f"<{self.npages}Q", raw)

    def in_core(self):
        """mincore(): 1 for a page that is mapped, or swapped out but still
        in the swap cache (up to date)."""
        vec = (ctypes.c_ubyte * self.npages)()
        if libc.mincore(ctypes.c_void_p(self.addr), self.npages * PAGE, vec) != 0:
            e = ctypes.get_errno()
            raise OSError(e, f"mincore: {os.strerror(e)}")
        return [v & 1 for v in vec]

    def state(self):
        pm = self.pagemap()
        core = self.in_core()
        present = sum(1 for e in pm if e & PM_PRESENT)
        swapped = [i for i, e in enumerate(pm) if e & PM_SWAP]
        cached = sum(1 for i in swapped if core[i])
        return present, len(swapped), cached

    def page_out(self, cgroup, rounds=30):
        """MADV_PAGEOUT, and reclaim of the cgroup, until every page is in
        swap and none in the swap cache.  Returns a dict of what it took."""
        t0 = time.monotonic()
        history = []
        reclaims = 0
        for r in range(1, rounds + 1):
            self.buf.madvise(MADV_PAGEOUT)
            present, swapped, cached = self.state()
            if history and history[-1][1:] == [present, swapped, cached]:
                history[-1][0] += 1
            else:
                history.append([1, present, swapped, cached])
            if swapped == self.npages and cached == 0:
                break
            if present == 0 and cached and cgroup:
                # Written out and unmapped, but still cached: reclaim them
                # (pages still under writeback are skipped; try again).
                try:
                    with open(os.path.join(cgroup, "memory.reclaim"), "w") as f:
                        f.write(str(self.npages * PAGE))
                except OSError as e:
                    if e.errno != errno.EAGAIN:
                        raise
                reclaims += 1
            time.sleep(0.1)
        present, swapped, cached = self.state()
        say(f"paged out after {r} rounds, {reclaims} cgroup reclaims, "
            f"{time.monotonic() - t0:.1f}s: [rounds, present, swapped, in swap cache] {history}")
        return {"pageout_rounds": r, "cgroup_reclaims": reclaims,
                "pageout_seconds": round(time.monotonic() - t0, 2),
                "pages_present": present, "pages_swapped": swapped, "pages_swap_cached": cached}

    def swap_entry(self, page):
        e = self.pagemap()[page]
        if not e & PM_SWAP:
            raise RuntimeError(f"page {page} is not swapped out (pagemap {e:#x})")
        frame = e & SWP_OFFSET_MASK
        return frame & ((1 << SWP_TYPE_BITS) - 1), frame >> SWP_TYPE_BITS

    def read_mem(self, page, count):
        """(data or None, errno) for `count` pages through /proc/self/mem."""
        try:
            with open("/proc/self/mem", "rb", buffering=0) as f:
                data = os.pread(f.fileno(), count * PAGE, self.addr + page * PAGE)
        except OSError as e:
            return None, e.errno
        if len(data) != count * PAGE:
            return None, errno.EIO
        return data, 0


def read_direct(device, offset, length=PAGE):
    """O_DIRECT read, bypassing the block device's page cache."""
    fd = os.open(device, os.O_RDONLY | os.O_DIRECT)
    try:
        buf = mmap.mmap(-1, length)
        n = os.preadv(fd, [buf], offset)
        return bytes(buf[:n])
    finally:
        os.close(fd)


def flip_bit(bar, at, bit):
    """Flips bit `bit` of byte `at` of the BAR; returns (old, new)."""
    fd = os.open(bar, os.O_RDWR | os.O_SYNC)
    try:
        start = at - at % PAGE
        m = mmap.mmap(fd, PAGE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=start)
        old = m[at - start]
        m[at - start] = old ^ (1 << bit)
        new = m[at - start]
        m.close()
        return old, new
    finally:
        os.close(fd)


def touch_in_child(victim, page):
    """A child reads the page with an ordinary memory access.  Returns
    (how it ended, what it said)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        data = victim.buf[page * PAGE:(page + 1) * PAGE]   # SIGBUS here, or data
        want = pattern(victim.seed, page)
        diffs = [(i, data[i] ^ want[i]) for i in range(PAGE) if data[i] != want[i]]
        os.write(w, json.dumps({"diffs": diffs[:8], "ndiffs": len(diffs)}).encode())
        os._exit(3 if diffs else 0)
    os.close(w)
    said = b""
    while chunk := os.read(r, 65536):
        said += chunk
    os.close(r)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        how = f"signal {signal.Signals(os.WTERMSIG(status)).name}"
    else:
        how = f"exit {os.WEXITSTATUS(status)}"
    return how, json.loads(said) if said else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="64M")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--bar", required=True)
    ap.add_argument("--base", type=int, required=True)
    ap.add_argument("--device", default="/dev/nbd0")
    ap.add_argument("--cgroup")
    ap.add_argument("--json")
    a = ap.parse_args()
    res = {}
    if a.cgroup:
        with open(os.path.join(a.cgroup, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))

    t0 = time.monotonic()
    v = Victim(size(a.size), a.seed)
    res["pages"] = v.npages
    say(f"{v.npages} pages at {v.addr:#x} filled in {time.monotonic() - t0:.1f}s")
    res.update(v.page_out(a.cgroup))

    rng = random.Random(a.seed)
    page = rng.randrange(v.npages // 4, 3 * v.npages // 4)
    byte = rng.randrange(PAGE)
    bit = rng.randrange(8)
    swap_type, swap_offset = v.swap_entry(page)
    dev_offset = swap_offset * PAGE
    res.update(page=page, byte=byte, bit=bit, swap_type=swap_type, swap_offset=swap_offset,
               export_offset=dev_offset)
    header = read_direct(a.device, 0)
    res["swap_header_ok"] = header[PAGE - 10:] == b"SWAPSPACE2"
    # The pattern names the page and the seed, so a match is no coincidence.
    # (Only this slot and the header are read: a free slot nearby may be
    # an earlier victim's bad block, which the filter would fail and log.)
    res["device_holds_page"] = read_direct(a.device, dev_offset) == pattern(a.seed, page)
    bar_at = a.base + dev_offset + byte
    old, new = flip_bit(a.bar, bar_at, bit)
    res.update(bar_offset=bar_at, old_byte=old, new_byte=new)
    say(f"page {page}: swap type {swap_type} offset {swap_offset} (export byte {dev_offset}); "
        f"header {'ok' if res['swap_header_ok'] else 'WRONG'}, device holds the page: "
        f"{res['device_holds_page']}; flipped bit {bit} of byte {byte}: BAR byte {bar_at} "
        f"{old:#04x} -> {new:#04x}")

    t1 = time.monotonic()
    how, said = touch_in_child(v, page)
    res["child"] = how
    res["child_saw"] = said
    say(f"child touching page {page}: {how}, said {said}")
    # The page is still a swap entry in the parent (the child had its own
    # copy of the page table): the parent's own attempt.
    data, err = v.read_mem(page, 1)
    res["parent_read_bad_page"] = os.strerror(err) if err else \
        ("right" if data == pattern(a.seed, page) else "wrong")
    res["pages_present_before_verify"] = v.state()[0]

    # Every other page, through /proc/self/mem (EIO, not SIGBUS, for a page
    # that cannot be read): 1 MiB at a time, page by page where that fails.
    # MADV_WILLNEED first starts the swap-ins of a chunk all at once (the
    # bad page left out), so they go to the device as a few large reads
    # instead of one 4 KiB round trip per page fault.
    right, wrong, unreadable = 0, [], []
    step = 256
    for start in range(0, v.npages, step):
        pages = [i for i in range(start, min(start + step, v.npages)) if i != page]
        if not pages:
            continue
        for lo, hi in ((start, min(page, start + step)), (max(page + 1, start), pages[-1] + 1)):
            if lo < hi:
                v.buf.madvise(mmap.MADV_WILLNEED, lo * PAGE, (hi - lo) * PAGE)
        data, err = (None, 1) if page in range(start, start + step) else v.read_mem(start, len(pages))
        if data is not None:
            chunks = [(i, data[(i - start) * PAGE:(i - start + 1) * PAGE]) for i in pages]
        else:
            chunks = []
            for i in pages:
                d, e = v.read_mem(i, 1)
                if d is None:
                    unreadable.append(i)
                else:
                    chunks.append((i, d))
        for i, d in chunks:
            if d == pattern(a.seed, i):
                right += 1
            else:
                wrong.append(i)
    res.update(other_pages_right=right, other_pages_wrong=len(wrong),
               other_pages_unreadable=len(unreadable),
               wrong_pages=wrong[:16], unreadable_pages=unreadable[:16],
               verify_seconds=round(time.monotonic() - t1, 2))
    say(f"other pages: {right} right, {len(wrong)} wrong {wrong[:16]}, "
        f"{len(unreadable)} unreadable {unreadable[:16]} ({res['verify_seconds']}s)")
    out = json.dumps(res)
    if a.json:
        with open(a.json + ".tmp", "w") as f:
            f.write(out + "\n")
        os.rename(a.json + ".tmp", a.json)
    print(out, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
