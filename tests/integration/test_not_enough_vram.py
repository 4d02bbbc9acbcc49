"""A user who asks for more VRAM than the GPU has free is told how much is
free, before nbdkit goes into the background, unless min-size= says a
smaller export will do."""
from .helpers import MiB

GPU = "name=Busy GPU,total=256M,free=100M,pci=0000:41:00.0"
LABEL = "GPU 0 (Busy GPU, 0000:41:00.0)"


def test_size_larger_than_free_is_refused_with_the_free_amount(start_fails):
    outcome = start_fails("size=128M", gpus=GPU)
    assert (f"{LABEL} has 100.0 MiB of VRAM free (of 256.0 MiB), less than size=128.0 MiB"
            in outcome.output), outcome
    assert "min-size=" in outcome.output  # says how to accept less


def test_second_instance_asking_for_more_than_is_left(start_fails):
    """A first nbdkit-vram took 200M of this 256M GPU (each nbdkit process
    has its own fake driver, so the GPU simply reports what is left)."""
    outcome = start_fails("size=128M", gpus="total=256M,free=56M")
    assert "has 56.0 MiB of VRAM free (of 256.0 MiB), less than size=128.0 MiB" \
        in outcome.output, outcome
    assert "another nbdkit-vram instance may hold it" in outcome.output


def test_min_size_lets_an_explicit_size_shrink_to_what_is_free(vram, connect):
    server = vram("size=128M", "min-size=64M", gpus=GPU)
    assert connect(server).get_size() == 100 * MiB


def test_min_size_larger_than_free_is_refused(start_fails):
    outcome = start_fails("size=128M", "min-size=120M", gpus=GPU)
    assert ("has 100.0 MiB of VRAM free (of 256.0 MiB), less than size=128.0 MiB and "
            "min-size=120.0 MiB" in outcome.output), outcome


def test_auto_with_nothing_left_after_the_reserve(start_fails):
    outcome = start_fails("size=auto", gpus="total=1G")
    assert ("has 1.0 GiB of VRAM free (of 1.0 GiB); size=auto keeps reserve=1.0 GiB free, "
            "which leaves nothing to serve" in outcome.output), outcome


def test_auto_below_the_default_min_size(start_fails):
    outcome = start_fails("size=auto", "reserve=100M", gpus="total=300M")
    assert "that leaves 200.0 MiB to serve, below min-size=256.0 MiB" in outcome.output, outcome


def test_max_below_min_size(start_fails):
    outcome = start_fails("size=max", "min-size=128M", gpus=GPU)
    assert "that leaves 100.0 MiB to serve, below min-size=128.0 MiB" in outcome.output, outcome


def test_allocation_refused_by_the_gpu_is_reported_on_stderr(start_fails):
    """Free memory looks sufficient, but the allocation itself fails (it
    happens after nbdkit forks): with -f the reason still reaches stderr."""
    outcome = start_fails("size=64M", env={"FAKECUDA_ALLOC_FAIL_ABOVE": "32M"})
    assert ("GPU 0 (Fake GPU 0, 0000:01:00.0) could not allocate even min-size=64.0 MiB of "
            "VRAM (256.0 MiB reported free)" in outcome.output), outcome


def test_lazy_export_that_could_never_fill_beside_its_reserve_is_refused(start_fails):
    # 64 MiB beside reserve=200M on a 256 MiB GPU: only 56 MiB could ever
    # be mapped, and writes past that would fail with ENOSPC.
    outcome = start_fails("size=64M", "allocation=lazy", "reserve=200M", gpus="total=256M")
    assert ("256.0 MiB of VRAM in all; size=64.0 MiB with reserve=200.0 MiB kept free could "
            "never be filled") in outcome.output, outcome
    assert "Lower size= or reserve=" in outcome.output
