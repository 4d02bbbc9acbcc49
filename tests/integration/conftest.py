"""Fixtures for the integration tests: real nbdkit processes running the
plugin on the fake CUDA driver (tests/fakecuda), driven with Debian's
python3-libnbd.

  vram(*params, env=, filters=, gpus=, ...)  starts nbdkit, returns a
                                             VramServer once it serves
  connect(server)                            a connected libnbd handle
  start_fails(*params, ...)                  runs nbdkit -f expecting it to
                                             refuse to start; returns its
                                             exit status and output

Every server is stopped at the end of the test; its exit status must be 0
and its output free of sanitizer reports and of the fake driver's
complaints about CUDA misuse.  When a test fails, the output of every
nbdkit it started is printed.
"""
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nbd  # noqa: E402  Debian's python3-libnbd: run with /usr/bin/python3

from support.nbdkit import FAKECUDA, NBDKIT, PLUGIN, greets, preload_env  # noqa: E402

from .helpers import PRELOAD_EXIT_HANG, SANITIZED, VramServer, bug_lines  # noqa: E402

# A test must not depend on the caller's environment: forget any fake
# driver settings or driver override inherited from it.
for _key in list(os.environ):
    if _key.startswith("FAKECUDA_") or _key == "NBDKIT_VRAM_LIBCUDA":
        del os.environ[_key]

# One small GPU: the plugin zeroes its whole allocation, so sizes stay small.
SMALL_GPU = "total=256M"


def pytest_configure(config):
    if not PLUGIN.exists():
        raise pytest.UsageError(f"{PLUGIN} not found: build first, or set VRAM_BUILD_DIR")
    if not FAKECUDA.exists():
        raise pytest.UsageError(f"{FAKECUDA} not found: build first, or set VRAM_BUILD_DIR")


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, "report_" + report.when, report)


def _test_failed(node):
    return any(getattr(getattr(node, "report_" + when, None), "failed", False)
               for when in ("setup", "call"))


def fake_env(tmp_path, name, gpus, env, memory_file=None, map_file=None):
    """Environment pointing the plugin at the fake driver, with private
    memory and map files."""
    full = {
        "NBDKIT_VRAM_LIBCUDA": str(FAKECUDA),
        "FAKECUDA_GPUS": gpus,
        "FAKECUDA_MEMORY_FILE": str(memory_file or Path(tmp_path) / f"{name}.vram"),
        "FAKECUDA_MAP_FILE": str(map_file or Path(tmp_path) / f"{name}.map"),
    }
    full.update(env or {})
    return full


def _with_swap_safety(params, swap_safety):
    params = list(params)
    if swap_safety is not None and not any(p.startswith("swap-safety=") for p in params):
        params.append(f"swap-safety={swap_safety}")
    return params


@pytest.fixture
def vram(tmp_path, request):
    """Factory: vram("size=64M", env={...}, filters=[...]) -> VramServer.

    options=[...] go to nbdkit itself, before the plugin ("-t", "1").

    swap_safety="off" is added unless the test says otherwise (mlockall
    would lock the fake driver's whole memory mapping).  Pass ready=False
    to get the process without waiting for it to serve.
    """
    servers = []

    def start(*params, env=None, filters=(), gpus=SMALL_GPU, swap_safety="off",
              name=None, memory_file=None, ready=True, options=()):
        name = name or f"nbdkit{len(servers)}"
        full_env = fake_env(tmp_path, name, gpus, env, memory_file)
        server = VramServer(tmp_path, _with_swap_safety(params, swap_safety), full_env,
                            filters, name, full_env["FAKECUDA_MEMORY_FILE"],
                            full_env["FAKECUDA_MAP_FILE"], options)
        servers.append(server)
        if ready:
            server.wait_ready()
        return server

    yield start

    problems = []
    for server in servers:
        was_alive = server.alive()
        rc = server.stop(timeout=10 if SANITIZED else 30)
        text = server.log_text()
        if SANITIZED and was_alive and rc == -9:
            warnings.warn(f"{request.node.name}: {server.logfile.name}: killed after SIGTERM: "
                          f"{PRELOAD_EXIT_HANG}")
        elif was_alive and rc != 0:
            problems.append(f"{server.cmd[-1]}: nbdkit exited with status {rc} when stopped")
        problems += [f"{server.logfile.name}: {line}" for line in bug_lines(text)]

    if _test_failed(request.node) or problems:
        for server in servers:
            print(f"----- {' '.join(server.cmd)}\n{server.log_text()}")
    else:
        # Each fake GPU's memory is a file of up to a few hundred MiB.
        for server in servers:
            server.memory_file.unlink(missing_ok=True)
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


class Connector:
    """connect(server[, name]) -> a connected libnbd handle.

    nbdkit (1.32) waits for its clients before it exits on SIGTERM, so a
    test that stops a server itself calls connect.close_all() first."""

    def __init__(self):
        self.handles = []

    def __call__(self, server, name=None):
        h = nbd.NBD()
        if name:
            h.set_handle_name(name)
        h.connect_uri(server.uri)
        self.handles.append(h)
        return h

    def close_all(self):
        for h in self.handles:
            try:
                h.shutdown()
            except nbd.Error:
                pass  # the server or the connection is already gone
        self.handles.clear()


@pytest.fixture
def connect(vram):
    """A Connector; every handle is shut down before the servers stop."""
    connector = Connector()
    yield connector
    connector.close_all()


class Outcome:
    def __init__(self, cmd, returncode, output, elapsed):
        self.cmd = cmd
        self.returncode = returncode
        self.output = output
        self.elapsed = elapsed

    def __repr__(self):
        return f"<nbdkit exited {self.returncode} after {self.elapsed:.2f}s:\n{self.output}>"


def run_foreground(tmp_path, params, env, filters=(), timeout=60):
    """Runs nbdkit -f until it exits; if it starts serving instead, stops it
    and reports that as returncode None."""
    sock = Path(tmp_path) / "refused.sock"
    pidfile = Path(tmp_path) / "refused.pid"
    pidfile.unlink(missing_ok=True)
    cmd = [NBDKIT, "-f", "-U", str(sock), "-P", str(pidfile)]
    cmd += [f"--filter={f}" for f in filters]
    cmd += [str(PLUGIN), *params]
    full_env = dict(os.environ)
    full_env.update(preload_env())
    full_env.update(env)
    started = time.monotonic()
    proc = subprocess.Popen(cmd, env=full_env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    returncode = None
    deadline = started + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            returncode = proc.returncode
            break
        # The pidfile comes before after_fork: only the greeting says it serves.
        if pidfile.exists() and pidfile.read_text().strip() and \
                greets(sock, time.monotonic() + 0.2):
            proc.terminate()  # it serves: that is the failure
            break
        time.sleep(0.02)
    else:
        proc.kill()
    output, _ = proc.communicate()
    return Outcome(cmd, returncode, output, time.monotonic() - started)


@pytest.fixture
def start_fails(tmp_path):
    """start_fails("size=64M", env=..., gpus=...) -> Outcome: runs
    `nbdkit -f -U sock plugin params` and checks that it refuses to start
    (exits non-zero before serving)."""

    def run(*params, env=None, gpus=SMALL_GPU, filters=(), swap_safety="off", timeout=60):
        full_env = fake_env(tmp_path, "refused", gpus, env)
        outcome = run_foreground(tmp_path, _with_swap_safety(params, swap_safety), full_env,
                                 filters, timeout)
        assert outcome.returncode is not None, f"nbdkit started serving: {outcome!r}"
        assert outcome.returncode != 0, f"nbdkit exited 0: {outcome!r}"
        assert not bug_lines(outcome.output), outcome.output
        return outcome

    return run
