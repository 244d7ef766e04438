"""The rolling 24-hour ticker of one market, resolved to the minute.

Keeping every trade of the last 24 hours would cost memory in proportion to the trading rate;
instead trades are summed into one bucket per minute of exchange time, at most 1441 per market.
The window at exchange time ``now`` holds the buckets that open at or after
``now - now % 60000 - 86400000``: every trade of the last 24 hours is counted, and so is a trade up
to one minute older than that (it leaves the window when the minute that follows its 24th hour
begins). That edge is what "exact to the minute" means here, and the window's start is published
as the ticker's ``open_time``.

The base volume, quote volume and trade count are running sums: a trade adds, an evicted bucket
subtracts, so a ticker costs O(1) however busy the day was. High and low are cached too; only an
evicted bucket that held the high or the low forces a rescan of the (at most 1441) buckets.

Derived figures, all exact integers or exact decimal text:

- ``open_price``: the first trade in the window; ``prev_close_price``: the last trade before it
  (0 when none is known); ``price_change = last_price - open_price``;
- ``price_change_percent``: ``100 * price_change / open_price`` with three decimals, rounded half
  away from zero (``"2.500"``, ``"-0.333"``, ``"0.000"``);
- ``weighted_avg_price``: ``quote_volume / volume`` in quote units per whole base unit, rounded half
  up to the quote's precision; 0 when the window is empty.

With no trade in the window the ticker says that the price stood still: open, high and low equal
the last price, volumes and count are 0 and the first/last trade ids are -1 (as Binance).
"""

from __future__ import annotations

from collections import deque

import msgspec

from tradewire.marketdata.klines import OpenBar, merge_later_trades
from tradewire.marketdata.updates import PriceLevel, TickerUpdate

WINDOW = 86_400_000
"""The ticker's window: 24 hours of exchange time, in milliseconds."""
MINUTE = 60_000
"""The resolution of the window."""


class Bucket(msgspec.Struct, array_like=True):
    """The trades of one minute."""

    start: int
    open: int
    high: int
    low: int
    close: int
    volume: int
    quote_volume: int
    trades: int
    first_trade_id: int
    last_trade_id: int


class TickerState(msgspec.Struct, array_like=True):
    """Everything a ``RollingTicker`` needs to resume; the sums and extremes are rebuilt."""

    buckets: list[Bucket]
    last_price: int
    last_qty: int
    prev_close_price: int
    changed: bool


class RollingTicker:
    """Minute buckets of the last 24 hours of one market, with running sums."""

    __slots__ = (
        "_extremes_known",
        "_high",
        "_low",
        "base_scale",
        "buckets",
        "changed",
        "last_price",
        "last_qty",
        "prev_close_price",
        "quote_volume",
        "trades",
        "volume",
    )

    def __init__(self, base_scale: int) -> None:
        self.base_scale = base_scale
        """``10 ** base precision``: whole base units, for the weighted average price."""
        self.buckets: deque[Bucket] = deque()
        self.volume = 0
        self.quote_volume = 0
        self.trades = 0
        self.last_price = 0
        self.last_qty = 0
        self.prev_close_price = 0
        self.changed = False
        """Whether the statistics moved since the builder last looked."""
        self._high = 0
        self._low = 0
        self._extremes_known = True

    def add(self, ts: int, price: int, qty: int, notional: int, trade_id: int) -> None:
        """Count one trade at exchange time ``ts`` (never earlier than the previous one)."""
        start = ts - ts % MINUTE
        buckets = self.buckets
        bucket = buckets[-1] if buckets else None
        if bucket is None or bucket.start != start:
            buckets.append(Bucket(start, price, price, price, price, qty, notional, 1, trade_id, trade_id))
        else:
            if price > bucket.high:
                bucket.high = price
            elif price < bucket.low:
                bucket.low = price
            bucket.close = price
            bucket.volume += qty
            bucket.quote_volume += notional
            bucket.trades += 1
            bucket.last_trade_id = trade_id
        if self._extremes_known:
            if not self.trades:
                self._high = self._low = price
            elif price > self._high:
                self._high = price
            elif price < self._low:
                self._low = price
        self.volume += qty
        self.quote_volume += notional
        self.trades += 1
        self.last_price = price
        self.last_qty = qty
        self.changed = True

    def add_part(self, part: OpenBar, last_qty: int) -> None:
        """Count at once the trades summed in ``part``, a bar that lies within one minute (the
        builder's 1s sums; ``last_qty`` is the last trade's quantity): the same as adding them one
        by one."""
        start = part.open_time - part.open_time % MINUTE
        buckets = self.buckets
        bucket = buckets[-1] if buckets else None
        if bucket is None or bucket.start != start:
            buckets.append(
                Bucket(start, part.open, part.high, part.low, part.close, part.volume,
                       part.quote_volume, part.trades, part.first_trade_id, part.last_trade_id)
            )  # fmt: skip
        else:
            merge_later_trades(bucket, part)
        if self._extremes_known:
            if not self.trades:
                self._high, self._low = part.high, part.low
            else:
                if part.high > self._high:
                    self._high = part.high
                if part.low < self._low:
                    self._low = part.low
        self.volume += part.volume
        self.quote_volume += part.quote_volume
        self.trades += part.trades
        self.last_price = part.close
        self.last_qty = last_qty
        self.changed = True

    def advance(self, now: int) -> None:
        """Drop the buckets that the window at ``now`` no longer holds."""
        window_start = now - now % MINUTE - WINDOW
        buckets = self.buckets
        while buckets and buckets[0].start < window_start:
            bucket = buckets.popleft()
            self.volume -= bucket.volume
            self.quote_volume -= bucket.quote_volume
            self.trades -= bucket.trades
            self.prev_close_price = bucket.close
            if bucket.high >= self._high or bucket.low <= self._low:
                self._extremes_known = False
            self.changed = True

    def _extremes(self) -> tuple[int, int]:
        if not self._extremes_known:
            self._high = max(bucket.high for bucket in self.buckets)
            self._low = min(bucket.low for bucket in self.buckets)
            self._extremes_known = True
        return self._high, self._low

    def stats(self, market: str, now: int, bid: PriceLevel, ask: PriceLevel) -> TickerUpdate:
        """The ticker at exchange time ``now`` (the time of the latest ``advance``)."""
        last = self.last_price
        if self.trades:
            first_bucket, last_bucket = self.buckets[0], self.buckets[-1]
            open_price = first_bucket.open
            high, low = self._extremes()
            first_id, last_id = first_bucket.first_trade_id, last_bucket.last_trade_id
            average = divide_half_up(self.quote_volume * self.base_scale, self.volume)
        else:
            open_price = high = low = last
            first_id = last_id = -1
            average = 0
        change = last - open_price
        return TickerUpdate(
            market,
            "ticker",
            now,
            now - now % MINUTE - WINDOW,
            now,
            last,
            self.last_qty,
            open_price,
            high,
            low,
            self.prev_close_price,
            change,
            percent_change(change, open_price),
            average,
            self.volume,
            self.quote_volume,
            self.trades,
            first_id,
            last_id,
            bid[0],
            bid[1],
            ask[0],
            ask[1],
        )

    def to_state(self) -> TickerState:
        """The state, sharing the live buckets: encode it before the next trade."""
        return TickerState(
            list(self.buckets), self.last_price, self.last_qty, self.prev_close_price, self.changed
        )

    @classmethod
    def from_state(cls, base_scale: int, state: TickerState) -> RollingTicker:
        ticker = cls(base_scale)
        ticker.buckets.extend(state.buckets)
        ticker.volume = sum(bucket.volume for bucket in state.buckets)
        ticker.quote_volume = sum(bucket.quote_volume for bucket in state.buckets)
        ticker.trades = sum(bucket.trades for bucket in state.buckets)
        ticker.last_price = state.last_price
        ticker.last_qty = state.last_qty
        ticker.prev_close_price = state.prev_close_price
        ticker.changed = state.changed
        ticker._extremes_known = not state.buckets
        return ticker


ROLLING_WINDOWS: dict[str, int] = {"1h": 3_600_000, "4h": 14_400_000, "1d": WINDOW}
"""Binance's rolling-window ticker streams (``<symbol>@ticker_<window>``) -> their length in ms."""


def window_stats(ticker: RollingTicker, market: str, now: int, window: int) -> TickerUpdate:
    """The statistics of the last ``window`` ms (at most the 24 hours the ticker keeps), summed from
    its minute buckets, with the edge of :meth:`RollingTicker.stats`: the window opens on the minute
    ``window`` before ``now``'s. At most 1,441 buckets are read, at each publication, never per trade."""
    start = now - now % MINUTE - window
    volume = quote_volume = trades = 0
    high = low = open_price = 0
    first_id = last_id = -1
    for bucket in reversed(ticker.buckets):
        if bucket.start < start:
            break
        if not trades:
            high, low, last_id = bucket.high, bucket.low, bucket.last_trade_id
        elif bucket.high > high:
            high = bucket.high
        if bucket.low < low:
            low = bucket.low
        volume += bucket.volume
        quote_volume += bucket.quote_volume
        trades += bucket.trades
        open_price, first_id = bucket.open, bucket.first_trade_id
    last = ticker.last_price
    if not trades:
        open_price = high = low = last
    average = divide_half_up(quote_volume * ticker.base_scale, volume) if volume else 0
    change = last - open_price
    return TickerUpdate(
        market, "ticker", now, start, now, last, ticker.last_qty, open_price, high, low, 0, change,
        percent_change(change, open_price), average, volume, quote_volume, trades, first_id, last_id,
        0, 0, 0, 0,
    )  # fmt: skip


def divide_half_up(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded half up, for a non-negative numerator."""
    quotient, remainder = divmod(numerator, denominator)
    return quotient + (2 * remainder >= denominator)


def percent_change(change: int, base: int) -> str:
    """``100 * change / base`` as text with three decimals, rounded half away from zero."""
    if not base:
        return "0.000"
    thousandths = divide_half_up(abs(change) * 100_000, base)
    sign = "-" if change < 0 and thousandths else ""
    whole, fraction = divmod(thousandths, 1000)
    return f"{sign}{whole}.{fraction:03d}"
