"""Boots the VM suite's pressure scenarios many times in a row and says
how many hung, with the capture of each hang (docs/vm-tests.md, "The
soak").  Not part of CI: a run of 100 boots takes about two hours on a
2-core machine.

    python3 tests/vm/soak.py [--boots N] [--out DIR] [SCENARIO ...]

SCENARIO: names from scenarios.SOAK (default: scenarios.DEFAULT_SOAK), each booted
N times (default 10), round robin, so a slow drift of the machine hits
them alike.  Each boot's verdict goes to DIR/soak.jsonl as it ends; the
log of every boot that did not pass is kept in DIR; the summary (boots,
passes, hangs and failures per scenario, and for each hang its first
report and what vm-hangdump saw) goes to DIR/summary.md and stdout.
"""
import argparse
import json
import re
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import harness  # noqa: E402
import scenarios  # noqa: E402


def capture_summary(log_text):
    """The lines of a hang capture that say most: nbdkit threads not
    asleep in an interruptible wait, the plugin's requests in flight, and
    the kernel's blocked tasks."""
    lines = []
    for m in re.finditer(r"hangdump: thread \d+ \(([^)]*)\) state ([A-Z]) wchan (\S+)", log_text):
        if m.group(2) != "S":
            lines.append(f"nbdkit thread ({m.group(1)}) state {m.group(2)} in {m.group(3)}")
    block = re.search(r"hangdump: requests in flight[^\n]*\n((?:[^\n]*hangdump:   age[^\n]*\n)*)",
                      log_text)
    if block:
        for line in block.group(1).splitlines():
            lines.append("request: " + line.split("hangdump:", 1)[1].strip())
    for m in re.finditer(r"task:(\S+)\s+state:D", log_text):
        lines.append(f"blocked task: {m.group(1)}")
    if "hangdump: begin" not in log_text:
        lines.append("no vm-hangdump capture")
    # Each kind once, in order, with a count.
    counted = {}
    for line in lines:
        counted[line] = counted.get(line, 0) + 1
    return [f"{line} (x{n})" if n > 1 else line for line, n in counted.items()]


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boots", type=int, default=10, help="boots of each scenario (10)")
    ap.add_argument("--out", type=Path, default=harness.LOG_DIR / "soak",
                    help="where the results go (VRAM_BUILD_DIR/vm-logs/soak)")
    ap.add_argument("scenario", nargs="*",
                    help=f"of {', '.join(scenarios.SOAK)} ({', '.join(scenarios.DEFAULT_SOAK)})")
    args = ap.parse_args(argv)
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
            r = vm.run(boot, script, hostcheck=harness.check_vram_ranges, **kw)
            text = r.log.read_text(errors="replace")
            row = {"scenario": name, "boot": i + 1, "verdict": r.verdict, "reason": r.reason,
                   "elapsed_s": round(r.elapsed, 1), "figures": r.figures}
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


def summarize(rows, seconds):
    out = [f"{len(rows)} boots in {seconds / 60:.0f} min", "",
           "| scenario | boots | pass | hang | other | median s |", "|---|---|---|---|---|---|"]
    for name in dict.fromkeys(r["scenario"] for r in rows):
        mine = [r for r in rows if r["scenario"] == name]
        times = sorted(r["elapsed_s"] for r in mine)
        passed = sum(r["verdict"] == "pass" for r in mine)
        hung = sum(r["verdict"] in ("hang", "timeout") for r in mine)
        out.append(f"| {name} | {len(mine)} | {passed} | {hung} | {len(mine) - passed - hung} | "
                   f"{times[len(times) // 2]:.0f} |")
    bad = [r for r in rows if r["verdict"] != "pass"]
    for r in bad:
        out += ["", f"- {r['scenario']} boot {r['boot']}: {r['verdict']}: {r['reason']} "
                f"(log {r['log']})"]
        out += [f"  - {line}" for line in r.get("capture", [])]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
