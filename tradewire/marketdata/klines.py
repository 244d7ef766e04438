"""Klines (candlesticks): per market and interval, the open bar and a bounded history of closed ones.

Binance's intervals, aligned as Binance aligns them in exchange time (UTC): a trade at ``ts`` belongs
to the bar that opens at ``ts - ts % interval`` for the intervals of a fixed length from 1s to 3d
(1d bars open at 00:00 UTC, 3d bars every third day counted from 1970-01-01), on the Monday 00:00
before it for 1w, and on the first of its calendar month for 1M; a bar's ``close_time`` is the last
millisecond before the next bar (:func:`bar_bounds`).

Bars are continuous once a market has traded, as Binance's are: an interval without trades is a bar
of its own, flat at the last close (open = high = low = close, volumes and trade count 0, first and
last trade ids -1), not a gap, so that a chart's time axis and an indicator's periods count every
interval. Before a market's first trade it has no bars. A bar's first trade replaces the flat
values: a bar with trades has the open, high, low and close that really traded in it.

Time moves only with data. The builder calls ``advance`` with the exchange time of each command
(in practice only when that time enters a new second, the finest interval); an open bar whose
``close_time`` is now past is closed there and then, queued once more for the next flush with
``closed=True`` and kept in the history that the REST endpoint reads, followed by the flat bars of
the intervals that passed without trades (at most :data:`FLAT_BARS_MAX` of them, the latest) and
the flat bar now open. A quiet market's bars therefore move on with any later command (of any kind,
in any market); in an exchange where no command comes at all, the last bar stays open until one
does.

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

FLAT_BARS_MAX: Final = KLINE_HISTORY
"""Flat bars written for one stretch without trades, the latest ones: what the cache keeps of most
intervals (a week without a single command in the whole exchange leaves older 1m bars out)."""
PENDING_MAX: Final = max(BARS_KEPT.values())
"""Closed bars kept for the next flush, the latest: what the longest cache keeps (a silent replay
of days of exchange time would otherwise hold every bar of them)."""
NO_TRADE: Final = -1
"""The first and last trade id of a bar without trades (Binance's ``"f": -1, "L": -1``)."""

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


def _flat(open_time: int, close_time: int, price: int, *, closed: bool) -> Kline:
    """A bar without trades: flat at ``price``, the close before it."""
    return Kline(open_time, close_time, price, price, price, price, 0, 0, 0, 0, 0, NO_TRADE, NO_TRADE, closed)


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
        if bar is None or not bar.trades:  # none yet, or a flat one: this trade is its first
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
        if bar is None or not bar.trades:  # none yet, or a flat one: these are its first trades
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
        """Close the open bar if ``now`` is past its end; the intervals up to ``now`` get flat bars."""
        bar = self.bar
        if bar is None or now <= bar.close_time:
            return
        kline = bar.freeze(closed=True)
        closed = [kline, *self._flat_bars(bar.close_time + 1, now, kline.close)]
        self.history.extend(closed)
        pending = self.pending
        pending += closed
        if len(pending) > PENDING_MAX:  # a silent replay flushes nothing: no cache keeps more
            del pending[:-PENDING_MAX]
        self.bar = OpenBar(_flat(*bar_bounds(self.interval, now), kline.close, closed=False))
        self.touched = True
        self.fresh = True

    def _flat_bars(self, start: int, now: int, price: int) -> list[Kline]:
        """The closed flat bars from the one opening at ``start`` to the one before ``now``'s."""
        until = bar_bounds(self.interval, now)[0]
        length = INTERVALS[self.interval]
        if length:
            starts = list(range(max(start, until - FLAT_BARS_MAX * length), until, length))
        else:
            starts = []
            while start < until:
                starts.append(start)
                start = _next_month_start(start)
            starts = starts[-FLAT_BARS_MAX:]
        return [_flat(*bar_bounds(self.interval, t), price, closed=True) for t in starts]

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
