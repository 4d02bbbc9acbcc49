"""The vram-swap helper and its units, where no kernel nbd driver is
needed: unit files, settings, the root-only socket, one server per GPU.
(The up -> pressure -> status -> down life cycle runs in the VM suite.)"""
import os
import re
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import nbd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from support.nbdkit import FAKECUDA, PLUGIN, REPO  # noqa: E402

HELPER = REPO / "systemd" / "vram-swap"


def helper_env(tmp_path, **extra):
    env = dict(os.environ)
    env.update({
        "VRAM_SWAP_CONFIG_DIR": str(tmp_path / "conf"),
        "VRAM_SWAP_RUN_DIR": str(tmp_path / "run"),
        "VRAM_SWAP_PLUGIN": str(PLUGIN),
        "NBDKIT_VRAM_LIBCUDA": str(FAKECUDA),
        "FAKECUDA_GPUS": "total=256M",
        "FAKECUDA_MEMORY_FILE": str(tmp_path / "vram"),
    })
    env.update(extra)
    (tmp_path / "conf").mkdir(exist_ok=True)
    return env


def run(args, env, timeout=60):
    return subprocess.run([str(HELPER), *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def write_config(tmp_path, text, name="0.conf"):
    (tmp_path / "conf").mkdir(exist_ok=True)
    (tmp_path / "conf" / name).write_text(text)


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_units_pass_systemd_analyze_verify(tmp_path):
    units = []
    for name in ("vram-swap@.service", "vram-swap-sleep.service"):
        text = (REPO / "systemd" / f"{name}.in").read_text().replace("@SBINDIR@", str(HELPER.parent))
        # verify needs an instance to check a template
        target = tmp_path / name.replace("@.", "@0.")
        target.write_text(text)
        units.append(str(target))
    # Documentation= names the plugin's man page: where man-db is
    # installed, verify looks it up, so point it at the one we built.
    pages = [Path(PLUGIN).parent / "nbdkit-vram-plugin.1",
             Path(PLUGIN).parents[1] / "systemd" / "vram-swap.8"]
    for page in pages:
        assert page.exists(), f"the build renders the man page: {page}"
        section = tmp_path / "man" / f"man{page.suffix[1:]}"
        section.mkdir(parents=True, exist_ok=True)
        (section / page.name).symlink_to(page)
    env = dict(os.environ, MANPATH=str(tmp_path / "man"))
    r = subprocess.run(["systemd-analyze", "verify", *units], capture_output=True, text=True,
                       cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    assert "vram-swap" not in r.stderr, r.stderr  # no warning about our units


def test_unit_never_signals_the_server_and_never_restarts_it():
    unit = (REPO / "systemd" / "vram-swap@.service.in").read_text()
    for line in ("KillMode=process", "KillSignal=SIGCONT", "SendSIGKILL=no", "Restart=no",
                 "OOMScoreAdjust=-1000", "LimitMEMLOCK=infinity",
                 "ExecStop=@SBINDIR@/vram-swap detach %I"):
        assert line in unit.splitlines(), line
    helper = HELPER.read_text()
    connect = helper[helper.index("\nconnect() {"):]
    connect = connect[:connect.index("\n}\n")]
    assert "-unix" in connect
    code = [l for l in helper.splitlines() if not l.strip().startswith("#")]
    assert not [l for l in code if "-persist" in l]


@pytest.mark.skipif(not shutil.which("shellcheck"), reason="shellcheck not installed")
def test_helper_passes_shellcheck():
    r = subprocess.run(["shellcheck", str(HELPER), str(REPO / "systemd" / "setup.sh")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout


@pytest.mark.parametrize("config, message", [
    ("SIZE=lots\n", "SIZE=lots: expected auto, max or a size"),
    ("SIZE=7G\nPRIORITY=-5\n", "PRIORITY=-5: expected a swap priority from 0 to 32767"),
    ("PRIORITY=40000\n", "PRIORITY=40000"),
    ("CONNECTIONS=0\n", "CONNECTIONS=0: expected 1 to 16"),
    ("CONNECTIONS=many\n", "CONNECTIONS=many"),
    ("DISCARD=always\n", "DISCARD=always: expected no, once, pages or both"),
    ("RESERVE=some\n", "RESERVE=some: expected a size"),
    ("SWAP_SAFETY=off\n", "SWAP_SAFETY=off: expected require (default) or attempt"),
    ("FILTERS=log;rm\n", "FILTERS=log;rm"),
    ('PLUGIN_ARGS="device=1"\n', "set device with its own key"),
    ("PLUGIN_ARGS=allocation=lazy\n", "set allocation with its own key"),
    ("PLUGIN_ARGS=status-file=/tmp/x\n", "vram-swap sets status-file"),
    ("PLUGIN_ARGS=requests-file=/tmp/x\n", "vram-swap sets status-file and requests-file"),
    ("ALLOCATION=sometimes\n", "ALLOCATION=sometimes: expected eager"),
    ("COMPRESS=gzip\n", "COMPRESS=gzip: expected none, lz4, zstd or zstd:LEVEL"),
    ("COMPRESS=lz4\nALLOCATION=eager\n", "ALLOCATION=eager with COMPRESS=lz4"),
    ("PLUGIN_ARGS=compress=lz4\n", "set compress with its own key"),
    ("IDLE_RELEASE=soon\n", "IDLE_RELEASE=soon: expected off or a time such as 30s"),
    ("IDLE_RELEASE=0s\n", "IDLE_RELEASE=0s: expected off"),
    ("IDLE_RELEASE=5m\nALLOCATION=eager\n", "ALLOCATION=eager with IDLE_RELEASE=5m"),
    ("PLUGIN_ARGS=idle-release=5m\n", "set idle-release with its own key"),
    ("PLUGIN_ARGS=wait\n", "'wait' is not key=value"),
    ("THREADS=0\n", "THREADS=0: expected nbdkit's threads per connection, 1 to 64"),
    ("MIN_FREE_KB=lots\n", "MIN_FREE_KB=lots: expected the kB of RAM the kernel keeps free"),
    ("MIN_FREE_KB=99999999\n", "MIN_FREE_KB=99999999"),
    ("THREADS=lots\n", "THREADS=lots"),
    ("COLOUR=blue\n", "unknown setting COLOUR"),
    ("just words\n", "expected KEY=VALUE"),
])
def test_bad_settings_are_named_with_file_and_line(tmp_path, config, message):
    write_config(tmp_path, "# comment\n" + config)
    r = run(["serve", "0"], helper_env(tmp_path))
    assert r.returncode == 1
    # line 1 is the comment; the offending setting is the last line
    assert f"0.conf:{1 + len(config.splitlines())}:" in r.stderr, r.stderr
    assert message in r.stderr, r.stderr
    assert not (tmp_path / "run" / "0.pid").exists()


def test_default_conf_applies_when_a_gpu_has_none(tmp_path):
    write_config(tmp_path, "SIZE=bad\n", name="default.conf")
    r = run(["serve", "1"], helper_env(tmp_path))
    assert "default.conf:1: SIZE=bad" in r.stderr


def test_not_a_gpu(tmp_path):
    r = run(["up", "first"], helper_env(tmp_path))
    assert r.returncode == 1
    assert "'first' is not a GPU" in r.stderr


def test_unknown_command(tmp_path):
    r = run(["launch"], helper_env(tmp_path))
    assert r.returncode == 1 and "unknown command 'launch'" in r.stderr


def start_serving(tmp_path, config, **extra_env):
    """`vram-swap serve 0` on the test driver, as the unit's ExecStart runs it."""
    env = helper_env(tmp_path, **extra_env)
    write_config(tmp_path, config)
    log = open(tmp_path / "serve.log", "w")
    proc = subprocess.Popen([str(HELPER), "serve", "0"], env=env, stdout=log, stderr=subprocess.STDOUT)
    sock = tmp_path / "run" / "0.sock"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if subprocess.run(["nbdinfo", "--size", f"nbd+unix:///?socket={sock}"],
                          capture_output=True).returncode == 0:
            break
        assert proc.poll() is None, (tmp_path / "serve.log").read_text()
        time.sleep(0.1)
    return env, proc, sock


@pytest.fixture
def served(tmp_path):
    env, proc, sock = start_serving(tmp_path, "SIZE=128M\nSWAP_SAFETY=attempt\n")
    yield env, proc, sock
    proc.terminate()
    proc.wait(30)


def status_vram_column(env):
    r = run(["status"], env)
    assert r.returncode == 0, r.stderr
    line = [l for l in r.stdout.splitlines() if l.startswith("0 ")]
    assert line, r.stdout
    return line[0].split()[-1]


def test_status_shows_the_vram_held_eager(served):
    env, proc, sock = served
    assert status_vram_column(env) == "128M"


def test_status_shows_the_vram_held_lazy(tmp_path):
    """ALLOCATION=lazy: status follows the VRAM held (the plugin's status
    file), from the spares alone to one chunk more after a write."""
    env, proc, sock = start_serving(
        tmp_path, "SIZE=128M\nSWAP_SAFETY=attempt\nALLOCATION=lazy\nPLUGIN_ARGS=lazy-chunk=2M\n")

    def wait_for_column(value):
        deadline = time.monotonic() + 10
        while status_vram_column(env) != value and time.monotonic() < deadline:
            time.sleep(0.2)
        assert status_vram_column(env) == value

    try:
        wait_for_column("8M")  # the 4 spare chunks, no data
        h = nbd.NBD()
        h.connect_uri(f"nbd+unix:///?socket={sock}")
        h.pwrite(b"x" * 4096, 64 << 20)
        h.shutdown()
        wait_for_column("10M")  # one chunk of data and the spares
    finally:
        proc.terminate()
        proc.wait(30)
    assert not (tmp_path / "run" / "0.status").exists()


def test_status_shows_what_compressed_pages_take(tmp_path):
    """COMPRESS=lz4: a compressed, lazy export; status says what the pages
    take, from the plugin's status file."""
    env, proc, sock = start_serving(
        tmp_path, "SIZE=512M\nSWAP_SAFETY=attempt\nCOMPRESS=lz4\nPLUGIN_ARGS=lazy-spare=0\n")
    try:
        args = nbdkit_cmdline(proc.pid)
        assert b"compress=lz4" in args and b"allocation=lazy" in args
        h = nbd.NBD()
        h.connect_uri(f"nbd+unix:///?socket={sock}")
        assert h.get_size() == 512 << 20  # past the 256 MiB GPU: the logical size
        h.pwrite(b"swapped text, " * 292 + b"12345678", 0)  # compresses
        h.pwrite(bytes(4096) + b"\xab" * 4096, 4096)        # same-filled, twice
        h.pwrite(os.urandom(4096), 3 * 4096)                # stored whole
        h.shutdown()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            out = run(["status"], env).stdout
            if "2 stored" in out:
                break
            time.sleep(0.2)
        line = [l for l in out.splitlines() if l.startswith("GPU 0: compress=lz4: ")]
        assert line, out
        # One chunk: a run for the compressed page's size class, one for whole pages.
        assert re.fullmatch(r"GPU 0: compress=lz4: 16\.0K of pages in 4\.\dK compressed, "
                            r"2\.0M of VRAM held \(ratio 0\.01\); 2 same-filled pages "
                            r"\(no VRAM\), 2 stored, 1 of them whole \(incompressible\)",
                            line[0]), line
    finally:
        proc.terminate()
        proc.wait(30)


def test_status_says_when_the_gpu_rests_and_how_long_wakes_take(tmp_path):
    """IDLE_RELEASE=: the server gives its context back after the idle
    time, keeps the data, and status says resting, then awake with the
    wake's figures."""
    env, proc, sock = start_serving(
        tmp_path, "SIZE=128M\nSWAP_SAFETY=attempt\nIDLE_RELEASE=1\nPLUGIN_ARGS=lazy-spare=0\n",
        FAKECUDA_CTX_CREATE_US="20000")
    try:
        args = nbdkit_cmdline(proc.pid)
        assert b"idle-release=1" in args and b"allocation=lazy" in args
        h = nbd.NBD()
        h.connect_uri(f"nbd+unix:///?socket={sock}")
        data = os.urandom(65536)
        h.pwrite(data, 1 << 20)

        def status_line(want):
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                out = run(["status"], env).stdout
                line = [l for l in out.splitlines() if l.startswith("GPU 0: idle-release=1s: ")]
                if line and want in line[0]:
                    return line[0]
                time.sleep(0.2)
            raise AssertionError(f"no status line with {want!r}: {out}")

        line = status_line(": resting for ")
        assert re.fullmatch(r"GPU 0: idle-release=1s: resting for \d+s; [1-9]\d* rests, \d+ wakes "
                            r"\(last [\d.]+ ms, longest [\d.]+ ms\), 0 failed; \d+s rested in all",
                            line), line
        wakes = int(re.search(r"(\d+) wakes", line).group(1))
        assert h.pread(len(data), 1 << 20) == data
        line = status_line(f" {wakes + 1} wakes ")
        last = float(re.search(r"last ([\d.]+) ms", line).group(1))
        assert last >= 20, line  # the context's creation, at least
        h.shutdown()
    finally:
        proc.terminate()
        proc.wait(30)


def test_serve_runs_nbdkit_in_the_foreground_on_a_root_only_socket(served, tmp_path):
    env, proc, sock = served
    # ExecStart's process is nbdkit itself (exec), so systemd's MAINPID is the server.
    assert (tmp_path / "run" / "0.pid").read_text().strip() == str(proc.pid)
    assert stat.S_IMODE((tmp_path / "run").stat().st_mode) == 0o700
    r = subprocess.run(["runuser", "-u", "nobody", "--", "nbdinfo", "--size",
                        f"nbd+unix:///?socket={sock}"], capture_output=True, text=True)
    assert r.returncode != 0
    assert "Permission denied" in r.stderr
    out = subprocess.run(["nbdinfo", "--size", f"nbd+unix:///?socket={sock}"],
                         capture_output=True, text=True)
    assert out.stdout.strip() == str(128 << 20)


def nbdkit_cmdline(pid):
    return (Path("/proc") / str(pid) / "cmdline").read_bytes().split(b"\0")


def nbdkit_version():
    out = subprocess.run(["nbdkit", "--version"], capture_output=True, text=True).stdout
    return tuple(int(x) for x in out.split()[1].split(".")[:3])


@pytest.mark.parametrize("version, affected", [
    ("1.32.3", False), ("1.32.4", True), ("1.32.5", True), ("1.33.1", True), ("1.33.9", True),
    ("1.33.10", False), ("1.34.0", False), ("1.42.2", False), ("2.0.0", False), ("", False),
    ("1.x", False)])
def test_which_nbdkit_releases_abort_on_a_dead_connection(version, affected):
    r = subprocess.run(["bash", "-euc", sourced(f'nbdkit_aborts_on_dead_connection "{version}"')],
                       capture_output=True, text=True)
    assert r.returncode == (0 if affected else 1), r.stderr


def test_the_server_keeps_a_requests_file(served, tmp_path):
    """Where each thread is in its request, for a hang dump."""
    env, proc, sock = served
    path = tmp_path / "run" / "0.requests"
    assert f"requests-file={path}".encode() in nbdkit_cmdline(proc.pid)
    assert path.read_text().startswith(f"# nbdkit-vram requests-file: pid {proc.pid}")


def test_one_thread_per_connection_on_an_nbdkit_that_aborts(served):
    """This machine's nbdkit (Debian 12: 1.32.5) has the bug: the server
    runs with --threads=1."""
    env, proc, sock = served
    if not (1, 32, 4) <= nbdkit_version() < (1, 33, 10):
        pytest.skip(f"nbdkit {nbdkit_version()} does not have the bug")
    assert b"--threads=1" in nbdkit_cmdline(proc.pid)


def test_threads_setting_and_a_fixed_nbdkit(tmp_path):
    """THREADS= wins; an nbdkit without the bug keeps its own default."""
    env, proc, sock = start_serving(tmp_path, "SIZE=64M\nSWAP_SAFETY=attempt\nTHREADS=4\n")
    try:
        assert b"--threads=4" in nbdkit_cmdline(proc.pid)
    finally:
        proc.terminate()
        proc.wait(30)
    fixed = tmp_path / "nbdkit-1.34"
    fixed.write_text('#!/bin/sh\n[ "$1" = --version ] && { echo "nbdkit 1.34.0"; exit 0; }\n'
                     f'exec {shutil.which("nbdkit")} "$@"\n')
    fixed.chmod(0o755)
    (tmp_path / "run").mkdir(exist_ok=True)
    env, proc, sock = start_serving(tmp_path, "SIZE=64M\nSWAP_SAFETY=attempt\n",
                                    VRAM_SWAP_NBDKIT=str(fixed))
    try:
        assert not [a for a in nbdkit_cmdline(proc.pid) if a.startswith(b"--threads")]
    finally:
        proc.terminate()
        proc.wait(30)


def min_free(tmp_path, calls, start=2737, config=""):
    """Runs vram-swap's raise_min_free / restore_min_free (after
    load_config) over a fake vm.min_free_kbytes; `calls` is a list of
    (function, instance); live instances are the pid files in run/ naming
    this test's own pid.  Returns (value after each call, outputs)."""
    sysctl = tmp_path / "min_free_kbytes"
    sysctl.write_text(f"{start}\n")
    (tmp_path / "run").mkdir(exist_ok=True)
    write_config(tmp_path, config, name="default.conf")
    env = helper_env(tmp_path, VRAM_SWAP_MIN_FREE_FILE=str(sysctl))
    values, outputs = [], []
    for fn, inst in calls:
        r = subprocess.run(["bash", "-c", f'source "{HELPER}"; load_config {inst}; {fn} {inst}'],
                           env=env, capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stdout + r.stderr
        values.append(int(sysctl.read_text()))
        outputs.append(r.stdout)
    return values, outputs


def test_min_free_is_raised_while_on_and_restored_after_the_last(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "1.pid").write_text(f"{os.getpid()}\n")  # GPU 1 still serving
    values, out = min_free(tmp_path, [("raise_min_free", 0), ("raise_min_free", 1),
                                      ("restore_min_free", 0)])
    assert values == [65536, 65536, 65536], out  # GPU 1 still needs it
    assert "vm.min_free_kbytes: 2737 -> 65536 while VRAM swap is on" in out[0] and out[1] == ""
    (run_dir / "1.pid").unlink()
    values, out = min_free(tmp_path, [("restore_min_free", 1)], start=65536)
    assert values == [2737] and "back to 2737" in out[0], out
    assert not (run_dir / "min_free_kbytes.saved").exists()


def test_min_free_is_never_lowered_and_keep_leaves_it(tmp_path):
    values, out = min_free(tmp_path, [("raise_min_free", 0), ("restore_min_free", 0)],
                           start=131072)
    assert values == [131072, 131072] and out == ["", ""], out
    values, out = min_free(tmp_path, [("raise_min_free", 0)], config="MIN_FREE_KB=keep\n")
    assert values == [2737], out
    values, out = min_free(tmp_path, [("raise_min_free", 0), ("restore_min_free", 0)],
                           config="MIN_FREE_KB=8192\n")
    assert values == [8192, 2737], out


# Issues big reads without waiting for them, says so, then waits to be killed.
GREEDY_CLIENT = r"""
import nbd, sys
h = nbd.NBD()
h.connect_uri(sys.argv[1])
for i in range(8):
    h.aio_pread(nbd.Buffer(4 << 20), i << 20)
print("in flight", flush=True)
sys.stdin.read()
"""


def test_connections_killed_mid_request_leave_the_others_served(tmp_path):
    """As the unit runs it: clients die with requests in flight (what the
    kernel's connection does when it times out), and the server goes on
    serving the others, with their data.  On nbdkit 1.32.5 with THREADS=16
    (its default) the server aborted within the 20 kills in 3 of 3 runs."""
    env, proc, sock = start_serving(tmp_path, "SIZE=64M\nSWAP_SAFETY=attempt\n",
                                    FAKECUDA_LATENCY_US="200")
    uri = f"nbd+unix:///?socket={sock}"
    try:
        other = nbd.NBD()
        other.connect_uri(uri)
        for i in range(20):
            client = subprocess.Popen([sys.executable, "-c", GREEDY_CLIENT, uri],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            try:
                assert client.stdout.readline().strip() == "in flight"
                client.kill()
            finally:
                client.wait()
            data = bytes([i + 1]) * 65536
            other.pwrite(data, 48 << 20)
            assert other.pread(65536, 48 << 20) == data
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
        other.shutdown()
    finally:
        proc.terminate()
        proc.wait(30)
    assert "Assertion" not in (tmp_path / "serve.log").read_text()


def test_a_second_server_for_the_same_gpu_is_refused(served, tmp_path):
    env, proc, sock = served
    r = run(["serve", "0"], env)
    assert r.returncode == 1
    assert f"VRAM swap on GPU 0 is already running (nbdkit pid {proc.pid})" in r.stderr
    assert proc.poll() is None  # the first one is untouched


def test_status_lists_the_server(served, tmp_path):
    env, proc, sock = served
    r = run(["status"], env)
    assert r.returncode == 0, r.stderr
    line = [l for l in r.stdout.splitlines() if l.startswith("0 ")]
    assert line and str(proc.pid) in line[0], r.stdout


def test_detach_stops_a_server_whose_device_is_not_swap(served, tmp_path):
    env, proc, sock = served
    r = run(["detach", "0"], dict(env, MAINPID=str(proc.pid)))
    assert r.returncode == 0, r.stderr
    assert proc.wait(30) is not None
    assert not sock.exists()


# The check after nbd-client that every connection of a multi-connection
# device has a kernel worker reading it (docs/dev/vm-tests.md, finding 9), run
# over a made-up /proc.  The VM tests run it over the guest's real one.
def fake_proc(tmp_path, tasks):
    proc = tmp_path / "proc"
    shutil.rmtree(proc, ignore_errors=True)
    proc.mkdir()
    for pid, (comm, wchan) in enumerate(tasks, start=100):
        add_task(proc, pid, comm, wchan)
    return proc


def add_task(proc, pid, comm, wchan):
    d = proc / str(pid)
    d.mkdir()
    (d / "wchan").write_text(wchan)  # the kernel writes no newline here
    (d / "comm").write_text(comm + "\n")


def sourced(script):
    """A bash script that runs after sourcing vram-swap, which defines its
    functions and runs nothing, as the VM tests' lib.sh takes them."""
    return f'source "{HELPER}"\n{script}'


def receivers_ready(proc, dev, want, wait=1):
    env = dict(os.environ, VRAM_SWAP_PROC=str(proc), VRAM_SWAP_READER_WAIT=str(wait))
    t0 = time.monotonic()
    r = subprocess.run(["bash", "-euc", sourced(f'nbd_receivers_ready {dev} {want}')],
                       env=env, capture_output=True, text=True, timeout=30)
    assert r.stderr == ""
    return r.returncode, time.monotonic() - t0


IDLE_RESCUER = ("nbd0-recv", "rescuer_thread")
OTHER_TASKS = [
    ("systemd", "do_epoll_wait"),
    ("kworker/u9:7-nbd0-recv", "worker_thread"),  # ran one, now idle
    ("kworker/u9:8+nbd1-recv", "unix_stream_read_generic"),  # another device
    ("kworker/u9:9+nbd10-recv", "unix_stream_read_generic"),
    ("nbd1-recv+nbd1-recv", "unix_stream_read_generic"),  # its rescuer, busy
]


def reader(n):
    return (f"kworker/u9:{n}+nbd0-recv", "unix_stream_read_generic")


def test_receivers_ready_when_each_connection_has_a_worker(tmp_path):
    proc = fake_proc(tmp_path, [IDLE_RESCUER, *OTHER_TASKS, *map(reader, range(4))])
    assert receivers_ready(proc, "/dev/nbd0", 4)[0] == 0
    assert receivers_ready(proc, "/dev/nbd0", 5)[0] == 2  # one short


def test_receivers_not_ready_while_a_worker_is_missing(tmp_path):
    proc = fake_proc(tmp_path, [IDLE_RESCUER, *OTHER_TASKS, *map(reader, range(3))])
    rc, took = receivers_ready(proc, "/dev/nbd0", 4, wait=2)
    assert rc == 2
    assert took >= 1  # it waited for the worker before giving up


def test_receivers_ready_waits_for_a_late_worker(tmp_path):
    proc = fake_proc(tmp_path, [IDLE_RESCUER, *map(reader, range(3))])
    late = subprocess.Popen(["bash", "-c", f"sleep 1; mkdir {proc}/999; "
                             f"printf x > {proc}/999/wchan; "
                             f"echo kworker/u9:3+nbd0-recv > {proc}/999/comm"])
    rc, took = receivers_ready(proc, "/dev/nbd0", 4, wait=10)
    late.wait()
    assert rc == 0 and 0.9 < took < 9


@pytest.mark.parametrize("rescuer", [
    ("nbd0-recv+nbd0-recv", "unix_stream_read_generic"),  # as the kernel names it busy
    ("nbd0-recv", "unix_stream_read_generic"),
    ("nbd0-recv", "sk_wait_data"),
])
def test_receivers_not_ready_when_the_rescuer_took_a_connection(tmp_path, rescuer):
    proc = fake_proc(tmp_path, [rescuer, *OTHER_TASKS, *map(reader, range(3))])
    rc, took = receivers_ready(proc, "/dev/nbd0", 4, wait=10)
    assert rc == 1
    assert took < 5  # at once, not after the wait


# nbd_attach: nbd-client, the check above, and up to two more attaches.  A
# fake nbd-client logs its calls and, at its Nth attach, leaves the fake
# /proc as the Nth outcome says: "ready" (a worker per connection),
# "rescuer" (the rescuer busy with one), "none" (no worker), "fail"
# (nbd-client fails).
FAKE_NBD_CLIENT = r"""#!/bin/bash
echo "$*" >>"$FAKE_LOG"
[[ $1 == -d ]] && exit 0
n=$(grep -vc '^-d' "$FAKE_LOG")
outcome=$(sed -n "${n}p" "$FAKE_OUTCOMES")
rm -rf "$VRAM_SWAP_PROC"; mkdir -p "$VRAM_SWAP_PROC/1"
echo systemd >"$VRAM_SWAP_PROC/1/comm"
task() { mkdir "$VRAM_SWAP_PROC/$1"; echo "$2" >"$VRAM_SWAP_PROC/$1/comm"
         printf %s "$3" >"$VRAM_SWAP_PROC/$1/wchan"; }
case $outcome in
  ready) task 100 kworker/u9:1+nbd0-recv sk_wait_data; task 101 kworker/u9:2+nbd0-recv sk_wait_data ;;
  rescuer) task 100 kworker/u9:1+nbd0-recv sk_wait_data; task 102 nbd0-recv+nbd0-recv sk_wait_data ;;
  none) ;;
  fail) exit 1 ;;
esac
"""


def nbd_attach(tmp_path, outcomes, conns=2):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "nbd-client"
    fake.write_text(FAKE_NBD_CLIENT)
    fake.chmod(0o755)
    (tmp_path / "outcomes").write_text("\n".join(outcomes) + "\n")
    log = tmp_path / "calls"
    log.write_text("")
    env = dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}", FAKE_LOG=str(log),
               FAKE_OUTCOMES=str(tmp_path / "outcomes"), VRAM_SWAP_PROC=str(tmp_path / "proc"),
               VRAM_SWAP_READER_WAIT="1")
    script = sourced('warn() { echo "warning: $*" >&2; }\n'
                     f'nbd_attach /dev/nbd0 {conns} -unix /run/x.sock /dev/nbd0 -C {conns} -b 4096 -swap')
    r = subprocess.run(["bash", "-euc", script], env=env, capture_output=True, text=True,
                       timeout=60)
    return r, log.read_text().splitlines()


def test_attach_checks_once_when_every_connection_is_read(tmp_path):
    r, calls = nbd_attach(tmp_path, ["ready"])
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert calls == ["-unix /run/x.sock /dev/nbd0 -C 2 -b 4096 -swap"]


def test_attach_again_after_the_rescuer_took_a_connection(tmp_path):
    r, calls = nbd_attach(tmp_path, ["rescuer", "none", "ready"])
    assert r.returncode == 0, r.stderr
    assert [c.split()[0] for c in calls] == ["-unix", "-d", "-unix", "-d", "-unix"]
    assert calls[1] == "-d /dev/nbd0"
    assert "left one of its 2 connections unread" in r.stderr
    assert "started no reader for some of its 2 connections" in r.stderr
    assert "attaching again (try 3 of 3)" in r.stderr
    assert "CONNECTIONS=1 avoids this" not in r.stderr


def test_attach_gives_up_after_three_tries_and_says_what_it_means(tmp_path):
    r, calls = nbd_attach(tmp_path, ["rescuer"] * 3)
    assert r.returncode == 0, r.stderr  # attached: a slow connection, not a lost one
    assert [c.split()[0] for c in calls] == ["-unix", "-d", "-unix", "-d", "-unix"]
    assert r.stderr.count("connections unread") == 3
    assert "CONNECTIONS=1 avoids this" in r.stderr


def test_attach_fails_when_nbd_client_does(tmp_path):
    r, calls = nbd_attach(tmp_path, ["fail"])
    assert r.returncode == 1 and len(calls) == 1


def test_attach_with_one_connection_does_not_check(tmp_path):
    r, calls = nbd_attach(tmp_path, ["none"], conns=1)
    assert r.returncode == 0 and r.stderr == "" and len(calls) == 1


# The device side of attach, on a made-up /sys/block and fakes for the
# tools that would change the machine.  nbd-client takes a device as the
# kernel does: it fails if another client holds it, and marks it held
# (its pid file) half a second in, so two attaches at once overlap.
FAKE_CLAIMING_NBD_CLIENT = r"""#!/bin/bash
echo "$*" >>"$FAKE_LOG"
if [[ $1 == -d ]]; then
  rm -f "$VRAM_SWAP_SYS_BLOCK/${2#/dev/}/pid"; echo 0 >"$VRAM_SWAP_SYS_BLOCK/${2#/dev/}/size"; exit 0
fi
dev=${3#/dev/}
sleep 0.5
if [[ -e $VRAM_SWAP_SYS_BLOCK/$dev/pid ]]; then echo "nbd-client: /dev/$dev is in use" >&2; exit 1; fi
echo $$ >"$VRAM_SWAP_SYS_BLOCK/$dev/pid"
echo "$FAKE_SECTORS" >"$VRAM_SWAP_SYS_BLOCK/$dev/size"
"""


def fake_devices(tmp_path, names=("nbd0", "nbd1"), fail=(), sectors=0):
    """PATH and environment for the helper over fake nbd devices, free
    (size 0) until attached, then of `sectors` 512-byte sectors; each tool
    named in fail exits 1."""
    sys_block = tmp_path / "sys-block"
    for name in names:
        (sys_block / name / "queue").mkdir(parents=True)
        (sys_block / name / "size").write_text("0\n")
        (sys_block / name / "queue" / "max_sectors_kb").write_text("128\n")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "nbd-client").write_text(FAKE_CLAIMING_NBD_CLIENT)
    for tool in ("mkswap", "swapon", "dd"):
        (bindir / tool).write_text(f'#!/bin/bash\necho "{tool} $*" >>"$FAKE_LOG"\n'
                                   + ("exit 1\n" if tool in fail else "exit 0\n"))
    for f in bindir.iterdir():
        f.chmod(0o755)
    log = tmp_path / "calls"
    log.write_text("")
    return {"PATH": f"{bindir}:{os.environ['PATH']}", "FAKE_LOG": str(log),
            "VRAM_SWAP_SYS_BLOCK": str(sys_block), "FAKE_SECTORS": str(sectors)}, log


def test_two_instances_attaching_at_once_take_different_devices(tmp_path):
    extra, log = fake_devices(tmp_path)
    env = helper_env(tmp_path, **extra)
    write_config(tmp_path, "CONNECTIONS=1\n", name="default.conf")
    procs = [subprocess.Popen(["bash", "-euc", sourced(f"load_config {i}; claim_nbd_device {i}")],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in (0, 1)]
    results = [p.communicate(timeout=60) + (p.returncode,) for p in procs]
    for out, err, rc in results:
        assert rc == 0, err
    devices = {(tmp_path / "run" / f"{i}.dev").read_text().strip() for i in (0, 1)}
    assert devices == {"/dev/nbd0", "/dev/nbd1"}, (devices, log.read_text())


def test_plugin_args_reach_nbdkit_as_written(tmp_path):
    """Split on blanks, never glob-expanded: a '*' stays a '*' whatever the
    working directory holds."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    (cwd / "wait=from-a-file").write_text("")
    env = helper_env(tmp_path)
    write_config(tmp_path, 'PLUGIN_ARGS="wait=*   lanes=4"\nFILTERS="stats"\n')
    r = subprocess.run(["bash", "-euc", sourced("load_config 0; nbdkit_args 0")], env=env,
                       cwd=cwd, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    args = r.stdout.splitlines()
    assert args[-2:] == ["wait=*", "lanes=4"], args
    assert "--filter=stats" in args and "wait=from-a-file" not in args


def test_a_failed_up_detaches_the_device_and_stops_the_server(tmp_path):
    """mkswap fails after the device is attached: up leaves neither the
    device attached nor the server running."""
    extra, log = fake_devices(tmp_path, names=("nbd0",), fail=("mkswap",))
    env = helper_env(tmp_path, **extra)
    write_config(tmp_path, "SIZE=64M\nCONNECTIONS=1\nSWAP_SAFETY=attempt\nMIN_FREE_KB=keep\n")
    # This machine may have no nbd driver: that check is not what is tested.
    r = subprocess.run(["bash", "-euc", sourced("check_nbd_module() { :; }; cmd_up 0")],
                       env=env, capture_output=True, text=True, timeout=120)
    calls = log.read_text().splitlines()
    assert r.returncode == 1, r.stderr
    assert "mkswap /dev/nbd0 failed; /dev/nbd0 was detached" in r.stderr, r.stderr
    assert "the server was stopped" in r.stderr
    assert calls[0].startswith("-unix ") and "-d /dev/nbd0" in calls, calls
    assert not (tmp_path / "run" / "0.dev").exists()
    assert not (tmp_path / "sys-block" / "nbd0" / "pid").exists()
    assert not (tmp_path / "run" / "0.pid").exists() and not (tmp_path / "run" / "0.sock").exists()


def test_a_failed_warm_up_fails_the_attach_and_detaches(served, tmp_path):
    """The reads before swapon fail: the server cannot serve, so the
    device must not become swap, and is not left attached."""
    env, proc, sock = served
    extra, log = fake_devices(tmp_path, names=("nbd0",), fail=("dd",), sectors=2 * 1024 * 1024)
    write_config(tmp_path, "SIZE=128M\nSWAP_SAFETY=attempt\nCONNECTIONS=1\nMIN_FREE_KB=keep\n")
    r = subprocess.run(["bash", "-euc", sourced("cmd_attach 0")], env=dict(env, **extra),
                       capture_output=True, text=True, timeout=120)
    calls = log.read_text().splitlines()
    assert r.returncode == 1, r.stderr
    assert "reading /dev/nbd0 failed" in r.stderr and "/dev/nbd0 was detached" in r.stderr
    assert "warm-up read on /dev/nbd0 failed" in r.stderr
    assert "-d /dev/nbd0" in calls and not any(c.startswith("mkswap") for c in calls), calls
    assert not (tmp_path / "run" / "0.dev").exists()
    assert proc.poll() is None  # attach leaves the server to its unit


def test_the_build_renders_the_helpers_man_page():
    page = Path(PLUGIN).parents[1] / "systemd" / "vram-swap.8"
    assert page.exists(), f"the build renders vram-swap(8): {page}"
    text = page.read_text()
    for section in ("SYNOPSIS", "COMMANDS", "SETTINGS", "EXAMPLES", "FILES", "SEE ALSO"):
        assert f'.SH "{section}"' in text or f".SH {section}" in text, section
    # Every setting the helper reads is documented.
    helper = HELPER.read_text()
    body = helper[helper.index("\nload_config() {"):]
    body = body[:body.index("\n}\n")]
    keys = sorted(set(re.findall(r"^\s+([A-Z_]+)\)$", body, re.M)))
    assert "MIN_FREE_KB" in keys and "SIZE" in keys, keys
    for key in keys:
        assert key in text, f"{key} is not in vram-swap(8)"
