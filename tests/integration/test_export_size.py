"""The user picks the size of the swap device: an exact size, `auto` (what
is free minus a reserve for the desktop, rounded down to 2 MiB) or `max`
(everything free)."""
import pytest

from .helpers import GiB, MiB


def export_size(server, connect):
    size = connect(server).get_size()
    # The export is exactly the VRAM allocated for it.
    assert server.export_allocation()["size"] == size
    return size


@pytest.mark.parametrize("param", ["size=64M", "size=67108864", "size=65536K", "size=64MiB",
                                   "64M"])
def test_explicit_size_is_exact(vram, connect, param):
    """`nbdkit vram 64M` is the same as size=64M (size is the magic key)."""
    assert export_size(vram(param), connect) == 64 * MiB


@pytest.mark.parametrize("gpus, params, expected", [
    # The defaults: reserve=1G, min-size=256M.
    ("total=1300M", [], 1300 * MiB - GiB),
    # free - 1G = 77M + 123456 bytes, rounded down to 2 MiB.
    (f"total=1200M,free={GiB + 77 * MiB + 123456}", ["min-size=32M"], 76 * MiB),
    # A GPU that drives a display keeps 3G by default.
    ("total=3200M,display=1", ["min-size=32M"], 3200 * MiB - 3 * GiB),
    # An explicit reserve replaces the default, display or not.
    ("total=512M", ["reserve=400M", "min-size=32M"], 112 * MiB),
    ("total=512M,display=1", ["reserve=400M", "min-size=32M"], 112 * MiB),
    ("total=512M,free=300M", ["reserve=101M", "min-size=32M"], 198 * MiB),
], ids=["defaults", "default-reserve-rounded", "display-reserve", "reserve", "reserve-display",
        "reserve-rounded"])
def test_auto_is_free_minus_reserve_rounded_down_to_2m(vram, connect, gpus, params, expected):
    server = vram("size=auto", *params, gpus=gpus)
    assert export_size(server, connect) == expected


@pytest.mark.parametrize("gpus, params, expected", [
    ("total=301M", [], 300 * MiB),
    (f"total=512M,free={300 * MiB + 4095}", [], 300 * MiB),
    ("total=100M", ["min-size=64M"], 100 * MiB),
])
def test_max_takes_all_free_vram_rounded_down_to_2m(vram, connect, gpus, params, expected):
    assert export_size(vram("size=max", *params, gpus=gpus), connect) == expected

