"""VM tests: a real Linux kernel (Debian's, under qemu TCG) swaps to the
plugin through its nbd driver.  See docs/dev/vm-tests.md.

Every test that boots a guest is marked `vm` (deselect with -m "not vm")
and skipped, with the reason, where qemu, a static busybox or the kernel
package is missing; tests/run.sh installs them.

  vm_run(script, **kw)   boots a guest that runs tests/vm/guest/SCRIPT;
                         returns a harness.VmResult.  The console goes to
                         VRAM_BUILD_DIR/vm-logs/<test>.log (and, for a
                         failed test, its tail into pytest's report).
"""
import re
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import harness  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "vm: boots Debian's kernel under qemu (minutes; deselect with -m 'not vm')")
    config.stash[_runs_key] = []


_runs_key = pytest.StashKey[list]()


_VM_FIXTURES = {"vm", "vm_run", "vm_run_once"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if _VM_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.vm)


@pytest.fixture(scope="session")
def vm():
    """The kernel and initramfs, found and built once per session."""
    try:
        return harness.Vm()
    except harness.Unavailable as e:
        pytest.skip(f"VM tests need: {e}")


def _boot(vm, config, node, name, script, kw):
    result = vm.run(name, script, **kw)
    config.stash[_runs_key].append((node.nodeid, result))
    node.stash.setdefault(_node_runs_key, []).append(result)
    print(result.summary())
    return result


_node_runs_key = pytest.StashKey[list]()


@pytest.fixture
def vm_run(vm, request):
    """Boots one guest per call, named after the test."""
    def run(script, name=None, **kw):
        name = name or re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
        return _boot(vm, request.config, request.node, name, script, kw)
    return run


@pytest.fixture(scope="module")
def vm_run_once(vm, request):
    """For a module whose tests share one boot: call with the same
    arguments from each test; the first call boots, later ones reuse it."""
    cache = {}

    def run(script, name, **kw):
        if name not in cache:
            cache[name] = _boot(vm, request.config, request.node, name, script, kw)
        return cache[name]
    return run


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    runs = list(item.stash.get(_node_runs_key, []))
    module = item.getparent(pytest.Module)
    if module is not None:
        runs += module.stash.get(_node_runs_key, [])
    for result in runs:
        report.sections.append((f"VM console ({result.log}), last lines",
                                result.console_tail(120)))


def pytest_terminal_summary(terminalreporter, config):
    runs = config.stash.get(_runs_key, [])
    if not runs:
        return
    terminalreporter.section("VM runs")
    total = 0.0
    for nodeid, r in runs:
        total += r.elapsed
        terminalreporter.write_line(
            f"{r.elapsed:6.1f}s  {r.verdict:<9} {r.name}  (boot {r.boot_s or 0:.1f}s)  {r.log}")
        if r.figures:
            figs = ", ".join(f"{k}={v}" for k, v in r.figures.items())
            terminalreporter.write_line(f"         {figs}")
    terminalreporter.write_line(f"{total:6.1f}s  in {len(runs)} VM runs")
