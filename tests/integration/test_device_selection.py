"""On a machine with several GPUs the user picks one by CUDA index, by UUID
(as nvidia-smi -L prints it) or by PCI bus id; a GPU that does not exist is
refused with the list of those that do."""
import pytest

from .helpers import MiB

ALPHA_UUID = "GPU-11111111-2222-3333-4444-555555555555"
BETA_UUID = "GPU-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
TWO_GPUS = (f"name=Alpha One,total=128M,uuid={ALPHA_UUID},pci=0000:3b:00.0;"
            f"name=Beta Two,total=192M,uuid={BETA_UUID},pci=0000:af:00.0,display=1")
ALPHA_LINE = f"0: Alpha One, {ALPHA_UUID}, 0000:3b:00.0"
BETA_LINE = f"1: Beta Two, {BETA_UUID}, 0000:af:00.0"


def check_serves_from(server, connect, gpu, label, file_offset):
    allocation = server.export_allocation()
    assert allocation["gpu"] == gpu
    assert allocation["file_offset"] == file_offset
    assert f"of VRAM on {label}" in server.log_text()
    # And the data goes to that GPU's memory.
    h = connect(server)
    h.pwrite(b"which gpu?", 4096)
    assert server.vram_read(4096, 10) == b"which gpu?"


def test_default_is_device_0(vram, connect):
    server = vram("size=64M", gpus=TWO_GPUS)
    check_serves_from(server, connect, 0, "GPU 0 (Alpha One, 0000:3b:00.0)", 0)


@pytest.mark.parametrize("device", [
    "1", BETA_UUID, BETA_UUID.upper(), BETA_UUID[4:], "0000:af:00.0", "0000:AF:00.0",
    "00000000:af:00.0", "af:00.0",
], ids=["index", "uuid", "uuid-upper", "uuid-bare", "pci", "pci-upper", "pci-8-digit-domain",
        "pci-no-domain"])
def test_second_gpu_by_index_uuid_or_pci(vram, connect, device):
    server = vram("size=64M", f"device={device}", gpus=TWO_GPUS)
    # GPU 1's memory follows GPU 0's (128M) in the fake's memory file.
    check_serves_from(server, connect, 1, "GPU 1 (Beta Two, 0000:af:00.0)", 128 * MiB)


def test_first_gpu_by_uuid(vram, connect):
    server = vram("size=64M", f"device={ALPHA_UUID}", gpus=TWO_GPUS)
    check_serves_from(server, connect, 0, "GPU 0 (Alpha One, 0000:3b:00.0)", 0)


def test_size_auto_uses_the_selected_gpus_free_memory(vram, connect):
    server = vram("size=auto", "reserve=64M", "min-size=32M", "device=0000:af:00.0",
                  gpus=TWO_GPUS)
    assert connect(server).get_size() == 192 * MiB - 64 * MiB


def test_index_out_of_range_lists_the_gpus(start_fails):
    outcome = start_fails("size=64M", "device=2", gpus=TWO_GPUS)
    assert "device=2: no such GPU, this machine has 2 GPUs (device=0 to 1):" in outcome.output
    assert ALPHA_LINE in outcome.output and BETA_LINE in outcome.output, outcome


def test_index_out_of_range_on_a_single_gpu(start_fails):
    outcome = start_fails("size=64M", "device=1", gpus="name=Solo,total=128M")
    assert "device=1: no such GPU, this machine has 1 GPU (device=0):" in outcome.output
    assert "0: Solo, GPU-" in outcome.output


def test_unknown_uuid_lists_the_gpus(start_fails):
    uuid = "GPU-00000000-0000-0000-0000-000000000099"
    outcome = start_fails("size=64M", f"device={uuid}", gpus=TWO_GPUS)
    assert f"device={uuid}: no GPU has this UUID; this machine has 2 GPUs:" in outcome.output
    assert ALPHA_LINE in outcome.output and BETA_LINE in outcome.output, outcome


def test_unknown_pci_id_lists_the_gpus(start_fails):
    outcome = start_fails("size=64M", "device=0000:02:00.0", gpus=TWO_GPUS)
    assert ("device=0000:02:00.0: no GPU has this PCI bus id; this machine has 2 GPUs:"
            in outcome.output)
    assert ALPHA_LINE in outcome.output and BETA_LINE in outcome.output, outcome
