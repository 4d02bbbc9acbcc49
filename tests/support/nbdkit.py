"""Start and stop real nbdkit processes for the tests.

Imports nothing outside the standard library, so the GPU suite can use it
on machines where Python's libnbd bindings are missing.
"""
import os
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("VRAM_BUILD_DIR", REPO / "build")).resolve()
PLUGIN = BUILD / "plugin" / "nbdkit-vram-plugin.so"
FAKECUDA = BUILD / "tests" / "fakecuda" / "libcuda.so.1"
NBDKIT = os.environ.get("VRAM_NBDKIT", "nbdkit")
# Where nbdkit's own filters are, when not where nbdkit was built to look
# (the GPU machine runs a carried copy of nbdkit).
FILTERDIR = os.environ.get("VRAM_NBDKIT_FILTERDIR")


def filter_arg(name):
    if FILTERDIR and "/" not in name:
        return f"--filter={FILTERDIR}/nbdkit-{name}-filter.so"
    return f"--filter={name}"


def preload_env():
    """Environment for running the sanitizer build inside nbdkit."""
    preload = os.environ.get("VRAM_NBDKIT_PRELOAD")
    if not preload:
        return {}
    return {
        "LD_PRELOAD": preload,
        # nbdkit itself is not built with LeakSanitizer in mind.
        "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1",
    }


def greets(socket_path, deadline):
    """True once nbdkit sends the NBD greeting on `socket_path`: it writes
    its pidfile before the plugin's after_fork (where the GPU is set up)
    has run, and starts accepting connections only after it."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            s.connect(str(socket_path))
            greeting = b""
            while len(greeting) < 18:  # NBDMAGIC IHAVEOPT flags
                chunk = s.recv(18 - len(greeting))
                if not chunk:
                    return False
                greeting += chunk
            if not greeting.startswith(b"NBDMAGIC"):
                return False
            # Leave politely (client flags, then NBD_OPT_ABORT), so the
            # probe leaves no error in nbdkit's log.
            s.sendall(struct.pack(">I", 3) + b"IHAVEOPT" + struct.pack(">II", 2, 0))
            s.recv(64)
            return True
        except OSError:
            return False


class Server:
    """One nbdkit process serving one export on a unix socket."""

    def __init__(self, tmp_path, args, env=None, filters=(), plugin=None, name="nbdkit",
                 options=()):
        self.dir = Path(tmp_path)
        self.socket = self.dir / f"{name}.sock"
        self.pidfile = self.dir / f"{name}.pid"
        self.logfile = self.dir / f"{name}.log"
        self.uri = f"nbd+unix:///?socket={self.socket}"
        cmd = [NBDKIT, "-f", "-U", str(self.socket), "-P", str(self.pidfile), *options]
        for f in filters:
            cmd.append(filter_arg(f))
        cmd.append(str(plugin or PLUGIN))
        cmd += list(args)
        self.cmd = cmd
        full_env = dict(os.environ)
        full_env.update(preload_env())
        full_env.update(env or {})
        self._log = open(self.logfile, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                     env=full_env)

    def wait_ready(self, timeout=30):
        """nbdkit writes its pidfile once it accepts connections."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nbdkit exited with {self.proc.returncode}:\n{self.log()}")
            if self.pidfile.exists() and self.pidfile.read_text().strip() and \
                    self._greets(deadline):
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"nbdkit not ready after {timeout}s:\n{self.log()}")

    def _greets(self, deadline):
        return greets(self.socket, deadline)

    def alive(self):
        return self.proc.poll() is None

    def log(self):
        if not self._log.closed:
            self._log.flush()
        return self.logfile.read_text(errors="replace")

    def stop(self, timeout=30):
        """SIGTERM, then wait; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


def run_nbdkit(args, env=None, filters=(), plugin=None, timeout=60, extra=()):
    """Runs nbdkit to completion (for start-up errors and --dump-plugin)."""
    cmd = [NBDKIT, *extra]
    for f in filters:
        cmd.append(filter_arg(f))
    cmd.append(str(plugin or PLUGIN))
    cmd += list(args)
    full_env = dict(os.environ)
    full_env.update(preload_env())
    full_env.update(env or {})
    return subprocess.run(cmd, env=full_env, capture_output=True, text=True, timeout=timeout)
