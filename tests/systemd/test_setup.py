"""systemd/setup.sh and vram-swap uninstall, with stand-ins for the tools
that would change the machine (apt-get, cmake, nvidia-smi): on a machine
with no usable GPU setup.sh stops before it installs anything, --help
changes nothing, and uninstall removes exactly what the record lists."""
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from support.nbdkit import REPO  # noqa: E402

SETUP = REPO / "systemd" / "setup.sh"
HELPER = REPO / "systemd" / "vram-swap"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="setup.sh and uninstall need root")


def fake_bin(tmp_path, **scripts):
    """A directory of stand-ins: each logs its argv to calls.log, then runs
    its body (default: exit 0)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    log = tmp_path / "calls.log"
    for name in ("apt-get", "cmake", "dpkg-query", "systemctl", *scripts):
        body = scripts.get(name, "exit 0")
        (bin_dir / name).write_text(f'#!/bin/bash\necho "{name} $*" >>{log}\n{body}\n')
        (bin_dir / name).chmod(0o755)
    return bin_dir, log


def run_setup(tmp_path, bin_dir, *args):
    env = {"PATH": f"{bin_dir}:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(tmp_path),
           "PREFIX": str(tmp_path / "prefix")}
    return subprocess.run(["bash", str(SETUP), *args], env=env, capture_output=True, text=True,
                          timeout=60)


def calls(log):
    return log.read_text().splitlines() if log.exists() else []


def test_help_prints_usage_and_changes_nothing(tmp_path):
    bin_dir, log = fake_bin(tmp_path)
    r = run_setup(tmp_path, bin_dir, "--help")
    assert r.returncode == 0, r.stderr
    assert "--uninstall" in r.stdout and "PREFIX" in r.stdout
    assert calls(log) == []
    assert not (tmp_path / "prefix").exists()


def test_an_unknown_option_is_refused(tmp_path):
    bin_dir, log = fake_bin(tmp_path)
    r = run_setup(tmp_path, bin_dir, "--prefix=/opt")
    assert r.returncode == 2
    assert calls(log) == []


def test_a_failing_nvidia_smi_stops_it_before_anything_is_installed(tmp_path):
    msg = ("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
           "Make sure that the latest NVIDIA driver is installed and running.")
    bin_dir, log = fake_bin(tmp_path, **{"nvidia-smi": f'echo "{msg}"; exit 9'})
    r = run_setup(tmp_path, bin_dir)
    assert r.returncode == 1
    assert "no usable NVIDIA GPU: nvidia-smi -L says: NVIDIA-SMI has failed" in r.stderr
    assert "Nothing was installed." in r.stderr
    assert calls(log) == ["nvidia-smi -L"]
    assert not (tmp_path / "prefix").exists()


def test_nvidia_smi_listing_no_gpu_stops_it_too(tmp_path):
    bin_dir, log = fake_bin(tmp_path, **{"nvidia-smi": 'echo "No devices were found"; exit 6'})
    r = run_setup(tmp_path, bin_dir)
    assert r.returncode == 1
    assert "No devices were found. Nothing was installed." in r.stderr
    assert [c for c in calls(log) if not c.startswith("nvidia-smi")] == []


@pytest.mark.skipif(any(Path(d, "nvidia-smi").exists() for d in ("/usr/bin", "/usr/sbin", "/bin")),
                    reason="this machine has an NVIDIA driver")
def test_no_driver_at_all_stops_it_before_anything_is_installed(tmp_path):
    bin_dir, log = fake_bin(tmp_path, ldconfig="exit 0")  # an empty library cache
    r = run_setup(tmp_path, bin_dir)
    assert r.returncode == 1
    assert "no NVIDIA driver: neither nvidia-smi nor libcuda.so.1 is installed" in r.stderr
    assert "Nothing was installed." in r.stderr
    assert [c for c in calls(log) if not c.startswith("ldconfig")] == []


# ---- vram-swap uninstall ---------------------------------------------------

def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def installed_tree(tmp_path):
    """Files as setup.sh would have installed them, and its record."""
    root = tmp_path / "root"
    files = [root / "usr/local/sbin/vram-swap", root / "usr/local/lib/systemd/system/vram-swap@.service",
             root / "usr/lib/nbdkit/plugins/nbdkit-vram-plugin.so",
             root / "usr/local/share/man/man1/nbdkit-vram-plugin.1"]
    for f in files:
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(f"installed {f.name}\n")
    conf_dir = root / "etc/vram-swap"
    conf_dir.mkdir(parents=True)
    default = conf_dir / "default.conf"
    default.write_text("# defaults\n")
    mine = conf_dir / "0.conf"
    mine.write_text("SIZE=7G\n")
    manifest = root / "usr/local/share/nbdkit-vram/installed-files"
    manifest.parent.mkdir(parents=True)
    lines = [f"file - {f}" for f in files]
    lines += [f"config {sha256(c)} {c}" for c in (default, mine)]
    lines.append(f"file - {root / 'usr/local/share/man/man8/vram-swap.8'}")  # already gone: skipped
    manifest.write_text("\n".join(lines) + "\n")
    # An enabled instance and the sleep unit, as systemctl enable leaves them.
    wants = root / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True)
    (wants / "vram-swap@0.service").symlink_to(files[1])
    (wants / "vram-swap-sleep.service").symlink_to(files[1])
    (wants / "ssh.service").symlink_to("/lib/systemd/system/ssh.service")  # not ours
    env = dict(os.environ, VRAM_SWAP_MANIFEST=str(manifest),
               VRAM_SWAP_SYSTEMD_DIR=str(root / "etc/systemd/system"),
               VRAM_SWAP_RUN_DIR=str(tmp_path / "run"))
    (tmp_path / "run").mkdir()
    return root, files, default, mine, manifest, wants, env


def uninstall(env):
    # Without systemd running here, the helper removes the links itself.
    return subprocess.run(["bash", str(HELPER), "uninstall"], env=env, capture_output=True,
                          text=True, timeout=60)


@pytest.mark.skipif(Path("/run/systemd/system").is_dir(), reason="systemd is running here")
def test_uninstall_removes_what_was_recorded_and_keeps_changed_settings(tmp_path):
    root, files, default, mine, manifest, wants, env = installed_tree(tmp_path)
    mine.write_text("SIZE=9G\n")  # changed by the user after the install
    r = uninstall(env)
    assert r.returncode == 0, r.stderr
    assert not any(f.exists() for f in files)
    assert not default.exists() and mine.exists()
    assert f"kept, as they were changed after the install: {mine}" in r.stdout
    assert "removed the 5 files systemd/setup.sh installed" in r.stdout
    assert not manifest.exists() and not manifest.parent.exists()
    assert sorted(p.name for p in wants.iterdir()) == ["ssh.service"]
    assert (root / "etc/vram-swap").exists()  # still holds 0.conf


@pytest.mark.skipif(Path("/run/systemd/system").is_dir(), reason="systemd is running here")
def test_uninstall_refuses_while_vram_swap_is_on_and_removes_nothing(tmp_path):
    root, files, default, mine, manifest, wants, env = installed_tree(tmp_path)
    server = subprocess.Popen(["sleep", "60"])
    try:
        (tmp_path / "run" / "1.pid").write_text(f"{server.pid}\n")
        r = uninstall(env)
    finally:
        server.kill()
        server.wait()
    assert r.returncode == 1
    assert "VRAM swap is on (GPU 1): stop it first" in r.stderr
    assert "nothing was removed" in r.stderr
    assert all(f.exists() for f in files) and manifest.exists()
    assert (wants / "vram-swap@0.service").is_symlink()


def test_uninstall_without_a_record_points_at_the_packages(tmp_path):
    env = dict(os.environ, VRAM_SWAP_MANIFEST=str(tmp_path / "none"),
               VRAM_SWAP_RUN_DIR=str(tmp_path / "run"))
    r = uninstall(env)
    assert r.returncode == 1
    assert "no record of an install by systemd/setup.sh" in r.stderr
    assert "apt-get remove nbdkit-plugin-vram vram-swap" in r.stderr


@pytest.mark.parametrize("args", [["--help"], ["uninstall", "--help"], ["up", "0", "--help"], ["help"]])
def test_helper_help_exits_0_and_does_nothing(tmp_path, args):
    env = dict(os.environ, VRAM_SWAP_MANIFEST=str(tmp_path / "none"),
               VRAM_SWAP_RUN_DIR=str(tmp_path / "run"))
    r = subprocess.run(["bash", str(HELPER), *args], env=env, capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    assert "vram-swap uninstall" in r.stdout
    assert not (tmp_path / "run").exists()


def test_helper_without_a_command_prints_usage_and_fails():
    r = subprocess.run(["bash", str(HELPER)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert "vram-swap up GPU" in r.stderr


def test_setup_passes_shellcheck():
    if not shutil.which("shellcheck"):
        pytest.skip("shellcheck not installed")
    r = subprocess.run(["shellcheck", str(SETUP)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout
