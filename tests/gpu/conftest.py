"""GPU suite: the plugin on a real NVIDIA GPU, through the real driver.

Skipped, with the reason, where no GPU can be used.  Uses C/C++ clients
(nbd-verify, nbd-loadgen, nbdinfo) rather than Python's libnbd, which is
not available on the GPU machine.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from support.nbdkit import BUILD, Server, run_nbdkit  # noqa: E402

VERIFY = BUILD / "tests" / "gpu" / "nbd-verify"


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs a real NVIDIA GPU and its driver")


def _real_driver_env():
    env = dict(os.environ)
    env.pop("NBDKIT_VRAM_LIBCUDA", None)
    return env


def gpu_inventory():
    """Parses --dump-plugin: {'count': N, 'gpus': [{...}], 'error': str}."""
    try:
        r = run_nbdkit([], extra=["--dump-plugin"], env={"NBDKIT_VRAM_LIBCUDA": ""})
    except (OSError, subprocess.SubprocessError) as e:
        return {"count": 0, "gpus": [], "error": f"cannot run nbdkit: {e}"}
    fields = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
    count = int(fields.get("vram_gpu_count", "0"))
    gpus = []
    for i in range(count):
        gpus.append({k[len(f"vram_gpu{i}_"):]: v for k, v in fields.items()
                     if k.startswith(f"vram_gpu{i}_")})
    return {"count": count, "gpus": gpus, "error": fields.get("vram_error", r.stderr.strip())}


_inventory = None


def inventory():
    global _inventory
    if _inventory is None:
        _inventory = gpu_inventory()
    return _inventory


def pytest_collection_modifyitems(config, items):
    inv = inventory()
    if inv["count"] > 0 and VERIFY.exists():
        return
    reason = ("no NVIDIA GPU usable here: " + (inv["error"] or "the driver reports none")
              if inv["count"] == 0 else f"{VERIFY} not built (needs libnbd-dev)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
def gpu():
    return inventory()["gpus"][0]


@pytest.fixture
def vram_server(tmp_path):
    """Factory: a started nbdkit with the plugin on the real GPU."""
    servers = []

    def start(*args, filters=(), name="nbdkit"):
        s = Server(tmp_path, args, env={"NBDKIT_VRAM_LIBCUDA": ""}, filters=filters, name=name)
        servers.append(s)
        return s.wait_ready(timeout=120)

    yield start
    for s in servers:
        s.stop(timeout=120)


def verify(*args, timeout=1800):
    r = subprocess.run([str(VERIFY), *map(str, args)], capture_output=True, text=True,
                       timeout=timeout)
    print(r.stdout, r.stderr)
    return r


def size_of(text):
    m = re.search(r"serving [^(]*\((\d+) bytes\)", text)
    return int(m.group(1)) if m else None


LOAD = Path(__file__).resolve().parents[2] / "bench" / "gpu_load.py"


@pytest.fixture
def compute_job():
    """Another process computing on the GPU (bf16 8192 x 8192 products in a
    loop, bench/gpu_load.py), running until the test ends.  Skipped where
    python3 has no PyTorch with CUDA."""
    probe = subprocess.run([sys.executable, "-c", "import torch; assert torch.cuda.is_available()"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip("no PyTorch with CUDA for the compute job: " + probe.stderr.strip()[-200:])
    job = subprocess.Popen([sys.executable, "-u", str(LOAD), "matmul", "8192"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = job.stdout.readline()
    if line.strip() != "ready":
        job.kill()
        pytest.fail(f"the compute job did not start: {line}{job.stdout.read()}")
    yield job
    assert job.poll() is None, "the compute job ended before the test did"
    job.terminate()
    out, _ = job.communicate(timeout=60)
    print(f"compute job: {out.strip()}")
