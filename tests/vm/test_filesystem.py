"""A filesystem as a second real user of the device
(tests/vm/guest/filesystem.sh): mkfs.ext4 on /dev/nbd0, files written and
checksummed, read back after dropping the page cache and after a remount,
fstrim, and fsck -f -n clean.
"""
from settings import BLOCK_BOUND


def test_ext4_on_the_export_writes_reads_back_and_fscks_clean(vm_run):
    r = vm_run("filesystem.sh", timeout=BLOCK_BOUND)
    assert r.verdict == "pass", r.reason
    whats = [c["what"] for c in r.result["checks"]]
    assert any(w.startswith("fsck.ext4 -f -n reports a clean filesystem") for w in whats)
    assert r.figures["files"] > 50
