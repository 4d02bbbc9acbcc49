#!/usr/bin/python3
"""Plots for docs/benchmarks.md from the JSON lines the scripts write.

    bench/plot.py COMPARE.jsonl CORE.jsonl OUTDIR

Writes 4k-ops.png, 4k-latency.png, 1m-throughput.png, core-vs-floor.png.
Needs matplotlib (Debian: python3-matplotlib).
"""
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLORS = {"memory": "#7f7f7f", "vram": "#76b900", "floor": "#7f7f7f", "core": "#76b900"}


def load(path):
    return [json.loads(line) for line in open(path) if line.strip()]


def bars(ax, groups, series, values, ylabel, title):
    width = 0.8 / len(series)
    for i, s in enumerate(series):
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        ys = [values.get((s, g), 0) for g in groups]
        ax.bar(xs, ys, width, label=s, color=COLORS.get(s))
        for x, y in zip(xs, ys):
            ax.annotate(f"{y:,.0f}" if y >= 100 else f"{y:.1f}", (x, y), ha="center",
                        va="bottom", fontsize=8)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(groups)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()


def main():
    compare, core, out = load(sys.argv[1]), load(sys.argv[2]), Path(sys.argv[3])
    out.mkdir(parents=True, exist_ok=True)
    by = {}
    for r in compare:
        if "ops_per_s" in r:
            server, label = r["label"].split("/", 1)
            by[(server, label)] = r

    conns = ["1", "4", "16"]
    fig, ax = plt.subplots(figsize=(7, 4))
    bars(ax, [f"{c} conn" for c in conns], ["memory", "vram"],
         {(s, f"{c} conn"): by[(s, f"4k-randrw-c{c}")]["ops_per_s"]
          for s in ("memory", "vram") for c in conns if (s, f"4k-randrw-c{c}") in by},
         "ops/s", "4 KiB random 50/50 read/write, queue depth 1 per connection")
    fig.tight_layout()
    fig.savefig(out / "4k-ops.png", dpi=110)

    fig, ax = plt.subplots(figsize=(7, 4))
    lat = {}
    for s in ("memory", "vram"):
        for label, key in (("sporadic read", "sporadic-4k-read"), ("1 conn r/w", "4k-randrw-c1")):
            if (s, key) in by:
                lat[(s, label)] = by[(s, key)]["lat_us_p50"]
    bars(ax, ["sporadic read", "1 conn r/w"], ["memory", "vram"], lat, "p50 latency (us)",
         "4 KiB request latency, p50")
    fig.tight_layout()
    fig.savefig(out / "4k-latency.png", dpi=110)

    fig, ax = plt.subplots(figsize=(7, 4))
    groups = ["read c1", "write c1", "read c4", "write c4"]
    keys = ["1m-seqread-c1", "1m-seqwrite-c1", "1m-seqread-c4", "1m-seqwrite-c4"]
    bars(ax, groups, ["memory", "vram"],
         {(s, g): by[(s, k)]["mb_per_s"] for s in ("memory", "vram") for g, k in zip(groups, keys)
          if (s, k) in by}, "MB/s", "1 MiB sequential, queue depth 1 per connection")
    fig.tight_layout()
    fig.savefig(out / "1m-throughput.png", dpi=110)

    fig, ax = plt.subplots(figsize=(7, 4))
    for mode in ("floor", "core"):
        rows = sorted((r for r in core if r["mode"] == mode and r.get("wait", "auto") == "auto"),
                      key=lambda r: r["threads"])
        ax.plot([r["threads"] for r in rows], [r["ops_per_s"] for r in rows], marker="o",
                label="raw driver floor" if mode == "floor" else "plugin core (VramStore)",
                color=COLORS[mode])
    ax.set_xscale("log", base=2)
    ax.set_xlabel("threads")
    ax.set_ylabel("4 KiB copies/s")
    ax.set_title("Plugin core against the CUDA driver floor (no nbdkit)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "core-vs-floor.png", dpi=110)


if __name__ == "__main__":
    main()
