"""Before nbdkit goes into the background it checks that there is an
NVIDIA driver and a GPU, and says plainly when there is not.  At boot the
driver may not be ready yet: the plugin waits init-timeout= seconds for it."""
import re

import pytest


def cuinit_calls(outcome):
    # The fake driver prints one line each time cuInit fails on purpose.
    return len(re.findall(r"fakecuda: cuInit fails with \d+", outcome.output))


def test_no_driver(start_fails):
    outcome = start_fails("size=64M", env={"NBDKIT_VRAM_LIBCUDA": "/nonexistent/libcuda.so.1"})
    assert "NVIDIA driver not found: cannot load /nonexistent/libcuda.so.1" in outcome.output
    assert "Install the NVIDIA driver" in outcome.output


def test_library_that_is_not_a_cuda_driver(start_fails):
    outcome = start_fails("size=64M", env={"NBDKIT_VRAM_LIBCUDA": "libz.so.1"})
    assert "libz.so.1 has no cuGetProcAddress" in outcome.output
    assert "CUDA 12.0 or later" in outcome.output


def test_no_gpu(start_fails):
    outcome = start_fails("size=64M", gpus="")
    assert "no NVIDIA GPU found: the driver is loaded but reports no CUDA device" in outcome.output


def test_driver_init_error_without_waiting(start_fails):
    outcome = start_fails("size=64M", "init-timeout=0", env={"FAKECUDA_INIT_ERROR": "999"})
    assert ("the NVIDIA driver failed to initialise (cuInit: CUDA_ERROR_UNKNOWN"
            in outcome.output), outcome
    assert "Check that nvidia-smi works" in outcome.output
    assert cuinit_calls(outcome) == 1, outcome


@pytest.mark.parametrize("code", ["999", "802", "46"],
                         ids=["unknown", "system-not-ready", "device-unavailable"])
def test_driver_not_ready_is_retried_for_init_timeout(start_fails, code):
    outcome = start_fails("size=64M", "init-timeout=1", env={"FAKECUDA_INIT_ERROR": code})
    assert "the NVIDIA driver failed to initialise (cuInit:" in outcome.output
    # Retried every 250 ms for a second, then given up.
    assert cuinit_calls(outcome) >= 4, outcome
    assert 1.0 <= outcome.elapsed < 10, outcome


def test_other_init_errors_are_not_retried(start_fails):
    """An error that waiting cannot cure fails at once, whatever init-timeout."""
    outcome = start_fails("size=64M", "init-timeout=30",
                          env={"FAKECUDA_INIT_ERROR": "CUDA_ERROR_NOT_PERMITTED"})
    assert "the NVIDIA driver failed to initialise (cuInit: CUDA_ERROR_NOT_PERMITTED" \
        in outcome.output
    assert cuinit_calls(outcome) == 1, outcome
    assert outcome.elapsed < 10, outcome
