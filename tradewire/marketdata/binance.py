"""Binance spot wire formats: market-data updates rendered to the exact JSON Binance sends.

The engine renders each payload once; gateways forward the bytes untouched. Field names and types
follow Binance spot: decimals are strings (tradewire's canonical text: no exponent, no trailing
zeros, ``"100.5"``), times are integer milliseconds of exchange time, ``s`` is the Binance symbol.
Two kinds of shape live here:

- stream payloads (``<symbol>@depth``, ``@depth20``, ``@trade``, ``@kline_<iv>``, ``@ticker``,
  ``@miniTicker``, ``@bookTicker``), which tradewire extends only with fields Binance clients ignore
  (``pu`` and ``cs`` on depth diffs);
- REST shapes for the cached values (``GET /api/v3/trades`` items, ``/klines`` arrays,
  ``/ticker/24hr``, ``/ticker/bookTicker``), which the gateway serves from Redis as they are.

A market ``BTC-USDT`` is the Binance symbol ``BTCUSDT`` (base + quote).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

import orjson

from tradewire.engine.decimals import texts
from tradewire.marketdata.updates import (
    BookTickerUpdate,
    DepthSnapshot,
    DepthUpdate,
    Kline,
    KlineUpdate,
    MiniTickerUpdate,
    PriceLevel,
    TickerUpdate,
    TradeUpdate,
)

_dumps = orjson.dumps


AVG_PRICE_MINUTES: Final = 5
"""The window of Binance's average price (REST ``avgPrice``, the ``@avgPrice`` stream), in minutes."""


def symbol_of(market: str) -> str:
    """The Binance symbol of a market: ``BTC-USDT`` -> ``BTCUSDT``."""
    return market.replace("-", "")


def market_of_symbol(symbol: str, markets: Iterable[str]) -> str | None:
    """The market among ``markets`` whose symbol is ``symbol`` (any case), or ``None``."""
    wanted = symbol.upper()
    for market in markets:
        if symbol_of(market).upper() == wanted:
            return market
    return None


def symbol_table(markets: Iterable[str]) -> dict[str, str]:
    """Binance symbol -> market, for a gateway that resolves symbols on every request."""
    return {symbol_of(market): market for market in markets}


class BinanceRenderer:
    """Renders one market's updates; holds its symbol and the precisions of its two assets."""

    __slots__ = ("base_precision", "price", "qty", "quote_precision", "symbol", "symbol_json")

    def __init__(self, market: str, base_precision: int, quote_precision: int) -> None:
        self.symbol = symbol_of(market)
        self.symbol_json = _dumps(self.symbol).decode()
        self.base_precision = base_precision
        self.quote_precision = quote_precision
        self.price: Callable[[int], str] = texts(quote_precision).__getitem__
        """Text of a price or a quote amount."""
        self.qty: Callable[[int], str] = texts(base_precision).__getitem__
        """Text of a base quantity."""

    def levels(self, levels: Sequence[PriceLevel]) -> list[list[str]]:
        """``[["price", "qty"], ...]`` as Binance writes book levels.

        A removed level's qty is ``"0.00000000"``, as Binance writes it: python-binance's depth cache
        removes a level only on that exact string.
        """
        price, qty = self.price, self.qty
        return [[price(p), qty(q) if q else "0.00000000"] for p, q in levels]

    # -- depth -------------------------------------------------------------------------------------
    def depth_update(self, diff: DepthUpdate) -> bytes:
        """``<symbol>@depth``: a ``depthUpdate`` with tradewire's ``pu`` and ``cs`` added."""
        return _dumps(
            {
                "e": "depthUpdate",
                "E": diff.event_time,
                "s": self.symbol,
                "U": diff.first_update_id,
                "u": diff.last_update_id,
                "pu": diff.prev_update_id,
                "b": self.levels(diff.bids),
                "a": self.levels(diff.asks),
                "cs": diff.checksum,
            }
        )

    def partial_depth(self, snapshot: DepthSnapshot) -> bytes:
        """``<symbol>@depth<n>`` and the REST ``GET /api/v3/depth`` body."""
        return self.partial_depth_of(
            snapshot.last_update_id, self.levels(snapshot.bids), self.levels(snapshot.asks)
        )

    def partial_depth_of(self, last_update_id: int, bids: list[list[str]], asks: list[list[str]]) -> bytes:
        """:meth:`partial_depth` from sides already rendered by :meth:`levels` (a caller that keeps
        the rendering of a side that did not change)."""
        return _dumps({"lastUpdateId": last_update_id, "bids": bids, "asks": asks})

    # -- trades ------------------------------------------------------------------------------------
    def trade(self, trade: TradeUpdate) -> bytes:
        """``<symbol>@trade``. Spliced as text rather than a dict for orjson (every trade is rendered
        twice, here and for REST; the same bytes, which the unit tests hold to orjson's)."""
        ts = trade.ts
        return (
            f'{{"e":"trade","E":{ts},"s":{self.symbol_json},"t":{trade.trade_id},'
            f'"p":"{self.price(trade.price)}","q":"{self.qty(trade.qty)}","T":{ts},'
            f'"m":{"true" if trade.buyer_is_maker else "false"},"M":true}}'
        ).encode()

    def trade_rest(self, trade: TradeUpdate) -> bytes:
        """One item of ``GET /api/v3/trades`` (spliced as :meth:`trade` is)."""
        price = self.price
        return (
            f'{{"id":{trade.trade_id},"price":"{price(trade.price)}","qty":"{self.qty(trade.qty)}",'
            f'"quoteQty":"{price(trade.quote_qty)}","time":{trade.ts},'
            f'"isBuyerMaker":{"true" if trade.buyer_is_maker else "false"},"isBestMatch":true}}'
        ).encode()

    def avg_price(self, price: int, last_trade_time: int, now: int) -> bytes:
        """``<symbol>@avgPrice``: the average price of the last :data:`AVG_PRICE_MINUTES` minutes."""
        return (
            f'{{"e":"avgPrice","E":{now},"s":{self.symbol_json},"i":"{AVG_PRICE_MINUTES}m",'
            f'"w":"{self.price(price)}","T":{last_trade_time}}}'
        ).encode()

    # -- klines ------------------------------------------------------------------------------------
    def kline(self, update: KlineUpdate) -> bytes:
        """``<symbol>@kline_<interval>``."""
        k = update.kline
        price, qty = self.price, self.qty
        return _dumps(
            {
                "e": "kline",
                "E": update.event_time,
                "s": self.symbol,
                "k": {
                    "t": k.open_time,
                    "T": k.close_time,
                    "s": self.symbol,
                    "i": update.interval,
                    "f": k.first_trade_id,
                    "L": k.last_trade_id,
                    "o": price(k.open),
                    "c": price(k.close),
                    "h": price(k.high),
                    "l": price(k.low),
                    "v": qty(k.volume),
                    "n": k.trades,
                    "x": k.closed,
                    "q": price(k.quote_volume),
                    "V": qty(k.taker_buy_volume),
                    "Q": price(k.taker_buy_quote_volume),
                    "B": "0",
                },
            }
        )

    def kline_rest(self, k: Kline) -> bytes:
        """One item of ``GET /api/v3/klines``: the 12-element array."""
        price, qty = self.price, self.qty
        row: list[Any] = [
            k.open_time,
            price(k.open),
            price(k.high),
            price(k.low),
            price(k.close),
            qty(k.volume),
            k.close_time,
            price(k.quote_volume),
            k.trades,
            qty(k.taker_buy_volume),
            price(k.taker_buy_quote_volume),
            "0",
        ]
        return _dumps(row)

    # -- tickers -----------------------------------------------------------------------------------
    def ticker(self, t: TickerUpdate) -> bytes:
        """``<symbol>@ticker``: the ``24hrTicker`` event."""
        price, qty = self.price, self.qty
        return _dumps(
            {
                "e": "24hrTicker",
                "E": t.event_time,
                "s": self.symbol,
                "p": price(t.price_change),
                "P": t.price_change_percent,
                "w": price(t.weighted_avg_price),
                "x": price(t.prev_close_price),
                "c": price(t.last_price),
                "Q": qty(t.last_qty),
                "b": price(t.bid_price),
                "B": qty(t.bid_qty),
                "a": price(t.ask_price),
                "A": qty(t.ask_qty),
                **self._window(t),
            }
        )

    def window_ticker(self, t: TickerUpdate, window: str) -> bytes:
        """``<symbol>@ticker_<window>``: the ``1hTicker``, ``4hTicker`` or ``1dTicker`` event."""
        price = self.price
        return _dumps(
            {
                "e": f"{window}Ticker",
                "E": t.event_time,
                "s": self.symbol,
                "p": price(t.price_change),
                "P": t.price_change_percent,
                "c": price(t.last_price),
                "w": price(t.weighted_avg_price),
                **self._window(t),
            }
        )

    def _window(self, t: TickerUpdate) -> dict[str, str | int]:
        """The fields every ticker event ends with: the window's prices, volumes, times and trades."""
        price, qty = self.price, self.qty
        return {
            "o": price(t.open_price),
            "h": price(t.high_price),
            "l": price(t.low_price),
            "v": qty(t.volume),
            "q": price(t.quote_volume),
            "O": t.open_time,
            "C": t.close_time,
            "F": t.first_trade_id,
            "L": t.last_trade_id,
            "n": t.trades,
        }

    def ticker_rest(self, t: TickerUpdate) -> bytes:
        """``GET /api/v3/ticker/24hr`` for one symbol."""
        price, qty = self.price, self.qty
        return _dumps(
            {
                "symbol": self.symbol,
                "priceChange": price(t.price_change),
                "priceChangePercent": t.price_change_percent,
                "weightedAvgPrice": price(t.weighted_avg_price),
                "prevClosePrice": price(t.prev_close_price),
                "lastPrice": price(t.last_price),
                "lastQty": qty(t.last_qty),
                "bidPrice": price(t.bid_price),
                "bidQty": qty(t.bid_qty),
                "askPrice": price(t.ask_price),
                "askQty": qty(t.ask_qty),
                "openPrice": price(t.open_price),
                "highPrice": price(t.high_price),
                "lowPrice": price(t.low_price),
                "volume": qty(t.volume),
                "quoteVolume": price(t.quote_volume),
                "openTime": t.open_time,
                "closeTime": t.close_time,
                "firstId": t.first_trade_id,
                "lastId": t.last_trade_id,
                "count": t.trades,
            }
        )

    def mini_ticker(self, t: MiniTickerUpdate) -> bytes:
        """``<symbol>@miniTicker``: the ``24hrMiniTicker`` event."""
        price = self.price
        return _dumps(
            {
                "e": "24hrMiniTicker",
                "E": t.event_time,
                "s": self.symbol,
                "c": price(t.last_price),
                "o": price(t.open_price),
                "h": price(t.high_price),
                "l": price(t.low_price),
                "v": self.qty(t.volume),
                "q": price(t.quote_volume),
            }
        )

    def book_ticker(self, b: BookTickerUpdate) -> bytes:
        """``<symbol>@bookTicker`` (Binance spot sends no event type or time here)."""
        return _dumps(
            {
                "u": b.update_id,
                "s": self.symbol,
                "b": self.price(b.bid_price),
                "B": self.qty(b.bid_qty),
                "a": self.price(b.ask_price),
                "A": self.qty(b.ask_qty),
            }
        )

    def book_ticker_rest(self, b: BookTickerUpdate) -> bytes:
        """``GET /api/v3/ticker/bookTicker`` for one symbol."""
        return _dumps(
            {
                "symbol": self.symbol,
                "bidPrice": self.price(b.bid_price),
                "bidQty": self.qty(b.bid_qty),
                "askPrice": self.price(b.ask_price),
                "askQty": self.qty(b.ask_qty),
            }
        )
