"""A user who mistypes a parameter is told, before anything touches the
GPU, which parameter is wrong and what it accepts."""
import pytest

ACCEPTED_SIZE = "expected a size in bytes with an optional suffix (e.g. 7G, 512M, 4096)"

CASES = [
    # (parameters, fragments the message must contain)
    (["size=abc"], ["size=abc:", ACCEPTED_SIZE, "'auto' or 'max'"]),
    (["size=-1"], ["size=-1:", ACCEPTED_SIZE]),
    (["size=7Q"], ["size=7Q:", ACCEPTED_SIZE]),
    (["size="], ["size=:", ACCEPTED_SIZE]),
    (["size=1000"], ["size=1000:", "non-zero multiple of 4096 bytes"]),
    (["size=0"], ["size=0:", "non-zero multiple of 4096 bytes"]),
    (["64M", "reserve=lots"], ["reserve=lots:", ACCEPTED_SIZE]),
    (["64M", "step=x"], ["step=x:", ACCEPTED_SIZE]),
    (["64M", "step=100K"], ["step=100K:", "whole number of MiB, at least 1M"]),
    (["64M", "min-size=1000"], ["min-size=1000:", "non-zero multiple of 4096 bytes"]),
    (["64M", "min-size=big"], ["min-size=big:", ACCEPTED_SIZE]),
    (["64M", "device=gpu0"], ["device=gpu0:", "a CUDA device index (0, 1, ...)",
                              "a GPU UUID", "PCI bus id (0000:01:00.0)"]),
    (["64M", "device=GPU-1234"], ["device=GPU-1234:", "a CUDA device index"]),
    (["64M", "device=0000:01:00"], ["device=0000:01:00:", "PCI bus id"]),
    (["64M", "lanes=0"], ["lanes=0:", "expected a whole number from 1 to 1024"]),
    (["64M", "lanes=2000"], ["lanes=2000:", "from 1 to 1024"]),
    (["64M", "lanes=two"], ["lanes=two:", "from 1 to 1024"]),
    (["64M", "piece-size=1K"], ["piece-size=1K:", "multiple of 4K from 4K to 64M"]),
    (["64M", "piece-size=6K"], ["piece-size=6K:", "multiple of 4K from 4K to 64M"]),
    (["64M", "piece-size=128M"], ["piece-size=128M:", "multiple of 4K from 4K to 64M"]),
    (["64M", "piece-size=fast"], ["piece-size=fast:", ACCEPTED_SIZE]),
    (["64M", "swap-safety=yes"], ["swap-safety=yes:", "'attempt'", "'require'", "'off'"]),
    (["64M", "init-timeout=-1"], ["init-timeout=-1:", "whole number from 0 to 3600"]),
    (["64M", "init-timeout=1h"], ["init-timeout=1h:", "whole number from 0 to 3600"]),
    (["64M", "init-timeout=3601"], ["init-timeout=3601:", "from 0 to 3600"]),
    (["64M", "colour=blue"], ["unknown parameter 'colour'",
                              "accepted parameters are size, reserve, step, min-size, device, "
                              "lanes, piece-size, swap-safety, init-timeout, wait, allocation, "
                              "lazy-chunk, lazy-spare, status-file"]),
    (["64M", "lane=2"], ["unknown parameter 'lane'"]),
    (["64M", "allocation=sparse"], ["allocation=sparse:", "'eager'", "'lazy'"]),
    (["64M", "compress=gzip"], ["compress=gzip: unknown; use none, lz4, zstd, or zstd:LEVEL"]),
    (["64M", "compress=zstd:99"], ["compress=zstd:99: the zstd level must be a whole number"]),
    (["64M", "compress=lz4", "allocation=eager"],
     ["compress=lz4 with allocation=eager", "drop allocation=eager"]),
    (["64M", "lazy-chunk=3M"], ["lazy-chunk=3M:", "multiple of 2M from 2M to 1G"]),
    (["64M", "lazy-chunk=2G"], ["lazy-chunk=2G:", "multiple of 2M from 2M to 1G"]),
    (["64M", "lazy-chunk=big"], ["lazy-chunk=big:", ACCEPTED_SIZE]),
    (["64M", "lazy-spare=65"], ["lazy-spare=65:", "whole number from 0 to 64"]),
    (["64M", "lazy-spare=some"], ["lazy-spare=some:", "whole number from 0 to 64"]),
    (["64M", "status-file=vram.status"], ["status-file=vram.status:", "absolute path"]),
    (["reserve=1G"], ["size= is required", "size=7G", "size=auto", "size=max"]),
    (["size=64M", "min-size=128M"], ["min-size= (128.0 MiB) is larger than size= (64.0 MiB)"]),
]


@pytest.mark.parametrize("params, fragments", CASES, ids=[" ".join(c[0]) for c in CASES])
def test_bad_parameter_is_named_with_the_accepted_forms(start_fails, tmp_path, params, fragments):
    outcome = start_fails(*params, swap_safety=None)
    for fragment in fragments:
        assert fragment in outcome.output, outcome
    assert "nbdkit: error:" in outcome.output
    # Refused while parsing: no GPU memory was ever allocated.
    assert not (tmp_path / "refused.map").exists()
