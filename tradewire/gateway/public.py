"""Public REST endpoints: market data served from the engine's Redis cache.

Each handler takes the gateway and the request parameters and returns the response body as bytes;
the cached values are already Binance-shaped JSON (``docs/internals.md``), so most answers are the
cache's bytes joined into a list. The order book is the exception: the levels are a hash per side,
read together with ``md:{M}:depth:u`` in one MULTI/EXEC so that the ``lastUpdateId`` is exactly the
one those levels stand at (the engine writes all three in one transaction too). Sorting and cutting
the levels is :func:`depth_body`, pure.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any, Final

import orjson

from tradewire import keys
from tradewire.engine.config import Market
from tradewire.engine.decimals import to_text, to_units
from tradewire.gateway import errors
from tradewire.gateway.errors import ApiError
from tradewire.gateway.markets import rate_limits
from tradewire.gateway.params import check_time_zone, int_param, limit_param, required, time_range
from tradewire.gateway.service import Gateway
from tradewire.gateway.streams import KLINE_INTERVALS, symbol_of
from tradewire.marketdata.binance import AVG_PRICE_MINUTES
from tradewire.marketdata.klines import INTERVALS
from tradewire.marketdata.ticker import divide_half_up, percent_change

Params = Mapping[str, str]
DEPTH_LIMITS: Final = (5, 10, 20, 50, 100, 500, 1000, 5000)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def depth_weight(limit: int) -> int:
    if limit <= 100:
        return 5
    if limit <= 500:
        return 25
    if limit <= 1000:
        return 50
    return 250


SYMBOL_RANGE: Final = "^[A-Z0-9-_.]{1,20}$"
SYMBOLS_RANGE: Final = '^\\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}){0,1}\\]$'
"""Binance's legal ranges of ``symbol`` and ``symbols``, which its ``-1100`` answers quote."""
_SYMBOL: Final = re.compile(r"[A-Z0-9_.-]{1,20}")


def _market_named(gateway: Gateway, symbol: str, param: str) -> Market:
    """The market whose symbol is exactly ``symbol``: ``-1100`` for what no Binance symbol can be
    (lower case, other characters), ``-1121`` for a symbol the exchange does not list."""
    market = gateway.markets.market(symbol)
    if market is not None:
        return market
    if not _SYMBOL.fullmatch(symbol):
        raise errors.out_of_range(param, SYMBOL_RANGE if param == "symbol" else SYMBOLS_RANGE)
    raise errors.error(errors.INVALID_SYMBOL)


def market_of(gateway: Gateway, params: Params) -> Market:
    return _market_named(gateway, required(params, "symbol"), "symbol")


def markets_of(gateway: Gateway, params: Params) -> list[Market]:
    """``symbol=X``, ``symbols=["X","Y"]`` or, with neither, every market."""
    if params.get("symbol"):
        return [market_of(gateway, params)]
    raw = params.get("symbols")
    if not raw:
        return list(gateway.markets.config.markets.values())
    try:
        names = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise errors.bad_param("symbols", 'expected a JSON array like ["BTCUSDT","ETHUSDT"].') from None
    if not isinstance(names, list) or not names:
        raise errors.bad_param("symbols", 'expected a JSON array like ["BTCUSDT","ETHUSDT"].')
    out: list[Market] = []
    for name in names:
        if not isinstance(name, str):
            raise errors.out_of_range("symbols", SYMBOLS_RANGE)
        out.append(_market_named(gateway, name, "symbols"))
    return out


def depth_body(
    bids: Mapping[bytes, bytes], asks: Mapping[bytes, bytes], last_update_id: int, limit: int, places: int
) -> bytes:
    """``GET /api/v3/depth``: the best ``limit`` levels per side, bids high to low, asks low to high."""

    def key(price: bytes) -> int:
        return to_units(price.decode(), places) or 0

    best_bids = sorted(bids, key=key, reverse=True)[:limit]
    best_asks = sorted(asks, key=key)[:limit]
    return orjson.dumps(
        {
            "lastUpdateId": last_update_id,
            "bids": [[p.decode(), bids[p].decode()] for p in best_bids],
            "asks": [[p.decode(), asks[p].decode()] for p in best_asks],
        }
    )


async def depth(gateway: Gateway, params: Params) -> bytes:
    market = market_of(gateway, params)
    limit = limit_param(params, 100, 5000)
    async with gateway.client.pipeline(transaction=True) as pipe:
        pipe.hgetall(keys.md(market.name, "bids"))
        pipe.hgetall(keys.md(market.name, "asks"))
        pipe.get(keys.md(market.name, "depth:u"))
        bids, asks, u = await pipe.execute()
    return depth_body(bids, asks, int(u or 0), limit, market.quote.precision)


async def trades(gateway: Gateway, params: Params) -> bytes:
    market = market_of(gateway, params)
    limit = limit_param(params, 500, 1000)
    items: Any = await gateway.client.lrange(keys.md(market.name, "trades"), 0, limit - 1)
    return b"[" + b",".join(reversed(items)) + b"]"


async def historical_trades(gateway: Gateway, params: Params) -> bytes:
    """``GET /api/v3/historicalTrades``: from the trade ``fromId`` on (oldest first), or the newest
    ``limit``, in ``/trades``' shape. Only the cached last 1,000 trades are there to read: an older
    ``fromId`` starts at the oldest of them."""
    market = market_of(gateway, params)
    limit = limit_param(params, 500, 1000)
    from_id = int_param(params, "fromId")
    if from_id is None:
        return await trades(gateway, params)
    items: Any = await gateway.client.lrange(keys.md(market.name, "trades"), 0, -1)
    chosen = [raw for raw in reversed(items) if orjson.loads(raw)["id"] >= from_id][:limit]
    return b"[" + b",".join(chosen) + b"]"


def agg_trade(trade: Mapping[str, Any]) -> dict[str, Any]:
    """A ``GET /api/v3/aggTrades`` item for one trade (tradewire aggregates nothing: one trade each)."""
    return {
        "a": trade["id"], "p": trade["price"], "q": trade["qty"], "f": trade["id"], "l": trade["id"],
        "T": trade["time"], "m": trade["isBuyerMaker"], "M": True,
    }  # fmt: skip


async def agg_trades(gateway: Gateway, params: Params) -> bytes:
    market = market_of(gateway, params)
    limit = limit_param(params, 500, 1000)
    from_id = int_param(params, "fromId")
    start, end = time_range(params)
    items: Any = await gateway.client.lrange(keys.md(market.name, "trades"), 0, -1)
    chosen = []
    for raw in reversed(items):
        trade = orjson.loads(raw)
        if from_id is not None and trade["id"] < from_id:
            continue
        if (start is not None and trade["time"] < start) or (end is not None and trade["time"] > end):
            continue
        chosen.append(agg_trade(trade))
    chosen = chosen[:limit] if from_id is not None or start is not None else chosen[-limit:]
    return orjson.dumps(chosen)


async def klines(gateway: Gateway, params: Params) -> bytes:
    market = market_of(gateway, params)
    interval = required(params, "interval")
    if interval not in KLINE_INTERVALS:
        raise errors.error(errors.INVALID_INTERVAL)
    limit = limit_param(params, 500, 1000)
    start, end = time_range(params)
    check_time_zone(params, INTERVALS[interval])
    key = keys.md(market.name, f"klines:{interval}")
    low: Any = "-inf" if start is None else start
    high: Any = "+inf" if end is None else end
    rows: Any
    if start is not None:
        rows = await gateway.client.zrangebyscore(key, low, high, start=0, num=limit)
    else:
        rows = list(reversed(await gateway.client.zrevrangebyscore(key, high, low, start=0, num=limit)))
    return b"[" + b",".join(rows) + b"]"


def average_price(rows: list[bytes], market: Market, since: int) -> int | None:
    """The volume-weighted price, in quote units, of the 1m bars ``rows`` (Binance's kline arrays)
    that opened at or after ``since``; ``None`` when they hold no volume. Rounded down."""
    base, quote = market.base.precision, market.quote.precision
    volume = notional = 0
    for raw in rows:
        bar = orjson.loads(raw)
        if bar[0] < since:
            continue
        volume += to_units(bar[5], base) or 0
        notional += to_units(bar[7], quote) or 0
    return notional * market.base_scale // volume if volume else None


def counted_trade(value: bytes) -> tuple[int, int]:
    """``md:{M}:klines:last``: the id and time of the last trade the bars count."""
    trade_id, _, at = value.partition(b":")
    return int(trade_id), int(at or 0)


async def avg_price(gateway: Gateway, params: Params) -> bytes:
    """``GET /api/v3/avgPrice``: the average price of the last five minutes' trades (by volume),
    from the 1m bars; the last trade's price when there was none in that time. ``closeTime`` is
    the time of the last trade the bars count (the trades list runs up to a 100-ms slot ahead of
    them), as the ``@avgPrice`` stream's ``T``."""
    market = market_of(gateway, params)
    now = now_ms()
    since = now - now % 60_000 - (AVG_PRICE_MINUTES - 1) * 60_000
    async with gateway.client.pipeline(transaction=True) as pipe:
        pipe.zrangebyscore(keys.md(market.name, "klines:1m"), since, "+inf")
        pipe.lindex(keys.md(market.name, "trades"), 0)
        pipe.get(keys.md(market.name, "klines:last"))
        rows, last, counted = await pipe.execute()
    units = average_price(list(rows), market, since)
    last_trade = orjson.loads(last) if last is not None else None
    if units is not None:
        price = to_text(units, market.quote.precision)
    else:
        price = last_trade["price"] if last_trade is not None else "0"
    close_time = last_trade["time"] if last_trade is not None else 0
    if counted is not None and units is not None:
        close_time = counted_trade(counted)[1] or close_time
    return orjson.dumps({"mins": AVG_PRICE_MINUTES, "price": price, "closeTime": close_time})


def empty_ticker(market: Market, now: int) -> dict[str, Any]:
    zero = "0"
    return {
        "symbol": symbol_of(market.name), "priceChange": zero, "priceChangePercent": "0.000",
        "weightedAvgPrice": zero, "prevClosePrice": zero, "lastPrice": zero, "lastQty": zero,
        "bidPrice": zero, "bidQty": zero, "askPrice": zero, "askQty": zero, "openPrice": zero,
        "highPrice": zero, "lowPrice": zero, "volume": zero, "quoteVolume": zero,
        "openTime": now - 86_400_000, "closeTime": now, "firstId": -1, "lastId": -1, "count": 0,
    }  # fmt: skip


def empty_book_ticker(market: Market) -> dict[str, str]:
    zero = "0"
    return {
        "symbol": symbol_of(market.name),
        "bidPrice": zero,
        "bidQty": zero,
        "askPrice": zero,
        "askQty": zero,
    }


async def _cached(gateway: Gateway, markets: list[Market], name: str) -> list[bytes | None]:
    if not markets:
        return []
    values: Any = await gateway.client.mget([keys.md(m.name, name) for m in markets])
    return list(values)


MINI_TICKER_FIELDS: Final = (
    "symbol", "openPrice", "highPrice", "lowPrice", "lastPrice", "volume", "quoteVolume", "openTime",
    "closeTime", "firstId", "lastId", "count",
)  # fmt: skip
"""``GET /api/v3/ticker/24hr?type=MINI``: Binance's fields, in its order."""


async def ticker_24hr(gateway: Gateway, params: Params) -> bytes:
    kind = params.get("type") or "FULL"
    if kind not in ("FULL", "MINI"):
        raise ApiError(-1139, "Invalid ticker type.")
    markets = markets_of(gateway, params)
    values = await _cached(gateway, markets, "ticker")
    now = now_ms()
    items = [
        v if v is not None else orjson.dumps(empty_ticker(m, now))
        for m, v in zip(markets, values, strict=True)
    ]
    if kind == "MINI":
        items = [orjson.dumps({k: full[k] for k in MINI_TICKER_FIELDS}) for full in map(orjson.loads, items)]
    return items[0] if params.get("symbol") else b"[" + b",".join(items) + b"]"


WINDOW_UNITS: Final = {"m": (60_000, 59), "h": (3_600_000, 23), "d": (86_400_000, 7)}
"""``windowSize`` units: milliseconds and the largest count (1m..59m, 1h..23h, 1d..7d, as Binance)."""
HOUR: Final = 3_600_000
DAY: Final = 86_400_000


def window_size(params: Params) -> int:
    """``windowSize`` in milliseconds (``1d`` when absent); units cannot be combined."""
    raw = params.get("windowSize") or "1d"
    unit, count = WINDOW_UNITS.get(raw[-1]), raw[:-1]
    if unit is None or not (count.isascii() and count.isdigit()) or count[0] == "0" or int(count) > unit[1]:
        raise errors.out_of_range("windowSize", "1m..59m, 1h..23h, 1d..7d")
    return int(count) * unit[0]


WINDOW_SYMBOLS: Final = 100
"""Symbols one ``GET /api/v3/ticker`` may ask for, as on Binance: each costs a few Redis reads."""


def ticker_window_weight(params: dict[str, str]) -> int:
    """4 per symbol, at most 200 (Binance's weight for ``GET /api/v3/ticker``)."""
    try:
        names = orjson.loads(params["symbols"]) if params.get("symbols") else [None]
    except orjson.JSONDecodeError:
        return 4
    return min(4 * len(names), 200) if isinstance(names, list) and names else 4


def window_ticker(
    market: Market,
    rows: list[bytes],
    last: bytes | None,
    open_time: int,
    close_time: int,
    full: bool,
    counted: bytes | None = None,
) -> dict[str, Any]:
    """The rolling-window statistics of ``rows``, the kline arrays (oldest first) that together
    hold every trade since ``open_time``; ``last`` is the market's newest cached trade, ``counted``
    the last trade the bars count (``md:{M}:klines:last``, written with them). Trade ids are
    consecutive per market, so the window's first id is the last one less its count: the last one
    the bars count, since the trades list is written with every batch and the open bars up to a
    100-ms slot later (the newest trade then made ``firstId`` too high by the trades not counted)."""
    base, quote = market.base.precision, market.quote.precision
    volume = notional = count = 0
    open_price = high = low = close = 0
    for index, raw in enumerate(rows):
        bar = orjson.loads(raw)
        o, h, lo, c = (to_units(bar[i], quote) or 0 for i in (1, 2, 3, 4))
        if index == 0:
            open_price, high, low = o, h, lo
        high, low, close = max(high, h), min(low, lo), c
        volume += to_units(bar[5], base) or 0
        notional += to_units(bar[7], quote) or 0
        count += bar[8]
    last_trade = orjson.loads(last) if last is not None else None
    if not count:
        open_price = high = low = close = to_units(last_trade["price"], quote) or 0 if last_trade else 0
    last_id = -1
    if count:
        if counted is not None:
            last_id = counted_trade(counted)[0]
        elif last_trade is not None:  # a cache from before the bars said which
            last_id = last_trade["id"]

    def price(units: int) -> str:
        return to_text(units, quote)

    out: dict[str, Any] = {"symbol": symbol_of(market.name)}
    if full:
        change = close - open_price
        out["priceChange"] = price(change)
        out["priceChangePercent"] = percent_change(change, open_price)
        out["weightedAvgPrice"] = price(divide_half_up(notional * market.base_scale, volume) if volume else 0)
    out.update({
        "openPrice": price(open_price), "highPrice": price(high), "lowPrice": price(low),
        "lastPrice": price(close), "volume": to_text(volume, base), "quoteVolume": price(notional),
        "openTime": open_time, "closeTime": close_time,
        "firstId": last_id - count + 1 if count else -1, "lastId": last_id, "count": count,
    })  # fmt: skip
    return out


def _tickers_asked(gateway: Gateway, params: Params) -> tuple[list[Market], bool]:
    """The markets of a ``symbol`` or ``symbols`` statistics request, and whether ``type`` is FULL."""
    if not params.get("symbol") and not params.get("symbols"):
        raise ApiError(-1102, "Param 'symbol' or 'symbols' must be sent, but both were empty/null!")
    kind = params.get("type") or "FULL"
    if kind not in ("FULL", "MINI"):
        raise ApiError(-1139, "Invalid ticker type.")
    markets = markets_of(gateway, params)
    if len(markets) > WINDOW_SYMBOLS:  # at weight 200 whatever their number
        raise ApiError(
            -1101, f"Too many values sent for parameter 'symbols', maximum allowed up to {WINDOW_SYMBOLS}."
        )
    return markets, kind == "FULL"


async def _bar_statistics(
    gateway: Gateway,
    markets: list[Market],
    spans: list[tuple[str, int, int | str]],
    open_time: int,
    close_time: int,
    full: bool,
) -> list[dict[str, Any]]:
    """Each market's :func:`window_ticker` over the bars of ``spans`` (interval, first and last
    open time), read in one transaction with the last trade they count."""
    async with gateway.client.pipeline(transaction=True) as pipe:
        for market in markets:
            for interval, low, high in spans:
                pipe.zrangebyscore(keys.md(market.name, f"klines:{interval}"), low, high)
            pipe.lindex(keys.md(market.name, "trades"), 0)
            pipe.get(keys.md(market.name, "klines:last"))
        replies = await pipe.execute()
    per = len(spans) + 2
    items = []
    for i, market in enumerate(markets):
        part = replies[per * i : per * (i + 1)]
        rows = [row for bars in part[: len(spans)] for row in bars]
        items.append(window_ticker(market, rows, part[-2], open_time, close_time, full, part[-1]))
    return items


async def ticker_window(gateway: Gateway, params: Params) -> bytes:
    """``GET /api/v3/ticker``: statistics of a rolling window of 1m..7d, from the 1m bars of its
    first partial hour, the 1h bars up to its first midnight and the 1d bars after it (at most 59,
    23 and 8 bars; the 1m cache keeps 7 days and an hour of bars for the first of them: see
    ``MINUTE_BARS_KEPT``). The window opens on a minute, as on Binance, and ends now."""
    size = window_size(params)
    markets, full = _tickers_asked(gateway, params)
    now = now_ms()
    open_time = now - now % 60_000 - size
    hour = -(-open_time // HOUR) * HOUR
    day = -(-hour // DAY) * DAY
    spans: list[tuple[str, int, int | str]] = [
        ("1m", open_time, hour - 1),
        ("1h", hour, day - 1),
        ("1d", day, "+inf"),
    ]
    items = await _bar_statistics(gateway, markets, spans, open_time, now, full)
    return orjson.dumps(items[0] if params.get("symbol") else items)


async def ticker_trading_day(gateway: Gateway, params: Params) -> bytes:
    """``GET /api/v3/ticker/tradingDay``: statistics of the current trading day, from its 1d bar
    (``timeZone`` 0 only: the bars are UTC's). ``closeTime`` is the day's end, as on Binance."""
    markets, full = _tickers_asked(gateway, params)
    check_time_zone(params)
    now = now_ms()
    day = now - now % DAY
    items = await _bar_statistics(gateway, markets, [("1d", day, day)], day, day + DAY - 1, full)
    return orjson.dumps(items[0] if params.get("symbol") else items)


async def ticker_price(gateway: Gateway, params: Params) -> bytes:
    markets = markets_of(gateway, params)
    values = await _cached(gateway, markets, "ticker")
    items = []
    for market, value in zip(markets, values, strict=True):
        price = orjson.loads(value).get("lastPrice", "0") if value is not None else "0"
        items.append({"symbol": symbol_of(market.name), "price": price})
    return orjson.dumps(items[0] if params.get("symbol") else items)


async def book_ticker(gateway: Gateway, params: Params) -> bytes:
    markets = markets_of(gateway, params)
    values = await _cached(gateway, markets, "bookTicker")
    items = [
        v
        if v is not None
        else orjson.dumps(
            {"symbol": symbol_of(m.name), "bidPrice": "0", "bidQty": "0", "askPrice": "0", "askQty": "0"}
        )
        for m, v in zip(markets, values, strict=True)
    ]
    return items[0] if params.get("symbol") else b"[" + b",".join(items) + b"]"


SYMBOL_STATUSES: Final = ("TRADING", "HALT", "BREAK")


async def exchange_info(gateway: Gateway, params: Params) -> bytes:
    """``GET /api/v3/exchangeInfo`` of every symbol, ``symbol``, ``symbols`` or those of
    ``symbolStatus`` (every market here trades: ``HALT`` and ``BREAK`` list none)."""
    status = params.get("symbolStatus")
    if status:
        if status not in SYMBOL_STATUSES:
            raise errors.out_of_range("symbolStatus", ", ".join(SYMBOL_STATUSES))
        if params.get("symbol") or params.get("symbols"):
            raise ApiError(-1128, "Combination of optional parameters invalid.")
    only = [symbol_of(m.name) for m in markets_of(gateway, params)] if status in (None, "", "TRADING") else []
    everything = not params.get("symbol") and not params.get("symbols") and not status
    limits = gateway.limits
    rates = rate_limits(limits.weight_per_minute, limits.orders_per_10s, limits.orders_per_day)
    return gateway.markets.exchange_info(now_ms(), None if everything else only, rates)
