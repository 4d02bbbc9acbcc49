#!/usr/bin/python3
"""Memory that goes to swap and stays there until told to go.

    lazy_hog.py MIB STOPFILE SEED [STRIDE]

Maps MIB MiB of private anonymous memory and writes every 4 KiB page
(a tag of SEED and the page's index at its start, so no page is all
zeroes and none can stand in for another), prints "hog: dirtied ...",
then sleeps until STOPFILE exists.  Then it reads every STRIDE-th page
back (default 64: one page in 256 KiB, 64 in each 16 MiB of swap; 0: none)
and checks its tag, which brings those pages back in through the swap
device, and prints "hog: verified ...".  Reading every page would be the
swap's worst case (pages written in order are evicted in order) and takes
minutes under TCG; a sample catches a chunk given back while it held data
(it would read as zeroes) or a page read from the wrong place.  It exits 0
if every tag was right, 1 otherwise; its pages and their swap slots are
freed as it exits.  Used by lazy_swap.sh and vram_swap_lifecycle.sh.
"""
import mmap
import os
import struct
import sys
import time

PAGE = 4096
TAG = struct.Struct("<QQ")


def main(argv):
    mib, stop, seed = int(argv[1]), argv[2], int(argv[3])
    stride = int(argv[4]) if len(argv) > 4 else 64
    size = mib << 20
    mem = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    t0 = time.monotonic()
    for page in range(size // PAGE):
        TAG.pack_into(mem, page * PAGE, seed, page)
    print(f"hog: dirtied {mib} MiB ({size // PAGE} pages) in {time.monotonic() - t0:.1f}s",
          flush=True)
    while not os.path.exists(stop):
        time.sleep(0.2)
    if stride <= 0:
        print("hog: exiting without verifying", flush=True)
        return 0
    t0 = time.monotonic()
    bad = []
    pages = range(0, size // PAGE, stride)
    for page in pages:
        got = TAG.unpack_from(mem, page * PAGE)
        if got != (seed, page):
            bad.append((page, got))
    print(f"hog: verified {len(pages)} pages (one in {stride}) in "
          f"{time.monotonic() - t0:.1f}s, {len(bad)} wrong", flush=True)
    for page, got in bad[:10]:
        print(f"hog: page {page} holds tag {got}, expected {(seed, page)}", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
