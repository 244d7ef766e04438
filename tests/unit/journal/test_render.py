"""The fast events renderer writes exactly the bytes of ``EventCodec`` + orjson (what replay prints)."""

from __future__ import annotations

import orjson
import pytest

from tests.integration.journal.support import load_stream
from tests.strategies import VECTORS_CONFIG, random_stream
from tradewire.engine import Engine, EventCodec, ExchangeConfig, decode
from tradewire.journal.render import EventsRenderer

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
