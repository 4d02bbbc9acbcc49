#!/usr/bin/env python3
"""Builds a corpus of the anonymous memory of real programs at work: the
pages the kernel would swap out of them.  Each program is started, left to
build up its state, stopped (SIGSTOP), and every resident page of its
private anonymous mappings (heap, stacks, anonymous mmaps) is copied out
of /proc/PID/mem, as found by /proc/PID/pagemap.  Needs root (pagemap and
another process's memory) and, for the compiler, g++ and this repository.

    python3 bench/corpus/make_corpus.py OUT.pages [--manifest OUT.json]

The corpus is 4 KiB pages back to back; the manifest says how many came
from each program, and the corpus's SHA-256.  It is not kept in the
repository (it is the memory of processes on the machine that made it);
this script is, and makes one like it anywhere.

Programs: a Python process holding real data (the syntax trees of the
Python standard library and the dpkg database, parsed); the C++ compiler
compiling this project's largest source with -O2; sort(1) holding a large
text file; an interactive bash with a history, a few functions and
variables.
"""
import argparse
import glob
import hashlib
import json
import os
import signal
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PAGE = 4096
COMPILE_CPU_S = 3.0  # about two thirds of the compile, on the machine that made ours
REPO = Path(__file__).resolve().parents[2]
PYTHON_WORK = r"""
import ast, glob, sys, time
trees = {}
for f in sorted(glob.glob(sys.base_prefix + "/lib/python3*/**/*.py", recursive=True))[:400]:
    try:
        trees[f] = ast.parse(open(f, encoding="utf-8", errors="replace").read())
    except (SyntaxError, ValueError, OSError):
        pass
packages, entry = [], {}
for line in open("/var/lib/dpkg/status", encoding="utf-8", errors="replace"):
    if not line.strip():
        packages.append(entry); entry = {}
    elif line[0] not in " \t" and ":" in line:
        k, v = line.split(":", 1); entry[k] = v.strip()
by_section = {}
for p in packages:
    by_section.setdefault(p.get("Section", "?"), []).append(p)
names = sorted(n.id for t in trees.values() for n in ast.walk(t) if isinstance(n, ast.Name))
print("ready", len(trees), len(packages), len(names), flush=True)
time.sleep(3600)
"""


def anonymous_pages(pid):
    """The resident pages of pid's private anonymous mappings, as bytes."""
    maps = Path(f"/proc/{pid}/maps").read_text().splitlines()
    out = []
    with open(f"/proc/{pid}/pagemap", "rb") as pm, open(f"/proc/{pid}/mem", "rb") as mem:
        for line in maps:
            fields = line.split(maxsplit=5)
            start, end = (int(x, 16) for x in fields[0].split("-"))
            perms = fields[1]
            path = fields[5] if len(fields) > 5 else ""
            if "p" not in perms or "r" not in perms or "w" not in perms:
                continue
            if path and path not in ("[heap]", "[stack]") and not path.startswith("[anon"):
                continue
            n = (end - start) // PAGE
            pm.seek(start // PAGE * 8)
            entries = struct.unpack(f"<{n}Q", pm.read(n * 8))
            for i, e in enumerate(entries):
                if not e >> 63 & 1:  # not present in RAM: nothing to swap
                    continue
                try:
                    mem.seek(start + i * PAGE)
                    out.append(mem.read(PAGE))
                except OSError:
                    pass
    return out


def dump(name, proc, pages, manifest):
    os.kill(proc.pid, signal.SIGSTOP)
    try:
        got = anonymous_pages(proc.pid)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    pages.extend(got)
    manifest["programs"].append({"name": name, "pages": len(got)})
    print(f"{name}: {len(got)} pages ({len(got) * PAGE / 2**20:.1f} MiB)", flush=True)


def python_with_data(pages, manifest):
    proc = subprocess.Popen([sys.executable, "-c", PYTHON_WORK], stdout=subprocess.PIPE, text=True)
    print("python: " + proc.stdout.readline().strip(), flush=True)
    dump("python3: stdlib syntax trees and the dpkg database", proc, pages, manifest)


def compiler(pages, manifest):
    src = REPO / "plugin" / "store" / "vram_store.cpp"
    inc = [f"-I{REPO / d}" for d in ("plugin", "common")]
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "version.hpp").write_text('#define NBDKIT_VRAM_VERSION "0"\n')
        proc = subprocess.Popen(["g++", "-std=c++20", "-O2", "-g", *inc, f"-I{tmp}", "-c",
                                 str(src), "-o", f"{tmp}/out.o"], stderr=subprocess.DEVNULL)
        # cc1plus is g++'s child: dump it half way through its work.
        time.sleep(0.5)
        kids = [int(p) for p in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()]
        cc1 = next(k for k in kids if "cc1plus" in Path(f"/proc/{k}/comm").read_text())
        # By its CPU time, not the clock's, so a busy machine makes the same corpus.
        tick = os.sysconf("SC_CLK_TCK")
        while True:
            stat = Path(f"/proc/{cc1}/stat").read_text().rsplit(")", 1)[1].split()
            if (int(stat[11]) + int(stat[12])) / tick >= COMPILE_CPU_S:
                break
            time.sleep(0.02)

        class Child:
            pid = cc1

            def wait(self):
                proc.wait()
        dump("cc1plus -O2 -g: plugin/store/vram_store.cpp", Child(), pages, manifest)


def sort_text(pages, manifest):
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        for p in sorted(glob.glob(sys.base_prefix + "/lib/python3*/**/*.py", recursive=True))[:4000]:
            f.write(open(p, encoding="utf-8", errors="replace").read())
        name = f.name
    # sort reads all its input before writing, and its output goes to a
    # pipe nobody reads: it waits there with every line in memory.
    proc = subprocess.Popen(["sort", "-S", "1G", name], stdout=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    time.sleep(3)
    dump("sort(1) holding Python sources", proc, pages, manifest)
    os.unlink(name)


def shell(pages, manifest):
    with tempfile.TemporaryDirectory() as tmp:
        hist = Path(tmp) / "history"
        hist.write_text("".join(f"ls -la /usr/lib/{d}\ncd /tmp && grep -rn TODO {d}\n"
                                for d in sorted(os.listdir("/usr/lib"))[:500]))
        proc = subprocess.Popen(["bash", "--norc", "-i"], stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
                                env={"HISTFILE": str(hist), "HISTSIZE": "100000", "PATH": "/usr/bin:/bin"})
        proc.stdin.write(f"history -r {hist}\n"
                         "for i in $(seq 2000); do declare \"v$i=value $i $RANDOM\"; done\n"
                         "f() { local x; for x in \"$@\"; do echo \"$x\"; done; }\n"
                         "a=( $(ls /usr/bin) ); declare -A m; for k in \"${a[@]}\"; do m[$k]=${#k}; done\n")
        proc.stdin.flush()
        time.sleep(3)
        dump("bash -i: a history, variables and arrays", proc, pages, manifest)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--manifest", type=Path)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("make_corpus.py: run as root (it reads other processes' memory)")
    pages, manifest = [], {"programs": [], "page_bytes": PAGE,
                           "made": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                           "machine": os.uname().release}
    for step in (python_with_data, compiler, sort_text, shell):
        step(pages, manifest)
    data = b"".join(pages)
    args.out.write_bytes(data)
    manifest["pages"] = len(pages)
    manifest["sha256"] = hashlib.sha256(data).hexdigest()
    text = json.dumps(manifest, indent=2) + "\n"
    (args.manifest or args.out.with_suffix(".json")).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
