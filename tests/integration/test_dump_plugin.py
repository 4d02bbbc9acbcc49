"""`nbdkit --dump-plugin vram` lists the GPUs the plugin can see, for
scripts and for a user deciding on device= and size=; on a machine without
a driver it says why, and still succeeds."""
import re

import pytest
from support.nbdkit import FAKECUDA, REPO, run_nbdkit

from .helpers import PRELOAD_EXIT_HANG, SANITIZED, MiB

GPUS = ("name=NVIDIA Fake A100,total=300M,free=200M,"
        "uuid=GPU-01234567-89ab-cdef-0123-456789abcdef,pci=0000:3b:00.0;"
        "name=Desk GPU,total=128M,uuid=GPU-fedcba98-7654-3210-fedc-ba9876543210,"
        "pci=0001:af:1f.0,display=1")


def dump(env):
    r = run_nbdkit([], extra=["--dump-plugin"], env=env, timeout=60)
    assert r.returncode == 0, r
    fields = {}
    for line in r.stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.startswith("vram_"):
            assert key not in fields, f"{key} printed twice"
            fields[key] = value
    return fields, r


def test_dump_lists_every_gpu(tmp_path):
    fields, r = dump({"NBDKIT_VRAM_LIBCUDA": str(FAKECUDA), "FAKECUDA_GPUS": GPUS,
                      "FAKECUDA_DRIVER_VERSION": "12080",
                      "FAKECUDA_MEMORY_FILE": str(tmp_path / "vram")})
    assert re.fullmatch(r"\d+\.\d+\.\d+", fields["vram_version"])
    assert fields["vram_driver_library"] == str(FAKECUDA)
    assert fields["vram_cuda_driver"] == "12.8"
    # The Driver API version the plugin asks for (common/cuda_abi.hpp).
    assert fields["vram_cuda_api"] == "12.0"
    assert fields["vram_gpu_count"] == "2"
    assert "vram_error" not in fields, r.stdout
    expected = {
        "vram_gpu0_name": "NVIDIA Fake A100",
        "vram_gpu0_uuid": "GPU-01234567-89ab-cdef-0123-456789abcdef",
        "vram_gpu0_pci": "0000:3b:00.0",
        "vram_gpu0_total": str(300 * MiB),
        "vram_gpu0_free": str(200 * MiB),
        "vram_gpu0_display": "no",
        "vram_gpu1_name": "Desk GPU",
        "vram_gpu1_uuid": "GPU-fedcba98-7654-3210-fedc-ba9876543210",
        "vram_gpu1_pci": "0001:af:1f.0",
        "vram_gpu1_total": str(128 * MiB),
        "vram_gpu1_free": str(128 * MiB),
        "vram_gpu1_display": "yes",
    }
    assert {k: fields.get(k) for k in expected} == expected
    assert not any(k.startswith("vram_gpu2") for k in fields)
    # nbdkit's own fields are there too.
    assert re.search(r"^name=vram$", r.stdout, re.M)


@pytest.mark.skipif(SANITIZED, reason=PRELOAD_EXIT_HANG)
def test_dump_without_a_driver_says_why(tmp_path):
    fields, r = dump({"NBDKIT_VRAM_LIBCUDA": "/nonexistent/libcuda.so.1"})
    assert fields["vram_error"].startswith(
        "NVIDIA driver not found: cannot load /nonexistent/libcuda.so.1"), r.stdout
    assert fields["vram_gpu_count"] == "0"
    assert "vram_version" in fields
    assert "vram_cuda_driver" not in fields


def test_dump_with_a_driver_but_no_gpu(tmp_path):
    fields, r = dump({"NBDKIT_VRAM_LIBCUDA": str(FAKECUDA), "FAKECUDA_GPUS": ""})
    assert fields["vram_gpu_count"] == "0"
    assert fields["vram_error"].startswith("no NVIDIA GPU found"), r.stdout


def test_the_version_is_the_same_everywhere(tmp_path):
    """One version: the plugin's (from CMakeLists.txt), debian/changelog's
    and the newest heading of NEWS.md (CONTRIBUTING.md, "Releases")."""
    fields, _ = dump({"NBDKIT_VRAM_LIBCUDA": str(FAKECUDA), "FAKECUDA_GPUS": GPUS,
                      "FAKECUDA_MEMORY_FILE": str(tmp_path / "vram")})
    project = re.search(r"project\(nbdkit-vram VERSION (\S+)",
                        (REPO / "CMakeLists.txt").read_text()).group(1)
    changelog = re.match(r"nbdkit-vram \(([^)-]+)", (REPO / "debian" / "changelog").read_text())
    news = re.search(r"^## (\S+)", (REPO / "NEWS.md").read_text(), re.M)
    assert fields["vram_version"] == project
    assert changelog and changelog.group(1) == project, "debian/changelog"
    assert news and news.group(1) == project, "NEWS.md"
