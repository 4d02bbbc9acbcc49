"""What a client such as nbd-client or the kernel sees at connection time:
the export can be used from several connections at once (multi-conn),
supports FUA, flush, trim, zero and fast zero, is not rotational, and
prefers 4 KiB requests (the swap page size) but accepts any alignment."""
import nbd


def test_export_advertises_its_capabilities(vram, connect):
    h = connect(vram("size=64M"))
    assert h.can_multi_conn()
    assert h.can_fua()
    assert h.can_flush()
    assert h.can_trim()
    assert h.can_zero()
    assert h.can_fast_zero()
    assert not h.is_rotational()
    assert not h.is_read_only()
    assert h.get_block_size(nbd.SIZE_PREFERRED) == 4096
    # Any alignment works (the data tests write single bytes at odd
    # offsets), so the plugin asks for none.
    assert h.get_block_size(nbd.SIZE_MINIMUM) == 1


def test_capabilities_are_the_same_on_every_connection(vram, connect):
    """Multi-conn promises consistency across connections: the flags must
    not depend on which connection asks."""
    server = vram("size=64M")

    def flags(h):
        return (h.can_multi_conn(), h.can_fua(), h.can_flush(), h.can_trim(), h.can_zero(),
                h.can_fast_zero(), h.is_rotational(), h.get_size(),
                h.get_block_size(nbd.SIZE_PREFERRED))

    first = flags(connect(server))
    for _ in range(3):
        assert flags(connect(server)) == first
