"""The harness itself: what it makes of console lines, the initramfs it
builds, and a guest that boots and reports.  Only the last boots a VM."""
import struct

import harness


def test_console_lines_are_classified():
    c = harness.classify
    assert c("[   23.39] INFO: task kworker/1:1H:43 blocked for more than 10 seconds.") == "hang"
    assert c("[   52.41] block nbd0: Connection timed out, retrying (1/2 alive)") == "hang"
    assert c("[    9.99] BUG: kernel NULL pointer dereference, address: 0000") == "crash"
    assert c("[    1.00] Kernel panic - not syncing: Fatal exception") == "crash"
    assert c("[   14.63] I/O error, dev nbd0, sector 42368 op 0x0:(READ)") == "io-error"
    assert c("[   14.63] I/O error, dev nbd0, sector 42368 op 0x0:(READ)",
             expect_io_errors=True) == "io-error-expected"
    assert c("[   30.00] stress-ng-vm invoked oom-killer: gfp_mask=0x140dca") == "oom"
    assert c("vmtest: ok: swapoff") is None
    # The guest's own protocol lines never count as kernel trouble.
    assert c("VMTEST RESULT fail I/O error in the checker") is None
    # Nor vm-hangdump's dump of what it read, unless a kernel line ran into it.
    assert c("hangdump:   [<0>] blk_mq_submit_bio+0x188/0x5f0") is None
    assert c("hangdump:   Write-error on swap-device in some file") is None
    assert c("hangdump: thread 9 (nbdkit) state S[   46.95] INFO: task kswapd0:44 blocked for "
             "more than 10 seconds.") == "hang"


def test_cpio_entries_are_newc_and_aligned():
    e = harness._cpio_entry("dev/console", 0o020600, rdev=(5, 1))
    assert e.startswith(b"070701") and len(e) % 4 == 0
    fields = [int(e[6 + 8 * i:14 + 8 * i], 16) for i in range(13)]
    assert fields[1] == 0o020600 and fields[9:11] == [5, 1] and fields[11] == len("dev/console") + 1
    f = harness._cpio_entry("x", 0o100644, b"abcde")
    assert len(f) % 4 == 0 and b"abcde" in f


def test_modinfo_reads_a_minimal_elf_module():
    # An ELF64 file with a section-name table and one .modinfo section.
    shstr = b"\0.shstrtab\0.modinfo\0"
    info = b"license=GPL\0depends=virtio,virtio_ring\0"
    body_off = 64
    shoff = body_off + len(shstr) + len(info)
    head = bytearray(64)
    head[:6] = b"\x7fELF\x02\x01"
    struct.pack_into("<Q", head, 0x28, shoff)
    struct.pack_into("<HHH", head, 0x3A, 64, 3, 1)
    sections = bytes(64)  # null section
    sections += struct.pack("<IIQQQQ", 1, 3, 0, 0, body_off, len(shstr)) + bytes(24)
    sections += struct.pack("<IIQQQQ", 11, 1, 0, 0, body_off + len(shstr), len(info)) + bytes(24)
    data = bytes(head) + shstr + info + sections
    assert harness._modinfo(data)["depends"] == ["virtio,virtio_ring"]


def _elf_with_note(name, ntype):
    """An ELF64 file with one PT_NOTE segment holding one note."""
    desc = struct.pack("<I", 0x1000000)
    note = struct.pack("<III", len(name), len(desc), ntype) + name
    note += bytes(-len(note) % 4) + desc
    head = bytearray(64)
    head[:6] = b"\x7fELF\x02\x01"
    struct.pack_into("<Q", head, 0x20, 64)              # e_phoff
    struct.pack_into("<HH", head, 0x36, 56, 1)          # e_phentsize, e_phnum
    phdr = struct.pack("<IIQQQQQQ", 4, 4, 64 + 56, 0, 0, len(note), len(note), 4)
    return bytes(head) + phdr + note


def test_pvh_note_is_found_only_where_it_is():
    assert harness._has_pvh_note(_elf_with_note(b"Xen\0", 18))
    assert not harness._has_pvh_note(_elf_with_note(b"Xen\0", 17))
    assert not harness._has_pvh_note(_elf_with_note(b"GNU\0", 18))
    assert not harness._has_pvh_note(b"MZ" + bytes(100))


def test_boot_image_unpacks_an_xz_kernel_with_a_pvh_note_once(tmp_path):
    import lzma
    elf = _elf_with_note(b"Xen\0", 18)
    vmlinuz = tmp_path / "vmlinuz-9.9-amd64"
    vmlinuz.write_bytes(b"setup code" + lzma.compress(elf, format=lzma.FORMAT_XZ) + b"tail")
    k = harness.Kernel(vmlinuz, tmp_path, "9.9-amd64")
    image = harness.boot_image(k, tmp_path / "work")
    assert image != vmlinuz and image.read_bytes() == elf
    image.write_bytes(b"cached")            # unchanged source: the cached copy
    assert harness.boot_image(k, tmp_path / "work").read_bytes() == b"cached"
    # No PVH note, or no xz payload: the vmlinuz itself.
    vmlinuz.write_bytes(b"setup" + lzma.compress(_elf_with_note(b"GNU\0", 3),
                                                 format=lzma.FORMAT_XZ))
    assert harness.boot_image(k, tmp_path / "work2") == vmlinuz
    vmlinuz.write_bytes(b"a gzip kernel, say")
    assert harness.boot_image(k, tmp_path / "work3") == vmlinuz


def test_guest_boots_and_reports(vm_run):
    r = vm_run("smoke.sh", timeout=120)
    assert r.verdict == "pass", r.reason
    assert r.boot_s is not None and r.boot_s < 60
    assert r.figures["bar_bytes"] >= 1 << 30


def test_host_check_of_the_fake_vram_file_finds_patterns_zeroes_and_mistakes(tmp_path):
    import sys
    sys.path.insert(0, str(harness.GUEST_DIR))
    import blockcheck
    base, M = 8192, 1 << 20
    vram = tmp_path / "vram"
    vram.write_bytes(bytes(base) + blockcheck.pattern(0, 2 * M, 7) + bytes(M))
    ok, detail = harness.check_vram_ranges("t", [f"base={base}", "7:0:2M", "0:2M:1M"], vram)
    assert ok, detail
    ok, detail = harness.check_vram_ranges("t", [f"base={base}", "7:0:3M"], vram)
    assert not ok and "block 0x200000 holds zeroes" in detail
    ok, detail = harness.check_vram_ranges("t", [f"base={base}", "0:1M:1M"], vram)
    assert not ok and "pattern of offset 0x100000 seed 7" in detail
    ok, detail = harness.check_vram_ranges("t", ["base=0", "7:0:4K"], vram)
    assert not ok  # the export does not start where the base says
