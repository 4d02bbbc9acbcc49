"""The log tells the administrator what is being served (size, GPU, lanes,
piece size) and which swap protections are in force, so that a swap
device that could deadlock never goes unnoticed."""
import re
import subprocess
import sys

import pytest

from .helpers import PRELOAD_EXIT_HANG, SANITIZED, MiB

TWO_GPUS = ("name=Alpha,total=128M,pci=0000:3b:00.0;"
            "name=Beta,total=96M,pci=0000:af:00.0")
# Small: mlockall locks the fake GPU's whole memory mapping too.
TINY_GPU = "name=Tiny,total=48M"

# Can this machine set PR_SET_IO_FLUSHER (needs CAP_SYS_RESOURCE)?  Asked
# in a child process, which is thrown away with the flag.
PROBE = r"""
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
r = libc.prctl(57, 1, 0, 0, 0)  # PR_SET_IO_FLUSHER
print("ok" if r == 0 else os.strerror(ctypes.get_errno()))
"""


def io_flusher_possible():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         check=True).stdout.strip()
    return out == "ok", out


def proc_status(pid, field):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def test_log_names_size_device_lanes_and_pieces(vram):
    server = vram("size=40M", "device=1", "lanes=3", "piece-size=64K", gpus=TWO_GPUS)
    assert ("serving 40.0 MiB (41943040 bytes) of VRAM on GPU 1 (Beta, 0000:af:00.0); "
            "3 I/O lanes, 64.0 KiB pieces" in server.log_text()), server.log_text()


def test_the_old_name_of_piece_size_still_works_and_says_so(vram):
    server = vram("size=40M", "chunk-size=64K")
    log = server.log_text()
    assert "64.0 KiB pieces" in log, log
    assert "chunk-size= is the old name of piece-size=" in log, log


def test_log_names_the_size_after_backoff(vram):
    server = vram("size=max", "step=16M", "min-size=16M", gpus="total=100M",
                  env={"FAKECUDA_ALLOC_FAIL_ABOVE": "70M"})
    # 100M, 84M refused; 68M fits.
    assert f"serving 68.0 MiB ({68 * MiB} bytes) of VRAM on GPU 0" in server.log_text()


def test_swap_safety_off_warns(vram):
    server = vram("size=32M", swap_safety="off")
    log = server.log_text()
    assert ("warning: swap protections are off (swap-safety=off): do not use this export "
            "as swap" in log), log
    assert proc_status(server.proc.pid, "VmLck") == "0 kB"


def test_swap_safety_attempt_says_which_protections_are_in_force(vram):
    server = vram("size=32M", "lanes=2", gpus=TINY_GPU, swap_safety=None)  # the default
    log = server.log_text()
    m = re.search(r"swap protections: io-flusher (on|OFF), mlockall (on(?: \([^)]*\))?|OFF)", log)
    assert m, log
    flusher_on, mlock_on = m[1] == "on", m[2] != "OFF"

    possible, why = io_flusher_possible()
    assert flusher_on == possible, f"the log says io-flusher {m[1]}, but prctl says {why}"
    if not flusher_on:
        assert "PR_SET_IO_FLUSHER: " in log

    locked_kb = int(proc_status(server.proc.pid, "VmLck").split()[0])
    if not (SANITIZED and mlock_on):  # ASan's mlockall() does nothing, successfully
        assert mlock_on == (locked_kb > 0), f"log: {m[0]!r}; VmLck {locked_kb} kB"
    if not mlock_on:
        assert "mlockall: " in log

    if flusher_on and mlock_on:
        assert "warning: swap protections" not in log
    else:
        assert "As swap, this export may deadlock at zero free RAM" in log


def test_swap_safety_require_refuses_what_it_cannot_apply(vram):
    possible, why = io_flusher_possible()
    if SANITIZED and not possible:
        pytest.skip(PRELOAD_EXIT_HANG)
    server = vram("size=32M", "lanes=2", gpus=TINY_GPU, swap_safety="require", ready=False)
    try:
        server.wait_ready()
        started = True
    except RuntimeError:
        started = False
    log = server.log_text()
    if possible:
        # Both protections must then really be in force, without a warning.
        assert started, log
        assert re.search(r"swap protections: io-flusher on, mlockall on", log), log
        assert "warning:" not in log
        if not SANITIZED:  # ASan's mlockall() does nothing, successfully
            assert int(proc_status(server.proc.pid, "VmLck").split()[0]) > 0
    else:
        # Refused in get_ready, before serving, naming what failed and why.
        assert not started, log
        assert server.proc.returncode != 0
        assert f"swap-safety=require: PR_SET_IO_FLUSHER: {why}" in log, log
        if why == "Operation not permitted":
            assert "needs CAP_SYS_RESOURCE" in log
        assert not server.allocations(), "VRAM was allocated although nbdkit refused to start"


def smaps(pid):
    """(header fields, {key: kB}) for each mapping of the process."""
    out = []
    for line in open(f"/proc/{pid}/smaps"):
        if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
            fields = line.split(None, 5)
            out.append((fields, {}))
        elif ":" in line and out:
            key, value = line.split(":", 1)
            if value.strip().endswith("kB"):
                out[-1][1][key] = int(value.split()[0])
    return out


def test_mlockall_faults_in_code_but_not_large_zero_fill(vram):
    """What is mapped when the protections go on is faulted in and locked
    (the plugin's code: no page-in in the I/O path), except large anonymous
    mappings nothing touches: nbdkit 1.32's executable carries a 192 MiB
    zero-initialised segment that would otherwise take 192 MiB of RAM."""
    if SANITIZED:
        pytest.skip("ASan's mlockall() does nothing")
    server = vram("size=32M", "lanes=2", gpus=TINY_GPU, swap_safety=None)
    if "mlockall on" not in server.log_text():
        pytest.skip("mlockall is not possible here: " + server.log_text())
    maps = smaps(server.proc.pid)
    code = [kb for fields, kb in maps
            if fields[-1].strip().endswith("nbdkit-vram-plugin.so") and "x" in fields[1]]
    assert code, "the plugin's code is mapped"
    for kb in code:
        assert kb["Rss"] == kb["Size"] and kb["Locked"] == kb["Rss"], kb
    large = [(fields[0], kb) for fields, kb in maps
             if len(fields) == 5 and kb["Size"] >= 16 * 1024 and fields[1].startswith("rw")]
    for where, kb in large:
        print("large anonymous mapping", where, kb["Size"], "kB,", kb["Rss"], "kB resident")
        assert kb["Rss"] < kb["Size"] // 4, (where, kb)
    if len(large) == 0:
        print("no large anonymous mapping to check (nbdkit without the 192 MiB segment?)")
    assert "could not fault in" not in server.log_text()
