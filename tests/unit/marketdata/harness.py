"""An in-memory exchange for market-data tests: the real engine feeding a ``MarketData``.

``Exchange.send`` applies one command (a dict in the replay spec's JSON) at an exchange time, and
``flush`` returns the builder's ops, also applied to ``Cache``, a small model of the Redis commands
the builder emits, so that tests can read the cache as a gateway would.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import orjson

from tests.strategies import VECTORS_CONFIG
from tradewire.engine import Engine, Event, ExchangeConfig, decode
from tradewire.keys import MDPUB, RedisOp
from tradewire.marketdata.builder import MarketData

CONFIG = ExchangeConfig.from_dict(VECTORS_CONFIG)
DAY0 = 1_699_920_000_000
"""2023-11-14 00:00:00 UTC: a midnight, so every kline interval starts there."""
MINUTE = 60_000


class Cache:
    """The Redis keys the builder writes, kept by applying its ops as Redis would."""

    def __init__(self) -> None:
        self.hashes: dict[str, dict[str, str]] = defaultdict(dict)
        self.strings: dict[str, Any] = {}
        self.lists: dict[str, list[bytes]] = defaultdict(list)
        self.zsets: dict[str, dict[bytes, int]] = defaultdict(dict)
        self.published: list[tuple[str, str, bytes]] = []

    def run(self, ops: list[RedisOp]) -> None:
        for op in ops:
            name, key, *args = op
            if name == MDPUB:
                stream, payload = args
                assert isinstance(key, str) and isinstance(stream, str) and isinstance(payload, bytes)
                self.published.append((key, stream, payload))
            elif name == "HSET":
                assert args and len(args) % 2 == 0
                for field, value in zip(args[::2], args[1::2], strict=True):
                    self.hashes[str(key)][str(field)] = str(value)
            elif name == "HDEL":
                for field in args:
                    self.hashes[str(key)].pop(str(field), None)
            elif name == "SET":
                (self.strings[str(key)],) = args
            elif name == "LPUSH":
                for value in args:
                    assert isinstance(value, bytes)
                    self.lists[str(key)].insert(0, value)
            elif name == "LTRIM":
                start, stop = args
                assert start == 0 and isinstance(stop, int)
                del self.lists[str(key)][stop + 1 :]
            elif name == "ZREMRANGEBYSCORE":
                low, high = args
                assert isinstance(low, int) and isinstance(high, int)
                zset = self.zsets[str(key)]
                for old in [m for m, s in zset.items() if low <= s <= high]:
                    del zset[old]
            elif name == "ZADD":
                score, member = args
                assert isinstance(score, int)
                assert isinstance(member, bytes)
                self.zsets[str(key)][member] = score
            elif name == "ZREMRANGEBYRANK":
                start, stop = args
                assert start == 0 and isinstance(stop, int) and stop < 0
                zset = self.zsets[str(key)]
                ordered = sorted(zset, key=lambda m: zset[m])
                for old in ordered[: max(0, len(ordered) + stop + 1)]:
                    del zset[old]
            else:
                raise AssertionError(f"unexpected op {op!r}")

    def payloads(self, market: str, stream: str) -> list[Any]:
        return [orjson.loads(p) for m, s, p in self.published if m == market and s == stream]

    def klines(self, key: str) -> list[Any]:
        zset = self.zsets[key]
        return [orjson.loads(m) for m in sorted(zset, key=lambda m: zset[m])]


class Exchange:
    def __init__(self, builder: MarketData | None = None) -> None:
        self.engine = Engine(CONFIG)
        self.md = builder or MarketData(CONFIG)
        self.cache = Cache()

    def send(self, command: dict[str, Any], ts: int) -> list[Event]:
        return self.send_line(json.dumps(command), ts)

    def send_line(self, line: str, ts: int) -> list[Event]:
        events = self.engine.apply(decode(line))
        self.md.apply(events, ts)
        return events

    def fund(self, ts: int = DAY0, *users: str) -> None:
        for user in users or ("alice", "bob", "carol"):
            for asset, amount in (("USDT", "1000000"), ("BTC", "1000"), ("ETH", "1000")):
                self.send({"type": "deposit", "user": user, "asset": asset, "amount": amount}, ts)

    def flush(self, slow: bool = True) -> list[RedisOp]:
        ops = self.md.flush(slow)
        self.cache.run(ops)
        return ops

    def recovered(self, saved: bytes, tail: list[tuple[list[Event], int]]) -> MarketData:
        """What the engine service's recovery makes of ``saved`` (a builder's state) and the events
        of the commands after it: restored, the tail replayed silently, settled with this engine's
        books (the state after the tail), asked for what may have been held back."""
        builder = MarketData.from_state(self.md.config, saved)
        for events, ts in tail:
            builder.replay(events, ts)
        books = self.engine.books
        builder.settle({name: (book.bids.depth(), book.asks.depth()) for name, book in books.items()})
        builder.refresh()
        return builder


def limit(
    user: str, side: str, price: str, qty: str, market: str = "BTC-USDT", **extra: Any
) -> dict[str, Any]:
    return {
        "type": "new_order",
        "user": user,
        "market": market,
        "side": side,
        "kind": "limit",
        "price": price,
        "qty": qty,
        **extra,
    }


def market_order(user: str, side: str, qty: str, market: str = "BTC-USDT", **extra: Any) -> dict[str, Any]:
    return {
        "type": "new_order",
        "user": user,
        "market": market,
        "side": side,
        "kind": "market",
        "qty": qty,
        **extra,
    }


def cancel(user: str, order_id: int, market: str = "BTC-USDT") -> dict[str, Any]:
    return {"type": "cancel", "user": user, "market": market, "order_id": order_id}


KLINE_STREAMS = [
    f"kline_{interval}"
    for interval in [
        "1s",
        "1m",
        "3m",
        "5m",
        "15m",
        "30m",
        "1h",
        "2h",
        "4h",
        "6h",
        "8h",
        "12h",
        "1d",
        "3d",
        "1w",
        "1M",
    ]
]
"""The kline channels of a market, shortest interval first (as a flush publishes them)."""

WINDOW_STREAMS = ["ticker_1h", "ticker_4h", "ticker_1d"]
"""The rolling-window ticker channels of a market (as a flush publishes them)."""


def streams(ops: list[RedisOp]) -> list[str]:
    return [str(op[2]) for op in ops if op[0] == MDPUB]
