"""Starting nbdkit with the integrity filter: the checksum table's size
is in the log, and a user who mistypes a parameter, or whose table cannot
be allocated or locked, is told so before anything is served."""
import os
import subprocess
import time

import pytest

from support.nbdkit import NBDKIT, greets, preload_env

from .helpers import SANITIZED, bug_lines
from .test_integrity import FILTER, integrity

BLOCK_SIZE_FORMS = "expected a power of two from 512 to 1M bytes (e.g. 4096, 4K, 64K)"

BAD = [
    (["integrity-block-size=1000"], ["integrity-block-size=1000:", BLOCK_SIZE_FORMS]),
    (["integrity-block-size=256"], ["integrity-block-size=256:", BLOCK_SIZE_FORMS]),
    (["integrity-block-size=2M"], ["integrity-block-size=2M:", BLOCK_SIZE_FORMS]),
    (["integrity-block-size=big"], ["integrity-block-size=big:", BLOCK_SIZE_FORMS]),
    (["integrity-block-size="], ["integrity-block-size=:", BLOCK_SIZE_FORMS]),
    (["integrity-mlock=yes"], ["integrity-mlock=yes: expected 'attempt', 'require' or 'off'"]),
    (["integrity-blocksize=4K"], ["unknown integrity filter parameter 'integrity-blocksize'",
                                  "accepted parameters are integrity-block-size, "
                                  "integrity-mlock"]),
]


@pytest.mark.parametrize("params, fragments", BAD, ids=[" ".join(b[0]) for b in BAD])
def test_bad_parameter_is_named_with_the_accepted_forms(start_fails, tmp_path, params,
                                                        fragments):
    outcome = start_fails("size=64M", *params, filters=[FILTER])
    for fragment in fragments:
        assert fragment in outcome.output, outcome
    assert "nbdkit: error:" in outcome.output
    assert not (tmp_path / "refused.map").exists()  # refused before the GPU was touched


def test_table_size_is_logged(vram):
    server = integrity(vram, "integrity-block-size=4K")
    line = next(line for line in server.log_text().splitlines() if "integrity:" in line)
    # 4 bytes per 4 KiB block, and one bit.
    assert line.startswith('nbdkit: integrity: checking export "" (64.0 MiB) in 4096-byte '
                           'blocks with CRC32C ('), line
    assert "checksum table 66.0 KiB for 16384 blocks" in line, line
    if os.geteuid() == 0:
        assert line.endswith(", locked in RAM"), line


def test_mlock_off_is_reported(vram):
    server = integrity(vram, "integrity-mlock=off")
    assert "not locked in RAM (integrity-mlock=off)" in server.log_text()


def run_memory_server(tmp_path, *params, wrapper=(), timeout=30):
    """nbdkit -f with the filter in front of the memory plugin; returns
    (exit status or None if it started serving, output)."""
    sock = tmp_path / "memory.sock"
    pidfile = tmp_path / "memory.pid"
    cmd = [*wrapper, NBDKIT, "-f", "-U", str(sock), "-P", str(pidfile), f"--filter={FILTER}",
           "memory", *params]
    env = dict(os.environ)
    env.update(preload_env())
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    deadline = time.monotonic() + timeout
    rc = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            rc = proc.returncode
            break
        # nbdkit writes its pidfile before the filter's after_fork, which
        # can still fail: started means it answers.
        if pidfile.exists() and pidfile.read_text().strip() and \
                greets(sock, min(deadline, time.monotonic() + 1)):
            break
        time.sleep(0.02)
    if rc is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    output, _ = proc.communicate()
    assert not bug_lines(output), output
    return rc, output


def test_a_table_that_cannot_be_allocated_stops_nbdkit_at_start(tmp_path):
    # An exabyte export: a petabyte of checksums.
    rc, output = run_memory_server(tmp_path, "size=1E")
    assert rc not in (None, 0), output
    assert ('nbdkit: error: integrity: cannot allocate the checksum table of export "" '
            '(1.0 PiB): Cannot allocate memory') in output


def without_memory_locking():
    """A command prefix that runs nbdkit unable to lock more than 64 KiB:
    even as root (no CAP_IPC_LOCK)."""
    if SANITIZED:
        pytest.skip("AddressSanitizer's mlock() interceptor locks nothing and reports success")
    for tool in ("setpriv", "prlimit"):
        if subprocess.run(["which", tool], capture_output=True).returncode != 0:
            pytest.skip(f"{tool} not installed")
    return ["setpriv", "--bounding-set", "-ipc_lock", "prlimit", "--memlock=65536", "--"]


def test_mlock_require_refuses_to_start_without_locked_memory(tmp_path):
    rc, output = run_memory_server(tmp_path, "size=64M", "integrity-mlock=require",
                                   wrapper=without_memory_locking())
    assert rc not in (None, 0), output
    assert ('integrity-mlock=require: cannot lock the checksum table of export "" (66.0 KiB) '
            'in RAM: mlock: ') in output
    assert "RLIMIT_MEMLOCK" in output


def test_mlock_attempt_warns_and_serves(tmp_path):
    rc, output = run_memory_server(tmp_path, "size=64M", wrapper=without_memory_locking())
    assert rc is None, output  # it served
    assert "nbdkit: integrity: warning: checking export" in output
    assert "NOT locked in RAM: mlock: " in output
