#!/usr/bin/env python3
"""idle-release=: what resting saves and what waking costs, on a real GPU.

    bench/idle_release.py OUTDIR [--power-seconds 20] [--cycles 200]
                                 [--busy-cycles 1000] [--idle 1s]
                                 [--only power|wakes|busy] [--param KEY=VALUE ...]

1. Power and clocks (nvidia-smi, sampled every 0.5 s): nothing running;
   an export holding 1 GiB of data, awake (idle-release=off); the same
   export resting (idle-release=2s).
2. Wake latency: --cycles times, wait until the export rests, then time
   one 4 KiB read of data written earlier (checked byte for byte): the
   request's time as a client sees it and the plugin's own last_wake_ms.
3. Rests and wakes under a workload: four connections write and read
   back their own regions with quiet spells, until --busy-cycles wakes
   have happened; every read checked; no request may fail.

Env: NBDKIT, VRAM_BUILD_DIR (or VRAM_PLUGIN).  Prints JSON lines (also to
OUTDIR/results.jsonl) and a summary.
"""
import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
# A client of our own: the GPU machine has no Python bindings of libnbd.
from support.nbd_raw import NbdError, RawNbdClient  # noqa: E402

BUILD = Path(os.environ.get("VRAM_BUILD_DIR", HERE.parent / "build"))
PLUGIN = os.environ.get("VRAM_PLUGIN", str(BUILD / "plugin" / "nbdkit-vram-plugin.so"))
NBDKIT = os.environ.get("NBDKIT", "nbdkit")
MiB = 1 << 20
# --param: more plugin parameters for every server (swap-safety=off, to try
# the script on the test driver).
EXTRA = []


def emit(out, record):
    line = json.dumps(record)
    print(line, flush=True)
    with open(out / "results.jsonl", "a") as f:
        f.write(line + "\n")


class Server:
    def __init__(self, out, name, *params, size="8G"):
        self.dir = Path(tempfile.mkdtemp(prefix="vram-idle-"))
        self.sock = self.dir / "sock"
        self.status_file = self.dir / "status"
        self.log = open(out / f"{name}.log", "w")
        self.proc = subprocess.Popen(
            [NBDKIT, "-f", "-U", str(self.sock), PLUGIN, f"size={size}", "allocation=lazy",
             f"status-file={self.status_file}", *params, *EXTRA],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while not self.status_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"nbdkit did not start: see {out / name}.log")
            time.sleep(0.05)

    def status(self):
        try:
            text = self.status_file.read_text()
        except FileNotFoundError:
            return {}
        return dict(l.split("=", 1) for l in text.splitlines() if "=" in l)

    def connect(self):
        return RawNbdClient(self.sock, timeout=120)

    def wait(self, predicate, timeout=60, what="condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s = self.status()
            if predicate(s):
                return s
            time.sleep(0.01)
        raise SystemExit(f"timed out waiting for {what}: {self.status()}")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(60)
        self.log.close()


def sample_gpu(seconds, index=0):
    """Median power (W), SM and memory clocks (MHz) and the P-states seen."""
    cmd = ["nvidia-smi", "-i", str(index), "--query-gpu=power.draw,clocks.sm,clocks.mem,pstate",
           "--format=csv,noheader,nounits", "-lms", "500"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    time.sleep(seconds)
    p.terminate()
    rows = []
    for line in p.communicate()[0].splitlines():
        parts = [x.strip() for x in line.split(",")]
        try:
            rows.append((float(parts[0]), float(parts[1]), float(parts[2]), parts[3]))
        except (ValueError, IndexError):
            pass
    if not rows:
        return {"samples": 0}
    return {"samples": len(rows), "power_w": statistics.median(r[0] for r in rows),
            "sm_mhz": statistics.median(r[1] for r in rows),
            "mem_mhz": statistics.median(r[2] for r in rows),
            "pstates": sorted({r[3] for r in rows})}


def fill(h, rng, length, chunk=4 * MiB):
    data = bytearray()
    for at in range(0, length, chunk):
        block = rng.randbytes(chunk)
        h.pwrite(block, at)
        data += block
    return bytes(data)


def power(out, seconds):
    emit(out, {"phase": "no export", **sample_gpu(seconds)})
    for name, idle in (("awake", "off"), ("resting", "2s")):
        s = Server(out, f"power-{name}", f"idle-release={idle}")
        h = s.connect()
        fill(h, random.Random(1), 1024 * MiB)
        if idle == "off":
            time.sleep(5)
        else:
            s.wait(lambda st: st.get("gpu_state") == "resting", what="a rest")
            time.sleep(3)  # the GPU's own idle steps
        emit(out, {"phase": f"export {name}", "held": int(s.status().get("held", 0)),
                   **sample_gpu(seconds)})
        h.shutdown()
        s.stop()


def wake_latency(out, cycles, idle):
    s = Server(out, "wakes", f"idle-release={idle}")
    h = s.connect()
    rng = random.Random(2)
    data = fill(h, rng, 256 * MiB)
    client_ms, plugin_ms, wrong = [], [], 0
    for _ in range(cycles):
        st = s.wait(lambda st: st.get("gpu_state") == "resting", what="a rest")
        wakes = int(st["wakes"])
        at = 4096 * rng.randrange(len(data) // 4096)
        t0 = time.perf_counter()
        got = h.pread(4096, at)
        client_ms.append((time.perf_counter() - t0) * 1000)
        wrong += got != data[at:at + 4096]
        st = s.wait(lambda st: int(st.get("wakes", 0)) > wakes, what="the wake's figures")
        plugin_ms.append(float(st["last_wake_ms"]))
    st = s.status()
    h.shutdown()
    s.stop()

    def q(v, p):
        return sorted(v)[min(len(v) - 1, int(p * len(v)))]

    emit(out, {"phase": "wake latency", "cycles": cycles, "wrong_reads": wrong,
               "failed_wakes": int(st.get("failed_wakes", -1)),
               "client_ms_p50": q(client_ms, 0.5), "client_ms_p99": q(client_ms, 0.99),
               "client_ms_max": max(client_ms), "plugin_ms_p50": q(plugin_ms, 0.5),
               "plugin_ms_max": max(plugin_ms)})


def busy(out, wakes_wanted, idle):
    s = Server(out, "busy", f"idle-release={idle}")
    failures, stop = [], threading.Event()
    region = 64 * MiB

    def worker(i):
        h = s.connect()
        rng = random.Random(100 + i)
        model = bytearray(region)
        try:
            while not stop.is_set():
                length = 4096 * rng.randrange(1, 33)
                at = 4096 * rng.randrange((region - length) // 4096)
                block = rng.randbytes(length)
                h.pwrite(block, i * region + at)
                model[at:at + length] = block
                if rng.random() < 0.2:
                    time.sleep(rng.uniform(0, 1.5))
                at = 4096 * rng.randrange((region - length) // 4096)
                if h.pread(length, i * region + at) != model[at:at + length]:
                    failures.append(f"connection {i}: wrong data at {i * region + at}")
                    return
        except (NbdError, OSError) as e:
            failures.append(f"connection {i}: {e}")
        finally:
            h.shutdown()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    while not failures and int(s.status().get("wakes", 0)) < wakes_wanted and \
            time.monotonic() - t0 < 550:
        time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join()
    st = s.status()
    s.stop()
    emit(out, {"phase": "busy", "seconds": round(time.monotonic() - t0, 1),
               "rests": int(st.get("rests", 0)), "wakes": int(st.get("wakes", 0)),
               "failed_wakes": int(st.get("failed_wakes", -1)),
               "worst_wake_ms": float(st.get("worst_wake_ms", 0)), "failures": failures[:5]})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--power-seconds", type=float, default=20)
    ap.add_argument("--cycles", type=int, default=200)
    ap.add_argument("--busy-cycles", type=int, default=1000)
    ap.add_argument("--idle", default="1s")
    ap.add_argument("--only", choices=["power", "wakes", "busy"])
    ap.add_argument("--param", action="append", default=[])
    a = ap.parse_args()
    EXTRA.extend(a.param)
    a.out.mkdir(parents=True, exist_ok=True)
    if a.only in (None, "power"):
        power(a.out, a.power_seconds)
    if a.only in (None, "wakes"):
        wake_latency(a.out, a.cycles, a.idle)
    if a.only in (None, "busy"):
        busy(a.out, a.busy_cycles, "200ms")


if __name__ == "__main__":
    sys.exit(main())
