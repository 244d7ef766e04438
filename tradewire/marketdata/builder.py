"""The market-data builder: engine events in, Redis cache writes and Binance publications out.

Theory of operation. The engine service hands the builder the events of each command it applies
(``apply``), with the command's exchange time, and once per batch asks for everything that follows
(``flush``), as ``RedisOp`` tuples to put in the batch's MULTI/EXEC pipeline. Nothing here does I/O
or reads a clock, so the same journal always gives the same ops, byte for byte.

``apply`` does the cheap part only: it moves book levels (``DepthBook``), sums trades per second
(merged into the sixteen kline intervals and the rolling ticker once per flush, not per trade), and
remembers which markets changed. Time is ``max(ts, previous ts)``
so that it never runs backwards; when it enters a new second (the finest kline interval), bars that
ended are closed and ticker buckets that left the window dropped, in every market.

``flush`` renders, per changed market and in config order:

1. the depth diff since the previous flush (one per flush: conflated), as ``HSET``/``HDEL`` of the
   changed levels in ``md:{M}:bids``/``asks`` and ``SET md:{M}:depth:u``, published on ``depth``;
   ``depth20`` when the top 20 levels changed; ``bookTicker`` (cache and channel) when the best bid
   or ask changed;
2. each trade: ``LPUSH``/``LTRIM`` of ``md:{M}:trades``, and one ``trade`` publication per trade;
3. each bar that changed since the last flush with ``slow`` (closed bars first):
   ``ZREMRANGEBYSCORE`` + ``ZADD`` of the bar, the set trimmed to ``BARS_KEPT``, published on
   ``kline_<interval>``; with them ``SET md:{M}:klines:last``, the last trade they count;
4. the five-minute average price (``avgPrice``), published when it or the last trade's time moved:
   the sums of the window's 1m bars, as REST ``avgPrice`` takes them from the cache;
5. the 24-hour ticker: ``SET md:{M}:ticker`` when its statistics (a trade, a bucket leaving the
   window) or the best bid/ask moved; published on ``ticker`` and ``miniTicker`` when the statistics
   moved (the best bid/ask in a ``ticker`` payload are those of that moment);
6. the rolling windows of 1 h, 4 h and 1 d (``ticker_1h``...), summed from the 24-hour ticker's
   minute buckets at a flush with ``slow``, published when a window's trades or start moved.

A flush without ``slow`` holds back ``depth20``, the bars (cache writes and publications), the
average price and the ticker's publications for a later flush with it, which writes and publishes
each as it stands then (see :meth:`MarketData.flush`).

A publication is ``("MDPUB", market, stream, payload)``; the shell runs it through the bus script.

Snapshots and recovery. ``to_state`` captures everything, unflushed changes included, and
``from_state`` gives a builder that produces the same ops from then on. A service that restores a
snapshot and re-applies the journal's tail whose effects are already in Redis feeds it to ``replay``
(update ids, klines and tickers move; no level, no trade kept to publish) and calls ``settle`` once
after that tail with the engine's books: the state ``flush`` would leave, with nothing rendered. The
diff ids, ``pu`` and bars then continue where the published ones stopped, and nothing is written or
published twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, cast

import msgspec

from tradewire import statebytes
from tradewire.engine.config import ExchangeConfig, Market
from tradewire.engine.events import Accepted, Canceled, Event, Expired, Trade
from tradewire.keys import MDPUB, RedisOp, md
from tradewire.marketdata.binance import AVG_PRICE_MINUTES, BinanceRenderer
from tradewire.marketdata.depth import BookSide, DepthBook, DepthState
from tradewire.marketdata.klines import BARS_KEPT, INTERVALS, SECOND, KlineSeries, SeriesState
from tradewire.marketdata.ticker import ROLLING_WINDOWS, RollingTicker, TickerState, window_stats
from tradewire.marketdata.ticker import WINDOW as TICKER_WINDOW
from tradewire.marketdata.updates import (
    BookTickerUpdate,
    DepthSnapshot,
    Kline,
    KlineUpdate,
    PriceLevel,
    TickerUpdate,
    TradeUpdate,
    mini_ticker,
)

TRADES_KEPT = 1000
"""Recent trades cached per market (``md:{M}:trades``)."""
PARTIAL_DEPTH = 20
"""Levels per side of the ``depth20`` stream."""
SLOW_STREAMS_MS = 100
"""Partial-book, kline and ticker publications go out when exchange time enters a new slot of this
many ms (and when commands stop coming): see :meth:`MarketData.flush`."""
STATE_VERSION = 1
MINUTE: Final = 60_000

Best = tuple[int, int, int, int]
"""``(bid price, bid qty, ask price, ask qty)``; 0s for an empty side."""
UNKNOWN_TOP: tuple[list[PriceLevel], list[PriceLevel]] = ([(0, 0)], [(0, 0)])
"""``_MarketView.top`` when what subscribers hold is unknown (after :meth:`MarketData.refresh`):
no book has a level of qty 0, so the next flush with ``slow`` publishes ``depth20``, empty or not."""


HELD_BARS: Final = 1
"""Closed bars a series keeps in memory (and in snapshots): the builder reads only the last one,
to publish it again after a recovery (:meth:`MarketData.refresh`); the history that REST reads is
the cache in Redis. A thousand bars of sixteen intervals per market made every snapshot carry them."""


class MarketState(msgspec.Struct, array_like=True):
    """One market's part of a snapshot."""

    market: str
    depth: DepthState
    series: list[SeriesState]
    ticker: TickerState
    trades: list[TradeUpdate]
    best: Best
    top: tuple[list[PriceLevel], list[PriceLevel]]
    dirty: bool
    held_bars: list[list[Kline]] = []
    held_ticker: bool = False
    holding: bool = False
    bars_moved: bool = False
    minutes: list[list[int]] = []
    """Empty in a state from before ``avgPrice``: its first window counts the trades after it."""
    last_trade_time: int = 0
    average: tuple[int, int] | None = None
    last_trade_id: int = -1
    windows_published: list[list[int]] = []


class BuilderState(msgspec.Struct, array_like=True):
    """Everything a ``MarketData`` needs to continue exactly where it was."""

    version: int
    ts: int
    next_second: int
    """Where the next second starts (the next minute's start in a state from before 1s bars)."""
    markets: list[MarketState]


class _MarketView:
    """The market-data state of one market."""

    __slots__ = (
        "average",
        "bars_moved",
        "base_scale",
        "best",
        "depth",
        "dirty",
        "heads",
        "held_bars",
        "held_ticker",
        "holding",
        "keys",
        "last_trade_id",
        "last_trade_time",
        "minutes",
        "name",
        "render",
        "rendered",
        "second",
        "second_last_qty",
        "series",
        "ticker",
        "top",
        "trades",
        "windows_published",
    )

    def __init__(self, market: Market) -> None:
        self.name = market.name
        base, quote = market.base.precision, market.quote.precision
        self.render = BinanceRenderer(market.name, base, quote)
        self.depth = DepthBook(market.name, base, quote)
        self.series = [KlineSeries(interval, HELD_BARS) for interval in INTERVALS]
        self.second = KlineSeries("1s", HELD_BARS)
        """The current second's trades since the last fold, summed (see :meth:`count_trade`)."""
        self.second_last_qty = 0
        self.ticker = RollingTicker(market.base_scale)
        self.base_scale = market.base_scale
        self.minutes: list[list[int]] = []
        """The traded minutes of the average price's window, oldest first, at most
        :data:`AVG_PRICE_MINUTES`: ``[open time, volume, notional]``, the 1m bars' sums."""
        self.last_trade_time = 0
        """The exchange time of the market's last trade; 0 before its first."""
        self.last_trade_id = -1
        """The market's last trade; written with the bars (``md:{M}:klines:last``, ``<id>:<time>``)
        as the last trade they count, which REST's rolling-window ticker needs beside their trade
        count and REST ``avgPrice`` as its ``closeTime``."""
        self.average: tuple[int, int] | None = None
        """``(price, last trade time)`` as last published on ``avgPrice``."""
        self.windows_published: list[list[int]] = []
        """Per rolling window (:data:`ROLLING_WINDOWS`), ``[open time, first id, last id]`` as last
        published."""
        self.trades: list[TradeUpdate] = []
        """Trades since the last flush, oldest first."""
        self.best: Best = (0, 0, 0, 0)
        """The best bid and ask last published on ``bookTicker``."""
        self.top: tuple[list[PriceLevel], list[PriceLevel]] = ([], [])
        """The levels last published on ``depth20``."""
        self.heads: tuple[list[PriceLevel] | None, list[PriceLevel] | None] = (None, None)
        """The depth book's ``top`` (its heads) when ``top`` was last set: while both are the same
        list objects, the levels are the same and there is nothing to compare."""
        self.rendered: list[tuple[list[PriceLevel] | None, list[list[str]]]] = [(None, []), (None, [])]
        """Per side, a head and its ``depth20`` levels as rendered, kept for a payload where only
        the other side moved."""
        self.dirty = False
        """Whether the next flush has something to say about this market."""
        self.held_bars: list[list[Kline]] = [[] for _ in self.series]
        """Per interval, the bars :meth:`MarketData.refresh` asks the next flush with ``slow`` to
        write and publish again (oldest first)."""
        self.held_ticker = False
        """Whether the ticker changed since it was last published."""
        self.bars_moved = False
        """Whether a bar changed (summed trades folded in, bars closed) since the last flush with
        ``slow``, which writes and publishes it."""
        self.holding = False
        """Whether writes or publications wait for a flush with ``slow``: bars, the ticker, or a
        partial book whose ``heads`` moved since ``depth20`` was last published."""
        name = market.name
        self.keys = {
            "bids": md(name, "bids"),
            "asks": md(name, "asks"),
            "depth:u": md(name, "depth:u"),
            "trades": md(name, "trades"),
            "ticker": md(name, "ticker"),
            "bookTicker": md(name, "bookTicker"),
            **{iv: md(name, f"klines:{iv}") for iv in INTERVALS},
            "klines:last": md(name, "klines:last"),
        }

    def add_trade(self, trade: Trade, ts: int) -> None:
        taker_buys = trade.taker_side == "buy"
        price, qty, notional, trade_id = trade.price, trade.qty, trade.notional, trade.trade_id
        self.trades.append(
            TradeUpdate(
                self.name,
                "trade",
                trade_id,
                price,
                qty,
                notional,
                ts,
                not taker_buys,
                trade.maker_order_id,
                trade.taker_order_id,
            )
        )
        self.second.add(ts, price, qty, notional, taker_buys, trade_id)
        self.second_last_qty = qty
        self.last_trade_time = ts
        self.last_trade_id = trade_id

    def count_trade(self, trade: Trade, ts: int) -> None:
        """Count a trade into the second's sum without keeping it to publish (the silent replay).

        Live or silent, a trade goes into one sum, not into sixteen kline bars and the ticker: the sum
        is merged into all of them at the next flush, :meth:`advance` or :meth:`settle` (the same as
        adding the trades one by one; ``tests/unit/marketdata/test_minute_sums.py``)."""
        qty = trade.qty
        self.second.add(ts, trade.price, qty, trade.notional, trade.taker_side == "buy", trade.trade_id)
        self.second_last_qty = qty
        self.last_trade_time = ts
        self.last_trade_id = trade.trade_id

    def fold_second(self) -> None:
        """Merge the second's summed trades into every interval's bar and the ticker."""
        part = self.second.bar
        if part is not None:
            for series in self.series:
                series.merge(part)
            self.ticker.add_part(part, self.second_last_qty)
            minute = part.open_time - part.open_time % MINUTE
            minutes = self.minutes
            if minutes and minutes[-1][0] == minute:
                sums = minutes[-1]
                sums[1] += part.volume
                sums[2] += part.quote_volume
            else:
                minutes.append([minute, part.volume, part.quote_volume])
                if len(minutes) > AVG_PRICE_MINUTES:
                    del minutes[0]
            self.second.bar = None
            self.second.touched = False
            self.bars_moved = True

    def advance(self, now: int) -> None:
        """Close the bars that ended before ``now`` and age the ticker's window."""
        self.fold_second()
        for series in self.series:
            series.advance(now)
            if series.pending:
                self.dirty = self.bars_moved = True
        self.ticker.advance(now)
        if self.ticker.changed:
            self.dirty = True

    def flush(self, now: int, ops: list[RedisOp], slow: bool = True) -> None:
        """Render what changed; with ``slow`` false, partial-book, kline and ticker writes and
        publications wait (see :meth:`MarketData.flush`)."""
        name, keys, render = self.name, self.keys, self.render
        depth = self.depth
        waiting = False
        diff = depth.take_diff()
        if diff is not None:
            price_text, qty_text = render.price, render.qty
            for side, levels in (("bids", diff.bids), ("asks", diff.asks)):
                kept: list[str] = []
                gone: list[str] = []
                for price, qty in levels:
                    if qty:
                        kept += (price_text(price), qty_text(qty))
                    else:
                        gone.append(price_text(price))
                if kept:
                    ops.append(("HSET", keys[side], *kept))
                if gone:
                    ops.append(("HDEL", keys[side], *gone))
            ops.append(("SET", keys["depth:u"], diff.last_update_id))
            ops.append((MDPUB, name, "depth", render.depth_update(diff)))
        heads = depth.top  # the best levels the last checksum was taken over
        bids, asks = heads
        if bids is not self.heads[0] or asks is not self.heads[1]:
            if slow:
                top = (bids[:PARTIAL_DEPTH], asks[:PARTIAL_DEPTH])
                if top != self.top:
                    self.top = top
                    ops.append((MDPUB, name, "depth20", self.partial_depth(depth.published_id, heads)))
                self.heads = heads
            else:
                waiting = True
        bid, ask = depth.bids.best(), depth.asks.best()
        best = (bid[0], bid[1], ask[0], ask[1])
        best_moved = best != self.best
        if best_moved:
            self.best = best
            book = BookTickerUpdate(name, "bookTicker", depth.event_time, depth.update_id, *best)
            ops.append(("SET", keys["bookTicker"], render.book_ticker_rest(book)))
            ops.append((MDPUB, name, "bookTicker", render.book_ticker(book)))
        if self.trades:
            trades, self.trades = self.trades, []
            ops.append(("LPUSH", keys["trades"], *(render.trade_rest(t) for t in trades)))
            ops.append(("LTRIM", keys["trades"], 0, TRADES_KEPT - 1))
            ops.extend((MDPUB, name, "trade", render.trade(t)) for t in trades)
        if self.second.bar is not None:
            self.fold_second()
        if slow:
            self._flush_bars(now, ops)
            average = self.average_price(now)
            if average != self.average and average is not None:
                self.average = average
                ops.append((MDPUB, name, "avgPrice", render.avg_price(average[0], average[1], now)))
        elif self.bars_moved or any(self.held_bars):
            waiting = True
        ticker = self.ticker
        stats = None
        if ticker.changed or best_moved:
            stats = ticker.stats(name, now, bid, ask)
            ops.append(("SET", keys["ticker"], render.ticker_rest(stats)))
            if ticker.changed:
                self.held_ticker = True
                ticker.changed = False
        if self.held_ticker:
            if slow:
                if stats is None:
                    stats = ticker.stats(name, now, bid, ask)
                ops.append((MDPUB, name, "ticker", render.ticker(stats)))
                ops.append((MDPUB, name, "miniTicker", render.mini_ticker(mini_ticker(stats))))
                self.held_ticker = False
            else:
                waiting = True
        if slow and self.last_trade_time:
            self._flush_windows(now, ops, stats)
        self.holding = waiting
        self.dirty = False

    def _flush_windows(self, now: int, ops: list[RedisOp], day: TickerUpdate | None) -> None:
        """Publish each rolling window (``ticker_1h``, ``ticker_4h``, ``ticker_1d``) whose trades
        or start moved since it was last published (a window's start moves each minute: at most a
        publication a minute for a quiet market; Binance pushes every second). ``day``: the 24-hour
        ticker's statistics of this flush, the 1d window's, when they were computed."""
        name, render, ticker = self.name, self.render, self.ticker
        published, keys = self.windows_published, []
        for index, (label, window) in enumerate(ROLLING_WINDOWS.items()):
            if window == TICKER_WINDOW:
                update = day if day is not None else ticker.stats(name, now, (0, 0), (0, 0))
            else:
                update = window_stats(ticker, name, now, window)
            key = [update.open_time, update.first_trade_id, update.last_trade_id]
            keys.append(key)
            if published[index : index + 1] != [key]:  # none yet after a refresh: published
                ops.append((MDPUB, name, f"ticker_{label}", render.window_ticker(update, label)))
        self.windows_published = keys

    def average_price(self, now: int) -> tuple[int, int] | None:
        """``(price, last trade time)`` for ``avgPrice`` at exchange time ``now``: the volume-weighted
        price of the trades since the minute ``AVG_PRICE_MINUTES - 1`` before ``now``'s (rounded
        down, as REST ``avgPrice``), the last trade's price when none; ``None`` before the first
        trade. The window moves only when a minute ends, when the 1m bar closes and a flush follows."""
        if not self.last_trade_time:
            return None
        since = now - now % MINUTE - (AVG_PRICE_MINUTES - 1) * MINUTE
        volume = notional = 0
        for start, minute_volume, minute_notional in self.minutes:
            if start >= since:
                volume += minute_volume
                notional += minute_notional
        price = notional * self.base_scale // volume if volume else self.ticker.last_price
        return price, self.last_trade_time

    def _flush_bars(self, now: int, ops: list[RedisOp]) -> None:
        """Write and publish every bar that changed since the last slow flush (the latest version of
        each), and those :meth:`MarketData.refresh` asked for."""
        name, keys, render = self.name, self.keys, self.render
        held_bars = self.held_bars
        written = False
        for index, series in enumerate(self.series):
            grows = series.fresh
            bars = series.take_updates()
            held = held_bars[index]
            if held:  # bars refresh() asked for, then the updates, each open time once
                for bar in bars:
                    if held[-1].open_time == bar.open_time:
                        held[-1] = bar  # a later version of the same bar
                    else:
                        held.append(bar)
                bars, held_bars[index] = held, []
            if not bars:
                continue
            written = True
            key = keys[series.interval]
            for bar in bars:
                ops.append(("ZREMRANGEBYSCORE", key, bar.open_time, bar.open_time))
                ops.append(("ZADD", key, bar.open_time, render.kline_rest(bar)))
            if grows:  # a bar the cache has not seen: the only time it can pass its history
                ops.append(("ZREMRANGEBYRANK", key, 0, -BARS_KEPT[series.interval] - 1))
            stream = f"kline_{series.interval}"
            last_closed = next((bar for bar in reversed(bars) if bar.closed), None)
            for bar in bars:
                if bar.closed and not bar.trades and bar is not last_closed:
                    continue  # a flat bar inside a stretch without trades: the cache has it
                update = KlineUpdate(name, stream, series.interval, now, bar)
                ops.append((MDPUB, name, stream, render.kline(update)))
        if written and self.last_trade_id >= 0:  # (unknown after a state from before it, until a trade)
            # every trade so far is in the bars: the last one's id and time
            ops.append(("SET", keys["klines:last"], f"{self.last_trade_id}:{self.last_trade_time}"))
        self.bars_moved = False

    def partial_depth(self, last_update_id: int, heads: tuple[list[PriceLevel], list[PriceLevel]]) -> bytes:
        """The ``depth20`` payload of the depth book's ``heads``; a side is rendered once per head."""
        rendered = self.rendered
        for side, head in enumerate(heads):
            if rendered[side][0] is not head:
                rendered[side] = (head, self.render.levels(head[:PARTIAL_DEPTH]))
        return self.render.partial_depth_of(last_update_id, rendered[0][1], rendered[1][1])

    def settle(self, now: int) -> None:
        """What :meth:`flush` does to the state, without rendering anything (after a silent replay)."""
        self.fold_second()
        self.average = self.average_price(now)
        if self.last_trade_time:  # what a flush would have published last
            self._flush_windows(now, [], None)
        depth = self.depth
        if depth.pending:
            depth.settle()
        bids, asks = self.heads = depth.top  # as a flush that publishes depth20 leaves them
        self.top = (bids[:PARTIAL_DEPTH], asks[:PARTIAL_DEPTH])
        bid, ask = depth.bids.best(), depth.asks.best()
        self.best = (bid[0], bid[1], ask[0], ask[1])
        self.trades = []
        for series in self.series:
            series.pending = []
            series.touched = False
            series.fresh = False
        self.ticker.changed = False
        self.held_bars = [[] for _ in self.series]
        self.held_ticker = False
        self.bars_moved = False
        self.holding = False
        self.dirty = False

    def to_state(self) -> MarketState:
        self.fold_second()
        return MarketState(
            self.name,
            self.depth.to_state(),
            [series.to_state() for series in self.series],
            self.ticker.to_state(),
            list(self.trades),
            self.best,
            self.top,
            self.dirty,
            [list(bars) for bars in self.held_bars],
            self.held_ticker,
            self.holding,
            self.bars_moved,
            [list(sums) for sums in self.minutes],
            self.last_trade_time,
            self.average,
            self.last_trade_id,
            [list(key) for key in self.windows_published],
        )

    @classmethod
    def from_state(cls, market: Market, state: MarketState) -> _MarketView:
        view = cls(market)
        depth = view.depth
        view.depth = DepthBook.from_state(
            market.name, depth.base_precision, depth.quote_precision, state.depth
        )
        # by interval: a state from before an interval existed gives it no bars, and its cache
        # starts with the first trade after the upgrade
        kept = {series.interval: series for series in state.series}
        view.series = [
            KlineSeries.from_state(kept[interval], HELD_BARS)
            if interval in kept
            else KlineSeries(interval, HELD_BARS)
            for interval in INTERVALS
        ]
        view.ticker = RollingTicker.from_state(market.base_scale, state.ticker)
        view.trades = list(state.trades)
        view.best = state.best
        view.top = state.top
        bids, asks = view.depth.top
        if (bids[:PARTIAL_DEPTH], asks[:PARTIAL_DEPTH]) == view.top:
            view.heads = view.depth.top  # else depth20 waits to be published, as it did
        view.dirty = state.dirty
        if len(state.held_bars) == len(state.series):
            held = {series.interval: bars for series, bars in zip(state.series, state.held_bars, strict=True)}
            view.held_bars = [list(held.get(interval, [])) for interval in INTERVALS]
        view.held_ticker = state.held_ticker
        view.bars_moved = state.bars_moved
        view.minutes = [list(sums) for sums in state.minutes]
        view.last_trade_time = state.last_trade_time
        view.average = state.average
        view.last_trade_id = state.last_trade_id
        view.windows_published = [list(key) for key in state.windows_published]
        view.holding = state.holding or view.held_ticker or any(view.held_bars)
        return view


class MarketData:
    """Every market's depth, trades, klines and tickers, fed with engine events, flushed as Redis ops."""

    __slots__ = ("_markets", "_next_second", "_ts", "_views", "config")

    def __init__(self, config: ExchangeConfig) -> None:
        self.config = config
        self._views: dict[str, _MarketView] = {name: _MarketView(m) for name, m in config.markets.items()}
        self._markets = list(self._views.values())
        self._ts = 0
        """Exchange time: the latest ``ts`` seen."""
        self._next_second = 0
        """Where the next second starts: ``apply`` at or past it closes bars and ages tickers."""

    @property
    def ts(self) -> int:
        """The builder's exchange time (ms): the latest ``ts`` applied."""
        return self._ts

    def apply(self, events: Sequence[Event], ts: int) -> None:
        """Take in the events of one command, applied at exchange time ``ts`` (ms)."""
        self._apply(events, ts)

    def replay(self, events: Sequence[Event], ts: int) -> None:
        """:meth:`apply` for a command whose output is already in Redis (recovery's silent replay):
        klines and the ticker count its trades and each book's update id moves exactly as ``apply``
        moves it, but the levels are left alone: :meth:`settle` takes them from the engine's book
        at the end of the replay."""
        if ts < self._ts:
            ts = self._ts
        else:
            self._ts = ts
            if ts >= self._next_second:
                for view in self._markets:
                    view.advance(ts)
                self._next_second = ts - ts % SECOND + SECOND
        views = self._views
        touched: list[_MarketView] = []
        resting: Accepted | None = None
        filled = 0
        for event in cast("Sequence[Any]", events):
            kind = type(event)
            if kind is Trade:
                view = views[event.market]
                view.count_trade(event, ts)
                view.dirty = True
                if resting is not None and event.taker_order_id == resting.order_id:
                    filled += event.qty
            elif kind is Canceled:
                if not event.remaining_qty:
                    continue
                view = views[event.market]
            else:
                if kind is Accepted:
                    if resting is not None and resting.qty > filled:
                        self._touch(views[resting.market], touched)
                    resting = None
                    if event.tif == "GTC" and event.kind == "limit":
                        resting, filled = event, 0
                elif kind is Expired and resting is not None and event.order_id == resting.order_id:
                    resting = None
                continue
            self._touch(view, touched)
        if resting is not None and resting.qty > filled:
            self._touch(views[resting.market], touched)
        for view in touched:
            view.dirty = True
            depth = view.depth
            depth.update_id += 1
            depth.event_time = ts

    @staticmethod
    def _touch(view: _MarketView, touched: list[_MarketView]) -> None:
        if view not in touched:
            touched.append(view)

    def _apply(self, events: Sequence[Event], ts: int) -> None:
        if ts < self._ts:
            ts = self._ts
        else:
            self._ts = ts
            if ts >= self._next_second:
                for view in self._markets:
                    view.advance(ts)
                self._next_second = ts - ts % SECOND + SECOND
        views = self._views
        touched: list[_MarketView] = []
        resting: Accepted | None = None
        filled = 0
        for event in cast("Sequence[Any]", events):
            kind = type(event)
            if kind is Trade:
                view = views[event.market]
                view.depth.change(event.taker_side == "sell", event.price, -event.qty)
                view.add_trade(event, ts)
                if resting is not None and event.taker_order_id == resting.order_id:
                    filled += event.qty
            elif kind is Canceled:
                view = views[event.market]
                view.depth.change(event.side == "buy", event.price, -event.remaining_qty)
            else:
                if kind is Accepted:
                    if resting is not None:  # events of several commands: the previous one is done
                        self._rest(resting, filled, touched)
                        resting = None
                    if event.tif == "GTC" and event.kind == "limit":
                        resting, filled = event, 0
                elif kind is Expired and resting is not None and event.order_id == resting.order_id:
                    resting = None
                continue
            if view not in touched:
                touched.append(view)
        if resting is not None:
            self._rest(resting, filled, touched)
        for view in touched:
            view.dirty = True
            view.depth.end_command(ts)

    def _rest(self, order: Accepted, filled: int, touched: list[_MarketView]) -> None:
        """A GTC limit order rests, at the end of its command, with what it did not take."""
        if order.qty > filled:
            view = self._views[order.market]
            view.depth.change(order.side == "buy", order.price, order.qty - filled)
            if view not in touched:
                touched.append(view)

    def flush(self, slow: bool = True) -> list[RedisOp]:
        """Every cache write and publication since the last flush, in order.

        With ``slow`` false, the ``depth20``, kline, average-price and ticker publications and the
        bars' cache writes (a partial book, sixteen bars and two tickers to render per market and flush, two
        Redis calls per bar and five per publication in the bus script) wait for a later flush,
        which writes and publishes each as it stands then: the engine service passes ``slow`` when
        exchange time enters a new slot of :data:`SLOW_STREAMS_MS`, and when commands stop coming
        (Binance pushes partial books every 100 ms or 1 s, klines and tickers every 1 to 2 s). A
        bar closes only in a batch that enters a new second, hence a new slot: closed bars are
        written at once, and only the open bars can be a slot behind in the cache (REST klines,
        ``avgPrice`` and the rolling-window ticker read them). Writing the sixteen open bars per
        batch made 5.5 of the 19 Redis calls per command at 1,000 commands/s in batches of one.
        Depth diffs, trades, the best bid and ask and the 24-hour ticker's cache are never held
        back, so a REST read after an order's answer sees its trades, the book it left and the
        ticker's last price."""
        ops: list[RedisOp] = []
        now = self._ts
        for view in self._markets:
            if view.dirty or (slow and view.holding):
                view.flush(now, ops, slow)
        return ops

    def holds(self) -> bool:
        """Whether partial-book, kline, average-price or ticker publications wait for a flush with
        ``slow``."""
        return any(view.holding for view in self._markets)

    def refresh(self) -> None:
        """Publish every market's partial book, open bars, last closed bars, ticker and average price
        (once it traded) at the next flush with ``slow``, and write the bars again: for the engine service
        after a recovery, since what a stopped engine held back was never made, and the state a
        silent replay rebuilds does not know which. (Only the open bars' writes can have been
        held: a bar closes when exchange time enters a new second, hence a new slot, and the flush
        of that batch wrote it.)"""
        for view in self._markets:
            view.heads = (None, None)
            for index, series in enumerate(view.series):
                bars = [series.history[-1]] if series.history else []
                if series.bar is not None:
                    bars.append(series.bar.freeze(closed=False))
                view.held_bars[index] = bars
            view.held_ticker = view.ticker.last_price != 0  # not a ticker of zeros: it never traded
            view.average = None
            view.windows_published = []
            depth = view.depth
            bids, asks = depth.top
            # a book that ever changed may have been published non-empty: publish it, empty or not
            book = bool(bids or asks or depth.published_id)
            view.top = UNKNOWN_TOP if book else ([], [])
            view.holding = view.held_ticker or any(view.held_bars) or book or view.last_trade_time != 0

    def settle(self, books: Mapping[str, tuple[list[PriceLevel], list[PriceLevel]]]) -> None:
        """End a silent replay (:meth:`replay`): reach the state :meth:`flush` leaves, rendering
        nothing, so that diff ids, ``pu``, bars and tickers continue from the ones published.

        ``books``: each market's levels ``(bids, asks)`` as the engine's book holds them now.
        """
        for view in self._markets:
            levels = books.get(view.name)
            if levels is not None:
                view.depth.bids = BookSide(is_bid=True, levels=dict(levels[0]))
                view.depth.asks = BookSide(is_bid=False, levels=dict(levels[1]))
            view.settle(self._ts)

    def depth_snapshot(self, market: str, limit: int | None = None) -> DepthSnapshot:
        """The book as of the last applied command, best levels first, ``limit`` per side."""
        return self._views[market].depth.snapshot(limit)

    def to_state(self) -> bytes:
        state = BuilderState(
            STATE_VERSION, self._ts, self._next_second, [view.to_state() for view in self._markets]
        )
        return statebytes.encode(state)

    @classmethod
    def from_state(cls, config: ExchangeConfig, data: bytes) -> MarketData:
        """A builder that continues exactly as the one whose ``to_state`` gave ``data``.

        Markets of ``config`` that the state does not know start empty; markets the config no
        longer has are dropped.
        """
        state = statebytes.decode(data, BuilderState)
        if state.version != STATE_VERSION:
            raise ValueError(f"market-data state version {state.version}, expected {STATE_VERSION}")
        builder = cls(config)
        builder._ts = state.ts
        builder._next_second = state.ts - state.ts % SECOND + SECOND if state.next_second else 0
        for market_state in state.markets:
            market = config.markets.get(market_state.market)
            if market is not None:
                builder._views[market.name] = _MarketView.from_state(market, market_state)
        builder._markets = list(builder._views.values())
        return builder
