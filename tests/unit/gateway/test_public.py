"""Pure parts of the public endpoints."""

from __future__ import annotations

import orjson

from tradewire.demo import DEMO_CONFIG
from tradewire.engine import ExchangeConfig
from tradewire.gateway.public import average_price, window_ticker

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


def test_the_rolling_window_counts_up_to_the_last_trade_its_bars_count() -> None:
    """The trades list is written with every batch, the open bars up to a 100-ms slot later: with
    trades 1..7 in the list and the bars counting 1..5, the window is trades 1..5, not 3..7."""
    rows = [
        orjson.dumps([60_000, "10", "12", "9", "11", "2", 119_999, "22", 2, "0", "0", "0"]),
        orjson.dumps([120_000, "11", "13", "11", "13", "3", 179_999, "37", 3, "0", "0", "0"]),
    ]
    newest = orjson.dumps({"id": 7, "price": "14", "time": 170_000})
    window = window_ticker(MARKET, rows, newest, 60_000, 180_000, True, counted=b"5:150000")
    assert (window["firstId"], window["lastId"], window["count"]) == (1, 5, 5)
    assert (window["lastPrice"], window["volume"]) == ("13", "5")
    before = window_ticker(MARKET, rows, newest, 60_000, 180_000, True)  # a cache from before
    assert (before["firstId"], before["lastId"], before["count"]) == (3, 7, 5)
    quiet = window_ticker(MARKET, [], newest, 60_000, 180_000, True, counted=b"5:150000")
    assert (quiet["firstId"], quiet["lastId"], quiet["count"]) == (-1, -1, 0)
