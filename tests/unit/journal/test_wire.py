"""The engine's RESP packer writes exactly what hiredis's packer writes, whatever the op's shape."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tradewire.journal.wire import PACKER, Arg, _pack_in_python, pack, pack_commands


def test_c_packer_with_the_transactions_shapes_gives_hiredis_bytes() -> None:
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
    assert pack_commands(ops) == b"".join(pack(op) for op in ops)


def test_the_c_packer_is_built_here() -> None:
    """The project's install builds it; a silent fall-back to the Python packer would pass the rest."""
    assert PACKER == "native"


_ARGS = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=40),  # non-ASCII too: UTF-8, as hiredis packs it
    st.sampled_from(["\ud800", "a\udfff"]),  # lone surrogates: no UTF-8, refused as hiredis does
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 2**63 - 1, -(2**63), -(2**63) + 1, 2**63, -(2**63) - 1]),  # 64 bits' edges
    st.floats(allow_nan=False),
    st.booleans(),  # hiredis refuses them: so must the C packer
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.lists(_ARGS, min_size=1, max_size=12).map(tuple), max_size=30),  # ops are tuples
    st.binary(max_size=20),
    st.binary(max_size=20),
)
def test_c_packer_with_any_ops_gives_the_python_packers_bytes_or_its_error(
    ops: list[tuple[Any, ...]], head: bytes, tail: bytes
) -> None:
    try:
        want: bytes | type[Exception] = _pack_in_python(ops, head, tail)
    except Exception as exc:
        want = type(exc)
    try:
        got: bytes | type[Exception] = pack_commands(ops, head, tail)
    except Exception as exc:
        got = type(exc)
    assert got == want


def test_c_packer_with_lengths_across_every_digit_count_gives_hiredis_bytes() -> None:
    ops = [(b"SET", b"k" * n, b"v" * (n * 7 + 1)) for n in (0, 1, 9, 10, 99, 100, 999, 1000, 10_000, 123_457)]
    ops.append(tuple(b"x" for _ in range(1234)))  # an array of four digits
    assert pack_commands(ops) == b"".join(pack(op) for op in ops)
