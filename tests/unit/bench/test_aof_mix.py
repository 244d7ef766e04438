"""bench/aof_mix.py's reading of an AOF: bytes and commands per command and key family."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[3] / "bench"))

import aof_mix

from tradewire.journal.wire import pack


def test_an_aof_is_summed_by_command_and_key_family_users_and_markets_folded() -> None:
    ops = [
        (b"MULTI",),
        (b"HSET", b"tw:orders:u0001", b"7", b'{"status":"NEW"}'),
        (b"hset", b"tw:orders:u0042", b"8", b'{"status":"FILLED"}'),
        (b"XADD", b"md:{BTC-USDT}:depth", b"1-0", b"m", b"x\r\ny"),  # CR LF inside a value
        (b"XADD", b"md:{ETH-USDT}:depth", b"2-0", b"m", b"z"),
        (b"EXEC",),
    ]
    aof = b"".join(pack(op) for op in ops)
    size, count = aof_mix.appended(b"#TS:1700000000\r\n" + aof)  # an annotation line is skipped
    assert count == {"MULTI": 1, "HSET tw:orders:*": 2, "XADD md:*:depth": 2, "EXEC": 1}
    assert sum(size.values()) == len(aof)
    assert size["XADD md:*:depth"] == len(pack(ops[3])) + len(pack(ops[4]))
    assert aof_mix.family(b"tw:{0}:commands") == "tw:*:commands"
    assert aof_mix.family(b"tw:mytrades:u0001:BTC-USDT") == "tw:mytrades:*"
