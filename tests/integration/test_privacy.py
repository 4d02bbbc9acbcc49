"""Swap holds secrets.  Whatever the GPU's memory held before (another
process's data) cannot be read through the export, and what was swapped
to it does not outlive nbdkit."""
import random

from .helpers import MiB, assert_same, assert_zero, read_export, read_file_at


def test_old_vram_contents_are_not_readable(vram, connect, tmp_path):
    memory = tmp_path / "vram.bin"
    memory.write_bytes(b"\xA5" * (128 * MiB))  # left over by a previous user
    server = vram("size=64M", gpus="total=128M", memory_file=memory)
    assert server.export_allocation()["file_offset"] == 0

    assert_zero(read_export(connect(server), 0, 64 * MiB), "export right after start")
    assert_zero(read_file_at(memory, 0, 64 * MiB), "allocated VRAM")
    # The rest of the GPU was not ours to touch (and shows that this really
    # is the memory the fake serves from).
    assert read_file_at(memory, 64 * MiB, 64 * MiB) == b"\xA5" * (64 * MiB)


def test_written_data_is_wiped_when_nbdkit_exits(vram, connect, tmp_path):
    memory = tmp_path / "vram.bin"
    server = vram("size=64M", gpus="total=128M", memory_file=memory,
                  env={"FAKECUDA_LOG": "1"})
    h = connect(server)
    secrets = random.Random(4).randbytes(8 * MiB)
    for offset in (0, 20 * MiB + 3, 64 * MiB - len(secrets)):
        h.pwrite(secrets, offset)
        assert_same(read_file_at(memory, offset, len(secrets)), secrets, "VRAM while serving")
    connect.close_all()
    assert server.stop() == 0

    assert_zero(read_file_at(memory, 0, 64 * MiB), "VRAM after nbdkit exited")
    # Wiped before the memory was given back to the driver: a full-size
    # memset at start, another one at exit, then the free.
    dptr = f"{server.export_allocation()['dptr']:#x}"
    trace = [line for line in server.log_text().splitlines()
             if f"cuMemsetD8Async(dst={dptr} value=0 n={64 * MiB} " in line
             or f"cuMemFree_v2(dptr={dptr})" in line]
    assert [line.split("(")[0].split()[-1] for line in trace] == \
        ["cuMemsetD8Async", "cuMemsetD8Async", "cuMemFree_v2"], trace
    assert all(line.endswith("= CUDA_SUCCESS") for line in trace), trace
