#!/usr/bin/env python3
"""Draws the two diagrams of the docs as SVG, with nothing but the
standard library:

    docs/img/tiers.svg         the swap tiers and where VRAM swap sits
    docs/img/request-path.svg  one request's path, kernel to VRAM

    python3 docs/img/draw_diagrams.py [OUTDIR]     (default: docs/img)

Edit the tables below and run it again; the SVGs are committed.
"""
import sys
from html import escape
from pathlib import Path

FONT = "font-family='DejaVu Sans, Helvetica, Arial, sans-serif'"
LINE = 18  # px per line of text in a box


class Svg:
    def __init__(self, width, height):
        self.width, self.height = width, height
        self.parts = [
            "<defs><marker id='arrow' viewBox='0 0 10 10' refX='9' refY='5' "
            "markerWidth='7' markerHeight='7' orient='auto-start-reverse'>"
            "<path d='M0,0 L10,5 L0,10 z' fill='#444'/></marker></defs>",
            f"<rect width='{width}' height='{height}' fill='white'/>",
        ]

    def box(self, x, y, w, h, lines, fill, bold_first=True, stroke="#555"):
        self.parts.append(
            f"<rect x='{x}' y='{y}' width='{w}' height='{h}' rx='8' "
            f"fill='{fill}' stroke='{stroke}' stroke-width='1.5'/>")
        top = y + h / 2 - (len(lines) - 1) * LINE / 2 + 5
        for i, text in enumerate(lines):
            weight = " font-weight='bold'" if bold_first and i == 0 else ""
            size = 15 if i == 0 else 13
            self.parts.append(
                f"<text x='{x + w / 2}' y='{top + i * LINE}' text-anchor='middle' "
                f"font-size='{size}'{weight} {FONT}>{escape(text)}</text>")

    def arrow(self, x1, y1, x2, y2, label=None, dashed=False):
        dash = " stroke-dasharray='6,4'" if dashed else ""
        self.parts.append(
            f"<line x1='{x1}' y1='{y1}' x2='{x2}' y2='{y2}' stroke='#444' "
            f"stroke-width='1.8' marker-end='url(#arrow)'{dash}/>")
        if label:
            self.text((x1 + x2) / 2 + 8, (y1 + y2) / 2 + 4, label, anchor="start")

    def text(self, x, y, text, anchor="middle", size=13, italic=False):
        style = " font-style='italic'" if italic else ""
        self.parts.append(
            f"<text x='{x}' y='{y}' text-anchor='{anchor}' font-size='{size}'{style} "
            f"fill='#333' {FONT}>{escape(text)}</text>")

    def write(self, path):
        body = "\n".join(self.parts)
        path.write_text(
            f"<svg xmlns='http://www.w3.org/2000/svg' width='{self.width}' "
            f"height='{self.height}' viewBox='0 0 {self.width} {self.height}'>\n"
            f"{body}\n</svg>\n")


# The tiers, fastest first: (title, detail lines, colour).
TIERS = [
    ("RAM", ["the working set"], "#e8f1fb"),
    ("VRAM swap: /dev/nbd0", ["swapon -p 100", "served by nbdkit-vram from idle GPU memory"], "#dff3e3"),
    ("zram (if used)", ["compressed RAM, a lower priority"], "#f4f4f4"),
    ("disk swap", ["the lowest priority: takes the overflow"], "#fbeee0"),
]


def draw_tiers(out):
    w, box_w, box_h, gap = 760, 380, 64, 34
    svg = Svg(w, 30 + len(TIERS) * (box_h + gap))
    svg.text(w / 2, 28, "Linux swap tiers: the kernel fills the highest priority first", size=15)
    x = 40
    for i, (title, lines, fill) in enumerate(TIERS):
        y = 50 + i * (box_h + gap)
        svg.box(x, y, box_w, box_h, [title] + lines, fill)
        if i + 1 < len(TIERS):
            svg.arrow(x + box_w / 2, y + box_h, x + box_w / 2, y + box_h + gap,
                      "cold pages" if i == 0 else "when full")
    # Beside the VRAM tier: what serves it.
    y = 50 + (box_h + gap)
    gx = x + box_w + 60
    svg.box(gx, y - 10, 260, box_h + 20,
            ["NVIDIA GPU", "VRAM held: the export", "(or only what swap uses,", "with allocation=lazy)"],
            "#dff3e3")
    svg.arrow(x + box_w, y + box_h / 2, gx, y + box_h / 2)
    svg.text((x + box_w + gx) / 2, y + box_h / 2 - 8, "NBD", size=12, italic=True)
    svg.write(out / "tiers.svg")


# One request, top to bottom: (title, detail lines, colour, note at the right).
PATH = [
    ("kernel: swap, then the nbd driver", ["/dev/nbd0, CONNECTIONS sockets (nbd-client -C)"], "#e8f1fb",
     "swap-out = NBD write, swap-in = read, freed swap = trim"),
    ("nbdkit", ["a thread per request (--threads), filters in front"], "#f4f4f4",
     "unix socket, root only"),
    ("integrity filter (optional)", ["CRC32C per 4 KiB block, locked in RAM"], "#fbeee0",
     "a block that changed fails with EIO"),
    ("vram plugin: vram_plugin.cpp", ["nbdkit callbacks, translated to the core"], "#dff3e3",
     "no exception crosses the C ABI"),
    ("VramStore", ["bounds, the failed state, eager or lazy VRAM"], "#dff3e3",
     "lazy: ChunkResidency maps 2 MiB chunks"),
    ("a lane from the LanePool", ["CUDA stream + pinned staging buffer"], "#dff3e3",
     "large requests in pieces, pipelined"),
    ("CUDA Driver API (libcuda.so.1)", ["copies shaped for the copy engines (share-gpu=)"], "#e8e8f8",
     "cuMemcpy*Async, then cuStreamSynchronize"),
    ("VRAM", ["one allocation, or chunks mapped in a reserved range"], "#dff3e3",
     "zeroed at start, on trim, at shutdown"),
]


def draw_request_path(out):
    w, box_w, box_h, gap = 900, 420, 54, 26
    svg = Svg(w, 50 + len(PATH) * (box_h + gap))
    svg.text(w / 2, 26, "One request's path", size=15)
    x = 30
    for i, (title, lines, fill, note) in enumerate(PATH):
        y = 40 + i * (box_h + gap)
        svg.box(x, y, box_w, box_h, [title] + lines, fill)
        svg.text(x + box_w + 20, y + box_h / 2 + 5, note, anchor="start", italic=True)
        if i + 1 < len(PATH):
            svg.arrow(x + box_w / 2, y + box_h, x + box_w / 2, y + box_h + gap)
    svg.write(out / "request-path.svg")


def main():
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent
    out.mkdir(parents=True, exist_ok=True)
    draw_tiers(out)
    draw_request_path(out)


if __name__ == "__main__":
    main()
