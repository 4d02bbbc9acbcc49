"""The VM suite's pressure boots, in one place: the tests boot them once
each (test_pressure.py, test_lazy_swap.py, test_vram_swap_lifecycle.py,
test_integrity_swap.py) and soak.py boots them many times, with the same
script, parameters and bounds, so a soak runs exactly the load CI runs.

Each is the keyword arguments of harness.Vm.run (besides the name).
"""
from settings import HUNG_TASK_TIMEOUT, INTEGRITY_SWAP_BOUND, PRESSURE_BOUND

# Wall-clock bound for the lazy boot: about 80 s on an idle 2-core
# machine, up to 2.5 times that beside another VM test.
LAZY_SWAP_BOUND = 300

PRESSURE = dict(script="pressure.sh", params={"SAFETY": "require"}, timeout=PRESSURE_BOUND,
                hung_task_timeout=HUNG_TASK_TIMEOUT)
# docs/dev/vm-tests.md, finding 2: the same memory in 4 workers, which
# deadlocked while nbdkit locked 192 MiB for nothing.  Not in CI.
PRESSURE_4_WORKERS = dict(script="pressure.sh", params={"SAFETY": "require", "VM_WORKERS": 4},
                          timeout=PRESSURE_BOUND, hung_task_timeout=HUNG_TASK_TIMEOUT)
LAZY_SWAP = dict(script="lazy_swap.sh", params={"LAZY_CHUNK": "2M", "SWAP_SIZE": "768M"},
                 timeout=LAZY_SWAP_BOUND, hung_task_timeout=HUNG_TASK_TIMEOUT)
LIFECYCLE = dict(script="vram_swap_lifecycle.sh", timeout=PRESSURE_BOUND)
# The pressure boot with every swapped page kept compressed (compress=lz4).
# At the kernel's own reserve of free RAM it is finding 2's deadlock at a
# lighter load (docs/dev/vm-tests.md, finding 14: 2 hangs in 17 boots):
# soak only.
PRESSURE_COMPRESS = dict(PRESSURE, params={**PRESSURE["params"], "COMPRESS": "lz4"})
INTEGRITY_SWAP = dict(script="integrity_swap.sh", timeout=INTEGRITY_SWAP_BOUND,
                      expect_io_errors=True)



def with_min_free(scenario, kb):
    """The scenario with vm.min_free_kbytes raised to kb (pressure.sh's
    MIN_FREE_KB; what vram-swap's MIN_FREE_KB= does)."""
    return dict(scenario, params={**scenario["params"], "MIN_FREE_KB": kb})


# What vram-swap sets while VRAM swap is on (MIN_FREE_KB, 64 MiB).
VRAM_SWAP_MIN_FREE_KB = 65536
# The compressed boot as vram-swap runs it, with its reserve: in CI.
PRESSURE_COMPRESS_RESERVE = with_min_free(PRESSURE_COMPRESS, VRAM_SWAP_MIN_FREE_KB)
# idle-release=: the GPU rests when the load starts and wakes for it, each
# wake allocating the test driver's 32 MiB context at whatever free RAM
# there is; with vram-swap's reserve, as vram-swap runs it.  Soak only:
# wakes of up to 5 s, and a deadlock at the kernel's own reserve
# (docs/dev/vm-tests.md, finding 15).
PRESSURE_IDLE_RELEASE = with_min_free(
    dict(PRESSURE, params={**PRESSURE["params"], "IDLE_RELEASE": "2s"}), VRAM_SWAP_MIN_FREE_KB)


# What soak.py boots, by name.
SOAK = {"pressure": PRESSURE, "pressure-4-workers": PRESSURE_4_WORKERS, "lazy-swap": LAZY_SWAP,
        "pressure-compress": PRESSURE_COMPRESS,
        "pressure-compress-min-free-64m": PRESSURE_COMPRESS_RESERVE,
        "pressure-idle-release": PRESSURE_IDLE_RELEASE,
        "pressure-idle-release-kernel-reserve":
            dict(PRESSURE, params={**PRESSURE["params"], "IDLE_RELEASE": "2s"}),
        "lifecycle": LIFECYCLE, "integrity-swap": INTEGRITY_SWAP,
        "pressure-4-workers-min-free-16m": with_min_free(PRESSURE_4_WORKERS, 16384),
        "pressure-4-workers-min-free-32m": with_min_free(PRESSURE_4_WORKERS, 32768),
        "pressure-4-workers-min-free-64m": with_min_free(PRESSURE_4_WORKERS, 65536),
        # Without the block layer's writeback throttling, in which kswapd
        # waited in the hangs of the harder load.
        "pressure-4-workers-no-wbt": dict(PRESSURE_4_WORKERS,
                                          params={**PRESSURE_4_WORKERS["params"],
                                                  "WBT_LAT_USEC": 0})}
# The default set: the suite's pressure boots and finding 2's harder load
# with the reserve vram-swap keeps (MIN_FREE_KB, 64 MiB), the same load as
# without it.  pressure-4-workers, at the kernel's own reserve, is the
# kernel's deadlock (docs/dev/vm-tests.md, finding 2): boot it by name.
DEFAULT_SOAK = ["pressure", "pressure-4-workers-min-free-64m", "lazy-swap", "lifecycle",
                "integrity-swap"]


def run_args(scenario):
    """(script, keyword arguments) for Vm.run / vm_run."""
    kw = dict(scenario)
    return kw.pop("script"), kw
