"""Pure parts of the public endpoints."""

from __future__ import annotations

import orjson

from tradewire.demo import DEMO_CONFIG
from tradewire.engine import ExchangeConfig
from tradewire.gateway.public import average_price

MARKET = ExchangeConfig.from_dict(DEMO_CONFIG).markets["BTC-USDT"]


def bar(open_time: int, volume: str, quote_volume: str) -> bytes:
    return orjson.dumps(
        [open_time, "1", "1", "1", "1", volume, open_time + 59_999, quote_volume, 1, "0", "0", "0"]
    )


def test_average_price_weighs_bars_since_the_window_by_volume_and_rounds_down() -> None:
    rows = [bar(0, "100", "1"), bar(60_000, "1", "100"), bar(120_000, "2", "0.00000001")]
    # (100 + 0.00000001) / 3 = 33.33333333666.. -> 33.33333333 at 8 decimals; the bar at 0 is out
    assert average_price(rows, MARKET, 60_000) == 3_333_333_333
    assert average_price(rows[:1], MARKET, 60_000) is None
