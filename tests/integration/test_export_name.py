"""The plugin serves one export, which has no name: a client that asks for
a name is refused, saying how to connect, rather than given the same data
under a second name (which the integrity filter, keeping checksums per
name, would take for another export and fail every block of)."""
import nbd
import pytest

from support.nbdkit import BUILD

FILTER = str(BUILD / "filters" / "integrity" / "nbdkit-integrity-filter.so")


def uri(server, name):
    return f"nbd+unix:///{name}?socket={server.socket}"


@pytest.mark.parametrize("filters", [[], [FILTER]], ids=["plugin", "behind-integrity"])
def test_a_named_export_is_refused_and_the_default_one_serves(vram, connect, filters):
    server = vram("size=64M", filters=filters)
    h = connect(server)
    h.pwrite(b"data", 0)
    other = nbd.NBD()
    with pytest.raises(nbd.Error):
        other.connect_uri(uri(server, "swap"))
    del other
    log = server.log_text()
    assert ('export "swap": the vram plugin serves one export, which has no name: connect '
            'without an export name (nbd-client without -N') in log, log
    assert 'checking export "swap"' not in log  # no checksum table for it
    assert h.pread(4, 0) == b"data"
    assert connect(server).pread(4, 0) == b"data"  # "" is the export


def test_a_hostile_name_is_shown_printable_and_short(vram):
    server = vram("size=64M")
    other = nbd.NBD()
    with pytest.raises(nbd.Error):
        other.connect_uri(uri(server, "a%0Ab%1B" + "x" * 200))
    del other
    line = next(l for l in server.log_text().splitlines() if "the vram plugin serves one" in l)
    assert 'export "a?b?' + "x" * 60 + '":' in line, line
