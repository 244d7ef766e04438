"""The fast events renderer writes exactly the bytes of ``EventCodec`` + orjson (what replay prints)."""

from __future__ import annotations

from collections.abc import Sequence

import orjson
import pytest

from tests.integration.journal.support import load_stream
from tests.strategies import VECTORS_CONFIG, random_stream
from tradewire.engine import Engine, EventCodec, ExchangeConfig, decode
from tradewire.engine.events import Accepted, Deposited, Event, Expired, Rejected, Trade
from tradewire.journal.entries import CommandEntry, reply_payload
from tradewire.journal.render import EventsRenderer, ReplyRenderer

CONFIG = ExchangeConfig.from_dict(VECTORS_CONFIG)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_renderer_with_random_streams_writes_the_codec_bytes(seed: int) -> None:
    engine, codec, renderer = Engine(CONFIG), EventCodec(CONFIG), EventsRenderer(CONFIG)
    lines: list[bytes | str] = [*random_stream(seed, 3000), *load_stream(seed, 5000)]
    kinds: set[str] = set()
    for line in lines:
        events = engine.apply(decode(line))
        expected = orjson.dumps([codec.render(event) for event in events])
        assert renderer.render(events) == expected
        kinds.update(event["type"] for event in orjson.loads(expected))
    assert kinds == {"accepted", "rejected", "trade", "canceled", "expired", "deposit", "withdraw"}


def test_renderer_with_names_that_need_escaping_writes_the_codec_bytes() -> None:
    engine, codec, renderer = Engine(CONFIG), EventCodec(CONFIG), EventsRenderer(CONFIG)
    user = 'a"b\\c\u00e9\u2028'
    for command in (
        {"type": "deposit", "user": user, "asset": "USDT", "amount": "100"},
        {"type": "new_order", "user": user, "market": "BTC-USDT", "side": "buy", "kind": "limit",
         "qty": "0.01", "price": "100", "client_id": 'x"y'},
        {"type": "cancel", "user": user, "market": "BTC-USDT", "client_id": 'x"y'},
        {"type": "withdraw", "user": user, "asset": "USDT", "amount": "1000"},
    ):  # fmt: skip
        events = engine.apply(decode(orjson.dumps(command)))
        assert renderer.render(events) == orjson.dumps([codec.render(event) for event in events])


def _python_reply(entry: CommandEntry, events: Sequence[Event]) -> bytes:
    return reply_payload(entry, EventsRenderer(CONFIG).render(events))


_RIDS = [b"%032x" % 7, b"", b"r-1", b"\xff\xfe", b"caf\xc3\xa9", b"A1"]
_STAMPS = [1_700_000_000_000, 0, -5, 2**63 - 1, 2**63, -(2**70)]


@pytest.mark.parametrize("seed", [1, 2])
def test_the_c_reply_renderer_writes_the_python_bytes(seed: int) -> None:
    """Every kind of event, every shape of request id and exchange time, names that JSON escapes."""
    assert ReplyRenderer is not None, "the project's install builds it"
    handed: list[bytes] = []

    def python(entry: CommandEntry, events: Sequence[Event]) -> bytes:
        if entry.rid.isalnum() and 0 <= entry.ts < 2**63:
            handed.append(entry.entry_id)
        return _python_reply(entry, events)

    engine, native = Engine(CONFIG), ReplyRenderer(CONFIG, python)
    user = 'a"b\\c\u00e9\u2028'
    lines: list[bytes | str] = [
        *random_stream(seed, 2000),
        *load_stream(seed, 3000),
        orjson.dumps({"type": "deposit", "user": user, "asset": "USDT", "amount": "100"}),
        orjson.dumps({"type": "deposit", "user": "\u00e9t\u00e9", "asset": "USDT", "amount": "100"}),
    ]
    for number, line in enumerate(lines):
        events = engine.apply(decode(line))
        rid, ts = _RIDS[number % len(_RIDS)], _STAMPS[number % 7 % len(_STAMPS)]
        entry = CommandEntry(b"1700000000000-%d" % number, b"{}", ts, rid, b"gw")
        assert native(entry, events) == _python_reply(entry, events), (line, events)
    escaped = b"1700000000000-%d" % (len(lines) - 2)  # the user JSON escapes
    assert set(handed) <= {escaped}, "a reply C can render was handed to Python"


def test_the_c_reply_renderer_hands_values_past_64_bits_to_python() -> None:
    native = ReplyRenderer(CONFIG, _python_reply)  # type: ignore[misc]
    entry = CommandEntry(b"1-0", b"{}", 5, b"abc", b"gw")
    for events in (
        [Deposited("bob", "USDT", 2**70)],
        [Accepted(2**64, "bob", "BTC-USDT", None, "buy", "limit", "GTC", 1, 1, 0, False)],
        [Trade("BTC-USDT", 1, 2**63, 1, 2, 3, "a", "b", "sell", 0, 2**65, 0)],
        [Expired(1, "bob", "BTC-USDT", "buy", None, -(2**64))],
        [Rejected("x", None, 2**64)],
    ):
        assert native(entry, events) == _python_reply(entry, events)
    assert native(entry, []) == b'{"rid":"abc","cmd":"1-0","ts":5,"events":[]}'
