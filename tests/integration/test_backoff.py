"""When the GPU refuses an allocation (fragmented or contended VRAM), the
plugin tries again step= smaller, down to min-size=, and serves what it got."""
import re

import pytest

from .helpers import MiB


def attempts(server):
    """Sizes of the cuMemAlloc calls, in order, from the fake's trace."""
    return [int(n) // MiB for n in
            re.findall(r"cuMemAlloc\w*\(bytesize=(\d+) ", server.log_text())]


@pytest.mark.parametrize("params, gpus, fail_above, tried, expected", [
    # max: 300M, then 32M steps until one fits under 200M.
    (["size=max", "step=32M", "min-size=64M"], "total=301M", "200M",
     [300, 268, 236, 204, 172], 172),
    # The same with the default step (512M): straight to min-size.
    (["size=max", "min-size=64M"], "total=301M", "200M", [300, 64], 64),
    # auto: free - reserve = 200M first.
    (["size=auto", "reserve=100M", "step=48M", "min-size=16M"], "total=300M", "110M",
     [200, 152, 104], 104),
    # An explicit size shrinks only because min-size allows it.
    (["size=200M", "min-size=64M", "step=48M"], "total=256M", "110M", [200, 152, 104], 104),
    # The last step lands exactly on min-size, never below it.
    (["size=200M", "min-size=90M", "step=48M"], "total=256M", "95M", [200, 152, 104, 90], 90),
], ids=["max-step", "max-default-step", "auto", "explicit-min-size", "ends-at-min-size"])
def test_backoff_lands_on_the_first_size_that_fits(vram, connect, params, gpus, fail_above,
                                                    tried, expected):
    server = vram(*params, gpus=gpus,
                  env={"FAKECUDA_ALLOC_FAIL_ABOVE": fail_above, "FAKECUDA_LOG": "1"})
    assert connect(server).get_size() == expected * MiB
    assert attempts(server) == tried
    assert server.export_allocation()["size"] == expected * MiB
    assert f"serving {expected}.0 MiB" in server.log_text()


def test_explicit_size_without_min_size_never_shrinks(start_fails):
    outcome = start_fails("size=128M", "step=16M",
                          env={"FAKECUDA_ALLOC_FAIL_ABOVE": "100M", "FAKECUDA_LOG": "1"})
    assert "could not allocate even min-size=128.0 MiB" in outcome.output, outcome
    assert re.findall(r"cuMemAlloc\w*\(bytesize=(\d+) ", outcome.output) == [str(128 * MiB)]


def test_backoff_gives_up_at_min_size(start_fails):
    outcome = start_fails("size=max", "step=64M", "min-size=128M",
                          env={"FAKECUDA_ALLOC_FAIL_ABOVE": "100M", "FAKECUDA_LOG": "1"})
    assert "could not allocate even min-size=128.0 MiB of VRAM (256.0 MiB reported free)" \
        in outcome.output, outcome
    tried = [int(n) // MiB for n in re.findall(r"cuMemAlloc\w*\(bytesize=(\d+) ",
                                               outcome.output)]
    assert tried == [256, 192, 128]


def test_backed_off_export_holds_data(vram, connect):
    server = vram("size=max", "step=32M", "min-size=64M", gpus="total=301M",
                  env={"FAKECUDA_ALLOC_FAIL_ABOVE": "100M"})
    h = connect(server)
    size = h.get_size()
    assert size == 76 * MiB  # 300M, 268M, ... 108M refused
    h.pwrite(b"last bytes", size - 10)
    assert h.pread(10, size - 10) == b"last bytes"
    assert server.vram_read(size - 10, 10) == b"last bytes"
