"""The rolling 24-hour ticker: minute buckets, running sums, window edges, exact derived figures."""

from __future__ import annotations

import msgspec
import pytest

from tradewire.marketdata.ticker import MINUTE, WINDOW, RollingTicker, TickerState, percent_change

DAY0 = 1_699_920_000_000
SCALE = 100
"""Base units per whole base unit in these tests."""


def add(ticker: RollingTicker, ts: int, price: int, qty: int, trade_id: int) -> None:
    ticker.advance(ts)
    ticker.add(ts, price, qty, price * qty // SCALE, trade_id)


def test_ticker_without_trades_says_the_price_stood_still() -> None:
    ticker = RollingTicker(SCALE)
    stats = ticker.stats("BTC-USDT", DAY0 + 5, (99, 1), (101, 2))
    assert (stats.open_price, stats.high_price, stats.low_price, stats.last_price) == (0, 0, 0, 0)
    assert (stats.first_trade_id, stats.last_trade_id, stats.trades, stats.volume) == (-1, -1, 0, 0)
    assert (stats.bid_price, stats.bid_qty, stats.ask_price, stats.ask_qty) == (99, 1, 101, 2)
    assert (stats.open_time, stats.close_time, stats.price_change_percent) == (
        DAY0 - WINDOW,
        DAY0 + 5,
        "0.000",
    )


def test_ticker_sums_trades_and_derives_change_percent_and_weighted_average() -> None:
    ticker = RollingTicker(SCALE)
    add(ticker, DAY0, 1000, 100, 1)  # notional 1000
    add(ticker, DAY0 + 1, 1200, 50, 2)  # 600
    add(ticker, DAY0 + 2 * MINUTE, 900, 100, 3)  # 900
    add(ticker, DAY0 + 3 * MINUTE, 1025, 200, 4)  # 2050
    stats = ticker.stats("BTC-USDT", DAY0 + 3 * MINUTE, (0, 0), (0, 0))
    assert (stats.open_price, stats.high_price, stats.low_price, stats.last_price) == (1000, 1200, 900, 1025)
    assert (stats.volume, stats.quote_volume, stats.trades) == (450, 4550, 4)
    assert (stats.first_trade_id, stats.last_trade_id, stats.last_qty) == (1, 4, 200)
    assert (stats.price_change, stats.price_change_percent) == (25, "2.500")
    assert stats.weighted_avg_price == 1011  # 4550 * 100 / 450 = 1011.11 -> 1011
    assert ticker.changed


def test_bucket_leaves_the_window_when_the_minute_after_its_24th_hour_begins() -> None:
    ticker = RollingTicker(SCALE)
    add(ticker, DAY0 + 30_000, 1000, 100, 1)
    add(ticker, DAY0 + 3_600_000, 1100, 100, 2)
    ticker.changed = False
    ticker.advance(DAY0 + WINDOW + 59_999)  # still within "24 hours, to the minute"
    assert ticker.trades == 2 and not ticker.changed
    ticker.advance(DAY0 + WINDOW + MINUTE)
    stats = ticker.stats("BTC-USDT", DAY0 + WINDOW + MINUTE, (0, 0), (0, 0))
    assert ticker.changed
    assert (stats.trades, stats.volume, stats.quote_volume) == (1, 100, 1100)
    assert (stats.open_price, stats.prev_close_price, stats.first_trade_id) == (1100, 1000, 2)
    assert (stats.high_price, stats.low_price) == (1100, 1100)
    assert stats.open_time == DAY0 + MINUTE


def test_evicting_the_high_and_low_rescans_the_remaining_buckets() -> None:
    ticker = RollingTicker(SCALE)
    add(ticker, DAY0, 2000, 1, 1)  # the high
    add(ticker, DAY0 + MINUTE, 500, 1, 2)  # the low
    add(ticker, DAY0 + 2 * MINUTE, 1000, 1, 3)
    add(ticker, DAY0 + 2 * MINUTE + 1, 1100, 1, 4)
    ticker.advance(DAY0 + WINDOW + MINUTE)
    stats = ticker.stats("BTC-USDT", DAY0 + WINDOW + MINUTE, (0, 0), (0, 0))
    assert (stats.high_price, stats.low_price, stats.trades) == (1100, 500, 3)
    ticker.advance(DAY0 + WINDOW + 2 * MINUTE)
    stats = ticker.stats("BTC-USDT", DAY0 + WINDOW + 2 * MINUTE, (0, 0), (0, 0))
    assert (stats.high_price, stats.low_price, stats.open_price) == (1100, 1000, 1000)


def test_window_emptied_then_refilled_starts_extremes_over() -> None:
    ticker = RollingTicker(SCALE)
    add(ticker, DAY0, 2000, 1, 1)
    add(ticker, DAY0 + 2 * WINDOW, 700, 1, 2)
    add(ticker, DAY0 + 2 * WINDOW + 1, 800, 1, 3)
    stats = ticker.stats("BTC-USDT", DAY0 + 2 * WINDOW + 1, (0, 0), (0, 0))
    assert (stats.high_price, stats.low_price, stats.prev_close_price, stats.trades) == (800, 700, 2000, 2)


def test_state_round_trip_rebuilds_sums_and_extremes() -> None:
    ticker = RollingTicker(SCALE)
    add(ticker, DAY0, 1000, 10, 1)
    add(ticker, DAY0 + MINUTE, 1300, 20, 2)
    data = msgspec.msgpack.encode(ticker.to_state())
    restored = RollingTicker.from_state(SCALE, msgspec.msgpack.decode(data, type=TickerState))
    add(ticker, DAY0 + 2 * MINUTE, 1200, 5, 3)
    add(restored, DAY0 + 2 * MINUTE, 1200, 5, 3)
    now = DAY0 + 2 * MINUTE
    assert restored.stats("M", now, (1, 1), (2, 2)) == ticker.stats("M", now, (1, 1), (2, 2))
    empty = RollingTicker.from_state(SCALE, RollingTicker(SCALE).to_state())
    add(empty, DAY0, 1000, 1, 1)
    assert empty.stats("M", DAY0, (0, 0), (0, 0)).high_price == 1000


@pytest.mark.parametrize(
    ("change", "base", "text"),
    [
        (25, 1000, "2.500"),
        (-1, 300, "-0.333"),
        (-1, 8, "-12.500"),
        (1, 16, "6.250"),
        (1, 200_000, "0.001"),  # 0.0005 rounds half away from zero
        (-1, 300_000, "0.000"),  # rounds to zero: no minus sign
        (5, 0, "0.000"),
        (300, 100, "300.000"),
    ],
)
def test_percent_change_has_three_decimals_rounded_half_away_from_zero(
    change: int, base: int, text: str
) -> None:
    assert percent_change(change, base) == text
