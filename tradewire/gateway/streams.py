"""Binance stream names: what a client asks for, mapped to the Redis channel that carries it.

A client names streams the Binance way, ``btcusdt@depth``, ``btcusdt@depth5@100ms``,
``btcusdt@kline_1m``; the engine publishes per market on ``md:{BTC-USDT}:<channel>``. Several names
share one channel: ``@depth`` and ``@depth@100ms`` are the same diffs (the engine publishes one diff
per batch, faster than either Binance cadence), and ``@depth5``/``@depth10``/``@depth20`` are cut
from the ``depth20`` channel. Parsing is pure and case-insensitive in the symbol; the name the client
used is kept for the ``stream`` field of combined frames, since clients match on what they sent, and
``Stream.key`` says which names are one stream.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

import orjson

from tradewire.marketdata.binance import symbol_of
from tradewire.marketdata.klines import INTERVALS

__all__ = [
    "KLINE_INTERVALS",
    "Stream",
    "StreamError",
    "agg_trade_payload",
    "parse_stream",
    "parse_streams",
    "symbol_of",
    "symbol_table",
]

KLINE_INTERVALS: Final = tuple(INTERVALS)
"""Binance's intervals, case-sensitive as on Binance: ``1m`` is a minute, ``1M`` a month."""
SIMPLE: Final = {
    "trade": "trade",
    "ticker": "ticker",
    "miniticker": "miniTicker",
    "bookticker": "bookTicker",
    "avgprice": "avgPrice",
    "ticker_1h": "ticker_1h",
    "ticker_4h": "ticker_4h",
    "ticker_1d": "ticker_1d",
}
PARTIAL_LEVELS: Final = ("5", "10", "20")
SPEEDS: Final = ("100ms", "1000ms")
ALL_MARKETS: Final = {
    "!miniticker@arr": ("!miniTicker@arr", "miniTicker", True),
    "!ticker@arr": ("!ticker@arr", "ticker", True),
    "!bookticker": ("!bookTicker", "bookTicker", False),
    **{f"!ticker_{w}@arr": (f"!ticker_{w}@arr", f"ticker_{w}", True) for w in ("1h", "4h", "1d")},
}
"""All-market streams: lower-cased name -> (Binance's spelling, channel, whether events come in arrays)."""


class StreamError(ValueError):
    """A stream name that is not one tradewire serves; the message says why."""


@dataclass(frozen=True, slots=True)
class Stream:
    """One subscribable stream.

    ``name`` is the name as the client wrote it; ``market`` and ``channel`` say where it comes from;
    ``levels`` is 5/10/20 for partial books (cut from ``depth20``), 0 otherwise; ``aggregate`` marks
    ``@aggTrade``, the ``trade`` channel reshaped by :func:`agg_trade_payload`; ``array`` wraps each
    event in a JSON array (``!miniTicker@arr``). ``key`` is the name as Binance writes it (lower-case
    symbol: ``btcusdt@miniTicker``), the same however the client wrote it: a connection follows a
    stream once per key, or it would get every message twice. An all-market stream is one ``Stream``
    per market, all with its name, keyed ``<name>|<market>``: its ``group`` is the stream the client
    counts.
    """

    name: str
    market: str
    channel: str
    levels: int = 0
    key: str = ""
    aggregate: bool = False
    array: bool = False

    def __post_init__(self) -> None:
        if not self.key:
            object.__setattr__(self, "key", self.name)

    @property
    def is_diff(self) -> bool:
        return self.channel == "depth"

    @property
    def group(self) -> str:
        return self.key.partition("|")[0]

    def shape(self, payload: bytes) -> bytes:
        """The stream's message for one publication on its channel (live or from the history)."""
        if self.levels and self.levels < 20:
            return _cut_levels(payload, self.levels)
        if self.aggregate:
            return agg_trade_payload(payload)
        if self.array:
            return b"[" + payload + b"]"
        return payload


def _cut_levels(payload: bytes, levels: int) -> bytes:
    """A partial-book payload with only its best ``levels`` levels per side."""
    book = orjson.loads(payload)
    for side in ("bids", "asks", "b", "a"):
        if side in book:
            book[side] = book[side][:levels]
    return orjson.dumps(book)


def agg_trade_payload(trade: bytes) -> bytes:
    """An ``@aggTrade`` event for one ``@trade`` payload: tradewire aggregates nothing, so the
    aggregate id and its first and last trade ids are the trade's id (as ``GET /aggTrades``)."""
    t = orjson.loads(trade)
    return orjson.dumps(
        {"e": "aggTrade", "E": t["E"], "s": t["s"], "a": t["t"], "p": t["p"], "q": t["q"], "f": t["t"],
         "l": t["t"], "T": t["T"], "m": t["m"], "M": t.get("M", True)}
    )  # fmt: skip


def symbol_table(markets: Iterable[str]) -> dict[str, str]:
    """Lower-case Binance symbol -> market, for parsing stream names and REST ``symbol`` params."""
    return {symbol_of(market).lower(): market for market in markets}


def parse_streams(name: str, symbols: Mapping[str, str]) -> list[Stream]:
    """The streams behind one name: one, or one per market for an all-market stream (``!ticker@arr``:
    every market's ticker channel, which is what Binance's are made of)."""
    if not name.startswith("!"):
        return [parse_stream(name, symbols)]
    lowered = name.lower() if name.isascii() else ""
    base, _, speed = lowered.rpartition("@")
    if speed not in SPEEDS or not base.endswith("@arr"):  # python-binance asks for ``@arr@1000ms``
        base, speed = lowered, ""
    found = ALL_MARKETS.get(base)
    if found is None:
        known = ", ".join(spelled for spelled, _, _ in ALL_MARKETS.values())
        raise StreamError(f"invalid stream name {name!r}: the all-market streams are {known}")
    spelled, channel, array = found
    group = f"{spelled}@{speed}" if speed else spelled
    markets = sorted(set(symbols.values()))
    return [Stream(name, market, channel, key=f"{group}|{market}", array=array) for market in markets]


def is_stream_name(name: str) -> bool:
    """A stream name rather than a listen key: ``<symbol>@<stream>`` or an all-market ``!...``."""
    return "@" in name or name.startswith("!")


def parse_stream(name: str, symbols: Mapping[str, str]) -> Stream:
    """The :class:`Stream` for a Binance stream name; raises :class:`StreamError` when unknown.

    Names are ASCII: ``str.isdigit`` and ``str.lower`` know other scripts (``"²".isdigit()``, the
    Kelvin sign lowers to ``k``), which would let a name through that ``int()`` then refuses or that
    no client could expect back.
    """
    if not name.isascii():
        raise StreamError(f"invalid stream name {name!r}: stream names are ASCII")
    symbol, sep, rest = name.partition("@")
    if not sep or not rest:
        raise StreamError(f"invalid stream name {name!r}: expected <symbol>@<stream>")
    market = symbols.get(symbol.lower())
    if market is None:
        raise StreamError(f"invalid stream name {name!r}: unknown symbol {symbol!r}")
    kind, _, speed = rest.partition("@")
    if speed and speed not in SPEEDS:
        raise StreamError(f"invalid stream name {name!r}: update speed is 100ms or 1000ms")
    prefix, suffix = symbol.lower() + "@", "@" + speed if speed else ""
    lowered = kind.lower()
    if lowered == "depth":
        return Stream(name, market, "depth", key=f"{prefix}depth{suffix}")
    levels = lowered[5:]
    if lowered.startswith("depth") and levels.isdigit():
        if levels not in PARTIAL_LEVELS:  # as written: ``depth05`` is no stream of Binance's
            raise StreamError(f"invalid stream name {name!r}: partial depth is 5, 10 or 20 levels")
        return Stream(name, market, "depth20", int(levels), f"{prefix}depth{levels}{suffix}")
    if speed:
        raise StreamError(f"invalid stream name {name!r}: only depth streams take an update speed")
    if lowered.startswith("kline_"):
        interval = kind[6:]
        if interval not in KLINE_INTERVALS:
            raise StreamError(
                f"invalid stream name {name!r}: kline intervals are {', '.join(KLINE_INTERVALS)}"
            )
        return Stream(name, market, f"kline_{interval}", key=f"{prefix}kline_{interval}")
    if lowered == "aggtrade":
        return Stream(name, market, "trade", key=prefix + "aggTrade", aggregate=True)
    channel = SIMPLE.get(lowered)
    if channel is None:
        raise StreamError(f"invalid stream name {name!r}: unknown stream {kind!r}")
    return Stream(name, market, channel, key=prefix + channel)
