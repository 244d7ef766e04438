"""Klines: bars aligned as Binance aligns them, exact volumes, flat bars without trades, closing when time
moves on."""

from __future__ import annotations

import msgspec
import pytest

from tradewire.marketdata.klines import FLAT_BARS_MAX, INTERVALS, KlineSeries, SeriesState, bar_bounds
from tradewire.marketdata.updates import Kline

DAY0 = 1_699_920_000_000
"""A midnight UTC."""
MIN = 60_000


def trade(series: KlineSeries, ts: int, price: int, qty: int, taker_buys: bool, trade_id: int) -> None:
    series.advance(ts)
    series.add(ts, price, qty, price * qty // 100, taker_buys, trade_id)


FIXED = {name: length for name, length in INTERVALS.items() if name not in ("1w", "1M")}


@pytest.mark.parametrize(("interval", "length"), list(FIXED.items()))
def test_bar_of_each_fixed_interval_opens_on_its_epoch_boundary(interval: str, length: int) -> None:
    series = KlineSeries(interval)
    ts = DAY0 + 86_400_000 - 1  # the last millisecond of the day: the last bar of every interval
    trade(series, ts, 100, 3, True, 1)
    (bar,) = series.take_updates()
    expected = ts - ts % length
    assert (bar.open_time, bar.close_time) == (expected, expected + length - 1)
    assert not bar.closed


def test_every_binance_kline_interval_is_served() -> None:
    assert list(INTERVALS) == [
        "1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1M",
    ]  # fmt: skip


HOUR = 60 * MIN
DAY = 24 * HOUR


@pytest.mark.parametrize(
    ("interval", "ts", "open_time", "close_time"),
    [
        ("1s", DAY0 + 1_234, DAY0 + 1_000, DAY0 + 1_999),
        ("3m", DAY0 + 7 * MIN + 5, DAY0 + 6 * MIN, DAY0 + 9 * MIN - 1),
        ("30m", DAY0 + 59 * MIN, DAY0 + 30 * MIN, DAY0 + HOUR - 1),
        ("2h", DAY0 + 3 * HOUR, DAY0 + 2 * HOUR, DAY0 + 4 * HOUR - 1),
        ("6h", DAY0 + 13 * HOUR, DAY0 + 12 * HOUR, DAY0 + 18 * HOUR - 1),
        ("8h", DAY0 + 17 * HOUR, DAY0 + 16 * HOUR, DAY0 + DAY - 1),
        ("12h", DAY0 + 11 * HOUR, DAY0, DAY0 + 12 * HOUR - 1),
        # 3d: aligned to the epoch (day 19675, DAY0, is the second day of bar 6558)
        ("3d", DAY0 + 5, DAY0 - DAY, DAY0 + 2 * DAY - 1),
        ("3d", DAY0 + 2 * DAY, DAY0 + 2 * DAY, DAY0 + 5 * DAY - 1),
        # 1w: Monday 00:00 UTC to Sunday 23:59:59.999 (DAY0 is a Tuesday)
        ("1w", DAY0, 1_699_833_600_000, 1_700_438_399_999),
        ("1w", 1_699_833_600_000, 1_699_833_600_000, 1_700_438_399_999),
        ("1w", 1_700_438_399_999, 1_699_833_600_000, 1_700_438_399_999),
        ("1w", 1_700_438_400_000, 1_700_438_400_000, 1_701_043_199_999),
        ("1w", 5, -3 * DAY, 4 * DAY - 1),  # the epoch was a Thursday
        # 1M: calendar months, UTC
        ("1M", DAY0, 1_698_796_800_000, 1_701_388_799_999),
        ("1M", 1_709_208_000_000, 1_706_745_600_000, 1_709_251_199_999),  # 2024-02-29: a leap February
        ("1M", 1_704_067_199_999, 1_701_388_800_000, 1_704_067_199_999),  # 2023-12-31 23:59:59.999
        ("1M", 1_704_067_200_000, 1_704_067_200_000, 1_706_745_599_999),  # 2024-01-01
    ],
)
def test_bars_open_and_close_where_binance_opens_and_closes_them(
    interval: str, ts: int, open_time: int, close_time: int
) -> None:
    assert bar_bounds(interval, ts) == (open_time, close_time)
    series = KlineSeries(interval)
    trade(series, max(ts, 0), 100, 1, True, 1)
    (bar,) = series.take_updates()
    assert (bar.open_time, bar.close_time) == (open_time, close_time)
    series.advance(close_time)
    assert series.bar is not None  # still open on its last millisecond
    series.advance(close_time + 1)
    closed, opened = series.take_updates()
    assert closed.closed and (closed.open_time, closed.close_time) == (open_time, close_time)
    # the next bar opens flat, before any trade: Binance's bars are continuous
    assert (opened.open_time, opened.closed, opened.trades, opened.open) == (close_time + 1, False, 0, 100)
    assert (opened.open_time, opened.close_time) == bar_bounds(interval, close_time + 1)


def test_a_month_bar_merged_from_seconds_spans_the_calendar_month() -> None:
    month, second = KlineSeries("1M"), KlineSeries("1s")
    second.add(1_709_208_000_123, 100, 1, 100, True, 1)
    assert second.bar is not None
    month.merge(second.bar)
    (bar,) = month.take_updates()
    assert (bar.open_time, bar.close_time) == (1_706_745_600_000, 1_709_251_199_999)


def test_trades_in_one_bar_sum_exactly_and_track_open_high_low_close() -> None:
    series = KlineSeries("1m")
    trade(series, DAY0 + 1, 100, 3, True, 7)
    trade(series, DAY0 + 2, 105, 2, False, 8)
    trade(series, DAY0 + 3, 95, 5, True, 9)
    trade(series, DAY0 + 59_999, 101, 1, False, 10)
    (bar,) = series.take_updates()
    assert bar == Kline(
        open_time=DAY0,
        close_time=DAY0 + 59_999,
        open=100,
        high=105,
        low=95,
        close=101,
        volume=11,
        quote_volume=3 + 2 + 4 + 1,  # price * qty // 100 per trade
        trades=4,
        taker_buy_volume=8,
        taker_buy_quote_volume=3 + 4,
        first_trade_id=7,
        last_trade_id=10,
        closed=False,
    )
    assert series.take_updates() == []


def test_bar_closes_when_time_passes_its_end_and_is_published_once_closed() -> None:
    series = KlineSeries("1m")
    trade(series, DAY0 + 10, 100, 1, True, 1)
    series.take_updates()
    series.advance(DAY0 + 59_999)
    assert series.take_updates() == []
    series.advance(DAY0 + MIN)
    closed, opened = series.take_updates()
    assert closed.closed and closed.open_time == DAY0
    assert not opened.closed and opened.open_time == DAY0 + MIN
    series.advance(DAY0 + MIN + 59_999)
    assert series.take_updates() == []
    series.advance(DAY0 + 2 * MIN)
    assert [(k.open_time, k.closed) for k in series.take_updates()] == [
        (DAY0 + MIN, True),
        (DAY0 + 2 * MIN, False),
    ]


def test_a_market_that_never_traded_has_no_bars() -> None:
    series = KlineSeries("1m")
    series.advance(DAY0 + 10 * MIN)
    assert series.take_updates() == [] and series.query() == [] and series.bar is None


def test_minutes_without_trades_are_flat_bars_at_the_last_close_as_binance_makes_them() -> None:
    """Binance's klines are continuous: a minute without trades is a bar with open = high = low =
    close = the previous close, no volume, no trades and trade ids -1; tradewire left a gap, which
    made a chart's time axis and an indicator's periods skip the quiet minutes."""
    series = KlineSeries("1m")
    trade(series, DAY0, 100, 1, True, 1)
    trade(series, DAY0 + 5, 104, 1, True, 2)
    trade(series, DAY0 + 5 * MIN + 1, 110, 1, True, 3)
    updates = series.take_updates()
    assert [(k.open_time, k.closed) for k in updates] == [(DAY0 + i * MIN, i < 5) for i in range(6)]
    for flat in updates[1:5]:
        assert flat == Kline(
            flat.open_time, flat.open_time + MIN - 1, 104, 104, 104, 104, 0, 0, 0, 0, 0, -1, -1, True
        )
    opened = updates[5]
    # the flat bar of the sixth minute took its first trade: its values are that trade's, not the flat ones
    assert (opened.open, opened.low, opened.trades, opened.first_trade_id) == (110, 110, 1, 3)
    assert [k.open_time for k in series.query()] == [DAY0 + i * MIN for i in range(6)]


def test_a_long_stretch_without_trades_writes_at_most_the_latest_flat_bars() -> None:
    series = KlineSeries("1s")
    trade(series, DAY0, 100, 1, True, 1)
    series.take_updates()
    series.advance(DAY0 + 3_600_000)  # an hour later: 3,599 seconds without trades
    closed, *flat, opened = series.take_updates()
    assert closed.open_time == DAY0 and len(flat) == FLAT_BARS_MAX
    assert flat[-1].open_time == DAY0 + 3_599_000 and opened.open_time == DAY0 + 3_600_000
    months = KlineSeries("1M")
    trade(months, 1_704_067_200_000, 100, 1, True, 1)  # 2024-01
    months.take_updates()
    months.advance(1_717_200_000_000)  # 2024-06-01
    assert [k.open_time for k in months.take_updates()][1:] == [
        1_706_745_600_000, 1_709_251_200_000, 1_711_929_600_000, 1_714_521_600_000, 1_717_200_000_000,
    ]  # fmt: skip


def test_history_is_capped_and_query_selects_by_open_time_and_limit() -> None:
    series = KlineSeries("1m", history=3)
    for i in range(6):
        trade(series, DAY0 + i * MIN, 100 + i, 1, True, i + 1)
    assert [k.open for k in series.history] == [102, 103, 104]
    opens = [k.open_time for k in series.query()]
    assert opens == [DAY0 + i * MIN for i in (2, 3, 4, 5)]
    assert series.query()[-1].closed is False
    assert [k.open for k in series.query(limit=2)] == [104, 105]
    assert [k.open for k in series.query(start=DAY0 + 3 * MIN, limit=2)] == [103, 104]
    assert [k.open for k in series.query(end=DAY0 + 3 * MIN)] == [102, 103]
    with pytest.raises(ValueError, match="limit must be positive"):
        series.query(limit=0)


def test_state_round_trip_keeps_open_bar_history_and_pending_closes() -> None:
    series = KlineSeries("5m")
    trade(series, DAY0, 100, 1, True, 1)
    trade(series, DAY0 + 5 * MIN, 90, 2, False, 2)
    data = msgspec.msgpack.encode(series.to_state())
    restored = KlineSeries.from_state(msgspec.msgpack.decode(data, type=SeriesState), 1000)
    trade(series, DAY0 + 5 * MIN + 1, 95, 1, True, 3)
    trade(restored, DAY0 + 5 * MIN + 1, 95, 1, True, 3)
    assert restored.take_updates() == series.take_updates()
    assert restored.query() == series.query()
    empty = KlineSeries.from_state(KlineSeries("1h").to_state(), 1000)
    assert empty.bar is None and empty.query() == []
