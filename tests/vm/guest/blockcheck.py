"""Pattern writer and checker for a block device, with O_DIRECT.

Runs in the guest (/usr/bin/python3 from the host's root) against
/dev/nbd0, and is imported by the host-side tests to check the fake VRAM
file with the same pattern.  Every 4 KiB block holds its own device offset
and a seed, repeated, so a block that lands in the wrong place, a stale
block and a block from another run are all told apart.

    blockcheck.py write  DEV OFFSET LENGTH BS SEED [--cpu N]
    blockcheck.py verify DEV OFFSET LENGTH BS SEED [--cpu N]
    blockcheck.py zeroes DEV OFFSET LENGTH BS
    blockcheck.py faults DEV OFFSET LENGTH BS SEED SECONDS STOPFILE

Sizes take K/M/G suffixes.  Exit status 0 when everything matched; the
last line printed is a JSON summary.  `faults` alternates writes and
verified reads over the range until SECONDS pass or STOPFILE appears,
counting blocks that succeed, fail with an I/O error, or read back wrong.
"""
import errno
import json
import mmap
import os
import struct
import sys
import time

BLOCK = 4096


def size(text):
    text = text.strip().upper()
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
    return int(text[:-1] if mult > 1 else text) * mult


def pattern(offset, length, seed):
    """The expected bytes of [offset, offset+length), 4 KiB aligned."""
    assert offset % BLOCK == 0 and length % BLOCK == 0
    return b"".join(struct.pack("<QQ", off, seed) * (BLOCK // 16)
                    for off in range(offset, offset + length, BLOCK))


def first_bad_block(data, offset, seed):
    """Device offset of the first 4 KiB block not matching, or None."""
    for i in range(0, len(data), BLOCK):
        if data[i:i + BLOCK] != struct.pack("<QQ", offset + i, seed) * (BLOCK // 16):
            return offset + i
    return None


def describe(block):
    """What a 4 KiB block seems to hold, for error messages."""
    if block == bytes(len(block)):
        return "zeroes"
    off, seed = struct.unpack_from("<QQ", block)
    return f"pattern of offset {off:#x} seed {seed}" \
        if block == struct.pack("<QQ", off, seed) * (BLOCK // 16) else "garbage"


class Device:
    def __init__(self, path, bs):
        self.fd = os.open(path, os.O_RDWR | os.O_DIRECT)
        self.bs = bs
        self.buf = mmap.mmap(-1, bs)  # page aligned, as O_DIRECT needs

    def write(self, offset, data):
        self.buf[:] = data
        n = os.pwritev(self.fd, [self.buf], offset)
        if n != len(data):
            raise OSError(errno.EIO, f"short write {n} at {offset:#x}")

    def read(self, offset):
        n = os.preadv(self.fd, [self.buf], offset)
        if n != self.bs:
            raise OSError(errno.EIO, f"short read {n} at {offset:#x}")
        return bytes(self.buf)


def pin(args):
    if "--cpu" in args:
        i = args.index("--cpu")
        os.sched_setaffinity(0, {int(args[i + 1])})
        del args[i:i + 2]


def cmd_write(dev, offset, length, bs, seed):
    d = Device(dev, bs)
    for off in range(offset, offset + length, bs):
        d.write(off, pattern(off, bs, seed))
    return {"written": length}


def cmd_verify(dev, offset, length, bs, seed):
    d = Device(dev, bs)
    for off in range(offset, offset + length, bs):
        data = d.read(off)
        bad = first_bad_block(data, off, seed)
        if bad is not None:
            blk = data[bad - off:bad - off + BLOCK]
            return {"verified": off - offset, "mismatch_at": bad, "found": describe(blk)}
    return {"verified": length}


def cmd_zeroes(dev, offset, length, bs):
    d = Device(dev, bs)
    zero = bytes(bs)
    for off in range(offset, offset + length, bs):
        data = d.read(off)
        if data != zero:
            i = next(i for i in range(0, bs, BLOCK) if data[i:i + BLOCK] != zero[:BLOCK])
            return {"zeroes": off - offset, "nonzero_at": off + i,
                    "found": describe(data[i:i + BLOCK])}
    return {"zeroes": length}


def cmd_faults(dev, offset, length, bs, seed, seconds, stopfile):
    """Writes then reads back each block in turn, round and round."""
    d = Device(dev, bs)
    counts = {"ok_writes": 0, "ok_reads": 0, "eio_writes": 0, "eio_reads": 0,
              "mismatches": 0, "ok_after_first_error": 0, "other_errors": 0}
    first_error = None
    written = set()
    deadline = time.monotonic() + seconds
    off = offset
    while time.monotonic() < deadline and not os.path.exists(stopfile):
        for op in ("write", "read"):
            try:
                if op == "write":
                    d.write(off, pattern(off, bs, seed))
                    written.add(off)
                else:
                    data = d.read(off)
                    if off in written and first_bad_block(data, off, seed) is not None:
                        counts["mismatches"] += 1
                        print(f"MISMATCH at {off:#x}: {describe(data[:BLOCK])}", flush=True)
                counts[f"ok_{op}s"] += 1
                if first_error is not None:
                    counts["ok_after_first_error"] += 1
            except OSError as e:
                if e.errno == errno.EIO:
                    # Every write of a block carries the same bytes, so a
                    # block once written must read back as them, failed
                    # writes or not.
                    counts[f"eio_{op}s"] += 1
                else:
                    counts["other_errors"] += 1
                    print(f"{op} at {off:#x}: {e}", flush=True)
                if first_error is None:
                    first_error = time.monotonic()
                    print(f"first error: {op} at {off:#x}: {e}", flush=True)
        off += bs
        if off >= offset + length:
            off = offset
    return counts


def main(argv):
    args = argv[1:]
    pin(args)
    cmd, dev = args[0], args[1]
    nums = [size(a) for a in args[2:5]]
    if cmd == "write":
        summary = cmd_write(dev, *nums, int(args[5]))
        ok = True
    elif cmd == "verify":
        summary = cmd_verify(dev, *nums, int(args[5]))
        ok = summary["verified"] == nums[1]
    elif cmd == "zeroes":
        summary = cmd_zeroes(dev, *nums)
        ok = summary["zeroes"] == nums[1]
    elif cmd == "faults":
        summary = cmd_faults(dev, *nums, int(args[5]), float(args[6]), args[7])
        ok = summary["mismatches"] == 0 and summary["other_errors"] == 0
    else:
        print(__doc__, file=sys.stderr)
        return 2
    summary.update(cmd=cmd, offset=nums[0], length=nums[1], bs=nums[2], ok=ok)
    print(json.dumps(summary), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
