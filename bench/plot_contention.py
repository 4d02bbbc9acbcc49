#!/usr/bin/python3
"""The plot for docs/benchmarks.md, "Beside other GPU work", from the JSON
lines bench/contention.sh plugin writes.

    bench/plot_contention.py RESULTS.jsonl OUT.png [NAME=LEGEND ...]

One panel per load: each workload's ops/s beside the load as a fraction of
the same build's quiet ops/s, one bar per build (named in the legend as
the results name it, or as NAME=LEGEND says).  Needs matplotlib
(Debian: python3-matplotlib).
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLORS = ["#76b900", "#7f7f7f", "#1f77b4"]


def main() -> None:
    legend = dict(a.split("=", 1) for a in sys.argv[3:])
    rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    rows = [r for r in rows if "ops_per_s" in r]  # not the status rows
    by = {r["label"]: r for r in rows}
    names = list(dict.fromkeys(r["label"].split("/")[0] for r in rows))
    loads = [x for x in dict.fromkeys(r["label"].split("/")[1] for r in rows) if x != "quiet"]
    work = list(dict.fromkeys(r["label"].split("/")[2] for r in rows))
    fig, axes = plt.subplots(len(loads), 1, figsize=(11, 3.2 * len(loads)), squeeze=False)
    width = 0.8 / len(names)
    for ax, load in zip(axes[:, 0], loads):
        for i, n in enumerate(names):
            xs, ys = [], []
            for j, w in enumerate(work):
                q, b = by.get(f"{n}/quiet/{w}"), by.get(f"{n}/{load}/{w}")
                if q and b:
                    xs.append(j + (i - (len(names) - 1) / 2) * width)
                    ys.append(b["ops_per_s"] / q["ops_per_s"])
            ax.bar(xs, ys, width, label=legend.get(n, n), color=COLORS[i % len(COLORS)])
            for x, y in zip(xs, ys):
                ax.annotate(f"{y:.2f}", (x, y), ha="center", va="bottom", fontsize=7)
        ax.axhline(1.0, color="black", linewidth=0.5)
        ax.set_xticks(range(len(work)))
        ax.set_xticklabels(work, fontsize=8)
        ax.set_ylim(0, 1.3)
        ax.set_ylabel("ops/s beside / quiet")
        ax.set_title(f"beside {load}")
        ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)


if __name__ == "__main__":
    main()
