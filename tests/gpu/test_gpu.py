"""The plugin on a real GPU: data integrity, a 16 GiB soak, errors."""
import subprocess
import time

import pytest

from conftest import size_of, verify
from support.nbdkit import run_nbdkit

pytestmark = pytest.mark.gpu

GiB = 1 << 30


def test_dump_plugin_lists_the_gpu(gpu):
    assert gpu["name"]
    assert gpu["uuid"].startswith("GPU-")
    assert int(gpu["total"]) > int(gpu["free"]) > 0


def test_serves_the_requested_size_and_says_where(vram_server, gpu):
    s = vram_server("size=2G")
    log = s.log()
    assert size_of(log) == 2 * GiB
    assert gpu["name"] in log
    assert "swap protections:" in log


def test_semantics_zero_trim_fua_flush(vram_server):
    s = vram_server("size=1G")
    assert verify("semantics", s.uri).returncode == 0


def test_random_writes_over_many_connections_read_back_exactly(vram_server):
    s = vram_server("size=2G", "piece-size=64K")
    r = verify("random", s.uri, "--connections", 8, "--ops", 4000, "--span", GiB)
    assert r.returncode == 0, r.stderr
    assert "all bytes match" in r.stdout


def test_soak_16_gib_written_and_verified(vram_server):
    s = vram_server("size=17G")
    r = verify("soak", s.uri, "--bytes", 16 * GiB, "--connections", 16, "--block", 4 << 20)
    assert r.returncode == 0, r.stderr
    assert "17179869184 bytes written and verified: all bytes match" in r.stdout


def test_size_auto_leaves_the_reserve(vram_server, gpu):
    s = vram_server("size=auto", "reserve=4G")
    served = size_of(s.log())
    free = int(gpu["free"])
    # The serving process has its own context, so a little less is free
    # than when --dump-plugin looked.
    assert free - 4 * GiB - 2 * GiB <= served <= free - 4 * GiB


def test_more_than_is_free_is_refused_with_the_free_amount(gpu):
    r = run_nbdkit(["size=100000G"], extra=["-f"], env={"NBDKIT_VRAM_LIBCUDA": ""}, timeout=120)
    assert r.returncode != 0
    assert "of VRAM free" in r.stderr and "less than size=" in r.stderr


def test_second_instance_cannot_take_what_the_first_holds(vram_server, gpu):
    vram_server("size=auto", "reserve=2G", name="first")
    r = run_nbdkit(["size=8G"], extra=["-f"], env={"NBDKIT_VRAM_LIBCUDA": ""}, timeout=120)
    assert r.returncode != 0
    assert "of VRAM free" in r.stderr, r.stderr


def test_device_out_of_range_lists_the_gpus(gpu):
    r = run_nbdkit(["size=1G", "device=57"], extra=["-f"], env={"NBDKIT_VRAM_LIBCUDA": ""},
                   timeout=120)
    assert r.returncode != 0
    assert "device=57: no such GPU" in r.stderr
    assert gpu["name"] in r.stderr


def test_device_by_uuid_and_pci(vram_server, gpu):
    for sel in (gpu["uuid"], gpu["pci"]):
        s = vram_server("size=1G", f"device={sel}", name=f"sel{len(sel)}")
        assert "GPU 0 (" in s.log()
        s.stop()


def test_under_the_stats_filter(vram_server, tmp_path):
    stats = tmp_path / "stats.txt"
    s = vram_server("size=1G", f"statsfile={stats}", filters=["stats"])
    assert verify("random", s.uri, "--connections", 2, "--ops", 300).returncode == 0
    s.stop()
    assert "write:" in stats.read_text()


def test_vram_is_held_while_serving(vram_server, gpu):
    before = _used_mib(gpu)
    s = vram_server("size=8G")
    during = _used_mib(gpu)
    assert during - before >= 8 * 1024
    s.stop()


def _used_mib(gpu):
    out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits",
                          "-i", gpu["uuid"]], capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


def _status(path):
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def _wait_held(path, value, spare):
    """value bytes in the export and spare bytes of spare chunks (the
    status file is refreshed once a second)."""
    want = {"held": str(value + spare), "spare": str(spare)}
    for _ in range(50):
        if {k: _status(path).get(k) for k in want} == want:
            return
        time.sleep(0.1)
    assert {k: _status(path).get(k) for k in want} == want, _status(path)


def test_lazy_vram_follows_data_written_and_trimmed(vram_server, gpu, tmp_path):
    """allocation=lazy on the real driver: VRAM used (nvidia-smi) rises with
    the data written and falls back when it is trimmed."""
    status = tmp_path / "lazy.status"
    before = _used_mib(gpu)
    s = vram_server("size=16G", "allocation=lazy", "lazy-chunk=64M", f"status-file={status}")
    log = s.log()
    assert "allocation=lazy: VRAM is held in chunks of 64.0 MiB while they hold data, plus 1 " \
           "spare chunk" in log, log
    _wait_held(status, 0, 64 << 20)  # the spare is made at start
    idle = _used_mib(gpu)
    assert idle - before < 2048, (before, idle)  # a context and a spare, no export
    r = verify("soak", s.uri, "--bytes", 4 * GiB, "--connections", 8, "--block", 4 << 20)
    assert r.returncode == 0, r.stderr
    _wait_held(status, 4 * GiB, 64 << 20)
    full = _used_mib(gpu)
    print(f"nvidia-smi MiB used: before {before}, lazy idle {idle}, 4 GiB written {full}")
    assert 4096 <= full - idle <= 4096 + 256, (idle, full)
    r = verify("trim", s.uri, "--bytes", 4 * GiB, "--block", 64 << 20)
    assert r.returncode == 0, r.stderr
    _wait_held(status, 0, 64 << 20)  # trimmed chunks beyond the spare are released
    trimmed = _used_mib(gpu)
    print(f"after trimming it all: {trimmed}")
    assert trimmed - idle <= 64, (idle, trimmed)


def test_lazy_semantics_and_random_integrity(vram_server):
    s = vram_server("size=4G", "allocation=lazy", "lazy-chunk=2M")
    assert verify("semantics", s.uri).returncode == 0
    r = verify("random", s.uri, "--connections", 8, "--ops", 4000, "--span", GiB)
    assert r.returncode == 0, r.stderr
    assert "all bytes match" in r.stdout


@pytest.mark.parametrize("params", [("piece-size=64K", "share-gpu=yes"),
                                    ("allocation=lazy", "lazy-chunk=2M", "share-gpu=yes"),
                                    ("piece-size=64K", "share-gpu=auto"),
                                    ("allocation=lazy", "lazy-chunk=2M")],
                         ids=["eager-yes", "lazy-yes", "eager-auto", "lazy-auto"])
def test_beside_a_compute_job_writes_zeroes_trims_read_back_exactly(vram_server, compute_job,
                                                                     params, tmp_path):
    """The copy-engine paths (two-row small writes, zeroes copied from
    pinned memory) while another process's kernels hold the GPU; with
    share-gpu=auto, the switch to them once the job is noticed."""
    status = tmp_path / "status"
    s = vram_server("size=4G", *params, f"status-file={status}")
    r = verify("random", s.uri, "--connections", 8, "--ops", 6000, "--span", GiB,
               "--zero-pct", 30)
    assert r.returncode == 0, r.stderr
    assert "all bytes match" in r.stdout
    assert verify("semantics", s.uri).returncode == 0
    st = _status(status)
    print(f"status: {st}")
    if not any(p.startswith("share-gpu=") for p in params) or "share-gpu=auto" in params:
        assert int(st["shared_gpu_detections"]) >= 1, st


def _wait_status(path, **want):
    want = {k: str(v) for k, v in want.items()}
    for _ in range(100):
        if {k: _status(path).get(k) for k in want} == want:
            return _status(path)
        time.sleep(0.1)
    assert {k: _status(path).get(k) for k in want} == want, _status(path)


@pytest.mark.parametrize("codec", ["lz4", "zstd"])
def test_compressed_mixed_pages_over_many_connections_read_back_exactly(vram_server, codec,
                                                                        tmp_path):
    """compress=: random, same-filled, compressible and half-zero pages,
    written, zeroed and trimmed at every alignment over 8 connections."""
    status = tmp_path / "compressed.status"
    s = vram_server("size=8G", f"compress={codec}", "piece-size=64K", f"status-file={status}")
    assert verify("semantics", s.uri).returncode == 0
    r = verify("random", s.uri, "--connections", 8, "--ops", 4000, "--span", GiB,
               "--zero-pct", 20, "--mixed")
    assert r.returncode == 0, r.stderr
    assert "all bytes match" in r.stdout
    time.sleep(1.5)  # the status file is refreshed once a second
    st = _status(status)
    print(f"status: {st}")
    assert int(st["same_pages"]) > 0 and int(st["whole_pages"]) > 0
    assert int(st["compressed_bytes"]) < int(st["original_bytes"])


def test_compressed_vram_follows_the_pages_written_and_trimmed(vram_server, gpu, tmp_path):
    """8 GiB of mixed pages in a 16 GiB compressed export: VRAM used
    (nvidia-smi) is what the status file says is held, well under the
    pages' size, and goes back when they are trimmed."""
    status = tmp_path / "compressed.status"
    before = _used_mib(gpu)
    s = vram_server("size=16G", "compress=lz4", f"status-file={status}")
    assert "compress=lz4: each 4 KiB page is kept compressed in VRAM" in s.log()
    st = _wait_status(status, held=8 << 20)  # the spares alone
    idle = _used_mib(gpu)
    r = verify("soak", s.uri, "--bytes", 8 * GiB, "--connections", 16, "--block", 1 << 20,
               "--mixed")
    assert r.returncode == 0, r.stderr
    time.sleep(1.5)
    st = _status(status)
    full = _used_mib(gpu)
    held, original = int(st["held"]), int(st["original_bytes"])
    print(f"nvidia-smi MiB used: before {before}, idle {idle}, 8 GiB written {full}; "
          f"status: {st}; pages/VRAM held {original / held:.2f}")
    assert original == 8 * GiB
    assert held < original * 6 // 10
    assert abs((full - idle) * (1 << 20) - (held - (8 << 20))) <= 256 << 20, (idle, full, held)
    r = verify("trim", s.uri, "--bytes", 8 * GiB, "--block", 64 << 20)
    assert r.returncode == 0, r.stderr
    _wait_status(status, held=8 << 20, original_bytes=0)
    trimmed = _used_mib(gpu)
    print(f"after trimming it all: {trimmed}")
    assert trimmed - idle <= 64, (idle, trimmed)


def test_compressed_beside_a_compute_job_read_back_exactly(vram_server, compute_job, tmp_path):
    """Small compressed pages take the copy-engine shapes: exact beside
    another process's kernels."""
    status = tmp_path / "status"
    s = vram_server("size=4G", "compress=lz4", "share-gpu=yes", f"status-file={status}")
    r = verify("random", s.uri, "--connections", 8, "--ops", 6000, "--span", GiB,
               "--zero-pct", 30, "--mixed")
    assert r.returncode == 0, r.stderr
    assert "all bytes match" in r.stdout
    assert verify("semantics", s.uri).returncode == 0
    print(f"status: {_status(status)}")


def _compute_pids(gpu):
    out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid", "--format=csv,noheader",
                          "-i", gpu["uuid"]], capture_output=True, text=True, check=True)
    return {int(p) for p in out.stdout.split()}


def _wait_rest_state(path, state, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = _status(path) if path.exists() else {}
        if st.get("gpu_state") == state:
            return st
        time.sleep(0.05)
    raise AssertionError(f"gpu_state={state} not reached: {_status(path)}")


@pytest.mark.parametrize("params", [("allocation=lazy",), ("compress=lz4",)],
                         ids=["lazy", "compressed"])
def test_idle_release_gives_the_context_back_and_keeps_every_byte(vram_server, gpu, tmp_path,
                                                                  params):
    """idle-release= on the real driver: resting, the server is no longer a
    compute process on the GPU (nvidia-smi), its VRAM stays in use, and
    after many rests and wakes every byte written reads back."""
    status = tmp_path / "rest.status"
    s = vram_server("size=8G", "idle-release=1s", f"status-file={status}", *params)
    pid = s.proc.pid
    r = verify("soak", s.uri, "--bytes", 2 * GiB, "--connections", 8, "--block", 1 << 20,
               *(["--mixed"] if "compress=lz4" in params else []))
    assert r.returncode == 0, r.stderr
    used_awake = _used_mib(gpu)
    _wait_rest_state(status, "resting")
    time.sleep(1)
    resting_pids = _compute_pids(gpu)
    used_resting = _used_mib(gpu)
    print(f"awake: {used_awake} MiB used; resting: {used_resting} MiB, compute pids "
          f"{resting_pids} (server {pid})")
    assert pid not in resting_pids, "resting, but the server still holds a CUDA context"
    # The export's VRAM stays allocated; the context's own goes.
    assert used_resting >= used_awake - 1024, (used_awake, used_resting)
    # Rests and wakes under random traffic with pauses: every byte checked.
    for round in range(5):
        r = verify("random", s.uri, "--connections", 4, "--ops", 2000, "--span", GiB)
        assert r.returncode == 0, r.stderr
        _wait_rest_state(status, "resting")
    st = _status(status)
    print(f"status: {st}")
    assert int(st["wakes"]) >= 5 and st["failed_wakes"] == "0", st
