"""The engine's RESP packer writes exactly what hiredis's packer writes, whatever the op's shape."""

from __future__ import annotations

from tradewire.journal.wire import Arg, pack, pack_ops


def test_pack_ops_with_templated_and_other_shapes_gives_hiredis_bytes() -> None:
    events = b'[{"type":"accepted","order_id":7,"user":"\xc3\xa9","market":"BTC-USDT"}]'
    ops: list[tuple[Arg, ...]] = [
        (b"XADD", b"tw:{0}:events", b"1-0", b"cmd", b"1-0", b"ts", b"17", b"rid", b"ab", b"e", events),
        (b"PUBLISH", b"tw:reply:gw", b'{"rid":"ab","events":[]}'),
        (b"PUBLISH", "tw:user:\u00e9", b""),  # a str argument: not templated
        ("XADD", "tw:mytrades:u", "MAXLEN", "~", 10_000, "*", "t", "{}", "a", "b", 5),  # eleven, not bytes
        (b"SET", b"tw:{0}:applied", b"1-0"),
        ("HSET", "tw:orders:u", 7, '{"symbol":"BTCUSDT"}'),
        (b"EXEC",),
    ]
    assert pack_ops(ops) == [pack(op) for op in ops]
