"""Klines (candlesticks): per market and interval, the open bar and a bounded history of closed ones.

Binance's intervals, aligned as Binance aligns them in exchange time (UTC): a trade at ``ts`` belongs
to the bar that opens at ``ts - ts % interval`` for the intervals of a fixed length from 1s to 3d
(1d bars open at 00:00 UTC, 3d bars every third day counted from 1970-01-01), on the Monday 00:00
before it for 1w, and on the first of its calendar month for 1M; a bar's ``close_time`` is the last
millisecond before the next bar (:func:`bar_bounds`). A bar exists only once a trade falls in it:
an interval without trades leaves a gap rather than a bar of zeros, so every bar's open, high, low
and close are prices that really traded.

Time moves only with data. The builder calls ``advance`` with the exchange time of each command
(in practice only when that time enters a new second, the finest interval); an open bar whose
``close_time`` is now past is closed there and then, queued once more for the next flush with
``closed=True``, and kept in the history that the REST endpoint reads. A quiet market's last bar
therefore stays open until some later command (of any kind, in any market) carries a later time; a
service that wants bars to close on the wall clock feeds the builder an empty command with that time.

Every volume is an exact integer sum: base volume in base units, quote volume (the sum of each
trade's notional) in quote units, the taker-buy volumes over the trades whose taker bought.
"""

from __future__ import annotations

from collections import deque
from datetime import date
from typing import Final, Protocol

import msgspec

from tradewire.marketdata.updates import Kline

SECOND: Final = 1_000
MINUTE: Final = 60 * SECOND
HOUR: Final = 60 * MINUTE
DAY: Final = 24 * HOUR
WEEK: Final = 7 * DAY
MONDAY: Final = 4 * DAY
"""1970-01-05, the first Monday of the epoch (which began on a Thursday): where 1w bars are counted from."""

INTERVALS: dict[str, int] = {
    "1s": SECOND,
    "1m": MINUTE,
    "3m": 3 * MINUTE,
    "5m": 5 * MINUTE,
    "15m": 15 * MINUTE,
    "30m": 30 * MINUTE,
    "1h": HOUR,
    "2h": 2 * HOUR,
    "4h": 4 * HOUR,
    "6h": 6 * HOUR,
    "8h": 8 * HOUR,
    "12h": 12 * HOUR,
    "1d": DAY,
    "3d": 3 * DAY,
    "1w": WEEK,
    "1M": 0,
}
"""Binance's kline intervals, shortest first -> length in milliseconds (0: calendar months)."""

_OFFSETS: Final = {"1w": MONDAY}
_EPOCH_DAY: Final = date(1970, 1, 1).toordinal()


def _month_start(ts: int) -> int:
    """00:00 UTC on the first of the month of ``ts`` (integers only: dates, not clocks)."""
    day = date.fromordinal(_EPOCH_DAY + ts // DAY)
    return (date(day.year, day.month, 1).toordinal() - _EPOCH_DAY) * DAY


def _next_month_start(start: int) -> int:
    day = date.fromordinal(_EPOCH_DAY + start // DAY)
    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    return (date(year, month, 1).toordinal() - _EPOCH_DAY) * DAY


def bar_bounds(interval: str, ts: int) -> tuple[int, int]:
    """``(open_time, close_time)`` of the bar of ``interval`` that holds exchange time ``ts``."""
    length = INTERVALS[interval]
    if not length:
        start = _month_start(ts)
        return start, _next_month_start(start) - 1
    start = ts - (ts - _OFFSETS.get(interval, 0)) % length
    return start, start + length - 1


KLINE_HISTORY = 1000
"""Bars kept per market and interval in Redis's cache (``md:{M}:klines:<interval>``), but 1m's."""
MINUTE_BARS_KEPT: Final = 7 * DAY // MINUTE + 60
"""1m bars kept: seven days and an hour. ``GET /api/v3/ticker`` sums a window of up to 7d that opens
on a minute from the 1m bars of its first partial hour, so they must still be there 7 days on in a
market that trades every minute (1,000 bars are not 17 hours of such a market)."""
BARS_KEPT: Final = {iv: MINUTE_BARS_KEPT if iv == "1m" else KLINE_HISTORY for iv in INTERVALS}
"""Interval -> bars its cache keeps."""

DEFAULT_LIMIT = 500
"""Bars a klines query returns unless told otherwise (as Binance)."""


class OpenBar:
    """The open bar, mutated in place by each trade."""

    __slots__ = (
        "close",
        "close_time",
        "first_trade_id",
        "high",
        "last_trade_id",
        "low",
        "open",
        "open_time",
        "quote_volume",
        "taker_buy_quote_volume",
        "taker_buy_volume",
        "trades",
        "volume",
    )

    def __init__(self, kline: Kline) -> None:
        self.open_time = kline.open_time
        self.close_time = kline.close_time
        self.open = kline.open
        self.high = kline.high
        self.low = kline.low
        self.close = kline.close
        self.volume = kline.volume
        self.quote_volume = kline.quote_volume
        self.trades = kline.trades
        self.taker_buy_volume = kline.taker_buy_volume
        self.taker_buy_quote_volume = kline.taker_buy_quote_volume
        self.first_trade_id = kline.first_trade_id
        self.last_trade_id = kline.last_trade_id

    def freeze(self, closed: bool) -> Kline:
        return Kline(
            self.open_time,
            self.close_time,
            self.open,
            self.high,
            self.low,
            self.close,
            self.volume,
            self.quote_volume,
            self.trades,
            self.taker_buy_volume,
            self.taker_buy_quote_volume,
            self.first_trade_id,
            self.last_trade_id,
            closed,
        )


class TradeSummary(Protocol):
    """What a kline bar and a ticker bucket both sum: the trades of a stretch of time."""

    high: int
    low: int
    close: int
    volume: int
    quote_volume: int
    trades: int
    last_trade_id: int


def merge_later_trades(into: TradeSummary, part: OpenBar) -> None:
    """Extend ``into`` with the trades summed in ``part``, which all came after ``into``'s."""
    if part.high > into.high:
        into.high = part.high
    if part.low < into.low:
        into.low = part.low
    into.close = part.close
    into.volume += part.volume
    into.quote_volume += part.quote_volume
    into.trades += part.trades
    into.last_trade_id = part.last_trade_id


class SeriesState(msgspec.Struct, array_like=True):
    """Everything a ``KlineSeries`` needs to resume."""

    interval: str
    bar: Kline | None
    touched: bool
    history: list[Kline]
    pending: list[Kline]
    fresh: bool = True
    """A state without it (an older snapshot) says a bar may be new: one trim too many, never one
    too few."""


class KlineSeries:
    """The bars of one market at one interval, and what the next flush has to say about them."""

    __slots__ = ("bar", "fresh", "history", "interval", "pending", "touched")

    def __init__(self, interval: str, history: int = KLINE_HISTORY) -> None:
        if interval not in INTERVALS:
            raise ValueError(f"unknown kline interval {interval!r}")
        self.interval = interval
        self.bar: OpenBar | None = None
        self.history: deque[Kline] = deque(maxlen=history)
        self.pending: list[Kline] = []
        """Bars closed since the last flush, oldest first."""
        self.touched = False
        """Whether the open bar changed since the last flush."""
        self.fresh = False
        """Whether a bar began since the last flush: the next one writes a bar the cache has not
        seen (a new member of its sorted set), the only time the cache can grow past its history."""

    def add(self, ts: int, price: int, qty: int, notional: int, taker_buys: bool, trade_id: int) -> None:
        """Count one trade; ``advance(ts)`` must already have closed a bar that ended before ``ts``."""
        bar = self.bar
        buy_qty, buy_notional = (qty, notional) if taker_buys else (0, 0)
        if bar is None:
            self.fresh = True
            start, end = bar_bounds(self.interval, ts)
            self.bar = OpenBar(
                Kline(
                    start,
                    end,
                    price,
                    price,
                    price,
                    price,
                    qty,
                    notional,
                    1,
                    buy_qty,
                    buy_notional,
                    trade_id,
                    trade_id,
                    False,
                )
            )
        else:
            if price > bar.high:
                bar.high = price
            elif price < bar.low:
                bar.low = price
            bar.close = price
            bar.volume += qty
            bar.quote_volume += notional
            bar.trades += 1
            bar.taker_buy_volume += buy_qty
            bar.taker_buy_quote_volume += buy_notional
            bar.last_trade_id = trade_id
        self.touched = True

    def merge(self, part: OpenBar) -> None:
        """Count at once the trades summed in ``part``, a bar of this one's or a shorter interval
        that falls inside one bar of this one (``advance`` already called): the same as adding
        them one by one. The builder sums a second's trades once and merges that second into every
        interval, instead of adding each trade sixteen times."""
        bar = self.bar
        if bar is None:
            self.fresh = True
            bar = self.bar = OpenBar.__new__(OpenBar)
            bar.open_time, bar.close_time = bar_bounds(self.interval, part.open_time)
            bar.open, bar.high, bar.low, bar.close = part.open, part.high, part.low, part.close
            bar.volume, bar.quote_volume, bar.trades = part.volume, part.quote_volume, part.trades
            bar.taker_buy_volume, bar.taker_buy_quote_volume = (
                part.taker_buy_volume,
                part.taker_buy_quote_volume,
            )
            bar.first_trade_id, bar.last_trade_id = part.first_trade_id, part.last_trade_id
        else:
            merge_later_trades(bar, part)
            bar.taker_buy_volume += part.taker_buy_volume
            bar.taker_buy_quote_volume += part.taker_buy_quote_volume
        self.touched = True

    def advance(self, now: int) -> None:
        """Close the open bar if ``now`` is past its end."""
        bar = self.bar
        if bar is not None and now > bar.close_time:
            kline = bar.freeze(closed=True)
            self.history.append(kline)
            self.pending.append(kline)
            self.bar = None
            self.touched = False

    def take_updates(self) -> list[Kline]:
        """Bars to publish: each bar closed since the last call, then the open bar if it changed.
        Read :attr:`fresh` first: this call clears it."""
        out = self.pending
        self.pending = []
        if self.touched and self.bar is not None:
            out.append(self.bar.freeze(closed=False))
        self.touched = False
        self.fresh = False
        return out

    def query(
        self, start: int | None = None, end: int | None = None, limit: int = DEFAULT_LIMIT
    ) -> list[Kline]:
        """Bars opening in ``[start, end]``, oldest first, the open bar last (as Binance's REST).

        With a ``start`` the first ``limit`` such bars are returned, otherwise the latest ``limit``.
        """
        if limit < 1:
            raise ValueError(f"limit must be positive, got {limit}")
        bars = list(self.history)
        if self.bar is not None:
            bars.append(self.bar.freeze(closed=False))
        if start is not None:
            bars = [k for k in bars if k.open_time >= start]
        if end is not None:
            bars = [k for k in bars if k.open_time <= end]
        return bars[:limit] if start is not None else bars[-limit:]

    def to_state(self) -> SeriesState:
        bar = None if self.bar is None else self.bar.freeze(closed=False)
        return SeriesState(
            self.interval, bar, self.touched, list(self.history), list(self.pending), self.fresh
        )

    @classmethod
    def from_state(cls, state: SeriesState, history: int) -> KlineSeries:
        series = cls(state.interval, history)
        series.bar = None if state.bar is None else OpenBar(state.bar)
        series.touched = state.touched
        series.history.extend(state.history)
        series.pending = list(state.pending)
        series.fresh = state.fresh
        return series
