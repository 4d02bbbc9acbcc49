"""Boots the VM suite's pressure scenarios many times in a row and says
how many hung, with the capture of each hang (docs/dev/vm-tests.md, "The
soak").  Not part of CI: a run of 100 boots takes about two hours on a
2-core machine.

    python3 tests/vm/soak.py [--boots N] [--out DIR] [SCENARIO ...]
    python3 tests/vm/soak.py --summarize --out DIR

SCENARIO: names from scenarios.SOAK (default: scenarios.DEFAULT_SOAK), each booted
N times (default 10), round robin, so a slow drift of the machine hits
them alike.  Each boot's verdict goes to DIR/soak.jsonl as it ends; the
log of every boot that did not pass is kept in DIR; the summary (boots,
passes, hangs and failures per scenario, and for each hang its first
report and what vm-hangdump saw) goes to DIR/summary.md and stdout.
"""
import argparse
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import harness  # noqa: E402
import scenarios  # noqa: E402


def _thread_stacks(log_text):
    """[(comm, state, wchan, [stack frames, innermost first])] from
    vm-hangdump's thread lines."""
    threads = []
    for line in log_text.splitlines():
        m = re.search(r"hangdump: thread \d+ \(([^)]*)\) state ([A-Z]) wchan (\S+)", line)
        if m:
            threads.append((m.group(1), m.group(2), m.group(3), []))
            continue
        m = re.search(r"hangdump:   \[<\w+>\] ([\w.]+)\+", line)
        if m and threads:
            threads[-1][3].append(m.group(1))
        elif "hangdump: " in line and threads and "hangdump:   " not in line:
            threads.append(("", "", "", []))  # a section after the threads: stop
    return [t for t in threads if t[0]]


def _where(frames):
    """What a stack is doing, shortly: the system call, and the call that
    allocated memory if it is in reclaim."""
    syscall = next((f for f in reversed(frames) if f.startswith("__x64_sys_")), "")
    syscall = syscall[len("__x64_sys_"):] or "no syscall"
    if "__alloc_pages" in frames or "__alloc_pages_slowpath.constprop.0" in frames:
        i = max(i for i, f in enumerate(frames) if f.startswith("__alloc_pages"))
        caller = frames[i + 1] if i + 1 < len(frames) else "?"
        return f"{syscall}: {caller} allocating, in direct reclaim"
    return f"{syscall}: {frames[0] if frames else '?'}"


def capture_summary(log_text):
    """The lines of a hang capture that say most: nbdkit threads not
    asleep in an interruptible wait (and where), the plugin's requests in
    flight, and the kernel's blocked tasks."""
    lines = []
    for comm, state, wchan, frames in _thread_stacks(log_text):
        if state != "S":
            lines.append(f"nbdkit thread ({comm}) state {state}, {_where(frames)}"
                         + (f" (wchan {wchan})" if wchan != "0" else ""))
    block = re.search(r"hangdump: requests in flight[^\n]*\n((?:[^\n]*hangdump:   age[^\n]*\n)*)",
                      log_text)
    if block:
        for line in block.group(1).splitlines():
            lines.append("request: " + line.split("hangdump:", 1)[1].strip())
    if "hangdump: requests in flight" in log_text and not (block and block.group(1)):
        lines.append("no request in the plugin")
    for m in re.finditer(r"task:(\S+)\s+state:D", log_text):
        lines.append(f"blocked task: {m.group(1)}")
    if "hangdump: begin" not in log_text:
        lines.append("no vm-hangdump capture")
    # Each kind once, in order, with a count.
    counted = {}
    for line in lines:
        counted[line] = counted.get(line, 0) + 1
    return [f"{line} (x{n})" if n > 1 else line for line, n in counted.items()]


def resummarize(out_dir):
    """summary.md again from out_dir's soak.jsonl and kept logs (after a
    soak was stopped, or with a newer capture_summary)."""
    rows = [json.loads(line) for line in open(out_dir / "soak.jsonl")]
    for r in rows:
        if r.get("log") and Path(r["log"]).exists():
            r["capture"] = capture_summary(Path(r["log"]).read_text(errors="replace"))
    return summarize(rows, sum(r["elapsed_s"] for r in rows))


def host_load():
    """The host's 1-minute load average.  A TCG guest on a host with more
    runnable threads than CPUs can go unscheduled for many seconds; its
    kernel then reports a soft lockup at whatever it was doing (seen in a
    soak beside a sanitizer build: docs/dev/vm-tests.md, finding 13)."""
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boots", type=int, default=10, help="boots of each scenario (10)")
    ap.add_argument("--out", type=Path, default=harness.LOG_DIR / "soak",
                    help="where the results go (VRAM_BUILD_DIR/vm-logs/soak)")
    ap.add_argument("--summarize", action="store_true",
                    help="only write DIR/summary.md again from DIR/soak.jsonl")
    ap.add_argument("scenario", nargs="*",
                    help=f"of {', '.join(scenarios.SOAK)} ({', '.join(scenarios.DEFAULT_SOAK)})")
    args = ap.parse_args(argv)
    if args.summarize:
        summary = resummarize(args.out)
        (args.out / "summary.md").write_text(summary)
        print(summary)
        return 0
    names = args.scenario or scenarios.DEFAULT_SOAK
    unknown = [n for n in names if n not in scenarios.SOAK]
    if unknown:
        ap.error(f"unknown scenario {', '.join(unknown)}: known are {', '.join(scenarios.SOAK)}")
    args.out.mkdir(parents=True, exist_ok=True)
    vm = harness.Vm()
    results = args.out / "soak.jsonl"
    rows = []
    started = time.monotonic()
    for i in range(args.boots):
        for name in names:
            script, kw = scenarios.run_args(scenarios.SOAK[name])
            boot = f"soak-{name}-{i + 1}"
            load_before = host_load()
            r = vm.run(boot, script, hostcheck=harness.check_vram_ranges, **kw)
            text = r.log.read_text(errors="replace")
            row = {"scenario": name, "boot": i + 1, "verdict": r.verdict, "reason": r.reason,
                   "elapsed_s": round(r.elapsed, 1), "figures": r.figures,
                   "host_load": [load_before, host_load()]}
            if r.verdict != "pass":
                kept = args.out / r.log.name
                shutil.copy(r.log, kept)
                row["log"] = str(kept)
                row["capture"] = capture_summary(text)
            rows.append(row)
            with open(results, "a") as f:
                f.write(json.dumps(row) + "\n")
            print(f"{time.monotonic() - started:7.0f}s  {boot:<28} {r.verdict:<9} "
                  f"{r.elapsed:6.1f}s  {r.reason[:100]}", flush=True)
            shutil.rmtree(r.outdir, ignore_errors=True)
            r.log.unlink(missing_ok=True)
    summary = summarize(rows, time.monotonic() - started)
    (args.out / "summary.md").write_text(summary)
    print(summary)
    return 0 if all(r["verdict"] == "pass" for r in rows) else 1


# The figure each script reports for how much it swapped, in kB: the
# soak shows the least of each scenario's passes, so a lighter load shows.
SWAP_FIGURES = ("peak_swap_used_kb",            # pressure.sh
                "d_peak_used_kb",               # lazy_swap.sh, its first round
                "swap_used_under_pressure_kb")  # vram_swap_lifecycle.sh


def swap_used_kb(figures):
    """How much a passing boot swapped (kB), or None where its script
    reports no such figure (integrity_swap.sh pages out a few victims)."""
    return next((figures[k] for k in SWAP_FIGURES if k in figures), None)


def summarize(rows, seconds):
    out = [f"{len(rows)} boots, {seconds / 60:.0f} min of VM time", "",
           "| scenario | boots | pass | hang | other | median s | least swap used, MiB | "
           "least load, MiB |", "|---|---|---|---|---|---|---|---|"]
    for name in dict.fromkeys(r["scenario"] for r in rows):
        mine = [r for r in rows if r["scenario"] == name]
        times = sorted(r["elapsed_s"] for r in mine)
        passed = sum(r["verdict"] == "pass" for r in mine)
        hung = sum(r["verdict"] in ("hang", "timeout") for r in mine)
        used = [swap_used_kb(r["figures"]) for r in mine if r["verdict"] == "pass"]
        used = [u for u in used if u is not None]
        load = [r["figures"]["stress_total_kb"] for r in mine
                if r["verdict"] == "pass" and "stress_total_kb" in r["figures"]]
        out.append(f"| {name} | {len(mine)} | {passed} | {hung} | {len(mine) - passed - hung} | "
                   f"{times[len(times) // 2]:.0f} | "
                   f"{min(used) // 1024 if used else '-'} | {min(load) // 1024 if load else '-'} |")
    cpus = os.cpu_count() or 1
    busy = [r for r in rows if max(x or 0 for x in r.get("host_load") or [0]) > cpus]
    if busy:
        out += ["", f"{len(busy)} boots ran with the host's load average above its {cpus} CPUs "
                "(not an idle machine)."]
    bad = [r for r in rows if r["verdict"] != "pass"]
    for r in bad:
        load = r.get("host_load")
        out += ["", f"- {r['scenario']} boot {r['boot']}: {r['verdict']}: {r['reason']} "
                f"(log {r['log']}" + (f"; host load {load[0]} -> {load[1]}" if load else "") + ")"]
        out += [f"  - {line}" for line in r.get("capture", [])]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
