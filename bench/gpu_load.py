#!/usr/bin/env python3
"""Another program's work on the GPU, for the contention benchmarks.

    gpu_load.py matmul N   bf16 N x N matrix products back to back (an ML job)
    gpu_load.py game       60 frames a second, each a burst of short kernels
                           filling about half the frame, then idle (a game)

Prints "ready" once it runs; on SIGTERM or SIGINT prints one JSON line with
what it got done (products or frames a second), so a benchmark can say what
our I/O cost it.  Needs PyTorch with CUDA; device from CUDA_VISIBLE_DEVICES.
"""
import json
import signal
import sys
import time

import torch


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else "matmul"
    stop = False

    def on_signal(*_):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    dev = torch.device("cuda")
    done = 0
    if mode == "matmul":
        n = int(sys.argv[2]) if len(sys.argv) > 2 else 8192
        a = torch.randn(n, n, device=dev, dtype=torch.bfloat16)
        b = torch.randn(n, n, device=dev, dtype=torch.bfloat16)
        c = a @ b
        torch.cuda.synchronize()
        print("ready", flush=True)
        t0 = time.monotonic()
        while not stop:
            for _ in range(8):
                c = a @ b
            torch.cuda.synchronize()
            done += 8
        rate = {"mode": f"matmul-{n}", "products_per_s": done / (time.monotonic() - t0)}
    elif mode == "game":
        x = torch.randn(1 << 20, device=dev)
        m = torch.randn(512, 512, device=dev)

        def burst(k: int) -> None:
            nonlocal x, m
            for _ in range(k):
                x = x * 1.0001 + 0.5
                m = torch.tanh(m @ m * 0.01)

        burst(10)
        torch.cuda.synchronize()
        t = time.monotonic()
        burst(200)
        torch.cuda.synchronize()
        per = (time.monotonic() - t) / 200
        k = max(1, int(0.008 / per))  # about 8 ms of work per 16.7 ms frame
        print("ready", flush=True)
        frame = 1 / 60
        t0 = next_frame = time.monotonic()
        late = 0
        while not stop:
            burst(k)
            torch.cuda.synchronize()
            done += 1
            next_frame += frame
            wait = next_frame - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            else:
                late += 1
                next_frame = time.monotonic()
        rate = {"mode": "game", "kernels_per_frame": 2 * k, "frames_per_s":
                done / (time.monotonic() - t0), "late_frames": late}
    else:
        sys.exit(f"gpu_load.py: unknown mode {mode!r} (matmul N, or game)")
    print(json.dumps(rate), flush=True)


if __name__ == "__main__":
    main()
